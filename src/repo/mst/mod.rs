//! The Merkle Search Tree (MST) that maps repository paths (`collection/rkey`) to record CIDs.
//!
//! A key's layer is the number of leading zero bits of SHA-256(key) divided by two, so the
//! tree shape depends only on the key set, never on the order of insertions. See
//! <https://atproto.com/specs/repository> (section "Merkle Search Tree").
//!
//! [`Mst`] is a persistent value: mutations (`add`, `update`, `delete`) return a new tree and
//! leave `self` untouched, sharing every unchanged node. Nodes are loaded lazily from the
//! [`BlockStore`] and kept in memory once loaded; nodes built in memory get their CID only when
//! one is asked for (`root_cid`, diffs, proofs), so a long series of mutations hashes each final
//! node once. Cloning an `Mst` is cheap.

mod diff;
mod key;
mod node;
mod ops;
mod proof;
mod scan;
mod walk;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testsuite;

use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;

use crate::repo::blockstore::{self, BlockStore};
use crate::repo::cid::verify;

pub use diff::{Diff, diff};
pub use key::{MAX_KEY_LEN, common_prefix_len, is_valid_key, key_height, validate_key};
pub use proof::{RecordOp, invert};
pub(crate) use scan::{LeafScan, Scanned};
pub use walk::{LeafCursor, NodeBlock, NodeWalker};

