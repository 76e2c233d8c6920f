//! The actor store's hot paths on blocking connections of their own.
//!
//! sqlx runs each SQLite connection on a worker thread and sends every statement there and
//! back over channels: a commit of a few dozen statements made a few dozen round trips
//! (about 110 futex calls and 26 eventfd writes per write, measured), which cost more than
//! the signing, hashing and fsync together. Here a whole unit of work — a commit's
//! transaction, a record read, a page of records, a repository export — runs as one closure
//! on tokio's blocking pool over a [`rusqlite`] connection with its prepared statements
//! cached: one hop there and one back, whatever the number of statements.
//!
//! The connections open the same file as the store's sqlx pool (which created it, runs the
//! migrations and serves the colder paths), through the same SQLite library (rusqlite and
//! sqlx link one `libsqlite3-sys`), with the same settings: WAL, `synchronous = FULL`,
//! foreign keys, a busy timeout. SQLite serialises writers across both; the head
//! compare-and-swap of [`DirectDb::write_commit`] makes a commit formatted against a head
//! that moved meanwhile fail instead of overwriting it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use cid::Cid;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use sqlx::migrate::Migrator;

use super::outbox::OutboxRow;
use super::records::{MAX_LIST_LIMIT, StoredRecord};
use super::root::RepoRoot;
use super::{Error, cid_from_column};
use crate::repo::repository::CommitData;

/// Connections of one database at work at once (except exports, see [`DirectDb::run`]), and
/// kept open while idle. More work waits for one instead of opening another: on two cores,
/// a busy account (a writer and readers beside it) gains nothing from more, and every
/// connection costs its own memory.
const CONNECTIONS: usize = 4;
/// Prepared statements cached per connection (a commit uses about a dozen distinct ones).
const STATEMENT_CACHE: usize = 32;
/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Exports running at once in the process, each on a thread of its own (a `getRepo` holds
/// its thread and a read transaction for as long as its client reads); more wait.
pub(crate) const EXPORTS: usize = 8;
static EXPORT_PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(EXPORTS);
/// Bytes of CAR sections gathered before a chunk of an export is handed on.
pub(crate) const EXPORT_CHUNK: usize = 256 * 1024;

/// Blocking connections to one database, opened on demand and kept while idle (at most
/// [`CONNECTIONS`]). Closed for good by [`DirectDb::close`].
#[derive(Debug)]
pub(crate) struct DirectDb {
    path: PathBuf,
    /// `PRAGMA synchronous` of the connections: `FULL`, or `NORMAL` for data rebuilt from
    /// elsewhere after a power loss ([`DirectDb::new_unsynced`]).
    synchronous: &'static str,
    idle: Mutex<Vec<Connection>>,
    /// [`CONNECTIONS`] permits: one per unit of work in progress.
    permits: Arc<tokio::sync::Semaphore>,
    closed: AtomicBool,
}

/// A record with its value as atproto JSON text (the hot XRPC reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordJson {
    /// `at://<did>/<collection>/<rkey>`.
    pub uri: String,
    pub cid: Cid,
    pub rkey: String,
    /// The record block as atproto JSON ([`crate::repo::cbor::cbor_to_json`]).
    pub value: String,
}

/// A record row change of a commit.
#[derive(Debug, Clone)]
pub(crate) struct RecordChange {
    /// `at://<did>/<collection>/<rkey>`.
    pub uri: String,
    pub collection: String,
    pub rkey: String,
    /// The new version's CID and the blobs it references; `None` deletes the row.
    pub put: Option<(Cid, Vec<Cid>)>,
}

