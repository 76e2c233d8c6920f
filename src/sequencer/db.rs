//! SQL of the sequencer database: `repo_seq` and `outbox_pending`.

use sqlx::SqliteConnection;

use super::{Error, SeqEvent};
use crate::store::outbox::OutboxRow;

/// Appends one event; returns its `seq`.
pub(super) async fn insert_event(
    conn: &mut SqliteConnection,
    did: &str,
    event_type: &str,
    event: &[u8],
    sequenced_at: &str,
) -> Result<i64, Error> {
    let seq = sqlx::query(
        "INSERT INTO repo_seq (did, eventType, event, sequencedAt) VALUES (?1, ?2, ?3, ?4)",
    )
    .bind(did)
    .bind(event_type)
    .bind(event)
    .bind(sequenced_at)
    .execute(conn)
    .await?
    .last_insert_rowid();
    Ok(seq)
}

/// Appends an outbox event unless the account's event of that type and revision is already
/// there (binds did, eventType, event, sequencedAt, rev).
///
/// The existence check is part of the statement rather than left to the unique index with
/// `ON CONFLICT DO NOTHING`: an ignored insert would still use up an AUTOINCREMENT value and
/// leave a gap in `seq`. The unique index stays as the guarantee.
pub(super) const INSERT_OUTBOX_EVENT: &str =
    "INSERT INTO repo_seq (did, eventType, event, sequencedAt, rev)
     SELECT ?1, ?2, ?3, ?4, ?5
     WHERE NOT EXISTS (
         SELECT 1 FROM repo_seq WHERE did = ?1 AND rev = ?5 AND eventType = ?2
     )";

/// Appends an outbox event unless it is already there (same DID, revision and type), with
/// [`INSERT_OUTBOX_EVENT`]. Returns whether it was appended.
pub(super) async fn insert_outbox_event(
    conn: &mut SqliteConnection,
    did: &str,
    row: &OutboxRow,
    sequenced_at: &str,
) -> Result<bool, Error> {
    let inserted = sqlx::query(INSERT_OUTBOX_EVENT)
        .bind(did)
        .bind(&row.event_type)
        .bind(&row.event)
        .bind(sequenced_at)
        .bind(&row.rev)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(inserted > 0)
}

