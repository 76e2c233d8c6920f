use bytes::Bytes;
use cid::Cid;
use futures::TryStreamExt;
use sqlx::sqlite::SqlitePool;
use tempfile::TempDir;

use super::*;
use crate::repo::cid::cid_for_cbor;
use crate::store::{root, sqlite};

const REV1: &str = "3kaaaaaaaaaa2";
const REV2: &str = "3kaaaaaaaaab2";
const REV3: &str = "3kaaaaaaaaac2";

/// A small DAG-CBOR block, distinct for every `(tag, i)`.
fn block(tag: &str, i: u32) -> (Cid, Bytes) {
    let bytes = Bytes::from(serde_ipld_dagcbor::to_vec(&(tag, i)).unwrap());
    (cid_for_cbor(&bytes), bytes)
}

fn blocks_of(tag: &str, n: u32) -> BlockMap {
    (0..n).map(|i| block(tag, i)).collect()
}

/// A database to test on; keeps its temporary directory alive.
struct Db {
    pool: SqlitePool,
    name: &'static str,
    _dir: Option<TempDir>,
}

async fn file_db() -> (Db, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("actor.sqlite");
    let pool = sqlite::open(&path, &sqlite::OpenOptions::default())
        .await
        .unwrap();
    let db = Db {
        pool,
        name: "file",
        _dir: Some(dir),
    };
    (db, path)
}

/// The same database schema on a temporary file and in memory.
async fn backends() -> Vec<Db> {
    let memory = Db {
        pool: sqlite::open_in_memory().await.unwrap(),
        name: "memory",
        _dir: None,
    };
    vec![file_db().await.0, memory]
}

#[tokio::test]
async fn put_get_has_round_trip() {
    for db in backends().await {
        let mut conn = db.pool.acquire().await.unwrap();
        let blocks = blocks_of("round trip", 50);
        assert_eq!(
            put_many(&mut conn, &blocks, REV1).await.unwrap(),
            50,
            "{}",
            db.name
        );
        assert_eq!(count(&mut conn).await.unwrap(), 50);
        for (cid, bytes) in &blocks {
            assert_eq!(get(&mut conn, cid).await.unwrap().as_ref(), Some(bytes));
            assert!(has(&mut conn, cid).await.unwrap());
            assert_eq!(rev_of(&mut conn, cid).await.unwrap().as_deref(), Some(REV1));
        }
        let (absent, _) = block("absent", 0);
        assert_eq!(get(&mut conn, &absent).await.unwrap(), None);
        assert!(!has(&mut conn, &absent).await.unwrap());
        assert_eq!(rev_of(&mut conn, &absent).await.unwrap(), None);

        // Present, absent and repeated CIDs; each missing CID is reported once, in order.
        let (absent2, _) = block("absent", 1);
        let (c0, b0) = block("round trip", 0);
        let (c7, b7) = block("round trip", 7);
        let query = [absent2, c7, absent, c0, absent2, c7];
        assert_eq!(
            missing(&mut conn, &query).await.unwrap(),
            vec![absent2, absent]
        );
        assert!(missing(&mut conn, &[c0, c7]).await.unwrap().is_empty());
        let (found, missing) = get_many(&mut conn, &query).await.unwrap();
        assert_eq!(found, BlockMap::from([(c0, b0), (c7, b7)]));
        assert_eq!(missing, vec![absent2, absent]);

        let (found, missing) = get_many(&mut conn, &[]).await.unwrap();
        assert!(found.is_empty() && missing.is_empty());
        let all: Vec<Cid> = blocks.keys().copied().collect();
        let (found, missing) = get_many(&mut conn, &all).await.unwrap();
        assert_eq!(found, blocks);
        assert!(missing.is_empty());
        // An empty batch writes nothing.
        assert_eq!(
            put_many(&mut conn, &BlockMap::new(), REV2).await.unwrap(),
            0
        );
        assert_eq!(count(&mut conn).await.unwrap(), 50);
    }
}

