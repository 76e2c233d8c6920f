use super::*;
use crate::sequencer::frame::parse;

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const DEADLINE: Duration = Duration::from_secs(30);

struct Env {
    _dir: tempfile::TempDir,
    sequencer: Sequencer,
    firehose: Firehose,
    shutdown: CancellationToken,
    broadcaster: tokio::task::JoinHandle<()>,
}

async fn env(buffer: usize, window: Duration) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let sequencer = Sequencer::open_in(dir.path()).await.unwrap();
    let firehose = Firehose::new(
        sequencer.clone(),
        FirehoseSettings {
            buffer,
            backfill_window: window,
            ping_interval: Duration::from_secs(30),
        },
    );
    let shutdown = CancellationToken::new();
    let broadcaster = {
        let firehose = firehose.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { firehose.run_broadcaster(shutdown).await.unwrap() })
    };
    until(|| firehose.published_through().is_some()).await;
    Env {
        _dir: dir,
        sequencer,
        firehose,
        shutdown,
        broadcaster,
    }
}

async fn append(sequencer: &Sequencer, n: usize) -> Vec<i64> {
    let mut seqs = Vec::with_capacity(n);
    for _ in 0..n {
        seqs.push(sequencer.sequence_identity(DID, None).await.unwrap());
    }
    seqs
}

fn stream(opened: Opened) -> Subscription {
    match opened {
        Opened::Stream(s) => s,
        Opened::Future { latest } => panic!("unexpected FutureCursor (latest {latest})"),
    }
}

/// The next frame's `(t, seq)` within the deadline.
async fn next_frame(sub: &mut Subscription) -> (String, Option<i64>) {
    let next = tokio::time::timeout(DEADLINE, sub.next())
        .await
        .expect("a frame within the deadline")
        .unwrap();
    let Next::Frame(bytes) = next else {
        panic!("expected a frame, got {next:?}")
    };
    let parsed = parse(&bytes).unwrap();
    let seq = parsed.seq();
    (parsed.t.unwrap_or_default(), seq)
}

/// Waits until `f` holds (the broadcaster works asynchronously).
async fn until(mut f: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "condition not reached in time");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_then_live_under_concurrent_writes_has_no_gap_or_repeat() {
    let env = env(10_000, DAY).await;
    // A backlog longer than several pages, then writes running during the replay.
    append(&env.sequencer, 450).await;
    let writer = {
        let sequencer = env.sequencer.clone();
        tokio::spawn(async move { append(&sequencer, 400).await })
    };
    let mut sub = stream(env.firehose.open(Some(17)).await.unwrap());
    let mut seen = Vec::new();
    let written = writer.await.unwrap();
    let last = *written.last().unwrap();
    while seen.last() != Some(&last) {
        let (t, seq) = next_frame(&mut sub).await;
        assert_eq!(t, "#identity");
        seen.push(seq.unwrap());
    }
    assert_eq!(seen, (18..=850).collect::<Vec<i64>>());
    assert_eq!(env.firehose.live_subscribers(), 1);
    // Later events arrive live.
    let more = append(&env.sequencer, 3).await;
    for seq in more {
        assert_eq!(next_frame(&mut sub).await.1, Some(seq));
    }
    assert_eq!(env.sequencer.subscriber_count(), 1);
    drop(sub);
    assert_eq!(env.sequencer.subscriber_count(), 0);
    assert_eq!(env.firehose.live_subscribers(), 0);
}

#[tokio::test]
async fn live_only_without_cursor_and_close_on_shutdown() {
    let env = env(100, DAY).await;
    append(&env.sequencer, 5).await;
    let mut sub = stream(env.firehose.open(None).await.unwrap());
    let seqs = append(&env.sequencer, 2).await;
    assert_eq!(seqs, vec![6, 7]);
    assert_eq!(next_frame(&mut sub).await.1, Some(6));
    assert_eq!(next_frame(&mut sub).await.1, Some(7));
    env.shutdown.cancel();
    env.broadcaster.await.unwrap();
    assert_eq!(sub.next().await.unwrap(), Next::Closed);
    // Nothing can subscribe live any more.
    let mut late = stream(env.firehose.open(None).await.unwrap());
    assert_eq!(late.next().await.unwrap(), Next::Closed);
}

#[tokio::test]
async fn future_cursor() {
    let env = env(100, DAY).await;
    assert!(matches!(
        env.firehose.open(Some(1)).await.unwrap(),
        Opened::Future { latest: 0 }
    ));
    // Cursor 0 on an empty log is the present, not the future.
    drop(stream(env.firehose.open(Some(0)).await.unwrap()));
    append(&env.sequencer, 3).await;
    assert!(matches!(
        env.firehose.open(Some(4)).await.unwrap(),
        Opened::Future { latest: 3 }
    ));
    let mut sub = stream(env.firehose.open(Some(3)).await.unwrap());
    append(&env.sequencer, 1).await;
    assert_eq!(next_frame(&mut sub).await.1, Some(4));
}