/// Everything one commit writes to the actor store, in one transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct CommitWrite {
    pub did: String,
    /// The head the commit was formatted against; `None` for a repository's first commit.
    /// The transaction fails with [`Error::HeadMoved`] (expected, current) when the stored head differs.
    pub prev: Option<Cid>,
    pub cid: Cid,
    pub rev: String,
    pub new_blocks: Vec<(Cid, Bytes)>,
    /// Blocks the commit made unreachable (the previous commit, replaced MST nodes).
    pub removed_blocks: Vec<Cid>,
    pub records: Vec<RecordChange>,
    /// Record blocks released by the commit: deleted unless a record row still holds them.
    pub released_record_cids: Vec<Cid>,
    /// Blob rows made permanent: `(cid, temp key)` still waiting under that key.
    pub blobs_made_permanent: Vec<(Cid, String)>,
    /// Blob rows deleted if no record references them any more.
    pub blobs_maybe_dropped: Vec<Cid>,
    /// Outbox rows to delete first (moved to the sequencer by an earlier step).
    pub outbox_delete_through: Option<i64>,
    /// Firehose events `(type, body)` queued in the outbox.
    pub outbox: Vec<(String, Vec<u8>)>,
    /// When the commit was written (RFC 3339, UTC).
    pub time: String,
}

impl CommitWrite {
    /// The store write of `data` (a formatted commit) on top of `prev`, with its blocks and
    /// head; the records index, blob rows and events are the caller's to add.
    pub(crate) fn of(prev: Option<Cid>, data: &CommitData, time: &str) -> Self {
        CommitWrite {
            did: data.did.clone(),
            prev,
            cid: data.cid,
            rev: data.rev.clone(),
            new_blocks: data
                .new_blocks
                .iter()
                .map(|(cid, bytes)| (*cid, bytes.clone()))
                .collect(),
            removed_blocks: data.removed_cids.clone(),
            released_record_cids: data.released_record_cids.clone(),
            time: time.to_owned(),
            ..CommitWrite::default()
        }
    }
}

/// What [`DirectDb::write_commit`] wrote beyond the commit itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CommitWritten {
    /// The blob rows deleted, with the upload key each still had.
    pub dropped_blobs: Vec<(Cid, Option<String>)>,
    /// The outbox rows queued, in order (as [`super::outbox::list_after`] would read them).
    pub outbox: Vec<OutboxRow>,
}

impl DirectDb {
    /// Connections to the database at `path` (migrated already), none opened yet. Used for
    /// the actor stores and for the account database's hot reads.
    pub(crate) fn new(path: &Path) -> Arc<Self> {
        Self::with_synchronous(path, "FULL")
    }

    /// [`DirectDb::new`] whose commits are not fsynced (`synchronous = NORMAL` in WAL mode):
    /// durable through a crash of this process, through power loss only once any connection
    /// fsyncs the WAL again. Only for data the caller rebuilds after a power loss.
    pub(crate) fn new_unsynced(path: &Path) -> Arc<Self> {
        Self::with_synchronous(path, "NORMAL")
    }

