//! `com.atproto.admin.*` account and invite management, behind the admin password:
//! account views and search, changing an account's email, handle, password or signing key,
//! deleting it, invite codes, and moderation mail.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::AdminAuth;
use super::extract::{XrpcJson, XrpcQuery};
use super::server::{check_password, code_view, datetime, normalize_email, unsupported_email};
use crate::account_service;
use crate::accounts::{ADMIN_INVITE_ACCOUNT, AccountInfo, AccountRef, InviteSort};
use crate::crypto::PublicKey;
use crate::error::{ErrorName, XrpcError};
use crate::server::AppState;
use crate::syntax::{Did, Handle};

const NS: &str = "/xrpc/com.atproto.admin.";

/// Most accounts one `getAccountInfos` call may name.
const MAX_ACCOUNT_INFOS: usize = 100;

pub fn routes() -> Router<AppState> {
    let path = |name: &str| format!("{NS}{name}");
    Router::new()
        .route(&path("getAccountInfo"), get(get_account_info))
        .route(&path("getAccountInfos"), get(get_account_infos))
        .route(&path("searchAccounts"), get(search_accounts))
        .route(&path("updateAccountEmail"), post(update_account_email))
        .route(&path("updateAccountHandle"), post(update_account_handle))
        .route(
            &path("updateAccountPassword"),
            post(update_account_password),
        )
        .route(
            &path("updateAccountSigningKey"),
            post(update_account_signing_key),
        )
        .route(&path("deleteAccount"), post(delete_account))
        .route(&path("getInviteCodes"), get(get_invite_codes))
        .route(&path("disableInviteCodes"), post(disable_invite_codes))
        .route(
            &path("disableAccountInvites"),
            post(disable_account_invites),
        )
        .route(&path("enableAccountInvites"), post(enable_account_invites))
        .route(&path("sendEmail"), post(send_email))
}

fn parse_did(value: &str) -> Result<Did, XrpcError> {
    value
        .parse()
        .map_err(|_| XrpcError::invalid_request(format!("Invalid did {value:?}")))
}

fn account_not_found() -> XrpcError {
    XrpcError::bad_request(ErrorName::NotFound, "Account not found")
}

/// `com.atproto.admin.defs#accountView`, with the account's invite codes and the code it
/// signed up with.
async fn account_view(state: &AppState, account: &AccountInfo) -> Result<Value, XrpcError> {
    let accounts = state.accounts();
    let invites: Vec<Value> = accounts
        .get_account_invite_codes(&account.did)
        .await?
        .iter()
        .map(code_view)
        .collect();
    let mut view = json!({
        "did": account.did,
        "handle": account.handle.as_deref().unwrap_or(Handle::INVALID),
        "indexedAt": datetime(account.created_at),
        "invitesDisabled": account.invites_disabled,
        "invites": invites,
    });
    if let Some(code) = accounts.invited_by(&account.did).await? {
        view["invitedBy"] = code_view(&code);
    }
    if let Some(email) = &account.email {
        view["email"] = json!(email);
    }
    if let Some(at) = account.email_confirmed_at {
        view["emailConfirmedAt"] = json!(datetime(at));
    }
    if let Some(at) = account.deactivated_at {
        view["deactivatedAt"] = json!(datetime(at));
    }
    Ok(view)
}

#[derive(Deserialize)]
struct AccountInfoParams {
    did: String,
}

/// `com.atproto.admin.getAccountInfo`.
async fn get_account_info(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<AccountInfoParams>,
) -> Result<Json<Value>, XrpcError> {
    let did = parse_did(&params.did)?;
    let account = state
        .accounts()
        .get_account(AccountRef::Did(did.as_str()))
        .await?
        .ok_or_else(account_not_found)?;
    Ok(Json(account_view(&state, &account).await?))
}

#[derive(Deserialize)]
struct AccountInfosParams {
    #[serde(default)]
    dids: Vec<String>,
}