#[tokio::test]
async fn duplicate_put_keeps_first_rev_and_bytes() {
    for db in backends().await {
        let mut conn = db.pool.acquire().await.unwrap();
        let (a, a_bytes) = block("dup", 0);
        let (b, b_bytes) = block("dup", 1);
        let (c, c_bytes) = block("dup", 2);
        let first = BlockMap::from([(a, a_bytes.clone()), (b, b_bytes.clone())]);
        assert_eq!(put_many(&mut conn, &first, REV1).await.unwrap(), 2);
        // `b` again (with other bytes under its CID: the original must win) and a new `c`.
        let second = BlockMap::from([(b, Bytes::from_static(b"other")), (c, c_bytes.clone())]);
        assert_eq!(
            put_many(&mut conn, &second, REV2).await.unwrap(),
            1,
            "{}",
            db.name
        );
        assert_eq!(rev_of(&mut conn, &a).await.unwrap().as_deref(), Some(REV1));
        assert_eq!(rev_of(&mut conn, &b).await.unwrap().as_deref(), Some(REV1));
        assert_eq!(rev_of(&mut conn, &c).await.unwrap().as_deref(), Some(REV2));
        assert_eq!(get(&mut conn, &b).await.unwrap(), Some(b_bytes));
        assert_eq!(count(&mut conn).await.unwrap(), 3);
        let size: i64 = sqlx::query_scalar("SELECT size FROM repo_block WHERE cid = ?1")
            .bind(c.to_bytes())
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(size, i64::try_from(c_bytes.len()).unwrap());
    }
}

#[tokio::test]
async fn large_batch_is_chunked_below_the_parameter_limit() {
    const N: u32 = 20_000;
    for db in backends().await {
        let blocks = blocks_of("large", N);
        assert_eq!(blocks.len(), 20_000);
        let mut tx = sqlite::begin_write(&db.pool).await.unwrap();
        assert_eq!(
            put_many(&mut tx, &blocks, REV1).await.unwrap(),
            u64::from(N)
        );
        tx.commit().await.unwrap();
        let mut conn = db.pool.acquire().await.unwrap();
        assert_eq!(count(&mut conn).await.unwrap(), u64::from(N), "{}", db.name);
        let cids: Vec<Cid> = blocks.keys().copied().collect();
        let (found, missing) = get_many(&mut conn, &cids).await.unwrap();
        assert_eq!(found, blocks);
        assert!(missing.is_empty());
        // Re-putting everything inserts nothing.
        assert_eq!(put_many(&mut conn, &blocks, REV2).await.unwrap(), 0);
        let newer: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repo_block WHERE repoRev <> ?1")
            .bind(REV1)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(newer, 0);
    }
}

/// A block with the revision that wrote it, in export order.
type Exported = Vec<(String, Cid, Bytes)>;

