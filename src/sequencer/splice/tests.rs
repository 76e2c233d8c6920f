use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::repo::cbor::{self, Ipld};
use crate::repo::cid::{cid_for_cbor, cid_for_raw};

/// The reference: decode strictly, insert `seq`, re-encode canonically (the old `with_seq`).
pub(crate) fn reencoded_with_seq(body: &[u8], seq: i64) -> Vec<u8> {
    let Ipld::Map(mut fields) = cbor::decode(body).unwrap() else {
        panic!("not a map")
    };
    assert!(
        fields
            .insert("seq".to_owned(), Ipld::Integer(i128::from(seq)))
            .is_none()
    );
    cbor::encode(&Ipld::Map(fields)).unwrap()
}

/// The seq values where the integer head changes width, and the extremes.
const SEQS: [i64; 14] = [
    0,
    1,
    23,
    24,
    255,
    256,
    65_535,
    65_536,
    4_294_967_295,
    1 << 32,
    1 << 53,
    i64::MAX,
    -1,
    i64::MIN,
];

fn map_of(n: usize, key: impl Fn(usize) -> String) -> Vec<u8> {
    let fields: BTreeMap<String, Ipld> =
        (0..n).map(|i| (key(i), Ipld::Integer(i as i128))).collect();
    assert_eq!(fields.len(), n);
    cbor::encode(&Ipld::Map(fields)).unwrap()
}

fn assert_same(body: &[u8], seq: i64) {
    assert_eq!(
        hex::encode(with_seq(body, seq).unwrap()),
        hex::encode(reencoded_with_seq(body, seq)),
        "seq {seq}"
    );
}

#[test]
fn known_bytes() {
    // {"a": 1, "time": "t"} + seq 300 → {"a": 1, "seq": 300, "time": "t"}, written by hand.
    let body = [
        0xa2, 0x61, b'a', 0x01, 0x64, b't', b'i', b'm', b'e', 0x61, b't',
    ];
    let expected = [
        0xa3, 0x61, b'a', 0x01, 0x63, b's', b'e', b'q', 0x19, 0x01, 0x2c, 0x64, b't', b'i', b'm',
        b'e', 0x61, b't',
    ];
    assert_eq!(with_seq(&body, 300).unwrap(), expected);
    // The empty map: {"seq": -1}.
    assert_eq!(
        with_seq(&[0xa0], -1).unwrap(),
        [0xa1, 0x63, b's', b'e', b'q', 0x20]
    );
    let mut out = vec![0xee];
    append_with_seq(&mut out, &[0xa0], 7).unwrap();
    assert_eq!(out, [0xee, 0xa1, 0x63, b's', b'e', b'q', 0x07]);
}

/// The map head widens when the count crosses 23→24, 255→256 and 65535→65536 entries.
#[test]
fn map_head_grows() {
    for (n, head) in [
        (0, &[0xa1][..]),
        (22, &[0xb7][..]),
        (23, &[0xb8, 24][..]),
        (24, &[0xb8, 25][..]),
        (254, &[0xb8, 255][..]),
        (255, &[0xb9, 0x01, 0x00][..]),
        (256, &[0xb9, 0x01, 0x01][..]),
        (65_535, &[0xba, 0x00, 0x01, 0x00, 0x00][..]),
    ] {
        // Keys sort before and after "seq": "k0".."k9" (2 bytes), then longer ones.
        let body = map_of(n, |i| format!("k{i}"));
        let spliced = with_seq(&body, 1 << 53).unwrap();
        assert_eq!(&spliced[..head.len()], head, "{n} entries");
        for seq in SEQS {
            assert_same(&body, seq);
        }
    }
}

/// Keys of length 3 around "seq", and keys shorter and longer.
#[test]
fn seq_lands_at_its_canonical_place() {
    for keys in [
        &["a", "b"][..],
        &["sep"][..],
        &["ser"][..],
        &["seqa"][..],
        &["se", "sep", "ser", "seqq", "a"][..],
        &["zz", "aaa", "sea", "sez", "abcd"][..],
        &["\u{e9}\u{e9}"][..],
        &["\u{e9}t"][..],
    ] {
        let body = cbor::encode(&Ipld::Map(
            keys.iter().map(|k| ((*k).to_owned(), Ipld::Null)).collect(),
        ))
        .unwrap();
        for seq in SEQS {
            assert_same(&body, seq);
        }
    }
}

