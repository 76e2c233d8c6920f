//! SQL of the hub index writes: records, statuses, pending marks, the create log and
//! download counters. Every function takes a connection (in or out of a transaction).

use std::collections::HashSet;

use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use super::Result;
use super::records::{Review, Submission};

/// Which submission table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Plugin,
    Case,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::Plugin => "hub_plugin",
            Kind::Case => "hub_case",
        }
    }

    fn fts(self) -> &'static str {
        match self {
            Kind::Plugin => "hub_plugin_fts",
            Kind::Case => "hub_case_fts",
        }
    }
}

/// A record to index: where it is and its version.
pub(crate) struct Located<'a> {
    pub uri: &'a str,
    pub did: &'a str,
    pub rkey: &'a str,
    pub cid: &'a str,
    pub indexed_at: &'a str,
}

/// Removes the submission at `uri` (and its text) if indexed.
pub(crate) async fn delete_submission(
    conn: &mut SqliteConnection,
    kind: Kind,
    uri: &str,
) -> Result<()> {
    let id: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "DELETE FROM {} WHERE uri = ? RETURNING id",
        kind.table()
    )))
    .bind(uri)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = id {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE rowid = ?",
            kind.fts()
        )))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Indexes (replacing) a plugin or case.
pub(crate) async fn put_submission(
    conn: &mut SqliteConnection,
    kind: Kind,
    at: &Located<'_>,
    sub: &Submission,
) -> Result<()> {
    delete_submission(conn, kind, at.uri).await?;
    let screenshots = serde_json::Value::from(sub.screenshots.clone()).to_string();
    let id: i64 = match kind {
        Kind::Plugin => {
            sqlx::query_scalar(
                "INSERT INTO hub_plugin (uri, did, rkey, cid, nameKey, category, createdAt, \
                 indexedAt, record, logo, screenshots, downloads, status, featured) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
                 (SELECT COALESCE(SUM(count), 0) FROM hub_download_day WHERE uri = ?), \
                 COALESCE((SELECT status FROM hub_status WHERE subject = ?), 'pending'), \
                 COALESCE((SELECT featured FROM hub_status WHERE subject = ?), 0)) \
                 RETURNING id",
            )
            .bind(at.uri)
            .bind(at.did)
            .bind(at.rkey)
            .bind(at.cid)
            .bind(&sub.name_key)
            .bind(&sub.category)
            .bind(&sub.created_at)
            .bind(at.indexed_at)
            .bind(&sub.record)
            .bind(&sub.image)
            .bind(&screenshots)
            .bind(at.uri)
            .bind(at.uri)
            .bind(at.uri)
            .fetch_one(&mut *conn)
            .await?
        }
        Kind::Case => {
            sqlx::query_scalar(
                "INSERT INTO hub_case (uri, did, rkey, cid, titleKey, category, createdAt, \
                 indexedAt, record, thumbnail, screenshots, status, featured) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
                 COALESCE((SELECT status FROM hub_status WHERE subject = ?), 'pending'), \
                 COALESCE((SELECT featured FROM hub_status WHERE subject = ?), 0)) \
                 RETURNING id",
            )
            .bind(at.uri)
            .bind(at.did)
            .bind(at.rkey)
            .bind(at.cid)
            .bind(&sub.name_key)
            .bind(&sub.category)
            .bind(&sub.created_at)
            .bind(at.indexed_at)
            .bind(&sub.record)
            .bind(&sub.image)
            .bind(&screenshots)
            .bind(at.uri)
            .bind(at.uri)
            .fetch_one(&mut *conn)
            .await?
        }
    };
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {} (rowid, text) VALUES (?, ?)",
        kind.fts()
    )))
    .bind(id)
    .bind(&sub.text)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The subject of the review at `uri`, if indexed.
pub(crate) async fn review_subject(
    conn: &mut SqliteConnection,
    uri: &str,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT subject FROM hub_review WHERE uri = ?")
            .bind(uri)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

pub(crate) async fn delete_review(conn: &mut SqliteConnection, uri: &str) -> Result<()> {
    sqlx::query("DELETE FROM hub_review WHERE uri = ?")
        .bind(uri)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(crate) async fn put_review(
    conn: &mut SqliteConnection,
    at: &Located<'_>,
    review: &Review,
) -> Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO hub_review (uri, did, subject, status, featured, createdAt, \
         indexedAt) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(at.uri)
    .bind(at.did)
    .bind(&review.subject)
    .bind(&review.status)
    .bind(i64::from(review.featured))
    .bind(&review.created_at)
    .bind(at.indexed_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes every record of `did` from the index (before reindexing the account).
pub(crate) async fn delete_account_records(conn: &mut SqliteConnection, did: &str) -> Result<()> {
    for kind in [Kind::Plugin, Kind::Case] {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE rowid IN (SELECT id FROM {} WHERE did = ?)",
            kind.fts(),
            kind.table()
        )))
        .bind(did)
        .execute(&mut *conn)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE did = ?",
            kind.table()
        )))
        .bind(did)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DELETE FROM hub_review WHERE did = ?")
        .bind(did)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Empties the derived tables (before a full reindex). Download counters, moderators and
