//! XRPC endpoints under `/xrpc/`, and the answers for paths no route claims.
//!
//! Later issues add one file per namespace (`server.rs`, `repo.rs`, `sync.rs`, …) and merge
//! their routes in [`routes`].

pub mod admin;
mod admin_accounts;
pub mod auth;
pub mod blob;
mod error_map;
pub mod extract;
pub mod hub;
pub mod identity;
mod identity_plc;
pub mod oauth;
pub mod preferences;
pub mod proxy;
pub mod repo;
pub mod server;
pub mod subscribe;
pub mod sync;
pub mod wellknown;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::error::XrpcError;
use crate::server::AppState;

/// The XRPC routes this server implements.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/xrpc/_health", get(health))
        .merge(server::routes())
        .merge(identity::routes())
        .merge(wellknown::routes())
        .merge(repo::routes())
        .merge(preferences::routes())
        .merge(sync::routes())
        .merge(blob::routes())
        .merge(subscribe::routes())
        .merge(hub::routes())
        .merge(admin::routes())
        .merge(oauth::routes())
}

/// `GET /xrpc/_health`: `{"version": …}` when the databases and the blob store answer;
/// else 503 with `error` (the reference's `Service Unavailable`) and a `message` naming the
/// component that is down (the cause is logged, not sent).
async fn health(State(state): State<AppState>) -> Response {
    let version = &state.config().version;
    match crate::server::health::check(&state).await {
        Ok(()) => Json(json!({ "version": version })).into_response(),
        Err(unhealthy) => {
            tracing::warn!(component = unhealthy.component, detail = %unhealthy.detail, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "version": version,
                    "error": "Service Unavailable",
                    "message": format!("{} unavailable", unhealthy.component),
                })),
            )
                .into_response()
        }
    }
}

/// The method name in an `/xrpc/…` path, checked as the reference does before answering
/// "not implemented": runs of ASCII letters and digits joined by single `.` or `-`, at
/// least two characters, optionally followed by one trailing `/`.
pub fn method_name(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/xrpc/")?;
    let name = rest.strip_suffix('/').unwrap_or(rest);
    let mut separator_allowed = false;
    for b in name.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => separator_allowed = true,
            b'.' | b'-' if separator_allowed => separator_allowed = false,
            _ => return None,
        }
    }
    (separator_allowed && name.len() >= 2).then_some(name)
}

/// Fallback for unrouted paths: the service proxy for proxied methods ([`proxy::is_proxied`]),
/// 501 `MethodNotImplemented` for another well-formed XRPC method, 400 for a malformed
/// `/xrpc/` path, 404 otherwise.
pub async fn not_routed(State(state): State<AppState>, req: Request) -> Response {
    if proxy::is_proxied(&req) {
        return proxy::forward(&state, req).await;
    }
    let path = req.uri().path();
    if path.starts_with("/xrpc/") {
        match method_name(path) {
            Some(_) => XrpcError::method_not_implemented().into_response(),
            None => XrpcError::invalid_request("invalid xrpc path").into_response(),
        }
    } else {
        XrpcError::not_found("Not Found").into_response()
    }
}

/// Fallback for a routed path called with the wrong HTTP method. XRPC clients get the
/// reference's 400 `InvalidRequest`; other paths a plain 405.
pub async fn wrong_method(method: Method, uri: Uri) -> Response {
    if uri.path().starts_with("/xrpc/") {
        XrpcError::invalid_request(format!("Incorrect HTTP method ({method})")).into_response()
    } else {
        StatusCode::METHOD_NOT_ALLOWED.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::method_name;

    #[test]
    fn method_names() {
        for (path, expected) in [
            (
                "/xrpc/com.atproto.server.describeServer",
                Some("com.atproto.server.describeServer"),
            ),
            (
                "/xrpc/com.atproto.sync.getRepo/",
                Some("com.atproto.sync.getRepo"),
            ),
            (
                "/xrpc/io.example-app.v2.doThing",
                Some("io.example-app.v2.doThing"),
            ),
            ("/xrpc/ab", Some("ab")),
            ("/xrpc/a", None),
            ("/xrpc/", None),
            ("/xrpc//", None),
            ("/xrpc/.com.example", None),
            ("/xrpc/com..example", None),
            ("/xrpc/com.example.", None),
            ("/xrpc/com.example/extra", None),
            ("/xrpc/com.example//", None),
            ("/xrpc/com_example.x", None),
            ("/xrpc/_health", None),
            ("/other/com.example.x", None),
        ] {
            assert_eq!(method_name(path), expected, "{path}");
        }
    }
}
