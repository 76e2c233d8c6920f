//! [`ActorRepo`]: creating repositories and applying writes to them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cid::Cid;

use super::blobs::{BlobHooks, BlobPlan};
use super::heads;
use super::hooks::{CommitHook, CommitHooks};
use super::locks::KeyedLocks;
use super::stores::{ActorHandle, ActorStores, CachedRepo};
use super::{Error, Result, SwapMismatch};
use crate::accounts::AccountDb;
use crate::blobs::BlobStore;
use crate::crypto::Keypair;
use crate::repo::cbor::find_blobs;
use crate::repo::mst::RecordOp;
use crate::repo::repository::{self, Repo, Write};
use crate::sequencer::Sequencer;
use crate::sequencer::events::{self, Event, MAX_COMMIT_OPS};
use crate::store::direct::{CommitWrite, RecordChange};
use crate::store::sqlite::begin_write;
use crate::store::{outbox, root};
use crate::syntax::{AtUri, Did, Handle, Nsid, RecordKey, Tid, TidClock};

/// Most writes in one commit (the firehose's limit on a `#commit`'s operations).
pub const MAX_WRITES: usize = MAX_COMMIT_OPS;
/// Largest record block, in bytes of DAG-CBOR (sync spec: records are at most 1 MB).
pub const MAX_RECORD_LEN: usize = 1_000_000;
/// Outbox rows moved into the sequencer per transaction.
const MOVE_BATCH: u32 = 100;

/// One write of a batch, with its optional compare-and-swap on the current record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordWrite {
    pub write: Write,
    /// `swapRecord`: `None` checks nothing; `Some(None)` requires that no record exists at the
    /// path (valid for creates only); `Some(Some(cid))` requires that the current record is
    /// `cid` (updates and deletes). Any other combination, or a different current record, is
    /// [`Error::InvalidSwap`].
    pub swap: Option<Option<Cid>>,
}

impl From<Write> for RecordWrite {
    fn from(write: Write) -> Self {
        RecordWrite { write, swap: None }
    }
}

/// What one write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteResult {
    pub uri: AtUri,
    /// The new record's CID; `None` for a delete.
    pub cid: Option<Cid>,
}

/// The commit a batch of writes produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitResult {
    pub cid: Cid,
    pub rev: String,
    /// One per write, in order.
    pub results: Vec<WriteResult>,
}

/// What [`ActorRepo::recover`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Accounts found in `outbox_pending`.
    pub visited: usize,
    /// Events appended to `repo_seq` from outboxes.
    pub moved: u64,
    /// Accounts removed from `outbox_pending` (outbox empty, or store gone).
    pub cleared: usize,
    /// Accounts that failed (logged; they stay pending for the next start-up).
    pub failed: usize,
}

/// The repository service: writes (serialised per account) and reads over [`ActorStores`],
/// feeding the [`Sequencer`]. Cloning shares it.
#[derive(Debug, Clone)]
pub struct ActorRepo(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    stores: ActorStores,
    sequencer: Sequencer,
    blobs: BlobHooks,
    clock: TidClock,
    /// One writer per account at a time; accounts write in parallel.
    ///
    /// Lock order: this per-DID lock → the account's actor-store write transaction
    /// (`BEGIN IMMEDIATE`) → a sequencer-database transaction. Each is taken only while
    /// holding the ones before it, and the actor transaction is committed before the
    /// sequencer one begins. Reads take no lock.
    writers: KeyedLocks,
    /// Where each commit's new head is copied (`listRepos`), if anywhere; see [`heads`].
    heads: Option<AccountDb>,
    /// Commits and record writes made by [`ActorRepo::apply_writes`] (for the metrics).
    counts: [AtomicU64; 4],
    /// Features told about each write ([`ActorRepo::register_hook`]).
    hooks: CommitHooks,
    /// Steps (c) running after their commits' acknowledgement.
    moves: InFlight,
}

