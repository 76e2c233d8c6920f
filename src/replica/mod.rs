//! Continuous replication of every SQLite database to an S3-compatible bucket, and the
//! restore from it. The design, the recovery point objective and the object layout are in
//! `docs/replication.md`.
//!
//! The replicator reads the database *files* (see [`image`]); writers only tell it, through
//! [`crate::store::changes::DbChangeHook`], that a store was opened or committed to.

pub mod bucket;
mod image;
mod restore;
mod segment;
mod ship;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

pub use bucket::Bucket;
pub(crate) use restore::announce_restored;
pub use restore::{Generation, RestoreReport, list_generations, prune, restore, restore_if_empty};
pub use segment::SegmentError;

use crate::config::ReplicaConfig;
use crate::store::changes::DbChangeHook;

/// The databases at the top of the data directory, in the order a cycle reads them: the
/// sequencer first (see "Consistency across databases" in `docs/replication.md`).
pub(crate) const FIXED_DATABASES: [&str; 4] = [
    "sequencer.sqlite",
    "account.sqlite",
    "hub.sqlite",
    "plc.sqlite",
];
/// Local working directory of the replicator, under the data directory.
pub(crate) const WORK_DIR: &str = ".replica";
/// Key (under the prefix) of the sequencer's lease.
pub(crate) const SEQ_LEASE_KEY: &str = "seq-lease";
/// The lease is raised to `seq + SEQ_LEASE` when it is less than `SEQ_LEASE / 2` ahead.
pub(crate) const SEQ_LEASE: i64 = 100_000;
/// Databases read and uploaded at once.
pub(crate) const UPLOAD_CONCURRENCY: usize = 8;
/// An actor store is looked at for this long after it was last opened.
pub(crate) const WATCH_TIME: Duration = Duration::from_secs(120);
/// The page hashes of a database unchanged for this long are dropped.
pub(crate) const STATE_IDLE: Duration = Duration::from_secs(600);

