//! `com.atproto.server.*` over real HTTP against a whole PDS and a real PLC directory.

use crate::support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use rookery::accounts::EmailTokenPurpose;
use rookery::auth::AccessScope;
use rookery::config::Secret;
use rookery::crypto::{Algorithm, Keypair};
use rookery::syntax::Did;
use serde_json::{Value, json};
use support::pds::TestPds;

const NS: &str = "com.atproto.server.";

async fn call(
    pds: &TestPds,
    http: reqwest::Method,
    method: &str,
    query: &[(&str, &str)],
    body: Option<Value>,
    auth: Option<&str>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let url =
        url::Url::parse_with_params(&format!("{}/xrpc/{NS}{method}", pds.url()), query).unwrap();
    let mut req = reqwest::Client::new().request(http, url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value, headers)
}

async fn post(
    pds: &TestPds,
    method: &str,
    body: Value,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let (s, v, _) = call(
        pds,
        reqwest::Method::POST,
        method,
        &[],
        Some(body),
        auth.as_deref(),
    )
    .await;
    (s, v)
}

async fn get(
    pds: &TestPds,
    method: &str,
    query: &[(&str, &str)],
    token: Option<&str>,
) -> (StatusCode, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let (s, v, _) = call(
        pds,
        reqwest::Method::GET,
        method,
        query,
        None,
        auth.as_deref(),
    )
    .await;
    (s, v)
}

fn assert_error(got: (StatusCode, Value), status: StatusCode, name: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"], name, "{}", got.1);
    assert!(got.1["message"].is_string(), "{}", got.1);
}

fn keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

