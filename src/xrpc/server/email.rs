//! Email confirmation and change, password reset, and reserved signing keys.
//!
//! The flows live in [`crate::account_service`]; these handlers parse, call and map.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{empty, now};
use crate::account_service::rules::{check_password, normalize_email};
use crate::crypto::{Algorithm, Keypair};
use crate::error::XrpcError;
use crate::server::AppState;
use crate::syntax::Did;
use crate::xrpc::auth::{AccessAllowDeactivated, AccessEmailManage, AccessFull};
use crate::xrpc::extract::XrpcJson;

/// The reference's answer to an address it will not take.
pub(crate) fn unsupported_email() -> XrpcError {
    XrpcError::invalid_request("This email address is not supported, please use a different email.")
}

/// `com.atproto.server.requestEmailConfirmation`.
pub async fn request_email_confirmation(
    State(state): State<AppState>,
    AccessEmailManage(caller): AccessEmailManage,
) -> Result<Json<Value>, XrpcError> {
    state
        .account_service()
        .request_email_confirmation(caller.did.as_str())
        .await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub struct ConfirmEmailInput {
    email: String,
    token: String,
}

/// `com.atproto.server.confirmEmail`.
pub async fn confirm_email(
    State(state): State<AppState>,
    AccessEmailManage(caller): AccessEmailManage,
    XrpcJson(input): XrpcJson<ConfirmEmailInput>,
) -> Result<Json<Value>, XrpcError> {
    state
        .account_service()
        .confirm_email(caller.did.as_str(), &input.email, &input.token)
        .await?;
    Ok(empty())
}

/// `com.atproto.server.requestEmailUpdate`: `{tokenRequired}`.
pub async fn request_email_update(
    State(state): State<AppState>,
    AccessFull(caller): AccessFull,
) -> Result<Json<Value>, XrpcError> {
    let token_required = state
        .account_service()
        .request_email_update(caller.did.as_str())
        .await?;
    Ok(Json(json!({ "tokenRequired": token_required })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateEmailInput {
    email: String,
    email_auth_factor: Option<bool>,
    token: Option<String>,
}

/// `com.atproto.server.updateEmail`: also turns the email sign-in factor on or off.
pub async fn update_email(
    State(state): State<AppState>,
    AccessFull(caller): AccessFull,
    XrpcJson(input): XrpcJson<UpdateEmailInput>,
) -> Result<Json<Value>, XrpcError> {
    let email = normalize_email(&input.email).ok_or_else(unsupported_email)?;
    let token = input
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    state
        .account_service()
        .update_email(caller.did.as_str(), &email, token, input.email_auth_factor)
        .await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub struct RequestPasswordResetInput {
    email: String,
}

/// `com.atproto.server.requestPasswordReset` (no authentication).
pub async fn request_password_reset(
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<RequestPasswordResetInput>,
) -> Result<Json<Value>, XrpcError> {
    let email = normalize_email(&input.email)
        .ok_or_else(|| XrpcError::invalid_request("account does not have an email address"))?;
    state
        .account_service()
        .request_password_reset(&email)
        .await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub struct ResetPasswordInput {
    token: String,
    password: String,
}

/// `com.atproto.server.resetPassword` (no authentication: the token names the account).
pub async fn reset_password(
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<ResetPasswordInput>,
) -> Result<Json<Value>, XrpcError> {
    check_password(&input.password)?;
    state
        .account_service()
        .reset_password(&input.token, &input.password)
        .await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub struct ReserveSigningKeyInput {
    did: Option<String>,
}

/// `com.atproto.server.reserveSigningKey`: a new secp256k1 key kept for an account about to
/// be created here (for `did` if given); answers its `did:key`.
pub async fn reserve_signing_key(
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<ReserveSigningKeyInput>,
) -> Result<Json<Value>, XrpcError> {
    let did = input
        .did
        .as_deref()
        .map(|d| {
            d.parse::<Did>()
                .map_err(|_| XrpcError::invalid_request("did must be a valid DID"))
        })
        .transpose()?;
    let key = Keypair::generate(Algorithm::K256);
    let key_did = key.public_key().to_did_key();
    state
        .accounts()
        .reserve_signing_key(
            &key_did,
            &key.to_private_bytes(),
            did.as_ref().map(Did::as_str),
            now(),
        )
        .await?;
    Ok(Json(json!({ "signingKey": key_did })))
}

/// `com.atproto.temp.checkSignupQueue`: this server has no sign-up queue.
pub async fn check_signup_queue(
    AccessAllowDeactivated(_caller): AccessAllowDeactivated,
) -> Json<Value> {
    Json(json!({ "activated": true }))
}
