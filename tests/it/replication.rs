//! Replication of the databases to a real S3-compatible server (moto): idle stores cost
//! nothing, strict mode acknowledges only what is in the bucket, a restore rebuilds and
//! verifies everything; and the kill-and-wipe test against the real `rookery` binary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rookery::config::{ReplicaConfig, S3Config};
use rookery::replica::Bucket;
use serde_json::{Value, json};
use support::free_port;
use tokio_tungstenite::tungstenite::Message;

use crate::support;
use support::pds::TestPds;
use support::process::LineProcess;
use support::s3::S3Server;

const DEADLINE: Duration = Duration::from_secs(60);

fn replica(s3: S3Config, strict: bool) -> ReplicaConfig {
    ReplicaConfig {
        s3,
        prefix: "pds/".to_owned(),
        interval: Duration::from_millis(100),
        strict,
        strict_timeout: Duration::from_secs(30),
        retention: Duration::from_secs(3600),
        compact_segments: 1000,
    }
}

async fn post(client: &reqwest::Client, url: &str, token: &str, did: &str, i: usize) -> Value {
    let reply = client
        .post(format!("{url}/xrpc/com.atproto.repo.createRecord"))
        .bearer_auth(token)
        .json(&json!({
            "repo": did,
            "collection": "app.bsky.feed.post",
            "record": {"$type": "app.bsky.feed.post", "text": format!("post {i}"),
                       "createdAt": "2026-12-02T00:00:00.000Z"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    reply.json().await.unwrap()
}

/// Segment keys in the bucket, by database.
async fn segments(s3: &S3Server, bucket: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for key in s3.inventory(bucket).await {
        if let Some(rest) = key.strip_prefix("pds/dbs/")
            && let Some((head, _)) = rest.rsplit_once('/')
            && let Some((db, _)) = head.rsplit_once('/')
        {
            *out.entry(db.to_owned()).or_default() += 1;
        }
    }
    out
}

/// Polls until the replicator has run `n` more cycles than `after`.
async fn cycles_after(pds: &TestPds, after: u64, n: u64) -> u64 {
    let stats = pds.state.replica().unwrap().stats();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = stats.cycles.load(Ordering::Relaxed);
        if now >= after + n {
            return now;
        }
        assert!(Instant::now() < deadline, "replication cycles stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_stores_cost_nothing_and_strict_writes_are_in_the_bucket() {
    let s3 = S3Server::shared();
    let bucket = s3.new_bucket("replica").await;
    let config = replica(s3.config(&bucket), true);
    let pds = TestPds::start_with(|c| c.replica = Some(config.clone())).await;
    let client = reqwest::Client::new();
    let mut accounts = Vec::new();
    for i in 0..12 {
        accounts.push(
            pds.seed_account(&format!("idle{i}.test"), "hunter2hunter2")
                .await,
        );
    }
    // Everything shipped once: every store has segments.
    let replicator = pds.state.replica().unwrap();
    assert!(replicator.sync(DEADLINE).await);
    let before = segments(s3, &bucket).await;
    let stores: Vec<_> = before.keys().filter(|k| k.starts_with("actors/")).collect();
    assert_eq!(stores.len(), 12, "{before:?}");

    // Idle: cycles go on, nothing is uploaded.
    let uploaded = replicator.stats().segments.load(Ordering::Relaxed);
    let cycles = replicator.stats().cycles.load(Ordering::Relaxed);
    cycles_after(&pds, cycles, 5).await;
    assert_eq!(
        replicator.stats().segments.load(Ordering::Relaxed),
        uploaded
    );
    assert_eq!(segments(s3, &bucket).await, before);

    // One strict write: when it is acknowledged, its store's new segment (the commit and
    // its firehose event, in the outbox) is in the bucket, and no other store got one.
    let (did, token) = &accounts[3];
    let created = post(&client, &pds.url(), token, did.as_str(), 1).await;
    let after = segments(s3, &bucket).await;
    let grown: Vec<_> = after
        .iter()
        .filter(|(db, n)| before.get(*db) != Some(n))
        .map(|(db, _)| db.clone())
        .collect();
    let store = grown
        .iter()
        .find(|db| db.starts_with("actors/"))
        .expect("the written store shipped");
    assert!(store.contains(did.as_str()), "{grown:?}");
    assert_eq!(
        grown.iter().filter(|db| db.starts_with("actors/")).count(),
        1,
        "{grown:?}"
    );

    // The bucket alone rebuilds it: restore into an empty directory and read the record.
    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("data");
    let bucket_client = Bucket::new(&config).await;
    let report = rookery::replica::restore(&data, &bucket_client, None)
        .await
        .unwrap();
    assert_eq!(report.verified_repos, 12);
    assert!(report.seq_floor >= 100_000, "{report:?}");
    let restored = rookery::actor::ActorRepo::new(
        rookery::actor::ActorStores::new(&data, 4),
        rookery::sequencer::Sequencer::open_in(&data).await.unwrap(),
        Arc::new(rookery::blobs::disk::DiskBlobStore::new(
            data.join("blocks"),
            data.join("tmp"),
        )),
    );
    let uri: rookery::syntax::AtUri = created["uri"].as_str().unwrap().parse().unwrap();
    let record = restored
        .get_record(did, uri.collection().unwrap(), uri.rkey().unwrap(), None)
        .await
        .unwrap()
        .expect("the strict write is in the restored store");
    assert_eq!(record.cid.to_string(), created["cid"].as_str().unwrap());
    // Its firehose event too, once start-up recovery has run (moved from the outbox unless
    // the sequencer's segment with it shipped first).
    restored.recover().await.unwrap();
    let rev = created["commit"]["rev"].as_str().unwrap();
    let events = restored.sequencer().events_after(0, 10_000).await.unwrap();
    let commits: Vec<_> = events
        .iter()
        .filter(|e| e.did == did.as_str() && e.event_type == "commit")
        .filter(|e| e.rev.as_deref() == Some(rev))
        .collect();
    assert_eq!(commits.len(), 1, "the strict write's event, once");

    // A second restore refuses a directory that holds databases.
    assert!(
        rookery::replica::restore(&data, &bucket_client, None)
            .await
            .is_err()
    );
}

// ---- kill and wipe, against the real binary ----

struct Spawned {
    process: LineProcess,
    url: String,
    log: std::thread::JoinHandle<String>,
}

/// The `rookery` binary with the environment of a server on `data` replicating to `bucket`.
fn rookery_command(data: &Path, s3: &S3Server, bucket: &str) -> Command {
    let config = s3.config(bucket);
    let creds = config.credentials.unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_rookery"));
    command
        .env_clear()
        .env("PDS_HOSTNAME", "localhost")
        .env("ROOKERY_BIND_ADDRESS", "127.0.0.1")
        .env("PDS_DATA_DIRECTORY", data)
        .env("PDS_ADMIN_PASSWORD", "admin-pass")
        .env("PDS_BLOBSTORE_DISK_LOCATION", data.join("blocks"))
        .env("ROOKERY_REPLICA_S3_BUCKET", bucket)
        .env("ROOKERY_REPLICA_S3_PREFIX", "pds/")
        .env("ROOKERY_REPLICA_S3_ENDPOINT", s3.url())
        .env("ROOKERY_REPLICA_S3_REGION", "us-east-1")
        .env("ROOKERY_REPLICA_S3_FORCE_PATH_STYLE", "true")
        .env("ROOKERY_REPLICA_S3_ACCESS_KEY_ID", &creds.access_key_id)
        .env(
            "ROOKERY_REPLICA_S3_SECRET_ACCESS_KEY",
            creds.secret_access_key.expose(),
        )
        .env("ROOKERY_REPLICA_INTERVAL_MS", "200")
        .env("LOG_LEVEL", "info");
    command
}

fn spawn_server(data: &Path, port: u16, s3: &S3Server, bucket: &str) -> Spawned {
    spawn(rookery_command(data, s3, bucket), port)
}

/// Runs `rookery serve` on `port` with `command`'s environment until it listens.
fn spawn(mut command: Command, port: u16) -> Spawned {
    command
        .args(["serve", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    let mut process = LineProcess::spawn(&mut command);
    let mut stderr = process.child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    match process.wait_for("rookery listening on ") {
        Ok(_) => Spawned {
            process,
            url: format!("http://127.0.0.1:{port}"),
            log,
        },
        Err(e) => {
            drop(process);
            panic!("rookery did not start: {e}\n{}", log.join().unwrap());
        }
    }
}

/// Every `seq` of the firehose from `cursor`, until a frame satisfies `stop` (or, with
/// `stop` `None`, until `flag` says the server is gone).
async fn firehose_seqs(
    url: String,
    cursor: i64,
    until_rev: Option<String>,
    seen: Arc<AtomicI64>,
) -> Vec<i64> {
    let ws_url = format!(
        "{}/xrpc/com.atproto.sync.subscribeRepos?cursor={cursor}",
        url.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let mut seqs = Vec::new();
    loop {
        let message = match tokio::time::timeout(DEADLINE, ws.next()).await {
            Ok(Some(Ok(message))) => message,
            // The server was killed, or it is done.
            Ok(Some(Err(_)) | None) => return seqs,
            Err(_) => panic!("no firehose frame within {DEADLINE:?}"),
        };
        let Message::Binary(bytes) = message else {
            continue;
        };
        let frame = rookery::sequencer::frame::parse(&bytes).unwrap();
        let rookery::repo::cbor::Ipld::Map(body) = &frame.body else {
            continue;
        };
        if let Some(rookery::repo::cbor::Ipld::Integer(seq)) = body.get("seq") {
            let seq = i64::try_from(*seq).unwrap();
            seen.fetch_max(seq, Ordering::AcqRel);
            seqs.push(seq);
        }
        if let (Some(rev), Some(rookery::repo::cbor::Ipld::String(frame_rev))) =
            (&until_rev, body.get("rev"))
            && frame.t.as_deref() == Some("#commit")
            && frame_rev == rev
        {
            return seqs;
        }
    }
}

async fn create_account(client: &reqwest::Client, url: &str, handle: &str) -> (String, String) {
    let reply = client
        .post(format!("{url}/xrpc/com.atproto.server.createAccount"))
        .json(
            &json!({"handle": handle, "email": format!("{handle}@example.com"),
                      "password": "hunter2hunter2"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let body: Value = reply.json().await.unwrap();
    (
        body["did"].as_str().unwrap().to_owned(),
        body["accessJwt"].as_str().unwrap().to_owned(),
    )
}

struct Acked {
    did: String,
    uri: String,
    cid: String,
    at: Instant,
}

fn key_dir(data: &Path, did: &str) -> PathBuf {
    rookery::actor::ActorStores::new(data, 1).dir(&did.parse().unwrap())
}

/// The repositories of `dids` exported by `url`, checked with the official `verifyRepoCar`
/// (one run) against the signing keys restored into `data`; what it reported for each.
async fn verify_restored_repos(
    client: &reqwest::Client,
    url: &str,
    data: &Path,
    dids: &[&str],
) -> Vec<Value> {
    let mut exports = Vec::new();
    for did in dids {
        let car = support::get_repo(client, url, did).await;
        let key_hex = std::fs::read_to_string(key_dir(data, did).join("key")).unwrap();
        let key = rookery::crypto::Keypair::from_private_hex(
            rookery::crypto::Algorithm::K256,
            key_hex.trim(),
        )
        .unwrap();
        exports.push((car, key.public_key().to_did_key()));
    }
    let repos: Vec<_> = exports
        .iter()
        .zip(dids)
        .map(|((car, key), did)| (&car[..], *did, key.as_str()))
        .collect();
    support::verify_repo_cars(&repos)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_and_wipe_restores_every_acknowledged_write() {
    let s3 = S3Server::shared();
    let bucket = s3.new_bucket("killwipe").await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let first = spawn_server(&data, port, s3, &bucket);
    let url = first.url.clone();
    let client = reqwest::Client::new();
    let mut accounts = Vec::new();
    for i in 0..4 {
        accounts.push(create_account(&client, &url, &format!("storm{i}.test")).await);
    }
    let seen = Arc::new(AtomicI64::new(0));
    let listener = tokio::spawn(firehose_seqs(url.clone(), 0, None, seen.clone()));

    // The storm: every account writes as fast as it can; acknowledged writes are noted.
    let acked = Arc::new(std::sync::Mutex::new(Vec::<Acked>::new()));
    let mut writers = Vec::new();
    for (did, token) in accounts.clone() {
        let acked = acked.clone();
        let client = client.clone();
        let url = url.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let reply = client
                    .post(format!("{url}/xrpc/com.atproto.repo.createRecord"))
                    .bearer_auth(&token)
                    .json(&json!({"repo": did, "collection": "app.bsky.feed.post",
                        "record": {"$type": "app.bsky.feed.post", "text": format!("storm {i}"),
                                   "createdAt": "2026-12-02T00:00:00.000Z"}}))
                    .send()
                    .await;
                let Ok(reply) = reply else { return };
                if reply.status() != 200 {
                    return;
                }
                let Ok(body) = reply.json::<Value>().await else {
                    return;
                };
                acked.lock().unwrap().push(Acked {
                    did: did.clone(),
                    uri: body["uri"].as_str().unwrap().to_owned(),
                    cid: body["cid"].as_str().unwrap().to_owned(),
                    at: Instant::now(),
                });
            }
        }));
    }
    // Storm until 300 writes are acknowledged (bounded), then kill -9 in the middle of it.
    let deadline = Instant::now() + DEADLINE;
    while acked.lock().unwrap().len() < 300 {
        assert!(Instant::now() < deadline, "the storm stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Spawned {
        mut process,
        log: first_log,
        ..
    } = first;
    process.child.kill().unwrap();
    let killed = Instant::now();
    process.child.wait().unwrap();
    drop(process);
    for writer in writers {
        writer.await.unwrap();
    }
    listener.await.unwrap();
    let _ = first_log.join();
    let max_seen = seen.load(Ordering::Acquire);
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() >= 300);

    // Wipe the disk, start again: the server restores before it listens.
    std::fs::remove_dir_all(&data).unwrap();
    let begin = Instant::now();
    let second = spawn_server(&data, port, s3, &bucket);
    let restore_time = begin.elapsed();

    // Every acknowledged write: back, or lost within the RPO window.
    let mut lost_oldest: Option<Duration> = None;
    let mut present_by_did: BTreeMap<String, usize> = BTreeMap::new();
    for write in &acked {
        let at_uri = write.uri.strip_prefix("at://").unwrap();
        let mut parts = at_uri.split('/');
        let (repo, collection, rkey) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let reply = client
            .get(format!(
                "{}/xrpc/com.atproto.repo.getRecord?repo={repo}&collection={collection}&rkey={rkey}",
                second.url
            ))
            .send()
            .await
            .unwrap();
        if reply.status() == 200 {
            let body: Value = reply.json().await.unwrap();
            assert_eq!(body["cid"], write.cid.as_str());
            *present_by_did.entry(write.did.clone()).or_default() += 1;
        } else {
            let age = killed.duration_since(write.at);
            lost_oldest = Some(lost_oldest.map_or(age, |a: Duration| a.max(age)));
        }
    }
    let rpo = lost_oldest.unwrap_or(Duration::ZERO);
    eprintln!(
        "kill-and-wipe: {} writes acknowledged, {} lost; RPO {:.3} s; restore + start {:.3} s",
        acked.len(),
        acked.len() - present_by_did.values().sum::<usize>(),
        rpo.as_secs_f64(),
        restore_time.as_secs_f64()
    );
    assert!(
        rpo <= Duration::from_secs(2),
        "a write acknowledged {rpo:?} before the kill was lost"
    );

    // Every repository verifies with the official verifyRepoCar.
    let dids: Vec<&str> = accounts.iter().map(|(did, _)| did.as_str()).collect();
    let reports = verify_restored_repos(&client, &second.url, &data, &dids).await;
    for (did, official) in dids.iter().zip(reports) {
        let records = official["records"].as_u64().unwrap() as usize;
        assert!(
            records >= present_by_did.get(*did).copied().unwrap_or(0),
            "{official}"
        );
    }

    // The firehose resumes: one new write, then the whole log from cursor 0 has strictly
    // increasing seq numbers, and the new events are above every number seen before.
    let (did, token) = &accounts[0];
    let created = post(&client, &second.url, token, did, 100_000).await;
    let rev = created["commit"]["rev"].as_str().unwrap().to_owned();
    let seqs = firehose_seqs(
        second.url.clone(),
        0,
        Some(rev),
        Arc::new(AtomicI64::new(0)),
    )
    .await;
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let unique: BTreeSet<_> = seqs.iter().collect();
    assert_eq!(unique.len(), seqs.len());
    let newest = *seqs.last().unwrap();
    assert!(
        newest > max_seen,
        "new seq {newest} not above {max_seen} seen before the kill"
    );
    drop(second.process);
    let log = second.log.join().unwrap();
    assert!(
        log.contains("restored the data directory from the replica"),
        "{log}"
    );
}

// ---- point-in-time restore ----

/// Every repository of `keys` (DID → signing did:key) exported by `url` verifies with the
/// official `verifyRepoCar` and holds `records` records.
async fn verify_repos(
    client: &reqwest::Client,
    url: &str,
    keys: &BTreeMap<String, String>,
    records: u64,
) {
    let mut cars = Vec::new();
    for did in keys.keys() {
        cars.push(support::get_repo(client, url, did).await);
    }
    let repos: Vec<_> = cars
        .iter()
        .zip(keys)
        .map(|(car, (did, key))| (&car[..], did.as_str(), key.as_str()))
        .collect();
    for official in support::verify_repo_cars(&repos) {
        assert_eq!(official["records"].as_u64(), Some(records), "{official}");
    }
}

/// A server on a restored data directory `data` (its blobs inside it too).
async fn start_restored(data: &Path) -> TestPds {
    TestPds::start_with(|c| {
        c.data_directory = data.to_path_buf();
        c.blobstore = rookery::config::BlobstoreConfig::Disk {
            location: data.join("blocks"),
            tmp_location: data.join("tmp"),
        };
    })
    .await
}

/// Every record `written` (createRecord answers) is served by `url` with its CID.
async fn assert_written(client: &reqwest::Client, url: &str, written: &[Value]) {
    for created in written {
        let uri = created["uri"].as_str().unwrap();
        assert_eq!(
            record_cid(client, url, uri).await.as_deref(),
            Some(created["cid"].as_str().unwrap()),
            "{uri}"
        );
    }
}

/// `getRecord` on `url` for the record `uri`: its CID, or `None` when it is not there.
async fn record_cid(client: &reqwest::Client, url: &str, uri: &str) -> Option<String> {
    let uri: rookery::syntax::AtUri = uri.parse().unwrap();
    let reply = client
        .get(format!(
            "{url}/xrpc/com.atproto.repo.getRecord?repo={}&collection={}&rkey={}",
            uri.authority(),
            uri.collection().unwrap(),
            uri.rkey().unwrap()
        ))
        .send()
        .await
        .unwrap();
    if reply.status() != 200 {
        assert_eq!(reply.status(), 400);
        return None;
    }
    let body: Value = reply.json().await.unwrap();
    Some(body["cid"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_to_a_time_has_the_writes_before_it_and_none_after() {
    let s3 = S3Server::shared();
    let bucket = s3.new_bucket("pitr").await;
    let config = replica(s3.config(&bucket), false);
    let pds = TestPds::start_with(|c| c.replica = Some(config.clone())).await;
    let client = reqwest::Client::new();
    let mut accounts = Vec::new();
    for i in 0..3 {
        accounts.push(
            pds.seed_account(&format!("pitr{i}.test"), "hunter2hunter2")
                .await,
        );
    }
    // Writes A.
    let mut before = Vec::new();
    for (i, (did, token)) in accounts.iter().enumerate() {
        for j in 0..3 {
            let created = post(&client, &pds.url(), token, did.as_str(), i * 10 + j).await;
            before.push(created);
        }
    }
    // The firehose events of writes A follow their acknowledgement: sequenced before `at`.
    pds.state.repo().moves_settled().await;
    let replicator = pds.state.replica().unwrap();
    assert!(replicator.sync(DEADLINE).await);
    let seq_at = pds
        .state
        .repo()
        .sequencer()
        .latest_seq()
        .await
        .unwrap()
        .unwrap();
    let at = rookery::replica::now_ms();
    // A cycle that started after `at` completes: every cycle stamped at or before `at` is
    // then over, so nothing written from here on can be in one of them.
    assert!(replicator.sync(DEADLINE).await);

    // Writes B: more posts, a deleted A post, a new account; all shipped.
    let mut after = Vec::new();
    for (i, (did, token)) in accounts.iter().enumerate() {
        after.push(post(&client, &pds.url(), token, did.as_str(), 100 + i).await);
    }
    let (did0, token0) = &accounts[0];
    let deleted: rookery::syntax::AtUri = before[0]["uri"].as_str().unwrap().parse().unwrap();
    let reply = client
        .post(format!("{}/xrpc/com.atproto.repo.deleteRecord", pds.url()))
        .bearer_auth(token0)
        .json(
            &json!({"repo": did0.as_str(), "collection": "app.bsky.feed.post",
                      "rkey": deleted.rkey().unwrap()}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let (late, _) = pds.seed_account("pitrlate.test", "hunter2hunter2").await;
    pds.state.repo().moves_settled().await;
    assert!(replicator.sync(DEADLINE).await);
    let seq_end = pds
        .state
        .repo()
        .sequencer()
        .latest_seq()
        .await
        .unwrap()
        .unwrap();
    let mut keys = BTreeMap::new();
    for (did, _) in &accounts {
        keys.insert(did.to_string(), pds.signing_key(did).await.to_did_key());
    }
    pds.stop().await;
    let bucket_client = Bucket::new(&config).await;

    // The newest point has B (so the point-in-time check below can fail).
    let newest = tempfile::tempdir().unwrap();
    let latest = rookery::replica::restore(&newest.path().join("data"), &bucket_client, None)
        .await
        .unwrap();
    assert_eq!(latest.verified_repos, 4, "{latest:?}");

    // As of `at`: A, and nothing of B.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let report = rookery::replica::restore(&data, &bucket_client, Some(at))
        .await
        .unwrap();
    assert_eq!(report.verified_repos, 3, "{report:?}");
    // The store of the account created after `at` has no segment that old.
    assert_eq!(report.databases + 1, latest.databases, "{report:?}");
    assert!(report.seq_floor > seq_end, "{report:?}");
    let other = s3.new_bucket("pitr-after").await;
    let restored_config = replica(s3.config(&other), false);
    let restored = TestPds::start_with(|c| {
        c.data_directory = data.clone();
        c.blobstore = rookery::config::BlobstoreConfig::Disk {
            location: data.join("blocks"),
            tmp_location: data.join("tmp"),
        };
        c.replica = Some(restored_config.clone());
    })
    .await;
    let url = restored.url();
    for created in &before {
        let uri = created["uri"].as_str().unwrap();
        // The A post deleted after `at` is back.
        assert_eq!(
            record_cid(&client, &url, uri).await.as_deref(),
            Some(created["cid"].as_str().unwrap()),
            "{uri}"
        );
    }
    for created in &after {
        let uri = created["uri"].as_str().unwrap();
        assert_eq!(record_cid(&client, &url, uri).await, None, "{uri}");
    }
    let reply = client
        .get(format!(
            "{url}/xrpc/com.atproto.sync.getLatestCommit?did={late}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.status(),
        400,
        "the account created after the time is absent"
    );

    // Every repository verifies with the official verifyRepoCar and holds A's 3 records.
    verify_repos(&client, &url, &keys, 3).await;

    // The firehose log as of `at`: every event up to the seq reached then, no later one,
    // each account's last commit event is its restored head; new events go above the lease.
    let sequencer = restored.state.repo().sequencer().clone();
    let events = sequencer.events_after(0, 10_000).await.unwrap();
    let old: Vec<_> = events.iter().filter(|e| e.seq <= seq_end).collect();
    assert_eq!(old.last().map(|e| e.seq), Some(seq_at), "{:?}", old.last());
    assert!(old.windows(2).all(|w| w[0].seq < w[1].seq));
    for (did, _) in &accounts {
        let last_rev = old
            .iter()
            .filter(|e| e.did == did.as_str() && e.event_type == "commit")
            .filter_map(|e| e.rev.clone())
            .next_back();
        let head = restored.state.repo().current_root(did).await.unwrap();
        assert_eq!(last_rev.as_deref(), Some(head.rev.as_str()), "{did}");
    }
    let (did, token) = &accounts[1];
    post(&client, &url, token, did.as_str(), 999).await;
    let newest_seq = sequencer.latest_seq().await.unwrap().unwrap();
    assert!(newest_seq >= report.seq_floor && newest_seq > seq_end);
    restored.stop().await;
}

// ---- compaction and retention ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_pruning_shrink_the_bucket_and_lose_no_write() {
    let s3 = S3Server::shared();
    let bucket = s3.new_bucket("compact").await;
    let config = ReplicaConfig {
        compact_segments: 3,
        ..replica(s3.config(&bucket), false)
    };
    let pds = TestPds::start_with(|c| c.replica = Some(config.clone())).await;
    let client = reqwest::Client::new();
    let replicator = pds.state.replica().unwrap();
    let mut accounts = Vec::new();
    for i in 0..2 {
        accounts.push(
            pds.seed_account(&format!("compact{i}.test"), "hunter2hunter2")
                .await,
        );
    }
    // One shipped segment per write: with 3 segments a generation, chains roll over.
    let mut written = Vec::new();
    for i in 0..8 {
        for (did, token) in &accounts {
            written.push(post(&client, &pds.url(), token, did.as_str(), i).await);
        }
        assert!(replicator.sync(DEADLINE).await);
    }
    let generations = rookery::replica::list_generations(replicator.bucket())
        .await
        .unwrap();
    for (did, _) in &accounts {
        let chains: Vec<_> = generations
            .iter()
            .filter(|g| g.db.contains(did.as_str()))
            .collect();
        assert!(chains.len() >= 3, "{chains:?}");
        assert!(chains.iter().all(|g| g.segments <= 3), "{chains:?}");
    }
    let mut keys = BTreeMap::new();
    for (did, _) in &accounts {
        keys.insert(did.to_string(), pds.signing_key(did).await.to_did_key());
    }
    pds.stop().await;

    // `rookery backup prune` with a retention of 0 hours deletes every superseded chain.
    let objects_before = s3.inventory(&bucket).await.len();
    let work = tempfile::tempdir().unwrap();
    let output = rookery_command(&work.path().join("data"), s3, &bucket)
        .env("ROOKERY_REPLICA_RETENTION_HOURS", "0")
        .args(["backup", "prune"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let objects_after = s3.inventory(&bucket).await.len();
    assert!(
        objects_after < objects_before,
        "{objects_after} objects, {objects_before} before"
    );
    let bucket_client = Bucket::new(&config).await;
    let left = rookery::replica::list_generations(&bucket_client)
        .await
        .unwrap();
    let dbs: BTreeSet<_> = left.iter().map(|g| g.db.clone()).collect();
    assert_eq!(
        dbs.len(),
        left.len(),
        "one generation per database: {left:?}"
    );
    eprintln!("compaction: {objects_before} objects before pruning, {objects_after} after");

    // The newest point still has every write.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let report = rookery::replica::restore(&data, &bucket_client, None)
        .await
        .unwrap();
    assert_eq!(report.verified_repos, 2, "{report:?}");
    let restored = start_restored(&data).await;
    let url = restored.url();
    assert_written(&client, &url, &written).await;
    verify_repos(&client, &url, &keys, 8).await;
    restored.stop().await;
}

// ---- SIGTERM ----

/// A container being stopped gets SIGTERM: the server ships what changed since the last
/// cycle before it exits, so a wiped disk loses nothing. The interval is the longest allowed
/// (60 s), so no cycle runs between start-up and the signal: only the flush at shutdown
/// can have put these writes in the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_every_write_to_the_bucket() {
    let s3 = S3Server::shared();
    let bucket = s3.new_bucket("sigterm").await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let mut command = rookery_command(&data, s3, &bucket);
    command.env("ROOKERY_REPLICA_INTERVAL_MS", "60000");
    let first = spawn(command, port);
    let client = reqwest::Client::new();
    let (did, token) = create_account(&client, &first.url, "sigterm.test").await;
    let mut written = Vec::new();
    for i in 0..20 {
        written.push(post(&client, &first.url, &token, &did, i).await);
    }
    assert!(
        s3.inventory(&bucket).await.is_empty(),
        "nothing is shipped before the first cycle"
    );

    let Spawned {
        mut process, log, ..
    } = first;
    let pid = process.child.id().to_string();
    let signalled = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(signalled.success());
    let status = tokio::task::spawn_blocking(move || {
        let status = process.child.wait().unwrap();
        drop(process);
        status
    });
    let status = tokio::time::timeout(DEADLINE, status)
        .await
        .expect("the server exits after SIGTERM")
        .unwrap();
    let log = log.join().unwrap();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("replica flushed at shutdown"), "{log}");

    // The disk is gone; the next start restores from the bucket before it listens.
    std::fs::remove_dir_all(&data).unwrap();
    let second = spawn_server(&data, port, s3, &bucket);
    assert_written(&client, &second.url, &written).await;
    let official = verify_restored_repos(&client, &second.url, &data, &[&did])
        .await
        .remove(0);
    assert_eq!(official["records"].as_u64(), Some(20), "{official}");
}

// ---- bucket outage ----

/// While the bucket cannot be written (here: it does not exist yet, so every upload fails),
/// writes are acknowledged as usual and the lag grows; once the bucket is back, replication
/// catches up and a restore has every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_outage_never_blocks_writes_and_replication_catches_up() {
    let s3 = S3Server::shared();
    let bucket = "outage-created-late".to_owned();
    let config = replica(s3.config(&bucket), false);
    let pds = TestPds::start_with(|c| {
        c.replica = Some(config.clone());
        c.admin_password = Some(rookery::config::Secret::new("admin-pass-123"));
    })
    .await;
    let replicator = pds.state.replica().unwrap();
    let client = reqwest::Client::new();
    let (did, token) = pds.seed_account("outage.test", "hunter2hunter2").await;
    let mut written = Vec::new();
    for i in 0..10 {
        written.push(post(&client, &pds.url(), &token, did.as_str(), i).await);
    }
    let cycles = replicator.stats().cycles.load(Ordering::Relaxed);
    cycles_after(&pds, cycles, 2).await;
    assert!(replicator.stats().failures.load(Ordering::Relaxed) > 0);
    assert!(replicator.stats().lag_seconds() > 0.0);
    let metrics = client
        .get(format!("{}/metrics", pds.url()))
        .basic_auth("admin", Some("admin-pass-123"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lag: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("rookery_replica_lag_seconds "))
        .unwrap_or_else(|| panic!("no lag in {metrics}"))
        .parse()
        .unwrap();
    assert!(lag > 0.0, "{lag}");

    // The bucket is back: everything is shipped, the lag is zero.
    s3.create_bucket(&bucket).await;
    assert!(replicator.sync(DEADLINE).await);
    assert_eq!(replicator.stats().lag_seconds(), 0.0);
    pds.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bucket_client = Bucket::new(&config).await;
    let report = rookery::replica::restore(&data, &bucket_client, None)
        .await
        .unwrap();
    assert_eq!(report.verified_repos, 1, "{report:?}");
    let restored = start_restored(&data).await;
    assert_written(&client, &restored.url(), &written).await;
    restored.stop().await;
}
