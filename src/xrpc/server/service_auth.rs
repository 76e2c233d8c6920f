//! getServiceAuth: inter-service JWTs signed with the account's repository key.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{internal, now};
use crate::auth::{ServiceJwtParams, check_requested_expiry, create_service_jwt};
use crate::error::{ErrorName, XrpcError};
use crate::proxy::{is_privileged_method, is_protected_method};
use crate::server::AppState;
use crate::syntax::{Did, Nsid};
use crate::xrpc::auth::AccessStandard;
use crate::xrpc::extract::XrpcQuery;

#[derive(Deserialize)]
pub struct Params {
    aud: String,
    exp: Option<i64>,
    lxm: Option<String>,
}

/// `com.atproto.server.getServiceAuth`.
pub async fn get_service_auth(
    State(state): State<AppState>,
    AccessStandard(caller): AccessStandard,
    XrpcQuery(params): XrpcQuery<Params>,
) -> Result<Json<Value>, XrpcError> {
    let aud_did = params.aud.split('#').next().unwrap_or_default();
    if aud_did.parse::<Did>().is_err() {
        return Err(XrpcError::invalid_request("aud must be a DID"));
    }
    if let Some(lxm) = params.lxm.as_deref() {
        if lxm.parse::<Nsid>().is_err() {
            return Err(XrpcError::invalid_request("lxm must be an NSID"));
        }
        if is_protected_method(lxm) {
            return Err(XrpcError::invalid_request(format!(
                "cannot request a service auth token for the following protected method: {lxm}"
            )));
        }
        if is_privileged_method(lxm) && !caller.scope.is_privileged() {
            return Err(XrpcError::invalid_request(format!(
                "insufficient access to request a service auth token for the following method: {lxm}"
            )));
        }
    }
    caller.require_rpc(params.lxm.as_deref().unwrap_or("*"), &params.aud)?;
    let now = now();
    let mut jwt = ServiceJwtParams::new(
        caller.did.as_str().to_owned(),
        params.aud.clone(),
        params.lxm.clone(),
        now,
    );
    if let Some(exp) = params.exp {
        check_requested_expiry(exp, now, params.lxm.is_some())
            .map_err(|e| XrpcError::bad_request(ErrorName::BadExpiration, e.to_string()))?;
        jwt.exp = exp;
    }
    let actor = state
        .repo()
        .stores()
        .open(&caller.did)
        .await
        .map_err(internal)?
        .ok_or_else(|| XrpcError::internal("account has no repository"))?;
    let token = create_service_jwt(actor.keypair(), jwt);
    Ok(Json(json!({ "token": token })))
}
