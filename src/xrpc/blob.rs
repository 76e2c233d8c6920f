//! Blobs over XRPC: `com.atproto.repo.uploadBlob` and `listMissingBlobs`,
//! `com.atproto.sync.getBlob` and `listBlobs`.
//!
//! An upload streams from the socket into the blob store's temporary area while it is hashed
//! and sniffed ([`BlobStore::put_temp`](crate::blobs::BlobStore::put_temp)); the body is never
//! held in memory. It is refused (and nothing kept) past `PDS_BLOB_UPLOAD_LIMIT`, whether the
//! `Content-Length` announces it or the bytes show it, when the client's declared
//! `Content-Type` contradicts the bytes ([`sniff::resolve_mime`]), or when the body breaks
//! off. `getBlob` streams the stored bytes back with headers that keep browsers from
//! interpreting them, and honours a single `Range`.

use std::io;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cid::Cid;
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::AccessAllowDeactivated;
use super::extract::XrpcQuery;
use super::sync;
use crate::blobs::{self, ByteRange, sniff};
use crate::error::{ErrorName, XrpcError};
use crate::server::AppState;
use crate::syntax::{Did, Tid};

/// `Content-Security-Policy` of every blob served: nothing may load, scripts may not run.
pub const BLOB_CSP: &str = "default-src 'none'; sandbox";
/// Default and largest `limit` of `listBlobs` and `listMissingBlobs` (their lexicons).
const DEFAULT_LIST_LIMIT: u32 = 500;
const MAX_LIST_LIMIT: u32 = 1000;

/// The blob routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/xrpc/com.atproto.repo.uploadBlob", post(upload_blob))
        .route(
            "/xrpc/com.atproto.repo.listMissingBlobs",
            get(list_missing_blobs),
        )
        .route("/xrpc/com.atproto.sync.getBlob", get(get_blob))
        .route("/xrpc/com.atproto.sync.listBlobs", get(list_blobs))
}

fn too_large(limit: u64) -> XrpcError {
    XrpcError::blob_too_large(format!("Blob is larger than the limit of {limit} bytes"))
}

/// `POST com.atproto.repo.uploadBlob`: the body is the blob. A deactivated account may
/// upload (as the reference allows): an account moving here brings its blobs before it is
/// activated.
async fn upload_blob(
    State(state): State<AppState>,
    AccessAllowDeactivated(caller): AccessAllowDeactivated,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, XrpcError> {
    let limit = state.config().blob_upload_limit;
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        let length: u64 = length
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| XrpcError::invalid_request("Invalid Content-Length"))?;
        if length > limit {
            return Err(too_large(limit));
        }
    }
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    caller.require_blob(declared.as_deref().unwrap_or("application/octet-stream"))?;
    let did = &caller.did;
    let stream = body.into_data_stream().map_err(io::Error::other);
    let temp = match state.blobs().put_temp(did, Box::pin(stream), limit).await {
        Ok(temp) => temp,
        Err(blobs::Error::TooLarge { limit }) => return Err(too_large(limit)),
        Err(blobs::Error::Stream(e)) => {
            return Err(XrpcError::invalid_request(format!(
                "Upload did not complete: {e}"
            )));
        }
        Err(e) => return Err(XrpcError::internal(e)),
    };
    let mime_type = match sniff::resolve_mime(declared.as_deref(), temp.sniffed) {
        Ok(mime) => mime,
        Err(mismatch) => {
            if let Err(e) = state.blobs().delete_temp(did, &temp.key).await {
                tracing::warn!(%did, error = %e, "deleting a refused upload failed");
            }
            return Err(XrpcError::invalid_request(mismatch.to_string()));
        }
    };
    let blob = state.repo().track_blob(did, &temp, &mime_type).await?;
    Ok(Json(json!({
        "blob": {
            "$type": "blob",
            "ref": { "$link": blob.cid.to_string() },
            "mimeType": blob.mime_type,
            "size": blob.size,
        }
    })))
}

#[derive(Deserialize)]
struct GetBlobParams {
    did: String,
    cid: String,
}

fn parse_did(value: &str) -> Result<Did, XrpcError> {
    value
        .parse()
        .map_err(|_| XrpcError::invalid_request("did must be a valid did"))
}

fn parse_cid(field: &str, value: &str) -> Result<Cid, XrpcError> {
    Cid::try_from(value)
        .map_err(|_| XrpcError::invalid_request(format!("{field} must be a valid cid")))
}

fn blob_not_found() -> XrpcError {
    XrpcError::bad_request(ErrorName::BlobNotFound, "Blob not found")
}

/// A repository hosted here and available, or the sync lexicons' errors (400, as the
/// reference: `RepoNotFound`, `RepoTakendown`, `RepoDeactivated`).
async fn available_repo(state: &AppState, did: &Did) -> Result<(), XrpcError> {
    sync::check_available(state, did).await?;
    let exists = state
        .repo()
        .stores()
        .exists(did)
        .await
        .map_err(XrpcError::internal)?;
    if exists {
        Ok(())
    } else {
        Err(sync::repo_not_found(did))
    }
}

