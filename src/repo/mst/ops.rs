//! Tree surgery on in-memory nodes: insert, remove, update, split, merge, and the bulk builder.
//!
//! Every function here is synchronous and pure: it builds new nodes and shares untouched
//! subtrees. When it needs a node that is not loaded yet it stops with [`Fault::Load`]; the
//! async caller loads that one block and runs the operation again. An operation therefore reads
//! exactly the blocks it needs and no others, which is what lets a commit be inverted against a
//! partial tree holding only the proof blocks.

use std::sync::Arc;

use cid::Cid;

use super::Error;
use super::key::key_height;
use super::node::{Entry, Link, Node};

/// Why a synchronous operation stopped.
pub(crate) enum Fault {
    /// This subtree, on this layer, must be loaded first.
    Load(Arc<Link>, u8),
    Fail(Error),
}

impl From<Error> for Fault {
    fn from(e: Error) -> Self {
        Fault::Fail(e)
    }
}

pub(crate) type Step<T> = Result<T, Fault>;

/// The node behind `link`, which sits on `layer`.
pub(crate) fn open(link: &Arc<Link>, layer: u8) -> Step<&Arc<Node>> {
    link.node().ok_or_else(|| Fault::Load(link.clone(), layer))
}

/// The layer below `layer`, for a subtree that exists; layer 0 has none.
pub(crate) fn below(layer: u8, link: &Arc<Link>) -> Step<u8> {
    layer.checked_sub(1).ok_or_else(|| {
        Fault::Fail(Error::BadNode {
            cid: link.cid(),
            reason: "subtree below layer 0".into(),
        })
    })
}

/// Wraps `link` (on `layer - 1`) in a node on `layer` that has only a left subtree.
fn lift(link: Arc<Link>, layer: u8) -> Arc<Link> {
    Link::fresh(Node {
        layer,
        left: Some(link),
        entries: Vec::new(),
    })
}

/// The two halves of a split subtree; `None` where a half is empty.
type Halves = (Option<Arc<Link>>, Option<Arc<Link>>);

/// Splits the subtree `tree` (on `layer`) into the keys below `key` and the keys above it.
pub(crate) fn split(tree: Option<&Arc<Link>>, layer: u8, key: &str) -> Step<Halves> {
    let Some(link) = tree else {
        return Ok((None, None));
    };
    let node = open(link, layer)?;
    let i = node.lower_bound(key);
    if node.has_key_at(i, key) {
        return Err(Error::KeyExists(key.to_owned()).into());
    }
    let (mid_left, mid_right) = match node.slot(i) {
        Some(mid) => split(Some(mid), below(layer, mid)?, key)?,
        None => (None, None),
    };
    let (before, after) = node.entries.split_at(i);
    let mut left = Node {
        layer,
        left: node.left.clone(),
        entries: before.to_vec(),
    };
    left.set_slot(i, mid_left);
    let right = Node {
        layer,
        left: mid_right,
        entries: after.to_vec(),
    };
    Ok((left.into_link(), right.into_link()))
}

/// Joins two subtrees on `layer` whose keys are all below / all above each other.
pub(crate) fn merge(
    a: Option<&Arc<Link>>,
    b: Option<&Arc<Link>>,
    layer: u8,
) -> Step<Option<Arc<Link>>> {
    let (a, b) = match (a, b) {
        (None, other) | (other, None) => return Ok(other.cloned()),
        (Some(a), Some(b)) => (a, b),
    };
    let na = open(a, layer)?;
    let nb = open(b, layer)?;
    let seam = na.entries.len();
    let junction = match (na.slot(seam), nb.left.as_ref()) {
        (None, None) => None,
        (x, y) => {
            let any = x.or(y).unwrap_or(a);
            merge(x, y, below(layer, any)?)?
        }
    };
    let mut node = Node {
        layer,
        left: na.left.clone(),
        entries: Vec::with_capacity(na.entries.len() + nb.entries.len()),
    };
    node.entries.extend(na.entries.iter().cloned());
    node.set_slot(seam, junction);
    node.entries.extend(nb.entries.iter().cloned());
    Ok(node.into_link())
}

/// Inserts `key` (of height `height`, at most `layer`) into the subtree slot `slot` on `layer`.
fn insert_at(
    slot: Option<&Arc<Link>>,
    layer: u8,
    key: &Arc<str>,
    value: Cid,
    height: u8,
) -> Step<Arc<Link>> {
    let Some(link) = slot else {
        // An empty slot: a leaf node on the key's layer, under a chain of left-only nodes.
        let mut link = Link::fresh(Node {
            layer: height,
            left: None,
            entries: vec![Entry {
                key: key.clone(),
                value,
                right: None,
            }],
        });
        for l in height + 1..=layer {
            link = lift(link, l);
        }
        return Ok(link);
    };
    let node = open(link, layer)?;
    let i = node.lower_bound(key);
    if node.has_key_at(i, key) {
        return Err(Error::KeyExists(key.to_string()).into());
    }
    let mut new = (**node).clone();
    if height == layer {
        let (mid_left, mid_right) = match node.slot(i) {
            Some(mid) => split(Some(mid), below(layer, mid)?, key)?,
            None => (None, None),
        };
        new.set_slot(i, mid_left);
        new.entries.insert(
            i,
            Entry {
                key: key.clone(),
                value,
                right: mid_right,
            },
        );
    } else {
        let child = insert_at(node.slot(i), layer - 1, key, value, height)?;
        new.set_slot(i, Some(child));
    }
    Ok(Link::fresh(new))
}

