//! `kill -9` of a real `rookery serve` process in the middle of a 16-account concurrent write
//! storm. After a restart on the same data directory, every write the server acknowledged is
//! there with the CID it answered, every repository's head is the last commit acknowledged
//! or a later one, and every repository export passes the official `verifyRepoCar`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::process::LineProcess;

const ACCOUNTS: usize = 16;
/// Acknowledged writes to wait for before the kill.
const ACKED_BEFORE_KILL: usize = 160;
/// Most writes one account's writer attempts (bounds the storm if the kill never comes).
const MAX_WRITES_PER_ACCOUNT: usize = 2_000;
const DEADLINE: Duration = Duration::from_secs(120);

/// `rookery serve` on 127.0.0.1 port 0 over `data`; its base URL.
fn serve(data: &Path) -> (LineProcess, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rookery"));
    command
        .args(["serve", "--port", "0"])
        .env_clear()
        .current_dir(data.parent().unwrap())
        .env("PDS_DATA_DIRECTORY", data)
        .env("ROOKERY_BIND_ADDRESS", "127.0.0.1")
        .env("PDS_RATE_LIMITS_ENABLED", "false")
        .env("PDS_INVITE_REQUIRED", "false")
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    let server = LineProcess::spawn(&mut command);
    let line = server
        .wait_for("rookery listening on ")
        .expect("rookery serve starts");
    // "127.0.0.1:PORT (http://localhost:PORT)"
    let addr = line.split_whitespace().next().unwrap().to_owned();
    (server, format!("http://{addr}"))
}

struct Account {
    did: String,
    token: String,
}

async fn create_account(client: &reqwest::Client, base: &str, i: usize) -> Account {
    let reply = client
        .post(format!("{base}/xrpc/com.atproto.server.createAccount"))
        .json(&json!({
            "handle": format!("storm{i}.test"),
            "email": format!("storm{i}@example.com"),
            "password": "storm-password",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let body: Value = reply.json().await.unwrap();
    Account {
        did: body["did"].as_str().unwrap().to_owned(),
        token: format!("Bearer {}", body["accessJwt"].as_str().unwrap()),
    }
}

/// What one account's writer saw acknowledged: (rkey, record CID), and the last commit.
#[derive(Default)]
struct Acked {
    records: Vec<(String, String)>,
    last_rev: Option<String>,
}

/// Writes posts to one account until `stop`, an error (the server died) or the bound.
async fn storm(
    base: String,
    account: Arc<Account>,
    stop: Arc<AtomicBool>,
    total: Arc<AtomicUsize>,
) -> Acked {
    let client = reqwest::Client::new();
    let mut acked = Acked::default();
    for n in 0..MAX_WRITES_PER_ACCOUNT {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let sent = client
            .post(format!("{base}/xrpc/com.atproto.repo.createRecord"))
            .header("authorization", &account.token)
            .json(&json!({
                "repo": account.did,
                "collection": "app.bsky.feed.post",
                "record": {
                    "$type": "app.bsky.feed.post",
                    "text": format!("storm post {n}"),
                    "createdAt": "2026-12-02T00:00:00.000Z",
                },
            }))
            .send()
            .await;
        let Ok(reply) = sent else { break };
        if reply.status() != 200 {
            break;
        }
        // Acknowledged only once the whole answer has arrived.
        let Ok(body) = reply.json::<Value>().await else {
            break;
        };
        let rkey = body["uri"].as_str().unwrap().rsplit('/').next().unwrap();
        acked
            .records
            .push((rkey.to_owned(), body["cid"].as_str().unwrap().to_owned()));
        acked.last_rev = Some(body["commit"]["rev"].as_str().unwrap().to_owned());
        total.fetch_add(1, Ordering::Relaxed);
    }
    acked
}

/// Every record of the account's posts: rkey → CID.
async fn list_all(client: &reqwest::Client, base: &str, did: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut cursor = String::new();
    for _ in 0..1_000 {
        let reply: Value = client
            .get(format!(
                "{base}/xrpc/com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&limit=100{cursor}"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let records = reply["records"].as_array().unwrap();
        for r in records {
            let rkey = r["uri"].as_str().unwrap().rsplit('/').next().unwrap();
            out.insert(rkey.to_owned(), r["cid"].as_str().unwrap().to_owned());
        }
        match reply["cursor"].as_str() {
            Some(c) if !records.is_empty() => cursor = format!("&cursor={c}"),
            _ => return out,
        }
    }
    panic!("listRecords never ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_during_a_write_storm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut server, base) = serve(&data);
    let client = reqwest::Client::new();
    let mut accounts = Vec::new();
    for i in 0..ACCOUNTS {
        accounts.push(Arc::new(create_account(&client, &base, i).await));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = accounts
        .iter()
        .map(|a| tokio::spawn(storm(base.clone(), a.clone(), stop.clone(), total.clone())))
        .collect();
    // Kill once enough writes are acknowledged, while every writer still has one in flight.
    let deadline = Instant::now() + DEADLINE;
    while total.load(Ordering::Relaxed) < ACKED_BEFORE_KILL {
        assert!(Instant::now() < deadline, "the storm never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for writer in writers {
        acked.push(writer.await.unwrap());
    }
    let acked_total: usize = acked.iter().map(|a| a.records.len()).sum();
    assert!(acked_total >= ACKED_BEFORE_KILL, "{acked_total}");

    let (server, base) = serve(&data);
    // Each export, checked by one run of the official consumer after the loop.
    let mut exports = Vec::new();
    let mut expected = Vec::new();
    for (account, acked) in accounts.iter().zip(&acked) {
        let did = &account.did;
        let stored = list_all(&client, &base, did).await;
        for (rkey, cid) in &acked.records {
            assert_eq!(
                stored.get(rkey),
                Some(cid),
                "acknowledged write {did}/{rkey} lost or changed"
            );
        }
        // The head is the last acknowledged commit or one written just before the kill.
        let latest: Value = client
            .get(format!(
                "{base}/xrpc/com.atproto.sync.getLatestCommit?did={did}"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rev = latest["rev"].as_str().unwrap().to_owned();
        if let Some(last) = &acked.last_rev {
            assert!(rev >= *last, "{did}: head {rev} before acknowledged {last}");
        }
        assert!(stored.len() <= acked.records.len() + 1, "{did}");

        // The official consumer verifies the export against the account's signing key.
        let creds: Value = client
            .get(format!(
                "{base}/xrpc/com.atproto.identity.getRecommendedDidCredentials"
            ))
            .header("authorization", &account.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = creds["verificationMethods"]["atproto"].as_str().unwrap();
        let car = crate::support::get_repo(&client, &base, did).await;
        exports.push((car, did.as_str(), key.to_owned()));
        expected.push(json!({"rev": rev, "records": stored.len()}));
    }
    drop(server);
    let repos: Vec<_> = exports
        .iter()
        .map(|(car, did, key)| (&car[..], *did, key.as_str()))
        .collect();
    assert_eq!(crate::support::verify_repo_cars(&repos), expected);
}
