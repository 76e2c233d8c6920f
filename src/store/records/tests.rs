use bytes::Bytes;
use cid::Cid;
use sqlx::SqliteConnection;

use super::*;
use crate::repo::blockstore::BlockMap;
use crate::repo::cid::{cid_for_cbor, cid_for_raw};
use crate::store::{blocks, sqlite};

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const REV: &str = "3kaaaaaaaaaa2";
const AT: &str = "2024-01-02T03:04:05.678Z";

fn block(n: u32) -> (Cid, Bytes) {
    let bytes = Bytes::from(serde_ipld_dagcbor::to_vec(&("record", n)).unwrap());
    (cid_for_cbor(&bytes), bytes)
}

fn uri(collection: &str, rkey: &str) -> String {
    format!("at://{DID}/{collection}/{rkey}")
}

/// Stores block `n` and indexes it at `collection/rkey`.
async fn put_record(conn: &mut SqliteConnection, collection: &str, rkey: &str, n: u32) -> Cid {
    let (cid, bytes) = block(n);
    blocks::put_many(conn, &BlockMap::from([(cid, bytes)]), REV)
        .await
        .unwrap();
    let uri = uri(collection, rkey);
    put(
        conn,
        &NewRecord {
            uri: &uri,
            cid: &cid,
            collection,
            rkey,
            repo_rev: REV,
            indexed_at: AT,
        },
    )
    .await
    .unwrap();
    cid
}

fn rkeys(records: &[StoredRecord]) -> Vec<&str> {
    records.iter().map(|r| r.rkey.as_str()).collect()
}

