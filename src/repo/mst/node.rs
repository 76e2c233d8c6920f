//! In-memory MST nodes, links to them, and their canonical DAG-CBOR form.
//!
//! A node is `{e: [{k, p, t, v}], l}` in DAG-CBOR: `l` is the subtree left of every entry and
//! `t` the subtree right of its entry; both are always present, `null` when empty. `k` is the
//! key minus the `p` bytes it shares with the previous key of the same node.
//!
//! Nodes are immutable and shared between tree versions through [`Link`]s. A link either names a
//! block of the store (loaded on first use and then kept) or holds a node built in memory, whose
//! bytes and CID are computed only when first asked for.

#[cfg(test)]
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use cid::Cid;
use serde::Deserialize;

use super::Error;
use super::key::{common_prefix_len, is_valid_key, key_height};
use crate::repo::cid::{DAG_CBOR, cid_for_cbor, is_atproto_cid};

/// One key of a node, with its value and the subtree that follows it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: Arc<str>,
    pub value: Cid,
    pub right: Option<Arc<Link>>,
}

/// A tree node at a known layer.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub layer: u8,
    pub left: Option<Arc<Link>>,
    pub entries: Vec<Entry>,
}

impl Node {
    pub(crate) fn empty(layer: u8) -> Self {
        Node {
            layer,
            left: None,
            entries: Vec::new(),
        }
    }

    /// Index of the first entry whose key is `>= key`.
    pub(crate) fn lower_bound(&self, key: &str) -> usize {
        self.entries.partition_point(|e| &*e.key < key)
    }

    /// Whether entry `i` exists and has exactly `key`.
    pub(crate) fn has_key_at(&self, i: usize, key: &str) -> bool {
        self.entries.get(i).is_some_and(|e| &*e.key == key)
    }

    /// Subtree slot `i`: 0 is `l`, `i > 0` is the `t` of entry `i - 1`. Slot `i` holds the
    /// keys between entry `i - 1` and entry `i`.
    pub(crate) fn slot(&self, i: usize) -> Option<&Arc<Link>> {
        if i == 0 {
            self.left.as_ref()
        } else {
            self.entries.get(i - 1).and_then(|e| e.right.as_ref())
        }
    }

    pub(crate) fn set_slot(&mut self, i: usize, link: Option<Arc<Link>>) {
        if i == 0 {
            self.left = link;
        } else if let Some(entry) = self.entries.get_mut(i - 1) {
            entry.right = link;
        }
    }

    /// Whether the node has neither entries nor a subtree (only valid as an empty tree's root).
    pub(crate) fn is_void(&self) -> bool {
        self.entries.is_empty() && self.left.is_none()
    }

    /// The node as a link, or `None` when it is void.
    pub(crate) fn into_link(self) -> Option<Arc<Link>> {
        if self.is_void() {
            None
        } else {
            Some(Link::fresh(self))
        }
    }

    /// Canonical DAG-CBOR bytes. Computes the CIDs of fresh children that lack one.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.entries.len() * 80);
        out.push(0xa2); // map of 2, keys in canonical order: "e" then "l"
        out.extend_from_slice(&[0x61, b'e']);
        header(&mut out, 4, self.entries.len() as u64);
        let mut prev: &[u8] = &[];
        for entry in &self.entries {
            let key = entry.key.as_bytes();
            let shared = common_prefix_len(prev, key);
            out.push(0xa4); // map of 4: "k", "p", "t", "v"
            out.extend_from_slice(&[0x61, b'k']);
            header(&mut out, 2, (key.len() - shared) as u64);
            out.extend_from_slice(&key[shared..]);
            out.extend_from_slice(&[0x61, b'p']);
            header(&mut out, 0, shared as u64);
            out.extend_from_slice(&[0x61, b't']);
            link_or_null(&mut out, entry.right.as_deref());
            out.extend_from_slice(&[0x61, b'v']);
            cid_link(&mut out, &entry.value);
            prev = key;
        }
        out.extend_from_slice(&[0x61, b'l']);
        link_or_null(&mut out, self.left.as_deref());
        out
    }
}

