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

use crate::accounts::AccountRef;
use crate::error::{ErrorName, XrpcError};
use crate::identity::plc::{self, PDS_SERVICE_ID, PDS_SERVICE_TYPE, PlcChanges, PlcError};
use crate::identity::resolver::ResolveError;
use crate::server::AppState;
use crate::syntax::{Did, Handle};
use crate::xrpc::auth::{AccessAllowDeactivated, AccessStandard};
use crate::xrpc::extract::{XrpcJson, XrpcQuery};

/// Shortest label in front of a service handle domain.
pub const MIN_SERVICE_HANDLE_LABEL: usize = 3;
/// Longest label in front of a service handle domain.
pub const MAX_SERVICE_HANDLE_LABEL: usize = 18;

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

fn invalid_handle(message: impl Into<String>) -> XrpcError {
    XrpcError::bad_request(ErrorName::InvalidHandle, message)
}

/// The service handle domain (`.test`, `.pds.example.com`) `handle` is under, if any. The
/// bare domain (`test` for `.test`) counts as under it too, as in the reference.
pub fn service_domain<'a>(handle: &Handle, domains: &'a [String]) -> Option<&'a str> {
    let h = handle.as_str();
    domains
        .iter()
        .map(String::as_str)
        .find(|d| h.ends_with(d) || Some(h) == d.strip_prefix('.'))
}

/// Parses and lowercases `input`, refusing syntax errors and disallowed top-level domains
/// with 400 `InvalidHandle`.
pub fn normalize_handle(input: &str) -> Result<Handle, XrpcError> {
    let handle: Handle = input
        .trim()
        .to_ascii_lowercase()
        .parse()
        .map_err(|e: crate::syntax::Error| invalid_handle(format!("Invalid handle: {e}")))?;
    if handle.has_disallowed_tld() {
        return Err(invalid_handle("Handle TLD is invalid or disallowed"));
    }
    Ok(handle)
}

/// The constraints on a handle under a service domain: one label of 3 to 18 characters in
/// front of the domain, not a reserved name (see [`crate::identity::reserved`]).
pub fn check_service_handle(handle: &Handle, domain: &str) -> Result<(), XrpcError> {
    check_service_handle_shape(handle, domain)?;
    let front = handle.as_str().strip_suffix(domain).unwrap_or_default();
    if crate::identity::reserved::is_reserved(front) {
        return Err(XrpcError::bad_request(
            ErrorName::HandleNotAvailable,
            "Reserved handle",
        ));
    }
    Ok(())
}

/// The length and label rules alone (the administrator may give reserved names).
fn check_service_handle_shape(handle: &Handle, domain: &str) -> Result<(), XrpcError> {
    let front = handle.as_str().strip_suffix(domain).unwrap_or_default();
    if front.contains('.') {
        return Err(invalid_handle("Invalid characters in handle"));
    }
    if front.len() < MIN_SERVICE_HANDLE_LABEL {
        return Err(invalid_handle("Handle too short"));
    }
    if front.len() > MAX_SERVICE_HANDLE_LABEL {
        return Err(invalid_handle("Handle too long"));
    }
    Ok(())
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
    AccessStandard(caller): AccessStandard,
    XrpcJson(input): XrpcJson<UpdateHandleInput>,
) -> Result<Response, XrpcError> {
    if state.config().rate_limits_enabled {
        let now = chrono::Utc::now().timestamp();
        state
            .handle_limiter()
            .check(caller.did.as_str(), now)
            .map_err(|_| XrpcError::rate_limit_exceeded("Rate Limit Exceeded"))?;
    }
    change_handle(&state, &caller.did, &input.handle, false).await?;
    Ok(StatusCode::OK.into_response())
}

/// Gives `did` the handle `input`, as `identity.updateHandle` and (with `allow_reserved`,
/// which allows reserved names under the service domains) `admin.updateAccountHandle` do.
/// A handle outside the service domains must resolve to `did`.
pub(crate) async fn change_handle(
    state: &AppState,
    did: &Did,
    input: &str,
    allow_reserved: bool,
) -> Result<Handle, XrpcError> {
    let handle = normalize_handle(input)?;
    match service_domain(&handle, &state.config().service_handle_domains) {
        Some(domain) if allow_reserved => check_service_handle_shape(&handle, domain)?,
        Some(domain) => check_service_handle(&handle, domain)?,
        None => {
            let resolved = state.resolver().resolve_handle(&handle).await.ok();
            if resolved.as_ref() != Some(did) {
                return Err(XrpcError::invalid_request(
                    "External handle did not resolve to DID",
                ));
            }
        }
    }
    let taken = || {
        XrpcError::bad_request(
            ErrorName::HandleNotAvailable,
            format!("Handle already taken: {}", handle.as_str()),
        )
    };
    let holder = state
        .accounts()
        .get_account(AccountRef::Handle(handle.as_str()))
        .await?;
    let previous = state
        .accounts()
        .get_account(AccountRef::Did(did.as_str()))
        .await?
        .ok_or_else(|| XrpcError::invalid_request("Account not found"))?
        .handle;
    match holder {
        Some(account) if account.did != did.as_str() => return Err(taken()),
        // Already ours: only the identity event is sent again, as the reference does.
        Some(_) => {}
        None => {
            if did.method() == "plc" {
                update_plc_handle(state, did, &handle).await?;
            } else {
                let doc = state.resolver().resolve_did(did).await.map_err(|_| {
                    XrpcError::invalid_request("DID is not properly configured for handle")
                })?;
                if doc.handle().as_ref() != Some(&handle) {
                    return Err(XrpcError::invalid_request(
                        "DID is not properly configured for handle",
                    ));
                }
            }
            state
                .accounts()
                .update_handle(did.as_str(), &handle)
                .await
                .map_err(|e| match e {
                    crate::accounts::Error::HandleTaken => taken(),
                    other => other.into(),
                })?;
        }
    }
    state.resolver().purge_did(did);
    state.resolver().purge_handle(&handle);
    if let Some(old) = previous.and_then(|h| h.parse::<Handle>().ok()) {
        state.resolver().purge_handle(&old);
    }
    if let Err(err) = state.repo().sequence_identity(did, Some(&handle)).await {
        tracing::error!(did = did.as_str(), %err, "failed to sequence handle update");
    }
    Ok(handle)
}

