//! Generic DID syntax (any method), per atproto.com/specs/did.

use super::{Error, string_type};

/// Longest DID accepted (the spec's initial hard limit).
const MAX_LEN: usize = 2048;

/// A syntactically valid DID of any method, e.g. `did:plc:7iza6de2dwap2sbkpav7c6c6`.
///
/// Case-sensitive and kept exactly as given. Only the generic syntax is checked; whether
/// the method is supported (`plc`, `web`) is a question for identity resolution.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did(String);

impl Did {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The method name, e.g. `plc` for `did:plc:…`.
    pub fn method(&self) -> &str {
        self.parts().0
    }

    /// The method-specific identifier, everything after `did:<method>:`.
    pub fn identifier(&self) -> &str {
        self.parts().1
    }

    fn parts(&self) -> (&str, &str) {
        // Valid by construction: "did:" + method + ":" + identifier.
        let rest = self.0.get(4..).unwrap_or_default();
        rest.split_once(':').unwrap_or((rest, ""))
    }
}

fn check(s: &str) -> Result<(), Error> {
    if s.len() > MAX_LEN {
        return Err(Error::Did("longer than 2048 characters"));
    }
    let rest = s
        .strip_prefix("did:")
        .ok_or(Error::Did("must start with lowercase \"did:\""))?;
    let (method, ident) = rest
        .split_once(':')
        .ok_or(Error::Did("missing \":\" after the method"))?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(Error::Did("method must be one or more lowercase letters"));
    }
    if ident.is_empty() {
        return Err(Error::Did("empty method-specific identifier"));
    }
    if !ident
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'%' | b'-'))
    {
        return Err(Error::Did(
            "identifier may only contain ASCII letters, digits and . _ : % -",
        ));
    }
    if ident.ends_with(':') || ident.ends_with('%') {
        return Err(Error::Did("may not end with \":\" or \"%\""));
    }
    Ok(())
}

impl TryFrom<String> for Did {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        check(&s)?;
        Ok(Did(s))
    }
}

string_type!(Did);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::vectors;

    #[test]
    fn interop_valid() {
        let lines = vectors::syntax("did_syntax_valid.txt");
        assert_eq!(lines.len(), 24);
        vectors::assert_valid::<Did>("did valid", &lines, str::to_owned);
    }

    #[test]
    fn interop_invalid() {
        let lines = vectors::syntax("did_syntax_invalid.txt");
        assert_eq!(lines.len(), 18);
        vectors::assert_invalid::<Did>("did invalid", &lines);
    }

    #[test]
    fn accessors() {
        let d: Did = "did:plc:7iza6de2dwap2sbkpav7c6c6".parse().unwrap();
        assert_eq!(d.method(), "plc");
        assert_eq!(d.identifier(), "7iza6de2dwap2sbkpav7c6c6");
        let d: Did = "did:web:localhost%3A1234".parse().unwrap();
        assert_eq!(d.method(), "web");
        assert_eq!(d.identifier(), "localhost%3A1234");
        let d: Did = "did:method::::val".parse().unwrap();
        assert_eq!(d.identifier(), ":::val");
    }

    #[test]
    fn length_limit() {
        let ok = format!("did:plc:{}", "a".repeat(MAX_LEN - 8));
        assert_eq!(ok.len(), MAX_LEN);
        assert!(ok.parse::<Did>().is_ok());
        let long = format!("{ok}a");
        assert_eq!(
            long.parse::<Did>(),
            Err(Error::Did("longer than 2048 characters"))
        );
    }
}
