//! Typed atproto identifiers: parse, don't validate.
//!
//! Every type here can only be built from a string that passed its syntax check, so holding
//! a `Did` or an `AtUri` is proof of well-formedness. Each parses with [`str::FromStr`] or
//! `TryFrom<String>`, prints with `Display`/`as_str()`, and (de)serialises with serde as a
//! plain string that is checked again on the way in.
//!
//! The rules follow the atproto specifications (atproto.com/specs) and are checked against
//! every line of the interop vectors in `fixtures/interop/syntax/`.

mod at_identifier;
mod at_uri;
mod cid_str;
mod datetime;
mod did;
mod handle;
mod language;
mod nsid;
mod record_key;
mod tid;
mod uri;

pub use at_identifier::AtIdentifier;
pub use at_uri::AtUri;
pub use cid_str::{check_cid_syntax, parse_cid_str};
pub use datetime::Datetime;
pub use did::Did;
pub use handle::Handle;
pub use language::Language;
pub use nsid::Nsid;
pub use record_key::RecordKey;
pub use tid::{Tid, TidClock};
pub use uri::Uri;

/// Why a string was rejected. Each variant names the type; the payload says why.
///
/// The rejected input is deliberately not echoed: it may be hostile or very long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid DID: {0}")]
    Did(&'static str),
    #[error("invalid handle: {0}")]
    Handle(&'static str),
    #[error("invalid NSID: {0}")]
    Nsid(&'static str),
    #[error("invalid TID: {0}")]
    Tid(&'static str),
    #[error("invalid record key: {0}")]
    RecordKey(&'static str),
    #[error("invalid AT-URI: {0}")]
    AtUri(&'static str),
    /// An AT-URI whose authority, collection or record key failed its own check.
    #[error("invalid AT-URI: {0}")]
    AtUriPart(#[source] Box<Error>),
    #[error("invalid datetime: {0}")]
    Datetime(&'static str),
    #[error("invalid language tag: {0}")]
    Language(&'static str),
    #[error("invalid URI: {0}")]
    Uri(&'static str),
    #[error("invalid CID string: {0}")]
    Cid(&'static str),
}

/// The string-shaped impls every identifier shares: `Display`, `FromStr`, `TryFrom<&str>`,
/// `AsRef<str>`, `From<T> for String` and serde as a plain, re-validated string.
/// The type itself provides `as_str()` and `TryFrom<String>`.
macro_rules! string_type {
    ($ty:ident) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::syntax::Error;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                Self::try_from(s.to_owned())
            }
        }

        impl ::std::convert::TryFrom<&str> for $ty {
            type Error = $crate::syntax::Error;
            fn try_from(s: &str) -> ::std::result::Result<Self, Self::Error> {
                Self::try_from(s.to_owned())
            }
        }

        impl ::std::convert::AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl ::std::convert::From<$ty> for String {
            fn from(v: $ty) -> String {
                v.as_str().to_owned()
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                Self::try_from(s).map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}
pub(crate) use string_type;

/// Reading the interop vector files (shared by every type's tests).
#[cfg(test)]
pub(crate) mod vectors {
    /// The vector lines of `fixtures/interop/<rel>`: not trimmed, without empty lines and
    /// `#` comments. Panics (failing the test) if the file is missing or has no vectors.
    pub fn lines(rel: &str) -> Vec<String> {
        let path = format!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/interop/{}"),
            rel
        );
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read vector file {path}: {e}"));
        let out: Vec<String> = text
            .split('\n')
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        assert!(!out.is_empty(), "no vectors in {path}");
        out
    }

    /// Top-level syntax vectors: `fixtures/interop/syntax/<name>`.
    pub fn syntax(name: &str) -> Vec<String> {
        lines(&format!("syntax/{name}"))
    }

    /// The atproto repository's diverging copy:
    /// `fixtures/interop/extra/atproto/interop-test-files/syntax/<name>`.
    pub fn extra(name: &str) -> Vec<String> {
        lines(&format!("extra/atproto/interop-test-files/syntax/{name}"))
    }

    /// Every line must parse as `T` and print back exactly as `expected(line)`.
    pub fn assert_valid<T>(name: &str, lines: &[String], expected: impl Fn(&str) -> String)
    where
        T: std::str::FromStr<Err = super::Error> + std::fmt::Display,
    {
        for line in lines {
            match line.parse::<T>() {
                Ok(v) => assert_eq!(v.to_string(), expected(line), "{name}: {line:?}"),
                Err(e) => panic!("{name}: {line:?} should be valid, got {e}"),
            }
        }
    }

    /// Every line must be rejected by `T`'s parser.
    pub fn assert_invalid<T>(name: &str, lines: &[String])
    where
        T: std::str::FromStr<Err = super::Error> + std::fmt::Debug,
    {
        for line in lines {
            let r = line.parse::<T>();
            assert!(r.is_err(), "{name}: {line:?} should be invalid, got {r:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Parses `s` as `T`; if accepted, printing and re-parsing must be stable.
    fn round_trips<T>(s: &str) -> Result<(), TestCaseError>
    where
        T: std::str::FromStr<Err = Error> + std::fmt::Display + PartialEq + std::fmt::Debug,
    {
        if let Ok(v) = s.parse::<T>() {
            let printed = v.to_string();
            prop_assert_eq!(printed.parse::<T>(), Ok(v));
        }
        Ok(())
    }

    fn all_types(s: &str) -> Result<(), TestCaseError> {
        round_trips::<Did>(s)?;
        round_trips::<Handle>(s)?;
        round_trips::<AtIdentifier>(s)?;
        round_trips::<Nsid>(s)?;
        round_trips::<Tid>(s)?;
        round_trips::<RecordKey>(s)?;
        round_trips::<AtUri>(s)?;
        round_trips::<Datetime>(s)?;
        round_trips::<Language>(s)?;
        round_trips::<Uri>(s)?;
        let _ = Datetime::parse_strict(s);
        let _ = Language::parse_strict(s);
        let _ = parse_cid_str(s);
        Ok(())
    }

    proptest! {
        /// Arbitrary input never panics any parser, and whatever parses round-trips.
        #[test]
        fn arbitrary_strings(s in "\\PC{0,40}") {
            all_types(&s)?;
        }

        /// Inputs close to the grammars, to reach the deeper checks.
        #[test]
        fn near_miss_strings(s in "(at://|did:)?[a-zA-Z0-9:._%~/#+-]{0,40}") {
            all_types(&s)?;
        }

        #[test]
        fn near_miss_datetimes(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})") {
            all_types(&s)?;
        }

        #[test]
        fn near_miss_languages(s in "[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8}){0,6}") {
            all_types(&s)?;
        }
    }

    #[test]
    fn serde_plain_strings() {
        fn check<T>(valid: &str, printed: &str, invalid: &str)
        where
            T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
        {
            let v: T = serde_json::from_value(serde_json::Value::from(valid)).unwrap();
            assert_eq!(
                serde_json::to_value(&v).unwrap(),
                serde_json::Value::from(printed)
            );
            let back: T = serde_json::from_value(serde_json::to_value(&v).unwrap()).unwrap();
            assert_eq!(back, v);
            assert!(serde_json::from_value::<T>(serde_json::Value::from(invalid)).is_err());
            assert!(serde_json::from_value::<T>(serde_json::json!(12)).is_err());
        }
        check::<Did>("did:plc:abc", "did:plc:abc", "did:PLC:abc");
        check::<Handle>("Alice.Test", "alice.test", "alice");
        check::<AtIdentifier>("did:web:a.com", "did:web:a.com", "@alice");
        check::<AtIdentifier>("Alice.Test", "alice.test", "alice_test");
        check::<Nsid>("app.bsky.feed.post", "app.bsky.feed.post", "app.bsky");
        check::<Tid>("3jzfcijpj2z2a", "3jzfcijpj2z2a", "kjzfcijpj2z2a");
        check::<RecordKey>("self", "self", "..");
        check::<AtUri>("at://a.test/b.c.d/e", "at://a.test/b.c.d/e", "at://a.test/");
        check::<Datetime>("2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z", "2024-01-02");
        check::<Language>("pt-BR", "pt-BR", "PT-br");
        check::<Uri>("https://a.test", "https://a.test", "https ://a.test");
    }
}
