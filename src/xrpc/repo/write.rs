//! `createRecord`, `putRecord`, `deleteRecord` and `applyWrites`.
//!
//! Record preparation follows the reference PDS: a record without `$type` gets the
//! collection; unless `validate` is `false` the `$type` must equal the collection and the
//! record is validated against the catalog. A collection the catalog does not know is
//! accepted with `validationStatus: "unknown"` when `validate` is unset, refused when it is
//! `true`; with `validate: false` nothing is checked and no status is returned.

use axum::Json;
use axum::extract::{Extension, State};
use cid::Cid;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value as Json_;

use super::{parse_cid, parse_field, writable_repo};
use crate::actor::{CommitResult, MAX_WRITES, RecordWrite};
use crate::error::XrpcError;
use crate::lexicon::{Catalog, ValidationErrorKind};
use crate::oauth::scope::RepoAction;
use crate::repo::cbor::{self, Ipld, json_to_record};
use crate::repo::repository::Write;
use crate::server::AppState;
use crate::server::limits::Client;
use crate::syntax::{Did, Nsid, RecordKey, TidClock};
use crate::xrpc::auth::AccessStandard;
use crate::xrpc::extract::XrpcJson;
use crate::xrpc::hub::WriteRejection;

const CREATE: &str = "com.atproto.repo.applyWrites#create";
const UPDATE: &str = "com.atproto.repo.applyWrites#update";
const DELETE: &str = "com.atproto.repo.applyWrites#delete";

/// `"valid"` or `"unknown"`; `None` when validation was skipped.
type Status = Option<&'static str>;

/// `{cid, rev}` of a commit.
#[derive(Debug, Serialize)]
pub struct CommitMeta {
    cid: String,
    rev: String,
}

impl From<&CommitResult> for CommitMeta {
    fn from(c: &CommitResult) -> Self {
        CommitMeta {
            cid: c.cid.to_string(),
            rev: c.rev.clone(),
        }
    }
}

