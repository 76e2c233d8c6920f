//! `GET /.well-known/atproto-did`: the DID of the local account whose handle is the request's
//! host name, as `text/plain` — the HTTPS method of handle resolution, answered for handles
//! under this server's handle domains.

use axum::Router;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::account_service::rules::service_domain;
use crate::accounts::AccountRef;
use crate::server::AppState;
use crate::syntax::Handle;

/// The `/.well-known/atproto-did` route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/.well-known/atproto-did", get(atproto_did))
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        "User not found",
    )
        .into_response()
}

/// The host name of the `Host` header, without a port, lowercased.
fn host_name(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(HOST)?.to_str().ok()?;
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    Some(name.to_ascii_lowercase())
}

async fn atproto_did(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(handle) = host_name(&headers).and_then(|h| h.parse::<Handle>().ok()) else {
        return not_found();
    };
    if service_domain(&handle, &state.config().service_handle_domains).is_none() {
        return not_found();
    }
    match state
        .accounts()
        .get_account(AccountRef::Handle(handle.as_str()))
        .await
    {
        Ok(Some(account)) => (
            StatusCode::OK,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            account.did,
        )
            .into_response(),
        Ok(None) => not_found(),
        Err(err) => {
            tracing::error!(%err, "well-known atproto-did lookup failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn host_names() {
        let mut headers = HeaderMap::new();
        assert_eq!(host_name(&headers), None);
        headers.insert(HOST, HeaderValue::from_static("Alice.Test:8080"));
        assert_eq!(host_name(&headers).as_deref(), Some("alice.test"));
        headers.insert(HOST, HeaderValue::from_static("alice.test"));
        assert_eq!(host_name(&headers).as_deref(), Some("alice.test"));
    }
}