/// Up to `limit` events after `after`, stopping early (after at least one) once their
/// bodies reach `max_bytes`. Returns the events and whether more may follow.
pub(super) async fn events_after(
    conn: &mut SqliteConnection,
    after: i64,
    limit: u32,
    max_bytes: usize,
) -> Result<(Vec<SeqEvent>, bool), Error> {
    use futures::TryStreamExt;
    type Row = (i64, String, String, Vec<u8>, bool, String, Option<String>);
    let limit = limit.max(1);
    let mut rows = sqlx::query_as::<_, Row>(
        "SELECT seq, did, eventType, event, invalidated, sequencedAt, rev FROM repo_seq
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch(conn);
    let mut events = Vec::new();
    let mut bytes = 0usize;
    while let Some((seq, did, event_type, event, invalidated, sequenced_at, rev)) =
        rows.try_next().await?
    {
        bytes = bytes.saturating_add(event.len());
        events.push(SeqEvent {
            seq,
            did,
            event_type,
            event,
            invalidated,
            sequenced_at,
            rev,
        });
        if bytes >= max_bytes {
            return Ok((events, true));
        }
    }
    let more = events.len() == limit as usize;
    Ok((events, more))
}

pub(super) async fn mark_pending(
    conn: &mut SqliteConnection,
    did: &str,
    since: &str,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO outbox_pending (did, since) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
        .bind(did)
        .bind(since)
        .execute(conn)
        .await?;
    Ok(())
}

pub(super) async fn clear_pending(conn: &mut SqliteConnection, did: &str) -> Result<bool, Error> {
    let deleted = sqlx::query("DELETE FROM outbox_pending WHERE did = ?1")
        .bind(did)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(deleted > 0)
}

pub(super) async fn pending_dids(conn: &mut SqliteConnection) -> Result<Vec<String>, Error> {
    Ok(
        sqlx::query_scalar("SELECT did FROM outbox_pending ORDER BY did")
            .fetch_all(conn)
            .await?,
    )
}

/// The highest `seq` ever handed out, from AUTOINCREMENT's own bookkeeping: it survives the
/// deletion of every row (pruning, account deletion), so a number is never reused.
pub(super) async fn highest_seq(conn: &mut SqliteConnection) -> Result<Option<i64>, Error> {
    let counter: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'repo_seq'")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(counter.filter(|&seq| seq > 0))
}

/// `seq` and `sequencedAt` of the first event after `after` (invalidated or not).
pub(super) async fn next_after(
    conn: &mut SqliteConnection,
    after: i64,
) -> Result<Option<(i64, String)>, Error> {
    Ok(
        sqlx::query_as("SELECT seq, sequencedAt FROM repo_seq WHERE seq > ?1 ORDER BY seq LIMIT 1")
            .bind(after)
            .fetch_optional(conn)
            .await?,
    )
}

/// Events sequenced at or after `time` (RFC 3339), counted by minute (`YYYY-MM-DDTHH:MM`),
/// oldest first; minutes without events are left out.
pub(super) async fn count_by_minute(
    conn: &mut SqliteConnection,
    time: &str,
) -> Result<Vec<(String, i64)>, Error> {
    Ok(sqlx::query_as(
        "SELECT substr(sequencedAt, 1, 16) AS minute, COUNT(*) FROM repo_seq
         WHERE sequencedAt >= ?1 GROUP BY minute ORDER BY minute",
    )
    .bind(time)
    .fetch_all(conn)
    .await?)
}

/// The first event sequenced at or after `time` (RFC 3339, same format as `sequencedAt`).
pub(super) async fn first_since(
    conn: &mut SqliteConnection,
    time: &str,
) -> Result<Option<i64>, Error> {
    Ok(
        sqlx::query_scalar("SELECT min(seq) FROM repo_seq WHERE sequencedAt >= ?1")
            .bind(time)
            .fetch_one(conn)
            .await?,
    )
}

/// The highest `seq` pruning has deleted, 0 if none.
pub(super) async fn pruned_through(conn: &mut SqliteConnection) -> Result<i64, Error> {
    let through: Option<i64> = sqlx::query_scalar("SELECT through FROM repo_seq_pruned")
        .fetch_optional(conn)
        .await?;
    Ok(through.unwrap_or(0))
}

/// Deletes up to `limit` of the oldest events sequenced before `cutoff`, raising the
/// pruning watermark. Returns how many were deleted.
pub(super) async fn prune_batch(
    conn: &mut SqliteConnection,
    cutoff: &str,
    limit: u32,
) -> Result<u64, Error> {
    let seqs: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM repo_seq WHERE sequencedAt < ?1 ORDER BY sequencedAt, seq LIMIT ?2",
    )
    .bind(cutoff)
    .bind(i64::from(limit.max(1)))
    .fetch_all(&mut *conn)
    .await?;
    let (Some(&low), Some(&high)) = (seqs.iter().min(), seqs.iter().max()) else {
        return Ok(0);
    };
    let deleted =
        sqlx::query("DELETE FROM repo_seq WHERE seq >= ?1 AND seq <= ?2 AND sequencedAt < ?3")
            .bind(low)
            .bind(high)
            .bind(cutoff)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    sqlx::query(
        "INSERT INTO repo_seq_pruned (id, through) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET through = max(through, excluded.through)",
    )
    .bind(high)
    .execute(conn)
    .await?;
    Ok(deleted)
}

/// Deletes every event of `did` except `keep`. Returns how many were deleted.
pub(super) async fn delete_did_events(
    conn: &mut SqliteConnection,
    did: &str,
    keep: i64,
) -> Result<u64, Error> {
    Ok(
        sqlx::query("DELETE FROM repo_seq WHERE did = ?1 AND seq != ?2")
            .bind(did)
            .bind(keep)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
