//! atproto JSON ⇄ data model.

use std::collections::BTreeMap;

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use cid::Cid;
use ipld_core::ipld::Ipld;
use serde_json::{Map, Number, Value as Json};

use super::validate::{validate, validate_record};
use super::{Error, Invalid, check_cid, enter_container};

/// Standard alphabet, `=` padding optional (the spec makes it optional). Non-zero trailing bits
/// are tolerated, as both reference implementations do and as the official valid record-data
/// vectors require (`"123"`); writing always produces the canonical form.
const BASE64_READ: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Reads atproto JSON as a data-model value: `{"$link": cid}` (exactly one key, a canonical
/// base32 CIDv1 string of an atproto CID) becomes a link, `{"$bytes": base64}` (exactly one
/// key) becomes bytes, integer-valued numbers (`123` or `123.0`) become integers, and other
/// numbers are refused. The result then passes [`validate`].
pub fn json_to_value(json: &Json) -> Result<Ipld, Error> {
    let value = convert(json, 0)?;
    validate(&value)?;
    Ok(value)
}

/// [`json_to_value`] for an object at the top level (as the interop validity vectors and the
/// reference implementations read generic data).
pub fn json_to_object(json: &Json) -> Result<Ipld, Error> {
    let value = convert(json, 0)?;
    if !matches!(value, Ipld::Map(_)) {
        return Err(Error::invalid(Invalid::NotAnObject));
    }
    validate(&value)?;
    Ok(value)
}

/// [`json_to_object`] for a record: the object must also have a `$type`.
pub fn json_to_record(json: &Json) -> Result<Ipld, Error> {
    let value = convert(json, 0)?;
    validate_record(&value)?;
    Ok(value)
}

/// Writes a value as atproto JSON: links as `{"$link": cid}`, bytes as `{"$bytes": base64}`
/// (standard alphabet, no padding). The inverse of [`json_to_value`] for valid values. Values
/// that break the data-model rules still give some JSON: an integer beyond 64 bits becomes a
/// decimal string, a float a JSON number (or `null` if not finite).
pub fn value_to_json(value: &Ipld) -> Json {
    match value {
        Ipld::Null => Json::Null,
        Ipld::Bool(b) => Json::Bool(*b),
        Ipld::Integer(i) => {
            if let Ok(small) = i64::try_from(*i) {
                Json::Number(small.into())
            } else if let Ok(big) = u64::try_from(*i) {
                Json::Number(big.into())
            } else {
                Json::String(i.to_string())
            }
        }
        Ipld::Float(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Ipld::String(s) => Json::String(s.clone()),
        Ipld::Bytes(bytes) => single("$bytes", STANDARD_NO_PAD.encode(bytes)),
        Ipld::Link(cid) => single("$link", cid.to_string()),
        Ipld::List(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Ipld::Map(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), value_to_json(v)))
                .collect(),
        ),
    }
}

fn single(key: &str, value: String) -> Json {
    let mut map = Map::with_capacity(1);
    map.insert(key.to_owned(), Json::String(value));
    Json::Object(map)
}

/// `depth` is the number of containers around `json`; checked before descending so a hostile
/// `serde_json::Value` cannot exhaust the stack.
fn convert(json: &Json, depth: usize) -> Result<Ipld, Error> {
    Ok(match json {
        Json::Null => Ipld::Null,
        Json::Bool(b) => Ipld::Bool(*b),
        Json::Number(n) => Ipld::Integer(number(n)?.into()),
        Json::String(s) => Ipld::String(s.clone()),
        Json::Array(items) => {
            enter_container(depth, items.len())?;
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                out.push(convert(item, depth + 1).map_err(|e| e.within(&index.to_string()))?);
            }
            Ipld::List(out)
        }
        Json::Object(object) => {
            if let Some(link) = object.get("$link") {
                return parse_link(object, link);
            }
            if let Some(bytes) = object.get("$bytes") {
                return parse_bytes(object, bytes);
            }
            enter_container(depth, object.len())?;
            let mut out = BTreeMap::new();
            for (key, item) in object {
                out.insert(
                    key.clone(),
                    convert(item, depth + 1).map_err(|e| e.within(key))?,
                );
            }
            Ipld::Map(out)
        }
    })
}

/// Integers, including integer-valued floats such as `123.0` (the interop vectors accept
/// them); anything with a fractional part is a float and refused.
fn number(n: &Number) -> Result<i64, Error> {
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    if n.is_u64() {
        return Err(Error::invalid(Invalid::IntegerOutOfRange(n.to_string())));
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if !f.is_finite() || f.fract() != 0.0 {
        return Err(Error::invalid(Invalid::NotInteger(n.to_string())));
    }
    // 2^63 is exactly representable; every integer-valued f64 in [-2^63, 2^63) fits an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(-LIMIT..LIMIT).contains(&f) {
        return Err(Error::invalid(Invalid::IntegerOutOfRange(n.to_string())));
    }
    Ok(f as i64)
}

fn parse_link(object: &Map<String, Json>, link: &Json) -> Result<Ipld, Error> {
    let within = |reason| Err(Error::invalid(reason).within("$link"));
    if object.len() != 1 {
        return Err(Error::invalid(Invalid::LinkExtraKeys));
    }
    let Json::String(text) = link else {
        return within(Invalid::LinkNotString);
    };
    let cid = match Cid::try_from(text.as_str()) {
        Ok(cid) => cid,
        Err(e) => return within(Invalid::LinkBadCid(e.to_string())),
    };
    check_cid(&cid).map_err(|e| e.within("$link"))?;
    // Only the canonical spelling (multibase base32, lower case) of a CIDv1 is accepted.
    if cid.to_string() != *text {
        return within(Invalid::LinkBadCid("not in canonical base32 form".into()));
    }
    Ok(Ipld::Link(cid))
}

fn parse_bytes(object: &Map<String, Json>, bytes: &Json) -> Result<Ipld, Error> {
    if object.len() != 1 {
        return Err(Error::invalid(Invalid::BytesExtraKeys));
    }
    let Json::String(text) = bytes else {
        return Err(Error::invalid(Invalid::BytesNotString).within("$bytes"));
    };
    BASE64_READ
        .decode(text)
        .map(Ipld::Bytes)
        .map_err(|e| Error::invalid(Invalid::BytesBadBase64(e.to_string())).within("$bytes"))
}