/// The one range of a `Range: bytes=…` header. Anything else (another unit, several
/// ranges, bad syntax) is ignored as HTTP allows, and the whole blob is served.
fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
    let value = headers.get(header::RANGE)?.to_str().ok()?.trim();
    let (unit, spec) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", n) => Some(ByteRange::Suffix(number(n)?)),
        (a, "") => Some(ByteRange::From(number(a)?)),
        (a, b) => {
            let (a, b) = (number(a)?, number(b)?);
            (a <= b).then_some(ByteRange::FromTo(a, b))
        }
    }
}

/// `GET com.atproto.sync.getBlob?did=…&cid=…`: the bytes, with their stored type.
async fn get_blob(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<GetBlobParams>,
    headers: HeaderMap,
) -> Result<Response, XrpcError> {
    let did = parse_did(&params.did)?;
    let cid = parse_cid("cid", &params.cid)?;
    available_repo(&state, &did).await?;
    let row = state
        .repo()
        .blob_metadata(&did, &cid)
        .await?
        .ok_or_else(blob_not_found)?;
    let range = parse_range(&headers);
    let blob = match state.blobs().get(&did, &cid, range).await {
        Ok(blob) => blob,
        Err(blobs::Error::NotFound) => return Err(blob_not_found()),
        Err(blobs::Error::RangeNotSatisfiable { size }) => {
            let mut response = XrpcError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorName::InvalidRequest,
                format!("Range not satisfiable for a blob of {size} bytes"),
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
        Err(e) => return Err(XrpcError::internal(e)),
    };
    let content_type = HeaderValue::from_str(&row.mime_type)
        .unwrap_or_else(|_| HeaderValue::from_static(sniff::OCTET_STREAM));
    let status = if blob.range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, blob.len())
        .header(header::CONTENT_SECURITY_POLICY, BLOB_CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some((first, last)) = blob.range {
        response = response.header(
            header::CONTENT_RANGE,
            format!("bytes {first}-{last}/{}", blob.size),
        );
    }
    response
        .body(Body::from_stream(blob.stream))
        .map_err(XrpcError::internal)
}

#[derive(Deserialize)]
struct ListBlobsParams {
    did: String,
    since: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

fn list_limit(limit: Option<u32>) -> Result<u32, XrpcError> {
    match limit {
        None => Ok(DEFAULT_LIST_LIMIT),
        Some(n) if (1..=MAX_LIST_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(XrpcError::invalid_request(format!(
            "limit must be between 1 and {MAX_LIST_LIMIT}"
        ))),
    }
}

/// `GET com.atproto.sync.listBlobs?did=…[&since=rev][&cursor=cid][&limit=n]`: the blobs the
/// repository's records reference, in CID byte order.
async fn list_blobs(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<ListBlobsParams>,
) -> Result<Json<Value>, XrpcError> {
    let did = parse_did(&params.did)?;
    let limit = list_limit(params.limit)?;
    let since = params
        .since
        .map(|s| {
            Tid::try_from(s.clone())
                .map(|_| s)
                .map_err(|_| XrpcError::invalid_request("since must be a valid tid"))
        })
        .transpose()?;
    let cursor = params
        .cursor
        .as_deref()
        .map(|c| parse_cid("cursor", c))
        .transpose()?;
    available_repo(&state, &did).await?;
    let cids = state
        .repo()
        .list_blobs(&did, since.as_deref(), cursor.as_ref(), limit)
        .await?;
    let cids: Vec<String> = cids.iter().map(Cid::to_string).collect();
    let mut out = json!({ "cids": cids });
    if let Some(last) = cids.last() {
        out["cursor"] = json!(last);
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
struct ListMissingParams {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET com.atproto.repo.listMissingBlobs`: blobs the caller's records reference that were
/// never uploaded here (after a migration), with one referencing record each.
async fn list_missing_blobs(
    State(state): State<AppState>,
    AccessAllowDeactivated(caller): AccessAllowDeactivated,
    XrpcQuery(params): XrpcQuery<ListMissingParams>,
) -> Result<Json<Value>, XrpcError> {
    let limit = list_limit(params.limit)?;
    let cursor = params
        .cursor
        .as_deref()
        .map(|c| parse_cid("cursor", c))
        .transpose()?;
    let missing = state
        .repo()
        .list_missing_blobs(&caller.did, cursor.as_ref(), limit)
        .await?;
    let blobs: Vec<Value> = missing
        .iter()
        .map(|m| json!({ "cid": m.cid.to_string(), "recordUri": m.record_uri }))
        .collect();
    let mut out = json!({ "blobs": blobs });
    if let Some(last) = missing.last() {
        out["cursor"] = json!(last.cid.to_string());
    }
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str) -> Option<ByteRange> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
        parse_range(&headers)
    }

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-99"), Some(ByteRange::FromTo(0, 99)));
        assert_eq!(range("bytes=5-"), Some(ByteRange::From(5)));
        assert_eq!(range("bytes=-7"), Some(ByteRange::Suffix(7)));
        assert_eq!(range("Bytes = 1-2"), Some(ByteRange::FromTo(1, 2)));
        assert_eq!(range("bytes=-0"), Some(ByteRange::Suffix(0)));
        for ignored in [
            "bytes=5-2",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
            "bytes",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(range(ignored), None, "{ignored}");
        }
        assert_eq!(parse_range(&HeaderMap::new()), None);
    }
}
