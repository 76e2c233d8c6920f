//! Ordered traversal: key ranges (listRecords), every leaf, and every node block (CAR export).

use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;

use super::node::{Link, Node};
use super::ops::below;
use super::{Error, Mst, Result, fault_error, load_link};
use crate::repo::blockstore::BlockStore;

/// One node of a node walk: its block, and the record CIDs of its entries in key order.
#[derive(Debug, Clone)]
pub struct NodeBlock {
    pub cid: Cid,
    pub bytes: Bytes,
    pub records: Vec<Cid>,
}

struct Frame {
    link: Arc<Link>,
    node: Arc<Node>,
    /// Next position: even `2i` is subtree slot `i`, odd `2i + 1` is entry `i`.
    pos: usize,
    /// One past the last position to visit (forward) or the last position + 1 (reverse).
    end: usize,
}

/// A streaming, ordered walk over the leaves of a tree (forward or reverse), optionally
/// bounded. Loads nodes as it reaches them; skips whole subtrees outside the bounds.
pub struct LeafCursor<S> {
    store: S,
    stack: Vec<Frame>,
    pending: Option<(Arc<Link>, u8)>,
    /// Exclusive lower bound, or inclusive when `lower_inclusive`.
    lower: Option<String>,
    lower_inclusive: bool,
    /// Exclusive upper bound.
    upper: Option<String>,
    reverse: bool,
    last: Option<Arc<str>>,
}

impl<S: BlockStore> LeafCursor<S> {
    fn new(
        store: S,
        root: &Arc<Link>,
        layer: u8,
        lower: Option<(&str, bool)>,
        upper: Option<&str>,
        reverse: bool,
    ) -> Self {
        LeafCursor {
            store,
            stack: Vec::new(),
            pending: Some((root.clone(), layer)),
            lower_inclusive: lower.is_some_and(|(_, inc)| inc),
            lower: lower.map(|(k, _)| k.to_owned()),
            upper: upper.map(str::to_owned),
            reverse,
            last: None,
        }
    }

    fn below_lower(&self, key: &str) -> bool {
        match &self.lower {
            Some(lower) if self.lower_inclusive => key < lower.as_str(),
            Some(lower) => key <= lower.as_str(),
            None => false,
        }
    }

    fn above_upper(&self, key: &str) -> bool {
        self.upper.as_deref().is_some_and(|upper| key >= upper)
    }

    /// The frame for a freshly opened node: the range of positions that may hold keys within
    /// the bounds.
    fn frame(&self, link: Arc<Link>, node: Arc<Node>) -> Frame {
        let entries = &node.entries;
        // First entry not below the lower bound; the slot before it may still hold keys in range.
        let first = match &self.lower {
            Some(lower) if self.lower_inclusive => {
                entries.partition_point(|e| &*e.key < lower.as_str())
            }
            Some(lower) => entries.partition_point(|e| &*e.key <= lower.as_str()),
            None => 0,
        };
        // First entry at or above the upper bound; the slot before it may hold keys in range.
        let stop = match &self.upper {
            Some(upper) => entries.partition_point(|e| &*e.key < upper.as_str()),
            None => entries.len(),
        };
        let (lo, hi) = (2 * first, 2 * stop.max(first) + 1);
        if self.reverse {
            Frame {
                link,
                node,
                pos: hi,
                end: lo,
            }
        } else {
            Frame {
                link,
                node,
                pos: lo,
                end: hi,
            }
        }
    }

