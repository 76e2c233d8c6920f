//! Record key syntax, per atproto.com/specs/record-key.

use super::{Error, Tid, string_type};

const MAX_LEN: usize = 512;

/// A syntactically valid record key: 1 to 512 characters from `A-Z a-z 0-9 . - _ : ~`,
/// and neither `.` nor `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey(String);

impl RecordKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check(s: &str) -> Result<(), Error> {
    if s.is_empty() {
        return Err(Error::RecordKey("empty"));
    }
    if s.len() > MAX_LEN {
        return Err(Error::RecordKey("longer than 512 characters"));
    }
    if s == "." || s == ".." {
        return Err(Error::RecordKey("may not be \".\" or \"..\""));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'~'))
    {
        return Err(Error::RecordKey(
            "may only contain ASCII letters, digits and . - _ : ~",
        ));
    }
    Ok(())
}

impl TryFrom<String> for RecordKey {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        check(&s)?;
        Ok(RecordKey(s))
    }
}

/// Every TID is a valid record key (the `tid` key type).
impl From<Tid> for RecordKey {
    fn from(t: Tid) -> Self {
        RecordKey(t.as_str().to_owned())
    }
}

string_type!(RecordKey);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::vectors;

    #[test]
    fn interop_valid() {
        let lines = vectors::syntax("recordkey_syntax_valid.txt");
        assert_eq!(lines.len(), 16);
        vectors::assert_valid::<RecordKey>("record key valid", &lines, str::to_owned);
    }

    #[test]
    fn interop_invalid() {
        let lines = vectors::syntax("recordkey_syntax_invalid.txt");
        assert_eq!(lines.len(), 11);
        vectors::assert_invalid::<RecordKey>("record key invalid", &lines);
    }

    #[test]
    fn from_tid() {
        let t: Tid = "3jzfcijpj2z2a".parse().unwrap();
        assert_eq!(RecordKey::from(t).as_str(), "3jzfcijpj2z2a");
        assert_eq!("".parse::<RecordKey>(), Err(Error::RecordKey("empty")));
    }
}
