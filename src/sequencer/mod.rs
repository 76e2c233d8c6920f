//! The sequencer: the server-wide, totally ordered log of firehose events (`repo_seq` in
//! `{data}/sequencer.sqlite`), and the outbox protocol that fills it from the actor stores.
//!
//! # Durability across two databases
//!
//! A commit lives in the account's actor store; its firehose event must reach `repo_seq`,
//! which is another SQLite file. SQLite does not commit atomically across attached WAL
//! databases, so the two are never written in one transaction. Instead every account's
//! writes follow these steps, (a) and (b) under the account's writer lock (see
//! `crate::actor`):
//!
//! - **(a)** Before the account's first write (per process), a row `outbox_pending(did)` is
//!   durably inserted here ([`Sequencer::mark_pending`]; `INSERT … ON CONFLICT DO NOTHING`).
//!   The writer remembers it did so, so later writes skip this step.
//! - **(b)** The commit's transaction in the actor store also appends the event body to the
//!   store's `repo_seq_outbox`: the commit and its event are durable together or not at all.
//! - **(c)** After that commit, the account's outbox rows are moved into `repo_seq` in outbox
//!   order, in one sequencer transaction ([`Sequencer::sequence_outbox`]), each skipped if
//!   `repo_seq` already has its (did, rev, eventType): moving a row twice is a no-op. `seq` is
//!   assigned here, so a DID's events get increasing `seq` in commit order. Then
//!   [`Sequencer::notify`] wakes the firehose. A write is acknowledged after (b): its commit
//!   and event are durable, and the account is in `outbox_pending`, so nothing that follows
//!   can lose the event. Step (c) runs after the acknowledgement, beside the account's next
//!   commit; the moves of one account take a lock of their own (not the writer lock), so
//!   they keep outbox order.
//! - **(d)** The moved rows are deleted from the outbox. To save a transaction (an fsync),
//!   this is folded into the account's next write transaction, which first deletes the rows
//!   known to be moved (outbox ids never repeat, so "up to id N" is exact).
//! - **(e)** At start-up, recovery visits only the DIDs in `outbox_pending`: it moves any
//!   rows left in their outboxes (c), deletes them (d), and removes the `outbox_pending` row
//!   once the outbox is empty.
//!
//! A crash between any two steps loses nothing and duplicates nothing: before (b) commits
//! there is no commit and no event; after (b) the event is in the outbox, and the account is
//! in `outbox_pending` (written before (b)), so recovery finds it; after (c) a second move
//! of the same rows inserts nothing; after (d) nothing is left to move. An account's next
//! write also moves any leftover rows before its own, so order is kept even before
//! recovery has run. Events that do not belong to a commit (`#identity`, `#account`) are
//! written straight into `repo_seq` ([`Sequencer::sequence_identity`],
//! [`Sequencer::sequence_account`]); `ActorRepo`'s methods of the same names first move the
//! account's leftover outbox rows, under its writer lock, so such an event never overtakes
//! an earlier commit.
//!
//! Both databases run with `synchronous = FULL` (the WAL is fsynced at every commit): an
//! event a relay has seen must never disappear. A write therefore costs two fsyncs: the
//! actor-store commit (b, with d folded in), which it waits for, and the sequencer commit
//! (c), which follows its acknowledgement; step (a) costs one more, once per account per
//! process. Step (c) is group-committed (`crate::store::group`): the moves of accounts
//! writing at the same time share one sequencer transaction and its fsync; each account's
//! rows still go in outbox order (one move of an account at a time takes its rows in order).
//!
//! # Lock order
//! account writer lock → actor-store write transaction → sequencer write transaction. The
//! actor transaction is committed before the sequencer one starts; nothing holds a sequencer
//! transaction while waiting for an actor store.

mod db;
pub mod events;
pub mod firehose;
pub mod frame;
pub mod splice;
pub mod tasks;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::sqlite::SqlitePool;
use tokio::sync::Notify;

use crate::store::direct::DirectDb;
use crate::store::group::GroupCommit;
use crate::store::outbox::OutboxRow;
pub use events::{Event, EventType};
pub use firehose::{Firehose, FirehoseSettings, FirehoseStats, Subscription};
pub use frame::Frame;

