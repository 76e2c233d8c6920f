//! The `repo_block` table: content-addressed repository blocks, tagged with the revision
//! that first wrote them.

use std::collections::HashSet;

use bytes::Bytes;
use cid::Cid;
use futures::{Stream, TryStreamExt, stream};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use super::{Error, cid_from_column};
use crate::repo::blockstore::BlockMap;

/// Rows per multi-row `INSERT` of [`put_many`]. Each row binds 4 parameters; SQLite caps a
/// statement at 32,766 parameters (the bundled SQLite is ≥ 3.32). Measured: 100–1000 rows
/// per statement are equally fast; several thousand are slower again.
const INSERT_ROWS: usize = 1000;
/// CIDs per `IN (…)` list of [`get_many`].
const LOOKUP_CIDS: usize = 1000;
/// SQLite's default maximum of bound parameters per statement.
const MAX_PARAMS: usize = 32_766;
const _: () = assert!(4 * INSERT_ROWS <= MAX_PARAMS && LOOKUP_CIDS <= MAX_PARAMS);

/// The bytes of a block, or `None` when it is not stored.
pub(crate) async fn get(conn: &mut SqliteConnection, cid: &Cid) -> Result<Option<Bytes>, Error> {
    let content: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT content FROM repo_block WHERE cid = ?1")
            .bind(cid.to_bytes())
            .fetch_optional(conn)
            .await?;
    Ok(content.map(Bytes::from))
}

/// Whether a block is stored.
pub(crate) async fn has(conn: &mut SqliteConnection, cid: &Cid) -> Result<bool, Error> {
    let found: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM repo_block WHERE cid = ?1)")
        .bind(cid.to_bytes())
        .fetch_one(conn)
        .await?;
    Ok(found)
}

/// The revision that first wrote a block, or `None` when it is not stored.
pub(crate) async fn rev_of(
    conn: &mut SqliteConnection,
    cid: &Cid,
) -> Result<Option<String>, Error> {
    let rev: Option<String> = sqlx::query_scalar("SELECT repoRev FROM repo_block WHERE cid = ?1")
        .bind(cid.to_bytes())
        .fetch_optional(conn)
        .await?;
    Ok(rev)
}

/// The stored blocks among `cids`, and the CIDs that are not stored (each once, in the order
/// of their first appearance in `cids`).
pub(crate) async fn get_many(
    conn: &mut SqliteConnection,
    cids: &[Cid],
) -> Result<(BlockMap, Vec<Cid>), Error> {
    let mut found = BlockMap::new();
    for chunk in cids.chunks(LOOKUP_CIDS) {
        let sql = format!(
            "SELECT cid, content FROM repo_block WHERE cid IN ({})",
            placeholders(chunk.len())
        );
        // Only full-size chunks share one statement text; keep odd sizes out of the cache.
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(chunk.len() == LOOKUP_CIDS);
        for cid in chunk {
            query = query.bind(cid.to_bytes());
        }
        let rows = query.fetch_all(&mut *conn).await?;
        for row in rows {
            let cid = cid_from_column(row.try_get::<&[u8], _>(0)?)?;
            let content: Vec<u8> = row.try_get(1)?;
            found.insert(cid, Bytes::from(content));
        }
    }
    let mut seen = HashSet::new();
    let missing = cids
        .iter()
        .filter(|cid| !found.contains_key(*cid) && seen.insert(**cid))
        .copied()
        .collect();
    Ok((found, missing))
}

