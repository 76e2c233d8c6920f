//! Reads of [`ActorRepo`]: records and the head. They take no writer lock: each is one
//! query on a pooled connection and sees the last committed state (WAL readers run beside a
//! writer).

use bytes::Bytes;
use cid::Cid;

use super::repo::ActorRepo;
use super::stores::ActorHandle;
use super::{Error, Result};
use crate::repo::cbor::{self, Ipld};
use crate::store::direct::RecordJson;
use crate::store::records::{self, StoredRecord};
use crate::store::root::RepoRoot;
use crate::store::stats::{self, StoreCounts};
use crate::syntax::{Did, Nsid, RecordKey};

/// Export chunks waiting for the socket (at about 256 KiB each).
const EXPORT_BUFFERED_CHUNKS: usize = 4;

/// A record as read from the index.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordEntry {
    /// `at://<did>/<collection>/<rkey>`.
    pub uri: String,
    pub cid: Cid,
    pub value: Ipld,
    /// When this version was written (RFC 3339, UTC).
    pub indexed_at: String,
}

/// One page of [`ActorRepo::list_records`] (records with their values) or
/// [`ActorRepo::list_records_json`] (`RecordPage<RecordJson>`).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage<T = RecordEntry> {
    pub records: Vec<T>,
    /// The last record's key, to pass as the next page's cursor; `None` when the page is
    /// empty (the reference returns a cursor with every non-empty page).
    pub cursor: Option<String>,
}

fn entry(record: StoredRecord) -> Result<RecordEntry> {
    Ok(RecordEntry {
        value: cbor::decode(&record.content).map_err(Error::StoredRecord)?,
        uri: record.uri,
        cid: record.cid,
        indexed_at: record.indexed_at,
    })
}

impl ActorRepo {
    /// The record at `collection/rkey` (with `cid`: only that version), unless it is absent
    /// or taken down.
    pub async fn get_record(
        &self,
        did: &Did,
        collection: &Nsid,
        rkey: &RecordKey,
        cid: Option<&Cid>,
    ) -> Result<Option<RecordEntry>> {
        let handle = self.open_required(did).await?;
        let record = handle
            .direct()
            .record(collection.to_string(), rkey.to_string(), cid.copied())
            .await?;
        record.map(entry).transpose()
    }

    /// A page of `collection`'s records (taken-down ones left out), by record key:
    /// descending, or ascending with `reverse`; after `cursor` (a record key from a previous
    /// page) in that order; `limit` clamped to 1..=100.
    pub async fn list_records(
        &self,
        did: &Did,
        collection: &Nsid,
        limit: u32,
        cursor: Option<&str>,
        reverse: bool,
    ) -> Result<RecordPage> {
        let handle = self.open_required(did).await?;
        let rows = handle
            .direct()
            .list_records(
                collection.to_string(),
                limit,
                cursor.map(str::to_owned),
                reverse,
            )
            .await?;
        let cursor = rows.last().map(|r| r.rkey.clone());
        let records = rows.into_iter().map(entry).collect::<Result<_>>()?;
        Ok(RecordPage { records, cursor })
    }

    /// [`ActorRepo::get_record`] with the value as atproto JSON text, transcoded straight from
    /// the stored block (the `getRecord` hot path: no value is built).
    pub async fn get_record_json(
        &self,
        did: &Did,
        collection: &Nsid,
        rkey: &RecordKey,
        cid: Option<&Cid>,
    ) -> Result<Option<RecordJson>> {
        let handle = self.open_required(did).await?;
        Ok(handle
            .direct()
            .record_json(collection.to_string(), rkey.to_string(), cid.copied())
            .await?)
    }

    /// [`ActorRepo::list_records`] with the values as atproto JSON text (the `listRecords`
    /// hot path).
    pub async fn list_records_json(
        &self,
        did: &Did,
        collection: &Nsid,
        limit: u32,
        cursor: Option<&str>,
        reverse: bool,
    ) -> Result<RecordPage<RecordJson>> {
        let handle = self.open_required(did).await?;
        let records = handle
            .direct()
            .list_records_json(
                collection.to_string(),
                limit,
                cursor.map(str::to_owned),
                reverse,
            )
            .await?;
        let cursor = records.last().map(|r| r.rkey.clone());
        Ok(RecordPage { records, cursor })
    }

    /// The collections of `did`'s repository that hold records, sorted.
    pub async fn describe_collections(&self, did: &Did) -> Result<Vec<String>> {
        let handle = self.open_required(did).await?;
        let mut conn = handle.pool().acquire().await?;
        Ok(records::collections(&mut conn).await?)
    }

    /// The head of `did`'s repository.
    pub async fn current_root(&self, did: &Did) -> Result<RepoRoot> {
        let handle = self.open_required(did).await?;
        handle
            .direct()
            .head()
            .await?
            .ok_or_else(|| Error::RepoNotFound(did.to_string()))
    }

    /// `did`'s repository as a CAR (`getRepo`), streamed in chunks of about
    /// [`EXPORT_CHUNK`](crate::store::direct::EXPORT_CHUNK) bytes from one read transaction of
    /// the store (see [`DirectDb::export_car`](crate::store::direct::DirectDb::export_car)):
    /// the head commit, then the blocks written after `since` (all without it). A few chunks
    /// are buffered; a slow reader slows the export. A failure after the first chunk ends the
    /// stream with an error item, which truncates the body (no reader accepts it).
    pub fn export_car(
        &self,
        handle: &ActorHandle,
        since: Option<String>,
    ) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        let (tx, mut rx) = tokio::sync::mpsc::channel(EXPORT_BUFFERED_CHUNKS);
        let direct = handle.direct().clone();
        // The handle keeps the account's store open for the whole export.
        let handle = handle.clone();
        tokio::spawn(async move {
            if let Err(err) = direct.export_car(since, tx.clone()).await {
                tracing::warn!(did = %handle.did(), "getRepo export failed: {err}");
                let _ = tx.send(Err(std::io::Error::other(err.to_string()))).await;
            }
            drop(handle);
        });
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    /// How much `did`'s store holds (`checkAccountStatus`).
    pub async fn store_counts(&self, did: &Did) -> Result<StoreCounts> {
        let handle = self.open_required(did).await?;
        let mut conn = handle.pool().acquire().await?;
        Ok(stats::counts(&mut conn).await?)
    }
}
