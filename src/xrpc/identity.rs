//! `com.atproto.identity.*`: resolving handles, changing the caller's handle, and the DID
//! credentials this server recommends for an account.
//!
//! Handle rules follow the reference PDS: handles are lowercased; a handle under one of the
//! service's handle domains must be a single label of 3 to 18 characters in front of the
//! domain; any other handle must resolve (DNS TXT `_atproto` or `/.well-known/atproto-did`)
//! to the caller's DID.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::account_service::rules::service_domain;
use crate::accounts::AccountRef;
use crate::error::{ErrorName, XrpcError};
use crate::identity::plc::{self, PDS_SERVICE_ID, PDS_SERVICE_TYPE, PlcError};
use crate::identity::resolver::ResolveError;
use crate::server::AppState;
use crate::syntax::{Did, Handle};
use crate::xrpc::auth::{AccessAllowDeactivated, AccessIdentityHandle};
use crate::xrpc::extract::{XrpcJson, XrpcQuery};

/// The `com.atproto.identity.*` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/xrpc/com.atproto.identity.resolveHandle",
            get(resolve_handle),
        )
        .route(
            "/xrpc/com.atproto.identity.updateHandle",
            post(update_handle),
        )
        .route(
            "/xrpc/com.atproto.identity.getRecommendedDidCredentials",
            get(get_recommended_did_credentials),
        )
        .route("/xrpc/com.atproto.identity.resolveDid", get(resolve_did))
        .route(
            "/xrpc/com.atproto.identity.resolveIdentity",
            get(resolve_identity),
        )
        .route(
            "/xrpc/com.atproto.identity.refreshIdentity",
            post(refresh_identity),
        )
        .merge(super::identity_plc::routes())
}

#[derive(Deserialize)]
struct ResolveHandleParams {
    handle: Option<String>,
}

/// `GET com.atproto.identity.resolveHandle?handle=`: local accounts from the account
/// database; handles under our domains that no account holds are unknown; others go through
/// the resolver (DNS TXT, then HTTPS well-known).
async fn resolve_handle(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<ResolveHandleParams>,
) -> Result<Json<serde_json::Value>, XrpcError> {
    let raw = params
        .handle
        .ok_or_else(|| XrpcError::invalid_request("Params must have the property \"handle\""))?;
    let handle: Handle = raw
        .to_ascii_lowercase()
        .parse()
        .map_err(|_| XrpcError::invalid_request("handle must be a valid handle"))?;
    let account = state
        .accounts()
        .get_account(AccountRef::Handle(handle.as_str()))
        .await
        .map_err(XrpcError::internal)?;
    if let Some(account) = account {
        return Ok(Json(json!({ "did": account.did })));
    }
    let unable = || XrpcError::bad_request(ErrorName::HandleNotFound, "Unable to resolve handle");
    if service_domain(&handle, &state.config().service_handle_domains).is_some() {
        return Err(unable());
    }
    match state.resolver().resolve_handle(&handle).await {
        Ok(did) => Ok(Json(json!({ "did": did.as_str() }))),
        Err(err) => {
            tracing::debug!(handle = handle.as_str(), %err, "handle resolution failed");
            Err(unable())
        }
    }
}

fn did_not_found() -> XrpcError {
    XrpcError::bad_request(ErrorName::DidNotFound, "DID not found")
}

fn handle_not_found() -> XrpcError {
    XrpcError::bad_request(ErrorName::HandleNotFound, "Unable to resolve handle")
}

