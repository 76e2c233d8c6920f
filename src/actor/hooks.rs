//! Commit hooks: features that react to repository writes (the hub index, say) register
//! with [`ActorRepo`] instead of wrapping the routes that write.
//!
//! For each [`ActorRepo::apply_writes`], every registered hook is asked (synchronously, at
//! the cost of a look at the writes) whether the writes concern it; a write that concerns
//! no hook pays nothing more. A hook it concerns gets [`CommitHook::before`] before the
//! commit, outside the account's writer lock — where it may refuse the write or make it
//! crash-safe (mark the account, say) — and [`CommitHook::after`] once the commit is
//! durable or has failed. `after` runs before the write is acknowledged, so it only hands
//! work off (to a task of its own) and returns.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use super::repo::{ActorRepo, RecordWrite};
use super::{Error, Result};
use crate::syntax::Did;

/// A future a hook returns.
pub type HookFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// Why a hook refused a write; the write fails with [`Error::Refused`] carrying it.
pub type Refusal = Box<dyn std::error::Error + Send + Sync>;
/// What a hook's `before` hands to its own `after` for the same write.
pub type Ticket = Box<dyn Any + Send>;

/// A feature that reacts to commits. See the module documentation.
pub trait CommitHook: Send + Sync + fmt::Debug {
    /// Whether `writes` to `did` concern this hook. Cheap and synchronous: it runs on
    /// every write.
    fn concerns(&self, did: &Did, writes: &[RecordWrite]) -> bool;

    /// Before the commit of writes it [`concerns`](Self::concerns): refuse them, or
    /// prepare, returning a ticket for [`after`](Self::after).
    fn before<'a>(
        &'a self,
        did: &'a Did,
        writes: &'a [RecordWrite],
    ) -> HookFuture<'a, std::result::Result<Ticket, Refusal>>;

    /// After the commit (`committed`) or its failure, with the ticket of `before`. Runs
    /// before the write is acknowledged: hand slow work off and return.
    fn after(&self, repo: &ActorRepo, did: &Did, ticket: Ticket, committed: bool);
}

/// The hooks registered with one [`ActorRepo`].
#[derive(Debug, Default)]
pub(super) struct CommitHooks(RwLock<Vec<Arc<dyn CommitHook>>>);

/// The hooks a write concerns, each with its ticket.
pub(super) type Prepared = Vec<(Arc<dyn CommitHook>, Ticket)>;

impl CommitHooks {
    pub(super) fn register(&self, hook: Arc<dyn CommitHook>) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).push(hook);
    }

    /// Runs `before` of every hook `writes` concern. If one refuses, those that accepted
    /// are told the write failed, and the refusal is returned.
    pub(super) async fn before(
        &self,
        repo: &ActorRepo,
        did: &Did,
        writes: &[RecordWrite],
    ) -> Result<Prepared> {
        let concerned: Vec<Arc<dyn CommitHook>> = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|hook| hook.concerns(did, writes))
            .cloned()
            .collect();
        let mut prepared = Vec::with_capacity(concerned.len());
        for hook in concerned {
            match hook.before(did, writes).await {
                Ok(ticket) => prepared.push((hook, ticket)),
                Err(refusal) => {
                    Self::after(repo, did, prepared, false);
                    return Err(Error::Refused(refusal));
                }
            }
        }
        Ok(prepared)
    }

    /// Runs `after` of every prepared hook.
    pub(super) fn after(repo: &ActorRepo, did: &Did, prepared: Prepared, committed: bool) {
        for (hook, ticket) in prepared {
            hook.after(repo, did, ticket, committed);
        }
    }
}
