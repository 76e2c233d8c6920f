//! Moving accounts between the reference PDS (npm `@atproto/pds`) and Rookery, both ways,
//! with the official `@atproto/api` client following the documented migration steps
//! (`tests/js/migrate-account.mjs`), the real PLC directory and a real SMTP server for the
//! PLC token; the new host's firehose is read by the official verifying consumer
//! (`@atproto/sync`), and its export checked with the official `verifyRepoCar`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use rookery::config::Secret;
use serde_json::{Value, json};

use crate::account_mail::FROM;
use crate::support;
use support::pds::TestPds;
use support::plc::{PlcServer, node_binary};
use support::refpds::RefPds;
use support::smtp::SmtpServer;

const REFERENCE_FROM: &str = "noreply@ref.test";
const PASSWORD: &str = "correct-horse-battery";
const RECORDS: usize = 1000;
const BLOBS: usize = 3;

fn script() -> (std::path::PathBuf, std::path::PathBuf) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    (node_binary(repo), repo.join("tests/js/migrate-account.mjs"))
}

/// Creates an account on `service` with records, blobs, a profile and preferences.
fn seed(service: &str, handle: &str, email: &str) -> Value {
    let (node, script) = script();
    let args = json!({"service": service, "handle": handle, "email": email,
        "password": PASSWORD, "records": RECORDS, "blobs": BLOBS});
    let output = Command::new(node)
        .arg(script)
        .arg("seed")
        .arg(args.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "seed on {service}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    result_line(&String::from_utf8_lossy(&output.stdout))
}

fn result_line(stdout: &str) -> Value {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT="))
        .unwrap_or_else(|| panic!("no RESULT line in {stdout:?}"));
    serde_json::from_str(line).unwrap()
}

/// Runs the move from `old` to `new`, handing it the PLC token the old host mails (sent
/// from `old_from`) to `email`.
async fn migrate(
    old: &str,
    old_from: &str,
    new: &str,
    identifier: &str,
    new_handle: &str,
    email: &str,
) -> Value {
    let smtp = SmtpServer::shared();
    let mails_before = smtp.mail_to(email).len();
    let (node, script) = script();
    let args = json!({"old": old, "new": new, "plcUrl": PlcServer::shared().url(),
        "identifier": identifier, "password": PASSWORD, "newHandle": new_handle, "email": email});
    let mut child = Command::new(node)
        .arg(script)
        .arg("move")
        .arg(args.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = rx;
    let mut result = None;
    while let Some(line) = lines.recv().await {
        if line == "NEED_PLC_TOKEN" {
            // The old host's mail, among whatever else reached this address meanwhile.
            let mut n = mails_before + 1;
            let token = loop {
                let mail = smtp.wait_for(email, n).await;
                if mail.from.contains(old_from) {
                    break mail.token();
                }
                n += 1;
            };
            writeln!(stdin, "{token}").unwrap();
        } else if let Some(json) = line.strip_prefix("RESULT=") {
            result = Some(serde_json::from_str::<Value>(json).unwrap());
        }
    }
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "move {old} → {new}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    result.expect("a RESULT line")
}

/// What must hold after a move of the seeded account to `new_pds` (its public URL).
/// `moved_away` are the accounts that left `new_pds` earlier: their old commits there no
/// longer verify against their DID documents, and are the only errors allowed.
fn check_moved(
    moved: &Value,
    seeded: &Value,
    new_pds: &str,
    new_handle: &str,
    moved_away: &[&str],
) {
    let did = seeded["did"].as_str().unwrap();
    assert_eq!(moved["did"], did);
    // The PLC document points at the new host, with the new handle.
    assert_eq!(moved["pds"], new_pds, "{}", moved["pds"]);
    assert_eq!(moved["handle"], new_handle);
    // Every record is served there with the same CID.
    let before = moved["recordsBefore"].as_object().unwrap();
    assert_eq!(before.len(), RECORDS + BLOBS + 1);
    assert_eq!(moved["recordsAfter"], moved["recordsBefore"]);
    // Every blob, byte for byte.
    let mut served: Vec<&str> = moved["blobsServed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut blobs: Vec<&str> = seeded["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    served.sort_unstable();
    blobs.sort_unstable();
    assert_eq!(served, blobs);
    // The reference derives a `declaredAgePref` from the birth date when it answers; every
    // stored preference is the same on both hosts.
    let stored = |prefs: &Value| -> Vec<Value> {
        let prefs = prefs.as_array().unwrap().iter();
        prefs
            .filter(|p| p["$type"] != "app.bsky.actor.defs#declaredAgePref")
            .cloned()
            .collect()
    };
    assert_eq!(stored(&moved["prefsAfter"]), stored(&moved["prefsBefore"]));
    let prefs = moved["prefsBefore"].as_array().unwrap();
    assert!(
        prefs
            .iter()
            .any(|p| p["$type"] == "app.bsky.actor.defs#adultContentPref"),
        "{prefs:?}"
    );
    // The new host's own figures, before activation and after.
    let before = &moved["statusBefore"];
    assert_eq!(before["activated"], false, "{before}");
    assert_eq!(before["indexedRecords"], RECORDS + BLOBS + 1, "{before}");
    assert_eq!(before["expectedBlobs"], BLOBS, "{before}");
    assert_eq!(before["importedBlobs"], BLOBS, "{before}");
    let after = &moved["statusAfter"];
    assert_eq!(after["activated"], true, "{after}");
    assert_eq!(after["validDid"], true, "{after}");
    // The old host reports the account deactivated.
    assert_eq!(
        moved["oldStatus"]["activated"], false,
        "{}",
        moved["oldStatus"]
    );
    let old_repo = &moved["oldRepoStatus"];
    assert_eq!(old_repo["active"], false, "{old_repo}");
    assert_eq!(old_repo["status"], "deactivated", "{old_repo}");
    // The verifying consumer saw #identity, #account (active) and #sync, with no error.
    assert_eq!(moved["firehoseErrors"], json!([]), "{}", moved["firehose"]);
    for other in moved["otherErrorDids"].as_array().unwrap() {
        assert!(
            moved_away.contains(&other.as_str().unwrap()),
            "firehose errors about {other}"
        );
    }
    let events = moved["firehose"].as_array().unwrap();
    for kind in ["identity", "account", "sync"] {
        assert!(
            events.iter().any(|e| e["event"] == kind),
            "{kind}: {events:?}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "account" && e["active"] == true),
        "{events:?}"
    );
}

/// The new host's export verifies with the official `verifyRepoCar` against `key`, and
/// holds `records` records.
async fn check_export(service: &str, moved: &Value, key: &str, records: usize) {
    let did = moved["did"].as_str().unwrap();
    let car = reqwest::get(format!("{service}/xrpc/com.atproto.sync.getRepo?did={did}"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let official = support::verify_repo_car(&car, did, key);
    assert_eq!(
        official["records"].as_u64(),
        Some(records as u64),
        "{official}"
    );
}

/// One post by `identifier` on `service`, through its XRPC API.
async fn post_once(service: &str, identifier: &str) {
    let client = reqwest::Client::new();
    let session: Value = client
        .post(format!("{service}/xrpc/com.atproto.server.createSession"))
        .json(&json!({"identifier": identifier, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reply = client
        .post(format!("{service}/xrpc/com.atproto.repo.createRecord"))
        .bearer_auth(session["accessJwt"].as_str().unwrap())
        .json(
            &json!({"repo": session["did"], "collection": "app.bsky.feed.post",
            "record": {"$type": "app.bsky.feed.post", "text": "moved",
                       "createdAt": "2026-12-03T00:00:00.000Z"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "{:?}", reply.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_move_between_the_reference_pds_and_rookery_both_ways() {
    let smtp = SmtpServer::shared();
    let reference = RefPds::start(PlcServer::shared().url(), smtp);
    let rookery = TestPds::start_with(|config| {
        config.email = Some(smtp.config(FROM));
        config.admin_password = Some(Secret::new("admin-pass-123"));
    })
    .await;
    let reference_port = reference.url().rsplit(':').next().unwrap().to_owned();
    // The reference names itself http://localhost:<port> (its PDS_HOSTNAME is localhost).
    let reference_public = format!("http://localhost:{reference_port}");

    // In: from the reference PDS to Rookery.
    let email = "arriving@example.com";
    let seeded = seed(reference.url(), "arriving.ref.test", email);
    let moved = migrate(
        reference.url(),
        REFERENCE_FROM,
        &rookery.url(),
        "arriving.ref.test",
        "arriving.test",
        email,
    )
    .await;
    check_moved(&moved, &seeded, &rookery.url(), "arriving.test", &[]);
    let arrived = seeded["did"].as_str().unwrap().to_owned();
    // Rookery re-signs the imported head with the account's new key when it activates, so the
    // export verifies against the DID document at once.
    let key = moved["signingKey"].as_str().unwrap();
    check_export(&rookery.url(), &moved, key, RECORDS + BLOBS + 1).await;

    // Out: from Rookery to the reference PDS.
    let email = "leaving@example.com";
    let seeded = seed(&rookery.url(), "leaving.test", email);
    let moved = migrate(
        &rookery.url(),
        FROM,
        reference.url(),
        "leaving.test",
        "leaving.ref.test",
        email,
    )
    .await;
    check_moved(
        &moved,
        &seeded,
        &reference_public,
        "leaving.ref.test",
        &[arrived.as_str()],
    );
    // The reference keeps the imported head as it was, signed with the key this account had
    // on Rookery: the export verifies against that key, and against the new key in the DID
    // document from the first write on the new host.
    let did: rookery::syntax::Did = moved["did"].as_str().unwrap().parse().unwrap();
    let old_key = rookery.signing_key(&did).await.to_did_key();
    check_export(reference.url(), &moved, &old_key, RECORDS + BLOBS + 1).await;
    post_once(reference.url(), "leaving.ref.test").await;
    let key = moved["signingKey"].as_str().unwrap();
    check_export(reference.url(), &moved, key, RECORDS + BLOBS + 2).await;
    rookery.stop().await;
}
