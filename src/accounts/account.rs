//! Accounts: the `actor` and `account` tables — creation, lookup, handle and e-mail
//! changes, deactivation, takedown, deletion.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{AccountDb, Error, flag, hash_password_blocking, invite, session};
use crate::syntax::{Did, Handle};

/// Which account to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRef<'a> {
    /// By DID, compared exactly.
    Did(&'a str),
    /// By handle, compared case-insensitively.
    Handle(&'a str),
    /// By e-mail address, compared case-insensitively.
    Email(&'a str),
}

impl<'a> AccountRef<'a> {
    /// How a login identifier names an account, as the reference reads it: an address if it
    /// contains `@`, a DID if it starts with `did:`, else a handle.
    pub fn from_identifier(identifier: &'a str) -> Self {
        if identifier.contains('@') {
            AccountRef::Email(identifier)
        } else if identifier.starts_with("did:") {
            AccountRef::Did(identifier)
        } else {
            AccountRef::Handle(identifier)
        }
    }
}

/// An account as stored. Times are UNIX seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub did: String,
    /// Lowercase. `None` only for an actor whose handle was removed.
    pub handle: Option<String>,
    /// Lowercase. `None` for an actor without login credentials.
    pub email: Option<String>,
    pub email_confirmed_at: Option<i64>,
    pub created_at: i64,
    pub deactivated_at: Option<i64>,
    /// When a deactivated account may be deleted for good.
    pub delete_after: Option<i64>,
    pub takedown_ref: Option<String>,
    pub invites_disabled: bool,
    /// Whether a password login must also present a mailed sign-in code.
    pub email_auth_factor: bool,
}

impl AccountInfo {
    /// Takedown takes precedence over deactivation, as in the reference.
    pub fn status(&self) -> AccountStatus {
        if self.takedown_ref.is_some() {
            AccountStatus::Takendown
        } else if self.deactivated_at.is_some() {
            AccountStatus::Deactivated
        } else {
            AccountStatus::Active
        }
    }
}

/// The hosting status of an account (`com.atproto.sync.getRepoStatus`' `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    Deactivated,
    Takendown,
    /// No such account (never existed here, or deleted).
    Deleted,
}

impl AccountStatus {
    /// The lexicon's name for a status that is not `Active` (`None` for `Active`).
    pub fn as_lexicon(self) -> Option<&'static str> {
        match self {
            AccountStatus::Active => None,
            AccountStatus::Deactivated => Some("deactivated"),
            AccountStatus::Takendown => Some("takendown"),
            AccountStatus::Deleted => Some("deleted"),
        }
    }
}

/// What [`AccountDb::create_account`] needs.
#[derive(Debug, Clone, Copy)]
pub struct NewAccount<'a> {
    pub did: &'a Did,
    pub handle: &'a Handle,
    /// Stored lowercase.
    pub email: &'a str,
    pub password: &'a str,
    /// Checked and consumed whenever given, even if not required (as the reference).
    pub invite_code: Option<&'a str>,
    /// Whether a missing code is refused.
    pub invite_required: bool,
    pub now: i64,
}

/// The account query with the condition `$cond` (a literal: sqlx takes static SQL only).
macro_rules! select_account_where {
    ($cond:literal) => {
        concat!(
            "SELECT actor.did, actor.handle, account.email, account.emailConfirmedAt, ",
            "actor.createdAt, actor.deactivatedAt, actor.deleteAfter, actor.takedownRef, ",
            "COALESCE(account.invitesDisabled, 0), COALESCE(account.emailAuthFactor, 0) ",
            "FROM actor LEFT JOIN account ON account.did = actor.did WHERE ",
            $cond
        )
    };
}

/// An [`AccountInfo`] from a row of the account query, read with `$row.$get(column)` (sqlx's
/// `try_get` and rusqlite's `get` take the same column indexes).
macro_rules! account_info {
    ($row:expr, $get:ident) => {
        AccountInfo {
            did: $row.$get(0)?,
            handle: $row.$get(1)?,
            email: $row.$get(2)?,
            email_confirmed_at: $row.$get(3)?,
            created_at: $row.$get(4)?,
            deactivated_at: $row.$get(5)?,
            delete_after: $row.$get(6)?,
            takedown_ref: $row.$get(7)?,
            invites_disabled: flag($row.$get(8)?),
            email_auth_factor: flag($row.$get(9)?),
        }
    };
}

