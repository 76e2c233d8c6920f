//! Handle syntax, per atproto.com/specs/handle.

use super::{Error, string_type};

const MAX_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Top-level domains that may not be registered as handles (a registration policy, not a
/// syntax rule: such handles still parse).
const DISALLOWED_TLDS: [&str; 8] = [
    "alt",
    "arpa",
    "example",
    "internal",
    "invalid",
    "local",
    "localhost",
    "onion",
];

/// A syntactically valid handle (a DNS hostname with at least two labels), normalised to
/// lowercase on parse: `Alice.Example.COM` becomes `alice.example.com`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(String);

impl Handle {
    /// The placeholder shown for an account whose handle does not verify.
    pub const INVALID: &'static str = "handle.invalid";

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True if the top-level domain is one atproto disallows for registration
    /// (`.alt .arpa .example .internal .invalid .local .localhost .onion`).
    /// `.test` is deliberately allowed, for development.
    pub fn has_disallowed_tld(&self) -> bool {
        let tld = self.0.rsplit('.').next().unwrap_or_default();
        DISALLOWED_TLDS.contains(&tld)
    }
}

fn check(s: &str) -> Result<(), Error> {
    if s.len() > MAX_LEN {
        return Err(Error::Handle("longer than 253 characters"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(Error::Handle(
            "may only contain ASCII letters, digits, hyphens and periods",
        ));
    }
    let labels: Vec<&str> = s.split('.').collect();
    if labels.len() < 2 {
        return Err(Error::Handle("needs at least two dot-separated labels"));
    }
    for label in &labels {
        if label.is_empty() {
            return Err(Error::Handle("empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(Error::Handle("label longer than 63 characters"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Error::Handle("label starts or ends with a hyphen"));
        }
    }
    let tld_starts_with_letter = labels
        .last()
        .and_then(|l| l.bytes().next())
        .is_some_and(|b| b.is_ascii_alphabetic());
    if !tld_starts_with_letter {
        return Err(Error::Handle("top-level domain must start with a letter"));
    }
    Ok(())
}

impl TryFrom<String> for Handle {
    type Error = Error;
    fn try_from(mut s: String) -> Result<Self, Error> {
        check(&s)?;
        s.make_ascii_lowercase();
        Ok(Handle(s))
    }
}

string_type!(Handle);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::vectors;

    #[test]
    fn interop_valid() {
        let lines = vectors::syntax("handle_syntax_valid.txt");
        assert_eq!(lines.len(), 71);
        vectors::assert_valid::<Handle>("handle valid", &lines, str::to_ascii_lowercase);
    }

    #[test]
    fn interop_invalid() {
        let lines = vectors::syntax("handle_syntax_invalid.txt");
        assert_eq!(lines.len(), 48);
        vectors::assert_invalid::<Handle>("handle invalid", &lines);
    }

    #[test]
    fn lowercases() {
        let h: Handle = "XX.LCS.MIT.EDU".parse().unwrap();
        assert_eq!(h.as_str(), "xx.lcs.mit.edu");
        let h2: Handle = "xx.lcs.mit.edu".parse().unwrap();
        assert_eq!(h, h2);
        let h3 = Handle::try_from("Alice.Example.COM".to_owned()).unwrap();
        assert_eq!(h3.to_string(), "alice.example.com");
    }

    #[test]
    fn disallowed_tlds() {
        for s in [
            "laptop.local",
            "laptop.arpa",
            "a.alt",
            "a.example",
            "a.internal",
            "handle.invalid",
            "a.localhost",
            "expyuzz4wqqyqhjn.onion",
            "UPPER.LOCAL",
        ] {
            let h: Handle = s.parse().unwrap();
            assert!(h.has_disallowed_tld(), "{s}");
        }
        for s in [
            "john.test",
            "a.co",
            "example.com",
            "local.host",
            "onion.net",
        ] {
            let h: Handle = s.parse().unwrap();
            assert!(!h.has_disallowed_tld(), "{s}");
        }
        let invalid: Handle = Handle::INVALID.parse().unwrap();
        assert!(invalid.has_disallowed_tld());
    }
}
