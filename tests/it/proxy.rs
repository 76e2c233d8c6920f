//! Service proxying over real sockets: a fake AppView (and a fake labeler found through a
//! DID document) on 127.0.0.1 record what reaches them, and `proxy_request` is checked for
//! what it forwards, what it passes back, and what it refuses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use futures::StreamExt;
use http_body_util::BodyExt;
use rookery::auth::verify_service_jwt;
use rookery::config::ServiceEndpoint;
use rookery::crypto::{Algorithm, Keypair};
use rookery::identity::DidDocument;
use rookery::proxy::{Caller, ProxyConfig, ProxyContext, proxy_request};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub(crate) mod upstream;

use upstream::{AllLoopback, Docs, TIMELINE_BODY, start_upstream};

const ALICE: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const APPVIEW_DID: &str = "did:web:appview.test";
const LABELER_DID: &str = "did:web:labeler.test";

fn labeler_doc(endpoint: &url::Url) -> DidDocument {
    serde_json::from_value(json!({
        "id": LABELER_DID,
        "service": [
            {"id": "#atproto_labeler", "type": "AtprotoLabeler", "serviceEndpoint": endpoint.as_str()},
            {"id": format!("{LABELER_DID}#absolute"), "type": "Other", "serviceEndpoint": endpoint.as_str()},
            {"id": "#ftp", "type": "Other", "serviceEndpoint": "ftp://127.0.0.1/"},
        ],
    }))
    .unwrap()
}

fn config(app_view: &url::Url) -> ProxyConfig {
    ProxyConfig {
        app_view: Some(ServiceEndpoint {
            url: app_view.clone(),
            did: APPVIEW_DID.into(),
        }),
        headers_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(5),
        allow_insecure: true,
        ..ProxyConfig::default()
    }
}

fn context(config: ProxyConfig, docs: Vec<DidDocument>) -> ProxyContext {
    let docs = docs.into_iter().map(|d| (d.id.to_string(), d)).collect();
    ProxyContext::new(config, Arc::new(Docs(docs))).unwrap()
}

fn keypair() -> Keypair {
    Keypair::from_private_bytes(Algorithm::K256, &[0x42; 32]).unwrap()
}