fn account_from_row(row: &SqliteRow) -> Result<AccountInfo, sqlx::Error> {
    Ok(account_info!(row, try_get))
}

/// The query of [`select_account`] for `which`, with its one parameter.
fn account_query(which: AccountRef<'_>) -> (&'static str, String) {
    match which {
        AccountRef::Did(did) => (select_account_where!("actor.did = ?1"), did.to_owned()),
        AccountRef::Handle(handle) => (
            select_account_where!("actor.handle = ?1"),
            handle.to_lowercase(),
        ),
        AccountRef::Email(email) => (
            select_account_where!("account.email = ?1"),
            email.to_lowercase(),
        ),
    }
}

/// The account `which` names, if any (deactivated and taken-down accounts included).
pub async fn select_account(
    conn: &mut SqliteConnection,
    which: AccountRef<'_>,
) -> Result<Option<AccountInfo>, Error> {
    let (sql, key) = account_query(which);
    let row = sqlx::query(sql).bind(key).fetch_optional(conn).await?;
    Ok(row.as_ref().map(account_from_row).transpose()?)
}

/// Whether an actor row exists for `did`.
pub async fn actor_exists(conn: &mut SqliteConnection, did: &str) -> Result<bool, Error> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM actor WHERE did = ?1")
        .bind(did.to_owned())
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// The DID holding `handle` (lowercase), if any.
pub async fn handle_owner(
    conn: &mut SqliteConnection,
    handle: &str,
) -> Result<Option<String>, Error> {
    Ok(
        sqlx::query_scalar("SELECT did FROM actor WHERE handle = ?1")
            .bind(handle.to_lowercase())
            .fetch_optional(conn)
            .await?,
    )
}

/// The DID holding the address `email` (any case), if any.
pub async fn email_owner(
    conn: &mut SqliteConnection,
    email: &str,
) -> Result<Option<String>, Error> {
    Ok(
        sqlx::query_scalar("SELECT did FROM account WHERE email = ?1")
            .bind(email.to_lowercase())
            .fetch_optional(conn)
            .await?,
    )
}

