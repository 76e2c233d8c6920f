//! describeServer, createAccount, account deletion, deactivation and status.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::empty;
use crate::account_service::{self, AccountRequest, rules};
use crate::crypto::PublicKey;
use crate::error::{ErrorName, XrpcError};
use crate::server::AppState;
use crate::syntax::Did;
use crate::xrpc::auth::{
    AccessAllowDeactivated, AccessFull, AccessFullAllowDeactivated, bearer_token,
};
use crate::xrpc::extract::XrpcJson;

/// `com.atproto.server.describeServer`.
pub async fn describe_server(State(state): State<AppState>) -> Json<Value> {
    let config = state.config();
    Json(json!({
        "did": config.service_did,
        "availableUserDomains": config.service_handle_domains,
        "inviteCodeRequired": config.invite_required,
        "links": {},
        "contact": {},
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateAccountInput {
    handle: String,
    email: Option<String>,
    password: Option<String>,
    did: Option<String>,
    invite_code: Option<String>,
    recovery_key: Option<String>,
    plc_op: Option<Value>,
}

/// `com.atproto.server.createAccount`: a new did:plc registered with the PLC directory,
/// a repository, the account rows, and a session.
///
/// With `did` (an account moving here), the request carries a service token from the old
/// host ([`crate::migration::MigrationService::verify_create_account_auth`]); the account
/// starts deactivated with an empty repository and no new DID.
pub async fn create_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    XrpcJson(input): XrpcJson<CreateAccountInput>,
) -> Result<Json<Value>, XrpcError> {
    if input.plc_op.is_some() {
        return Err(XrpcError::invalid_request("Unsupported input: \"plcOp\""));
    }
    let existing_did = match input.did.as_deref() {
        Some(raw) => {
            let did: Did = raw
                .parse()
                .map_err(|_| XrpcError::invalid_request("did must be a valid DID"))?;
            state
                .migration()
                .verify_create_account_auth(bearer_token(&headers)?, &did)
                .await?;
            Some(did)
        }
        None => None,
    };
    let handle = state
        .account_service()
        .new_account_handle(&input.handle, existing_did.as_ref())
        .await?;
    let email = input
        .email
        .as_deref()
        .ok_or_else(|| XrpcError::invalid_request("Email is required"))?;
    let email = rules::normalize_email(email).ok_or_else(|| {
        XrpcError::bad_request(
            ErrorName::InvalidEmail,
            "This email address is not supported, please use a different email.",
        )
    })?;
    let password = input
        .password
        .as_deref()
        .ok_or_else(|| XrpcError::invalid_request("Password is required"))?;
    rules::check_password(password)?;
    let invite_code = input.invite_code.as_deref().map(str::trim);
    if let Some(recovery) = input.recovery_key.as_deref() {
        PublicKey::from_did_key(recovery)
            .map_err(|_| XrpcError::invalid_request("recoveryKey must be a did:key"))?;
    }
    let request = AccountRequest {
        handle: &handle,
        email: &email,
        password,
        invite_code,
        recovery_key: input.recovery_key.as_deref(),
    };
    let service = state.account_service();
    let created = match &existing_did {
        Some(did) => service.create_migrating_account(request, did).await,
        None => service.create_account(request).await,
    };
    let created = created.map_err(|err| match err {
        // The reference names the value that is taken.
        account_service::Error::Accounts(crate::accounts::Error::HandleTaken) => {
            XrpcError::bad_request(
                ErrorName::HandleNotAvailable,
                format!("Handle already taken: {handle}"),
            )
        }
        account_service::Error::Accounts(crate::accounts::Error::EmailTaken) => {
            XrpcError::invalid_request(format!("Email already taken: {email}"))
        }
        other => other.into(),
    })?;
    let (did, session) = (created.did, created.session);
    let did_doc = super::session_did_doc(&state, &did).await;
    let mut out = json!({
        "handle": handle.as_str(),
        "did": did.as_str(),
        "accessJwt": session.access_jwt,
        "refreshJwt": session.refresh_jwt,
    });
    if let (Some(doc), Some(obj)) = (did_doc, out.as_object_mut()) {
        obj.insert("didDoc".into(), doc);
    }
    Ok(Json(out))
}

/// `com.atproto.server.requestAccountDelete`: mails a `delete_account` token.
pub async fn request_account_delete(
    State(state): State<AppState>,
    AccessFull(caller): AccessFull,
) -> Result<Json<Value>, XrpcError> {
    state
        .account_service()
        .request_account_delete(caller.did.as_str())
        .await?;
    Ok(empty())
}

#[derive(Deserialize)]
pub struct DeleteAccountInput {
    did: String,
    password: String,
    token: String,
}

/// `com.atproto.server.deleteAccount`: with the account password and the mailed token,
/// deletes the repository and the account, and sequences `#account` (deleted).
pub async fn delete_account(
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<DeleteAccountInput>,
) -> Result<Json<Value>, XrpcError> {
    let did: Did = input
        .did
        .parse()
        .map_err(|_| XrpcError::invalid_request("did must be a valid DID"))?;
    state
        .account_service()
        .delete_with_credentials(&did, &input.password, &input.token)
        .await?;
    Ok(empty())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeactivateInput {
    delete_after: Option<String>,
}

/// `com.atproto.server.deactivateAccount`.
pub async fn deactivate_account(
    State(state): State<AppState>,
    AccessFull(caller): AccessFull,
    XrpcJson(input): XrpcJson<DeactivateInput>,
) -> Result<Json<Value>, XrpcError> {
    let delete_after = input
        .delete_after
        .as_deref()
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.timestamp())
                .map_err(|_| XrpcError::invalid_request("deleteAfter must be a datetime"))
        })
        .transpose()?;
    state
        .account_service()
        .deactivate(&caller.did, delete_after)
        .await?;
    Ok(empty())
}

/// `com.atproto.server.activateAccount`: a full session of the (deactivated) account.
pub async fn activate_account(
    State(state): State<AppState>,
    AccessFullAllowDeactivated(caller): AccessFullAllowDeactivated,
) -> Result<Json<Value>, XrpcError> {
    state.migration().activate_account(&caller.did).await?;
    Ok(empty())
}

/// `com.atproto.server.checkAccountStatus`.
pub async fn check_account_status(
    State(state): State<AppState>,
    AccessAllowDeactivated(caller): AccessAllowDeactivated,
) -> Result<Json<Value>, XrpcError> {
    let report = state.account_service().status_report(&caller.did).await?;
    Ok(Json(json!({
        "activated": report.activated,
        "validDid": report.valid_did,
        "repoCommit": report.repo_commit.to_string(),
        "repoRev": report.repo_rev,
        "repoBlocks": report.repo_blocks,
        "indexedRecords": report.indexed_records,
        "privateStateValues": report.private_state_values,
        "expectedBlobs": report.expected_blobs,
        "importedBlobs": report.imported_blobs,
    })))
}
