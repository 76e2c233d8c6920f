//! The account database, `{data}/account.sqlite`: who the accounts are and how they log in.
//!
//! Modelled on the reference PDS's account manager (`account.sqlite`), with these choices:
//!
//! - Account passwords are argon2id PHC strings ([`crate::auth::hash_password`]), hashed and
//!   checked on the blocking pool, never inside a database transaction.
//! - App passwords (80 random bits, see [`crate::auth::generate_app_password`]) are stored as
//!   a domain-separated SHA-256 of the DID and the password, so a login tries every app
//!   password of an account with one indexed lookup instead of one slow hash each. A fast
//!   hash suffices because the secret is uniformly random: recovering one from a stolen
//!   database takes ~2^79 hashes per account (the DID salts it), and the result is a
//!   revocable credential that cannot manage the account. No server secret is mixed in, so
//!   rotating the session key never invalidates app passwords.
//! - Failed logins lock an account ([`login`]); sessions are chains of single-use refresh
//!   tokens whose replay revokes the chain ([`session`]).
//! - Times are UNIX seconds passed in by the caller (`now`): no clock is read here.
//!
//! All SQL lives in functions taking `&mut SqliteConnection`, so each runs on a pooled
//! connection or inside a transaction; [`AccountDb`] methods compose them. Writes that read
//! first run in `BEGIN IMMEDIATE` transactions so concurrent writers queue instead of
//! failing to upgrade their lock.

mod account;
mod app_password;
mod email_token;
mod invite;
mod login;
mod manage;
pub mod rate_limit;
mod repo_root;
mod session;

#[cfg(test)]
mod test_support;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::store::sqlite::{self, OpenOptions};
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};

use crate::auth::PasswordError;

pub use account::{AccountInfo, AccountRef, AccountStatus, NewAccount};
pub use app_password::{AppPassword, CreatedAppPassword, app_password_hash};
pub use email_token::{EMAIL_TOKEN_LIFETIME_SECS, EmailTokenPurpose, generate_email_token};
pub use invite::{
    ADMIN as ADMIN_INVITE_ACCOUNT, AccountCodes, InviteCode, InviteCodeUse, generate_invite_code,
};
pub use login::{
    AppPasswordInfo, LOCKOUT_DURATION_SECS, LOCKOUT_THRESHOLD, LOCKOUT_WINDOW_SECS,
    LOGIN_ATTEMPT_RETENTION_SECS, LoginResult,
};
pub use manage::{EmailUpdate, InviteSort, Page};
pub use rate_limit::{
    CREATE_SESSION_LIMITS, LimitStatus, MAIL_TOKEN_LIMITS, RateLimit, RateLimited, RateLimiter,
    UPDATE_HANDLE_LIMITS,
};
pub use repo_root::{ListedRepo, MalformedCursor, RepoCursor, RepoHead};
pub use session::{REFRESH_REUSE_GRACE_SECS, Session};

// The account-database schema, embedded at compile time from `migrations/account/`.
impl From<crate::store::Error> for Error {
    fn from(e: crate::store::Error) -> Self {
        match e {
            crate::store::Error::Database(e) => Error::Database(e),
            crate::store::Error::Migrate(e) => Error::Migrate(e),
            other => Error::Internal(other.to_string()),
        }
    }
}

pub use crate::store::migrations::ACCOUNT as ACCOUNT_MIGRATOR;

/// The file name of the account database inside the data directory.
pub(crate) const ACCOUNT_DB_FILE: &str = "account.sqlite";

