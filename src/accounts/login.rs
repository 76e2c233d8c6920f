//! Logging in with a password, and locking accounts after repeated failures.
//!
//! # Lockout
//!
//! [`LOCKOUT_THRESHOLD`] (5) failed logins of one account within [`LOCKOUT_WINDOW_SECS`]
//! (15 minutes) lock it for [`LOCKOUT_DURATION_SECS`] (15 minutes), counted from the
//! failure that completed the five: while locked every login is refused with
//! [`Error::AccountLocked`], even with the right password, and the password is not checked.
//! Refused attempts are not recorded, so hammering a locked account does not extend the lock
//! and an attacker cannot keep its owner out indefinitely; after it expires the next failures
//! build a new streak (the old ones are by then outside the window).
//!
//! A successful login ends the streak: failures recorded before it never count again. It
//! deletes nothing; attempts are kept for [`LOGIN_ATTEMPT_RETENTION_SECS`] (one day) and
//! pruned on the account's next login after that.
//!
//! Every attempt is written as a failure *before* the (slow) password check, in the same
//! write transaction as the lock check, and turned into a success if the password matches.
//! So concurrent guesses count too: of a burst of parallel wrong passwords, the sixth is
//! refused even while the first five are still being hashed.
//!
//! Logins naming no account are not recorded (there is no account to lock); the caller's
//! [`RateLimiter`](super::RateLimiter) bounds those.

use std::net::IpAddr;

use sqlx::SqliteConnection;

use super::account::{AccountInfo, AccountRef, password_hash, select_account};
use super::app_password::{app_password_hash, find_by_hash};
use super::{AccountDb, Error, verify_password_blocking};
use crate::auth::is_app_password_format;

/// Failed logins that lock an account.
pub const LOCKOUT_THRESHOLD: usize = 5;
/// The span within which [`LOCKOUT_THRESHOLD`] failures lock: from the first to the last
/// of them must be less than this.
pub const LOCKOUT_WINDOW_SECS: i64 = 15 * 60;
/// How long the lock lasts, from the failure that set it.
pub const LOCKOUT_DURATION_SECS: i64 = 15 * 60;
/// How long login attempts are kept.
pub const LOGIN_ATTEMPT_RETENTION_SECS: i64 = 24 * 60 * 60;

/// The app password a login used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPasswordInfo {
    pub name: String,
    pub privileged: bool,
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginResult {
    /// The account, which may be deactivated (the caller reports that status; the
    /// reference lets deactivated accounts log in).
    pub account: AccountInfo,
    /// `None` when the account password was used.
    pub app_password: Option<AppPasswordInfo>,
}

/// When the lock set by `failures` (times of the current streak's failures, ascending) ends,
/// if any five of them fall within the window. Pure, for testing the rule by itself.
pub fn lock_expiry(failures: &[i64]) -> Option<i64> {
    failures
        .windows(LOCKOUT_THRESHOLD)
        .filter_map(|run| {
            let (first, last) = (*run.first()?, *run.last()?);
            (last - first < LOCKOUT_WINDOW_SECS).then(|| last.saturating_add(LOCKOUT_DURATION_SECS))
        })
        .max()
}

/// Times of `did`'s failed attempts since its last successful login that could still
/// contribute to a lock at `now`, ascending.
pub async fn streak_failures(
    conn: &mut SqliteConnection,
    did: &str,
    now: i64,
) -> Result<Vec<i64>, Error> {
    // A lock active at `now` ended a run of failures after now - DURATION, which began
    // after now - DURATION - WINDOW.
    let horizon = now
        .saturating_sub(LOCKOUT_DURATION_SECS)
        .saturating_sub(LOCKOUT_WINDOW_SECS);
    Ok(sqlx::query_scalar(
        "SELECT at FROM login_attempt
         WHERE did = ?1 AND success = 0 AND at > ?2
           AND id > COALESCE(
                 (SELECT MAX(id) FROM login_attempt WHERE did = ?1 AND success = 1), 0)
         ORDER BY at, id",
    )
    .bind(did.to_owned())
    .bind(horizon)
    .fetch_all(conn)
    .await?)
}

