//! `ActorRepo::import_repo`: a whole repository in, and hostile CARs refused with the
//! previous repository intact.

use std::collections::BTreeMap;

use bytes::Bytes;
use cid::Cid;

use super::*;
use crate::repo::blockstore::{BlockMap, MemoryBlockStore};
use crate::repo::car::{self, Limits};
use crate::repo::cid::cid_for_cbor;
use crate::repo::commit::{Commit, UnsignedCommit};
use crate::repo::repository::Repo;

const POST: &str = "app.bsky.feed.post";

fn image_post(text: &str, blob: Cid) -> Ipld {
    let image = Ipld::Map(BTreeMap::from([
        ("$type".into(), Ipld::String("blob".into())),
        ("ref".into(), Ipld::Link(blob)),
        ("mimeType".into(), Ipld::String("image/png".into())),
        ("size".into(), Ipld::Integer(1234)),
    ]));
    let embed = Ipld::Map(BTreeMap::from([
        ("$type".into(), Ipld::String("app.bsky.embed.images".into())),
        (
            "images".into(),
            Ipld::List(vec![Ipld::Map(BTreeMap::from([
                ("alt".into(), Ipld::String(String::new())),
                ("image".into(), image),
            ]))]),
        ),
    ]));
    let Ipld::Map(mut map) = post(text) else {
        unreachable!()
    };
    map.insert("embed".into(), embed);
    Ipld::Map(map)
}

fn blob_cid(i: u8) -> Cid {
    Cid::new_v1(0x55, cid_for_cbor(&[i]).hash().to_owned())
}

/// A signed repository of `count` posts (two with images) for `did`: (root, blocks).
async fn build_repo(did: &Did, key: &Keypair, count: usize, rev: &str) -> (Cid, BlockMap) {
    let writes: Vec<Write> = (0..count)
        .map(|i| {
            let record = match i {
                1 => image_post("one image", blob_cid(1)),
                2 => image_post("another image", blob_cid(2)),
                _ => post(&format!("post {i}")),
            };
            Write::Create {
                collection: nsid(POST),
                rkey: rkey(&format!("3kimport{i:05}")),
                record,
            }
        })
        .collect();
    let prepared = Repo::format_init(
        MemoryBlockStore::new(),
        did.as_str(),
        key,
        rev.to_owned(),
        &writes,
    )
    .await
    .unwrap();
    (prepared.data.cid, prepared.data.new_blocks)
}

async fn car_bytes(root: Cid, blocks: &BlockMap) -> Vec<u8> {
    let sections: Vec<(Cid, Bytes)> = blocks.clone().into_iter().collect();
    car::write_car_bytes(root, sections).await
}

/// Imports `bytes` into `did`'s repository, checked against `key`.
async fn import(
    env: &Env,
    did: &Did,
    bytes: &[u8],
    key: &Keypair,
) -> Result<ImportReport, ImportError> {
    let file = env.dir.path().join("upload.car");
    std::fs::write(&file, bytes).unwrap();
    env.repo
        .import_repo(
            did,
            &file,
            &[key.public_key()],
            &env.dir.path().join("staging"),
            Limits::default(),
        )
        .await
}

/// The head and the indexed record count of `did`.
async fn state(env: &Env, did: &Did) -> (Cid, String, i64, i64) {
    let root = env.repo.current_root(did).await.unwrap();
    let handle = env.repo.stores().open(did).await.unwrap().unwrap();
    let count = |sql: &'static str| {
        let pool = handle.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let records = count("SELECT COUNT(*) FROM record").await;
    let blocks = count("SELECT COUNT(*) FROM repo_block").await;
    (root.cid, root.rev, records, blocks)
}

fn staging_is_empty(env: &Env) -> bool {
    std::fs::read_dir(env.dir.path().join("staging"))
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

#[tokio::test]
async fn imports_a_repository_and_writes_on_top_of_it() {
    let env = Env::new(8).await;
    let alice = did(1);
    env.account(&alice).await;
    let old_key = Keypair::generate(Algorithm::K256);
    let (root, blocks) = build_repo(&alice, &old_key, 300, "3kimportaaaa2").await;
    let bytes = car_bytes(root, &blocks).await;

    let report = import(&env, &alice, &bytes, &old_key).await.unwrap();
    assert_eq!(report.commit, root);
    assert_eq!(report.rev, "3kimportaaaa2");
    assert_eq!(report.records, 300);
    assert_eq!(report.expected_blobs, 2);
    assert_eq!(report.blocks, blocks.len() as u64);
    assert_eq!(report.car_bytes, bytes.len() as u64);
    let (cid, rev, records, stored) = state(&env, &alice).await;
    assert_eq!((cid, rev.as_str(), records), (root, "3kimportaaaa2", 300));
    assert_eq!(stored, blocks.len() as i64);
    assert!(staging_is_empty(&env));

    let page = env
        .repo
        .list_records(&alice, &nsid(POST), 100, None, false)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 100);
    let missing = env
        .repo
        .list_missing_blobs(&alice, None, 100)
        .await
        .unwrap();
    assert_eq!(missing.len(), 2);

    // The next commit builds on the imported tree and is signed with the account's key.
    let result = env
        .repo
        .apply_writes(
            &alice,
            vec![create(POST, "3kzzzzzzzzzz2", post("after"))],
            None,
        )
        .await
        .unwrap();
    assert!(result.rev.as_str() > "3kimportaaaa2");
    assert_eq!(state(&env, &alice).await.2, 301);
}

