//! Crash points of the outbox protocol (see `crate::sequencer`): the service is dropped
//! between steps, a fresh one opens the same files, and recovery must leave exactly one
//! `repo_seq` event per commit, in commit order.

use super::*;

/// The last step done before the simulated crash.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// After (a): the account is pending, nothing else happened.
    Pending,
    /// After (b): commit and event durable in the actor store only.
    Committed,
    /// After (c): event in `repo_seq`, still in the outbox.
    Moved,
    /// After (d): outbox emptied, account still pending.
    Pruned,
}

/// Runs one write for `d` up to `stop`. Returns the commit's revision, if one was made.
async fn write_until(env: &Env, d: &Did, rk: &str, stop: Stop) -> Option<String> {
    let _writer = env.repo.lock_writer(d).await;
    let handle = env.repo.open_required(d).await.unwrap();
    if let Stop::Pending = stop {
        env.sequencer().mark_pending(d.as_str()).await.unwrap();
        return None;
    }
    let result = env
        .repo
        .commit_writes(&handle, vec![post_write(rk, rk)], None, false)
        .await
        .unwrap();
    if matches!(stop, Stop::Moved | Stop::Pruned) {
        assert_eq!(env.repo.publish(&handle).await.unwrap(), 1);
    }
    if let Stop::Pruned = stop {
        assert!(env.repo.prune(&handle).await.unwrap() >= 1);
    }
    Some(result.rev)
}

/// A write through every step: committed, acknowledged and moved to `repo_seq`.
async fn full_write(env: &Env, d: &Did, rk: &str) -> String {
    let rev = env
        .repo
        .apply_writes(d, vec![post_write(rk, rk)], None)
        .await
        .unwrap()
        .rev;
    env.repo.moves_settled().await;
    rev
}

