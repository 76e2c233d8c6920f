//! Where actor stores live on disk, and a bounded cache of their open pools.
//!
//! Layout: `{data}/actors/<xx>/<did>/store.sqlite` and `{data}/actors/<xx>/<did>/key`, where
//! `xx` is the first two hex digits of SHA-256(did), which spreads accounts over 256
//! directories.
//!
//! # The pool cache
//! An open pool costs file handles and one thread per connection (sqlx runs each SQLite
//! connection on its own thread), so at most `capacity` pools are open at once, and each has
//! at most [`POOL_CONNECTIONS`] connections that close after [`POOL_IDLE_TIMEOUT`] unused.
//!
//! - Every open pool holds one permit of a semaphore of `capacity` permits, from before it is
//!   opened until after it is closed: that is the bound, whatever callers do.
//! - Open pools are kept in an LRU of at most `capacity` entries. Callers get an
//!   [`ActorHandle`], an `Arc` of the entry. Opening an uncached store when no permit is free
//!   evicts the least recently used entry (an idle one first) and waits for a permit; it
//!   looks again each time a handle is dropped, as that may have made an entry idle.
//! - An entry is closed when its last reference goes: an idle entry as soon as it is evicted,
//!   one in use when its last handle is dropped, so eviction never pulls a pool out from
//!   under a running operation. Closing (`SqlitePool::close`, which waits for checked-out
//!   connections) runs on a spawned task that releases the permit when done.
//! - An evicted entry still in use is found again by a later `open` of the same account
//!   (through a weak reference), so one account never has two pools.
//!
//! A caller must not hold a handle while opening another store when every permit may be
//! held by handles in use (a capacity of 1, say): the open would wait for a permit that only
//! that caller can release. The services here hold one handle at a time.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::sqlite::SqlitePool;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::locks::KeyedLocks;
use super::{Error, keyfile};
use crate::crypto::Keypair;
use crate::repo::repository::Repo;
use crate::store::SqliteBlockStore;
use crate::store::direct::DirectDb;
use crate::store::outbox::OutboxRow;
use crate::store::sqlite::{self, OpenOptions};
use crate::syntax::Did;

/// Directory under the data directory that holds every account's store.
pub const ACTORS_DIR: &str = "actors";
/// File name of an account's SQLite database.
pub const STORE_FILE: &str = "store.sqlite";
// # Memory sizing
//
// What the open stores may cost, all in one place. Measured with `rookery bench load
// --touch-accounts N` (one write to each of N accounts in a row): an open store with its
// connections costs about 0.8 MB (two SQLite connections, each with its page cache,
// lookaside and prepared statements, and one sqlx thread each), so 300 stores touched in a
// row under the former cache of 1000 left 317 stores and 661 threads open and 250 MB
// resident (1000 accounts: 1000 stores, 2026 threads, 956 MB with glibc). An account in
// active use costs more, about 1.5 MB (its cached repository, fuller statement caches). The
// bound of the open stores is therefore small, and idle connections close soon; reopening a
// store is a file open, a few PRAGMAs and a migration check (a few milliseconds: writing
// once to each of 1000 accounts in a row went from 416/s to 219/s with this bound, while its
// memory went from 956 MB to 79 MB).

/// Connections per account pool: one for the writer, one for a reader beside it.
pub const POOL_CONNECTIONS: u32 = 2;
/// Unused connections of a cached pool close after this long, so idle accounts hold no
/// threads and no page cache; reopening one is a file open and a few PRAGMAs.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound of open stores (`ROOKERY_ACTOR_STORE_CACHE_SIZE`). A store written or read
/// once keeps about 0.3 MB (its connections' schema, statements and pages); 32 keep the
/// server within its 64 MB budget beside everything else when 10,000 accounts write once
/// each in a row (`rookery bench load --touch-accounts 10000`: 62.7 MB at 32, 66.9 MB at
/// 48, at the same write rate).
pub const DEFAULT_CAPACITY: usize = 32;
/// SQLite's soft heap limit, 8 MiB, set when the first store opens. It
/// is process-wide: SQLite shrinks the page caches of every connection (the account,
/// sequencer and hub databases' too) to stay near it, instead of letting each grow to its
/// own `cache_size` (2 MB by default) as the big repositories are read.
pub const SQLITE_SOFT_HEAP_LIMIT: &str = "PRAGMA soft_heap_limit = 8388608";