/// The blocks of three commits, and the export order of `(rev, block)` pairs.
fn three_revisions() -> (Vec<(&'static str, BlockMap)>, Exported) {
    let revs = vec![
        (REV1, blocks_of("rev one", 10)),
        (REV2, blocks_of("rev two", 15)),
        (REV3, blocks_of("rev three", 7)),
    ];
    let mut order: Vec<(String, Cid, Bytes)> = revs
        .iter()
        .flat_map(|(rev, blocks)| {
            blocks
                .iter()
                .map(|(cid, bytes)| (rev.to_string(), *cid, bytes.clone()))
        })
        .collect();
    order.sort_by(|x, y| (&x.0, x.1.to_bytes()).cmp(&(&y.0, y.1.to_bytes())));
    (revs, order)
}

fn after_rev(order: &[(String, Cid, Bytes)], since: Option<&str>) -> Vec<(Cid, Bytes)> {
    order
        .iter()
        .filter(|(rev, _, _)| since.is_none_or(|s| rev.as_str() > s))
        .map(|(_, cid, bytes)| (*cid, bytes.clone()))
        .collect()
}

#[tokio::test]
async fn listing_since_a_revision() {
    let (revs, order) = three_revisions();
    assert_eq!(order.len(), 32);
    for db in backends().await {
        let mut conn = db.pool.acquire().await.unwrap();
        for (rev, blocks) in &revs {
            put_many(&mut conn, blocks, rev).await.unwrap();
        }
        for since in [
            None,
            Some(""),
            Some(REV1),
            Some("3kaaaaaaaaab"),
            Some(REV2),
            Some(REV3),
        ] {
            let expected = after_rev(&order, since);
            for limit in [1, 4, 32, 1000] {
                // Follow the cursor page by page.
                let mut listed = Vec::new();
                let mut after = None;
                loop {
                    let page = list_since(&mut conn, since, after.as_ref(), limit)
                        .await
                        .unwrap();
                    assert!(page.len() <= limit as usize);
                    let Some(last) = page.last() else { break };
                    after = Some(last.cursor());
                    for b in &page {
                        assert!(since.is_none_or(|s| b.rev.as_str() > s));
                        assert_eq!(
                            rev_of(&mut conn, &b.cid).await.unwrap().as_ref(),
                            Some(&b.rev)
                        );
                    }
                    listed.extend(page.into_iter().map(|b| (b.cid, b.bytes)));
                }
                assert_eq!(
                    listed, expected,
                    "{} since {since:?} limit {limit}",
                    db.name
                );
            }
        }
        // Expected counts, written out: 32 in all, 22 after REV1, 7 after REV2, none after REV3.
        assert_eq!(after_rev(&order, None).len(), 32);
        assert_eq!(after_rev(&order, Some(REV1)).len(), 22);
        assert_eq!(after_rev(&order, Some(REV2)).len(), 7);
        assert_eq!(after_rev(&order, Some(REV3)).len(), 0);
        // A zero limit is read as 1.
        assert_eq!(list_since(&mut conn, None, None, 0).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn stream_since_yields_exactly_the_newer_blocks() {
    let (revs, order) = three_revisions();
    for db in backends().await {
        {
            let mut conn = db.pool.acquire().await.unwrap();
            for (rev, blocks) in &revs {
                put_many(&mut conn, blocks, rev).await.unwrap();
            }
        }
        for since in [None, Some(REV1), Some(REV2), Some(REV3)] {
            // 22 and 7 are exact multiples of a page for some of these sizes.
            for page_size in [1, 7, 11, 22, 500] {
                let streamed: Vec<(Cid, Bytes)> =
                    stream_since(db.pool.clone(), since.map(str::to_owned), page_size)
                        .try_collect()
                        .await
                        .unwrap();
                assert_eq!(
                    streamed,
                    after_rev(&order, since),
                    "{} since {since:?} page {page_size}",
                    db.name
                );
            }
        }
    }
}

#[tokio::test]
async fn reopened_file_keeps_blocks_and_root() {
    let (db, path) = file_db().await;
    let blocks = blocks_of("persisted", 25);
    let head = *blocks.keys().next().unwrap();
    {
        let mut tx = sqlite::begin_write(&db.pool).await.unwrap();
        put_many(&mut tx, &blocks, REV1).await.unwrap();
        root::set(&mut tx, "did:plc:abc", &head, REV1)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    db.pool.close().await;

    let pool = sqlite::open(&path, &sqlite::OpenOptions::default())
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(count(&mut conn).await.unwrap(), 25);
    let cids: Vec<Cid> = blocks.keys().copied().collect();
    assert_eq!(get_many(&mut conn, &cids).await.unwrap(), (blocks, vec![]));
    let root = root::get(&mut conn).await.unwrap().unwrap();
    assert_eq!(
        (root.did.as_str(), root.cid, root.rev.as_str()),
        ("did:plc:abc", head, REV1)
    );
}

#[tokio::test]
async fn rolled_back_transaction_leaves_no_blocks() {
    for db in backends().await {
        let blocks = blocks_of("rolled back", 2500);
        let head = *blocks.keys().next().unwrap();
        {
            let mut tx = sqlite::begin_write(&db.pool).await.unwrap();
            assert_eq!(put_many(&mut tx, &blocks, REV2).await.unwrap(), 2500);
            root::set(&mut tx, "did:plc:abc", &head, REV2)
                .await
                .unwrap();
            assert_eq!(count(&mut tx).await.unwrap(), 2500);
            // A later step of the commit fails; the caller rolls back.
            let err = root::set(&mut tx, "did:plc:other", &head, REV3).await;
            assert!(err.is_err());
            tx.rollback().await.unwrap();
        }
        {
            // Dropping a transaction without committing rolls it back too.
            let mut tx = sqlite::begin_write(&db.pool).await.unwrap();
            put_many(&mut tx, &blocks, REV1).await.unwrap();
        }
        let mut conn = db.pool.acquire().await.unwrap();
        assert_eq!(count(&mut conn).await.unwrap(), 0, "{}", db.name);
        assert!(!has(&mut conn, &head).await.unwrap());
        assert_eq!(root::get(&mut conn).await.unwrap(), None);
    }
}

#[tokio::test]
async fn corrupt_stored_cid_is_an_error() {
    for db in backends().await {
        let mut conn = db.pool.acquire().await.unwrap();
        let (cid, _) = block("corrupt", 0);
        sqlx::query(
            "INSERT INTO repo_block (cid, repoRev, size, content) VALUES (x'01ff', ?1, 1, x'00')",
        )
        .bind(REV1)
        .execute(&mut *conn)
        .await
        .unwrap();
        assert!(matches!(
            list_since(&mut conn, None, None, 10).await,
            Err(Error::InvalidStoredCid(_))
        ));
        // Lookups by a well-formed CID never meet the corrupt row.
        assert_eq!(
            get_many(&mut conn, &[cid]).await.unwrap(),
            (BlockMap::new(), vec![cid])
        );
        // The in-memory pool has one connection: give it back before streaming.
        drop(conn);
        let streamed: Result<Vec<_>, _> =
            stream_since(db.pool.clone(), None, 10).try_collect().await;
        assert!(
            matches!(streamed, Err(Error::InvalidStoredCid(_))),
            "{}: {streamed:?}",
            db.name
        );
    }
}
