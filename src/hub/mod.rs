//! The PocketBase.cn community hub: plugins and case studies as records of the
//! `cn.pocketbase.hub.*` collections in their authors' repositories, and the index that
//! serves the marketplace listings over them (`{data}/hub.sqlite`).
//!
//! - [`records`]: the rules the lexicons cannot express (slug record keys, GitHub URLs) and
//!   what the index keeps of each record.
//! - [`HubIndex`]: the index database. It is derived from the repositories: the hub
//!   registers a commit hook ([`HubIndex::commit_hook`], see [`hook`]) with the repository
//!   writer, which checks hub writes and marks the account in `hub_pending` before the
//!   commit, and after it queues the touched records for an indexer task, off the
//!   acknowledgement's path. The mark is cleared once the index caught up, so a crash
//!   between the commit and the index update leaves it behind and the next start-up
//!   reindexes that account from its repository ([`HubIndex::repair`]). `rookery reindex`
//!   rebuilds everything ([`HubIndex::reindex_all`]).
//! - Moderation: a submission's status is decided by the latest review written by a
//!   current moderator (`hub_status`, recomputed when reviews or moderators change).
//!   Handles and account status come from the account database, attached to every index
//!   connection as `acct`, so submissions of deactivated or taken-down accounts are hidden
//!   at query time without hooks in the account code.

mod commit;
mod hook;
mod moderators;
mod query;
pub mod records;
mod store;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use hook::LostUpdates;
pub use moderators::{Moderator, ModeratorSource};
pub use query::{
    Author, CaseView, CategoryCount, DayCount, ListOptions, Page, PluginView, Sort, Stats,
    StatusFilter, Viewer,
};
pub use records::{CASE, PLUGIN, REVIEW};

use crate::config::Config;
use crate::lexicon::Catalog;

// The index schema, embedded at compile time from `migrations/hub/`.
pub(crate) use crate::store::migrations::HUB as HUB_MIGRATOR;

/// File name of the index database inside the data directory.
pub(crate) const DATABASE_FILE: &str = "hub.sqlite";

/// Plugin records an account may create per hour (when rate limits are enabled).
pub(crate) const PLUGIN_CREATES_PER_HOUR: i64 = 10;
/// Case records an account may create per hour (when rate limits are enabled).
pub(crate) const CASE_CREATES_PER_HOUR: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("hub index database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("hub index migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Boxed: a repository error is large and rare here.
    #[error("repository: {0}")]
    Repo(Box<crate::actor::Error>),
    /// A write breaks a hub rule (slug, GitHub URL): an `InvalidRequest`.
    #[error("{0}")]
    Invalid(String),
    /// Too many plugin or case records created in the last hour: at most `limit` an hour;
    /// another is allowed from `reset` (UNIX seconds).
    #[error("{message}")]
    RateLimited {
        message: String,
        limit: i64,
        reset: i64,
    },
    /// A malformed listing cursor or parameter.
    #[error("{0}")]
    BadRequest(String),
    /// Another database or the lexicons could not be opened (`rookery reindex`).
    #[error("{0}")]
    Open(String),
}

impl From<crate::actor::Error> for Error {
    fn from(e: crate::actor::Error) -> Self {
        Error::Repo(Box::new(e))
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// The hub index. Cheap to clone.
#[derive(Clone)]
pub struct HubIndex(Arc<Inner>);

struct Inner {
    pool: SqlitePool,
    catalog: Arc<Catalog>,
    /// ROOKERY_HUB_MODERATORS: DIDs or handles (of accounts hosted here).
    config_moderators: Vec<String>,
    public_url: String,
    rate_limits: bool,
    /// Serialises index updates: each reads the repository's current state and writes it,
    /// so the last update to run leaves the index at the latest commit.
    write_lock: tokio::sync::Mutex<()>,
    /// The queue of index updates behind the commit hook.
    indexer: hook::Indexer,
}

impl HubIndex {
    /// Opens (creating and migrating) `{data}/hub.sqlite`, attaching the account database
    /// `{data}/account.sqlite` (which must exist) as `acct`.
    ///
    /// `synchronous = NORMAL`: the index is derived data; a transaction lost to a power
    /// failure leaves an account marked pending or is redone by `rookery reindex`.
    pub async fn open(config: &Config, catalog: Arc<Catalog>) -> Result<HubIndex> {
        let data = &config.data_directory;
        let accounts = data.join(crate::accounts::ACCOUNT_DB_FILE);
        let pool = open_pool(&data.join(DATABASE_FILE), &accounts).await?;
        let (indexer, queue) = hook::Indexer::new();
        let hub = HubIndex(Arc::new(Inner {
            pool,
            catalog,
            config_moderators: config.hub_moderators.clone(),
            public_url: config.public_url.trim_end_matches('/').to_owned(),
            rate_limits: config.hub_rate_limits,
            write_lock: tokio::sync::Mutex::new(()),
            indexer,
        }));
        // Ends when the last handle of the index is dropped.
        tokio::spawn(hook::run(Arc::downgrade(&hub.0), queue));
        Ok(hub)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.0.pool
    }

    /// Where a blob of `did` is served: `{public_url}/xrpc/com.atproto.sync.getBlob?…`.
    pub fn blob_url(&self, did: &str, cid: &str) -> String {
        format!(
            "{}/xrpc/com.atproto.sync.getBlob?did={}&cid={}",
            self.0.public_url,
            url::form_urlencoded::byte_serialize(did.as_bytes()).collect::<String>(),
            cid
        )
    }
}

/// `rookery reindex`: rebuilds `{data}/hub.sqlite` from every repository of the data
/// directory (run it with the server stopped). Returns (accounts, records read).
pub async fn reindex_data_directory(config: &Config) -> Result<(usize, usize)> {
    let data = &config.data_directory;
    let open = |what: &str, e: &dyn std::fmt::Display| Error::Open(format!("{what}: {e}"));
    let accounts = crate::accounts::AccountDb::open(&data.join(crate::accounts::ACCOUNT_DB_FILE))
        .await
        .map_err(|e| open("account database", &e))?;
    let sequencer = crate::sequencer::Sequencer::open_in(data)
        .await
        .map_err(|e| open("sequencer database", &e))?;
    let stores = crate::actor::ActorStores::new(data, config.actor_store_cache_size);
    let blobs = crate::blobs::open(&config.blobstore)
        .await
        .map_err(|e| open("blob store", &e))?;
    let repo = crate::actor::ActorRepo::new(stores, sequencer, blobs);
    let catalog = Arc::new(Catalog::builtin().map_err(|e| open("lexicons", &e))?);
    let hub = HubIndex::open(config, catalog).await?;
    let counts = hub.reindex_all(&repo).await?;
    hub.pool().close().await;
    accounts.close().await;
    Ok(counts)
}

async fn open_pool(path: &Path, accounts: &Path) -> Result<SqlitePool> {
    let connect = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let accounts = accounts.to_string_lossy().into_owned();
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .after_connect(move |conn, _meta| {
            let accounts = accounts.clone();
            Box::pin(async move {
                sqlx::query("ATTACH DATABASE ? AS acct")
                    .bind(accounts)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .connect_with(connect)
        .await?;
    HUB_MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// UNIX seconds now.
pub(crate) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests;
