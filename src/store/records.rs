//! The records index (`record`, `record_blob`): one row per record in the repository, written
//! in the same transaction as the commit that changes the MST.
//!
//! Reads return the record block's bytes with the row (joined on `repo_block`), so a listing
//! is one query. Taken-down records (`takedownRef` set) are hidden from [`get`] and [`list`].

use bytes::Bytes;
use cid::Cid;
#[cfg(test)]
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{Error, cid_from_column};

/// Most records [`list`] returns in one page.
pub(crate) const MAX_LIST_LIMIT: u32 = 100;

/// A record row to write.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewRecord<'a> {
    /// `at://<did>/<collection>/<rkey>`.
    pub uri: &'a str,
    pub cid: &'a Cid,
    pub collection: &'a str,
    pub rkey: &'a str,
    /// Revision of the commit that wrote this version.
    pub repo_rev: &'a str,
    /// When it was indexed (RFC 3339, UTC).
    pub indexed_at: &'a str,
}

/// A stored record with its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredRecord {
    pub uri: String,
    pub cid: Cid,
    pub collection: String,
    pub rkey: String,
    pub repo_rev: String,
    pub indexed_at: String,
    /// The record block (DAG-CBOR).
    pub content: Bytes,
}

/// Inserts or replaces a record row (binds uri, cid, collection, rkey, repoRev, indexedAt).
pub(crate) const PUT: &str = "INSERT INTO record (uri, cid, collection, rkey, repoRev, indexedAt)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (uri) DO UPDATE
     SET cid = excluded.cid, repoRev = excluded.repoRev, indexedAt = excluded.indexedAt";
/// Deletes a record row (binds uri).
pub(crate) const DELETE: &str = "DELETE FROM record WHERE uri = ?1";
/// Deletes a record's blob references (binds uri).
pub(crate) const DELETE_BLOBS_OF: &str = "DELETE FROM record_blob WHERE recordUri = ?1";
/// Adds a blob reference (binds blobCid, recordUri).
pub(crate) const ADD_BLOB: &str =
    "INSERT INTO record_blob (blobCid, recordUri) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
/// Deletes a record block no record row holds (binds cid).
pub(crate) const DELETE_UNREFERENCED_BLOCK: &str = "DELETE FROM repo_block WHERE cid = ?1
     AND NOT EXISTS (SELECT 1 FROM record WHERE record.cid = ?1)";

/// Inserts a record row, or replaces the current version of `uri` (its `takedownRef` is kept).
#[cfg(test)]
pub(crate) async fn put(conn: &mut SqliteConnection, record: &NewRecord<'_>) -> Result<(), Error> {
    sqlx::query(PUT)
        .bind(record.uri)
        .bind(record.cid.to_bytes())
        .bind(record.collection)
        .bind(record.rkey)
        .bind(record.repo_rev)
        .bind(record.indexed_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes the row of `uri` and its blob references. Returns whether a row existed.
#[cfg(test)]
pub(crate) async fn delete(conn: &mut SqliteConnection, uri: &str) -> Result<bool, Error> {
    sqlx::query(DELETE_BLOBS_OF)
        .bind(uri)
        .execute(&mut *conn)
        .await?;
    let deleted = sqlx::query(DELETE)
        .bind(uri)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(deleted > 0)
}

/// Replaces the blob references of `uri` with `blobs` (duplicates are stored once).
#[cfg(test)]
pub(crate) async fn set_blobs(
    conn: &mut SqliteConnection,
    uri: &str,
    blobs: &[Cid],
) -> Result<(), Error> {
    sqlx::query(DELETE_BLOBS_OF)
        .bind(uri)
        .execute(&mut *conn)
        .await?;
    for blob in blobs {
        sqlx::query(ADD_BLOB)
            .bind(blob.to_bytes())
            .bind(uri)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The blobs the current version of `uri` references, in CID byte order.
pub(crate) async fn blobs_of(conn: &mut SqliteConnection, uri: &str) -> Result<Vec<Cid>, Error> {
    let rows: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT blobCid FROM record_blob WHERE recordUri = ?1 ORDER BY blobCid")
            .bind(uri)
            .fetch_all(conn)
            .await?;
    rows.iter().map(|b| cid_from_column(b)).collect()
}

/// The records whose current version references `blob`, in URI order.
#[cfg(test)]
pub(crate) async fn records_for_blob(
    conn: &mut SqliteConnection,
    blob: &Cid,
) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT recordUri FROM record_blob WHERE blobCid = ?1 ORDER BY recordUri",
    )
    .bind(blob.to_bytes())
    .fetch_all(conn)
    .await?)
}

#[cfg(test)]
fn stored_record(row: &SqliteRow) -> Result<StoredRecord, Error> {
    Ok(StoredRecord {
        uri: row.try_get(0)?,
        cid: cid_from_column(row.try_get::<&[u8], _>(1)?)?,
        collection: row.try_get(2)?,
        rkey: row.try_get(3)?,
        repo_rev: row.try_get(4)?,
        indexed_at: row.try_get(5)?,
        content: Bytes::from(row.try_get::<Vec<u8>, _>(6)?),
    })
}

const SELECT_RECORD: &str = "SELECT record.uri, record.cid, record.collection, record.rkey,
        record.repoRev, record.indexedAt, repo_block.content
    FROM record JOIN repo_block ON repo_block.cid = record.cid";

/// The query of [`get`] (binds collection, rkey, cid or NULL).
pub(crate) fn get_sql() -> String {
    format!(
        "{SELECT_RECORD} WHERE record.collection = ?1 AND record.rkey = ?2
         AND record.takedownRef IS NULL AND (?3 IS NULL OR record.cid = ?3)"
    )
}

/// The query of [`list`] (binds collection, limit, and the cursor when `with_cursor`).
pub(crate) fn list_sql(with_cursor: bool, reverse: bool) -> String {
    let (cmp, order) = if reverse { (">", "ASC") } else { ("<", "DESC") };
    // Without a cursor the range condition is left out rather than made optional in SQL
    // (`?2 IS NULL OR …`), which would keep SQLite from seeking the index to the cursor.
    let range = if with_cursor {
        format!("AND record.rkey {cmp} ?3")
    } else {
        String::new()
    };
    format!(
        "{SELECT_RECORD} WHERE record.collection = ?1 AND record.takedownRef IS NULL {range}
         ORDER BY record.rkey {order} LIMIT ?2"
    )
}

/// The current version of `collection/rkey`, unless it is taken down; with `cid`, only if
/// that is its CID.
#[cfg(test)]
pub(crate) async fn get(
    conn: &mut SqliteConnection,
    collection: &str,
    rkey: &str,
    cid: Option<&Cid>,
) -> Result<Option<StoredRecord>, Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(get_sql()))
        .bind(collection)
        .bind(rkey)
        .bind(cid.map(Cid::to_bytes))
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(stored_record).transpose()
}

