//! The account flows that mail a token, end to end: a whole PDS delivering over SMTP to a
//! real SMTP server on 127.0.0.1 (aiosmtpd, with AUTH), each flow reading its token out of
//! the delivered message and completing with it.

use crate::support;

use reqwest::StatusCode;
use rookery::config::Secret;
use serde_json::{Value, json};
use support::pds::TestPds;
use support::smtp::SmtpServer;

pub const FROM: &str = "noreply@pds.test";
pub const ADMIN_PASSWORD: &str = "admin-pass-123";

/// A PDS sending mail to the shared SMTP server, with an admin password.
pub async fn mail_pds() -> TestPds {
    let smtp = SmtpServer::shared();
    TestPds::start_with(|config| {
        config.email = Some(smtp.config(FROM));
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    })
    .await
}

/// The address `TestPds::seed_account` gives `handle`.
pub fn email_of(handle: &str) -> String {
    format!("{}@example.com", handle.replace('.', "-"))
}

pub async fn xrpc(
    pds: &TestPds,
    method: reqwest::Method,
    nsid: &str,
    query: &[(&str, &str)],
    body: Option<Value>,
    auth: Auth<'_>,
) -> (StatusCode, Value) {
    let url = url::Url::parse_with_params(&format!("{}/xrpc/{nsid}", pds.url()), query).unwrap();
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req = match auth {
        Auth::None => req,
        Auth::Bearer(token) => req.bearer_auth(token),
        Auth::Admin(password) => req.basic_auth("admin", Some(password)),
        Auth::Raw(header) => req.header("authorization", header),
    };
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Admin(&'a str),
    Raw(&'a str),
}

pub async fn post(pds: &TestPds, nsid: &str, body: Value, auth: Auth<'_>) -> (StatusCode, Value) {
    xrpc(pds, reqwest::Method::POST, nsid, &[], Some(body), auth).await
}

pub async fn get(
    pds: &TestPds,
    nsid: &str,
    query: &[(&str, &str)],
    auth: Auth<'_>,
) -> (StatusCode, Value) {
    xrpc(pds, reqwest::Method::GET, nsid, query, None, auth).await
}

/// Asserts an XRPC error's status and name.
#[track_caller]
pub fn assert_error(got: (StatusCode, Value), status: u16, name: &str) {
    assert_eq!(
        (got.0.as_u16(), got.1["error"].as_str()),
        (status, Some(name)),
        "{}",
        got.1
    );
}

async fn login(pds: &TestPds, identifier: &str, password: &str) -> (StatusCode, Value) {
    post(
        pds,
        "com.atproto.server.createSession",
        json!({ "identifier": identifier, "password": password }),
        Auth::None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_and_change_email_with_mailed_tokens() {
    let smtp = SmtpServer::shared();
    let pds = mail_pds().await;
    let (_, access) = pds.seed_account("mconfirm.test", "password123").await;
    let (_, other_access) = pds.seed_account("mconfirm2.test", "password123").await;
    let email = email_of("mconfirm.test");
    let auth = Auth::Bearer(&access);

    let got = post(
        &pds,
        "com.atproto.server.requestEmailConfirmation",
        json!({}),
        auth,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    let mail = smtp.wait_for(&email, 1).await;
    assert_eq!(mail.subject, "Email Confirmation");
    assert_eq!(mail.mail_from, FROM);
    assert!(mail.from.contains(FROM), "{}", mail.from);
    let token = mail.token();
    assert!(mail.html.as_deref().unwrap().contains(&token));
    // The server's hostname is in the message.
    assert!(mail.text.as_deref().unwrap().contains("localhost"));

    // Another account's token, a wrong address, a wrong token: refused with the lexicon's names.
    post(
        &pds,
        "com.atproto.server.requestEmailConfirmation",
        json!({}),
        Auth::Bearer(&other_access),
    )
    .await;
    let other_token = smtp.wait_for(&email_of("mconfirm2.test"), 1).await.token();
    let confirm = |email: &str, token: &str| json!({ "email": email, "token": token });
    assert_error(
        post(
            &pds,
            "com.atproto.server.confirmEmail",
            confirm(&email, &other_token),
            auth,
        )
        .await,
        400,
        "InvalidToken",
    );
    assert_error(
        post(
            &pds,
            "com.atproto.server.confirmEmail",
            confirm("someone@example.com", &token),
            auth,
        )
        .await,
        400,
        "InvalidEmail",
    );
    assert_error(
        post(
            &pds,
            "com.atproto.server.confirmEmail",
            confirm(&email, "AAAAA-BBBBB"),
            auth,
        )
        .await,
        400,
        "InvalidToken",
    );
    let got = post(
        &pds,
        "com.atproto.server.confirmEmail",
        confirm(&email.to_uppercase(), &token.to_lowercase()),
        auth,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    // Used once.
    assert_error(
        post(
            &pds,
            "com.atproto.server.confirmEmail",
            confirm(&email, &token),
            auth,
        )
        .await,
        400,
        "InvalidToken",
    );
    let (_, session) = get(&pds, "com.atproto.server.getSession", &[], auth).await;
    assert_eq!(session["emailConfirmed"], true);

    // A confirmed address changes only with a token mailed to it.
    let got = post(
        &pds,
        "com.atproto.server.requestEmailUpdate",
        json!({}),
        auth,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({ "tokenRequired": true })));
    let mail = smtp.wait_for(&email, 2).await;
    assert_eq!(mail.subject, "Email Update Requested");
    let update_token = mail.token();
    let new_email = "mconfirm-new@example.com";
    let update = |email: &str, token: Option<&str>| match token {
        Some(token) => json!({ "email": email, "token": token }),
        None => json!({ "email": email }),
    };
    assert_error(
        post(
            &pds,
            "com.atproto.server.updateEmail",
            update(new_email, None),
            auth,
        )
        .await,
        400,
        "TokenRequired",
    );
    assert_error(
        post(
            &pds,
            "com.atproto.server.updateEmail",
            update("not-an-address", Some(&update_token)),
            auth,
        )
        .await,
        400,
        "InvalidRequest",
    );
    assert_error(
        post(
            &pds,
            "com.atproto.server.updateEmail",
            update(&email_of("mconfirm2.test"), Some(&update_token)),
            auth,
        )
        .await,
        400,
        "InvalidRequest",
    );
    assert_error(
        post(
            &pds,
            "com.atproto.server.updateEmail",
            update(new_email, Some(&token)),
            auth,
        )
        .await,
        400,
        "InvalidToken",
    );
    let got = post(
        &pds,
        "com.atproto.server.updateEmail",
        update(new_email, Some(&update_token)),
        auth,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    let (_, session) = get(&pds, "com.atproto.server.getSession", &[], auth).await;
    assert_eq!(
        (session["email"].as_str(), &session["emailConfirmed"]),
        (Some(new_email), &json!(false))
    );
    // The new address is unconfirmed: no token needed for the next change.
    let got = post(
        &pds,
        "com.atproto.server.requestEmailUpdate",
        json!({}),
        auth,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({ "tokenRequired": false })));

    // And it confirms with a token mailed to it.
    post(
        &pds,
        "com.atproto.server.requestEmailConfirmation",
        json!({}),
        auth,
    )
    .await;
    let token = smtp.wait_for(new_email, 1).await.token();
    let got = post(
        &pds,
        "com.atproto.server.confirmEmail",
        confirm(new_email, &token),
        auth,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    let (_, session) = get(&pds, "com.atproto.server.getSession", &[], auth).await;
    assert_eq!(session["emailConfirmed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_password_with_mailed_token() {
    let smtp = SmtpServer::shared();
    let pds = mail_pds().await;
    pds.seed_account("mreset.test", "old-password").await;
    let email = email_of("mreset.test");
    let (status, old_session) = login(&pds, "mreset.test", "old-password").await;
    assert_eq!(status, StatusCode::OK);
    let old_refresh = old_session["refreshJwt"].as_str().unwrap().to_owned();

    assert_error(
        post(
            &pds,
            "com.atproto.server.requestPasswordReset",
            json!({ "email": "nobody@example.com" }),
            Auth::None,
        )
        .await,
        400,
        "InvalidRequest",
    );
    let got = post(
        &pds,
        "com.atproto.server.requestPasswordReset",
        json!({ "email": email.to_uppercase() }),
        Auth::None,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    let mail = smtp.wait_for(&email, 1).await;
    assert_eq!(mail.subject, "Password Reset Requested");
    assert!(mail.text.as_deref().unwrap().contains("@mreset.test"));
    let token = mail.token();

    let reset = |token: &str, password: &str| json!({ "token": token, "password": password });
    assert_error(
        post(
            &pds,
            "com.atproto.server.resetPassword",
            reset("AAAAA-BBBBB", "new-password"),
            Auth::None,
        )
        .await,
        400,
        "InvalidToken",
    );
    assert_error(
        post(
            &pds,
            "com.atproto.server.resetPassword",
            reset(&token, "short"),
            Auth::None,
        )
        .await,
        400,
        "InvalidPassword",
    );
    let got = post(
        &pds,
        "com.atproto.server.resetPassword",
        reset(&token, "new-password"),
        Auth::None,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    assert_error(
        post(
            &pds,
            "com.atproto.server.resetPassword",
            reset(&token, "third-password"),
            Auth::None,
        )
        .await,
        400,
        "InvalidToken",
    );
    // The old password is refused, the new one works, and the old session is over.
    assert_error(
        login(&pds, "mreset.test", "old-password").await,
        401,
        "AuthenticationRequired",
    );
    let (status, _) = login(&pds, "mreset.test", "new-password").await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        post(
            &pds,
            "com.atproto.server.refreshSession",
            json!({}),
            Auth::Bearer(&old_refresh),
        )
        .await,
        400,
        "ExpiredToken",
    );

    // An expired token is refused as expired.
    post(
        &pds,
        "com.atproto.server.requestPasswordReset",
        json!({ "email": email }),
        Auth::None,
    )
    .await;
    let token = smtp.wait_for(&email, 2).await.token();
    sqlx::query("UPDATE email_token SET requestedAt = requestedAt - 3600")
        .execute(pds.state.accounts().pool())
        .await
        .unwrap();
    assert_error(
        post(
            &pds,
            "com.atproto.server.resetPassword",
            reset(&token, "fourth-password"),
            Auth::None,
        )
        .await,
        400,
        "ExpiredToken",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_sign_in_factor() {
    let smtp = SmtpServer::shared();
    let pds = mail_pds().await;
    let (_, access) = pds.seed_account("mfactor.test", "password123").await;
    let email = email_of("mfactor.test");
    let auth = Auth::Bearer(&access);
    let (_, app) = post(
        &pds,
        "com.atproto.server.createAppPassword",
        json!({ "name": "phone" }),
        auth,
    )
    .await;
    let app_password = app["password"].as_str().unwrap().to_owned();

    let got = post(
        &pds,
        "com.atproto.server.updateEmail",
        json!({ "email": email, "emailAuthFactor": true }),
        auth,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    let (_, session) = get(&pds, "com.atproto.server.getSession", &[], auth).await;
    assert_eq!(session["emailAuthFactor"], true);

    // A password alone is not enough: a code is mailed.
    assert_error(
        login(&pds, "mfactor.test", "password123").await,
        401,
        "AuthFactorTokenRequired",
    );
    let mail = smtp.wait_for(&email, 1).await;
    assert_eq!(mail.subject, "Sign-in Code");
    let code = mail.token();
    let with_code = |password: &str, code: &str| json!({ "identifier": "mfactor.test", "password": password, "authFactorToken": code });
    assert_error(
        post(
            &pds,
            "com.atproto.server.createSession",
            with_code("password123", "AAAAA-BBBBB"),
            Auth::None,
        )
        .await,
        401,
        "AuthenticationRequired",
    );
    // The code does not stand in for the password.
    assert_error(
        post(
            &pds,
            "com.atproto.server.createSession",
            with_code("wrong-password", &code),
            Auth::None,
        )
        .await,
        401,
        "AuthenticationRequired",
    );
    let (status, session) = post(
        &pds,
        "com.atproto.server.createSession",
        with_code("password123", &code),
        Auth::None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["emailAuthFactor"], true);
    let refresh = session["refreshJwt"].as_str().unwrap().to_owned();
    let (status, refreshed) = post(
        &pds,
        "com.atproto.server.refreshSession",
        json!({}),
        Auth::Bearer(&refresh),
    )
    .await;
    assert_eq!(
        (status, &refreshed["emailAuthFactor"]),
        (StatusCode::OK, &json!(true))
    );
    // Used once.
    assert_error(
        post(
            &pds,
            "com.atproto.server.createSession",
            with_code("password123", &code),
            Auth::None,
        )
        .await,
        401,
        "AuthenticationRequired",
    );
    // App passwords are a second secret of their own.
    let (status, _) = login(&pds, "mfactor.test", &app_password).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_account_with_mailed_token() {
    let smtp = SmtpServer::shared();
    let pds = mail_pds().await;
    let (did, access) = pds.seed_account("mdelete.test", "password123").await;
    let (other, other_access) = pds.seed_account("mdelete2.test", "password123").await;
    let email = email_of("mdelete.test");
    let got = post(
        &pds,
        "com.atproto.server.requestAccountDelete",
        json!({}),
        Auth::Bearer(&access),
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    let mail = smtp.wait_for(&email, 1).await;
    assert_eq!(mail.subject, "Account Deletion Requested");
    let token = mail.token();
    post(
        &pds,
        "com.atproto.server.requestAccountDelete",
        json!({}),
        Auth::Bearer(&other_access),
    )
    .await;
    let other_token = smtp.wait_for(&email_of("mdelete2.test"), 1).await.token();

    let delete =
        |did: &str, token: &str| json!({ "did": did, "password": "password123", "token": token });
    // Another account's token does not delete this one.
    assert_error(
        post(
            &pds,
            "com.atproto.server.deleteAccount",
            delete(did.as_str(), &other_token),
            Auth::None,
        )
        .await,
        400,
        "InvalidToken",
    );
    let got = post(
        &pds,
        "com.atproto.server.deleteAccount",
        delete(did.as_str(), &token),
        Auth::None,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    assert_error(
        login(&pds, "mdelete.test", "password123").await,
        401,
        "AuthenticationRequired",
    );
    // The other account is untouched.
    let (status, _) = login(&pds, other.as_str(), "password123").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_send_email_through_the_moderation_mailer() {
    let smtp = SmtpServer::shared();
    let pds = TestPds::start_with(|config| {
        config.email = Some(smtp.config(FROM));
        config.moderation_email = Some(smtp.config("moderation@pds.test"));
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    })
    .await;
    let (did, access) = pds.seed_account("msend.test", "password123").await;
    let body = json!({
        "recipientDid": did.as_str(),
        "senderDid": "did:plc:moderator",
        "subject": "About your <posts>",
        "content": "Please read the rules & be kind.",
    });
    let nsid = "com.atproto.admin.sendEmail";
    assert_error(
        post(&pds, nsid, body.clone(), Auth::Bearer(&access)).await,
        401,
        "AuthenticationRequired",
    );
    assert_error(
        post(&pds, nsid, body.clone(), Auth::Admin("wrong")).await,
        401,
        "AuthenticationRequired",
    );
    assert_error(
        post(&pds, nsid, body.clone(), Auth::Raw("Basic YWRtaW46")).await,
        401,
        "AuthenticationRequired",
    );
    assert_error(
        post(&pds, nsid, body.clone(), Auth::None).await,
        401,
        "AuthenticationRequired",
    );
    let mut unknown = body.clone();
    unknown["recipientDid"] = json!("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
    assert_error(
        post(&pds, nsid, unknown, Auth::Admin(ADMIN_PASSWORD)).await,
        400,
        "InvalidRequest",
    );

    let got = post(&pds, nsid, body, Auth::Admin(ADMIN_PASSWORD)).await;
    assert_eq!(got, (StatusCode::OK, json!({ "sent": true })));
    let mail = smtp.wait_for(&email_of("msend.test"), 1).await;
    assert_eq!(mail.subject, "About your <posts>");
    assert_eq!(mail.mail_from, "moderation@pds.test");
    assert!(
        mail.text
            .as_deref()
            .unwrap()
            .starts_with("Please read the rules & be kind.")
    );
    assert!(
        mail.html
            .as_deref()
            .unwrap()
            .contains("Please read the rules &amp; be kind.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_outside_dev_mode_mail_methods_refuse_clearly() {
    let pds = TestPds::start_with(|config| {
        config.dev_mode = false;
        config.hostname = "pds.example.com".to_owned();
    })
    .await;
    let (did, access) = pds.seed_account("nomail.test", "password123").await;
    let auth = Auth::Bearer(&access);
    for (nsid, body, auth) in [
        (
            "com.atproto.server.requestEmailConfirmation",
            json!({}),
            auth,
        ),
        ("com.atproto.server.requestAccountDelete", json!({}), auth),
        (
            "com.atproto.server.requestPasswordReset",
            json!({ "email": email_of("nomail.test") }),
            Auth::None,
        ),
    ] {
        let (status, out) = post(&pds, nsid, body, auth).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{nsid}: {out}");
        assert_eq!(out["error"], "InvalidRequest", "{nsid}");
        assert!(
            out["message"]
                .as_str()
                .unwrap()
                .contains("cannot send email"),
            "{nsid}: {out}"
        );
    }
    // No token was made that could not be delivered.
    let tokens: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM email_token WHERE did = ?1")
        .bind(did.as_str())
        .fetch_one(pds.state.accounts().pool())
        .await
        .unwrap();
    assert_eq!(tokens, 0);
    // An unconfirmed address needs no mail to change.
    let got = post(
        &pds,
        "com.atproto.server.requestEmailUpdate",
        json!({}),
        auth,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({ "tokenRequired": false })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailed_tokens_are_rate_limited_per_account() {
    let smtp = SmtpServer::shared();
    let pds = TestPds::start_with(|config| {
        config.email = Some(smtp.config(FROM));
        config.rate_limits_enabled = true;
    })
    .await;
    let (_, access) = pds.seed_account("mlimit.test", "password123").await;
    let (_, other) = pds.seed_account("mlimit2.test", "password123").await;
    let nsid = "com.atproto.server.requestEmailConfirmation";
    for _ in 0..5 {
        let got = post(&pds, nsid, json!({}), Auth::Bearer(&access)).await;
        assert_eq!(got, (StatusCode::OK, json!({})));
    }
    assert_error(
        post(&pds, nsid, json!({}), Auth::Bearer(&access)).await,
        429,
        "RateLimitExceeded",
    );
    // Five were delivered; the other account is not limited.
    smtp.wait_for(&email_of("mlimit.test"), 5).await;
    let got = post(&pds, nsid, json!({}), Auth::Bearer(&other)).await;
    assert_eq!(got, (StatusCode::OK, json!({})));
}
