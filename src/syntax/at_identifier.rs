//! `at-identifier`: a DID or a handle.

use super::{Did, Error, Handle, string_type};

/// Either a DID or a handle. Unambiguous: handles cannot contain `:`, and anything
/// starting with `did:` is parsed as a DID.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AtIdentifier {
    Did(Did),
    Handle(Handle),
}

impl AtIdentifier {
    pub fn as_str(&self) -> &str {
        match self {
            AtIdentifier::Did(d) => d.as_str(),
            AtIdentifier::Handle(h) => h.as_str(),
        }
    }

    pub fn as_did(&self) -> Option<&Did> {
        match self {
            AtIdentifier::Did(d) => Some(d),
            AtIdentifier::Handle(_) => None,
        }
    }

    pub fn as_handle(&self) -> Option<&Handle> {
        match self {
            AtIdentifier::Handle(h) => Some(h),
            AtIdentifier::Did(_) => None,
        }
    }
}

impl TryFrom<String> for AtIdentifier {
    type Error = Error;
    /// A string starting with `did:` must be a valid DID (its error is returned as is);
    /// anything else must be a valid handle.
    fn try_from(s: String) -> Result<Self, Error> {
        if s.starts_with("did:") {
            Did::try_from(s).map(AtIdentifier::Did)
        } else {
            Handle::try_from(s).map(AtIdentifier::Handle)
        }
    }
}

impl From<Did> for AtIdentifier {
    fn from(d: Did) -> Self {
        AtIdentifier::Did(d)
    }
}

impl From<Handle> for AtIdentifier {
    fn from(h: Handle) -> Self {
        AtIdentifier::Handle(h)
    }
}

string_type!(AtIdentifier);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::vectors;

    #[test]
    fn interop_valid() {
        let lines = vectors::syntax("atidentifier_syntax_valid.txt");
        assert_eq!(lines.len(), 11);
        vectors::assert_valid::<AtIdentifier>("at-identifier valid", &lines, |l| {
            if l.starts_with("did:") {
                l.to_owned()
            } else {
                l.to_ascii_lowercase()
            }
        });
    }

    #[test]
    fn interop_invalid() {
        let lines = vectors::syntax("atidentifier_syntax_invalid.txt");
        assert_eq!(lines.len(), 22);
        vectors::assert_invalid::<AtIdentifier>("at-identifier invalid", &lines);
    }

    #[test]
    fn variants() {
        let a: AtIdentifier = "did:plc:asdf123".parse().unwrap();
        assert_eq!(a.as_did().map(Did::as_str), Some("did:plc:asdf123"));
        assert!(a.as_handle().is_none());
        let b: AtIdentifier = "John.Test".parse().unwrap();
        assert_eq!(b.as_handle().map(Handle::as_str), Some("john.test"));
        assert!(b.as_did().is_none());
        assert_eq!(b.as_str(), "john.test");
        assert_eq!(
            "did:".parse::<AtIdentifier>(),
            Err(Error::Did("missing \":\" after the method"))
        );
    }
}
