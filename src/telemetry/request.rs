//! The outermost middleware: gives every request an id, logs one line for it when its
//! response head is ready, and counts it in [`HttpMetrics`].
//!
//! The id is the client's (or a proxy's) `x-request-id` when it is a short token of safe
//! characters, else a fresh random one; either way it is echoed in the response's
//! `x-request-id` and carried by every log line written while handling the request (the
//! `request` span). The log line names method, path (without the query string: it is not
//! logged, nor is any header), XRPC method, status and latency.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::http::{HttpMetrics, OTHER};
use crate::syntax::Nsid;

/// `x-request-id`.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// Longest incoming request id kept.
const MAX_REQUEST_ID: usize = 128;

/// The request's id, in its extensions for handlers that want to mention it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub Arc<str>);

/// An incoming id worth keeping: 1 to 128 ASCII letters, digits, `-`, `_`, `.`, `:`.
fn sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn fresh_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The metrics label of a request: its NSID for an XRPC call the server answered,
/// `_unimplemented` for an XRPC method it does not serve, `_health`, or `_other`.
pub fn method_label(path: &str, status: u16) -> &str {
    let Some(name) = path.strip_prefix("/xrpc/") else {
        return OTHER;
    };
    let name = name.strip_suffix('/').unwrap_or(name);
    if name == "_health" {
        return "_health";
    }
    if name.parse::<Nsid>().is_err() {
        return OTHER;
    }
    if status == 501 {
        return "_unimplemented";
    }
    name
}

/// The middleware; see the module documentation.
pub async fn observe(
    State(metrics): State<Arc<HttpMetrics>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map_or_else(fresh_id, str::to_owned);
    let id: Arc<str> = id.into();
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let in_flight = metrics.start();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(request).instrument(span.clone()).await;
    drop(in_flight);
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let label = method_label(&path, status);
    metrics.observe(label, status, elapsed);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    span.in_scope(|| {
        tracing::info!(
            target: "rookery::request",
            method = %method,
            path = %path,
            nsid = label,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_ids() {
        assert_eq!(
            method_label("/xrpc/com.atproto.repo.createRecord", 200),
            "com.atproto.repo.createRecord"
        );
        assert_eq!(
            method_label("/xrpc/com.example.nope", 501),
            "_unimplemented"
        );
        assert_eq!(method_label("/xrpc/_health", 200), "_health");
        assert_eq!(method_label("/xrpc/not valid", 400), OTHER);
        assert_eq!(method_label("/.well-known/did.json", 200), OTHER);
        assert!(sane("abc-123_x.y:z"));
        assert!(!sane(""));
        assert!(!sane("a b"));
        assert!(!sane(&"a".repeat(129)));
        let id = fresh_id();
        assert_eq!(id.len(), 32);
        assert!(sane(&id));
    }
}
