//! The account's blobs (`blob`) and the queries over blob references (`record_blob`) that
//! `listBlobs` and `listMissingBlobs` answer.
//!
//! A row is *temporary* while `tempKey` is set: the bytes wait in the blob store's temporary
//! area under that key. Clearing `tempKey` (in the transaction of the commit that first
//! references the blob) makes the row permanent. CIDs are binary, as in the whole actor store,
//! so paging is in CID byte order.

use cid::Cid;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{Error, cid_from_column};

/// Most CIDs one page of [`list_referenced`] or [`list_missing`] returns.
pub(crate) const MAX_LIST_LIMIT: u32 = 1000;

/// A `blob` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRow {
    pub cid: Cid,
    pub mime_type: String,
    pub size: u64,
    /// Set while the blob is only uploaded, not yet referenced by a committed record.
    pub temp_key: Option<String>,
    /// When the current upload was tracked (RFC 3339, UTC, milliseconds).
    pub created_at: String,
    pub takedown_ref: Option<String>,
}

/// A blob to track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewBlob<'a> {
    pub cid: &'a Cid,
    pub mime_type: &'a str,
    pub size: u64,
    /// `None` for a blob already in its permanent place.
    pub temp_key: Option<&'a str>,
    pub created_at: &'a str,
}

/// A record's reference to a blob this account has no row for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingBlob {
    pub cid: Cid,
    /// One of the records referencing it (the first in URI order).
    pub record_uri: String,
}

const SELECT_BLOB: &str = "SELECT cid, mimeType, size, tempKey, createdAt, takedownRef FROM blob";

fn blob_row(row: &SqliteRow) -> Result<BlobRow, Error> {
    let size: i64 = row.try_get(2)?;
    Ok(BlobRow {
        cid: cid_from_column(row.try_get::<&[u8], _>(0)?)?,
        mime_type: row.try_get(1)?,
        size: u64::try_from(size).unwrap_or_default(),
        temp_key: row.try_get(3)?,
        created_at: row.try_get(4)?,
        takedown_ref: row.try_get(5)?,
    })
}