/// Backdates events so they fall outside the window.
async fn backdate(sequencer: &Sequencer, through: i64) {
    sqlx::query("UPDATE repo_seq SET sequencedAt = '2020-01-01T00:00:00.000Z' WHERE seq <= ?1")
        .bind(through)
        .execute(sequencer.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn outdated_cursor_replays_from_the_window_start() {
    let env = env(100, Duration::from_secs(3600)).await;
    append(&env.sequencer, 10).await;
    backdate(&env.sequencer, 6).await;
    let mut sub = stream(env.firehose.open(Some(2)).await.unwrap());
    let first = sub.next().await.unwrap();
    let Next::Frame(bytes) = first else { panic!() };
    let info = parse(&bytes).unwrap();
    assert_eq!((info.op, info.t.as_deref()), (1, Some("#info")));
    assert_eq!(info.text("name"), Some("OutdatedCursor"));
    assert_eq!(info.seq(), None);
    for seq in 7..=10 {
        assert_eq!(next_frame(&mut sub).await.1, Some(seq));
    }
    // A cursor whose next event is inside the window is not outdated.
    let mut sub = stream(env.firehose.open(Some(6)).await.unwrap());
    assert_eq!(
        next_frame(&mut sub).await,
        ("#identity".to_owned(), Some(7))
    );
}

#[tokio::test]
async fn pruning_marks_cursors_outdated_and_never_resets_seq() {
    let dir = tempfile::tempdir().unwrap();
    {
        let sequencer = Sequencer::open_in(dir.path()).await.unwrap();
        append(&sequencer, 20).await;
        backdate(&sequencer, 15).await;
        assert_eq!(sequencer.prune_older_than(DAY, 4).await.unwrap(), 15);
        assert_eq!(sequencer.events_after(0, 100).await.unwrap()[0].seq, 16);
        // Pruning a second time finds nothing.
        assert_eq!(sequencer.prune_older_than(DAY, 4).await.unwrap(), 0);
        let firehose = Firehose::new(
            sequencer.clone(),
            FirehoseSettings {
                buffer: 10,
                backfill_window: DAY,
                ping_interval: Duration::from_secs(30),
            },
        );
        // Event 4 was pruned: cursor 3 is outdated although event 16 is recent.
        let mut sub = stream(firehose.open(Some(3)).await.unwrap());
        let (t, _) = next_frame(&mut sub).await;
        assert_eq!(t, "#info");
        assert_eq!(next_frame(&mut sub).await.1, Some(16));
        // Everything goes; the counter stays.
        backdate(&sequencer, 20).await;
        assert_eq!(sequencer.prune_older_than(DAY, 1000).await.unwrap(), 5);
        assert!(sequencer.events_after(0, 100).await.unwrap().is_empty());
        assert_eq!(sequencer.latest_seq().await.unwrap(), Some(20));
        // A cursor at the latest seq is not in the future.
        assert!(matches!(
            firehose.open(Some(20)).await.unwrap(),
            Opened::Stream(_)
        ));
    }
    // Reopened: numbering continues after the highest ever handed out.
    let sequencer = Sequencer::open_in(dir.path()).await.unwrap();
    assert_eq!(sequencer.latest_seq().await.unwrap(), Some(20));
    assert_eq!(append(&sequencer, 2).await, vec![21, 22]);
}

#[tokio::test]
async fn a_full_queue_drops_the_subscriber_as_too_slow() {
    let env = env(3, DAY).await;
    let mut slow = stream(env.firehose.open(None).await.unwrap());
    let mut fast = stream(env.firehose.open(None).await.unwrap());
    let too_slow = slow.too_slow().clone();
    let mut fast_seen = Vec::new();
    for _ in 0..10 {
        // The fast reader keeps up, one event at a time.
        let seq = append(&env.sequencer, 1).await[0];
        assert_eq!(next_frame(&mut fast).await.1, Some(seq));
        fast_seen.push(seq);
        if seq == 3 {
            // The slow reader lags by its whole buffer; the fast one by nothing.
            let stats = env.firehose.stats();
            assert_eq!((stats.live, stats.max_queued, stats.queued), (2, 3, 3));
            assert_eq!(
                (stats.published_seq, stats.frames, stats.too_slow),
                (3, 3, 0)
            );
        }
        if seq == 4 {
            // 3 queued frames fill the slow queue; the 4th overflows it.
            until(|| too_slow.is_cancelled()).await;
        }
    }
    assert_eq!(fast_seen, (1..=10).collect::<Vec<i64>>());
    assert!(!fast.too_slow().is_cancelled());
    assert_eq!(env.firehose.live_subscribers(), 1);
    // The slow reader is told at once, without draining its queue first.
    assert_eq!(slow.next().await.unwrap(), Next::TooSlow);
    assert_eq!(env.sequencer.subscriber_count(), 2);
    drop(slow);
    assert_eq!(env.sequencer.subscriber_count(), 1);
    let stats = env.firehose.stats();
    assert_eq!((stats.live, stats.too_slow, stats.ended), (1, 1, 1));
    assert_eq!((stats.published_seq, stats.frames), (10, 10));
}

#[tokio::test]
async fn invalidated_and_deleted_events_are_skipped() {
    let env = env(100, DAY).await;
    let other = "did:plc:44ybard66vv44zksje25o7dz";
    let a = env.sequencer.sequence_identity(DID, None).await.unwrap();
    let b = env.sequencer.sequence_identity(other, None).await.unwrap();
    let c = env.sequencer.sequence_identity(DID, None).await.unwrap();
    sqlx::query("UPDATE repo_seq SET invalidated = 1 WHERE seq = ?1")
        .bind(b)
        .execute(env.sequencer.pool())
        .await
        .unwrap();
    let deleted = env
        .sequencer
        .sequence_account(DID, false, Some("deleted"))
        .await
        .unwrap();
    assert_eq!(
        env.sequencer
            .delete_account_events(DID, deleted)
            .await
            .unwrap(),
        2
    );
    let mut sub = stream(env.firehose.open(Some(0)).await.unwrap());
    assert_eq!(
        next_frame(&mut sub).await,
        ("#account".to_owned(), Some(deleted))
    );
    assert_eq!((a, b, c, deleted), (1, 2, 3, 4));
}