/// the create log stay.
pub(crate) async fn delete_all_records(conn: &mut SqliteConnection) -> Result<()> {
    for table in [
        "hub_plugin",
        "hub_plugin_fts",
        "hub_case",
        "hub_case_fts",
        "hub_review",
        "hub_status",
    ] {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Sets the status of `subject` from its latest review by one of `mods` (latest by the
/// review's `createdAt`, then `indexedAt`, then URI); no such review: pending (no row).
pub(crate) async fn recompute_status(
    conn: &mut SqliteConnection,
    subject: &str,
    mods: &HashSet<String>,
) -> Result<()> {
    let rows = sqlx::query(
        "SELECT uri, did, status, featured FROM hub_review WHERE subject = ? \
         ORDER BY createdAt DESC, indexedAt DESC, uri DESC",
    )
    .bind(subject)
    .fetch_all(&mut *conn)
    .await?;
    let mut decided = None;
    for row in rows {
        let did: String = row.try_get(1)?;
        if mods.contains(&did) {
            let uri: String = row.try_get(0)?;
            let status: String = row.try_get(2)?;
            let featured: i64 = row.try_get(3)?;
            decided = Some((uri, status, featured));
            break;
        }
    }
    let (status, featured) = match decided {
        Some((review, status, featured)) => {
            let featured = i64::from(status == "approved" && featured == 1);
            sqlx::query(
                "INSERT OR REPLACE INTO hub_status (subject, status, featured, review) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(subject)
            .bind(&status)
            .bind(featured)
            .bind(review)
            .execute(&mut *conn)
            .await?;
            (status, featured)
        }
        None => {
            sqlx::query("DELETE FROM hub_status WHERE subject = ?")
                .bind(subject)
                .execute(&mut *conn)
                .await?;
            ("pending".to_owned(), 0)
        }
    };
    copy_status(conn, subject, &status, featured).await
}

/// Copies a subject's status into its plugin or case row.
async fn copy_status(
    conn: &mut SqliteConnection,
    subject: &str,
    status: &str,
    featured: i64,
) -> Result<()> {
    for sql in [
        "UPDATE hub_plugin SET status = ?, featured = ? WHERE uri = ?",
        "UPDATE hub_case SET status = ?, featured = ? WHERE uri = ?",
    ] {
        sqlx::query(sql)
            .bind(status)
            .bind(featured)
            .bind(subject)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// [`recompute_status`] for every reviewed subject.
pub(crate) async fn recompute_all_statuses(
    conn: &mut SqliteConnection,
    mods: &HashSet<String>,
) -> Result<()> {
    for sql in [
        "DELETE FROM hub_status",
        "UPDATE hub_plugin SET status = 'pending', featured = 0 \
         WHERE status != 'pending' OR featured != 0",
        "UPDATE hub_case SET status = 'pending', featured = 0 \
         WHERE status != 'pending' OR featured != 0",
    ] {
        sqlx::query(sql).execute(&mut *conn).await?;
    }
    let subjects: Vec<String> = sqlx::query_scalar("SELECT DISTINCT subject FROM hub_review")
        .fetch_all(&mut *conn)
        .await?;
    for subject in subjects {
        recompute_status(conn, &subject, mods).await?;
    }
    Ok(())
}

pub(crate) async fn mark_pending(conn: &mut SqliteConnection, did: &str, now: i64) -> Result<()> {
    sqlx::query("INSERT OR IGNORE INTO hub_pending (did, since) VALUES (?, ?)")
        .bind(did)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(crate) async fn clear_pending(conn: &mut SqliteConnection, did: &str) -> Result<()> {
    sqlx::query("DELETE FROM hub_pending WHERE did = ?")
        .bind(did)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(crate) async fn pending(conn: &mut SqliteConnection) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT did FROM hub_pending ORDER BY did")
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// Creations of `collection` by `did` after `since`, oldest first (UNIX seconds).
pub(crate) async fn creations_since(
    conn: &mut SqliteConnection,
    did: &str,
    collection: &str,
    since: i64,
) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT at FROM hub_create_log WHERE did = ? AND collection = ? AND at > ? ORDER BY at",
    )
    .bind(did)
    .bind(collection)
    .bind(since)
    .fetch_all(&mut *conn)
    .await?)
}

/// Logs `count` creations; returns their row ids (to take them back if the commit fails).
pub(crate) async fn log_creations(
    conn: &mut SqliteConnection,
    did: &str,
    collection: &str,
    count: usize,
    now: i64,
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO hub_create_log (did, collection, at) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(did)
        .bind(collection)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        ids.push(id);
    }
    // Entries older than the window are of no further use.
    sqlx::query("DELETE FROM hub_create_log WHERE did = ? AND at <= ?")
        .bind(did)
        .bind(now - 3600)
        .execute(&mut *conn)
        .await?;
    Ok(ids)
}

pub(crate) async fn unlog_creations(conn: &mut SqliteConnection, ids: &[i64]) -> Result<()> {
    for id in ids {
        sqlx::query("DELETE FROM hub_create_log WHERE id = ?")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Counts a download of `uri` from `ip` at `now` unless that address was counted for it
/// within the last hour. Returns whether it counted.
pub(crate) async fn count_download(
    conn: &mut SqliteConnection,
    uri: &str,
    ip: &str,
    now: i64,
) -> Result<bool> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT at FROM hub_download_seen WHERE uri = ? AND ip = ?")
            .bind(uri)
            .bind(ip)
            .fetch_optional(&mut *conn)
            .await?;
    if last.is_some_and(|at| now - at < 3600) {
        return Ok(false);
    }
    sqlx::query("INSERT OR REPLACE INTO hub_download_seen (uri, ip, at) VALUES (?, ?, ?)")
        .bind(uri)
        .bind(ip)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM hub_download_seen WHERE at <= ?")
        .bind(now - 3600)
        .execute(&mut *conn)
        .await?;
    let day = chrono::DateTime::from_timestamp(now, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    sqlx::query(
        "INSERT INTO hub_download_day (uri, day, count) VALUES (?, ?, 1) \
         ON CONFLICT (uri, day) DO UPDATE SET count = count + 1",
    )
    .bind(uri)
    .bind(day)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE hub_plugin SET downloads = downloads + 1 WHERE uri = ?")
        .bind(uri)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}
