//! JSON rules, blobs and typed values.

use super::*;

// ---- JSON rules --------------------------------------------------------------------------

#[test]
fn bytes_accept_padded_and_unpadded_base64() {
    let padded = json!({"$bytes": "AQI="});
    let unpadded = json!({"$bytes": "AQI"});
    assert_eq!(json_to_value(&padded).unwrap(), Ipld::Bytes(vec![1, 2]));
    assert_eq!(json_to_value(&unpadded).unwrap(), Ipld::Bytes(vec![1, 2]));
    assert_eq!(value_to_json(&Ipld::Bytes(vec![1, 2])), unpadded);
    assert_eq!(
        json_to_value(&json!({"$bytes": ""})).unwrap(),
        Ipld::Bytes(vec![])
    );
    // Non-zero trailing bits are tolerated (the official valid record-data vectors use "123").
    assert_eq!(
        json_to_value(&json!({"$bytes": "AQJ"})).unwrap(),
        Ipld::Bytes(vec![1, 2])
    );
    for bad in ["AQ-_", "A", "AQI==", "AQ I"] {
        assert!(
            matches!(
                invalid(json_to_value(&json!({"$bytes": bad}))).1,
                Invalid::BytesBadBase64(_)
            ),
            "{bad}"
        );
    }
}

#[test]
fn links_must_be_canonical_atproto_cids() {
    let cid: Cid = RAW_CID.parse().unwrap();
    assert_eq!(
        json_to_value(&json!({"$link": RAW_CID})).unwrap(),
        Ipld::Link(cid)
    );
    assert_eq!(value_to_json(&Ipld::Link(cid)), json!({"$link": RAW_CID}));
    let upper = format!("B{}", RAW_CID[1..].to_uppercase());
    let v0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn";
    let sha512 = Cid::new_v1(DAG_CBOR, Multihash::<64>::wrap(0x13, &[7; 64]).unwrap());
    for bad in [upper.as_str(), v0, ""] {
        let (path, reason) = invalid(json_to_value(&json!({"x": {"$link": bad}})));
        assert_eq!(path, "/x/$link", "{bad}");
        assert!(
            matches!(reason, Invalid::LinkBadCid(_) | Invalid::UnsupportedCid(_)),
            "{bad}: {reason:?}"
        );
    }
    assert!(matches!(
        invalid(json_to_value(&json!({"$link": sha512.to_string()}))).1,
        Invalid::UnsupportedCid(_)
    ));
}

#[test]
fn numbers() {
    assert_eq!(json_to_value(&json!(-7)).unwrap(), Ipld::Integer(-7));
    assert_eq!(json_to_value(&json!(-0.0)).unwrap(), Ipld::Integer(0));
    assert_eq!(json_to_value(&json!(1e3)).unwrap(), Ipld::Integer(1000));
    let max: Json = serde_json::from_str("9223372036854775807").unwrap();
    assert_eq!(json_to_value(&max).unwrap(), Ipld::Integer(i64::MAX.into()));
    for (text, reason) in [
        (
            "9223372036854775808",
            Invalid::IntegerOutOfRange("9223372036854775808".into()),
        ),
        ("1e300", Invalid::IntegerOutOfRange("1e+300".into())),
        ("0.5", Invalid::NotInteger("0.5".into())),
    ] {
        let json: Json = serde_json::from_str(text).unwrap();
        assert_eq!(invalid(json_to_value(&json)).1, reason, "{text}");
    }
}

