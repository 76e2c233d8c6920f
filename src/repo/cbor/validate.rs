//! Data-model shape rules that need no Lexicon: `$type`, blobs, map keys.

use std::collections::BTreeMap;

use ipld_core::ipld::Ipld;

use super::{Error, Invalid, MAX_KEY_LEN, check_value};

/// Checks that a value is valid atproto data: the encoding-independent rules of
/// [`super::encode`] plus `$type` (a non-empty string when present), blob maps
/// (`$type: "blob"` with exactly `ref` (a link), `mimeType` (non-empty string) and
/// `size` (non-negative integer)), and map keys (non-empty, at most [`MAX_KEY_LEN`] bytes, never
/// `$link` or `$bytes`, which atproto JSON reserves for links and bytes).
pub fn validate(value: &Ipld) -> Result<(), Error> {
    check_value(value, 0)?;
    check_shape(value)
}

/// [`validate`], plus what makes a value a record: a map with a `$type`.
pub fn validate_record(value: &Ipld) -> Result<(), Error> {
    let Ipld::Map(map) = value else {
        return Err(Error::invalid(Invalid::NotAnObject));
    };
    if !map.contains_key("$type") {
        return Err(Error::invalid(Invalid::RecordMissingType));
    }
    validate(value)
}

/// Recursion is bounded: `check_value` has already limited the depth.
fn check_shape(value: &Ipld) -> Result<(), Error> {
    match value {
        Ipld::List(items) => {
            for (index, item) in items.iter().enumerate() {
                check_shape(item).map_err(|e| e.within(&index.to_string()))?;
            }
            Ok(())
        }
        Ipld::Map(map) => {
            for key in map.keys() {
                check_key(key).map_err(|e| e.within(key))?;
            }
            check_type(map)?;
            for (key, item) in map {
                check_shape(item).map_err(|e| e.within(key))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    let reason = if key.is_empty() {
        Invalid::EmptyKey
    } else if key.len() > MAX_KEY_LEN {
        Invalid::KeyTooLong
    } else if key == "$link" {
        Invalid::ReservedKey("$link")
    } else if key == "$bytes" {
        Invalid::ReservedKey("$bytes")
    } else {
        return Ok(());
    };
    Err(Error::invalid(reason))
}

fn check_type(map: &BTreeMap<String, Ipld>) -> Result<(), Error> {
    match map.get("$type") {
        None => Ok(()),
        Some(Ipld::String(t)) if t == "blob" => check_blob(map),
        Some(Ipld::String(t)) if t.is_empty() => {
            Err(Error::invalid(Invalid::TypeEmpty).within("$type"))
        }
        Some(Ipld::String(_)) => Ok(()),
        Some(_) => Err(Error::invalid(Invalid::TypeNotString).within("$type")),
    }
}

/// A `$type: "blob"` map. Both reference implementations accept `size: 0` (an empty file), so
/// only negative sizes are refused.
fn check_blob(map: &BTreeMap<String, Ipld>) -> Result<(), Error> {
    let blob = |reason| Err(Error::invalid(Invalid::Blob(reason)));
    match map.get("ref") {
        None => return blob("missing ref"),
        // Blobs written today have raw-codec CIDs; the official valid record-data vectors also
        // carry DAG-CBOR ones, which the reference implementations accept (any atproto CID
        // passed the link check already).
        Some(Ipld::Link(_)) => {}
        Some(_) => return blob("ref must be a link"),
    }
    match map.get("mimeType") {
        None => return blob("missing mimeType"),
        Some(Ipld::String(m)) if !m.is_empty() => {}
        Some(Ipld::String(_)) => return blob("mimeType must not be empty"),
        Some(_) => return blob("mimeType must be a string"),
    }
    match map.get("size") {
        None => return blob("missing size"),
        Some(Ipld::Integer(size)) if *size >= 0 => {}
        Some(Ipld::Integer(_)) => return blob("size must not be negative"),
        Some(_) => return blob("size must be an integer"),
    }
    if map.len() != 4 {
        return blob("only $type, ref, mimeType and size are allowed");
    }
    Ok(())
}
