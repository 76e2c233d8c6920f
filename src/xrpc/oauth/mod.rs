//! HTTP endpoints of the OAuth authorization server: metadata, PAR, token, revocation, the
//! authorization pages, and the layer that accepts `Authorization: DPoP` on XRPC requests.
//!
//! Handlers only parse and render; the flows live in [`crate::oauth::OAuthProvider`].

mod pages;
mod resource;

pub use resource::{OAuthAccess, dpop_resource_auth};

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::oauth::{OAuthError, RequestContext};
use crate::server::AppState;

/// Routes of the authorization server and its protected-resource metadata.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(server_metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(resource_metadata),
        )
        .route("/oauth/jwks", get(jwks))
        .route("/oauth/par", post(par))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/oauth/authorize", get(pages::authorize))
        .route("/oauth/authorize/sign-in", post(pages::sign_in))
        .route("/oauth/authorize/consent", post(pages::consent))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn server_metadata(State(state): State<AppState>) -> Response {
    axum::Json(state.oauth().server_metadata()).into_response()
}

async fn resource_metadata(State(state): State<AppState>) -> Response {
    axum::Json(state.oauth().resource_metadata()).into_response()
}

/// The server signs nothing clients verify (tokens are opaque), so its key set is empty.
async fn jwks() -> Response {
    axum::Json(serde_json::json!({ "keys": [] })).into_response()
}

/// Parses an `application/x-www-form-urlencoded` (or JSON object) body; a repeated
/// parameter is refused (RFC 6749 §3.1).
pub(crate) fn parse_form(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HashMap<String, String>, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut out = HashMap::new();
    if content_type.starts_with("application/json") {
        let value: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
            .map_err(|_| OAuthError::invalid_request("Invalid JSON body"))?;
        for (k, v) in value {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            out.insert(k, v);
        }
        return Ok(out);
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.insert(k.clone().into_owned(), v.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "Repeated parameter {k}"
            )));
        }
    }
    Ok(out)
}

/// The `DPoP` header, if exactly one non-empty one was sent.
pub(crate) fn dpop_header(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    let mut values = headers.get_all("dpop").iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_dpop_proof(
            "DPoP header must contain a single proof",
        ));
    }
    let proof = first
        .to_str()
        .map_err(|_| OAuthError::invalid_dpop_proof("Malformed DPoP header"))?;
    if proof.is_empty() {
        return Err(OAuthError::invalid_dpop_proof(
            "DPoP header cannot be empty",
        ));
    }
    Ok(Some(proof))
}

/// Headers every authorization-server answer carries: a fresh DPoP nonce, no caching.
fn oauth_headers(state: &AppState, response: &mut Response) {
    let headers = response.headers_mut();
    if let Ok(nonce) = HeaderValue::from_str(&state.oauth().nonce(now())) {
        headers.insert("dpop-nonce", nonce);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// An OAuth error as JSON (`error`, `error_description`).
fn error_response(state: &AppState, err: &OAuthError) -> Response {
    let body = serde_json::json!({ "error": err.code, "error_description": err.description });
    let mut response = (err.status, axum::Json(body)).into_response();
    oauth_headers(state, &mut response);
    response
}

fn json_response(state: &AppState, status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    oauth_headers(state, &mut response);
    response
}

async fn par(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let form = parse_form(&headers, &body)?;
        let url = format!("{}/oauth/par", state.oauth().issuer());
        let ctx = RequestContext {
            method: "POST",
            url: &url,
            dpop: dpop_header(&headers)?,
        };
        state.oauth().par(ctx, &form, now()).await
    }
    .await;
    match result {
        Ok((request_uri, expires_in)) => json_response(
            &state,
            StatusCode::CREATED,
            serde_json::json!({ "request_uri": request_uri, "expires_in": expires_in }),
        ),
        Err(err) => error_response(&state, &err),
    }
}

async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let form = parse_form(&headers, &body)?;
        let url = format!("{}/oauth/token", state.oauth().issuer());
        let ctx = RequestContext {
            method: "POST",
            url: &url,
            dpop: dpop_header(&headers)?,
        };
        state.oauth().token(ctx, &form, now()).await
    }
    .await;
    match result {
        Ok(tokens) => match serde_json::to_value(tokens) {
            Ok(body) => json_response(&state, StatusCode::OK, body),
            Err(e) => error_response(&state, &OAuthError::server_error(e)),
        },
        Err(err) => error_response(&state, &err),
    }
}

async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let form = parse_form(&headers, &body)?;
        state.oauth().revoke(&form).await
    }
    .await;
    match result {
        Ok(()) => json_response(&state, StatusCode::OK, serde_json::json!({})),
        Err(err) => error_response(&state, &err),
    }
}