/// Records an attempt as a failure; returns its id.
pub async fn insert_attempt(
    conn: &mut SqliteConnection,
    did: &str,
    ip: Option<IpAddr>,
    now: i64,
) -> Result<i64, Error> {
    Ok(sqlx::query_scalar(
        "INSERT INTO login_attempt (did, at, ip, success) VALUES (?1, ?2, ?3, 0) RETURNING id",
    )
    .bind(did.to_owned())
    .bind(now)
    .bind(ip.map(|ip| ip.to_string()))
    .fetch_one(conn)
    .await?)
}

/// Marks an attempt as successful.
pub async fn mark_success(conn: &mut SqliteConnection, id: i64) -> Result<(), Error> {
    sqlx::query("UPDATE login_attempt SET success = 1 WHERE id = ?1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes `did`'s attempts older than the retention period; returns how many.
pub async fn prune_attempts(
    conn: &mut SqliteConnection,
    did: &str,
    now: i64,
) -> Result<u64, Error> {
    Ok(
        sqlx::query("DELETE FROM login_attempt WHERE did = ?1 AND at <= ?2")
            .bind(did.to_owned())
            .bind(now.saturating_sub(LOGIN_ATTEMPT_RETENTION_SECS))
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

impl AccountDb {
    /// Logs in with an identifier (handle, e-mail address or DID, see
    /// [`AccountRef::from_identifier`]) and either the account password or one of its app
    /// passwords.
    ///
    /// Errors: [`Error::AuthFailed`] for an unknown identifier or a wrong password (an
    /// unknown identifier costs the same argon2id check), [`Error::AccountLocked`] while the
    /// account is locked, [`Error::AccountTakedown`] after a correct password for a
    /// taken-down account (checked after the password, so the status is not disclosed to
    /// whoever merely knows the handle).
    ///
    /// A password in the app-password format is looked up among the app passwords first
    /// (one SHA-256 and an indexed query); only when that misses is the account password
    /// checked with argon2id.
    pub async fn login(
        &self,
        identifier: &str,
        password: &str,
        ip: Option<IpAddr>,
        now: i64,
    ) -> Result<LoginResult, Error> {
        let (account, phc) = {
            let mut conn = self.pool.acquire().await?;
            match select_account(&mut conn, AccountRef::from_identifier(identifier)).await? {
                Some(account) => {
                    let phc = password_hash(&mut conn, &account.did).await?;
                    (account, phc)
                }
                None => {
                    drop(conn);
                    self.burn_password_check(password).await?;
                    return Err(Error::AuthFailed);
                }
            }
        };
        let did = account.did.clone();

        let attempt = {
            let mut tx = self.begin_write().await?;
            if let Some(until) = locked_until_at(&mut tx, &did, now).await? {
                return Err(Error::AccountLocked { until });
            }
            prune_attempts(&mut tx, &did, now).await?;
            let attempt = insert_attempt(&mut tx, &did, ip, now).await?;
            tx.commit().await?;
            attempt
        };

        let app_password = if is_app_password_format(password) {
            let mut conn = self.pool.acquire().await?;
            find_by_hash(&mut conn, &did, &app_password_hash(&did, password)).await?
        } else {
            None
        };
        let valid = match (&app_password, phc) {
            (Some(_), _) => true,
            (None, Some(phc)) => verify_password_blocking(password, phc).await?,
            (None, None) => {
                self.burn_password_check(password).await?;
                false
            }
        };
        if !valid {
            return Err(Error::AuthFailed);
        }

        mark_success(&mut *self.pool.acquire().await?, attempt).await?;
        if account.takedown_ref.is_some() {
            return Err(Error::AccountTakedown);
        }
        Ok(LoginResult {
            account,
            app_password,
        })
    }

    /// When the lock on `did` ends, if it is locked at `now`.
    pub async fn locked_until(&self, did: &str, now: i64) -> Result<Option<i64>, Error> {
        locked_until_at(&mut *self.pool.acquire().await?, did, now).await
    }
}

/// When the lock on `did` ends, if it is locked at `now`.
pub async fn locked_until_at(
    conn: &mut SqliteConnection,
    did: &str,
    now: i64,
) -> Result<Option<i64>, Error> {
    let failures = streak_failures(conn, did, now).await?;
    Ok(lock_expiry(&failures).filter(|&until| until > now))
}

#[cfg(test)]
#[path = "login_tests.rs"]
mod tests;
