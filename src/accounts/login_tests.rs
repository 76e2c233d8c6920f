use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::accounts::test_support::*;

const ALICE: &str = "did:plc:alice";
const MIN: i64 = 60;

fn locked(result: Result<LoginResult, Error>) -> i64 {
    match result {
        Err(Error::AccountLocked { until }) => until,
        other => panic!("expected AccountLocked, got {other:?}"),
    }
}

fn auth_failed(result: Result<LoginResult, Error>) {
    assert!(matches!(result, Err(Error::AuthFailed)), "{result:?}");
}

async fn fail(db: &AccountDb, at: i64) {
    auth_failed(db.login("alice.test", "wrong password", None, at).await);
}

#[test]
fn lock_rule() {
    assert_eq!(LOCKOUT_THRESHOLD, 5);
    assert_eq!(LOCKOUT_WINDOW_SECS, 900);
    assert_eq!(LOCKOUT_DURATION_SECS, 900);
    assert_eq!(lock_expiry(&[]), None);
    assert_eq!(lock_expiry(&[0, 1, 2, 3]), None);
    assert_eq!(lock_expiry(&[0, 1, 2, 3, 4]), Some(904));
    // Five within 899 s lock; five spanning exactly 900 s do not.
    assert_eq!(lock_expiry(&[0, 100, 200, 300, 899]), Some(1799));
    assert_eq!(lock_expiry(&[0, 100, 200, 300, 900]), None);
    // Any run of five counts; the latest lock wins.
    assert_eq!(lock_expiry(&[0, 1000, 1001, 1002, 1003, 1004]), Some(1904));
    assert_eq!(
        lock_expiry(&[0, 1, 2, 3, 4, 5000, 5001, 5002, 5003, 5004]),
        Some(5904)
    );
}

#[tokio::test]
async fn login_by_handle_email_did() {
    let db = db().await;
    let alice = create(&db, "alice").await;
    for identifier in [
        "alice.test",
        "ALICE.Test",
        "alice@example.com",
        "Alice@EXAMPLE.com",
        "did:plc:alice",
    ] {
        let result = db.login(identifier, PASSWORD, None, NOW).await.unwrap();
        assert_eq!(
            result,
            LoginResult {
                account: alice.clone(),
                app_password: None
            },
            "{identifier}"
        );
    }
    for identifier in ["bob.test", "bob@example.com", "did:plc:bob", "", "@"] {
        auth_failed(db.login(identifier, PASSWORD, None, NOW).await);
    }
    auth_failed(
        db.login("alice.test", "Correct horse battery staple", None, NOW)
            .await,
    );
    auth_failed(db.login("alice.test", "", None, NOW).await);
}

#[tokio::test]
async fn app_password_logins() {
    let db = db().await;
    create(&db, "alice").await;
    let plain = db
        .create_app_password(ALICE, "plain", false, NOW)
        .await
        .unwrap();
    let chat = db
        .create_app_password(ALICE, "chat", true, NOW)
        .await
        .unwrap();
    let result = db
        .login("alice@example.com", &plain.password, None, NOW)
        .await
        .unwrap();
    assert_eq!(
        result.app_password,
        Some(AppPasswordInfo {
            name: "plain".into(),
            privileged: false
        })
    );
    let result = db.login(ALICE, &chat.password, None, NOW).await.unwrap();
    assert_eq!(
        result.app_password,
        Some(AppPasswordInfo {
            name: "chat".into(),
            privileged: true
        })
    );
    // Another account's app password, or a well-formed guess, does not log in.
    create(&db, "bob").await;
    auth_failed(db.login("bob.test", &chat.password, None, NOW).await);
    auth_failed(
        db.login("alice.test", "aaaa-bbbb-cccc-dddd", None, NOW)
            .await,
    );
}

#[tokio::test]
async fn attempts_are_recorded() {
    let db = db().await;
    create(&db, "alice").await;
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
    fail(&db, NOW).await;
    db.login("alice.test", PASSWORD, Some(ip), NOW + 1)
        .await
        .unwrap();
    let rows: Vec<(i64, Option<String>, i64)> =
        sqlx::query_as("SELECT at, ip, success FROM login_attempt WHERE did = ?1 ORDER BY id")
            .bind(ALICE)
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        rows,
        [(NOW, None, 0), (NOW + 1, Some("192.0.2.7".to_owned()), 1)]
    );
    // Unknown accounts leave no trace.
    auth_failed(db.login("bob.test", "x", None, NOW).await);
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_attempt")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(total, 2);
}

