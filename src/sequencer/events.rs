//! Firehose message bodies (`com.atproto.sync.subscribeRepos`), encoded as DAG-CBOR.
//!
//! A body is built once, when its event happens, and stored **without `seq`**: the sequence
//! number is only known when the event enters `repo_seq`, and an outbox event is written
//! before that. [`with_seq`] adds it when the event is framed for a subscriber, by splicing
//! the `seq` entry into the encoded map at its canonical place (see [`super::splice`]).
//! `time` is set when the body is built: for a commit, the time of the commit.
//!
//! Sync 1.1 limits (atproto sync spec; proposal 0006): at most [`MAX_COMMIT_OPS`] operations
//! per `#commit` and at most [`MAX_COMMIT_BLOCKS_LEN`] bytes of `blocks`. The writer refuses
//! batches of more operations before committing. A commit whose block CAR still comes out
//! larger is announced with a `#sync` event instead: `tooBig` is deprecated and hosts must not
//! emit commits with it set, and `#sync` ("this is the current state of the repository") is
//! the message the spec provides for a new state a `#commit` cannot carry. So `tooBig` and
//! `rebase` are always `false` and `blobs` always empty.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use cid::Cid;

use crate::repo::car::write_car_bytes;
use crate::repo::cbor::{self, Ipld};
use crate::repo::mst::RecordOp;
use crate::repo::repository::CommitData;

/// Most record operations in one `#commit` (lexicon `maxLength` of `ops`).
pub(crate) const MAX_COMMIT_OPS: usize = 200;
/// Largest `blocks` CAR of a `#commit`, in bytes (lexicon `maxLength` of `blocks`).
pub(crate) const MAX_COMMIT_BLOCKS_LEN: usize = 2_000_000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("event body encoding failed: {0}")]
    Cbor(#[from] cbor::Error),
    #[error("commit block {0} is not among the commit's blocks")]
    MissingCommitBlock(Cid),
    #[error("stored event body is not a DAG-CBOR map")]
    NotAMap,
    #[error(transparent)]
    Splice(#[from] super::splice::Error),
    #[error("unknown event type {0:?}")]
    UnknownType(String),
}

/// The message types a PDS emits (`#info` is a transport message, never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Commit,
    Sync,
    Identity,
    Account,
}

impl EventType {
    /// The stored name (`eventType` columns): the lexicon def name without `#`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Commit => "commit",
            EventType::Sync => "sync",
            EventType::Identity => "identity",
            EventType::Account => "account",
        }
    }

    /// The frame header's `t`, e.g. `#commit`.
    pub fn wire_name(self) -> &'static str {
        match self {
            EventType::Commit => "#commit",
            EventType::Sync => "#sync",
            EventType::Identity => "#identity",
            EventType::Account => "#account",
        }
    }
}

impl std::str::FromStr for EventType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "commit" => Ok(EventType::Commit),
            "sync" => Ok(EventType::Sync),
            "identity" => Ok(EventType::Identity),
            "account" => Ok(EventType::Account),
            other => Err(Error::UnknownType(other.to_owned())),
        }
    }
}

/// An encoded event body (without `seq`) and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event_type: EventType,
    pub body: Vec<u8>,
}

