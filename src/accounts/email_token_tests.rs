use super::*;
use crate::accounts::AccountRef;
use crate::accounts::test_support::*;

const ALICE: &str = "did:plc:alice";

/// `[A-Z2-7]{5}-[A-Z2-7]{5}`.
fn has_token_shape(token: &str) -> bool {
    let bytes = token.as_bytes();
    bytes.len() == 11
        && bytes.iter().enumerate().all(|(i, &b)| {
            if i == 5 {
                b == b'-'
            } else {
                b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)
            }
        })
}

#[test]
fn token_shape_and_purposes() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..100 {
        let token = generate_email_token();
        assert!(has_token_shape(&token), "{token}");
        seen.insert(token);
    }
    assert_eq!(seen.len(), 100);
    assert_eq!(EMAIL_TOKEN_LIFETIME_SECS, 900);
    let names: Vec<&str> = [
        EmailTokenPurpose::ConfirmEmail,
        EmailTokenPurpose::UpdateEmail,
        EmailTokenPurpose::ResetPassword,
        EmailTokenPurpose::DeleteAccount,
        EmailTokenPurpose::PlcOperation,
    ]
    .into_iter()
    .map(EmailTokenPurpose::as_str)
    .collect();
    assert_eq!(
        names,
        [
            "confirm_email",
            "update_email",
            "reset_password",
            "delete_account",
            "plc_operation"
        ]
    );
    assert_eq!(normalize(" abcde-fgh23 "), "ABCDE-FGH23");
    assert!(constant_time_eq(b"ABC", b"ABC"));
    assert!(!constant_time_eq(b"ABC", b"ABD"));
    assert!(!constant_time_eq(b"ABC", b"ABCD"));
}

#[tokio::test]
async fn valid_once_in_any_case() {
    let db = db().await;
    create(&db, "alice").await;
    let purpose = EmailTokenPurpose::DeleteAccount;
    let token = db.create_email_token(ALICE, purpose, NOW).await.unwrap();
    assert!(has_token_shape(&token), "{token}");

    // Wrong token, wrong purpose, wrong account: invalid, and the token survives.
    for (did, purpose, candidate) in [
        (ALICE, purpose, "AAAAA-AAAAA"),
        (ALICE, EmailTokenPurpose::PlcOperation, token.as_str()),
        ("did:plc:bob", purpose, token.as_str()),
    ] {
        let err = db
            .assert_valid_email_token(did, purpose, candidate, NOW + 1)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidEmailToken), "{err:?}");
    }
    db.assert_valid_email_token(ALICE, purpose, &token.to_lowercase(), NOW + 899)
        .await
        .unwrap();
    // Consumed.
    let err = db
        .assert_valid_email_token(ALICE, purpose, &token, NOW + 2)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidEmailToken), "{err:?}");
}

#[tokio::test]
async fn expiry_and_replacement() {
    let db = db().await;
    create(&db, "alice").await;
    let purpose = EmailTokenPurpose::PlcOperation;
    let first = db.create_email_token(ALICE, purpose, NOW).await.unwrap();
    let err = db
        .assert_valid_email_token(ALICE, purpose, &first, NOW + 900)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ExpiredEmailToken), "{err:?}");
    // An expired token is kept (and stays expired).
    assert_eq!(count(&db, "email_token", "did", ALICE).await, 1);

    // Asking again replaces it: one row, the old token no longer matches.
    let second = db
        .create_email_token(ALICE, purpose, NOW + 1000)
        .await
        .unwrap();
    assert_ne!(first, second);
    assert_eq!(count(&db, "email_token", "did", ALICE).await, 1);
    let err = db
        .assert_valid_email_token(ALICE, purpose, &first, NOW + 1001)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidEmailToken), "{err:?}");
    db.assert_valid_email_token(ALICE, purpose, &second, NOW + 1899)
        .await
        .unwrap();

    let err = db
        .create_email_token("did:plc:nobody", purpose, NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AccountNotFound), "{err:?}");
}

