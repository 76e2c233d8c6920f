//! Sessions: access/refresh token pairs, and the `refresh_token` table behind them.
//!
//! # Single-use refresh tokens
//!
//! A session is a chain of refresh tokens, its *family* (the `jti` of its first token).
//! Exchanging a token ([`AccountDb::rotate_refresh`]) marks it with its successor (`nextId`)
//! and issues the successor; the exchanged token is kept, marked, until its own expiry, so
//! that presenting it again is recognised as a replay: the whole family is deleted (every
//! token leading to it and descending from it) and [`Error::RefreshTokenReused`] returned.
//! Whoever holds a copy of a stolen token thus either loses the race and is refused, or wins
//! it and is cut off the next time the rightful client refreshes.
//!
//! One exception, for a client that retries because the answer to its refresh was lost or
//! because two of its requests refreshed at once: within [`REFRESH_REUSE_GRACE_SECS`] (30 s)
//! of the exchange, and only while the successor has not been exchanged itself, presenting
//! the old token again returns the same successor (byte-identical: it is re-signed with the
//! same claims, and Ed25519 signatures are deterministic) with a fresh access token. It
//! creates no second branch, so the family stays a single chain. The reference keeps such a
//! window for two hours and never revokes; a 30-second window keeps the retry case and makes
//! any later replay detectable.
//!
//! Deleting a session ([`AccountDb::revoke_refresh`]) deletes its whole family.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::login::AppPasswordInfo;
use super::{AccountDb, Error, account, app_password};
use crate::auth::session::REFRESH_LIFETIME_SECS;
use crate::auth::{AccessScope, RefreshClaims, SessionSigner, new_refresh_jti};

/// How long after a refresh token was exchanged it may be exchanged again for the same
/// successor (a client retrying). Later, presenting it revokes the session.
pub const REFRESH_REUSE_GRACE_SECS: i64 = 30;

/// A session's token pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub did: String,
    pub access_jwt: String,
    pub refresh_jwt: String,
    /// The scope of the access token.
    pub scope: AccessScope,
    /// The app password the session was opened with, if any.
    pub app_password_name: Option<String>,
}

/// A row of `refresh_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRow {
    pub id: String,
    pub did: String,
    pub family: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub app_pass_name: Option<String>,
    pub next_id: Option<String>,
    pub rotated_at: Option<i64>,
}

fn row_from_sql(row: &SqliteRow) -> Result<RefreshRow, sqlx::Error> {
    Ok(RefreshRow {
        id: row.try_get(0)?,
        did: row.try_get(1)?,
        family: row.try_get(2)?,
        created_at: row.try_get(3)?,
        expires_at: row.try_get(4)?,
        app_pass_name: row.try_get(5)?,
        next_id: row.try_get(6)?,
        rotated_at: row.try_get(7)?,
    })
}

