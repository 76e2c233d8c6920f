//! Hostile CBOR and property tests.

use super::*;

// ---- hostile CBOR ------------------------------------------------------------------------

#[test]
fn hostile_deep_nesting_is_an_error() {
    for prefix in [&[0x81][..], &[0xa1, 0x61, b'a'], &[0xd8, 0x2a]] {
        let mut bytes = prefix.repeat(100_000);
        bytes.push(0x00);
        assert!(
            matches!(decode(&bytes), Err(Error::Malformed(_))),
            "prefix {prefix:02x?}"
        );
    }
}

#[test]
fn floats_are_rejected_in_every_width() {
    let cases: [&[u8]; 4] = [
        &[0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
        &[0xfa, 0x3f, 0xc0, 0, 0],
        &[0xf9, 0x3e, 0x00],
        &[
            0xa1, 0x61, b'a', 0xfb, 0x40, 0x5e, 0xdd, 0x2f, 0x1a, 0x9f, 0xbe, 0x77,
        ],
    ];
    for bytes in cases {
        assert!(decode(bytes).is_err(), "{bytes:02x?}");
    }
    let (path, reason) = invalid(decode(cases[3]));
    assert_eq!((path.as_str(), reason), ("/a", Invalid::Float));
    // An integer-valued float is still a float in CBOR.
    assert!(decode(&[0xfb, 0x40, 0x5e, 0xc0, 0, 0, 0, 0, 0]).is_err());
}

#[test]
fn non_canonical_encodings_are_rejected() {
    let cases: [(&str, &[u8]); 7] = [
        (
            "keys out of order",
            &[0xa2, 0x61, b'b', 0x01, 0x61, b'a', 0x02],
        ),
        (
            "longer key first",
            &[0xa2, 0x62, b'a', b'a', 0x01, 0x61, b'b', 0x02],
        ),
        ("one-byte integer form for 1", &[0x18, 0x01]),
        ("two-byte integer form for 24", &[0x19, 0x00, 0x18]),
        ("long string length", &[0x78, 0x01, b'a']),
        ("long array length", &[0x98, 0x01, 0x00]),
        ("long map length", &[0xb8, 0x00]),
    ];
    for (name, bytes) in cases {
        assert!(matches!(decode(bytes), Err(Error::NonCanonical)), "{name}");
    }
    // Duplicate keys are refused by the parser already.
    let duplicate = [0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x01];
    assert!(
        matches!(decode(&duplicate), Err(Error::Malformed(m)) if m.contains("Duplicate map key"))
    );
}

#[test]
fn malformed_cbor_is_rejected() {
    let cid: Cid = CBOR_CID.parse().unwrap();
    let mut no_multibase_prefix = vec![0xd8, 0x2a, 0x58, 0x24];
    no_multibase_prefix.extend(cid.to_bytes());
    let mut cidv0 = vec![0xd8, 0x2a, 0x58, 0x23, 0x00, 0x12, 0x20];
    cidv0.extend([9; 32]);
    let malformed: [(&str, &[u8]); 11] = [
        ("empty", &[]),
        ("trailing bytes", &[0x01, 0x02]),
        ("indefinite array", &[0x9f, 0x01, 0xff]),
        ("indefinite string", &[0x7f, 0x61, b'a', 0xff]),
        ("invalid UTF-8", &[0x62, 0xc3, 0x28]),
        ("undefined", &[0xf7]),
        ("other tag", &[0xc1, 0x00]),
        ("integer map key", &[0xa1, 0x01, 0x02]),
        ("CID without 0x00 prefix", &no_multibase_prefix),
        ("truncated CID", &[0xd8, 0x2a, 0x42, 0x00, 0x01]),
        (
            "huge declared length",
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
    ];
    for (name, bytes) in malformed {
        assert!(
            matches!(decode(bytes), Err(Error::Malformed(_))),
            "{name}: {:?}",
            decode(bytes)
        );
    }
    let u64_max = [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(
        invalid(decode(&u64_max)).1,
        Invalid::IntegerOutOfRange("18446744073709551615".into())
    );
    let minus_2_64 = [0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(
        invalid(decode(&minus_2_64)).1,
        Invalid::IntegerOutOfRange("-18446744073709551616".into())
    );
    assert!(matches!(
        invalid(decode(&cidv0)).1,
        Invalid::UnsupportedCid(_)
    ));
}

#[test]
fn every_truncation_of_the_fixtures_is_an_error() {
    let bytes = fixture!("interop/extra/indigo/testing/testdata/feedpost_record.cbor");
    for len in 0..bytes.len() {
        assert!(decode(&bytes[..len]).is_err(), "prefix of {len} bytes");
    }
}

// ---- properties -----------------------------------------------------------------------------

fn arb_cid() -> impl Strategy<Value = Cid> {
    (any::<bool>(), any::<[u8; 32]>())
        .prop_map(|(raw, digest)| sha256_cid(if raw { RAW } else { DAG_CBOR }, digest))
}

fn arb_blob() -> impl Strategy<Value = Ipld> {
    (
        any::<[u8; 32]>(),
        "[a-z]{1,8}/[a-z0-9.+-]{1,12}",
        any::<u32>(),
    )
        .prop_map(|(digest, mime, size)| {
            BlobRef {
                cid: sha256_cid(RAW, digest),
                mime_type: mime,
                size: size.into(),
            }
            .to_value()
        })
}

pub(super) fn arb_value() -> impl Strategy<Value = Ipld> {
    let leaf = prop_oneof![
        Just(Ipld::Null),
        any::<bool>().prop_map(Ipld::Bool),
        any::<i64>().prop_map(|i| Ipld::Integer(i.into())),
        any::<String>().prop_map(Ipld::String),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Ipld::Bytes),
        arb_cid().prop_map(Ipld::Link),
        arb_blob(),
    ];
    leaf.prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Ipld::List),
            prop::collection::btree_map("[a-zA-Z0-9_é☎😀 -]{1,10}", inner, 0..6)
                .prop_map(Ipld::Map),
        ]
    })
}

proptest! {
    #[test]
    fn json_cbor_round_trip(value in arb_value()) {
        let json = value_to_json(&value);
        let text = serde_json::to_string(&json).unwrap();
        let reparsed: Json = serde_json::from_str(&text).unwrap();
        let from_json = json_to_value(&reparsed).unwrap();
        prop_assert_eq!(&from_json, &value);
        let bytes = encode(&from_json).unwrap();
        let decoded = decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &value);
        prop_assert_eq!(value_to_json(&decoded), json);
        prop_assert_eq!(cid_for_value(&decoded).unwrap(), crate::repo::cid::cid_for_cbor(&bytes));
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        // Whatever is accepted is canonical: it re-encodes to exactly the input.
        if let Ok(value) = decode(&bytes) {
            prop_assert_eq!(encode(&value).unwrap(), bytes);
        }
    }

    #[test]
    fn mutated_and_truncated_encodings(
        value in arb_value(),
        index in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let bytes = encode(&value).unwrap();
        let at = index.index(bytes.len());
        prop_assert!(decode(&bytes[..at]).is_err());
        let mut mutated = bytes.clone();
        mutated[at] = byte;
        if let Ok(value) = decode(&mutated) {
            prop_assert_eq!(encode(&value).unwrap(), mutated);
        }
    }
}
