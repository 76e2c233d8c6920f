//! The Lexicon `cid` format: CID strings.

use cid::{Cid, Version};

use super::Error;

const MIN_LEN: usize = 8;
const MAX_LEN: usize = 256;

/// The Lexicon-level syntax check for a CID string: 8 to 256 characters from
/// `A-Z a-z 0-9 + =`, and not a CIDv0 (`Qm…`). It does not decode the string; several
/// interop vectors pass it without being decodable CIDs. Use [`parse_cid_str`] to get a
/// [`Cid`].
pub fn check_cid_syntax(s: &str) -> Result<(), Error> {
    if s.len() < MIN_LEN {
        return Err(Error::Cid("shorter than 8 characters"));
    }
    if s.len() > MAX_LEN {
        return Err(Error::Cid("longer than 256 characters"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'=')
    {
        return Err(Error::Cid(
            "may only contain ASCII letters, digits, + and =",
        ));
    }
    if s.starts_with("Qm") {
        return Err(Error::Cid("CIDv0 is not allowed"));
    }
    Ok(())
}

/// Parses a CID string: it must pass [`check_cid_syntax`] and decode as a multibase CIDv1
/// (any multibase the `cid` crate knows: `b…` base32, `z…` base58btc, `f…` base16, …).
pub fn parse_cid_str(s: &str) -> Result<Cid, Error> {
    check_cid_syntax(s)?;
    let cid = Cid::try_from(s).map_err(|_| Error::Cid("does not decode as a CID"))?;
    if cid.version() != Version::V1 {
        return Err(Error::Cid("CIDv0 is not allowed"));
    }
    Ok(cid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::vectors;

    /// Valid-syntax vectors that are contrived strings rather than CIDs: they pass the
    /// syntax check but do not decode (`m…` is not canonical base64, the other two
    /// declare a multihash longer than the bytes present).
    const SYNTAX_ONLY: [&str; 3] = [
        "mBcDxtdWx0aWhhc2g+",
        "z7x3CtScH765HvShXT",
        "7134036155352661643226414134664076",
    ];

    #[test]
    fn interop_valid() {
        let lines = vectors::syntax("cid_syntax_valid.txt");
        assert_eq!(lines.len(), 8);
        let mut decoded = 0;
        for line in &lines {
            assert_eq!(check_cid_syntax(line), Ok(()), "{line:?}");
            if SYNTAX_ONLY.contains(&line.as_str()) {
                assert_eq!(
                    parse_cid_str(line),
                    Err(Error::Cid("does not decode as a CID")),
                    "{line:?}"
                );
                continue;
            }
            let cid = parse_cid_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(cid.version(), Version::V1);
            // Re-encoding in the same multibase gives the same string.
            let (base, _) = multibase::decode(line).unwrap();
            assert_eq!(cid.to_string_of_base(base).unwrap(), *line);
            decoded += 1;
        }
        assert_eq!(decoded, lines.len() - SYNTAX_ONLY.len());
    }

    #[test]
    fn interop_invalid() {
        let lines = vectors::syntax("cid_syntax_invalid.txt");
        assert_eq!(lines.len(), 10);
        for line in &lines {
            assert!(check_cid_syntax(line).is_err(), "{line:?}");
            assert!(parse_cid_str(line).is_err(), "{line:?}");
        }
    }

    #[test]
    fn known_cid() {
        let s = "bafkreiblkobl6arfg3j7eft3akdhn2hmr2qmzfkefcgu4agnswvssg4a6a";
        let cid = parse_cid_str(s).unwrap();
        assert_eq!(cid.codec(), 0x55);
        assert_eq!(cid.hash().code(), 0x12);
        assert_eq!(cid.to_string(), s);
        assert_eq!(
            parse_cid_str("QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR"),
            Err(Error::Cid("CIDv0 is not allowed"))
        );
    }
}
