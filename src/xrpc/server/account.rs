//! describeServer, createAccount, account deletion, deactivation and status.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{empty, internal, now};
use crate::account_service::{self, AccountRequest};
use crate::accounts::{AccountRef, EmailTokenPurpose};
use crate::crypto::PublicKey;
use crate::error::{ErrorName, XrpcError};
use crate::server::AppState;
use crate::syntax::{Did, Handle};
use crate::xrpc::auth::{AccessAllowDeactivated, AccessFull, bearer_token};
use crate::xrpc::extract::XrpcJson;

/// Shortest account password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest account password accepted, as the reference.
pub const MAX_PASSWORD_LEN: usize = 256;
/// Bounds on the part of a handle in front of a service domain, as the reference.
const MIN_HANDLE_FRONT: usize = 3;
const MAX_HANDLE_FRONT: usize = 18;

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

fn invalid_handle(message: &str) -> XrpcError {
    XrpcError::bad_request(ErrorName::InvalidHandle, message)
}

/// Normalises and checks a handle for registration under one of `domains` (each like
/// `.example.com`): valid syntax, an allowed TLD, and a single label of 3 to 18 characters
/// in front of the service domain.
pub fn normalize_service_handle(raw: &str, domains: &[String]) -> Result<Handle, XrpcError> {
    let handle: Handle = raw
        .trim()
        .to_ascii_lowercase()
        .parse()
        .map_err(|_| invalid_handle("Input/handle must be a valid handle"))?;
    if handle.has_disallowed_tld() {
        return Err(invalid_handle("Handle TLD is invalid or disallowed"));
    }
    let text = handle.as_str();
    let front = domains.iter().find_map(|domain| {
        let domain = domain.to_ascii_lowercase();
        let suffix = if domain.starts_with('.') {
            domain
        } else {
            format!(".{domain}")
        };
        text.strip_suffix(suffix.as_str())
    });
    let Some(front) = front else {
        return Err(XrpcError::bad_request(
            ErrorName::UnsupportedDomain,
            "Not a supported handle domain",
        ));
    };
    if front.contains('.') {
        return Err(invalid_handle("Invalid characters in handle"));
    }
    if front.len() < MIN_HANDLE_FRONT {
        return Err(invalid_handle("Handle too short"));
    }
    if front.len() > MAX_HANDLE_FRONT {
        return Err(invalid_handle("Handle too long"));
    }
    if crate::identity::reserved::is_reserved(front) {
        return Err(XrpcError::bad_request(
            ErrorName::HandleNotAvailable,
            "Reserved handle",
        ));
    }
    Ok(handle)
}

/// A plausible e-mail address: one `@`, a non-empty local part, a dotted domain, no spaces
/// or control characters. Returns it lowercased.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let ok = !local.is_empty()
        && local.len() <= 64
        && email.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(email)
}

/// Checks a new account password's length.
pub fn check_password(password: &str) -> Result<(), XrpcError> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        Err(XrpcError::bad_request(
            ErrorName::InvalidPassword,
            format!("Password must be at least {MIN_PASSWORD_LEN} characters"),
        ))
    } else if len > MAX_PASSWORD_LEN {
        Err(XrpcError::bad_request(
            ErrorName::InvalidPassword,
            "Password too long",
        ))
    } else {
        Ok(())
    }
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
    let config = state.config();
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
    let handle = normalize_service_handle(&input.handle, &config.service_handle_domains)?;
    let email = input
        .email
        .as_deref()
        .ok_or_else(|| XrpcError::invalid_request("Email is required"))?;
    let email = normalize_email(email).ok_or_else(|| {
        XrpcError::bad_request(
            ErrorName::InvalidEmail,
            "This email address is not supported, please use a different email.",
        )
    })?;
    let password = input
        .password
        .as_deref()
        .ok_or_else(|| XrpcError::invalid_request("Password is required"))?;
    check_password(password)?;
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
    let did_doc = match state.resolver().resolve_did(&did).await {
        Ok(doc) => serde_json::to_value(doc).ok(),
        Err(_) => None,
    };
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
    let accounts = state.accounts();
    if accounts
        .get_account(AccountRef::Did(did.as_str()))
        .await?
        .is_none()
    {
        return Err(XrpcError::invalid_request("account not found"));
    }
    let now = now();
    let bad_credentials = || XrpcError::auth_required("Invalid did or password");
    match accounts
        .login(did.as_str(), &input.password, None, now)
        .await
    {
        Ok(login) if login.app_password.is_none() => {}
        Ok(_) | Err(crate::accounts::Error::AuthFailed) => return Err(bad_credentials()),
        Err(crate::accounts::Error::AccountTakedown) => {}
        Err(err) => return Err(err.into()),
    }
    accounts
        .assert_valid_email_token(
            did.as_str(),
            EmailTokenPurpose::DeleteAccount,
            input.token.trim(),
            now,
        )
        .await?;
    state.account_service().delete_account(&did).await?;
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
        .accounts()
        .deactivate(caller.did.as_str(), now(), delete_after)
        .await?;
    state
        .repo()
        .sequence_account(&caller.did, false, Some("deactivated"))
        .await?;
    Ok(empty())
}

