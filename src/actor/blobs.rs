//! Blobs in the life of a repository: tracking uploads, making them permanent when a commit
//! references them, dropping them when the last reference goes, garbage collection and
//! account deletion.
//!
//! # Ordering
//! A commit's blobs are verified and moved to their permanent place *before* the commit's
//! transaction ([`ActorRepo::prepare_blobs`]); the transaction clears their `tempKey` with the
//! records ([`BlobPlan::into_commit`]). So a committed record never points at a blob that is not
//! permanent. If the transaction then fails, the blob is permanent while its row still says
//! temporary: a retry of the commit finds it (making permanent is idempotent), and otherwise
//! the garbage collector removes it after the grace period. To find such rows without
//! visiting every account, the account is *marked* (a small file under
//! `{actors}/`[`PENDING_DIR`]) before anything is moved; the collector sweeps marked accounts
//! and unmarks them once they hold no temporary rows.
//!
//! Blobs that a commit dereferences lose their row in the commit's transaction and their
//! bytes right after it; a failure there is logged (the bytes are then unreachable).
//!
//! Every step that reads or changes an account's `blob` rows holds the account's writer
//! lock, so uploads, commits and the collector never interleave on one account.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use cid::Cid;
use sha2::{Digest, Sha256};

use super::repo::ActorRepo;
use super::stores::ActorHandle;
use super::{Error, Result};
use crate::blobs::{self, BlobStore, TempBlob};
use crate::repo::cbor::{BlobRef, find_blobs};
use crate::repo::repository::Write;
use crate::store::blobs::{self as rows, BlobRow, MissingBlob, NewBlob};
use crate::store::direct::CommitWrite;
use crate::store::records;
use crate::syntax::{AtUri, Did};

/// Directory under the actor stores' root that holds the marks of accounts the garbage
/// collector must sweep (a name no shard directory can have).
pub const PENDING_DIR: &str = "blob-gc-pending";
/// Blob-store moves of one commit run at most this many at once.
const MOVE_CONCURRENCY: usize = 8;
/// Temp uploads and marked accounts looked at per garbage-collection pass.
pub const GC_BATCH: usize = 1000;

/// The blob store as the repository service holds it.
#[derive(Clone)]
pub(super) struct BlobHooks {
    pub(super) store: Arc<dyn BlobStore>,
    pending_dir: PathBuf,
}

impl fmt::Debug for BlobHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobHooks")
            .field("pending_dir", &self.pending_dir)
            .finish_non_exhaustive()
    }
}

impl BlobHooks {
    pub(super) fn new(store: Arc<dyn BlobStore>, actors_root: PathBuf) -> Self {
        BlobHooks {
            store,
            pending_dir: actors_root.join(PENDING_DIR),
        }
    }

    fn mark_path(&self, did: &Did) -> PathBuf {
        self.pending_dir
            .join(hex::encode(Sha256::digest(did.as_str().as_bytes())))
    }

    /// Marks `did` for the collector's row sweep (durably, before any blob is moved).
    async fn mark(&self, did: &Did) -> Result<()> {
        let path = self.mark_path(did);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(());
        }
        tokio::fs::create_dir_all(&self.pending_dir)
            .await
            .map_err(|e| Error::io(&self.pending_dir, e))?;
        tokio::fs::write(&path, did.as_str())
            .await
            .map_err(|e| Error::io(&path, e))
    }

    async fn unmark(&self, did: &Did) -> Result<()> {
        let path = self.mark_path(did);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// The marked accounts (at most `limit`). Unreadable or foreign files are skipped.
    async fn marked(&self, limit: usize) -> Result<Vec<Did>> {
        let mut dir = match tokio::fs::read_dir(&self.pending_dir).await {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.pending_dir, e)),
        };
        let mut found = Vec::new();
        while found.len() < limit {
            let Some(entry) = dir
                .next_entry()
                .await
                .map_err(|e| Error::io(&self.pending_dir, e))?
            else {
                break;
            };
            if let Ok(text) = tokio::fs::read_to_string(entry.path()).await
                && let Ok(did) = text.parse::<Did>()
            {
                found.push(did);
            }
        }
        Ok(found)
    }

    /// Moves uploads to their permanent place, a few at a time. A temp upload that is gone
    /// and was never made permanent is [`Error::BlobNotFound`].
    async fn make_permanent(&self, did: &Did, moves: &[(Cid, String)]) -> Result<()> {
        if moves.is_empty() {
            return Ok(());
        }
        self.mark(did).await?;
        for chunk in moves.chunks(MOVE_CONCURRENCY) {
            let mut pending = Vec::with_capacity(chunk.len());
            for (cid, key) in chunk {
                pending.push(self.store.make_permanent(did, key, cid));
            }
            let results = futures::future::join_all(pending).await;
            for ((cid, _), result) in chunk.iter().zip(results) {
                match result {
                    Ok(()) => {}
                    Err(blobs::Error::NotFound) => return Err(Error::BlobNotFound(*cid)),
                    Err(e) => return Err(Error::Blobs(e)),
                }
            }
        }
        Ok(())
    }

    /// Deletes the bytes of blobs whose rows are gone; failures are logged.
    async fn release(&self, did: &Did, dropped: &[(Cid, Option<String>)]) {
        if dropped.is_empty() {
            return;
        }
        let cids: Vec<Cid> = dropped.iter().map(|(cid, _)| *cid).collect();
        if let Err(err) = self.store.delete_many(did, &cids).await {
            tracing::warn!(%did, error = %err, "deleting dereferenced blobs failed");
        }
        for (cid, key) in dropped {
            if let Some(key) = key
                && let Err(err) = self.store.delete_temp(did, key).await
            {
                tracing::warn!(%did, %cid, error = %err, "deleting a temp upload failed");
            }
        }
    }
}

