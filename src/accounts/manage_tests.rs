use super::*;
use crate::accounts::test_support::{NOW, create, create_at, db};

#[tokio::test]
async fn email_update_needs_a_token_once_confirmed() {
    let db = db().await;
    create(&db, "alice").await;
    create(&db, "bob").await;
    let did = "did:plc:alice";
    let update = |email, token, factor| EmailUpdate {
        email,
        token,
        email_auth_factor: factor,
        now: NOW,
    };
    // Unconfirmed: no token needed.
    db.update_email_with_token(did, update("alice2@example.com", None, None))
        .await
        .unwrap();
    let token = db
        .create_email_token(did, EmailTokenPurpose::ConfirmEmail, NOW)
        .await
        .unwrap();
    db.confirm_email(did, &token, NOW).await.unwrap();
    assert!(matches!(
        db.update_email_with_token(did, update("alice3@example.com", None, None))
            .await,
        Err(Error::TokenRequired)
    ));
    let token = db
        .create_email_token(did, EmailTokenPurpose::UpdateEmail, NOW)
        .await
        .unwrap();
    // Another account's address: refused, and the token is not spent.
    assert!(matches!(
        db.update_email_with_token(did, update("bob@example.com", Some(&token), None))
            .await,
        Err(Error::EmailTaken)
    ));
    // The same address with the factor: keeps the confirmation.
    db.update_email_with_token(did, update("alice2@example.com", Some(&token), Some(true)))
        .await
        .unwrap();
    let info = db.get_account(AccountRef::Did(did)).await.unwrap().unwrap();
    assert!(info.email_auth_factor);
    assert_eq!(info.email_confirmed_at, Some(NOW));
    // Spent.
    assert!(matches!(
        db.update_email_with_token(did, update("alice4@example.com", Some(&token), None))
            .await,
        Err(Error::InvalidEmailToken)
    ));
}

#[tokio::test]
async fn search_pages_by_prefix() {
    let db = db().await;
    for (i, name) in ["anna", "andy", "bert", "annette"].iter().enumerate() {
        create_at(&db, name, NOW + i as i64).await;
    }
    let page = db.search_accounts(Some("ANN"), None, 1).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].did, "did:plc:anna");
    let next = db
        .search_accounts(Some("ann"), page.cursor.as_deref(), 1)
        .await
        .unwrap();
    assert_eq!(next.items[0].did, "did:plc:annette");
    let last = db
        .search_accounts(Some("ann"), next.cursor.as_deref(), 1)
        .await
        .unwrap();
    assert!(last.items.is_empty());
    assert_eq!(last.cursor, None);
    // LIKE wildcards are literal.
    let none = db.search_accounts(Some("a%"), None, 10).await.unwrap();
    assert!(none.items.is_empty());
    let all = db.search_accounts(None, None, 10).await.unwrap();
    assert_eq!(all.items.len(), 4);
    assert!(matches!(
        db.search_accounts(None, Some("garbage"), 10).await,
        Err(Error::MalformedCursor)
    ));
}

#[tokio::test]
async fn invite_codes_page_by_recency_and_usage() {
    let db = db().await;
    let made = db
        .create_invite_codes("pds.example.com", 3, 5, &[], "admin", NOW)
        .await
        .unwrap();
    let codes = &made[0].codes;
    let mut used =
        sqlx::query("INSERT INTO invite_code_use (code, usedBy, usedAt) VALUES (?1, ?2, ?3)");
    used = used.bind(codes[1].clone()).bind("did:plc:x").bind(NOW);
    used.execute(db.pool()).await.unwrap();
    let by_usage = db
        .list_invite_codes(InviteSort::Usage, None, 1)
        .await
        .unwrap();
    assert_eq!(by_usage.items[0].code, codes[1]);
    assert_eq!(by_usage.items[0].uses.len(), 1);
    let mut seen = vec![by_usage.items[0].code.clone()];
    let mut cursor = by_usage.cursor;
    for _ in 0..5 {
        let Some(c) = cursor else { break };
        let page = db
            .list_invite_codes(InviteSort::Usage, Some(&c), 1)
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|c| c.code.clone()));
        cursor = page.cursor;
    }
    seen.sort();
    let mut all = codes.clone();
    all.sort();
    assert_eq!(seen, all);
    let recent = db
        .list_invite_codes(InviteSort::Recent, None, 10)
        .await
        .unwrap();
    assert_eq!(recent.items.len(), 3);
    assert_eq!(recent.cursor, None);
}

#[tokio::test]
async fn reserved_keys_are_taken_once() {
    let db = db().await;
    db.reserve_signing_key("did:key:z1", &[1; 32], Some("did:plc:new"), NOW)
        .await
        .unwrap();
    db.reserve_signing_key("did:key:z2", &[2; 32], Some("did:plc:new"), NOW)
        .await
        .unwrap();
    assert_eq!(
        db.take_reserved_signing_key("did:key:z1").await.unwrap(),
        None
    );
    assert_eq!(
        db.take_reserved_signing_key("did:plc:new").await.unwrap(),
        Some(vec![2; 32])
    );
    assert_eq!(
        db.take_reserved_signing_key("did:plc:new").await.unwrap(),
        None
    );
}
