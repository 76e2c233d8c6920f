//! App passwords: the `app_password` table.
//!
//! Stored as [`app_password_hash`]: SHA-256 over a domain-separation prefix, the DID, a NUL
//! byte and the password, in hex. See the module documentation of [`super`] for why a fast
//! hash is enough for an 80-bit random secret, and why no server secret is mixed in.

use sha2::{Digest, Sha256};
use sqlx::{Row, SqliteConnection};

use super::login::AppPasswordInfo;
use super::{AccountDb, Error, account, flag, session};
use crate::auth::generate_app_password;

/// Domain separation of [`app_password_hash`].
const HASH_CONTEXT: &[u8] = b"rookery/app-password/v1\0";

/// An app password as listed (its secret is never shown again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPassword {
    pub name: String,
    pub created_at: i64,
    pub privileged: bool,
}

/// A newly created app password: the only time its secret is available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedAppPassword {
    pub name: String,
    /// `xxxx-xxxx-xxxx-xxxx`, shown to the user once.
    pub password: String,
    pub created_at: i64,
    pub privileged: bool,
}

/// The stored form of `did`'s app password `password` (64 lowercase hex characters).
pub fn app_password_hash(did: &str, password: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(HASH_CONTEXT);
    hasher.update(did.as_bytes());
    hasher.update([0u8]);
    hasher.update(password.as_bytes());
    hex::encode(hasher.finalize())
}

/// Inserts an app password unless the name is taken; returns whether it was inserted.
pub async fn insert(
    conn: &mut SqliteConnection,
    did: &str,
    name: &str,
    hash: &str,
    privileged: bool,
    now: i64,
) -> Result<bool, Error> {
    let inserted = sqlx::query(
        "INSERT INTO app_password (did, name, passwordHash, createdAt, privileged)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (did, name) DO NOTHING",
    )
    .bind(did.to_owned())
    .bind(name.to_owned())
    .bind(hash.to_owned())
    .bind(now)
    .bind(i64::from(privileged))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The app password of `did` whose stored hash is `hash`, if any.
pub async fn find_by_hash(
    conn: &mut SqliteConnection,
    did: &str,
    hash: &str,
) -> Result<Option<AppPasswordInfo>, Error> {
    let row = sqlx::query(
        "SELECT name, privileged FROM app_password WHERE did = ?1 AND passwordHash = ?2",
    )
    .bind(did.to_owned())
    .bind(hash.to_owned())
    .fetch_optional(conn)
    .await?;
    Ok(row
        .map(|row| {
            Ok::<_, sqlx::Error>(AppPasswordInfo {
                name: row.try_get(0)?,
                privileged: flag(row.try_get(1)?),
            })
        })
        .transpose()?)
}

/// Whether `did`'s app password `name` is privileged; `None` if it does not exist.
pub async fn privileged(
    conn: &mut SqliteConnection,
    did: &str,
    name: &str,
) -> Result<Option<bool>, Error> {
    let value: Option<i64> =
        sqlx::query_scalar("SELECT privileged FROM app_password WHERE did = ?1 AND name = ?2")
            .bind(did.to_owned())
            .bind(name.to_owned())
            .fetch_optional(conn)
            .await?;
    Ok(value.map(flag))
}

/// `did`'s app passwords, newest first.
pub async fn list(conn: &mut SqliteConnection, did: &str) -> Result<Vec<AppPassword>, Error> {
    let rows = sqlx::query(
        "SELECT name, createdAt, privileged FROM app_password WHERE did = ?1
         ORDER BY createdAt DESC, name",
    )
    .bind(did.to_owned())
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(AppPassword {
                name: row.try_get(0)?,
                created_at: row.try_get(1)?,
                privileged: flag(row.try_get(2)?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}

/// Deletes one app password; returns the rows deleted.
pub async fn delete(conn: &mut SqliteConnection, did: &str, name: &str) -> Result<u64, Error> {
    Ok(
        sqlx::query("DELETE FROM app_password WHERE did = ?1 AND name = ?2")
            .bind(did.to_owned())
            .bind(name.to_owned())
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

impl AccountDb {
    /// Creates an app password named `name` for `did`. [`Error::AppPasswordExists`] if the
    /// account already has one of that name.
    pub async fn create_app_password(
        &self,
        did: &str,
        name: &str,
        privileged: bool,
        now: i64,
    ) -> Result<CreatedAppPassword, Error> {
        let password = generate_app_password();
        let hash = app_password_hash(did, &password);
        let mut tx = self.begin_write().await?;
        if !account::actor_exists(&mut tx, did).await? {
            return Err(Error::AccountNotFound);
        }
        if !insert(&mut tx, did, name, &hash, privileged, now).await? {
            return Err(Error::AppPasswordExists);
        }
        tx.commit().await?;
        Ok(CreatedAppPassword {
            name: name.to_owned(),
            password,
            created_at: now,
            privileged,
        })
    }

    /// `did`'s app passwords, newest first.
    pub async fn list_app_passwords(&self, did: &str) -> Result<Vec<AppPassword>, Error> {
        list(&mut *self.pool.acquire().await?, did).await
    }

    /// Deletes the app password and ends every session opened with it. Returns whether it
    /// existed.
    pub async fn revoke_app_password(&self, did: &str, name: &str) -> Result<bool, Error> {
        let mut tx = self.begin_write().await?;
        let deleted = delete(&mut tx, did, name).await?;
        session::delete_by_app_password(&mut tx, did, name).await?;
        tx.commit().await?;
        Ok(deleted > 0)
    }
}

#[cfg(test)]
#[path = "app_password_tests.rs"]
mod tests;
