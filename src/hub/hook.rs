//! The hub's commit hook ([`crate::actor::hooks`]) and the task that indexes behind it.
//!
//! - Before a commit touching a hub collection: the hub rules and creation limits are
//!   checked (a refusal fails the write), and the account is marked in `hub_pending`,
//!   durably, before the repository commits.
//! - After the commit the touched records are queued for the indexer task and the write is
//!   acknowledged without waiting for it. The task takes whatever is queued as one batch,
//!   merges it per account, brings those records' index entries to the repository's state,
//!   and clears an account's mark once no write of it is in flight or queued. A crash
//!   between the acknowledgement and the index update leaves the mark, and start-up
//!   reindexes the account ([`HubIndex::repair`]), as before.
//! - Readers of the index wait until every update queued before their read is applied
//!   ([`HubIndex::caught_up`]), so a listing after an acknowledged write shows it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, Weak};

use tokio::sync::{mpsc, watch};

use super::records;
use super::store;
use super::{Error, HubIndex, Inner};
use crate::actor::hooks::{CommitHook, HookFuture, Refusal, Ticket};
use crate::actor::{ActorRepo, RecordWrite};
use crate::repo::repository::Write;
use crate::syntax::{Did, Nsid, RecordKey};

/// The hub records a batch of writes touches: (collection, rkey).
pub(super) type Touched = Vec<(Nsid, RecordKey)>;

/// One account's jobs of a batch: the records touched (each once) and how many writes.
type Merged = (ActorRepo, Did, BTreeSet<(Nsid, RecordKey)>, usize);

/// What `before` hands to `after`.
struct HubTicket {
    touched: Touched,
    /// Creation-log rows added by `before`, taken back if the commit fails.
    logged: Vec<i64>,
}

/// One committed (or failed) write waiting for the indexer.
pub(super) struct Job {
    repo: ActorRepo,
    did: Did,
    touched: Touched,
    /// Creation-log rows to take back (the commit failed).
    unlog: Vec<i64>,
    /// Position in the queue (see [`Indexer::queued`]).
    seq: u64,
}

/// The queue of index updates and its progress.
pub(super) struct Indexer {
    tx: mpsc::UnboundedSender<Job>,
    /// Jobs ever queued; the n-th job has `seq` n.
    queued: AtomicU64,
    /// The highest `seq` applied (or given up on, with the mark left for repair).
    done: watch::Sender<u64>,
    /// Writes per account between `before` and their job's end: the account's pending mark
    /// is cleared only when this drops to zero.
    in_flight: Mutex<HashMap<String, usize>>,
    /// Crash simulation for tests: queued updates are dropped, marks left behind.
    lose_updates: AtomicBool,
}

impl Indexer {
    /// The queue, and its receiving end for [`run`].
    pub(super) fn new() -> (Indexer, mpsc::UnboundedReceiver<Job>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let indexer = Indexer {
            tx,
            queued: AtomicU64::new(0),
            done: watch::channel(0).0,
            in_flight: Mutex::new(HashMap::new()),
            lose_updates: AtomicBool::new(false),
        };
        (indexer, rx)
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one more write of `did` in flight.
    pub(super) fn enter(&self, did: &str) {
        *self.in_flight().entry(did.to_owned()).or_default() += 1;
    }

    /// Counts `n` writes of `did` done; whether none is left.
    pub(super) fn leave(&self, did: &str, n: usize) -> bool {
        let mut map = self.in_flight();
        let left = map.get_mut(did).map_or(0, |count| {
            *count = count.saturating_sub(n);
            *count
        });
        if left == 0 {
            map.remove(did);
        }
        left == 0
    }
}

/// The indexer task: applies queued jobs in batches until the index is dropped.
pub(super) async fn run(index: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 256).await > 0 {
        let Some(inner) = index.upgrade() else {
            return;
        };
        let hub = HubIndex(inner);
        let last = batch.iter().map(|j| j.seq).max().unwrap_or(0);
        hub.apply_batch(std::mem::take(&mut batch)).await;
        hub.0
            .indexer
            .done
            .send_modify(|done| *done = (*done).max(last));
    }
}

impl HubIndex {
    /// Waits until every index update queued so far is applied (or the indexer task is
    /// gone, so a reader never hangs on it).
    pub async fn caught_up(&self) {
        let indexer = &self.0.indexer;
        let target = indexer.queued.load(Ordering::Acquire);
        let mut done = indexer.done.subscribe();
        tokio::select! {
            _ = done.wait_for(|done| *done >= target) => {}
            () = indexer.tx.closed() => {}
        }
    }

