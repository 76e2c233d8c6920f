use super::*;
use crate::accounts::test_support::*;
use crate::auth::is_app_password_format;

const ALICE: &str = "did:plc:alice";

#[test]
fn hash_known_answers() {
    // sha256(b"rookery/app-password/v1\0" + did + b"\0" + password), computed independently.
    assert_eq!(
        app_password_hash("did:plc:alice", "abcd-efgh-2345-6789"),
        "0cb60cf0735d5b42409ccab365e0a513b2d10e0c745f4c5ff48d905c3c3f21a8"
    );
    // The DID salts it.
    assert_eq!(
        app_password_hash("did:plc:bob", "abcd-efgh-2345-6789"),
        "95d0f28909a1522201a1cd48c3ce8a7198520d15985060e13c07d0d8890bbe29"
    );
}

#[tokio::test]
async fn create_list_revoke() {
    let db = db().await;
    create(&db, "alice").await;
    let phone = db
        .create_app_password(ALICE, "phone", false, NOW)
        .await
        .unwrap();
    assert_eq!(
        (phone.name.as_str(), phone.created_at, phone.privileged),
        ("phone", NOW, false)
    );
    assert!(
        is_app_password_format(&phone.password),
        "{}",
        phone.password
    );
    let chat = db
        .create_app_password(ALICE, "chat", true, NOW + 10)
        .await
        .unwrap();
    assert_ne!(phone.password, chat.password);

    // Stored hashed, never in the clear.
    let stored: String = sqlx::query_scalar(
        "SELECT passwordHash FROM app_password WHERE did = ?1 AND name = 'phone'",
    )
    .bind(ALICE)
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(stored, app_password_hash(ALICE, &phone.password));

    assert_eq!(
        db.list_app_passwords(ALICE).await.unwrap(),
        [
            AppPassword {
                name: "chat".into(),
                created_at: NOW + 10,
                privileged: true
            },
            AppPassword {
                name: "phone".into(),
                created_at: NOW,
                privileged: false
            },
        ]
    );

    let err = db
        .create_app_password(ALICE, "phone", true, NOW + 20)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AppPasswordExists), "{err:?}");
    let err = db
        .create_app_password("did:plc:nobody", "phone", false, NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AccountNotFound), "{err:?}");

    assert!(db.revoke_app_password(ALICE, "phone").await.unwrap());
    assert!(!db.revoke_app_password(ALICE, "phone").await.unwrap());
    assert_eq!(
        db.list_app_passwords(ALICE).await.unwrap(),
        [AppPassword {
            name: "chat".into(),
            created_at: NOW + 10,
            privileged: true
        }]
    );
    let err = db
        .login("alice.test", &phone.password, None, NOW + 30)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthFailed), "{err:?}");
    assert_eq!(
        db.list_app_passwords("did:plc:nobody").await.unwrap(),
        vec![]
    );
}

#[tokio::test]
async fn revoking_ends_its_sessions_only() {
    let db = db().await;
    create(&db, "alice").await;
    let signer = signer();
    let phone = db
        .create_app_password(ALICE, "phone", false, NOW)
        .await
        .unwrap();
    let laptop = db
        .create_app_password(ALICE, "laptop", false, NOW)
        .await
        .unwrap();
    let phone_login = db
        .login("alice.test", &phone.password, None, NOW)
        .await
        .unwrap();
    let laptop_login = db
        .login("alice.test", &laptop.password, None, NOW)
        .await
        .unwrap();
    let phone_session = db
        .create_session_tokens(ALICE, phone_login.app_password.as_ref(), NOW, &signer)
        .await
        .unwrap();
    let laptop_session = db
        .create_session_tokens(ALICE, laptop_login.app_password.as_ref(), NOW, &signer)
        .await
        .unwrap();
    let main_session = db
        .create_session_tokens(ALICE, None, NOW, &signer)
        .await
        .unwrap();

    db.revoke_app_password(ALICE, "phone").await.unwrap();
    let claims = signer
        .verify_refresh(&phone_session.refresh_jwt, NOW)
        .unwrap();
    let err = db
        .rotate_refresh(&claims, NOW + 1, &signer)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TokenRevoked), "{err:?}");
    for session in [&laptop_session, &main_session] {
        let claims = signer.verify_refresh(&session.refresh_jwt, NOW).unwrap();
        db.rotate_refresh(&claims, NOW + 1, &signer).await.unwrap();
    }
}

#[tokio::test]
async fn app_password_sql_functions() {
    let db = db().await;
    create(&db, "alice").await;
    let mut conn = db.pool().acquire().await.unwrap();
    assert!(
        insert(&mut conn, ALICE, "x", "h1", true, NOW)
            .await
            .unwrap()
    );
    assert!(
        !insert(&mut conn, ALICE, "x", "h2", false, NOW)
            .await
            .unwrap()
    );
    assert_eq!(
        find_by_hash(&mut conn, ALICE, "h1").await.unwrap(),
        Some(AppPasswordInfo {
            name: "x".into(),
            privileged: true
        })
    );
    assert_eq!(find_by_hash(&mut conn, ALICE, "h2").await.unwrap(), None);
    assert_eq!(
        find_by_hash(&mut conn, "did:plc:bob", "h1").await.unwrap(),
        None
    );
    assert_eq!(privileged(&mut conn, ALICE, "x").await.unwrap(), Some(true));
    assert_eq!(privileged(&mut conn, ALICE, "y").await.unwrap(), None);
    assert_eq!(list(&mut conn, ALICE).await.unwrap().len(), 1);
    assert_eq!(delete(&mut conn, ALICE, "x").await.unwrap(), 1);
    assert_eq!(delete(&mut conn, ALICE, "x").await.unwrap(), 0);
}