#[tokio::test]
async fn five_failures_lock_for_fifteen_minutes() {
    let db = db().await;
    create(&db, "alice").await;
    for i in 0..4 {
        fail(&db, NOW + i * MIN).await;
    }
    assert_eq!(db.locked_until(ALICE, NOW + 4 * MIN).await.unwrap(), None);
    // The fifth failure is reported as such, and locks.
    fail(&db, NOW + 4 * MIN).await;
    let until = NOW + 4 * MIN + 15 * MIN;
    assert_eq!(
        db.locked_until(ALICE, NOW + 5 * MIN).await.unwrap(),
        Some(until)
    );

    // Even the right password is refused while locked, by any identifier or app password.
    let app = db
        .create_app_password(ALICE, "app", false, NOW)
        .await
        .unwrap();
    assert_eq!(
        locked(db.login("alice.test", PASSWORD, None, NOW + 5 * MIN).await),
        until
    );
    assert_eq!(
        locked(db.login(ALICE, PASSWORD, None, until - 1).await),
        until
    );
    assert_eq!(
        locked(
            db.login("alice@example.com", &app.password, None, until - 1)
                .await
        ),
        until
    );
    assert_eq!(
        locked(db.login("alice.test", "wrong", None, until - 1).await),
        until
    );
    // Refused attempts are not recorded, so they do not extend the lock.
    assert_eq!(count(&db, "login_attempt", "did", ALICE).await, 5);

    // Released on the second the lock ends.
    assert_eq!(db.locked_until(ALICE, until).await.unwrap(), None);
    db.login("alice.test", PASSWORD, None, until).await.unwrap();
}

#[tokio::test]
async fn lock_after_expiry_needs_a_new_streak() {
    let db = db().await;
    create(&db, "alice").await;
    for i in 0..5 {
        fail(&db, NOW + i).await;
    }
    let until = NOW + 4 + 15 * MIN;
    assert_eq!(
        locked(db.login("alice.test", PASSWORD, None, NOW + 10).await),
        until
    );
    // After the lock: four more failures do not lock (the old ones left the window)...
    for i in 0..4 {
        fail(&db, until + i).await;
    }
    assert_eq!(db.locked_until(ALICE, until + 4).await.unwrap(), None);
    // ... the fifth does.
    fail(&db, until + 4).await;
    assert_eq!(
        locked(db.login("alice.test", PASSWORD, None, until + 5).await),
        until + 4 + 15 * MIN
    );
}

#[tokio::test]
async fn failures_spread_beyond_the_window_do_not_lock() {
    let db = db().await;
    create(&db, "alice").await;
    // Five failures, the first and fifth exactly 15 minutes apart.
    for i in 0..5 {
        fail(&db, NOW + i * 225).await;
    }
    assert_eq!(db.locked_until(ALICE, NOW + 900).await.unwrap(), None);
    db.login("alice.test", PASSWORD, None, NOW + 901)
        .await
        .unwrap();
    // Failures outside 15 minutes of each other never add up.
    for i in 0..8 {
        fail(&db, NOW + 1000 + i * 300).await;
    }
    assert_eq!(
        db.locked_until(ALICE, NOW + 1000 + 7 * 300).await.unwrap(),
        None
    );
    // Two more close to the last ones complete five within 15 minutes.
    fail(&db, NOW + 1000 + 7 * 300 + 1).await;
    fail(&db, NOW + 1000 + 7 * 300 + 2).await;
    assert_eq!(
        db.locked_until(ALICE, NOW + 1000 + 7 * 300 + 3)
            .await
            .unwrap(),
        Some(NOW + 1000 + 7 * 300 + 2 + 900)
    );
}