/// A DID resolution failure in the lexicons' terms: unknown DIDs are `DidNotFound`,
/// tombstoned ones `DidDeactivated`; a resolver that cannot be reached is an upstream
/// failure (its detail logged, not sent).
fn did_failure(did: &Did, err: ResolveError) -> XrpcError {
    use crate::identity::did_web::WebError;
    match err {
        ResolveError::Plc(PlcError::Tombstoned) => {
            XrpcError::bad_request(ErrorName::DidDeactivated, "DID has been deactivated")
        }
        ResolveError::Plc(PlcError::NotFound | PlcError::NotPlc)
        | ResolveError::UnsupportedMethod
        | ResolveError::Web(
            WebError::NotFound
            | WebError::Status(404 | 410)
            | WebError::NotWeb
            | WebError::PathNotSupported
            | WebError::InvalidHost
            | WebError::DisallowedTld
            | WebError::PortNotAllowed,
        ) => did_not_found(),
        other => {
            tracing::debug!(did = did.as_str(), error = %other, "DID resolution failed");
            XrpcError::upstream_failure("The DID could not be resolved")
        }
    }
}

/// The DID `handle` points to: an account hosted here by the account database, a handle
/// under the service domains held by no account nowhere, any other through the resolver.
async fn handle_target(state: &AppState, handle: &Handle) -> Result<Option<Did>, XrpcError> {
    if let Some(account) = state
        .accounts()
        .get_account(AccountRef::Handle(handle.as_str()))
        .await?
    {
        return Ok(account.did.parse().ok());
    }
    if service_domain(handle, &state.config().service_handle_domains).is_some() {
        return Ok(None);
    }
    Ok(state.resolver().resolve_handle(handle).await.ok())
}

#[derive(Deserialize)]
struct ResolveDidParams {
    did: Option<String>,
}

/// `GET com.atproto.identity.resolveDid?did=`: the DID document, resolved here.
async fn resolve_did(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<ResolveDidParams>,
) -> Result<Json<serde_json::Value>, XrpcError> {
    let raw = params
        .did
        .ok_or_else(|| XrpcError::invalid_request("Params must have the property \"did\""))?;
    let did: Did = raw
        .parse()
        .map_err(|_| XrpcError::invalid_request("did must be a valid DID"))?;
    let doc = state
        .resolver()
        .resolve_did(&did)
        .await
        .map_err(|e| did_failure(&did, e))?;
    Ok(Json(json!({ "didDoc": doc })))
}

#[derive(Deserialize)]
struct IdentityParams {
    identifier: Option<String>,
}

/// `com.atproto.identity.defs#identityInfo` for a handle or DID: the DID, its document,
/// and the handle if it verifies both ways (else `handle.invalid`).
async fn identity_info(state: &AppState, identifier: &str) -> Result<serde_json::Value, XrpcError> {
    let identifier = identifier.trim();
    let (did, asked_handle) = if identifier.starts_with("did:") {
        let did: Did = identifier
            .parse()
            .map_err(|_| XrpcError::invalid_request("identifier must be a handle or DID"))?;
        (did, None)
    } else {
        let handle: Handle = identifier
            .to_ascii_lowercase()
            .parse()
            .map_err(|_| XrpcError::invalid_request("identifier must be a handle or DID"))?;
        let did = handle_target(state, &handle)
            .await?
            .ok_or_else(handle_not_found)?;
        (did, Some(handle))
    };
    let doc = state
        .resolver()
        .resolve_did(&did)
        .await
        .map_err(|e| did_failure(&did, e))?;
    let claimed = doc.handle();
    let verified = match (&asked_handle, &claimed) {
        // Asked by handle: the document must claim it back.
        (Some(asked), Some(claimed)) if asked == claimed => Some(asked.clone()),
        (Some(_), _) => return Err(handle_not_found()),
        (None, Some(claimed)) => {
            (handle_target(state, claimed).await?.as_ref() == Some(&did)).then(|| claimed.clone())
        }
        (None, None) => None,
    };
    Ok(json!({
        "did": did.as_str(),
        "handle": verified.as_ref().map_or(Handle::INVALID, Handle::as_str),
        "didDoc": doc,
    }))
}

