//! Importing a whole repository into an account (`com.atproto.repo.importRepo`, the first
//! step of migrating an account here).
//!
//! The CAR is read from a file (the XRPC handler streams the request body to disk first) in
//! two passes over a *staging* database, a throwaway actor store beside the data:
//! 1. every block is read with its hash checked ([`CarReader`]) and written to the staging
//!    store in batches;
//! 2. the commit is checked (one root, the account's DID, signed by a key the DID document
//!    names or named) and its tree walked in key order ([`LeafScan`], which keeps no node it passed),
//!    every node and record checked; the reachable blocks, the records index and the records'
//!    blob references go into the staging store.
//!
//! Only then, in **one** transaction on the account's store (with the staging file attached),
//! the previous repository is replaced by the reachable blocks, the records index and the new
//! head. A failure or a crash at any point before that commit leaves the previous repository
//! exactly as it was; the staging file is deleted at the end either way (and a leftover from
//! a crash by the next import of the account). Memory stays bounded: blocks go to disk in
//! batches, and the tree walk holds one node per layer.
//!
//! Uploaded blobs and preferences are kept; the records' blob references become the
//! account's expected blobs (`listMissingBlobs`). Nothing is sequenced: a migrating account is
//! deactivated, and `activateAccount` announces the repository with `#sync`.

use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use cid::Cid;
use sqlx::sqlite::SqlitePool;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{ActorRepo, heads};
use crate::crypto::PublicKey;
use crate::repo::car::{self, CarReader, Limits};
use crate::repo::cbor;
use crate::repo::commit::{self, Commit, UnsignedCommit};
use crate::repo::mst::{self, LeafScan, Scanned};
use crate::store::sqlite::{self, OpenOptions, begin_write};
use crate::store::{SqliteBlockStore, blocks, root};
use crate::syntax::{Did, Nsid, RecordKey, Tid};

/// Rows written to the staging store per transaction in the second pass.
const INDEX_BATCH: usize = 2000;
/// Rows per multi-row `INSERT` (at most 6 parameters a row, far under SQLite's 32,766).
const INSERT_ROWS: usize = 500;
/// Record blocks read per lookup in the second pass.
const READ_BATCH: usize = 500;
/// Revision tag of blocks in the staging store (the real one is set when they are copied).
const STAGING_REV: &str = "import";

