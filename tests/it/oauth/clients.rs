//! Clients identified by their metadata documents, served from a real HTTP server on
//! loopback: a confidential client authenticating with `private_key_jwt`, and metadata that
//! is oversize, slow, missing, on a private address or inconsistent with its URL, each
//! refused with `invalid_client_metadata` (never a 5xx).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::client::{DpopKey, REDIRECT, TestClient};
use crate::support::pds::TestPds;

const PASSWORD: &str = "correct horse battery staple";
const SCOPE: &str = "atproto transition:generic";

/// What a path of the [`MetadataHost`] answers.
#[derive(Clone)]
enum Doc {
    Json(Value),
    Raw(u16, String),
    /// Answers only after 30 s (longer than the server's metadata fetch timeout).
    Stall,
}

/// An HTTP server on 127.0.0.1 serving client metadata documents by path.
#[derive(Clone, Default)]
struct MetadataHost {
    docs: Arc<Mutex<HashMap<String, Doc>>>,
    base: String,
}

async fn answer(State(host): State<MetadataHost>, req: Request) -> Response {
    let doc = host.docs.lock().unwrap().get(req.uri().path()).cloned();
    match doc {
        Some(Doc::Json(value)) => axum::Json(value).into_response(),
        Some(Doc::Raw(status, body)) => (
            axum::http::StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            body,
        )
            .into_response(),
        Some(Doc::Stall) => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            axum::http::StatusCode::NO_CONTENT.into_response()
        }
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

impl MetadataHost {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = MetadataHost {
            docs: Arc::default(),
            base: format!("http://{}", listener.local_addr().unwrap()),
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(host.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        host
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn serve(&self, path: &str, doc: Doc) {
        self.docs.lock().unwrap().insert(path.to_owned(), doc);
    }
}

/// Valid metadata of a public client at `client_id`.
fn metadata(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Metadata Test App",
        "redirect_uris": [REDIRECT],
        "scope": SCOPE,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "dpop_bound_access_tokens": true,
        "application_type": "web",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_client_signs_in_with_private_key_jwt() {
    let pds = TestPds::start().await;
    let (did, _) = pds.seed_account("alice.test", PASSWORD).await;
    let host = MetadataHost::start().await;
    let client_id = host.url("/confidential/client-metadata.json");
    let client_key = DpopKey::generate();
    let mut jwk = client_key.jwk.clone();
    jwk["kid"] = json!("k1");
    jwk["alg"] = json!("ES256");
    let mut doc = metadata(&client_id);
    doc["token_endpoint_auth_method"] = json!("private_key_jwt");
    doc["token_endpoint_auth_signing_alg"] = json!("ES256");
    doc["jwks"] = json!({ "keys": [jwk] });
    host.serve("/confidential/client-metadata.json", Doc::Json(doc));

    // PAR without an assertion, or with one signed by another key: invalid_client.
    let bare = TestClient::new(&pds.url(), &client_id);
    let answer = bare.par(SCOPE, REDIRECT).await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (400, "invalid_client"),
        "{}",
        answer.text
    );
    let mut forged = TestClient::new(&pds.url(), &client_id);
    forged.client_key = Some(DpopKey::generate());
    let answer = forged.par(SCOPE, REDIRECT).await;
    assert_eq!(answer.error(), "invalid_client", "{}", answer.text);

    // The whole flow with the client's key.
    let mut client = TestClient::new(&pds.url(), &client_id);
    client.client_key = Some(client_key);
    let tokens = client.tokens(SCOPE, "alice.test", PASSWORD).await;
    let session = client.get_session(&tokens.access, &client.key).await;
    assert_eq!(session.status, 200, "{}", session.text);
    assert_eq!(session.json()["did"], did.as_str());
    let sessions = pds
        .state
        .oauth()
        .sessions_of(did.as_str(), chrono::Utc::now().timestamp())
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].client_name.as_deref(),
        Some("Metadata Test App")
    );

    // The token endpoint wants the assertion too, and each assertion once.
    let answer = bare.refresh(&tokens.refresh, &client.key).await;
    assert_eq!(answer.error(), "invalid_client", "{}", answer.text);
    let assertion = client.assertion(client.client_key.as_ref().unwrap());
    let form = |refresh: &str| {
        vec![
            ("client_id".to_owned(), client_id.clone()),
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), refresh.to_owned()),
            (
                "client_assertion_type".to_owned(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("client_assertion".to_owned(), assertion.clone()),
        ]
    };
    let htu = client.url("/oauth/token");
    let post = |refresh: String| {
        let pairs = form(&refresh);
        let client = &client;
        let htu = htu.clone();
        async move {
            let pairs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            client
                .post_dpop("/oauth/token", &pairs, |n| {
                    client.key.proof("POST", &htu, n, None)
                })
                .await
        }
    };
    let refreshed = post(tokens.refresh.clone()).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let next = refreshed.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(next, tokens.refresh);
    let replayed = post(next.clone()).await;
    assert_eq!(
        (replayed.status, replayed.error().as_str()),
        (400, "invalid_client"),
        "a replayed client assertion: {}",
        replayed.text
    );
    // With a fresh assertion the rotated refresh token still works.
    let again = client.refresh(&next, &client.key).await;
    assert_eq!(again.status, 200, "{}", again.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_client_metadata_is_refused() {
    let pds = TestPds::start().await;
    let host = MetadataHost::start().await;

    // Oversize: 100 KiB of otherwise valid metadata.
    let big_id = host.url("/big.json");
    let mut big = metadata(&big_id);
    big["client_name"] = json!("x".repeat(100 * 1024));
    host.serve("/big.json", Doc::Json(big));
    // Its client_id names another document.
    host.serve(
        "/other.json",
        Doc::Json(metadata(&host.url("/elsewhere.json"))),
    );
    // Tokens not bound to DPoP.
    let mut unbound = metadata(&host.url("/unbound.json"));
    unbound["dpop_bound_access_tokens"] = json!(false);
    host.serve("/unbound.json", Doc::Json(unbound));
    // No atproto scope; no redirect URI; not JSON; an error status.
    let mut no_scope = metadata(&host.url("/noscope.json"));
    no_scope["scope"] = json!("transition:generic");
    host.serve("/noscope.json", Doc::Json(no_scope));
    let mut no_redirect = metadata(&host.url("/noredirect.json"));
    no_redirect["redirect_uris"] = json!([]);
    host.serve("/noredirect.json", Doc::Json(no_redirect));
    host.serve("/garbage.json", Doc::Raw(200, "{not json".to_owned()));
    host.serve("/gone.json", Doc::Raw(500, "{}".to_owned()));
    host.serve("/slow.json", Doc::Stall);

    for (path, says) in [
        ("/big.json", "too large"),
        ("/other.json", "does not match"),
        ("/unbound.json", "dpop_bound_access_tokens"),
        ("/noscope.json", "atproto"),
        ("/noredirect.json", "redirect_uris"),
        ("/garbage.json", "Invalid client metadata"),
        ("/gone.json", "HTTP 500"),
        ("/missing.json", "HTTP 404"),
        ("/slow.json", "timed out"),
    ] {
        let client = TestClient::new(&pds.url(), &host.url(path));
        let answer = client.par(SCOPE, REDIRECT).await;
        assert_eq!(
            (answer.status, answer.error().as_str()),
            (400, "invalid_client_metadata"),
            "{path}: {}",
            answer.text
        );
        let description = answer.json()["error_description"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(description.contains(says), "{path}: {description}");
    }

    // The authorize page refuses such a client the same way (no 5xx, no page).
    let page = TestClient::new(&pds.url(), &host.url("/other.json"))
        .authorize_page("urn:ietf:params:oauth:request_uri:req-nothing")
        .await;
    assert!((400..500).contains(&page.status), "{}", page.status);

    // Outside development mode a client on a private address is not even fetched.
    let production = TestPds::start_with(|c| c.dev_mode = false).await;
    let private = format!(
        "https://127.0.0.1:{}/client-metadata.json",
        host.base.rsplit(':').next().unwrap()
    );
    let client = TestClient::new(&production.url(), &private);
    let answer = client.par(SCOPE, REDIRECT).await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (400, "invalid_client_metadata"),
        "{}",
        answer.text
    );
    assert!(
        answer.text.contains("non-public address"),
        "{}",
        answer.text
    );
    // And an http:// client id is refused for its scheme.
    let client = TestClient::new(&production.url(), &host.url("/other.json"));
    assert_eq!(client.par(SCOPE, REDIRECT).await.error(), "invalid_client");
}
