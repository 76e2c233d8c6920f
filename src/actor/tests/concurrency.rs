use std::time::Duration;

use super::*;
use crate::sequencer::events::tests::decode_commit;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_one_account_are_serialised() {
    let env = Env::new(8).await;
    let alice = did(1);
    env.account(&alice).await;
    let initial = env.repo.current_root(&alice).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let repo = env.repo.clone();
            let alice = alice.clone();
            tokio::spawn(async move {
                let rk = format!("3kaaaaaaaaaa{}", char::from(b'a' + i as u8));
                repo.apply_writes(&alice, vec![post_write(&rk, &rk)], None)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut revs = Vec::new();
    for task in tasks {
        revs.push(task.await.unwrap().rev);
    }
    revs.sort();
    revs.dedup();
    assert_eq!(revs.len(), 20, "every writer got its own revision");
    assert_eq!(
        env.repo.current_root(&alice).await.unwrap().rev,
        *revs.last().unwrap()
    );
    let page = env
        .repo
        .list_records(&alice, &nsid("app.bsky.feed.post"), 100, None, false)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 20);

    // The firehose saw the commits in revision order, each following the previous one:
    // no write was lost or applied against a stale head.
    assert_eq!(env.commit_revs(&alice).await, revs);
    let mut since = initial.rev;
    for event in env.events().await {
        let commit = decode_commit(&event.event).await;
        assert_eq!(commit.since.as_deref(), Some(since.as_str()));
        assert!(commit.rev > since);
        since = commit.rev;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_different_accounts_do_not_wait_for_each_other() {
    let env = Env::new(16).await;
    let (alice, bob) = (did(1), did(2));
    env.account(&alice).await;
    env.account(&bob).await;

    // While alice's writer lock is held, bob writes; alice's write waits.
    let guard = env.repo.lock_writer(&alice).await;
    tokio::time::timeout(
        Duration::from_secs(10),
        env.repo
            .apply_writes(&bob, vec![post_write("3kaaaaaaaaaa2", "b")], None),
    )
    .await
    .expect("another account's write must not wait")
    .unwrap();
    let waiting = {
        let repo = env.repo.clone();
        let alice = alice.clone();
        tokio::spawn(async move {
            repo.apply_writes(&alice, vec![post_write("3kaaaaaaaaaa2", "a")], None)
                .await
        })
    };
    // Wait for the event itself: the write queued on alice's writer lock (guard + waiter).
    wait_until("alice's write is queued on her lock", || {
        env.repo.writer_lock_users(&alice) == 2
    })
    .await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!waiting.is_finished());
    drop(guard);
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_ten_accounts_overlap_in_time() {
    let env = Env::new(16).await;
    let dids: Vec<Did> = (0..10).map(did).collect();
    for d in &dids {
        env.account(d).await;
    }
    // Every account's writer lock is held while its first write starts: all ten writes are
    // in flight at once (each queued on its own account's lock, none on another's).
    let mut guards = Vec::new();
    for d in &dids {
        guards.push(env.repo.lock_writer(d).await);
    }
    let tasks: Vec<_> = dids
        .iter()
        .map(|d| {
            let repo = env.repo.clone();
            let d = d.clone();
            tokio::spawn(async move {
                for i in 0..5u8 {
                    let rk = format!("3kaaaaaaaaaa{}", char::from(b'a' + i));
                    repo.apply_writes(&d, vec![post_write(&rk, &rk)], None)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    wait_until("all ten first writes are queued", || {
        dids.iter().all(|d| env.repo.writer_lock_users(d) == 2)
    })
    .await;
    // Released together, the writes of the ten accounts go on concurrently.
    drop(guards);
    for task in tasks {
        task.await.unwrap();
    }
    for d in &dids {
        assert_eq!(env.commit_revs(d).await.len(), 5);
    }
    assert_eq!(env.events().await.len(), 50);
}

#[tokio::test]
async fn writer_locks_do_not_accumulate() {
    let env = Env::new(4).await;
    for i in 0..100 {
        let d = did(i);
        env.account(&d).await;
        env.repo
            .apply_writes(&d, vec![post_write("3kaaaaaaaaaa2", "x")], None)
            .await
            .unwrap();
    }
    assert!(env.repo.writer_locks() <= 64, "{}", env.repo.writer_locks());
    assert!(env.repo.stores().open_pools() <= 4);
}

/// A write is acknowledged once its commit is durable, before its events move to
/// `repo_seq`; while moves wait, later commits go on, and the events still arrive once each,
/// in commit order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_acknowledged_before_their_events_move_and_stay_in_order() {
    let env = Env::new(4).await;
    let alice = did(1);
    env.account(&alice).await;
    let handle = env.repo.open_required(&alice).await.unwrap();
    let moving = handle.outbox().publishing.lock().await;
    let mut revs = Vec::new();
    for i in 0..5 {
        let rkey = format!("3kaaaaaaaaa{}2", (b'a' + i) as char);
        let written = env
            .repo
            .apply_writes(&alice, vec![post_write(&rkey, "held")], None)
            .await
            .unwrap();
        revs.push(written.rev);
    }
    // Read directly: `env.events()` waits for the moves, which wait for the held lock.
    let seq = env.sequencer().events_after(0, 100).await.unwrap();
    assert!(
        seq.is_empty(),
        "{} events moved past the held lock",
        seq.len()
    );
    drop(moving);
    assert_eq!(env.commit_revs(&alice).await, revs);
    // Nothing is left in the outbox for recovery to move twice.
    env.repo.moves_settled().await;
    let report = env.repo.recover().await.unwrap();
    assert_eq!(report.moved, 0, "{report:?}");
    assert_eq!(env.commit_revs(&alice).await, revs);
}
