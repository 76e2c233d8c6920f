//! Throughput of sequential single-record creates on one account. Built with the
//! `bench-tests` feature only, and ignored even then:
//!
//! ```text
//! cargo test --release --features bench-tests --lib actor::tests::bench -- --ignored --nocapture
//! ROOKERY_BENCH_DIR=/dev/shm cargo test --release --features bench-tests --lib actor::tests::bench -- --ignored --nocapture
//! ```
//!
//! The second run puts the databases on tmpfs, where fsync costs nothing: the difference is
//! the price of durability. `ROOKERY_BENCH_N` sets the number of writes (default 500).

use std::time::{Duration, Instant};

use super::*;
use crate::repo::blockstore::{BlockStore, MemoryBlockStore};
use crate::repo::repository::Repo;
use crate::syntax::TidClock;

fn writes_to_run() -> usize {
    std::env::var("ROOKERY_BENCH_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500)
}

fn rate(n: usize, elapsed: Duration) -> String {
    format!(
        "{n} in {:.2} s = {:.0}/s ({:.2} ms each)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / n as f64
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --release --ignored --nocapture"]
async fn bench_sequential_single_record_creates() {
    let n = writes_to_run();
    let base = std::env::var("ROOKERY_BENCH_DIR").unwrap_or_else(|_| "/tmp".into());
    let dir = tempfile::tempdir_in(&base).unwrap();
    let repo = open_service(&dir, 16).await;
    let alice = did(1);
    let key = Keypair::generate(Algorithm::K256);
    repo.create_repo(&alice, &key, None).await.unwrap();
    let clock = TidClock::default();
    for _ in 0..20 {
        let rk = clock.next().to_string();
        repo.apply_writes(&alice, vec![post_write(&rk, "warm-up")], None)
            .await
            .unwrap();
    }
    let start = Instant::now();
    for _ in 0..n {
        let rk = clock.next().to_string();
        repo.apply_writes(&alice, vec![post_write(&rk, "hello world")], None)
            .await
            .unwrap();
    }
    let elapsed = start.elapsed();
    println!("apply_writes on {base}: {}", rate(n, elapsed));
    assert_eq!(
        repo.sequencer().latest_seq().await.unwrap(),
        Some(i64::try_from(n + 20).unwrap())
    );

    // The same writes split into the protocol's parts: the actor-store commit (head, tree
    // load, format and sign, one transaction) and the move into the sequencer.
    let (mut commit, mut moving, mut load) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..n {
        let _writer = repo.lock_writer(&alice).await;
        let handle = repo.open_required(&alice).await.unwrap();
        let t0 = Instant::now();
        let head = {
            let mut conn = handle.pool().acquire().await.unwrap();
            crate::store::root::get(&mut conn).await.unwrap().unwrap()
        };
        let loaded = Repo::load(handle.block_store(), head.cid).await.unwrap();
        loaded
            .get_record("app.bsky.feed.post", "3zzzzzzzzzzz2")
            .await
            .unwrap();
        let t1 = Instant::now();
        let rk = clock.next().to_string();
        repo.commit_writes(&handle, vec![post_write(&rk, "hello world")], None, false)
            .await
            .unwrap();
        let t2 = Instant::now();
        assert_eq!(repo.publish(&handle).await.unwrap(), 1);
        load += t1 - t0;
        commit += t2 - t1;
        moving += t2.elapsed();
    }
    println!(
        "per write: actor commit {:.3} ms (a cold load of head + tree path, skipped by the cached tree, costs {:.3} ms), \
         sequencer move {:.3} ms",
        commit.as_secs_f64() * 1000.0 / n as f64,
        load.as_secs_f64() * 1000.0 / n as f64,
        moving.as_secs_f64() * 1000.0 / n as f64,
    );

    // The repo engine alone (in memory): load the tree, format, sign, no database.
    let store = MemoryBlockStore::new();
    let prepared = Repo::format_init(
        store.clone(),
        alice.as_str(),
        &key,
        clock.next().to_string(),
        &[],
    )
    .await
    .unwrap();
    store
        .put_many(&prepared.data.new_blocks, &prepared.data.rev)
        .await
        .unwrap();
    let mut head = Repo::apply(prepared);
    let start = Instant::now();
    for _ in 0..n {
        let rk = clock.next().to_string();
        let write = post_write(&rk, "hello world").write;
        let loaded = Repo::load(store.clone(), head.cid()).await.unwrap();
        let prepared = loaded
            .format_commit(&[write], &key, clock.next().to_string())
            .await
            .unwrap();
        crate::sequencer::events::commit_event(&prepared.data, "2025-01-01T00:00:00.000Z")
            .await
            .unwrap();
        store
            .put_many(&prepared.data.new_blocks, &prepared.data.rev)
            .await
            .unwrap();
        head = Repo::apply(prepared);
    }
    println!("engine only (memory store): {}", rate(n, start.elapsed()));
}
