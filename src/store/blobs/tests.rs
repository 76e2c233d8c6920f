use super::*;
use crate::repo::cid::cid_for_raw;
use crate::store::{records, sqlite};

const EARLY: &str = "2024-01-02T03:04:05.678Z";
const LATE: &str = "2024-01-02T09:04:05.678Z";

fn uri(rkey: &str) -> String {
    format!("at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/{rkey}")
}

async fn put_temp(conn: &mut SqliteConnection, cid: &Cid, key: &str, at: &str) -> bool {
    put(
        conn,
        &NewBlob {
            cid,
            mime_type: "image/png",
            size: 3,
            temp_key: Some(key),
            created_at: at,
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn temp_rows_become_permanent_and_are_collected_when_unreferenced() {
    let pool = sqlite::open_in_memory().await.unwrap();
    let conn = &mut *pool.acquire().await.unwrap();
    let a = cid_for_raw(b"a");
    let b = cid_for_raw(b"b");
    assert_eq!(get(conn, &a).await.unwrap(), None);
    assert!(put_temp(conn, &a, "keya", EARLY).await);
    assert!(put_temp(conn, &b, "keyb", EARLY).await);
    // A re-upload of a temporary blob takes the new key and time.
    assert!(put_temp(conn, &b, "keyb2", LATE).await);
    let row = get(conn, &b).await.unwrap().unwrap();
    assert_eq!(row.temp_key.as_deref(), Some("keyb2"));
    assert_eq!(row.created_at, LATE);
    assert_eq!(get_by_temp_key(conn, "keyb").await.unwrap(), None);
    assert_eq!(get_by_temp_key(conn, "keyb2").await.unwrap(), Some(row));
    assert_eq!(count_temp(conn).await.unwrap(), 2);

    // Only `a` is old enough.
    let expired = expired_temp(conn, "2024-01-02T05:00:00.000Z", 10)
        .await
        .unwrap();
    assert_eq!(expired.iter().map(|r| r.cid).collect::<Vec<_>>(), vec![a]);

    // Referenced and made permanent: no longer temporary, no longer collectable.
    records::set_blobs(conn, &uri("1"), &[a]).await.unwrap();
    assert!(!clear_temp_key(conn, &a, "wrong").await.unwrap());
    assert!(clear_temp_key(conn, &a, "keya").await.unwrap());
    assert!(is_referenced(conn, &a).await.unwrap());
    assert_eq!(expired_temp(conn, LATE, 10).await.unwrap().len(), 1);
    assert_eq!(count_temp(conn).await.unwrap(), 1);
    // A permanent row is not touched by a re-upload.
    assert!(!put_temp(conn, &a, "keya2", LATE).await);
    assert_eq!(get(conn, &a).await.unwrap().unwrap().temp_key, None);

    assert_eq!(delete_if_unreferenced(conn, &a).await.unwrap(), None);
    records::set_blobs(conn, &uri("1"), &[]).await.unwrap();
    assert_eq!(delete_if_unreferenced(conn, &a).await.unwrap(), Some(None));
    assert_eq!(
        delete_if_unreferenced(conn, &b).await.unwrap(),
        Some(Some("keyb2".to_owned()))
    );
    assert_eq!(count(conn).await.unwrap(), 0);
}

#[tokio::test]
async fn listings_page_in_cid_order() {
    let pool = sqlite::open_in_memory().await.unwrap();
    let conn = &mut *pool.acquire().await.unwrap();
    let mut cids: Vec<Cid> = (0..5u8).map(|i| cid_for_raw(&[i])).collect();
    cids.sort_by_key(Cid::to_bytes);
    // Record 1 references blobs 0..3, record 2 blobs 2..5; blobs 1 and 3 have rows.
    records::set_blobs(conn, &uri("1"), &cids[0..3])
        .await
        .unwrap();
    records::set_blobs(conn, &uri("2"), &cids[2..5])
        .await
        .unwrap();
    for i in [1, 3] {
        put(
            conn,
            &NewBlob {
                cid: &cids[i],
                mime_type: "image/jpeg",
                size: 1,
                temp_key: None,
                created_at: EARLY,
            },
        )
        .await
        .unwrap();
    }
    assert_eq!(list_referenced(conn, None, None, 10).await.unwrap(), cids);
    let first = list_referenced(conn, None, None, 2).await.unwrap();
    assert_eq!(first, cids[0..2]);
    let rest = list_referenced(conn, None, first.last(), 10).await.unwrap();
    assert_eq!(rest, cids[2..5]);

    let missing = list_missing(conn, None, 10).await.unwrap();
    let expected = [
        MissingBlob {
            cid: cids[0],
            record_uri: uri("1"),
        },
        MissingBlob {
            cid: cids[2],
            record_uri: uri("1"),
        },
        MissingBlob {
            cid: cids[4],
            record_uri: uri("2"),
        },
    ];
    assert_eq!(missing, expected);
    assert_eq!(
        list_missing(conn, Some(&cids[0]), 1).await.unwrap(),
        expected[1..2]
    );
}

#[tokio::test]
async fn list_referenced_since_a_revision() {
    let pool = sqlite::open_in_memory().await.unwrap();
    let conn = &mut *pool.acquire().await.unwrap();
    let (old, new) = (cid_for_raw(b"old"), cid_for_raw(b"new"));
    for (rkey, rev, blob) in [("1", "3kaaaaaaaaaa2", old), ("2", "3kbbbbbbbbbb2", new)] {
        let (cid, bytes) = (
            cid_for_raw(rkey.as_bytes()),
            bytes::Bytes::from(rkey.to_owned()),
        );
        crate::store::blocks::put_many(
            conn,
            &crate::repo::blockstore::BlockMap::from([(cid, bytes)]),
            rev,
        )
        .await
        .unwrap();
        let uri = uri(rkey);
        records::put(
            conn,
            &records::NewRecord {
                uri: &uri,
                cid: &cid,
                collection: "app.bsky.feed.post",
                rkey,
                repo_rev: rev,
                indexed_at: EARLY,
            },
        )
        .await
        .unwrap();
        records::set_blobs(conn, &uri, &[blob]).await.unwrap();
    }
    assert_eq!(
        list_referenced(conn, Some("3kaaaaaaaaaa2"), None, 10)
            .await
            .unwrap(),
        vec![new]
    );
    assert_eq!(
        list_referenced(conn, Some("3kzzzzzzzzzz2"), None, 10)
            .await
            .unwrap(),
        Vec::<Cid>::new()
    );
}

#[tokio::test]
async fn takedown_is_set_and_lifted() {
    let pool = sqlite::open_in_memory().await.unwrap();
    let conn = &mut *pool.acquire().await.unwrap();
    let a = cid_for_raw(b"a");
    assert!(!set_takedown(conn, &a, Some("mod-1")).await.unwrap());
    assert!(put_temp(conn, &a, "keya", EARLY).await);
    assert!(set_takedown(conn, &a, Some("mod-1")).await.unwrap());
    assert_eq!(
        get(conn, &a)
            .await
            .unwrap()
            .unwrap()
            .takedown_ref
            .as_deref(),
        Some("mod-1")
    );
    assert!(set_takedown(conn, &a, None).await.unwrap());
    assert_eq!(get(conn, &a).await.unwrap().unwrap().takedown_ref, None);
}