/// Tasks running in the background, and a wake-up for whoever waits for none.
#[derive(Debug, Default)]
struct InFlight {
    running: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One background move of `ActorRepo`, counted in its [`InFlight`] until dropped (also by a
/// panic).
struct Running(ActorRepo);

impl Running {
    fn start(service: &ActorRepo) -> Self {
        service.0.moves.running.fetch_add(1, Ordering::AcqRel);
        Running(service.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let moves = &self.0.0.moves;
        if moves.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            moves.idle.notify_waiters();
        }
    }
}

/// Commits and record writes since start-up; see [`ActorRepo::write_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    pub commits: u64,
    pub creates: u64,
    pub updates: u64,
    pub deletes: u64,
}

/// A records-index change of one write.
struct IndexOp<'a> {
    collection: &'a Nsid,
    rkey: &'a RecordKey,
    /// New CID and referenced blobs, or `None` for a delete.
    put: Option<(Cid, Vec<Cid>)>,
}

impl ActorRepo {
    pub fn new(stores: ActorStores, sequencer: Sequencer, blobs: Arc<dyn BlobStore>) -> Self {
        Self::build(stores, sequencer, blobs, None)
    }

    fn build(
        stores: ActorStores,
        sequencer: Sequencer,
        blobs: Arc<dyn BlobStore>,
        heads: Option<AccountDb>,
    ) -> Self {
        let blobs = BlobHooks::new(blobs, stores.root().to_owned());
        ActorRepo(Arc::new(Inner {
            stores,
            sequencer,
            blobs,
            clock: TidClock::default(),
            writers: KeyedLocks::default(),
            heads,
            counts: Default::default(),
            hooks: CommitHooks::default(),
            moves: InFlight::default(),
        }))
    }

