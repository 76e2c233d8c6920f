//! SQLite persistence.
//!
//! Each account has its own SQLite database, the *actor store* (schema in
//! `migrations/actor/`): the repository's blocks, its head (`repo_root`), the records index
//! and blob references ([`records`]), preferences, and the firehose outbox ([`outbox`]).
//! [`sqlite`] opens it and runs the migrations.
//!
//! All SQL lives in functions that take `&mut SqliteConnection` ([`blocks`], [`root`]), so the
//! same function runs on a pooled connection or inside a transaction: a commit writes its
//! blocks and the new root in one transaction. [`SqliteBlockStore`] adapts a pool to the repo
//! engine's [`BlockStore`](crate::repo::blockstore::BlockStore) trait.
//!
//! CIDs are stored in binary form (`Cid::to_bytes()`) everywhere in the actor store.

pub mod blobs;
pub mod block_store;
pub mod blocks;
pub mod changes;
pub mod commit;
pub(crate) mod direct;
pub mod export;
pub(crate) mod group;
pub mod migrations;
pub mod outbox;
pub mod prefs;
pub mod records;
pub mod root;
pub mod sqlite;
pub mod stats;

pub use block_store::SqliteBlockStore;

use crate::repo::blockstore;

/// Errors of the SQLite persistence layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A CID column held bytes that do not parse as a CID (a corrupt or foreign database).
    #[error("stored CID is malformed: {0}")]
    InvalidStoredCid(#[source] cid::Error),
    /// The database already holds the repository of another account.
    #[error("database holds the repository of {stored}, not {given}")]
    WrongRepo { stored: String, given: String },
    /// A statement of the blocking connections ([`direct`]) failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Blocking work on the database did not finish (its thread panicked or was cancelled).
    #[error("database work failed: {0}")]
    Blocking(String),
    /// The store was closed (its account is being deleted).
    #[error("the store is closed")]
    Closed,
    /// A record block is not valid DAG-CBOR (a corrupt or foreign database).
    #[error("stored record is not valid DAG-CBOR: {0}")]
    StoredRecord(#[source] crate::repo::cbor::Error),
    /// The store holds no repository yet.
    #[error("the store holds no repository")]
    NoHead,
    /// The CAR header could not be encoded.
    #[error("encoding the CAR header failed: {0}")]
    CarHeader(String),
    /// A block the head names is not stored.
    #[error("block {0} is missing from the store")]
    MissingBlock(Box<cid::Cid>),
    /// The head is no longer the one a commit was formatted against (another writer moved
    /// it); nothing was written.
    #[error("the repository head moved from {} to {}", .0.0.map_or("none".into(), |c| c.to_string()), .0.1.map_or("none".into(), |c| c.to_string()))]
    HeadMoved(Box<(Option<cid::Cid>, Option<cid::Cid>)>),
    /// A new repo head must have a revision greater than the current one.
    #[error("revision {given} does not follow the current revision {current}")]
    StaleRev { current: String, given: String },
}

impl From<Error> for blockstore::Error {
    fn from(err: Error) -> Self {
        blockstore::Error::Backend(Box::new(err))
    }
}

/// Parses a CID read from a CID column.
fn cid_from_column(bytes: &[u8]) -> Result<cid::Cid, Error> {
    cid::Cid::try_from(bytes).map_err(Error::InvalidStoredCid)
}