    /// For crash tests: until the guard is dropped, queued index updates are lost as if
    /// the process died after acknowledging their writes (the accounts stay marked).
    #[doc(hidden)]
    pub fn lose_index_updates(&self) -> LostUpdates {
        self.0.indexer.lose_updates.store(true, Ordering::Release);
        LostUpdates(self.clone())
    }

    /// The hook to register with the repository writer.
    pub fn commit_hook(&self) -> std::sync::Arc<dyn CommitHook> {
        std::sync::Arc::new(HubHook(self.clone()))
    }

    async fn apply_batch(&self, batch: Vec<Job>) {
        let indexer = &self.0.indexer;
        if indexer.lose_updates.load(Ordering::Acquire) {
            for job in batch {
                indexer.leave(job.did.as_str(), 1);
            }
            return;
        }
        // Per account, in queue order: the records touched (each once) and the writes.
        let mut accounts: Vec<Merged> = Vec::new();
        for job in batch {
            if !job.unlog.is_empty() {
                let unlogged = async {
                    let mut conn = self.pool().acquire().await?;
                    store::unlog_creations(&mut conn, &job.unlog).await
                };
                if let Err(e) = unlogged.await {
                    tracing::warn!(did = %job.did, error = %e, "taking back hub creation-log rows failed");
                }
            }
            match accounts.iter_mut().find(|a| a.1 == job.did) {
                Some(account) => {
                    account.2.extend(job.touched);
                    account.3 += 1;
                }
                None => accounts.push((job.repo, job.did, job.touched.into_iter().collect(), 1)),
            }
        }
        for (repo, did, touched, writes) in accounts {
            let touched: Touched = touched.into_iter().collect();
            if let Err(e) = self.sync_records(&repo, &did, &touched, writes).await {
                tracing::error!(%did, error = %e, "hub index update failed; repaired at next start-up");
            }
        }
    }
}

/// See [`HubIndex::lose_index_updates`].
#[doc(hidden)]
pub struct LostUpdates(HubIndex);

impl Drop for LostUpdates {
    fn drop(&mut self) {
        self.0
            .0
            .indexer
            .lose_updates
            .store(false, Ordering::Release);
    }
}

/// The hub's [`CommitHook`].
struct HubHook(HubIndex);

impl std::fmt::Debug for HubHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HubHook")
    }
}

impl CommitHook for HubHook {
    fn concerns(&self, _did: &Did, writes: &[RecordWrite]) -> bool {
        writes
            .iter()
            .any(|w| records::is_hub_collection(path_of(&w.write).0.as_str()))
    }

    fn before<'a>(
        &'a self,
        did: &'a Did,
        writes: &'a [RecordWrite],
    ) -> HookFuture<'a, std::result::Result<Ticket, Refusal>> {
        Box::pin(async move {
            for w in writes {
                if let Write::Create {
                    collection,
                    rkey,
                    record,
                }
                | Write::Update {
                    collection,
                    rkey,
                    record,
                } = &w.write
                {
                    records::check_write(collection.as_str(), rkey.as_str(), record)
                        .map_err(|m| Box::new(Error::Invalid(m)) as Refusal)?;
                }
            }
            let logged = self
                .0
                .before_commit(did, writes)
                .await
                .map_err(|e| Box::new(e) as Refusal)?;
            Ok(Box::new(HubTicket {
                touched: touched(writes),
                logged,
            }) as Ticket)
        })
    }

    fn after(&self, repo: &ActorRepo, did: &Did, ticket: Ticket, committed: bool) {
        let Ok(ticket) = ticket.downcast::<HubTicket>() else {
            return;
        };
        let indexer = &self.0.0.indexer;
        let seq = indexer.queued.fetch_add(1, Ordering::AcqRel) + 1;
        let job = Job {
            repo: repo.clone(),
            did: did.clone(),
            touched: ticket.touched,
            unlog: if committed { Vec::new() } else { ticket.logged },
            seq,
        };
        if indexer.tx.send(job).is_err() {
            // The indexer is gone (shutting down): the mark stays for start-up repair.
            indexer.done.send_modify(|done| *done = (*done).max(seq));
        }
    }
}

fn path_of(write: &Write) -> (&Nsid, &RecordKey) {
    match write {
        Write::Create {
            collection, rkey, ..
        }
        | Write::Update {
            collection, rkey, ..
        }
        | Write::Delete { collection, rkey } => (collection, rkey),
    }
}

/// The hub records `writes` touch: (collection, rkey).
fn touched(writes: &[RecordWrite]) -> Touched {
    writes
        .iter()
        .map(|w| path_of(&w.write))
        .filter(|(collection, _)| records::is_hub_collection(collection.as_str()))
        .map(|(collection, rkey)| (collection.clone(), rkey.clone()))
        .collect()
}
