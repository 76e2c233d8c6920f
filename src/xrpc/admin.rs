//! `com.atproto.admin.*` moderation routes, behind the admin password (HTTP basic auth):
//! taking accounts, records and blobs down, and reading their status back.
//!
//! An account's takedown or deactivation ends its sessions (takedown) and is announced on the
//! firehose with an `#account` event carrying the resulting status, as the reference does.
//! Unlike the reference, which answers 200 for a subject it does not hold, an unknown account,
//! repository, record or blob is answered with 400 `NotFound`, as `getSubjectStatus` does.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use cid::Cid;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::AdminAuth;
use super::extract::{XrpcJson, XrpcQuery};
use crate::account_service::{self, StatusChange};
use crate::accounts::AccountRef;
use crate::actor::ActorHandle;
use crate::error::{ErrorName, XrpcError};
use crate::server::AppState;
use crate::store::{blobs as blob_rows, records, sqlite};
use crate::syntax::{AtIdentifier, AtUri, Did};

const REPO_REF: &str = "com.atproto.admin.defs#repoRef";
const STRONG_REF: &str = "com.atproto.repo.strongRef";
const REPO_BLOB_REF: &str = "com.atproto.admin.defs#repoBlobRef";

/// The admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/xrpc/com.atproto.admin.updateSubjectStatus",
            post(update_subject_status),
        )
        .route(
            "/xrpc/com.atproto.admin.getSubjectStatus",
            get(get_subject_status),
        )
        .merge(super::admin_accounts::routes())
}

/// `com.atproto.admin.defs#statusAttr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StatusAttr {
    applied: bool,
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
}

impl StatusAttr {
    fn from_ref(reference: Option<String>) -> Self {
        StatusAttr {
            applied: reference.is_some(),
            reference,
        }
    }

    /// The takedown reference to store: the given one, else the current time (as the
    /// reference); `None` when the takedown is lifted.
    fn takedown_ref(&self) -> Option<String> {
        self.applied.then(|| {
            self.reference
                .clone()
                .unwrap_or_else(|| Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true))
        })
    }
}

/// The subject union of `updateSubjectStatus`, parsed.
#[derive(Debug)]
enum Subject {
    Repo(Did),
    Record { did: Did, uri: AtUri },
    Blob { did: Did, cid: Cid },
}

fn field<'a>(subject: &'a Value, name: &str) -> Result<&'a str, XrpcError> {
    subject[name]
        .as_str()
        .ok_or_else(|| XrpcError::invalid_request(format!("subject must have a string {name}")))
}

fn parse_did(value: &str) -> Result<Did, XrpcError> {
    value
        .parse()
        .map_err(|e| XrpcError::invalid_request(format!("Invalid did {value:?}: {e}")))
}

fn parse_cid(value: &str) -> Result<Cid, XrpcError> {
    Cid::try_from(value).map_err(|_| XrpcError::invalid_request(format!("Invalid cid {value:?}")))
}

/// A record URI: a DID authority, a collection and a record key.
fn parse_record_uri(value: &str) -> Result<(Did, AtUri), XrpcError> {
    let uri: AtUri = value
        .parse()
        .map_err(|e| XrpcError::invalid_request(format!("Invalid uri {value:?}: {e}")))?;
    let AtIdentifier::Did(did) = uri.authority() else {
        return Err(XrpcError::invalid_request(
            "uri must name a repository by DID",
        ));
    };
    if uri.rkey().is_none() {
        return Err(XrpcError::invalid_request("uri must name a record"));
    }
    Ok((did.clone(), uri))
}

fn parse_subject(subject: &Value) -> Result<Subject, XrpcError> {
    match subject["$type"].as_str() {
        Some(REPO_REF) => Ok(Subject::Repo(parse_did(field(subject, "did")?)?)),
        Some(t) if t == STRONG_REF || t == "com.atproto.repo.strongRef#main" => {
            let (did, uri) = parse_record_uri(field(subject, "uri")?)?;
            parse_cid(field(subject, "cid")?)?;
            Ok(Subject::Record { did, uri })
        }
        Some(REPO_BLOB_REF) => {
            let did = parse_did(field(subject, "did")?)?;
            let cid = parse_cid(field(subject, "cid")?)?;
            if !subject["recordUri"].is_null() {
                parse_record_uri(field(subject, "recordUri")?)?;
            }
            Ok(Subject::Blob { did, cid })
        }
        _ => Err(XrpcError::invalid_request("Invalid subject")),
    }
}

fn subject_not_found() -> XrpcError {
    XrpcError::bad_request(ErrorName::NotFound, "Subject not found")
}

/// The account store of `did`, if it has one.
async fn actor_store(state: &AppState, did: &Did) -> Result<ActorHandle, XrpcError> {
    state
        .repo()
        .stores()
        .open(did)
        .await
        .map_err(XrpcError::internal)?
        .ok_or_else(subject_not_found)
}

#[derive(Deserialize)]
struct UpdateInput {
    subject: Value,
    takedown: Option<StatusAttr>,
    deactivated: Option<StatusAttr>,
}

