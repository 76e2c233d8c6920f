//! Proofs: the nodes proving a key's value (or absence), and the sync 1.1 covering proof that
//! lets a receiver invert a commit's operations against the commit's blocks alone.
//!
//! The covering proof of a key, taken in the tree *after* the commit, is the union of two
//! descents from the root: towards the subtree just left of the key (down its right edge), and
//! towards the subtree just right of it (down its left edge). For a key that is absent the two
//! coincide with the search path to where the key would be. These are exactly the nodes that
//! inverting the operation reads: deleting a key merges the edges of its two neighbouring
//! subtrees; re-adding a key splits the nodes on its search path. This matches the reference
//! implementation's `getCoveringProof` (its third part, the search path to the key, is always a
//! prefix of the left descent).

use cid::Cid;

use super::ops::{below, open};
use super::{Error, Mst, Result, fault_error, load_link};
use crate::repo::blockstore::{BlockMap, BlockStore};

/// One record operation of a commit, on an MST key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOp {
    Create { key: String, cid: Cid },
    Update { key: String, prev: Cid, cid: Cid },
    Delete { key: String, prev: Cid },
}

impl RecordOp {
    pub fn key(&self) -> &str {
        match self {
            RecordOp::Create { key, .. }
            | RecordOp::Update { key, .. }
            | RecordOp::Delete { key, .. } => key,
        }
    }
}

#[derive(Clone, Copy)]
enum Descent {
    /// Down to the node holding the key, or to the empty slot where it would be.
    Search,
    /// Down the subtree just left of the key.
    LeftNeighbour,
    /// Down the subtree just right of the key.
    RightNeighbour,
}

impl<S: BlockStore + Clone> Mst<S> {
    /// Adds to `out` every node of one descent from the root.
    async fn descend(&self, key: &str, descent: Descent, out: &mut BlockMap) -> Result<()> {
        let mut link = self.root.clone();
        let mut layer = self.layer;
        loop {
            load_link(&self.store, &link, layer).await?;
            let node = open(&link, layer).map_err(fault_error)?.clone();
            let (cid, bytes) = link.block().ok_or(Error::MissingBlock(link.cid()))?;
            out.insert(cid, bytes);
            let i = node.lower_bound(key);
            let found = node.has_key_at(i, key);
            let slot = match descent {
                Descent::Search if found => break,
                Descent::Search | Descent::LeftNeighbour => i,
                Descent::RightNeighbour if found => i + 1,
                Descent::RightNeighbour => i,
            };
            let Some(child) = node.slot(slot) else { break };
            layer = below(layer, child).map_err(fault_error)?;
            link = child.clone();
        }
        Ok(())
    }

    /// The nodes from the root down to `key`, or down to the empty slot where it would be:
    /// with the commit, they prove the key's value or its absence (`sync.getRecord`).
    pub async fn proof_for_key(&self, key: &str) -> Result<BlockMap> {
        let mut out = BlockMap::new();
        self.descend(key, Descent::Search, &mut out).await?;
        Ok(out)
    }

    /// The sync 1.1 covering proof for the keys a commit touched, taken on the tree after the
    /// commit: the nodes a receiver needs to invert the operations and recompute `prevData`.
    pub async fn covering_proof<K: AsRef<str>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<BlockMap> {
        let mut out = BlockMap::new();
        for key in keys {
            let key = key.as_ref();
            self.descend(key, Descent::LeftNeighbour, &mut out).await?;
            self.descend(key, Descent::RightNeighbour, &mut out).await?;
        }
        Ok(out)
    }

    /// A new tree with `op` applied. An update or delete must name the current value as `prev`.
    #[cfg(test)]
    pub(crate) async fn apply(&self, op: &RecordOp) -> Result<Self> {
        match op {
            RecordOp::Create { key, cid } => self.add(key, *cid).await,
            RecordOp::Update { key, prev, cid } => {
                self.expect_value(key, Some(*prev)).await?;
                self.update(key, *cid).await
            }
            RecordOp::Delete { key, prev } => {
                self.expect_value(key, Some(*prev)).await?;
                self.delete(key).await
            }
        }
    }

    /// A new tree with `op` undone: `self` must be the tree right after `op`.
    pub(crate) async fn invert_op(&self, op: &RecordOp) -> Result<Self> {
        match op {
            RecordOp::Create { key, cid } => {
                self.expect_value(key, Some(*cid)).await?;
                self.delete(key).await
            }
            RecordOp::Update { key, prev, cid } => {
                self.expect_value(key, Some(*cid)).await?;
                self.update(key, *prev).await
            }
            RecordOp::Delete { key, prev } => {
                self.expect_value(key, None).await?;
                self.add(key, *prev).await
            }
        }
    }

    async fn expect_value(&self, key: &str, expected: Option<Cid>) -> Result<()> {
        if self.get(key).await? == expected {
            Ok(())
        } else {
            Err(Error::OpMismatch(key.to_owned()))
        }
    }
}

/// Undoes `ops` (in any order) on the tree rooted at `root` and returns the resulting root
/// CID, reading only the blocks the inversion needs: `store` may hold just a commit's blocks.
/// A relay checks a commit by comparing the result with the commit's `prevData`.
pub async fn invert<S: BlockStore + Clone>(store: S, root: Cid, ops: &[RecordOp]) -> Result<Cid> {
    let mut tree = Mst::load(store, root).await?;
    for op in ops {
        tree = tree.invert_op(op).await?;
    }
    Ok(tree.root_cid())
}
