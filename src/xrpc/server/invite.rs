//! createInviteCode, createInviteCodes (admin), getAccountInviteCodes.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{datetime, now};
use crate::accounts::InviteCode;
use crate::error::XrpcError;
use crate::server::AppState;
use crate::syntax::Did;
use crate::xrpc::auth::{AccessFull, AdminAuth};
use crate::xrpc::extract::{XrpcJson, XrpcQuery};

/// `createdBy` of codes an administrator makes, as the reference.
pub(crate) const CREATED_BY_ADMIN: &str = "admin";

/// Most codes one createInviteCodes call makes per account.
pub(crate) const MAX_CODE_COUNT: usize = 1000;

pub(crate) fn check_use_count(use_count: i64) -> Result<(), XrpcError> {
    if use_count < 1 {
        Err(XrpcError::invalid_request("useCount must be at least 1"))
    } else {
        Ok(())
    }
}

fn parse_dids(dids: &[String]) -> Result<Vec<Did>, XrpcError> {
    dids.iter()
        .map(|d| {
            d.parse()
                .map_err(|_| XrpcError::invalid_request(format!("Invalid DID: {d}")))
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOneInput {
    use_count: i64,
    for_account: Option<String>,
}

/// `com.atproto.server.createInviteCode`.
pub async fn create_invite_code(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<CreateOneInput>,
) -> Result<Json<Value>, XrpcError> {
    check_use_count(input.use_count)?;
    let for_accounts = parse_dids(input.for_account.as_slice())?;
    let created = state
        .accounts()
        .create_invite_codes(
            &state.config().hostname,
            1,
            input.use_count,
            &for_accounts,
            CREATED_BY_ADMIN,
            now(),
        )
        .await?;
    let code = created
        .into_iter()
        .flat_map(|c| c.codes)
        .next()
        .ok_or_else(|| XrpcError::internal("no invite code was created"))?;
    Ok(Json(json!({ "code": code })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateManyInput {
    #[serde(default = "one")]
    code_count: usize,
    use_count: i64,
    #[serde(default)]
    for_accounts: Vec<String>,
}

fn one() -> usize {
    1
}

/// `com.atproto.server.createInviteCodes`.
pub async fn create_invite_codes(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<CreateManyInput>,
) -> Result<Json<Value>, XrpcError> {
    check_use_count(input.use_count)?;
    if !(1..=MAX_CODE_COUNT).contains(&input.code_count) {
        return Err(XrpcError::invalid_request(format!(
            "codeCount must be 1 to {MAX_CODE_COUNT}"
        )));
    }
    let for_accounts = parse_dids(&input.for_accounts)?;
    let created = state
        .accounts()
        .create_invite_codes(
            &state.config().hostname,
            input.code_count,
            input.use_count,
            &for_accounts,
            CREATED_BY_ADMIN,
            now(),
        )
        .await?;
    let codes: Vec<Value> = created
        .into_iter()
        .map(|c| json!({ "account": c.account, "codes": c.codes }))
        .collect();
    Ok(Json(json!({ "codes": codes })))
}

/// The `com.atproto.server.defs#inviteCode` view of a code.
pub(crate) fn code_view(code: &InviteCode) -> Value {
    let used = i64::try_from(code.uses.len()).unwrap_or(i64::MAX);
    let uses: Vec<Value> = code
        .uses
        .iter()
        .map(|u| json!({ "usedBy": u.used_by, "usedAt": datetime(u.used_at) }))
        .collect();
    json!({
        "code": code.code,
        "available": code.available_uses.saturating_sub(used).max(0),
        "disabled": code.disabled,
        "forAccount": code.for_account,
        "createdBy": code.created_by,
        "createdAt": datetime(code.created_at),
        "uses": uses,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetCodesParams {
    include_used: Option<bool>,
    #[allow(dead_code)]
    create_available: Option<bool>,
}

/// `com.atproto.server.getAccountInviteCodes`. Codes are only made by an administrator,
/// so `createAvailable` has no effect.
pub async fn get_account_invite_codes(
    State(state): State<AppState>,
    AccessFull(caller): AccessFull,
    XrpcQuery(params): XrpcQuery<GetCodesParams>,
) -> Result<Json<Value>, XrpcError> {
    let include_used = params.include_used.unwrap_or(true);
    let codes: Vec<Value> = state
        .accounts()
        .get_account_invite_codes(caller.did.as_str())
        .await?
        .iter()
        .filter(|c| {
            include_used || i64::try_from(c.uses.len()).unwrap_or(i64::MAX) < c.available_uses
        })
        .map(code_view)
        .collect();
    Ok(Json(json!({ "codes": codes })))
}