#[tokio::test]
async fn put_get_update_delete() {
    let pool = sqlite::open_in_memory().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let post = "app.bsky.feed.post";
    assert_eq!(get(&mut conn, post, "a", None).await.unwrap(), None);

    let first = put_record(&mut conn, post, "a", 1).await;
    let got = get(&mut conn, post, "a", None).await.unwrap().unwrap();
    assert_eq!(
        got,
        StoredRecord {
            uri: uri(post, "a"),
            cid: first,
            collection: post.to_owned(),
            rkey: "a".to_owned(),
            repo_rev: REV.to_owned(),
            indexed_at: AT.to_owned(),
            content: block(1).1,
        }
    );
    assert_eq!(
        get(&mut conn, post, "a", Some(&first)).await.unwrap(),
        Some(got)
    );
    assert_eq!(
        get(&mut conn, post, "a", Some(&block(2).0)).await.unwrap(),
        None
    );
    assert_eq!(
        get(&mut conn, "app.bsky.feed.like", "a", None)
            .await
            .unwrap(),
        None
    );

    // An update replaces the version in place.
    let second = put_record(&mut conn, post, "a", 2).await;
    assert_eq!(count(&mut conn).await.unwrap(), 1);
    assert_eq!(
        current_cid(&mut conn, &uri(post, "a")).await.unwrap(),
        Some(second)
    );
    assert_eq!(
        get(&mut conn, post, "a", None).await.unwrap().unwrap().cid,
        second
    );

    set_blobs(&mut conn, &uri(post, "a"), &[cid_for_raw(b"x")])
        .await
        .unwrap();
    assert!(delete(&mut conn, &uri(post, "a")).await.unwrap());
    assert!(!delete(&mut conn, &uri(post, "a")).await.unwrap());
    assert_eq!(get(&mut conn, post, "a", None).await.unwrap(), None);
    assert_eq!(count(&mut conn).await.unwrap(), 0);
    assert!(
        blobs_of(&mut conn, &uri(post, "a"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn listing_pages_by_rkey_in_both_directions() {
    let pool = sqlite::open_in_memory().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let like = "app.bsky.feed.like";
    for (i, rkey) in ["c", "a", "e", "b", "d"].iter().enumerate() {
        put_record(&mut conn, like, rkey, i as u32).await;
    }
    put_record(&mut conn, "app.bsky.feed.post", "z", 99).await;

    let all = list(&mut conn, like, 100, None, false).await.unwrap();
    assert_eq!(rkeys(&all), vec!["e", "d", "c", "b", "a"]);
    assert_eq!(all[0].content, block(2).1);
    let page = list(&mut conn, like, 2, None, false).await.unwrap();
    assert_eq!(rkeys(&page), vec!["e", "d"]);
    let page = list(&mut conn, like, 2, Some("d"), false).await.unwrap();
    assert_eq!(rkeys(&page), vec!["c", "b"]);
    let page = list(&mut conn, like, 2, Some("b"), false).await.unwrap();
    assert_eq!(rkeys(&page), vec!["a"]);
    assert!(
        list(&mut conn, like, 2, Some("a"), false)
            .await
            .unwrap()
            .is_empty()
    );

    let page = list(&mut conn, like, 2, None, true).await.unwrap();
    assert_eq!(rkeys(&page), vec!["a", "b"]);
    let page = list(&mut conn, like, 2, Some("b"), true).await.unwrap();
    assert_eq!(rkeys(&page), vec!["c", "d"]);
    // A cursor need not be an existing key.
    let page = list(&mut conn, like, 10, Some("bb"), true).await.unwrap();
    assert_eq!(rkeys(&page), vec!["c", "d", "e"]);

    // The limit is clamped to 1..=100.
    assert_eq!(
        list(&mut conn, like, 0, None, false).await.unwrap().len(),
        1
    );
    for i in 0..120 {
        put_record(
            &mut conn,
            "app.bsky.graph.follow",
            &format!("k{i:03}"),
            1000 + i,
        )
        .await;
    }
    let page = list(&mut conn, "app.bsky.graph.follow", 1000, None, false)
        .await
        .unwrap();
    assert_eq!(page.len(), MAX_LIST_LIMIT as usize);
    assert_eq!(page[0].rkey, "k119");

    assert_eq!(
        collections(&mut conn).await.unwrap(),
        vec![
            "app.bsky.feed.like",
            "app.bsky.feed.post",
            "app.bsky.graph.follow"
        ]
    );
}

#[tokio::test]
async fn taken_down_records_are_hidden() {
    let pool = sqlite::open_in_memory().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let post = "app.bsky.feed.post";
    put_record(&mut conn, post, "a", 1).await;
    put_record(&mut conn, post, "b", 2).await;
    assert!(
        set_takedown(&mut conn, &uri(post, "a"), Some("mod-1"))
            .await
            .unwrap()
    );
    assert!(
        !set_takedown(&mut conn, &uri(post, "zz"), Some("mod-1"))
            .await
            .unwrap()
    );
    assert_eq!(get(&mut conn, post, "a", None).await.unwrap(), None);
    assert_eq!(
        takedown_status(&mut conn, &uri(post, "a")).await.unwrap(),
        Some((block(1).0, Some("mod-1".to_owned())))
    );
    assert_eq!(
        takedown_status(&mut conn, &uri(post, "b")).await.unwrap(),
        Some((block(2).0, None))
    );
    assert_eq!(
        takedown_status(&mut conn, &uri(post, "zz")).await.unwrap(),
        None
    );
    assert_eq!(
        rkeys(&list(&mut conn, post, 10, None, false).await.unwrap()),
        vec!["b"]
    );
    // Still indexed: it counts and its collection is listed.
    assert_eq!(count(&mut conn).await.unwrap(), 2);
    // Updating a taken-down record keeps the takedown.
    put_record(&mut conn, post, "a", 3).await;
    assert_eq!(get(&mut conn, post, "a", None).await.unwrap(), None);
    assert!(
        set_takedown(&mut conn, &uri(post, "a"), None)
            .await
            .unwrap()
    );
    assert_eq!(
        get(&mut conn, post, "a", None).await.unwrap().unwrap().cid,
        block(3).0
    );
}

#[tokio::test]
async fn blob_references() {
    let pool = sqlite::open_in_memory().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let (x, y, z) = (cid_for_raw(b"x"), cid_for_raw(b"y"), cid_for_raw(b"z"));
    let a = uri("app.bsky.feed.post", "a");
    let b = uri("app.bsky.feed.post", "b");
    set_blobs(&mut conn, &a, &[x, y, x]).await.unwrap();
    set_blobs(&mut conn, &b, &[y]).await.unwrap();
    let mut expected = vec![x, y];
    expected.sort_by_key(|c| c.to_bytes());
    assert_eq!(blobs_of(&mut conn, &a).await.unwrap(), expected);
    assert_eq!(
        records_for_blob(&mut conn, &y).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    // Rewriting replaces the set.
    set_blobs(&mut conn, &a, &[z]).await.unwrap();
    assert_eq!(blobs_of(&mut conn, &a).await.unwrap(), vec![z]);
    assert_eq!(records_for_blob(&mut conn, &y).await.unwrap(), vec![b]);
    assert!(records_for_blob(&mut conn, &x).await.unwrap().is_empty());
}

#[tokio::test]
async fn released_blocks_are_deleted_only_when_unreferenced() {
    let pool = sqlite::open_in_memory().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let post = "app.bsky.feed.post";
    // Two paths hold the identical record (one block); a third block is unreferenced.
    let shared = put_record(&mut conn, post, "a", 1).await;
    put_record(&mut conn, post, "b", 1).await;
    let (orphan, bytes) = block(2);
    blocks::put_many(&mut conn, &BlockMap::from([(orphan, bytes)]), REV)
        .await
        .unwrap();

    delete(&mut conn, &uri(post, "a")).await.unwrap();
    assert_eq!(
        delete_unreferenced_blocks(&mut conn, &[shared, orphan])
            .await
            .unwrap(),
        1
    );
    assert!(blocks::has(&mut conn, &shared).await.unwrap());
    assert!(!blocks::has(&mut conn, &orphan).await.unwrap());

    delete(&mut conn, &uri(post, "b")).await.unwrap();
    assert_eq!(
        delete_unreferenced_blocks(&mut conn, &[shared])
            .await
            .unwrap(),
        1
    );
    assert!(!blocks::has(&mut conn, &shared).await.unwrap());
}