/// Every kind of body a subscriber is sent: `#info` (built as `frame::info_frame` does) and
/// the stored kinds (`#commit` and `#sync` are covered with real commits in the events tests).
#[test]
fn info_identity_and_account_bodies() {
    use crate::sequencer::events::{account_event, identity_event};
    let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    let time = "2025-04-16T21:30:26.717Z";
    let bodies = [
        identity_event(did, Some("alice.test"), time).unwrap().body,
        identity_event(did, None, time).unwrap().body,
        account_event(did, true, None, time).unwrap().body,
        account_event(did, false, Some("takendown"), time)
            .unwrap()
            .body,
        cbor::encode(&Ipld::Map(BTreeMap::from([
            ("name".to_owned(), Ipld::String("OutdatedCursor".to_owned())),
            ("message".to_owned(), Ipld::String("m".to_owned())),
        ])))
        .unwrap(),
    ];
    for body in &bodies {
        for seq in SEQS {
            assert_same(body, seq);
        }
    }
}

#[test]
fn rejects_what_is_not_one_map() {
    let body = map_of(3, |i| format!("key{i}"));
    assert_eq!(with_seq(&[], 1), Err(Error::Truncated));
    assert_eq!(with_seq(&[0x80], 1), Err(Error::NotAMap));
    assert_eq!(with_seq(&[0x01], 1), Err(Error::NotAMap));
    assert_eq!(with_seq(&[0x61, b'a'], 1), Err(Error::NotAMap));
    assert_eq!(with_seq(&[0xf6], 1), Err(Error::NotAMap));
    // Every proper prefix is truncated.
    for end in 1..body.len() {
        assert_eq!(with_seq(&body[..end], 1), Err(Error::Truncated), "{end}");
    }
    // Trailing bytes: a second item, or junk.
    let mut trailing = body.clone();
    trailing.extend_from_slice(&[0xa0, 0x00]);
    assert_eq!(with_seq(&trailing, 1), Err(Error::TrailingBytes(2)));
    // On error the output buffer is left untouched.
    let mut out = vec![1, 2, 3];
    assert_eq!(
        append_with_seq(&mut out, &trailing, 1),
        Err(Error::TrailingBytes(2))
    );
    assert_eq!(out, [1, 2, 3]);
}

#[test]
fn rejects_a_body_that_has_seq() {
    let body = cbor::encode(&Ipld::Map(BTreeMap::from([
        ("did".to_owned(), Ipld::Null),
        ("seq".to_owned(), Ipld::Integer(5)),
        ("time".to_owned(), Ipld::Null),
    ])))
    .unwrap();
    assert_eq!(with_seq(&body, 6), Err(Error::HasSeq));
}

