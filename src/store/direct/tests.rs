use std::collections::BTreeMap;

use ipld_core::ipld::Ipld;

use super::*;
use crate::crypto::{Algorithm, Keypair};
use crate::repo::car::Limits;
use crate::repo::mst::RecordOp;
use crate::repo::repository::{CommitData, Repo, Write};
use crate::repo::verify::verify_car;
use crate::store::export::write_repo_car;
use crate::store::{SqliteBlockStore, blocks, outbox, records, root};
use crate::syntax::TidClock;

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const POST: &str = "app.bsky.feed.post";

fn post(i: u32) -> Write {
    Write::Create {
        collection: POST.parse().unwrap(),
        rkey: format!("3m{i:011}").parse().unwrap(),
        record: Ipld::Map(BTreeMap::from([
            ("$type".into(), Ipld::String(POST.into())),
            // Long enough that an export spans several chunks.
            (
                "text".into(),
                Ipld::String(format!("post {i} {}", "x".repeat(2000))),
            ),
        ])),
    }
}

fn delete(i: u32) -> Write {
    Write::Delete {
        collection: POST.parse().unwrap(),
        rkey: format!("3m{i:011}").parse().unwrap(),
    }
}

/// The store write of `data` (built from `writes`) on top of `prev`.
fn commit_write(prev: Option<Cid>, data: &CommitData, writes: &[Write]) -> CommitWrite {
    let records = writes
        .iter()
        .zip(&data.ops)
        .map(|(write, op)| {
            let path = write.path();
            let (collection, rkey) = path.split_once('/').unwrap();
            let put = match op {
                RecordOp::Create { cid, .. } | RecordOp::Update { cid, .. } => {
                    Some((*cid, Vec::new()))
                }
                RecordOp::Delete { .. } => None,
            };
            RecordChange {
                uri: format!("at://{DID}/{collection}/{rkey}"),
                collection: collection.to_string(),
                rkey: rkey.to_string(),
                put,
            }
        })
        .collect();
    let mut commit = CommitWrite::of(prev, data, "2026-12-04T00:00:00.000Z");
    commit.records = records;
    commit.outbox = vec![("commit".to_owned(), data.rev.as_bytes().to_vec())];
    commit
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: SqliteBlockStore,
    direct: Arc<DirectDb>,
    key: Keypair,
    clock: TidClock,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let store = SqliteBlockStore::open(&path, &crate::store::sqlite::OpenOptions::default())
        .await
        .unwrap();
    Fixture {
        _dir: dir,
        store,
        direct: DirectDb::new(&path),
        key: Keypair::generate(Algorithm::K256),
        clock: TidClock::default(),
    }
}

/// A repository of 300 posts written in three direct commits, then 50 of them deleted.
async fn written(f: &Fixture) -> (Repo<SqliteBlockStore>, Vec<String>) {
    let mut repo: Option<Repo<SqliteBlockStore>> = None;
    let mut revs = Vec::new();
    for round in 0..4u32 {
        let writes: Vec<Write> = if round < 3 {
            (0..100).map(|i| post(round * 100 + i)).collect()
        } else {
            (0..50).map(|i| delete(i * 2)).collect()
        };
        let rev = f.clock.next().to_string();
        let prepared = match &repo {
            None => Repo::format_init(f.store.clone(), DID, &f.key, rev, &writes).await,
            Some(r) => r.format_commit(&writes, &f.key, rev).await,
        }
        .unwrap();
        let prev = repo.as_ref().map(|r| r.cid());
        let written = f
            .direct
            .write_commit(commit_write(prev, &prepared.data, &writes))
            .await
            .unwrap();
        assert!(written.dropped_blobs.is_empty());
        // The queued rows as the outbox holds them.
        let last = written.outbox.last().unwrap();
        assert_eq!(
            f.direct.outbox_after(last.id - 1, 10).await.unwrap(),
            written.outbox
        );
        revs.push(prepared.data.rev.clone());
        repo = Some(Repo::apply(prepared));
    }
    (repo.unwrap(), revs)
}