fn size_column(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// The row of `cid`, taken down or not.
pub(crate) async fn get(conn: &mut SqliteConnection, cid: &Cid) -> Result<Option<BlobRow>, Error> {
    let sql = format!("{SELECT_BLOB} WHERE cid = ?1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(cid.to_bytes())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(blob_row).transpose()
}

/// The row whose upload waits under `temp_key`.
pub(crate) async fn get_by_temp_key(
    conn: &mut SqliteConnection,
    temp_key: &str,
) -> Result<Option<BlobRow>, Error> {
    let sql = format!("{SELECT_BLOB} WHERE tempKey = ?1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(temp_key)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(blob_row).transpose()
}

/// Inserts a row. An existing *temporary* row of the same CID takes the new upload's key,
/// type and time (a re-upload restarts the grace period); a permanent row is left alone.
/// Returns whether a row was written.
pub(crate) async fn put(conn: &mut SqliteConnection, blob: &NewBlob<'_>) -> Result<bool, Error> {
    let written = sqlx::query(
        "INSERT INTO blob (cid, mimeType, size, tempKey, createdAt) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (cid) DO UPDATE
         SET tempKey = excluded.tempKey, mimeType = excluded.mimeType,
             createdAt = excluded.createdAt
         WHERE blob.tempKey IS NOT NULL",
    )
    .bind(blob.cid.to_bytes())
    .bind(blob.mime_type)
    .bind(size_column(blob.size))
    .bind(blob.temp_key)
    .bind(blob.created_at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(written > 0)
}

/// Takes the blob `cid` down (`Some(reference)`) or restores it (`None`). Returns whether a
/// row exists.
pub(crate) async fn set_takedown(
    conn: &mut SqliteConnection,
    cid: &Cid,
    takedown_ref: Option<&str>,
) -> Result<bool, Error> {
    let updated = sqlx::query("UPDATE blob SET takedownRef = ?2 WHERE cid = ?1")
        .bind(cid.to_bytes())
        .bind(takedown_ref)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(updated > 0)
}

/// Makes a row permanent if it still waits under a key (binds cid, tempKey).
pub(crate) const CLEAR_TEMP_KEY: &str =
    "UPDATE blob SET tempKey = NULL WHERE cid = ?1 AND tempKey = ?2";
/// Deletes a row no record references (binds cid), returning its temp key.
pub(crate) const DELETE_IF_UNREFERENCED: &str = "DELETE FROM blob WHERE cid = ?1
     AND NOT EXISTS (SELECT 1 FROM record_blob WHERE blobCid = ?1)
     RETURNING tempKey";

/// Makes the row of `cid` permanent, if it still waits under `temp_key`. Returns whether it
/// did.
pub(crate) async fn clear_temp_key(
    conn: &mut SqliteConnection,
    cid: &Cid,
    temp_key: &str,
) -> Result<bool, Error> {
    let updated = sqlx::query(CLEAR_TEMP_KEY)
        .bind(cid.to_bytes())
        .bind(temp_key)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(updated > 0)
}

/// Deletes the row of `cid` if no record references it. Returns `Some(temp_key)` when a row
/// was deleted (`temp_key` is the upload still waiting, if any), `None` otherwise.
pub(crate) async fn delete_if_unreferenced(
    conn: &mut SqliteConnection,
    cid: &Cid,
) -> Result<Option<Option<String>>, Error> {
    let deleted: Option<Option<String>> = sqlx::query_scalar(DELETE_IF_UNREFERENCED)
        .bind(cid.to_bytes())
        .fetch_optional(conn)
        .await?;
    Ok(deleted)
}

/// Whether any record references `cid`.
pub(crate) async fn is_referenced(conn: &mut SqliteConnection, cid: &Cid) -> Result<bool, Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM record_blob WHERE blobCid = ?1 LIMIT 1")
            .bind(cid.to_bytes())
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// Up to `limit` temporary rows tracked at or before `cutoff` (same format as `createdAt`)
/// that no record references: garbage once the grace period is over.
pub(crate) async fn expired_temp(
    conn: &mut SqliteConnection,
    cutoff: &str,
    limit: u32,
) -> Result<Vec<BlobRow>, Error> {
    let sql = format!(
        "{SELECT_BLOB} WHERE tempKey IS NOT NULL AND createdAt <= ?1
         AND NOT EXISTS (SELECT 1 FROM record_blob WHERE record_blob.blobCid = blob.cid)
         ORDER BY createdAt LIMIT ?2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(cutoff)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?;
    rows.iter().map(blob_row).collect()
}

/// Number of temporary rows.
pub(crate) async fn count_temp(conn: &mut SqliteConnection) -> Result<u64, Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blob WHERE tempKey IS NOT NULL")
        .fetch_one(conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// Number of rows.
#[cfg(test)]
pub(crate) async fn count(conn: &mut SqliteConnection) -> Result<u64, Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blob")
        .fetch_one(conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// `listBlobs`: the distinct blobs referenced by current records, in CID byte order,
/// strictly after `cursor`; with `since` (a revision), only those referenced by records
/// written after it. At most `limit` (clamped to 1..=[`MAX_LIST_LIMIT`]).
pub(crate) async fn list_referenced(
    conn: &mut SqliteConnection,
    since: Option<&str>,
    cursor: Option<&Cid>,
    limit: u32,
) -> Result<Vec<Cid>, Error> {
    let limit = i64::from(limit.clamp(1, MAX_LIST_LIMIT));
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT DISTINCT blobCid FROM record_blob
         WHERE (?2 IS NULL OR blobCid > ?2)
         AND (?3 IS NULL OR EXISTS (SELECT 1 FROM record
              WHERE record.uri = record_blob.recordUri AND record.repoRev > ?3))
         ORDER BY blobCid LIMIT ?1",
    )
    .bind(limit)
    .bind(cursor.map(Cid::to_bytes))
    .bind(since)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|b| cid_from_column(b)).collect()
}

/// `listMissingBlobs`: blobs referenced by records that have no row (not uploaded to this
/// server, e.g. after a migration), in CID byte order, strictly after `cursor`.
pub(crate) async fn list_missing(
    conn: &mut SqliteConnection,
    cursor: Option<&Cid>,
    limit: u32,
) -> Result<Vec<MissingBlob>, Error> {
    let limit = i64::from(limit.clamp(1, MAX_LIST_LIMIT));
    let rows = sqlx::query(
        "SELECT blobCid, MIN(recordUri) FROM record_blob
         WHERE (?2 IS NULL OR blobCid > ?2)
         AND NOT EXISTS (SELECT 1 FROM blob WHERE blob.cid = record_blob.blobCid)
         GROUP BY blobCid ORDER BY blobCid LIMIT ?1",
    )
    .bind(limit)
    .bind(cursor.map(Cid::to_bytes))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(MissingBlob {
                cid: cid_from_column(row.try_get::<&[u8], _>(0)?)?,
                record_uri: row.try_get(1)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