/// Deserialises a present field (even `null`) as `Some(value)`, so a missing field stays
/// `None` through `#[serde(default)]`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateInput {
    repo: String,
    collection: String,
    #[serde(default)]
    rkey: Option<String>,
    #[serde(default)]
    validate: Option<bool>,
    record: Json_,
    #[serde(default)]
    swap_commit: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteOutput {
    uri: String,
    cid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<CommitMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    validation_status: Status,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutInput {
    repo: String,
    collection: String,
    rkey: String,
    #[serde(default)]
    validate: Option<bool>,
    record: Json_,
    /// Present and `null`: the record must not exist.
    #[serde(default, deserialize_with = "present")]
    swap_record: Option<Option<String>>,
    #[serde(default)]
    swap_commit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteInput {
    repo: String,
    collection: String,
    rkey: String,
    #[serde(default)]
    swap_record: Option<String>,
    #[serde(default)]
    swap_commit: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DeleteOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<CommitMeta>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyInput {
    repo: String,
    #[serde(default)]
    validate: Option<bool>,
    writes: Vec<ApplyWrite>,
    #[serde(default)]
    swap_commit: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ApplyWrite {
    #[serde(rename = "$type")]
    kind: String,
    collection: String,
    #[serde(default)]
    rkey: Option<String>,
    #[serde(default)]
    value: Option<Json_>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyOutput {
    commit: CommitMeta,
    results: Vec<ApplyResult>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResult {
    #[serde(rename = "$type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    validation_status: Status,
}

/// A record made ready for the repository: its data-model value and validation status.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) value: Ipld,
    status: Status,
}

/// Sets a missing `$type`, checks it, converts the record and validates it (see the module
/// documentation).
pub(crate) fn prepare_record(
    catalog: &Catalog,
    collection: &Nsid,
    rkey: &RecordKey,
    record: Json_,
    validate: Option<bool>,
) -> Result<Prepared, XrpcError> {
    let Json_::Object(mut object) = record else {
        return Err(XrpcError::invalid_request("Record must be an object"));
    };
    let has_type = match object.get("$type") {
        None | Some(Json_::Null) => false,
        Some(Json_::String(s)) => !s.is_empty(),
        Some(_) => true,
    };
    if !has_type {
        object.insert("$type".to_owned(), Json_::String(collection.to_string()));
    }
    let maybe_validate = validate != Some(false);
    if maybe_validate {
        match object.get("$type") {
            Some(Json_::String(t)) if t == collection.as_str() => {}
            Some(Json_::String(t)) => {
                return Err(XrpcError::invalid_request(format!(
                    "Invalid $type: expected {collection}, got {t}"
                )));
            }
            _ => return Err(XrpcError::invalid_request("Record/$type must be a string")),
        }
    }
    let value = json_to_record(&Json_::Object(object))
        .map_err(|e| XrpcError::invalid_request(format!("Invalid record: {e}")))?;
    if !maybe_validate {
        return Ok(Prepared {
            value,
            status: None,
        });
    }
    let checked = catalog
        .validate_record(collection, &value)
        .and_then(|()| catalog.validate_record_key(collection, rkey));
    let status = match checked {
        Ok(()) => "valid",
        Err(e) if e.kind() == ValidationErrorKind::UnknownSchema => {
            if validate == Some(true) {
                return Err(XrpcError::invalid_request(format!(
                    "Lexicon not found: lex:{collection}"
                )));
            }
            "unknown"
        }
        Err(e) => return Err(XrpcError::invalid_request(e.to_string())),
    };
    Ok(Prepared {
        value,
        status: Some(status),
    })
}

fn parse_swap_commit(value: Option<&str>) -> Result<Option<Cid>, XrpcError> {
    value.map(|v| parse_cid("swapCommit", v)).transpose()
}

/// The record key of a create: the given one, or a fresh TID.
fn create_rkey(clock: &TidClock, rkey: Option<&str>) -> Result<RecordKey, XrpcError> {
    match rkey {
        Some(k) => parse_field("rkey", k),
        None => parse_field("rkey", clock.next().as_str()),
    }
}

fn only_result(commit: &CommitResult) -> Result<(String, Cid), XrpcError> {
    let result = commit
        .results
        .first()
        .ok_or_else(|| XrpcError::internal("commit returned no write result"))?;
    let cid = result
        .cid
        .ok_or_else(|| XrpcError::internal("record write returned no CID"))?;
    Ok((result.uri.to_string(), cid))
}

/// Rate-limit points of a write, as the reference counts them.
const CREATE_POINTS: u32 = 3;
const UPDATE_POINTS: u32 = 2;
const DELETE_POINTS: u32 = 1;

/// Counts `points` against the account's repository-write limits.
fn charge(state: &AppState, client: &Client, did: &Did, points: u32) -> Result<(), WriteRejection> {
    state
        .rate_limits()
        .repo_write(client, did, points)
        .map(|_| ())
        .map_err(WriteRejection::Limited)
}

/// `POST com.atproto.repo.createRecord`
pub async fn create_record(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    AccessStandard(caller): AccessStandard,
    XrpcJson(input): XrpcJson<CreateInput>,
) -> Result<Json<WriteOutput>, WriteRejection> {
    let did = writable_repo(&state, &input.repo, &caller).await?;
    charge(&state, &client, &did, CREATE_POINTS)?;
    let collection: Nsid = parse_field("collection", &input.collection)?;
    caller.require_repo(collection.as_str(), RepoAction::Create)?;
    let swap_commit = parse_swap_commit(input.swap_commit.as_deref())?;
    let rkey = create_rkey(&TidClock::default(), input.rkey.as_deref())?;
    let prepared = prepare_record(
        state.catalog(),
        &collection,
        &rkey,
        input.record,
        input.validate,
    )?;
    let write = Write::Create {
        collection,
        rkey,
        record: prepared.value,
    };
    write_one(&state, &did, write.into(), swap_commit, prepared.status).await
}

/// `POST com.atproto.repo.putRecord`: creates or replaces; an unchanged record makes no
/// commit (and the output has no `commit`).
pub async fn put_record(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    AccessStandard(caller): AccessStandard,
    XrpcJson(input): XrpcJson<PutInput>,
) -> Result<Json<WriteOutput>, WriteRejection> {
    let did = writable_repo(&state, &input.repo, &caller).await?;
    charge(&state, &client, &did, UPDATE_POINTS)?;
    let collection: Nsid = parse_field("collection", &input.collection)?;
    let rkey: RecordKey = parse_field("rkey", &input.rkey)?;
    let swap_commit = parse_swap_commit(input.swap_commit.as_deref())?;
    let swap = match &input.swap_record {
        None => None,
        Some(None) => Some(None),
        Some(Some(s)) => Some(Some(parse_cid("swapRecord", s)?)),
    };
    let prepared = prepare_record(
        state.catalog(),
        &collection,
        &rkey,
        input.record,
        input.validate,
    )?;
    let new_cid = cbor::cid_for_value(&prepared.value)
        .map_err(|e| XrpcError::invalid_request(format!("Invalid record: {e}")))?;
    let current = state
        .repo()
        .get_record(&did, &collection, &rkey, None)
        .await?;
    let action = if current.is_some() {
        RepoAction::Update
    } else {
        RepoAction::Create
    };
    caller.require_repo(collection.as_str(), action)?;
    if let Some(current) = &current
        && current.cid == new_cid
    {
        return Ok(Json(WriteOutput {
            uri: current.uri.clone(),
            cid: new_cid.to_string(),
            commit: None,
            validation_status: prepared.status,
        }));
    }
    let write = if current.is_some() {
        Write::Update {
            collection,
            rkey,
            record: prepared.value,
        }
    } else {
        Write::Create {
            collection,
            rkey,
            record: prepared.value,
        }
    };
    write_one(
        &state,
        &did,
        RecordWrite { write, swap },
        swap_commit,
        prepared.status,
    )
    .await
}

/// Commits one create or update and answers with its record and commit.
async fn write_one(
    state: &AppState,
    did: &Did,
    write: RecordWrite,
    swap_commit: Option<Cid>,
    validation_status: Status,
) -> Result<Json<WriteOutput>, WriteRejection> {
    let commit = state
        .repo()
        .apply_writes(did, vec![write], swap_commit)
        .await?;
    let (uri, cid) = only_result(&commit)?;
    Ok(Json(WriteOutput {
        uri,
        cid: cid.to_string(),
        commit: Some(CommitMeta::from(&commit)),
        validation_status,
    }))
}

/// `POST com.atproto.repo.deleteRecord`: deleting a record that does not exist is a no-op
/// without `commit`.
pub async fn delete_record(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    AccessStandard(caller): AccessStandard,
    XrpcJson(input): XrpcJson<DeleteInput>,
) -> Result<Json<DeleteOutput>, WriteRejection> {
    let did = writable_repo(&state, &input.repo, &caller).await?;
    charge(&state, &client, &did, DELETE_POINTS)?;
    let collection: Nsid = parse_field("collection", &input.collection)?;
    let rkey: RecordKey = parse_field("rkey", &input.rkey)?;
    caller.require_repo(collection.as_str(), RepoAction::Delete)?;
    let swap_commit = parse_swap_commit(input.swap_commit.as_deref())?;
    let swap = input
        .swap_record
        .as_deref()
        .map(|s| parse_cid("swapRecord", s).map(Some))
        .transpose()?;
    let current = state
        .repo()
        .get_record(&did, &collection, &rkey, None)
        .await?;
    if current.is_none() {
        return Ok(Json(DeleteOutput { commit: None }));
    }
    let write = Write::Delete { collection, rkey };
    let writes = vec![RecordWrite { write, swap }];
    let commit = state.repo().apply_writes(&did, writes, swap_commit).await?;
    Ok(Json(DeleteOutput {
        commit: Some(CommitMeta::from(&commit)),
    }))
}

/// `POST com.atproto.repo.applyWrites`: at most [`MAX_WRITES`] writes in one commit.
pub async fn apply_writes(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    AccessStandard(caller): AccessStandard,
    XrpcJson(input): XrpcJson<ApplyInput>,
) -> Result<Json<ApplyOutput>, WriteRejection> {
    if input.writes.len() > MAX_WRITES {
        return Err(
            XrpcError::invalid_request(format!("Too many writes. Max: {MAX_WRITES}")).into(),
        );
    }
    let did = writable_repo(&state, &input.repo, &caller).await?;
    let swap_commit = parse_swap_commit(input.swap_commit.as_deref())?;
    let clock = TidClock::default();
    let mut writes = Vec::with_capacity(input.writes.len());
    let mut statuses = Vec::with_capacity(input.writes.len());
    for w in input.writes {
        let (write, status) = prepare_write(&state, &clock, w, input.validate)?;
        let (collection, action) = match &write {
            Write::Create { collection, .. } => (collection, RepoAction::Create),
            Write::Update { collection, .. } => (collection, RepoAction::Update),
            Write::Delete { collection, .. } => (collection, RepoAction::Delete),
        };
        caller.require_repo(collection.as_str(), action)?;
        writes.push(RecordWrite::from(write));
        statuses.push(status);
    }
    let kinds: Vec<&'static str> = writes
        .iter()
        .map(|w| match w.write {
            Write::Create { .. } => "com.atproto.repo.applyWrites#createResult",
            Write::Update { .. } => "com.atproto.repo.applyWrites#updateResult",
            Write::Delete { .. } => "com.atproto.repo.applyWrites#deleteResult",
        })
        .collect();
    let points = writes
        .iter()
        .map(|w| match w.write {
            Write::Create { .. } => CREATE_POINTS,
            Write::Update { .. } => UPDATE_POINTS,
            Write::Delete { .. } => DELETE_POINTS,
        })
        .sum();
    charge(&state, &client, &did, points)?;
    let commit = state.repo().apply_writes(&did, writes, swap_commit).await?;
    let results = commit
        .results
        .iter()
        .zip(kinds)
        .zip(statuses)
        .map(|((r, kind), status)| match r.cid {
            Some(cid) => ApplyResult {
                kind,
                uri: Some(r.uri.to_string()),
                cid: Some(cid.to_string()),
                validation_status: status,
            },
            None => ApplyResult {
                kind,
                uri: None,
                cid: None,
                validation_status: None,
            },
        })
        .collect();
    Ok(Json(ApplyOutput {
        commit: CommitMeta::from(&commit),
        results,
    }))
}

fn prepare_write(
    state: &AppState,
    clock: &TidClock,
    w: ApplyWrite,
    validate: Option<bool>,
) -> Result<(Write, Status), XrpcError> {
    let collection: Nsid = parse_field("collection", &w.collection)?;
    let value = || {
        w.value
            .clone()
            .ok_or_else(|| XrpcError::invalid_request("Write is missing its value"))
    };
    match w.kind.as_str() {
        CREATE => {
            let rkey = create_rkey(clock, w.rkey.as_deref())?;
            let p = prepare_record(state.catalog(), &collection, &rkey, value()?, validate)?;
            let write = Write::Create {
                collection,
                rkey,
                record: p.value,
            };
            Ok((write, p.status))
        }
        UPDATE => {
            let rkey = required_rkey(w.rkey.as_deref())?;
            let p = prepare_record(state.catalog(), &collection, &rkey, value()?, validate)?;
            let write = Write::Update {
                collection,
                rkey,
                record: p.value,
            };
            Ok((write, p.status))
        }
        DELETE => {
            let rkey = required_rkey(w.rkey.as_deref())?;
            Ok((Write::Delete { collection, rkey }, None))
        }
        other => Err(XrpcError::invalid_request(format!(
            "Invalid write $type {other:?}: expected {CREATE}, {UPDATE} or {DELETE}"
        ))),
    }
}

fn required_rkey(rkey: Option<&str>) -> Result<RecordKey, XrpcError> {
    let rkey = rkey.ok_or_else(|| XrpcError::invalid_request("Write is missing its rkey"))?;
    parse_field("rkey", rkey)
}
