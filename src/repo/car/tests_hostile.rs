//! Hostile input: every failure must be an error that names the problem, never a panic.

use std::collections::BTreeMap;

use cid::Cid;
use cid::multihash::Multihash;
use ipld_core::ipld::Ipld;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::tests::{fixture_car, fixtures, read_all};
use super::*;
use crate::repo::cid::{DAG_CBOR, SHA2_256, cid_for_cbor};

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn header_from(ipld: Ipld) -> Vec<u8> {
    let body = serde_ipld_dagcbor::to_vec(&ipld).unwrap();
    let mut out = varint(body.len() as u64);
    out.extend(body);
    out
}

fn header_map(entries: Vec<(&str, Ipld)>) -> Vec<u8> {
    header_from(Ipld::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<BTreeMap<_, _>>(),
    ))
}

fn good_header() -> Vec<u8> {
    header_map(vec![
        ("roots", Ipld::List(vec![Ipld::Link(cid_for_cbor(&[0xa0]))])),
        ("version", Ipld::Integer(1)),
    ])
}

fn section(cid_bytes: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = varint((cid_bytes.len() + data.len()) as u64);
    out.extend_from_slice(cid_bytes);
    out.extend_from_slice(data);
    out
}

async fn read_err(bytes: &[u8], limits: Limits) -> Error {
    match read_all(bytes, limits).await {
        Ok((roots, blocks)) => panic!("accepted: {roots:?} with {} blocks", blocks.len()),
        Err(e) => e,
    }
}

/// Offsets where each section of `car` starts, plus the end of the file.
fn section_boundaries(car: &[u8], blocks: &[(Cid, bytes::Bytes)]) -> Vec<usize> {
    let framed = |(c, b): &(Cid, bytes::Bytes)| {
        let len = c.to_bytes().len() + b.len();
        varint(len as u64).len() + len
    };
    let mut offset = car.len() - blocks.iter().map(framed).sum::<usize>();
    let mut bounds = vec![offset];
    for block in blocks {
        offset += framed(block);
        bounds.push(offset);
    }
    bounds
}

