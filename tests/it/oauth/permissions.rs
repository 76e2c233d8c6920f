//! OAuth permissions beyond record writes, over real sockets with DPoP-bound tokens:
//! `identity:` and `account:` on the methods that change an account (refused without the
//! scope, with the scope named; methods OAuth may never call refused whatever the scope), and
//! `rpc:` on proxied calls and on the preferences this server answers for the AppView.

use serde_json::{Value, json};

use super::client::{Answer, Body, TestClient, loopback_client_id};
use crate::proxy::upstream::{TIMELINE_BODY, start_upstream};
use crate::support::pds::TestPds;
use rookery::accounts::AccountRef;
use rookery::config::ServiceEndpoint;

const PASSWORD: &str = "correct horse battery staple";
const APPVIEW_DID: &str = "did:web:appview.test";

/// An OAuth session of a client declaring `scope`, granted all of it.
struct Session {
    client: TestClient,
    access: String,
}

impl Session {
    async fn new(pds: &TestPds, handle: &str, scope: &str) -> Self {
        let client = TestClient::new(&pds.url(), &loopback_client_id(scope));
        let access = client.tokens(scope, handle, PASSWORD).await.access;
        Session { client, access }
    }

    async fn call(&self, http: &str, path: &str, body: Option<Body>) -> Answer {
        let key = &self.client.key;
        self.client
            .resource(http, path, &self.access, key, body)
            .await
    }

    async fn post(&self, method: &str, body: Option<Body>) -> Answer {
        self.call("POST", &format!("/xrpc/{method}"), body).await
    }

    /// POSTs `method`, which must succeed.
    async fn ok(&self, method: &str, body: Option<Body>) -> Answer {
        let answer = self.post(method, body).await;
        assert_eq!(answer.status, 200, "{method}: {}", answer.text);
        answer
    }

    /// POSTs `method`, which must be refused for want of `scope`.
    async fn missing(&self, method: &str, body: Option<Body>, scope: &str) {
        assert_missing(&self.post(method, body).await, scope, method);
    }
}

/// A 403 `InvalidToken` naming the missing scope (the reference's `ScopeMissingError`).
fn assert_missing(answer: &Answer, scope: &str, what: &str) {
    assert_eq!(answer.status, 403, "{what}: {}", answer.text);
    assert_eq!(answer.json()["error"], "InvalidToken", "{what}");
    assert_eq!(
        answer.json()["message"],
        format!("Missing required scope \"{scope}\""),
        "{what}"
    );
}

