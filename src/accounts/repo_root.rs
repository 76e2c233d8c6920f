//! The `repo_root` table: each hosted repository's head, for `com.atproto.sync.listRepos`.
//!
//! A copy of the actor stores' heads kept up to date by the repository service (see the
//! migration `0002_repo_root.sql` for how a crash between the two databases is repaired).

use std::fmt;
use std::str::FromStr;

use sqlx::{Row, SqliteConnection};

use super::{AccountDb, AccountStatus, Error};

/// A repository's head as recorded here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoHead {
    /// The head commit's CID.
    pub cid: String,
    pub rev: String,
}

/// One repository of a [`AccountDb::list_repos`] page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRepo {
    pub did: String,
    pub head: RepoHead,
    /// The account's creation time (UNIX seconds): the listing's first sort key.
    pub created_at: i64,
    /// Active, deactivated or taken down (never deleted: deleted accounts are not listed).
    pub status: AccountStatus,
}

impl ListedRepo {
    /// Where the next page starts.
    pub fn cursor(&self) -> RepoCursor {
        RepoCursor {
            created_at: self.created_at,
            did: self.did.clone(),
        }
    }
}

/// A position in the listing (after this account), ordered as the reference orders it: by
/// account creation time, then DID. Written `{createdAt}::{did}`; clients treat it as opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoCursor {
    pub created_at: i64,
    pub did: String,
}

impl fmt::Display for RepoCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}", self.created_at, self.did)
    }
}

/// A cursor this server did not hand out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed cursor")]
pub struct MalformedCursor;

impl FromStr for RepoCursor {
    type Err = MalformedCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (time, did) = s.split_once("::").ok_or(MalformedCursor)?;
        let created_at = time.parse::<i64>().map_err(|_| MalformedCursor)?;
        if did.is_empty() || !time.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MalformedCursor);
        }
        Ok(RepoCursor {
            created_at,
            did: did.to_owned(),
        })
    }
}

/// Records a head, replacing the previous one (binds did, cid, rev, indexedAt).
const SET: &str = "INSERT INTO repo_root (did, cid, rev, indexedAt) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (did) DO UPDATE SET cid = excluded.cid, rev = excluded.rev,
         indexedAt = excluded.indexedAt";

/// Records `did`'s head, replacing the previous one.
pub async fn set(
    conn: &mut SqliteConnection,
    did: &str,
    head: &RepoHead,
    now: i64,
) -> Result<(), Error> {
    sqlx::query(SET)
        .bind(did.to_owned())
        .bind(head.cid.clone())
        .bind(head.rev.clone())
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// `did`'s recorded head, if any.
pub async fn get(conn: &mut SqliteConnection, did: &str) -> Result<Option<RepoHead>, Error> {
    let row = sqlx::query("SELECT cid, rev FROM repo_root WHERE did = ?1")
        .bind(did.to_owned())
        .fetch_optional(conn)
        .await?;
    Ok(row
        .map(|row| -> Result<RepoHead, sqlx::Error> {
            Ok(RepoHead {
                cid: row.try_get(0)?,
                rev: row.try_get(1)?,
            })
        })
        .transpose()?)
}

/// Forgets `did`'s head. Returns the rows deleted.
pub async fn delete(conn: &mut SqliteConnection, did: &str) -> Result<u64, Error> {
    Ok(sqlx::query("DELETE FROM repo_root WHERE did = ?1")
        .bind(did.to_owned())
        .execute(conn)
        .await?
        .rows_affected())
}

/// The actors without a recorded head (in DID order).
pub async fn actors_without_head(conn: &mut SqliteConnection) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT did FROM actor WHERE NOT EXISTS
             (SELECT 1 FROM repo_root WHERE repo_root.did = actor.did)
         ORDER BY did",
    )
    .fetch_all(conn)
    .await?)
}

