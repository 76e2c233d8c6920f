//! Known-answer and streaming tests: the atproto CAR fixture, the indigo repo exports.

use std::sync::Mutex;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use cid::Cid;
use proptest::prelude::*;

use super::*;
use crate::repo::blockstore::MemoryBlockStore;
use crate::repo::cid::{cid_for_cbor, cid_for_raw};

const CAR_FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/interop/extra/atproto/packages/repo/tests/car-file-fixtures.json"
);
const INDIGO_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/interop/extra/indigo/testing/testdata/"
);

/// Standard alphabet; the fixture leaves out the `=` padding.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(super) struct Fixture {
    pub root: Cid,
    pub blocks: Vec<(Cid, Bytes)>,
    pub car: Vec<u8>,
}

pub(super) fn fixtures() -> Vec<Fixture> {
    let text = std::fs::read_to_string(CAR_FIXTURES).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    cases
        .iter()
        .map(|case| {
            let cid = |v: &serde_json::Value| Cid::try_from(v.as_str().unwrap()).unwrap();
            let b64 = |v: &serde_json::Value| B64.decode(v.as_str().unwrap()).unwrap();
            Fixture {
                root: cid(&case["root"]),
                blocks: case["blocks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| (cid(&b["cid"]), Bytes::from(b64(&b["bytes"]))))
                    .collect(),
                car: b64(&case["car"]),
            }
        })
        .collect()
}

pub(super) fn fixture_car() -> Vec<u8> {
    fixtures().remove(0).car
}

/// Every section in file order, via the streaming reader.
pub(super) async fn read_all(
    bytes: &[u8],
    limits: Limits,
) -> Result<(Vec<Cid>, Vec<(Cid, Bytes)>)> {
    let mut reader = CarReader::new(bytes, limits).await?;
    let mut blocks = Vec::new();
    while let Some(block) = reader.next_block().await? {
        blocks.push(block);
    }
    assert_eq!(reader.blocks_read(), blocks.len());
    assert_eq!(reader.bytes_read(), bytes.len() as u64);
    Ok((reader.roots().to_vec(), blocks))
}

#[tokio::test]
async fn fixture_write_gives_exact_bytes() {
    let cases = fixtures();
    assert_eq!(cases.len(), 1);
    for case in cases {
        assert_eq!(case.blocks.len(), 5);
        assert_eq!(
            case.root.to_string(),
            "bafyreiapldaco7m23c7qzc4w42r7kxmcswm64nkindtuh4vwztrpoe7m5m"
        );
        // Streaming writer.
        let mut writer = CarWriter::new(Vec::new(), case.root);
        for (cid, bytes) in &case.blocks {
            writer.write_block(cid, bytes).await.unwrap();
        }
        assert_eq!(writer.finish().await.unwrap(), case.car);
        // Convenience function.
        assert_eq!(
            write_car_bytes(case.root, case.blocks.clone()).await,
            case.car
        );
    }
}

#[tokio::test]
async fn fixture_read_gives_root_and_blocks_in_order() {
    for case in fixtures() {
        let (roots, blocks) = read_all(&case.car, Limits::default()).await.unwrap();
        assert_eq!(roots, vec![case.root]);
        assert_eq!(blocks, case.blocks);

        let (roots, map) = read_car_bytes(&case.car, Limits::default()).await.unwrap();
        assert_eq!(roots, vec![case.root]);
        assert_eq!(map.len(), 5);
        for (cid, bytes) in &case.blocks {
            assert_eq!(map.get(cid), Some(bytes));
        }
    }
}

#[tokio::test]
async fn indigo_cars_read_verified_and_rewrite_identically() {
    // (file, sections, distinct blocks, root): counted independently of this code.
    let expected = [
        (
            "bafyreieovfuizojpw3zresz7sx3nk4trm2by23pt5rxbey3jme4uo5ogiu.car",
            10,
            9,
            "bafyreieovfuizojpw3zresz7sx3nk4trm2by23pt5rxbey3jme4uo5ogiu",
        ),
        (
            "divy.repo",
            9,
            9,
            "bafyreigcqmndagmrqv2ev2z5rezvtzhku7wgk27rppxwiohrjj4ra73za4",
        ),
        (
            "fakermaker.repo.car",
            690,
            682,
            "bafyreia4dc3fd74u673yvxw4ytedf4h6hlodeorgrq6bf5v42g2mdn2xcy",
        ),
        (
            "greenground.repo.car",
            4,
            4,
            "bafyreidre5tvfhczb3ogh7mckqlmepb6q75tvkh2jvsbc7vmvysxfap3jm",
        ),
        (
            "paul_staging.repo.car",
            458,
            452,
            "bafyreifg4tuxt4o4a6pkr76ana3ykdc2o5s3ttjxwtxse34yxbmaauhw6y",
        ),
        (
            "repo_slice.car",
            5,
            5,
            "bafyreifp3cchwv6b5h4hubzmlolvytdkmtjeka2f3lqxwbs5uplsizmpe4",
        ),
    ];
    // Every CAR in the directory is covered.
    let mut on_disk: Vec<String> = std::fs::read_dir(INDIGO_DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".car") || n.ends_with(".repo"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<&str> = expected.iter().map(|e| e.0).collect();
    listed.sort();
    assert_eq!(on_disk, listed);

    for (name, sections, distinct, root) in expected {
        let original = std::fs::read(format!("{INDIGO_DIR}{name}")).unwrap();
        let (roots, blocks) = read_all(&original, Limits::default()).await.unwrap();
        assert_eq!(roots.len(), 1, "{name}");
        assert_eq!(roots[0].to_string(), root, "{name}");
        assert_eq!(blocks.len(), sections, "{name}");
        assert!(blocks.iter().all(|(c, b)| crate::repo::cid::verify(c, b)));
        let (_, map) = read_car_bytes(&original, Limits::default()).await.unwrap();
        assert_eq!(map.len(), distinct, "{name}");
        // The root commit is in the file.
        assert!(map.contains_key(&roots[0]), "{name}");
        // All six files are canonical: rewriting the sections in order reproduces every byte.
        let rewritten = write_car_bytes(roots[0], blocks).await;
        assert_eq!(rewritten, original, "{name}");
    }
}

#[tokio::test]
async fn header_only_car() {
    let root = cid_for_cbor(&[0xa0]);
    let bytes = CarWriter::new(Vec::new(), root).finish().await.unwrap();
    // varint(58) then {"roots": [root], "version": 1}.
    assert_eq!(bytes.len(), 59);
    assert_eq!(bytes[0], 58);
    let (roots, blocks) = read_all(&bytes, Limits::default()).await.unwrap();
    assert_eq!(roots, vec![root]);
    assert!(blocks.is_empty());
}

/// A block set: the header `{roots: [], version: 1}` in canonical DAG-CBOR (keys by length,
/// `roots` first), as `@ipld/car` encodes the reference's `blocksToCarStream(null, …)`.
#[tokio::test]
async fn rootless_car_has_the_canonical_empty_header() {
    let bytes = CarWriter::without_roots(Vec::new()).finish().await.unwrap();
    let mut expected = vec![0x11, 0xa2, 0x65];
    expected.extend_from_slice(b"roots");
    expected.extend_from_slice(&[0x80, 0x67]);
    expected.extend_from_slice(b"version");
    expected.push(0x01);
    assert_eq!(bytes, expected);

    let blocks: Vec<(Cid, Bytes)> = (0..3).map(generated_block).collect();
    let car = write_rootless_car_bytes(blocks.clone()).await;
    assert_eq!(car[..18], expected[..]);
    // The default reader refuses it; a block-set reader returns the blocks in order.
    assert!(matches!(
        CarReader::new(&car[..], Limits::default()).await,
        Err(Error::EmptyRoots)
    ));
    let mut reader = CarReader::with_root_policy(&car[..], Limits::default(), RootPolicy::Any)
        .await
        .unwrap();
    assert!(reader.roots().is_empty());
    let mut read = Vec::new();
    while let Some(block) = reader.next_block().await.unwrap() {
        read.push(block);
    }
    assert_eq!(read, blocks);
}

#[tokio::test]
async fn writer_reports_a_closed_stream() {
    let (write_end, read_end) = tokio::io::duplex(64);
    drop(read_end);
    let root = cid_for_cbor(&[0xa0]);
    let mut writer = CarWriter::new(write_end, root);
    // Buffered, so the failure may surface at a later write or at the final flush.
    let mut result = writer.write_block(&root, &[0xa0]).await;
    if result.is_ok() {
        result = writer.finish().await.map(drop);
    }
    assert!(matches!(result, Err(Error::Write(_))), "{result:?}");
}

#[tokio::test]
async fn reader_is_fused_after_end() {
    let car = fixture_car();
    let mut reader = CarReader::new(&car[..], Limits::default()).await.unwrap();
    while reader.next_block().await.unwrap().is_some() {}
    assert_eq!(reader.blocks_read(), 5);
    assert!(reader.next_block().await.unwrap().is_none());
}

/// `n` blocks, alternating DAG-CBOR and raw, each distinct.
fn generated_block(i: u64) -> (Cid, Bytes) {
    if i.is_multiple_of(2) {
        // A CBOR unsigned integer (major type 0, 8-byte argument).
        let mut bytes = vec![0x1b];
        bytes.extend_from_slice(&i.to_be_bytes());
        (cid_for_cbor(&bytes), Bytes::from(bytes))
    } else {
        let bytes = format!("raw block {i}").into_bytes();
        (cid_for_raw(&bytes), Bytes::from(bytes))
    }
}

#[tokio::test]
async fn streams_50k_blocks_through_a_small_pipe() {
    const N: u64 = 50_000;
    // The pipe holds 16 KiB; the CAR is about 2.5 MB, so both sides must run concurrently.
    let (write_end, read_end) = tokio::io::duplex(16 * 1024);
    let root = generated_block(0).0;
    let writer = tokio::spawn(async move {
        let mut car = CarWriter::new(write_end, root);
        for i in 0..N {
            let (cid, bytes) = generated_block(i);
            car.write_block(&cid, &bytes).await.unwrap();
        }
        let mut end = car.finish().await.unwrap();
        tokio::io::AsyncWriteExt::shutdown(&mut end).await.unwrap();
    });
    let mut reader = CarReader::new(read_end, Limits::default()).await.unwrap();
    assert_eq!(reader.roots(), &[root]);
    let mut count = 0u64;
    while let Some((cid, bytes)) = reader.next_block().await.unwrap() {
        assert_eq!((cid, bytes), generated_block(count));
        count += 1;
    }
    writer.await.unwrap();
    assert_eq!(count, N);
    assert!(reader.bytes_read() > 2_000_000);
}

/// Records the size of every batch it is given.
#[derive(Default)]
struct CountingStore {
    inner: MemoryBlockStore,
    batches: Mutex<Vec<(usize, String)>>,
}

impl BlockStore for CountingStore {
    async fn get(&self, cid: &Cid) -> Result<Option<Bytes>, blockstore::Error> {
        self.inner.get(cid).await
    }
    async fn has(&self, cid: &Cid) -> Result<bool, blockstore::Error> {
        self.inner.has(cid).await
    }
    async fn put_many(&self, blocks: &BlockMap, rev: &str) -> Result<(), blockstore::Error> {
        self.batches
            .lock()
            .unwrap()
            .push((blocks.len(), rev.to_owned()));
        self.inner.put_many(blocks, rev).await
    }
}

#[tokio::test]
async fn read_into_store_batches() {
    let blocks: Vec<_> = (0..2500).map(generated_block).collect();
    let root = blocks[0].0;
    let car = write_car_bytes(root, blocks.clone()).await;
    let store = CountingStore::default();
    let reader = CarReader::new(&car[..], Limits::default()).await.unwrap();
    let stored = read_into_store(reader, &store, "3kabc").await.unwrap();
    assert_eq!(stored.roots, vec![root]);
    assert_eq!(stored.blocks, 2500);
    let data_len: usize = blocks.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(stored.block_bytes, data_len as u64);
    assert_eq!(
        *store.batches.lock().unwrap(),
        vec![
            (1000, "3kabc".to_owned()),
            (1000, "3kabc".to_owned()),
            (500, "3kabc".to_owned())
        ]
    );
    assert_eq!(store.inner.len(), 2500);
    for (cid, bytes) in &blocks {
        assert_eq!(store.inner.get(cid).await.unwrap().as_ref(), Some(bytes));
        assert_eq!(store.inner.rev_of(cid).as_deref(), Some("3kabc"));
    }
}

#[tokio::test]
async fn read_into_store_fixture_and_failure() {
    let car = fixture_car();
    let store = MemoryBlockStore::new();
    let reader = CarReader::new(&car[..], Limits::default()).await.unwrap();
    let stored = read_into_store(reader, &store, "rev1").await.unwrap();
    assert_eq!(stored.blocks, 5);
    assert_eq!(store.len(), 5);

    // A CAR that fails verification stores nothing from the failing batch.
    let mut bad = car.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let store = MemoryBlockStore::new();
    let reader = CarReader::new(&bad[..], Limits::default()).await.unwrap();
    let err = read_into_store(reader, &store, "rev1").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::HashMismatch {
                at: Location::Block(4),
                ..
            }
        ),
        "{err}"
    );
    assert!(store.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any sequence of blocks written then read comes back identical, in order.
    #[test]
    fn write_read_round_trip(
        datas in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
        raw in proptest::collection::vec(any::<bool>(), 20),
    ) {
        let blocks: Vec<(Cid, Bytes)> = datas
            .into_iter()
            .zip(raw)
            .map(|(d, raw)| {
                let cid = if raw { cid_for_raw(&d) } else { cid_for_cbor(&d) };
                (cid, Bytes::from(d))
            })
            .collect();
        let root = cid_for_cbor(b"root");
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (roots, read) = rt.block_on(async {
            let car = write_car_bytes(root, blocks.clone()).await;
            read_all(&car, Limits::default()).await
        }).unwrap();
        prop_assert_eq!(roots, vec![root]);
        prop_assert_eq!(read, blocks);
    }
}
