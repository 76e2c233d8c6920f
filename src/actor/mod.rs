//! Accounts' repositories as a service: per-account SQLite stores ([`ActorStores`]) and the
//! repository writer and reader over them ([`ActorRepo`]).
//!
//! [`ActorRepo::apply_writes`] is the one place a repository changes: it serialises writes
//! per account, formats and signs the commit, and persists the blocks, the new head, the
//! records index and the commit's firehose event in one actor-store transaction, then hands
//! the event to the [`Sequencer`](crate::sequencer::Sequencer) (see that module for why this
//! is crash-safe across the two databases).

mod blobs;
mod heads;
pub mod hooks;
mod import;
mod keyfile;
mod locks;
mod read;
mod repo;
mod stores;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use cid::Cid;

pub use crate::store::direct::RecordJson;
pub use blobs::{BlobGcReport, GC_BATCH, PENDING_DIR};
pub use import::{Error as ImportError, ImportReport};
pub use read::{RecordEntry, RecordPage};
pub use repo::{
    ActorRepo, CommitResult, MAX_RECORD_LEN, MAX_WRITES, RecordWrite, RecoveryReport, WriteCounts,
    WriteResult,
};
pub use stores::{
    ACTORS_DIR, ActorHandle, ActorStores, CacheCounts, DEFAULT_CAPACITY, POOL_CONNECTIONS,
    POOL_IDLE_TIMEOUT, STORE_FILE,
};

/// What a compare-and-swap expected and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapMismatch {
    /// `swapCommit` did not name the current head.
    Commit { current: Cid },
    /// `swapRecord` did not match the record at `path` (`None`: there is no record).
    Record { path: String, current: Option<Cid> },
}

impl fmt::Display for SwapMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwapMismatch::Commit { current } => write!(f, "Commit was at {current}"),
            SwapMismatch::Record {
                current: Some(cid), ..
            } => write!(f, "Record was at {cid}"),
            SwapMismatch::Record { current: None, .. } => f.write_str("Record was at null"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The account has no store, or its store has no repository yet.
    #[error("could not find repo: {0}")]
    RepoNotFound(String),
    /// `create` on an account that already has a store.
    #[error("actor store already exists for {0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidSwap(SwapMismatch),
    #[error("too many writes: {count} (at most {max} per commit)")]
    TooManyWrites { count: usize, max: usize },
    #[error("record {path} is {len} bytes encoded (at most {max})")]
    RecordTooLarge {
        path: String,
        len: usize,
        max: usize,
    },
    /// Repo signing keys are secp256k1.
    #[error("repo signing keys must be secp256k1")]
    UnsupportedKeyAlgorithm,
    #[error("key file {0} does not hold a secp256k1 private key in hex")]
    InvalidKeyFile(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The semaphore bounding open pools was closed (never done while the stores live).
    #[error("actor store cache is closed")]
    CacheClosed,
    #[error("stored revision {0:?} is not a TID")]
    InvalidStoredRev(String),
    /// Create / update / delete against the current tree failed (record exists, not found…).
    #[error(transparent)]
    Repo(#[from] crate::repo::repository::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Sequencer(#[from] crate::sequencer::Error),
    #[error(transparent)]
    Event(#[from] crate::sequencer::events::Error),
    /// The account database's copy of a repository head could not be written.
    #[error("repository head index: {0}")]
    Accounts(#[from] crate::accounts::Error),
    #[error("stored record is not valid DAG-CBOR: {0}")]
    StoredRecord(#[from] crate::repo::cbor::Error),
    /// A record references a blob this account has not uploaded (or that is taken down).
    #[error("Could not find blob: {0}")]
    BlobNotFound(Cid),
    /// A record's blob reference names another type than the upload has.
    #[error("Referenced Mimetype does not match stored blob. Expected: {expected}, Got: {got}")]
    BlobMimeMismatch { expected: String, got: String },
    /// A record's blob reference names another size than the upload has.
    #[error("Referenced Size does not match stored blob. Expected: {expected}, Got: {got}")]
    BlobSizeMismatch { expected: u64, got: u64 },
    /// An upload of a blob a moderator took down.
    #[error("Blob has been takendown, cannot re-upload")]
    BlobTakendown(Cid),
    #[error(transparent)]
    Blobs(#[from] crate::blobs::Error),
    /// A commit hook refused the write (see [`hooks`]); the XRPC layer maps the refusals it
    /// knows.
    #[error(transparent)]
    Refused(hooks::Refusal),
}

impl Error {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_owned(),
            source,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Store(crate::store::Error::Database(e))
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