/// The current time as the lexicon's `datetime`: RFC 3339, UTC, milliseconds.
pub(crate) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The time `ago` before now, formatted as [`now`] (so it compares with stored times as
/// text). A span too large for the calendar gives the earliest representable time.
pub(crate) fn time_before(ago: std::time::Duration) -> String {
    let now = Utc::now();
    chrono::TimeDelta::from_std(ago)
        .ok()
        .and_then(|delta| now.checked_sub_signed(delta))
        .map_or_else(
            || "0000-01-01T00:00:00.000Z".to_owned(),
            |t| t.to_rfc3339_opts(SecondsFormat::Millis, true),
        )
}

fn string(s: &str) -> Ipld {
    Ipld::String(s.to_owned())
}

fn encode(fields: BTreeMap<String, Ipld>, event_type: EventType) -> Result<Event, Error> {
    Ok(Event {
        event_type,
        body: cbor::encode(&Ipld::Map(fields))?,
    })
}

/// One `#repoOp`: `cid` is null for deletes; `prev` is present for updates and deletes only.
fn repo_op(op: &RecordOp) -> Ipld {
    let (action, path, cid, prev) = match op {
        RecordOp::Create { key, cid } => ("create", key, Ipld::Link(*cid), None),
        RecordOp::Update { key, prev, cid } => ("update", key, Ipld::Link(*cid), Some(*prev)),
        RecordOp::Delete { key, prev } => ("delete", key, Ipld::Null, Some(*prev)),
    };
    let mut fields = BTreeMap::from([
        ("action".to_owned(), string(action)),
        ("path".to_owned(), string(path)),
        ("cid".to_owned(), cid),
    ]);
    if let Some(prev) = prev {
        fields.insert("prev".to_owned(), Ipld::Link(prev));
    }
    Ipld::Map(fields)
}

/// The event announcing a commit: a `#commit` with the commit's relevant blocks (new blocks
/// plus the covering proof, enough for a relay to invert the operations back to `prevData`),
/// or, when those blocks exceed [`MAX_COMMIT_BLOCKS_LEN`] or the commit has more than
/// [`MAX_COMMIT_OPS`] operations, a `#sync` carrying just the commit (see the module docs).
pub(crate) async fn commit_event(data: &CommitData, time: &str) -> Result<Event, Error> {
    if data.ops.len() <= MAX_COMMIT_OPS {
        // Collected first: an iterator with a borrowing closure held across the await would
        // make this future not provably `Send`.
        let blocks: Vec<(Cid, Bytes)> = data
            .relevant_blocks
            .iter()
            .map(|(cid, bytes)| (*cid, bytes.clone()))
            .collect();
        let car = write_car_bytes(data.cid, blocks).await;
        if car.len() <= MAX_COMMIT_BLOCKS_LEN {
            return commit_body(data, car, time);
        }
    }
    let block = data
        .new_blocks
        .get(&data.cid)
        .ok_or(Error::MissingCommitBlock(data.cid))?;
    sync_event(&data.did, &data.cid, block, &data.rev, time).await
}

fn commit_body(data: &CommitData, car: Vec<u8>, time: &str) -> Result<Event, Error> {
    let mut fields = BTreeMap::from([
        ("rebase".to_owned(), Ipld::Bool(false)),
        ("tooBig".to_owned(), Ipld::Bool(false)),
        ("repo".to_owned(), string(&data.did)),
        ("commit".to_owned(), Ipld::Link(data.cid)),
        ("rev".to_owned(), string(&data.rev)),
        (
            "since".to_owned(),
            data.since.as_deref().map_or(Ipld::Null, string),
        ),
        ("blocks".to_owned(), Ipld::Bytes(car)),
        (
            "ops".to_owned(),
            Ipld::List(data.ops.iter().map(repo_op).collect()),
        ),
        ("blobs".to_owned(), Ipld::List(Vec::new())),
        ("time".to_owned(), string(time)),
    ]);
    // Absent (not null) before the first commit: the lexicon field is optional, not nullable.
    if let Some(prev_data) = data.prev_data {
        fields.insert("prevData".to_owned(), Ipld::Link(prev_data));
    }
    encode(fields, EventType::Commit)
}

/// A `#sync` event: the repository of `did` is now at the commit `commit_cid` (whose block is
/// `commit_block`) with revision `rev`. `blocks` is a CAR holding only the commit block.
pub(crate) async fn sync_event(
    did: &str,
    commit_cid: &Cid,
    commit_block: &Bytes,
    rev: &str,
    time: &str,
) -> Result<Event, Error> {
    let car = write_car_bytes(*commit_cid, [(*commit_cid, commit_block.clone())]).await;
    let fields = BTreeMap::from([
        ("did".to_owned(), string(did)),
        ("blocks".to_owned(), Ipld::Bytes(car)),
        ("rev".to_owned(), string(rev)),
        ("time".to_owned(), string(time)),
    ]);
    encode(fields, EventType::Sync)
}

/// An `#identity` event: consumers should refresh `did`'s identity. `handle` is the current
/// handle if known (the field is optional).
pub(crate) fn identity_event(did: &str, handle: Option<&str>, time: &str) -> Result<Event, Error> {
    let mut fields = BTreeMap::from([
        ("did".to_owned(), string(did)),
        ("time".to_owned(), string(time)),
    ]);
    if let Some(handle) = handle {
        fields.insert("handle".to_owned(), string(handle));
    }
    encode(fields, EventType::Identity)
}

/// An `#account` event: the hosting status of `did` here. `status` says why an inactive
/// account is inactive (`takendown`, `suspended`, `deleted`, `deactivated`, `desynchronized`,
/// `throttled`); it is left out when `active` is true, as the reference does.
pub(crate) fn account_event(
    did: &str,
    active: bool,
    status: Option<&str>,
    time: &str,
) -> Result<Event, Error> {
    let mut fields = BTreeMap::from([
        ("did".to_owned(), string(did)),
        ("active".to_owned(), Ipld::Bool(active)),
        ("time".to_owned(), string(time)),
    ]);
    if let (false, Some(status)) = (active, status) {
        fields.insert("status".to_owned(), string(status));
    }
    encode(fields, EventType::Account)
}

/// The full message body: a stored body with its sequence number added.
#[cfg(test)]
pub(crate) fn with_seq(body: &[u8], seq: i64) -> Result<Vec<u8>, Error> {
    Ok(super::splice::with_seq(body, seq)?)
}

#[cfg(test)]
pub(crate) mod tests;
