//! Tests of the Lexicon module, driven by the interop vectors in `fixtures/interop/` and
//! the project's `lexicons/`.

mod bsky;
mod interop;
mod schema;

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

/// atproto JSON to a data-model value through the project's own reader (which accepts every
/// value of the official record-data vectors, as the reference implementations do).
pub(super) fn data_json(json: &Json) -> Ipld {
    crate::repo::cbor::json_to_value(json).expect("valid atproto data model")
}

/// The error, which must exist.
pub(super) fn expect_err(result: Result<(), ValidationError>, what: &str) -> ValidationError {
    match result {
        Ok(()) => panic!("{what}: expected a validation error"),
        Err(e) => e,
    }
}
