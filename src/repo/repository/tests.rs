use std::collections::BTreeMap;

use super::*;
use crate::crypto::{Algorithm, Keypair};
use crate::repo::blockstore::MemoryBlockStore;
use crate::repo::car::{CarWriter, Limits};
use crate::repo::cid::cid_for_cbor;
use crate::repo::mst::invert;
use crate::repo::verify::{self, verify_blocks};
use crate::syntax::TidClock;

const DID: &str = "did:plc:z72i7hdynmk6r22z27h6tvur";

fn post(text: &str) -> Ipld {
    Ipld::Map(BTreeMap::from([
        (
            "$type".to_owned(),
            Ipld::String("app.bsky.feed.post".into()),
        ),
        ("text".to_owned(), Ipld::String(text.into())),
        (
            "createdAt".to_owned(),
            Ipld::String("2024-01-02T03:04:05.678Z".into()),
        ),
    ]))
}

fn nsid(s: &str) -> Nsid {
    s.parse().unwrap()
}

fn rkey(s: &str) -> RecordKey {
    s.parse().unwrap()
}

fn create(rk: &str, text: &str) -> Write {
    Write::Create {
        collection: nsid("app.bsky.feed.post"),
        rkey: rkey(rk),
        record: post(text),
    }
}

fn update(rk: &str, text: &str) -> Write {
    Write::Update {
        collection: nsid("app.bsky.feed.post"),
        rkey: rkey(rk),
        record: post(text),
    }
}

fn delete(rk: &str) -> Write {
    Write::Delete {
        collection: nsid("app.bsky.feed.post"),
        rkey: rkey(rk),
    }
}

/// A repository whose blocks are all persisted in `store`, with `n` posts.
async fn repo_with(
    store: &MemoryBlockStore,
    key: &Keypair,
    clock: &TidClock,
    n: usize,
) -> Repo<MemoryBlockStore> {
    let writes: Vec<Write> = (0..n)
        .map(|i| create(&format!("3k{i:011}"), &format!("post {i}")))
        .collect();
    let prepared = Repo::format_init(store.clone(), DID, key, clock.next().to_string(), &writes)
        .await
        .unwrap();
    store
        .put_many(&prepared.data.new_blocks, &prepared.data.rev)
        .await
        .unwrap();
    Repo::apply(prepared)
}

#[tokio::test]
async fn first_commit_is_signed_and_verifiable() {
    let store = MemoryBlockStore::new();
    let key = Keypair::generate(Algorithm::K256);
    let clock = TidClock::default();
    let repo = repo_with(&store, &key, &clock, 20).await;
    assert_eq!(repo.did(), DID);
    assert_eq!(repo.commit().version(), 3);
    repo.commit().verify(&key.public_key()).unwrap();
    let reloaded = Repo::load(store.clone(), repo.cid()).await.unwrap();
    assert_eq!(reloaded.data(), repo.data());
    assert_eq!(reloaded.rev(), repo.rev());
    let (cid, value) = reloaded
        .get_record("app.bsky.feed.post", "3k00000000007")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(value, post("post 7"));
    assert_eq!(cid, cid_for_cbor(&cbor::encode(&post("post 7")).unwrap()));
    assert!(
        reloaded
            .get_record("app.bsky.feed.post", "3k99999999999")
            .await
            .unwrap()
            .is_none()
    );

    // Everything the first commit wrote is exactly a complete, verifiable repository.
    let all: BlockMap = {
        let mut m = BlockMap::new();
        let mut w = repo.mst().walk_blocks();
        while let Some(node) = w.next().await.unwrap() {
            m.insert(node.cid, node.bytes);
        }
        for (_, cid) in repo.mst().all_leaves().await.unwrap() {
            m.insert(cid, store.get(&cid).await.unwrap().unwrap());
        }
        m.insert(repo.cid(), Bytes::from(repo.commit().to_cbor()));
        m
    };
    let verified = verify_blocks(&all, repo.cid(), Some(DID), Some(&key.public_key()))
        .await
        .unwrap();
    assert_eq!(verified.records.len(), 20);
    let other = Keypair::generate(Algorithm::K256);
    assert!(matches!(
        verify_blocks(&all, repo.cid(), None, Some(&other.public_key())).await,
        Err(verify::Error::Commit(_))
    ));
    assert!(matches!(
        verify_blocks(&all, repo.cid(), Some("did:plc:other"), None).await,
        Err(verify::Error::WrongDid { .. })
    ));
}

