//! `com.atproto.repo.*`: record writes ([`write`]) and reads ([`read`]) of the accounts
//! hosted here, as the reference PDS answers them.
//!
//! Writes take an access token of the repository's own account; the `repo` parameter may be
//! its handle or DID. Record-carrying routes accept bodies up to
//! [`RECORD_BODY_LIMIT`](super::extract::RECORD_BODY_LIMIT); the others keep the default
//! JSON limit.

mod import;
mod read;
pub(crate) mod write;

use axum::Router;
use axum::routing::{get, post};

use super::extract::{RECORD_BODY_LIMIT, body_limit};
use crate::accounts::{AccountInfo, AccountRef};
use crate::actor;
use crate::error::{ErrorName, XrpcError};
use crate::server::AppState;
use crate::syntax::{AtIdentifier, Did};
use crate::xrpc::auth::Caller;

/// The `com.atproto.repo.*` routes.
pub fn routes() -> Router<AppState> {
    let records = || body_limit(RECORD_BODY_LIMIT);
    Router::new()
        .route(
            "/xrpc/com.atproto.repo.createRecord",
            post(write::create_record).layer(records()),
        )
        .route(
            "/xrpc/com.atproto.repo.putRecord",
            post(write::put_record).layer(records()),
        )
        .route(
            "/xrpc/com.atproto.repo.applyWrites",
            post(write::apply_writes).layer(records()),
        )
        .route(
            "/xrpc/com.atproto.repo.deleteRecord",
            post(write::delete_record),
        )
        .route(
            "/xrpc/com.atproto.repo.importRepo",
            post(import::import_repo),
        )
        .route("/xrpc/com.atproto.repo.getRecord", get(read::get_record))
        .route(
            "/xrpc/com.atproto.repo.listRecords",
            get(read::list_records),
        )
        .route(
            "/xrpc/com.atproto.repo.describeRepo",
            get(read::describe_repo),
        )
}

impl From<actor::Error> for XrpcError {
    fn from(err: actor::Error) -> Self {
        use crate::repo::repository::Error as RepoError;
        match err {
            actor::Error::RepoNotFound(did) => {
                XrpcError::invalid_request(format!("Could not find repo: {did}"))
            }
            actor::Error::InvalidSwap(mismatch) => XrpcError::invalid_swap(mismatch.to_string()),
            actor::Error::TooManyWrites { max, .. } => {
                XrpcError::invalid_request(format!("Too many writes. Max: {max}"))
            }
            err @ actor::Error::RecordTooLarge { .. } => {
                XrpcError::invalid_request(err.to_string())
            }
            actor::Error::Repo(RepoError::RecordExists(path)) => {
                XrpcError::invalid_request(format!("Record already exists: {path}"))
            }
            actor::Error::Repo(RepoError::RecordNotFound(path)) => {
                XrpcError::invalid_request(format!("Could not find record: {path}"))
            }
            actor::Error::Repo(RepoError::DuplicatePath(path)) => XrpcError::invalid_request(
                format!("Cannot write the same record twice in one commit: {path}"),
            ),
            err @ actor::Error::BlobNotFound(_) => {
                XrpcError::bad_request(ErrorName::BlobNotFound, err.to_string())
            }
            err @ actor::Error::BlobMimeMismatch { .. } => {
                XrpcError::bad_request(ErrorName::InvalidMimeType, err.to_string())
            }
            err @ actor::Error::BlobSizeMismatch { .. } => {
                XrpcError::bad_request(ErrorName::InvalidSize, err.to_string())
            }
            err @ actor::Error::BlobTakendown(_) => XrpcError::invalid_request(err.to_string()),
            // Refused by a commit hook: the hub's refusals are its own errors.
            actor::Error::Refused(refusal) => match refusal.downcast::<crate::hub::Error>() {
                Ok(hub_error) => (*hub_error).into(),
                Err(other) => XrpcError::internal(actor::Error::Refused(other)),
            },
            other => XrpcError::internal(other),
        }
    }
}

/// Parses a lexicon-formatted string field, naming the field in the error.
fn parse_field<T>(field: &str, value: &str) -> Result<T, XrpcError>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    T::try_from(value.to_owned())
        .map_err(|e| XrpcError::invalid_request(format!("Invalid {field} {value:?}: {e}")))
}

/// Parses an optional CID field (`swapCommit`, `swapRecord`, `cid`).
fn parse_cid(field: &str, value: &str) -> Result<cid::Cid, XrpcError> {
    cid::Cid::try_from(value)
        .map_err(|_| XrpcError::invalid_request(format!("{field} must be a cid string")))
}

/// The account hosted here that `repo` (handle or DID) names, deactivated ones included.
async fn find_account(state: &AppState, repo: &str) -> Result<Option<AccountInfo>, XrpcError> {
    let ident: AtIdentifier = parse_field("repo", repo)?;
    let which = match &ident {
        AtIdentifier::Did(did) => AccountRef::Did(did.as_str()),
        AtIdentifier::Handle(handle) => AccountRef::Handle(handle.as_str()),
    };
    state
        .accounts()
        .get_account(which)
        .await
        .map_err(XrpcError::internal)
}

/// The DID of the account `repo` names, for writes: it must exist, be active, and be the
/// caller's own (else 401, as the reference). A `repo` naming the caller's DID uses the
/// account the caller's status check just read.
async fn writable_repo(state: &AppState, repo: &str, caller: &Caller) -> Result<Did, XrpcError> {
    let found;
    let account = if repo == caller.did.as_str() {
        caller.account.as_ref()
    } else {
        found = find_account(state, repo)
            .await?
            .ok_or_else(|| XrpcError::invalid_request(format!("Could not find repo: {repo}")))?;
        &found
    };
    if account.deactivated_at.is_some() {
        return Err(XrpcError::invalid_request("Account is deactivated"));
    }
    if account.did != caller.did.as_str() {
        return Err(XrpcError::auth_required("Authentication Required"));
    }
    Ok(caller.did.clone())
}

/// The DID of the account `repo` names, for reads (taken-down and deactivated accounts are
/// refused as the reference's reads do).
async fn readable_repo(state: &AppState, repo: &str) -> Result<(Did, AccountInfo), XrpcError> {
    let account = find_account(state, repo)
        .await?
        .filter(|a| a.takedown_ref.is_none() && a.deactivated_at.is_none())
        .ok_or_else(|| XrpcError::invalid_request(format!("Could not find repo: {repo}")))?;
    let did: Did = account
        .did
        .parse()
        .map_err(|e| XrpcError::internal(format!("stored DID {:?}: {e}", account.did)))?;
    Ok((did, account))
}