/// The CIDs among `cids` that are not stored, each once, in the order of their first
/// appearance. Reads CIDs only, not contents: a cheap check before streaming blocks out.
pub(crate) async fn missing(conn: &mut SqliteConnection, cids: &[Cid]) -> Result<Vec<Cid>, Error> {
    let mut stored = HashSet::new();
    for chunk in cids.chunks(LOOKUP_CIDS) {
        let sql = format!(
            "SELECT cid FROM repo_block WHERE cid IN ({})",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query_scalar::<_, Vec<u8>>(AssertSqlSafe(sql))
            .persistent(chunk.len() == LOOKUP_CIDS);
        for cid in chunk {
            query = query.bind(cid.to_bytes());
        }
        for bytes in query.fetch_all(&mut *conn).await? {
            stored.insert(cid_from_column(&bytes)?);
        }
    }
    let mut seen = HashSet::new();
    Ok(cids
        .iter()
        .filter(|cid| !stored.contains(*cid) && seen.insert(**cid))
        .copied()
        .collect())
}

/// Stores `blocks` tagged with revision `rev`, in batched multi-row inserts. A block that is
/// already stored keeps its original revision and bytes. Returns how many blocks were new.
///
/// Run it inside a transaction for atomicity: the batches are separate statements.
pub(crate) async fn put_many(
    conn: &mut SqliteConnection,
    blocks: &BlockMap,
    rev: &str,
) -> Result<u64, Error> {
    let entries: Vec<(&Cid, &Bytes)> = blocks.iter().collect();
    let mut inserted = 0;
    for chunk in entries.chunks(INSERT_ROWS) {
        let sql = insert_sql(chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(chunk.len() == INSERT_ROWS);
        for (cid, content) in chunk {
            // A block cannot come near i64::MAX bytes; saturate rather than wrap.
            let size = i64::try_from(content.len()).unwrap_or(i64::MAX);
            query = query
                .bind(cid.to_bytes())
                .bind(rev)
                .bind(size)
                .bind(content.to_vec());
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

/// Deletes the blocks `cids` (absent ones are ignored). Returns how many were deleted.
pub(crate) async fn delete_many(conn: &mut SqliteConnection, cids: &[Cid]) -> Result<u64, Error> {
    let mut deleted = 0;
    for chunk in cids.chunks(INSERT_ROWS) {
        let placeholders = vec!["?"; chunk.len()].join(",");
        let sql = format!("DELETE FROM repo_block WHERE cid IN ({placeholders})");
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
        for cid in chunk {
            query = query.bind(cid.to_bytes());
        }
        deleted += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(deleted)
}

/// Number of stored blocks.
pub(crate) async fn count(conn: &mut SqliteConnection) -> Result<u64, Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repo_block")
        .fetch_one(conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// A block as listed for export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExportBlock {
    pub cid: Cid,
    /// The revision that first wrote the block.
    pub rev: String,
    pub bytes: Bytes,
}

/// Where a page of [`list_since`] resumes: just after this block in export order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub rev: String,
    pub cid: Cid,
}

impl ExportBlock {
    /// The cursor that resumes a listing after this block.
    pub(crate) fn cursor(&self) -> Cursor {
        Cursor {
            rev: self.rev.clone(),
            cid: self.cid,
        }
    }
}

/// One page of the blocks whose revision is greater than `since` (all blocks when `None`),
/// in export order — by revision, then by CID bytes — starting after `after`, at most
/// `limit` blocks (at least 1). An empty page means the listing is complete.
pub(crate) async fn list_since(
    conn: &mut SqliteConnection,
    since: Option<&str>,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<Vec<ExportBlock>, Error> {
    let limit = i64::from(limit.max(1));
    // A cursor comes from a listed block, whose revision is already greater than `since`,
    // so the cursor condition implies the `since` one.
    let query = match (after, since) {
        (Some(cursor), _) => sqlx::query(
            "SELECT cid, repoRev, content FROM repo_block
             WHERE (repoRev, cid) > (?1, ?2) ORDER BY repoRev, cid LIMIT ?3",
        )
        .bind(cursor.rev.clone())
        .bind(cursor.cid.to_bytes())
        .bind(limit),
        (None, Some(since)) => sqlx::query(
            "SELECT cid, repoRev, content FROM repo_block
             WHERE repoRev > ?1 ORDER BY repoRev, cid LIMIT ?2",
        )
        .bind(since.to_owned())
        .bind(limit),
        (None, None) => sqlx::query(
            "SELECT cid, repoRev, content FROM repo_block ORDER BY repoRev, cid LIMIT ?1",
        )
        .bind(limit),
    };
    let rows = query.fetch_all(conn).await?;
    rows.iter().map(export_block).collect()
}

fn export_block(row: &SqliteRow) -> Result<ExportBlock, Error> {
    Ok(ExportBlock {
        cid: cid_from_column(row.try_get::<&[u8], _>(0)?)?,
        rev: row.try_get(1)?,
        bytes: Bytes::from(row.try_get::<Vec<u8>, _>(2)?),
    })
}

/// Streams `(cid, bytes)` of every block with a revision greater than `since` (all blocks
/// when `None`), in export order, fetching `page_size` blocks per query.
///
/// Each page borrows a pooled connection only while it is read, so a slow consumer (a CAR
/// download) never pins a connection. Pages are separate reads: blocks committed while the
/// stream runs appear at its end when their revision sorts after the position reached.
pub(crate) fn stream_since(
    pool: SqlitePool,
    since: Option<String>,
    page_size: u32,
) -> impl Stream<Item = Result<(Cid, Bytes), Error>> + Send + 'static {
    let state = Some(PageState {
        pool,
        since,
        after: None,
        page_size: page_size.max(1),
    });
    stream::try_unfold(state, next_page)
        .map_ok(|page| stream::iter(page.into_iter().map(|b| Ok((b.cid, b.bytes)))))
        .try_flatten()
}

/// Position of a [`stream_since`]; `None` once a short page showed the end.
struct PageState {
    pool: SqlitePool,
    since: Option<String>,
    after: Option<Cursor>,
    page_size: u32,
}

async fn next_page(
    state: Option<PageState>,
) -> Result<Option<(Vec<ExportBlock>, Option<PageState>)>, Error> {
    let Some(mut state) = state else {
        return Ok(None);
    };
    let page = {
        let mut conn = state.pool.acquire().await?;
        list_since(
            &mut conn,
            state.since.as_deref(),
            state.after.as_ref(),
            state.page_size,
        )
        .await?
    };
    let Some(last) = page.last() else {
        return Ok(None);
    };
    let complete = page.len() < state.page_size as usize;
    state.after = Some(last.cursor());
    Ok(Some((page, (!complete).then_some(state))))
}

/// `?, ?, …`: `n` positional placeholders.
fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(2 * n);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

/// `INSERT … VALUES (?, ?, ?, ?), …` for `rows` rows of (cid, repoRev, size, content).
///
/// Plain `?` placeholders: SQLite looks up the name of a numbered one (`?NNN`) by a linear
/// scan, which sqlx does for every parameter, making large numbered statements quadratic.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO repo_block (cid, repoRev, size, content) VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push_str("(?, ?, ?, ?)");
    }
    sql.push_str(" ON CONFLICT (cid) DO NOTHING");
    sql
}

#[cfg(test)]
mod tests;
