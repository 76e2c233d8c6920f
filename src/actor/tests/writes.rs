use std::collections::BTreeMap;

use cid::Cid;

use super::*;
use crate::repo::blockstore::BlockMap;
use crate::repo::cbor;
use crate::repo::mst::RecordOp;
use crate::repo::verify::verify_blocks;
use crate::sequencer::events::tests::{check_commit, decode_commit};
use crate::store::{blocks, records, root};

const POST: &str = "app.bsky.feed.post";
const LIKE: &str = "app.bsky.feed.like";

async fn all_blocks(repo: &ActorRepo, d: &Did) -> BlockMap {
    let handle = repo.stores().open(d).await.unwrap().unwrap();
    let mut conn = handle.pool().acquire().await.unwrap();
    blocks::list_since(&mut conn, None, None, u32::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.cid, b.bytes))
        .collect()
}

/// The repository in the store verifies, holds nothing else, and the records index lists
/// exactly its records.
async fn assert_consistent(repo: &ActorRepo, d: &Did, key: &Keypair) -> usize {
    let head = repo.current_root(d).await.unwrap();
    let blocks = all_blocks(repo, d).await;
    let verified = verify_blocks(&blocks, head.cid, Some(d.as_str()), Some(&key.public_key()))
        .await
        .unwrap();
    assert_eq!(
        blocks.len(),
        1 + verified.node_count
            + verified
                .records
                .iter()
                .map(|(_, c)| c)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
        "the store holds the current repository and nothing else"
    );
    let handle = repo.stores().open(d).await.unwrap().unwrap();
    let mut conn = handle.pool().acquire().await.unwrap();
    let indexed: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT collection || '/' || rkey, cid FROM record ORDER BY 1")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let indexed: Vec<(String, Cid)> = indexed
        .into_iter()
        .map(|(p, c)| (p, Cid::try_from(c.as_slice()).unwrap()))
        .collect();
    let in_tree: Vec<(String, Cid)> = verified
        .records
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(indexed, in_tree);
    in_tree.len()
}