/// The per-account SQLite stores. Cloning shares the cache.
#[derive(Debug, Clone)]
pub struct ActorStores(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    capacity: usize,
    pool_options: OpenOptions,
    permits: Arc<Semaphore>,
    cache: Mutex<Cache>,
    /// Serialises opening, creating and destroying one account's store.
    opening: KeyedLocks,
    /// Pools opened and not yet closed.
    open_pools: Arc<AtomicUsize>,
    /// Woken when a handle is dropped: an opener waiting for a permit may now find an idle
    /// entry to evict.
    handle_dropped: Arc<Notify>,
    /// Openers waiting for a permit now.
    permit_waiters: AtomicUsize,
    /// `open` calls answered from the cache, opens that had to load a store, and entries
    /// evicted to make room (for the metrics).
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    /// Told when a store is opened and after each repository commit (replication).
    change_hook: Option<Arc<dyn crate::store::changes::DbChangeHook>>,
    /// [`SQLITE_SOFT_HEAP_LIMIT`] was set.
    heap_limit_set: AtomicBool,
}

/// Cache counters since start-up; see [`ActorStores::cache_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

#[derive(Debug, Default)]
struct Cache {
    /// Recency counter.
    tick: u64,
    /// did → (last use, entry).
    entries: HashMap<String, (u64, Arc<ActorEntry>)>,
    /// last use → did, oldest first.
    order: BTreeMap<u64, String>,
    /// Every entry not yet dropped, cached or not: evicted entries still in use.
    live: HashMap<String, Weak<ActorEntry>>,
}

impl Cache {
    fn touch(&mut self, did: &str) -> Option<ActorHandle> {
        self.tick += 1;
        let tick = self.tick;
        let (last, entry) = self.entries.get_mut(did)?;
        self.order.remove(last);
        *last = tick;
        self.order.insert(tick, did.to_owned());
        Some(ActorHandle(entry.clone()))
    }

    fn insert(&mut self, entry: Arc<ActorEntry>) -> ActorHandle {
        self.tick += 1;
        let did = entry.did.as_str().to_owned();
        self.order.insert(self.tick, did.clone());
        if let Some((old, _)) = self.entries.insert(did.clone(), (self.tick, entry.clone())) {
            self.order.remove(&old);
        }
        self.live.insert(did, Arc::downgrade(&entry));
        // Dead weak references are swept when they outnumber the live ones.
        if self.live.len() > 2 * self.entries.len() + 16 {
            self.live.retain(|_, weak| weak.strong_count() > 0);
        }
        ActorHandle(entry)
    }

    fn lookup(&mut self, did: &str) -> Option<ActorHandle> {
        if let Some(handle) = self.touch(did) {
            return Some(handle);
        }
        let entry = self.live.get(did).and_then(Weak::upgrade)?;
        Some(self.insert(entry))
    }

    fn remove(&mut self, did: &str) -> Option<Arc<ActorEntry>> {
        let (tick, entry) = self.entries.remove(did)?;
        self.order.remove(&tick);
        Some(entry)
    }

    /// Takes the least recently used entry out of the cache, preferring one nobody uses.
    fn evict(&mut self) -> Option<Arc<ActorEntry>> {
        let idle = self
            .order
            .values()
            .find(|did| {
                self.entries
                    .get(*did)
                    .is_some_and(|(_, e)| Arc::strong_count(e) == 1)
            })
            .or_else(|| self.order.values().next())
            .cloned()?;
        self.remove(&idle)
    }
}

