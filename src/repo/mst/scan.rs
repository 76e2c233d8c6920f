//! A walk over a whole tree that keeps no node it has passed: verifying a tree too large to
//! hold in memory (a repository import). [`LeafCursor`](super::LeafCursor) fills the links it
//! loads, so a full walk with it ends with the whole tree cached.

use std::sync::Arc;

use cid::Cid;

use super::node::Decoded;
use super::{Error, Mst, Result, fetch};
use crate::repo::blockstore::BlockStore;

/// What [`LeafScan::next`] reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scanned {
    /// A node block, checked: it hashes to its CID, decodes, its keys are on its layer and
    /// strictly increasing, and it is not an empty subtree.
    Node(Cid),
    /// A leaf (`collection/rkey`, record CID), in strictly increasing key order.
    Leaf(String, Cid),
}

enum Item {
    Node { cid: Cid, layer: u8, is_root: bool },
    Leaf(Arc<str>, Cid),
}

/// A depth-first, in-order walk over every node and leaf. Memory: the unvisited items of the
/// nodes on the current path (at most one node per layer).
pub(crate) struct LeafScan<S> {
    store: S,
    /// Per open node, its unvisited items in reverse order.
    stack: Vec<Vec<Item>>,
    last: Option<Arc<str>>,
}

impl<S: BlockStore + Clone> LeafScan<S> {
    /// A walk of the tree whose root node is `root` (read now, to learn its layer).
    pub(crate) async fn new(store: S, root: Cid) -> Result<Self> {
        let layer = Mst::load(store.clone(), root).await?.layer();
        Ok(LeafScan {
            store,
            stack: vec![vec![Item::Node {
                cid: root,
                layer,
                is_root: true,
            }]],
            last: None,
        })
    }

    /// The next node or leaf, or `None` at the end.
    pub(crate) async fn next(&mut self) -> Result<Option<Scanned>> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some(item) = top.pop() else {
                self.stack.pop();
                continue;
            };
            match item {
                Item::Leaf(key, value) => {
                    if self.last.as_ref().is_some_and(|last| key <= *last) {
                        return Err(Error::BadNode {
                            cid: value,
                            reason: format!("key {key} out of order across nodes"),
                        });
                    }
                    self.last = Some(key.clone());
                    return Ok(Some(Scanned::Leaf(key.to_string(), value)));
                }
                Item::Node {
                    cid,
                    layer,
                    is_root,
                } => {
                    let bytes = fetch(&self.store, &cid).await?;
                    let node = Decoded::decode(cid, &bytes)?.into_node(layer, is_root)?;
                    let child = |link: &Arc<super::node::Link>| -> Result<Item> {
                        let layer = layer.checked_sub(1).ok_or_else(|| Error::BadNode {
                            cid,
                            reason: "subtree below layer 0".into(),
                        })?;
                        Ok(Item::Node {
                            cid: link.cid(),
                            layer,
                            is_root: false,
                        })
                    };
                    let mut items = Vec::with_capacity(2 * node.entries.len() + 1);
                    if let Some(left) = &node.left {
                        items.push(child(left)?);
                    }
                    for entry in &node.entries {
                        items.push(Item::Leaf(entry.key.clone(), entry.value));
                        if let Some(right) = &entry.right {
                            items.push(child(right)?);
                        }
                    }
                    items.reverse();
                    self.stack.push(items);
                    return Ok(Some(Scanned::Node(cid)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::blockstore::MemoryBlockStore;
    use crate::repo::cid::cid_for_cbor;

    #[tokio::test]
    async fn scan_matches_the_leaves_in_order() {
        let store = MemoryBlockStore::new();
        let value = cid_for_cbor(b"\xa0");
        let mut keys: Vec<String> = (0..500)
            .map(|i| format!("app.bsky.feed.post/k{i:05}"))
            .collect();
        keys.sort();
        let tree =
            Mst::from_sorted(store.clone(), keys.iter().map(|k| (k.clone(), value))).unwrap();
        let blocks = tree.collect_new_blocks().await.unwrap();
        store.put_many(&blocks, "rev").await.unwrap();
        let mut scan = LeafScan::new(store, tree.root_cid()).await.unwrap();
        let (mut leaves, mut nodes) = (Vec::new(), 0);
        while let Some(item) = scan.next().await.unwrap() {
            match item {
                Scanned::Node(_) => nodes += 1,
                Scanned::Leaf(key, cid) => {
                    assert_eq!(cid, value);
                    leaves.push(key);
                }
            }
        }
        assert_eq!(leaves, keys);
        assert_eq!(nodes, blocks.len());
    }
}