#[tokio::test]
async fn commits_are_read_back_by_the_pool_and_verify() {
    let f = fixture().await;
    let (repo, _) = written(&f).await;
    let mut conn = f.store.pool().acquire().await.unwrap();
    let head = root::get(&mut conn).await.unwrap().unwrap();
    assert_eq!(
        (head.cid, head.rev.as_str()),
        (repo.cid(), repo.rev().unwrap())
    );
    assert_eq!(f.direct.head().await.unwrap(), Some(head));
    assert_eq!(records::count(&mut conn).await.unwrap(), 250);
    // The store holds exactly the current repository: the export verifies and has every block.
    let (car, _) = write_repo_car(&f.store, None, Vec::new()).await.unwrap();
    let (verified, car_blocks) = verify_car(
        car.as_slice(),
        Limits::default(),
        Some(DID),
        Some(&f.key.public_key()),
    )
    .await
    .unwrap();
    assert_eq!(verified.records.len(), 250);
    assert_eq!(
        blocks::count(&mut conn).await.unwrap(),
        car_blocks.len() as u64
    );
    // Reads agree with the pool's queries, deleted records included.
    for i in [0u32, 1, 198, 199, 299] {
        let rkey = format!("3m{i:011}");
        let pooled = records::get(&mut conn, POST, &rkey, None).await.unwrap();
        let direct = f.direct.record(POST.into(), rkey, None).await.unwrap();
        assert_eq!(direct, pooled);
        assert_eq!(direct.is_some(), i % 2 == 1 || i >= 100, "record {i}");
    }
    let some = f
        .direct
        .record(POST.into(), "3m00000000001".into(), None)
        .await
        .unwrap()
        .unwrap();
    let other_cid = repo.cid();
    assert_eq!(
        f.direct
            .record(POST.into(), "3m00000000001".into(), Some(other_cid))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        f.direct
            .record(POST.into(), "3m00000000001".into(), Some(some.cid))
            .await
            .unwrap(),
        Some(some)
    );
    for (cursor, reverse) in [(None, false), (Some("3m00000000150"), false), (None, true)] {
        let pooled = records::list(&mut conn, POST, 40, cursor, reverse)
            .await
            .unwrap();
        let direct = f
            .direct
            .list_records(POST.into(), 40, cursor.map(str::to_owned), reverse)
            .await
            .unwrap();
        assert_eq!(direct.len(), 40);
        assert_eq!(direct, pooled);
    }
    // The outbox holds one row per commit, in order.
    let rows = f.direct.outbox_after(-1, 10).await.unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows, outbox::list_after(&mut conn, -1, 10).await.unwrap());
    assert_eq!(
        f.direct.outbox_after(rows[1].id, 1).await.unwrap(),
        vec![rows[2].clone()]
    );
}

#[tokio::test]
async fn a_moved_head_or_another_account_is_refused_and_nothing_is_written() {
    let f = fixture().await;
    let (repo, _) = written(&f).await;
    let mut conn = f.store.pool().acquire().await.unwrap();
    let blocks_before = blocks::count(&mut conn).await.unwrap();
    let outbox_before = outbox::count(&mut conn).await.unwrap();

    let writes = vec![post(1000)];
    let next = repo
        .format_commit(&writes, &f.key, f.clock.next().to_string())
        .await
        .unwrap();
    // Formatted against a head that is no longer current.
    let mut write = commit_write(Some(next.data.cid), &next.data, &writes);
    let err = f.direct.write_commit(write.clone()).await.unwrap_err();
    assert!(
        matches!(&err, Error::HeadMoved(moved)
            if **moved == (Some(next.data.cid), Some(repo.cid()))),
        "{err:?}"
    );
    write.prev = Some(repo.cid());
    write.did = "did:plc:someoneelse".into();
    let err = f.direct.write_commit(write.clone()).await.unwrap_err();
    assert!(
        matches!(&err, Error::WrongRepo { stored, .. } if stored == DID),
        "{err:?}"
    );
    // A revision that does not move forward.
    write.did = DID.into();
    write.rev = repo.rev().unwrap().to_owned();
    let err = f.direct.write_commit(write.clone()).await.unwrap_err();
    assert!(matches!(&err, Error::StaleRev { .. }), "{err:?}");

    assert_eq!(blocks::count(&mut conn).await.unwrap(), blocks_before);
    assert_eq!(outbox::count(&mut conn).await.unwrap(), outbox_before);
    assert_eq!(root::get(&mut conn).await.unwrap().unwrap().cid, repo.cid());
    assert!(
        records::get(&mut conn, POST, "3m00000001000", None)
            .await
            .unwrap()
            .is_none()
    );
    // The right head goes through, deleting the outbox rows already moved.
    write.rev = next.data.rev.clone();
    write.outbox_delete_through = Some(i64::MAX);
    f.direct.write_commit(write).await.unwrap();
    assert_eq!(outbox::count(&mut conn).await.unwrap(), 1);
    assert_eq!(
        root::get(&mut conn).await.unwrap().unwrap().cid,
        next.data.cid
    );
    // A closed store refuses everything.
    f.direct.close();
    assert!(matches!(f.direct.head().await, Err(Error::Closed)));
}