/// Inserts into the tree rooted at `root` (on `layer`); returns the new root and its layer.
pub(crate) fn insert(
    root: &Arc<Link>,
    layer: u8,
    key: &Arc<str>,
    value: Cid,
) -> Step<(Arc<Link>, u8)> {
    let height = key_height(key.as_bytes());
    if height <= layer {
        return Ok((insert_at(Some(root), layer, key, value, height)?, layer));
    }
    // The key goes above the root: split the whole tree around it and raise both halves.
    let (mut left, mut right) = split(Some(root), layer, key)?;
    for l in layer + 1..height {
        left = left.map(|x| lift(x, l));
        right = right.map(|x| lift(x, l));
    }
    let node = Node {
        layer: height,
        left,
        entries: vec![Entry {
            key: key.clone(),
            value,
            right,
        }],
    };
    Ok((Link::fresh(node), height))
}

/// Removes `key` from the subtree `link` on `layer`; returns what is left and the old value.
fn remove_at(link: &Arc<Link>, layer: u8, key: &str) -> Step<(Option<Arc<Link>>, Cid)> {
    let node = open(link, layer)?;
    let i = node.lower_bound(key);
    let mut new = (**node).clone();
    if let Some(entry) = node.entries.get(i).filter(|e| &*e.key == key) {
        let prev = node.slot(i);
        let next = entry.right.as_ref();
        let merged = match prev.or(next) {
            Some(any) => merge(prev, next, below(layer, any)?)?,
            None => None,
        };
        new.entries.remove(i);
        new.set_slot(i, merged);
        return Ok((new.into_link(), entry.value));
    }
    let Some(mid) = node.slot(i) else {
        return Err(Error::KeyNotFound(key.to_owned()).into());
    };
    let (child, old) = remove_at(mid, below(layer, mid)?, key)?;
    new.set_slot(i, child);
    Ok((new.into_link(), old))
}

/// Removes `key` from the tree; returns the new root, its layer and the old value. The top of
/// the tree is trimmed: a root never consists of a left subtree alone.
pub(crate) fn remove(root: &Arc<Link>, layer: u8, key: &str) -> Step<(Arc<Link>, u8, Cid)> {
    let (new_root, old) = remove_at(root, layer, key)?;
    let Some(mut root) = new_root else {
        return Ok((Link::fresh(Node::empty(0)), 0, old));
    };
    let mut layer = layer;
    // A layer-0 node has no subtree, so it needs no loading to know it is a valid root: a
    // partial tree may not hold it.
    while layer > 0 {
        let node = open(&root, layer)?;
        match (&node.left, node.entries.is_empty()) {
            (Some(child), true) => {
                let child = child.clone();
                layer = below(layer, &child)?;
                root = child;
            }
            _ => break,
        }
    }
    Ok((root, layer, old))
}

/// Replaces the value of an existing `key`; returns the new subtree and the old value.
pub(crate) fn update(link: &Arc<Link>, layer: u8, key: &str, value: Cid) -> Step<(Arc<Link>, Cid)> {
    let node = open(link, layer)?;
    let i = node.lower_bound(key);
    let mut new = (**node).clone();
    if let Some(entry) = new.entries.get_mut(i).filter(|e| &*e.key == key) {
        let old = entry.value;
        entry.value = value;
        return Ok((Link::fresh(new), old));
    }
    let Some(mid) = node.slot(i) else {
        return Err(Error::KeyNotFound(key.to_owned()).into());
    };
    let (child, old) = update(mid, below(layer, mid)?, key, value)?;
    new.set_slot(i, Some(child));
    Ok((Link::fresh(new), old))
}

/// A leaf for the bulk builder: key, value, height.
pub(crate) type Leaf = (Arc<str>, Cid, u8);

/// Builds the subtree on `layer` holding `leaves` (sorted, all of height `<= layer`).
pub(crate) fn build(leaves: &[Leaf], layer: u8) -> Option<Arc<Link>> {
    if leaves.is_empty() {
        return None;
    }
    let down = layer.saturating_sub(1);
    let mut node = Node::empty(layer);
    let mut start = 0;
    for (i, (key, value, height)) in leaves.iter().enumerate() {
        if *height == layer {
            let sub = build(leaves.get(start..i).unwrap_or_default(), down);
            node.set_slot(node.entries.len(), sub);
            node.entries.push(Entry {
                key: key.clone(),
                value: *value,
                right: None,
            });
            start = i + 1;
        }
    }
    let sub = build(leaves.get(start..).unwrap_or_default(), down);
    node.set_slot(node.entries.len(), sub);
    node.into_link()
}