#[tokio::test]
async fn confirm_email() {
    let db = db().await;
    create(&db, "alice").await;
    let token = db
        .create_email_token(ALICE, EmailTokenPurpose::ConfirmEmail, NOW)
        .await
        .unwrap();
    let err = db
        .confirm_email(ALICE, &token, NOW + 900)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ExpiredEmailToken), "{err:?}");
    let err = db
        .confirm_email(ALICE, "AAAAA-AAAAA", NOW + 1)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidEmailToken), "{err:?}");
    let alice = db
        .get_account(AccountRef::Did(ALICE))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.email_confirmed_at, None);

    let token = db
        .create_email_token(ALICE, EmailTokenPurpose::ConfirmEmail, NOW + 10)
        .await
        .unwrap();
    db.confirm_email(ALICE, &token, NOW + 20).await.unwrap();
    let alice = db
        .get_account(AccountRef::Did(ALICE))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.email_confirmed_at, Some(NOW + 20));
    assert_eq!(count(&db, "email_token", "did", ALICE).await, 0);
}

#[tokio::test]
async fn reset_password() {
    let db = db().await;
    create(&db, "alice").await;
    db.create_session_tokens(ALICE, None, NOW, &signer())
        .await
        .unwrap();
    let purpose = EmailTokenPurpose::ResetPassword;
    let token = db.create_email_token(ALICE, purpose, NOW).await.unwrap();

    let err = db
        .reset_password("AAAAA-AAAAA", "new password", NOW + 1)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidEmailToken), "{err:?}");
    let err = db
        .reset_password(&token, "new password", NOW + 900)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ExpiredEmailToken), "{err:?}");

    let did = db
        .reset_password(&token.to_lowercase(), "new password", NOW + 899)
        .await
        .unwrap();
    assert_eq!(did, ALICE);
    assert_eq!(count(&db, "refresh_token", "did", ALICE).await, 0);
    assert_eq!(count(&db, "email_token", "did", ALICE).await, 0);
    db.login(ALICE, "new password", None, NOW + 900)
        .await
        .unwrap();
    let err = db
        .reset_password(&token, "another", NOW + 901)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidEmailToken), "{err:?}");
}

#[tokio::test]
async fn token_sql_functions() {
    let db = db().await;
    create(&db, "alice").await;
    create(&db, "bob").await;
    let mut conn = db.pool().acquire().await.unwrap();
    let purpose = EmailTokenPurpose::UpdateEmail;
    assert!(
        upsert(&mut conn, ALICE, purpose, "AAAAA-BBBBB", NOW)
            .await
            .unwrap()
    );
    // The same token for the same purpose cannot go to another account.
    assert!(
        !upsert(&mut conn, "did:plc:bob", purpose, "AAAAA-BBBBB", NOW)
            .await
            .unwrap()
    );
    // It can for another purpose.
    assert!(
        upsert(
            &mut conn,
            "did:plc:bob",
            EmailTokenPurpose::ConfirmEmail,
            "AAAAA-BBBBB",
            NOW
        )
        .await
        .unwrap()
    );
    // Re-upserting one's own token refreshes its time.
    assert!(
        upsert(&mut conn, ALICE, purpose, "AAAAA-BBBBB", NOW + 5)
            .await
            .unwrap()
    );
    assert_eq!(
        select(&mut conn, ALICE, purpose).await.unwrap(),
        Some(("AAAAA-BBBBB".to_owned(), NOW + 5))
    );
    assert_eq!(
        select_by_token(&mut conn, purpose, "AAAAA-BBBBB")
            .await
            .unwrap(),
        Some((ALICE.to_owned(), NOW + 5))
    );
    assert_eq!(
        select(&mut conn, "did:plc:bob", purpose).await.unwrap(),
        None
    );
    assert_eq!(
        select_by_token(&mut conn, purpose, "CCCCC-DDDDD")
            .await
            .unwrap(),
        None
    );
    assert_eq!(delete(&mut conn, ALICE, purpose).await.unwrap(), 1);
    assert_eq!(delete(&mut conn, ALICE, purpose).await.unwrap(), 0);
    assert_eq!(delete_all_for(&mut conn, "did:plc:bob").await.unwrap(), 1);
    assert_eq!(check_fresh(NOW, NOW + 899).ok(), Some(()));
    assert!(matches!(
        check_fresh(NOW, NOW + 900),
        Err(Error::ExpiredEmailToken)
    ));
}
