//! The sequencer's background tasks: the firehose broadcaster and the pruning of events
//! older than the backfill window.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Firehose, Sequencer};
use crate::server::tasks::BackgroundTask;

/// How often old events are pruned.
pub(crate) const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// Events deleted per transaction while pruning, so writers wait only briefly.
pub(crate) const PRUNE_BATCH: u32 = 5_000;

/// Runs [`Firehose::run_broadcaster`].
pub(crate) struct FirehoseBroadcaster(pub Firehose);

impl BackgroundTask for FirehoseBroadcaster {
    fn name(&self) -> &'static str {
        "firehose-broadcaster"
    }

    async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.0.run_broadcaster(shutdown).await?;
        Ok(())
    }
}

/// Deletes the events sequenced longer ago than `window`, at start and every
/// [`PRUNE_INTERVAL`]. Failures are logged and retried at the next interval.
pub(crate) struct SeqPruner {
    pub sequencer: Sequencer,
    pub window: Duration,
}

impl BackgroundTask for SeqPruner {
    fn name(&self) -> &'static str {
        "sequencer-pruner"
    }

    async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            match self
                .sequencer
                .prune_older_than(self.window, PRUNE_BATCH)
                .await
            {
                Ok(0) => {}
                Ok(deleted) => tracing::debug!(deleted, "pruned old firehose events"),
                Err(err) => tracing::warn!(error = %err, "pruning old firehose events failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(PRUNE_INTERVAL) => {}
            }
        }
    }
}