/// The argon2id PHC string of `did`'s account password, if it has one.
pub async fn password_hash(
    conn: &mut SqliteConnection,
    did: &str,
) -> Result<Option<String>, Error> {
    Ok(
        sqlx::query_scalar("SELECT passwordHash FROM account WHERE did = ?1")
            .bind(did.to_owned())
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn insert_actor(
    conn: &mut SqliteConnection,
    did: &str,
    handle: &str,
    now: i64,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO actor (did, handle, createdAt) VALUES (?1, ?2, ?3)")
        .bind(did.to_owned())
        .bind(handle.to_lowercase())
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_account(
    conn: &mut SqliteConnection,
    did: &str,
    email: &str,
    password_hash: &str,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO account (did, email, passwordHash) VALUES (?1, ?2, ?3)")
        .bind(did.to_owned())
        .bind(email.to_lowercase())
        .bind(password_hash.to_owned())
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets the handle; returns the number of rows changed (0: no such actor).
pub async fn set_handle(
    conn: &mut SqliteConnection,
    did: &str,
    handle: &str,
) -> Result<u64, Error> {
    Ok(sqlx::query("UPDATE actor SET handle = ?2 WHERE did = ?1")
        .bind(did.to_owned())
        .bind(handle.to_lowercase())
        .execute(conn)
        .await?
        .rows_affected())
}

/// Sets the address and clears its confirmation; returns the rows changed.
pub async fn set_email(conn: &mut SqliteConnection, did: &str, email: &str) -> Result<u64, Error> {
    Ok(
        sqlx::query("UPDATE account SET email = ?2, emailConfirmedAt = NULL WHERE did = ?1")
            .bind(did.to_owned())
            .bind(email.to_lowercase())
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

pub async fn set_email_auth_factor(
    conn: &mut SqliteConnection,
    did: &str,
    enabled: bool,
) -> Result<u64, Error> {
    Ok(
        sqlx::query("UPDATE account SET emailAuthFactor = ?2 WHERE did = ?1")
            .bind(did.to_owned())
            .bind(i64::from(enabled))
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

pub async fn set_email_confirmed(
    conn: &mut SqliteConnection,
    did: &str,
    at: i64,
) -> Result<u64, Error> {
    Ok(
        sqlx::query("UPDATE account SET emailConfirmedAt = ?2 WHERE did = ?1")
            .bind(did.to_owned())
            .bind(at)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

pub async fn set_password_hash(
    conn: &mut SqliteConnection,
    did: &str,
    hash: &str,
) -> Result<u64, Error> {
    Ok(
        sqlx::query("UPDATE account SET passwordHash = ?2 WHERE did = ?1")
            .bind(did.to_owned())
            .bind(hash.to_owned())
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Sets (`Some(at)`) or clears (`None`) deactivation, with its deletion time.
pub async fn set_deactivated(
    conn: &mut SqliteConnection,
    did: &str,
    deactivated_at: Option<i64>,
    delete_after: Option<i64>,
) -> Result<u64, Error> {
    Ok(
        sqlx::query("UPDATE actor SET deactivatedAt = ?2, deleteAfter = ?3 WHERE did = ?1")
            .bind(did.to_owned())
            .bind(deactivated_at)
            .bind(delete_after)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Sets (`Some(ref)`) or clears (`None`) the takedown.
pub async fn set_takedown(
    conn: &mut SqliteConnection,
    did: &str,
    reference: Option<&str>,
) -> Result<u64, Error> {
    Ok(
        sqlx::query("UPDATE actor SET takedownRef = ?2 WHERE did = ?1")
            .bind(did.to_owned())
            .bind(reference.map(str::to_owned))
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

pub async fn set_invites_disabled(
    conn: &mut SqliteConnection,
    did: &str,
    disabled: bool,
) -> Result<u64, Error> {
    Ok(
        sqlx::query("UPDATE account SET invitesDisabled = ?2 WHERE did = ?1")
            .bind(did.to_owned())
            .bind(i64::from(disabled))
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Deletes the actor; the foreign keys cascade to its account, refresh tokens, app
/// passwords, e-mail tokens and login attempts. Returns the rows deleted from `actor`.
pub async fn delete_actor(conn: &mut SqliteConnection, did: &str) -> Result<u64, Error> {
    Ok(sqlx::query("DELETE FROM actor WHERE did = ?1")
        .bind(did.to_owned())
        .execute(conn)
        .await?
        .rows_affected())
}

/// Fails unless `did`, `handle` and `email` are all free and the invite code (if any, or
/// if required) is available.
async fn check_available(conn: &mut SqliteConnection, new: &NewAccount<'_>) -> Result<(), Error> {
    if actor_exists(conn, new.did.as_str()).await? {
        return Err(Error::AccountExists);
    }
    if handle_owner(conn, new.handle.as_str()).await?.is_some() {
        return Err(Error::HandleTaken);
    }
    if email_owner(conn, new.email).await?.is_some() {
        return Err(Error::EmailTaken);
    }
    match new.invite_code {
        Some(code) => invite::ensure_available(conn, code).await,
        None if new.invite_required => Err(Error::InvalidInviteCode),
        None => Ok(()),
    }
}

/// Fails with [`Error::AccountNotFound`] when an update changed no row.
fn found(rows: u64) -> Result<(), Error> {
    if rows == 0 {
        Err(Error::AccountNotFound)
    } else {
        Ok(())
    }
}

impl AccountDb {
    /// Creates an account: checks that the DID, handle and address are free and the invite
    /// code available, then in one transaction consumes the invite use and writes the actor
    /// and account rows. The password is hashed first, outside the transaction (argon2id is
    /// slow); the checks run once before hashing, to fail fast, and again inside it.
    pub async fn create_account(&self, new: NewAccount<'_>) -> Result<AccountInfo, Error> {
        check_available(&mut *self.pool.acquire().await?, &new).await?;
        let hash = hash_password_blocking(new.password).await?;
        let mut tx = self.begin_write().await?;
        check_available(&mut tx, &new).await?;
        let did = new.did.as_str();
        if let Some(code) = new.invite_code {
            invite::record_use(&mut tx, code, did, new.now).await?;
        }
        insert_actor(&mut tx, did, new.handle.as_str(), new.now).await?;
        insert_account(&mut tx, did, new.email, &hash).await?;
        let created = select_account(&mut tx, AccountRef::Did(did))
            .await?
            .ok_or(Error::AccountNotFound)?;
        tx.commit().await?;
        Ok(created)
    }

    /// The account `which` names, whatever its status.
    pub async fn get_account(&self, which: AccountRef<'_>) -> Result<Option<AccountInfo>, Error> {
        let Some(direct) = &self.direct else {
            return select_account(&mut *self.pool.acquire().await?, which).await;
        };
        let (sql, key) = account_query(which);
        Ok(direct
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(sql)?;
                let row = stmt.query_row([key], |row| Ok(account_info!(row, get)));
                Ok(rusqlite::OptionalExtension::optional(row)?)
            })
            .await?)
    }

    /// The account's hosting status; [`AccountStatus::Deleted`] when it does not exist.
    pub async fn account_status(&self, did: &str) -> Result<AccountStatus, Error> {
        Ok(self
            .get_account(AccountRef::Did(did))
            .await?
            .map_or(AccountStatus::Deleted, |account| account.status()))
    }

    /// The account, if it exists and is neither taken down nor deactivated.
    pub async fn assert_active(&self, did: &str) -> Result<AccountInfo, Error> {
        let account = self
            .get_account(AccountRef::Did(did))
            .await?
            .ok_or(Error::AccountNotFound)?;
        match account.status() {
            AccountStatus::Active => Ok(account),
            AccountStatus::Takendown => Err(Error::AccountTakedown),
            AccountStatus::Deactivated => Err(Error::AccountDeactivated),
            AccountStatus::Deleted => Err(Error::AccountNotFound),
        }
    }

    /// Gives `did` the handle `handle`. Keeping one's own handle is a no-op.
    pub async fn update_handle(&self, did: &str, handle: &Handle) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        match handle_owner(&mut tx, handle.as_str()).await? {
            Some(owner) if owner == did => return Ok(()),
            Some(_) => return Err(Error::HandleTaken),
            None => {}
        }
        found(set_handle(&mut tx, did, handle.as_str()).await?)?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes the account's address (unconfirmed from then on) and voids its e-mail
    /// tokens, which were sent to the old address.
    pub async fn update_email(&self, did: &str, email: &str) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        if let Some(owner) = email_owner(&mut tx, email).await?
            && owner != did
        {
            return Err(Error::EmailTaken);
        }
        found(set_email(&mut tx, did, email).await?)?;
        super::email_token::delete_all_for(&mut tx, did).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a new account password and ends every session (as the reference does), and
    /// voids any outstanding password-reset token.
    pub async fn update_password(&self, did: &str, password: &str) -> Result<(), Error> {
        let hash = hash_password_blocking(password).await?;
        let mut tx = self.begin_write().await?;
        found(set_password_hash(&mut tx, did, &hash).await?)?;
        super::email_token::delete(&mut tx, did, super::EmailTokenPurpose::ResetPassword).await?;
        session::delete_by_did(&mut tx, did).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deactivates the account at `now`; it may be deleted after `delete_after`, if given.
    pub async fn deactivate(
        &self,
        did: &str,
        now: i64,
        delete_after: Option<i64>,
    ) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await?;
        found(set_deactivated(&mut conn, did, Some(now), delete_after).await?)
    }

    /// Reactivates a deactivated account.
    pub async fn activate(&self, did: &str) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await?;
        found(set_deactivated(&mut conn, did, None, None).await?)
    }

    /// Takes the account down under the moderation reference `reference`, ending all its
    /// sessions.
    pub async fn takedown(&self, did: &str, reference: &str) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        found(set_takedown(&mut tx, did, Some(reference)).await?)?;
        session::delete_by_did(&mut tx, did).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lifts a takedown.
    pub async fn untakedown(&self, did: &str) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await?;
        found(set_takedown(&mut conn, did, None).await?)
    }

    /// Sets (`Some(ref)`) or lifts (`None`) a takedown and, either way, ends all the
    /// account's sessions, in one transaction (the reference's admin takedown path).
    pub async fn update_takedown(&self, did: &str, reference: Option<&str>) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        found(set_takedown(&mut tx, did, reference).await?)?;
        session::delete_by_did(&mut tx, did).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Allows or forbids the account to create invite codes.
    pub async fn set_account_invites_disabled(
        &self,
        did: &str,
        disabled: bool,
    ) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await?;
        found(set_invites_disabled(&mut conn, did, disabled).await?)
    }

    /// Deletes the account and every row it owns, in one transaction: actor, credentials,
    /// sessions, app passwords, e-mail tokens, login attempts, the repository head, and the
    /// invite codes issued to it (with their uses). The record that it used an invite code is kept, so the
    /// inviter's code stays counted as used.
    pub async fn delete_account(&self, did: &str) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        invite::delete_for_account(&mut tx, did).await?;
        super::repo_root::delete(&mut tx, did).await?;
        found(delete_actor(&mut tx, did).await?)?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "account_tests.rs"]
mod tests;