/// Per-account state of the firehose outbox protocol (see `crate::sequencer`), valid while
/// the entry lives; losing it only costs a redundant step.
#[derive(Debug)]
pub(crate) struct OutboxState {
    /// `outbox_pending` holds this account (step a) since this entry was opened.
    pub(crate) pending_marked: AtomicBool,
    /// Outbox rows up to this id were moved into `repo_seq` (step c) but not yet deleted
    /// (step d); -1 for none.
    pub(crate) moved_through: AtomicI64,
    /// Every outbox row not yet taken by a step (c), in order, when known: the rows this
    /// entry's commits queued since a step (c) began with a known list or read the outbox.
    /// Step (c) then moves them without reading the outbox back. `None` (unknown: a fresh
    /// entry, or a failed move) makes it read the outbox. A row may be both listed and
    /// already moved (read back meanwhile); the sequencer skips rows it holds.
    unmoved: Mutex<Option<Vec<OutboxRow>>>,
    /// Held by step (c) while it takes rows and moves them, so this account's events reach
    /// `repo_seq` in outbox order. Step (c) of a commit runs after its acknowledgement,
    /// beside the account's next commit, so this is not the writer lock.
    pub(crate) publishing: tokio::sync::Mutex<()>,
}

impl OutboxState {
    /// The outbox rows not yet moved, when known (see the field).
    pub(crate) fn unmoved(&self) -> MutexGuard<'_, Option<Vec<OutboxRow>>> {
        self.unmoved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lowers `moved_through` to -1 once the outbox rows through `moved` are deleted, unless
    /// a step (c) has moved more meanwhile (then those are deleted by the next commit).
    pub(crate) fn moved_deleted(&self, moved: i64) {
        let _ = self.moved_through.compare_exchange(
            moved,
            -1,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
        );
    }
}

/// The repository as of its last commit through this entry, kept so the next write need not
/// load the commit and re-read the MST path from the database. Only the account's writer
/// (holding its lock) takes and puts it; it is used only if its commit is still the head.
#[derive(Debug)]
pub(crate) struct CachedRepo {
    pub(crate) repo: Repo<SqliteBlockStore>,
    /// Record writes formatted on this value since it was loaded (a commit without any
    /// counts one). The tree keeps every node it has loaded, a path of a few nodes per write;
    /// reloading after [`CachedRepo::MAX_USES`] writes bounds that memory to a few hundred
    /// nodes per open store, however large the repository or its commits (`applyWrites` of
    /// 200 records into a 100,000-record repository kept about 10 MB when this counted
    /// commits).
    pub(crate) uses: u32,
}

impl CachedRepo {
    pub(crate) const MAX_USES: u32 = 128;
}

/// One open account store.
#[derive(Debug)]
pub(crate) struct ActorEntry {
    did: Did,
    dir: PathBuf,
    pool: SqlitePool,
    /// The hot paths' blocking connections to the same file (see [`crate::store::direct`]).
    direct: Arc<DirectDb>,
    keypair: Keypair,
    pub(crate) outbox: OutboxState,
    repo: Mutex<Option<CachedRepo>>,
    permit: Option<OwnedSemaphorePermit>,
    open_pools: Arc<AtomicUsize>,
    handle_dropped: Arc<Notify>,
}

impl Drop for ActorEntry {
    fn drop(&mut self) {
        let permit = self.permit.take();
        let open_pools = self.open_pools.clone();
        let pool = self.pool.clone();
        let direct = self.direct.clone();
        let finish = move || {
            open_pools.fetch_sub(1, Ordering::AcqRel);
            drop(permit);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    pool.close().await;
                    // Closing files may block briefly on I/O: off the async threads.
                    let _ = tokio::task::spawn_blocking(move || direct.close()).await;
                    finish();
                });
            }
            // Outside a runtime (e.g. at process exit) dropping the pool closes its idle
            // connections: each connection thread ends when its channel closes.
            Err(_) => {
                drop(pool);
                direct.close();
                finish();
            }
        }
    }
}

