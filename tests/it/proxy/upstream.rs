//! The fake upstream of the proxy tests: an HTTP service on 127.0.0.1 that records every
//! request and answers by path, a DID resolver with fixed documents, and a host lookup
//! that sends every name to loopback.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use rookery::identity::DidDocument;
use rookery::identity::net::HostLookup;
use rookery::identity::resolver::ResolveError;
use rookery::proxy::DidDocResolver;
use rookery::syntax::Did;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// How long the slow and stalling routes wait before answering.
const STALL: Duration = Duration::from_secs(30);

/// The body of every successful timeline answer.
pub const TIMELINE_BODY: &str = r#"{"feed":[],"cursor":"1700000000000::bafyabc"}"#;

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone, Default)]
pub struct Upstream {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "expected exactly one upstream request");
        seen.into_iter().next().unwrap()
    }
}

/// Answers by path; every request is recorded first.
async fn upstream_handler(State(upstream): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    upstream.seen.lock().unwrap().push(Seen {
        method: parts.method.clone(),
        uri: parts.uri.to_string(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let json_error = |status: u16, value: Value| {
        (
            StatusCode::from_u16(status).unwrap(),
            [("retry-after", "7"), ("x-upstream-secret", "no")],
            axum::Json(value),
        )
            .into_response()
    };
    match parts.uri.path() {
        "/xrpc/app.bsky.feed.getTimeline" | "/xrpc/com.atproto.label.queryLabels" => (
            [
                ("content-type", "application/json; charset=utf-8"),
                ("content-language", "en"),
                ("atproto-repo-rev", "3lbbplrhmjs2a"),
                (
                    "atproto-content-labelers",
                    "did:plc:ar7c4by46qjdydhdevvrndac",
                ),
                ("x-upstream-secret", "internal"),
                ("set-cookie", "tracking=1"),
                ("location", "https://elsewhere.example"),
            ],
            TIMELINE_BODY,
        )
            .into_response(),
        // Echoes the body with the content type it came with.
        "/xrpc/app.bsky.unspecced.echo" | "/xrpc/chat.bsky.convo.sendMessage" => {
            let content_type = parts
                .headers
                .get("content-type")
                .cloned()
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            ([("content-type", content_type)], body).into_response()
        }
        "/xrpc/app.bsky.actor.getProfile" => json_error(
            400,
            json!({"error": "BlockedActor", "message": "Requester has blocked actor", "x": 1}),
        ),
        "/xrpc/app.bsky.unspecced.boom" => json_error(
            500,
            json!({"error": "InternalServerError", "message": "database unavailable"}),
        ),
        "/xrpc/app.bsky.unspecced.teapot" => json_error(418, json!({"message": "short and stout"})),
        "/xrpc/app.bsky.unspecced.html" => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "text/html")],
            "<html>maintenance</html>",
        )
            .into_response(),
        "/xrpc/app.bsky.unspecced.gzipError" => (
            StatusCode::NOT_FOUND,
            [
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            Bytes::from_static(b"\x1f\x8b\x08\x00not-really-gzip"),
        )
            .into_response(),
        // Both stall for STALL, longer than any test waits (see `TEST_DEADLINE`).
        "/xrpc/app.bsky.unspecced.slow" => {
            tokio::time::sleep(STALL).await;
            "{}".into_response()
        }
        "/xrpc/app.bsky.unspecced.big" => vec![b'x'; 4096].into_response(),
        "/xrpc/app.bsky.unspecced.bigStream" => {
            let chunks = (0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'y'; 1024])));
            Body::from_stream(futures::stream::iter(chunks)).into_response()
        }
        // One chunk, then silence.
        "/xrpc/app.bsky.unspecced.stall" => {
            let first = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from("{")) });
            let rest = futures::stream::once(async {
                tokio::time::sleep(STALL).await;
                Ok::<_, std::io::Error>(Bytes::from("}"))
            });
            Body::from_stream(first.chain(rest)).into_response()
        }
        _ => json_error(501, json!({"error": "MethodNotImplemented"})),
    }
}

/// Starts a fake upstream on 127.0.0.1; returns its recorder and base URL.
pub async fn start_upstream() -> (Upstream, url::Url) {
    let upstream = Upstream::default();
    let app = Router::new()
        .fallback(upstream_handler)
        .with_state(upstream.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (
        upstream,
        url::Url::parse(&format!("http://{addr}")).unwrap(),
    )
}

/// Hands out the DID documents it was given; anything else does not resolve.
pub struct Docs(pub HashMap<String, DidDocument>);

impl DidDocResolver for Docs {
    fn resolve_did<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<DidDocument, ResolveError>> {
        Box::pin(async move {
            self.0
                .get(did.as_str())
                .cloned()
                .ok_or(ResolveError::UnsupportedMethod)
        })
    }
}

/// Maps every host name to 127.0.0.1.
pub struct AllLoopback;

impl HostLookup for AllLoopback {
    fn lookup_ip<'a>(&'a self, _host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async { Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]) })
    }
}
