//! Service proxying for XRPC methods no route claims: `app.bsky.*`, `chat.bsky.*`,
//! `tools.ozone.*`, `com.atproto.moderation.createReport`, and any method called with an
//! `atproto-proxy` header. Methods served here are routes, and routes always win over this
//! fallback; protected methods are refused by [`crate::proxy::proxy_request`].

use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};

use crate::error::XrpcError;
use crate::proxy::{Caller, PROXY_HEADER, proxy_request};
use crate::server::AppState;
use crate::xrpc::auth::OptionalAccess;

/// Namespaces forwarded to their default service without an `atproto-proxy` header.
const PROXIED_PREFIXES: [&str; 3] = ["app.bsky.", "chat.bsky.", "tools.ozone."];

/// Whether an unrouted request goes to the proxy: a well-formed `/xrpc/` method in a proxied
/// namespace, or any well-formed method with an `atproto-proxy` header.
pub fn is_proxied(req: &Request) -> bool {
    let Some(method) = super::method_name(req.uri().path()) else {
        return false;
    };
    req.headers().contains_key(PROXY_HEADER)
        || method == "com.atproto.moderation.createReport"
        || PROXIED_PREFIXES.iter().any(|p| method.starts_with(p))
}

/// Forwards `req` for its caller (if it carries a session): the service token is signed with
/// the account's repository signing key; `privileged` comes from the session's scope.
pub async fn forward(state: &AppState, req: Request) -> Response {
    match forward_inner(state, req).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn forward_inner(state: &AppState, req: Request) -> Result<Response, XrpcError> {
    let (mut parts, body) = req.into_parts();
    let OptionalAccess(session) = OptionalAccess::from_request_parts(&mut parts, state).await?;
    let caller = match session {
        Some(session) => {
            let store = state
                .repo()
                .stores()
                .open(&session.did)
                .await
                .map_err(XrpcError::internal)?
                .ok_or_else(|| XrpcError::invalid_request("Account has no repository"))?;
            Some(Caller {
                keypair: store.keypair().clone(),
                privileged: session.scope.is_privileged(),
                oauth: session.oauth,
                did: session.did,
            })
        }
        None => None,
    };
    proxy_request(state.proxy(), Request::from_parts(parts, body), caller).await
}
