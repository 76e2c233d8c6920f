//! The Lexicon `at-uri` format, per atproto.com/specs/at-uri-scheme.

use super::{AtIdentifier, Error, Nsid, RecordKey, string_type};

/// Longest AT-URI accepted (8 KiB).
const MAX_LEN: usize = 8192;

/// An AT-URI: `at://<authority>[/<collection>[/<rkey>]]`, where the authority is a DID
/// or handle, the collection an NSID and the record key a [`RecordKey`]. No query, no
/// fragment, no trailing slash.
///
/// [`AtUri::as_str`] is the string exactly as parsed (it may appear inside signed records);
/// the typed parts are normalised as their own types are (a handle authority is
/// lowercased).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AtUri {
    uri: String,
    authority: AtIdentifier,
    collection: Option<Nsid>,
    rkey: Option<RecordKey>,
}

impl AtUri {
    pub fn as_str(&self) -> &str {
        &self.uri
    }

    /// The repository: a DID or a handle.
    pub fn authority(&self) -> &AtIdentifier {
        &self.authority
    }

    pub fn collection(&self) -> Option<&Nsid> {
        self.collection.as_ref()
    }

    pub fn rkey(&self) -> Option<&RecordKey> {
        self.rkey.as_ref()
    }

    /// `at://<authority>`
    pub fn for_repo(authority: impl Into<AtIdentifier>) -> AtUri {
        let authority = authority.into();
        AtUri {
            uri: format!("at://{authority}"),
            authority,
            collection: None,
            rkey: None,
        }
    }

    /// `at://<authority>/<collection>`
    pub fn for_collection(authority: impl Into<AtIdentifier>, collection: Nsid) -> AtUri {
        let authority = authority.into();
        AtUri {
            uri: format!("at://{authority}/{collection}"),
            authority,
            collection: Some(collection),
            rkey: None,
        }
    }

    /// `at://<authority>/<collection>/<rkey>`
    pub fn for_record(
        authority: impl Into<AtIdentifier>,
        collection: Nsid,
        rkey: RecordKey,
    ) -> AtUri {
        let authority = authority.into();
        AtUri {
            uri: format!("at://{authority}/{collection}/{rkey}"),
            authority,
            collection: Some(collection),
            rkey: Some(rkey),
        }
    }
}

fn part(e: Error) -> Error {
    Error::AtUriPart(Box::new(e))
}

impl TryFrom<String> for AtUri {
    type Error = Error;
    fn try_from(uri: String) -> Result<Self, Error> {
        if uri.len() > MAX_LEN {
            return Err(Error::AtUri("longer than 8192 bytes"));
        }
        let rest = uri
            .strip_prefix("at://")
            .ok_or(Error::AtUri("must start with \"at://\""))?;
        if rest.contains(['?', '#']) {
            return Err(Error::AtUri("query and fragment are not allowed"));
        }
        let mut segments = rest.split('/');
        let authority = segments.next().unwrap_or_default();
        if authority.is_empty() {
            return Err(Error::AtUri("empty authority"));
        }
        let authority = AtIdentifier::try_from(authority.to_owned()).map_err(part)?;
        let collection = match segments.next() {
            None => None,
            Some("") => return Err(Error::AtUri("empty path segment or trailing slash")),
            Some(c) => Some(Nsid::try_from(c.to_owned()).map_err(part)?),
        };
        let rkey = match segments.next() {
            None => None,
            Some("") => return Err(Error::AtUri("empty path segment or trailing slash")),
            Some(r) => Some(RecordKey::try_from(r.to_owned()).map_err(part)?),
        };
        if segments.next().is_some() {
            return Err(Error::AtUri(
                "at most two path segments (collection and record key)",
            ));
        }
        Ok(AtUri {
            uri,
            authority,
            collection,
            rkey,
        })
    }
}

string_type!(AtUri);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::{Did, Handle, vectors};

    #[test]
    fn interop_valid() {
        let lines = vectors::syntax("aturi_syntax_valid.txt");
        assert_eq!(lines.len(), 23);
        vectors::assert_valid::<AtUri>("at-uri valid", &lines, str::to_owned);
    }

    #[test]
    fn interop_invalid() {
        let lines = vectors::syntax("aturi_syntax_invalid.txt");
        assert_eq!(lines.len(), 72);
        vectors::assert_invalid::<AtUri>("at-uri invalid", &lines);
    }

    #[test]
    fn accessors() {
        let u: AtUri = "at://did:plc:asdf123/com.atproto.feed.post/record"
            .parse()
            .unwrap();
        assert_eq!(
            u.authority().as_did().map(Did::as_str),
            Some("did:plc:asdf123")
        );
        assert_eq!(
            u.collection().map(Nsid::as_str),
            Some("com.atproto.feed.post")
        );
        assert_eq!(u.rkey().map(RecordKey::as_str), Some("record"));

        let u: AtUri = "at://did:plc:asdf123/com.atproto.feed.post"
            .parse()
            .unwrap();
        assert_eq!(u.collection().map(Nsid::name), Some("post"));
        assert!(u.rkey().is_none());

        let u: AtUri = "at://User.Bsky.Social".parse().unwrap();
        assert_eq!(u.as_str(), "at://User.Bsky.Social");
        assert_eq!(
            u.authority().as_handle().map(Handle::as_str),
            Some("user.bsky.social")
        );
        assert!(u.collection().is_none());
        assert!(u.rkey().is_none());
    }

    #[test]
    fn constructors() {
        let did: Did = "did:plc:asdf123".parse().unwrap();
        let nsid: Nsid = "app.bsky.feed.post".parse().unwrap();
        let rkey: RecordKey = "3jzfcijpj2z2a".parse().unwrap();
        let u = AtUri::for_record(did.clone(), nsid.clone(), rkey);
        assert_eq!(
            u.as_str(),
            "at://did:plc:asdf123/app.bsky.feed.post/3jzfcijpj2z2a"
        );
        assert_eq!(u, u.as_str().parse::<AtUri>().unwrap());
        let c = AtUri::for_collection(did.clone(), nsid);
        assert_eq!(
            c,
            "at://did:plc:asdf123/app.bsky.feed.post".parse().unwrap()
        );
        let r = AtUri::for_repo(did);
        assert_eq!(r.to_string(), "at://did:plc:asdf123");
    }

    #[test]
    fn error_names_the_part() {
        let e = "at://did:plc:asdf123/short/stuff"
            .parse::<AtUri>()
            .unwrap_err();
        assert_eq!(
            e,
            Error::AtUriPart(Box::new(Error::Nsid("needs at least three segments")))
        );
        assert_eq!(
            e.to_string(),
            "invalid AT-URI: invalid NSID: needs at least three segments"
        );
    }

    #[test]
    fn serde_round_trip() {
        let u: AtUri = "at://did:plc:asdf123/com.atproto.feed.post/record"
            .parse()
            .unwrap();
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(
            json,
            "\"at://did:plc:asdf123/com.atproto.feed.post/record\""
        );
        assert_eq!(serde_json::from_str::<AtUri>(&json).unwrap(), u);
        assert!(serde_json::from_str::<AtUri>("\"at://did:plc:asdf123/\"").is_err());
    }
}
