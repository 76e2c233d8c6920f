use super::*;
use crate::accounts::test_support::*;
use crate::auth::session::ACCESS_LIFETIME_SECS;

const ALICE: &str = "did:plc:alice";
const DAY: i64 = 24 * 60 * 60;

async fn row(db: &AccountDb, id: &str) -> Option<RefreshRow> {
    select(&mut db.pool().acquire().await.unwrap(), id)
        .await
        .unwrap()
}

fn claims_of(session: &Session, now: i64) -> RefreshClaims {
    signer().verify_refresh(&session.refresh_jwt, now).unwrap()
}

#[tokio::test]
async fn create_session() {
    let db = db().await;
    create(&db, "alice").await;
    let signer = signer();
    let session = db
        .create_session_tokens(ALICE, None, NOW, &signer)
        .await
        .unwrap();
    assert_eq!(session.did, ALICE);
    assert_eq!(session.scope, AccessScope::Access);
    assert_eq!(session.app_password_name, None);
    let access = signer.verify_access(&session.access_jwt, NOW).unwrap();
    assert_eq!(
        (access.did.as_str(), access.scope, access.iat, access.exp),
        (ALICE, AccessScope::Access, NOW, NOW + ACCESS_LIFETIME_SECS)
    );
    let refresh = claims_of(&session, NOW);
    assert_eq!(refresh.exp, NOW + 90 * DAY);
    assert_eq!(
        row(&db, &refresh.jti).await,
        Some(RefreshRow {
            id: refresh.jti.clone(),
            did: ALICE.into(),
            family: refresh.jti.clone(),
            created_at: NOW,
            expires_at: NOW + 90 * DAY,
            app_pass_name: None,
            next_id: None,
            rotated_at: None,
        })
    );

    let err = db
        .create_session_tokens("did:plc:nobody", None, NOW, &signer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AccountNotFound), "{err:?}");
}

#[tokio::test]
async fn app_password_sessions_carry_the_name_and_scope() {
    let db = db().await;
    create(&db, "alice").await;
    let signer = signer();
    db.create_app_password(ALICE, "plain", false, NOW)
        .await
        .unwrap();
    db.create_app_password(ALICE, "chat", true, NOW)
        .await
        .unwrap();
    for (name, privileged, scope) in [
        ("plain", false, AccessScope::AppPass),
        ("chat", true, AccessScope::AppPassPrivileged),
    ] {
        let app = AppPasswordInfo {
            name: name.into(),
            privileged,
        };
        let session = db
            .create_session_tokens(ALICE, Some(&app), NOW, &signer)
            .await
            .unwrap();
        assert_eq!(session.scope, scope);
        assert_eq!(session.app_password_name.as_deref(), Some(name));
        assert_eq!(
            signer
                .verify_access(&session.access_jwt, NOW)
                .unwrap()
                .scope,
            scope
        );
        let claims = claims_of(&session, NOW);
        assert_eq!(
            row(&db, &claims.jti)
                .await
                .unwrap()
                .app_pass_name
                .as_deref(),
            Some(name)
        );
        // Rotation keeps both.
        let rotated = db.rotate_refresh(&claims, NOW + 60, &signer).await.unwrap();
        assert_eq!(rotated.scope, scope);
        assert_eq!(rotated.app_password_name.as_deref(), Some(name));
        assert_eq!(
            signer
                .verify_access(&rotated.access_jwt, NOW + 60)
                .unwrap()
                .scope,
            scope
        );
    }
}