    /// The next leaf in order, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<(String, Cid)>> {
        loop {
            if let Some((link, layer)) = self.pending.take() {
                load_link(&self.store, &link, layer).await?;
                let node = super::ops::open(&link, layer).map_err(fault_error)?.clone();
                let frame = self.frame(link, node);
                self.stack.push(frame);
            }
            let Some(frame) = self.stack.last_mut() else {
                return Ok(None);
            };
            // In reverse, `pos` is one past the position to visit next.
            let pos = if self.reverse {
                if frame.pos <= frame.end {
                    self.stack.pop();
                    continue;
                }
                frame.pos -= 1;
                frame.pos
            } else {
                if frame.pos >= frame.end {
                    self.stack.pop();
                    continue;
                }
                frame.pos += 1;
                frame.pos - 1
            };
            let node = frame.node.clone();
            let link = frame.link.clone();
            if pos % 2 == 0 {
                if let Some(child) = node.slot(pos / 2) {
                    let layer = below(node.layer, child).map_err(fault_error)?;
                    self.pending = Some((child.clone(), layer));
                }
                continue;
            }
            let Some(entry) = node.entries.get(pos / 2) else {
                continue;
            };
            if self.below_lower(&entry.key) || self.above_upper(&entry.key) {
                continue;
            }
            if let Some(last) = &self.last {
                let in_order = if self.reverse {
                    entry.key < *last
                } else {
                    entry.key > *last
                };
                if !in_order {
                    return Err(Error::BadNode {
                        cid: link.cid(),
                        reason: format!("key {} out of order across nodes", entry.key),
                    });
                }
            }
            self.last = Some(entry.key.clone());
            return Ok(Some((entry.key.to_string(), entry.value)));
        }
    }

    /// Up to `limit` further leaves.
    pub async fn take(&mut self, limit: usize) -> Result<Vec<(String, Cid)>> {
        let mut out = Vec::new();
        while out.len() < limit {
            match self.next().await? {
                Some(leaf) => out.push(leaf),
                None => break,
            }
        }
        Ok(out)
    }
}

/// A depth-first, pre-order walk over every node block of a tree (left to right).
pub struct NodeWalker<S> {
    store: S,
    stack: Vec<(Arc<Link>, u8)>,
}

impl<S: BlockStore> NodeWalker<S> {
    /// The next node block, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<NodeBlock>> {
        let Some((link, layer)) = self.stack.pop() else {
            return Ok(None);
        };
        load_link(&self.store, &link, layer).await?;
        let node = super::ops::open(&link, layer).map_err(fault_error)?.clone();
        let (cid, bytes) = link.block().ok_or(Error::MissingBlock(link.cid()))?;
        for i in (0..=node.entries.len()).rev() {
            if let Some(child) = node.slot(i) {
                let layer = below(node.layer, child).map_err(fault_error)?;
                self.stack.push((child.clone(), layer));
            }
        }
        let records = node.entries.iter().map(|e| e.value).collect();
        Ok(Some(NodeBlock {
            cid,
            bytes,
            records,
        }))
    }
}

/// The smallest string above every key that starts with `prefix` (keys are ASCII below 0x7f).
fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_owned();
    end.push('\u{7f}');
    end
}

impl<S: BlockStore + Clone> Mst<S> {
    fn cursor(
        &self,
        lower: Option<(&str, bool)>,
        upper: Option<&str>,
        reverse: bool,
    ) -> LeafCursor<S> {
        LeafCursor::new(
            self.store.clone(),
            &self.root,
            self.layer,
            lower,
            upper,
            reverse,
        )
    }

    /// Up to `limit` leaves with `after < key < before`, in increasing key order.
    pub async fn list(
        &self,
        after: Option<&str>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Cid)>> {
        self.cursor(after.map(|a| (a, false)), before, false)
            .take(limit)
            .await
    }

    /// Up to `limit` leaves with `after < key < before`, in decreasing key order.
    pub async fn list_reverse(
        &self,
        after: Option<&str>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Cid)>> {
        self.cursor(after.map(|a| (a, false)), before, true)
            .take(limit)
            .await
    }

    /// Up to `limit` leaves whose key starts with `prefix` (e.g. `"app.bsky.feed.post/"`),
    /// in increasing or, with `reverse`, decreasing key order.
    pub async fn list_prefix(
        &self,
        prefix: &str,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(String, Cid)>> {
        let end = prefix_end(prefix);
        self.cursor(Some((prefix, true)), Some(&end), reverse)
            .take(limit)
            .await
    }

    /// Every leaf in key order, streamed.
    pub fn leaves(&self) -> LeafCursor<S> {
        self.cursor(None, None, false)
    }

    /// Every leaf in key order.
    pub async fn all_leaves(&self) -> Result<Vec<(String, Cid)>> {
        self.leaves().take(usize::MAX).await
    }

    /// Every node block of the tree, streamed (for CAR export).
    pub fn walk_blocks(&self) -> NodeWalker<S> {
        NodeWalker {
            store: self.store.clone(),
            stack: vec![(self.root.clone(), self.layer)],
        }
    }
}
