//! Tests of the data model: interop vectors, known answers, hostile input, round trips.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use cid::Cid;
use cid::multihash::Multihash;
use ipld_core::ipld::Ipld;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::*;
use crate::repo::cid::{DAG_CBOR, RAW, SHA2_256};

macro_rules! fixture {
    ($path:literal) => {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/", $path))
            .expect(concat!("fixture ", $path))
    };
}

fn fixture_json(bytes: &[u8]) -> Json {
    serde_json::from_slice(bytes).expect("fixture is JSON")
}

fn map(entries: &[(&str, Ipld)]) -> Ipld {
    Ipld::Map(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

fn text(s: &str) -> Ipld {
    Ipld::String(s.to_owned())
}

fn get<'a>(value: &'a Ipld, path: &[&str]) -> &'a Ipld {
    path.iter()
        .fold(value, |v, key| match (v, key.parse::<usize>()) {
            (Ipld::List(items), Ok(i)) => &items[i],
            (Ipld::Map(m), _) => m.get(*key).unwrap_or_else(|| panic!("no key {key}")),
            _ => panic!("cannot index {v:?} with {key}"),
        })
}

fn invalid(result: Result<Ipld, Error>) -> (String, Invalid) {
    match result {
        Err(Error::Invalid { path, reason }) => (path, reason),
        other => panic!("expected a data-model error, got {other:?}"),
    }
}

fn sha256_cid(codec: u64, digest: [u8; 32]) -> Cid {
    Cid::new_v1(codec, Multihash::<64>::wrap(SHA2_256, &digest).unwrap())
}

const RAW_CID: &str = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity";
const CBOR_CID: &str = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a";

mod hostile;
mod rules;
mod transcode;

// ---- interop vectors -------------------------------------------------------------------

#[test]
fn data_model_fixtures() {
    let cases = fixture_json(&fixture!("interop/data-model/data-model-fixtures.json"));
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for (i, case) in cases.iter().enumerate() {
        let json = &case["json"];
        let cbor = STANDARD_NO_PAD
            .decode(case["cbor_base64"].as_str().unwrap())
            .unwrap();
        let expected_cid = case["cid"].as_str().unwrap();

        let value = json_to_value(json).unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(encode(&value).unwrap(), cbor, "case {i}: DAG-CBOR bytes");
        assert_eq!(
            cid_for_value(&value).unwrap().to_string(),
            expected_cid,
            "case {i}: CID"
        );

        let decoded = decode(&cbor).unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(decoded, value, "case {i}: decoded value");
        // serde_json compares objects without regard to key order.
        assert_eq!(value_to_json(&decoded), *json, "case {i}: JSON from CBOR");
    }
}

#[test]
fn data_model_valid_vectors() {
    let cases = fixture_json(&fixture!("interop/data-model/data-model-valid.json"));
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let note = case["note"].as_str().unwrap();
        let value = json_to_object(&case["json"]).unwrap_or_else(|e| panic!("{note}: {e}"));
        // Everything accepted also encodes and comes back the same.
        let again = decode(&encode(&value).unwrap()).unwrap();
        assert_eq!(again, value, "{note}");
    }
    // The integer-valued float is read as the integer.
    let value = json_to_object(&cases[1]["json"]).unwrap();
    assert_eq!(get(&value, &["rcrd", "a"]), &Ipld::Integer(123));
    assert_eq!(value_to_json(&value)["rcrd"]["a"], json!(123));
}

#[test]
fn data_model_invalid_vectors() {
    let cases = fixture_json(&fixture!("interop/data-model/data-model-invalid.json"));
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 12);
    for case in cases {
        let note = case["note"].as_str().unwrap();
        let (path, reason) = match json_to_object(&case["json"]) {
            Err(Error::Invalid { path, reason }) => (path, reason),
            other => panic!("{note}: expected rejection, got {other:?}"),
        };
        let ok = match note {
            "top-level not an object" => path.is_empty() && reason == Invalid::NotAnObject,
            "float" => path == "/rcrd/a" && reason == Invalid::NotInteger("123.456".into()),
            "record with $type null" | "record with $type wrong type" => {
                path == "/rcrd/$type" && reason == Invalid::TypeNotString
            }
            "record with empty $type string" => {
                path == "/rcrd/$type" && reason == Invalid::TypeEmpty
            }
            "blob with string size" => {
                path == "/blb" && reason == Invalid::Blob("size must be an integer")
            }
            "blob with missing key" => path == "/blb" && reason == Invalid::Blob("missing ref"),
            "bytes with wrong field type" => {
                path == "/lnk/$bytes" && reason == Invalid::BytesNotString
            }
            "bytes with extra fields" => path == "/lnk" && reason == Invalid::BytesExtraKeys,
            "link with wrong field type" => {
                path == "/lnk/$link" && reason == Invalid::LinkNotString
            }
            "link with bogus CID" => {
                path == "/lnk/$link" && matches!(reason, Invalid::LinkBadCid(_))
            }
            "link with extra fields" => path == "/lnk" && reason == Invalid::LinkExtraKeys,
            other => panic!("unknown case {other}"),
        };
        assert!(ok, "{note}: unexpected error {reason:?} at {path:?}");
    }
}

