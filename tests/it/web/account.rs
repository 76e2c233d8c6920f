//! The account page (`/account`): sign-in with the account's own password (not an app
//! password), app passwords created and revoked, the password changed (every session
//! ends), deactivation, each checked through the XRPC API; and the refusals: a wrong
//! password, a missing CSRF token, an account session on `/admin`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Browser, csrf_of, set_cookies};
use crate::support::pds::TestPds;
use crate::support::smtp::SmtpServer;

async fn create_session(pds: &TestPds, password: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/xrpc/com.atproto.server.createSession",
            pds.url()
        ))
        .json(&json!({ "identifier": "carol.test", "password": password }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The text of the element with `id` (the new app password's `code`).
fn text_of(page: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = page.find(&marker).expect("the element") + marker.len();
    let end = start + page[start..].find('<').unwrap();
    page[start..end].to_owned()
}

#[tokio::test]
async fn account_page_signs_in_and_manages_the_account() {
    let pds = TestPds::start().await;
    let (carol, _) = pds.seed_account("carol.test", "carol-password-1").await;
    let mut browser = Browser::new(&pds);

    let (status, headers, page) = browser.get("/account").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let csrf = csrf_of(&page);

    // A wrong password, then no CSRF cookie: refused.
    let (status, _, page) = browser
        .post(
            "/account/login",
            &[
                ("csrf", &csrf),
                ("identifier", "carol.test"),
                ("password", "nope-nope-nope"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Wrong handle, email or password."), "{page}");
    let csrf = csrf_of(&page);
    let mut stranger = Browser::new(&pds);
    let (status, _, _) = stranger
        .post(
            "/account/login",
            &[
                ("csrf", &csrf),
                ("identifier", "carol.test"),
                ("password", "carol-password-1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Signed in with the handle and password.
    let (status, headers, _) = browser
        .post(
            "/account/login",
            &[
                ("csrf", &csrf),
                ("identifier", "carol.test"),
                ("password", "carol-password-1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let session = set_cookies(&headers)
        .into_iter()
        .find(|(k, _)| k == "rookery-account")
        .expect("a session cookie")
        .1;
    let (status, _, page) = browser.get("/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("carol.test") && page.contains(carol.as_str()),
        "{page}"
    );
    assert!(page.contains(&format!(
        "com.atproto.sync.getRepo?did={}",
        carol.as_str().replace(':', "%3A")
    )));
    let csrf = csrf_of(&page);

    // The account session is no operator session.
    let response = reqwest::Client::new()
        .get(format!("{}/admin", pds.url()))
        .header(
            "cookie",
            format!("rookery-admin={session}; rookery-account={session}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // An app password: shown once, works with createSession, does not open this page,
    // and stops working once revoked.
    let (status, _, page) = browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "create-app-password"),
                ("name", "my cli"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let app_password = text_of(&page, "new-app-password");
    assert_eq!(app_password.len(), 19, "{app_password}");
    assert_eq!(create_session(&pds, &app_password).await.0, StatusCode::OK);
    let mut other = Browser::new(&pds);
    let (_, _, page) = other.get("/account").await;
    let other_csrf = csrf_of(&page);
    let (status, _, _) = other
        .post(
            "/account/login",
            &[
                ("csrf", &other_csrf),
                ("identifier", "carol.test"),
                ("password", &app_password),
            ],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an app password opens no account page"
    );
    let (status, _, page) = browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "create-app-password"),
                ("name", "   "),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("App password name must be"), "{page}");
    let (status, _, _) = browser
        .post(
            "/account",
            &[("action", "revoke-app-password"), ("name", "my cli")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    assert_eq!(create_session(&pds, &app_password).await.0, StatusCode::OK);
    browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "revoke-app-password"),
                ("name", "my cli"),
            ],
        )
        .await;
    assert_eq!(
        create_session(&pds, &app_password).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Deactivation, as checkAccountStatus reports it.
    let (_, body) = create_session(&pds, "carol-password-1").await;
    let access = body["accessJwt"].as_str().unwrap().to_owned();
    let (status, _, _) = browser
        .post("/account", &[("csrf", &csrf), ("action", "deactivate")])
        .await;
    assert_eq!(status, StatusCode::OK);
    let status: Value = reqwest::Client::new()
        .get(format!(
            "{}/xrpc/com.atproto.server.checkAccountStatus",
            pds.url()
        ))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["activated"], false, "{status}");

    // The password: the current one is required; then every session ends.
    let (status, _, _) = browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "change-password"),
                ("current", "wrong-wrong"),
                ("new", "carol-password-2"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, page) = browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "change-password"),
                ("current", "carol-password-1"),
                ("new", "carol-password-2"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Password changed."), "{page}");
    assert_eq!(
        create_session(&pds, "carol-password-1").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        create_session(&pds, "carol-password-2").await.0,
        StatusCode::OK
    );
    let response = reqwest::Client::new()
        .get(format!("{}/account", pds.url()))
        .header("cookie", format!("rookery-account={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the old page session ended"
    );
    pds.stop().await;
}

/// `getSession` of a fresh session of `identifier`.
async fn session_of(pds: &TestPds, identifier: &str, password: &str) -> Value {
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!(
            "{}/xrpc/com.atproto.server.createSession",
            pds.url()
        ))
        .json(&json!({ "identifier": identifier, "password": password }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = created["accessJwt"].as_str().expect("a session").to_owned();
    http.get(format!("{}/xrpc/com.atproto.server.getSession", pds.url()))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn sign_in_page(
    browser: &mut Browser,
    identifier: &str,
    password: &str,
    code: Option<&str>,
) -> (StatusCode, String) {
    let (_, _, page) = browser.get("/account").await;
    let csrf = csrf_of(&page);
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("identifier", identifier),
        ("password", password),
    ];
    if let Some(code) = code {
        form.push(("code", code));
    }
    let (status, _, page) = browser.post("/account/login", &form).await;
    (status, page)
}

#[tokio::test]
async fn account_page_email_codes_two_factor_and_deletion() {
    let smtp = SmtpServer::shared();
    let pds = TestPds::start_with(|config| {
        config.email = Some(smtp.config("noreply@pds.test"));
    })
    .await;
    let (did, _) = pds.seed_account("webmail.test", "webmail-password").await;
    let address = "webmail-test@example.com";
    let mut browser = Browser::new(&pds);
    let (status, _) = sign_in_page(&mut browser, "webmail.test", "webmail-password", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = browser.get("/account").await;
    let csrf = csrf_of(&page);
    let mut mails = 0;

    // Confirm the address with the mailed code.
    let (_, _, page) = browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "send-email-code"),
                ("purpose", "confirm"),
            ],
        )
        .await;
    assert!(page.contains("A code is on its way"), "{page}");
    mails += 1;
    let token = smtp.wait_for(address, mails).await.token();
    let (status, _, page) = browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "confirm-email"),
                ("code", "WRONG-CODES"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "confirm-email"),
                ("code", &token),
            ],
        )
        .await;
    let session = session_of(&pds, "webmail.test", "webmail-password").await;
    assert_eq!(session["emailConfirmed"], true, "{session}");

    // Email sign-in codes on, with a code now that the address is confirmed.
    browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "send-email-code"),
                ("purpose", "update"),
            ],
        )
        .await;
    mails += 1;
    let token = smtp.wait_for(address, mails).await.token();
    let (status, _, page) = browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "two-factor"),
                ("on", "true"),
                ("code", &token),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Turn off"), "{page}");

    // A new browser signing in now needs the mailed code.
    let mut phone = Browser::new(&pds);
    let (status, page) = sign_in_page(&mut phone, "webmail.test", "webmail-password", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("id=\"code\""), "{page}");
    mails += 1;
    let code = smtp.wait_for(address, mails).await.token();
    let (status, _) = sign_in_page(
        &mut phone,
        "webmail.test",
        "webmail-password",
        Some("AAAAA-BBBBB"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong code");
    let (status, _) =
        sign_in_page(&mut phone, "webmail.test", "webmail-password", Some(&code)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // A new address, with a code mailed to the confirmed one.
    browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "send-email-code"),
                ("purpose", "update"),
            ],
        )
        .await;
    mails += 1;
    let token = smtp.wait_for(address, mails).await.token();
    let (status, _, page) = browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "update-email"),
                ("email", "webmail-new@example.com"),
                ("code", &token),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("webmail-new@example.com"), "{page}");

    // Deletion: the mailed code (to the new address) and the password.
    let new_address = "webmail-new@example.com";
    browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "send-email-code"),
                ("purpose", "delete"),
            ],
        )
        .await;
    let token = smtp.wait_for(new_address, 1).await.token();
    let (status, _, _) = browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "delete"),
                ("password", "wrong-password"),
                ("code", &token),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, page) = browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "delete"),
                ("password", "webmail-password"),
                ("code", &token),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Your account has been deleted."), "{page}");
    let response = reqwest::Client::new()
        .get(format!(
            "{}/xrpc/com.atproto.sync.getLatestCommit?did={did}",
            pds.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    pds.stop().await;
}

#[tokio::test]
async fn account_page_lists_and_revokes_oauth_apps() {
    use crate::oauth::client::{DpopKey, TestClient, loopback_client_id};

    let pds = TestPds::start().await;
    pds.seed_account("oauthweb.test", "oauthweb-password").await;
    let scope = "atproto transition:generic";
    let client = TestClient::new(&pds.url(), &loopback_client_id(scope));
    let tokens = client
        .tokens(scope, "oauthweb.test", "oauthweb-password")
        .await;
    let key: &DpopKey = &client.key;
    assert_eq!(client.get_session(&tokens.access, key).await.status, 200);

    let mut browser = Browser::new(&pds);
    let (status, _) = sign_in_page(&mut browser, "oauthweb.test", "oauthweb-password", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = browser.get("/account").await;
    assert!(page.contains("id=\"oauth-apps\""), "{page}");
    assert!(page.contains("transition:generic"), "{page}");
    let csrf = csrf_of(&page);
    let marker =
        "name=\"action\" value=\"revoke-oauth\"><input type=\"hidden\" name=\"id\" value=\"";
    let at = page.find(marker).expect("a revoke form") + marker.len();
    let id = page[at..at + page[at..].find('"').unwrap()].to_owned();

    let (status, _, _) = browser
        .post(
            "/account",
            &[
                ("csrf", &csrf),
                ("action", "revoke-oauth"),
                ("id", "not-a-session"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(client.get_session(&tokens.access, key).await.status, 200);
    let (status, _, page) = browser
        .post(
            "/account",
            &[("csrf", &csrf), ("action", "revoke-oauth"), ("id", &id)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("No app is signed in with OAuth."), "{page}");
    assert_eq!(client.get_session(&tokens.access, key).await.status, 401);
    pds.stop().await;
}
