//! `com.atproto.sync.listRepos`: every hosted repository's head, paged.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::{AccountStatus, RepoCursor};
use crate::error::XrpcError;
use crate::server::AppState;
use crate::xrpc::extract::XrpcQuery;

/// Page size when `limit` is not given (the lexicon's default).
pub const DEFAULT_LIMIT: u32 = 500;
/// Largest `limit` (the lexicon's maximum).
pub const MAX_LIMIT: u32 = 1000;

#[derive(Deserialize)]
pub(super) struct ListParams {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET com.atproto.sync.listRepos[?limit=…][&cursor=…]`: `{cursor?, repos: [{did, head, rev,
/// active, status?}]}` in the reference's order (account creation, then DID). Deleted
/// accounts are not listed; deactivated and taken-down ones are, with `active: false`.
pub(super) async fn list_repos(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<ListParams>,
) -> Result<Json<Value>, XrpcError> {
    let limit = match params.limit {
        None => DEFAULT_LIMIT,
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                XrpcError::invalid_request(format!("limit must be between 1 and {MAX_LIMIT}"))
            })?,
    };
    let cursor = params
        .cursor
        .as_deref()
        .map(str::parse::<RepoCursor>)
        .transpose()
        .map_err(|_| XrpcError::invalid_request("Malformed cursor"))?;
    let (repos, next) = state
        .accounts()
        .list_repos(cursor.as_ref(), limit)
        .await
        .map_err(XrpcError::internal)?;
    let repos: Vec<Value> = repos
        .into_iter()
        .map(|repo| {
            let mut item = json!({
                "did": repo.did,
                "head": repo.head.cid,
                "rev": repo.head.rev,
                "active": repo.status == AccountStatus::Active,
            });
            if let (Some(status), Some(obj)) = (repo.status.as_lexicon(), item.as_object_mut()) {
                obj.insert("status".into(), Value::from(status));
            }
            item
        })
        .collect();
    let mut body = json!({ "repos": repos });
    if let (Some(next), Some(obj)) = (next, body.as_object_mut()) {
        obj.insert("cursor".into(), Value::from(next.to_string()));
    }
    Ok(Json(body))
}