// The sequencer schema, embedded at compile time from `migrations/sequencer/`.
use crate::store::sqlite::{self, OpenOptions};

pub(crate) use crate::store::migrations::SEQUENCER as SEQUENCER_MIGRATOR;

/// File name of the sequencer database inside the data directory.
pub(crate) const DATABASE_FILE: &str = "sequencer.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sequencer database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("sequencer database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Event(#[from] events::Error),
    #[error("creating the sequencer database's directory failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("sequencer database: {0}")]
    Store(String),
}

impl From<crate::store::Error> for Error {
    fn from(e: crate::store::Error) -> Self {
        match e {
            crate::store::Error::Database(e) => Error::Database(e),
            crate::store::Error::Migrate(e) => Error::Migrate(e),
            other => Error::Store(other.to_string()),
        }
    }
}

/// One event of `repo_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqEvent {
    pub seq: i64,
    pub did: String,
    /// Message type without `#` (see [`EventType::as_str`]).
    pub event_type: String,
    /// DAG-CBOR body without `seq` (see [`events::with_seq`]).
    pub event: Vec<u8>,
    pub invalidated: bool,
    /// When the event entered `repo_seq` (RFC 3339, UTC).
    pub sequenced_at: String,
    /// Revision of the commit, for events moved from an outbox.
    pub rev: Option<String>,
}

/// Where a firehose subscription starts (see [`Sequencer::resolve_cursor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorStart {
    /// Replay every event with `seq > after`; `outdated` means the cursor reached past the
    /// backfill window and events were skipped (an `#info OutdatedCursor` is due).
    Replay { after: i64, outdated: bool },
    /// The cursor is greater than `latest`, the highest sequence number.
    Future { latest: i64 },
}

/// Handle on the sequencer database. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Sequencer(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    pool: SqlitePool,
    /// A blocking connection for step (c)'s shared transactions: one hop per batch instead
    /// of a channel round trip per statement (see [`crate::store::direct`]).
    direct: Arc<DirectDb>,
    notify: Notify,
    /// Shares step (c)'s transactions between accounts: (did, rows) → appended.
    group: GroupCommit<(String, Vec<OutboxRow>), u64>,
    /// Live firehose subscribers (see [`Sequencer::subscriber_guard`]).
    subscribers: Arc<AtomicUsize>,
}