fn caller(privileged: bool) -> Caller {
    Caller {
        did: ALICE.parse().unwrap(),
        keypair: keypair(),
        privileged,
        oauth: None,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn call(ctx: &ProxyContext, req: Request, caller: Option<Caller>) -> Reply {
    let response = match proxy_request(ctx, req, caller).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

fn get(uri: &str) -> axum::http::request::Builder {
    Request::builder().method("GET").uri(uri)
}

fn assert_xrpc_error(reply: &Reply, status: u16, error: &str, message: &str) {
    assert_eq!(reply.status.as_u16(), status, "{:?}", reply.body);
    assert_eq!(reply.json(), json!({"error": error, "message": message}));
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The header names a request carried, sorted.
fn names(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = headers.keys().map(|k| k.to_string()).collect();
    names.sort();
    names.dedup();
    names
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn get_forwards_path_query_allowed_headers_and_a_service_token() {
    let (appview, url) = start_upstream().await;
    let ctx = context(config(&url), vec![]);
    let req = get("/xrpc/app.bsky.feed.getTimeline?limit=30&cursor=a%2Fb%3Ac&algorithm=x")
        .header("authorization", "Bearer the-client-access-token")
        .header("cookie", "session=abc")
        .header("accept-language", "en, fr;q=0.5")
        .header(
            "atproto-accept-labelers",
            "did:plc:ar7c4by46qjdydhdevvrndac;redact",
        )
        .header("x-bsky-topics", "dev,rust")
        .header("x-forwarded-for", "203.0.113.9")
        .header("user-agent", "client/1.0")
        .header("dpop", "proof")
        .body(Body::empty())
        .unwrap();
    let reply = call(&ctx, req, Some(caller(false))).await;

    // What the AppView received.
    let seen = appview.only();
    assert_eq!(seen.method, Method::GET);
    assert_eq!(
        seen.uri,
        "/xrpc/app.bsky.feed.getTimeline?limit=30&cursor=a%2Fb%3Ac&algorithm=x"
    );
    assert_eq!(
        names(&seen.headers),
        [
            "accept",
            "accept-encoding",
            "accept-language",
            "atproto-accept-labelers",
            "authorization",
            "host",
            "user-agent",
            "x-bsky-topics"
        ]
    );
    assert_eq!(seen.headers["accept-encoding"], "identity");
    assert_eq!(seen.headers["accept-language"], "en, fr;q=0.5");
    assert_eq!(
        seen.headers["atproto-accept-labelers"],
        "did:plc:ar7c4by46qjdydhdevvrndac;redact"
    );
    assert_eq!(seen.headers["x-bsky-topics"], "dev,rust");
    assert_eq!(
        seen.headers["user-agent"],
        concat!("rookery/", env!("CARGO_PKG_VERSION"))
    );
    assert!(seen.body.is_empty());

    // The service token: signed by the caller's key, for the AppView, bound to the method.
    let auth = seen.headers["authorization"].to_str().unwrap();
    let token = auth.strip_prefix("Bearer ").expect("a Bearer token");
    let public = keypair().public_key();
    let claims = verify_service_jwt(
        token,
        &public,
        APPVIEW_DID,
        Some("app.bsky.feed.getTimeline"),
        now(),
    )
    .expect("service token verifies");
    assert_eq!(claims.iss, ALICE);
    assert_eq!(claims.aud, APPVIEW_DID);
    assert_eq!(claims.lxm.as_deref(), Some("app.bsky.feed.getTimeline"));
    let iat = claims.iat.expect("iat");
    assert_eq!(claims.exp - iat, 60);
    assert!((iat - now()).abs() <= 5);
    // Another method or audience does not accept it.
    assert!(
        verify_service_jwt(
            token,
            &public,
            APPVIEW_DID,
            Some("app.bsky.feed.getFeed"),
            now()
        )
        .is_err()
    );
    assert!(
        verify_service_jwt(
            token,
            &public,
            "did:web:other.test",
            Some("app.bsky.feed.getTimeline"),
            now()
        )
        .is_err()
    );

    // What came back: status, body and only the allow-listed headers.
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(&reply.body[..], TIMELINE_BODY.as_bytes());
    assert_eq!(
        names(&reply.headers),
        [
            "atproto-content-labelers",
            "atproto-repo-rev",
            "content-language",
            "content-length",
            "content-type"
        ]
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(reply.header("content-language"), Some("en"));
    assert_eq!(reply.header("atproto-repo-rev"), Some("3lbbplrhmjs2a"));
    assert_eq!(
        reply.header("atproto-content-labelers"),
        Some("did:plc:ar7c4by46qjdydhdevvrndac")
    );
    assert_eq!(
        reply.header("content-length"),
        Some(TIMELINE_BODY.len().to_string().as_str())
    );
}

#[tokio::test]
async fn client_accept_encoding_is_forwarded_and_anonymous_requests_carry_no_token() {
    let (appview, url) = start_upstream().await;
    let ctx = context(config(&url), vec![]);
    let req = get("/xrpc/com.atproto.label.queryLabels?uriPatterns=*")
        .header("accept-encoding", "gzip, br")
        .header("authorization", "Bearer the-client-access-token")
        .body(Body::empty())
        .unwrap();
    let reply = call(&ctx, req, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let seen = appview.only();
    assert_eq!(
        seen.uri,
        "/xrpc/com.atproto.label.queryLabels?uriPatterns=*"
    );
    assert_eq!(seen.headers["accept-encoding"], "gzip, br");
    assert_eq!(seen.headers.get("authorization"), None);
}

#[tokio::test]
async fn head_requests_are_forwarded() {
    let (appview, url) = start_upstream().await;
    let ctx = context(config(&url), vec![]);
    let req = Request::builder()
        .method("HEAD")
        .uri("/xrpc/app.bsky.feed.getTimeline")
        .body(Body::empty())
        .unwrap();
    let reply = call(&ctx, req, Some(caller(false))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.is_empty());
    assert_eq!(
        reply.header("content-length"),
        Some(TIMELINE_BODY.len().to_string().as_str())
    );
    assert_eq!(appview.only().method, Method::HEAD);
}

/// Bytes that are not UTF-8 and not JSON, so any re-encoding would show.
fn binary_body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test]
async fn post_bodies_pass_through_byte_exact() {
    let (appview, url) = start_upstream().await;
    let ctx = context(config(&url), vec![]);
    let payload = binary_body(200_000);

    // With a declared length.
    let req = Request::builder()
        .method("POST")
        .uri("/xrpc/app.bsky.unspecced.echo?x=1")
        .header("content-type", "application/vnd.test")
        .header("content-length", payload.len().to_string())
        .header("content-encoding", "identity")
        .header("cookie", "session=abc")
        .body(Body::from(payload.clone()))
        .unwrap();
    let reply = call(&ctx, req, Some(caller(false))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.len(), payload.len());
    assert!(reply.body[..] == payload[..]);
    assert_eq!(reply.header("content-type"), Some("application/vnd.test"));
    let seen = appview.only();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.uri, "/xrpc/app.bsky.unspecced.echo?x=1");
    assert!(seen.body[..] == payload[..]);
    assert_eq!(seen.headers["content-type"], "application/vnd.test");
    assert_eq!(seen.headers["content-encoding"], "identity");
    assert_eq!(
        seen.headers["content-length"],
        payload.len().to_string().as_str()
    );
    assert_eq!(seen.headers.get("cookie"), None);

    // Streamed in chunks without a declared length.
    let chunks: Vec<Result<Bytes, std::io::Error>> = payload
        .chunks(10_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let req = Request::builder()
        .method("POST")
        .uri("/xrpc/app.bsky.unspecced.echo")
        .header("content-type", "application/octet-stream")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let reply = call(&ctx, req, Some(caller(false))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body[..] == payload[..]);
    let seen = appview.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].body[..] == payload[..]);
    assert_eq!(seen[1].headers.get("content-length"), None);
    assert_eq!(seen[1].headers["transfer-encoding"], "chunked");
}

#[tokio::test]
async fn request_bodies_over_the_cap_are_refused() {
    let (appview, url) = start_upstream().await;
    let ctx = context(
        ProxyConfig {
            max_request_body: 1000,
            ..config(&url)
        },
        vec![],
    );
    // Declared too long: refused before anything is sent.
    let req = Request::builder()
        .method("POST")
        .uri("/xrpc/app.bsky.unspecced.echo")
        .header("content-type", "application/octet-stream")
        .header("content-length", "1001")
        .body(Body::from(binary_body(1001)))
        .unwrap();
    let reply = call(&ctx, req, Some(caller(false))).await;
    assert_xrpc_error(
        &reply,
        413,
        "PayloadTooLarge",
        "Request body is larger than the proxy forwards",
    );
    assert!(appview.seen().is_empty());

    // Streamed past the cap: cut off.
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        (0..3).map(|_| Ok(Bytes::from(vec![1u8; 400]))).collect();
    let req = Request::builder()
        .method("POST")
        .uri("/xrpc/app.bsky.unspecced.echo")
        .header("content-type", "application/octet-stream")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let reply = call(&ctx, req, Some(caller(false))).await;
    assert_xrpc_error(
        &reply,
        413,
        "PayloadTooLarge",
        "Request body is larger than the proxy forwards",
    );
    // The upstream never got a complete request.
    assert!(appview.seen().iter().all(|s| s.body.len() < 1200));

    // Exactly at the cap: forwarded.
    let req = Request::builder()
        .method("POST")
        .uri("/xrpc/app.bsky.unspecced.echo")
        .header("content-type", "application/octet-stream")
        .body(Body::from(binary_body(1000)))
        .unwrap();
    let reply = call(&ctx, req, Some(caller(false))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.len(), 1000);
}

#[tokio::test]
async fn atproto_proxy_header_routes_to_the_service_in_the_did_document() {
    let (appview, appview_url) = start_upstream().await;
    let (labeler, labeler_url) = start_upstream().await;
    let ctx = context(config(&appview_url), vec![labeler_doc(&labeler_url)]);

    for (service_id, aud) in [
        ("atproto_labeler", "did:web:labeler.test#atproto_labeler"),
        ("absolute", "did:web:labeler.test#absolute"),
    ] {
        let req = get("/xrpc/app.bsky.feed.getTimeline?limit=5")
            .header("atproto-proxy", format!("{LABELER_DID}#{service_id}"))
            .body(Body::empty())
            .unwrap();
        let reply = call(&ctx, req, Some(caller(false))).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(&reply.body[..], TIMELINE_BODY.as_bytes());
        let seen = labeler.seen().pop().unwrap();
        assert_eq!(seen.uri, "/xrpc/app.bsky.feed.getTimeline?limit=5");
        // The proxy header itself is not forwarded.
        assert_eq!(seen.headers.get("atproto-proxy"), None);
        let token = seen.headers["authorization"]
            .to_str()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap()
            .to_owned();
        let claims = verify_service_jwt(
            &token,
            &keypair().public_key(),
            aud,
            Some("app.bsky.feed.getTimeline"),
            now(),
        )
        .expect("token for the named service");
        assert_eq!(claims.iss, ALICE);
    }
    assert_eq!(labeler.seen().len(), 2);
    assert!(appview.seen().is_empty());

    // An empty header is no header: the configured AppView.
    let req = get("/xrpc/app.bsky.feed.getTimeline")
        .header("atproto-proxy", "")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&ctx, req, None).await.status, StatusCode::OK);
    assert_eq!(appview.seen().len(), 1);
}

#[tokio::test]
async fn bad_proxy_headers_are_invalid_requests() {
    let (appview, url) = start_upstream().await;
    let (labeler, labeler_url) = start_upstream().await;
    let ctx = context(config(&url), vec![labeler_doc(&labeler_url)]);
    let cases = [
        (
            "did:web:labeler.test",
            "no service id specified in proxy header",
        ),
        ("#atproto_labeler", "no did specified in proxy header"),
        (
            "did:web:labeler.test#",
            "no service id specified in proxy header",
        ),
        ("did:web:labeler.test#a#b", "invalid proxy header format"),
        (
            "did:web:labeler.test#atproto labeler",
            "proxy header cannot contain spaces",
        ),
        (
            "labeler.test#atproto_labeler",
            "invalid DID in proxy header",
        ),
        (
            "did:web:labeler.test#<x>",
            "invalid service id in proxy header",
        ),
        // Well-formed, but the service is not in the document, or not usable.
        (
            "did:web:labeler.test#bsky_appview",
            "could not resolve proxy did service url",
        ),
        (
            "did:web:labeler.test#ftp",
            "could not resolve proxy did service url",
        ),
        // The DID does not resolve.
        (
            "did:web:unknown.test#atproto_labeler",
            "could not resolve proxy did",
        ),
    ];
    for (header, message) in cases {
        let req = get("/xrpc/app.bsky.feed.getTimeline")
            .header("atproto-proxy", header)
            .body(Body::empty())
            .unwrap();
        let reply = call(&ctx, req, Some(caller(false))).await;
        assert_xrpc_error(&reply, 400, "InvalidRequest", message);
    }
    // Two proxy headers.
    let req = get("/xrpc/app.bsky.feed.getTimeline")
        .header("atproto-proxy", "did:web:labeler.test#atproto_labeler")
        .header("atproto-proxy", "did:web:labeler.test#absolute")
        .body(Body::empty())
        .unwrap();
    let reply = call(&ctx, req, Some(caller(false))).await;
    assert_xrpc_error(&reply, 400, "InvalidRequest", "invalid proxy header format");
    assert!(appview.seen().is_empty());
    assert!(labeler.seen().is_empty());
}

#[tokio::test]
async fn protected_and_privileged_methods() {
    let (appview, url) = start_upstream().await;
    let ctx = context(config(&url), vec![]);
    for method in [
        "com.atproto.server.createAppPassword",
        "com.atproto.server.deactivateAccount",
        "com.atproto.identity.signPlcOperation",
        "com.atproto.admin.sendEmail",
    ] {
        // Refused even for a full session and with an explicit proxy header.
        let req = Request::builder()
            .method("POST")
            .uri(format!("/xrpc/{method}"))
            .header("atproto-proxy", "did:web:appview.test#bsky_appview")
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let reply = call(&ctx, req, Some(caller(true))).await;
        assert_xrpc_error(&reply, 400, "InvalidToken", "Bad token method");
    }
    // Chat needs a privileged credential.
    let send = || {
        Request::builder()
            .method("POST")
            .uri("/xrpc/chat.bsky.convo.sendMessage")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"convoId":"c","message":{"text":"hi"}}"#))
            .unwrap()
    };
    let reply = call(&ctx, send(), Some(caller(false))).await;
    assert_xrpc_error(&reply, 400, "InvalidToken", "Bad token method");
    let reply = call(&ctx, send(), None).await;
    assert_xrpc_error(&reply, 400, "InvalidToken", "Bad token method");
    assert!(appview.seen().is_empty());

    let reply = call(&ctx, send(), Some(caller(true))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        &reply.body[..],
        br#"{"convoId":"c","message":{"text":"hi"}}"#
    );
    assert_eq!(appview.only().uri, "/xrpc/chat.bsky.convo.sendMessage");
}

#[tokio::test]
async fn other_refusals() {
    let (appview, url) = start_upstream().await;
    let ctx = context(config(&url), vec![]);
    let req = Request::builder()
        .method("PUT")
        .uri("/xrpc/app.bsky.feed.getTimeline")
        .body(Body::empty())
        .unwrap();
    let reply = call(&ctx, req, None).await;
    assert_xrpc_error(
        &reply,
        400,
        "InvalidRequest",
        "XRPC requests only supports GET and POST",
    );
    let req = get("/xrpc/not-an-nsid").body(Body::empty()).unwrap();
    let reply = call(&ctx, req, None).await;
    assert_xrpc_error(&reply, 400, "InvalidRequest", "invalid xrpc path");

    // No AppView configured.
    let ctx = context(ProxyConfig::default(), vec![]);
    let req = get("/xrpc/app.bsky.feed.getTimeline")
        .body(Body::empty())
        .unwrap();
    let reply = call(&ctx, req, Some(caller(false))).await;
    assert_xrpc_error(
        &reply,
        400,
        "InvalidRequest",
        "No service configured for app.bsky.feed.getTimeline",
    );
    assert!(appview.seen().is_empty());
}

#[tokio::test]
async fn upstream_errors_are_rendered_as_the_reference_does() {
    let (_appview, url) = start_upstream().await;
    let ctx = context(config(&url), vec![]);
    let fetch = |path: &'static str| {
        let ctx = &ctx;
        async move {
            let req = get(path).body(Body::empty()).unwrap();
            call(ctx, req, Some(caller(false))).await
        }
    };

    // A lexicon error passes with its name and message; extra fields are dropped.
    let reply = fetch("/xrpc/app.bsky.actor.getProfile?actor=bob.test").await;
    assert_xrpc_error(&reply, 400, "BlockedActor", "Requester has blocked actor");
    assert_eq!(names(&reply.headers), ["content-type", "retry-after"]);
    assert_eq!(reply.header("retry-after"), Some("7"));
    assert_eq!(reply.header("content-type"), Some("application/json"));

    // An upstream 500 is our 502, its name and message kept.
    let reply = fetch("/xrpc/app.bsky.unspecced.boom").await;
    assert_xrpc_error(&reply, 502, "InternalServerError", "database unavailable");

    // A status XRPC does not name becomes 400 with the generic name.
    let reply = fetch("/xrpc/app.bsky.unspecced.teapot").await;
    assert_xrpc_error(&reply, 400, "InvalidRequest", "short and stout");

    // A body that is not JSON is replaced by the status's name.
    let reply = fetch("/xrpc/app.bsky.unspecced.html").await;
    assert_xrpc_error(&reply, 503, "NotEnoughResources", "NotEnoughResources");

    // Unknown method upstream.
    let reply = fetch("/xrpc/app.bsky.unspecced.nothingHere").await;
    assert_xrpc_error(&reply, 501, "MethodNotImplemented", "MethodNotImplemented");

    // A compressed error body is passed through untouched.
    let reply = fetch("/xrpc/app.bsky.unspecced.gzipError").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(&reply.body[..], b"\x1f\x8b\x08\x00not-really-gzip");
}