#[tokio::test]
async fn rotation_is_single_use() {
    let db = db().await;
    create(&db, "alice").await;
    let signer = signer();
    let first = db
        .create_session_tokens(ALICE, None, NOW, &signer)
        .await
        .unwrap();
    let first_claims = claims_of(&first, NOW);

    let t1 = NOW + 3600;
    let second = db.rotate_refresh(&first_claims, t1, &signer).await.unwrap();
    let second_claims = claims_of(&second, t1);
    assert_ne!(second_claims.jti, first_claims.jti);
    assert_eq!((second_claims.iat, second_claims.exp), (t1, t1 + 90 * DAY));
    let access = signer.verify_access(&second.access_jwt, t1).unwrap();
    assert_eq!((access.scope, access.iat), (AccessScope::Access, t1));
    // The old token is marked with its successor and kept; the successor joins the family.
    let old = row(&db, &first_claims.jti).await.unwrap();
    assert_eq!(
        (old.next_id.as_deref(), old.rotated_at, old.expires_at),
        (Some(second_claims.jti.as_str()), Some(t1), NOW + 90 * DAY)
    );
    let new = row(&db, &second_claims.jti).await.unwrap();
    assert_eq!(new.family, first_claims.jti);
    assert_eq!((new.next_id, new.rotated_at), (None, None));

    // A retry within the grace window gets the very same successor.
    let retry = db
        .rotate_refresh(&first_claims, t1 + REFRESH_REUSE_GRACE_SECS, &signer)
        .await
        .unwrap();
    assert_eq!(retry.refresh_jwt, second.refresh_jwt);
    assert_eq!(
        signer
            .verify_access(&retry.access_jwt, t1 + REFRESH_REUSE_GRACE_SECS)
            .unwrap()
            .iat,
        t1 + REFRESH_REUSE_GRACE_SECS
    );
    assert_eq!(count(&db, "refresh_token", "did", ALICE).await, 2);

    // The chain goes on from the successor.
    let t2 = t1 + 7200;
    let third = db
        .rotate_refresh(&second_claims, t2, &signer)
        .await
        .unwrap();
    let third_claims = claims_of(&third, t2);
    assert_eq!(
        row(&db, &third_claims.jti).await.unwrap().family,
        first_claims.jti
    );
    assert_eq!(
        count(&db, "refresh_token", "family", &first_claims.jti).await,
        3
    );
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_chain() {
    let db = db().await;
    create(&db, "alice").await;
    let signer = signer();
    let first = db
        .create_session_tokens(ALICE, None, NOW, &signer)
        .await
        .unwrap();
    let other = db
        .create_session_tokens(ALICE, None, NOW, &signer)
        .await
        .unwrap();
    let first_claims = claims_of(&first, NOW);
    let second = db
        .rotate_refresh(&first_claims, NOW + 10, &signer)
        .await
        .unwrap();
    let second_claims = claims_of(&second, NOW + 10);
    let third = db
        .rotate_refresh(&second_claims, NOW + 20, &signer)
        .await
        .unwrap();
    let third_claims = claims_of(&third, NOW + 20);

    // The first token, one second past its grace window.
    let late = NOW + 10 + REFRESH_REUSE_GRACE_SECS + 1;
    let err = db
        .rotate_refresh(&first_claims, late, &signer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RefreshTokenReused), "{err:?}");
    // Every token of the chain is gone, before and after the reused one.
    assert_eq!(
        count(&db, "refresh_token", "family", &first_claims.jti).await,
        0
    );
    for claims in [&first_claims, &second_claims, &third_claims] {
        let err = db
            .rotate_refresh(claims, late + 1, &signer)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TokenRevoked), "{err:?}");
    }
    // Other sessions live on.
    db.rotate_refresh(&claims_of(&other, NOW), late + 2, &signer)
        .await
        .unwrap();
}

#[tokio::test]
async fn reuse_within_grace_after_the_successor_moved_on_revokes() {
    let db = db().await;
    create(&db, "alice").await;
    let signer = signer();
    let first = db
        .create_session_tokens(ALICE, None, NOW, &signer)
        .await
        .unwrap();
    let first_claims = claims_of(&first, NOW);
    let second = db
        .rotate_refresh(&first_claims, NOW + 1, &signer)
        .await
        .unwrap();
    db.rotate_refresh(&claims_of(&second, NOW + 1), NOW + 2, &signer)
        .await
        .unwrap();
    // Still within the first token's grace window, but its successor was exchanged.
    let err = db
        .rotate_refresh(&first_claims, NOW + 3, &signer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RefreshTokenReused), "{err:?}");
    assert_eq!(count(&db, "refresh_token", "did", ALICE).await, 0);
}

