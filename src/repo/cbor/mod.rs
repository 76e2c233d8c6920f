//! The atproto data model over [`Ipld`], and its two encodings.
//!
//! - Binary: canonical DAG-CBOR ([`encode`], strict [`decode`], [`cid_for_value`]).
//! - Text: atproto JSON, where `{"$link": cid}` is a link and `{"$bytes": base64}` is a byte
//!   string ([`json_to_value`], [`value_to_json`]).
//!
//! Two layers of rules are enforced (atproto "Data Model" spec and its data-validation guide):
//! - every value ([`encode`], [`decode`], the JSON readers): no floats, integers in the signed
//!   64-bit range, at most [`MAX_DEPTH`] nested containers, at most [`MAX_CONTAINER_LEN`]
//!   elements per container, links are atproto CIDs (v1, SHA-256, DAG-CBOR or raw);
//! - data-model shape ([`validate`], the JSON readers, [`decode_record`]): `$type` is a
//!   non-empty string, `$type: "blob"` maps are well-formed blobs, map keys are non-empty and
//!   at most [`MAX_KEY_LEN`] bytes, `$link`/`$bytes` never appear as plain map keys.
//!
//! [`decode`] is the generic block decoder (records, MST nodes, commits); it checks the first
//! layer only. [`decode_record`] adds the second.

mod blob;
mod json;
mod transcode;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;

use cid::Cid;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use blob::{BlobRef, find_blobs};
pub use ipld_core::ipld::Ipld;
pub use json::{json_to_object, json_to_record, json_to_value, value_to_json};
pub use transcode::cbor_to_json;
pub use validate::{validate, validate_record};

/// Deepest container nesting accepted (the data-validation guide's `MAX_CBOR_NESTED_LEVELS`).
/// The outermost map or list is level 1.
pub const MAX_DEPTH: usize = 64;
/// Most elements in one map or list (`MAX_CBOR_CONTAINER_LEN`).
pub const MAX_CONTAINER_LEN: usize = 128 * 1024;
/// Longest map key in UTF-8 bytes (`MAX_CBOR_OBJECT_KEY_LEN`).
pub const MAX_KEY_LEN: usize = 8192;