fn header(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    if value < 24 {
        out.push(major | value as u8);
    } else if value <= u64::from(u8::MAX) {
        out.extend_from_slice(&[major | 24, value as u8]);
    } else if value <= u64::from(u16::MAX) {
        out.push(major | 25);
        out.extend_from_slice(&(value as u16).to_be_bytes());
    } else if value <= u64::from(u32::MAX) {
        out.push(major | 26);
        out.extend_from_slice(&(value as u32).to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

fn cid_link(out: &mut Vec<u8>, cid: &Cid) {
    let bytes = cid.to_bytes();
    out.extend_from_slice(&[0xd8, 42]); // tag 42
    header(out, 2, bytes.len() as u64 + 1);
    out.push(0); // multibase identity prefix
    out.extend_from_slice(&bytes);
}

fn link_or_null(out: &mut Vec<u8>, link: Option<&Link>) {
    match link {
        Some(link) => cid_link(out, &link.cid()),
        None => out.push(0xf6),
    }
}

/// A pointer to a subtree.
#[derive(Debug)]
pub(crate) enum Link {
    /// A block of the store, loaded on first use.
    Stored {
        cid: Cid,
        node: OnceLock<Arc<Node>>,
        bytes: OnceLock<Bytes>,
    },
    /// A node built in memory; `block` is filled when its CID is first needed and (in tests,
    /// for `Mst::collect_new_blocks`) `persisted` once the store is known to hold it.
    Fresh {
        node: Arc<Node>,
        block: OnceLock<(Cid, Bytes)>,
        #[cfg(test)]
        persisted: AtomicBool,
    },
}

impl Link {
    pub(crate) fn stored(cid: Cid) -> Arc<Link> {
        Arc::new(Link::Stored {
            cid,
            node: OnceLock::new(),
            bytes: OnceLock::new(),
        })
    }

    pub(crate) fn fresh(node: Node) -> Arc<Link> {
        Arc::new(Link::Fresh {
            node: Arc::new(node),
            block: OnceLock::new(),
            #[cfg(test)]
            persisted: AtomicBool::new(false),
        })
    }

    /// The node, if it is in memory.
    pub(crate) fn node(&self) -> Option<&Arc<Node>> {
        match self {
            Link::Stored { node, .. } => node.get(),
            Link::Fresh { node, .. } => Some(node),
        }
    }

    fn fresh_block(node: &Node, block: &OnceLock<(Cid, Bytes)>) -> (Cid, Bytes) {
        block
            .get_or_init(|| {
                let bytes = node.encode();
                (cid_for_cbor(&bytes), Bytes::from(bytes))
            })
            .clone()
    }

    pub(crate) fn cid(&self) -> Cid {
        match self {
            Link::Stored { cid, .. } => *cid,
            Link::Fresh { node, block, .. } => Self::fresh_block(node, block).0,
        }
    }

    /// CID and bytes, when known without a store read.
    pub(crate) fn block(&self) -> Option<(Cid, Bytes)> {
        match self {
            Link::Stored { cid, bytes, .. } => bytes.get().map(|b| (*cid, b.clone())),
            Link::Fresh { node, block, .. } => Some(Self::fresh_block(node, block)),
        }
    }

    /// Whether the block is known to be in the store (loaded from it, or checked).
    #[cfg(test)]
    pub(crate) fn is_persisted(&self) -> bool {
        match self {
            Link::Stored { .. } => true,
            Link::Fresh { persisted, .. } => persisted.load(Ordering::Relaxed),
        }
    }

    #[cfg(test)]
    pub(crate) fn mark_persisted(&self) {
        if let Link::Fresh { persisted, .. } = self {
            persisted.store(true, Ordering::Relaxed);
        }
    }

    /// Fills a stored link with its decoded node. A second fill is ignored.
    pub(crate) fn fill(&self, decoded: Node, raw: Bytes) {
        if let Link::Stored { node, bytes, .. } = self {
            let _ = bytes.set(raw);
            let _ = node.set(Arc::new(decoded));
        }
    }
}

#[derive(Deserialize)]
struct NodeData {
    e: Vec<EntryData>,
    l: Option<Cid>,
}

#[derive(Deserialize)]
struct EntryData {
    p: u64,
    #[serde(with = "serde_bytes")]
    k: Vec<u8>,
    v: Cid,
    t: Option<Cid>,
}

/// A node block decoded and checked on its own, before its layer is known.
pub(crate) struct Decoded {
    cid: Cid,
    left: Option<Cid>,
    entries: Vec<(Arc<str>, Cid, Option<Cid>)>,
}

fn bad(cid: Cid, reason: impl Into<String>) -> Error {
    Error::BadNode {
        cid,
        reason: reason.into(),
    }
}

fn check_child(cid: Cid, child: Option<Cid>) -> Result<Option<Cid>, Error> {
    match child {
        Some(c) if !is_atproto_cid(&c) || c.codec() != DAG_CBOR => {
            Err(bad(cid, format!("subtree link {c} is not a DAG-CBOR CID")))
        }
        other => Ok(other),
    }
}

impl Decoded {
    /// Decodes block `cid`: keys must rebuild from their prefixes, be valid repository paths
    /// and be strictly increasing.
    pub(crate) fn decode(cid: Cid, bytes: &[u8]) -> Result<Decoded, Error> {
        let data: NodeData = serde_ipld_dagcbor::from_slice(bytes)
            .map_err(|e| bad(cid, format!("not an MST node: {e}")))?;
        let left = check_child(cid, data.l)?;
        let mut entries: Vec<(Arc<str>, Cid, Option<Cid>)> = Vec::with_capacity(data.e.len());
        let mut prev: Vec<u8> = Vec::new();
        for entry in data.e {
            let shared = usize::try_from(entry.p)
                .ok()
                .and_then(|p| prev.get(..p))
                .ok_or_else(|| bad(cid, "prefix length exceeds the previous key"))?;
            let mut full = Vec::with_capacity(shared.len() + entry.k.len());
            full.extend_from_slice(shared);
            full.extend_from_slice(&entry.k);
            let key = std::str::from_utf8(&full)
                .ok()
                .filter(|k| is_valid_key(k))
                .ok_or_else(|| bad(cid, "invalid key"))?;
            if let Some((last, _, _)) = entries.last()
                && key <= &**last
            {
                return Err(bad(cid, "keys are not strictly increasing"));
            }
            let right = check_child(cid, entry.t)?;
            entries.push((Arc::from(key), entry.v, right));
            prev = full;
        }
        Ok(Decoded { cid, left, entries })
    }

    /// The layer the node's keys put it on, if it has keys.
    pub(crate) fn natural_layer(&self) -> Option<u8> {
        self.entries
            .first()
            .map(|(k, _, _)| key_height(k.as_bytes()))
    }

    pub(crate) fn left(&self) -> Option<Cid> {
        self.left
    }

    pub(crate) fn is_void(&self) -> bool {
        self.entries.is_empty() && self.left.is_none()
    }

    /// The node at `layer`: every key must have that height, and a layer-0 node no subtrees.
    /// Only a root may be void.
    pub(crate) fn into_node(self, layer: u8, is_root: bool) -> Result<Node, Error> {
        let cid = self.cid;
        if !is_root && self.is_void() {
            return Err(bad(cid, "empty subtree node"));
        }
        if layer == 0 && (self.left.is_some() || self.entries.iter().any(|(_, _, t)| t.is_some())) {
            return Err(bad(cid, "layer 0 node with a subtree"));
        }
        let mut entries = Vec::with_capacity(self.entries.len());
        for (key, value, right) in self.entries {
            if key_height(key.as_bytes()) != layer {
                return Err(bad(cid, format!("key {key} is not on layer {layer}")));
            }
            entries.push(Entry {
                key,
                value,
                right: right.map(Link::stored),
            });
        }
        Ok(Node {
            layer,
            left: self.left.map(Link::stored),
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_node_cid() {
        let node = Node::empty(0);
        assert_eq!(
            node.encode(),
            vec![0xa2, 0x61, b'e', 0x80, 0x61, b'l', 0xf6]
        );
        assert_eq!(
            Link::fresh(node).cid().to_string(),
            "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
        );
    }

    #[test]
    fn header_sizes() {
        for (value, len) in [(0u64, 1), (23, 1), (24, 2), (255, 2), (256, 3), (65536, 5)] {
            let mut out = Vec::new();
            header(&mut out, 2, value);
            assert_eq!(out.len(), len, "{value}");
        }
        let mut out = Vec::new();
        header(&mut out, 0, u64::MAX);
        assert_eq!(out, [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn round_trip_and_hostile_nodes() {
        let value = cid_for_cbor(b"\xa0");
        let node = Node {
            layer: 0,
            left: None,
            entries: ["com.example/aa", "com.example/ab", "com.example/b"]
                .into_iter()
                .map(|k| Entry {
                    key: Arc::from(k),
                    value,
                    right: None,
                })
                .collect(),
        };
        let bytes = node.encode();
        let cid = cid_for_cbor(&bytes);
        let decoded = Decoded::decode(cid, &bytes).unwrap();
        assert_eq!(decoded.entries.len(), 3);
        assert_eq!(&*decoded.entries[1].0, "com.example/ab");
        let reencoded = Node {
            layer: 0,
            left: None,
            entries: decoded
                .entries
                .iter()
                .map(|(k, v, _)| Entry {
                    key: k.clone(),
                    value: *v,
                    right: None,
                })
                .collect(),
        }
        .encode();
        assert_eq!(reencoded, bytes);

        // A prefix length longer than the previous key.
        let mut hostile = bytes.clone();
        let pos = hostile
            .windows(3)
            .rposition(|w| w == [0x61, b'p', 12])
            .unwrap();
        hostile[pos + 2] = 0x17;
        assert!(matches!(
            Decoded::decode(cid, &hostile),
            Err(Error::BadNode { .. })
        ));
        // Garbage and truncation.
        assert!(Decoded::decode(cid, &[0xff, 0x00]).is_err());
        assert!(Decoded::decode(cid, &bytes[..bytes.len() - 3]).is_err());
        // Unsorted keys.
        let unsorted = Node {
            entries: node.entries.iter().rev().cloned().collect(),
            ..node.clone()
        }
        .encode();
        assert!(matches!(
            Decoded::decode(cid, &unsorted),
            Err(Error::BadNode { .. })
        ));
    }
}
