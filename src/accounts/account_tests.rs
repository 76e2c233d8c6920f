use super::*;
use crate::accounts::test_support::*;
use crate::accounts::{AccountDb, EmailTokenPurpose};

fn new<'a>(did: &'a Did, handle: &'a Handle, email: &'a str) -> NewAccount<'a> {
    NewAccount {
        did,
        handle,
        email,
        password: PASSWORD,
        invite_code: None,
        invite_required: false,
        now: NOW,
    }
}

fn expected_alice() -> AccountInfo {
    AccountInfo {
        did: "did:plc:alice".into(),
        handle: Some("alice.test".into()),
        email: Some("alice@example.com".into()),
        email_confirmed_at: None,
        created_at: NOW,
        deactivated_at: None,
        delete_after: None,
        takedown_ref: None,
        invites_disabled: false,
        email_auth_factor: false,
    }
}

#[test]
fn identifiers() {
    assert_eq!(
        AccountRef::from_identifier("Alice@Example.com"),
        AccountRef::Email("Alice@Example.com")
    );
    assert_eq!(
        AccountRef::from_identifier("did:plc:alice"),
        AccountRef::Did("did:plc:alice")
    );
    assert_eq!(
        AccountRef::from_identifier("alice.test"),
        AccountRef::Handle("alice.test")
    );
    assert_eq!(AccountStatus::Active.as_lexicon(), None);
    assert_eq!(AccountStatus::Deactivated.as_lexicon(), Some("deactivated"));
    assert_eq!(AccountStatus::Takendown.as_lexicon(), Some("takendown"));
    assert_eq!(AccountStatus::Deleted.as_lexicon(), Some("deleted"));
}

#[tokio::test]
async fn create_and_look_up() {
    let db = db().await;
    let did = did("did:plc:alice");
    let handle = handle("Alice.TEST");
    let created = db
        .create_account(new(&did, &handle, "Alice@Example.COM"))
        .await
        .unwrap();
    assert_eq!(created, expected_alice());
    assert_eq!(created.status(), AccountStatus::Active);

    for which in [
        AccountRef::Did("did:plc:alice"),
        AccountRef::Handle("alice.test"),
        AccountRef::Handle("ALICE.test"),
        AccountRef::Email("alice@example.com"),
        AccountRef::Email("ALICE@EXAMPLE.COM"),
    ] {
        assert_eq!(
            db.get_account(which).await.unwrap(),
            Some(expected_alice()),
            "{which:?}"
        );
    }
    for which in [
        AccountRef::Did("did:plc:ALICE"),
        AccountRef::Handle("bob.test"),
        AccountRef::Email("bob@example.com"),
    ] {
        assert_eq!(db.get_account(which).await.unwrap(), None, "{which:?}");
    }

    // The password is stored as argon2id, never in the clear.
    let mut conn = db.pool().acquire().await.unwrap();
    let phc = password_hash(&mut conn, "did:plc:alice")
        .await
        .unwrap()
        .unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(crate::auth::verify_password(PASSWORD, &phc));
    assert_eq!(password_hash(&mut conn, "did:plc:bob").await.unwrap(), None);
}