#[test]
fn rejects_non_canonical_and_non_dag_cbor() {
    let cases: &[(&[u8], Error)] = &[
        // Keys out of order, duplicated, not text.
        (
            &[0xa2, 0x62, b'a', b'b', 0x00, 0x61, b'z', 0x00],
            Error::UnsortedKeys,
        ),
        (
            &[0xa2, 0x61, b'b', 0x00, 0x61, b'a', 0x00],
            Error::UnsortedKeys,
        ),
        (
            &[0xa2, 0x61, b'a', 0x00, 0x61, b'a', 0x00],
            Error::UnsortedKeys,
        ),
        (&[0xa1, 0x01, 0x00], Error::KeyNotText),
        (&[0xa1, 0x41, b'a', 0x00], Error::KeyNotText),
        // Indefinite lengths and reserved heads.
        (&[0xbf, 0xff], Error::Indefinite),
        (&[0xa1, 0x61, b'a', 0x9f, 0xff], Error::Indefinite),
        (&[0xa1, 0x61, b'a', 0x1c], Error::Indefinite),
        // Heads not in their shortest form: count, length, integer.
        (&[0xb8, 0x00], Error::NotShortest),
        (&[0xa1, 0x78, 0x01, b'a', 0x00], Error::NotShortest),
        (&[0xa1, 0x61, b'a', 0x19, 0x00, 0xff], Error::NotShortest),
        (
            &[0xa1, 0x61, b'a', 0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
            Error::NotShortest,
        ),
        // Integers beyond i64.
        (
            &[0xa1, 0x61, b'a', 0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0],
            Error::IntegerOutOfRange,
        ),
        (
            &[0xa1, 0x61, b'a', 0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0],
            Error::IntegerOutOfRange,
        ),
        // Floats, undefined, other simple values.
        (
            &[0xa1, 0x61, b'a', 0xfb, 0, 0, 0, 0, 0, 0, 0, 0],
            Error::UnsupportedSimple(27),
        ),
        (
            &[0xa1, 0x61, b'a', 0xf9, 0, 0],
            Error::UnsupportedSimple(25),
        ),
        (&[0xa1, 0x61, b'a', 0xf7], Error::UnsupportedSimple(23)),
        (
            &[0xa1, 0x61, b'a', 0xf8, 0x20],
            Error::UnsupportedSimple(24),
        ),
        // Tags other than 42; a CID tag over something else than prefixed bytes.
        (&[0xa1, 0x61, b'a', 0xc1, 0x00], Error::UnsupportedTag(1)),
        (
            &[0xa1, 0x61, b'a', 0xd8, 0x2a, 0x61, b'x'],
            Error::MalformedCid,
        ),
        (
            &[0xa1, 0x61, b'a', 0xd8, 0x2a, 0x42, 0x01, 0x71],
            Error::MalformedCid,
        ),
        (
            &[0xa1, 0x61, b'a', 0xd8, 0x2a, 0x41, 0x00],
            Error::MalformedCid,
        ),
        // Text that is not UTF-8, as a key and as a nested value.
        (&[0xa1, 0x61, 0xff, 0x00], Error::InvalidUtf8),
        (
            &[0xa1, 0x61, b'a', 0x81, 0x62, 0xc3, 0x28],
            Error::InvalidUtf8,
        ),
        // Hostile declared lengths and counts: refused as truncated, without allocating.
        (
            &[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            Error::Truncated,
        ),
        (
            &[
                0xa1, 0x61, b'a', 0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            Error::Truncated,
        ),
        (
            &[
                0xa1, 0x61, b'a', 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            Error::Truncated,
        ),
        (
            &[
                0xa1, 0x61, b'a', 0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            Error::Truncated,
        ),
        (
            &[
                0xa1, 0x61, b'a', 0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            Error::Truncated,
        ),
    ];
    for (body, error) in cases {
        assert_eq!(
            with_seq(body, 1).as_ref(),
            Err(error),
            "{}",
            hex::encode(body)
        );
    }
}

/// Deep nesting is walked without recursion.
#[test]
fn deep_nesting_does_not_recurse() {
    let depth = 100_000;
    let mut body = vec![0xa1, 0x61, b'a'];
    body.extend(std::iter::repeat_n(0x81, depth));
    body.push(0x00);
    let spliced = with_seq(&body, 9).unwrap();
    assert_eq!(
        &spliced[..8],
        &[0xa2, 0x61, b'a', 0x81, 0x81, 0x81, 0x81, 0x81]
    );
    assert_eq!(
        &spliced[spliced.len() - 6..],
        &[0x00, 0x63, b's', b'e', b'q', 0x09]
    );
    body.pop();
    assert_eq!(with_seq(&body, 9), Err(Error::Truncated));
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        "[r-t][d-f][p-r]",
        prop::sample::select(vec![
            "s", "se", "sep", "ser", "seqa", "sequence", "$type", "é"
        ])
        .prop_map(str::to_owned),
    ]
    .prop_filter("seq is what gets inserted", |k| k != "seq")
}

fn leaf() -> impl Strategy<Value = Ipld> {
    prop_oneof![
        Just(Ipld::Null),
        any::<bool>().prop_map(Ipld::Bool),
        any::<i64>().prop_map(|i| Ipld::Integer(i.into())),
        prop::sample::select(vec![0i64, 23, 24, 255, 256, 65_535, 65_536, -24, -25])
            .prop_map(|i| Ipld::Integer(i.into())),
        ".{0,40}".prop_map(Ipld::String),
        prop::collection::vec(any::<u8>(), 0..600).prop_map(Ipld::Bytes),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| Ipld::Link(cid_for_cbor(&b))),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| Ipld::Link(cid_for_raw(&b))),
    ]
}

fn value() -> impl Strategy<Value = Ipld> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Ipld::List),
            prop::collection::btree_map(key(), inner, 0..6).prop_map(Ipld::Map),
        ]
    })
}

fn seq() -> impl Strategy<Value = i64> {
    prop_oneof![prop::sample::select(SEQS.to_vec()), any::<i64>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn splice_equals_reencoding(
        fields in prop::collection::btree_map(key(), value(), 0..40),
        seq in seq(),
    ) {
        let body = cbor::encode(&Ipld::Map(fields)).unwrap();
        prop_assert_eq!(
            hex::encode(with_seq(&body, seq).unwrap()),
            hex::encode(reencoded_with_seq(&body, seq))
        );
    }

    /// A damaged body is refused or spliced, never a panic; whatever is spliced comes out
    /// one entry longer.
    #[test]
    fn damaged_bodies_never_panic(
        fields in prop::collection::btree_map(key(), value(), 1..10),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let mut body = cbor::encode(&Ipld::Map(fields)).unwrap();
        let at = at.index(body.len());
        if cut {
            body.truncate(at);
        } else {
            body[at] = byte;
        }
        if let Ok(spliced) = with_seq(&body, 1) {
            prop_assert!(spliced.len() >= body.len() + 5);
        }
    }

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = with_seq(&body, 1);
    }
}