#[tokio::test]
async fn a_reimport_replaces_the_repository_and_a_stale_staging_file_is_ignored() {
    let env = Env::new(8).await;
    let alice = did(2);
    env.account(&alice).await;
    let key = Keypair::generate(Algorithm::K256);
    let (root, blocks) = build_repo(&alice, &key, 50, "3kimportaaaa2").await;
    import(&env, &alice, &car_bytes(root, &blocks).await, &key)
        .await
        .unwrap();
    // What a crash during an earlier import would have left behind.
    let staging = env.dir.path().join("staging");
    std::fs::write(
        staging.join("did_plc_test00000000000000000002.sqlite"),
        b"junk",
    )
    .unwrap();
    let (root2, blocks2) = build_repo(&alice, &key, 10, "3kimportaaab2").await;
    import(&env, &alice, &car_bytes(root2, &blocks2).await, &key)
        .await
        .unwrap();
    let (cid, _, records, stored) = state(&env, &alice).await;
    assert_eq!((cid, records, stored), (root2, 10, blocks2.len() as i64));
    assert!(staging_is_empty(&env));
}

#[tokio::test]
async fn an_import_whose_caller_hangs_up_still_finishes() {
    let env = Env::new(8).await;
    let alice = did(4);
    env.account(&alice).await;
    let key = Keypair::generate(Algorithm::K256);
    let (root, blocks) = build_repo(&alice, &key, 200, "3kimportaaaa2").await;
    let file = env.dir.path().join("upload.car");
    std::fs::write(&file, car_bytes(root, &blocks).await).unwrap();
    let staging = env.dir.path().join("staging");
    let keys = [key.public_key()];
    {
        let import = env
            .repo
            .import_repo(&alice, &file, &keys, &staging, Limits::default());
        let mut import = std::pin::pin!(import);
        // One poll starts it; then the caller goes away, as a handler does when its client
        // hangs up.
        assert!(futures::poll!(import.as_mut()).is_pending());
    }
    // The import holds the account's lock until its end.
    drop(env.repo.lock_account(&alice).await);
    let (cid, rev, records, _) = state(&env, &alice).await;
    assert_eq!((cid, rev.as_str(), records), (root, "3kimportaaaa2", 200));
    assert!(staging_is_empty(&env));
}

/// Imports a good repository, then `bad`; the refusal must leave the good one in place.
async fn refused(bad: impl FnOnce(&Did, &Keypair, Cid, BlockMap) -> BoxedCar) -> ImportError {
    let env = Env::new(8).await;
    let alice = did(3);
    env.account(&alice).await;
    let key = Keypair::generate(Algorithm::K256);
    let (root, blocks) = build_repo(&alice, &key, 120, "3kimportaaaa2").await;
    import(&env, &alice, &car_bytes(root, &blocks).await, &key)
        .await
        .unwrap();
    let before = state(&env, &alice).await;
    let (root2, blocks2) = build_repo(&alice, &key, 40, "3kimportaaab2").await;
    let bytes = bad(&alice, &key, root2, blocks2).await;
    let err = import(&env, &alice, &bytes, &key).await.unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert_eq!(state(&env, &alice).await, before);
    assert!(staging_is_empty(&env));
    err
}

type BoxedCar = std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + Send>>;

#[tokio::test]
async fn a_commit_signed_by_another_key_is_refused() {
    let err = refused(|did, _, _, _| {
        let did = did.clone();
        Box::pin(async move {
            let other = Keypair::generate(Algorithm::K256);
            let (root, blocks) = build_repo(&did, &other, 40, "3kimportaaab2").await;
            car_bytes(root, &blocks).await
        })
    })
    .await;
    assert!(matches!(err, ImportError::BadSignature), "{err}");
}

#[tokio::test]
async fn a_commit_for_another_did_is_refused() {
    let err = refused(|_, key, _, _| {
        let key = Keypair::from_private_bytes(Algorithm::K256, &key.to_private_bytes()).unwrap();
        Box::pin(async move {
            let (root, blocks) = build_repo(&did(99), &key, 40, "3kimportaaab2").await;
            car_bytes(root, &blocks).await
        })
    })
    .await;
    assert!(matches!(err, ImportError::WrongDid { .. }), "{err}");
}

#[tokio::test]
async fn a_missing_record_block_is_refused() {
    let err = refused(|_, _, root, mut blocks| {
        Box::pin(async move {
            // The block of one record (a post with text "post 7").
            let target = cid_for_cbor(&crate::repo::cbor::encode(&post("post 7")).unwrap());
            assert!(blocks.remove(&target).is_some());
            car_bytes(root, &blocks).await
        })
    })
    .await;
    assert!(matches!(err, ImportError::MissingRecord { .. }), "{err}");
}

