//! Background tasks: long-running loops (relay notifier, sequencer janitor, …) that live as
//! long as the server.
//!
//! Each implements [`BackgroundTask`]; a [`TaskRunner`] spawns them into one `JoinSet`,
//! logs any that fail or panic while the server runs, and on shutdown cancels their token,
//! waits a grace period, then aborts the stragglers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

/// A loop that runs beside the HTTP server. `run` must return soon after `shutdown` is
/// cancelled; returning early (with or without error) is reported, not restarted.
pub trait BackgroundTask: Send + Sync + 'static {
    /// A short stable name for logs.
    fn name(&self) -> &'static str;

    /// Runs until done or until `shutdown` is cancelled.
    fn run(
        self: Arc<Self>,
        shutdown: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// `run` returned `Ok`.
    Finished,
    /// `run` returned an error (its display chain).
    Failed(String),
    /// `run` panicked.
    Panicked,
    /// Still running after the shutdown grace period; aborted.
    Aborted,
}

/// A task's name and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskExit {
    pub name: &'static str,
    pub outcome: TaskOutcome,
}

/// Owns the running background tasks.
pub struct TaskRunner {
    set: JoinSet<anyhow::Result<()>>,
    names: HashMap<Id, &'static str>,
    shutdown: CancellationToken,
}

impl TaskRunner {
    /// Tasks spawned here are handed `shutdown` (cancel it to stop them).
    pub fn new(shutdown: CancellationToken) -> Self {
        TaskRunner {
            set: JoinSet::new(),
            names: HashMap::new(),
            shutdown,
        }
    }

    /// Starts `task` on the runtime.
    pub fn spawn<T: BackgroundTask>(&mut self, task: Arc<T>) {
        let name = task.name();
        let token = self.shutdown.clone();
        let handle = self.set.spawn(task.run(token));
        self.names.insert(handle.id(), name);
        tracing::debug!(task = name, "background task started");
    }

    /// How many tasks have not been reaped yet.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Watches the tasks until the shutdown token is cancelled, logging each one that ends
    /// early, then waits up to `grace` for the rest and aborts what remains. Returns every
    /// task's exit in the order they ended.
    pub async fn supervise(mut self, grace: Duration) -> Vec<TaskExit> {
        let mut exits = Vec::new();
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                joined = self.set.join_next_with_id(), if !self.set.is_empty() => {
                    if let Some(joined) = joined {
                        let exit = self.reap(joined);
                        log_early_exit(&exit);
                        exits.push(exit);
                    }
                }
            }
        }
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        while !self.set.is_empty() {
            tokio::select! {
                joined = self.set.join_next_with_id() => {
                    if let Some(joined) = joined {
                        let exit = self.reap(joined);
                        if exit.outcome != TaskOutcome::Finished {
                            tracing::error!(task = exit.name, outcome = ?exit.outcome, "background task failed during shutdown");
                        }
                        exits.push(exit);
                    }
                }
                () = &mut deadline => {
                    self.set.abort_all();
                    while let Some(joined) = self.set.join_next_with_id().await {
                        let exit = self.reap(joined);
                        if exit.outcome == TaskOutcome::Aborted {
                            tracing::warn!(task = exit.name, "background task ignored shutdown; aborted");
                        }
                        exits.push(exit);
                    }
                }
            }
        }
        exits
    }

    fn reap(
        &mut self,
        joined: Result<(Id, anyhow::Result<()>), tokio::task::JoinError>,
    ) -> TaskExit {
        let (id, outcome) = match joined {
            Ok((id, Ok(()))) => (id, TaskOutcome::Finished),
            Ok((id, Err(e))) => (id, TaskOutcome::Failed(format!("{e:#}"))),
            Err(e) if e.is_panic() => (e.id(), TaskOutcome::Panicked),
            Err(e) => (e.id(), TaskOutcome::Aborted),
        };
        TaskExit {
            name: self.names.remove(&id).unwrap_or("unknown"),
            outcome,
        }
    }
}

fn log_early_exit(exit: &TaskExit) {
    match &exit.outcome {
        TaskOutcome::Finished => {
            tracing::info!(task = exit.name, "background task finished");
        }
        TaskOutcome::Failed(error) => {
            tracing::error!(task = exit.name, %error, "background task failed");
        }
        TaskOutcome::Panicked => tracing::error!(task = exit.name, "background task panicked"),
        TaskOutcome::Aborted => tracing::error!(task = exit.name, "background task was aborted"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Behaves as told, counting how often it ran.
    struct Probe {
        name: &'static str,
        behaviour: Behaviour,
        runs: AtomicUsize,
    }

    enum Behaviour {
        WaitForShutdown,
        FailAtOnce,
        Panic,
        IgnoreShutdown,
    }

    impl BackgroundTask for Probe {
        fn name(&self) -> &'static str {
            self.name
        }

        async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            match self.behaviour {
                Behaviour::WaitForShutdown => {
                    shutdown.cancelled().await;
                    Ok(())
                }
                Behaviour::FailAtOnce => {
                    Err(anyhow::anyhow!("relay unreachable").context("notifying crawlers"))
                }
                Behaviour::Panic => panic!("probe panicked on purpose"),
                Behaviour::IgnoreShutdown => {
                    std::future::pending::<()>().await;
                    Ok(())
                }
            }
        }
    }

    fn probe(name: &'static str, behaviour: Behaviour) -> Arc<Probe> {
        Arc::new(Probe {
            name,
            behaviour,
            runs: AtomicUsize::new(0),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_reported_and_shutdown_stops_the_rest() {
        let token = CancellationToken::new();
        let mut runner = TaskRunner::new(token.clone());
        let waiter = probe("waiter", Behaviour::WaitForShutdown);
        let failing = probe("failing", Behaviour::FailAtOnce);
        let panicking = probe("panicking", Behaviour::Panic);
        let stubborn = probe("stubborn", Behaviour::IgnoreShutdown);
        runner.spawn(waiter.clone());
        runner.spawn(failing.clone());
        runner.spawn(panicking.clone());
        runner.spawn(stubborn.clone());
        assert_eq!(runner.len(), 4);

        let supervisor = tokio::spawn(runner.supervise(Duration::from_secs(5)));
        // Let the failing tasks end while the server "runs".
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!supervisor.is_finished());
        token.cancel();
        let mut exits = supervisor.await.unwrap();

        // The early failures were reaped before shutdown, the rest after.
        let early: Vec<_> = exits.drain(..2).collect();
        assert!(early.contains(&TaskExit {
            name: "failing",
            outcome: TaskOutcome::Failed("notifying crawlers: relay unreachable".into()),
        }));
        assert!(early.contains(&TaskExit {
            name: "panicking",
            outcome: TaskOutcome::Panicked,
        }));
        assert_eq!(
            exits,
            vec![
                TaskExit {
                    name: "waiter",
                    outcome: TaskOutcome::Finished
                },
                TaskExit {
                    name: "stubborn",
                    outcome: TaskOutcome::Aborted
                },
            ]
        );
        for p in [&waiter, &failing, &panicking, &stubborn] {
            assert_eq!(p.runs.load(Ordering::SeqCst), 1, "{}", p.name);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_tasks_waits_for_shutdown() {
        let token = CancellationToken::new();
        let runner = TaskRunner::new(token.clone());
        assert!(runner.is_empty());
        let supervisor = tokio::spawn(runner.supervise(Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!supervisor.is_finished());
        token.cancel();
        assert_eq!(supervisor.await.unwrap(), vec![]);
    }
}
