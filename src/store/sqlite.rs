//! Opening an actor-store database: connection settings, pool size and migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use super::Error;

// The actor-store schema, embedded at compile time from `migrations/actor/`.
pub(crate) use super::migrations::ACTOR as ACTOR_MIGRATOR;

/// Settings for [`open`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Upper bound on pooled connections.
    ///
    /// SQLite admits one writer at a time per database (WAL lets readers run beside it), so
    /// more connections add no write throughput: a few let reads (e.g. a `getRepo` export)
    /// proceed while a commit is written. Each connection is a thread and a page cache, and
    /// there is one pool per account, so the default is small (4).
    pub max_connections: u32,
    /// How long a statement waits for another connection's lock before failing with
    /// `SQLITE_BUSY`. Commits are short, so a few seconds is generous.
    pub busy_timeout: Duration,
    /// How long an unused connection stays open before the pool closes it (`None`: never).
    /// Each open connection is a thread; with one pool per cached account, a short timeout
    /// keeps idle accounts from holding threads. Default 10 minutes (sqlx's default).
    pub idle_timeout: Option<Duration>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(10 * 60)),
        }
    }
}

/// Opens (creating it if missing) the actor-store database at `path` and brings its schema up
/// to date.
///
/// Every connection is set up with:
/// - `journal_mode = WAL`: readers do not block the writer nor it them;
/// - `synchronous = FULL`: the WAL is fsynced at every commit, so a transaction that has
///   committed survives a power loss or OS crash, not only a crash of this process (which is
///   all `NORMAL` guarantees in WAL mode). A committed commit is announced on the firehose;
///   losing it afterwards would make the repository go back to a revision relays have
///   already seen past. The price is one fsync per write transaction, small next to the
///   signing and network work around a repo write;
/// - `busy_timeout` from `opts`, and `foreign_keys = ON`.
pub(crate) async fn open(path: &Path, opts: &OpenOptions) -> Result<SqlitePool, Error> {
    open_migrated(path, opts, &ACTOR_MIGRATOR).await
}

/// [`open`] for any of the server's databases: the same connection settings, with the schema
/// of `migrator` (the account and sequencer databases use it too).
pub(crate) async fn open_migrated(
    path: &Path,
    opts: &OpenOptions,
    migrator: &Migrator,
) -> Result<SqlitePool, Error> {
    let pool = pool_options(opts)
        .connect_with(connect_options(path, opts))
        .await?;
    migrator.run(&pool).await?;
    Ok(pool)
}

/// [`open`] for a store whose schema is known to be current: no connection is made (nor its
/// thread started) until the pool is first used. The hot paths run on
/// [`DirectDb`](super::direct::DirectDb) connections, so a store opened to be written or read
/// once often never uses its pool.
pub(crate) fn open_lazy(path: &Path, opts: &OpenOptions) -> SqlitePool {
    pool_options(opts).connect_lazy_with(connect_options(path, opts))
}

fn connect_options(path: &Path, opts: &OpenOptions) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(opts.busy_timeout)
        .foreign_keys(true)
}

fn pool_options(opts: &OpenOptions) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(opts.max_connections.max(1))
        .idle_timeout(opts.idle_timeout)
}

/// Opens a fresh, private in-memory actor store (for tests), migrated.
///
/// The pool has exactly one connection that is never closed: an in-memory database lives
/// only as long as a connection to it, and several connections would share it through
/// SQLite's shared cache, whose table locks fail at once instead of waiting. Code that holds
/// a transaction must therefore not acquire a second connection from this pool.
pub(crate) async fn open_in_memory() -> Result<SqlitePool, Error> {
    open_in_memory_migrated(&ACTOR_MIGRATOR).await
}

/// [`open_in_memory`] with the schema of `migrator`.
pub(crate) async fn open_in_memory_migrated(migrator: &Migrator) -> Result<SqlitePool, Error> {
    let connect = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(connect)
        .await?;
    migrator.run(&pool).await?;
    Ok(pool)
}

