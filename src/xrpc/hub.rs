//! `cn.pocketbase.hub.*`: the PocketBase.cn community hub's listings over the plugin and
//! case-study records of this server's repositories (see [`crate::hub`]).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::AccountRef;
use crate::error::XrpcError;
use crate::hub::{self, ListOptions, Sort, StatusFilter, Viewer};
use crate::server::AppState;
use crate::syntax::{AtIdentifier, AtUri, Did};
use crate::xrpc::auth::{AdminAuth, OptionalAccess};
use crate::xrpc::extract::{XrpcJson, XrpcQuery};

/// Default `limit` of the listings.
const DEFAULT_LIMIT: u32 = 50;
/// Default and largest `days` of `getStats`.
const DEFAULT_DAYS: u32 = 30;
const MAX_DAYS: u32 = 366;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/xrpc/cn.pocketbase.hub.listPlugins", get(list_plugins))
        .route("/xrpc/cn.pocketbase.hub.getPlugin", get(get_plugin))
        .route("/xrpc/cn.pocketbase.hub.listCases", get(list_cases))
        .route("/xrpc/cn.pocketbase.hub.getCase", get(get_case))
        .route(
            "/xrpc/cn.pocketbase.hub.trackDownload",
            post(track_download),
        )
        .route("/xrpc/cn.pocketbase.hub.getStats", get(get_stats))
        .route("/xrpc/cn.pocketbase.hub.setModerator", post(set_moderator))
        .route(
            "/xrpc/cn.pocketbase.hub.listModerators",
            get(list_moderators),
        )
}

/// The error of a repository write route: an [`XrpcError`], or a 429 that carries the
/// `RateLimit-*` headers of a hub creation limit.
#[derive(Debug)]
pub enum WriteRejection {
    Xrpc(XrpcError),
    RateLimited {
        message: String,
        /// Creations allowed per hour.
        limit: i64,
        reset: i64,
    },
    /// Refused by the repository-write rate limit.
    Limited(crate::accounts::LimitStatus),
}

impl From<XrpcError> for WriteRejection {
    fn from(e: XrpcError) -> Self {
        WriteRejection::Xrpc(e)
    }
}

impl From<crate::actor::Error> for WriteRejection {
    fn from(e: crate::actor::Error) -> Self {
        match e {
            // A hub creation limit refused by the hub's commit hook: a 429 with headers.
            crate::actor::Error::Refused(refusal) => match refusal.downcast::<hub::Error>() {
                Ok(hub_error) => match *hub_error {
                    hub::Error::RateLimited {
                        message,
                        limit,
                        reset,
                    } => WriteRejection::RateLimited {
                        message,
                        limit,
                        reset,
                    },
                    other => WriteRejection::Xrpc(other.into()),
                },
                Err(other) => WriteRejection::Xrpc(crate::actor::Error::Refused(other).into()),
            },
            other => WriteRejection::Xrpc(other.into()),
        }
    }
}

impl IntoResponse for WriteRejection {
    fn into_response(self) -> Response {
        match self {
            WriteRejection::Xrpc(e) => e.into_response(),
            WriteRejection::Limited(status) => {
                crate::server::limits::too_many(&status, "Rate Limit Exceeded")
            }
            WriteRejection::RateLimited {
                message,
                limit,
                reset,
            } => {
                let mut response = XrpcError::rate_limit_exceeded(message).into_response();
                let headers = response.headers_mut();
                headers.insert("ratelimit-remaining", HeaderValue::from_static("0"));
                for (name, value) in [
                    ("ratelimit-limit", limit.to_string()),
                    ("ratelimit-reset", reset.to_string()),
                    ("ratelimit-policy", format!("{limit};w=3600")),
                ] {
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        headers.insert(name, value);
                    }
                }
                response
            }
        }
    }
}

