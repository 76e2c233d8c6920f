use std::time::Duration;

use super::test_support::*;
use super::*;

#[tokio::test]
async fn file_database_settings_and_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(ACCOUNT_DB_FILE);
    let db = AccountDb::open(&path).await.unwrap();
    assert!(path.exists());
    let pool = db.pool();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(sync, 2); // FULL
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(busy, i64::try_from(BUSY_TIMEOUT.as_millis()).unwrap());
    assert_eq!(BUSY_TIMEOUT, Duration::from_secs(5));
    assert_eq!(pool.options().get_max_connections(), MAX_CONNECTIONS);

    let alice = create(&db, "alice").await;
    let session = db
        .create_session_tokens(&alice.did, None, NOW, &signer())
        .await
        .unwrap();
    db.close().await;

    // Reopening runs no migration twice and finds everything written.
    let db = AccountDb::open(&path).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(db.pool())
            .await
            .unwrap();
    let expected: Vec<i64> = ACCOUNT_MIGRATOR.iter().map(|m| m.version).collect();
    assert_eq!(versions, expected);
    assert_eq!(versions, vec![1, 2, 3, 4]);
    assert_eq!(
        db.get_account(AccountRef::Did("did:plc:alice"))
            .await
            .unwrap(),
        Some(alice.clone())
    );
    let login = db
        .login("alice.test", PASSWORD, None, NOW + 1)
        .await
        .unwrap();
    assert_eq!(login.account, alice);
    let claims = signer()
        .verify_refresh(&session.refresh_jwt, NOW + 2)
        .unwrap();
    let rotated = db
        .rotate_refresh(&claims, NOW + 2, &signer())
        .await
        .unwrap();
    assert_eq!(rotated.did, "did:plc:alice");
}

#[tokio::test]
async fn schema_tables() {
    let db = db().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table'
         AND name NOT LIKE 'sqlite_%' AND name != '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "account",
            "actor",
            "app_password",
            "email_token",
            "invite_code",
            "invite_code_use",
            "login_attempt",
            "oauth_request",
            "oauth_token",
            "oauth_used_refresh",
            "refresh_token",
            "repo_root",
            "reserved_signing_key",
        ]
    );
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
}

#[test]
fn rate_limited_converts() {
    let err: Error = RateLimited { reset: 42 }.into();
    assert!(matches!(err, Error::RateLimited { reset: 42 }));
    assert_eq!(err.to_string(), "rate limit exceeded, resets at 42");
}

#[test]
fn flags() {
    assert!(!flag(0));
    assert!(flag(1));
}