/// Up to `limit` accounts with a recorded head, after `after`, by creation time then DID.
pub async fn list(
    conn: &mut SqliteConnection,
    after: Option<&RepoCursor>,
    limit: u32,
) -> Result<Vec<ListedRepo>, Error> {
    const SELECT: &str = "SELECT actor.did, repo_root.cid, repo_root.rev, actor.createdAt,
             actor.deactivatedAt IS NOT NULL, actor.takedownRef IS NOT NULL
         FROM actor JOIN repo_root ON repo_root.did = actor.did";
    let limit = i64::from(limit.max(1));
    let rows = match after {
        Some(cursor) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE (actor.createdAt, actor.did) > (?1, ?2)
                 ORDER BY actor.createdAt, actor.did LIMIT ?3"
            )))
            .bind(cursor.created_at)
            .bind(cursor.did.clone())
            .bind(limit)
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{SELECT} ORDER BY actor.createdAt, actor.did LIMIT ?1"
            )))
            .bind(limit)
            .fetch_all(conn)
            .await?
        }
    };
    rows.iter()
        .map(|row| -> Result<ListedRepo, Error> {
            let deactivated: bool = row.try_get(4)?;
            let takendown: bool = row.try_get(5)?;
            // Takedown takes precedence, as in `AccountInfo::status`.
            let status = if takendown {
                AccountStatus::Takendown
            } else if deactivated {
                AccountStatus::Deactivated
            } else {
                AccountStatus::Active
            };
            Ok(ListedRepo {
                did: row.try_get(0)?,
                head: RepoHead {
                    cid: row.try_get(1)?,
                    rev: row.try_get(2)?,
                },
                created_at: row.try_get(3)?,
                status,
            })
        })
        .collect()
}

impl AccountDb {
    /// Records the head a commit just made durable (`did`'s repository head). Heads recorded
    /// by several accounts at once share one transaction (group commit).
    ///
    /// Not fsynced: the copy is rebuilt from the actor store, which is the truth, whenever it
    /// may have been lost. A commit with events marks its account in the sequencer's
    /// `outbox_pending` (fsynced) before its own transaction, and start-up recovery rewrites
    /// the copy of every marked account; a commit without events (a repository created
    /// without announcing it) is found by the start-up backfill of accounts without a copy.
    /// So a power loss can only make a copy stale until the next start-up's recovery, which
    /// runs before the port opens. A crash of this process loses nothing (WAL in the page
    /// cache).
    pub async fn set_repo_head(&self, did: &str, head: &RepoHead, now: i64) -> Result<(), Error> {
        let Some(direct) = &self.head_direct else {
            return set(&mut *self.pool.acquire().await?, did, head, now).await;
        };
        let request = (did.to_owned(), head.clone(), now);
        let shared = self.head_copies.submit(request, |batch| async move {
            let written = direct
                .run(move |conn| {
                    let tx =
                        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    {
                        let mut set = tx.prepare_cached(SET)?;
                        for (did, head, now) in &batch {
                            set.execute(rusqlite::params![did, head.cid, head.rev, now])?;
                        }
                    }
                    tx.commit()?;
                    Ok(vec![(); batch.len()])
                })
                .await?;
            Ok::<_, Error>(written)
        });
        match shared.await {
            Some(()) => Ok(()),
            None => set(&mut *self.pool.acquire().await?, did, head, now).await,
        }
    }

    /// Records `did`'s repository head durably (fsynced): the repairs of start-up recovery.
    pub async fn repair_repo_head(
        &self,
        did: &str,
        head: &RepoHead,
        now: i64,
    ) -> Result<(), Error> {
        set(&mut *self.pool.acquire().await?, did, head, now).await
    }

    /// `did`'s recorded repository head.
    pub async fn repo_head(&self, did: &str) -> Result<Option<RepoHead>, Error> {
        get(&mut *self.pool.acquire().await?, did).await
    }

    /// Forgets `did`'s repository head (its repository was destroyed).
    pub async fn delete_repo_head(&self, did: &str) -> Result<bool, Error> {
        Ok(delete(&mut *self.pool.acquire().await?, did).await? > 0)
    }

    /// The accounts whose repository head is not recorded (databases from before the table
    /// existed, or a creation interrupted between the two databases).
    pub async fn actors_without_repo_head(&self) -> Result<Vec<String>, Error> {
        actors_without_head(&mut *self.pool.acquire().await?).await
    }

    /// One page of `com.atproto.sync.listRepos`: up to `limit` repositories after `after`, and
    /// the cursor of the next page when this one is full.
    pub async fn list_repos(
        &self,
        after: Option<&RepoCursor>,
        limit: u32,
    ) -> Result<(Vec<ListedRepo>, Option<RepoCursor>), Error> {
        let repos = list(&mut *self.pool.acquire().await?, after, limit).await?;
        let next = if repos.len() >= limit.max(1) as usize {
            repos.last().map(ListedRepo::cursor)
        } else {
            None
        };
        Ok((repos, next))
    }
}

#[cfg(test)]
#[path = "repo_root_tests.rs"]
mod tests;
