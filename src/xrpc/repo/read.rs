//! `getRecord`, `listRecords` and `describeRepo`: public reads, no authentication.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json_;

use super::{parse_cid, parse_field, readable_repo};
use crate::actor::RecordJson;
use crate::error::XrpcError;
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

/// `GET com.atproto.repo.getRecord`
pub async fn get_record(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<GetRecordParams>,
) -> Result<JsonBody, XrpcError> {
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
        .get_record_json(&did, &collection, &rkey, cid.as_ref())
        .await?;
    match record {
        Some(record) => {
            let mut body = Vec::with_capacity(record.uri.len() + record.value.len() + 96);
            write_record(&mut body, &record);
            Ok(JsonBody(body))
        }
        None => {
            let uri = AtUri::for_record(did, collection, rkey);
            Err(XrpcError::record_not_found(format!(
                "Could not locate record: {uri}"
            )))
        }
    }
}

/// Appends `{"uri":…,"cid":…,"value":…}` (the lexicons' record view) with the value as the
/// store transcoded it.
fn write_record(out: &mut Vec<u8>, record: &RecordJson) {
    out.extend_from_slice(b"{\"uri\":");
    write_string(out, &record.uri);
    out.extend_from_slice(b",\"cid\":\"");
    out.extend_from_slice(record.cid.to_string().as_bytes());
    out.extend_from_slice(b"\",\"value\":");
    out.extend_from_slice(record.value.as_bytes());
    out.push(b'}');
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// A response body already serialized as JSON.
pub struct JsonBody(Vec<u8>);

impl IntoResponse for JsonBody {
    fn into_response(self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
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

/// `GET com.atproto.repo.listRecords`: records by key, newest (highest key) first unless
/// `reverse`.
pub async fn list_records(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<ListRecordsParams>,
) -> Result<JsonBody, XrpcError> {
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
        .list_records_json(
            &did,
            &collection,
            limit,
            params.cursor.as_deref(),
            params.reverse.unwrap_or(false),
        )
        .await?;
    let size: usize = page
        .records
        .iter()
        .map(|r| r.uri.len() + r.value.len() + 96)
        .sum();
    let mut body = Vec::with_capacity(size + 64);
    body.push(b'{');
    if let Some(cursor) = &page.cursor {
        body.extend_from_slice(b"\"cursor\":");
        write_string(&mut body, cursor);
        body.push(b',');
    }
    body.extend_from_slice(b"\"records\":[");
    for (index, record) in page.records.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        write_record(&mut body, record);
    }
    body.extend_from_slice(b"]}");
    Ok(JsonBody(body))
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
