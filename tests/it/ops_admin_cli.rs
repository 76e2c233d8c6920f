//! `rookery admin …` (the real binary) against a running server over HTTP: exit statuses,
//! `--json` output, and the server-side effect of each subcommand whose admin method exists.

use std::path::Path;
use std::process::Output;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use rookery::accounts::{AccountRef, AccountStatus};
use rookery::config::Secret;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support;
use support::pds::TestPds;

const ADMIN_PASSWORD: &str = "cli-admin-password";

async fn rookery(args: &[&str], env: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_rookery"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run rookery")
}

/// Runs `rookery admin --url … --password … --json ARGS`, expecting success; its JSON.
async fn admin_json(pds: &TestPds, args: &[&str]) -> Value {
    let url = pds.url();
    let mut all = vec![
        "admin",
        "--url",
        &url,
        "--password",
        ADMIN_PASSWORD,
        "--json",
    ];
    all.extend_from_slice(args);
    let out = rookery(&all, &[]).await;
    assert!(
        out.status.success(),
        "rookery {all:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{all:?} printed no JSON ({e}): {:?}", out.stdout))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_errors_are_clear() {
    let pds = TestPds::start_with(|c| c.admin_password = Some(Secret::new(ADMIN_PASSWORD))).await;
    let url = pds.url();

    // Nothing to connect to: status 2 and what to set.
    let out = rookery(&["admin", "account", "list"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("PDS_HOSTNAME"), "{}", stderr(&out));

    // Unreachable: status 3. A port nothing listens on: bind one and drop it.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let out = rookery(
        &[
            "admin",
            "--url",
            &format!("http://{closed}"),
            "--password",
            "x",
            "account",
            "info",
            "did:plc:x",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach the server"),
        "{}",
        stderr(&out)
    );

    // Wrong password: status 4, also when it comes from a pds.env file.
    let out = rookery(
        &[
            "admin",
            "--url",
            &url,
            "--password",
            "nope",
            "invite",
            "create",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refused the admin password"),
        "{}",
        stderr(&out)
    );
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("pds.env");
    std::fs::write(
        &env_file,
        format!(
            "PDS_HOSTNAME=localhost\nPDS_PORT={}\nPDS_ADMIN_PASSWORD=wrong\n",
            pds.addr.port()
        ),
    )
    .unwrap();
    let env_path = env_file.to_str().unwrap();
    let out = rookery(&["admin", "--config", env_path, "invite", "create"], &[]).await;
    // localhost:PORT resolves to 127.0.0.1 or ::1; the server listens on 127.0.0.1 only, so
    // either the password is refused or (IPv6 first, no fallback) the server is unreachable.
    assert!(
        matches!(out.status.code(), Some(3 | 4)),
        "{:?} {}",
        out.status,
        stderr(&out)
    );
    // The environment supplies what the file does not; --url overrides the hostname.
    let out = rookery(
        &["admin", "--url", &url, "--json", "invite", "create"],
        &[("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));

    // A method the server does not implement: status 1 with the server's error.
    let out = rookery(
        &[
            "admin",
            "--url",
            &url,
            "--password",
            ADMIN_PASSWORD,
            "invite",
            "list",
        ],
        &[],
    )
    .await;
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("com.atproto.admin.getInviteCodes"),
            "{}",
            stderr(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_manages_accounts_invites_and_exports() {
    let pds = TestPds::start_with(|c| {
        c.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        c.invite_required = true;
    })
    .await;

    // account create: an invite code, then createAccount with a generated password.
    let created = admin_json(
        &pds,
        &["account", "create", "new@example.com", "newbie.test"],
    )
    .await;
    let did = created["did"].as_str().unwrap().to_owned();
    assert!(did.starts_with("did:plc:"), "{created}");
    assert_eq!(created["handle"], "newbie.test");
    let password = created["password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 24);
    let login = reqwest::Client::new()
        .post(format!(
            "{}/xrpc/com.atproto.server.createSession",
            pds.url()
        ))
        .json(&json!({"identifier": "newbie.test", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    let (other, _) = pds.seed_account("other.test", "other-password-1").await;

    // account info by handle and by DID; account list.
    let info = admin_json(&pds, &["account", "info", "newbie.test"]).await;
    assert_eq!(info["did"], did.as_str());
    assert_eq!(info["email"], "new@example.com");
    assert_eq!(admin_json(&pds, &["account", "info", &did]).await, info);
    let list = admin_json(&pds, &["account", "list"]).await;
    let mut dids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["did"].as_str().unwrap())
        .collect();
    dids.sort_unstable();
    let mut want = vec![did.as_str(), other.as_str()];
    want.sort_unstable();
    assert_eq!(dids, want);

    // takedown / untakedown.
    admin_json(
        &pds,
        &[
            "account",
            "takedown",
            other.as_str(),
            "--reference",
            "case-7",
        ],
    )
    .await;
    let account = pds
        .state
        .accounts()
        .get_account(AccountRef::Did(other.as_str()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.status(), AccountStatus::Takendown);
    let list = admin_json(&pds, &["account", "list"]).await;
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["did"] == other.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["status"], "takendown");
    admin_json(&pds, &["account", "untakedown", other.as_str()]).await;
    let account = pds
        .state
        .accounts()
        .get_account(AccountRef::Did(other.as_str()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.status(), AccountStatus::Active);

    // invite create: codes that create accounts.
    let invites = admin_json(&pds, &["invite", "create", "--count", "2", "--uses", "1"]).await;
    let codes = invites["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 2);
    let reply = reqwest::Client::new()
        .post(format!("{}/xrpc/com.atproto.server.createAccount", pds.url()))
        .json(&json!({"handle": "invited.test", "email": "i@example.com", "password": "invited-pass-1", "inviteCode": codes[0]}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);

    // export: the repository as a CAR file that verifies against the account's key.
    let dir = tempfile::tempdir().unwrap();
    let car = dir.path().join("repo.car");
    let url = pds.url();
    let out = rookery(
        &[
            "admin",
            "--url",
            &url,
            "--password",
            ADMIN_PASSWORD,
            "export",
            &did,
            "--out",
            car.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let key = pds.signing_key(&did.parse().unwrap()).await;
    let out = rookery(
        &[
            "car",
            "inspect",
            car.to_str().unwrap(),
            "--key",
            &key.to_did_key(),
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    // And to stdout.
    let out = rookery(
        &[
            "admin",
            "--url",
            &url,
            "--password",
            ADMIN_PASSWORD,
            "export",
            &did,
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, std::fs::read(&car).unwrap());
    assert!(Path::new(&car).metadata().unwrap().len() > 0);

    // The account and invite subcommands over the admin API, each checked by its effect.
    let run = |args: Vec<String>| {
        let url = url.clone();
        async move {
            let mut all = vec![
                "admin".to_owned(),
                "--url".to_owned(),
                url,
                "--password".to_owned(),
                ADMIN_PASSWORD.to_owned(),
                "--json".to_owned(),
            ];
            all.extend(args);
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            rookery(&all, &[]).await
        }
    };
    let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let listed_codes = |out: &Output| -> Vec<(String, bool)> {
        assert!(out.status.success(), "{}", stderr(out));
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
        listed["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["code"].as_str().unwrap().to_owned(),
                    c["disabled"].as_bool().unwrap(),
                )
            })
            .collect()
    };

    let code = codes[1].as_str().unwrap().to_owned();
    let listed = listed_codes(&run(args(&["invite", "list"])).await);
    assert!(listed.contains(&(code.clone(), false)), "{listed:?}");

    let out = run(args(&["invite", "disable", &code])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = listed_codes(&run(args(&["invite", "list"])).await);
    assert!(listed.contains(&(code.clone(), true)), "{listed:?}");

    let out = run(args(&["account", "reset-password", &did])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let login = reqwest::Client::new()
        .post(format!(
            "{}/xrpc/com.atproto.server.createSession",
            pds.url()
        ))
        .json(&json!({"identifier": did, "password": printed["password"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    // import: another account's repository is refused (status 1, the method and the reason
    // named); the account's own export imports.
    let import = |file: &Path| {
        vec![
            "import".to_owned(),
            file.to_str().unwrap().to_owned(),
            "--identifier".to_owned(),
            "invited.test".to_owned(),
            "--account-password".to_owned(),
            "invited-pass-1".to_owned(),
        ]
    };
    let out = run(import(&car)).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("com.atproto.repo.importRepo") && err.contains("commit is for"),
        "{err}"
    );
    let invited = pds
        .state
        .accounts()
        .get_account(AccountRef::Handle("invited.test"))
        .await
        .unwrap()
        .unwrap();
    let own = dir.path().join("own.car");
    let out = run(vec![
        "export".to_owned(),
        invited.did.clone(),
        "--out".to_owned(),
        own.to_str().unwrap().to_owned(),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(import(&own)).await;
    assert!(out.status.success(), "{}", stderr(&out));

    let out = run(args(&["account", "delete", other.as_str()])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let gone = pds
        .state
        .accounts()
        .get_account(AccountRef::Did(other.as_str()))
        .await
        .unwrap();
    assert!(gone.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_requests_crawls_from_relays() {
    let (tx, mut requests) = mpsc::unbounded_channel::<Value>();
    let relay = axum::Router::new()
        .route(
            "/xrpc/com.atproto.sync.requestCrawl",
            post(
                |State(tx): State<mpsc::UnboundedSender<Value>>, Json(body): Json<Value>| async move {
                    let _ = tx.send(body);
                    Json(json!({}))
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, relay).await.unwrap() });

    let out = rookery(
        &[
            "admin",
            "--url",
            "https://pds.example.com",
            "--json",
            "request-crawl",
        ],
        &[("PDS_CRAWLERS", &relay_url)],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed,
        json!({"hostname": "pds.example.com", "relays": [relay_url]})
    );
    assert_eq!(
        requests.recv().await.unwrap(),
        json!({"hostname": "pds.example.com"})
    );
}
