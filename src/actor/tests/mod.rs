//! End-to-end tests of the actor stores and the repository service on temporary file
//! databases.

#[cfg(feature = "bench-tests")]
mod bench;
mod blobs;
mod concurrency;
mod hooks;
mod import;
mod recovery;
mod stores;
mod writes;

use std::collections::BTreeMap;

use tempfile::TempDir;

use super::*;
use crate::crypto::{Algorithm, Keypair};
use crate::repo::cbor::Ipld;
use crate::repo::repository::Write;
use crate::sequencer::{SeqEvent, Sequencer};
use crate::syntax::{Did, Handle, Nsid, RecordKey};

/// Polls `cond` until it holds; fails the test only if it still does not after 5 s.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A data directory with a repository service over it.
struct Env {
    dir: TempDir,
    repo: ActorRepo,
    cache: usize,
}

impl Env {
    async fn new(cache: usize) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let repo = open_service(&dir, cache).await;
        Env { dir, repo, cache }
    }

    /// Drops the service (as a crash would: no clean-up step runs) and opens a fresh one on
    /// the same files.
    async fn restart(&mut self) {
        // A clean stop: the moves of acknowledged writes finish first (crash points are
        // simulated by the tests themselves).
        self.repo.moves_settled().await;
        let fresh = open_service(&self.dir, self.cache).await;
        let old = std::mem::replace(&mut self.repo, fresh);
        drop(old);
    }

    fn sequencer(&self) -> &Sequencer {
        self.repo.sequencer()
    }

    /// Creates an account with an empty repository, announcing nothing.
    async fn account(&self, did: &Did) -> Keypair {
        let key = Keypair::generate(Algorithm::K256);
        self.repo.create_repo(did, &key, None).await.unwrap();
        key
    }

    /// Every event in `repo_seq`, once the moves of acknowledged writes have finished.
    async fn events(&self) -> Vec<SeqEvent> {
        self.repo.moves_settled().await;
        self.sequencer().events_after(0, 100_000).await.unwrap()
    }

    /// The revisions of `did`'s `#commit` events in `repo_seq`, in `seq` order.
    async fn commit_revs(&self, did: &Did) -> Vec<String> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.did == did.as_str() && e.event_type == "commit")
            .map(|e| e.rev.unwrap())
            .collect()
    }

    async fn outbox_len(&self, did: &Did) -> u64 {
        let handle = self.repo.stores().open(did).await.unwrap().unwrap();
        let mut conn = handle.pool().acquire().await.unwrap();
        crate::store::outbox::count(&mut conn).await.unwrap()
    }
}

async fn open_service(dir: &TempDir, cache: usize) -> ActorRepo {
    let stores = ActorStores::new(dir.path(), cache);
    let sequencer = Sequencer::open_in(dir.path()).await.unwrap();
    let blobs = std::sync::Arc::new(crate::blobs::DiskBlobStore::new(
        dir.path().join("blocks"),
        dir.path().join("tmp"),
    ));
    ActorRepo::new(stores, sequencer, blobs)
}

fn did(i: usize) -> Did {
    format!("did:plc:test{i:020}").parse().unwrap()
}

fn handle(s: &str) -> Handle {
    s.parse().unwrap()
}

fn nsid(s: &str) -> Nsid {
    s.parse().unwrap()
}

fn rkey(s: &str) -> RecordKey {
    s.parse().unwrap()
}

fn post(text: &str) -> Ipld {
    Ipld::Map(BTreeMap::from([
        ("$type".into(), Ipld::String("app.bsky.feed.post".into())),
        ("text".into(), Ipld::String(text.into())),
        (
            "createdAt".into(),
            Ipld::String("2024-01-02T03:04:05.678Z".into()),
        ),
    ]))
}

fn create(collection: &str, rk: &str, record: Ipld) -> RecordWrite {
    Write::Create {
        collection: nsid(collection),
        rkey: rkey(rk),
        record,
    }
    .into()
}

fn update(collection: &str, rk: &str, record: Ipld) -> RecordWrite {
    Write::Update {
        collection: nsid(collection),
        rkey: rkey(rk),
        record,
    }
    .into()
}

fn delete(collection: &str, rk: &str) -> RecordWrite {
    Write::Delete {
        collection: nsid(collection),
        rkey: rkey(rk),
    }
    .into()
}

fn post_write(rk: &str, text: &str) -> RecordWrite {
    create("app.bsky.feed.post", rk, post(text))
}

/// The service's futures are `Send`, so handlers can run them on a multi-threaded runtime.
#[allow(dead_code)]
fn futures_are_send(repo: &ActorRepo, did: &Did, key: &Keypair, n: &Nsid, k: &RecordKey) {
    fn send<T: Send>(_: T) {}
    send(repo.create_repo(did, key, None));
    send(repo.apply_writes(did, Vec::new(), None));
    send(repo.recover());
    send(repo.sequence_sync(did));
    send(repo.sequence_account(did, true, None));
    send(repo.sequence_identity(did, None));
    send(repo.destroy_repo(did));
    send(repo.collect_blob_garbage(std::time::Duration::ZERO));
    send(repo.list_blobs(did, None, None, 10));
    send(repo.list_missing_blobs(did, None, 10));
    send(repo.get_record(did, n, k, None));
    send(repo.list_records(did, n, 10, None, false));
    send(repo.describe_collections(did));
    send(repo.current_root(did));
    send(repo.stores().open(did));
    send(repo.sequencer().events_after(0, 1));
}
