//! Commit hooks: told only about the writes they concern, before and after the commit, and
//! able to refuse a write before anything is written.

use std::sync::{Arc, Mutex};

use super::*;
use crate::actor::hooks::{CommitHook, HookFuture, Refusal, Ticket};

const HOOKED: &str = "app.test.hooked";

/// Records what it is told; refuses records whose text is "refuse".
#[derive(Debug, Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
}

impl Recorder {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn text_of(w: &RecordWrite) -> Option<&str> {
    match &w.write {
        Write::Create { record, .. } | Write::Update { record, .. } => match record {
            Ipld::Map(map) => match map.get("text") {
                Some(Ipld::String(s)) => Some(s),
                _ => None,
            },
            _ => None,
        },
        Write::Delete { .. } => None,
    }
}

impl CommitHook for Recorder {
    fn concerns(&self, _did: &Did, writes: &[RecordWrite]) -> bool {
        writes.iter().any(|w| {
            let (Write::Create { collection, .. }
            | Write::Update { collection, .. }
            | Write::Delete { collection, .. }) = &w.write;
            collection.as_str() == HOOKED
        })
    }

    fn before<'a>(
        &'a self,
        did: &'a Did,
        writes: &'a [RecordWrite],
    ) -> HookFuture<'a, Result<Ticket, Refusal>> {
        Box::pin(async move {
            let refused = writes.iter().any(|w| text_of(w) == Some("refuse"));
            self.calls
                .lock()
                .unwrap()
                .push(format!("before {did} {}", writes.len()));
            if refused {
                return Err("refused by the test hook".into());
            }
            Ok(Box::new(writes.len()) as Ticket)
        })
    }

    fn after(&self, _repo: &ActorRepo, did: &Did, ticket: Ticket, committed: bool) {
        let n = ticket.downcast::<usize>().map_or(0, |n| *n);
        self.calls
            .lock()
            .unwrap()
            .push(format!("after {did} {n} {committed}"));
    }
}

#[tokio::test]
async fn hooks_see_only_their_writes_and_may_refuse_them() {
    let env = Env::new(4).await;
    let alice = did(1);
    env.account(&alice).await;
    let hook = Arc::new(Recorder::default());
    env.repo.register_hook(hook.clone());

    // Writes to other collections never reach the hook.
    let first = env
        .repo
        .apply_writes(&alice, vec![post_write("3kaaaaaaaaaa2", "plain")], None)
        .await
        .unwrap();
    assert!(hook.calls().is_empty(), "{:?}", hook.calls());

    // A write it concerns: before, then after with the commit done.
    let mixed = vec![
        post_write("3kaaaaaaaaab2", "plain"),
        create(HOOKED, "one", post("hooked")),
    ];
    env.repo.apply_writes(&alice, mixed, None).await.unwrap();
    assert_eq!(
        hook.calls(),
        [format!("before {alice} 2"), format!("after {alice} 2 true")]
    );

    // A refusal fails the write before anything is written; `after` is not called.
    let refused = env
        .repo
        .apply_writes(&alice, vec![create(HOOKED, "two", post("refuse"))], None)
        .await;
    assert!(matches!(refused, Err(Error::Refused(_))), "{refused:?}");
    let stored = env
        .repo
        .get_record(&alice, &nsid(HOOKED), &rkey("two"), None)
        .await
        .unwrap();
    assert!(stored.is_none());
    assert_eq!(hook.calls().len(), 3);
    assert_eq!(hook.calls()[2], format!("before {alice} 1"));

    // A commit that fails after the hook accepted it: `after` hears it failed.
    let stale = Some(first.cid);
    let failed = env
        .repo
        .apply_writes(&alice, vec![create(HOOKED, "three", post("x"))], stale)
        .await;
    assert!(matches!(failed, Err(Error::InvalidSwap(_))), "{failed:?}");
    assert_eq!(
        hook.calls()[3..],
        [
            format!("before {alice} 1"),
            format!("after {alice} 1 false")
        ]
    );
}
