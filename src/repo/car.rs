//! CAR v1 (content-addressable archive) files, as atproto uses them for repo exports
//! (`sync.getRepo`), block sets (`sync.getBlocks`), firehose commit slices and proofs.
//!
//! A CAR v1 file is a length-prefixed DAG-CBOR header `{roots: [CID], version: 1}` followed
//! by sections `varint(len) ‖ CID bytes ‖ block bytes`, where `len` covers the CID and the
//! block. atproto writes exactly one root (the commit CID) and only CIDv1 + SHA-256 with the
//! DAG-CBOR or raw codec.
//!
//! * Writing ([`CarWriter`]) wraps iroh-car's writer: it streams block by block and never
//!   holds the archive in memory.
//! * Reading ([`CarReader`]) is our own, on tokio's `AsyncRead`. iroh-car's reader has a fixed
//!   4 MiB section cap, no header, total-size or block-count limits, does not verify hashes,
//!   and takes a stream cut inside a length varint for a clean end of file. CAR bytes come from
//!   other servers and from users, so every limit here is configurable ([`Limits`]) and every
//!   block's hash is checked before the block is handed out.

mod reader;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hostile;

use std::fmt;

use bytes::Bytes;
use cid::Cid;
use tokio::io::AsyncRead;

use crate::repo::blockstore::{self, BlockMap, BlockStore};

pub use reader::{CarReader, RootPolicy};
pub use writer::CarWriter;

/// Where in a CAR file something went wrong. Blocks are numbered from 0 in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Header,
    Block(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Header => f.write_str("header"),
            Location::Block(index) => write!(f, "block {index}"),
        }
    }
}

/// CIDs are boxed so the error stays small on the `Ok` path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("input is empty: no CAR header")]
    Empty,
    #[error("truncated {at}: expected {expected} bytes, got {got}")]
    Truncated {
        at: Location,
        expected: u64,
        got: u64,
    },
    #[error("truncated {at}: input ends inside the length varint")]
    TruncatedVarint { at: Location },
    #[error("{at}: length varint is longer than 9 bytes")]
    VarintTooLong { at: Location },
    #[error("{at}: length varint is not minimally encoded")]
    VarintNotMinimal { at: Location },
    #[error("header length {len} exceeds limit {limit}")]
    HeaderTooLong { len: u64, limit: usize },
    #[error("header length is 0")]
    EmptyHeaderSection,
    #[error("header is not valid DAG-CBOR: {0}")]
    HeaderCbor(#[source] serde_ipld_dagcbor::DecodeError<std::convert::Infallible>),
    #[error("invalid header: {0}")]
    HeaderShape(String),
    #[error("unsupported CAR version {0} (only version 1 is supported)")]
    UnsupportedVersion(i128),
    #[error("header has no roots")]
    EmptyRoots,
    #[error("header root {index} ({cid}): unsupported CID: {reason}")]
    UnsupportedRoot {
        index: usize,
        cid: Box<Cid>,
        reason: String,
    },
    #[error("{at}: section length 0 (a section holds at least a CID)")]
    ZeroLengthSection { at: Location },
    #[error("{at}: section length {len} exceeds limit {limit}")]
    SectionTooLong {
        at: Location,
        len: u64,
        limit: usize,
    },
    #[error("{at}: invalid CID: {source}")]
    InvalidCid {
        at: Location,
        #[source]
        source: cid::Error,
    },
    #[error("{at} ({cid}): unsupported CID: {reason}")]
    UnsupportedCid {
        at: Location,
        cid: Box<Cid>,
        reason: String,
    },
    #[error("{at} ({cid}): hash does not match content")]
    HashMismatch { at: Location, cid: Box<Cid> },
    #[error("CAR has more than {limit} blocks")]
    TooManyBlocks { limit: usize },
    #[error("{at}: CAR is longer than the limit of {limit} bytes")]
    TotalTooLong { at: Location, limit: u64 },
    #[error("the CAR reader already failed on an earlier error")]
    ReaderFailed,
    #[error("I/O error in CAR stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing CAR failed: {0}")]
    Write(#[source] iroh_car::Error),
    #[error("storing CAR blocks failed: {0}")]
    Store(#[from] blockstore::Error),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// Caps applied to a CAR read from an untrusted source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest header (the DAG-CBOR map, without its length varint). Default 64 KiB; a
    /// single-root header is 58 bytes.
    pub max_header_len: usize,
    /// Largest section (CID + block bytes). Default 2 MiB: atproto records are at most 1 MB.
    pub max_block_len: usize,
    /// Largest whole file, header included; `None` for no limit.
    pub max_total_len: Option<u64>,
    /// Most sections; `None` for no limit.
    pub max_blocks: Option<usize>,
}

impl Limits {
    pub const DEFAULT_MAX_HEADER_LEN: usize = 64 * 1024;
    pub const DEFAULT_MAX_BLOCK_LEN: usize = 2 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_len: Self::DEFAULT_MAX_HEADER_LEN,
            max_block_len: Self::DEFAULT_MAX_BLOCK_LEN,
            max_total_len: None,
            max_blocks: None,
        }
    }
}