/// One page of the records of `collection` that are not taken down: by record key
/// descending, or ascending with `reverse`; strictly after `cursor` (a record key) in that
/// order; at most `limit` rows (clamped to 1..=[`MAX_LIST_LIMIT`]).
#[cfg(test)]
pub(crate) async fn list(
    conn: &mut SqliteConnection,
    collection: &str,
    limit: u32,
    cursor: Option<&str>,
    reverse: bool,
) -> Result<Vec<StoredRecord>, Error> {
    let limit = i64::from(limit.clamp(1, MAX_LIST_LIMIT));
    let sql = list_sql(cursor.is_some(), reverse);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(collection)
        .bind(limit);
    if let Some(cursor) = cursor {
        query = query.bind(cursor);
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter().map(stored_record).collect()
}

/// The collections holding at least one record (taken-down ones included), sorted.
pub(crate) async fn collections(conn: &mut SqliteConnection) -> Result<Vec<String>, Error> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT collection FROM record ORDER BY collection")
            .fetch_all(conn)
            .await?,
    )
}

/// Number of record rows.
#[cfg(test)]
pub(crate) async fn count(conn: &mut SqliteConnection) -> Result<u64, Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM record")
        .fetch_one(conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// The CID of the current version of `uri`, taken down or not.
#[cfg(test)]
pub(crate) async fn current_cid(
    conn: &mut SqliteConnection,
    uri: &str,
) -> Result<Option<Cid>, Error> {
    let cid: Option<Vec<u8>> = sqlx::query_scalar("SELECT cid FROM record WHERE uri = ?1")
        .bind(uri)
        .fetch_optional(conn)
        .await?;
    cid.as_deref().map(cid_from_column).transpose()
}

/// The current CID and takedown reference of `uri` (taken down or not), if it exists.
pub(crate) async fn takedown_status(
    conn: &mut SqliteConnection,
    uri: &str,
) -> Result<Option<(Cid, Option<String>)>, Error> {
    let row = sqlx::query("SELECT cid, takedownRef FROM record WHERE uri = ?1")
        .bind(uri)
        .fetch_optional(conn)
        .await?;
    row.map(|row| {
        let cid = cid_from_column(row.try_get::<&[u8], _>(0)?)?;
        Ok((cid, row.try_get(1)?))
    })
    .transpose()
}

/// Takes `uri` down (`Some(reference)`) or restores it (`None`). Returns whether it exists.
pub(crate) async fn set_takedown(
    conn: &mut SqliteConnection,
    uri: &str,
    takedown_ref: Option<&str>,
) -> Result<bool, Error> {
    let updated = sqlx::query("UPDATE record SET takedownRef = ?2 WHERE uri = ?1")
        .bind(uri)
        .bind(takedown_ref)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(updated > 0)
}

/// Deletes each block of `cids` that no record row references any more. Run it after the
/// commit's record rows are written: identical records share one block, so a block released
/// by one path may still be held by another. Returns how many blocks were deleted.
#[cfg(test)]
pub(crate) async fn delete_unreferenced_blocks(
    conn: &mut SqliteConnection,
    cids: &[Cid],
) -> Result<u64, Error> {
    let mut deleted = 0;
    for cid in cids {
        deleted += sqlx::query(DELETE_UNREFERENCED_BLOCK)
            .bind(cid.to_bytes())
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests;
