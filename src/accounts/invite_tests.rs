use super::*;
use crate::accounts::test_support::*;
use crate::accounts::{AccountInfo, NewAccount};

/// `{prefix}-[a-z2-7]{5}-[a-z2-7]{5}`.
fn has_code_shape(code: &str, prefix: &str) -> bool {
    let Some(rest) = code.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    let bytes = rest.as_bytes();
    bytes.len() == 11
        && bytes.iter().enumerate().all(|(i, &b)| {
            if i == 5 {
                b == b'-'
            } else {
                b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)
            }
        })
}

async fn join(
    db: &AccountDb,
    name: &str,
    code: Option<&str>,
    required: bool,
) -> Result<AccountInfo, Error> {
    let did = did(&format!("did:plc:{name}"));
    let handle = handle(&format!("{name}.test"));
    let email = format!("{name}@example.com");
    db.create_account(NewAccount {
        did: &did,
        handle: &handle,
        email: &email,
        password: PASSWORD,
        invite_code: code,
        invite_required: required,
        now: NOW + 60,
    })
    .await
}

#[test]
fn code_shape() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..100 {
        let code = generate_invite_code("pds.example.com");
        assert!(has_code_shape(&code, "pds-example-com"), "{code}");
        seen.insert(code);
    }
    assert_eq!(seen.len(), 100);
    assert!(has_code_shape(
        &generate_invite_code("localhost"),
        "localhost"
    ));
    assert!(!has_code_shape(
        "pds-example-com-abcde-fghi1",
        "pds-example-com"
    ));
}

#[tokio::test]
async fn admin_codes() {
    let db = db().await;
    let created = db
        .create_invite_codes("pds.test", 3, 2, &[], "admin", NOW)
        .await
        .unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].account, ADMIN);
    assert_eq!(created[0].codes.len(), 3);
    for code in &created[0].codes {
        assert!(has_code_shape(code, "pds-test"), "{code}");
        assert_eq!(
            db.get_invite_code(code).await.unwrap(),
            Some(InviteCode {
                code: code.clone(),
                available_uses: 2,
                disabled: false,
                for_account: "admin".into(),
                created_by: "admin".into(),
                created_at: NOW,
                uses: vec![],
            })
        );
    }
    assert_eq!(
        db.get_invite_code("pds-test-aaaaa-aaaaa").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn codes_for_accounts_and_uses() {
    let db = db().await;
    create(&db, "alice").await;
    create(&db, "bob").await;
    let created = db
        .create_invite_codes(
            "pds.test",
            2,
            1,
            &[did("did:plc:alice"), did("did:plc:bob")],
            "admin",
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        created
            .iter()
            .map(|c| (c.account.as_str(), c.codes.len()))
            .collect::<Vec<_>>(),
        [("did:plc:alice", 2), ("did:plc:bob", 2)]
    );
    let alice_code = created[0].codes[0].clone();
    join(&db, "carol", Some(&alice_code), true).await.unwrap();

    let mut codes = db.get_account_invite_codes("did:plc:alice").await.unwrap();
    codes.sort_by(|a, b| a.code.cmp(&b.code));
    let mut expected: Vec<InviteCode> = created[0]
        .codes
        .iter()
        .map(|code| InviteCode {
            code: code.clone(),
            available_uses: 1,
            disabled: false,
            for_account: "did:plc:alice".into(),
            created_by: "admin".into(),
            created_at: NOW,
            uses: if *code == alice_code {
                vec![InviteCodeUse {
                    used_by: "did:plc:carol".into(),
                    used_at: NOW + 60,
                }]
            } else {
                vec![]
            },
        })
        .collect();
    expected.sort_by(|a, b| a.code.cmp(&b.code));
    assert_eq!(codes, expected);
    assert_eq!(
        db.get_account_invite_codes("did:plc:nobody").await.unwrap(),
        vec![]
    );
}

#[tokio::test]
async fn invite_required_consumed_exhausted() {
    let db = db().await;
    let err = join(&db, "alice", None, true).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInviteCode), "{err:?}");
    let err = join(&db, "alice", Some("pds-test-nope2-nope3"), true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInviteCode), "{err:?}");
    // An unknown code is refused even where none is required.
    let err = join(&db, "alice", Some("pds-test-nope2-nope3"), false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInviteCode), "{err:?}");
    assert_eq!(count(&db, "actor", "did", "did:plc:alice").await, 0);

    let code = db
        .create_invite_codes("pds.test", 1, 2, &[], "admin", NOW)
        .await
        .unwrap()[0]
        .codes[0]
        .clone();
    join(&db, "alice", Some(&code), true).await.unwrap();
    join(&db, "bob", Some(&code), false).await.unwrap();
    let err = join(&db, "carol", Some(&code), true).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInviteCode), "{err:?}");
    let uses = db.get_invite_code(&code).await.unwrap().unwrap().uses;
    let mut users: Vec<&str> = uses.iter().map(|u| u.used_by.as_str()).collect();
    users.sort_unstable();
    assert_eq!(users, ["did:plc:alice", "did:plc:bob"]);
    assert_eq!(count(&db, "actor", "did", "did:plc:carol").await, 0);

    // Without a code, where none is required.
    join(&db, "dave", None, false).await.unwrap();
}