/// `repo_seq` holds each of `revs` exactly once, as `#commit` events in this order, with
/// increasing `seq`.
async fn assert_sequenced(env: &Env, d: &Did, revs: &[String]) {
    assert_eq!(env.commit_revs(d).await, revs);
    let seqs: Vec<i64> = env.events().await.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

async fn crash_and_recover(stop: Stop) {
    let mut env = Env::new(4).await;
    let alice = did(1);
    env.account(&alice).await;
    let mut revs = vec![
        full_write(&env, &alice, "3kaaaaaaaaaa2").await,
        full_write(&env, &alice, "3kaaaaaaaaab2").await,
    ];
    revs.extend(write_until(&env, &alice, "3kaaaaaaaaac2", stop).await);

    env.restart().await;
    assert_eq!(
        env.sequencer().pending_dids().await.unwrap(),
        vec![alice.to_string()],
        "{stop:?}"
    );
    let report = env.repo.recover().await.unwrap();
    let moved = u64::from(matches!(stop, Stop::Committed));
    assert_eq!(
        report,
        RecoveryReport {
            visited: 1,
            moved,
            cleared: 1,
            failed: 0
        },
        "{stop:?}"
    );
    assert_sequenced(&env, &alice, &revs).await;
    assert_eq!(env.outbox_len(&alice).await, 0, "{stop:?}");
    assert!(env.sequencer().pending_dids().await.unwrap().is_empty());

    // Recovering again changes nothing; the next write continues the sequence.
    assert_eq!(env.repo.recover().await.unwrap(), RecoveryReport::default());
    revs.push(full_write(&env, &alice, "3kaaaaaaaaad2").await);
    assert_sequenced(&env, &alice, &revs).await;
    // The write marked the account pending again; recovery clears it.
    let report = env.repo.recover().await.unwrap();
    assert_eq!((report.visited, report.moved, report.cleared), (1, 0, 1));
    assert_sequenced(&env, &alice, &revs).await;
    assert_eq!(env.outbox_len(&alice).await, 0);
}

#[tokio::test]
async fn crash_after_marking_pending() {
    crash_and_recover(Stop::Pending).await;
}

#[tokio::test]
async fn crash_after_commit() {
    crash_and_recover(Stop::Committed).await;
}

#[tokio::test]
async fn crash_after_move() {
    crash_and_recover(Stop::Moved).await;
}

#[tokio::test]
async fn crash_after_prune() {
    crash_and_recover(Stop::Pruned).await;
}

/// Without recovery, the account's next write moves the leftover event first.
#[tokio::test]
async fn next_write_moves_leftovers_in_order() {
    let mut env = Env::new(4).await;
    let alice = did(1);
    env.account(&alice).await;
    let mut revs = vec![full_write(&env, &alice, "3kaaaaaaaaaa2").await];
    revs.extend(write_until(&env, &alice, "3kaaaaaaaaab2", Stop::Committed).await);
    revs.extend(write_until(&env, &alice, "3kaaaaaaaaac2", Stop::Committed).await);
    env.restart().await;
    assert_sequenced(&env, &alice, &revs[..1]).await;
    revs.push(full_write(&env, &alice, "3kaaaaaaaaad2").await);
    assert_sequenced(&env, &alice, &revs).await;
    let report = env.repo.recover().await.unwrap();
    assert_eq!((report.visited, report.moved, report.cleared), (1, 0, 1));
    assert_sequenced(&env, &alice, &revs).await;
}

/// A moved-but-undeleted event is never moved twice, even after many restarts.
#[tokio::test]
async fn repeated_crashes_after_move_duplicate_nothing() {
    let mut env = Env::new(4).await;
    let alice = did(1);
    env.account(&alice).await;
    let mut revs = Vec::new();
    for i in 0..3u8 {
        let rk = format!("3kaaaaaaaaaa{}", char::from(b'a' + i));
        revs.extend(write_until(&env, &alice, &rk, Stop::Moved).await);
        env.restart().await;
    }
    assert_sequenced(&env, &alice, &revs).await;
    assert_eq!(env.outbox_len(&alice).await, 3);
    let report = env.repo.recover().await.unwrap();
    assert_eq!((report.moved, report.cleared), (0, 1));
    assert_eq!(env.outbox_len(&alice).await, 0);
    assert_sequenced(&env, &alice, &revs).await;
}

/// Recovery visits only pending accounts, and clears accounts whose store is gone.
#[tokio::test]
async fn recovery_visits_only_pending_accounts() {
    let mut env = Env::new(4).await;
    let (alice, bob, carol) = (did(1), did(2), did(3));
    for d in [&alice, &bob, &carol] {
        env.account(d).await;
    }
    let a = write_until(&env, &alice, "3kaaaaaaaaaa2", Stop::Committed).await;
    // Bob never wrote: not pending. Carol is pending but her store is deleted behind our back.
    env.sequencer().mark_pending(carol.as_str()).await.unwrap();
    std::fs::remove_dir_all(env.repo.stores().dir(&carol)).unwrap();
    env.restart().await;
    let report = env.repo.recover().await.unwrap();
    assert_eq!(
        report,
        RecoveryReport {
            visited: 2,
            moved: 1,
            cleared: 2,
            failed: 0
        }
    );
    assert_sequenced(&env, &alice, &[a.unwrap()]).await;
    assert!(env.events().await.iter().all(|e| e.did == alice.as_str()));
}

/// Direct events written through the service follow the account's leftover commits.
#[tokio::test]
async fn account_and_identity_events_follow_leftover_commits() {
    let env = Env::new(4).await;
    let alice = did(1);
    env.account(&alice).await;
    let rev = write_until(&env, &alice, "3kaaaaaaaaaa2", Stop::Committed)
        .await
        .unwrap();
    let account_seq = env
        .repo
        .sequence_account(&alice, false, Some("deactivated"))
        .await
        .unwrap();
    let identity_seq = env
        .repo
        .sequence_identity(&alice, Some(&handle("alice.test")))
        .await
        .unwrap();
    let kinds: Vec<(i64, String, Option<String>)> = env
        .events()
        .await
        .into_iter()
        .map(|e| (e.seq, e.event_type, e.rev))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, "commit".to_owned(), Some(rev)),
            (account_seq, "account".to_owned(), None),
            (identity_seq, "identity".to_owned(), None),
        ]
    );
    assert_eq!((account_seq, identity_seq), (2, 3));
    // An account without a store (deleted) still gets its events.
    env.repo.destroy_repo(&alice).await.unwrap();
    let seq = env
        .repo
        .sequence_account(&alice, false, Some("deleted"))
        .await
        .unwrap();
    assert_eq!(seq, 4);
}
