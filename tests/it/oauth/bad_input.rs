//! Refusals: each bad request gets the spec's error, never a 5xx.

use super::client::{DpopKey, FormExt, REDIRECT, TestClient, loopback_client_id};
use crate::support::pds::TestPds;

const PASSWORD: &str = "correct horse battery staple";
const SCOPE: &str = "atproto transition:generic";

async fn setup() -> (TestPds, TestClient) {
    let pds = TestPds::start().await;
    pds.seed_account("alice.test", PASSWORD).await;
    let client = TestClient::new(&pds.url(), &loopback_client_id(SCOPE));
    (pds, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_documents() {
    let (pds, client) = setup().await;
    let meta: serde_json::Value = client
        .http
        .get(client.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], pds.url());
    assert_eq!(meta["require_pushed_authorization_requests"], true);
    assert_eq!(meta["client_id_metadata_document_supported"], true);
    assert_eq!(meta["dpop_signing_alg_values_supported"][0], "ES256");
    assert_eq!(meta["token_endpoint"], format!("{}/oauth/token", pds.url()));
    let resource: serde_json::Value = client
        .http
        .get(client.url("/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resource["authorization_servers"][0], pds.url());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn par_refusals() {
    let (_pds, client) = setup().await;
    // A redirect_uri the client metadata does not list.
    let answer = client.par(SCOPE, "https://evil.example/cb").await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (400, "invalid_request"),
        "{}",
        answer.text
    );
    // A scope the client did not declare.
    let answer = client.par("atproto transition:chat.bsky", REDIRECT).await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (400, "invalid_scope"),
        "{}",
        answer.text
    );
    // No atproto scope.
    let answer = client.par("transition:generic", REDIRECT).await;
    assert_eq!(answer.error(), "invalid_scope");
    // A client_id that is not a URL, and one on a loopback address without dev mode's
    // http allowance is still refused for its scheme.
    let bad = TestClient::new(&client.base, "not a url");
    assert_eq!(bad.par(SCOPE, REDIRECT).await.error(), "invalid_client");
    // A DPoP proof for another URL or method.
    let htu = client.url("/oauth/token");
    let form = [("client_id", client.client_id.as_str())];
    let answer = client
        .post_dpop("/oauth/par", &form, |n| {
            client.key.proof("POST", &htu, n, None)
        })
        .await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (400, "invalid_dpop_proof")
    );
    let par_url = client.url("/oauth/par");
    let answer = client
        .post_dpop("/oauth/par", &form, |n| {
            client.key.proof("GET", &par_url, n, None)
        })
        .await;
    assert_eq!(answer.error(), "invalid_dpop_proof");
    // No nonce: use_dpop_nonce with a DPoP-Nonce header to retry with.
    let raw = client
        .http
        .post(client.url("/oauth/par"))
        .header("DPoP", client.key.proof("POST", &par_url, None, None))
        .form_pairs(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert!(raw.headers().contains_key("dpop-nonce"));
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refusals() {
    let (pds, client) = setup().await;

    // Wrong PKCE verifier: invalid_grant (and the code is spent).
    let code = client.authorize(SCOPE, "alice.test", PASSWORD).await;
    let wrong = super::client::random(32);
    let answer = client.exchange(&code, &wrong).await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (400, "invalid_grant"),
        "{}",
        answer.text
    );
    assert_eq!(
        client.exchange(&code, &client.verifier).await.error(),
        "invalid_grant"
    );

    // An expired code.
    let code = client.authorize(SCOPE, "alice.test", PASSWORD).await;
    sqlx::query("UPDATE oauth_request SET code_expires_at = 0 WHERE code_hash IS NOT NULL")
        .execute(pds.state.accounts().pool())
        .await
        .unwrap();
    let answer = client.exchange(&code, &client.verifier).await;
    assert_eq!(answer.error(), "invalid_grant", "{}", answer.text);

    // A replayed DPoP proof.
    let code = client.authorize(SCOPE, "alice.test", PASSWORD).await;
    let nonce = client.nonce.lock().unwrap().clone();
    let proof = client
        .key
        .proof("POST", &client.url("/oauth/token"), nonce.as_deref(), None);
    let form = [
        ("client_id", client.client_id.as_str()),
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", client.verifier.as_str()),
    ];
    let first = client
        .post_dpop("/oauth/token", &form, |_| proof.clone())
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let replay = client
        .post_dpop("/oauth/token", &form, |_| proof.clone())
        .await;
    assert_eq!(
        (replay.status, replay.error().as_str()),
        (400, "invalid_dpop_proof")
    );

    // The same code again (fresh proof): refused, and what it was exchanged for is revoked.
    let access = first.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(client.get_session(&access, &client.key).await.status, 200);
    let reused = client.exchange(&code, &client.verifier).await;
    assert_eq!(reused.error(), "invalid_grant");
    let after = client.get_session(&access, &client.key).await;
    assert_eq!(after.status, 401, "{}", after.text);

    // A token used with another DPoP key.
    let tokens = client.tokens(SCOPE, "alice.test", PASSWORD).await;
    let other = DpopKey::generate();
    let answer = client.get_session(&tokens.access, &other).await;
    assert_eq!(answer.status, 401);
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    // …and its refresh token with another key.
    let answer = client.refresh(&tokens.refresh, &other).await;
    assert_eq!(answer.error(), "invalid_grant");
    // The same token as a Bearer token is refused.
    let bearer = client
        .http
        .get(client.url("/xrpc/com.atproto.server.getSession"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 400);

    // Refresh rotates; presenting the old refresh token again revokes the session.
    let ok = client.get_session(&tokens.access, &client.key).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["handle"], "alice.test");
    let rotated = client.refresh(&tokens.refresh, &client.key).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_access = rotated.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        client.get_session(&tokens.access, &client.key).await.status,
        401
    );
    assert_eq!(
        client.get_session(&new_access, &client.key).await.status,
        200
    );
    let reuse = client.refresh(&tokens.refresh, &client.key).await;
    assert_eq!(reuse.error(), "invalid_grant");
    assert_eq!(
        client.get_session(&new_access, &client.key).await.status,
        401
    );

    // Unknown grant type; malformed token body.
    let answer = client
        .post_dpop(
            "/oauth/token",
            &[
                ("client_id", client.client_id.as_str()),
                ("grant_type", "password"),
            ],
            client.own_proof("/oauth/token"),
        )
        .await;
    assert_eq!(answer.error(), "unsupported_grant_type");
    let answer = client
        .http
        .post(client.url("/oauth/token"))
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_refuse_forgery_and_bad_passwords() {
    let (_pds, client) = setup().await;
    let par = client.par(SCOPE, REDIRECT).await;
    let request_uri = par.json()["request_uri"].as_str().unwrap().to_owned();
    // Unknown request.
    let page = client
        .authorize_page("urn:ietf:params:oauth:request_uri:req-nope")
        .await;
    assert_eq!(page.status, 400);
    let page = client.authorize_page(&request_uri).await;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"));
    let html = page.text;
    assert!(
        html.contains("value=\"alice.test\""),
        "login_hint prefilled"
    );
    assert!(html.contains("Loopback development client"));
    assert!(!html.contains("<script"));
    let request_id = html
        .split("name=\"request_id\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    // A post without the CSRF cookie is refused.
    let forged = client
        .http
        .post(client.url("/oauth/authorize/sign-in"))
        .form_pairs(&[
            ("csrf", "x"),
            ("request_id", request_id.as_str()),
            ("identifier", "alice.test"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert!(forged.text().await.unwrap().contains("CSRF"));
    // A wrong password shows the form again with a message.
    let wrong = client
        .http
        .post(client.url("/oauth/authorize/sign-in"))
        .header("cookie", "rookery-oauth-csrf=tok")
        .form_pairs(&[
            ("csrf", "tok"),
            ("request_id", request_id.as_str()),
            ("identifier", "alice.test"),
            ("password", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Invalid identifier or password")
    );
    // Consent without signing in is refused.
    let consent = client
        .http
        .post(client.url("/oauth/authorize/consent"))
        .header("cookie", "rookery-oauth-csrf=tok")
        .form_pairs(&[
            ("csrf", "tok"),
            ("request_id", request_id.as_str()),
            ("secret", "guess"),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 400);
}
