//! A signed repository: the current commit plus its MST, and the formatting of new commits.
//!
//! Writing is two-phase so that the caller decides durability: [`Repo::format_commit`] builds
//! and signs the next commit without touching the store and returns a [`PreparedCommit`]; the
//! caller persists `new_blocks` (and deletes `removed_cids`) in one transaction together with the
//! new root, then calls [`Repo::apply`]. Nothing is visible to readers before it is durable.

use bytes::Bytes;
use cid::Cid;

use super::blockstore::{self, BlockMap, BlockStore};
use super::cbor::{self, Ipld};
use super::commit::{self, Commit, UnsignedCommit};
use super::mst::{self, Mst, RecordOp};
use crate::crypto::Keypair;
use crate::syntax::{Nsid, RecordKey};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("record already exists: {0}")]
    RecordExists(String),
    #[error("record not found: {0}")]
    RecordNotFound(String),
    #[error("path written twice in one commit: {0}")]
    DuplicatePath(String),
    #[error("commit {0} is missing from the store")]
    MissingCommit(Cid),
    #[error("record block {0} is missing from the store")]
    MissingRecord(Cid),
    #[error("new revision {new} does not follow {current}")]
    StaleRev { current: String, new: String },
    #[error("commit is for {found}, not {expected}")]
    WrongRepo { expected: String, found: String },
    #[error(transparent)]
    Commit(#[from] commit::Error),
    #[error(transparent)]
    Mst(mst::Error),
    #[error(transparent)]
    Cbor(#[from] cbor::Error),
    #[error(transparent)]
    Store(#[from] blockstore::Error),
}

impl From<mst::Error> for Error {
    fn from(e: mst::Error) -> Self {
        match e {
            mst::Error::KeyExists(k) => Error::RecordExists(k),
            mst::Error::KeyNotFound(k) => Error::RecordNotFound(k),
            e => Error::Mst(e),
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// One record write of a commit.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Create {
        collection: Nsid,
        rkey: RecordKey,
        record: Ipld,
    },
    Update {
        collection: Nsid,
        rkey: RecordKey,
        record: Ipld,
    },
    Delete {
        collection: Nsid,
        rkey: RecordKey,
    },
}

impl Write {
    /// The repository path `collection/rkey`.
    pub fn path(&self) -> String {
        let (Write::Create {
            collection, rkey, ..
        }
        | Write::Update {
            collection, rkey, ..
        }
        | Write::Delete { collection, rkey }) = self;
        format!("{collection}/{rkey}")
    }
}

/// Everything a commit changes, as the store, the records index and the firehose need it.
#[derive(Debug, Clone)]
pub struct CommitData {
    pub did: String,
    /// CID of the new commit block.
    pub cid: Cid,
    pub commit: Commit,
    pub rev: String,
    /// Revision of the previous commit (`None` for the first commit).
    pub since: Option<String>,
    /// MST root of the previous commit (`None` for the first commit).
    pub prev_data: Option<Cid>,
    /// The record operations in write order, each with the record's previous CID.
    pub ops: Vec<RecordOp>,
    /// The blocks this commit introduces: the commit, new record blocks, new MST nodes.
    pub new_blocks: BlockMap,
    /// What a firehose receiver needs to verify and invert the commit: `new_blocks` plus the
    /// covering proof of every touched key (sync 1.1).
    pub relevant_blocks: BlockMap,
    /// Blocks the repository no longer references: the previous commit and replaced MST nodes.
    pub removed_cids: Vec<Cid>,
    /// Record blocks that deletes and updates released. Another path may hold an identical
    /// record, so the owner of the records index removes each only when nothing else uses it.
    pub released_record_cids: Vec<Cid>,
}

/// A commit formatted and signed but not yet persisted.
#[derive(Debug, Clone)]
pub struct PreparedCommit<S> {
    pub data: CommitData,
    mst: Mst<S>,
}

/// A repository at one commit.
#[derive(Debug, Clone)]
pub struct Repo<S> {
    commit: Commit,
    cid: Cid,
    mst: Mst<S>,
}

impl<S: BlockStore + Clone> Repo<S> {
    /// The repository whose head is the commit `cid`.
    pub async fn load(store: S, cid: Cid) -> Result<Self> {
        let bytes = store.get(&cid).await?.ok_or(Error::MissingCommit(cid))?;
        let commit = Commit::from_cbor(&bytes)?;
        let mst = Mst::load(store, *commit.data()).await?;
        Ok(Repo { commit, cid, mst })
    }

    /// Formats the first commit of a new repository holding `writes` (which must be creates).
    pub async fn format_init(
        store: S,
        did: &str,
        key: &Keypair,
        rev: String,
        writes: &[Write],
    ) -> Result<PreparedCommit<S>> {
        format(did, Mst::create(store), None, key, rev, writes).await
    }

    /// Formats and signs the next commit applying `writes`; `rev` must sort after the current rev.
    pub async fn format_commit(
        &self,
        writes: &[Write],
        key: &Keypair,
        rev: String,
    ) -> Result<PreparedCommit<S>> {
        let current = self.rev().unwrap_or_default();
        if rev.as_str() <= current {
            return Err(Error::StaleRev {
                current: current.to_owned(),
                new: rev,
            });
        }
        format(self.did(), self.mst.clone(), Some(self), key, rev, writes).await
    }

    /// The repository after `prepared` has been persisted.
    pub fn apply(prepared: PreparedCommit<S>) -> Self {
        Repo {
            commit: prepared.data.commit,
            cid: prepared.data.cid,
            mst: prepared.mst,
        }
    }

    /// Convenience for stores without a separate root: formats the commit, writes its blocks in
    /// one batch and returns the new repository. (The server persists through its own
    /// transaction instead, with the records index and the sequencer row.)
    #[cfg(test)]
    pub(crate) async fn commit_writes(
        &self,
        writes: &[Write],
        key: &Keypair,
        rev: String,
    ) -> Result<(Self, CommitData)> {
        let prepared = self.format_commit(writes, key, rev).await?;
        self.mst
            .store()
            .put_many(&prepared.data.new_blocks, &prepared.data.rev)
            .await?;
        let data = prepared.data.clone();
        Ok((Repo::apply(prepared), data))
    }

    pub fn did(&self) -> &str {
        self.commit.did()
    }

    pub fn cid(&self) -> Cid {
        self.cid
    }

    pub fn commit(&self) -> &Commit {
        &self.commit
    }

    pub fn rev(&self) -> Option<&str> {
        self.commit.rev()
    }

    pub fn data(&self) -> Cid {
        *self.commit.data()
    }

    pub fn mst(&self) -> &Mst<S> {
        &self.mst
    }

    /// The CID and value of the record at `collection/rkey`.
    pub async fn get_record(&self, collection: &str, rkey: &str) -> Result<Option<(Cid, Ipld)>> {
        let path = format!("{collection}/{rkey}");
        let Some(cid) = self.mst.get(&path).await? else {
            return Ok(None);
        };
        let bytes = self
            .mst
            .store()
            .get(&cid)
            .await?
            .ok_or(Error::MissingRecord(cid))?;
        Ok(Some((cid, cbor::decode(&bytes)?)))
    }
}

async fn format<S: BlockStore + Clone>(
    did: &str,
    mut mst: Mst<S>,
    current: Option<&Repo<S>>,
    key: &Keypair,
    rev: String,
    writes: &[Write],
) -> Result<PreparedCommit<S>> {
    let mut new_blocks = BlockMap::new();
    let mut ops = Vec::with_capacity(writes.len());
    let mut released_record_cids = Vec::new();
    if current.is_none() {
        // A new repository: every write must be a create; build the tree bottom-up at once.
        let mut leaves = Vec::with_capacity(writes.len());
        for write in writes {
            let path = write.path();
            let Write::Create { record, .. } = write else {
                return Err(Error::RecordNotFound(path));
            };
            let bytes = cbor::encode(record)?;
            let cid = super::cid::cid_for_cbor(&bytes);
            new_blocks.insert(cid, Bytes::from(bytes));
            mst::validate_key(&path)?;
            leaves.push((path.clone(), cid));
            ops.push(RecordOp::Create { key: path, cid });
        }
        leaves.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = leaves.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::DuplicatePath(pair[0].0.clone()));
        }
        mst = Mst::from_sorted(mst.store().clone(), leaves)?;
    } else {
        apply_writes(
            &mut mst,
            writes,
            &mut new_blocks,
            &mut ops,
            &mut released_record_cids,
        )
        .await?;
    }

    let old_mst = current.map(|repo| &repo.mst);
    let diff = mst::diff(old_mst, &mst).await?;
    new_blocks.extend(diff.new_blocks);
    let mut removed_cids = diff.removed_cids;

    let commit = Commit::sign(UnsignedCommit::new(did, mst.root_cid(), rev.clone()), key);
    let commit_bytes = Bytes::from(commit.to_cbor());
    let cid = super::cid::cid_for_cbor(&commit_bytes);
    new_blocks.insert(cid, commit_bytes);
    if let Some(repo) = current {
        removed_cids.push(repo.cid);
    }
    // A record written back unchanged is not released.
    released_record_cids.retain(|c| !new_blocks.contains_key(c));

    let mut relevant_blocks = new_blocks.clone();
    if current.is_some() {
        // (A first commit's new blocks are the whole tree: nothing more to prove.)
        relevant_blocks.extend(mst.covering_proof(ops.iter().map(RecordOp::key)).await?);
    }

    Ok(PreparedCommit {
        data: CommitData {
            did: did.to_owned(),
            cid,
            commit,
            rev,
            since: current.and_then(|r| r.rev().map(str::to_owned)),
            prev_data: current.map(Repo::data),
            ops,
            new_blocks,
            relevant_blocks,
            removed_cids,
            released_record_cids,
        },
        mst,
    })
}

/// Applies `writes` in order to `mst`, collecting record blocks, ops and released records.
async fn apply_writes<S: BlockStore + Clone>(
    mst: &mut Mst<S>,
    writes: &[Write],
    new_blocks: &mut BlockMap,
    ops: &mut Vec<RecordOp>,
    released_record_cids: &mut Vec<Cid>,
) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(writes.len());
    for write in writes {
        let path = write.path();
        if !seen.insert(path.clone()) {
            return Err(Error::DuplicatePath(path));
        }
        match write {
            Write::Create { record, .. } | Write::Update { record, .. } => {
                let bytes = cbor::encode(record)?;
                let cid = super::cid::cid_for_cbor(&bytes);
                new_blocks.insert(cid, Bytes::from(bytes));
                if matches!(write, Write::Create { .. }) {
                    *mst = mst.add(&path, cid).await?;
                    ops.push(RecordOp::Create { key: path, cid });
                } else {
                    let prev = mst
                        .get(&path)
                        .await?
                        .ok_or_else(|| Error::RecordNotFound(path.clone()))?;
                    *mst = mst.update(&path, cid).await?;
                    if prev != cid {
                        released_record_cids.push(prev);
                    }
                    ops.push(RecordOp::Update {
                        key: path,
                        prev,
                        cid,
                    });
                }
            }
            Write::Delete { .. } => {
                let prev = mst
                    .get(&path)
                    .await?
                    .ok_or_else(|| Error::RecordNotFound(path.clone()))?;
                *mst = mst.delete(&path).await?;
                released_record_cids.push(prev);
                ops.push(RecordOp::Delete { key: path, prev });
            }
        }
    }

    Ok(())
}

#[cfg(test)]
mod tests;