fn account_body(handle: &str, email: &str, password: &str) -> Value {
    json!({ "handle": handle, "email": email, "password": password })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_server() {
    let pds = TestPds::start().await;
    let (status, body) = get(&pds, "describeServer", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "did": pds.state.config().service_did,
            "availableUserDomains": [".test"],
            "inviteCodeRequired": false,
            "links": {},
            "contact": {},
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_account_registers_a_real_did() {
    let pds = TestPds::start().await;
    let recovery = Keypair::generate(Algorithm::P256).public_key().to_did_key();
    let mut body = account_body("Alice.TEST", "Alice@Example.com", "correct horse");
    body["recoveryKey"] = json!(recovery);
    let (status, out) = post(&pds, "createAccount", body, None).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(
        keys(&out),
        ["accessJwt", "did", "didDoc", "handle", "refreshJwt"]
    );
    assert_eq!(out["handle"], "alice.test");
    let did: Did = out["did"].as_str().unwrap().parse().unwrap();
    assert_eq!(did.method(), "plc");
    assert_eq!(out["didDoc"]["id"], did.as_str());

    // The real PLC directory knows the DID: handle, signing key, PDS, rotation keys.
    let plc = pds.state.resolver().plc();
    let data = plc.get_data(&did).await.unwrap();
    assert_eq!(data.also_known_as, ["at://alice.test"]);
    assert_eq!(
        data.rotation_keys,
        [
            recovery.clone(),
            pds.state.plc_rotation_key().public_key().to_did_key()
        ]
    );
    let actor = pds.state.repo().stores().open(&did).await.unwrap().unwrap();
    let signing = actor.keypair().public_key().to_did_key();
    assert_eq!(data.verification_methods["atproto"], signing);
    let doc = plc.resolve(&did).await.unwrap();
    assert_eq!(doc.handle().unwrap().as_str(), "alice.test");
    assert_eq!(
        doc.pds_endpoint(),
        Some(pds.state.config().public_url.as_str())
    );
    assert_eq!(doc.signing_key().unwrap().to_did_key(), signing);

    // The session works, and the account reads back.
    let access = out["accessJwt"].as_str().unwrap();
    let (status, session) = get(&pds, "getSession", &[], Some(access)).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(
        keys(&session),
        [
            "active",
            "did",
            "didDoc",
            "email",
            "emailAuthFactor",
            "emailConfirmed",
            "handle"
        ]
    );
    assert_eq!(session["did"], did.as_str());
    assert_eq!(session["handle"], "alice.test");
    assert_eq!(session["email"], "alice@example.com");
    assert_eq!(session["emailConfirmed"], false);
    assert_eq!(session["active"], true);
    let root = pds.state.repo().current_root(&did).await.unwrap();
    assert_eq!(root.did, did.as_str());

    // checkAccountStatus of a fresh account.
    let (status, check) = get(&pds, "checkAccountStatus", &[], Some(access)).await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check["activated"], true);
    assert_eq!(check["validDid"], true);
    assert_eq!(check["repoCommit"], root.cid.to_string());
    assert_eq!(check["repoRev"], root.rev);
    assert!(check["repoBlocks"].as_i64().unwrap() >= 1);
    assert_eq!(check["indexedRecords"], 0);
    assert_eq!(check["privateStateValues"], 0);
    assert_eq!(check["expectedBlobs"], 0);
    assert_eq!(check["importedBlobs"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_account_refuses_bad_input() {
    let pds = TestPds::start().await;
    pds.seed_account("taken.test", "password123").await;
    let bad = StatusCode::BAD_REQUEST;
    for (handle, name) in [
        ("bad_handle.test", "InvalidHandle"),
        ("-bad.test", "InvalidHandle"),
        ("ab.test", "InvalidHandle"),
        ("a.b.c.test", "InvalidHandle"),
        ("waytoolongforahandle1234.test", "InvalidHandle"),
        ("alice.localhost", "InvalidHandle"),
        ("alice.example.com", "UnsupportedDomain"),
        ("Taken.test", "HandleNotAvailable"),
    ] {
        let body = account_body(handle, "new@example.com", "password123");
        assert_error(post(&pds, "createAccount", body, None).await, bad, name);
    }
    for email in [
        "not-an-email",
        "a@b",
        "@example.com",
        "a b@example.com",
        "a@@example.com",
    ] {
        let body = account_body("newbie.test", email, "password123");
        assert_error(
            post(&pds, "createAccount", body, None).await,
            bad,
            "InvalidEmail",
        );
    }
    let body = account_body("newbie.test", "new@example.com", "short");
    assert_error(
        post(&pds, "createAccount", body, None).await,
        bad,
        "InvalidPassword",
    );
    let body = account_body("newbie.test", "taken-test@example.com", "password123");
    assert_error(
        post(&pds, "createAccount", body, None).await,
        bad,
        "InvalidRequest",
    );
    let body = json!({ "handle": "newbie.test", "password": "password123" });
    assert_error(
        post(&pds, "createAccount", body, None).await,
        bad,
        "InvalidRequest",
    );
    let mut body = account_body("newbie.test", "new@example.com", "password123");
    body["recoveryKey"] = json!("not-a-key");
    assert_error(
        post(&pds, "createAccount", body, None).await,
        bad,
        "InvalidRequest",
    );
    let body = json!({ "handle": 5 });
    assert_error(
        post(&pds, "createAccount", body, None).await,
        bad,
        "InvalidRequest",
    );
    // Nothing was created along the way.
    let (status, _) = post(
        &pds,
        "createSession",
        json!({ "identifier": "newbie.test", "password": "password123" }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_codes() {
    let pds = TestPds::start_with(|c| {
        c.invite_required = true;
        c.admin_password = Some(Secret::new("admin-secret"));
    })
    .await;
    let (_, describe) = get(&pds, "describeServer", &[], None).await;
    assert_eq!(describe["inviteCodeRequired"], true);
    let bad = StatusCode::BAD_REQUEST;
    let body = account_body("alice.test", "alice@example.com", "password123");
    assert_error(
        post(&pds, "createAccount", body.clone(), None).await,
        bad,
        "InvalidInviteCode",
    );
    let mut with_bad = body.clone();
    with_bad["inviteCode"] = json!("nope-nope-nope");
    assert_error(
        post(&pds, "createAccount", with_bad, None).await,
        bad,
        "InvalidInviteCode",
    );

    let admin = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:admin-secret")
    );
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:guess")
    );
    let (status, _, _) = call(
        &pds,
        reqwest::Method::POST,
        "createInviteCode",
        &[],
        Some(json!({"useCount": 1})),
        Some(&wrong),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, out, _) = call(
        &pds,
        reqwest::Method::POST,
        "createInviteCode",
        &[],
        Some(json!({"useCount": 1})),
        Some(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(keys(&out), ["code"]);
    let code = out["code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("localhost-"), "{code}");
    let (status, _, _) = call(
        &pds,
        reqwest::Method::POST,
        "createInviteCode",
        &[],
        Some(json!({"useCount": 0})),
        Some(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let mut with_code = body.clone();
    with_code["inviteCode"] = json!(code);
    let (status, alice) = post(&pds, "createAccount", with_code, None).await;
    assert_eq!(status, StatusCode::OK, "{alice}");
    // A one-use code is spent.
    let mut again = account_body("bob.test", "bob@example.com", "password123");
    again["inviteCode"] = json!(code);
    assert_error(
        post(&pds, "createAccount", again, None).await,
        bad,
        "InvalidInviteCode",
    );

    let alice_did = alice["did"].as_str().unwrap();
    let (status, out, _) = call(
        &pds,
        reqwest::Method::POST,
        "createInviteCodes",
        &[],
        Some(json!({"codeCount": 2, "useCount": 3, "forAccounts": [alice_did]})),
        Some(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let codes = out["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 1);
    assert_eq!(codes[0]["account"], alice_did);
    assert_eq!(codes[0]["codes"].as_array().unwrap().len(), 2);

    let access = alice["accessJwt"].as_str().unwrap();
    let (status, mine) = get(&pds, "getAccountInviteCodes", &[], Some(access)).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let mine = mine["codes"].as_array().unwrap();
    assert_eq!(mine.len(), 2);
    for code in mine {
        assert_eq!(
            keys(code),
            [
                "available",
                "code",
                "createdAt",
                "createdBy",
                "disabled",
                "forAccount",
                "uses"
            ]
        );
        assert_eq!(code["available"], 3);
        assert_eq!(code["disabled"], false);
        assert_eq!(code["forAccount"], alice_did);
        assert_eq!(code["createdBy"], "admin");
        assert_eq!(code["uses"], json!([]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_login_refresh_and_logout() {
    let pds = TestPds::start().await;
    let (did, _) = pds.seed_account("alice.test", "password123").await;
    for identifier in [
        "alice.test",
        "ALICE.test",
        "alice-test@example.com",
        did.as_str(),
    ] {
        let (status, out) = post(
            &pds,
            "createSession",
            json!({ "identifier": identifier, "password": "password123" }),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{identifier}: {out}");
        assert_eq!(
            keys(&out),
            [
                "accessJwt",
                "active",
                "did",
                "didDoc",
                "email",
                "emailAuthFactor",
                "emailConfirmed",
                "handle",
                "refreshJwt"
            ]
        );
        assert_eq!(out["did"], did.as_str());
        assert_eq!(out["handle"], "alice.test");
        assert_eq!(out["email"], "alice-test@example.com");
        assert_eq!(out["active"], true);
    }
    assert_error(
        post(
            &pds,
            "createSession",
            json!({ "identifier": "alice.test", "password": "wrong-pass" }),
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "AuthenticationRequired",
    );
    assert_error(
        post(
            &pds,
            "createSession",
            json!({ "identifier": "nobody.test", "password": "password123" }),
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "AuthenticationRequired",
    );

    // Refresh: rotation, then replay of a spent token revokes the chain.
    let (_, login) = post(
        &pds,
        "createSession",
        json!({ "identifier": "alice.test", "password": "password123" }),
        None,
    )
    .await;
    let r1 = login["refreshJwt"].as_str().unwrap().to_owned();
    let (status, second) = post(&pds, "refreshSession", json!({}), Some(&r1)).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(
        keys(&second),
        [
            "accessJwt",
            "active",
            "did",
            "didDoc",
            "email",
            "emailAuthFactor",
            "emailConfirmed",
            "handle",
            "refreshJwt"
        ]
    );
    let r2 = second["refreshJwt"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    let (status, third) = post(&pds, "refreshSession", json!({}), Some(&r2)).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    let r3 = third["refreshJwt"].as_str().unwrap().to_owned();
    assert_error(
        post(&pds, "refreshSession", json!({}), Some(&r1)).await,
        StatusCode::BAD_REQUEST,
        "ExpiredToken",
    );
    assert_error(
        post(&pds, "refreshSession", json!({}), Some(&r3)).await,
        StatusCode::BAD_REQUEST,
        "ExpiredToken",
    );
    // An access token is no refresh token.
    let access = third["accessJwt"].as_str().unwrap();
    assert_error(
        post(&pds, "refreshSession", json!({}), Some(access)).await,
        StatusCode::BAD_REQUEST,
        "InvalidToken",
    );

    // deleteSession ends the session.
    let (_, login) = post(
        &pds,
        "createSession",
        json!({ "identifier": "alice.test", "password": "password123" }),
        None,
    )
    .await;
    let refresh = login["refreshJwt"].as_str().unwrap();
    let (status, out) = post(&pds, "deleteSession", json!({}), Some(refresh)).await;
    assert_eq!((status, out), (StatusCode::OK, json!({})));
    assert_error(
        post(&pds, "refreshSession", json!({}), Some(refresh)).await,
        StatusCode::BAD_REQUEST,
        "ExpiredToken",
    );

    // Missing, expired and forged access tokens.
    assert_error(
        get(&pds, "getSession", &[], None).await,
        StatusCode::UNAUTHORIZED,
        "AuthenticationRequired",
    );
    let now = chrono::Utc::now().timestamp();
    let expired =
        pds.state
            .session()
            .create_access(did.as_str(), AccessScope::Access, now - 3 * 3600);
    assert_error(
        get(&pds, "getSession", &[], Some(&expired)).await,
        StatusCode::BAD_REQUEST,
        "ExpiredToken",
    );
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        json!({ "scope": "com.atproto.access", "sub": did.as_str(), "aud": pds.state.config().service_did, "iat": now, "exp": now + 3600 })
            .to_string(),
    );
    for forged in [
        format!("{header}.{claims}."),
        format!("{header}.{claims}.AAAA"),
        "garbage".to_owned(),
    ] {
        assert_error(
            get(&pds, "getSession", &[], Some(&forged)).await,
            StatusCode::BAD_REQUEST,
            "InvalidToken",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_after_five_failures() {
    let pds = TestPds::start().await;
    pds.seed_account("alice.test", "password123").await;
    for _ in 0..5 {
        let got = post(
            &pds,
            "createSession",
            json!({ "identifier": "alice.test", "password": "wrong-pass" }),
            None,
        )
        .await;
        assert_error(got, StatusCode::UNAUTHORIZED, "AuthenticationRequired");
    }
    // Locked: even the right password is refused.
    let (status, out, headers) = call(
        &pds,
        reqwest::Method::POST,
        "createSession",
        &[],
        Some(json!({ "identifier": "alice.test", "password": "password123" })),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{out}");
    assert_eq!(out["error"], "RateLimitExceeded");
    let reset: i64 = headers["ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > chrono::Utc::now().timestamp() + 14 * 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_session_rate_limit() {
    let pds = TestPds::start_with(|c| c.rate_limits_enabled = true).await;
    for _ in 0..30 {
        let got = post(
            &pds,
            "createSession",
            json!({ "identifier": "nobody.test", "password": "password123" }),
            None,
        )
        .await;
        assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{}", got.1);
    }
    let (status, out, headers) = call(
        &pds,
        reqwest::Method::POST,
        "createSession",
        &[],
        Some(json!({ "identifier": "nobody.test", "password": "password123" })),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{out}");
    assert_eq!(out["error"], "RateLimitExceeded");
    assert_eq!(headers["ratelimit-limit"], "30");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert_eq!(headers["ratelimit-policy"], "30;w=300");
    assert!(headers.contains_key("ratelimit-reset"));
    // Another identifier is counted apart.
    let got = post(
        &pds,
        "createSession",
        json!({ "identifier": "other.test", "password": "password123" }),
        None,
    )
    .await;
    assert_eq!(got.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_passwords_and_their_limits() {
    let pds = TestPds::start().await;
    let (did, access) = pds.seed_account("alice.test", "password123").await;
    let (status, created) = post(
        &pds,
        "createAppPassword",
        json!({ "name": "phone" }),
        Some(&access),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(
        keys(&created),
        ["createdAt", "name", "password", "privileged"]
    );
    assert_eq!(created["name"], "phone");
    assert_eq!(created["privileged"], false);
    let app_password = created["password"].as_str().unwrap().to_owned();
    assert_eq!(app_password.len(), 19);
    assert_error(
        post(
            &pds,
            "createAppPassword",
            json!({ "name": "phone" }),
            Some(&access),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
    );
    assert_error(
        post(
            &pds,
            "createAppPassword",
            json!({ "name": "" }),
            Some(&access),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
    );
    let (status, list) = get(&pds, "listAppPasswords", &[], Some(&access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list,
        json!({ "passwords": [{ "name": "phone", "createdAt": created["createdAt"], "privileged": false }] })
    );

    // Logging in with the app password gives a limited session.
    let (status, app) = post(
        &pds,
        "createSession",
        json!({ "identifier": "alice.test", "password": app_password }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{app}");
    assert_eq!(app["did"], did.as_str());
    let app_access = app["accessJwt"].as_str().unwrap().to_owned();
    let (status, _) = get(&pds, "getSession", &[], Some(&app_access)).await;
    assert_eq!(status, StatusCode::OK);
    for (method, body) in [
        ("createAppPassword", Some(json!({ "name": "x" }))),
        ("revokeAppPassword", Some(json!({ "name": "phone" }))),
        ("deactivateAccount", Some(json!({}))),
        ("requestAccountDelete", Some(json!({}))),
    ] {
        let got = post(&pds, method, body.unwrap(), Some(&app_access)).await;
        assert_error(got, StatusCode::BAD_REQUEST, "InvalidToken");
    }
    assert_error(
        get(&pds, "listAppPasswords", &[], Some(&app_access)).await,
        StatusCode::BAD_REQUEST,
        "InvalidToken",
    );
    // Chat needs a privileged app password.
    let aud = "did:web:api.bsky.chat";
    assert_error(
        get(
            &pds,
            "getServiceAuth",
            &[("aud", aud), ("lxm", "chat.bsky.convo.listConvos")],
            Some(&app_access),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
    );
    let (status, _) = get(
        &pds,
        "getServiceAuth",
        &[("aud", aud), ("lxm", "app.bsky.feed.getTimeline")],
        Some(&app_access),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, privileged) = post(
        &pds,
        "createAppPassword",
        json!({ "name": "dm", "privileged": true }),
        Some(&access),
    )
    .await;
    assert_eq!(privileged["privileged"], true);
    let (_, dm) = post(
        &pds,
        "createSession",
        json!({ "identifier": "alice.test", "password": privileged["password"] }),
        None,
    )
    .await;
    let (status, out) = get(
        &pds,
        "getServiceAuth",
        &[("aud", aud), ("lxm", "chat.bsky.convo.listConvos")],
        dm["accessJwt"].as_str(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");

    // Revoking ends the sessions opened with it.
    let (status, out) = post(
        &pds,
        "revokeAppPassword",
        json!({ "name": "phone" }),
        Some(&access),
    )
    .await;
    assert_eq!((status, out), (StatusCode::OK, json!({})));
    assert_error(
        post(
            &pds,
            "refreshSession",
            json!({}),
            app["refreshJwt"].as_str(),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "ExpiredToken",
    );
    assert_error(
        post(
            &pds,
            "createSession",
            json!({ "identifier": "alice.test", "password": app_password }),
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "AuthenticationRequired",
    );
}

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_auth() {
    let pds = TestPds::start().await;
    let (did, access) = pds.seed_account("alice.test", "password123").await;
    let aud = "did:web:api.bsky.app";
    let (status, out) = get(
        &pds,
        "getServiceAuth",
        &[("aud", aud), ("lxm", "app.bsky.feed.getTimeline")],
        Some(&access),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(keys(&out), ["token"]);
    let token = out["token"].as_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    let key = pds.signing_key(&did).await;
    let claims =
        rookery::auth::verify_service_jwt(token, &key, aud, Some("app.bsky.feed.getTimeline"), now)
            .unwrap();
    assert_eq!(claims.iss, did.as_str());
    assert_eq!(jwt_part(token, 0), json!({ "typ": "JWT", "alg": "ES256K" }));
    assert!((claims.exp - now - 60).abs() <= 2);
    // The key the DID document publishes is the one that signed.
    let doc = pds.state.resolver().resolve_did(&did).await.unwrap();
    assert_eq!(doc.signing_key().unwrap().to_did_key(), key.to_did_key());

    let exp = (now + 1800).to_string();
    let (status, out) = get(
        &pds,
        "getServiceAuth",
        &[
            ("aud", aud),
            ("lxm", "app.bsky.feed.getTimeline"),
            ("exp", &exp),
        ],
        Some(&access),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(
        jwt_part(out["token"].as_str().unwrap(), 1)["exp"],
        now + 1800
    );

    let bad = StatusCode::BAD_REQUEST;
    assert_error(
        get(
            &pds,
            "getServiceAuth",
            &[("aud", aud), ("exp", &exp)],
            Some(&access),
        )
        .await,
        bad,
        "BadExpiration",
    );
    let far = (now + 7200).to_string();
    assert_error(
        get(
            &pds,
            "getServiceAuth",
            &[("aud", aud), ("lxm", "a.b.c"), ("exp", &far)],
            Some(&access),
        )
        .await,
        bad,
        "BadExpiration",
    );
    let past = (now - 10).to_string();
    assert_error(
        get(
            &pds,
            "getServiceAuth",
            &[("aud", aud), ("exp", &past)],
            Some(&access),
        )
        .await,
        bad,
        "BadExpiration",
    );
    assert_error(
        get(
            &pds,
            "getServiceAuth",
            &[
                ("aud", aud),
                ("lxm", "com.atproto.server.createAppPassword"),
            ],
            Some(&access),
        )
        .await,
        bad,
        "InvalidRequest",
    );
    assert_error(
        get(
            &pds,
            "getServiceAuth",
            &[("aud", "not a did")],
            Some(&access),
        )
        .await,
        bad,
        "InvalidRequest",
    );
    assert_error(
        get(
            &pds,
            "getServiceAuth",
            &[("aud", aud), ("lxm", "not an nsid")],
            Some(&access),
        )
        .await,
        bad,
        "InvalidRequest",
    );
    assert_error(
        get(&pds, "getServiceAuth", &[], Some(&access)).await,
        bad,
        "InvalidRequest",
    );
    assert_error(
        get(&pds, "getServiceAuth", &[("aud", aud)], None).await,
        StatusCode::UNAUTHORIZED,
        "AuthenticationRequired",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivate_and_activate() {
    let pds = TestPds::start().await;
    let (did, access) = pds.seed_account("alice.test", "password123").await;
    let (status, out) = post(&pds, "deactivateAccount", json!({}), Some(&access)).await;
    assert_eq!((status, out), (StatusCode::OK, json!({})));
    let (status, session) = get(&pds, "getSession", &[], Some(&access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["active"], false);
    assert_eq!(session["status"], "deactivated");
    // A deactivated account may log in, but not use standard routes.
    let (status, login) = post(
        &pds,
        "createSession",
        json!({ "identifier": "alice.test", "password": "password123" }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(login["active"], false);
    assert_eq!(login["status"], "deactivated");
    assert_error(
        get(
            &pds,
            "getServiceAuth",
            &[("aud", "did:web:api.bsky.app")],
            Some(&access),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "AccountDeactivated",
    );
    let (status, check) = get(&pds, "checkAccountStatus", &[], Some(&access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(check["activated"], false);
    assert_error(
        post(
            &pds,
            "deactivateAccount",
            json!({ "deleteAfter": "tomorrow" }),
            Some(&access),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "AccountDeactivated",
    );

    let (status, out) = post(&pds, "activateAccount", json!({}), Some(&access)).await;
    assert_eq!((status, out), (StatusCode::OK, json!({})));
    let (_, session) = get(&pds, "getSession", &[], Some(&access)).await;
    assert_eq!(session["active"], true);
    assert!(session.get("status").is_none());
    let (status, _) = get(
        &pds,
        "getServiceAuth",
        &[("aud", "did:web:api.bsky.app")],
        Some(&access),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        post(
            &pds,
            "deactivateAccount",
            json!({ "deleteAfter": "tomorrow" }),
            Some(&access),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
    );
    let (status, _) = post(
        &pds,
        "deactivateAccount",
        json!({ "deleteAfter": "2030-01-01T00:00:00.000Z" }),
        Some(&access),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let account = pds
        .state
        .accounts()
        .get_account(rookery::accounts::AccountRef::Did(did.as_str()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.delete_after, Some(1_893_456_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_account() {
    let pds = TestPds::start().await;
    let (did, access) = pds.seed_account("alice.test", "password123").await;
    let (status, out) = post(&pds, "requestAccountDelete", json!({}), Some(&access)).await;
    assert_eq!((status, out), (StatusCode::OK, json!({})));
    // The mailed token is replaced by one the test knows.
    let now = chrono::Utc::now().timestamp();
    let token = pds
        .state
        .accounts()
        .create_email_token(did.as_str(), EmailTokenPurpose::DeleteAccount, now)
        .await
        .unwrap();
    let body = |password: &str, token: &str| json!({ "did": did.as_str(), "password": password, "token": token });
    assert_error(
        post(
            &pds,
            "deleteAccount",
            body("password123", "WRONG-TOKEN"),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "InvalidToken",
    );
    assert_error(
        post(&pds, "deleteAccount", body("wrong-pass", &token), None).await,
        StatusCode::UNAUTHORIZED,
        "AuthenticationRequired",
    );
    assert_error(
        post(
            &pds,
            "deleteAccount",
            json!({ "did": "nope", "password": "x", "token": "y" }),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
    );
    assert!(pds.state.repo().stores().exists(&did).await.unwrap());

    let (status, out) = post(&pds, "deleteAccount", body("password123", &token), None).await;
    assert_eq!((status, out), (StatusCode::OK, json!({})));
    assert!(!pds.state.repo().stores().exists(&did).await.unwrap());
    assert!(
        pds.state
            .accounts()
            .get_account(rookery::accounts::AccountRef::Did(did.as_str()))
            .await
            .unwrap()
            .is_none()
    );
    assert_error(
        post(
            &pds,
            "createSession",
            json!({ "identifier": "alice.test", "password": "password123" }),
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "AuthenticationRequired",
    );
    assert_error(
        get(&pds, "getSession", &[], Some(&access)).await,
        StatusCode::BAD_REQUEST,
        "InvalidToken",
    );
    // The handle is free again.
    let (status, out) = post(
        &pds,
        "createAccount",
        account_body("alice.test", "alice2@example.com", "password123"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
}
