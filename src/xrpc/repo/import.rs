//! `com.atproto.repo.importRepo`: the body is the repository as a CAR.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};

use crate::error::XrpcError;
use crate::migration;
use crate::server::AppState;
use crate::xrpc::auth::AccessRepoManage;

/// `POST com.atproto.repo.importRepo`: replaces the caller's repository with the CAR in the
/// body (streamed to disk, checked whole before anything changes). A migrating account is
/// still deactivated, so deactivated callers are accepted; a full session or an OAuth token
/// with `account:repo?action=manage` is needed.
pub(super) async fn import_repo(
    State(state): State<AppState>,
    AccessRepoManage(caller): AccessRepoManage,
    headers: HeaderMap,
    body: Body,
) -> Result<(), XrpcError> {
    let limit = state.config().import_repo_limit;
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        let length: u64 = length
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| XrpcError::invalid_request("Invalid Content-Length"))?;
        if length > limit {
            return Err(migration::Error::TooLarge { limit }.into());
        }
    }
    state
        .migration()
        .import_repo(&caller.did, body.into_data_stream())
        .await?;
    Ok(())
}