/// Writes a small CAR (firehose slices, proofs) into memory: one root, blocks in the given order.
pub(crate) async fn write_car_bytes(
    root: Cid,
    blocks: impl IntoIterator<Item = (Cid, Bytes)>,
) -> Vec<u8> {
    let mut writer = CarWriter::new(Vec::new(), root);
    for (cid, bytes) in blocks {
        writer
            .write_block(&cid, &bytes)
            .await
            .expect("writing into a Vec<u8> cannot fail");
    }
    writer
        .finish()
        .await
        .expect("writing into a Vec<u8> cannot fail")
}

/// Writes a block set into memory as a CAR without roots (`sync.getBlocks`), blocks in the
/// given order.
#[cfg(test)]
pub(crate) async fn write_rootless_car_bytes(
    blocks: impl IntoIterator<Item = (Cid, Bytes)>,
) -> Vec<u8> {
    let mut writer = CarWriter::without_roots(Vec::new());
    for (cid, bytes) in blocks {
        writer
            .write_block(&cid, &bytes)
            .await
            .expect("writing into a Vec<u8> cannot fail");
    }
    writer
        .finish()
        .await
        .expect("writing into a Vec<u8> cannot fail")
}

/// Reads a whole in-memory CAR, verifying every block. Duplicate sections collapse into one
/// entry of the map; use [`CarReader`] to see the sections in file order.
pub async fn read_car_bytes(bytes: &[u8], limits: Limits) -> Result<(Vec<Cid>, BlockMap)> {
    let mut reader = CarReader::new(bytes, limits).await?;
    let mut blocks = BlockMap::new();
    while let Some((cid, data)) = reader.next_block().await? {
        blocks.insert(cid, data);
    }
    Ok((reader.roots().to_vec(), blocks))
}

/// What [`read_into_store`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredCar {
    pub roots: Vec<Cid>,
    /// Sections read (duplicates included).
    pub blocks: usize,
    /// Bytes of block data read (CIDs and framing excluded).
    pub block_bytes: u64,
}

/// Most blocks per `put_many` batch in [`read_into_store`].
pub(crate) const STORE_BATCH_BLOCKS: usize = 1000;
/// Most block bytes per batch: with 2 MiB blocks, 1000 blocks could otherwise be 2 GiB.
pub(crate) const STORE_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Reads every block of `reader` into `store` tagged with `rev`, in batches of at most
/// [`STORE_BATCH_BLOCKS`] blocks or [`STORE_BATCH_BYTES`] bytes, so memory stays bounded.
///
/// Each block is verified before it is stored, but a CAR that fails half-way leaves the
/// batches before the failure in the store. They are valid, content-addressed blocks that
/// nothing references; callers that need all-or-nothing should read into a
/// [`MemoryBlockStore`](crate::repo::blockstore::MemoryBlockStore) or a transaction first.
pub(crate) async fn read_into_store<R, S>(
    mut reader: CarReader<R>,
    store: &S,
    rev: &str,
) -> Result<StoredCar>
where
    R: AsyncRead + Unpin + Send,
    S: BlockStore,
{
    let mut batch = BlockMap::new();
    let mut batch_bytes = 0usize;
    let mut blocks = 0usize;
    let mut block_bytes = 0u64;
    while let Some((cid, data)) = reader.next_block().await? {
        blocks += 1;
        block_bytes += data.len() as u64;
        batch_bytes += data.len();
        batch.insert(cid, data);
        if batch.len() >= STORE_BATCH_BLOCKS || batch_bytes >= STORE_BATCH_BYTES {
            store.put_many(&batch, rev).await?;
            batch.clear();
            batch_bytes = 0;
        }
    }
    if !batch.is_empty() {
        store.put_many(&batch, rev).await?;
    }
    Ok(StoredCar {
        roots: reader.roots().to_vec(),
        blocks,
        block_bytes,
    })
}
