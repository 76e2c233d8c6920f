//! The HTTP skeleton: built-in routes, XRPC error bodies, body limits, CORS, and a real
//! server on a socket that stops when its token is cancelled.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::post;
use http_body_util::BodyExt;
use rookery::config::{Config, SecretBytes, ServiceSecrets};
use rookery::xrpc::extract::{JSON_BODY_LIMIT, RECORD_BODY_LIMIT, XrpcJson, body_limit};
use rookery::{AppState, app};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Sends `request` to the whole application over a fresh data directory, removed afterwards.
async fn send_fresh(request: Request<Body>) -> Reply {
    let secrets = ServiceSecrets {
        session_key_seed: SecretBytes::new([7; 32]),
        plc_rotation_key: SecretBytes::new([9; 32]),
    };
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_directory: dir.path().to_path_buf(),
        ..Config::default()
    };
    let state = AppState::build(config, secrets).await.unwrap();
    send(app(state), request).await
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

async fn send(router: Router, request: Request<Body>) -> Reply {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn health_reports_the_version() {
    let reply = send_fresh(get("/xrpc/_health")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.json(), json!({ "version": VERSION }));
}

#[tokio::test]
async fn root_shows_a_text_banner() {
    let reply = send_fresh(get("/")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "text/plain; charset=utf-8");
    assert!(
        reply.body.contains(&format!(
            "This is Rookery {VERSION}, an AT Protocol Personal Data Server (PDS)."
        )),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains("http://localhost:2583/xrpc/"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn unknown_xrpc_method_is_501() {
    for request in [
        get("/xrpc/com.example.nothing.here"),
        get("/xrpc/com.example.nothing.here?repo=x&collection=y&rkey=z"),
        Request::post("/xrpc/com.example.nothing.written")
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap(),
    ] {
        let reply = send_fresh(request).await;
        assert_eq!(reply.status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(
            reply.body,
            r#"{"error":"MethodNotImplemented","message":"Method Not Implemented"}"#
        );
    }
}

#[tokio::test]
async fn malformed_xrpc_path_is_400_and_other_paths_404() {
    for path in [
        "/xrpc/",
        "/xrpc/a",
        "/xrpc/com..example",
        "/xrpc/com.example/x",
    ] {
        let reply = send_fresh(get(path)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            reply.json(),
            json!({"error": "InvalidRequest", "message": "invalid xrpc path"}),
            "{path}"
        );
    }
    for path in ["/favicon.ico", "/xrpc", "/.well-known/nothing"] {
        let reply = send_fresh(get(path)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            reply.json(),
            json!({"error": "NotFound", "message": "Not Found"}),
            "{path}"
        );
    }
}

#[tokio::test]
async fn wrong_http_method_on_xrpc_route_is_400() {
    let request = Request::post("/xrpc/_health").body(Body::empty()).unwrap();
    let reply = send_fresh(request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json(),
        json!({"error": "InvalidRequest", "message": "Incorrect HTTP method (POST)"})
    );
    let request = Request::delete("/").body(Body::empty()).unwrap();
    let reply = send_fresh(request).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn cors_is_permissive() {
    let request = Request::get("/xrpc/_health")
        .header("origin", "https://app.example")
        .body(Body::empty())
        .unwrap();
    let reply = send_fresh(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("access-control-allow-origin"), "*");

    // Errors from the fallback carry the header too, so browsers can read them.
    let request = Request::get("/xrpc/com.example.missing")
        .header("origin", "https://app.example")
        .body(Body::empty())
        .unwrap();
    let reply = send_fresh(request).await;
    assert_eq!(reply.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(reply.header("access-control-allow-origin"), "*");

    let preflight = Request::options("/xrpc/com.atproto.repo.createRecord")
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .body(Body::empty())
        .unwrap();
    let reply = send_fresh(preflight).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("access-control-allow-origin"), "*");
    assert_eq!(reply.header("access-control-max-age"), "86400");
    assert_eq!(
        reply.header("access-control-allow-headers"),
        "authorization,content-type"
    );
    assert!(
        reply
            .header("access-control-allow-methods")
            .contains("POST")
    );
}

/// A test-only router shaped like the real one: a JSON route under the default limit and a
/// record route with the larger limit, both echoing the decoded body.
fn echo_router() -> Router {
    async fn echo(XrpcJson(body): XrpcJson<Value>) -> axum::Json<Value> {
        axum::Json(body)
    }
    Router::new()
        .route("/xrpc/test.echo", post(echo))
        .route(
            "/xrpc/test.echoRecord",
            post(echo).layer(body_limit(RECORD_BODY_LIMIT)),
        )
        .layer(body_limit(JSON_BODY_LIMIT))
}

fn post_json(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

/// A JSON document of exactly `len` bytes: `{"t":"aaaa…"}`.
fn json_of_len(len: usize) -> String {
    let padding = len - r#"{"t":""}"#.len();
    format!(r#"{{"t":"{}"}}"#, "a".repeat(padding))
}

#[tokio::test]
async fn malformed_json_is_400_invalid_request() {
    let reply = send(echo_router(), post_json("/xrpc/test.echo", "{\"repo\": ")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json(),
        json!({
            "error": "InvalidRequest",
            "message": "Invalid JSON body: EOF while parsing a value at line 1 column 9"
        })
    );

    let request = Request::post("/xrpc/test.echo")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("a=b"))
        .unwrap();
    let reply = send(echo_router(), request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "InvalidRequest");

    let reply = send(
        echo_router(),
        post_json("/xrpc/test.echo", r#"{"ok":true}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"ok": true}));
}

#[tokio::test]
async fn oversize_bodies_are_413_payload_too_large() {
    let expected = json!({
        "error": "PayloadTooLarge",
        "message": "Request body is larger than this method accepts"
    });

    // Default JSON limit: 150 KiB accepted, one byte more refused.
    let at_limit = json_of_len(JSON_BODY_LIMIT);
    let reply = send(echo_router(), post_json("/xrpc/test.echo", at_limit)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let over = json_of_len(JSON_BODY_LIMIT + 1);
    let reply = send(echo_router(), post_json("/xrpc/test.echo", over.clone())).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.json(), expected);

    // The record route takes the same body, up to 1 MiB.
    let reply = send(echo_router(), post_json("/xrpc/test.echoRecord", over)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let at_limit = json_of_len(RECORD_BODY_LIMIT);
    let reply = send(echo_router(), post_json("/xrpc/test.echoRecord", at_limit)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let over = json_of_len(RECORD_BODY_LIMIT + 1);
    let reply = send(echo_router(), post_json("/xrpc/test.echoRecord", over)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json(), expected);

    // A streamed body without Content-Length is cut off the same way.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..200).map(|_| Ok("a".repeat(1024))).collect();
    let stream = Body::from_stream(futures::stream::iter(chunks));
    let reply = send(echo_router(), post_json("/xrpc/test.echo", stream)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json(), expected);
}

/// One HTTP/1.1 request on a fresh connection; returns the raw response.
async fn raw_http(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::test]
async fn serves_on_a_socket_and_stops_when_cancelled() {
    let data = tempfile::tempdir().unwrap();
    let config = Config::from_sources(
        [
            ("PDS_PORT", "0"),
            ("ROOKERY_BIND_ADDRESS", "127.0.0.1"),
            ("PDS_DATA_DIRECTORY", data.path().to_str().unwrap()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
        None,
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let server = rookery::server::serve(config, shutdown.clone())
        .await
        .unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);

    let response = raw_http(addr, "/xrpc/_health").await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.ends_with(&format!("\r\n\r\n{{\"version\":\"{VERSION}\"}}")),
        "{response}"
    );
    // The generated secrets are in the data directory.
    assert!(data.path().join("session_key.hex").is_file());
    assert!(data.path().join("plc_rotation_key.hex").is_file());

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server.wait())
        .await
        .expect("server did not stop within 5 s")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting connections after shutdown"
    );
}

#[tokio::test]
async fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let data = tempfile::tempdir().unwrap();
    let config = Config::from_sources(
        [
            ("PDS_PORT", port.as_str()),
            ("ROOKERY_BIND_ADDRESS", "127.0.0.1"),
            ("PDS_DATA_DIRECTORY", data.path().to_str().unwrap()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
        None,
    )
    .unwrap();
    let err = rookery::server::serve(config, CancellationToken::new())
        .await
        .err()
        .expect("binding a taken port must fail");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot listen on 127.0.0.1:{port}: ")),
        "{err}"
    );
}

/// Collects everything a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = self.0.lock() {
            log.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn internal_errors_are_logged_not_sent() {
    async fn broken() -> Result<(), rookery::error::XrpcError> {
        Err(rookery::error::XrpcError::internal(
            "sqlite error: no such table: account at /srv/pds/account.sqlite",
        ))
    }
    let router = Router::new()
        .route("/xrpc/test.broken", axum::routing::get(broken))
        .layer(axum::middleware::from_fn(
            rookery::error::log_internal_errors,
        ));

    let log = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let reply = send(router, get("/xrpc/test.broken")).await;

    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reply.body,
        r#"{"error":"InternalServerError","message":"Internal Server Error"}"#
    );
    let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(
        logged.contains("method=GET path=/xrpc/test.broken status=500"),
        "{logged}"
    );
    assert!(
        logged.contains("detail=sqlite error: no such table: account at /srv/pds/account.sqlite"),
        "{logged}"
    );
}
