//! Tests of the Lexicon module, driven by the interop vectors in `fixtures/interop/` and
//! the project's `lexicons/`.

mod bsky;
mod interop;
mod schema;

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value as Json;

use super::{Catalog, ValidationError};
use crate::repo::cbor::Ipld;

/// The built-in catalog, loaded once for the property tests.
pub(super) static BUILTIN: std::sync::LazyLock<Catalog> =
    std::sync::LazyLock::new(|| Catalog::builtin().unwrap());

/// The text of `fixtures/<rel>`.
pub(super) fn fixture(rel: &str) -> String {
    let path = format!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/{}"), rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

pub(super) fn fixture_json(rel: &str) -> Json {
    serde_json::from_str(&fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The catalog of `fixtures/interop/lexicon/catalog/` (5 schemas).
pub(super) fn interop_catalog() -> Catalog {
    let mut catalog = Catalog::new();
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/interop/lexicon/catalog"
    );
    assert_eq!(catalog.load_dir(dir).unwrap(), 5);
    catalog
}

/// atproto JSON to a data-model value, as the reference implementations read the interop
/// record-data files. Unlike `crate::repo::cbor::json_to_value` it accepts base64 with
/// non-zero trailing bits (`{"$bytes": "123"}`) and blob `ref`s of any codec, which the
/// `full` valid case uses; those are data-model questions, not Lexicon ones, and this
/// module is tested on its own rules.
pub(super) fn lenient_json(json: &Json) -> Ipld {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    match json {
        Json::Null => Ipld::Null,
        Json::Bool(b) => Ipld::Bool(*b),
        Json::Number(n) => Ipld::Integer(n.as_i64().expect("integer").into()),
        Json::String(s) => Ipld::String(s.clone()),
        Json::Array(items) => Ipld::List(items.iter().map(lenient_json).collect()),
        Json::Object(map) => {
            if let (1, Some(Json::String(link))) = (map.len(), map.get("$link")) {
                return Ipld::Link(link.parse().expect("CID"));
            }
            if let (1, Some(Json::String(b64))) = (map.len(), map.get("$bytes")) {
                return Ipld::Bytes(LENIENT.decode(b64).expect("base64"));
            }
            Ipld::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), lenient_json(v)))
                    .collect::<BTreeMap<_, _>>(),
            )
        }
    }
}

/// The error, which must exist.
pub(super) fn expect_err(result: Result<(), ValidationError>, what: &str) -> ValidationError {
    match result {
        Ok(()) => panic!("{what}: expected a validation error"),
        Err(e) => e,
    }
}