#[tokio::test]
async fn commit_data_describes_the_change_and_inverts_from_relevant_blocks_alone() {
    let store = MemoryBlockStore::new();
    let key = Keypair::generate(Algorithm::K256);
    let clock = TidClock::default();
    let repo = repo_with(&store, &key, &clock, 300).await;
    let writes = [
        create("3kzzzzzzzzzz2", "new"),
        update("3k00000000010", "edited"),
        delete("3k00000000200"),
    ];
    let prev_record = repo
        .mst()
        .get("app.bsky.feed.post/3k00000000010")
        .await
        .unwrap()
        .unwrap();
    let deleted_record = repo
        .mst()
        .get("app.bsky.feed.post/3k00000000200")
        .await
        .unwrap()
        .unwrap();
    let rev = clock.next().to_string();
    let (next, data) = repo
        .commit_writes(&writes, &key, rev.clone())
        .await
        .unwrap();

    assert_eq!(data.rev, rev);
    assert_eq!(data.since.as_deref(), repo.rev());
    assert_eq!(data.prev_data, Some(repo.data()));
    assert_eq!(*data.commit.data(), next.data());
    assert_eq!(data.cid, next.cid());
    let new_cid = cid_for_cbor(&cbor::encode(&post("new")).unwrap());
    let edited_cid = cid_for_cbor(&cbor::encode(&post("edited")).unwrap());
    assert_eq!(
        data.ops,
        vec![
            RecordOp::Create {
                key: "app.bsky.feed.post/3kzzzzzzzzzz2".into(),
                cid: new_cid
            },
            RecordOp::Update {
                key: "app.bsky.feed.post/3k00000000010".into(),
                prev: prev_record,
                cid: edited_cid
            },
            RecordOp::Delete {
                key: "app.bsky.feed.post/3k00000000200".into(),
                prev: deleted_record
            },
        ]
    );
    // New blocks: the commit, both new records, and MST nodes only.
    assert!(data.new_blocks.contains_key(&data.cid));
    assert!(data.new_blocks.contains_key(&new_cid));
    assert!(data.new_blocks.contains_key(&edited_cid));
    assert!(data.removed_cids.contains(&repo.cid()));
    assert_eq!(data.released_record_cids, vec![prev_record, deleted_record]);
    for cid in &data.removed_cids {
        assert!(!data.new_blocks.contains_key(cid));
    }
    assert!(data.relevant_blocks.len() >= data.new_blocks.len());

    // A firehose receiver holding only the relevant blocks recomputes prevData.
    let partial = MemoryBlockStore::from_blocks(&data.relevant_blocks);
    let inverted = invert(partial, next.data(), &data.ops).await.unwrap();
    assert_eq!(inverted, repo.data());
    data.commit.verify(&key.public_key()).unwrap();
}

#[tokio::test]
async fn write_errors() {
    let store = MemoryBlockStore::new();
    let key = Keypair::generate(Algorithm::K256);
    let clock = TidClock::default();
    let repo = repo_with(&store, &key, &clock, 3).await;
    let rev = || clock.next().to_string();
    assert!(matches!(
        repo.format_commit(&[create("3k00000000001", "x")], &key, rev()).await,
        Err(Error::RecordExists(p)) if p == "app.bsky.feed.post/3k00000000001"
    ));
    assert!(matches!(
        repo.format_commit(&[update("3kaaaaaaaaaaa", "x")], &key, rev())
            .await,
        Err(Error::RecordNotFound(_))
    ));
    assert!(matches!(
        repo.format_commit(&[delete("3kaaaaaaaaaaa")], &key, rev())
            .await,
        Err(Error::RecordNotFound(_))
    ));
    assert!(matches!(
        repo.format_commit(
            &[create("3kaaaaaaaaaaa", "a"), delete("3kaaaaaaaaaaa")],
            &key,
            rev()
        )
        .await,
        Err(Error::DuplicatePath(_))
    ));
    let current = repo.rev().unwrap().to_owned();
    assert!(matches!(
        repo.format_commit(&[create("3kaaaaaaaaaaa", "a")], &key, current)
            .await,
        Err(Error::StaleRev { .. })
    ));
    // A failed format changes nothing.
    let reloaded = Repo::load(store, repo.cid()).await.unwrap();
    assert_eq!(reloaded.mst().all_leaves().await.unwrap().len(), 3);
}