/// Submits a PLC update replacing the handle in `alsoKnownAs`, chained on the directory's
/// last operation and signed with the server's rotation key.
async fn update_plc_handle(state: &AppState, did: &Did, handle: &Handle) -> Result<(), XrpcError> {
    let directory = state.resolver().plc();
    let last = directory.get_last_op(did).await.map_err(XrpcError::from)?;
    let changes = PlcChanges {
        handle: Some(handle.clone()),
        ..PlcChanges::default()
    };
    let op = plc::update_op(&last, &changes, state.plc_rotation_key()).map_err(|e| match e {
        plc::OpError::SignerNotRotationKey => XrpcError::invalid_request(
            "This server's rotation key cannot update this DID's PLC document",
        ),
        other => XrpcError::internal(other),
    })?;
    directory.submit(did, &op).await.map_err(XrpcError::from)
}

/// Replaces the `atproto` signing key in `did`'s PLC document
/// (`admin.updateAccountSigningKey`).
pub(crate) async fn update_plc_signing_key(
    state: &AppState,
    did: &Did,
    signing_key: &str,
) -> Result<(), XrpcError> {
    let directory = state.resolver().plc();
    let last = directory.get_last_op(did).await.map_err(XrpcError::from)?;
    let changes = PlcChanges {
        signing_key: Some(signing_key.to_owned()),
        ..PlcChanges::default()
    };
    let op = plc::update_op(&last, &changes, state.plc_rotation_key()).map_err(|e| match e {
        plc::OpError::SignerNotRotationKey => XrpcError::invalid_request(
            "This server's rotation key cannot update this DID's PLC document",
        ),
        other => XrpcError::internal(other),
    })?;
    directory.submit(did, &op).await.map_err(XrpcError::from)?;
    state.resolver().purge_did(did);
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Handle {
        s.parse().unwrap()
    }

    #[test]
    fn service_domains() {
        let domains = vec![".test".to_owned(), ".pds.example.com".to_owned()];
        assert_eq!(service_domain(&h("alice.test"), &domains), Some(".test"));
        assert_eq!(
            service_domain(&h("bob.pds.example.com"), &domains),
            Some(".pds.example.com")
        );
        assert_eq!(
            service_domain(&h("pds.example.com"), &domains),
            Some(".pds.example.com")
        );
        assert_eq!(service_domain(&h("alice.example.org"), &domains), None);
        assert_eq!(service_domain(&h("alicetest.com"), &domains), None);
    }

    #[test]
    fn normalising() {
        assert_eq!(normalize_handle(" Alice.TEST ").unwrap(), h("alice.test"));
        for bad in [
            "alice",
            "-a.test",
            "a..test",
            "alice.test.",
            "al ice.test",
            "",
        ] {
            let err = normalize_handle(bad).unwrap_err();
            assert_eq!(err.error, ErrorName::InvalidHandle, "{bad}");
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let err = normalize_handle("alice.example").unwrap_err();
        assert_eq!(err.message, "Handle TLD is invalid or disallowed");
    }

    #[test]
    fn service_handle_constraints() {
        assert!(check_service_handle(&h("abc.test"), ".test").is_ok());
        assert!(check_service_handle(&h("a23456789012345678.test"), ".test").is_ok());
        let msg = |s: &str| check_service_handle(&h(s), ".test").unwrap_err().message;
        assert_eq!(msg("ab.test"), "Handle too short");
        assert_eq!(msg("a234567890123456789.test"), "Handle too long");
        assert_eq!(msg("a.bcd.test"), "Invalid characters in handle");
        let reserved = check_service_handle(&h("admin.test"), ".test").unwrap_err();
        assert_eq!(
            (reserved.error, reserved.message.as_str()),
            (ErrorName::HandleNotAvailable, "Reserved handle")
        );
        assert!(check_service_handle_shape(&h("admin.test"), ".test").is_ok());
    }
}
