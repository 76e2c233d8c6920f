//! `com.atproto.sync.*`: repositories for relays and mirroring tools.
//!
//! `getRepo` streams the CAR from the actor store to the socket through a bounded pipe: the
//! repository is never built in memory, and a slow reader slows the export instead of
//! growing a buffer. `getBlocks` streams the same way, block sets in [`blocks`]; `listRepos`
//! pages the repository heads kept in the account database ([`list`]).

mod blocks;
mod list;

pub use blocks::MAX_CIDS as MAX_GET_BLOCKS_CIDS;
pub use list::{DEFAULT_LIMIT as LIST_REPOS_DEFAULT_LIMIT, MAX_LIMIT as LIST_REPOS_MAX_LIMIT};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::extract::XrpcQuery;
use crate::accounts::AccountStatus;
use crate::actor::ActorHandle;
use crate::error::{ErrorName, XrpcError};
use crate::repo::blockstore::BlockStore;
use crate::server::AppState;
use crate::syntax::{Did, Tid};

/// Bytes buffered between the exporting task and the socket.
const PIPE_BUFFER: usize = 256 * 1024;
/// Largest chunk of a streamed CAR body (tokio's `ReaderStream` default is 4 KiB, which makes
/// a repository export thousands of tiny HTTP body frames).
const BODY_CHUNK: usize = 64 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/xrpc/com.atproto.sync.getRepo", get(get_repo))
        .route(
            "/xrpc/com.atproto.sync.getLatestCommit",
            get(get_latest_commit),
        )
        .route("/xrpc/com.atproto.sync.getRecord", get(get_record))
        .route("/xrpc/com.atproto.sync.getRepoStatus", get(get_repo_status))
        .route("/xrpc/com.atproto.sync.getBlocks", get(blocks::get_blocks))
        .route("/xrpc/com.atproto.sync.listRepos", get(list::list_repos))
        // Deprecated, still served by the reference.
        .route("/xrpc/com.atproto.sync.getHead", get(get_head))
        .route("/xrpc/com.atproto.sync.getCheckout", get(get_checkout))
}

#[derive(Deserialize)]
struct RecordParams {
    did: String,
    collection: String,
    rkey: String,
}

#[derive(Deserialize)]
struct RepoParams {
    did: String,
    since: Option<String>,
}

#[derive(Deserialize)]
struct DidParam {
    did: String,
}

/// The sync lexicons' error for a repository not hosted here (400, as the reference).
pub(crate) fn repo_not_found(did: &Did) -> XrpcError {
    XrpcError::repo_not_found(format!("Could not find repo for DID: {did}"))
}

/// Ok when the account of `did` is active; the errors of the sync lexicons otherwise
/// (`RepoNotFound`, `RepoTakendown`, `RepoDeactivated`; 400 as the reference). Whether its
/// repository is stored here is the caller's to check.
pub(crate) async fn check_available(state: &AppState, did: &Did) -> Result<(), XrpcError> {
    match state
        .accounts()
        .account_status(did.as_str())
        .await
        .map_err(XrpcError::internal)?
    {
        AccountStatus::Active => Ok(()),
        AccountStatus::Deleted => Err(repo_not_found(did)),
        AccountStatus::Takendown => Err(XrpcError::bad_request(
            ErrorName::RepoTakendown,
            format!("Repo has been takendown: {did}"),
        )),
        AccountStatus::Deactivated => Err(XrpcError::bad_request(
            ErrorName::RepoDeactivated,
            format!("Repo has been deactivated: {did}"),
        )),
    }
}

/// The actor store of a repository hosted here and available: the errors of the sync lexicons
/// otherwise (see [`check_available`]).
async fn available_repo(state: &AppState, did: &str) -> Result<(Did, ActorHandle), XrpcError> {
    let did: Did = did
        .parse()
        .map_err(|_| XrpcError::invalid_request("did must be a valid did"))?;
    check_available(state, &did).await?;
    let handle = state
        .repo()
        .stores()
        .open(&did)
        .await
        .map_err(XrpcError::internal)?
        .ok_or_else(|| repo_not_found(&did))?;
    Ok((did, handle))
}

/// `GET com.atproto.sync.getRepo?did=…[&since=rev]`: the repository as a CAR v1 whose root is
/// the head commit; with `since`, only the blocks written after that revision.
async fn get_repo(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<RepoParams>,
) -> Result<Response, XrpcError> {
    stream_repo(state, params).await
}

/// `GET com.atproto.sync.getCheckout?did=…` (deprecated): the whole repository, as getRepo.
async fn get_checkout(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<DidParam>,
) -> Result<Response, XrpcError> {
    let params = RepoParams {
        did: params.did,
        since: None,
    };
    stream_repo(state, params).await
}

