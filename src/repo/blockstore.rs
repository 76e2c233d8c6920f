//! Content-addressed block storage for repositories.
//!
//! The repo engine reads blocks through [`BlockStore`] and never touches a database itself:
//! tests run it on [`MemoryBlockStore`], the server on the SQLite actor store (`crate::store`).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use cid::Cid;

/// An ordered set of blocks (CID → bytes); the unit of a batched write.
pub(crate) type BlockMap = BTreeMap<Cid, Bytes>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("block not found: {0}")]
    NotFound(Cid),
    #[error("block store backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Storage of immutable, content-addressed blocks.
///
/// `put_many` records the repo revision (`rev`) that introduced each block, so that a sync
/// export can be limited to the blocks newer than a given revision. Writing a block that is
/// already present keeps its original revision.
pub trait BlockStore: Send + Sync {
    /// The bytes of a block, or `None` when it is not stored.
    fn get(&self, cid: &Cid) -> impl Future<Output = Result<Option<Bytes>, Error>> + Send;

    /// Whether a block is stored.
    fn has(&self, cid: &Cid) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Stores every block of `blocks` in one batch, tagged with the revision `rev`.
    fn put_many(
        &self,
        blocks: &BlockMap,
        rev: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The bytes of a block that must exist.
    fn get_required(&self, cid: &Cid) -> impl Future<Output = Result<Bytes, Error>> + Send {
        async move { self.get(cid).await?.ok_or(Error::NotFound(*cid)) }
    }
}

/// An in-memory block store: for tests, proofs built from a handful of blocks, and imports
/// that are verified before anything is written.
#[derive(Debug, Clone, Default)]
pub struct MemoryBlockStore {
    blocks: Arc<RwLock<HashMap<Cid, (Bytes, String)>>>,
}

impl MemoryBlockStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `blocks`, with an empty revision.
    pub fn from_blocks(blocks: &BlockMap) -> Self {
        let store = Self::new();
        store.insert_many(blocks, "");
        store
    }

    fn insert_many(&self, blocks: &BlockMap, rev: &str) {
        let mut map = self
            .blocks
            .write()
            .expect("memory block store lock poisoned");
        for (cid, bytes) in blocks {
            map.entry(*cid)
                .or_insert_with(|| (bytes.clone(), rev.to_owned()));
        }
    }

    /// Number of blocks stored.
    pub fn len(&self) -> usize {
        self.blocks
            .read()
            .expect("memory block store lock poisoned")
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The revision a block was first written with.
    #[cfg(test)]
    pub(crate) fn rev_of(&self, cid: &Cid) -> Option<String> {
        let map = self
            .blocks
            .read()
            .expect("memory block store lock poisoned");
        map.get(cid).map(|(_, rev)| rev.clone())
    }
}

impl BlockStore for MemoryBlockStore {
    async fn get(&self, cid: &Cid) -> Result<Option<Bytes>, Error> {
        let map = self
            .blocks
            .read()
            .expect("memory block store lock poisoned");
        Ok(map.get(cid).map(|(bytes, _)| bytes.clone()))
    }

    async fn has(&self, cid: &Cid) -> Result<bool, Error> {
        let map = self
            .blocks
            .read()
            .expect("memory block store lock poisoned");
        Ok(map.contains_key(cid))
    }

    async fn put_many(&self, blocks: &BlockMap, rev: &str) -> Result<(), Error> {
        self.insert_many(blocks, rev);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::cid::cid_for_cbor;

    #[tokio::test]
    async fn keeps_first_revision() {
        let store = MemoryBlockStore::new();
        let bytes = Bytes::from_static(&[0xa0]);
        let cid = cid_for_cbor(&bytes);
        let blocks = BlockMap::from([(cid, bytes.clone())]);
        store.put_many(&blocks, "rev1").await.unwrap();
        store.put_many(&blocks, "rev2").await.unwrap();
        assert_eq!(store.get(&cid).await.unwrap(), Some(bytes));
        assert_eq!(store.rev_of(&cid).as_deref(), Some("rev1"));
        assert!(store.has(&cid).await.unwrap());
        let missing = cid_for_cbor(&[0x80]);
        assert!(
            matches!(store.get_required(&missing).await, Err(Error::NotFound(c)) if c == missing)
        );
    }
}
