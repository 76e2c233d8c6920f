//! Blob references inside records, found without any Lexicon.

use std::collections::BTreeMap;

use cid::Cid;
use ipld_core::ipld::Ipld;

/// A reference to a blob, as found in a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobRef {
    /// The blob's CID (raw codec for blobs written today).
    pub cid: Cid,
    pub mime_type: String,
    /// Length in bytes. The legacy form carries no size: it reads as 0, as the spec suggests
    /// (so a legacy reference must never be rewritten in the current form).
    pub size: u64,
}

impl BlobRef {
    /// Recognises a blob map: the current form `{"$type": "blob", "ref": <link>, "mimeType",
    /// "size"}` or the legacy form `{"cid": "<cid string>", "mimeType"}` (exactly those two
    /// keys). `mimeType` must be a non-empty string and `size` a non-negative integer.
    pub fn from_value(value: &Ipld) -> Option<BlobRef> {
        let Ipld::Map(map) = value else {
            return None;
        };
        match map.get("$type") {
            Some(Ipld::String(t)) if t == "blob" => current(map),
            Some(_) => None,
            None => legacy(map),
        }
    }

    /// The current blob form (`$type: "blob"`), as records should contain it.
    pub fn to_value(&self) -> Ipld {
        let size = i128::from(self.size);
        Ipld::Map(BTreeMap::from([
            ("$type".to_owned(), Ipld::String("blob".to_owned())),
            ("ref".to_owned(), Ipld::Link(self.cid)),
            ("mimeType".to_owned(), Ipld::String(self.mime_type.clone())),
            ("size".to_owned(), Ipld::Integer(size)),
        ]))
    }
}

fn mime_type(map: &BTreeMap<String, Ipld>) -> Option<String> {
    match map.get("mimeType") {
        Some(Ipld::String(m)) if !m.is_empty() => Some(m.clone()),
        _ => None,
    }
}

fn current(map: &BTreeMap<String, Ipld>) -> Option<BlobRef> {
    if map.len() != 4 {
        return None;
    }
    let Some(Ipld::Link(cid)) = map.get("ref") else {
        return None;
    };
    let Some(Ipld::Integer(size)) = map.get("size") else {
        return None;
    };
    Some(BlobRef {
        cid: *cid,
        mime_type: mime_type(map)?,
        size: u64::try_from(*size).ok()?,
    })
}

fn legacy(map: &BTreeMap<String, Ipld>) -> Option<BlobRef> {
    if map.len() != 2 {
        return None;
    }
    let Some(Ipld::String(cid)) = map.get("cid") else {
        return None;
    };
    Some(BlobRef {
        cid: Cid::try_from(cid.as_str()).ok()?,
        mime_type: mime_type(map)?,
        size: 0,
    })
}

/// Every blob reference in a value, at any depth inside maps and lists, in document order
/// (map keys in their sorted order). Not de-duplicated: a blob used twice appears twice.
/// Walks with an explicit stack, so arbitrarily deep values are safe.
pub fn find_blobs(value: &Ipld) -> Vec<BlobRef> {
    let mut found = Vec::new();
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        if let Some(blob) = BlobRef::from_value(value) {
            found.push(blob);
            continue;
        }
        match value {
            Ipld::List(items) => stack.extend(items.iter().rev()),
            Ipld::Map(map) => stack.extend(map.values().rev()),
            _ => {}
        }
    }
    found
}