#[tokio::test]
async fn duplicates_are_refused() {
    let db = db().await;
    create(&db, "alice").await;
    let bob = did("did:plc:bob");
    let alice_did = did("did:plc:alice");

    let taken = handle("ALICE.test");
    let err = db
        .create_account(new(&bob, &taken, "bob@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::HandleTaken), "{err:?}");

    let bob_handle = handle("bob.test");
    let err = db
        .create_account(new(&bob, &bob_handle, "ALICE@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EmailTaken), "{err:?}");

    let err = db
        .create_account(new(&alice_did, &bob_handle, "bob@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AccountExists), "{err:?}");

    // Nothing of the refused attempts was written.
    assert_eq!(count(&db, "actor", "did", "did:plc:bob").await, 0);
    assert_eq!(count(&db, "account", "email", "bob@example.com").await, 0);
    let actors: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM actor")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(actors, 1);
}

#[tokio::test]
async fn handle_updates() {
    let db = db().await;
    create(&db, "alice").await;
    create(&db, "bob").await;

    db.update_handle("did:plc:alice", &handle("Alice2.test"))
        .await
        .unwrap();
    let alice = db
        .get_account(AccountRef::Handle("alice2.test"))
        .await
        .unwrap();
    assert_eq!(alice.unwrap().did, "did:plc:alice");
    assert_eq!(
        db.get_account(AccountRef::Handle("alice.test"))
            .await
            .unwrap(),
        None
    );
    // Keeping one's own handle is fine; taking another's is not.
    db.update_handle("did:plc:alice", &handle("alice2.test"))
        .await
        .unwrap();
    let err = db
        .update_handle("did:plc:alice", &handle("BOB.test"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::HandleTaken), "{err:?}");
    let err = db
        .update_handle("did:plc:nobody", &handle("free.test"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AccountNotFound), "{err:?}");
    // The released handle can be taken by someone else.
    db.update_handle("did:plc:bob", &handle("alice.test"))
        .await
        .unwrap();
    assert_eq!(
        db.get_account(AccountRef::Handle("alice.test"))
            .await
            .unwrap()
            .unwrap()
            .did,
        "did:plc:bob"
    );
}

#[tokio::test]
async fn email_updates() {
    let db = db().await;
    create(&db, "alice").await;
    create(&db, "bob").await;
    let token = db
        .create_email_token("did:plc:alice", EmailTokenPurpose::ConfirmEmail, NOW)
        .await
        .unwrap();
    db.confirm_email("did:plc:alice", &token, NOW + 5)
        .await
        .unwrap();
    db.create_email_token("did:plc:alice", EmailTokenPurpose::UpdateEmail, NOW)
        .await
        .unwrap();
    assert_eq!(
        db.get_account(AccountRef::Did("did:plc:alice"))
            .await
            .unwrap()
            .unwrap()
            .email_confirmed_at,
        Some(NOW + 5)
    );

    let err = db
        .update_email("did:plc:alice", "Bob@Example.com")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EmailTaken), "{err:?}");

    db.update_email("did:plc:alice", "New.Alice@Example.com")
        .await
        .unwrap();
    let alice = db
        .get_account(AccountRef::Email("new.alice@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.email.as_deref(), Some("new.alice@example.com"));
    assert_eq!(alice.email_confirmed_at, None);
    // Tokens mailed to the old address are void.
    assert_eq!(count(&db, "email_token", "did", "did:plc:alice").await, 0);

    let err = db
        .update_email("did:plc:nobody", "x@example.com")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AccountNotFound), "{err:?}");
}

#[tokio::test]
async fn password_update_ends_sessions() {
    let db = db().await;
    create(&db, "alice").await;
    db.create_session_tokens("did:plc:alice", None, NOW, &signer())
        .await
        .unwrap();
    db.create_email_token("did:plc:alice", EmailTokenPurpose::ResetPassword, NOW)
        .await
        .unwrap();
    db.update_password("did:plc:alice", "new password")
        .await
        .unwrap();
    assert_eq!(count(&db, "refresh_token", "did", "did:plc:alice").await, 0);
    assert_eq!(count(&db, "email_token", "did", "did:plc:alice").await, 0);
    let err = db
        .login("alice.test", PASSWORD, None, NOW + 1)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthFailed), "{err:?}");
    db.login("alice.test", "new password", None, NOW + 2)
        .await
        .unwrap();
    let err = db.update_password("did:plc:nobody", "x").await.unwrap_err();
    assert!(matches!(err, Error::AccountNotFound), "{err:?}");
}

async fn status(db: &AccountDb, did: &str) -> AccountStatus {
    db.account_status(did).await.unwrap()
}

#[tokio::test]
async fn statuses() {
    let db = db().await;
    create(&db, "alice").await;
    let alice = "did:plc:alice";
    assert_eq!(status(&db, alice).await, AccountStatus::Active);
    assert_eq!(status(&db, "did:plc:nobody").await, AccountStatus::Deleted);
    assert_eq!(db.assert_active(alice).await.unwrap(), expected_alice());

    db.deactivate(alice, NOW + 10, Some(NOW + 100))
        .await
        .unwrap();
    assert_eq!(status(&db, alice).await, AccountStatus::Deactivated);
    let info = db
        .get_account(AccountRef::Did(alice))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.deactivated_at, Some(NOW + 10));
    assert_eq!(info.delete_after, Some(NOW + 100));
    let err = db.assert_active(alice).await.unwrap_err();
    assert!(matches!(err, Error::AccountDeactivated), "{err:?}");

    db.activate(alice).await.unwrap();
    assert_eq!(status(&db, alice).await, AccountStatus::Active);
    let info = db
        .get_account(AccountRef::Did(alice))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((info.deactivated_at, info.delete_after), (None, None));

    db.create_session_tokens(alice, None, NOW, &signer())
        .await
        .unwrap();
    db.takedown(alice, "mod-report-17").await.unwrap();
    assert_eq!(status(&db, alice).await, AccountStatus::Takendown);
    let info = db
        .get_account(AccountRef::Did(alice))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.takedown_ref.as_deref(), Some("mod-report-17"));
    // A takedown ends every session.
    assert_eq!(count(&db, "refresh_token", "did", alice).await, 0);
    let err = db.assert_active(alice).await.unwrap_err();
    assert!(matches!(err, Error::AccountTakedown), "{err:?}");

    // Takedown wins over deactivation.
    db.deactivate(alice, NOW + 20, None).await.unwrap();
    assert_eq!(status(&db, alice).await, AccountStatus::Takendown);
    db.untakedown(alice).await.unwrap();
    assert_eq!(status(&db, alice).await, AccountStatus::Deactivated);
    db.activate(alice).await.unwrap();
    assert_eq!(status(&db, alice).await, AccountStatus::Active);

    // The admin path ends sessions whether it sets or lifts the takedown.
    for reference in [Some("mod-report-18"), None] {
        db.create_session_tokens(alice, None, NOW, &signer())
            .await
            .unwrap();
        db.update_takedown(alice, reference).await.unwrap();
        assert_eq!(count(&db, "refresh_token", "did", alice).await, 0);
        let info = db
            .get_account(AccountRef::Did(alice))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info.takedown_ref.as_deref(), reference);
    }
    assert_eq!(status(&db, alice).await, AccountStatus::Active);

    let nobody = "did:plc:nobody";
    let err = db.assert_active(nobody).await.unwrap_err();
    assert!(matches!(err, Error::AccountNotFound), "{err:?}");
    for result in [
        db.deactivate(nobody, NOW, None).await,
        db.activate(nobody).await,
        db.takedown(nobody, "x").await,
        db.untakedown(nobody).await,
        db.update_takedown(nobody, None).await,
        db.set_account_invites_disabled(nobody, true).await,
        db.delete_account(nobody).await,
    ] {
        assert!(matches!(result, Err(Error::AccountNotFound)), "{result:?}");
    }
}

