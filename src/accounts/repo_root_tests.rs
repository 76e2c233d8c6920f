use super::*;
use crate::accounts::test_support::*;

fn head(n: u32) -> RepoHead {
    RepoHead {
        cid: format!("bafyreihead{n}"),
        rev: format!("3kaaaaaaaaa{n}2"),
    }
}

#[test]
fn cursors_round_trip_and_reject_garbage() {
    let cursor = RepoCursor {
        created_at: NOW,
        did: "did:plc:alice".into(),
    };
    assert_eq!(cursor.to_string(), "1700000000::did:plc:alice");
    assert_eq!("1700000000::did:plc:alice".parse(), Ok(cursor));
    for bad in [
        "",
        "1700000000",
        "::did:plc:a",
        "x::did:plc:a",
        "-1::did:plc:a",
        "+1::did:plc:a",
        "1::",
    ] {
        assert_eq!(bad.parse::<RepoCursor>(), Err(MalformedCursor), "{bad:?}");
    }
}

#[tokio::test]
async fn heads_are_set_replaced_listed_and_deleted() {
    let db = db().await;
    // A head may be recorded before its account row exists (the repository comes first).
    db.set_repo_head("did:plc:carol", &head(1), NOW)
        .await
        .unwrap();
    for (name, at) in [
        ("carol", NOW + 5),
        ("alice", NOW),
        ("bob", NOW),
        ("dave", NOW + 9),
    ] {
        create_at(&db, name, at).await;
    }
    db.set_repo_head("did:plc:alice", &head(2), NOW)
        .await
        .unwrap();
    db.set_repo_head("did:plc:bob", &head(3), NOW)
        .await
        .unwrap();
    db.set_repo_head("did:plc:bob", &head(4), NOW + 1)
        .await
        .unwrap();
    assert_eq!(db.repo_head("did:plc:bob").await.unwrap(), Some(head(4)));
    assert_eq!(db.repo_head("did:plc:nobody").await.unwrap(), None);
    // Dave has an account but no head yet: not listed, and reported for repair.
    assert_eq!(
        db.actors_without_repo_head().await.unwrap(),
        vec!["did:plc:dave".to_owned()]
    );

    db.deactivate("did:plc:bob", NOW, None).await.unwrap();
    db.takedown("did:plc:carol", "ref-1").await.unwrap();
    db.deactivate("did:plc:carol", NOW, None).await.unwrap();

    // By creation time, then DID; two per page.
    let (page, next) = db.list_repos(None, 2).await.unwrap();
    let summary = |page: &[ListedRepo]| -> Vec<(String, RepoHead, AccountStatus)> {
        page.iter()
            .map(|r| (r.did.clone(), r.head.clone(), r.status))
            .collect()
    };
    assert_eq!(
        summary(&page),
        vec![
            ("did:plc:alice".into(), head(2), AccountStatus::Active),
            ("did:plc:bob".into(), head(4), AccountStatus::Deactivated),
        ]
    );
    let next = next.unwrap();
    assert_eq!(next.to_string(), format!("{NOW}::did:plc:bob"));
    let (page, last) = db.list_repos(Some(&next), 2).await.unwrap();
    assert_eq!(
        summary(&page),
        vec![("did:plc:carol".into(), head(1), AccountStatus::Takendown)]
    );
    assert_eq!(page[0].created_at, NOW + 5);
    assert_eq!(last, None);

    // Deleting the account deletes its head; deleting a head on its own works too.
    db.delete_account("did:plc:alice").await.unwrap();
    assert_eq!(db.repo_head("did:plc:alice").await.unwrap(), None);
    assert!(db.delete_repo_head("did:plc:bob").await.unwrap());
    assert!(!db.delete_repo_head("did:plc:bob").await.unwrap());
    let (page, _) = db.list_repos(None, 10).await.unwrap();
    assert_eq!(
        summary(&page),
        vec![("did:plc:carol".into(), head(1), AccountStatus::Takendown)]
    );
}
