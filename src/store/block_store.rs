//! [`BlockStore`] over an actor-store pool.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use sqlx::sqlite::SqlitePool;

use super::direct::DirectDb;
use super::sqlite::{self, OpenOptions};
use super::{Error, blocks};
use crate::repo::blockstore::{self, BlockMap, BlockStore};

/// The repo engine's block store backed by one account's SQLite actor store.
///
/// Cloning shares the pool. Each call takes a pooled connection for its duration;
/// [`put_many`](BlockStore::put_many) writes its whole batch in one transaction. With the
/// store's [`DirectDb`] ([`SqliteBlockStore::with_direct`]), block reads (loading a tree)
/// run on its connections instead, and need no pool connection.
#[derive(Debug, Clone)]
pub struct SqliteBlockStore {
    pool: SqlitePool,
    direct: Option<Arc<DirectDb>>,
}

impl SqliteBlockStore {
    /// A block store over an already opened (and migrated) actor-store pool.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool, direct: None }
    }

    /// [`SqliteBlockStore::new`] whose reads go through `direct` (the same database).
    pub(crate) fn with_direct(pool: SqlitePool, direct: Arc<DirectDb>) -> Self {
        Self {
            pool,
            direct: Some(direct),
        }
    }

    /// Opens the actor store at `path` (see [`sqlite::open`]).
    pub async fn open(path: &Path, opts: &OpenOptions) -> Result<Self, Error> {
        Ok(Self::new(sqlite::open(path, opts).await?))
    }

    /// A fresh in-memory store, for tests (see [`sqlite::open_in_memory`]).
    pub async fn open_in_memory() -> Result<Self, Error> {
        Ok(Self::new(sqlite::open_in_memory().await?))
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The stored blocks among `cids`, and the CIDs that are missing.
    pub async fn get_many(&self, cids: &[Cid]) -> Result<(BlockMap, Vec<Cid>), Error> {
        let mut conn = self.pool.acquire().await?;
        blocks::get_many(&mut conn, cids).await
    }

    /// Number of stored blocks.
    pub async fn count(&self) -> Result<u64, Error> {
        let mut conn = self.pool.acquire().await?;
        blocks::count(&mut conn).await
    }

    /// The revision that first wrote a block.
    pub async fn rev_of(&self, cid: &Cid) -> Result<Option<String>, Error> {
        let mut conn = self.pool.acquire().await?;
        blocks::rev_of(&mut conn, cid).await
    }

    async fn put_many_tx(&self, blocks: &BlockMap, rev: &str) -> Result<(), Error> {
        let mut tx = sqlite::begin_write(&self.pool).await?;
        blocks::put_many(&mut tx, blocks, rev).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl BlockStore for SqliteBlockStore {
    async fn get(&self, cid: &Cid) -> Result<Option<Bytes>, blockstore::Error> {
        if let Some(direct) = &self.direct {
            return Ok(direct.block(*cid).await?);
        }
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        Ok(blocks::get(&mut conn, cid).await?)
    }

    async fn has(&self, cid: &Cid) -> Result<bool, blockstore::Error> {
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        Ok(blocks::has(&mut conn, cid).await?)
    }

    async fn put_many(&self, blocks: &BlockMap, rev: &str) -> Result<(), blockstore::Error> {
        Ok(self.put_many_tx(blocks, rev).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::cid::cid_for_cbor;

    fn block(i: u32) -> (Cid, Bytes) {
        let bytes = Bytes::from(serde_ipld_dagcbor::to_vec(&("block store", i)).unwrap());
        (cid_for_cbor(&bytes), bytes)
    }

    async fn exercise(store: SqliteBlockStore) {
        let blocks: BlockMap = (0..10).map(block).collect();
        store.put_many(&blocks, "3kaaaaaaaaaa2").await.unwrap();
        let (cid, bytes) = block(3);
        assert_eq!(store.get(&cid).await.unwrap(), Some(bytes.clone()));
        assert_eq!(store.get_required(&cid).await.unwrap(), bytes);
        assert!(store.has(&cid).await.unwrap());
        let (absent, _) = block(99);
        assert_eq!(store.get(&absent).await.unwrap(), None);
        assert!(!store.has(&absent).await.unwrap());
        assert!(matches!(
            store.get_required(&absent).await,
            Err(blockstore::Error::NotFound(c)) if c == absent
        ));
        // A clone shares the database.
        let clone = store.clone();
        clone
            .put_many(&BlockMap::from([block(3), block(10)]), "3kaaaaaaaaab2")
            .await
            .unwrap();
        assert_eq!(store.count().await.unwrap(), 11);
        assert_eq!(
            store.rev_of(&cid).await.unwrap().as_deref(),
            Some("3kaaaaaaaaaa2")
        );
        assert_eq!(
            store.rev_of(&block(10).0).await.unwrap().as_deref(),
            Some("3kaaaaaaaaab2")
        );
        let (found, missing) = store.get_many(&[cid, absent]).await.unwrap();
        assert_eq!(found, BlockMap::from([(cid, bytes)]));
        assert_eq!(missing, vec![absent]);
    }

    #[tokio::test]
    async fn block_store_in_memory() {
        exercise(SqliteBlockStore::open_in_memory().await.unwrap()).await;
    }

    #[tokio::test]
    async fn block_store_on_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("actor.sqlite");
        exercise(
            SqliteBlockStore::open(&path, &OpenOptions::default())
                .await
                .unwrap(),
        )
        .await;
    }

    #[tokio::test]
    async fn backend_errors_are_mapped() {
        let store = SqliteBlockStore::open_in_memory().await.unwrap();
        sqlx::query("DROP TABLE repo_block")
            .execute(store.pool())
            .await
            .unwrap();
        let err = store.get(&block(0).0).await.unwrap_err();
        let blockstore::Error::Backend(source) = err else {
            panic!("expected a backend error, got {err:?}");
        };
        assert!(matches!(
            source.downcast_ref::<Error>(),
            Some(Error::Database(_))
        ));
        let err = store
            .put_many(&BlockMap::from([block(0)]), "r")
            .await
            .unwrap_err();
        assert!(matches!(err, blockstore::Error::Backend(_)));
    }

    /// The MST known-answer vectors on the SQLite store, as on the memory store.
    #[tokio::test]
    async fn mst_known_answer_suite_on_sqlite() {
        crate::repo::mst::testsuite::known_answer_suite(async || {
            SqliteBlockStore::open_in_memory().await.unwrap()
        })
        .await;
    }

    /// The same suite on a file database (WAL, pooled connections).
    #[tokio::test]
    async fn mst_known_answer_suite_on_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        crate::repo::mst::testsuite::known_answer_suite(async || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = dir.path().join(format!("actor-{n}.sqlite"));
            SqliteBlockStore::open(&path, &OpenOptions::default())
                .await
                .unwrap()
        })
        .await;
    }
}