#[tokio::test]
async fn empty_repository_and_car_round_trip() {
    let store = MemoryBlockStore::new();
    let key = Keypair::generate(Algorithm::P256);
    let clock = TidClock::default();
    let repo = repo_with(&store, &key, &clock, 0).await;
    assert_eq!(
        repo.data().to_string(),
        "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
        "the empty MST node"
    );
    let (repo, _) = repo
        .commit_writes(
            &[create("3kaaaaaaaaaaa", "hello")],
            &key,
            clock.next().to_string(),
        )
        .await
        .unwrap();

    // Export through the streaming writer and verify what comes out.
    let mut car = CarWriter::new(Vec::new(), repo.cid());
    car.write_block(&repo.cid(), &repo.commit().to_cbor())
        .await
        .unwrap();
    let mut walker = repo.mst().walk_blocks();
    while let Some(node) = walker.next().await.unwrap() {
        car.write_block(&node.cid, &node.bytes).await.unwrap();
        for cid in node.records {
            let bytes = store.get(&cid).await.unwrap().unwrap();
            car.write_block(&cid, &bytes).await.unwrap();
        }
    }
    let bytes = car.finish().await.unwrap();
    let (verified, blocks) = verify::verify_car(
        &bytes[..],
        Limits::default(),
        Some(DID),
        Some(&key.public_key()),
    )
    .await
    .unwrap();
    assert_eq!(blocks.len(), 3, "commit, one MST node, one record");
    assert_eq!(
        verified.records,
        vec![(
            "app.bsky.feed.post/3kaaaaaaaaaaa".to_owned(),
            cid_for_cbor(&cbor::encode(&post("hello")).unwrap())
        )]
    );
}

#[tokio::test]
async fn first_commit_rules_and_equivalence_with_incremental_building() {
    let key = Keypair::generate(Algorithm::K256);
    let clock = TidClock::default();
    let rev = || clock.next().to_string();
    let store = MemoryBlockStore::new();
    assert!(matches!(
        Repo::format_init(store.clone(), DID, &key, rev(), &[create("3kaaaaaaaaaaa", "a"), create("3kaaaaaaaaaaa", "b")]).await,
        Err(Error::DuplicatePath(p)) if p == "app.bsky.feed.post/3kaaaaaaaaaaa"
    ));
    assert!(matches!(
        Repo::format_init(
            store.clone(),
            DID,
            &key,
            rev(),
            &[update("3kaaaaaaaaaaa", "a")]
        )
        .await,
        Err(Error::RecordNotFound(_))
    ));
    // The bulk-built first commit has the same tree as the same records added one by one.
    let writes: Vec<Write> = (0..500)
        .map(|i| create(&format!("3k{:011}", (i * 7919) % 500), &format!("p{i}")))
        .collect();
    let bulk = Repo::format_init(store.clone(), DID, &key, rev(), &writes)
        .await
        .unwrap();
    let empty = Repo::format_init(store.clone(), DID, &key, rev(), &[])
        .await
        .unwrap();
    store.put_many(&empty.data.new_blocks, "r").await.unwrap();
    let (incremental, _) = Repo::apply(empty)
        .commit_writes(&writes, &key, rev())
        .await
        .unwrap();
    assert_eq!(*bulk.data.commit.data(), incremental.data());
    assert_eq!(bulk.data.ops.len(), 500);
    assert_eq!(bulk.data.ops[0].key(), "app.bsky.feed.post/3k00000000000");
    // The first commit's blocks are the whole repository: relevant == new.
    assert_eq!(bulk.data.relevant_blocks, bulk.data.new_blocks);
    assert_eq!(bulk.data.since, None);
    assert_eq!(bulk.data.prev_data, None);
}
