//! `fixtures/interop/lexicon/`: the record-data vectors against the interop catalog.

use super::*;
use crate::lexicon::ValidationErrorKind;
use crate::syntax::Nsid;

fn record_nsid() -> Nsid {
    "example.lexicon.record".parse().unwrap()
}

#[test]
fn record_data_valid() {
    let catalog = interop_catalog();
    let cases = fixture_json("interop/lexicon/record-data-valid.json");
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 3);
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["minimal", "full", "unknown as a type"]);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let value = data_json(&case["data"]);
        assert_eq!(
            catalog.validate_record(&record_nsid(), &value),
            Ok(()),
            "{name}"
        );
        let rkey = case["rkey"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            catalog.validate_record_key(&record_nsid(), &rkey),
            Ok(()),
            "{name}"
        );
    }
}

/// Why each invalid case must fail: `(name, path, message)`. A message ending in `(` is a
/// prefix (the rest is the syntax module's own explanation).
const INVALID: [(&str, &str, &str); 50] = [
    (
        "missing required field",
        "Record",
        "must have the property \"integer\"",
    ),
    (
        "invalid boolean field",
        "Record/boolean",
        "must be a boolean",
    ),
    (
        "invalid integer field",
        "Record/integer",
        "must be an integer",
    ),
    (
        "invalid non-nullable string field",
        "Record/string",
        "must not be null",
    ),
    ("invalid string field", "Record/string", "must be a string"),
    ("invalid bytes field", "Record/bytes", "must be bytes"),
    (
        "invalid bytes: empty object",
        "Record/bytes",
        "must be bytes",
    ),
    ("invalid bytes: wrong type", "Record/bytes", "must be bytes"),
    (
        "invalid cid-link field",
        "Record/cid-link",
        "must be a CID link",
    ),
    (
        "invalid blob field",
        "Record/blob",
        "must be a blob reference",
    ),
    (
        "invalid blob: wrong type",
        "Record/blob",
        "must be a blob reference",
    ),
    ("invalid array", "Record/array", "must be an array"),
    (
        "invalid array element",
        "Record/array/0",
        "must be an integer",
    ),
    (
        "object wrong data type",
        "Record/object",
        "must be an object",
    ),
    (
        "object nested wrong data type",
        "Record/object/a",
        "must be an integer",
    ),
    ("invalid token ref type", "Record/ref", "must be an object"),
    ("invalid ref value", "Record/ref", "must be an object"),
    (
        "invalid string format handle",
        "Record/formats/handle",
        "must be a valid handle (",
    ),
    (
        "invalid string format did",
        "Record/formats/did",
        "must be a valid did (",
    ),
    (
        "invalid string format atidentifier",
        "Record/formats/atidentifier",
        "must be a valid at-identifier (",
    ),
    (
        "invalid string format nsid",
        "Record/formats/nsid",
        "must be a valid nsid (",
    ),
    (
        "invalid string format aturi",
        "Record/formats/aturi",
        "must be a valid at-uri (",
    ),
    (
        "invalid string format cid",
        "Record/formats/cid",
        "must be a valid cid (",
    ),
    (
        "invalid string format datetime",
        "Record/formats/datetime",
        "must be a valid datetime (",
    ),
    (
        "invalid string format language",
        "Record/formats/language",
        "must be a valid language (",
    ),
    (
        "invalid string format uri",
        "Record/formats/uri",
        "must be a valid uri (",
    ),
    (
        "invalid string format tid",
        "Record/formats/tid",
        "must be a valid tid (",
    ),
    (
        "invalid string format recordkey",
        "Record/formats/recordkey",
        "must be a valid record-key (",
    ),
    ("wrong const value", "Record/constInteger", "must be 42"),
    (
        "integer not in enum",
        "Record/enumInteger",
        "must be one of (4|9|16|25)",
    ),
    (
        "out of integer range",
        "Record/rangeInteger",
        "can not be greater than 20",
    ),
    (
        "string too short",
        "Record/lenString",
        "must not be shorter than 10 bytes (UTF-8)",
    ),
    (
        "string too long",
        "Record/lenString",
        "must not be longer than 20 bytes (UTF-8)",
    ),
    (
        "string too short (graphemes)",
        "Record/graphemeString",
        "must not be shorter than 10 graphemes",
    ),
    (
        "string too long (graphemes)",
        "Record/graphemeString",
        "must not be longer than 20 graphemes",
    ),
    (
        "out of enum string",
        "Record/enumString",
        "must be one of (fish|tree|rock)",
    ),
    (
        "bytes too short",
        "Record/sizeBytes",
        "must not be smaller than 10 bytes",
    ),
    (
        "bytes too long",
        "Record/sizeBytes",
        "must not be larger than 20 bytes",
    ),
    (
        "array too short",
        "Record/lenArray",
        "must not have fewer than 2 elements",
    ),
    (
        "array too long",
        "Record/lenArray",
        "must not have more than 5 elements",
    ),
    (
        "blob too large",
        "Record/sizeBlob",
        "blob is 12345 bytes, larger than the maximum of 20",
    ),
    (
        "blob wrong type",
        "Record/acceptBlob",
        "blob MIME type \"text/plain\" is not accepted (accepts image/*)",
    ),
    (
        "open union wrong data type",
        "Record/union",
        "must be an object which includes the \"$type\" property",
    ),
    (
        "open union missing $type",
        "Record/union",
        "must be an object which includes the \"$type\" property (union member)",
    ),
    (
        "out of closed union",
        "Record/closedUnion/$type",
        "must be one of example.lexicon.record#demoObject (closed union), got \"example.unknown-lexicon.blah\"",
    ),
    (
        "union inner invalid",
        "Record/closedUnion/$type",
        "must be one of example.lexicon.record#demoObject (closed union), got \"example.lexicon.record#demoObjectTwo\"",
    ),
    (
        "union inner invalid",
        "Record/union/a",
        "must be an integer",
    ),
    (
        "unknown wrong type (bool)",
        "Record/unknown",
        "must be an object",
    ),
    (
        "unknown wrong type (bytes)",
        "Record/unknown",
        "must be an object, not bytes",
    ),
    (
        "unknown wrong type (blob)",
        "Record/unknown",
        "must be an object, not a blob",
    ),
];

