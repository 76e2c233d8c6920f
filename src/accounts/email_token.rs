//! Tokens mailed to an account's owner to prove control of its address: the `email_token`
//! table. One live token per account and purpose; asking again replaces it.

use rand::Rng;
use rand::rngs::OsRng;
use sqlx::{Row, SqliteConnection};

use super::{AccountDb, Error, account, hash_password_blocking, session};

/// How long a token is valid after it was requested: 15 minutes, as the reference.
pub const EMAIL_TOKEN_LIFETIME_SECS: i64 = 15 * 60;

/// The characters of a token: uppercase RFC 4648 base32.
const TOKEN_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// How many times a token colliding with another account's is redrawn.
const MAX_DRAWS: usize = 8;

/// What a token authorises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmailTokenPurpose {
    ConfirmEmail,
    UpdateEmail,
    ResetPassword,
    DeleteAccount,
    PlcOperation,
    /// The code of an `emailAuthFactor` sign-in.
    SignIn,
}

impl EmailTokenPurpose {
    /// The value stored in `email_token.purpose` (the reference's names).
    pub fn as_str(self) -> &'static str {
        match self {
            EmailTokenPurpose::ConfirmEmail => "confirm_email",
            EmailTokenPurpose::UpdateEmail => "update_email",
            EmailTokenPurpose::ResetPassword => "reset_password",
            EmailTokenPurpose::DeleteAccount => "delete_account",
            EmailTokenPurpose::PlcOperation => "plc_operation",
            EmailTokenPurpose::SignIn => "2fa_code",
        }
    }
}

/// A new token in the reference's shape: two groups of five uppercase base32 characters
/// (50 bits), `ABC23-4567X`.
pub fn generate_email_token() -> String {
    let mut token = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            token.push('-');
        }
        let index = OsRng.gen_range(0..TOKEN_ALPHABET.len());
        token.push(char::from(TOKEN_ALPHABET[index]));
    }
    token
}

/// Tokens are compared uppercase, so a user may type them in any case.
fn normalize(token: &str) -> String {
    token.trim().to_ascii_uppercase()
}

/// Stores `token` as `did`'s token for `purpose`, replacing any earlier one. Returns false
/// (and stores nothing) if another account holds the same token for the same purpose.
pub async fn upsert(
    conn: &mut SqliteConnection,
    did: &str,
    purpose: EmailTokenPurpose,
    token: &str,
    now: i64,
) -> Result<bool, Error> {
    let taken: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM email_token WHERE purpose = ?1 AND token = ?2 AND did != ?3",
    )
    .bind(purpose.as_str())
    .bind(token.to_owned())
    .bind(did.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    if taken.is_some() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO email_token (purpose, did, token, requestedAt) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (purpose, did) DO UPDATE
         SET token = excluded.token, requestedAt = excluded.requestedAt",
    )
    .bind(purpose.as_str())
    .bind(did.to_owned())
    .bind(token.to_owned())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(true)
}

/// The stored token and its request time for `did` and `purpose`.
pub async fn select(
    conn: &mut SqliteConnection,
    did: &str,
    purpose: EmailTokenPurpose,
) -> Result<Option<(String, i64)>, Error> {
    let row =
        sqlx::query("SELECT token, requestedAt FROM email_token WHERE purpose = ?1 AND did = ?2")
            .bind(purpose.as_str())
            .bind(did.to_owned())
            .fetch_optional(conn)
            .await?;
    Ok(row
        .map(|row| Ok::<_, sqlx::Error>((row.try_get(0)?, row.try_get(1)?)))
        .transpose()?)
}

/// The account holding `token` for `purpose`, and when it was requested.
pub async fn select_by_token(
    conn: &mut SqliteConnection,
    purpose: EmailTokenPurpose,
    token: &str,
) -> Result<Option<(String, i64)>, Error> {
    let row =
        sqlx::query("SELECT did, requestedAt FROM email_token WHERE purpose = ?1 AND token = ?2")
            .bind(purpose.as_str())
            .bind(token.to_owned())
            .fetch_optional(conn)
            .await?;
    Ok(row
        .map(|row| Ok::<_, sqlx::Error>((row.try_get(0)?, row.try_get(1)?)))
        .transpose()?)
}