/// `GET com.atproto.identity.resolveIdentity?identifier=`, answered here from this
/// server's resolver (the reference forwards it to the AppView).
async fn resolve_identity(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<IdentityParams>,
) -> Result<Json<serde_json::Value>, XrpcError> {
    let identifier = params.identifier.ok_or_else(|| {
        XrpcError::invalid_request("Params must have the property \"identifier\"")
    })?;
    identity_info(&state, &identifier).await.map(Json)
}

#[derive(Deserialize)]
struct RefreshIdentityInput {
    identifier: String,
}

/// `POST com.atproto.identity.refreshIdentity`: as `resolveIdentity`, after dropping what
/// the resolver has cached about the identifier.
async fn refresh_identity(
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<RefreshIdentityInput>,
) -> Result<Json<serde_json::Value>, XrpcError> {
    let identifier = input.identifier.trim();
    if let Ok(did) = identifier.parse::<Did>() {
        state.resolver().purge_did(&did);
    } else if let Ok(handle) = identifier.to_ascii_lowercase().parse::<Handle>() {
        state.resolver().purge_handle(&handle);
        if let Ok(did) = state.resolver().resolve_handle(&handle).await {
            state.resolver().purge_did(&did);
        }
    }
    identity_info(&state, identifier).await.map(Json)
}

#[derive(Deserialize)]
struct UpdateHandleInput {
    handle: String,
}

/// `POST com.atproto.identity.updateHandle`: validates the new handle, writes it to the
/// account's `did:plc` document (signed with the server's rotation key), the account
/// database and the firehose (`#identity`).
async fn update_handle(
    State(state): State<AppState>,
    AccessIdentityHandle(caller): AccessIdentityHandle,
    XrpcJson(input): XrpcJson<UpdateHandleInput>,
) -> Result<Response, XrpcError> {
    if state.config().rate_limits_enabled {
        let now = chrono::Utc::now().timestamp();
        state
            .handle_limiter()
            .check(caller.did.as_str(), now)
            .map_err(|_| XrpcError::rate_limit_exceeded("Rate Limit Exceeded"))?;
    }
    state
        .account_service()
        .change_handle(&caller.did, &input.handle, false)
        .await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Serialize)]
struct ServiceOut {
    #[serde(rename = "type")]
    kind: &'static str,
    endpoint: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecommendedCredentials {
    rotation_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    also_known_as: Option<Vec<String>>,
    verification_methods: BTreeMap<&'static str, String>,
    services: BTreeMap<&'static str, ServiceOut>,
}

/// `GET com.atproto.identity.getRecommendedDidCredentials`: what the caller's DID document
/// should say for this server to host the account (used when migrating in).
async fn get_recommended_did_credentials(
    State(state): State<AppState>,
    AccessAllowDeactivated(caller): AccessAllowDeactivated,
) -> Result<Json<serde_json::Value>, XrpcError> {
    let store = state
        .repo()
        .stores()
        .open(&caller.did)
        .await
        .map_err(XrpcError::internal)?
        .ok_or_else(|| XrpcError::invalid_request("Account has no repository"))?;
    let signing_key = store.keypair().public_key().to_did_key();
    let account = state
        .accounts()
        .get_account(AccountRef::Did(caller.did.as_str()))
        .await
        .map_err(XrpcError::internal)?;
    let also_known_as = account
        .and_then(|a| a.handle)
        .map(|h| vec![format!("at://{h}")]);
    let body = RecommendedCredentials {
        rotation_keys: vec![state.plc_rotation_key().public_key().to_did_key()],
        also_known_as,
        verification_methods: BTreeMap::from([(plc::ATPROTO_KEY_ID, signing_key)]),
        services: BTreeMap::from([(
            PDS_SERVICE_ID,
            ServiceOut {
                kind: PDS_SERVICE_TYPE,
                endpoint: state.config().public_url.clone(),
            },
        )]),
    };
    serde_json::to_value(body)
        .map(Json)
        .map_err(XrpcError::internal)
}