fn assert_reason(e: &ValidationError, path: &str, message: &str, name: &str) {
    assert_eq!(e.kind(), ValidationErrorKind::Invalid, "{name}: {e}");
    assert_eq!(e.path(), path, "{name}: {e}");
    if message.ends_with('(') {
        assert!(e.message().starts_with(message), "{name}: {e}");
    } else {
        assert_eq!(e.message(), message, "{name}: {e}");
    }
}

#[test]
fn record_data_invalid_each_fails_for_its_reason() {
    let catalog = interop_catalog();
    let cases = fixture_json("interop/lexicon/record-data-invalid.json");
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), INVALID.len());
    for (case, (name, path, message)) in cases.iter().zip(INVALID) {
        assert_eq!(case["name"], name);
        assert_eq!(case["rkey"], "demo", "{name}");
        let mut value = data_json(&case["data"]);
        let e = expect_err(catalog.validate_record(&record_nsid(), &value), name);
        let Ipld::Map(map) = &mut value else {
            panic!("{name}: not an object");
        };
        if name != "missing required field" && !map.contains_key("integer") {
            // A few cases also lack the required `integer`, which fails first; with it
            // added they must still fail, for the reason they test.
            assert_reason(&e, "Record", "must have the property \"integer\"", name);
            map.insert("integer".into(), Ipld::Integer(1));
            let e = expect_err(catalog.validate_record(&record_nsid(), &value), name);
            assert_reason(&e, path, message, name);
        } else {
            assert_reason(&e, path, message, name);
        }
    }
}