pub async fn delete(
    conn: &mut SqliteConnection,
    did: &str,
    purpose: EmailTokenPurpose,
) -> Result<u64, Error> {
    Ok(
        sqlx::query("DELETE FROM email_token WHERE purpose = ?1 AND did = ?2")
            .bind(purpose.as_str())
            .bind(did.to_owned())
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

pub async fn delete_all_for(conn: &mut SqliteConnection, did: &str) -> Result<u64, Error> {
    Ok(sqlx::query("DELETE FROM email_token WHERE did = ?1")
        .bind(did.to_owned())
        .execute(conn)
        .await?
        .rows_affected())
}

/// Valid while `now` is before `requested_at` + [`EMAIL_TOKEN_LIFETIME_SECS`].
fn check_fresh(requested_at: i64, now: i64) -> Result<(), Error> {
    if now >= requested_at.saturating_add(EMAIL_TOKEN_LIFETIME_SECS) {
        Err(Error::ExpiredEmailToken)
    } else {
        Ok(())
    }
}

/// Checks `token` against `did`'s token for `purpose` and deletes it when it is valid.
pub(super) async fn consume(
    conn: &mut SqliteConnection,
    did: &str,
    purpose: EmailTokenPurpose,
    token: &str,
    now: i64,
) -> Result<(), Error> {
    let (stored, requested_at) = select(conn, did, purpose)
        .await?
        .ok_or(Error::InvalidEmailToken)?;
    if !constant_time_eq(stored.as_bytes(), normalize(token).as_bytes()) {
        return Err(Error::InvalidEmailToken);
    }
    check_fresh(requested_at, now)?;
    delete(conn, did, purpose).await?;
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AccountDb {
    /// A new token for `did` and `purpose`, replacing any earlier one (to be mailed).
    pub async fn create_email_token(
        &self,
        did: &str,
        purpose: EmailTokenPurpose,
        now: i64,
    ) -> Result<String, Error> {
        let mut tx = self.begin_write().await?;
        if !account::actor_exists(&mut tx, did).await? {
            return Err(Error::AccountNotFound);
        }
        for _ in 0..MAX_DRAWS {
            let token = generate_email_token();
            if upsert(&mut tx, did, purpose, &token, now).await? {
                tx.commit().await?;
                return Ok(token);
            }
        }
        Err(Error::Internal("email tokens keep colliding".into()))
    }

    /// Checks `token` (any case) for `did` and `purpose`, and deletes it on success so it
    /// cannot be used twice. [`Error::InvalidEmailToken`] when it does not match,
    /// [`Error::ExpiredEmailToken`] when it matches but is too old (it is kept then).
    pub async fn assert_valid_email_token(
        &self,
        did: &str,
        purpose: EmailTokenPurpose,
        token: &str,
        now: i64,
    ) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        consume(&mut tx, did, purpose, token, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Confirms the account's address with a `confirm_email` token.
    pub async fn confirm_email(&self, did: &str, token: &str, now: i64) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        consume(&mut tx, did, EmailTokenPurpose::ConfirmEmail, token, now).await?;
        account::set_email_confirmed(&mut tx, did, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a new password with a `reset_password` token, which names the account by
    /// itself; ends every session. Returns the account's DID.
    pub async fn reset_password(
        &self,
        token: &str,
        password: &str,
        now: i64,
    ) -> Result<String, Error> {
        let token = normalize(token);
        let purpose = EmailTokenPurpose::ResetPassword;
        // Check first, so that a bad token costs no hashing.
        let (did, requested_at) =
            select_by_token(&mut *self.pool.acquire().await?, purpose, &token)
                .await?
                .ok_or(Error::InvalidEmailToken)?;
        check_fresh(requested_at, now)?;
        let hash = hash_password_blocking(password).await?;
        let mut tx = self.begin_write().await?;
        consume(&mut tx, &did, purpose, &token, now).await?;
        account::set_password_hash(&mut tx, &did, &hash).await?;
        session::delete_by_did(&mut tx, &did).await?;
        tx.commit().await?;
        Ok(did)
    }
}

#[cfg(test)]
#[path = "email_token_tests.rs"]
mod tests;