    /// Waits until every step (c) started after a commit's acknowledgement has finished:
    /// then each acknowledged write's events are in `repo_seq`, or in its outbox if the move
    /// failed. For shutdown, and for tests that read `repo_seq` right after a write.
    pub async fn moves_settled(&self) {
        let moves = &self.0.moves;
        loop {
            let idle = moves.idle.notified();
            if moves.running.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Registers `hook` to be told about every later [`apply_writes`](Self::apply_writes)
    /// whose writes it concerns (see [`super::hooks`]).
    pub fn register_hook(&self, hook: Arc<dyn CommitHook>) {
        self.0.hooks.register(hook);
    }

    /// A service that also keeps `accounts`' copy of every repository head up to date (and
    /// repairs it in [`recover`](Self::recover)).
    pub fn with_repo_heads(
        stores: ActorStores,
        sequencer: Sequencer,
        blobs: Arc<dyn BlobStore>,
        accounts: AccountDb,
    ) -> Self {
        Self::build(stores, sequencer, blobs, Some(accounts))
    }

    pub fn stores(&self) -> &ActorStores {
        &self.0.stores
    }

    /// Commits and record writes applied since start-up.
    pub fn write_counts(&self) -> WriteCounts {
        let [commits, creates, updates, deletes] =
            std::array::from_fn(|i| self.0.counts[i].load(Ordering::Relaxed));
        WriteCounts {
            commits,
            creates,
            updates,
            deletes,
        }
    }

    pub fn sequencer(&self) -> &Sequencer {
        &self.0.sequencer
    }

    /// A fresh revision from the service's clock (later than every one it gave before).
    pub(super) fn next_rev(&self) -> String {
        self.0.clock.next().to_string()
    }

    /// Where commits' heads are copied, if anywhere.
    pub(super) fn heads(&self) -> Option<&AccountDb> {
        self.0.heads.as_ref()
    }

    pub(super) fn blob_hooks(&self) -> &BlobHooks {
        &self.0.blobs
    }

    /// Takes `did`'s writer lock.
    pub(super) async fn lock_account(&self, did: &Did) -> tokio::sync::OwnedMutexGuard<()> {
        self.0.writers.lock(did.as_str()).await
    }

    pub(super) async fn open_required(&self, did: &Did) -> Result<ActorHandle> {
        self.0
            .stores
            .open(did)
            .await?
            .ok_or_else(|| Error::RepoNotFound(did.to_string()))
    }

    /// Creates `did`'s store (key file included) and its repository's first, empty commit.
    ///
    /// With `announce`, the commit's transaction also queues, in this order, the events the
    /// reference PDS emits for a new active account: `#identity` (with `announce` as the
    /// handle), `#account` (active), `#commit` and `#sync`. Without it (an account created
    /// deactivated, e.g. migrating in) nothing is announced. A store left without a head by an
    /// interrupted creation is replaced; one with a repository is [`Error::AlreadyExists`].
    /// If the commit fails, the new store is deleted again.
    pub async fn create_repo(
        &self,
        did: &Did,
        keypair: &Keypair,
        announce: Option<&Handle>,
    ) -> Result<CommitResult> {
        let _writer = self.0.writers.lock(did.as_str()).await;
        let handle = match self.0.stores.create(did, keypair).await {
            Err(Error::AlreadyExists(_)) => {
                if let Some(existing) = self.0.stores.open(did).await? {
                    let mut conn = existing.pool().acquire().await?;
                    if root::get(&mut conn).await?.is_some() {
                        return Err(Error::AlreadyExists(did.to_string()));
                    }
                }
                self.0.stores.destroy(did).await?;
                self.0.stores.create(did, keypair).await?
            }
            other => other?,
        };
        match self.init_repo(&handle, announce).await {
            Ok(result) => {
                drop(handle);
                drop(_writer);
                self.0.stores.committed(did).await;
                Ok(result)
            }
            Err(err) => {
                drop(handle);
                if let Err(cleanup) = self.0.stores.destroy(did).await {
                    tracing::warn!(%did, error = %cleanup, "removing a half-created actor store failed");
                }
                Err(err)
            }
        }
    }

    async fn init_repo(
        &self,
        handle: &ActorHandle,
        announce: Option<&Handle>,
    ) -> Result<CommitResult> {
        let did = handle.did().as_str();
        let rev = self.0.clock.next().to_string();
        let prepared =
            Repo::format_init(handle.block_store(), did, handle.keypair(), rev, &[]).await?;
        let data = &prepared.data;
        let time = events::now();
        let mut queued = Vec::new();
        if let Some(handle_name) = announce {
            let block = data
                .new_blocks
                .get(&data.cid)
                .ok_or(events::Error::MissingCommitBlock(data.cid))?;
            queued.push(events::identity_event(
                did,
                Some(handle_name.as_str()),
                &time,
            )?);
            queued.push(events::account_event(did, true, None, &time)?);
            queued.push(events::commit_event(data, &time).await?);
            queued.push(events::sync_event(did, &data.cid, block, &data.rev, &time).await?);
        }
        let commit = CommitWrite::of(None, data, &time);
        self.persist(handle, commit, Vec::new(), &queued, None, true)
            .await?;
        let result = CommitResult {
            cid: data.cid,
            rev: data.rev.clone(),
            results: Vec::new(),
        };
        handle.put_repo(CachedRepo {
            repo: Repo::apply(prepared),
            uses: 0,
        });
        Ok(result)
    }

    /// Applies `writes` to `did`'s repository as one signed commit and announces it on the
    /// firehose (the event follows the return by the time one sequencer commit takes; see
    /// [`ActorRepo::moves_settled`]). With `swap_commit`, the current head must be that
    /// commit. At most [`MAX_WRITES`] writes, each record at most [`MAX_RECORD_LEN`] bytes.
    ///
    /// Nothing is written when any check fails. Once the commit is durable the call
    /// succeeds: if handing its event to the sequencer fails, the event stays in the outbox
    /// and is moved by the account's next write or at start-up ([`ActorRepo::recover`]).
    ///
    /// The registered hooks the writes concern run before the commit (and may refuse it
    /// with [`Error::Refused`]) and after it.
    pub async fn apply_writes(
        &self,
        did: &Did,
        writes: Vec<RecordWrite>,
        swap_commit: Option<Cid>,
    ) -> Result<CommitResult> {
        let prepared = self.0.hooks.before(self, did, &writes).await?;
        let result = self.apply_unhooked(did, writes, swap_commit).await;
        CommitHooks::after(self, did, prepared, result.is_ok());
        result
    }

    async fn apply_unhooked(
        &self,
        did: &Did,
        writes: Vec<RecordWrite>,
        swap_commit: Option<Cid>,
    ) -> Result<CommitResult> {
        if writes.len() > MAX_WRITES {
            return Err(Error::TooManyWrites {
                count: writes.len(),
                max: MAX_WRITES,
            });
        }
        let mut kinds = [0u64; 3];
        for w in &writes {
            kinds[match w.write {
                Write::Create { .. } => 0,
                Write::Update { .. } => 1,
                Write::Delete { .. } => 2,
            }] += 1;
        }
        // The write runs as a task of its own: a request dropped mid-way (a client gone)
        // must not release the writer lock while the commit's transaction still runs on
        // the database thread, nor skip moving its event to the sequencer.
        let service = self.clone();
        let owned_did = did.clone();
        let result = tokio::spawn(async move {
            let did = &owned_did;
            let _writer = service.0.writers.lock(did.as_str()).await;
            let handle = service.open_required(did).await?;
            let result = match service
                .commit_writes(&handle, writes.clone(), swap_commit, true)
                .await
            {
                // Built on a cached head that another writer replaced without dropping the
                // cache: nothing was written and the cache is gone; once more from the store.
                Err(Error::Store(crate::store::Error::HeadMoved(_))) => {
                    service
                        .commit_writes(&handle, writes, swap_commit, true)
                        .await?
                }
                other => other?,
            };
            service.0.counts[0].fetch_add(1, Ordering::Relaxed);
            for (i, n) in kinds.into_iter().enumerate() {
                service.0.counts[i + 1].fetch_add(n, Ordering::Relaxed);
            }
            Ok::<_, Error>(result)
        })
        .await
        .map_err(|e| crate::store::Error::Blocking(e.to_string()))??;
        // After the writer lock is released: a strict replica waits here for the bucket.
        self.0.stores.committed(did).await;
        Ok(result)
    }

    /// Steps (a) and (b) of the outbox protocol for a batch of writes: the commit and its
    /// event, durable together; with `then_publish`, step (c) started in the background. The
    /// caller holds the account's writer lock.
    pub(super) async fn commit_writes(
        &self,
        handle: &ActorHandle,
        writes: Vec<RecordWrite>,
        swap_commit: Option<Cid>,
        then_publish: bool,
    ) -> Result<CommitResult> {
        let did = handle.did();
        // The repository cached by this entry's last commit is the head: every other writer
        // of the head (import, activation) drops it, and the head compare-and-swap of the
        // commit's transaction refuses a commit built on anything else. Without it, the head
        // is read and the tree loaded.
        let cached = handle
            .take_repo()
            .filter(|c| c.uses < CachedRepo::MAX_USES)
            .and_then(|c| Some((c.repo.rev()?.to_owned(), c)));
        let (repo, uses, head_cid, head_rev) = match cached {
            Some((rev, cached)) => {
                let cid = cached.repo.cid();
                (cached.repo, cached.uses, cid, rev)
            }
            None => {
                let head = handle
                    .direct()
                    .head()
                    .await?
                    .ok_or_else(|| Error::RepoNotFound(did.to_string()))?;
                let repo = Repo::load(handle.block_store(), head.cid).await?;
                (repo, 0, head.cid, head.rev)
            }
        };
        if let Some(expected) = swap_commit
            && expected != head_cid
        {
            return Err(Error::InvalidSwap(SwapMismatch::Commit {
                current: head_cid,
            }));
        }
        let (ops, swaps): (Vec<Write>, Vec<Option<Option<Cid>>>) =
            writes.into_iter().map(|w| (w.write, w.swap)).unzip();
        let ops_count = ops.len().max(1);
        for (write, swap) in ops.iter().zip(&swaps) {
            if let Some(expected) = swap {
                check_swap(&repo, write, *expected).await?;
            }
        }

        let prev =
            Tid::try_from(head_rev.clone()).map_err(|_| Error::InvalidStoredRev(head_rev))?;
        let rev = self.0.clock.next_after(&prev).to_string();
        let prepared = repo.format_commit(&ops, handle.keypair(), rev).await?;
        let data = &prepared.data;

        let mut index = Vec::with_capacity(ops.len());
        let mut results = Vec::with_capacity(ops.len());
        for (write, op) in ops.iter().zip(&data.ops) {
            let (collection, rkey, record) = match write {
                Write::Create {
                    collection,
                    rkey,
                    record,
                }
                | Write::Update {
                    collection,
                    rkey,
                    record,
                } => (collection, rkey, Some(record)),
                Write::Delete { collection, rkey } => (collection, rkey, None),
            };
            let put = match (record, op) {
                (
                    Some(record),
                    op @ (RecordOp::Create { cid, .. } | RecordOp::Update { cid, .. }),
                ) => {
                    let len = data.new_blocks.get(cid).map_or(0, |b| b.len());
                    if len > MAX_RECORD_LEN {
                        return Err(Error::RecordTooLarge {
                            path: op.key().to_owned(),
                            len,
                            max: MAX_RECORD_LEN,
                        });
                    }
                    let blobs: BTreeSet<Cid> =
                        find_blobs(record).into_iter().map(|b| b.cid).collect();
                    Some((*cid, blobs.into_iter().collect()))
                }
                _ => None,
            };
            results.push(WriteResult {
                uri: AtUri::for_record(did.clone(), collection.clone(), rkey.clone()),
                cid: put.as_ref().map(|(cid, _)| *cid),
            });
            index.push(IndexOp {
                collection,
                rkey,
                put,
            });
        }

        let blobs = self.prepare_blobs(handle, &ops).await?;
        let time = events::now();
        let event = events::commit_event(data, &time).await?;
        let commit = CommitWrite::of(Some(head_cid), data, &time);
        self.persist(handle, commit, index, &[event], Some(blobs), then_publish)
            .await?;
        let result = CommitResult {
            cid: data.cid,
            rev: data.rev.clone(),
            results,
        };
        handle.put_repo(CachedRepo {
            repo: Repo::apply(prepared),
            uses: uses.saturating_add(u32::try_from(ops_count).unwrap_or(u32::MAX)),
        });
        Ok(result)
    }

    /// The one actor-store transaction of a commit: the outbox rows known to be moved
    /// (step d of the previous write), the commit's blocks and head, the records index,
    /// released record blocks no other record holds, and the commit's events (step b).
    /// Marks the account pending first (step a) when there are events. With `then_publish`,
    /// starts moving the events to the sequencer afterwards (step c, [`ActorRepo::publish`],
    /// in a task of its own that the acknowledgement does not wait for; a failure there is
    /// logged and the events wait in the outbox). Then copies the head.
    ///
    /// The transaction runs as one unit of blocking work ([`crate::store::direct`]) and moves
    /// the head only from `commit.prev` (the head the commit was formatted against; `None`
    /// for a first commit), so a commit never overwrites one it did not build on.
    async fn persist(
        &self,
        handle: &ActorHandle,
        mut commit: CommitWrite,
        index: Vec<IndexOp<'_>>,
        queued: &[Event],
        blobs: Option<BlobPlan>,
        then_publish: bool,
    ) -> Result<()> {
        if !queued.is_empty() && !handle.outbox().pending_marked.load(Ordering::Acquire) {
            self.0.sequencer.mark_pending(handle.did().as_str()).await?;
            handle
                .outbox()
                .pending_marked
                .store(true, Ordering::Release);
        }
        let did = handle.did();
        let moved = handle.outbox().moved_through.load(Ordering::Acquire);
        let records = index
            .into_iter()
            .map(|op| RecordChange {
                uri: AtUri::for_record(did.clone(), op.collection.clone(), op.rkey.clone())
                    .to_string(),
                collection: op.collection.to_string(),
                rkey: op.rkey.to_string(),
                put: op.put,
            })
            .collect();
        commit.records = records;
        commit.outbox_delete_through = (moved >= 0).then_some(moved);
        commit.outbox = queued
            .iter()
            .map(|e| (e.event_type.as_str().to_owned(), e.body.clone()))
            .collect();
        if let Some(plan) = blobs {
            plan.into_commit(&mut commit);
        }
        let (cid, rev) = (commit.cid, commit.rev.clone());
        let written = handle.direct().write_commit(commit).await?;
        if let Some(unmoved) = handle.outbox().unmoved().as_mut() {
            unmoved.extend(written.outbox);
        }
        if moved >= 0 {
            handle.outbox().moved_deleted(moved);
        }
        if then_publish {
            // Step (c) off the acknowledgement's path: the commit and its events are durable
            // in the actor store and the account is in `outbox_pending`, so the events reach
            // `repo_seq` whatever happens next (a failed move waits in the outbox for the
            // account's next write; a crash, for start-up recovery, before the port opens).
            // The firehose only ever sends what `repo_seq` holds, and `publishing` keeps
            // this account's events in commit order while its next commit already runs.
            let (running, handle) = (Running::start(self), handle.clone());
            tokio::spawn(async move { running.0.publish_logged(&handle).await });
        }
        if let Some(accounts) = &self.0.heads {
            heads::record(accounts, did, &cid, &rev).await;
        }
        self.release_blobs(did, &written.dropped_blobs).await;
        Ok(())
    }

    /// Step (c): moves the account's outbox rows not yet moved into `repo_seq`, in order.
    /// Returns how many events were appended. Moves of one account run one at a time
    /// (`publishing`); every row committed before the call is moved when it returns `Ok`.
    pub(super) async fn publish(&self, handle: &ActorHandle) -> Result<u64> {
        let _publishing = handle.outbox().publishing.lock().await;
        let result = self.publish_locked(handle).await;
        if result.is_err() {
            // Rows taken and not moved: unknown again, so the next move reads the outbox.
            *handle.outbox().unmoved() = None;
        }
        result
    }

    async fn publish_locked(&self, handle: &ActorHandle) -> Result<u64> {
        let did = handle.did().as_str();
        // Known rows are taken and moved as they are; commits meanwhile list theirs behind.
        // Unknown ones are read back, after the list is started, so no row falls between.
        let known = {
            let mut unmoved = handle.outbox().unmoved();
            let taken = unmoved.as_mut().map(std::mem::take);
            if taken.is_none() {
                *unmoved = Some(Vec::new());
            }
            taken
        };
        let mut appended = 0;
        match known {
            Some(rows) => {
                for batch in rows.chunks(MOVE_BATCH as usize) {
                    appended += self.0.sequencer.sequence_outbox(did, batch).await?;
                    let last = batch.last().map_or(-1, |row| row.id);
                    handle
                        .outbox()
                        .moved_through
                        .fetch_max(last, Ordering::AcqRel);
                }
            }
            None => {
                let mut after = handle.outbox().moved_through.load(Ordering::Acquire);
                loop {
                    let rows = handle.direct().outbox_after(after, MOVE_BATCH).await?;
                    let Some(last) = rows.last() else { break };
                    let last = last.id;
                    appended += self.0.sequencer.sequence_outbox(did, &rows).await?;
                    handle
                        .outbox()
                        .moved_through
                        .fetch_max(last, Ordering::AcqRel);
                    after = last;
                    if rows.len() < MOVE_BATCH as usize {
                        break;
                    }
                }
            }
        }
        Ok(appended)
    }

    async fn publish_logged(&self, handle: &ActorHandle) {
        if let Err(err) = self.publish(handle).await {
            tracing::warn!(
                did = %handle.did(),
                error = %err,
                "moving firehose events to the sequencer failed; they wait in the outbox"
            );
        }
    }

    /// Step (d) on its own: deletes the outbox rows known to be moved. The caller holds the
    /// account's writer lock.
    pub(super) async fn prune(&self, handle: &ActorHandle) -> Result<u64> {
        let moved = handle.outbox().moved_through.load(Ordering::Acquire);
        if moved < 0 {
            return Ok(0);
        }
        let mut tx = begin_write(handle.pool()).await?;
        let deleted = outbox::delete_through(&mut tx, moved).await?;
        tx.commit().await?;
        handle.outbox().moved_deleted(moved);
        Ok(deleted)
    }

    /// Step (e), at start-up: for every account in `outbox_pending`, moves what its outbox
    /// still holds into `repo_seq`, empties the outbox, and clears the pending row. Safe to
    /// run while writes go on (it takes each account's writer lock). Accounts whose store is
    /// gone are cleared; accounts that fail are logged, counted and left pending.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        for did in self.0.sequencer.pending_dids().await? {
            report.visited += 1;
            match self.recover_account(&did).await {
                Ok((moved, cleared)) => {
                    report.moved += moved;
                    report.cleared += usize::from(cleared);
                }
                Err(err) => {
                    report.failed += 1;
                    tracing::warn!(%did, error = %err, "outbox recovery failed");
                }
            }
        }
        if let Some(accounts) = &self.0.heads {
            let recorded = heads::backfill(accounts, &self.0.stores, &self.0.writers).await?;
            tracing::debug!(recorded, "missing repository heads recorded");
        }
        Ok(report)
    }

