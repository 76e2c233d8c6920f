//! [`cbor_to_json`] against [`decode`] + [`value_to_json`]: the same values accepted, the same
//! JSON written.

use super::hostile::arb_value;
use super::*;

/// What the transcoder writes, parsed, or its error.
fn transcode(bytes: &[u8]) -> Result<Json, Error> {
    let mut out = Vec::new();
    cbor_to_json(bytes, &mut out)?;
    Ok(serde_json::from_slice(&out).expect("the transcoder writes JSON"))
}

/// The transcoder accepts `bytes` exactly when [`decode`] does, and then writes the JSON of
/// the decoded value (objects compare without regard to key order).
fn assert_agrees(bytes: &[u8]) {
    match (decode(bytes), transcode(bytes)) {
        (Ok(value), Ok(json)) => assert_eq!(json, value_to_json(&value), "{bytes:02x?}"),
        (Err(_), Err(_)) => {}
        (decoded, transcoded) => {
            panic!("{bytes:02x?}: decode gave {decoded:?}, the transcoder {transcoded:?}")
        }
    }
}

#[test]
fn interop_fixtures_and_records() {
    let cases = fixture_json(&fixture!("interop/data-model/data-model-fixtures.json"));
    for case in cases.as_array().unwrap() {
        let cbor = STANDARD_NO_PAD
            .decode(case["cbor_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(transcode(&cbor).unwrap(), case["json"]);
    }
    for name in ["feedpost_record.cbor", "post_richtext_link.cbor"] {
        let bytes = std::fs::read(format!(
            "{}/fixtures/interop/extra/indigo/testing/testdata/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert!(transcode(&bytes).is_ok(), "{name}");
        assert_agrees(&bytes);
        for len in 0..bytes.len() {
            assert!(transcode(&bytes[..len]).is_err(), "{name}: prefix of {len}");
        }
    }
}

#[test]
fn keys_come_in_cbor_order_and_strings_are_escaped() {
    let value = map(&[
        ("bb", Ipld::Integer(-1)),
        ("a", text("quote \" backslash \\ newline \n nul \u{0} é ☎")),
        ("c", Ipld::Bytes(vec![0, 1, 2, 250])),
        ("big", Ipld::Integer(i64::MIN.into())),
    ]);
    let mut out = Vec::new();
    cbor_to_json(&encode(&value).unwrap(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"a":"quote \" backslash \\ newline \n nul \u0000 é ☎","c":{"$bytes":"AAEC+g"},"bb":-1,"big":-9223372036854775808}"#
    );
}

#[test]
fn hostile_and_non_canonical_input_is_refused_as_decode_refuses_it() {
    let cid: Cid = CBOR_CID.parse().unwrap();
    let mut no_prefix = vec![0xd8, 0x2a, 0x58, 0x24];
    no_prefix.extend(cid.to_bytes());
    let mut cidv0 = vec![0xd8, 0x2a, 0x58, 0x23, 0x00, 0x12, 0x20];
    cidv0.extend([9; 32]);
    let mut link = vec![0xd8, 0x2a, 0x58, 0x25, 0x00];
    link.extend(cid.to_bytes());
    let mut too_deep = vec![0x81; MAX_DEPTH + 1];
    too_deep.push(0xf6);
    let mut deepest = vec![0x81; MAX_DEPTH];
    deepest.push(0xf6);
    let mut nested_tags = [0xd8, 0x2a].repeat(100_000);
    nested_tags.push(0);
    let cases: Vec<&[u8]> = vec![
        &[],
        &[0x01, 0x02],
        &[0x9f, 0x01, 0xff],
        &[0x7f, 0x61, b'a', 0xff],
        &[0x62, 0xc3, 0x28],
        &[0xf7],
        &[0xf8, 0x20],
        &[0xc1, 0x00],
        &[0xa1, 0x01, 0x02],
        &no_prefix,
        &cidv0,
        &link,
        &[0xd8, 0x2a, 0x42, 0x00, 0x01],
        &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
        &[0xfa, 0x3f, 0xc0, 0, 0],
        &[0xf9, 0x3e, 0x00],
        &[0xa2, 0x61, b'b', 0x01, 0x61, b'a', 0x02],
        &[0xa2, 0x62, b'a', b'a', 0x01, 0x61, b'b', 0x02],
        &[0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x01],
        &[0x18, 0x01],
        &[0x19, 0x00, 0x18],
        &[0x1a, 0x00, 0x00, 0xff, 0xff],
        &[0x1b, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff],
        &[0x78, 0x01, b'a'],
        &[0x98, 0x01, 0x00],
        &[0xb8, 0x00],
        &[0x1c],
        &too_deep,
        &deepest,
        &nested_tags,
    ];
    for bytes in cases {
        assert_agrees(bytes);
    }
    assert!(transcode(&link).is_ok());
    assert!(transcode(&deepest).is_ok());
    assert!(matches!(
        transcode(&too_deep).unwrap_err().reason(),
        Some(Invalid::TooDeep)
    ));
    assert!(matches!(
        transcode(&[0xa1, 0x61, b'a', 0xfb, 0x40, 0x5e, 0xdd, 0x2f, 0x1a, 0x9f, 0xbe, 0x77]),
        Err(Error::Invalid { ref path, reason: Invalid::Float }) if path == "/a"
    ));
}

proptest! {
    #[test]
    fn writes_what_value_to_json_writes(value in arb_value()) {
        let bytes = encode(&value).unwrap();
        prop_assert_eq!(transcode(&bytes).unwrap(), value_to_json(&value));
    }

    #[test]
    fn accepts_what_decode_accepts(
        value in arb_value(),
        index in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        noise in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = encode(&value).unwrap();
        let at = index.index(bytes.len());
        assert_agrees(&bytes[..at]);
        let mut mutated = bytes.clone();
        mutated[at] = byte;
        assert_agrees(&mutated);
        assert_agrees(&noise);
    }
}
