//! Namespaced Identifier (NSID) syntax, per atproto.com/specs/nsid.

use super::{Error, string_type};

const MAX_SEGMENT_LEN: usize = 63;
/// A 253-character domain, a period and a 63-character name. Only the total is limited:
/// the interop vectors accept a longer authority when the whole fits.
const MAX_LEN: usize = 253 + 1 + MAX_SEGMENT_LEN;

/// A syntactically valid NSID such as `app.bsky.feed.post`: a domain authority in reverse
/// order (`app.bsky.feed`) followed by a name (`post`).
///
/// Kept exactly as given (the name is case-sensitive; collection names are compared
/// byte for byte in repository paths).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nsid(String);

impl Nsid {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The final segment, e.g. `post` for `app.bsky.feed.post`.
    pub fn name(&self) -> &str {
        self.0.rsplit('.').next().unwrap_or_default()
    }

    /// The domain authority in normal DNS order and lowercased, e.g. `feed.bsky.app`
    /// for `app.bsky.feed.post`.
    pub fn authority(&self) -> String {
        let mut segments: Vec<&str> = self.0.split('.').collect();
        segments.pop();
        segments.reverse();
        segments.join(".").to_ascii_lowercase()
    }
}

fn check(s: &str) -> Result<(), Error> {
    if s.len() > MAX_LEN {
        return Err(Error::Nsid("longer than 317 characters"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(Error::Nsid(
            "may only contain ASCII letters, digits, hyphens and periods",
        ));
    }
    let segments: Vec<&str> = s.split('.').collect();
    let Some((name, authority)) = segments.split_last() else {
        return Err(Error::Nsid("empty"));
    };
    if authority.len() < 2 {
        return Err(Error::Nsid("needs at least three segments"));
    }
    for seg in authority {
        if seg.is_empty() {
            return Err(Error::Nsid("empty segment"));
        }
        if seg.len() > MAX_SEGMENT_LEN {
            return Err(Error::Nsid("segment longer than 63 characters"));
        }
        if seg.starts_with('-') || seg.ends_with('-') {
            return Err(Error::Nsid("segment starts or ends with a hyphen"));
        }
    }
    let tld_starts_with_digit = authority
        .first()
        .and_then(|t| t.bytes().next())
        .is_some_and(|b| b.is_ascii_digit());
    if tld_starts_with_digit {
        return Err(Error::Nsid("first segment may not start with a digit"));
    }
    if name.is_empty() {
        return Err(Error::Nsid("empty name"));
    }
    if name.len() > MAX_SEGMENT_LEN {
        return Err(Error::Nsid("name longer than 63 characters"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::Nsid(
            "name may only contain ASCII letters and digits",
        ));
    }
    if name.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return Err(Error::Nsid("name may not start with a digit"));
    }
    Ok(())
}

impl TryFrom<String> for Nsid {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        check(&s)?;
        Ok(Nsid(s))
    }
}

string_type!(Nsid);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::vectors;

    #[test]
    fn interop_valid() {
        let lines = vectors::syntax("nsid_syntax_valid.txt");
        assert_eq!(lines.len(), 25);
        vectors::assert_valid::<Nsid>("nsid valid", &lines, str::to_owned);
    }

    #[test]
    fn interop_invalid() {
        let lines = vectors::syntax("nsid_syntax_invalid.txt");
        assert_eq!(lines.len(), 27);
        vectors::assert_invalid::<Nsid>("nsid invalid", &lines);
    }

    #[test]
    fn accessors() {
        let n: Nsid = "app.bsky.feed.post".parse().unwrap();
        assert_eq!(n.name(), "post");
        assert_eq!(n.authority(), "feed.bsky.app");
        let n: Nsid = "one.two.three.four-and.FiVe".parse().unwrap();
        assert_eq!(n.name(), "FiVe");
        assert_eq!(n.authority(), "four-and.three.two.one");
        let n: Nsid = "Com.Example.fooBar".parse().unwrap();
        assert_eq!(n.authority(), "example.com");
        assert_eq!(n.name(), "fooBar");
        assert_eq!(n.as_str(), "Com.Example.fooBar");
    }

    #[test]
    fn errors_name_the_reason() {
        assert_eq!(
            "com.example".parse::<Nsid>(),
            Err(Error::Nsid("needs at least three segments"))
        );
        assert_eq!(
            "com.example.fooBar.2".parse::<Nsid>(),
            Err(Error::Nsid("name may not start with a digit"))
        );
        assert_eq!(
            Error::Nsid("empty segment").to_string(),
            "invalid NSID: empty segment"
        );
    }
}
