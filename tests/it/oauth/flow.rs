//! The whole flow with the official `@atproto/oauth-client-node` (Node 22), and scope
//! enforcement seen by it.

use serde_json::Value;

use super::client::{DpopKey, TestClient};
use crate::support;
use crate::support::pds::TestPds;

const PASSWORD: &str = "correct horse battery staple";

/// Runs `tests/js/oauth-flow.mjs`; returns its JSON output.
async fn run_flow(pds: &TestPds, handle: &str, scope: &str, mode: &str) -> Value {
    let args = vec![
        pds.url(),
        pds.plc.url().to_owned(),
        handle.to_owned(),
        PASSWORD.to_owned(),
        scope.to_owned(),
        mode.to_owned(),
    ];
    support::run_js("oauth-flow.mjs", args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_full_flow() {
    let pds = TestPds::start().await;
    let (did, _) = pds.seed_account("alice.test", PASSWORD).await;
    let scope = "atproto transition:generic";
    let out = run_flow(&pds, "alice.test", scope, "full").await;
    assert_eq!(out["did"], did.as_str());
    assert_eq!(out["scope"], scope);
    // Neither `transition:email` nor `account:email`: getSession leaves the address out.
    assert_eq!(out["sessionEmail"], serde_json::Value::Null, "{out}");

    // The record the client created is gone again, and the repository has no posts.
    let uri = out["uri"].as_str().unwrap();
    assert!(uri.starts_with(&format!("at://{did}/app.bsky.feed.post/")));

    // After refresh and sign-out, none of the tokens works any more, with the same key.
    let key = DpopKey::from_private_jwk(&out["dpopJwk"]);
    let client = TestClient::new(&pds.url(), "unused");
    for set in ["first", "second"] {
        let access = out[set]["access_token"].as_str().unwrap();
        let answer = client.get_session(access, &key).await;
        assert_eq!(answer.status, 401, "{set}: {}", answer.text);
        let challenge = answer.header("www-authenticate").unwrap();
        assert!(challenge.starts_with("DPoP "), "{challenge}");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    assert!(
        pds.state
            .oauth()
            .sessions_of(did.as_str(), chrono::Utc::now().timestamp())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_limits_writes() {
    let pds = TestPds::start().await;
    let (did, _) = pds.seed_account("bob.test", PASSWORD).await;
    let scope = "atproto repo:app.bsky.feed.post?action=create account:email";
    let out = run_flow(&pds, "bob.test", scope, "scoped").await;
    assert_eq!(out["did"], did.as_str());
    // `account:email`: getSession shows the address.
    assert_eq!(out["sessionEmail"], "bob-test@example.com", "{out}");
    assert!(
        out["uri"]
            .as_str()
            .unwrap()
            .starts_with(&format!("at://{did}/app.bsky.feed.post/"))
    );
    for refused in ["like", "profile", "serviceAuth"] {
        assert_eq!(out["refused"][refused]["status"], 403, "{refused}: {out}");
        assert_eq!(
            out["refused"][refused]["error"], "InvalidToken",
            "{refused}"
        );
    }
    // Nothing but the post was written.
    let profile = pds
        .state
        .repo()
        .get_record(
            &did,
            &"app.bsky.actor.profile".parse().unwrap(),
            &"self".parse().unwrap(),
            None,
        )
        .await
        .unwrap();
    assert!(profile.is_none());
}

/// The sign-in and consent pages in headless Chromium (`tests/js/oauth-browser.mjs`), with
/// screenshots under `target/screenshots/`: a wrong password keeps the sign-in page, the
/// consent page lists the requested scopes, Allow sends the browser back to the client, whose
/// session then writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_consent_in_headless_chromium() {
    let shots = support::browser_screenshot_dir();
    let pds = TestPds::start().await;
    let (did, _) = pds.seed_account("carol.test", PASSWORD).await;
    let scope = "atproto transition:generic";
    let args = vec![
        pds.url(),
        pds.plc.url().to_owned(),
        "carol.test".to_owned(),
        PASSWORD.to_owned(),
        scope.to_owned(),
        shots.display().to_string(),
    ];
    let out = support::run_js("oauth-browser.mjs", args).await;
    assert_eq!(out["signInStatus"], 200, "{out}");
    assert_eq!(out["prefilled"], "carol.test", "{out}");
    assert_eq!(out["wrongPasswordStatus"], 401, "{out}");
    assert_eq!(out["wrongPasswordPage"], true, "{out}");
    assert_eq!(out["consentStatus"], 200, "{out}");
    assert_eq!(
        out["permissions"],
        serde_json::json!(["atproto", "transition:generic"]),
        "{out}"
    );
    assert_eq!(out["callbackState"], "browser-state", "{out}");
    assert_eq!(out["did"], did.as_str(), "{out}");
    let uri = out["uri"].as_str().unwrap();
    let rkey = uri.rsplit('/').next().unwrap();
    let got = reqwest::get(format!(
        "{}/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={rkey}",
        pds.url()
    ))
    .await
    .unwrap();
    assert_eq!(got.status(), 200);
    for name in [
        "oauth-sign-in",
        "oauth-sign-in-wrong-password",
        "oauth-consent",
    ] {
        assert!(shots.join(format!("{name}.png")).is_file(), "{name}");
    }
}