/// Every valid record-data vector reads through the production data-model reader
/// (`json_to_record`) and validates.
#[test]
fn record_data_through_the_data_model_reader() {
    let valid = fixture_json("interop/lexicon/record-data-valid.json");
    let cases = valid.as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let value = crate::repo::cbor::json_to_record(&case["data"]).unwrap();
        assert_eq!(
            interop_catalog().validate_record(&record_nsid(), &value),
            Ok(()),
            "{}",
            case["name"]
        );
    }
}

#[test]
fn record_key_types() {
    let catalog = interop_catalog();
    let demo = "demo".parse().unwrap();
    assert_eq!(catalog.validate_record_key(&record_nsid(), &demo), Ok(()));
    let e = catalog
        .validate_record_key(&record_nsid(), &"self".parse().unwrap())
        .unwrap_err();
    assert_eq!(e.path(), "RecordKey");
    assert_eq!(
        e.message(),
        "record key \"self\" does not match the key type \"literal:demo\" of example.lexicon.record"
    );
}

#[test]
fn record_type_must_match_collection() {
    let catalog = interop_catalog();
    let with_type = |t: Json| data_json(&serde_json::json!({"$type": t, "integer": 1}));
    let e = catalog
        .validate_record(
            &record_nsid(),
            &with_type("example.lexicon.record#main".into()),
        )
        .unwrap_err();
    assert_eq!(e.path(), "Record/$type");
    assert_eq!(
        e.message(),
        "must be \"example.lexicon.record\": a $type never ends in #main, got \"example.lexicon.record#main\""
    );
    let e = catalog
        .validate_record(&record_nsid(), &with_type("example.lexicon.other".into()))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Record/$type: must be \"example.lexicon.record\", got \"example.lexicon.other\""
    );
    let e = catalog
        .validate_record(
            &record_nsid(),
            &Ipld::Map([("$type".to_owned(), Ipld::Integer(7))].into()),
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "Record/$type: must be a string");
    let no_type = data_json(&serde_json::json!({"integer": 1}));
    let e = catalog
        .validate_record(&record_nsid(), &no_type)
        .unwrap_err();
    assert_eq!(e.to_string(), "Record: must have a $type");
    let e = catalog
        .validate_record(&record_nsid(), &Ipld::List(vec![]))
        .unwrap_err();
    assert_eq!(e.to_string(), "Record: must be an object");
}

#[test]
fn unknown_collection_and_non_record() {
    let catalog = interop_catalog();
    let value = data_json(&serde_json::json!({"$type": "example.lexicon.nope", "integer": 1}));
    let e = catalog
        .validate_record(&"example.lexicon.nope".parse().unwrap(), &value)
        .unwrap_err();
    assert_eq!(e.kind(), ValidationErrorKind::UnknownSchema);
    assert_eq!(
        e.to_string(),
        "Record: no lexicon for example.lexicon.nope in the catalog"
    );
    let e = catalog
        .validate_record(&"example.lexicon.query".parse().unwrap(), &value)
        .unwrap_err();
    assert_eq!(e.kind(), ValidationErrorKind::Invalid);
    assert_eq!(
        e.to_string(),
        "Record: example.lexicon.query is a query definition, not a record"
    );
}