/// An open account store: its pool, its signing key and its directory. Cheap to clone; the
/// pool stays open while any handle lives.
#[derive(Debug, Clone)]
pub struct ActorHandle(pub(super) Arc<ActorEntry>);

impl Drop for ActorHandle {
    fn drop(&mut self) {
        // The cache and this handle, or fewer: the entry is (about to be) idle. A spurious
        // wake-up only makes a waiting opener look at the cache again.
        if Arc::strong_count(&self.0) <= 2 {
            self.0.handle_dropped.notify_waiters();
        }
    }
}

impl ActorHandle {
    pub fn did(&self) -> &Did {
        &self.0.did
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.0.pool
    }

    /// The store's blocking connections for the hot paths.
    pub(crate) fn direct(&self) -> &Arc<DirectDb> {
        &self.0.direct
    }

    /// The repo signing key.
    pub fn keypair(&self) -> &Keypair {
        &self.0.keypair
    }

    /// The account's directory.
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    /// The repo engine's block store over this store (reads on the blocking connections).
    pub fn block_store(&self) -> SqliteBlockStore {
        SqliteBlockStore::with_direct(self.0.pool.clone(), self.0.direct.clone())
    }

    pub(crate) fn outbox(&self) -> &OutboxState {
        &self.0.outbox
    }

    /// Takes the cached repository, if any.
    pub(crate) fn take_repo(&self) -> Option<CachedRepo> {
        self.0.repo.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Caches the repository after a commit.
    pub(crate) fn put_repo(&self, cached: CachedRepo) {
        *self.0.repo.lock().unwrap_or_else(|e| e.into_inner()) = Some(cached);
    }
}

impl ActorStores {
    /// Stores under `{data_directory}/actors`, at most `capacity` (at least 1) open at once.
    pub fn new(data_directory: &Path, capacity: usize) -> Self {
        Self::with_change_hook(data_directory, capacity, None)
    }