/// Why a value is not valid atproto data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("floating-point numbers are not allowed in atproto data")]
    Float,
    #[error("number {0} is not an integer (floats are not allowed in atproto data)")]
    NotInteger(String),
    #[error("integer {0} is outside the signed 64-bit range")]
    IntegerOutOfRange(String),
    #[error("containers are nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("container has more than {MAX_CONTAINER_LEN} elements")]
    TooManyElements,
    #[error("map keys must not be empty")]
    EmptyKey,
    #[error("map key is longer than {MAX_KEY_LEN} bytes")]
    KeyTooLong,
    #[error("key {0} is reserved for links and bytes and cannot be a plain map key")]
    ReservedKey(&'static str),
    #[error("a $link object must have exactly one key")]
    LinkExtraKeys,
    #[error("$link must be a string")]
    LinkNotString,
    #[error("$link is not a valid CID string: {0}")]
    LinkBadCid(String),
    #[error("CID {0} is not an atproto CID (CIDv1, SHA-256, DAG-CBOR or raw codec)")]
    UnsupportedCid(String),
    #[error("a $bytes object must have exactly one key")]
    BytesExtraKeys,
    #[error("$bytes must be a string")]
    BytesNotString,
    #[error("$bytes is not valid base64: {0}")]
    BytesBadBase64(String),
    #[error("$type must be a string")]
    TypeNotString,
    #[error("$type must not be empty")]
    TypeEmpty,
    #[error("invalid blob: {0}")]
    Blob(&'static str),
    #[error("expected an object at the top level")]
    NotAnObject,
    #[error("a record must have a $type naming its schema")]
    RecordMissingType,
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The value breaks a data-model rule; `path` is a JSON Pointer to the offending part
    /// (empty for the top level).
    #[error("{reason} (at {})", PathDisplay(path))]
    Invalid { path: String, reason: Invalid },
    /// The bytes are not well-formed DAG-CBOR (truncated, trailing bytes, unknown tag,
    /// indefinite length, invalid UTF-8, too deeply nested for the parser, …).
    #[error("malformed DAG-CBOR: {0}")]
    Malformed(String),
    /// Well-formed CBOR, but not the one canonical DAG-CBOR encoding of its value (unsorted or
    /// duplicate map keys, integers or lengths not in their shortest form, …).
    #[error("DAG-CBOR is not in canonical form")]
    NonCanonical,
    /// The encoder failed (out of memory, or a type serde cannot express as DAG-CBOR).
    #[error("DAG-CBOR encoding failed: {0}")]
    Encode(String),
    /// A typed value could not be converted to or from the data model.
    #[error("value does not have the expected shape: {0}")]
    Shape(String),
}

impl Error {
    fn invalid(reason: Invalid) -> Self {
        Error::Invalid {
            path: String::new(),
            reason,
        }
    }

    /// Prefixes the error path with one map key or list index (used while unwinding, so the
    /// happy path never builds paths).
    fn within(self, segment: &str) -> Self {
        match self {
            Error::Invalid { path, reason } => {
                let escaped = segment.replace('~', "~0").replace('/', "~1");
                Error::Invalid {
                    path: format!("/{escaped}{path}"),
                    reason,
                }
            }
            other => other,
        }
    }

    /// The data-model rule that was broken, if that is the kind of error.
    pub fn reason(&self) -> Option<&Invalid> {
        match self {
            Error::Invalid { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

struct PathDisplay<'a>(&'a str);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("top level")
        } else {
            f.write_str(self.0)
        }
    }
}

/// Whether a link may appear in atproto data.
fn check_cid(cid: &Cid) -> Result<(), Error> {
    if crate::repo::cid::is_atproto_cid(cid) {
        Ok(())
    } else {
        Err(Error::invalid(Invalid::UnsupportedCid(cid.to_string())))
    }
}

/// The rules every value must follow, whatever its encoding (see the module docs).
fn check_value(value: &Ipld, depth: usize) -> Result<(), Error> {
    match value {
        Ipld::Null | Ipld::Bool(_) | Ipld::String(_) | Ipld::Bytes(_) => Ok(()),
        Ipld::Float(_) => Err(Error::invalid(Invalid::Float)),
        Ipld::Integer(i) => {
            if i64::try_from(*i).is_ok() {
                Ok(())
            } else {
                Err(Error::invalid(Invalid::IntegerOutOfRange(i.to_string())))
            }
        }
        Ipld::Link(cid) => check_cid(cid),
        Ipld::List(items) => {
            enter_container(depth, items.len())?;
            for (index, item) in items.iter().enumerate() {
                check_value(item, depth + 1).map_err(|e| e.within(&index.to_string()))?;
            }
            Ok(())
        }
        Ipld::Map(map) => {
            enter_container(depth, map.len())?;
            for (key, item) in map {
                check_value(item, depth + 1).map_err(|e| e.within(key))?;
            }
            Ok(())
        }
    }
}

/// Checks entering a container at nesting `depth` (0 = top level) with `len` elements.
fn enter_container(depth: usize, len: usize) -> Result<(), Error> {
    if depth >= MAX_DEPTH {
        return Err(Error::invalid(Invalid::TooDeep));
    }
    if len > MAX_CONTAINER_LEN {
        return Err(Error::invalid(Invalid::TooManyElements));
    }
    Ok(())
}

/// Encodes a value as canonical DAG-CBOR (map keys sorted by length, then bytewise; shortest
/// integer and length forms). Values that break the data-model rules are refused, so every
/// output decodes again with [`decode`].
pub fn encode(value: &Ipld) -> Result<Vec<u8>, Error> {
    check_value(value, 0)?;
    serde_ipld_dagcbor::to_vec(value).map_err(|e| Error::Encode(e.to_string()))
}

/// Decodes one DAG-CBOR value, strictly: the whole input must be exactly one value, in
/// canonical form, with no floats, integers in the signed 64-bit range, atproto CIDs only, and
/// at most [`MAX_DEPTH`] nested containers. Never panics on hostile input.
pub fn decode(bytes: &[u8]) -> Result<Ipld, Error> {
    // The parser caps recursion itself (cbor4ii's reader allows 256 nested steps), so
    // hostile nesting ends in an error before the stack is at risk.
    let value: Ipld =
        serde_ipld_dagcbor::from_slice(bytes).map_err(|e| Error::Malformed(e.to_string()))?;
    check_value(&value, 0)?;
    // The decoder tolerates non-canonical input (key order, duplicate keys, long integer
    // forms); the encoder writes the one canonical form, so comparing catches all of them.
    let canonical = serde_ipld_dagcbor::to_vec(&value).map_err(|e| Error::Encode(e.to_string()))?;
    if canonical != bytes {
        return Err(Error::NonCanonical);
    }
    Ok(value)
}

/// Decodes a record block: [`decode`], then the data-model shape rules and the record rules of
/// [`validate_record`].
#[cfg(test)]
pub(crate) fn decode_record(bytes: &[u8]) -> Result<Ipld, Error> {
    let value = decode(bytes)?;
    validate_record(&value)?;
    Ok(value)
}

/// The CID (v1, DAG-CBOR, SHA-256) of a value's canonical encoding.
pub fn cid_for_value(value: &Ipld) -> Result<Cid, Error> {
    Ok(crate::repo::cid::cid_for_cbor(&encode(value)?))
}

/// Encodes a typed value (commit, MST node, …) as canonical DAG-CBOR, with the same checks as
/// [`encode`]. Use `serde_bytes` for byte fields and `Cid` for links.
pub fn encode_serde<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    let ipld = ipld_core::serde::to_ipld(value).map_err(|e| Error::Shape(e.to_string()))?;
    encode(&ipld)
}

/// Decodes DAG-CBOR strictly (as [`decode`]) into a typed value.
pub fn decode_serde<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let ipld = decode(bytes)?;
    ipld_core::serde::from_ipld(ipld).map_err(|e| Error::Shape(e.to_string()))
}
