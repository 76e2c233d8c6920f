//! `com.atproto.server.*`: accounts, sessions, app passwords, invite codes, service auth.
//!
//! Statuses and error names follow the reference PDS. Submodules hold the handlers by
//! theme; this module holds the routes and the pieces they share.

mod account;
mod app_password;
mod email;
pub(crate) mod invite;
mod service_auth;
mod session;

pub(crate) use crate::account_service::rules::{check_password, normalize_email};
pub(crate) use email::unsupported_email;
pub(crate) use invite::code_view;

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::Extensions;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::accounts::{AccountInfo, AccountStatus};
use crate::error::XrpcError;
use crate::server::AppState;
use crate::syntax::Did;

/// The routes of `com.atproto.server.*`.
pub fn routes() -> Router<AppState> {
    const NS: &str = "/xrpc/com.atproto.server.";
    let path = |name: &str| format!("{NS}{name}");
    Router::new()
        .route(&path("describeServer"), get(account::describe_server))
        .route(&path("createAccount"), post(account::create_account))
        .route(
            &path("requestAccountDelete"),
            post(account::request_account_delete),
        )
        .route(&path("deleteAccount"), post(account::delete_account))
        .route(
            &path("deactivateAccount"),
            post(account::deactivate_account),
        )
        .route(&path("activateAccount"), post(account::activate_account))
        .route(
            &path("checkAccountStatus"),
            get(account::check_account_status),
        )
        .route(&path("createSession"), post(session::create_session))
        .route(&path("getSession"), get(session::get_session))
        .route(&path("refreshSession"), post(session::refresh_session))
        .route(&path("deleteSession"), post(session::delete_session))
        .route(&path("createAppPassword"), post(app_password::create))
        .route(&path("listAppPasswords"), get(app_password::list))
        .route(&path("revokeAppPassword"), post(app_password::revoke))
        .route(&path("createInviteCode"), post(invite::create_invite_code))
        .route(
            &path("createInviteCodes"),
            post(invite::create_invite_codes),
        )
        .route(
            &path("getAccountInviteCodes"),
            get(invite::get_account_invite_codes),
        )
        .route(&path("getServiceAuth"), get(service_auth::get_service_auth))
        .route(
            &path("requestEmailConfirmation"),
            post(email::request_email_confirmation),
        )
        .route(&path("confirmEmail"), post(email::confirm_email))
        .route(
            &path("requestEmailUpdate"),
            post(email::request_email_update),
        )
        .route(&path("updateEmail"), post(email::update_email))
        .route(
            &path("requestPasswordReset"),
            post(email::request_password_reset),
        )
        .route(&path("resetPassword"), post(email::reset_password))
        .route(&path("reserveSigningKey"), post(email::reserve_signing_key))
        .route(
            "/xrpc/com.atproto.temp.checkSignupQueue",
            get(email::check_signup_queue),
        )
}

/// The current time, UNIX seconds.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// UNIX seconds as an atproto datetime (`2024-01-02T03:04:05.000Z`).
pub(crate) fn datetime(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The caller's IP address: the one the rate-limit middleware settled on (which honours a
/// trusted proxy header), else the socket's peer.
fn client_ip(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(client) = extensions.get::<crate::server::limits::Client>() {
        return client.ip;
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Maps an actor-store failure to a 500.
fn internal(err: impl std::fmt::Display) -> XrpcError {
    XrpcError::internal(err)
}

/// The account's DID as a [`Did`]; stored DIDs always parse.
fn parse_did(did: &str) -> Result<Did, XrpcError> {
    did.parse().map_err(internal)
}

/// The `didDoc` of a session answer: the account's DID document when it resolves and names
/// this server as the account's PDS. Clients such as `@atproto/api` send every later call to
/// the PDS a session's document names, so a document that still points at another host (an
/// account moving in, before its PLC update) is left out, as the reference PDS leaves it out:
/// the migration's calls must reach this server.
pub(super) async fn session_did_doc(state: &AppState, did: &Did) -> Option<Value> {
    let doc = state.resolver().resolve_did(did).await.ok()?;
    let here = state.config().public_url.trim_end_matches('/');
    if doc.pds_endpoint().map(|e| e.trim_end_matches('/')) != Some(here) {
        return None;
    }
    serde_json::to_value(&doc).ok()
}

/// The account fields shared by createSession, getSession and refreshSession: `handle`,
/// `did`, `didDoc` (see [`session_did_doc`]), `email`, `emailConfirmed`, `emailAuthFactor`,
/// `active` and `status` (when not active).
async fn account_view(
    state: &AppState,
    account: &AccountInfo,
) -> Result<Map<String, Value>, XrpcError> {
    let did = parse_did(&account.did)?;
    let mut out = Map::new();
    out.insert(
        "handle".into(),
        json!(
            account
                .handle
                .as_deref()
                .unwrap_or(crate::syntax::Handle::INVALID)
        ),
    );
    out.insert("did".into(), json!(account.did));
    if let Some(doc) = session_did_doc(state, &did).await {
        out.insert("didDoc".into(), doc);
    }
    if let Some(email) = &account.email {
        out.insert("email".into(), json!(email));
        out.insert(
            "emailConfirmed".into(),
            json!(account.email_confirmed_at.is_some()),
        );
        out.insert("emailAuthFactor".into(), json!(account.email_auth_factor));
    }
    let status = account.status();
    out.insert("active".into(), json!(status == AccountStatus::Active));
    if let Some(name) = status.as_lexicon() {
        out.insert("status".into(), json!(name));
    }
    Ok(out)
}

/// An empty JSON object, the output of procedures without one.
fn empty() -> Json<Value> {
    Json(json!({}))
}
