//! `com.atproto.sync.getBlocks`: chosen blocks of a repository as a CAR without roots.

use std::collections::HashSet;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cid::Cid;
use serde::Deserialize;
use tokio::io::AsyncWrite;
use tokio_util::io::ReaderStream;

use super::{BODY_CHUNK, PIPE_BUFFER, available_repo};
use crate::actor::ActorHandle;
use crate::error::{ErrorName, XrpcError};
use crate::repo::car::{self, CarWriter};
use crate::server::AppState;
use crate::store::blocks;
use crate::syntax::parse_cid_str;
use crate::xrpc::extract::XrpcQuery;

/// Most CIDs one request may name. A CID string is 59 characters, so a URL naming this many
/// is about 65 KB, near the longest URI the HTTP stack accepts anyway.
pub const MAX_CIDS: usize = 1000;
/// CIDs whose blocks are read per query while streaming: a record is at most 1 MB, so a
/// chunk bounds what is held in memory at once.
const READ_CHUNK: usize = 64;

#[derive(Deserialize)]
pub(super) struct BlocksParams {
    did: String,
    #[serde(default)]
    cids: Vec<String>,
}

/// Why streaming a block set stopped; the client sees a truncated CAR.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Car(#[from] car::Error),
    /// A commit released the block between the check and the read.
    #[error("block {0} disappeared while streaming")]
    Vanished(Cid),
}

/// `GET com.atproto.sync.getBlocks?did=…&cids=…&cids=…`: the named blocks (each once, in the
/// order first named) as a CAR v1 whose header lists no root, as the reference writes it.
/// If any block is not in the repository, nothing is sent but `BlockNotFound` (400) naming
/// the missing CIDs.
pub(super) async fn get_blocks(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<BlocksParams>,
) -> Result<Response, XrpcError> {
    if params.cids.is_empty() {
        return Err(XrpcError::invalid_request(
            "Params must have the property \"cids\"",
        ));
    }
    if params.cids.len() > MAX_CIDS {
        return Err(XrpcError::invalid_request(format!(
            "at most {MAX_CIDS} cids per request"
        )));
    }
    let mut cids: Vec<Cid> = Vec::with_capacity(params.cids.len());
    let mut seen = HashSet::with_capacity(params.cids.len());
    for text in &params.cids {
        let cid = parse_cid_str(text)
            .map_err(|e| XrpcError::invalid_request(format!("invalid cid {text:?}: {e}")))?;
        if seen.insert(cid) {
            cids.push(cid);
        }
    }
    let (did, handle) = available_repo(&state, &params.did).await?;
    let missing = {
        let mut conn = handle.pool().acquire().await.map_err(XrpcError::internal)?;
        blocks::missing(&mut conn, &cids)
            .await
            .map_err(XrpcError::internal)?
    };
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(Cid::to_string).collect();
        return Err(XrpcError::bad_request(
            ErrorName::BlockNotFound,
            format!("Could not find cids: {}", list.join(",")),
        ));
    }
    let (reader, writer) = tokio::io::duplex(PIPE_BUFFER);
    tokio::spawn(async move {
        if let Err(err) = write_block_set(&handle, &cids, writer).await {
            tracing::warn!(did = %did, "getBlocks export failed: {err}");
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/vnd.ipld.car")],
        Body::from_stream(ReaderStream::with_capacity(reader, BODY_CHUNK)),
    )
        .into_response())
}

/// Writes the blocks `cids` (distinct, all stored when checked) as a root-less CAR, reading
/// [`READ_CHUNK`] at a time on a connection borrowed only for the read.
async fn write_block_set<W: AsyncWrite + Unpin + Send>(
    handle: &ActorHandle,
    cids: &[Cid],
    writer: W,
) -> Result<(), StreamError> {
    let mut car = CarWriter::without_roots(writer);
    for chunk in cids.chunks(READ_CHUNK) {
        let (found, _) = {
            let mut conn = handle.pool().acquire().await?;
            blocks::get_many(&mut conn, chunk).await?
        };
        for cid in chunk {
            let bytes = found.get(cid).ok_or(StreamError::Vanished(*cid))?;
            car.write_block(cid, bytes).await?;
        }
    }
    car.finish().await?;
    Ok(())
}