/// Why an import was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid CAR: {0}")]
    Car(#[from] car::Error),
    #[error("the CAR has {0} roots; a repository export has exactly one")]
    RootCount(usize),
    #[error("commit block {0} is missing from the CAR")]
    MissingCommit(Box<Cid>),
    #[error("invalid commit: {0}")]
    Commit(#[source] commit::Error),
    #[error("commit is for {found}, not {expected}")]
    WrongDid { expected: String, found: String },
    #[error("commit signature does not verify with the DID document's signing key")]
    BadSignature,
    #[error("commit rev {0:?} is not a TID")]
    BadRev(String),
    #[error("invalid repository tree: {0}")]
    Mst(Box<mst::Error>),
    #[error("record {path}: block {cid} is missing from the CAR")]
    MissingRecord { path: String, cid: Box<Cid> },
    #[error("record {path} is not valid atproto data: {source}")]
    BadRecord {
        path: String,
        #[source]
        source: cbor::Error,
    },
    #[error("record path {0} is not collection/rkey")]
    BadPath(String),
    /// The account has no repository here (create the account first).
    #[error(transparent)]
    Actor(#[from] Box<super::Error>),
    #[error("import storage: {0}")]
    Store(#[from] crate::store::Error),
    #[error("import file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the CAR itself is at fault (a client error), not this server.
    pub fn is_invalid_input(&self) -> bool {
        !matches!(self, Error::Actor(_) | Error::Store(_) | Error::Io { .. })
            && !matches!(self, Error::Car(car::Error::Io(_)))
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Store(crate::store::Error::Database(e))
    }
}

impl From<mst::Error> for Error {
    fn from(e: mst::Error) -> Self {
        Error::Mst(Box::new(e))
    }
}

impl From<crate::repo::blockstore::Error> for Error {
    fn from(e: crate::repo::blockstore::Error) -> Self {
        Error::Mst(Box::new(mst::Error::from(e)))
    }
}

/// What an import installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub commit: Cid,
    pub rev: String,
    /// Blocks of the repository (commit, tree nodes, records; CAR blocks nothing reaches are
    /// dropped).
    pub blocks: u64,
    pub records: u64,
    /// Distinct blobs the records reference.
    pub expected_blobs: u64,
    /// Bytes of the CAR file.
    pub car_bytes: u64,
}

/// The staging database and its files, removed when dropped.
struct Staging {
    path: PathBuf,
    pool: SqlitePool,
}

impl Staging {
    async fn open(path: PathBuf) -> Result<Staging, Error> {
        remove_files(&path);
        let opts = OpenOptions {
            max_connections: 2,
            ..OpenOptions::default()
        };
        let pool = sqlite::open(&path, &opts).await?;
        sqlx::query("CREATE TABLE reachable (cid BLOB PRIMARY KEY NOT NULL) WITHOUT ROWID")
            .execute(&pool)
            .await?;
        Ok(Staging { path, pool })
    }

    async fn close(self) {
        self.pool.close().await;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        remove_files(&self.path);
    }
}

fn remove_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// Pass 2's buffered rows.
#[derive(Default)]
struct IndexBatch {
    reachable: Vec<Cid>,
    /// (uri, cid, collection, rkey)
    records: Vec<(String, Cid, String, String)>,
    /// (blob, uri)
    blobs: Vec<(Cid, String)>,
}

impl IndexBatch {
    fn len(&self) -> usize {
        self.reachable.len() + self.records.len() + self.blobs.len()
    }

    async fn flush(&mut self, pool: &SqlitePool, rev: &str, now: &str) -> Result<(), Error> {
        // Multi-row statements: one round trip to SQLite's thread per few hundred rows, not
        // one per row (which made the import wait on thread hand-offs).
        let mut tx = begin_write(pool).await?;
        for chunk in self.reachable.chunks(INSERT_ROWS) {
            let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO reachable (cid) ");
            insert.push_values(chunk, |mut row, cid| {
                row.push_bind(cid.to_bytes());
            });
            insert.push(" ON CONFLICT DO NOTHING");
            insert.build().execute(&mut *tx).await?;
        }
        for chunk in self.records.chunks(INSERT_ROWS) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO record (uri, cid, collection, rkey, repoRev, indexedAt) ",
            );
            insert.push_values(chunk, |mut row, (uri, cid, collection, rkey)| {
                row.push_bind(uri.as_str())
                    .push_bind(cid.to_bytes())
                    .push_bind(collection.as_str())
                    .push_bind(rkey.as_str())
                    .push_bind(rev)
                    .push_bind(now);
            });
            insert.build().execute(&mut *tx).await?;
        }
        for chunk in self.blobs.chunks(INSERT_ROWS) {
            let mut insert =
                QueryBuilder::<Sqlite>::new("INSERT INTO record_blob (blobCid, recordUri) ");
            insert.push_values(chunk, |mut row, (blob, uri)| {
                row.push_bind(blob.to_bytes()).push_bind(uri.as_str());
            });
            insert.push(" ON CONFLICT DO NOTHING");
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.reachable.clear();
        self.records.clear();
        self.blobs.clear();
        Ok(())
    }
}

/// Reads the record blocks of `leaves` in one lookup, checks each decodes, and adds the
/// record, its block and its blob references to `batch`. Empties `leaves`.
async fn index_leaves(
    conn: &mut SqliteConnection,
    did: &Did,
    leaves: &mut Vec<(String, Cid)>,
    batch: &mut IndexBatch,
) -> Result<(), Error> {
    let cids: Vec<Cid> = leaves.iter().map(|(_, cid)| *cid).collect();
    let (found, _missing) = blocks::get_many(conn, &cids).await?;
    for (path, cid) in leaves.drain(..) {
        let (collection, rkey) = split_path(&path)?;
        let Some(bytes) = found.get(&cid) else {
            return Err(Error::MissingRecord {
                path,
                cid: Box::new(cid),
            });
        };
        let value = cbor::decode(bytes).map_err(|source| Error::BadRecord {
            path: path.clone(),
            source,
        })?;
        let uri = format!("at://{did}/{path}");
        for blob in cbor::find_blobs(&value) {
            batch.blobs.push((blob.cid, uri.clone()));
        }
        batch.reachable.push(cid);
        batch.records.push((uri, cid, collection, rkey));
    }
    Ok(())
}

impl ActorRepo {
    /// Replaces `did`'s repository with the one in the CAR file `car_path`, whose commit must
    /// be for `did` and signed by one of `keys` (the DID's signing keys). `staging_dir` holds
    /// the temporary database (on the data volume: it grows to about the CAR's size).
    ///
    /// The account must have a store here. On any error the previous repository is intact.
    ///
    /// The import runs to its end in a task of its own even if the caller stops waiting (a
    /// client that hangs up): dropped halfway, its staging pool would close its connections
    /// in the background, and the last one removes the `-wal` file by name, which may by then
    /// be the next import's of the account.
    pub async fn import_repo(
        &self,
        did: &Did,
        car_path: &Path,
        keys: &[PublicKey],
        staging_dir: &Path,
        limits: Limits,
    ) -> Result<ImportReport, Error> {
        // One import or write of the account at a time (the staging file is named by DID).
        let writer = self.lock_account(did).await;
        let this = self.clone();
        let (did, car_path, keys, staging_dir) = (
            did.clone(),
            car_path.to_owned(),
            keys.to_vec(),
            staging_dir.to_owned(),
        );
        let task = tokio::spawn(async move {
            let result = this
                .import_to_end(&did, &car_path, &keys, &staging_dir, limits)
                .await;
            drop(writer);
            result
        });
        match task.await {
            Ok(result) => result,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// [`Self::import_repo`] under the account's writer lock.
    async fn import_to_end(
        &self,
        did: &Did,
        car_path: &Path,
        keys: &[PublicKey],
        staging_dir: &Path,
        limits: Limits,
    ) -> Result<ImportReport, Error> {
        // Fails early, before any work, for an account with no store here.
        drop(self.open_required(did).await.map_err(Box::new)?);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        tokio::fs::create_dir_all(staging_dir)
            .await
            .map_err(io(staging_dir))?;
        let name = format!("{}.sqlite", did.as_str().replace([':', '/', '%'], "_"));
        let staging = Staging::open(staging_dir.join(name)).await?;
        let result = self
            .import_staged(did, car_path, keys, &staging, limits)
            .await;
        staging.close().await;
        result
    }

    async fn import_staged(
        &self,
        did: &Did,
        car_path: &Path,
        keys: &[PublicKey],
        staging: &Staging,
        limits: Limits,
    ) -> Result<ImportReport, Error> {
        let file = tokio::fs::File::open(car_path)
            .await
            .map_err(|source| Error::Io {
                path: car_path.to_owned(),
                source,
            })?;
        let car_bytes = file
            .metadata()
            .await
            .map(|m| m.len())
            .map_err(|source| Error::Io {
                path: car_path.to_owned(),
                source,
            })?;
        let reader = CarReader::new(tokio::io::BufReader::new(file), limits).await?;
        if reader.roots().len() != 1 {
            return Err(Error::RootCount(reader.roots().len()));
        }
        let store = SqliteBlockStore::new(staging.pool.clone());
        // Pass 1: every block, hash checked, to disk.
        let stored = car::read_into_store(reader, &store, STAGING_REV).await?;
        let root = stored.roots[0];

        // The commit.
        let commit_bytes = {
            let mut conn = staging.pool.acquire().await?;
            blocks::get(&mut conn, &root).await?
        }
        .ok_or_else(|| Error::MissingCommit(Box::new(root)))?;
        let commit = Commit::from_cbor(&commit_bytes).map_err(Error::Commit)?;
        if commit.did() != did.as_str() {
            return Err(Error::WrongDid {
                expected: did.to_string(),
                found: commit.did().to_owned(),
            });
        }
        if !keys.iter().any(|key| commit.verify(key).is_ok()) {
            return Err(Error::BadSignature);
        }
        let rev = commit.rev().unwrap_or_default().to_owned();
        if rev.parse::<Tid>().is_err() {
            return Err(Error::BadRev(rev));
        }

        // Pass 2: the tree in key order, every record checked and indexed.
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut batch = IndexBatch::default();
        batch.reachable.push(root);
        let mut scan = LeafScan::new(store.clone(), *commit.data()).await?;
        let mut reader_conn = staging.pool.acquire().await?;
        let mut records = 0u64;
        // Leaves whose record blocks are read together, in one lookup.
        let mut leaves: Vec<(String, Cid)> = Vec::with_capacity(READ_BATCH);
        loop {
            let item = scan.next().await?;
            let done = item.is_none();
            match item {
                Some(Scanned::Node(cid)) => batch.reachable.push(cid),
                Some(Scanned::Leaf(path, cid)) => leaves.push((path, cid)),
                None => {}
            }
            if leaves.len() >= READ_BATCH || (done && !leaves.is_empty()) {
                records += leaves.len() as u64;
                index_leaves(&mut reader_conn, did, &mut leaves, &mut batch).await?;
            }
            if batch.len() >= INDEX_BATCH || done {
                batch.flush(&staging.pool, &rev, &now).await?;
            }
            if done {
                break;
            }
        }
        drop(reader_conn);

        // Distinct record blocks are counted once (identical records share a block).
        let reachable: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reachable")
            .fetch_one(&staging.pool)
            .await?;
        let expected_blobs: i64 =
            sqlx::query_scalar("SELECT COUNT(DISTINCT blobCid) FROM record_blob")
                .fetch_one(&staging.pool)
                .await?;

        self.install(did, &staging.path, root, &rev).await?;
        Ok(ImportReport {
            commit: root,
            rev,
            blocks: u64::try_from(reachable).unwrap_or_default(),
            records,
            expected_blobs: u64::try_from(expected_blobs).unwrap_or_default(),
            car_bytes,
        })
    }

    /// The one transaction that swaps the staged repository in. The caller holds the
    /// account's writer lock.
    async fn install(&self, did: &Did, staging: &Path, root: Cid, rev: &str) -> Result<(), Error> {
        let handle = self.open_required(did).await.map_err(Box::new)?;
        let mut conn = handle.pool().acquire().await?;
        let path = staging.to_str().ok_or_else(|| Error::Io {
            path: staging.to_owned(),
            source: std::io::Error::other("staging path is not UTF-8"),
        })?;
        sqlx::query("ATTACH DATABASE ?1 AS staging")
            .bind(path)
            .execute(&mut *conn)
            .await?;
        let swapped = swap_in(&mut conn, did, root, rev).await;
        if sqlx::query("DETACH DATABASE staging")
            .execute(&mut *conn)
            .await
            .is_err()
        {
            // Never hand a connection with the staging file attached back to the pool.
            drop(conn.detach());
        }
        swapped?;
        // The cached tree is the old repository's.
        drop(handle.take_repo());
        if let Some(accounts) = self.heads() {
            heads::record(accounts, did, &root, rev).await;
        }
        Ok(())
    }
}

impl ActorRepo {
    /// After an import the head commit is the old host's, signed with its key; once the DID
    /// document names this server's key, relays verify the account's commits with that key.
    /// This signs a new head over the same tree (a fresh rev, no record changes) with the
    /// account's key, unless the head already verifies with it. Returns the new head, if one
    /// was written. Nothing is sequenced (`activateAccount` announces it with `#sync`).
    pub async fn resign_head(&self, did: &Did) -> Result<Option<(Cid, String)>, super::Error> {
        let _writer = self.lock_account(did).await;
        let handle = self.open_required(did).await?;
        let (head, bytes) = {
            let mut conn = handle.pool().acquire().await?;
            let head = root::get(&mut conn)
                .await?
                .ok_or_else(|| super::Error::RepoNotFound(did.to_string()))?;
            let bytes = blocks::get(&mut conn, &head.cid)
                .await?
                .ok_or(crate::repo::repository::Error::MissingCommit(head.cid))?;
            (head, bytes)
        };
        let commit = Commit::from_cbor(&bytes).map_err(crate::repo::repository::Error::from)?;
        let key = handle.keypair();
        if commit.verify(&key.public_key()).is_ok() {
            return Ok(None);
        }
        let rev = self.next_rev();
        let signed = Commit::sign(
            UnsignedCommit::new(did.as_str(), *commit.data(), rev.clone()),
            key,
        );
        let new_bytes = bytes::Bytes::from(signed.to_cbor());
        let cid = crate::repo::cid::cid_for_cbor(&new_bytes);
        let mut tx = begin_write(handle.pool()).await?;
        let mut map = crate::repo::blockstore::BlockMap::new();
        map.insert(cid, new_bytes);
        blocks::put_many(&mut tx, &map, &rev).await?;
        root::set(&mut tx, did.as_str(), &cid, &rev).await?;
        sqlx::query("DELETE FROM repo_block WHERE cid = ?1")
            .bind(head.cid.to_bytes())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        drop(handle.take_repo());
        if let Some(accounts) = self.heads() {
            heads::record(accounts, did, &cid, &rev).await;
        }
        Ok(Some((cid, rev)))
    }
}

async fn swap_in(
    conn: &mut SqliteConnection,
    did: &Did,
    root: Cid,
    rev: &str,
) -> Result<(), Error> {
    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
    for sql in [
        "DELETE FROM record_blob",
        "DELETE FROM record",
        "DELETE FROM repo_block",
        "DELETE FROM repo_root",
        "INSERT INTO record (uri, cid, collection, rkey, repoRev, indexedAt)
         SELECT uri, cid, collection, rkey, repoRev, indexedAt FROM staging.record",
        "INSERT INTO record_blob (blobCid, recordUri)
         SELECT blobCid, recordUri FROM staging.record_blob",
    ] {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    sqlx::query(
        "INSERT INTO repo_block (cid, repoRev, size, content)
         SELECT b.cid, ?1, b.size, b.content
         FROM staging.repo_block b JOIN staging.reachable r ON r.cid = b.cid",
    )
    .bind(rev)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO repo_root (id, did, cid, rev, indexedAt) VALUES (1, ?1, ?2, ?3, ?4)")
        .bind(did.as_str())
        .bind(root.to_bytes())
        .bind(rev)
        .bind(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// `collection/rkey` of a record path, both checked.
fn split_path(path: &str) -> Result<(String, String), Error> {
    let bad = || Error::BadPath(path.to_owned());
    let (collection, rkey) = path.split_once('/').ok_or_else(bad)?;
    collection.parse::<Nsid>().map_err(|_| bad())?;
    rkey.parse::<RecordKey>().map_err(|_| bad())?;
    Ok((collection.to_owned(), rkey.to_owned()))
}