async fn export(
    f: &Fixture,
    since: Option<&str>,
    capacity: usize,
) -> (Vec<u8>, Result<u64, Error>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(capacity);
    let task = {
        let direct = f.direct.clone();
        let since = since.map(str::to_owned);
        tokio::spawn(async move { direct.export_car(since, tx).await })
    };
    let mut car = Vec::new();
    while let Some(chunk) = rx.recv().await {
        car.extend_from_slice(&chunk.unwrap());
    }
    (car, task.await.unwrap())
}

#[tokio::test]
async fn the_export_is_the_paged_export_byte_for_byte() {
    let f = fixture().await;
    let (_repo, revs) = written(&f).await;
    for since in [None, Some(revs[0].as_str()), Some(revs[3].as_str())] {
        let (paged, paged_count) = write_repo_car(&f.store, since, Vec::new()).await.unwrap();
        let (direct, count) = export(&f, since, 1).await;
        assert_eq!(count.unwrap(), paged_count);
        assert_eq!(direct, paged, "since {since:?}");
    }
    let (full, _) = export(&f, None, 1).await;
    assert!(full.len() > 2 * EXPORT_CHUNK, "{} bytes", full.len());
    verify_car(
        full.as_slice(),
        Limits::default(),
        Some(DID),
        Some(&f.key.public_key()),
    )
    .await
    .unwrap();
    // A reader that goes away stops the export without an error.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(rx);
    assert!(f.direct.export_car(None, tx).await.unwrap() >= 1);
}

/// Exports beyond [`EXPORTS`] wait for a running one to end: clients that stop reading hold
/// at most that many blocking threads, never the whole pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_past_the_bound_wait_for_a_running_one() {
    let f = fixture().await;
    written(&f).await;
    // EXPORTS exports whose clients read one chunk and then stall (the channel holds one
    // more, the third waits): each holds its permit.
    let mut stalled = Vec::new();
    for _ in 0..EXPORTS {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let direct = f.direct.clone();
        let task = tokio::spawn(async move { direct.export_car(None, tx).await });
        rx.recv().await.unwrap().unwrap();
        stalled.push((rx, task));
    }
    // Other tests of this binary export too: wait until the stalled ones hold every permit.
    while EXPORT_PERMITS.available_permits() > 0 {
        tokio::task::yield_now().await;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let direct = f.direct.clone();
    let waiting = tokio::spawn(async move { direct.export_car(None, tx).await });
    // One stalled client goes away: its export ends and frees the permit the waiting
    // export needs to run to its end.
    let (gone, task) = stalled.pop().unwrap();
    drop(gone);
    task.await.unwrap().unwrap();
    let mut car = Vec::new();
    while let Some(chunk) = rx.recv().await {
        car.extend_from_slice(&chunk.unwrap());
    }
    assert!(waiting.await.unwrap().unwrap() > 1);
    assert!(car.len() > 2 * EXPORT_CHUNK);
    drop(stalled);
}
