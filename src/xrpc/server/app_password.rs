//! createAppPassword, listAppPasswords, revokeAppPassword (main-password sessions only).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{datetime, empty, now};
use crate::error::XrpcError;
use crate::server::AppState;
use crate::xrpc::auth::AccessFull;
use crate::xrpc::extract::XrpcJson;

#[derive(Deserialize)]
pub struct CreateInput {
    name: String,
    #[serde(default)]
    privileged: bool,
}

/// `com.atproto.server.createAppPassword`.
pub async fn create(
    State(state): State<AppState>,
    AccessFull(caller): AccessFull,
    XrpcJson(input): XrpcJson<CreateInput>,
) -> Result<Json<Value>, XrpcError> {
    let name = crate::account_service::rules::app_password_name(&input.name)?;
    let created = state
        .accounts()
        .create_app_password(caller.did.as_str(), name, input.privileged, now())
        .await?;
    Ok(Json(json!({
        "name": created.name,
        "password": created.password,
        "createdAt": datetime(created.created_at),
        "privileged": created.privileged,
    })))
}

/// `com.atproto.server.listAppPasswords`.
pub async fn list(
    State(state): State<AppState>,
    AccessFull(caller): AccessFull,
) -> Result<Json<Value>, XrpcError> {
    let passwords: Vec<Value> = state
        .accounts()
        .list_app_passwords(caller.did.as_str())
        .await?
        .into_iter()
        .map(|p| {
            json!({
                "name": p.name,
                "createdAt": datetime(p.created_at),
                "privileged": p.privileged,
            })
        })
        .collect();
    Ok(Json(json!({ "passwords": passwords })))
}

#[derive(Deserialize)]
pub struct RevokeInput {
    name: String,
}

/// `com.atproto.server.revokeAppPassword`: also ends the sessions opened with it.
pub async fn revoke(
    State(state): State<AppState>,
    AccessFull(caller): AccessFull,
    XrpcJson(input): XrpcJson<RevokeInput>,
) -> Result<Json<Value>, XrpcError> {
    state
        .accounts()
        .revoke_app_password(caller.did.as_str(), &input.name)
        .await?;
    Ok(empty())
}