/// Pooled connections to the file database. Every request that authenticates reads here,
/// and WAL lets those reads run beside the one writer; writes are short.
const MAX_CONNECTIONS: u32 = 8;
/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What can go wrong with an account operation. The XRPC layer maps each variant to an
/// error name and status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another account has this handle.
    #[error("handle already taken")]
    HandleTaken,
    /// Another account has this e-mail address (compared case-insensitively).
    #[error("email already taken")]
    EmailTaken,
    /// An account with this DID already exists.
    #[error("an account with this DID already exists")]
    AccountExists,
    /// The invite code is missing (when required), unknown, disabled, used up, or belongs
    /// to a taken-down account.
    #[error("invite code not available")]
    InvalidInviteCode,
    /// No account has this DID (or handle, or e-mail address).
    #[error("account not found")]
    AccountNotFound,
    /// Unknown identifier or wrong password: the same error for both, so logins do not
    /// reveal which accounts exist.
    #[error("invalid identifier or password")]
    AuthFailed,
    /// Too many failed logins: no login is accepted before `until` (UNIX seconds).
    #[error("account locked after too many failed logins, until {until}")]
    AccountLocked { until: i64 },
    /// A rate limit was reached; it allows another request from `reset` (UNIX seconds).
    #[error("rate limit exceeded, resets at {reset}")]
    RateLimited { reset: i64 },
    /// The account is taken down by a moderator.
    #[error("account has been taken down")]
    AccountTakedown,
    /// The account is deactivated by its owner.
    #[error("account is deactivated")]
    AccountDeactivated,
    /// A refresh token that was already exchanged was presented again: its whole session
    /// chain has been revoked.
    #[error("refresh token reused; the session has been revoked")]
    RefreshTokenReused,
    /// The refresh token has expired.
    #[error("token has expired")]
    TokenExpired,
    /// The refresh token is unknown: revoked, logged out, or its account deleted.
    #[error("token has been revoked")]
    TokenRevoked,
    /// The e-mail token does not match.
    #[error("email token is invalid")]
    InvalidEmailToken,
    /// The account's address is confirmed, so changing it needs an `update_email` token.
    #[error("a confirmation token is required")]
    TokenRequired,
    /// A listing cursor that this server did not hand out.
    #[error("malformed cursor")]
    MalformedCursor,
    /// The e-mail token matched but is older than [`EMAIL_TOKEN_LIFETIME_SECS`].
    #[error("email token has expired")]
    ExpiredEmailToken,
    /// The account already has an app password of this name.
    #[error("an app password with this name already exists")]
    AppPasswordExists,
    /// The password could not be hashed.
    #[error(transparent)]
    Hashing(#[from] PasswordError),
    /// Something that should not happen (a failed blocking task, an exhausted retry).
    #[error("internal error: {0}")]
    Internal(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<MalformedCursor> for Error {
    fn from(_: MalformedCursor) -> Self {
        Error::MalformedCursor
    }
}

impl From<RateLimited> for Error {
    fn from(limited: RateLimited) -> Self {
        Error::RateLimited {
            reset: limited.reset,
        }
    }
}

/// The account database: a pool over `account.sqlite`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AccountDb {
    pool: SqlitePool,
    /// An argon2id hash checked against when a login names no account, so that such a
    /// login costs as long as a wrong password. Made on first use.
    dummy_hash: Arc<OnceLock<String>>,
    /// Blocking connections for the hot reads (the account lookup every authenticated or
    /// repository request makes): one hop instead of sqlx's channel round trips. `None` for
    /// an in-memory database, which only its one pooled connection can see.
    direct: Option<Arc<crate::store::direct::DirectDb>>,
    /// The connection the commits' repository-head copies are written on: not fsynced (see
    /// [`AccountDb::set_repo_head`]). `None` for an in-memory database (the pool then).
    head_direct: Option<Arc<crate::store::direct::DirectDb>>,
    /// Shares the transactions of repository-head copies written by commits of different
    /// accounts at the same time: (did, head, now).
    head_copies: Arc<crate::store::group::GroupCommit<(String, RepoHead, i64), ()>>,
}

impl AccountDb {
    /// Opens (creating it if missing) the account database at `path` and migrates it.
    ///
    /// Connections use WAL (logins and token checks read beside the writer) and
    /// `synchronous = FULL`: a committed account creation or token rotation survives power
    /// loss, not only a crash of this process. Losing one would orphan a published DID or
    /// log a client out; writes here are rare enough that the fsync per commit is cheap.
    /// Foreign keys are enforced (deleting an actor cascades to everything it owns).
    pub async fn open(path: &Path) -> Result<Self, Error> {
        let opts = OpenOptions {
            max_connections: MAX_CONNECTIONS,
            busy_timeout: BUSY_TIMEOUT,
            ..OpenOptions::default()
        };
        let pool = sqlite::open_migrated(path, &opts, &ACCOUNT_MIGRATOR).await?;
        Self::migrated(pool, Some(path)).await
    }

    /// A fresh, private in-memory account database (for tests and tools), migrated.
    ///
    /// One connection that never closes: an in-memory database lives only as long as its
    /// connection. Methods never hold a transaction while acquiring a second connection.
    pub async fn open_in_memory() -> Result<Self, Error> {
        let pool = sqlite::open_in_memory_migrated(&ACCOUNT_MIGRATOR).await?;
        Self::migrated(pool, None).await
    }

    /// (Migrations have run.) `file`: the database's path, for its blocking connections.
    async fn migrated(pool: SqlitePool, file: Option<&Path>) -> Result<Self, Error> {
        use crate::store::direct::DirectDb;
        Ok(AccountDb {
            pool,
            direct: file.map(DirectDb::new),
            head_direct: file.map(DirectDb::new_unsynced),
            dummy_hash: Arc::new(OnceLock::new()),
            head_copies: Arc::new(crate::store::group::GroupCommit::new("repository heads")),
        })
    }

    /// The underlying pool (for the SQL functions of this module, and for tests).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        for direct in [&self.direct, &self.head_direct].into_iter().flatten() {
            direct.close();
        }
        self.pool.close().await;
    }

    /// A write transaction holding the write lock from its start (`BEGIN IMMEDIATE`).
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, Error> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Checks `password` against nothing in the time a real check takes.
    async fn burn_password_check(&self, password: &str) -> Result<(), Error> {
        let cell = Arc::clone(&self.dummy_hash);
        let password = password.to_owned();
        hashing(move || {
            let phc = cell.get_or_init(|| {
                crate::auth::hash_password("rookery dummy password").unwrap_or_default()
            });
            crate::auth::verify_password(&password, phc)
        })
        .await
        .map(drop)
    }
}

/// Password hashes computed at once in the process. Each argon2id hash takes tens of
/// milliseconds of one core and 19 MiB of memory: more at once would finish no sooner on a
/// small machine, hold more memory and more of the blocking pool's threads.
pub const CONCURRENT_HASHES: usize = 2;
static HASH_PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_HASHES);

/// Hashes an account password on the blocking pool (argon2id takes tens of milliseconds).
async fn hash_password_blocking(password: &str) -> Result<String, Error> {
    let password = password.to_owned();
    hashing(move || crate::auth::hash_password(&password))
        .await?
        .map_err(Error::from)
}

/// Checks an account password against its PHC string on the blocking pool.
async fn verify_password_blocking(password: &str, phc: String) -> Result<bool, Error> {
    let password = password.to_owned();
    hashing(move || crate::auth::verify_password(&password, &phc)).await
}

/// [`blocking`] for an argon2id computation, once one of [`CONCURRENT_HASHES`] is free.
async fn hashing<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    let _permit = HASH_PERMITS
        .acquire()
        .await
        .map_err(|_| Error::Internal("password hashing is closed".into()))?;
    blocking(f).await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))
}

/// SQLite stores booleans as 0/1 integers.
fn flag(value: i64) -> bool {
    value != 0
}

#[cfg(test)]
mod tests;