    async fn recover_account(&self, did: &str) -> Result<(u64, bool)> {
        let Ok(parsed) = did.parse::<Did>() else {
            // Never written by this server; nothing can be recovered for it.
            return Ok((0, self.0.sequencer.clear_pending(did).await?));
        };
        let _writer = self.0.writers.lock(did).await;
        let Some(handle) = self.0.stores.open(&parsed).await? else {
            if let Some(accounts) = &self.0.heads {
                heads::forget(accounts, did).await?;
            }
            return Ok((0, self.0.sequencer.clear_pending(did).await?));
        };
        if let Some(accounts) = &self.0.heads {
            heads::repair(accounts, &handle).await?;
        }
        let moved = self.publish(&handle).await?;
        self.prune(&handle).await?;
        let left = {
            let mut conn = handle.pool().acquire().await?;
            outbox::count(&mut conn).await?
        };
        if left > 0 {
            return Ok((moved, false));
        }
        let cleared = self.0.sequencer.clear_pending(did).await?;
        handle
            .outbox()
            .pending_marked
            .store(false, Ordering::Release);
        Ok((moved, cleared))
    }

    /// Appends a `#sync` event declaring `did`'s current commit (after any of its events
    /// still in the outbox). Returns its `seq`.
    pub async fn sequence_sync(&self, did: &Did) -> Result<i64> {
        let _writer = self.0.writers.lock(did.as_str()).await;
        let handle = self.open_required(did).await?;
        self.publish(&handle).await?;
        let (head, block) = {
            let mut conn = handle.pool().acquire().await?;
            let head = root::get(&mut conn)
                .await?
                .ok_or_else(|| Error::RepoNotFound(did.to_string()))?;
            let block = crate::store::blocks::get(&mut conn, &head.cid)
                .await?
                .ok_or(repository::Error::MissingCommit(head.cid))?;
            (head, block)
        };
        let event =
            events::sync_event(did.as_str(), &head.cid, &block, &head.rev, &events::now()).await?;
        Ok(self
            .0
            .sequencer
            .sequence_event(did.as_str(), &event)
            .await?)
    }