/// Why replication or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bucket {operation}: {detail}")]
    Bucket {
        operation: &'static str,
        detail: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Sqlite { path: PathBuf, source: sqlx::Error },
    #[error("segment {key}: {source}")]
    Segment { key: String, source: SegmentError },
    #[error("restore: {0}")]
    Restore(String),
    #[error("verification of {path} failed: {reason}")]
    Verify { path: PathBuf, reason: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Replication counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct ReplicaStats {
    pub uploaded_bytes: AtomicU64,
    pub segments: AtomicU64,
    pub failures: AtomicU64,
    pub cycles: AtomicU64,
    /// When the oldest change not yet in the bucket was first seen failing (ms), 0 if none.
    unclean_since_ms: AtomicU64,
}

impl ReplicaStats {
    /// Seconds since the oldest change not yet in the bucket was first attempted; 0 when
    /// the replica is caught up.
    pub fn lag_seconds(&self) -> f64 {
        match self.unclean_since_ms.load(Ordering::Acquire) {
            0 => 0.0,
            since => now_ms().saturating_sub(since) as f64 / 1000.0,
        }
    }
}

/// The replicator: a [`DbChangeHook`] for the stores and a background task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Replicator(Arc<Shared>);

#[derive(Debug)]
pub(crate) struct Shared {
    pub data: PathBuf,
    pub config: ReplicaConfig,
    pub bucket: Bucket,
    /// Actor stores recently opened, with when.
    pub watched: Mutex<HashMap<PathBuf, Instant>>,
    pub wake: Notify,
    /// Id of the last cycle started.
    pub cycle_started: AtomicU64,
    /// Id of the last cycle that shipped everything it found changed.
    pub clean_through: watch::Sender<u64>,
    pub stats: ReplicaStats,
}

impl Replicator {
    /// A replicator for the databases under `data`, shipping to `config`'s bucket.
    pub async fn new(data: &Path, config: &ReplicaConfig) -> Replicator {
        Replicator::with_bucket(data, config, Bucket::new(config).await)
    }

    pub fn with_bucket(data: &Path, config: &ReplicaConfig, bucket: Bucket) -> Replicator {
        Replicator(Arc::new(Shared {
            data: data.to_owned(),
            config: config.clone(),
            bucket,
            watched: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            cycle_started: AtomicU64::new(0),
            clean_through: watch::Sender::new(0),
            stats: ReplicaStats::default(),
        }))
    }

    pub fn stats(&self) -> &ReplicaStats {
        &self.0.stats
    }

    pub fn bucket(&self) -> &Bucket {
        &self.0.bucket
    }

    /// Waits until a cycle that starts after this call has shipped everything it found
    /// changed, or `timeout` passes. Returns whether it did.
    pub async fn sync(&self, timeout: Duration) -> bool {
        let need = self.0.cycle_started.load(Ordering::Acquire) + 1;
        let mut rx = self.0.clean_through.subscribe();
        self.0.wake.notify_one();
        tokio::time::timeout(timeout, rx.wait_for(|done| *done >= need))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Ships every database now as a fresh generation (a new base snapshot), then returns.
    pub async fn snapshot_all(&self) -> Result<ship::CycleReport, Error> {
        let mut shipper = ship::Shipper::new(self.0.clone());
        shipper.watch_all_stores()?;
        shipper.cycle().await
    }

    /// Runs the replication loop until `shutdown`, then ships a last time.
    pub async fn run(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut shipper = ship::Shipper::new(self.0.clone());
        shipper.watch_changed_since_clean()?;
        let mut backoff = Duration::ZERO;
        let mut last_prune = Instant::now();
        loop {
            let wait = self.0.config.interval.max(backoff);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
                () = self.0.wake.notified(), if backoff.is_zero() => {}
            }
            match shipper.cycle().await {
                Ok(report) if report.failed == 0 => backoff = Duration::ZERO,
                Ok(report) => {
                    tracing::warn!(failed = report.failed, "replication cycle incomplete");
                    backoff =
                        (backoff * 2).clamp(Duration::from_millis(500), Duration::from_secs(30));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "replication cycle failed");
                    backoff =
                        (backoff * 2).clamp(Duration::from_millis(500), Duration::from_secs(30));
                }
            }
            if last_prune.elapsed() > Duration::from_secs(3600) {
                last_prune = Instant::now();
                if let Err(err) = restore::prune(&self.0.bucket, self.0.config.retention).await {
                    tracing::warn!(error = %err, "pruning old replica generations failed");
                }
            }
        }
        // SIGTERM (a Cloudflare container being stopped): flush what changed last.
        match shipper.cycle().await {
            Ok(report) => tracing::info!(uploaded = report.uploaded, "replica flushed at shutdown"),
            Err(err) => tracing::warn!(error = %err, "replica flush at shutdown failed"),
        }
        Ok(())
    }
}

impl DbChangeHook for Replicator {
    fn opened(&self, path: &Path) {
        self.0
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_owned(), Instant::now());
    }

    fn committed(&self, path: &Path) -> BoxFuture<'static, ()> {
        self.opened(path);
        if !self.0.config.strict {
            return futures::future::ready(()).boxed();
        }
        let this = self.clone();
        let path = path.to_owned();
        async move {
            let timeout = this.0.config.strict_timeout;
            if !this.sync(timeout).await {
                tracing::warn!(
                    path = %path.display(),
                    "strict replication: the write is not in the bucket after {timeout:?}; \
                     acknowledged anyway"
                );
            }
        }
        .boxed()
    }
}

/// The background task running [`Replicator::run`].
pub struct ReplicaTask(pub Replicator);

impl crate::server::tasks::BackgroundTask for ReplicaTask {
    fn name(&self) -> &'static str {
        "replica"
    }

    async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.0.run(shutdown).await
    }
}