#[test]
fn feedpost_record() {
    let bytes = fixture!("interop/extra/indigo/testing/testdata/feedpost_record.cbor");
    let value = decode_record(&bytes).unwrap();
    assert_eq!(encode(&value).unwrap(), bytes);
    assert_eq!(
        cid_for_value(&value).unwrap(),
        crate::repo::cid::cid_for_cbor(&bytes)
    );

    let Ipld::Map(top) = &value else {
        panic!("not a map")
    };
    let keys: Vec<&str> = top.keys().map(String::as_str).collect();
    assert_eq!(keys, ["$type", "createdAt", "embed", "text"]);
    assert_eq!(get(&value, &["$type"]), &text("app.bsky.feed.post"));
    assert_eq!(
        get(&value, &["text"]),
        &text("Who the hell do you think you are")
    );
    assert_eq!(
        get(&value, &["createdAt"]),
        &text("2023-03-29T20:59:19.417Z")
    );
    assert_eq!(
        get(&value, &["embed", "$type"]),
        &text("app.bsky.embed.recordWithMedia")
    );
    assert_eq!(
        get(&value, &["embed", "record", "record", "uri"]),
        &text("at://did:plc:rbtury4cp2sdk4tvnedaqu54/app.bsky.feed.post/3jilislho4s2k")
    );
    assert_eq!(
        get(&value, &["embed", "record", "record", "cid"]),
        &text("bafyreiaku7udekkiijxcuue3sn6esz7qijqj637rigz4xqdw57fk5houji")
    );
    assert_eq!(
        get(&value, &["embed", "media", "images", "0", "alt"]),
        &text("")
    );

    let image = BlobRef {
        cid: "bafkreieqq463374bbcbeq7gpmet5rvrpeqow6t4rtjzrkhnlumdylagaqa"
            .parse()
            .unwrap(),
        mime_type: "image/jpeg".into(),
        size: 751473,
    };
    assert_eq!(find_blobs(&value), vec![image.clone()]);
    assert_eq!(
        image.to_value(),
        *get(&value, &["embed", "media", "images", "0", "image"])
    );

    let json = value_to_json(&value);
    assert_eq!(
        json["embed"]["media"]["images"][0]["image"],
        json!({"$type": "blob", "mimeType": "image/jpeg", "size": 751473,
               "ref": {"$link": "bafkreieqq463374bbcbeq7gpmet5rvrpeqow6t4rtjzrkhnlumdylagaqa"}})
    );
    assert_eq!(json_to_record(&json).unwrap(), value);
}

#[test]
fn post_richtext_link_record() {
    let bytes = fixture!("interop/extra/indigo/testing/testdata/post_richtext_link.cbor");
    let value = decode_record(&bytes).unwrap();
    assert_eq!(encode(&value).unwrap(), bytes);
    assert_eq!(get(&value, &["$type"]), &text("app.bsky.feed.post"));
    assert_eq!(
        get(&value, &["text"]),
        &text("QP of a QP with a link card https://atproto.com")
    );
    let facet = get(&value, &["facets", "0"]);
    assert_eq!(get(facet, &["index", "byteStart"]), &Ipld::Integer(28));
    assert_eq!(get(facet, &["index", "byteEnd"]), &Ipld::Integer(47));
    assert_eq!(
        get(facet, &["features", "0"]),
        &map(&[
            ("$type", text("app.bsky.richtext.facet#link")),
            ("uri", text("https://atproto.com")),
        ])
    );
    assert_eq!(
        find_blobs(&value),
        vec![BlobRef {
            cid: "bafkreif3qcpziagiyhkeoacmtrcirfvl53j7jucyko5byo4mlyjsgloqmi"
                .parse()
                .unwrap(),
            mime_type: "image/jpeg".into(),
            size: 574692,
        }]
    );
    assert_eq!(json_to_record(&value_to_json(&value)).unwrap(), value);
}

// ---- known answers -----------------------------------------------------------------------

