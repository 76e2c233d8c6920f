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

/// An account with the email sign-in factor on: the OAuth sign-in page asks for the mailed
/// code after the password, refuses a wrong one (the page again, never a session), and goes
/// on to the consent page with the right one; the code is then spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_page_asks_for_the_mailed_code() {
    use super::client::{FormExt, REDIRECT, hidden, loopback_client_id, read};
    use crate::account_mail::{Auth, email_of, mail_pds, post};
    use crate::support::smtp::SmtpServer;

    let pds = mail_pds().await;
    let (did, access) = pds.seed_account("frank.test", PASSWORD).await;
    let email = email_of("frank.test");
    let (status, _) = post(
        &pds,
        "com.atproto.server.updateEmail",
        serde_json::json!({ "email": email, "emailAuthFactor": true }),
        Auth::Bearer(&access),
    )
    .await;
    assert_eq!(status, 200);

    let scope = "atproto transition:generic";
    let client = TestClient::new(&pds.url(), &loopback_client_id(scope));
    let par = client.par(scope, REDIRECT).await;
    assert_eq!(par.status, 201, "{}", par.text);
    let request_uri = par.json()["request_uri"].as_str().unwrap().to_owned();
    let page = client.authorize_page(&request_uri).await;
    let cookie = page.cookie();
    let html = page.text;
    assert!(
        !html.contains("name=\"code\""),
        "no code field before the password"
    );
    let csrf = hidden(&html, "csrf");
    let request_id = hidden(&html, "request_id");
    let sign_in = |code: Option<&str>| {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("request_id", request_id.clone()),
            ("identifier", "frank.test".to_owned()),
            ("password", PASSWORD.to_owned()),
        ];
        if let Some(code) = code {
            form.push(("code", code.to_owned()));
        }
        let request = client
            .http
            .post(client.url("/oauth/authorize/sign-in"))
            .header("cookie", &cookie);
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            read(request.form_pairs(&pairs).send().await.unwrap()).await
        }
    };

    // The password alone: a code is mailed and the page asks for it.
    let asked = sign_in(None).await;
    assert_eq!(asked.status, 401, "{}", asked.text);
    assert!(
        asked
            .text
            .contains("A sign-in code was sent to your email address")
    );
    assert!(asked.text.contains("name=\"code\""), "{}", asked.text);
    assert!(!asked.text.contains("name=\"secret\""), "no consent yet");
    let mail = SmtpServer::shared().wait_for(&email, 1).await;
    let code = mail.token();

    // A wrong code: the page again, with the code field.
    let wrong = sign_in(Some("AAAAA-BBBBB")).await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    assert!(
        wrong.text.contains("Invalid sign-in code"),
        "{}",
        wrong.text
    );
    assert!(!wrong.text.contains("name=\"secret\""));

    // The mailed code: the consent page, then a code for the client.
    let signed = sign_in(Some(&code)).await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    let code = client.approve(&cookie, &csrf, &signed.text).await;
    let tokens = client.exchange(&code, &client.verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    assert_eq!(tokens.json()["sub"], did.as_str());
}
