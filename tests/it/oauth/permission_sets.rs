//! `include:` scopes against a permission set really published: one PDS hosts the lexicon
//! author's account and its `com.atproto.lexicon.schema` record; the PDS under test (its
//! lexicon authority pinned to that account, as development mode allows) resolves the set
//! through the PLC directory and `sync.getRecord` with proof, lists it on the consent page,
//! issues a token carrying the set's permissions, and enforces them.

use serde_json::json;

use super::client::{Body, REDIRECT, TestClient, loopback_client_id};
use crate::support::pds::TestPds;

const PASSWORD: &str = "correct horse battery staple";
const SET: &str = "com.example.perm.basic";
const AUD: &str = "did:web:appview.test#bsky_appview";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_scopes_expand_to_the_published_set() {
    // The lexicon author's PDS and its published set.
    let publisher = TestPds::start().await;
    let (author, author_token) = publisher.seed_account("lexicons.test", PASSWORD).await;
    let lexicon = json!({
        "$type": "com.atproto.lexicon.schema",
        "lexicon": 1,
        "id": SET,
        "defs": {"main": {
            "type": "permission-set",
            "title": "Perm Example basics",
            "permissions": [
                {"type": "permission", "resource": "repo",
                 "collection": ["com.example.perm.note"], "action": ["create"]},
                {"type": "permission", "resource": "rpc",
                 "lxm": ["com.example.perm.getThing"], "inheritAud": true},
                // Not this set's to grant: dropped.
                {"type": "permission", "resource": "repo", "collection": ["app.bsky.feed.post"]},
            ],
        }},
    });
    let put = reqwest::Client::new()
        .post(format!(
            "{}/xrpc/com.atproto.repo.putRecord",
            publisher.url()
        ))
        .bearer_auth(&author_token)
        .json(&json!({
            "repo": author.as_str(),
            "collection": "com.atproto.lexicon.schema",
            "rkey": SET,
            "record": lexicon,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());

    let pds = TestPds::start_with(|c| {
        c.lexicon_authorities
            .insert("perm.example.com".to_owned(), author.clone());
    })
    .await;
    let (did, _) = pds.seed_account("gina.test", PASSWORD).await;
    let include = format!("include:{SET}?aud={}", AUD.replace('#', "%23"));
    let scope = format!("atproto {include}");
    let client = TestClient::new(&pds.url(), &loopback_client_id(&scope));
    let code = client.authorize(&scope, "gina.test", PASSWORD).await;
    let page = client.consent_page.lock().unwrap().clone();
    assert!(page.contains("Perm Example basics"), "{page}");
    assert!(
        page.contains("Create records of kind com.example.perm.note"),
        "{page}"
    );
    assert!(!page.contains("app.bsky.feed.post"), "{page}");

    // The token carries the set's permissions in place of the include.
    let answer = client.exchange(&code, &client.verifier).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let token = answer.json();
    assert_eq!(
        token["scope"],
        "atproto repo:com.example.perm.note?action=create \
         rpc:com.example.perm.getThing?aud=did:web:appview.test%23bsky_appview"
    );
    let access = token["access_token"].as_str().unwrap().to_owned();
    let create = |collection: &str| {
        Some(Body::Json(json!({
            "repo": did.as_str(),
            "collection": collection,
            "record": {"$type": collection, "text": "hi", "createdAt": "2026-12-03T00:00:00.000Z"},
        })))
    };
    let path = "/xrpc/com.atproto.repo.createRecord";
    let allowed = client
        .resource(
            "POST",
            path,
            &access,
            &client.key,
            create("com.example.perm.note"),
        )
        .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    let refused = client
        .resource(
            "POST",
            path,
            &access,
            &client.key,
            create("app.bsky.feed.post"),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);

    // A set nobody published: refused at PAR, before any page.
    let missing = "atproto include:com.example.perm.missing";
    let client = TestClient::new(&pds.url(), &loopback_client_id(missing));
    let answer = client.par(missing, REDIRECT).await;
    assert_eq!(
        (answer.status, answer.error().as_str()),
        (400, "invalid_scope"),
        "{}",
        answer.text
    );
    // An authority with no pin and no DNS record: refused the same way.
    let unknown = "atproto include:org.nowhere.perm.basic";
    let client = TestClient::new(&pds.url(), &loopback_client_id(unknown));
    let answer = client.par(unknown, REDIRECT).await;
    assert_eq!(answer.error(), "invalid_scope", "{}", answer.text);
}
