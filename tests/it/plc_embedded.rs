//! The embedded PLC directory (`rookery::plc_directory`) against the REAL one
//! (`@did-plc/server`): the same signed operation sequences are posted to both, and every
//! answer (status, DID document, `/data`, logs, audit log without its timestamps, error
//! messages) must be the same. Then the official resolvers (`@atproto/identity` in Node, the
//! Python `atproto` SDK) read both directories and must see the same thing.

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};

use rookery::crypto::{Algorithm, Keypair};
use rookery::identity::plc::{
    self, PlcChanges, PlcClient, PlcDirectory, PlcError, PlcOp, SignedOp, TombstoneOp, UnsignedOp,
    create_genesis, tombstone_op, update_op,
};
use rookery::plc_directory::{Directory, http};
use rookery::syntax::Did;
use serde_json::{Value, json};
use support::pds::TestPds;
use support::plc::PlcServer;
use support::process::LineProcess;
use tokio_util::sync::CancellationToken;

/// The two directories side by side.
struct Directories {
    reference: String,
    embedded: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Directories {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// One HTTP answer: status and body (JSON when it parses, else the text as a JSON string).
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

async fn directories() -> Directories {
    let reference = PlcServer::shared().url().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::open_in(dir.path()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let server = http::serve(listener, directory, shutdown.clone()).unwrap();
    Directories {
        reference,
        embedded: format!("http://{}", server.local_addr),
        client: reqwest::Client::new(),
        shutdown,
        _dir: dir,
    }
}

impl Directories {
    async fn send(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{base}{path}"));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body }
    }

    /// (reference, embedded) answers to the same request.
    async fn both(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (Answer, Answer) {
        let reference = self.send(&self.reference, method.clone(), path, body).await;
        let embedded = self.send(&self.embedded, method, path, body).await;
        (reference, embedded)
    }

    /// Posts `op` to both; they must answer alike. Returns the answer.
    async fn post(&self, did: &str, op: &SignedOp) -> Answer {
        let body = serde_json::to_value(op).unwrap();
        let (reference, embedded) = self
            .both(reqwest::Method::POST, &format!("/{did}"), Some(&body))
            .await;
        assert_eq!(embedded, reference, "POST /{did} {body}");
        embedded
    }

    /// Every read route for `did` answers alike on both (audit logs compared without their
    /// `createdAt`, which must be increasing ISO timestamps on ours).
    async fn same_reads(&self, did: &str) {
        for suffix in ["", "/data", "/log", "/log/last"] {
            let path = format!("/{did}{suffix}");
            let (reference, embedded) = self.both(reqwest::Method::GET, &path, None).await;
            assert_eq!(embedded, reference, "GET {path}");
        }
        let path = format!("/{did}/log/audit");
        let (mut reference, mut embedded) = self.both(reqwest::Method::GET, &path, None).await;
        let ours = strip_created_at(&mut embedded.body);
        strip_created_at(&mut reference.body);
        assert_eq!(embedded, reference, "GET {path}");
        let times: Vec<i64> = ours
            .iter()
            .map(|t| http::parse_time(t).unwrap_or_else(|| panic!("createdAt {t}")))
            .collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{ours:?}");
        assert!(
            ours.iter().all(|t| t.ends_with('Z') && t.len() == 24),
            "{ours:?}"
        );
    }
}

/// Removes `createdAt` from each audit entry, returning them.
fn strip_created_at(audit: &mut Value) -> Vec<String> {
    audit
        .as_array_mut()
        .map(|entries| {
            entries
                .iter_mut()
                .filter_map(|e| e.as_object_mut()?.remove("createdAt"))
                .map(|t| t.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

struct Account {
    did: String,
    genesis: SignedOp,
    recovery: Keypair,
    rotation: Keypair,
}

/// A DID with rotation keys `[recovery (P-256), rotation (K-256)]`, signed by `rotation`.
fn account(handle: &str) -> Account {
    let recovery = Keypair::generate(Algorithm::P256);
    let rotation = Keypair::generate(Algorithm::K256);
    let signing = Keypair::generate(Algorithm::K256);
    let (did, genesis) = create_genesis(
        &signing.public_key().to_did_key(),
        vec![
            recovery.public_key().to_did_key(),
            rotation.public_key().to_did_key(),
        ],
        &handle.parse().unwrap(),
        "https://pds.example.com",
        &rotation,
    )
    .unwrap();
    Account {
        did: did.to_string(),
        genesis,
        recovery,
        rotation,
    }
}

fn change(prev: &SignedOp, changes: PlcChanges, signer: &Keypair) -> SignedOp {
    update_op(prev, &changes, signer).unwrap()
}

fn new_handle(handle: &str) -> PlcChanges {
    PlcChanges {
        handle: Some(handle.parse().unwrap()),
        ..PlcChanges::default()
    }
}

fn assert_ok(answer: &Answer) {
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, Some("OK")),
        "{answer:?}"
    );
}

/// Genesis, updates, a rotation-key change, a recovery that nullifies, invalid operations
/// and a tombstone, through both directories; then the official resolvers read both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_operations_same_answers_as_the_reference_directory() {
    let d = directories().await;

    // Unknown DIDs.
    let unknown = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    for suffix in ["", "/data", "/log", "/log/audit", "/log/last"] {
        let path = format!("/{unknown}{suffix}");
        let (reference, embedded) = d.both(reqwest::Method::GET, &path, None).await;
        assert_eq!(embedded, reference, "GET {path}");
        assert_eq!(embedded.status, 404);
        assert_eq!(embedded.message(), format!("DID not registered: {unknown}"));
    }

    // 1. Genesis (a K-256 signer), a handle change, a PDS + signing key change by the
    //    recovery key (P-256), then a rotation-key change after which the old key is out.
    let a = account("alice.test");
    // Posted under another DID, the genesis does not hash to it. (The reference release
    // quotes a longer hash; ours is the DID, a prefix of it.)
    let body = serde_json::to_value(&a.genesis).unwrap();
    let (reference, embedded) = d
        .both(reqwest::Method::POST, &format!("/{unknown}"), Some(&body))
        .await;
    assert_eq!((reference.status, embedded.status), (400, 400));
    let prefix = "Hash of genesis operation does not match DID identifier: ";
    assert_eq!(embedded.message(), format!("{prefix}{}", a.did));
    assert!(
        reference.message().starts_with(embedded.message()),
        "{reference:?}"
    );

    assert_ok(&d.post(&a.did, &a.genesis).await);
    d.same_reads(&a.did).await;
    // The genesis again: out of order.
    let again = d.post(&a.did, &a.genesis).await;
    assert_eq!(
        (again.status, again.message()),
        (400, "Operations not correctly ordered")
    );

    let u1 = change(&a.genesis, new_handle("alice2.test"), &a.rotation);
    assert_ok(&d.post(&a.did, &u1).await);
    let new_signing = Keypair::generate(Algorithm::P256);
    let u2 = change(
        &u1,
        PlcChanges {
            pds_endpoint: Some("https://other-pds.example.com".into()),
            signing_key: Some(new_signing.public_key().to_did_key()),
            ..PlcChanges::default()
        },
        &a.recovery,
    );
    assert_ok(&d.post(&a.did, &u2).await);
    let next_rotation = Keypair::generate(Algorithm::P256);
    let u3 = change(
        &u2,
        PlcChanges {
            rotation_keys: Some(vec![
                a.recovery.public_key().to_did_key(),
                next_rotation.public_key().to_did_key(),
            ]),
            ..PlcChanges::default()
        },
        &a.rotation,
    );
    assert_ok(&d.post(&a.did, &u3).await);
    // The replaced rotation key no longer signs; the new one does.
    let stale = forge(&u3, &a.rotation);
    let refused = d.post(&a.did, &stale).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.message(),
        format!(
            "Invalid signature on op: {}",
            serde_json::to_string(&stale).unwrap()
        )
    );
    let u4 = change(&u3, new_handle("alice3.test"), &next_rotation);
    assert_ok(&d.post(&a.did, &u4).await);
    // A prev that is not in the log; a second genesis-like op (null prev).
    let dangling = change(
        &change(&u4, new_handle("x.test"), &next_rotation),
        new_handle("y.test"),
        &next_rotation,
    );
    let refused = d.post(&a.did, &dangling).await;
    assert_eq!(
        (refused.status, refused.message()),
        (400, "Operations not correctly ordered")
    );
    let null_prev = UnsignedOp::Plc(PlcOp {
        prev: None,
        ..u4.op.normalize().unwrap()
    })
    .sign(&next_rotation)
    .unwrap();
    let refused = d.post(&a.did, &null_prev).await;
    assert_eq!(
        (refused.status, refused.message()),
        (400, "Operations not correctly ordered")
    );
    // A tampered signature.
    let mut tampered = change(&u4, new_handle("z.test"), &next_rotation);
    tampered.sig = plc::update_op(&u4, &new_handle("w.test"), &next_rotation)
        .unwrap()
        .sig;
    let refused = d.post(&a.did, &tampered).await;
    assert!(
        refused.message().starts_with("Invalid signature on op: "),
        "{refused:?}"
    );
    d.same_reads(&a.did).await;

    // 2. Nullification: the rotation key's update is undone by the recovery key (higher
    //    priority) within the window; the rotation key cannot undo the recovery.
    let b = account("bob.test");
    assert_ok(&d.post(&b.did, &b.genesis).await);
    let hijack = change(&b.genesis, new_handle("mallory.test"), &b.rotation);
    assert_ok(&d.post(&b.did, &hijack).await);
    let hijack2 = change(&hijack, new_handle("mallory2.test"), &b.rotation);
    assert_ok(&d.post(&b.did, &hijack2).await);
    let recovery = change(&b.genesis, new_handle("bob2.test"), &b.recovery);
    assert_ok(&d.post(&b.did, &recovery).await);
    let counter = change(&b.genesis, new_handle("mallory3.test"), &b.rotation);
    let refused = d.post(&b.did, &counter).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.message().starts_with("Invalid signature on op: "),
        "{refused:?}"
    );
    let after = change(&recovery, new_handle("bob3.test"), &b.rotation);
    assert_ok(&d.post(&b.did, &after).await);
    d.same_reads(&b.did).await;
    let audit = d
        .send(
            &d.embedded,
            reqwest::Method::GET,
            &format!("/{}/log/audit", b.did),
            None,
        )
        .await;
    let nullified: Vec<bool> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["nullified"].as_bool().unwrap())
        .collect();
    assert_eq!(nullified, [false, true, true, false, false]);

    // 3. Tombstone: the document is gone (410), /data 404, the log ends with it, and
    //    nothing may follow.
    let c = account("carol.test");
    assert_ok(&d.post(&c.did, &c.genesis).await);
    let tomb = tombstone_op(&c.genesis, &c.rotation).unwrap();
    assert_ok(&d.post(&c.did, &tomb).await);
    d.same_reads(&c.did).await;
    let (reference, embedded) = d
        .both(reqwest::Method::GET, &format!("/{}", c.did), None)
        .await;
    assert_eq!(embedded, reference);
    assert_eq!(
        (embedded.status, embedded.message()),
        (410, format!("DID not available: {}", c.did).as_str())
    );
    let (_, data) = d
        .both(reqwest::Method::GET, &format!("/{}/data", c.did), None)
        .await;
    assert_eq!(data.status, 404);
    let past = UnsignedOp::Tombstone(TombstoneOp {
        prev: tomb.cid().unwrap().to_string(),
    })
    .sign(&c.rotation)
    .unwrap();
    let refused = d.post(&c.did, &past).await;
    assert_eq!(
        (refused.status, refused.message()),
        (400, "Operations not correctly ordered")
    );

    // 4. Malformed posts.
    for body in [json!({"type": "plc_operation"}), json!({"hello": 1})] {
        let (reference, embedded) = d
            .both(reqwest::Method::POST, &format!("/{}", a.did), Some(&body))
            .await;
        assert_eq!(embedded, reference, "{body}");
        assert_eq!(embedded.status, 400);
        assert!(embedded.message().starts_with("Not a valid operation: "));
    }

    // The current documents, as checked above, read by the official resolvers.
    let dids = [a.did.as_str(), b.did.as_str(), c.did.as_str(), unknown];
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node = support::plc::node_binary(repo);
    let python = support::plc::atproto_python(repo);
    let mut seen = Vec::new();
    for base in [&d.reference, &d.embedded] {
        let js = run(Command::new(&node)
            .arg(repo.join("tests/js/resolve-did.mjs"))
            .arg(base)
            .args(dids))
        .await;
        let py = run(Command::new(&python)
            .arg(repo.join("tests/py/resolve_did.py"))
            .arg(base)
            .args(dids))
        .await;
        seen.push((js, py));
    }
    assert_eq!(
        seen[1], seen[0],
        "official resolvers see the same in both directories"
    );
    let (js, py) = &seen[1];
    assert_eq!(js[0]["atproto"]["handle"], json!("alice3.test"));
    assert_eq!(
        js[0]["atproto"]["pds"],
        json!("https://other-pds.example.com")
    );
    assert_eq!(
        js[0]["atproto"]["signingKey"],
        json!(new_signing.public_key().to_did_key())
    );
    assert_eq!(py[0]["atproto"]["handle"], json!("alice3.test"));
    assert_eq!(
        py[0]["atproto"]["pds"],
        json!("https://other-pds.example.com")
    );
    assert_eq!(
        py[0]["atproto"]["signing_key"],
        json!(new_signing.public_key().to_did_key())
    );
    assert_eq!(js[1]["atproto"]["handle"], json!("bob3.test"));
    assert_eq!(py[1]["atproto"]["handle"], json!("bob3.test"));
    // Tombstoned: 410 is an error for both resolvers; unknown: no document.
    assert_eq!(js[2]["status"], json!(410), "{}", js[2]);
    assert!(
        py[2]["error"]
            .as_str()
            .unwrap()
            .contains("DidPlcResolverError"),
        "{}",
        py[2]
    );
    assert_eq!(js[3]["doc"], Value::Null);
    assert_eq!(py[3]["doc"], Value::Null);
}

/// An operation like `prev_op`'s state on top of it, signed by `signer` whatever the keys.
fn forge(prev_op: &SignedOp, signer: &Keypair) -> SignedOp {
    UnsignedOp::Plc(PlcOp {
        prev: Some(prev_op.cid().unwrap().to_string()),
        ..prev_op.op.normalize().unwrap()
    })
    .sign(signer)
    .unwrap()
}

/// Runs a resolver script; its stdout is one JSON value per line.
async fn run(command: &mut Command) -> Vec<Value> {
    let mut command = std::mem::replace(command, Command::new("true"));
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A PDS without `PDS_DID_PLC_URL` on localhost registers its accounts in its embedded
/// directory, served at `/plc` (and `/did:…` at the root); the official resolvers read them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pds_registers_accounts_in_its_embedded_directory() {
    let pds = TestPds::start_with(|c| c.did_plc_url = None).await;
    assert!(pds.state.embedded_plc().is_some());
    let (did, _token) = pds.seed_account("dora.test", "password-dora").await;
    let plc_url = format!("{}/plc", pds.url());

    let client = reqwest::Client::new();
    let audit: Value = client
        .get(format!("{plc_url}/{did}/log/audit"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit.as_array().unwrap().len(), 1);
    assert_eq!(audit[0]["did"], json!(did.as_str()));
    assert_eq!(audit[0]["nullified"], json!(false));
    let root = client
        .get(format!("{}/{did}", pds.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 200);
    let mounted = client.get(format!("{plc_url}/{did}")).send().await.unwrap();
    assert_eq!(mounted.status(), 200);
    assert_eq!(
        root.json::<Value>().await.unwrap(),
        mounted.json::<Value>().await.unwrap()
    );
    let export = client
        .get(format!("{plc_url}/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(export.headers()["content-type"], "application/jsonlines");
    let lines: Vec<Value> = export
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["did"], json!(did.as_str()));
    // Other paths are still the PDS's.
    let other = client
        .get(format!("{}/favicon.ico", pds.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.json::<Value>().await.unwrap(),
        json!({"error": "NotFound", "message": "Not Found"})
    );

    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node = support::plc::node_binary(repo);
    let python = support::plc::atproto_python(repo);
    let js = run(Command::new(node)
        .arg(repo.join("tests/js/resolve-did.mjs"))
        .arg(&plc_url)
        .arg(did.as_str()))
    .await;
    let py = run(Command::new(python)
        .arg(repo.join("tests/py/resolve_did.py"))
        .arg(&plc_url)
        .arg(did.as_str()))
    .await;
    let key = pds
        .state
        .repo()
        .stores()
        .open(&did)
        .await
        .unwrap()
        .unwrap()
        .keypair()
        .public_key()
        .to_did_key();
    assert_eq!(
        js[0]["atproto"],
        json!({"did": did.as_str(), "signingKey": key, "handle": "dora.test", "pds": pds.state.config().public_url})
    );
    assert_eq!(
        py[0]["atproto"],
        json!({"did": did.as_str(), "signing_key": key, "handle": "dora.test", "pds": pds.state.config().public_url})
    );
}

/// `rookery plc serve` runs the directory alone: our PLC client registers and updates a DID
/// in it, the official resolver reads it, and a restart on the same data still knows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plc_serve_runs_the_directory_alone() {
    let data = tempfile::tempdir().unwrap();
    let start = || {
        let server = LineProcess::spawn(
            Command::new(env!("CARGO_BIN_EXE_rookery"))
                .args(["plc", "serve", "--port", "0", "--data"])
                .arg(data.path())
                .stdin(Stdio::null()),
        );
        // "http://127.0.0.1:PORT (data in …)"
        let line = server.wait_for("PLC directory listening on ").unwrap();
        let url = line.split_once(' ').unwrap().0.to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        (server, url)
    };
    let (server, url) = start();
    let client = PlcClient::new(&url).unwrap();
    let a = account("erin.test");
    let did: Did = a.did.parse().unwrap();
    client.submit(&did, &a.genesis).await.unwrap();
    let u1 = change(&a.genesis, new_handle("erin2.test"), &a.rotation);
    client.submit(&did, &u1).await.unwrap();
    let doc = client.resolve(&did).await.unwrap();
    assert_eq!(doc.handle(), Some("erin2.test".parse().unwrap()));
    let forged = forge(&u1, &Keypair::generate(Algorithm::K256));
    assert!(matches!(
        client.submit(&did, &forged).await,
        Err(PlcError::Rejected(m)) if m.starts_with("Invalid signature on op: ")
    ));
    drop(server);
    assert!(data.path().join("plc.sqlite").is_file());

    let (_server, url) = start();
    let client = PlcClient::new(&url).unwrap();
    assert_eq!(
        client.get_log(&did).await.unwrap(),
        vec![a.genesis.clone(), u1]
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node = support::plc::node_binary(repo);
    let js = run(Command::new(node)
        .arg(repo.join("tests/js/resolve-did.mjs"))
        .arg(&url)
        .arg(did.as_str()))
    .await;
    assert_eq!(js[0]["atproto"]["handle"], json!("erin2.test"));
    assert_eq!(js[0]["atproto"]["pds"], json!("https://pds.example.com"));
}