#[tokio::test]
async fn a_missing_tree_node_is_refused() {
    let err = refused(|_, _, root, mut blocks| {
        Box::pin(async move {
            let commit = Commit::from_cbor(&blocks[&root]).unwrap();
            blocks.remove(commit.data());
            car_bytes(root, &blocks).await
        })
    })
    .await;
    assert!(matches!(err, ImportError::Mst(_)), "{err}");
}

#[tokio::test]
async fn a_missing_commit_block_is_refused() {
    let err = refused(|_, _, root, mut blocks| {
        Box::pin(async move {
            blocks.remove(&root);
            car_bytes(root, &blocks).await
        })
    })
    .await;
    assert!(matches!(err, ImportError::MissingCommit(_)), "{err}");
}

#[tokio::test]
async fn a_block_that_does_not_hash_to_its_cid_is_refused() {
    let err = refused(|_, _, root, blocks| {
        Box::pin(async move {
            let target = cid_for_cbor(&crate::repo::cbor::encode(&post("post 9")).unwrap());
            let mut sections: Vec<(Cid, Bytes)> = blocks.into_iter().collect();
            for (cid, bytes) in &mut sections {
                if *cid == target {
                    *bytes = Bytes::from(crate::repo::cbor::encode(&post("forged")).unwrap());
                }
            }
            car::write_car_bytes(root, sections).await
        })
    })
    .await;
    assert!(
        matches!(err, ImportError::Car(car::Error::HashMismatch { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn a_section_claiming_ten_gigabytes_is_refused() {
    let err = refused(|_, _, root, _| {
        Box::pin(async move {
            let mut bytes = car::write_car_bytes(root, Vec::new()).await;
            // varint(10 GB) then a few bytes.
            let mut len = 10_000_000_000u64;
            while len >= 0x80 {
                bytes.push((len as u8) | 0x80);
                len >>= 7;
            }
            bytes.push(len as u8);
            bytes.extend_from_slice(&[0u8; 64]);
            bytes
        })
    })
    .await;
    assert!(
        matches!(err, ImportError::Car(car::Error::SectionTooLong { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn a_truncated_stream_is_refused() {
    let err = refused(|_, _, root, blocks| {
        Box::pin(async move {
            let mut bytes = car_bytes(root, &blocks).await;
            bytes.truncate(bytes.len() - 37);
            bytes
        })
    })
    .await;
    assert!(
        matches!(err, ImportError::Car(car::Error::Truncated { .. })),
        "{err}"
    );
}

/// An MST node `{e, l}` in DAG-CBOR, keys written whole (`p` = 0).
fn node_bytes(entries: &[(&str, Cid)]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct E {
        k: serde_bytes::ByteBuf,
        p: u64,
        t: Option<Cid>,
        v: Cid,
    }
    #[derive(serde::Serialize)]
    struct N {
        e: Vec<E>,
        l: Option<Cid>,
    }
    let node = N {
        e: entries
            .iter()
            .map(|(k, v)| E {
                k: serde_bytes::ByteBuf::from(k.as_bytes().to_vec()),
                p: 0,
                t: None,
                v: *v,
            })
            .collect(),
        l: None,
    };
    serde_ipld_dagcbor::to_vec(&node).unwrap()
}

#[tokio::test]
async fn a_tree_out_of_key_order_is_refused() {
    let err = refused(|did, key, _, _| {
        let did = did.clone();
        let key = Keypair::from_private_bytes(Algorithm::K256, &key.to_private_bytes()).unwrap();
        Box::pin(async move {
            // Two layer-0 keys, in the wrong order.
            let layer0: Vec<String> = (0..100)
                .map(|i| format!("{POST}/3kimport{i:05}"))
                .filter(|k| crate::repo::mst::key_height(k.as_bytes()) == 0)
                .take(2)
                .collect();
            let record = Bytes::from(crate::repo::cbor::encode(&post("x")).unwrap());
            let record_cid = cid_for_cbor(&record);
            let node = Bytes::from(node_bytes(&[
                (&layer0[1], record_cid),
                (&layer0[0], record_cid),
            ]));
            let node_cid = cid_for_cbor(&node);
            let commit = Commit::sign(
                UnsignedCommit::new(did.as_str(), node_cid, "3kimportaaab2"),
                &key,
            );
            let commit_bytes = Bytes::from(commit.to_cbor());
            let root = cid_for_cbor(&commit_bytes);
            car::write_car_bytes(
                root,
                vec![(root, commit_bytes), (node_cid, node), (record_cid, record)],
            )
            .await
        })
    })
    .await;
    assert!(matches!(err, ImportError::Mst(_)), "{err}");
}

#[tokio::test]
async fn an_account_without_a_store_is_refused_before_any_work() {
    let env = Env::new(8).await;
    let key = Keypair::generate(Algorithm::K256);
    let err = import(&env, &did(4), b"not even a car", &key)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ImportError::Actor(e) if matches!(**e, Error::RepoNotFound(_))),
        "{err}"
    );
}
