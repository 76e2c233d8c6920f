//! The web pages in a real browser: headless Chromium (Debian's) driven by
//! `tests/js/web-pages.mjs` through puppeteer-core signs in, submits the forms and saves a
//! screenshot of every page under `target/screenshots/`; this test checks what it saw and
//! the effects through the XRPC API.

use std::path::PathBuf;
use std::process::Command;

use reqwest::StatusCode;
use rookery::config::Secret;
use serde_json::{Value, json};

use crate::support;
use crate::support::pds::TestPds;

const ADMIN_PASSWORD: &str = "browser-admin-pass";

/// `target/screenshots`.
fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_work_in_headless_chromium() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let node = support::plc::node_binary(repo);
    let status = Command::new("bash")
        .arg(repo.join("scripts/browser-deps.sh"))
        .status()
        .unwrap();
    assert!(status.success(), "scripts/browser-deps.sh failed");
    let pds = TestPds::start_with(|config| {
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    })
    .await;
    let (did, _) = pds.seed_account("webuser.test", "webuser-password").await;
    pds.seed_account("another.test", "another-password").await;
    let shots = screenshot_dir();
    let args = [
        repo.join("tests/js/web-pages.mjs").display().to_string(),
        pds.url(),
        ADMIN_PASSWORD.to_owned(),
        "webuser.test".to_owned(),
        "webuser-password".to_owned(),
        shots.display().to_string(),
    ];
    let output =
        tokio::task::spawn_blocking(move || Command::new(node).args(args).output().unwrap())
            .await
            .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "web-pages failed:\n{stdout}\n{stderr}"
    );
    let out: Value = serde_json::from_str(stdout.trim()).unwrap();

    assert_eq!(out["adminSignedOutStatus"], 401, "{out}");
    assert_eq!(out["wrongPasswordStatus"], 401, "{out}");
    assert_eq!(out["wrongPasswordText"], true, "{out}");
    assert_eq!(out["adminHomeStatus"], 200, "{out}");
    assert_eq!(out["searchFound"], true, "{out}");
    assert_eq!(out["takedownDone"], true, "{out}");
    assert_eq!(out["takenDown"], true, "{out}");
    assert_eq!(out["inviteRows"], 2, "{out}");
    assert_eq!(out["serverChart"], 60, "one bar a minute: {out}");
    assert_eq!(out["chineseDashboard"], true, "{out}");
    assert_eq!(out["accountSignedOutStatus"], 401, "{out}");
    assert_eq!(out["accountStatus"], 200, "{out}");
    assert_eq!(out["missingCsrfStatus"], 403, "{out}");
    assert_eq!(out["accountOnAdminStatus"], 401, "{out}");
    assert_eq!(out["chineseAccount"], true, "{out}");

    // The takedown was lifted again from the page; the invite codes exist; the app
    // password made in the browser signs in.
    let http = reqwest::Client::new();
    let status: Value = http
        .get(format!(
            "{}/xrpc/com.atproto.admin.getSubjectStatus?did={did}",
            pds.url()
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["takedown"]["applied"], false, "{status}");
    let codes: Value = http
        .get(format!(
            "{}/xrpc/com.atproto.admin.getInviteCodes",
            pds.url()
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(codes["codes"].as_array().unwrap().len(), 2, "{codes}");
    let app_password = out["appPassword"].as_str().unwrap();
    let session = http
        .post(format!(
            "{}/xrpc/com.atproto.server.createSession",
            pds.url()
        ))
        .json(&json!({ "identifier": "webuser.test", "password": app_password }))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), StatusCode::OK);

    // Every page left a screenshot.
    let names = out["shots"].as_array().unwrap();
    assert!(names.len() >= 12, "{out}");
    for name in names {
        let path = shots.join(format!("{}.png", name.as_str().unwrap()));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 2_000,
            "{}",
            path.display()
        );
    }
    pds.stop().await;
}