/// Starts a write transaction that takes the database's write lock at once (`BEGIN
/// IMMEDIATE`), waiting up to the busy timeout for it.
///
/// A plain (deferred) transaction that reads before it writes may fail with `SQLITE_BUSY`
/// when it tries to upgrade to a writer while another connection writes; taking the lock
/// first makes concurrent writers queue instead.
pub(crate) async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, Error> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundled SQLite is built with the small per-connection defaults of
    /// `.cargo/config.toml` (an open store's connections held about 135 KB each before).
    #[test]
    fn sqlite_is_built_with_small_connection_defaults() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = stmt
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for expected in ["DEFAULT_LOOKASIDE=1200,8", "DEFAULT_PCACHE_INITSZ=0"] {
            assert!(
                options.iter().any(|o| o == expected),
                "{expected} not in {options:?}"
            );
        }
    }

    #[tokio::test]
    async fn file_database_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("actor.sqlite");
        let opts = OpenOptions {
            max_connections: 3,
            busy_timeout: Duration::from_millis(2500),
            idle_timeout: Some(Duration::from_secs(7)),
        };
        let pool = open(&path, &opts).await.unwrap();
        assert!(path.exists());
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        // 2 = FULL.
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(sync, 2);
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(busy, 2500);
        assert_eq!(pool.options().get_max_connections(), 3);
        assert_eq!(
            pool.options().get_idle_timeout(),
            Some(Duration::from_secs(7))
        );
    }

    async fn applied_versions(pool: &SqlitePool) -> Vec<i64> {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    fn expected_versions() -> Vec<i64> {
        ACTOR_MIGRATOR.iter().map(|m| m.version).collect()
    }

    #[tokio::test]
    async fn migrations_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("actor.sqlite");
        let first = open(&path, &OpenOptions::default()).await.unwrap();
        assert_eq!(expected_versions(), vec![1, 2, 3]);
        assert_eq!(applied_versions(&first).await, vec![1, 2, 3]);
        // A second pool on the same file while the first is open, then a reopen after close.
        let second = open(&path, &OpenOptions::default()).await.unwrap();
        assert_eq!(applied_versions(&second).await, vec![1, 2, 3]);
        second.close().await;
        first.close().await;
        let third = open(&path, &OpenOptions::default()).await.unwrap();
        assert_eq!(applied_versions(&third).await, vec![1, 2, 3]);
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name",
        )
        .fetch_all(&third)
        .await
        .unwrap();
        assert_eq!(
            tables,
            vec![
                "account_pref",
                "blob",
                "record",
                "record_blob",
                "repo_block",
                "repo_root",
                "repo_seq_outbox",
                "sqlite_sequence"
            ]
        );
    }

    #[tokio::test]
    async fn in_memory_databases_are_private_and_migrated() {
        let a = open_in_memory().await.unwrap();
        let b = open_in_memory().await.unwrap();
        assert_eq!(applied_versions(&a).await, vec![1, 2, 3]);
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&a)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        sqlx::query(
            "INSERT INTO repo_block (cid, repoRev, size, content) VALUES (x'01', 'r', 1, x'00')",
        )
        .execute(&a)
        .await
        .unwrap();
        let in_a: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repo_block")
            .fetch_one(&a)
            .await
            .unwrap();
        let in_b: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repo_block")
            .fetch_one(&b)
            .await
            .unwrap();
        assert_eq!((in_a, in_b), (1, 0));
    }

    #[tokio::test]
    async fn begin_write_takes_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let opts = OpenOptions {
            max_connections: 2,
            busy_timeout: Duration::from_millis(100),
            ..OpenOptions::default()
        };
        let pool = open(&dir.path().join("actor.sqlite"), &opts).await.unwrap();
        let tx = begin_write(&pool).await.unwrap();
        // A second writer cannot start while the first holds the lock: it times out busy.
        let err = begin_write(&pool).await.unwrap_err();
        assert!(
            matches!(&err, Error::Database(sqlx::Error::Database(db)) if db.message().contains("locked")),
            "{err:?}"
        );
        tx.commit().await.unwrap();
        begin_write(&pool).await.unwrap().commit().await.unwrap();
    }
}