    /// Appends an `#identity` event for `did` after any of its events still in the outbox
    /// (the account's store may be gone, e.g. after deletion). Returns its `seq`.
    pub async fn sequence_identity(&self, did: &Did, handle: Option<&Handle>) -> Result<i64> {
        let _writer = self.0.writers.lock(did.as_str()).await;
        self.publish_leftovers(did).await?;
        let handle = handle.map(Handle::as_str);
        Ok(self
            .0
            .sequencer
            .sequence_identity(did.as_str(), handle)
            .await?)
    }

    /// Appends an `#account` event for `did` after any of its events still in the outbox.
    /// `status` (`takendown`, `deactivated`, …) is left out when `active`. Returns its `seq`.
    pub async fn sequence_account(
        &self,
        did: &Did,
        active: bool,
        status: Option<&str>,
    ) -> Result<i64> {
        let _writer = self.0.writers.lock(did.as_str()).await;
        self.publish_leftovers(did).await?;
        Ok(self
            .0
            .sequencer
            .sequence_account(did.as_str(), active, status)
            .await?)
    }

    /// Moves what `did`'s outbox still holds, if it has a store, so a direct event written
    /// next is sequenced after them. The caller holds the account's writer lock.
    async fn publish_leftovers(&self, did: &Did) -> Result<()> {
        if let Some(handle) = self.0.stores.open(did).await? {
            self.publish(&handle).await?;
        }
        Ok(())
    }