#[tokio::test]
async fn create_repo_announces_a_new_account() {
    let env = Env::new(8).await;
    let alice = did(1);
    let key = Keypair::generate(Algorithm::K256);
    let result = env
        .repo
        .create_repo(&alice, &key, Some(&handle("alice.test")))
        .await
        .unwrap();
    assert!(result.results.is_empty());
    let head = env.repo.current_root(&alice).await.unwrap();
    assert_eq!(
        (head.cid, head.rev.as_str()),
        (result.cid, result.rev.as_str())
    );
    assert_eq!(assert_consistent(&env.repo, &alice, &key).await, 0);

    let events = env.events().await;
    let kinds: Vec<(i64, &str, Option<&str>)> = events
        .iter()
        .map(|e| (e.seq, e.event_type.as_str(), e.rev.as_deref()))
        .collect();
    let rev = Some(result.rev.as_str());
    assert_eq!(
        kinds,
        vec![
            (1, "identity", rev),
            (2, "account", rev),
            (3, "commit", rev),
            (4, "sync", rev)
        ]
    );
    let Ipld::Map(identity) = cbor::decode(&events[0].event).unwrap() else {
        panic!()
    };
    assert_eq!(identity["handle"], Ipld::String("alice.test".into()));
    assert_eq!(identity["did"], Ipld::String(alice.to_string()));
    let Ipld::Map(account) = cbor::decode(&events[1].event).unwrap() else {
        panic!()
    };
    assert_eq!(account["active"], Ipld::Bool(true));
    assert!(!account.contains_key("status"));
    let commit = decode_commit(&events[2].event).await;
    assert_eq!(commit.commit, result.cid);
    assert_eq!(commit.since, None);
    assert!(commit.ops.is_empty());
    check_commit(&commit, &key).await;
    // Everything moved: the outbox is empty after the next write folds the deletion in.
    env.repo
        .apply_writes(&alice, vec![post_write("3kaaaaaaaaaa2", "hi")], None)
        .await
        .unwrap();
    assert_eq!(env.outbox_len(&alice).await, 1);

    // A second creation is refused and changes nothing.
    assert!(matches!(
        env.repo.create_repo(&alice, &key, None).await,
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(assert_consistent(&env.repo, &alice, &key).await, 1);

    // Without an announcement nothing is sequenced.
    let bob = did(2);
    env.repo.create_repo(&bob, &key, None).await.unwrap();
    assert!(env.events().await.iter().all(|e| e.did != bob.as_str()));
    assert_eq!(env.outbox_len(&bob).await, 0);
}

#[tokio::test]
async fn a_store_left_without_a_head_is_replaced() {
    let env = Env::new(8).await;
    let alice = did(1);
    let stale_key = Keypair::generate(Algorithm::K256);
    drop(env.repo.stores().create(&alice, &stale_key).await.unwrap());
    let key = Keypair::generate(Algorithm::K256);
    env.repo.create_repo(&alice, &key, None).await.unwrap();
    let handle = env.repo.stores().open(&alice).await.unwrap().unwrap();
    assert_eq!(handle.keypair().to_private_bytes(), key.to_private_bytes());
    assert_consistent(&env.repo, &alice, &key).await;
}

#[tokio::test]
async fn creates_updates_deletes_with_index_events_and_block_cleanup() {
    let env = Env::new(8).await;
    let alice = did(1);
    let key = env.account(&alice).await;
    let first = env.repo.current_root(&alice).await.unwrap();

    // Two paths with the identical record share one block.
    let same = post("same text");
    let result = env
        .repo
        .apply_writes(
            &alice,
            vec![
                create(POST, "3kaaaaaaaaaa2", same.clone()),
                create(POST, "3kaaaaaaaaab2", same.clone()),
                post_write("3kaaaaaaaaac2", "third"),
                create(LIKE, "3kaaaaaaaaad2", post("a like")),
            ],
            None,
        )
        .await
        .unwrap();
    let same_cid = cbor::cid_for_value(&same).unwrap();
    assert_eq!(result.results.len(), 4);
    assert_eq!(
        result.results[0].uri.as_str(),
        format!("at://{alice}/{POST}/3kaaaaaaaaaa2")
    );
    assert_eq!(result.results[0].cid, Some(same_cid));
    assert_eq!(result.results[1].cid, Some(same_cid));
    assert!(result.rev > first.rev);
    assert_eq!(assert_consistent(&env.repo, &alice, &key).await, 4);

    // Deleting one of the twins keeps the shared block for the other.
    let result = env
        .repo
        .apply_writes(&alice, vec![delete(POST, "3kaaaaaaaaaa2")], None)
        .await
        .unwrap();
    assert_eq!(result.results[0].cid, None);
    assert_eq!(assert_consistent(&env.repo, &alice, &key).await, 3);
    let twin = env
        .repo
        .get_record(&alice, &nsid(POST), &rkey("3kaaaaaaaaab2"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((twin.cid, &twin.value), (same_cid, &same));

    // Updating the other releases the block; update + delete in one commit.
    let changed = post("changed");
    let result = env
        .repo
        .apply_writes(
            &alice,
            vec![
                update(POST, "3kaaaaaaaaab2", changed.clone()),
                delete(LIKE, "3kaaaaaaaaad2"),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        result.results[0].cid,
        Some(cbor::cid_for_value(&changed).unwrap())
    );
    assert_eq!(assert_consistent(&env.repo, &alice, &key).await, 2);
    assert!(!all_blocks(&env.repo, &alice).await.contains_key(&same_cid));
    assert_eq!(
        env.repo.describe_collections(&alice).await.unwrap(),
        vec![POST.to_owned()]
    );

    // Every commit reached the firehose, in order, and each verifies and inverts.
    let events = env.events().await;
    assert_eq!(events.len(), 3);
    let mut since = Some(first.rev.clone());
    for event in &events {
        assert_eq!(event.event_type, "commit");
        let commit = decode_commit(&event.event).await;
        assert_eq!(commit.since, since);
        assert_eq!(event.rev.as_deref(), Some(commit.rev.as_str()));
        check_commit(&commit, &key).await;
        since = Some(commit.rev);
    }
    let last = decode_commit(&events[2].event).await;
    assert_eq!(
        last.ops,
        vec![
            RecordOp::Update {
                key: format!("{POST}/3kaaaaaaaaab2"),
                prev: same_cid,
                cid: cbor::cid_for_value(&changed).unwrap(),
            },
            RecordOp::Delete {
                key: format!("{LIKE}/3kaaaaaaaaad2"),
                prev: cbor::cid_for_value(&post("a like")).unwrap(),
            },
        ]
    );
    assert_eq!(
        since.as_deref(),
        Some(env.repo.current_root(&alice).await.unwrap().rev.as_str())
    );
}

#[tokio::test]
async fn blob_references_are_indexed() {
    let env = Env::new(8).await;
    let alice = did(1);
    env.account(&alice).await;
    let blob = crate::repo::cid::cid_for_raw(b"image bytes");
    let blob_ref = crate::repo::cbor::BlobRef {
        cid: blob,
        mime_type: "image/png".into(),
        size: 11,
    }
    .to_value();
    let record = Ipld::Map(BTreeMap::from([
        ("$type".into(), Ipld::String(POST.into())),
        ("embed".into(), Ipld::List(vec![blob_ref.clone(), blob_ref])),
    ]));
    // Not uploaded yet: refused, nothing committed.
    let head = env.repo.current_root(&alice).await.unwrap();
    let err = env
        .repo
        .apply_writes(
            &alice,
            vec![create(POST, "3kaaaaaaaaaa2", record.clone())],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BlobNotFound(cid) if cid == blob),
        "{err:?}"
    );
    assert_eq!(env.repo.current_root(&alice).await.unwrap(), head);

    let store = env.repo.blob_store().clone();
    let body: crate::blobs::ByteStream = Box::pin(futures::stream::iter([Ok(
        bytes::Bytes::from_static(b"image bytes"),
    )]));
    let temp = store.put_temp(&alice, body, 100).await.unwrap();
    let tracked = env
        .repo
        .track_blob(&alice, &temp, "image/png")
        .await
        .unwrap();
    assert_eq!((tracked.cid, tracked.size), (blob, 11));
    assert!(!store.has(&alice, &blob).await.unwrap());
    env.repo
        .apply_writes(&alice, vec![create(POST, "3kaaaaaaaaaa2", record)], None)
        .await
        .unwrap();
    assert!(store.has(&alice, &blob).await.unwrap());
    assert!(!store.has_temp(&alice, &temp.key).await.unwrap());
    let handle = env.repo.stores().open(&alice).await.unwrap().unwrap();
    let uri = format!("at://{alice}/{POST}/3kaaaaaaaaaa2");
    {
        let mut conn = handle.pool().acquire().await.unwrap();
        assert_eq!(
            records::blobs_of(&mut conn, &uri).await.unwrap(),
            vec![blob]
        );
    }
    env.repo
        .apply_writes(
            &alice,
            vec![update(POST, "3kaaaaaaaaaa2", post("no blob"))],
            None,
        )
        .await
        .unwrap();
    let mut conn = handle.pool().acquire().await.unwrap();
    assert!(records::blobs_of(&mut conn, &uri).await.unwrap().is_empty());
    assert!(
        records::records_for_blob(&mut conn, &blob)
            .await
            .unwrap()
            .is_empty()
    );
    // The last reference went: so did the blob.
    assert_eq!(crate::store::blobs::count(&mut conn).await.unwrap(), 0);
    assert!(!store.has(&alice, &blob).await.unwrap());
}

#[tokio::test]
async fn get_and_list_records() {
    let env = Env::new(8).await;
    let alice = did(1);
    env.account(&alice).await;
    // Distinct, valid record keys that sort like their index.
    let rkeys: Vec<String> = (0..25u8)
        .map(|i| {
            format!(
                "3kaaaaaaaa{}{}2",
                char::from(b'a' + i / 5),
                char::from(b'a' + i % 5)
            )
        })
        .collect();
    let writes = rkeys.iter().map(|k| post_write(k, k)).collect();
    env.repo.apply_writes(&alice, writes, None).await.unwrap();
    env.repo
        .apply_writes(
            &alice,
            vec![create(LIKE, "3kaaaaaaaaaa2", post("like"))],
            None,
        )
        .await
        .unwrap();
    let collection = nsid(POST);

    let got = env
        .repo
        .get_record(&alice, &collection, &rkey(&rkeys[3]), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.uri, format!("at://{alice}/{POST}/{}", rkeys[3]));
    assert_eq!(got.value, post(&rkeys[3]));
    assert_eq!(got.cid, cbor::cid_for_value(&post(&rkeys[3])).unwrap());
    assert!(chrono::DateTime::parse_from_rfc3339(&got.indexed_at).is_ok());
    // With a CID: only that version.
    let same = env
        .repo
        .get_record(&alice, &collection, &rkey(&rkeys[3]), Some(&got.cid))
        .await
        .unwrap();
    assert_eq!(same.as_ref(), Some(&got));
    let other_cid = cbor::cid_for_value(&post("other")).unwrap();
    assert_eq!(
        env.repo
            .get_record(&alice, &collection, &rkey(&rkeys[3]), Some(&other_cid))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        env.repo
            .get_record(&alice, &collection, &rkey("3zzzzzzzzzzz2"), None)
            .await
            .unwrap(),
        None
    );

    // Default order: record key descending, cursor = last key of the page.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = env
            .repo
            .list_records(&alice, &collection, 10, cursor.as_deref(), false)
            .await
            .unwrap();
        if page.records.is_empty() {
            assert_eq!(page.cursor, None);
            break;
        }
        assert!(page.records.len() <= 10);
        let last = page
            .records
            .last()
            .unwrap()
            .uri
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(page.cursor.as_deref(), Some(last.as_str()));
        seen.extend(page.records.iter().map(|r| r.value.clone()));
        cursor = page.cursor;
    }
    let expected: Vec<Ipld> = rkeys.iter().rev().map(|k| post(k)).collect();
    assert_eq!(seen, expected);

    // Reverse: ascending.
    let page = env
        .repo
        .list_records(&alice, &collection, 3, None, true)
        .await
        .unwrap();
    let keys: Vec<&str> = page
        .records
        .iter()
        .map(|r| r.uri.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(keys, vec![rkeys[0].as_str(), &rkeys[1], &rkeys[2]]);
    let page = env
        .repo
        .list_records(&alice, &collection, 3, page.cursor.as_deref(), true)
        .await
        .unwrap();
    assert_eq!(page.records[0].value, post(&rkeys[3]));
    // Limits are clamped to 1..=100; other collections are separate.
    let page = env
        .repo
        .list_records(&alice, &collection, 0, None, false)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 1);
    let page = env
        .repo
        .list_records(&alice, &nsid(LIKE), 100, None, false)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(
        env.repo.describe_collections(&alice).await.unwrap(),
        vec![LIKE.to_owned(), POST.to_owned()]
    );

    // Unknown accounts.
    let nobody = did(99);
    assert!(matches!(
        env.repo.get_record(&nobody, &collection, &rkey("a"), None).await,
        Err(Error::RepoNotFound(d)) if d == nobody.as_str()
    ));
    assert!(matches!(
        env.repo
            .list_records(&nobody, &collection, 10, None, false)
            .await,
        Err(Error::RepoNotFound(_))
    ));
    assert!(matches!(
        env.repo.current_root(&nobody).await,
        Err(Error::RepoNotFound(_))
    ));
    assert!(matches!(
        env.repo.apply_writes(&nobody, vec![], None).await,
        Err(Error::RepoNotFound(_))
    ));
}

/// The JSON reads (`getRecord`, `listRecords`) give what the value reads give, as JSON: the
/// same records, versions, order and cursors.
#[tokio::test]
async fn json_reads_match_value_reads() {
    fn parsed(record: &RecordJson) -> (String, Cid, serde_json::Value) {
        let value = serde_json::from_str(&record.value).expect("the value is JSON");
        (record.uri.clone(), record.cid, value)
    }
    fn expected(entry: &RecordEntry) -> (String, Cid, serde_json::Value) {
        (
            entry.uri.clone(),
            entry.cid,
            cbor::value_to_json(&entry.value),
        )
    }
    let env = Env::new(8).await;
    let alice = did(1);
    env.account(&alice).await;
    let rkeys: Vec<String> = (0..12u8)
        .map(|i| format!("3kaaaaaaaaa{}2", char::from(b'a' + i)))
        .collect();
    let writes = rkeys.iter().map(|k| post_write(k, k)).collect();
    env.repo.apply_writes(&alice, writes, None).await.unwrap();
    let collection = nsid(POST);

    for key in [&rkeys[0], &rkeys[5], "3zzzzzzzzzzz2"] {
        let key = rkey(key);
        let entry = env
            .repo
            .get_record(&alice, &collection, &key, None)
            .await
            .unwrap();
        let json = env
            .repo
            .get_record_json(&alice, &collection, &key, None)
            .await
            .unwrap();
        assert_eq!(json.as_ref().map(parsed), entry.as_ref().map(expected));
        if let Some(entry) = entry {
            let same = env
                .repo
                .get_record_json(&alice, &collection, &key, Some(&entry.cid));
            assert_eq!(
                same.await.unwrap().as_ref().map(parsed),
                Some(expected(&entry))
            );
            let other = cbor::cid_for_value(&post("other")).unwrap();
            let none = env
                .repo
                .get_record_json(&alice, &collection, &key, Some(&other));
            assert_eq!(none.await.unwrap(), None);
        }
    }
    for reverse in [false, true] {
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = env
                .repo
                .list_records(&alice, &collection, 5, cursor.as_deref(), reverse)
                .await
                .unwrap();
            let json = env
                .repo
                .list_records_json(&alice, &collection, 5, cursor.as_deref(), reverse)
                .await
                .unwrap();
            let got: Vec<_> = json.records.iter().map(parsed).collect();
            let want: Vec<_> = page.records.iter().map(expected).collect();
            assert_eq!(got, want, "reverse {reverse}, after {cursor:?}");
            assert_eq!(json.cursor, page.cursor);
            pages += 1;
            if page.records.is_empty() {
                break;
            }
            cursor = page.cursor;
        }
        assert_eq!(pages, 4, "12 records in pages of 5, then the empty page");
    }
    assert!(matches!(
        env.repo
            .get_record_json(&did(99), &collection, &rkey("a"), None)
            .await,
        Err(Error::RepoNotFound(_))
    ));
}

#[tokio::test]
async fn swaps_and_limits_refuse_without_writing() {
    let env = Env::new(8).await;
    let alice = did(1);
    let key = env.account(&alice).await;
    let created = env
        .repo
        .apply_writes(&alice, vec![post_write("3kaaaaaaaaaa2", "v1")], None)
        .await
        .unwrap();
    let v1 = created.results[0].cid.unwrap();
    let head = env.repo.current_root(&alice).await.unwrap();
    let events_before = env.events().await.len();

    let with_swap = |mut w: RecordWrite, swap: Option<Option<Cid>>| {
        w.swap = swap;
        w
    };
    let other = cbor::cid_for_value(&post("other")).unwrap();
    let record_mismatch = |current: Option<Cid>| {
        move |e: &Error| {
            matches!(e, Error::InvalidSwap(SwapMismatch::Record { current: c, path })
                if *c == current && path == &format!("{POST}/3kaaaaaaaaaa2"))
        }
    };
    type Expect = Box<dyn Fn(&Error) -> bool>;
    let cases: Vec<(Vec<RecordWrite>, Option<Cid>, Expect)> = vec![
        // swapCommit not the head.
        (
            vec![post_write("3kaaaaaaaaab2", "x")],
            Some(other),
            Box::new(
                move |e| matches!(e, Error::InvalidSwap(SwapMismatch::Commit { current }) if *current == head.cid),
            ),
        ),
        // Update / delete with the wrong expected CID, or expecting absence.
        (
            vec![with_swap(
                update(POST, "3kaaaaaaaaaa2", post("v2")),
                Some(Some(other)),
            )],
            None,
            Box::new(record_mismatch(Some(v1))),
        ),
        (
            vec![with_swap(
                update(POST, "3kaaaaaaaaaa2", post("v2")),
                Some(None),
            )],
            None,
            Box::new(record_mismatch(Some(v1))),
        ),
        (
            vec![with_swap(delete(POST, "3kaaaaaaaaaa2"), Some(Some(other)))],
            None,
            Box::new(record_mismatch(Some(v1))),
        ),
        // Create expecting absence where a record exists, or naming a CID.
        (
            vec![with_swap(post_write("3kaaaaaaaaaa2", "again"), Some(None))],
            None,
            Box::new(record_mismatch(Some(v1))),
        ),
        (
            vec![
                post_write("3kaaaaaaaaac2", "fine"),
                with_swap(post_write("3kaaaaaaaaaa2", "again"), Some(Some(v1))),
            ],
            None,
            Box::new(record_mismatch(Some(v1))),
        ),
        // Plain create of an existing record, update or delete of a missing one.
        (
            vec![post_write("3kaaaaaaaaaa2", "dup")],
            None,
            Box::new(|e| {
                matches!(
                    e,
                    Error::Repo(crate::repo::repository::Error::RecordExists(_))
                )
            }),
        ),
        (
            vec![delete(POST, "3kaaaaaaaaaz2")],
            None,
            Box::new(|e| {
                matches!(
                    e,
                    Error::Repo(crate::repo::repository::Error::RecordNotFound(_))
                )
            }),
        ),
        // Too many writes, and a record over 1,000,000 bytes.
        (
            (0..201)
                .map(|i| post_write(&format!("3kab{i:09}"), "x"))
                .collect(),
            None,
            Box::new(|e| {
                matches!(
                    e,
                    Error::TooManyWrites {
                        count: 201,
                        max: 200
                    }
                )
            }),
        ),
        (
            vec![create(
                POST,
                "3kaaaaaaaaab2",
                Ipld::Map(BTreeMap::from([(
                    "b".into(),
                    Ipld::Bytes(vec![0; 1_000_000]),
                )])),
            )],
            None,
            Box::new(|e| {
                matches!(
                    e,
                    Error::RecordTooLarge {
                        len: 1_000_008,
                        max: 1_000_000,
                        ..
                    }
                )
            }),
        ),
    ];
    for (i, (writes, swap_commit, expected)) in cases.into_iter().enumerate() {
        let err = env
            .repo
            .apply_writes(&alice, writes, swap_commit)
            .await
            .unwrap_err();
        assert!(expected(&err), "case {i}: {err:?}");
    }
    assert_eq!(env.repo.current_root(&alice).await.unwrap(), head);
    assert_eq!(env.events().await.len(), events_before);
    assert_eq!(assert_consistent(&env.repo, &alice, &key).await, 1);

    // Matching swaps succeed.
    let result = env
        .repo
        .apply_writes(
            &alice,
            vec![
                with_swap(update(POST, "3kaaaaaaaaaa2", post("v2")), Some(Some(v1))),
                with_swap(post_write("3kaaaaaaaaab2", "new"), Some(None)),
            ],
            Some(head.cid),
        )
        .await
        .unwrap();
    let v2 = result.results[0].cid.unwrap();
    env.repo
        .apply_writes(
            &alice,
            vec![with_swap(delete(POST, "3kaaaaaaaaaa2"), Some(Some(v2)))],
            Some(result.cid),
        )
        .await
        .unwrap();
    assert_eq!(assert_consistent(&env.repo, &alice, &key).await, 1);
    // 200 writes is allowed.
    let writes = (0..200)
        .map(|i| post_write(&format!("3kac{i:09}"), "x"))
        .collect();
    env.repo.apply_writes(&alice, writes, None).await.unwrap();
    assert_eq!(assert_consistent(&env.repo, &alice, &key).await, 201);
    assert_eq!(
        SwapMismatch::Record {
            path: "a/b".into(),
            current: None
        }
        .to_string(),
        "Record was at null"
    );
    assert_eq!(
        SwapMismatch::Commit { current: v2 }.to_string(),
        format!("Commit was at {v2}")
    );
}

#[tokio::test]
async fn sequence_sync_and_destroy() {
    let env = Env::new(8).await;
    let alice = did(1);
    let key = env.account(&alice).await;
    let result = env
        .repo
        .apply_writes(&alice, vec![post_write("3kaaaaaaaaaa2", "hi")], None)
        .await
        .unwrap();
    let seq = env.repo.sequence_sync(&alice).await.unwrap();
    let events = env.events().await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.seq, last.event_type.as_str(), last.rev.as_deref()),
        (seq, "sync", None)
    );
    let Ipld::Map(body) = cbor::decode(&last.event).unwrap() else {
        panic!()
    };
    assert_eq!(body["rev"], Ipld::String(result.rev.clone()));
    let Ipld::Bytes(car) = &body["blocks"] else {
        panic!()
    };
    let (roots, blocks) =
        crate::repo::car::read_car_bytes(car, crate::repo::car::Limits::default())
            .await
            .unwrap();
    assert_eq!(roots, vec![result.cid]);
    let commit = crate::repo::commit::Commit::from_cbor(&blocks[&result.cid]).unwrap();
    commit.verify(&key.public_key()).unwrap();

    assert!(
        env.sequencer()
            .pending_dids()
            .await
            .unwrap()
            .contains(&alice.to_string())
    );
    assert!(env.repo.destroy_repo(&alice).await.unwrap());
    assert!(!env.repo.stores().exists(&alice).await.unwrap());
    assert!(env.sequencer().pending_dids().await.unwrap().is_empty());
    assert!(matches!(
        env.repo.current_root(&alice).await,
        Err(Error::RepoNotFound(_))
    ));
    assert!(matches!(
        env.repo.sequence_sync(&alice).await,
        Err(Error::RepoNotFound(_))
    ));
    assert!(!env.repo.destroy_repo(&alice).await.unwrap());
    // The DID can be created afresh.
    env.account(&alice).await;
    assert_eq!(root_rev_count(&env, &alice).await, 1);
}