    /// [`ActorStores::new`] whose stores report to `hook` when opened and committed to.
    pub fn with_change_hook(
        data_directory: &Path,
        capacity: usize,
        hook: Option<Arc<dyn crate::store::changes::DbChangeHook>>,
    ) -> Self {
        let capacity = capacity.max(1);
        ActorStores(Arc::new(Inner {
            root: data_directory.join(ACTORS_DIR),
            capacity,
            pool_options: OpenOptions {
                max_connections: POOL_CONNECTIONS,
                idle_timeout: Some(POOL_IDLE_TIMEOUT),
                ..OpenOptions::default()
            },
            permits: Arc::new(Semaphore::new(capacity)),
            cache: Mutex::new(Cache::default()),
            opening: KeyedLocks::default(),
            permit_waiters: AtomicUsize::new(0),
            open_pools: Arc::new(AtomicUsize::new(0)),
            handle_dropped: Arc::new(Notify::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            change_hook: hook,
            heap_limit_set: AtomicBool::new(false),
        }))
    }

    fn report_opened(&self, did: &Did) {
        if let Some(hook) = &self.0.change_hook {
            hook.opened(&self.dir(did).join(STORE_FILE));
        }
    }

    /// Tells the change hook that a repository write to `did`'s store committed, and waits
    /// as long as it asks (a strict replica: until the write is in the bucket).
    pub(crate) async fn committed(&self, did: &Did) {
        if let Some(hook) = &self.0.change_hook {
            hook.committed(&self.dir(did).join(STORE_FILE)).await;
        }
    }

    /// `{data_directory}/actors`, under which every store lives.
    pub fn root(&self) -> &Path {
        &self.0.root
    }

    /// The directory of `did`'s store and key.
    pub fn dir(&self, did: &Did) -> PathBuf {
        let hash = Sha256::digest(did.as_str().as_bytes());
        let shard = hex::encode(&hash[..1]);
        self.0.root.join(shard).join(did.as_str())
    }

    /// Bytes `did`'s store takes on disk: the database and its write-ahead log.
    pub async fn disk_bytes(&self, did: &Did) -> u64 {
        let dir = self.dir(did);
        let mut total = 0;
        for file in [STORE_FILE.to_owned(), format!("{STORE_FILE}-wal")] {
            if let Ok(meta) = tokio::fs::metadata(dir.join(file)).await {
                total += meta.len();
            }
        }
        total
    }

    /// Whether `did` has a store.
    pub async fn exists(&self, did: &Did) -> Result<bool, Error> {
        let path = self.dir(did).join(STORE_FILE);
        tokio::fs::try_exists(&path)
            .await
            .map_err(|e| Error::io(&path, e))
    }

    /// Pools open right now (never more than the capacity).
    pub fn open_pools(&self) -> usize {
        self.0.open_pools.load(Ordering::Acquire)
    }

    /// Openers waiting for a permit right now (all `capacity` pools in use).
    pub fn permit_waiters(&self) -> usize {
        self.0.permit_waiters.load(Ordering::Acquire)
    }

    /// Entries in the LRU.
    pub fn cached(&self) -> usize {
        self.cache().entries.len()
    }

    pub fn capacity(&self) -> usize {
        self.0.capacity
    }

    /// Cache hits, misses (stores loaded) and evictions since start-up.
    pub fn cache_counts(&self) -> CacheCounts {
        CacheCounts {
            hits: self.0.hits.load(Ordering::Relaxed),
            misses: self.0.misses.load(Ordering::Relaxed),
            evictions: self.0.evictions.load(Ordering::Relaxed),
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // Every critical section leaves the cache consistent; a panic inside one (none is
        // expected) must not disable the server.
        self.0.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates `did`'s directory, key file and migrated database, and opens it. Fails with
    /// [`Error::AlreadyExists`] if the database exists. Only secp256k1 keys are accepted.
    pub async fn create(&self, did: &Did, keypair: &Keypair) -> Result<ActorHandle, Error> {
        let _guard = self.0.opening.lock(did.as_str()).await;
        if self.exists(did).await? {
            return Err(Error::AlreadyExists(did.to_string()));
        }
        let dir = self.dir(did);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Error::io(&dir, e))?;
        keyfile::write(&dir, keypair).await?;
        let entry = self.load(did, dir).await?;
        self.report_opened(did);
        Ok(self.cache().insert(entry))
    }

    /// Opens `did`'s store, or `None` if it has none. Never creates anything.
    pub async fn open(&self, did: &Did) -> Result<Option<ActorHandle>, Error> {
        if let Some(handle) = self.cache().lookup(did.as_str()) {
            self.0.hits.fetch_add(1, Ordering::Relaxed);
            self.report_opened(did);
            return Ok(Some(handle));
        }
        let _guard = self.0.opening.lock(did.as_str()).await;
        if let Some(handle) = self.cache().lookup(did.as_str()) {
            self.0.hits.fetch_add(1, Ordering::Relaxed);
            self.report_opened(did);
            return Ok(Some(handle));
        }
        // Checked under the account's lock, so a concurrent destroy cannot delete the file
        // between this check and the open (which would create an empty database).
        if !self.exists(did).await? {
            return Ok(None);
        }
        let entry = self.load(did, self.dir(did)).await?;
        self.0.misses.fetch_add(1, Ordering::Relaxed);
        self.report_opened(did);
        Ok(Some(self.cache().insert(entry)))
    }

    /// Closes `did`'s store (waiting for operations in flight to give back their
    /// connections; later ones fail) and deletes its directory. Returns whether it existed.
    pub async fn destroy(&self, did: &Did) -> Result<bool, Error> {
        let _guard = self.0.opening.lock(did.as_str()).await;
        let entry = {
            let mut cache = self.cache();
            let cached = cache.remove(did.as_str());
            let live = cache.live.remove(did.as_str()).and_then(|w| w.upgrade());
            cached.or(live)
        };
        if let Some(entry) = entry {
            entry.direct.close();
            entry.pool.close().await;
        }
        let dir = self.dir(did);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(&dir, e)),
        }
    }

