//! The directory's SQL: one table of operations (`migrations/plc/`).

use sqlx::{Row, SqliteConnection};

use super::Error;
use super::validate::IndexedOp;
use crate::identity::plc::SignedOp;

/// One row of `/export`.
#[derive(Debug, Clone)]
pub(crate) struct ExportRow {
    pub seq: i64,
    pub did: String,
    pub op: IndexedOp,
}

fn indexed(row: &sqlx::sqlite::SqliteRow) -> Result<IndexedOp, Error> {
    let json: String = row.try_get("operation")?;
    let op: SignedOp = serde_json::from_str(&json).map_err(|e| Error::Corrupt(e.to_string()))?;
    Ok(IndexedOp {
        cid: row.try_get("cid")?,
        op,
        nullified: row.try_get::<i64, _>("nullified")? != 0,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

/// The operations of `did`, oldest first; nullified ones only if `include_nullified`.
pub(crate) async fn ops_for_did(
    conn: &mut SqliteConnection,
    did: &str,
    include_nullified: bool,
) -> Result<Vec<IndexedOp>, Error> {
    let rows = sqlx::query(
        "SELECT cid, operation, nullified, created_at_ms FROM plc_operation
         WHERE did = ? AND (? OR nullified = 0) ORDER BY seq",
    )
    .bind(did)
    .bind(include_nullified)
    .fetch_all(conn)
    .await?;
    rows.iter().map(indexed).collect()
}

/// The most recent operation of `did` that is not nullified.
pub(crate) async fn last_op(
    conn: &mut SqliteConnection,
    did: &str,
) -> Result<Option<IndexedOp>, Error> {
    let row = sqlx::query(
        "SELECT cid, operation, nullified, created_at_ms FROM plc_operation
         WHERE did = ? AND nullified = 0 ORDER BY seq DESC LIMIT 1",
    )
    .bind(did)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(indexed).transpose()
}

/// Latest `created_at_ms` of any operation of `did`.
pub(crate) async fn latest_created(
    conn: &mut SqliteConnection,
    did: &str,
) -> Result<Option<i64>, Error> {
    Ok(
        sqlx::query_scalar("SELECT MAX(created_at_ms) FROM plc_operation WHERE did = ?")
            .bind(did)
            .fetch_one(conn)
            .await?,
    )
}

/// Appends an operation of `did`.
pub(crate) async fn insert_op(
    conn: &mut SqliteConnection,
    did: &str,
    op: &IndexedOp,
) -> Result<(), Error> {
    let json = serde_json::to_string(&op.op).map_err(|e| Error::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO plc_operation (did, cid, operation, nullified, created_at_ms)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(did)
    .bind(&op.cid)
    .bind(json)
    .bind(op.nullified)
    .bind(op.created_at_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks operations of `did` nullified.
pub(crate) async fn nullify(
    conn: &mut SqliteConnection,
    did: &str,
    cids: &[String],
) -> Result<(), Error> {
    for cid in cids {
        sqlx::query("UPDATE plc_operation SET nullified = 1 WHERE did = ? AND cid = ?")
            .bind(did)
            .bind(cid)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Where `/export` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFrom {
    /// Operations created after this UNIX millisecond (all when `None`).
    CreatedAfter(Option<i64>),
    /// Operations with a sequence number above this one.
    SeqAfter(i64),
}

/// Up to `count` operations of every DID from `from` on.
pub(crate) async fn export(
    conn: &mut SqliteConnection,
    from: ExportFrom,
    count: i64,
) -> Result<Vec<ExportRow>, Error> {
    let rows = match from {
        ExportFrom::CreatedAfter(after) => {
            sqlx::query(
                "SELECT seq, did, cid, operation, nullified, created_at_ms FROM plc_operation
                 WHERE created_at_ms > ? ORDER BY created_at_ms, seq LIMIT ?",
            )
            .bind(after.unwrap_or(i64::MIN))
            .bind(count)
            .fetch_all(conn)
            .await?
        }
        ExportFrom::SeqAfter(after) => {
            sqlx::query(
                "SELECT seq, did, cid, operation, nullified, created_at_ms FROM plc_operation
                 WHERE seq > ? ORDER BY seq LIMIT ?",
            )
            .bind(after)
            .bind(count)
            .fetch_all(conn)
            .await?
        }
    };
    rows.iter()
        .map(|row| {
            Ok(ExportRow {
                seq: row.try_get("seq")?,
                did: row.try_get("did")?,
                op: indexed(row)?,
            })
        })
        .collect()
}
