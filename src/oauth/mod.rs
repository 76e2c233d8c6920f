//! The OAuth authorization server of the atproto OAuth profile: client metadata discovery,
//! pushed authorization requests with PKCE, DPoP-bound tokens with rotation, revocation,
//! and the scopes that tokens carry.
//!
//! No HTTP here: [`OAuthProvider`] takes the parts of a request it needs and returns
//! results or an [`OAuthError`]; the routes and pages live in `crate::xrpc::oauth`.

pub mod client;
pub mod dpop;
pub mod permission_set;
mod provider;
pub mod scope;
mod store;

pub use provider::{
    AccessGrant, AuthorizationView, ConsentDecision, OAuthProvider, RequestContext, SignInForm,
    SignInOutcome, TokenResponse,
};
pub use store::SessionSummary;
pub(crate) use store::delete_tokens_of as delete_sessions_of;

use axum::http::StatusCode;

/// An OAuth error as RFC 6749 / RFC 9449 name them, with the status to answer it with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub status: StatusCode,
    /// `invalid_request`, `invalid_grant`, `invalid_client`, `use_dpop_nonce`, …
    pub code: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_client", d)
    }
    pub fn invalid_client_metadata(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_client_metadata", d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }
    pub fn invalid_redirect_uri(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }
    pub fn new_unsupported_response_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            "response_type must be code",
        )
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", d)
    }
    pub fn invalid_dpop_proof(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_dpop_proof", d)
    }
    pub fn use_dpop_nonce(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "use_dpop_nonce", d)
    }
    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", d)
    }
    pub fn access_denied(d: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "access_denied", d)
    }
    /// A failure on our side; `detail` is logged, never sent.
    pub fn server_error(detail: impl std::fmt::Display) -> Self {
        tracing::error!(detail = %detail, "oauth server error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Internal Server Error",
        )
    }
}

impl From<crate::accounts::Error> for OAuthError {
    fn from(e: crate::accounts::Error) -> Self {
        OAuthError::server_error(e)
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(e: sqlx::Error) -> Self {
        OAuthError::server_error(e)
    }
}

/// A random URL-safe identifier of `bytes` random bytes after `prefix`.
pub(crate) fn random_id(prefix: &str, bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
    )
}