    /// Deletes `did`'s store and key after moving any events still in its outbox, then its
    /// blobs. Returns whether the store existed.
    pub async fn destroy_repo(&self, did: &Did) -> Result<bool> {
        let _writer = self.0.writers.lock(did.as_str()).await;
        if let Some(handle) = self.0.stores.open(did).await? {
            self.publish_logged(&handle).await;
        }
        let existed = self.0.stores.destroy(did).await?;
        if let Some(accounts) = &self.0.heads {
            heads::forget(accounts, did.as_str()).await?;
        }
        self.0.sequencer.clear_pending(did.as_str()).await?;
        self.destroy_blobs(did).await?;
        Ok(existed)
    }

    /// The writer lock of `did`, for tests that stop between protocol steps.
    #[cfg(test)]
    pub(super) async fn lock_writer(&self, did: &Did) -> tokio::sync::OwnedMutexGuard<()> {
        self.0.writers.lock(did.as_str()).await
    }

    /// How many hold or wait for the writer lock of `did`.
    #[cfg(test)]
    pub(super) fn writer_lock_users(&self, did: &Did) -> usize {
        self.0.writers.users(did.as_str())
    }

    #[cfg(test)]
    pub(super) fn writer_locks(&self) -> usize {
        self.0.writers.len()
    }
}

/// Checks a write's `swapRecord` against the current tree (the reference's rules).
async fn check_swap<S>(repo: &Repo<S>, write: &Write, expected: Option<Cid>) -> Result<()>
where
    S: crate::repo::blockstore::BlockStore + Clone,
{
    let path = write.path();
    let current = repo
        .mst()
        .get(&path)
        .await
        .map_err(repository::Error::from)?;
    let shape_ok = match write {
        Write::Create { .. } => expected.is_none(),
        Write::Update { .. } | Write::Delete { .. } => expected.is_some(),
    };
    if shape_ok && current == expected {
        return Ok(());
    }
    Err(Error::InvalidSwap(SwapMismatch::Record { path, current }))
}
