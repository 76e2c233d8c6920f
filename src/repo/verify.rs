//! Whole-repository verification, as a receiver of a CAR export (or an import) performs it.

use cid::Cid;

use super::blockstore::{BlockMap, BlockStore, MemoryBlockStore};
use super::car::{self, CarReader, Limits};
use super::cbor;
use super::commit::{self, Commit};
use super::mst::{self, Mst};
use crate::crypto::PublicKey;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the CAR has {0} roots; a repository export has exactly one")]
    RootCount(usize),
    #[error("commit block {0} is missing")]
    MissingCommit(Cid),
    #[error("commit is for {found}, expected {expected}")]
    WrongDid { expected: String, found: String },
    #[error("record {path}: block {cid} is missing")]
    MissingRecord { path: String, cid: Cid },
    #[error("record {path}: {source}")]
    BadRecord {
        path: String,
        #[source]
        source: cbor::Error,
    },
    #[error("MST is not canonical: rebuilt root {rebuilt} differs from commit data {data}")]
    NonCanonicalTree { data: Cid, rebuilt: Cid },
    #[error(transparent)]
    Car(#[from] car::Error),
    #[error(transparent)]
    Commit(#[from] commit::Error),
    #[error(transparent)]
    Mst(#[from] mst::Error),
    #[error(transparent)]
    Store(#[from] super::blockstore::Error),
}

/// A verified repository: its head commit and every record path with its CID, in key order.
#[derive(Debug, Clone)]
pub struct VerifiedRepo {
    pub commit_cid: Cid,
    pub commit: Commit,
    pub records: Vec<(String, Cid)>,
    /// Number of MST nodes.
    pub node_count: usize,
}

/// Verifies a repository held in `blocks` with head commit `root`: the commit decodes (and its
/// signature verifies when `key` is given, and its DID matches when `did` is given), every MST
/// node is present, hashes to its CID and is well formed, every record is present and is valid
/// atproto data, and rebuilding the tree from its records gives exactly the commit's `data`.
pub(crate) async fn verify_blocks(
    blocks: &BlockMap,
    root: Cid,
    did: Option<&str>,
    key: Option<&PublicKey>,
) -> Result<VerifiedRepo, Error> {
    let store = MemoryBlockStore::from_blocks(blocks);
    let commit_bytes = store.get(&root).await?.ok_or(Error::MissingCommit(root))?;
    let commit = Commit::from_cbor(&commit_bytes)?;
    if let Some(expected) = did
        && commit.did() != expected
    {
        return Err(Error::WrongDid {
            expected: expected.to_owned(),
            found: commit.did().to_owned(),
        });
    }
    if let Some(key) = key {
        commit.verify(key)?;
    }
    let tree = Mst::load(store.clone(), *commit.data()).await?;
    let mut node_count = 0;
    let mut walker = tree.walk_blocks();
    while walker.next().await?.is_some() {
        node_count += 1;
    }
    let records = tree.all_leaves().await?;
    for (path, cid) in &records {
        let bytes = store.get(cid).await?.ok_or_else(|| Error::MissingRecord {
            path: path.clone(),
            cid: *cid,
        })?;
        cbor::decode(&bytes).map_err(|source| Error::BadRecord {
            path: path.clone(),
            source,
        })?;
    }
    let rebuilt = Mst::from_sorted(MemoryBlockStore::new(), records.iter().cloned())?.root_cid();
    if rebuilt != *commit.data() {
        return Err(Error::NonCanonicalTree {
            data: *commit.data(),
            rebuilt,
        });
    }
    Ok(VerifiedRepo {
        commit_cid: root,
        commit,
        records,
        node_count,
    })
}

/// Reads a repository CAR (every block hash checked, within `limits`) and verifies it.
pub async fn verify_car<R: tokio::io::AsyncRead + Unpin + Send>(
    reader: R,
    limits: Limits,
    did: Option<&str>,
    key: Option<&PublicKey>,
) -> Result<(VerifiedRepo, BlockMap), Error> {
    let mut car = CarReader::new(reader, limits).await?;
    if car.roots().len() != 1 {
        return Err(Error::RootCount(car.roots().len()));
    }
    let root = car.roots()[0];
    let mut blocks = BlockMap::new();
    while let Some((cid, bytes)) = car.next_block().await? {
        blocks.insert(cid, bytes);
    }
    let verified = verify_blocks(&blocks, root, did, key).await?;
    Ok((verified, blocks))
}