    fn with_synchronous(path: &Path, synchronous: &'static str) -> Arc<Self> {
        Arc::new(DirectDb {
            path: path.to_owned(),
            synchronous,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(CONNECTIONS)),
            closed: AtomicBool::new(false),
        })
    }

    /// Closes the idle connections; every later call fails with [`Error::Closed`].
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        drop(idle);
    }

    fn open(&self) -> Result<Connection, Error> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON;",
            self.synchronous
        ))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    /// Whether every migration of `migrator` is applied to this database, with the same
    /// checksums, and nothing else is (what `migrator.run` would find with nothing to do).
    /// Any failure to tell (no such table, no file) answers `false`.
    pub(crate) async fn schema_is_current(self: &Arc<Self>, migrator: &'static Migrator) -> bool {
        let expected: Vec<(i64, Vec<u8>)> = migrator
            .iter()
            .map(|m| (m.version, m.checksum.to_vec()))
            .collect();
        let applied = self
            .run(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version",
                )?;
                let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
                Ok(rows.collect::<Result<Vec<(i64, Vec<u8>)>, _>>()?)
            })
            .await;
        applied.is_ok_and(|applied| applied == expected)
    }

    /// Runs `work` on a connection of this database on the blocking pool, once one of the
    /// [`CONNECTIONS`] is free.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let result = db.run_blocking(work);
            drop(permit);
            result
        })
        .await
        .map_err(|e| Error::Blocking(e.to_string()))?
    }

    /// [`DirectDb::run`] without waiting for a free connection, on a thread of its own: for
    /// work paced by a client (an export waits for the socket), which must never hold back
    /// the account's writes nor keep a thread of the runtime's small blocking pool (see
    /// [`crate::server::BLOCKING_THREADS`]). The process runs at most [`EXPORTS`] of them at
    /// once; more wait for one to end.
    async fn run_unbounded<T, F>(self: &Arc<Self>, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    {
        let permit = EXPORT_PERMITS.acquire().await.map_err(|_| Error::Closed)?;
        let db = self.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("rookery-export".into())
            .spawn(move || {
                let _ = tx.send(db.run_blocking(work));
            })
            .map_err(|e| Error::Blocking(e.to_string()))?;
        let result = rx
            .await
            .map_err(|_| Error::Blocking("the export thread ended without a result".into()))?;
        drop(permit);
        result
    }

    fn run_blocking<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = work(&mut conn);
        // A connection left inside a transaction (a panic cannot reach here; an error
        // rolls back when the `Transaction` drops) is never pooled.
        if conn.is_autocommit() && !self.closed.load(Ordering::Acquire) {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < CONNECTIONS {
                idle.push(conn);
            }
        }
        result
    }

    /// Writes `commit` in one transaction: the outbox rows already moved are deleted, the
    /// blocks written and removed, the head moved (only from `commit.prev`), the records
    /// index and blob rows updated, the events queued. All of it or nothing is durable
    /// (`synchronous = FULL`: durable through power loss once this returns). Returns the blob
    /// rows deleted and the outbox rows queued.
    pub(crate) async fn write_commit(
        self: &Arc<Self>,
        commit: CommitWrite,
    ) -> Result<CommitWritten, Error> {
        self.run(move |conn| write_commit(conn, &commit)).await
    }

    /// The head, or `None` before the first commit.
    pub(crate) async fn head(self: &Arc<Self>) -> Result<Option<RepoRoot>, Error> {
        self.run(|conn| head(conn)).await
    }

    /// The current version of `collection/rkey`, unless taken down; with `cid`, only if that
    /// is its CID.
    pub(crate) async fn record(
        self: &Arc<Self>,
        collection: String,
        rkey: String,
        cid: Option<Cid>,
    ) -> Result<Option<StoredRecord>, Error> {
        self.run(move |conn| get_record(conn, &collection, &rkey, cid, stored_record))
            .await
    }

    /// The block `cid`, if stored.
    pub(crate) async fn block(self: &Arc<Self>, cid: Cid) -> Result<Option<Bytes>, Error> {
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT content FROM repo_block WHERE cid = ?1")?;
            let content = stmt
                .query_row([cid.to_bytes()], |row| row.get::<_, Vec<u8>>(0))
                .optional()?;
            Ok(content.map(Bytes::from))
        })
        .await
    }

    /// [`DirectDb::record`] with the value as atproto JSON text.
    pub(crate) async fn record_json(
        self: &Arc<Self>,
        collection: String,
        rkey: String,
        cid: Option<Cid>,
    ) -> Result<Option<RecordJson>, Error> {
        self.run(move |conn| get_record(conn, &collection, &rkey, cid, record_json))
            .await
    }

    /// [`DirectDb::list_records`] with the values as atproto JSON text.
    pub(crate) async fn list_records_json(
        self: &Arc<Self>,
        collection: String,
        limit: u32,
        cursor: Option<String>,
        reverse: bool,
    ) -> Result<Vec<RecordJson>, Error> {
        self.run(move |conn| list_records(conn, &collection, limit, cursor, reverse, record_json))
            .await
    }

    /// A page of `collection`'s records, as [`super::records::list`].
    pub(crate) async fn list_records(
        self: &Arc<Self>,
        collection: String,
        limit: u32,
        cursor: Option<String>,
        reverse: bool,
    ) -> Result<Vec<StoredRecord>, Error> {
        self.run(move |conn| list_records(conn, &collection, limit, cursor, reverse, stored_record))
            .await
    }

    /// The oldest `limit` outbox rows after `after`, as [`super::outbox::list_after`].
    pub(crate) async fn outbox_after(
        self: &Arc<Self>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, Error> {
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(super::outbox::LIST_AFTER)?;
            let rows = stmt.query_map(params![after, i64::from(limit.max(1))], |row| {
                Ok(OutboxRow {
                    id: row.get(0)?,
                    rev: row.get(1)?,
                    event_type: row.get(2)?,
                    event: row.get(3)?,
                    created_at: row.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Streams the repository as a CAR into `out`, from one read transaction (a consistent
    /// snapshot, whatever commits meanwhile): the header naming the head, the head commit,
    /// then every other block written after `since` (all without it), in export order
    /// (revision, CID). Chunks are about [`EXPORT_CHUNK`] bytes; the export stops early when
    /// `out` is closed. Returns the blocks written.
    pub(crate) async fn export_car(
        self: &Arc<Self>,
        since: Option<String>,
        out: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    ) -> Result<u64, Error> {
        self.run_unbounded(move |conn| export_car(conn, since.as_deref(), &out))
            .await
    }
}

/// How a record row (the [`super::records::get_sql`] columns) becomes a `T`.
type RowMapper<T> = fn(&rusqlite::Row<'_>) -> rusqlite::Result<Result<T, Error>>;

fn get_record<T>(
    conn: &Connection,
    collection: &str,
    rkey: &str,
    cid: Option<Cid>,
    map: RowMapper<T>,
) -> Result<Option<T>, Error> {
    let mut stmt = conn.prepare_cached(&super::records::get_sql())?;
    let row = stmt
        .query_row(params![collection, rkey, cid.map(|c| c.to_bytes())], map)
        .optional()?;
    row.transpose()
}

fn list_records<T>(
    conn: &Connection,
    collection: &str,
    limit: u32,
    cursor: Option<String>,
    reverse: bool,
    map: RowMapper<T>,
) -> Result<Vec<T>, Error> {
    let limit = i64::from(limit.clamp(1, MAX_LIST_LIMIT));
    let sql = super::records::list_sql(cursor.is_some(), reverse);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = match &cursor {
        Some(cursor) => stmt.query_map(params![collection, limit, cursor], map)?,
        None => stmt.query_map(params![collection, limit], map)?,
    };
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

fn head(conn: &Connection) -> Result<Option<RepoRoot>, Error> {
    let mut stmt = conn.prepare_cached(super::root::SELECT)?;
    let row = stmt
        .query_row([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
            ))
        })
        .optional()?;
    row.map(|(did, cid, rev, indexed_at)| {
        Ok(RepoRoot {
            did,
            cid: cid_from_column(&cid)?,
            rev,
            indexed_at,
        })
    })
    .transpose()
}

fn stored_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<StoredRecord, Error>> {
    let cid: Vec<u8> = row.get(1)?;
    let cid = match cid_from_column(&cid) {
        Ok(cid) => cid,
        Err(err) => return Ok(Err(err)),
    };
    Ok(Ok(StoredRecord {
        uri: row.get(0)?,
        cid,
        collection: row.get(2)?,
        rkey: row.get(3)?,
        repo_rev: row.get(4)?,
        indexed_at: row.get(5)?,
        content: Bytes::from(row.get::<_, Vec<u8>>(6)?),
    }))
}

/// A record row of the [`super::records::get_sql`] shape, its block transcoded to JSON as it
/// lies in SQLite's row buffer.
fn record_json(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<RecordJson, Error>> {
    let cid = match cid_from_column(row.get_ref(1)?.as_blob()?) {
        Ok(cid) => cid,
        Err(err) => return Ok(Err(err)),
    };
    let content = row.get_ref(6)?.as_blob()?;
    let mut value = Vec::with_capacity(content.len() * 2);
    if let Err(err) = crate::repo::cbor::cbor_to_json(content, &mut value) {
        return Ok(Err(Error::StoredRecord(err)));
    }
    Ok(Ok(RecordJson {
        uri: row.get(0)?,
        cid,
        rkey: row.get(3)?,
        // The transcoder writes JSON, which is UTF-8.
        value: String::from_utf8(value).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Blob, e.into())
        })?,
    }))
}

fn write_commit(conn: &mut Connection, commit: &CommitWrite) -> Result<CommitWritten, Error> {
    use super::{blobs as blob_sql, outbox as outbox_sql, records as record_sql, root as root_sql};

    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = head(&tx)?;
    if let Some(current) = &current
        && current.did != commit.did
    {
        return Err(Error::WrongRepo {
            stored: current.did.clone(),
            given: commit.did.clone(),
        });
    }
    if current.as_ref().map(|h| h.cid) != commit.prev {
        return Err(Error::HeadMoved(Box::new((
            commit.prev,
            current.map(|h| h.cid),
        ))));
    }
    if let Some(id) = commit.outbox_delete_through {
        tx.prepare_cached(outbox_sql::DELETE_THROUGH)?
            .execute([id])?;
    }
    {
        let mut put = tx.prepare_cached(
            "INSERT INTO repo_block (cid, repoRev, size, content) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (cid) DO NOTHING",
        )?;
        for (cid, bytes) in &commit.new_blocks {
            let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
            put.execute(params![cid.to_bytes(), commit.rev, size, bytes.as_ref()])?;
        }
        let mut delete = tx.prepare_cached("DELETE FROM repo_block WHERE cid = ?1")?;
        for cid in &commit.removed_blocks {
            delete.execute([cid.to_bytes()])?;
        }
    }
    let written = tx.prepare_cached(root_sql::UPSERT)?.execute(params![
        commit.did,
        commit.cid.to_bytes(),
        commit.rev,
        root_sql::now()
    ])?;
    if written != 1 {
        return Err(Error::StaleRev {
            current: head(&tx)?.map(|h| h.rev).unwrap_or_default(),
            given: commit.rev.clone(),
        });
    }
    {
        let mut put = tx.prepare_cached(record_sql::PUT)?;
        let mut delete = tx.prepare_cached(record_sql::DELETE)?;
        let mut clear_blobs = tx.prepare_cached(record_sql::DELETE_BLOBS_OF)?;
        let mut add_blob = tx.prepare_cached(record_sql::ADD_BLOB)?;
        for change in &commit.records {
            clear_blobs.execute([&change.uri])?;
            match &change.put {
                Some((cid, blobs)) => {
                    put.execute(params![
                        change.uri,
                        cid.to_bytes(),
                        change.collection,
                        change.rkey,
                        commit.rev,
                        commit.time
                    ])?;
                    for blob in blobs {
                        add_blob.execute(params![blob.to_bytes(), change.uri])?;
                    }
                }
                None => {
                    delete.execute([&change.uri])?;
                }
            }
        }
        let mut release = tx.prepare_cached(record_sql::DELETE_UNREFERENCED_BLOCK)?;
        for cid in &commit.released_record_cids {
            release.execute([cid.to_bytes()])?;
        }
    }
    let mut dropped = Vec::new();
    {
        let mut permanent = tx.prepare_cached(blob_sql::CLEAR_TEMP_KEY)?;
        for (cid, key) in &commit.blobs_made_permanent {
            permanent.execute(params![cid.to_bytes(), key])?;
        }
        let mut drop_row = tx.prepare_cached(blob_sql::DELETE_IF_UNREFERENCED)?;
        for cid in &commit.blobs_maybe_dropped {
            let temp: Option<Option<String>> = drop_row
                .query_row([cid.to_bytes()], |row| row.get(0))
                .optional()?;
            if let Some(temp) = temp {
                dropped.push((*cid, temp));
            }
        }
    }
    let mut queued = Vec::with_capacity(commit.outbox.len());
    {
        let mut queue = tx.prepare_cached(outbox_sql::INSERT)?;
        for (event_type, body) in &commit.outbox {
            queue.execute(params![commit.rev, event_type, body, commit.time])?;
            queued.push(OutboxRow {
                id: tx.last_insert_rowid(),
                rev: commit.rev.clone(),
                event_type: event_type.clone(),
                event: body.clone(),
                created_at: commit.time.clone(),
            });
        }
    }
    tx.commit()?;
    Ok(CommitWritten {
        dropped_blobs: dropped,
        outbox: queued,
    })
}

fn export_car(
    conn: &mut Connection,
    since: Option<&str>,
    out: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> Result<u64, Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let head = head(&tx)?.ok_or(Error::NoHead)?;
    let head_bytes = head.cid.to_bytes();
    let commit: Vec<u8> = tx
        .prepare_cached("SELECT content FROM repo_block WHERE cid = ?1")?
        .query_row([&head_bytes], |row| row.get(0))
        .optional()?
        .ok_or(Error::MissingBlock(Box::new(head.cid)))?;
    let mut buf = BytesMut::with_capacity(EXPORT_CHUNK + 64 * 1024);
    buf.put_slice(&car_header(head.cid)?);
    put_section(&mut buf, &head_bytes, &commit);
    let mut written = 1;
    let mut stmt = match since {
        Some(_) => tx.prepare_cached(
            "SELECT cid, content FROM repo_block WHERE repoRev > ?1 ORDER BY repoRev, cid",
        )?,
        None => tx.prepare_cached("SELECT cid, content FROM repo_block ORDER BY repoRev, cid")?,
    };
    let mut rows = match since {
        Some(since) => stmt.query([since])?,
        None => stmt.query([])?,
    };
    while let Some(row) = rows.next()? {
        let cid = blob_column(row, 0)?;
        if cid == head_bytes.as_slice() {
            continue;
        }
        put_section(&mut buf, cid, blob_column(row, 1)?);
        written += 1;
        if buf.len() >= EXPORT_CHUNK && out.blocking_send(Ok(buf.split().freeze())).is_err() {
            // The client went away.
            return Ok(written);
        }
    }
    if !buf.is_empty() {
        let _ = out.blocking_send(Ok(buf.freeze()));
    }
    Ok(written)
}

/// The CAR v1 header naming `root`, as the streaming [`CarWriter`](crate::repo::car::CarWriter)
/// writes it (the writer into memory never waits).
fn car_header(root: Cid) -> Result<Vec<u8>, Error> {
    futures::executor::block_on(crate::repo::car::CarWriter::new(Vec::new(), root).finish())
        .map_err(|e| Error::CarHeader(e.to_string()))
}

/// Column `i` of `row` as a BLOB, borrowed from the row.
fn blob_column<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r [u8], Error> {
    match row.get_ref(i)? {
        rusqlite::types::ValueRef::Blob(bytes) => Ok(bytes),
        other => Err(Error::Sqlite(rusqlite::Error::InvalidColumnType(
            i,
            String::new(),
            other.data_type(),
        ))),
    }
}

/// Appends one CAR section: `varint(len(cid) + len(bytes)) ‖ cid ‖ bytes`.
fn put_section(buf: &mut BytesMut, cid: &[u8], bytes: &[u8]) {
    let mut len = (cid.len() + bytes.len()) as u64;
    while len >= 0x80 {
        buf.put_u8((len as u8) | 0x80);
        len >>= 7;
    }
    buf.put_u8(len as u8);
    buf.put_slice(cid);
    buf.put_slice(bytes);
}

#[cfg(test)]
mod tests;