/// `com.atproto.server.activateAccount`: a full session of the (deactivated) account.
pub async fn activate_account(
    State(state): State<AppState>,
    AccessAllowDeactivated(caller): AccessAllowDeactivated,
) -> Result<Json<Value>, XrpcError> {
    if !caller.scope.is_full() {
        return Err(XrpcError::invalid_token("Bad token scope"));
    }
    state.migration().activate_account(&caller.did).await?;
    Ok(empty())
}

/// `com.atproto.server.checkAccountStatus`.
pub async fn check_account_status(
    State(state): State<AppState>,
    AccessAllowDeactivated(caller): AccessAllowDeactivated,
) -> Result<Json<Value>, XrpcError> {
    let did = &caller.did;
    let account = state
        .accounts()
        .get_account(AccountRef::Did(did.as_str()))
        .await?
        .ok_or_else(|| XrpcError::invalid_request("account not found"))?;
    let actor =
        state.repo().stores().open(did).await?.ok_or_else(|| {
            XrpcError::repo_not_found(format!("Could not find repo for DID: {did}"))
        })?;
    let root = state
        .repo()
        .current_root(did)
        .await
        .map_err(|err| match err {
            crate::actor::Error::RepoNotFound(_) => {
                XrpcError::repo_not_found(format!("Could not find repo for DID: {did}"))
            }
            other => other.into(),
        })?;
    let pool = actor.pool();
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .map_err(internal)
    };
    let repo_blocks = count("SELECT COUNT(*) FROM repo_block").await?;
    let indexed_records = count("SELECT COUNT(*) FROM record").await?;
    let private_state_values = count("SELECT COUNT(*) FROM account_pref").await?;
    let blob_cids: Vec<Vec<u8>> = sqlx::query_scalar("SELECT DISTINCT blobCid FROM record_blob")
        .fetch_all(pool)
        .await
        .map_err(internal)?;
    let mut imported = 0i64;
    for bytes in &blob_cids {
        if let Ok(cid) = cid::Cid::try_from(bytes.as_slice())
            && state.blobs().has(did, &cid).await.map_err(internal)?
        {
            imported += 1;
        }
    }
    let valid_did = match state.resolver().resolve_did(did).await {
        Ok(doc) => {
            doc.pds_endpoint() == Some(state.config().public_url.as_str())
                && doc
                    .signing_key()
                    .is_ok_and(|key| key.to_did_key() == actor.keypair().public_key().to_did_key())
        }
        Err(_) => false,
    };
    Ok(Json(json!({
        "activated": account.deactivated_at.is_none(),
        "validDid": valid_did,
        "repoCommit": root.cid.to_string(),
        "repoRev": root.rev,
        "repoBlocks": repo_blocks,
        "indexedRecords": indexed_records,
        "privateStateValues": private_state_values,
        "expectedBlobs": i64::try_from(blob_cids.len()).unwrap_or(i64::MAX),
        "importedBlobs": imported,
    })))
}
