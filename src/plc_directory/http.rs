//! The directory's HTTP API, with the reference directory's routes, statuses and
//! `{"message": …}` error bodies.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::store::ExportFrom;
use super::{Directory, Error, MAX_EXPORT_COUNT};

/// Largest accepted request body (express's default JSON limit, as the reference).
const BODY_LIMIT: usize = 100 * 1024;
const DID_DOC_TYPE: &str = "application/did+ld+json; charset=utf-8";

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::NotRegistered(_) | Error::NotAvailable(_) => StatusCode::NOT_FOUND,
            Error::Invalid(_) => StatusCode::BAD_REQUEST,
            Error::Database(_) | Error::Store(_) | Error::Io(_) | Error::Corrupt(_) => {
                tracing::error!(error = %self, "PLC directory request failed");
                return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
        };
        message(status, &self.to_string())
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

/// The directory's routes (relative: `rookery serve` nests them under `/plc`).
pub fn router(directory: Directory) -> Router {
    Router::new()
        .route("/_health", get(health))
        .route("/export", get(export))
        .route("/{did}", get(document).post(submit))
        .route("/{did}/data", get(data))
        .route("/{did}/log", get(log))
        .route("/{did}/log/audit", get(audit))
        .route("/{did}/log/last", get(last))
        .fallback(|| async { message(StatusCode::NOT_FOUND, "Not Found") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(directory)
}

/// Middleware of the PDS router: requests whose path starts with a DID (`/did:…`, also
/// percent-encoded) go to the directory `plc`, all others on.
pub async fn did_paths_at_root(plc: Router, req: Request, next: Next) -> Response {
    let path = req.uri().path().as_bytes();
    let is_did = path.starts_with(b"/did:")
        || path
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"/did%3a"));
    if !is_did {
        return next.run(req).await;
    }
    match plc.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

async fn health() -> Response {
    axum::Json(json!({ "version": env!("CARGO_PKG_VERSION") })).into_response()
}

async fn submit(
    State(directory): State<Directory>,
    Path(did): Path<String>,
    body: Bytes,
) -> Result<&'static str, Error> {
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| Error::Invalid(format!("Invalid JSON body: {e}")))?;
    directory.submit_json(&did, &value).await?;
    Ok("OK")
}

async fn document(
    State(directory): State<Directory>,
    Path(did): Path<String>,
) -> Result<Response, Error> {
    match directory.document(&did).await {
        Ok(doc) => Ok(([(header::CONTENT_TYPE, DID_DOC_TYPE)], doc.to_string()).into_response()),
        // The public directory answers 410 Gone for a tombstoned DID's document.
        Err(e @ Error::NotAvailable(_)) => Ok(message(StatusCode::GONE, &e.to_string())),
        Err(e) => Err(e),
    }
}

async fn data(
    State(directory): State<Directory>,
    Path(did): Path<String>,
) -> Result<axum::Json<Value>, Error> {
    Ok(axum::Json(directory.data(&did).await?))
}

async fn log(
    State(directory): State<Directory>,
    Path(did): Path<String>,
) -> Result<axum::Json<Value>, Error> {
    let ops = directory.log(&did).await?;
    Ok(axum::Json(
        serde_json::to_value(ops).map_err(|e| Error::Corrupt(e.to_string()))?,
    ))
}

async fn audit(
    State(directory): State<Directory>,
    Path(did): Path<String>,
) -> Result<axum::Json<Value>, Error> {
    Ok(axum::Json(Value::Array(directory.audit_log(&did).await?)))
}

async fn last(
    State(directory): State<Directory>,
    Path(did): Path<String>,
) -> Result<axum::Json<Value>, Error> {
    let op = directory.last_op(&did).await?;
    Ok(axum::Json(
        serde_json::to_value(op).map_err(|e| Error::Corrupt(e.to_string()))?,
    ))
}

/// `GET /export?after=…&count=…`: JSON lines, oldest first. `after` is an ISO timestamp
/// (operations created after it) or a sequence number (then each line carries its `seq`).
async fn export(
    State(directory): State<Directory>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Error> {
    let count = match params.get("count") {
        None => MAX_EXPORT_COUNT,
        Some(text) => parse_js_int(text)
            .filter(|n| *n >= 1)
            .ok_or_else(|| Error::Invalid("Invalid count parameter".into()))?,
    };
    let invalid_after = || Error::Invalid("Invalid after parameter".into());
    let from = match params.get("after").map(String::as_str) {
        None | Some("") => ExportFrom::CreatedAfter(None),
        Some(text) if text.bytes().all(|b| b.is_ascii_digit()) => {
            ExportFrom::SeqAfter(text.parse().map_err(|_| invalid_after())?)
        }
        Some(text) => ExportFrom::CreatedAfter(Some(parse_time(text).ok_or_else(invalid_after)?)),
    };
    let lines: Vec<String> = directory
        .export(from, count)
        .await?
        .iter()
        .map(Value::to_string)
        .collect();
    Ok((
        [(header::CONTENT_TYPE, "application/jsonlines")],
        lines.join("\n"),
    )
        .into_response())
}

/// JavaScript's `parseInt(text, 10)` for the non-negative case: leading digits.
fn parse_js_int(text: &str) -> Option<i64> {
    let digits: String = text
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse::<i64>().ok()
}

/// An RFC 3339 timestamp or a bare date, in UNIX milliseconds.
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// A directory running on its own listener (`rookery plc serve`, tests).
pub struct StandaloneDirectory {
    pub local_addr: SocketAddr,
    pub handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves `directory` alone on `listener` until `shutdown` is cancelled.
pub fn serve(
    listener: TcpListener,
    directory: Directory,
    shutdown: CancellationToken,
) -> std::io::Result<StandaloneDirectory> {
    let local_addr = listener.local_addr()?;
    let app = router(directory).layer(tower_http::cors::CorsLayer::permissive());
    let handle = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    });
    Ok(StandaloneDirectory { local_addr, handle })
}