#[tokio::test]
async fn expired_and_unknown_tokens() {
    let db = db().await;
    create(&db, "alice").await;
    let signer = signer();
    let session = db
        .create_session_tokens(ALICE, None, NOW, &signer)
        .await
        .unwrap();
    // Verified while still valid, presented after the stored expiry.
    let claims = claims_of(&session, NOW);
    let err = db
        .rotate_refresh(&claims, NOW + 90 * DAY, &signer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TokenExpired), "{err:?}");
    assert_eq!(row(&db, &claims.jti).await, None);

    let unknown = RefreshClaims {
        did: ALICE.into(),
        jti: "no-such-token".into(),
        iat: NOW,
        exp: NOW + 90 * DAY,
    };
    let err = db.rotate_refresh(&unknown, NOW, &signer).await.unwrap_err();
    assert!(matches!(err, Error::TokenRevoked), "{err:?}");

    // A stored token presented under another subject.
    create(&db, "bob").await;
    let session = db
        .create_session_tokens(ALICE, None, NOW, &signer)
        .await
        .unwrap();
    let mut claims = claims_of(&session, NOW);
    claims.did = "did:plc:bob".into();
    let err = db.rotate_refresh(&claims, NOW, &signer).await.unwrap_err();
    assert!(matches!(err, Error::TokenRevoked), "{err:?}");
}

#[tokio::test]
async fn expired_tokens_are_cleaned_up() {
    let db = db().await;
    create(&db, "alice").await;
    let signer = signer();
    db.create_session_tokens(ALICE, None, NOW, &signer)
        .await
        .unwrap();
    let later = NOW + 90 * DAY;
    let fresh = db
        .create_session_tokens(ALICE, None, later, &signer)
        .await
        .unwrap();
    assert_eq!(count(&db, "refresh_token", "did", ALICE).await, 1);
    db.rotate_refresh(&claims_of(&fresh, later), later + 1, &signer)
        .await
        .unwrap();
    assert_eq!(count(&db, "refresh_token", "did", ALICE).await, 2);
}

#[tokio::test]
async fn revocation() {
    let db = db().await;
    create(&db, "alice").await;
    let signer = signer();
    let a = db
        .create_session_tokens(ALICE, None, NOW, &signer)
        .await
        .unwrap();
    let b = db
        .create_session_tokens(ALICE, None, NOW, &signer)
        .await
        .unwrap();
    let a_claims = claims_of(&a, NOW);
    let a2 = db
        .rotate_refresh(&a_claims, NOW + 1, &signer)
        .await
        .unwrap();
    let a2_claims = claims_of(&a2, NOW + 1);

    // Logging out with the current token ends its whole session.
    assert!(db.revoke_refresh(&a2_claims.jti).await.unwrap());
    assert!(!db.revoke_refresh(&a2_claims.jti).await.unwrap());
    assert_eq!(
        count(&db, "refresh_token", "family", &a_claims.jti).await,
        0
    );
    for claims in [&a_claims, &a2_claims] {
        let err = db
            .rotate_refresh(claims, NOW + 2, &signer)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TokenRevoked), "{err:?}");
    }

    db.create_session_tokens(ALICE, None, NOW, &signer)
        .await
        .unwrap();
    assert_eq!(db.revoke_all_sessions(ALICE).await.unwrap(), 2);
    assert_eq!(db.revoke_all_sessions(ALICE).await.unwrap(), 0);
    let err = db
        .rotate_refresh(&claims_of(&b, NOW), NOW + 3, &signer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TokenRevoked), "{err:?}");
}