#[test]
fn query_params() {
    let catalog = interop_catalog();
    let query: Nsid = "example.lexicon.query".parse().unwrap();
    let values = catalog
        .validate_params(
            &query,
            &[
                ("stringField", "hello"),
                ("boolean", "true"),
                ("integer", "-12"),
                ("handle", "alice.test"),
                ("array", "1"),
                ("array", "2"),
                ("other", "ignored"),
            ],
        )
        .unwrap();
    let expected: ParamValuesLit = vec![
        (
            "array",
            Ipld::List(vec![Ipld::Integer(1), Ipld::Integer(2)]),
        ),
        ("boolean", Ipld::Bool(true)),
        ("handle", Ipld::String("alice.test".into())),
        ("integer", Ipld::Integer(-12)),
        ("stringField", Ipld::String("hello".into())),
    ];
    let got: Vec<(&str, Ipld)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    assert_eq!(got, expected);

    let err = |params: &[(&str, &str)]| {
        catalog
            .validate_params(&query, params)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(err(&[]), "Params: must have the property \"stringField\"");
    assert_eq!(
        err(&[("stringField", "a"), ("boolean", "yes")]),
        "Params/boolean: must be a boolean (true or false)"
    );
    assert_eq!(
        err(&[("stringField", "a"), ("integer", "1.5")]),
        "Params/integer: must be an integer"
    );
    assert_eq!(
        err(&[("stringField", "a"), ("integer", "99999999999999999999")]),
        "Params/integer: must be an integer in the 64-bit range"
    );
    assert_eq!(
        err(&[("stringField", "a"), ("stringField", "b")]),
        "Params/stringField: must be given only once"
    );
    assert_eq!(
        err(&[("stringField", "a"), ("array", "x")]),
        "Params/array: must be an integer"
    );
    assert!(
        err(&[("stringField", "a"), ("handle", "nope")])
            .starts_with("Params/handle: must be a valid handle (")
    );

    // A method without parameters takes none; a record is no method.
    let procedure: Nsid = "example.lexicon.procedure".parse().unwrap();
    assert_eq!(
        catalog.validate_params(&procedure, &[("x", "y")]).unwrap(),
        Default::default()
    );
    let e = catalog
        .validate_params(&record_nsid(), &[("x", "y")])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Params: example.lexicon.record is a record definition, not an XRPC method"
    );
}

type ParamValuesLit = Vec<(&'static str, Ipld)>;

#[test]
fn procedure_input_and_output() {
    let mut catalog = interop_catalog();
    let proc: Nsid = "example.lexicon.procedure".parse().unwrap();
    // The input refers to app.bsky.actor.defs#preferences, which this catalog lacks.
    let input = data_json(&serde_json::json!({"preferences": []}));
    let e = catalog.validate_input(&proc, &input).unwrap_err();
    assert_eq!(e.kind(), ValidationErrorKind::BadSchema);
    assert_eq!(
        e.to_string(),
        "Input/preferences: reference \"app.bsky.actor.defs#preferences\" does not resolve"
    );
    assert!(catalog.check_refs().is_err());
    let missing = data_json(&serde_json::json!({}));
    assert_eq!(
        catalog
            .validate_input(&proc, &missing)
            .unwrap_err()
            .to_string(),
        "Input: must have the property \"preferences\""
    );
    assert_eq!(
        catalog
            .validate_input(&proc, &Ipld::Integer(1))
            .unwrap_err()
            .to_string(),
        "Input: must be an object"
    );

    catalog
        .add_json(r#"{"lexicon": 1, "id": "app.bsky.actor.defs", "defs": {"preferences": {"type": "array", "items": {"type": "union", "refs": []}}}}"#)
        .unwrap();
    catalog.check_refs().unwrap();
    assert_eq!(catalog.validate_input(&proc, &input), Ok(()));
    let bad = data_json(&serde_json::json!({"preferences": [{"a": 1}]}));
    assert_eq!(
        catalog.validate_input(&proc, &bad).unwrap_err().to_string(),
        "Input/preferences/0: must be an object which includes the \"$type\" property (union member)"
    );

    let output = data_json(
        &serde_json::json!({"array": [1, 2], "object": {"a": 1}, "unknown": {"x": true}}),
    );
    assert_eq!(catalog.validate_output(&proc, &output), Ok(()));
    let output = data_json(&serde_json::json!({"object": {"a": "one"}}));
    assert_eq!(
        catalog
            .validate_output(&proc, &output)
            .unwrap_err()
            .to_string(),
        "Output/object/a: must be an integer"
    );
    let query: Nsid = "example.lexicon.query".parse().unwrap();
    assert_eq!(
        catalog.validate_output(&query, &data_json(&serde_json::json!({"a": 1}))),
        Ok(())
    );
    assert_eq!(
        catalog
            .validate_input(&query, &input)
            .unwrap_err()
            .to_string(),
        "Input: example.lexicon.query is a query definition, not a procedure"
    );
}
