//! `getRecord`, `listRecords` and `describeRepo`: public reads, no authentication.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json_;

use super::{parse_cid, parse_field, readable_repo};
use crate::actor::RecordEntry;
use crate::error::XrpcError;
use crate::repo::cbor::value_to_json;
use crate::server::AppState;
use crate::syntax::{AtUri, Nsid, RecordKey};
use crate::xrpc::extract::XrpcQuery;

/// `listRecords` page size when `limit` is not given.
pub const DEFAULT_LIST_LIMIT: u32 = 50;
/// Largest `limit` of `listRecords`.
pub const MAX_LIST_LIMIT: u32 = 100;

#[derive(Debug, Deserialize)]
pub struct GetRecordParams {
    repo: String,
    collection: String,
    rkey: String,
    #[serde(default)]
    cid: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RecordOutput {
    uri: String,
    cid: String,
    value: Json_,
}

impl From<RecordEntry> for RecordOutput {
    fn from(entry: RecordEntry) -> Self {
        RecordOutput {
            uri: entry.uri,
            cid: entry.cid.to_string(),
            value: value_to_json(&entry.value),
        }
    }
}

/// `GET com.atproto.repo.getRecord`
pub async fn get_record(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<GetRecordParams>,
) -> Result<Json<RecordOutput>, XrpcError> {
    let collection: Nsid = parse_field("collection", &params.collection)?;
    let rkey: RecordKey = parse_field("rkey", &params.rkey)?;
    let cid = params
        .cid
        .as_deref()
        .map(|c| parse_cid("cid", c))
        .transpose()?;
    let (did, _) = readable_repo(&state, &params.repo).await?;
    let record = state
        .repo()
        .get_record(&did, &collection, &rkey, cid.as_ref())
        .await?;
    match record {
        Some(entry) => Ok(Json(entry.into())),
        None => {
            let uri = AtUri::for_record(did, collection, rkey);
            Err(XrpcError::record_not_found(format!(
                "Could not locate record: {uri}"
            )))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListRecordsParams {
    repo: String,
    collection: String,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    reverse: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct ListRecordsOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    records: Vec<RecordOutput>,
}

/// `GET com.atproto.repo.listRecords`: records by key, newest (highest key) first unless
/// `reverse`.
pub async fn list_records(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<ListRecordsParams>,
) -> Result<Json<ListRecordsOutput>, XrpcError> {
    let collection: Nsid = parse_field("collection", &params.collection)?;
    let limit = match params.limit {
        None => DEFAULT_LIST_LIMIT,
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
            .ok_or_else(|| {
                XrpcError::invalid_request(format!("limit must be between 1 and {MAX_LIST_LIMIT}"))
            })?,
    };
    let (did, _) = readable_repo(&state, &params.repo).await?;
    let page = state
        .repo()
        .list_records(
            &did,
            &collection,
            limit,
            params.cursor.as_deref(),
            params.reverse.unwrap_or(false),
        )
        .await?;
    Ok(Json(ListRecordsOutput {
        cursor: page.cursor,
        records: page.records.into_iter().map(RecordOutput::from).collect(),
    }))
}

#[derive(Debug, Deserialize)]
pub struct DescribeRepoParams {
    repo: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRepoOutput {
    handle: String,
    did: String,
    did_doc: Json_,
    collections: Vec<String>,
    handle_is_correct: bool,
}

/// `GET com.atproto.repo.describeRepo`
pub async fn describe_repo(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<DescribeRepoParams>,
) -> Result<Json<DescribeRepoOutput>, XrpcError> {
    let (did, account) = readable_repo(&state, &params.repo).await?;
    let doc = state
        .resolver()
        .resolve_did(&did)
        .await
        .map_err(|e| XrpcError::invalid_request(format!("Could not resolve DID: {e}")))?;
    let handle = account
        .handle
        .unwrap_or_else(|| "handle.invalid".to_owned());
    let handle_is_correct = doc.handle().is_some_and(|h| h.as_str() == handle);
    let did_doc = serde_json::to_value(&doc).map_err(XrpcError::internal)?;
    let collections = state.repo().describe_collections(&did).await?;
    Ok(Json(DescribeRepoOutput {
        handle,
        did: account.did,
        did_doc,
        collections,
        handle_is_correct,
    }))
}