/// Counts one live firehose subscriber while it exists.
#[derive(Debug)]
pub struct SubscriberGuard(Arc<AtomicUsize>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Sequencer {
    /// Opens (creating it and its directory if missing) the sequencer database at `path` and
    /// migrates it. WAL, `synchronous = FULL` (see the module docs), a 5 s busy timeout, 4
    /// connections.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let opts = OpenOptions {
            idle_timeout: None,
            ..OpenOptions::default()
        };
        let pool = sqlite::open_migrated(path, &opts, &SEQUENCER_MIGRATOR).await?;
        Ok(Sequencer(Arc::new(Inner {
            pool,
            direct: DirectDb::new(path),
            notify: Notify::new(),
            group: GroupCommit::new("firehose events"),
            subscribers: Arc::new(AtomicUsize::new(0)),
        })))
    }

    /// Opens `{data_directory}/sequencer.sqlite`.
    pub async fn open_in(data_directory: &Path) -> Result<Self, Error> {
        Self::open(&data_directory.join(DATABASE_FILE)).await
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.0.pool
    }

    /// Woken (`notify_waiters`) after events were appended. A consumer must arm a
    /// `Notified` (create it and call `enable`) *before* reading `repo_seq`, then await it,
    /// so an append between its read and its wait is not missed.
    pub fn notify(&self) -> &Notify {
        &self.0.notify
    }

    /// Registers a live firehose subscriber until the guard is dropped.
    pub fn subscriber_guard(&self) -> SubscriberGuard {
        self.0.subscribers.fetch_add(1, Ordering::AcqRel);
        SubscriberGuard(Arc::clone(&self.0.subscribers))
    }

    /// How many firehose subscribers are connected now (relays among them): the crawler
    /// notifier asks relays to crawl only while nobody is subscribed.
    pub fn subscriber_count(&self) -> usize {
        self.0.subscribers.load(Ordering::Acquire)
    }

    /// The highest `seq` ever handed out, `None` before the first event. Deleting events
    /// (pruning, account deletion) never lowers it.
    pub async fn latest_seq(&self) -> Result<Option<i64>, Error> {
        let mut conn = self.0.pool.acquire().await?;
        db::highest_seq(&mut conn).await
    }

    /// Firehose events per minute since `since` (RFC 3339), for the operator dashboard:
    /// `(YYYY-MM-DDTHH:MM, count)`, oldest first, quiet minutes left out.
    pub async fn events_per_minute(&self, since: &str) -> Result<Vec<(String, i64)>, Error> {
        let mut conn = self.0.pool.acquire().await?;
        db::count_by_minute(&mut conn, since).await
    }

    /// Where a firehose subscription with `cursor` starts, given the backfill `window`
    /// (the reference's rules): a cursor past the latest `seq` is [`CursorStart::Future`];
    /// one whose next event is older than the window, or was pruned, replays from the
    /// window's first event with `outdated` set; any other replays everything after it.
    pub async fn resolve_cursor(
        &self,
        cursor: i64,
        window: std::time::Duration,
    ) -> Result<CursorStart, Error> {
        let mut conn = self.0.pool.acquire().await?;
        let latest = db::highest_seq(&mut conn).await?.unwrap_or(0);
        if cursor > latest {
            return Ok(CursorStart::Future { latest });
        }
        let window_start = events::time_before(window);
        let pruned = db::pruned_through(&mut conn).await?;
        let next = db::next_after(&mut conn, cursor).await?;
        let outdated = cursor < pruned || next.is_some_and(|(_, at)| at < window_start);
        if !outdated {
            return Ok(CursorStart::Replay {
                after: cursor,
                outdated: false,
            });
        }
        let first = db::first_since(&mut conn, &window_start).await?;
        let after = first.map_or(latest, |seq| seq - 1).max(cursor);
        Ok(CursorStart::Replay {
            after,
            outdated: true,
        })
    }

    /// Deletes the events sequenced more than `window` ago, in batches of `batch`; returns
    /// how many were deleted. The sequence counter is untouched (see [`Self::latest_seq`]).
    pub async fn prune_older_than(
        &self,
        window: std::time::Duration,
        batch: u32,
    ) -> Result<u64, Error> {
        let cutoff = events::time_before(window);
        let mut total = 0;
        loop {
            let mut tx = self.0.pool.begin_with("BEGIN IMMEDIATE").await?;
            let deleted = db::prune_batch(&mut tx, &cutoff, batch).await?;
            tx.commit().await?;
            total += deleted;
            if deleted == 0 {
                return Ok(total);
            }
        }
    }

    /// After an account's deletion: removes all its events but `keep` (the `#account`
    /// `deleted` event), as the reference does. Returns how many were removed.
    pub async fn delete_account_events(&self, did: &str, keep: i64) -> Result<u64, Error> {
        let mut conn = self.0.pool.acquire().await?;
        db::delete_did_events(&mut conn, did, keep).await
    }

    /// Up to `limit` (at least 1) events with `seq > after`, in `seq` order.
    pub async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<SeqEvent>, Error> {
        let mut conn = self.0.pool.acquire().await?;
        Ok(db::events_after(&mut conn, after, limit, usize::MAX)
            .await?
            .0)
    }

    /// Like [`Self::events_after`], but stops (after at least one event) once the bodies
    /// read reach `max_bytes`, so a page of large commits stays small in memory. Returns
    /// the events and whether more may follow.
    pub async fn events_page(
        &self,
        after: i64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<(Vec<SeqEvent>, bool), Error> {
        let mut conn = self.0.pool.acquire().await?;
        db::events_after(&mut conn, after, limit, max_bytes).await
    }

    /// Step (a): durably records that `did`'s outbox may hold events.
    pub async fn mark_pending(&self, did: &str) -> Result<(), Error> {
        let mut conn = self.0.pool.acquire().await?;
        db::mark_pending(&mut conn, did, &events::now()).await
    }

    /// Removes `did` from `outbox_pending`; call only when its outbox is empty and no write
    /// can start meanwhile (under the account's writer lock). Returns whether it was there.
    pub async fn clear_pending(&self, did: &str) -> Result<bool, Error> {
        let mut conn = self.0.pool.acquire().await?;
        db::clear_pending(&mut conn, did).await
    }

    /// The accounts whose outboxes recovery must visit.
    pub async fn pending_dids(&self) -> Result<Vec<String>, Error> {
        let mut conn = self.0.pool.acquire().await?;
        db::pending_dids(&mut conn).await
    }

    /// Step (c): appends `did`'s outbox rows (in the given order) to `repo_seq` in one
    /// transaction, shared with other accounts' moves that arrive meanwhile (group commit,
    /// see `group`), skipping rows already there. Returns how many were appended; wakes the
    /// firehose if any were.
    pub async fn sequence_outbox(&self, did: &str, rows: &[OutboxRow]) -> Result<u64, Error> {
        if rows.is_empty() {
            return Ok(0);
        }
        let direct = &self.0.direct;
        let request = (did.to_owned(), rows.to_vec());
        let shared = self
            .0
            .group
            .submit(request, |batch| append_batch(direct, batch));
        let appended = match shared.await {
            Some(appended) => appended,
            None => self.sequence_outbox_alone(did, rows).await?,
        };
        if appended > 0 {
            self.0.notify.notify_waiters();
        }
        Ok(appended)
    }

    /// [`Self::sequence_outbox`] in a transaction of its own (when the shared one failed).
    async fn sequence_outbox_alone(&self, did: &str, rows: &[OutboxRow]) -> Result<u64, Error> {
        let mut tx = self.0.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = events::now();
        let mut appended = 0;
        for row in rows {
            if db::insert_outbox_event(&mut tx, did, row, &now).await? {
                appended += 1;
            }
        }
        tx.commit().await?;
        Ok(appended)
    }

    /// Appends an event that does not come from an outbox; returns its `seq`.
    pub async fn sequence_event(&self, did: &str, event: &Event) -> Result<i64, Error> {
        let seq = {
            let mut conn = self.0.pool.acquire().await?;
            db::insert_event(
                &mut conn,
                did,
                event.event_type.as_str(),
                &event.body,
                &events::now(),
            )
            .await?
        };
        self.0.notify.notify_waiters();
        Ok(seq)
    }

    /// Appends an `#identity` event for `did` (with its current handle, if known).
    pub async fn sequence_identity(&self, did: &str, handle: Option<&str>) -> Result<i64, Error> {
        let event = events::identity_event(did, handle, &events::now())?;
        self.sequence_event(did, &event).await
    }

    /// Appends an `#account` event for `did`; `status` is dropped when `active` is true.
    pub async fn sequence_account(
        &self,
        did: &str,
        active: bool,
        status: Option<&str>,
    ) -> Result<i64, Error> {
        let event = events::account_event(did, active, status, &events::now())?;
        self.sequence_event(did, &event).await
    }
}

/// Step (c) for the outbox rows of several accounts in one transaction; how many rows of
/// each were appended.
async fn append_batch(
    direct: &Arc<DirectDb>,
    batch: Vec<(String, Vec<OutboxRow>)>,
) -> Result<Vec<u64>, Error> {
    let counts = direct
        .run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = events::now();
            let mut counts = Vec::with_capacity(batch.len());
            {
                let mut insert = tx.prepare_cached(db::INSERT_OUTBOX_EVENT)?;
                for (did, rows) in &batch {
                    let mut appended = 0;
                    for row in rows {
                        appended += insert.execute(rusqlite::params![
                            did,
                            row.event_type,
                            row.event,
                            now,
                            row.rev
                        ])? as u64;
                    }
                    counts.push(appended);
                }
            }
            tx.commit()?;
            Ok(counts)
        })
        .await?;
    Ok(counts)
}

#[cfg(test)]
mod tests;