/// `com.atproto.admin.getAccountInfos`: the views of the named accounts that exist.
async fn get_account_infos(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<AccountInfosParams>,
) -> Result<Json<Value>, XrpcError> {
    if params.dids.is_empty() {
        return Err(XrpcError::invalid_request(
            "Params must have the property \"dids\"",
        ));
    }
    if params.dids.len() > MAX_ACCOUNT_INFOS {
        return Err(XrpcError::invalid_request(format!(
            "At most {MAX_ACCOUNT_INFOS} dids"
        )));
    }
    for did in &params.dids {
        parse_did(did)?;
    }
    let mut infos = Vec::new();
    for account in state.accounts().get_accounts(&params.dids).await? {
        infos.push(account_view(&state, &account).await?);
    }
    Ok(Json(json!({ "infos": infos })))
}

/// Parses `limit` against the lexicon's bounds.
fn limit(value: Option<u32>, default: u32, max: u32) -> Result<u32, XrpcError> {
    match value.unwrap_or(default) {
        n if (1..=max).contains(&n) => Ok(n),
        _ => Err(XrpcError::invalid_request(format!(
            "limit must be between 1 and {max}"
        ))),
    }
}

#[derive(Deserialize)]
struct SearchParams {
    email: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// `com.atproto.admin.searchAccounts`: accounts whose address (or handle) starts with
/// `email`, oldest first.
async fn search_accounts(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<SearchParams>,
) -> Result<Json<Value>, XrpcError> {
    let limit = limit(params.limit, 50, 100)?;
    let prefix = params
        .email
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let page = state
        .accounts()
        .search_accounts(prefix, params.cursor.as_deref(), limit)
        .await?;
    let mut accounts = Vec::with_capacity(page.items.len());
    for account in &page.items {
        accounts.push(account_view(&state, account).await?);
    }
    let mut out = json!({ "accounts": accounts });
    if let Some(cursor) = page.cursor {
        out["cursor"] = json!(cursor);
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
struct UpdateEmailInput {
    account: String,
    email: String,
}

/// `com.atproto.admin.updateAccountEmail`: `account` is a handle or DID.
async fn update_account_email(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<UpdateEmailInput>,
) -> Result<Json<Value>, XrpcError> {
    let email = normalize_email(&input.email).ok_or_else(unsupported_email)?;
    let which = if input.account.starts_with("did:") {
        AccountRef::Did(&input.account)
    } else {
        AccountRef::Handle(&input.account)
    };
    let account = state.accounts().get_account(which).await?.ok_or_else(|| {
        XrpcError::invalid_request(format!("Account does not exist: {}", input.account))
    })?;
    state
        .account_service()
        .set_email(&account.did, &email)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct UpdateHandleInput {
    did: String,
    handle: String,
}

/// `com.atproto.admin.updateAccountHandle`: as `identity.updateHandle`, without the length
/// rules under the service domains.
async fn update_account_handle(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<UpdateHandleInput>,
) -> Result<Json<Value>, XrpcError> {
    let did = parse_did(&input.did)?;
    state
        .account_service()
        .change_handle(&did, &input.handle, true)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct UpdatePasswordInput {
    did: String,
    password: String,
}

/// `com.atproto.admin.updateAccountPassword`: every session of the account ends.
async fn update_account_password(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<UpdatePasswordInput>,
) -> Result<Json<Value>, XrpcError> {
    let did = parse_did(&input.did)?;
    check_password(&input.password)?;
    state
        .account_service()
        .set_password(did.as_str(), &input.password)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateSigningKeyInput {
    did: String,
    signing_key: String,
}

/// `com.atproto.admin.updateAccountSigningKey`: points the account's PLC document at
/// another `atproto` key and announces `#identity`.
async fn update_account_signing_key(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<UpdateSigningKeyInput>,
) -> Result<Json<Value>, XrpcError> {
    let did = parse_did(&input.did)?;
    PublicKey::from_did_key(&input.signing_key)
        .map_err(|_| XrpcError::invalid_request("signingKey must be a did:key"))?;
    state
        .account_service()
        .update_signing_key(&did, &input.signing_key)
        .await
        .map_err(|err| match err {
            account_service::Error::Accounts(crate::accounts::Error::AccountNotFound) => {
                account_not_found()
            }
            other => other.into(),
        })?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct DeleteAccountInput {
    did: String,
}

/// `com.atproto.admin.deleteAccount`: as the account's own deletion, without its password
/// or token.
async fn delete_account(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<DeleteAccountInput>,
) -> Result<Json<Value>, XrpcError> {
    let did = parse_did(&input.did)?;
    state.account_service().delete_account(&did).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct InviteCodesParams {
    sort: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `com.atproto.admin.getInviteCodes`: every code, newest or most used first.
async fn get_invite_codes(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<InviteCodesParams>,
) -> Result<Json<Value>, XrpcError> {
    let sort = match params.sort.as_deref().unwrap_or("recent") {
        "recent" => InviteSort::Recent,
        "usage" => InviteSort::Usage,
        other => {
            return Err(XrpcError::invalid_request(format!(
                "unknown sort method: {other}"
            )));
        }
    };
    let limit = limit(params.limit, 100, 500)?;
    let page = state
        .accounts()
        .list_invite_codes(sort, params.cursor.as_deref(), limit)
        .await?;
    let codes: Vec<Value> = page.items.iter().map(code_view).collect();
    let mut out = json!({ "codes": codes });
    if let Some(cursor) = page.cursor {
        out["cursor"] = json!(cursor);
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
struct DisableCodesInput {
    #[serde(default)]
    codes: Vec<String>,
    #[serde(default)]
    accounts: Vec<String>,
}

/// `com.atproto.admin.disableInviteCodes`.
async fn disable_invite_codes(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<DisableCodesInput>,
) -> Result<Json<Value>, XrpcError> {
    if input.accounts.iter().any(|a| a == ADMIN_INVITE_ACCOUNT) {
        return Err(XrpcError::invalid_request(
            "cannot disable admin invite codes",
        ));
    }
    state
        .accounts()
        .disable_invite_codes(&input.codes, &input.accounts)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct AccountInvitesInput {
    account: String,
}

/// `com.atproto.admin.disableAccountInvites`.
async fn disable_account_invites(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<AccountInvitesInput>,
) -> Result<Json<Value>, XrpcError> {
    let did = parse_did(&input.account)?;
    state
        .accounts()
        .set_account_invites_disabled(did.as_str(), true)
        .await?;
    Ok(Json(json!({})))
}

/// `com.atproto.admin.enableAccountInvites`.
async fn enable_account_invites(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<AccountInvitesInput>,
) -> Result<Json<Value>, XrpcError> {
    let did = parse_did(&input.account)?;
    state
        .accounts()
        .set_account_invites_disabled(did.as_str(), false)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendEmailInput {
    recipient_did: String,
    content: String,
    subject: Option<String>,
    sender_did: String,
}

/// `com.atproto.admin.sendEmail` through the moderation mailer: `{sent}` says whether the
/// SMTP server took the message.
async fn send_email(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<SendEmailInput>,
) -> Result<Json<Value>, XrpcError> {
    let recipient = parse_did(&input.recipient_did)?;
    parse_did(&input.sender_did)?;
    if state
        .accounts()
        .get_account(AccountRef::Did(recipient.as_str()))
        .await?
        .is_none()
    {
        return Err(XrpcError::invalid_request("Recipient not found"));
    }
    let sent = state
        .account_service()
        .send_moderation_mail(recipient.as_str(), input.subject.as_deref(), &input.content)
        .await?;
    Ok(Json(json!({ "sent": sent })))
}