#[tokio::test]
async fn success_resets_the_streak() {
    let db = db().await;
    create(&db, "alice").await;
    for i in 0..4 {
        fail(&db, NOW + i).await;
    }
    db.login("alice.test", PASSWORD, None, NOW + 4)
        .await
        .unwrap();
    // Four more failures: eight within the window, but only four since the success.
    for i in 5..9 {
        fail(&db, NOW + i).await;
    }
    assert_eq!(db.locked_until(ALICE, NOW + 9).await.unwrap(), None);
    db.login("alice.test", PASSWORD, None, NOW + 9)
        .await
        .unwrap();
    // The history is kept: every attempt is still there.
    assert_eq!(count(&db, "login_attempt", "did", ALICE).await, 10);
    for i in 10..15 {
        fail(&db, NOW + i).await;
    }
    assert_eq!(
        locked(db.login("alice.test", PASSWORD, None, NOW + 15).await),
        NOW + 14 + 900
    );
}

#[tokio::test]
async fn concurrent_guesses_count() {
    let db = db().await;
    create(&db, "alice").await;
    // Ten wrong passwords at once: at most five are checked, the rest refused as locked.
    let attempts = (0..10).map(|_| db.login("alice.test", "wrong password", None, NOW));
    let results = futures::future::join_all(attempts).await;
    let failed = results
        .iter()
        .filter(|r| matches!(r, Err(Error::AuthFailed)))
        .count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(Error::AccountLocked { until }) if *until == NOW + 900))
        .count();
    assert_eq!((failed, refused), (5, 5));
    assert_eq!(count(&db, "login_attempt", "did", ALICE).await, 5);
}

#[tokio::test]
async fn takedown_and_deactivation() {
    let db = db().await;
    create(&db, "alice").await;
    db.deactivate(ALICE, NOW, None).await.unwrap();
    let result = db
        .login("alice.test", PASSWORD, None, NOW + 1)
        .await
        .unwrap();
    assert_eq!(result.account.deactivated_at, Some(NOW));

    db.takedown(ALICE, "ref").await.unwrap();
    let result = db.login("alice.test", PASSWORD, None, NOW + 2).await;
    assert!(matches!(result, Err(Error::AccountTakedown)), "{result:?}");
    // A wrong password learns nothing of the takedown.
    auth_failed(db.login("alice.test", "wrong", None, NOW + 3).await);
}

#[tokio::test]
async fn old_attempts_are_pruned() {
    let db = db().await;
    create(&db, "alice").await;
    fail(&db, NOW).await;
    fail(&db, NOW + 1).await;
    assert_eq!(count(&db, "login_attempt", "did", ALICE).await, 2);
    // A day after the first: it goes, the second stays, the new one is added.
    db.login(
        "alice.test",
        PASSWORD,
        None,
        NOW + LOGIN_ATTEMPT_RETENTION_SECS,
    )
    .await
    .unwrap();
    let ats: Vec<i64> =
        sqlx::query_scalar("SELECT at FROM login_attempt WHERE did = ?1 ORDER BY id")
            .bind(ALICE)
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(ats, [NOW + 1, NOW + LOGIN_ATTEMPT_RETENTION_SECS]);
}

#[tokio::test]
async fn attempt_sql_functions() {
    let db = db().await;
    create(&db, "alice").await;
    let mut conn = db.pool().acquire().await.unwrap();
    let first = insert_attempt(&mut conn, ALICE, None, NOW).await.unwrap();
    let second = insert_attempt(&mut conn, ALICE, None, NOW + 1)
        .await
        .unwrap();
    assert!(second > first);
    assert_eq!(
        streak_failures(&mut conn, ALICE, NOW + 2).await.unwrap(),
        [NOW, NOW + 1]
    );
    // Failures that cannot matter any more (older than window + lock) are not read.
    assert_eq!(
        streak_failures(&mut conn, ALICE, NOW + 1800).await.unwrap(),
        [NOW + 1]
    );
    mark_success(&mut conn, first).await.unwrap();
    assert_eq!(
        streak_failures(&mut conn, ALICE, NOW + 2).await.unwrap(),
        [NOW + 1]
    );
    mark_success(&mut conn, second).await.unwrap();
    assert_eq!(
        streak_failures(&mut conn, ALICE, NOW + 2).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(
        locked_until_at(&mut conn, ALICE, NOW + 2).await.unwrap(),
        None
    );
    assert_eq!(
        prune_attempts(&mut conn, ALICE, NOW + LOGIN_ATTEMPT_RETENTION_SECS + 1)
            .await
            .unwrap(),
        2
    );
}