async fn root_rev_count(env: &Env, d: &Did) -> i64 {
    let handle = env.repo.stores().open(d).await.unwrap().unwrap();
    let mut conn = handle.pool().acquire().await.unwrap();
    assert!(root::get(&mut conn).await.unwrap().is_some());
    sqlx::query_scalar("SELECT COUNT(*) FROM repo_root")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

/// The repository cached by a writer is used only while its commit is the head: a commit
/// made through another instance (as after a restart) is picked up, not overwritten.
#[tokio::test]
async fn a_stale_cached_repository_is_not_used() {
    let env = Env::new(8).await;
    let alice = did(1);
    let key = env.account(&alice).await;
    env.repo
        .apply_writes(&alice, vec![post_write("3kaaaaaaaaaa2", "one")], None)
        .await
        .unwrap();
    let other = super::open_service(&env.dir, 8).await;
    other
        .apply_writes(&alice, vec![post_write("3kaaaaaaaaab2", "two")], None)
        .await
        .unwrap();
    let third = env
        .repo
        .apply_writes(&alice, vec![post_write("3kaaaaaaaaac2", "three")], None)
        .await
        .unwrap();
    assert_eq!(env.repo.current_root(&alice).await.unwrap().cid, third.cid);
    assert_eq!(assert_consistent(&env.repo, &alice, &key).await, 3);
    // More commits than a cached value serves before it is reloaded.
    for i in 0..(2 * crate::actor::stores::CachedRepo::MAX_USES) {
        let rk = format!("3kab{i:09}");
        env.repo
            .apply_writes(&alice, vec![post_write(&rk, "x")], None)
            .await
            .unwrap();
    }
    let n = 3 + 2 * crate::actor::stores::CachedRepo::MAX_USES as usize;
    assert_eq!(assert_consistent(&env.repo, &alice, &key).await, n);
}

#[tokio::test]
async fn a_commit_built_on_a_stale_cached_head_is_refused_and_rebuilt() {
    let env = Env::new(8).await;
    let alice = did(1);
    let key = Keypair::generate(Algorithm::K256);
    env.repo.create_repo(&alice, &key, None).await.unwrap();
    env.repo
        .apply_writes(&alice, vec![post_write("3kaaaaaaaaaa2", "one")], None)
        .await
        .unwrap();
    // A second service on the same files moves the head behind the first one's cached tree
    // (no writer of this server does; the head check in the commit's transaction is what
    // keeps a stale tree from overwriting a commit).
    let other = open_service(&env.dir, 8).await;
    other
        .apply_writes(&alice, vec![post_write("3kaaaaaaaab22", "two")], None)
        .await
        .unwrap();
    drop(other);
    let third = env
        .repo
        .apply_writes(&alice, vec![post_write("3kaaaaaaaac22", "three")], None)
        .await
        .unwrap();
    assert_eq!(env.repo.current_root(&alice).await.unwrap().cid, third.cid);
    assert_eq!(assert_consistent(&env.repo, &alice, &key).await, 3);
}