#[test]
fn type_and_blob_rules() {
    let blob = |ref_: Json, mime: Json, size: Json| json!({"$type": "blob", "ref": ref_, "mimeType": mime, "size": size});
    let good = blob(json!({"$link": RAW_CID}), json!("image/png"), json!(0));
    assert!(json_to_value(&good).is_ok());
    // A DAG-CBOR blob ref is accepted, as the official valid record-data vectors require.
    assert!(
        json_to_value(&blob(
            json!({"$link": CBOR_CID}),
            json!("image/png"),
            json!(1)
        ))
        .is_ok()
    );
    let cases = [
        (
            blob(json!(RAW_CID), json!("image/png"), json!(1)),
            "ref must be a link",
        ),
        (
            blob(json!({"$link": RAW_CID}), json!(""), json!(1)),
            "mimeType must not be empty",
        ),
        (
            blob(json!({"$link": RAW_CID}), json!(5), json!(1)),
            "mimeType must be a string",
        ),
        (
            blob(json!({"$link": RAW_CID}), json!("a/b"), json!(-1)),
            "size must not be negative",
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(
            invalid(json_to_value(&value)).1,
            Invalid::Blob(expected),
            "{value}"
        );
    }
    let mut extra = good.clone();
    extra["alt"] = json!("x");
    assert_eq!(
        invalid(json_to_value(&extra)).1,
        Invalid::Blob("only $type, ref, mimeType and size are allowed")
    );
    let mut no_size = good;
    no_size.as_object_mut().unwrap().remove("size");
    assert_eq!(
        invalid(json_to_value(&no_size)).1,
        Invalid::Blob("missing size")
    );

    assert!(json_to_value(&json!({"$type": "com.example.x", "$unknown": 1})).is_ok());
    assert_eq!(invalid(json_to_value(&json!({"": 1}))).1, Invalid::EmptyKey);
    let long_key = "k".repeat(MAX_KEY_LEN + 1);
    assert_eq!(
        invalid(json_to_value(&json!({long_key: 1}))).1,
        Invalid::KeyTooLong
    );
    // Data decoded from CBOR may not use the JSON-reserved keys as plain keys.
    let reserved = map(&[("$link", text(CBOR_CID))]);
    assert_eq!(
        validate(&reserved).unwrap_err().reason(),
        Some(&Invalid::ReservedKey("$link"))
    );
    assert!(
        decode_record(&encode(&map(&[("$type", text("a.b.c")), ("$bytes", text(""))])).unwrap())
            .is_err()
    );
}

#[test]
fn records_need_an_object_with_a_type() {
    let record = json!({"$type": "app.bsky.feed.post", "text": "hi"});
    assert_eq!(
        json_to_record(&record).unwrap(),
        map(&[("$type", text("app.bsky.feed.post")), ("text", text("hi"))])
    );
    assert_eq!(
        invalid(json_to_record(&json!("blah"))).1,
        Invalid::NotAnObject
    );
    assert_eq!(invalid(json_to_record(&json!([1]))).1, Invalid::NotAnObject);
    assert_eq!(
        invalid(json_to_record(&json!({"$link": CBOR_CID}))).1,
        Invalid::NotAnObject
    );
    assert_eq!(
        invalid(json_to_record(&json!({"text": "hi"}))).1,
        Invalid::RecordMissingType
    );
    assert_eq!(
        invalid(json_to_record(&json!({"$type": ""}))).1,
        Invalid::TypeEmpty
    );
    assert_eq!(json_to_value(&json!("blah")).unwrap(), text("blah"));
    let no_type = encode(&map(&[("text", text("hi"))])).unwrap();
    assert_eq!(
        invalid(decode_record(&no_type)).1,
        Invalid::RecordMissingType
    );
}

// ---- blobs --------------------------------------------------------------------------------

#[test]
fn find_blobs_walks_everything() {
    let a = BlobRef {
        cid: sha256_cid(RAW, [1; 32]),
        mime_type: "image/png".into(),
        size: 10,
    };
    let b = BlobRef {
        cid: sha256_cid(RAW, [2; 32]),
        mime_type: "video/mp4".into(),
        size: 20,
    };
    let legacy_cid = sha256_cid(RAW, [3; 32]);
    let legacy = map(&[
        ("cid", text(&legacy_cid.to_string())),
        ("mimeType", text("image/jpeg")),
    ]);
    let not_a_blob = map(&[
        ("$type", text("blob")),
        ("ref", Ipld::Link(sha256_cid(RAW, [4; 32]))),
        ("mimeType", text("image/png")),
        ("size", Ipld::Integer(-5)),
    ]);
    let value = map(&[
        (
            "a",
            Ipld::List(vec![Ipld::List(vec![map(&[("deep", a.to_value())])])]),
        ),
        (
            "b",
            Ipld::List(vec![b.to_value(), legacy, not_a_blob, a.to_value()]),
        ),
        ("c", text("no blob here")),
    ]);
    assert_eq!(
        find_blobs(&value),
        vec![
            a.clone(),
            b.clone(),
            BlobRef {
                cid: legacy_cid,
                mime_type: "image/jpeg".into(),
                size: 0
            },
            a.clone(),
        ]
    );
    assert_eq!(BlobRef::from_value(&a.to_value()), Some(a));
    assert_eq!(find_blobs(&text("x")), vec![]);
    // Deeper than any decoder accepts: the explicit stack copes.
    let deep = (0..1000).fold(b.to_value(), |inner, _| Ipld::List(vec![inner]));
    assert_eq!(find_blobs(&deep), vec![b]);
}

// ---- typed values ---------------------------------------------------------------------------

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Node {
    l: Option<Cid>,
    e: Vec<Entry>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Entry {
    p: u32,
    #[serde(with = "serde_bytes")]
    k: Vec<u8>,
    v: Cid,
}

#[test]
fn serde_helpers_round_trip_typed_values() {
    let node = Node {
        l: None,
        e: vec![Entry {
            p: 0,
            k: b"app.bsky.feed.post/3jqfcqzm3fo2j".to_vec(),
            v: CBOR_CID.parse().unwrap(),
        }],
    };
    let bytes = encode_serde(&node).unwrap();
    let value = decode(&bytes).unwrap();
    assert_eq!(get(&value, &["l"]), &Ipld::Null);
    assert_eq!(
        get(&value, &["e", "0", "k"]),
        &Ipld::Bytes(b"app.bsky.feed.post/3jqfcqzm3fo2j".to_vec())
    );
    assert_eq!(
        get(&value, &["e", "0", "v"]),
        &Ipld::Link(CBOR_CID.parse().unwrap())
    );
    assert_eq!(decode_serde::<Node>(&bytes).unwrap(), node);
    assert!(matches!(
        decode_serde::<Entry>(&bytes),
        Err(Error::Shape(_))
    ));

    #[derive(Serialize)]
    struct WithFloat {
        x: f64,
    }
    assert_eq!(
        encode_serde(&WithFloat { x: 1.0 }).unwrap_err().reason(),
        Some(&Invalid::Float)
    );
}
