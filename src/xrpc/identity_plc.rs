//! The PLC operations of a migration: `requestPlcOperationSignature` and
//! `signPlcOperation` (on the host an account leaves) and `submitPlcOperation` (on the host
//! it moves to). The rules live in [`crate::migration`].

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::XrpcError;
use crate::identity::plc::{Service, SignedOp};
use crate::migration::PlcFields;
use crate::server::AppState;
use crate::xrpc::auth::{AccessIdentityFull, AccessIdentityFullAllowDeactivated};
use crate::xrpc::extract::XrpcJson;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/xrpc/com.atproto.identity.requestPlcOperationSignature",
            post(request_plc_operation_signature),
        )
        .route(
            "/xrpc/com.atproto.identity.signPlcOperation",
            post(sign_plc_operation),
        )
        .route(
            "/xrpc/com.atproto.identity.submitPlcOperation",
            post(submit_plc_operation),
        )
}

/// `com.atproto.identity.requestPlcOperationSignature`: mails a `plc_operation` token.
async fn request_plc_operation_signature(
    State(state): State<AppState>,
    AccessIdentityFull(caller): AccessIdentityFull,
) -> Result<(), XrpcError> {
    state
        .account_service()
        .request_plc_operation_signature(caller.did.as_str())
        .await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignInput {
    token: Option<String>,
    rotation_keys: Option<Vec<String>>,
    also_known_as: Option<Vec<String>>,
    verification_methods: Option<BTreeMap<String, String>>,
    services: Option<BTreeMap<String, Service>>,
}

/// `com.atproto.identity.signPlcOperation`: `{operation}`, signed by this server's rotation
/// key, not sent.
async fn sign_plc_operation(
    State(state): State<AppState>,
    AccessIdentityFull(caller): AccessIdentityFull,
    XrpcJson(input): XrpcJson<SignInput>,
) -> Result<Json<Value>, XrpcError> {
    let token = input
        .token
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            XrpcError::invalid_request("email confirmation token required to sign PLC operations")
        })?;
    let operation = state
        .migration()
        .sign_plc_operation(
            &caller.did,
            &token,
            PlcFields {
                rotation_keys: input.rotation_keys,
                also_known_as: input.also_known_as,
                verification_methods: input.verification_methods,
                services: input.services,
            },
        )
        .await?;
    Ok(Json(json!({ "operation": operation })))
}

#[derive(Deserialize)]
struct SubmitInput {
    operation: Value,
}

/// `com.atproto.identity.submitPlcOperation`: checked, then sent to the PLC directory. The
/// account moving here is still deactivated, so a deactivated caller with a full session (or
/// an OAuth token with `identity:*`) is accepted.
async fn submit_plc_operation(
    State(state): State<AppState>,
    AccessIdentityFullAllowDeactivated(caller): AccessIdentityFullAllowDeactivated,
    XrpcJson(input): XrpcJson<SubmitInput>,
) -> Result<(), XrpcError> {
    let op: SignedOp = serde_json::from_value(input.operation)
        .map_err(|e| XrpcError::invalid_request(format!("Invalid operation: {e}")))?;
    state
        .migration()
        .submit_plc_operation(&caller.did, &op)
        .await?;
    Ok(())
}
