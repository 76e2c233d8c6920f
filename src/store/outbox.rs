//! The `repo_seq_outbox` table: firehose events written in the same transaction as the commit
//! they announce, waiting to be moved into the sequencer database (see `crate::sequencer`).

use sqlx::SqliteConnection;

use super::Error;

/// One waiting event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Position in the outbox: events are moved in this order.
    pub id: i64,
    /// Revision of the commit the event belongs to.
    pub rev: String,
    /// Message type without `#` (`commit`, `sync`, `identity`, `account`).
    pub event_type: String,
    /// DAG-CBOR message body without `seq`.
    pub event: Vec<u8>,
    /// When the event was written (RFC 3339, UTC).
    pub created_at: String,
}

/// Appends an event (binds rev, eventType, event, createdAt).
pub(crate) const INSERT: &str =
    "INSERT INTO repo_seq_outbox (rev, eventType, event, createdAt) VALUES (?1, ?2, ?3, ?4)";
/// The events after an id (binds after, limit), in order.
pub(crate) const LIST_AFTER: &str = "SELECT id, rev, eventType, event, createdAt
     FROM repo_seq_outbox WHERE id > ?1 ORDER BY id LIMIT ?2";
/// Deletes the events up to an id (binds it).
pub(crate) const DELETE_THROUGH: &str = "DELETE FROM repo_seq_outbox WHERE id <= ?1";

/// Appends an event; returns its id. Fails on a second event of the same type for one `rev`.
#[cfg(test)]
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    rev: &str,
    event_type: &str,
    event: &[u8],
    created_at: &str,
) -> Result<i64, Error> {
    let id = sqlx::query(INSERT)
        .bind(rev)
        .bind(event_type)
        .bind(event)
        .bind(created_at)
        .execute(conn)
        .await?
        .last_insert_rowid();
    Ok(id)
}

/// The oldest `limit` events (at least 1) with an id greater than `after`, in outbox order.
#[cfg(test)]
pub(crate) async fn list_after(
    conn: &mut SqliteConnection,
    after: i64,
    limit: u32,
) -> Result<Vec<OutboxRow>, Error> {
    let rows: Vec<(i64, String, String, Vec<u8>, String)> = sqlx::query_as(LIST_AFTER)
        .bind(after)
        .bind(i64::from(limit.max(1)))
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, rev, event_type, event, created_at)| OutboxRow {
            id,
            rev,
            event_type,
            event,
            created_at,
        })
        .collect())
}

/// Deletes every event up to and including `id`. Returns how many were deleted.
pub(crate) async fn delete_through(conn: &mut SqliteConnection, id: i64) -> Result<u64, Error> {
    Ok(sqlx::query(DELETE_THROUGH)
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected())
}

/// Number of waiting events.
pub(crate) async fn count(conn: &mut SqliteConnection) -> Result<u64, Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repo_seq_outbox")
        .fetch_one(conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite;

    #[tokio::test]
    async fn insert_list_delete() {
        let pool = sqlite::open_in_memory().await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        assert_eq!(count(&mut conn).await.unwrap(), 0);
        assert!(list_after(&mut conn, -1, 10).await.unwrap().is_empty());
        let t = "2024-01-01T00:00:00.000Z";
        let a = insert(&mut conn, "3kaaaaaaaaaa2", "identity", b"a", t)
            .await
            .unwrap();
        let b = insert(&mut conn, "3kaaaaaaaaaa2", "commit", b"b", t)
            .await
            .unwrap();
        let c = insert(&mut conn, "3kaaaaaaaaab2", "commit", b"c", t)
            .await
            .unwrap();
        assert!(a < b && b < c);
        // One event of a type per revision.
        assert!(matches!(
            insert(&mut conn, "3kaaaaaaaaab2", "commit", b"x", t).await,
            Err(Error::Database(_))
        ));
        let rows = list_after(&mut conn, -1, 10).await.unwrap();
        let seen: Vec<(&str, &str, &[u8])> = rows
            .iter()
            .map(|r| (r.rev.as_str(), r.event_type.as_str(), r.event.as_slice()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("3kaaaaaaaaaa2", "identity", &b"a"[..]),
                ("3kaaaaaaaaaa2", "commit", &b"b"[..]),
                ("3kaaaaaaaaab2", "commit", &b"c"[..]),
            ]
        );
        assert_eq!(rows[0].created_at, t);
        assert_eq!(list_after(&mut conn, -1, 0).await.unwrap().len(), 1);
        assert_eq!(
            list_after(&mut conn, -1, 2)
                .await
                .unwrap()
                .last()
                .unwrap()
                .id,
            b
        );
        let tail = list_after(&mut conn, a, 10).await.unwrap();
        assert_eq!(tail.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b, c]);
        assert_eq!(delete_through(&mut conn, b).await.unwrap(), 2);
        assert_eq!(count(&mut conn).await.unwrap(), 1);
        assert_eq!(list_after(&mut conn, -1, 10).await.unwrap()[0].id, c);
        assert_eq!(delete_through(&mut conn, b).await.unwrap(), 0);
        // Ids are never reused, even once the outbox has been emptied.
        assert_eq!(delete_through(&mut conn, c).await.unwrap(), 1);
        let d = insert(&mut conn, "3kaaaaaaaaac2", "commit", b"d", t)
            .await
            .unwrap();
        assert_eq!(d, c + 1);
    }
}
