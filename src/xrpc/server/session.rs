//! createSession, getSession, refreshSession, deleteSession.

use axum::Json;
use axum::extract::State;
use axum::http::Extensions;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{account_view, client_ip, empty, now};
use crate::accounts::{AccountRef, LimitStatus, RateLimit, Session};
use crate::error::XrpcError;
use crate::server::AppState;
use crate::server::limits::{Client, too_many};
use crate::xrpc::auth::{AccessAllowDeactivated, RefreshAuth};
use crate::xrpc::extract::XrpcJson;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionInput {
    identifier: String,
    password: String,
    auth_factor_token: Option<String>,
}

/// The session output: the account view plus the two tokens.
async fn session_output(
    state: &AppState,
    did: &str,
    session: &Session,
) -> Result<Json<Value>, XrpcError> {
    let account = state
        .accounts()
        .get_account(AccountRef::Did(did))
        .await?
        .ok_or_else(|| XrpcError::invalid_token("Token could not be verified"))?;
    let mut out = account_view(state, &account).await?;
    out.insert("accessJwt".into(), json!(session.access_jwt));
    out.insert("refreshJwt".into(), json!(session.refresh_jwt));
    Ok(Json(Value::Object(out)))
}

/// `com.atproto.server.createSession`.
pub async fn create_session(
    State(state): State<AppState>,
    extensions: Extensions,
    XrpcJson(input): XrpcJson<CreateSessionInput>,
) -> Result<Response, XrpcError> {
    let now = now();
    let ip = client_ip(&extensions);
    let identifier = input.identifier.trim();
    // Handles and addresses compare case-insensitively; DIDs exactly.
    let identifier = if identifier.starts_with("did:") {
        identifier.to_owned()
    } else {
        identifier.to_lowercase()
    };
    let client = extensions.get::<Client>().cloned().unwrap_or(Client {
        ip,
        exempt: !state.config().rate_limits_enabled,
    });
    let limit_status = match state.rate_limits().create_session(&client, &identifier) {
        Ok(status) => status,
        Err(refused) => return Ok(too_many(&refused, "Rate Limit Exceeded")),
    };
    let login = match state
        .accounts()
        .login(&identifier, &input.password, ip, now)
        .await
    {
        Ok(login) => login,
        Err(crate::accounts::Error::AccountLocked { until }) => {
            // The lockout is its own rule (failed attempts per account), reported with the
            // createSession limit's shape.
            let status = LimitStatus {
                limit: state
                    .config()
                    .rate_limits
                    .create_session
                    .first()
                    .copied()
                    .unwrap_or(RateLimit {
                        points: 0,
                        window_secs: 0,
                    }),
                remaining: 0,
                reset: until,
            };
            return Ok(too_many(
                &status,
                "Too many failed login attempts; try again later",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    // The email sign-in factor guards the account password; app passwords are already a
    // second secret of their own, as with the reference's entryway.
    if login.account.email_auth_factor && login.app_password.is_none() {
        state
            .account_service()
            .check_sign_in_factor(&login.account, input.auth_factor_token.as_deref())
            .await?;
    }
    let session = state
        .accounts()
        .create_session_tokens(
            &login.account.did,
            login.app_password.as_ref(),
            now,
            state.session(),
        )
        .await?;
    let mut response = session_output(&state, &login.account.did, &session)
        .await?
        .into_response();
    if let Some(status) = limit_status {
        crate::server::limits::set_headers(response.headers_mut(), &status);
    }
    Ok(response)
}

/// `com.atproto.server.getSession`.
pub async fn get_session(
    State(state): State<AppState>,
    AccessAllowDeactivated(caller): AccessAllowDeactivated,
) -> Result<Json<Value>, XrpcError> {
    let account = state
        .accounts()
        .get_account(AccountRef::Did(caller.did.as_str()))
        .await?
        .ok_or_else(|| XrpcError::invalid_token("Token could not be verified"))?;
    let mut view = account_view(&state, &account).await?;
    // An OAuth app sees the email address only with `transition:email` or `account:email`.
    if let Some(grant) = &caller.oauth
        && !grant.permissions.allows_account("email", false)
    {
        for field in ["email", "emailConfirmed", "emailAuthFactor"] {
            view.remove(field);
        }
    }
    Ok(Json(Value::Object(view)))
}

/// `com.atproto.server.refreshSession`: exchanges the refresh token for a new pair.
pub async fn refresh_session(
    State(state): State<AppState>,
    auth: RefreshAuth,
) -> Result<Json<Value>, XrpcError> {
    let claims = auth.claims(&state, false)?;
    let session = state
        .accounts()
        .rotate_refresh(&claims, now(), state.session())
        .await?;
    session_output(&state, &session.did, &session).await
}

/// `com.atproto.server.deleteSession`: ends the session of the refresh token (even an
/// expired one).
pub async fn delete_session(
    State(state): State<AppState>,
    auth: RefreshAuth,
) -> Result<Json<Value>, XrpcError> {
    let claims = auth.claims(&state, true)?;
    state.accounts().revoke_refresh(&claims.jti).await?;
    Ok(empty())
}