/// Reads every strict prefix of `car`; returns how many ended inside a section length varint.
async fn check_every_truncation(car: &[u8], blocks: &[(Cid, bytes::Bytes)]) -> usize {
    let bounds = section_boundaries(car, blocks);
    assert_eq!(bounds.len(), blocks.len() + 1);
    assert_eq!(*bounds.last().unwrap(), car.len());
    let header_end = bounds[0];
    let mut in_varint = 0;
    for cut in 0..car.len() {
        let result = read_all(&car[..cut], Limits::default()).await;
        if cut == 0 {
            assert!(matches!(result, Err(Error::Empty)), "cut {cut}");
        } else if cut < header_end {
            assert!(
                matches!(result, Err(Error::Truncated { at: Location::Header, expected: 58, got })
                    if got == cut as u64 - 1),
                "cut {cut}: {result:?}"
            );
        } else if let Some(k) = bounds.iter().position(|&b| b == cut) {
            // A cut between sections is a shorter, valid CAR.
            let (_, read) = result.unwrap();
            assert_eq!(read, blocks[..k], "cut {cut}");
        } else {
            let k = bounds.iter().filter(|&&b| b < cut).count() - 1;
            match result {
                Err(Error::Truncated { at, .. }) => assert_eq!(at, Location::Block(k), "cut {cut}"),
                Err(Error::TruncatedVarint { at }) => {
                    assert_eq!(at, Location::Block(k), "cut {cut}");
                    in_varint += 1;
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }
    in_varint
}

#[tokio::test]
async fn truncated_at_every_offset() {
    let fixture = fixtures().remove(0);
    let multi_byte = |blocks: &[(Cid, bytes::Bytes)]| {
        blocks
            .iter()
            .map(|(c, b)| varint((c.to_bytes().len() + b.len()) as u64).len() - 1)
            .sum::<usize>()
    };
    let in_varint = check_every_truncation(&fixture.car, &fixture.blocks).await;
    assert_eq!(in_varint, multi_byte(&fixture.blocks));

    // greenground has sections over 127 bytes, so some cuts fall inside a 2-byte varint.
    let car = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/interop/extra/indigo/testing/testdata/greenground.repo.car"
    ))
    .unwrap();
    let (_, blocks) = read_all(&car, Limits::default()).await.unwrap();
    let in_varint = check_every_truncation(&car, &blocks).await;
    assert!(in_varint > 0);
    assert_eq!(in_varint, multi_byte(&blocks));

    let err = read_err(&fixture.car[..56], Limits::default()).await;
    assert_eq!(
        err.to_string(),
        "truncated header: expected 58 bytes, got 55"
    );
}

#[tokio::test]
async fn flipped_byte_names_the_block() {
    let car = fixture_car();
    let fixture = fixtures().remove(0);
    let bounds = section_boundaries(&car, &fixture.blocks);
    for k in 0..5 {
        let mut bad = car.clone();
        // The last byte of section k is block data.
        bad[bounds[k + 1] - 1] ^= 0x40;
        let err = read_err(&bad, Limits::default()).await;
        let cid = fixture.blocks[k].0;
        assert!(
            matches!(&err, Error::HashMismatch { at: Location::Block(i), cid: c } if *i == k && **c == cid),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("block {k} ({cid}): hash does not match content")
        );
    }
}

#[tokio::test]
async fn huge_section_length() {
    let mut car = good_header();
    car.extend(varint(4_294_967_295));
    car.extend([0u8; 40]);
    let err = read_err(&car, Limits::default()).await;
    assert_eq!(
        err.to_string(),
        "block 0: section length 4294967295 exceeds limit 2097152"
    );

    // The largest 9-byte varint still gets the length check, not an overflow.
    let mut car = good_header();
    car.extend([0xff; 8]);
    car.push(0x7f);
    let err = read_err(&car, Limits::default()).await;
    assert!(
        matches!(err, Error::SectionTooLong { len, .. } if len == u64::MAX >> 1),
        "{err:?}"
    );

    // Ten bytes is too many.
    let mut car = good_header();
    car.extend([0xff; 10]);
    let err = read_err(&car, Limits::default()).await;
    assert_eq!(
        err.to_string(),
        "block 0: length varint is longer than 9 bytes"
    );

    // Non-minimal encoding of 1.
    let mut car = good_header();
    car.extend([0x81, 0x00]);
    let err = read_err(&car, Limits::default()).await;
    assert!(
        matches!(
            err,
            Error::VarintNotMinimal {
                at: Location::Block(0)
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn configurable_block_limit() {
    let car = fixture_car();
    let fixture = fixtures().remove(0);
    let lens: Vec<usize> = fixture
        .blocks
        .iter()
        .map(|(c, b)| c.to_bytes().len() + b.len())
        .collect();
    let largest = *lens.iter().max().unwrap();
    let first_largest = lens.iter().position(|&l| l == largest).unwrap();
    let limits = Limits {
        max_block_len: largest,
        ..Limits::default()
    };
    assert_eq!(read_all(&car, limits).await.unwrap().1.len(), 5);
    let limits = Limits {
        max_block_len: largest - 1,
        ..Limits::default()
    };
    let err = read_err(&car, limits).await;
    assert!(
        matches!(err, Error::SectionTooLong { at: Location::Block(k), len, limit }
            if k == first_largest && len == largest as u64 && limit == largest - 1),
        "{err:?}"
    );
}

#[tokio::test]
async fn total_and_block_count_limits() {
    let car = fixture_car();
    let limits = Limits {
        max_blocks: Some(4),
        ..Limits::default()
    };
    let err = read_err(&car, limits).await;
    assert_eq!(err.to_string(), "CAR has more than 4 blocks");
    let limits = Limits {
        max_blocks: Some(5),
        ..Limits::default()
    };
    assert_eq!(read_all(&car, limits).await.unwrap().1.len(), 5);

    let limits = Limits {
        max_total_len: Some(car.len() as u64 - 1),
        ..Limits::default()
    };
    let err = read_err(&car, limits).await;
    assert!(
        matches!(
            err,
            Error::TotalTooLong {
                at: Location::Block(4),
                ..
            }
        ),
        "{err:?}"
    );
    let limits = Limits {
        max_total_len: Some(car.len() as u64),
        ..Limits::default()
    };
    assert_eq!(read_all(&car, limits).await.unwrap().1.len(), 5);
    let limits = Limits {
        max_total_len: Some(10),
        ..Limits::default()
    };
    let err = read_err(&car, limits).await;
    assert!(
        matches!(
            err,
            Error::TotalTooLong {
                at: Location::Header,
                limit: 10
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_headers() {
    // Huge claimed length.
    let mut car = varint(1 << 40);
    car.extend([0xa0; 16]);
    let err = read_err(&car, Limits::default()).await;
    assert_eq!(
        err.to_string(),
        "header length 1099511627776 exceeds limit 65536"
    );

    // Zero length.
    let err = read_err(&[0x00], Limits::default()).await;
    assert!(matches!(err, Error::EmptyHeaderSection), "{err:?}");

    // Cut inside the header's length varint.
    let err = read_err(&[0x80], Limits::default()).await;
    assert_eq!(
        err.to_string(),
        "truncated header: input ends inside the length varint"
    );

    let root = Ipld::Link(cid_for_cbor(&[0xa0]));
    // Version 2 (also what a CARv2 pragma says), with and without roots.
    let car = header_map(vec![
        ("roots", Ipld::List(vec![root.clone()])),
        ("version", Ipld::Integer(2)),
    ]);
    let err = read_err(&car, Limits::default()).await;
    assert_eq!(
        err.to_string(),
        "unsupported CAR version 2 (only version 1 is supported)"
    );
    let car = header_map(vec![("version", Ipld::Integer(2))]);
    assert!(matches!(
        read_err(&car, Limits::default()).await,
        Error::UnsupportedVersion(2)
    ));

    // Empty roots.
    let car = header_map(vec![
        ("roots", Ipld::List(vec![])),
        ("version", Ipld::Integer(1)),
    ]);
    let err = read_err(&car, Limits::default()).await;
    assert_eq!(err.to_string(), "header has no roots");

    // Shapes.
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            header_map(vec![("roots", Ipld::List(vec![root.clone()]))]),
            "invalid header: `version` is missing",
        ),
        (
            header_map(vec![("version", Ipld::Integer(1))]),
            "invalid header: `roots` is missing",
        ),
        (
            header_map(vec![
                ("roots", Ipld::List(vec![root.clone()])),
                ("version", Ipld::String("1".into())),
            ]),
            "invalid header: `version` is not an integer",
        ),
        (
            header_map(vec![("roots", root.clone()), ("version", Ipld::Integer(1))]),
            "invalid header: `roots` is not a list",
        ),
        (
            header_map(vec![
                ("roots", Ipld::List(vec![Ipld::Bytes(vec![1, 2])])),
                ("version", Ipld::Integer(1)),
            ]),
            "invalid header: root 0 is not a CID link",
        ),
        (header_from(Ipld::List(vec![])), "invalid header: not a map"),
    ];
    for (car, message) in cases {
        assert_eq!(read_err(&car, Limits::default()).await.to_string(), message);
    }

    // Not CBOR at all, and CBOR followed by trailing bytes inside the header.
    let err = read_err(&[0x01, 0xff], Limits::default()).await;
    assert!(matches!(err, Error::HeaderCbor(_)), "{err:?}");
    let mut car = good_header();
    car[0] += 1;
    car.push(0x00);
    let err = read_err(&car, Limits::default()).await;
    assert!(matches!(err, Error::HeaderCbor(_)), "{err:?}");

    // A CIDv0 root.
    let v0 = Cid::new_v0(Multihash::wrap(SHA2_256, &Sha256::digest(b"x")).unwrap()).unwrap();
    let car = header_map(vec![
        ("roots", Ipld::List(vec![Ipld::Link(v0)])),
        ("version", Ipld::Integer(1)),
    ]);
    let err = read_err(&car, Limits::default()).await;
    assert!(
        matches!(err, Error::UnsupportedRoot { index: 0, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn unsupported_block_cids() {
    let data = b"\xa1atb";
    let digest = Sha256::digest(data);
    let sha = Multihash::<64>::wrap(SHA2_256, &digest).unwrap();

    // CIDv0 whose hash does match the data.
    let v0 = Cid::new_v0(sha).unwrap();
    let mut car = good_header();
    car.extend(section(&v0.to_bytes(), data));
    let err = read_err(&car, Limits::default()).await;
    assert_eq!(
        err.to_string(),
        format!("block 0 ({v0}): unsupported CID: CIDv0 (atproto uses CIDv1 only)")
    );

    // dag-pb codec, SHA-512, and a short SHA-256 digest.
    let dag_pb = Cid::new_v1(0x70, sha);
    let sha512 = Cid::new_v1(DAG_CBOR, Multihash::wrap(0x13, &[7u8; 64]).unwrap());
    let short = Cid::new_v1(DAG_CBOR, Multihash::wrap(SHA2_256, &digest[..20]).unwrap());
    for (cid, reason) in [
        (
            dag_pb,
            "codec 0x70 is neither dag-cbor (0x71) nor raw (0x55)",
        ),
        (sha512, "hash function 0x13 is not SHA-256 (0x12)"),
        (short, "SHA-256 digest is 20 bytes, not 32"),
    ] {
        let mut car = good_header();
        car.extend(section(&cid_for_cbor(data).to_bytes(), data));
        car.extend(section(&cid.to_bytes(), data));
        let err = read_err(&car, Limits::default()).await;
        assert_eq!(
            err.to_string(),
            format!("block 1 ({cid}): unsupported CID: {reason}")
        );
    }

    // Garbage where the CID should be.
    let mut car = good_header();
    car.extend(section(&[0x01, 0x71, 0x12], b""));
    let err = read_err(&car, Limits::default()).await;
    assert!(
        matches!(
            err,
            Error::InvalidCid {
                at: Location::Block(0),
                ..
            }
        ),
        "{err:?}"
    );

    // Zero-length section.
    let mut car = good_header();
    car.push(0x00);
    let err = read_err(&car, Limits::default()).await;
    assert_eq!(
        err.to_string(),
        "block 0: section length 0 (a section holds at least a CID)"
    );
}

#[tokio::test]
async fn failed_reader_stays_failed() {
    let mut car = good_header();
    car.push(0x00);
    car.extend(section(&cid_for_cbor(&[0xa0]).to_bytes(), &[0xa0]));
    let mut reader = CarReader::new(&car[..], Limits::default()).await.unwrap();
    assert!(matches!(
        reader.next_block().await,
        Err(Error::ZeroLengthSection { .. })
    ));
    assert!(matches!(
        reader.next_block().await,
        Err(Error::ReaderFailed)
    ));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Whatever the reader accepts must be verified blocks.
fn check_no_panic(bytes: &[u8]) -> std::result::Result<(), TestCaseError> {
    if let Ok((roots, blocks)) = runtime().block_on(read_all(bytes, Limits::default())) {
        prop_assert!(!roots.is_empty());
        for (cid, data) in blocks {
            prop_assert!(crate::repo::cid::verify(&cid, &data));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_no_panic(&bytes)?;
    }

    #[test]
    fn random_sections_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut car = good_header();
        car.extend(tail);
        check_no_panic(&car)?;
    }

    #[test]
    fn mutated_fixture_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut car = fixture_car();
        let len = car.len();
        for (index, value) in edits {
            car[index.index(len)] = value;
        }
        check_no_panic(&car)?;
    }
}
