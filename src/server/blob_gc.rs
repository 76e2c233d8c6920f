//! The blob garbage collector as a [`BackgroundTask`]: every few minutes, one pass of
//! [`ActorRepo::collect_blob_garbage`] with the configured grace period.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::tasks::BackgroundTask;
use crate::actor::{ActorRepo, BlobGcReport};

/// Longest pause between two passes.
pub const MAX_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Deletes uploads that no record referenced within the grace period.
pub struct BlobGc {
    repo: ActorRepo,
    grace: Duration,
    interval: Duration,
}

impl BlobGc {
    /// A collector with grace period `grace`, passing every `grace / 6` (between one second
    /// and [`MAX_INTERVAL`]).
    pub fn new(repo: ActorRepo, grace: Duration) -> Self {
        let interval = (grace / 6).clamp(Duration::from_secs(1), MAX_INTERVAL);
        BlobGc {
            repo,
            grace,
            interval,
        }
    }

    /// One pass (what the task runs each interval).
    pub async fn step(&self) -> Result<BlobGcReport, crate::actor::Error> {
        self.repo.collect_blob_garbage(self.grace).await
    }
}

impl BackgroundTask for BlobGc {
    fn name(&self) -> &'static str {
        "blob-gc"
    }

    async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.interval) => {}
            }
            match self.step().await {
                Ok(report) if report != BlobGcReport::default() => {
                    tracing::info!(?report, "blob garbage collection");
                }
                Ok(_) => {}
                // A failing pass (store unreachable…) is retried at the next interval.
                Err(err) => tracing::warn!(error = %err, "blob garbage collection failed"),
            }
        }
    }
}