#[tokio::test]
async fn invites_disabled_flag() {
    let db = db().await;
    create(&db, "alice").await;
    db.set_account_invites_disabled("did:plc:alice", true)
        .await
        .unwrap();
    let info = db
        .get_account(AccountRef::Did("did:plc:alice"))
        .await
        .unwrap()
        .unwrap();
    assert!(info.invites_disabled);
    db.set_account_invites_disabled("did:plc:alice", false)
        .await
        .unwrap();
    let info = db
        .get_account(AccountRef::Did("did:plc:alice"))
        .await
        .unwrap()
        .unwrap();
    assert!(!info.invites_disabled);
}

/// Rows keyed by `did` in every table that holds them.
async fn rows_of(db: &AccountDb, did: &str) -> Vec<(&'static str, i64)> {
    let mut rows = Vec::new();
    for (table, column) in [
        ("actor", "did"),
        ("account", "did"),
        ("refresh_token", "did"),
        ("app_password", "did"),
        ("email_token", "did"),
        ("login_attempt", "did"),
        ("invite_code", "forAccount"),
    ] {
        rows.push((table, count(db, table, column, did).await));
    }
    rows
}

#[tokio::test]
async fn delete_removes_everything() {
    let db = db().await;
    // Alice joins with an admin code, gets codes of her own, one of which Bob uses.
    let admin_codes = db
        .create_invite_codes("pds.test", 1, 5, &[], "admin", NOW)
        .await
        .unwrap();
    let admin_code = admin_codes[0].codes[0].clone();
    let alice_did = did("did:plc:alice");
    let alice_handle = handle("alice.test");
    db.create_account(NewAccount {
        invite_code: Some(&admin_code),
        ..new(&alice_did, &alice_handle, "alice@example.com")
    })
    .await
    .unwrap();
    let alice = "did:plc:alice";
    let alice_codes = db
        .create_invite_codes(
            "pds.test",
            2,
            1,
            std::slice::from_ref(&alice_did),
            alice,
            NOW,
        )
        .await
        .unwrap();
    let bob_did = did("did:plc:bob");
    let bob_handle = handle("bob.test");
    db.create_account(NewAccount {
        invite_code: Some(&alice_codes[0].codes[0]),
        ..new(&bob_did, &bob_handle, "bob@example.com")
    })
    .await
    .unwrap();

    let signer = signer();
    db.create_session_tokens(alice, None, NOW, &signer)
        .await
        .unwrap();
    let app = db
        .create_app_password(alice, "phone", false, NOW)
        .await
        .unwrap();
    db.login("alice.test", &app.password, None, NOW)
        .await
        .unwrap();
    db.login("alice.test", "wrong", None, NOW)
        .await
        .unwrap_err();
    db.create_email_token(alice, EmailTokenPurpose::DeleteAccount, NOW)
        .await
        .unwrap();
    db.create_session_tokens("did:plc:bob", None, NOW, &signer)
        .await
        .unwrap();
    let bob_before = rows_of(&db, "did:plc:bob").await;

    assert_eq!(
        rows_of(&db, alice).await,
        [
            ("actor", 1),
            ("account", 1),
            ("refresh_token", 1),
            ("app_password", 1),
            ("email_token", 1),
            ("login_attempt", 2),
            ("invite_code", 2),
        ]
    );
    db.delete_account(alice).await.unwrap();
    assert_eq!(
        rows_of(&db, alice).await,
        [
            ("actor", 0),
            ("account", 0),
            ("refresh_token", 0),
            ("app_password", 0),
            ("email_token", 0),
            ("login_attempt", 0),
            ("invite_code", 0),
        ]
    );
    assert_eq!(
        db.account_status(alice).await.unwrap(),
        AccountStatus::Deleted
    );
    // The uses of Alice's codes went with them; her own use of the admin code stays.
    assert_eq!(
        count(&db, "invite_code_use", "usedBy", "did:plc:bob").await,
        0
    );
    let admin = db.get_invite_code(&admin_code).await.unwrap().unwrap();
    assert_eq!(admin.uses.len(), 1);
    assert_eq!(admin.uses[0].used_by, alice);
    // Bob is untouched.
    assert_eq!(rows_of(&db, "did:plc:bob").await, bob_before);
    let err = db.delete_account(alice).await.unwrap_err();
    assert!(matches!(err, Error::AccountNotFound), "{err:?}");
}
