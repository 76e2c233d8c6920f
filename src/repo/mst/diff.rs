//! The difference between two trees: record operations, new node blocks and removed nodes.
//!
//! Both trees are walked in key order as sequences of leaves and not-yet-opened subtrees.
//! Two subtrees with the same CID hold the same keys, so both are skipped unopened; otherwise
//! the higher subtree (or both, on the same layer) is opened. Only nodes on changed paths (and
//! the short spines where the two trees' node boundaries differ) are ever loaded.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;

use super::node::Link;
use super::ops::{below, open};
#[cfg(test)]
use super::proof::RecordOp;
use super::{Error, Mst, Result, fault_error, load_link};
use crate::repo::blockstore::{BlockMap, BlockStore};

/// What changed from one tree to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Keys only in the new tree, with their value, in key order.
    pub creates: Vec<(String, Cid)>,
    /// Keys whose value changed: key, previous value, new value, in key order.
    pub updates: Vec<(String, Cid, Cid)>,
    /// Keys only in the old tree, with their previous value, in key order.
    pub deletes: Vec<(String, Cid)>,
    /// Node blocks of the new tree that the old tree does not have.
    pub new_blocks: BlockMap,
    /// CIDs of the old tree's nodes that the new tree does not have (MST nodes only; record
    /// CIDs are in `deletes` and `updates`, and may still be used by other keys).
    pub removed_cids: Vec<Cid>,
}

impl Diff {
    /// The record operations, in key order.
    #[cfg(test)]
    pub(crate) fn ops(&self) -> Vec<RecordOp> {
        let mut ops: Vec<RecordOp> =
            Vec::with_capacity(self.creates.len() + self.updates.len() + self.deletes.len());
        ops.extend(self.creates.iter().map(|(key, cid)| RecordOp::Create {
            key: key.clone(),
            cid: *cid,
        }));
        ops.extend(
            self.updates
                .iter()
                .map(|(key, prev, cid)| RecordOp::Update {
                    key: key.clone(),
                    prev: *prev,
                    cid: *cid,
                }),
        );
        ops.extend(self.deletes.iter().map(|(key, prev)| RecordOp::Delete {
            key: key.clone(),
            prev: *prev,
        }));
        ops.sort_by(|a, b| a.key().cmp(b.key()));
        ops
    }
}

#[derive(Clone)]
enum Item {
    Leaf(Arc<str>, Cid),
    Tree(Arc<Link>, u8),
}

/// One tree, as a stack of the items still to compare (top = next in key order).
struct Side<'a, S> {
    store: &'a S,
    stack: Vec<Item>,
    opened: HashMap<Cid, Bytes>,
}

impl<'a, S: BlockStore> Side<'a, S> {
    fn new(tree: Option<&'a Mst<S>>) -> Option<Self> {
        tree.map(|t| Side {
            store: &t.store,
            stack: vec![Item::Tree(t.root.clone(), t.layer)],
            opened: HashMap::new(),
        })
    }

    fn peek(&self) -> Option<Item> {
        self.stack.last().cloned()
    }

    /// Replaces the subtree on top of the stack by its items.
    async fn open_top(&mut self) -> Result<()> {
        let Some(Item::Tree(link, layer)) = self.stack.pop() else {
            return Ok(());
        };
        load_link(self.store, &link, layer).await?;
        let node = open(&link, layer).map_err(fault_error)?.clone();
        let (cid, bytes) = link.block().ok_or(Error::MissingBlock(link.cid()))?;
        self.opened.insert(cid, bytes);
        for i in (0..=node.entries.len()).rev() {
            if let Some(child) = node.slot(i) {
                let layer = below(node.layer, child).map_err(fault_error)?;
                self.stack.push(Item::Tree(child.clone(), layer));
            }
            if let Some(entry) = i.checked_sub(1).and_then(|j| node.entries.get(j)) {
                self.stack.push(Item::Leaf(entry.key.clone(), entry.value));
            }
        }
        Ok(())
    }
}

/// The changes that turn `old` (or an empty repository, for `None`) into `new`.
pub async fn diff<S: BlockStore + Clone>(old: Option<&Mst<S>>, new: &Mst<S>) -> Result<Diff> {
    let mut out = Diff::default();
    let mut empty_old = None;
    let mut old_side = Side::new(old);
    let old = match old_side.as_mut() {
        Some(side) => side,
        None => empty_old.insert(Side {
            store: &new.store,
            stack: Vec::new(),
            opened: HashMap::new(),
        }),
    };
    let mut new_side = Side::new(Some(new));
    let Some(new) = new_side.as_mut() else {
        return Ok(out);
    };
    loop {
        match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(Item::Leaf(key, cid)), None) => {
                old.stack.pop();
                out.deletes.push((key.to_string(), cid));
            }
            (None, Some(Item::Leaf(key, cid))) => {
                new.stack.pop();
                out.creates.push((key.to_string(), cid));
            }
            (Some(Item::Tree(..)), None) | (Some(Item::Tree(..)), Some(Item::Leaf(..))) => {
                old.open_top().await?
            }
            (None, Some(Item::Tree(..))) | (Some(Item::Leaf(..)), Some(Item::Tree(..))) => {
                new.open_top().await?
            }
            (Some(Item::Leaf(ka, va)), Some(Item::Leaf(kb, vb))) => match ka.cmp(&kb) {
                std::cmp::Ordering::Less => {
                    old.stack.pop();
                    out.deletes.push((ka.to_string(), va));
                }
                std::cmp::Ordering::Greater => {
                    new.stack.pop();
                    out.creates.push((kb.to_string(), vb));
                }
                std::cmp::Ordering::Equal => {
                    old.stack.pop();
                    new.stack.pop();
                    if va != vb {
                        out.updates.push((ka.to_string(), va, vb));
                    }
                }
            },
            (Some(Item::Tree(a, la)), Some(Item::Tree(b, lb))) => {
                if a.cid() == b.cid() {
                    old.stack.pop();
                    new.stack.pop();
                } else if la > lb {
                    old.open_top().await?;
                } else if lb > la {
                    new.open_top().await?;
                } else {
                    old.open_top().await?;
                    new.open_top().await?;
                }
            }
        }
    }
    let old_nodes: HashSet<Cid> = old.opened.keys().copied().collect();
    let new_nodes: HashSet<Cid> = new.opened.keys().copied().collect();
    for (cid, bytes) in std::mem::take(&mut new.opened) {
        if !old_nodes.contains(&cid) {
            out.new_blocks.insert(cid, bytes);
        }
    }
    let mut removed: Vec<Cid> = old_nodes.difference(&new_nodes).copied().collect();
    removed.sort();
    out.removed_cids = removed;
    Ok(out)
}