pub async fn insert(conn: &mut SqliteConnection, row: &RefreshRow) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO refresh_token
         (id, did, family, createdAt, expiresAt, appPassName, nextId, rotatedAt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(row.id.clone())
    .bind(row.did.clone())
    .bind(row.family.clone())
    .bind(row.created_at)
    .bind(row.expires_at)
    .bind(row.app_pass_name.clone())
    .bind(row.next_id.clone())
    .bind(row.rotated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn select(conn: &mut SqliteConnection, id: &str) -> Result<Option<RefreshRow>, Error> {
    let row = sqlx::query(
        "SELECT id, did, family, createdAt, expiresAt, appPassName, nextId, rotatedAt
         FROM refresh_token WHERE id = ?1",
    )
    .bind(id.to_owned())
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(row_from_sql).transpose()?)
}

/// Marks `id` as exchanged for `next_id` at `now`, unless it already was; returns whether
/// it was marked.
pub async fn mark_rotated(
    conn: &mut SqliteConnection,
    id: &str,
    next_id: &str,
    now: i64,
) -> Result<bool, Error> {
    let marked = sqlx::query(
        "UPDATE refresh_token SET nextId = ?2, rotatedAt = ?3 WHERE id = ?1 AND nextId IS NULL",
    )
    .bind(id.to_owned())
    .bind(next_id.to_owned())
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(marked == 1)
}

/// Deletes every token of the family `family`; returns how many.
pub async fn delete_family(conn: &mut SqliteConnection, family: &str) -> Result<u64, Error> {
    Ok(sqlx::query("DELETE FROM refresh_token WHERE family = ?1")
        .bind(family.to_owned())
        .execute(conn)
        .await?
        .rows_affected())
}

/// Deletes the family of the token `id`; returns how many tokens.
pub async fn delete_family_of(conn: &mut SqliteConnection, id: &str) -> Result<u64, Error> {
    Ok(sqlx::query(
        "DELETE FROM refresh_token
         WHERE family = (SELECT family FROM refresh_token WHERE id = ?1)",
    )
    .bind(id.to_owned())
    .execute(conn)
    .await?
    .rows_affected())
}

/// Deletes every token of `did` (its OAuth sessions too: takedown, password change and
/// reset end them all); returns how many session refresh tokens.
pub async fn delete_by_did(conn: &mut SqliteConnection, did: &str) -> Result<u64, Error> {
    crate::oauth::delete_sessions_of(&mut *conn, did).await?;
    Ok(sqlx::query("DELETE FROM refresh_token WHERE did = ?1")
        .bind(did.to_owned())
        .execute(conn)
        .await?
        .rows_affected())
}

/// Deletes every token of sessions opened with `did`'s app password `name`.
pub async fn delete_by_app_password(
    conn: &mut SqliteConnection,
    did: &str,
    name: &str,
) -> Result<u64, Error> {
    Ok(
        sqlx::query("DELETE FROM refresh_token WHERE did = ?1 AND appPassName = ?2")
            .bind(did.to_owned())
            .bind(name.to_owned())
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Deletes `did`'s tokens that have expired at `now`; returns how many.
pub async fn delete_expired(
    conn: &mut SqliteConnection,
    did: &str,
    now: i64,
) -> Result<u64, Error> {
    Ok(
        sqlx::query("DELETE FROM refresh_token WHERE did = ?1 AND expiresAt <= ?2")
            .bind(did.to_owned())
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

fn scope_for(app_password: Option<bool>) -> AccessScope {
    match app_password {
        None => AccessScope::Access,
        Some(false) => AccessScope::AppPass,
        Some(true) => AccessScope::AppPassPrivileged,
    }
}

impl AccountDb {
    /// Opens a session for `did`: a new family whose first refresh token is stored. With
    /// `app_password`, the access token gets the app-password scope and the session ends
    /// when that app password is revoked.
    pub async fn create_session_tokens(
        &self,
        did: &str,
        app_password: Option<&AppPasswordInfo>,
        now: i64,
        signer: &SessionSigner,
    ) -> Result<Session, Error> {
        let jti = new_refresh_jti();
        let row = RefreshRow {
            id: jti.clone(),
            did: did.to_owned(),
            family: jti.clone(),
            created_at: now,
            expires_at: now.saturating_add(REFRESH_LIFETIME_SECS),
            app_pass_name: app_password.map(|app| app.name.clone()),
            next_id: None,
            rotated_at: None,
        };
        let mut tx = self.begin_write().await?;
        if !account::actor_exists(&mut tx, did).await? {
            return Err(Error::AccountNotFound);
        }
        delete_expired(&mut tx, did, now).await?;
        insert(&mut tx, &row).await?;
        tx.commit().await?;
        let scope = scope_for(app_password.map(|app| app.privileged));
        Ok(Session {
            did: did.to_owned(),
            access_jwt: signer.create_access(did, scope, now),
            refresh_jwt: signer.create_refresh(did, &jti, now),
            scope,
            app_password_name: row.app_pass_name,
        })
    }

    /// Exchanges a refresh token (already verified by
    /// [`SessionSigner::verify_refresh`]) for a new pair; see the module documentation.
    ///
    /// Errors: [`Error::TokenRevoked`] for an unknown token (logged out, revoked, its app
    /// password revoked, its account deleted), [`Error::TokenExpired`],
    /// [`Error::RefreshTokenReused`] (the session is revoked), [`Error::AccountTakedown`].
    pub async fn rotate_refresh(
        &self,
        claims: &RefreshClaims,
        now: i64,
        signer: &SessionSigner,
    ) -> Result<Session, Error> {
        let mut tx = self.begin_write().await?;
        let token = match select(&mut tx, &claims.jti).await? {
            Some(token) if token.did == claims.did => token,
            _ => return Err(Error::TokenRevoked),
        };
        let did = token.did.clone();
        if token.expires_at <= now {
            delete_expired(&mut tx, &did, now).await?;
            tx.commit().await?;
            return Err(Error::TokenExpired);
        }
        delete_expired(&mut tx, &did, now).await?;

        let account = account::select_account(&mut tx, account::AccountRef::Did(&did))
            .await?
            .ok_or(Error::TokenRevoked)?;
        if account.takedown_ref.is_some() {
            return Err(Error::AccountTakedown);
        }
        let privileged = match &token.app_pass_name {
            Some(name) => match app_password::privileged(&mut tx, &did, name).await? {
                Some(privileged) => Some(privileged),
                None => {
                    // Its app password is gone: so is the session.
                    delete_family(&mut tx, &token.family).await?;
                    tx.commit().await?;
                    return Err(Error::TokenRevoked);
                }
            },
            None => None,
        };
        let scope = scope_for(privileged);

        let refresh_jwt = match (&token.next_id, token.rotated_at) {
            (Some(next_id), Some(rotated_at)) => {
                let successor = select(&mut tx, next_id).await?;
                let in_grace = now.saturating_sub(rotated_at) <= REFRESH_REUSE_GRACE_SECS;
                match successor {
                    Some(successor) if in_grace && successor.next_id.is_none() => {
                        signer.create_refresh(&did, &successor.id, successor.created_at)
                    }
                    _ => {
                        delete_family(&mut tx, &token.family).await?;
                        tx.commit().await?;
                        return Err(Error::RefreshTokenReused);
                    }
                }
            }
            _ => {
                let next = RefreshRow {
                    id: new_refresh_jti(),
                    did: did.clone(),
                    family: token.family.clone(),
                    created_at: now,
                    expires_at: now.saturating_add(REFRESH_LIFETIME_SECS),
                    app_pass_name: token.app_pass_name.clone(),
                    next_id: None,
                    rotated_at: None,
                };
                insert(&mut tx, &next).await?;
                if !mark_rotated(&mut tx, &token.id, &next.id, now).await? {
                    return Err(Error::Internal("refresh token rotated concurrently".into()));
                }
                signer.create_refresh(&did, &next.id, now)
            }
        };
        tx.commit().await?;
        Ok(Session {
            access_jwt: signer.create_access(&did, scope, now),
            refresh_jwt,
            scope,
            app_password_name: token.app_pass_name,
            did,
        })
    }

    /// Ends the session the refresh token `jti` belongs to (`deleteSession`): its whole
    /// family. Returns whether there was one.
    pub async fn revoke_refresh(&self, jti: &str) -> Result<bool, Error> {
        let mut conn = self.pool.acquire().await?;
        Ok(delete_family_of(&mut conn, jti).await? > 0)
    }

    /// Ends every session of `did`; returns how many refresh tokens were deleted.
    pub async fn revoke_all_sessions(&self, did: &str) -> Result<u64, Error> {
        let mut conn = self.pool.acquire().await?;
        delete_by_did(&mut conn, did).await
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