#[test]
fn map_keys_sorted_length_first() {
    let value = map(&[
        ("bb", Ipld::Integer(1)),
        ("a", Ipld::Integer(2)),
        ("b", Ipld::Integer(3)),
        ("aaa", Ipld::Integer(4)),
        ("é", Ipld::Integer(5)), // two UTF-8 bytes: sorts with the two-byte keys
    ]);
    let expected = [
        0xa5, 0x61, b'a', 0x02, 0x61, b'b', 0x03, 0x62, b'b', b'b', 0x01, 0x62, 0xc3, 0xa9, 0x05,
        0x63, b'a', b'a', b'a', 0x04,
    ];
    assert_eq!(encode(&value).unwrap(), expected);
    assert_eq!(decode(&expected).unwrap(), value);
}

#[test]
fn scalars_encode_in_shortest_form() {
    let cases: [(Ipld, &[u8]); 12] = [
        (Ipld::Null, &[0xf6]),
        (Ipld::Bool(true), &[0xf5]),
        (Ipld::Bool(false), &[0xf4]),
        (Ipld::Integer(0), &[0x00]),
        (Ipld::Integer(23), &[0x17]),
        (Ipld::Integer(24), &[0x18, 0x18]),
        (Ipld::Integer(-1), &[0x20]),
        (Ipld::Integer(-500), &[0x39, 0x01, 0xf3]),
        (
            Ipld::Integer(i64::MAX.into()),
            &[0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            Ipld::Integer(i64::MIN.into()),
            &[0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (Ipld::Bytes(vec![1, 2]), &[0x42, 1, 2]),
        (Ipld::List(vec![]), &[0x80]),
    ];
    for (value, bytes) in cases {
        assert_eq!(encode(&value).unwrap(), bytes, "{value:?}");
        assert_eq!(decode(bytes).unwrap(), value, "{value:?}");
    }
    assert_eq!(
        cid_for_value(&map(&[])).unwrap().to_string(),
        "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua"
    );
}

#[test]
fn links_encode_as_tag_42() {
    let cid: Cid = CBOR_CID.parse().unwrap();
    let bytes = encode(&Ipld::Link(cid)).unwrap();
    let mut expected = vec![0xd8, 0x2a, 0x58, 0x25, 0x00];
    expected.extend(cid.to_bytes());
    assert_eq!(bytes, expected);
    assert_eq!(decode(&bytes).unwrap(), Ipld::Link(cid));
}

#[test]
fn encode_refuses_values_outside_the_data_model() {
    let float = map(&[("x", Ipld::List(vec![Ipld::Float(1.5)]))]);
    let (path, reason) = invalid(encode(&float).map(|_| Ipld::Null));
    assert_eq!((path.as_str(), reason), ("/x/0", Invalid::Float));
    let big = Ipld::Integer(i128::from(i64::MAX) + 1);
    assert_eq!(
        invalid(encode(&big).map(|_| Ipld::Null)).1,
        Invalid::IntegerOutOfRange("9223372036854775808".into())
    );
    let sha512 = Cid::new_v1(DAG_CBOR, Multihash::<64>::wrap(0x13, &[7; 64]).unwrap());
    assert!(matches!(
        invalid(encode(&Ipld::Link(sha512)).map(|_| Ipld::Null)).1,
        Invalid::UnsupportedCid(_)
    ));
    let err = encode(&float).unwrap_err().to_string();
    assert_eq!(
        err,
        "floating-point numbers are not allowed in atproto data (at /x/0)"
    );
}

fn nested_lists(depth: usize) -> Ipld {
    (0..depth).fold(Ipld::Null, |inner, _| Ipld::List(vec![inner]))
}

#[test]
fn depth_limit_is_exact() {
    let ok = nested_lists(MAX_DEPTH);
    let bytes = encode(&ok).unwrap();
    assert_eq!(decode(&bytes).unwrap(), ok);
    let json = value_to_json(&ok);
    assert_eq!(json_to_value(&json).unwrap(), ok);

    let too_deep = nested_lists(MAX_DEPTH + 1);
    assert_eq!(
        invalid(encode(&too_deep).map(|_| Ipld::Null)).1,
        Invalid::TooDeep
    );
    let mut bytes = vec![0x81; MAX_DEPTH + 1];
    bytes.push(0xf6);
    assert_eq!(invalid(decode(&bytes)).1, Invalid::TooDeep);
    assert_eq!(
        invalid(json_to_value(&value_to_json(&too_deep))).1,
        Invalid::TooDeep
    );
}

#[test]
fn deep_json_value_does_not_recurse_past_the_limit() {
    let mut json = Json::Null;
    for _ in 0..2000 {
        json = Json::Array(vec![json]);
    }
    let (path, reason) = invalid(json_to_value(&json));
    assert_eq!(reason, Invalid::TooDeep);
    assert_eq!(path, "/0".repeat(MAX_DEPTH));
}