    /// Opens the store in `dir` under a fresh permit.
    async fn load(&self, did: &Did, dir: PathBuf) -> Result<Arc<ActorEntry>, Error> {
        let permit = self.acquire_permit().await?;
        let keypair = keyfile::read(&dir).await?;
        let path = dir.join(STORE_FILE);
        let direct = DirectDb::new(&path);
        // A store already migrated (every one but a new or upgraded store) needs no sqlx
        // connection to open: its pool connects when a cold path first uses it.
        let pool = if direct.schema_is_current(&sqlite::ACTOR_MIGRATOR).await {
            sqlite::open_lazy(&path, &self.0.pool_options)
        } else {
            sqlite::open(&path, &self.0.pool_options).await?
        };
        if !self.0.heap_limit_set.swap(true, Ordering::AcqRel) {
            // Process-wide: any connection of the one SQLite library sets it.
            direct
                .run(|conn| Ok(conn.execute_batch(SQLITE_SOFT_HEAP_LIMIT)?))
                .await?;
        }
        self.0.open_pools.fetch_add(1, Ordering::AcqRel);
        Ok(Arc::new(ActorEntry {
            did: did.clone(),
            dir,
            pool,
            direct,
            keypair,
            outbox: OutboxState {
                pending_marked: AtomicBool::new(false),
                moved_through: AtomicI64::new(-1),
                unmoved: Mutex::new(None),
                publishing: tokio::sync::Mutex::new(()),
            },
            repo: Mutex::new(None),
            permit: Some(permit),
            open_pools: self.0.open_pools.clone(),
            handle_dropped: self.0.handle_dropped.clone(),
        }))
    }

    /// A permit for one more open pool: free already, or released by closing an entry this
    /// evicts. Every entry in the cache may be in use; then the least recently used one is
    /// evicted and closes when its users are done. Each dropped handle makes this look
    /// again, so an entry that went idle meanwhile (or an evicted one that was found again
    /// and re-cached) is not waited on forever.
    async fn acquire_permit(&self) -> Result<OwnedSemaphorePermit, Error> {
        loop {
            // Armed before looking, so a handle dropped after the look still wakes us.
            let dropped = self.0.handle_dropped.notified();
            tokio::pin!(dropped);
            dropped.as_mut().enable();
            if let Ok(permit) = self.0.permits.clone().try_acquire_owned() {
                return Ok(permit);
            }
            let evicted = self.cache().evict();
            if evicted.is_some() {
                self.0.evictions.fetch_add(1, Ordering::Relaxed);
            }
            // Dropped outside the cache lock: the last reference starts the close.
            drop(evicted);
            let _waiting = Counted::new(&self.0.permit_waiters);
            tokio::select! {
                permit = self.0.permits.clone().acquire_owned() => {
                    return permit.map_err(|_| Error::CacheClosed);
                }
                () = &mut dropped => {}
            }
        }
    }
}

/// Counts itself in `counter` while it lives (also when its future is cancelled).
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Counted<'a> {
        counter.fetch_add(1, Ordering::AcqRel);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod counted_tests {
    use super::*;

    #[test]
    fn counted_counts_while_alive() {
        let counter = AtomicUsize::new(0);
        {
            let _a = Counted::new(&counter);
            let _b = Counted::new(&counter);
            assert_eq!(counter.load(Ordering::Acquire), 2);
        }
        assert_eq!(counter.load(Ordering::Acquire), 0);
    }
}