#[tokio::test]
async fn responses_over_the_cap_are_refused_or_cut_off() {
    let (_appview, url) = start_upstream().await;
    let ctx = context(
        ProxyConfig {
            max_response_body: 2048,
            ..config(&url)
        },
        vec![],
    );
    // Declared too long.
    let req = get("/xrpc/app.bsky.unspecced.big")
        .body(Body::empty())
        .unwrap();
    let reply = call(&ctx, req, None).await;
    assert_xrpc_error(
        &reply,
        502,
        "UpstreamFailure",
        "Upstream response is too large",
    );
    // A HEAD answer declares the length without a body: passed.
    let req = Request::builder()
        .method("HEAD")
        .uri("/xrpc/app.bsky.unspecced.big")
        .body(Body::empty())
        .unwrap();
    let reply = call(&ctx, req, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-length"), Some("4096"));
    assert!(reply.body.is_empty());

    // Streamed past the cap: the status was already sent, the body is cut off with an error.
    let req = get("/xrpc/app.bsky.unspecced.bigStream")
        .body(Body::empty())
        .unwrap();
    let response = proxy_request(&ctx, req, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.into_body().collect().await.is_err());
}

#[tokio::test]
async fn unreachable_upstream_is_502() {
    // A port that was just free: nothing listens there.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = url::Url::parse(&format!("http://{addr}")).unwrap();
    let ctx = context(config(&url), vec![]);
    let req = get("/xrpc/app.bsky.feed.getTimeline")
        .body(Body::empty())
        .unwrap();
    let reply = call(&ctx, req, Some(caller(false))).await;
    assert_xrpc_error(
        &reply,
        502,
        "UpstreamFailure",
        "Upstream service unreachable",
    );
}

/// How long a test waits for a call that a proxy deadline (300 ms here) must end: far beyond
/// that deadline, far below the upstream's 30 s stall.
const TEST_DEADLINE: Duration = Duration::from_secs(10);

/// Awaits `call`, failing the test only if it is still running at [`TEST_DEADLINE`].
async fn within<F: std::future::Future>(call: F) -> F::Output {
    tokio::time::timeout(TEST_DEADLINE, call)
        .await
        .expect("still running at the test deadline: a proxy deadline did not fire")
}

#[tokio::test]
async fn slow_upstream_is_504() {
    let (appview, url) = start_upstream().await;
    let ctx = context(
        ProxyConfig {
            headers_timeout: Duration::from_millis(300),
            ..config(&url)
        },
        vec![],
    );
    let req = get("/xrpc/app.bsky.unspecced.slow")
        .body(Body::empty())
        .unwrap();
    // The upstream stalls for 30 s: only the 300 ms headers deadline answers in time.
    let reply = within(call(&ctx, req, Some(caller(false)))).await;
    assert_xrpc_error(&reply, 504, "UpstreamTimeout", "Upstream service timed out");
    assert_eq!(appview.only().uri, "/xrpc/app.bsky.unspecced.slow");
}

#[tokio::test]
async fn a_stalled_response_body_is_cut_off() {
    let (_appview, url) = start_upstream().await;
    let ctx = context(
        ProxyConfig {
            body_timeout: Duration::from_millis(300),
            ..config(&url)
        },
        vec![],
    );
    let req = get("/xrpc/app.bsky.unspecced.stall")
        .body(Body::empty())
        .unwrap();
    let response = proxy_request(&ctx, req, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    assert_eq!(&body.next().await.unwrap().unwrap()[..], b"{");
    // The rest stalls for 30 s: only the 300 ms body deadline ends the stream in time.
    assert!(within(body.next()).await.unwrap().is_err());
}

#[tokio::test]
async fn without_the_dev_flag_only_https_to_public_addresses_is_dialled() {
    let (appview, url) = start_upstream().await;
    let port = url.port().unwrap();
    let secure = |endpoint: String| ProxyConfig {
        allow_insecure: false,
        ..config(&url::Url::parse(&endpoint).unwrap())
    };
    for endpoint in [
        // Plain http.
        format!("http://127.0.0.1:{port}"),
        // https, but a loopback literal.
        format!("https://127.0.0.1:{port}"),
        // https, but the name resolves to loopback.
        format!("https://appview.test:{port}"),
    ] {
        let ctx = ProxyContext::with_host_lookup(
            secure(endpoint.clone()),
            Arc::new(Docs(HashMap::new())),
            Arc::new(AllLoopback),
        )
        .unwrap();
        let req = get("/xrpc/app.bsky.feed.getTimeline")
            .body(Body::empty())
            .unwrap();
        let reply = call(&ctx, req, Some(caller(false))).await;
        assert_xrpc_error(
            &reply,
            502,
            "UpstreamFailure",
            "Upstream service unreachable",
        );
    }
    assert!(appview.seen().is_empty());

    // The same AppView over http with the dev flag is reached.
    let ctx = context(config(&url), vec![]);
    let req = get("/xrpc/app.bsky.feed.getTimeline")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&ctx, req, None).await.status, StatusCode::OK);
    assert_eq!(appview.seen().len(), 1);
}
