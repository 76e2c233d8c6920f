//! Group commit: writes that arrive while a transaction is being written share the next
//! transaction, and so its fsync.
//!
//! Each caller queues its request, then waits for the leader lock. Whoever holds it takes
//! every queued request, writes them all in one transaction (in queue order) and answers
//! each before releasing the lock; a caller that gets the lock and finds its answer already
//! there returns it. Nobody is answered before the transaction holding its request has
//! committed, so durability is that of the database's own commits.
//!
//! If the shared transaction fails, or its leader is cancelled, each of its requests is
//! answered `None` and its caller writes alone (the writes must be idempotent), so one
//! request's failure is not another's.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

type Queued<R, O> = (R, oneshot::Sender<Option<O>>);

pub(crate) struct GroupCommit<R, O> {
    /// What the group writes, for the log.
    what: &'static str,
    queue: Mutex<Vec<Queued<R, O>>>,
    leader: tokio::sync::Mutex<()>,
}

impl<R, O> fmt::Debug for GroupCommit<R, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommit")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

impl<R, O> GroupCommit<R, O> {
    pub(crate) fn new(what: &'static str) -> Self {
        GroupCommit {
            what,
            queue: Mutex::new(Vec::new()),
            leader: tokio::sync::Mutex::new(()),
        }
    }

    /// Writes `request` together with whatever else is queued: `write` gets every request
    /// of the batch and returns one output per request, in order, once committed.
    /// `None`: the shared transaction did not commit; write alone.
    pub(crate) async fn submit<F, Fut, E>(&self, request: R, write: F) -> Option<O>
    where
        F: FnOnce(Vec<R>) -> Fut,
        Fut: Future<Output = Result<Vec<O>, E>>,
        E: fmt::Display,
    {
        let (reply, mut answer) = oneshot::channel();
        self.queue
            .lock()
            .expect("not poisoned")
            .push((request, reply));
        let _leader = self.leader.lock().await;
        match answer.try_recv() {
            Ok(done) => return done,
            // A leader took the request and was cancelled before answering.
            Err(oneshot::error::TryRecvError::Closed) => return None,
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let batch = std::mem::take(&mut *self.queue.lock().expect("not poisoned"));
        let (requests, replies): (Vec<R>, Vec<_>) = batch.into_iter().unzip();
        let n = requests.len();
        match write(requests).await {
            Ok(outputs) if outputs.len() == n => {
                for (reply, output) in replies.into_iter().zip(outputs) {
                    let _ = reply.send(Some(output));
                }
            }
            Ok(outputs) => {
                tracing::error!(
                    what = self.what,
                    requests = n,
                    outputs = outputs.len(),
                    "group commit answered the wrong number of requests"
                );
                for reply in replies {
                    let _ = reply.send(None);
                }
            }
            Err(err) => {
                tracing::warn!(what = self.what, error = %err, "group commit failed; each request is retried alone");
                for reply in replies {
                    let _ = reply.send(None);
                }
            }
        }
        answer.try_recv().ok().flatten()
    }

    /// Requests waiting for a leader.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.queue.lock().expect("not poisoned").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_queued_during_a_commit_share_the_next_one() {
        let group = Arc::new(GroupCommit::<u32, u32>::new("test"));
        let batches = Arc::new(Mutex::new(Vec::new()));
        let write = |batches: Arc<Mutex<Vec<Vec<u32>>>>, group: Arc<GroupCommit<u32, u32>>| {
            move |requests: Vec<u32>| async move {
                let first = {
                    let mut seen = batches.lock().unwrap();
                    seen.push(requests.clone());
                    seen.len() == 1
                };
                // The first commit lasts until the 31 others are queued behind it.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                while first && group.queued() < 31 {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "requests never queued"
                    );
                    tokio::task::yield_now().await;
                }
                Ok::<_, String>(requests.iter().map(|r| r * 10).collect())
            }
        };
        let first = {
            let (group, batches) = (group.clone(), batches.clone());
            let w = write(batches.clone(), group.clone());
            tokio::spawn(async move { group.submit(0, w).await })
        };
        while batches.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let mut tasks = vec![first];
        for i in 1..32u32 {
            let (group, batches) = (group.clone(), batches.clone());
            let w = write(batches, group.clone());
            tasks.push(tokio::spawn(async move { group.submit(i, w).await }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), Some(i as u32 * 10));
        }
        let batches = batches.lock().unwrap();
        assert_eq!(batches.len(), 2, "{batches:?}");
        assert_eq!(batches[0], vec![0]);
        let mut second = batches[1].clone();
        second.sort_unstable();
        assert_eq!(second, (1..32).collect::<Vec<u32>>());
    }

    #[tokio::test]
    async fn a_failed_batch_tells_every_request_to_write_alone() {
        let group = GroupCommit::<u32, u32>::new("test");
        let out = group
            .submit(1, |_| async { Err::<Vec<u32>, _>("disk full") })
            .await;
        assert_eq!(out, None);
        let out = group
            .submit(
                2,
                |r: Vec<u32>| async move { Ok::<_, String>(vec![r[0]; 2]) },
            )
            .await;
        assert_eq!(out, None, "a wrong number of answers is a failure too");
        let out = group
            .submit(3, |r: Vec<u32>| async move { Ok::<_, String>(r) })
            .await;
        assert_eq!(out, Some(3));
    }
}