async fn stream_repo(state: AppState, params: RepoParams) -> Result<Response, XrpcError> {
    let since = params
        .since
        .map(|s| {
            s.parse::<Tid>()
                .map(|t| t.to_string())
                .map_err(|_| XrpcError::invalid_request("since must be a valid tid"))
        })
        .transpose()?;
    let (did, handle) = available_repo(&state, &params.did).await?;
    // Refuse before the first byte when there is no head: afterwards only the body can fail.
    state.repo().current_root(&did).await?;
    let body = state.repo().export_car(&handle, since);
    Ok((
        [(header::CONTENT_TYPE, "application/vnd.ipld.car")],
        Body::from_stream(body),
    )
        .into_response())
}

/// `GET com.atproto.sync.getLatestCommit?did=…`: `{cid, rev}` of the head commit.
async fn get_latest_commit(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<DidParam>,
) -> Result<Response, XrpcError> {
    let (did, _handle) = available_repo(&state, &params.did).await?;
    let root = state.repo().current_root(&did).await?;
    Ok(axum::Json(json!({ "cid": root.cid.to_string(), "rev": root.rev })).into_response())
}

/// `GET com.atproto.sync.getHead?did=…` (deprecated): `{root}`, the head commit's CID.
async fn get_head(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<DidParam>,
) -> Result<Response, XrpcError> {
    let (did, _handle) = available_repo(&state, &params.did).await?;
    let root = state.repo().current_root(&did).await.map_err(|_| {
        XrpcError::bad_request(
            ErrorName::HeadNotFound,
            format!("Could not find root for DID: {did}"),
        )
    })?;
    Ok(axum::Json(json!({ "root": root.cid.to_string() })).into_response())
}

/// `GET com.atproto.sync.getRepoStatus?did=…`: whether the repository is active, and why not.
async fn get_repo_status(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<DidParam>,
) -> Result<Response, XrpcError> {
    let did: Did = params
        .did
        .parse()
        .map_err(|_| XrpcError::invalid_request("did must be a valid did"))?;
    let status = state
        .accounts()
        .account_status(did.as_str())
        .await
        .map_err(XrpcError::internal)?;
    let body = match status {
        AccountStatus::Deleted => {
            return Err(XrpcError::repo_not_found(format!(
                "Could not find repo for DID: {did}"
            )));
        }
        AccountStatus::Active => {
            let root = state.repo().current_root(&did).await?;
            json!({ "did": did.as_str(), "active": true, "rev": root.rev })
        }
        AccountStatus::Deactivated => {
            json!({ "did": did.as_str(), "active": false, "status": "deactivated" })
        }
        AccountStatus::Takendown => {
            json!({ "did": did.as_str(), "active": false, "status": "takendown" })
        }
    };
    Ok(axum::Json(body).into_response())
}

/// `GET com.atproto.sync.getRecord?did=…&collection=…&rkey=…`: a CAR rooted at the head commit
/// holding the commit, the MST nodes from the root to the record's key, and the record: a proof
/// of the record, or (without the record) of its absence.
async fn get_record(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<RecordParams>,
) -> Result<Response, XrpcError> {
    let collection: crate::syntax::Nsid = params
        .collection
        .parse()
        .map_err(|_| XrpcError::invalid_request("collection must be a valid nsid"))?;
    let rkey: crate::syntax::RecordKey = params
        .rkey
        .parse()
        .map_err(|_| XrpcError::invalid_request("rkey must be a valid record key"))?;
    let (did, handle) = available_repo(&state, &params.did).await?;
    let root = state.repo().current_root(&did).await?;
    let store = handle.block_store();
    let repo = crate::repo::repository::Repo::load(store, root.cid)
        .await
        .map_err(XrpcError::internal)?;
    let path = format!("{collection}/{rkey}");
    let mut blocks = repo
        .mst()
        .proof_for_key(&path)
        .await
        .map_err(XrpcError::internal)?;
    blocks.insert(root.cid, bytes::Bytes::from(repo.commit().to_cbor()));
    if let Some((cid, _)) = repo
        .get_record(collection.as_str(), rkey.as_str())
        .await
        .map_err(XrpcError::internal)?
    {
        let bytes = repo
            .mst()
            .store()
            .get_required(&cid)
            .await
            .map_err(XrpcError::internal)?;
        blocks.insert(cid, bytes);
    }
    let car = crate::repo::car::write_car_bytes(root.cid, blocks).await;
    Ok(([(header::CONTENT_TYPE, "application/vnd.ipld.car")], car).into_response())
}