impl From<hub::Error> for XrpcError {
    fn from(e: hub::Error) -> Self {
        match e {
            hub::Error::Invalid(m) | hub::Error::BadRequest(m) => XrpcError::invalid_request(m),
            hub::Error::RateLimited { message, .. } => XrpcError::rate_limit_exceeded(message),
            hub::Error::Repo(e) => (*e).into(),
            other => XrpcError::internal(other),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// Who asks: their DID and whether they moderate.
async fn viewer(state: &AppState, access: &OptionalAccess) -> Result<Viewer, XrpcError> {
    match &access.0 {
        None => Ok(Viewer::default()),
        Some(caller) => Ok(Viewer {
            did: Some(caller.did.to_string()),
            moderator: state.hub().is_moderator(caller.did.as_str()).await?,
        }),
    }
}

/// Checks the parameters of a listing; only moderators may list other statuses than
/// `approved`.
fn list_options(params: ListParams, viewer: &Viewer) -> Result<ListOptions, XrpcError> {
    let sort = match params.sort.as_deref() {
        None => Sort::Featured,
        Some(s) => Sort::parse(s)
            .ok_or_else(|| XrpcError::invalid_request(format!("Unknown sort {s:?}")))?,
    };
    let status = match params.status.as_deref() {
        None => StatusFilter::Approved,
        Some(s) => StatusFilter::parse(s)
            .ok_or_else(|| XrpcError::invalid_request(format!("Unknown status {s:?}")))?,
    };
    if status != StatusFilter::Approved && !viewer.moderator {
        return Err(if viewer.did.is_none() {
            XrpcError::auth_required("Only moderators may list pending or rejected submissions")
        } else {
            XrpcError::forbidden("Only moderators may list pending or rejected submissions")
        });
    }
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=100).contains(&limit) {
        return Err(XrpcError::invalid_request(
            "limit must be between 1 and 100",
        ));
    }
    if let Some(q) = &params.q
        && q.len() > 200
    {
        return Err(XrpcError::invalid_request("q is longer than 200 bytes"));
    }
    Ok(ListOptions {
        category: params.category.filter(|c| !c.is_empty()),
        q: params.q.filter(|q| !q.trim().is_empty()),
        sort,
        status,
        limit,
        cursor: params.cursor.filter(|c| !c.is_empty()),
    })
}

async fn list_plugins(
    State(state): State<AppState>,
    access: OptionalAccess,
    XrpcQuery(params): XrpcQuery<ListParams>,
) -> Result<Json<Value>, XrpcError> {
    let viewer = viewer(&state, &access).await?;
    let opts = list_options(params, &viewer)?;
    let page = state.hub().list_plugins(&opts).await?;
    let mut out = json!({ "plugins": page.items });
    if let Some(cursor) = page.cursor {
        out["cursor"] = Value::from(cursor);
    }
    Ok(Json(out))
}

async fn list_cases(
    State(state): State<AppState>,
    access: OptionalAccess,
    XrpcQuery(params): XrpcQuery<ListParams>,
) -> Result<Json<Value>, XrpcError> {
    let viewer = viewer(&state, &access).await?;
    let opts = list_options(params, &viewer)?;
    let page = state.hub().list_cases(&opts).await?;
    let mut out = json!({ "cases": page.items });
    if let Some(cursor) = page.cursor {
        out["cursor"] = Value::from(cursor);
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
pub struct GetParams {
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    rkey: Option<String>,
}

/// The AT-URI a `get` names: `uri` (of `collection`), or `author` + key.
async fn subject_uri(
    state: &AppState,
    collection: &str,
    uri: Option<String>,
    author: Option<String>,
    key: Option<String>,
    key_name: &str,
) -> Result<String, XrpcError> {
    if let Some(uri) = uri {
        let parsed: AtUri = uri
            .parse()
            .map_err(|e| XrpcError::invalid_request(format!("Invalid uri: {e}")))?;
        if parsed.collection().map(|c| c.as_str()) != Some(collection) || parsed.rkey().is_none() {
            return Err(XrpcError::invalid_request(format!(
                "uri must be a {collection} record"
            )));
        }
        let did = match parsed.authority() {
            AtIdentifier::Did(did) => did.to_string(),
            AtIdentifier::Handle(handle) => resolve_handle(state, handle.as_str()).await?,
        };
        let rkey = parsed.rkey().map(|k| k.as_str()).unwrap_or_default();
        return Ok(format!("at://{did}/{collection}/{rkey}"));
    }
    let (Some(author), Some(key)) = (author, key) else {
        return Err(XrpcError::invalid_request(format!(
            "Give uri, or author and {key_name}"
        )));
    };
    let author: AtIdentifier = author
        .parse()
        .map_err(|e| XrpcError::invalid_request(format!("Invalid author: {e}")))?;
    let did = match &author {
        AtIdentifier::Did(did) => did.to_string(),
        AtIdentifier::Handle(handle) => resolve_handle(state, handle.as_str()).await?,
    };
    if key.parse::<crate::syntax::RecordKey>().is_err() {
        return Err(XrpcError::invalid_request(format!("Invalid {key_name}")));
    }
    Ok(format!("at://{did}/{collection}/{key}"))
}

async fn resolve_handle(state: &AppState, handle: &str) -> Result<String, XrpcError> {
    state
        .accounts()
        .get_account(AccountRef::Handle(&handle.to_lowercase()))
        .await?
        .map(|a| a.did)
        .ok_or_else(|| XrpcError::record_not_found(format!("Unknown author {handle}")))
}

async fn get_plugin(
    State(state): State<AppState>,
    access: OptionalAccess,
    XrpcQuery(params): XrpcQuery<GetParams>,
) -> Result<Json<Value>, XrpcError> {
    let uri = subject_uri(
        &state,
        hub::PLUGIN,
        params.uri,
        params.author,
        params.slug,
        "slug",
    )
    .await?;
    let viewer = viewer(&state, &access).await?;
    match state.hub().get_plugin(&uri, &viewer).await? {
        Some(plugin) => Ok(Json(json!({ "plugin": plugin }))),
        None => Err(XrpcError::record_not_found(format!(
            "Plugin not found: {uri}"
        ))),
    }
}

async fn get_case(
    State(state): State<AppState>,
    access: OptionalAccess,
    XrpcQuery(params): XrpcQuery<GetParams>,
) -> Result<Json<Value>, XrpcError> {
    let uri = subject_uri(
        &state,
        hub::CASE,
        params.uri,
        params.author,
        params.rkey,
        "rkey",
    )
    .await?;
    let viewer = viewer(&state, &access).await?;
    match state.hub().get_case(&uri, &viewer).await? {
        Some(case) => Ok(Json(json!({ "case": case }))),
        None => Err(XrpcError::record_not_found(format!(
            "Case not found: {uri}"
        ))),
    }
}

#[derive(Debug, Deserialize)]
pub struct TrackInput {
    uri: String,
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

/// `trackDownload`: counts for approved, visible plugins only.
async fn track_download(
    State(state): State<AppState>,
    extensions: Extensions,
    XrpcJson(input): XrpcJson<TrackInput>,
) -> Result<Json<Value>, XrpcError> {
    let uri = subject_uri(&state, hub::PLUGIN, Some(input.uri), None, None, "slug").await?;
    let visible = state.hub().get_plugin(&uri, &Viewer::default()).await?;
    if visible.is_none() {
        return Err(XrpcError::record_not_found(format!(
            "Plugin not found: {uri}"
        )));
    }
    let ip = client_ip(&extensions).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let (counted, downloads) = state
        .hub()
        .track_download(&uri, &ip, hub::now_secs())
        .await?;
    Ok(Json(json!({ "counted": counted, "downloads": downloads })))
}

#[derive(Debug, Deserialize)]
pub struct StatsParams {
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    days: Option<u32>,
}

async fn get_stats(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<StatsParams>,
) -> Result<Json<Value>, XrpcError> {
    let days = params.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(XrpcError::invalid_request(format!(
            "days must be between 1 and {MAX_DAYS}"
        )));
    }
    let plugin = match params.plugin {
        None => None,
        Some(uri) => {
            let uri = subject_uri(&state, hub::PLUGIN, Some(uri), None, None, "slug").await?;
            if state
                .hub()
                .get_plugin(&uri, &Viewer::default())
                .await?
                .is_none()
            {
                return Err(XrpcError::record_not_found(format!(
                    "Plugin not found: {uri}"
                )));
            }
            Some(uri)
        }
    };
    let since = chrono::Utc::now() - chrono::Duration::days(i64::from(days) - 1);
    let since = since.format("%Y-%m-%d").to_string();
    let stats = state.hub().stats(plugin.as_deref(), &since).await?;
    Ok(Json(
        serde_json::to_value(stats).map_err(XrpcError::internal)?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct SetModeratorInput {
    did: String,
    moderator: bool,
}

async fn set_moderator(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<SetModeratorInput>,
) -> Result<Json<Value>, XrpcError> {
    let did: Did = input
        .did
        .parse()
        .map_err(|e| XrpcError::invalid_request(format!("Invalid did: {e}")))?;
    state
        .hub()
        .set_moderator(did.as_str(), input.moderator)
        .await?;
    Ok(Json(
        json!({ "did": did.as_str(), "moderator": input.moderator }),
    ))
}

async fn list_moderators(State(state): State<AppState>) -> Result<Json<Value>, XrpcError> {
    let moderators: Vec<Value> = state
        .hub()
        .moderators()
        .await?
        .into_iter()
        .map(|m| {
            let mut v = json!({ "did": m.did, "source": m.source.as_str() });
            if let Some(handle) = m.handle {
                v["handle"] = Value::from(handle);
            }
            v
        })
        .collect();
    Ok(Json(json!({ "moderators": moderators })))
}