/// `com.atproto.admin.updateSubjectStatus`.
async fn update_subject_status(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<UpdateInput>,
) -> Result<Json<Value>, XrpcError> {
    match parse_subject(&input.subject)? {
        Subject::Repo(did) => {
            update_account(
                &state,
                &did,
                input.takedown.as_ref(),
                input.deactivated.as_ref(),
            )
            .await?
        }
        Subject::Record { did, uri } => {
            if let Some(takedown) = &input.takedown {
                let handle = actor_store(&state, &did).await?;
                let mut conn = handle.pool().acquire().await.map_err(XrpcError::internal)?;
                let reference = takedown.takedown_ref();
                if !records::set_takedown(&mut conn, uri.as_str(), reference.as_deref())
                    .await
                    .map_err(XrpcError::internal)?
                {
                    return Err(subject_not_found());
                }
            }
        }
        Subject::Blob { did, cid } => {
            if let Some(takedown) = &input.takedown {
                update_blob(&state, &did, &cid, takedown).await?;
            }
        }
    }
    let mut output = json!({ "subject": input.subject });
    if let Some(takedown) = input.takedown {
        output["takedown"] = json!(takedown);
    }
    Ok(Json(output))
}

/// Applies a takedown and/or deactivation to an account
/// ([`crate::account_service::AccountService::change_status`]).
async fn update_account(
    state: &AppState,
    did: &Did,
    takedown: Option<&StatusAttr>,
    deactivated: Option<&StatusAttr>,
) -> Result<(), XrpcError> {
    let change = StatusChange {
        takedown: takedown.map(StatusAttr::takedown_ref),
        deactivated: deactivated.map(|attr| attr.applied),
    };
    state
        .account_service()
        .change_status(did, change)
        .await
        .map_err(|err| match err {
            account_service::Error::Accounts(crate::accounts::Error::AccountNotFound) => {
                subject_not_found()
            }
            other => other.into(),
        })
}

/// Sets or lifts a blob's takedown and moves its bytes into or out of quarantine, in one
/// actor-store transaction (a failing move leaves the row as it was). A blob whose bytes are
/// not in the permanent store (still a temp upload) has only its row changed.
async fn update_blob(
    state: &AppState,
    did: &Did,
    cid: &Cid,
    takedown: &StatusAttr,
) -> Result<(), XrpcError> {
    let handle = actor_store(state, did).await?;
    let mut tx = sqlite::begin_write(handle.pool())
        .await
        .map_err(XrpcError::internal)?;
    let reference = takedown.takedown_ref();
    if !blob_rows::set_takedown(&mut tx, cid, reference.as_deref())
        .await
        .map_err(XrpcError::internal)?
    {
        return Err(subject_not_found());
    }
    let moved = if takedown.applied {
        state.blobs().quarantine(did, cid).await
    } else {
        state.blobs().unquarantine(did, cid).await
    };
    match moved {
        Ok(()) | Err(crate::blobs::Error::NotFound) => {}
        Err(err) => return Err(XrpcError::internal(err)),
    }
    tx.commit().await.map_err(XrpcError::internal)
}

#[derive(Deserialize)]
struct StatusParams {
    did: Option<String>,
    uri: Option<String>,
    blob: Option<String>,
}

/// `com.atproto.admin.getSubjectStatus`: a blob (with `did`), else a record, else an account.
async fn get_subject_status(
    _admin: AdminAuth,
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<StatusParams>,
) -> Result<Json<Value>, XrpcError> {
    if let Some(blob) = &params.blob {
        let did = params
            .did
            .as_deref()
            .ok_or_else(|| XrpcError::invalid_request("Must provide a did to request blob state"))
            .and_then(parse_did)?;
        let cid = parse_cid(blob)?;
        let handle = actor_store(&state, &did).await?;
        let mut conn = handle.pool().acquire().await.map_err(XrpcError::internal)?;
        let row = blob_rows::get(&mut conn, &cid)
            .await
            .map_err(XrpcError::internal)?
            .ok_or_else(subject_not_found)?;
        return Ok(Json(json!({
            "subject": { "$type": REPO_BLOB_REF, "did": did.as_str(), "cid": blob },
            "takedown": StatusAttr::from_ref(row.takedown_ref),
        })));
    }
    if let Some(uri) = &params.uri {
        let (did, uri) = parse_record_uri(uri)?;
        let handle = actor_store(&state, &did).await?;
        let mut conn = handle.pool().acquire().await.map_err(XrpcError::internal)?;
        let (cid, takedown_ref) = records::takedown_status(&mut conn, uri.as_str())
            .await
            .map_err(XrpcError::internal)?
            .ok_or_else(subject_not_found)?;
        return Ok(Json(json!({
            "subject": { "$type": STRONG_REF, "uri": uri.as_str(), "cid": cid.to_string() },
            "takedown": StatusAttr::from_ref(takedown_ref),
        })));
    }
    let Some(did) = &params.did else {
        return Err(XrpcError::invalid_request("No provided subject"));
    };
    let did = parse_did(did)?;
    let account = state
        .accounts()
        .get_account(AccountRef::Did(did.as_str()))
        .await?
        .ok_or_else(subject_not_found)?;
    Ok(Json(json!({
        "subject": { "$type": REPO_REF, "did": did.as_str() },
        "takedown": StatusAttr::from_ref(account.takedown_ref),
        "deactivated": { "applied": account.deactivated_at.is_some() },
    })))
}