async fn export(pds: &TestPds, did: &str) -> Vec<u8> {
    let url = format!("{}/xrpc/com.atproto.sync.getRepo?did={did}", pds.url());
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

fn car(bytes: &[u8]) -> Option<Body> {
    Some(Body::Bytes(bytes.to_vec(), "application/vnd.ipld.car"))
}

fn body(value: Value) -> Option<Body> {
    Some(Body::Json(value))
}

async fn handle_of(pds: &TestPds, did: &str) -> Option<String> {
    let account = pds.state.accounts().get_account(AccountRef::Did(did)).await;
    account.unwrap().unwrap().handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_and_account_permissions() {
    let pds = TestPds::start().await;
    let (did, _) = pds.seed_account("carol.test", PASSWORD).await;
    let repo = export(&pds, did.as_str()).await;
    let confirm = || body(json!({"email": "carol-test@example.com", "token": "ABCDE-12345"}));

    // transition:generic is an app password's reach: no identity or account changes.
    let generic = Session::new(&pds, "carol.test", "atproto transition:generic").await;
    let refusals: [(&str, Option<Body>, &str); 7] = [
        (
            "com.atproto.identity.updateHandle",
            body(json!({"handle": "carol2.test"})),
            "identity:handle",
        ),
        (
            "com.atproto.identity.requestPlcOperationSignature",
            None,
            "identity:*",
        ),
        (
            "com.atproto.identity.signPlcOperation",
            body(json!({"token": "ABCDE-12345"})),
            "identity:*",
        ),
        (
            "com.atproto.identity.submitPlcOperation",
            body(json!({"operation": {}})),
            "identity:*",
        ),
        (
            "com.atproto.server.requestEmailConfirmation",
            None,
            "account:email?action=manage",
        ),
        (
            "com.atproto.server.confirmEmail",
            confirm(),
            "account:email?action=manage",
        ),
        (
            "com.atproto.repo.importRepo",
            car(&repo),
            "account:repo?action=manage",
        ),
    ];
    for (method, input, scope) in refusals {
        generic.missing(method, input, scope).await;
    }
    // Methods an OAuth token may never call, whatever it was granted.
    let everything = Session::new(
        &pds,
        "carol.test",
        "atproto transition:generic identity:* account:email?action=manage \
         account:repo?action=manage",
    )
    .await;
    for (method, input) in [
        ("com.atproto.server.deactivateAccount", body(json!({}))),
        ("com.atproto.server.activateAccount", None),
        ("com.atproto.server.requestEmailUpdate", None),
        (
            "com.atproto.server.updateEmail",
            body(json!({"email": "new@example.com"})),
        ),
        (
            "com.atproto.server.createAppPassword",
            body(json!({"name": "sneaky"})),
        ),
        ("com.atproto.server.requestAccountDelete", None),
    ] {
        let answer = everything.post(method, input).await;
        assert_eq!(answer.status, 403, "{method}: {}", answer.text);
        assert_eq!(answer.json()["error"], "InvalidToken", "{method}");
    }
    assert_eq!(
        handle_of(&pds, did.as_str()).await.as_deref(),
        Some("carol.test")
    );
    assert_eq!(
        pds.state
            .accounts()
            .account_status(did.as_str())
            .await
            .unwrap(),
        rookery::accounts::AccountStatus::Active
    );

    // identity:handle and account:email?action=manage: those two, and no more.
    let scoped = Session::new(
        &pds,
        "carol.test",
        "atproto identity:handle account:email?action=manage",
    )
    .await;
    let handle = |h: &str| body(json!({ "handle": h }));
    scoped
        .ok("com.atproto.identity.updateHandle", handle("carol2.test"))
        .await;
    assert_eq!(
        handle_of(&pds, did.as_str()).await.as_deref(),
        Some("carol2.test")
    );
    scoped
        .ok("com.atproto.server.requestEmailConfirmation", None)
        .await;
    scoped
        .missing(
            "com.atproto.identity.requestPlcOperationSignature",
            None,
            "identity:*",
        )
        .await;
    scoped
        .missing(
            "com.atproto.repo.importRepo",
            car(&repo),
            "account:repo?action=manage",
        )
        .await;

    // identity:* (which covers the handle) and account:repo?action=manage.
    let scoped = Session::new(
        &pds,
        "carol2.test",
        "atproto identity:* account:repo?action=manage",
    )
    .await;
    scoped
        .ok("com.atproto.identity.requestPlcOperationSignature", None)
        .await;
    scoped
        .ok("com.atproto.identity.updateHandle", handle("carol3.test"))
        .await;
    let current = export(&pds, did.as_str()).await;
    scoped
        .ok("com.atproto.repo.importRepo", car(&current))
        .await;
    scoped
        .missing(
            "com.atproto.server.requestEmailConfirmation",
            None,
            "account:email?action=manage",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_permissions_on_proxied_calls_and_preferences() {
    let (appview, url) = start_upstream().await;
    let pds = TestPds::start_with(|c| {
        c.bsky_app_view = Some(ServiceEndpoint {
            url,
            did: APPVIEW_DID.to_owned(),
        })
    })
    .await;
    pds.seed_account("dave.test", PASSWORD).await;
    let scoped = Session::new(
        &pds,
        "dave.test",
        "atproto \
         rpc:app.bsky.feed.getTimeline?aud=did:web:appview.test%23bsky_appview \
         rpc:app.bsky.actor.getPreferences?aud=did:web:appview.test%23bsky_appview",
    )
    .await;
    let missing = |lxm: &str| format!("rpc:{lxm}?aud={APPVIEW_DID}#bsky_appview");

    let answer = scoped
        .call("GET", "/xrpc/app.bsky.feed.getTimeline?limit=5", None)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.text, TIMELINE_BODY);
    assert_eq!(appview.seen().len(), 1);
    // Other methods: refused before any upstream call.
    let answer = scoped
        .call("GET", "/xrpc/app.bsky.feed.getLikes?uri=at://x", None)
        .await;
    assert_missing(&answer, &missing("app.bsky.feed.getLikes"), "getLikes");
    let echo = || body(json!({"hello": "world"}));
    let lxm = "app.bsky.unspecced.echo";
    scoped.missing(lxm, echo(), &missing(lxm)).await;
    assert_eq!(
        appview.seen().len(),
        1,
        "a refused call reached the AppView"
    );

    // The preferences are answered here, but checked as the AppView call they stand for.
    let answer = scoped
        .call("GET", "/xrpc/app.bsky.actor.getPreferences", None)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json(), json!({"preferences": []}));
    let prefs = || {
        body(json!({"preferences": [
            {"$type": "app.bsky.actor.defs#adultContentPref", "enabled": false}
        ]}))
    };
    let lxm = "app.bsky.actor.putPreferences";
    scoped.missing(lxm, prefs(), &missing(lxm)).await;

    // transition:generic reaches every non-chat method.
    let generic = Session::new(&pds, "dave.test", "atproto transition:generic").await;
    generic.ok("app.bsky.actor.putPreferences", prefs()).await;
    generic.ok("app.bsky.unspecced.echo", echo()).await;
    assert_eq!(appview.seen().len(), 2);
}

/// The operator's takedown and every password change (the user's reset by mail, the admin's
/// `updateAccountPassword`) end the account's OAuth sessions: the access token is refused
/// even after the takedown is lifted, and the refresh token no longer refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takedown_and_password_changes_end_oauth_sessions() {
    use crate::account_mail::{ADMIN_PASSWORD, Auth, email_of, mail_pds};
    use crate::support::smtp::SmtpServer;
    use reqwest::StatusCode;

    let pds = mail_pds().await;
    let (did, _) = pds.seed_account("erin.test", PASSWORD).await;
    let scope = "atproto transition:generic";
    let client = TestClient::new(&pds.url(), &loopback_client_id(scope));
    let admin = |nsid: &'static str, body: Value| {
        let pds = &pds;
        async move { crate::account_mail::post(pds, nsid, body, Auth::Admin(ADMIN_PASSWORD)).await }
    };
    let assert_ended = |what: &'static str| {
        let client = &client;
        move |tokens: super::client::Tokens| async move {
            let answer = client.get_session(&tokens.access, &client.key).await;
            assert_eq!(answer.status, 401, "{what}: {}", answer.text);
            let answer = client.refresh(&tokens.refresh, &client.key).await;
            assert_eq!(
                (answer.status, answer.error().as_str()),
                (400, "invalid_grant"),
                "{what}: {}",
                answer.text
            );
        }
    };

    // A takedown, lifted again at once.
    let tokens = client.tokens(scope, "erin.test", PASSWORD).await;
    assert_eq!(
        client.get_session(&tokens.access, &client.key).await.status,
        200
    );
    let subject = json!({"$type": "com.atproto.admin.defs#repoRef", "did": did.as_str()});
    for applied in [true, false] {
        let (status, body) = admin(
            "com.atproto.admin.updateSubjectStatus",
            json!({"subject": subject, "takedown": {"applied": applied, "ref": "T-1"}}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_ended("takedown")(tokens).await;

    // The user's own reset, with the mailed token.
    let tokens = client.tokens(scope, "erin.test", PASSWORD).await;
    assert_eq!(
        client.get_session(&tokens.access, &client.key).await.status,
        200
    );
    let email = email_of("erin.test");
    let (status, _) = crate::account_mail::post(
        &pds,
        "com.atproto.server.requestPasswordReset",
        json!({"email": email}),
        Auth::None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let token = SmtpServer::shared().wait_for(&email, 1).await.token();
    let new_password = "a brand new password";
    let (status, body) = crate::account_mail::post(
        &pds,
        "com.atproto.server.resetPassword",
        json!({"token": token, "password": new_password}),
        Auth::None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ended("password reset")(tokens).await;

    // The operator's password change.
    let tokens = client.tokens(scope, "erin.test", new_password).await;
    assert_eq!(
        client.get_session(&tokens.access, &client.key).await.status,
        200
    );
    let (status, body) = admin(
        "com.atproto.admin.updateAccountPassword",
        json!({"did": did.as_str(), "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ended("admin password change")(tokens).await;
    assert!(
        pds.state
            .oauth()
            .sessions_of(did.as_str(), chrono::Utc::now().timestamp())
            .await
            .unwrap()
            .is_empty()
    );
}
