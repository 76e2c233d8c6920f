//! The Lexicon `uri` format: a generic URI.

use super::{Error, string_type};

/// Longest URI accepted (8 KiB).
const MAX_LEN: usize = 8192;

/// A generic URI as accepted by the Lexicon `uri` format: an RFC 3986 scheme (a letter,
/// then letters, digits, `+`, `-` or `.`), a `:`, then at least one character, with no
/// whitespace or control characters anywhere and at most 8192 bytes. The rest is not
/// interpreted (`did:…`, `at://…`, `https://…` are all URIs). Kept exactly as given.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uri(String);

impl Uri {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scheme, e.g. `https`.
    pub fn scheme(&self) -> &str {
        self.0.split_once(':').map_or("", |(scheme, _)| scheme)
    }
}

fn check(s: &str) -> Result<(), Error> {
    if s.len() > MAX_LEN {
        return Err(Error::Uri("longer than 8192 bytes"));
    }
    let (scheme, rest) = s.split_once(':').ok_or(Error::Uri("missing scheme"))?;
    let mut scheme_bytes = scheme.bytes();
    if !scheme_bytes.next().is_some_and(|b| b.is_ascii_alphabetic()) {
        return Err(Error::Uri("scheme must start with a letter"));
    }
    if !scheme_bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) {
        return Err(Error::Uri(
            "scheme may only contain ASCII letters, digits, + - and .",
        ));
    }
    if rest.is_empty() {
        return Err(Error::Uri("nothing after the scheme"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Uri("contains whitespace or control characters"));
    }
    Ok(())
}

impl TryFrom<String> for Uri {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        check(&s)?;
        Ok(Uri(s))
    }
}

string_type!(Uri);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::vectors;

    #[test]
    fn interop_valid() {
        let lines = vectors::syntax("uri_syntax_valid.txt");
        assert_eq!(lines.len(), 9);
        vectors::assert_valid::<Uri>("uri valid", &lines, str::to_owned);
    }

    #[test]
    fn interop_invalid() {
        let lines = vectors::syntax("uri_syntax_invalid.txt");
        assert_eq!(lines.len(), 12);
        vectors::assert_invalid::<Uri>("uri invalid", &lines);
    }

    #[test]
    fn scheme_and_limits() {
        let u: Uri = "https://example.com/path?q=1#frag".parse().unwrap();
        assert_eq!(u.scheme(), "https");
        let u: Uri = "microsoft.windows.camera:thing".parse().unwrap();
        assert_eq!(u.scheme(), "microsoft.windows.camera");
        // Non-ASCII text (an IRI) is passed through.
        assert!("https://ja.wikipedia.org/wiki/日本".parse::<Uri>().is_ok());
        assert!("https://example.com/\u{0}".parse::<Uri>().is_err());
        assert!("https://example.com/\u{a0}".parse::<Uri>().is_err());
        let max = format!("https://example.com/{}", "x".repeat(MAX_LEN - 20));
        assert_eq!(max.len(), MAX_LEN);
        assert!(max.parse::<Uri>().is_ok());
        assert_eq!(
            format!("{max}x").parse::<Uri>(),
            Err(Error::Uri("longer than 8192 bytes"))
        );
    }
}