#[tokio::test]
async fn account_state_is_checked() {
    let db = db().await;
    create(&db, "alice").await;
    let signer = signer();
    let session = db
        .create_session_tokens(ALICE, None, NOW, &signer)
        .await
        .unwrap();
    let claims = claims_of(&session, NOW);
    // A takedown set without revoking (as an older server might have left it).
    let mut conn = db.pool().acquire().await.unwrap();
    crate::accounts::account::set_takedown(&mut conn, ALICE, Some("ref"))
        .await
        .unwrap();
    drop(conn);
    let err = db
        .rotate_refresh(&claims, NOW + 1, &signer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AccountTakedown), "{err:?}");
    db.untakedown(ALICE).await.unwrap();
    // A deactivated account may still refresh (the caller reports its status).
    db.deactivate(ALICE, NOW, None).await.unwrap();
    db.rotate_refresh(&claims, NOW + 2, &signer).await.unwrap();
}

#[tokio::test]
async fn missing_app_password_ends_the_session() {
    let db = db().await;
    create(&db, "alice").await;
    let signer = signer();
    let app = db
        .create_app_password(ALICE, "phone", false, NOW)
        .await
        .unwrap();
    let info = AppPasswordInfo {
        name: app.name,
        privileged: false,
    };
    let session = db
        .create_session_tokens(ALICE, Some(&info), NOW, &signer)
        .await
        .unwrap();
    // Delete the app password alone, leaving its session rows behind.
    let mut conn = db.pool().acquire().await.unwrap();
    crate::accounts::app_password::delete(&mut conn, ALICE, "phone")
        .await
        .unwrap();
    drop(conn);
    let err = db
        .rotate_refresh(&claims_of(&session, NOW), NOW + 1, &signer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TokenRevoked), "{err:?}");
    assert_eq!(count(&db, "refresh_token", "did", ALICE).await, 0);
}

#[tokio::test]
async fn refresh_sql_functions() {
    let db = db().await;
    create(&db, "alice").await;
    let mut conn = db.pool().acquire().await.unwrap();
    let token = |id: &str, expires_at: i64| RefreshRow {
        id: id.into(),
        did: ALICE.into(),
        family: "f".into(),
        created_at: NOW,
        expires_at,
        app_pass_name: Some("app".into()),
        next_id: None,
        rotated_at: None,
    };
    insert(&mut conn, &token("a", NOW + 10)).await.unwrap();
    insert(&mut conn, &token("b", NOW + 20)).await.unwrap();
    assert!(insert(&mut conn, &token("a", NOW)).await.is_err());
    assert!(mark_rotated(&mut conn, "a", "b", NOW + 1).await.unwrap());
    assert!(!mark_rotated(&mut conn, "a", "c", NOW + 2).await.unwrap());
    let a = select(&mut conn, "a").await.unwrap().unwrap();
    assert_eq!(
        (a.next_id.as_deref(), a.rotated_at),
        (Some("b"), Some(NOW + 1))
    );
    assert_eq!(delete_expired(&mut conn, ALICE, NOW + 10).await.unwrap(), 1);
    assert_eq!(
        delete_by_app_password(&mut conn, ALICE, "other")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        delete_by_app_password(&mut conn, ALICE, "app")
            .await
            .unwrap(),
        1
    );
    insert(&mut conn, &token("c", NOW + 10)).await.unwrap();
    assert_eq!(delete_family_of(&mut conn, "c").await.unwrap(), 1);
    assert_eq!(delete_family_of(&mut conn, "c").await.unwrap(), 0);
    insert(&mut conn, &token("d", NOW + 10)).await.unwrap();
    assert_eq!(delete_family(&mut conn, "f").await.unwrap(), 1);
    insert(&mut conn, &token("e", NOW + 10)).await.unwrap();
    assert_eq!(delete_by_did(&mut conn, ALICE).await.unwrap(), 1);
    assert_eq!(scope_for(None), AccessScope::Access);
    assert_eq!(scope_for(Some(false)), AccessScope::AppPass);
    assert_eq!(scope_for(Some(true)), AccessScope::AppPassPrivileged);
}
