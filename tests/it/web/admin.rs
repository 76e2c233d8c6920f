//! The operator dashboard (`/admin`) over real HTTP, as a browser without scripts uses it:
//! sign-in with the admin password and its CSRF cookie, account search, each account action
//! checked through the XRPC admin API, invite codes, the language from `Accept-Language`,
//! and the refusals (wrong password, missing CSRF token, a user's token, a signed-out
//! session).

use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use rookery::config::Secret;
use serde_json::Value;

use super::{Browser, csrf_of, set_cookies};
use crate::support::pds::TestPds;

const ADMIN_PASSWORD: &str = "dashboard-admin-pass";

async fn admin_get(pds: &TestPds, method: &str, query: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/xrpc/{method}?{query}", pds.url()))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Whether the XRPC admin API reports `did` taken down.
async fn taken_down(pds: &TestPds, did: &rookery::syntax::Did) -> bool {
    let (status, body) = admin_get(
        pds,
        "com.atproto.admin.getSubjectStatus",
        &format!("did={did}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["takedown"]["applied"].as_bool().expect("applied")
}

async fn sign_in(pds: &TestPds, password: &str) -> StatusCode {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/xrpc/com.atproto.server.createSession",
            pds.url()
        ))
        .json(&serde_json::json!({ "identifier": "alice.test", "password": password }))
        .send()
        .await
        .unwrap();
    response.status()
}

#[tokio::test]
async fn operator_dashboard_manages_accounts_and_invites() {
    let pds = TestPds::start_with(|config| {
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    })
    .await;
    let (alice, alice_token) = pds.seed_account("alice.test", "alice-password-1").await;
    pds.seed_account("bob.test", "bob-password-1").await;
    let mut browser = Browser::new(&pds);

    // Signed out: the sign-in page, with the security headers and a CSRF cookie.
    let (status, headers, page) = browser.get("/admin").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(page.contains("type=\"password\""), "{page}");
    let login_csrf = csrf_of(&page);
    let (css, css_headers, sheet) = browser.get("/web/rookery.css").await;
    assert_eq!(css, StatusCode::OK);
    assert!(
        css_headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(sheet.contains("body"));

    // Refusals: a wrong password; a right one without the CSRF field or cookie.
    let (status, _, page) = browser
        .post(
            "/admin/login",
            &[("csrf", &login_csrf), ("password", "wrong-password")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Wrong password."), "{page}");
    let login_csrf = csrf_of(&page);
    let (status, _, _) = browser
        .post("/admin/login", &[("password", ADMIN_PASSWORD)])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut stranger = Browser::new(&pds);
    let (status, headers, _) = stranger
        .post(
            "/admin/login",
            &[("csrf", &login_csrf), ("password", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF cookie");
    assert!(
        set_cookies(&headers)
            .iter()
            .all(|(k, _)| k != "rookery-admin")
    );
    // A user's access token is no operator session, as a cookie or a header.
    let response = reqwest::Client::new()
        .get(format!("{}/admin", pds.url()))
        .header("cookie", format!("rookery-admin={alice_token}"))
        .bearer_auth(&alice_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Signed in.
    let (_, _, page) = browser.get("/admin").await;
    let login_csrf = csrf_of(&page);
    let (status, headers, _) = browser
        .post(
            "/admin/login",
            &[("csrf", &login_csrf), ("password", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/admin");
    let session_cookie = set_cookies(&headers)
        .into_iter()
        .find(|(k, _)| k == "rookery-admin")
        .expect("a session cookie");
    let raw = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("rookery-admin="))
        .unwrap();
    assert!(
        raw.contains("HttpOnly") && raw.contains("SameSite=Strict"),
        "{raw}"
    );

    let (status, _, page) = browser.get("/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("alice.test") && page.contains("bob.test"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let (_, _, page) = browser.get("/admin?q=ali").await;
    assert!(
        page.contains("alice.test") && !page.contains("bob.test"),
        "{page}"
    );
    let (_, _, page) = browser.get(&format!("/admin?q={alice}")).await;
    assert!(
        page.contains("alice.test") && !page.contains("bob.test"),
        "{page}"
    );

    // The server page: the firehose's latest seq and the events chart.
    let (status, _, page) = browser.get("/admin/server").await;
    assert_eq!(status, StatusCode::OK);
    let marker = "id=\"latest-seq\">";
    let at = page.find(marker).expect("latest seq") + marker.len();
    let seq: i64 = page[at..at + page[at..].find('<').unwrap()]
        .parse()
        .unwrap();
    assert!(seq >= 2, "two accounts were announced: {seq}");
    assert!(page.contains("<svg id=\"events-chart\""), "{page}");
    assert!(page.contains("No server errors since start."), "{page}");
    assert!(
        page.contains("id=\"blob-storage\">0<"),
        "no blobs yet: {page}"
    );

    let account = format!("/admin/accounts/{}", alice.as_str().replace(':', "%3A"));
    let (status, _, page) = browser.get(&account).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(alice.as_str()) && page.contains("alice-test@example.com"),
        "{page}"
    );
    let marker = "id=\"repo-bytes\">";
    let at = page.find(marker).expect("repo size") + marker.len();
    let bytes: u64 = page[at..at + page[at..].find('<').unwrap()]
        .parse()
        .unwrap();
    assert!(
        bytes > 4096,
        "a SQLite store is at least a few pages: {bytes}"
    );

    // Take down, then restore: the XRPC admin API sees each.
    let (status, headers, _) = browser
        .post(
            &account,
            &[("csrf", &csrf), ("action", "takedown"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers["location"].to_str().unwrap().ends_with("?done=1"));
    assert!(taken_down(&pds, &alice).await);
    assert_eq!(
        sign_in(&pds, "alice-password-1").await,
        StatusCode::UNAUTHORIZED
    );
    browser
        .post(&account, &[("csrf", &csrf), ("action", "restore")])
        .await;
    assert!(!taken_down(&pds, &alice).await);

    // Without the session's CSRF token, nothing happens.
    let (status, _, _) = browser
        .post(&account, &[("action", "takedown"), ("confirm", "yes")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = browser
        .post(
            &account,
            &[("csrf", &"0".repeat(64)), ("action", "takedown")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!taken_down(&pds, &alice).await);

    // Without the confirmation box, no takedown.
    let (status, _, page) = browser
        .post(&account, &[("csrf", &csrf), ("action", "takedown")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Tick the confirmation box first."), "{page}");
    assert!(!taken_down(&pds, &alice).await);

    // Deactivate and reactivate.
    browser
        .post(
            &account,
            &[
                ("csrf", &csrf),
                ("action", "deactivate"),
                ("confirm", "yes"),
            ],
        )
        .await;
    let (_, body) = admin_get(
        &pds,
        "com.atproto.admin.getAccountInfo",
        &format!("did={alice}"),
    )
    .await;
    assert!(body["deactivatedAt"].is_string(), "{body}");
    browser
        .post(&account, &[("csrf", &csrf), ("action", "activate")])
        .await;
    let (_, body) = admin_get(
        &pds,
        "com.atproto.admin.getAccountInfo",
        &format!("did={alice}"),
    )
    .await;
    assert!(
        body.get("deactivatedAt").is_none_or(Value::is_null),
        "{body}"
    );

    // Password: the rules apply; a good one replaces the old.
    let (status, _, page) = browser
        .post(
            &account,
            &[("csrf", &csrf), ("action", "password"), ("value", "short")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("at least 8"), "{page}");
    assert_eq!(sign_in(&pds, "alice-password-1").await, StatusCode::OK);
    let (status, _, _) = browser
        .post(
            &account,
            &[
                ("csrf", &csrf),
                ("action", "password"),
                ("value", "alice-password-2"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        sign_in(&pds, "alice-password-1").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(sign_in(&pds, "alice-password-2").await, StatusCode::OK);

    // Email and handle.
    browser
        .post(
            &account,
            &[
                ("csrf", &csrf),
                ("action", "email"),
                ("value", "Alice.New@Example.com"),
            ],
        )
        .await;
    let (_, body) = admin_get(
        &pds,
        "com.atproto.admin.getAccountInfo",
        &format!("did={alice}"),
    )
    .await;
    assert_eq!(body["email"], "alice.new@example.com", "{body}");
    let (status, _, page) = browser
        .post(
            &account,
            &[
                ("csrf", &csrf),
                ("action", "email"),
                ("value", "not-an-address"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    let (status, _, page) = browser
        .post(
            &account,
            &[("csrf", &csrf), ("action", "handle"), ("value", "bob.test")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Handle already taken"), "{page}");
    let (status, _, _) = browser
        .post(
            &account,
            &[
                ("csrf", &csrf),
                ("action", "handle"),
                ("value", "alicia.test"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, body) = admin_get(
        &pds,
        "com.atproto.admin.getAccountInfo",
        &format!("did={alice}"),
    )
    .await;
    assert_eq!(body["handle"], "alicia.test", "{body}");

    // Invite codes: created, listed, one disabled, as the XRPC API reports.
    let (status, _, _) = browser
        .post(
            "/admin/invites",
            &[
                ("csrf", &csrf),
                ("action", "create"),
                ("count", "2"),
                ("uses", "3"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = browser
        .post(
            "/admin/invites",
            &[
                ("csrf", &csrf),
                ("action", "create"),
                ("count", "0"),
                ("uses", "3"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, body) = admin_get(&pds, "com.atproto.admin.getInviteCodes", "limit=100").await;
    let codes = body["codes"].as_array().unwrap().clone();
    assert_eq!(codes.len(), 2, "{body}");
    assert!(
        codes
            .iter()
            .all(|c| c["available"] == 3 && c["disabled"] == false),
        "{body}"
    );
    let first = codes[0]["code"].as_str().unwrap().to_owned();
    let (_, _, page) = browser.get("/admin/invites").await;
    assert!(page.contains(&first), "{page}");
    browser
        .post(
            "/admin/invites",
            &[("csrf", &csrf), ("action", "disable"), ("code", &first)],
        )
        .await;
    let (_, body) = admin_get(&pds, "com.atproto.admin.getInviteCodes", "limit=100").await;
    let disabled: Vec<&Value> = body["codes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["disabled"] == true)
        .collect();
    assert_eq!(disabled.len(), 1, "{body}");
    assert_eq!(disabled[0]["code"], first.as_str());

    // Simplified Chinese from Accept-Language.
    let response = reqwest::Client::new()
        .get(format!("{}/admin", pds.url()))
        .header("cookie", format!("rookery-admin={}", session_cookie.1))
        .header("accept-language", "zh-CN,zh;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap();
    let page = response.text().await.unwrap();
    assert!(
        page.contains("lang=\"zh-Hans\"") && page.contains("账户"),
        "{page}"
    );

    // Deletion needs the handle typed; then the account is gone.
    let (status, _, page) = browser
        .post(
            &account,
            &[
                ("csrf", &csrf),
                ("action", "delete"),
                ("confirm", "alice.test"),
            ],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the old handle does not confirm"
    );
    assert!(page.contains("does not match"), "{page}");
    let (status, headers, _) = browser
        .post(
            &account,
            &[
                ("csrf", &csrf),
                ("action", "delete"),
                ("confirm", "alicia.test"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/admin");
    let (status, _) = admin_get(
        &pds,
        "com.atproto.admin.getAccountInfo",
        &format!("did={alice}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Signed out: the old session cookie no longer works.
    let (status, _, _) = browser.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let response = reqwest::Client::new()
        .get(format!("{}/admin", pds.url()))
        .header("cookie", format!("rookery-admin={}", session_cookie.1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    pds.stop().await;
}