use node::{Decoded, Link, Node};
use ops::{Fault, Step};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid MST key {0:?}")]
    InvalidKey(String),
    #[error("key already in the tree: {0}")]
    KeyExists(String),
    #[error("key not in the tree: {0}")]
    KeyNotFound(String),
    #[error("keys given out of order at {0}")]
    NotSorted(String),
    #[error("MST block missing from the store: {0}")]
    MissingBlock(Cid),
    #[error("malformed MST node {cid}: {reason}")]
    BadNode { cid: Cid, reason: String },
    #[error("operation does not match the tree at {0}")]
    OpMismatch(String),
    #[error(transparent)]
    Store(#[from] blockstore::Error),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// A Merkle Search Tree over a block store.
#[derive(Clone)]
pub struct Mst<S> {
    store: S,
    root: Arc<Link>,
    layer: u8,
}

impl<S> std::fmt::Debug for Mst<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mst")
            .field("root", &self.root.cid())
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

/// Loads the node behind a stored link (a no-op when it is in memory), checking that the block
/// matches its CID and that the node is well formed for `layer`.
pub(crate) async fn load_link<S: BlockStore>(store: &S, link: &Link, layer: u8) -> Result<()> {
    if link.node().is_some() {
        return Ok(());
    }
    let cid = link.cid();
    let bytes = fetch(store, &cid).await?;
    let node = Decoded::decode(cid, &bytes)?.into_node(layer, false)?;
    link.fill(node, bytes);
    Ok(())
}

async fn fetch<S: BlockStore>(store: &S, cid: &Cid) -> Result<Bytes> {
    let bytes = store.get(cid).await?.ok_or(Error::MissingBlock(*cid))?;
    if !verify(cid, &bytes) {
        return Err(Error::BadNode {
            cid: *cid,
            reason: "block does not hash to its CID".into(),
        });
    }
    Ok(bytes)
}

impl<S: BlockStore + Clone> Mst<S> {
    /// An empty tree (one node with no entries).
    pub fn create(store: S) -> Self {
        Mst {
            store,
            root: Link::fresh(Node::empty(0)),
            layer: 0,
        }
    }

    /// The tree whose root node is `root`. Only the root block is read now.
    pub async fn load(store: S, root: Cid) -> Result<Self> {
        let bytes = fetch(&store, &root).await?;
        let decoded = Decoded::decode(root, &bytes)?;
        // A root normally has entries, which give its layer. A root holding only a left subtree
        // (not trimmed, as the spec requires) takes its layer from the first node that has keys.
        let layer = match decoded.natural_layer() {
            Some(layer) => layer,
            None => {
                let mut next = decoded.left();
                let mut depth: u8 = 0;
                loop {
                    let Some(cid) = next else { break 0 };
                    depth = depth.checked_add(1).filter(|d| *d <= 128).ok_or_else(|| {
                        Error::BadNode {
                            cid: root,
                            reason: "tree deeper than 128 layers".into(),
                        }
                    })?;
                    let child = Decoded::decode(cid, &fetch(&store, &cid).await?)?;
                    if let Some(layer) = child.natural_layer() {
                        break layer
                            .checked_add(depth)
                            .filter(|l| *l <= 128)
                            .ok_or_else(|| Error::BadNode {
                                cid: root,
                                reason: "tree deeper than 128 layers".into(),
                            })?;
                    }
                    if child.is_void() {
                        return Err(Error::BadNode {
                            cid,
                            reason: "empty subtree node".into(),
                        });
                    }
                    next = child.left();
                }
            }
        };
        let node = decoded.into_node(layer, true)?;
        let link = Link::stored(root);
        link.fill(node, bytes);
        Ok(Mst {
            store,
            root: link,
            layer,
        })
    }

    /// Builds a tree from leaves in strictly increasing key order, bottom up, without reading
    /// the store. The result equals inserting the same leaves one by one.
    pub fn from_sorted(store: S, leaves: impl IntoIterator<Item = (String, Cid)>) -> Result<Self> {
        let mut items: Vec<ops::Leaf> = Vec::new();
        for (key, value) in leaves {
            validate_key(&key)?;
            if let Some((last, _, _)) = items.last()
                && key.as_str() <= &**last
            {
                return Err(Error::NotSorted(key));
            }
            let height = key_height(key.as_bytes());
            items.push((Arc::from(key), value, height));
        }
        let layer = items.iter().map(|(_, _, h)| *h).max().unwrap_or(0);
        let root = ops::build(&items, layer).unwrap_or_else(|| Link::fresh(Node::empty(0)));
        Ok(Mst { store, root, layer })
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The CID of the root node. Hashes the nodes built in memory that have no CID yet; never
    /// reads the store.
    pub fn root_cid(&self) -> Cid {
        self.root.cid()
    }

    /// The layer of the root node (0 for an empty tree).
    pub(crate) fn layer(&self) -> u8 {
        self.layer
    }

    /// Runs a synchronous tree operation, loading each block it asks for, until it completes.
    async fn run<T>(&self, mut op: impl FnMut() -> Step<T> + Send) -> Result<T> {
        loop {
            match op() {
                Ok(value) => return Ok(value),
                Err(Fault::Fail(e)) => return Err(e),
                Err(Fault::Load(link, layer)) => load_link(&self.store, &link, layer).await?,
            }
        }
    }

    fn with_root(&self, root: Arc<Link>, layer: u8) -> Self {
        Mst {
            store: self.store.clone(),
            root,
            layer,
        }
    }

    /// The value stored at `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Cid>> {
        let mut link = self.root.clone();
        let mut layer = self.layer;
        loop {
            load_link(&self.store, &link, layer).await?;
            let node = ops::open(&link, layer).map_err(fault_error)?;
            let i = node.lower_bound(key);
            if let Some(entry) = node.entries.get(i).filter(|e| &*e.key == key) {
                return Ok(Some(entry.value));
            }
            let Some(child) = node.slot(i).cloned() else {
                return Ok(None);
            };
            layer = ops::below(layer, &child).map_err(fault_error)?;
            link = child;
        }
    }

    /// A new tree with `key` set to `value`. Fails if `key` is already present.
    pub async fn add(&self, key: &str, value: Cid) -> Result<Self> {
        validate_key(key)?;
        let key: Arc<str> = Arc::from(key);
        let (root, layer) = self
            .run(|| ops::insert(&self.root, self.layer, &key, value))
            .await?;
        Ok(self.with_root(root, layer))
    }

    /// A new tree with the value at `key` replaced. Fails if `key` is absent.
    pub async fn update(&self, key: &str, value: Cid) -> Result<Self> {
        validate_key(key)?;
        let (root, _old) = self
            .run(|| ops::update(&self.root, self.layer, key, value))
            .await?;
        Ok(self.with_root(root, self.layer))
    }

    /// A new tree without `key`. Fails if `key` is absent.
    pub async fn delete(&self, key: &str) -> Result<Self> {
        validate_key(key)?;
        let (root, layer, _old) = self
            .run(|| ops::remove(&self.root, self.layer, key))
            .await?;
        Ok(self.with_root(root, layer))
    }

    /// The nodes of this tree the store does not hold yet, to be written with the commit that
    /// introduces them. Nodes found in the store are remembered, so later calls skip them.
    #[cfg(test)]
    pub(crate) async fn collect_new_blocks(&self) -> Result<blockstore::BlockMap> {
        let mut blocks = blockstore::BlockMap::new();
        let mut stack = vec![self.root.clone()];
        while let Some(link) = stack.pop() {
            if link.is_persisted() {
                continue;
            }
            let cid = link.cid();
            if self.store.has(&cid).await? {
                link.mark_persisted();
                continue;
            }
            let Some(node) = link.node() else { continue };
            if let Some((cid, bytes)) = link.block() {
                blocks.insert(cid, bytes);
            }
            stack.extend(node.left.iter().cloned());
            stack.extend(node.entries.iter().filter_map(|e| e.right.clone()));
        }
        Ok(blocks)
    }
}

/// A fault that survived `load_link` means the node could not be opened.
fn fault_error(fault: Fault) -> Error {
    match fault {
        Fault::Fail(e) => e,
        Fault::Load(link, _) => Error::MissingBlock(link.cid()),
    }
}
