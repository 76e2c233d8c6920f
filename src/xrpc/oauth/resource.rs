//! XRPC requests with `Authorization: DPoP <token>`: the token and its proof are checked
//! here, before routing, so every XRPC route (and the proxy) sees the same [`OAuthAccess`]
//! in the request extensions; `crate::xrpc::auth` turns it into a caller.
//!
//! Failures answer 401 with `WWW-Authenticate: DPoP error="…"` and a fresh `DPoP-Nonce`, as
//! RFC 9449 §7.1 and §9 describe; OAuth clients retry on `use_dpop_nonce` and refresh on
//! `invalid_token`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::XrpcError;
use crate::oauth::{AccessGrant, OAuthError, RequestContext};
use crate::server::AppState;

/// A request authenticated by a DPoP-bound OAuth access token.
#[derive(Debug, Clone)]
pub struct OAuthAccess(pub Arc<AccessGrant>);

/// The token of an `Authorization: DPoP <token>` header.
fn dpop_token(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("dpop")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Middleware: authenticates DPoP-bound tokens on `/xrpc/` requests.
pub async fn dpop_resource_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    if !req.uri().path().starts_with("/xrpc/") {
        return next.run(req).await;
    }
    let Some(token) = dpop_token(&req).map(str::to_owned) else {
        return next.run(req).await;
    };
    let now = chrono::Utc::now().timestamp();
    let url = format!("{}{}", state.oauth().issuer(), req.uri().path());
    let result = match super::dpop_header(req.headers()) {
        Ok(dpop) => {
            let ctx = RequestContext {
                method: req.method().as_str(),
                url: &url,
                dpop,
            };
            state.oauth().authenticate(ctx, &token, now).await
        }
        Err(e) => Err(e),
    };
    let mut response = match result {
        Ok(grant) => {
            req.extensions_mut().insert(OAuthAccess(Arc::new(grant)));
            next.run(req).await
        }
        Err(err) => refusal(&err),
    };
    if let Ok(nonce) = HeaderValue::from_str(&state.oauth().nonce(now)) {
        response.headers_mut().insert("dpop-nonce", nonce);
    }
    response
}

fn refusal(err: &OAuthError) -> Response {
    if err.status.is_server_error() {
        return XrpcError::internal(&err.description).into_response();
    }
    let challenge = format!(
        "DPoP error=\"{}\", error_description=\"{}\", algs=\"ES256\"",
        err.code,
        err.description.replace(['"', '\\'], "'")
    );
    let body = serde_json::json!({ "error": err.code, "message": err.description });
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