/// What a commit does to the account's blobs, decided before its transaction.
#[derive(Debug, Default)]
pub(super) struct BlobPlan {
    /// Blobs moved to their permanent place, whose rows the transaction makes permanent.
    made_permanent: Vec<(Cid, String)>,
    /// Blobs referenced by the previous versions of updated or deleted records: their rows
    /// go in the transaction if no record references them any more.
    maybe_dropped: Vec<Cid>,
}

impl BlobPlan {
    /// Puts the plan's changes to the `blob` rows into the commit's transaction (run after
    /// the records index is written there): the rows made permanent, and the rows deleted if
    /// no record references them any more.
    pub(super) fn into_commit(self, commit: &mut CommitWrite) {
        commit.blobs_made_permanent = self.made_permanent;
        commit.blobs_maybe_dropped = self.maybe_dropped;
    }
}

/// What one garbage-collection pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobGcReport {
    /// Temp uploads deleted (never referenced, or replaced by a later upload).
    pub temp_deleted: usize,
    /// Temporary `blob` rows deleted (past the grace period, unreferenced).
    pub rows_deleted: usize,
    /// Accounts whose mark was cleared.
    pub unmarked: usize,
    /// Uploads or accounts that failed (logged; tried again next pass).
    pub failed: usize,
}

/// The lexicon's `datetime` of a moment, as `createdAt` is written.
fn datetime(at: SystemTime) -> String {
    DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl ActorRepo {
    /// The blob store.
    pub fn blob_store(&self) -> &Arc<dyn BlobStore> {
        &self.blob_hooks().store
    }

    /// Records an upload (already in the blob store under `temp.key`) with the MIME type
    /// decided for it, and returns the reference a record should carry.
    ///
    /// An upload of a blob the account already holds permanently is dropped, and the stored
    /// reference returned; a blob that records already reference (a migrated repository)
    /// becomes permanent at once. A taken-down blob cannot be uploaded again. On failure the
    /// upload is deleted.
    pub async fn track_blob(&self, did: &Did, temp: &TempBlob, mime_type: &str) -> Result<BlobRef> {
        let hooks = self.blob_hooks();
        let result = self.track_blob_locked(did, temp, mime_type).await;
        if matches!(result, Err(_) | Ok((_, false)))
            && let Err(err) = hooks.store.delete_temp(did, &temp.key).await
        {
            tracing::warn!(%did, error = %err, "deleting an upload that was not kept failed");
        }
        result.map(|(blob, _)| blob)
    }

    /// Returns the reference and whether the upload under `temp.key` was kept (tracked or
    /// moved).
    async fn track_blob_locked(
        &self,
        did: &Did,
        temp: &TempBlob,
        mime_type: &str,
    ) -> Result<(BlobRef, bool)> {
        let hooks = self.blob_hooks();
        let _writer = self.lock_account(did).await;
        let handle = self.open_required(did).await?;
        let mut conn = handle.pool().acquire().await?;
        let existing = rows::get(&mut conn, &temp.cid).await?;
        if let Some(row) = &existing {
            if row.takedown_ref.is_some() {
                return Err(Error::BlobTakendown(temp.cid));
            }
            if row.temp_key.is_none() {
                return Ok((blob_ref(row), false));
            }
        }
        let created_at = datetime(SystemTime::now());
        rows::put(
            &mut conn,
            &NewBlob {
                cid: &temp.cid,
                mime_type,
                size: temp.size,
                temp_key: Some(&temp.key),
                created_at: &created_at,
            },
        )
        .await?;
        if let Some(old) = existing.as_ref().and_then(|r| r.temp_key.as_deref())
            && old != temp.key
            && let Err(err) = hooks.store.delete_temp(did, old).await
        {
            tracing::warn!(%did, error = %err, "deleting a replaced upload failed");
        }
        if rows::is_referenced(&mut conn, &temp.cid).await? {
            hooks
                .make_permanent(did, &[(temp.cid, temp.key.clone())])
                .await?;
            rows::clear_temp_key(&mut conn, &temp.cid, &temp.key).await?;
        }
        let blob = BlobRef {
            cid: temp.cid,
            mime_type: mime_type.to_owned(),
            size: temp.size,
        };
        Ok((blob, true))
    }

    /// Checks every blob the writes reference against the account's uploads and moves the
    /// temporary ones to their permanent place; notes the blobs that updated and deleted
    /// records referenced. The caller holds the account's writer lock.
    ///
    /// A blob the account never uploaded (or that is taken down) is [`Error::BlobNotFound`];
    /// a reference whose `mimeType` or `size` differs from the upload is
    /// [`Error::BlobMimeMismatch`] / [`Error::BlobSizeMismatch`].
    pub(super) async fn prepare_blobs(
        &self,
        handle: &ActorHandle,
        writes: &[Write],
    ) -> Result<BlobPlan> {
        let did = handle.did();
        let mut referenced: BTreeMap<Cid, Vec<BlobRef>> = BTreeMap::new();
        let mut replaced = Vec::new();
        for write in writes {
            match write {
                Write::Create { record, .. } => {
                    for blob in find_blobs(record) {
                        referenced.entry(blob.cid).or_default().push(blob);
                    }
                }
                Write::Update { record, .. } => {
                    for blob in find_blobs(record) {
                        referenced.entry(blob.cid).or_default().push(blob);
                    }
                    replaced.push(record_uri(did, write));
                }
                Write::Delete { .. } => replaced.push(record_uri(did, write)),
            }
        }
        let mut plan = BlobPlan::default();
        if referenced.is_empty() && replaced.is_empty() {
            return Ok(plan);
        }
        let mut conn = handle.pool().acquire().await?;
        let mut maybe_dropped = BTreeSet::new();
        for uri in &replaced {
            maybe_dropped.extend(records::blobs_of(&mut conn, uri.as_str()).await?);
        }
        plan.maybe_dropped = maybe_dropped.into_iter().collect();
        for (cid, refs) in &referenced {
            let row = rows::get(&mut conn, cid)
                .await?
                .filter(|row| row.takedown_ref.is_none())
                .ok_or(Error::BlobNotFound(*cid))?;
            for blob in refs {
                if blob.mime_type != row.mime_type {
                    return Err(Error::BlobMimeMismatch {
                        expected: row.mime_type.clone(),
                        got: blob.mime_type.clone(),
                    });
                }
                if blob.size != row.size {
                    return Err(Error::BlobSizeMismatch {
                        expected: row.size,
                        got: blob.size,
                    });
                }
            }
            if let Some(key) = row.temp_key {
                plan.made_permanent.push((*cid, key));
            }
        }
        drop(conn);
        self.blob_hooks()
            .make_permanent(did, &plan.made_permanent)
            .await?;
        Ok(plan)
    }

    /// Deletes the bytes of the blobs a committed transaction dropped.
    pub(super) async fn release_blobs(&self, did: &Did, dropped: &[(Cid, Option<String>)]) {
        self.blob_hooks().release(did, dropped).await;
    }

    /// Deletes every blob of `did` from the blob store and its garbage-collection mark.
    pub(super) async fn destroy_blobs(&self, did: &Did) -> Result<()> {
        let hooks = self.blob_hooks();
        hooks.store.delete_all(did).await?;
        hooks.unmark(did).await
    }

    /// The blob `cid` of `did` if it is stored, not taken down, and permanent.
    pub async fn blob_metadata(&self, did: &Did, cid: &Cid) -> Result<Option<BlobRow>> {
        let handle = self.open_required(did).await?;
        let mut conn = handle.pool().acquire().await?;
        Ok(rows::get(&mut conn, cid)
            .await?
            .filter(|row| row.takedown_ref.is_none() && row.temp_key.is_none()))
    }

    /// `listBlobs`: see [`rows::list_referenced`].
    pub async fn list_blobs(
        &self,
        did: &Did,
        since: Option<&str>,
        cursor: Option<&Cid>,
        limit: u32,
    ) -> Result<Vec<Cid>> {
        let handle = self.open_required(did).await?;
        let mut conn = handle.pool().acquire().await?;
        Ok(rows::list_referenced(&mut conn, since, cursor, limit).await?)
    }

    /// `listMissingBlobs`: see [`rows::list_missing`].
    pub async fn list_missing_blobs(
        &self,
        did: &Did,
        cursor: Option<&Cid>,
        limit: u32,
    ) -> Result<Vec<MissingBlob>> {
        let handle = self.open_required(did).await?;
        let mut conn = handle.pool().acquire().await?;
        Ok(rows::list_missing(&mut conn, cursor, limit).await?)
    }

    /// One garbage-collection pass: deletes temp uploads written more than `grace` ago that
    /// no temporary row of a still-unreferenced blob holds within the grace period, and, in
    /// marked accounts, temporary rows older than `grace` that no record references (with
    /// their temp and permanent bytes). Looks at up to [`GC_BATCH`] uploads and accounts.
    pub async fn collect_blob_garbage(&self, grace: Duration) -> Result<BlobGcReport> {
        let hooks = self.blob_hooks();
        let now = SystemTime::now();
        let cutoff = now.checked_sub(grace).unwrap_or(SystemTime::UNIX_EPOCH);
        let cutoff_text = datetime(cutoff);
        let mut report = BlobGcReport::default();
        for entry in hooks.store.list_temp_older_than(cutoff, GC_BATCH).await? {
            match self
                .collect_temp(&entry.did, &entry.key, &cutoff_text)
                .await
            {
                Ok(deleted) => report.temp_deleted += usize::from(deleted),
                Err(err) => {
                    report.failed += 1;
                    tracing::warn!(did = %entry.did, error = %err, "collecting a temp upload failed");
                }
            }
        }
        for did in hooks.marked(GC_BATCH).await? {
            match self.sweep_account(&did, &cutoff_text).await {
                Ok((deleted, unmarked)) => {
                    report.rows_deleted += deleted;
                    report.unmarked += usize::from(unmarked);
                }
                Err(err) => {
                    report.failed += 1;
                    tracing::warn!(%did, error = %err, "sweeping temporary blobs failed");
                }
            }
        }
        Ok(report)
    }

    /// Deletes the temp upload `key` of `did` unless a row within the grace period (or
    /// referenced) holds it. Returns whether it was deleted.
    async fn collect_temp(&self, did: &Did, key: &str, cutoff: &str) -> Result<bool> {
        let hooks = self.blob_hooks();
        let _writer = self.lock_account(did).await;
        if let Some(handle) = self.stores().open(did).await? {
            let mut conn = handle.pool().acquire().await?;
            if let Some(row) = rows::get_by_temp_key(&mut conn, key).await? {
                if row.created_at.as_str() > cutoff
                    || rows::is_referenced(&mut conn, &row.cid).await?
                {
                    return Ok(false);
                }
                hooks.store.delete_temp(did, key).await?;
                hooks.store.delete(did, &row.cid).await?;
                rows::delete_if_unreferenced(&mut conn, &row.cid).await?;
                return Ok(true);
            }
        }
        hooks.store.delete_temp(did, key).await?;
        Ok(true)
    }

    /// Deletes `did`'s expired unreferenced temporary rows and their bytes, and clears its
    /// mark when no temporary row is left. Returns (rows deleted, unmarked).
    async fn sweep_account(&self, did: &Did, cutoff: &str) -> Result<(usize, bool)> {
        let hooks = self.blob_hooks();
        let _writer = self.lock_account(did).await;
        let Some(handle) = self.stores().open(did).await? else {
            hooks.unmark(did).await?;
            return Ok((0, true));
        };
        let mut conn = handle.pool().acquire().await?;
        let expired = rows::expired_temp(&mut conn, cutoff, GC_BATCH as u32).await?;
        let mut deleted = 0;
        for row in &expired {
            if let Some(key) = &row.temp_key {
                hooks.store.delete_temp(did, key).await?;
            }
            hooks.store.delete(did, &row.cid).await?;
            if rows::delete_if_unreferenced(&mut conn, &row.cid)
                .await?
                .is_some()
            {
                deleted += 1;
            }
        }
        let unmarked = rows::count_temp(&mut conn).await? == 0;
        if unmarked {
            hooks.unmark(did).await?;
        }
        Ok((deleted, unmarked))
    }
}

fn blob_ref(row: &BlobRow) -> BlobRef {
    BlobRef {
        cid: row.cid,
        mime_type: row.mime_type.clone(),
        size: row.size,
    }
}

/// The AT-URI of a write's record.
fn record_uri(did: &Did, write: &Write) -> AtUri {
    let (collection, rkey) = match write {
        Write::Create {
            collection, rkey, ..
        }
        | Write::Update {
            collection, rkey, ..
        }
        | Write::Delete { collection, rkey } => (collection, rkey),
    };
    AtUri::for_record(did.clone(), collection.clone(), rkey.clone())
}