#[tokio::test]
async fn disabled_and_taken_down_codes() {
    let db = db().await;
    create(&db, "alice").await;
    create(&db, "bob").await;
    let admin = db
        .create_invite_codes("pds.test", 2, 5, &[], "admin", NOW)
        .await
        .unwrap()
        .remove(0)
        .codes;
    let for_alice = db
        .create_invite_codes("pds.test", 2, 5, &[did("did:plc:alice")], "admin", NOW)
        .await
        .unwrap()
        .remove(0)
        .codes;
    let for_bob = db
        .create_invite_codes("pds.test", 1, 5, &[did("did:plc:bob")], "admin", NOW)
        .await
        .unwrap()
        .remove(0)
        .codes;

    // One code by name, both of Alice's by account; unknown names change nothing.
    let changed = db
        .disable_invite_codes(
            &[admin[0].clone(), "pds-test-nope2-nope3".into()],
            &["did:plc:alice".into(), "did:plc:nobody".into()],
        )
        .await
        .unwrap();
    assert_eq!(changed, 3);
    for code in [&admin[0], &for_alice[0], &for_alice[1]] {
        assert!(db.get_invite_code(code).await.unwrap().unwrap().disabled);
        let err = join(&db, "carol", Some(code), true).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInviteCode), "{err:?}");
    }
    assert!(
        !db.get_invite_code(&admin[1])
            .await
            .unwrap()
            .unwrap()
            .disabled
    );

    // The codes of a taken-down account cannot be used.
    db.takedown("did:plc:bob", "spam").await.unwrap();
    let err = join(&db, "carol", Some(&for_bob[0]), true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInviteCode), "{err:?}");
    db.untakedown("did:plc:bob").await.unwrap();
    join(&db, "carol", Some(&for_bob[0]), true).await.unwrap();
    join(&db, "dave", Some(&admin[1]), true).await.unwrap();
}

#[tokio::test]
async fn code_sql_functions() {
    let db = db().await;
    let mut conn = db.pool().acquire().await.unwrap();
    assert!(
        insert_code(&mut conn, "c-1", 1, ADMIN, ADMIN, NOW)
            .await
            .unwrap()
    );
    // A colliding code is reported, not overwritten.
    assert!(
        !insert_code(&mut conn, "c-1", 9, "did:plc:x", ADMIN, NOW + 1)
            .await
            .unwrap()
    );
    let stored = select_code(&mut conn, "c-1").await.unwrap().unwrap();
    assert_eq!((stored.available_uses, stored.created_at), (1, NOW));
    ensure_available(&mut conn, "c-1").await.unwrap();
    record_use(&mut conn, "c-1", "did:plc:x", NOW + 2)
        .await
        .unwrap();
    assert!(matches!(
        ensure_available(&mut conn, "c-1").await,
        Err(Error::InvalidInviteCode)
    ));
    assert_eq!(
        select_uses(&mut conn, "c-1").await.unwrap(),
        [InviteCodeUse {
            used_by: "did:plc:x".into(),
            used_at: NOW + 2
        }]
    );
    assert_eq!(disable_code(&mut conn, "c-1").await.unwrap(), 1);
    assert_eq!(disable_codes_for(&mut conn, ADMIN).await.unwrap(), 1);
    assert_eq!(delete_for_account(&mut conn, ADMIN).await.unwrap(), 1);
    assert_eq!(select_code(&mut conn, "c-1").await.unwrap(), None);
    assert_eq!(select_uses(&mut conn, "c-1").await.unwrap(), vec![]);
    assert_eq!(select_codes_for(&mut conn, ADMIN).await.unwrap(), vec![]);
}
