//! `com.atproto.sync.getRepo` and `getLatestCommit` over real HTTP: the streamed CAR verifies
//! with our verifier and with the official one (`@atproto/repo`'s `verifyRepoCar`), `since`
//! limits it to newer blocks, and unavailable repositories get the lexicon's errors.

use crate::support;

use rookery::repo::car::{Limits, read_car_bytes};
use rookery::repo::verify::verify_car;
use serde_json::{Value, json};
use support::pds::TestPds;

async fn create_post(
    client: &reqwest::Client,
    pds: &TestPds,
    access: &str,
    did: &str,
    i: usize,
) -> Value {
    let reply = client
        .post(format!("{}/xrpc/com.atproto.repo.createRecord", pds.url()))
        .bearer_auth(access)
        .json(&json!({
            "repo": did,
            "collection": "app.bsky.feed.post",
            "record": {"$type": "app.bsky.feed.post", "text": format!("post {i}"), "createdAt": "2026-11-23T00:00:00.000Z"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    reply.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_repo_streams_a_verifiable_car() {
    let pds = TestPds::start().await;
    let (did, access) = pds.seed_account("dora.test", "hunter2hunter2").await;
    let client = reqwest::Client::new();
    let mut posts = Vec::new();
    for i in 0..30 {
        posts.push(create_post(&client, &pds, &access, did.as_str(), i).await);
    }
    let since = posts[9]["commit"]["rev"].as_str().unwrap().to_owned();

    let latest: Value = client
        .get(format!(
            "{}/xrpc/com.atproto.sync.getLatestCommit?did={did}",
            pds.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        latest,
        json!({"cid": posts[29]["commit"]["cid"], "rev": posts[29]["commit"]["rev"]})
    );

    let reply = client
        .get(format!(
            "{}/xrpc/com.atproto.sync.getRepo?did={did}",
            pds.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "application/vnd.ipld.car");
    let car = reply.bytes().await.unwrap();
    let key = pds.signing_key(&did).await;
    let (verified, _) = verify_car(&car[..], Limits::default(), Some(did.as_str()), Some(&key))
        .await
        .unwrap();
    assert_eq!(
        verified.commit_cid.to_string(),
        latest["cid"].as_str().unwrap()
    );
    let mut cids: Vec<String> = verified
        .records
        .iter()
        .map(|(_, c)| c.to_string())
        .collect();
    let mut expected: Vec<String> = posts
        .iter()
        .map(|p| p["cid"].as_str().unwrap().to_owned())
        .collect();
    cids.sort();
    expected.sort();
    assert_eq!(cids, expected);

    // The official consumer accepts it too.
    let official = support::verify_repo_car(&car, did.as_str(), &key.to_did_key());
    assert_eq!(official, json!({"rev": latest["rev"], "records": 30}));

    // `since`: the head commit and only blocks written after that revision.
    let partial = client
        .get(format!(
            "{}/xrpc/com.atproto.sync.getRepo?did={did}&since={since}",
            pds.url()
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (roots, blocks) = read_car_bytes(&partial, Limits::default()).await.unwrap();
    assert_eq!(roots[0].to_string(), latest["cid"].as_str().unwrap());
    for (i, post) in posts.iter().enumerate() {
        let cid = post["cid"].as_str().unwrap().parse().unwrap();
        assert_eq!(blocks.contains_key(&cid), i >= 10, "post {i}");
    }
    assert!(blocks.len() < car.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_repositories_get_the_lexicon_errors() {
    let pds = TestPds::start().await;
    let (did, _) = pds.seed_account("erin.test", "hunter2hunter2").await;
    let client = reqwest::Client::new();
    let get = |query: String| {
        let client = client.clone();
        let url = format!("{}/xrpc/com.atproto.sync.{query}", pds.url());
        async move {
            let reply = client.get(url).send().await.unwrap();
            (
                reply.status().as_u16(),
                reply.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = get("getRepo?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".into()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("RepoNotFound"))
    );
    let (status, body) = get("getLatestCommit?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".into()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("RepoNotFound"))
    );
    let (status, body) = get("getRepo?did=not-a-did".into()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest"))
    );
    let (status, body) = get(format!("getRepo?did={did}&since=nope")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest"))
    );
    let (status, body) = get("getRepo".into()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest"))
    );

    pds.state
        .accounts()
        .deactivate(did.as_str(), chrono::Utc::now().timestamp(), None)
        .await
        .unwrap();
    let (status, body) = get(format!("getRepo?did={did}")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("RepoDeactivated"))
    );
    let (status, body) = get(format!("getLatestCommit?did={did}")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("RepoDeactivated"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_proofs_status_and_deprecated_routes() {
    use rookery::repo::blockstore::MemoryBlockStore;
    use rookery::repo::repository::Repo;

    let pds = TestPds::start().await;
    let (did, access) = pds.seed_account("finn.test", "hunter2hunter2").await;
    let client = reqwest::Client::new();
    let mut posts = Vec::new();
    for i in 0..40 {
        posts.push(create_post(&client, &pds, &access, did.as_str(), i).await);
    }
    let key = pds.signing_key(&did).await;
    let head = posts[39]["commit"]["cid"].as_str().unwrap().to_owned();
    let fetch = |query: String| {
        let client = client.clone();
        let url = format!("{}/xrpc/com.atproto.sync.{query}", pds.url());
        async move { client.get(url).send().await.unwrap() }
    };

    let whole_repo = {
        let car = fetch(format!("getRepo?did={did}"))
            .await
            .bytes()
            .await
            .unwrap();
        read_car_bytes(&car, Limits::default())
            .await
            .unwrap()
            .1
            .len()
    };
    assert!(whole_repo > 40, "{whole_repo} blocks");
    // A record's proof: from the CAR's blocks alone, the signed head leads to the record.
    let rkey = posts[17]["uri"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    for (rkey, expect) in [
        (rkey.as_str(), Some(posts[17]["cid"].as_str().unwrap())),
        ("3zzzzzzzzzzzz", None),
    ] {
        let reply = fetch(format!(
            "getRecord?did={did}&collection=app.bsky.feed.post&rkey={rkey}"
        ))
        .await;
        assert_eq!(reply.status(), 200);
        let car = reply.bytes().await.unwrap();
        let (roots, blocks) = read_car_bytes(&car, Limits::default()).await.unwrap();
        assert_eq!(roots[0].to_string(), head);
        let repo = Repo::load(MemoryBlockStore::from_blocks(&blocks), roots[0])
            .await
            .unwrap();
        repo.commit().verify(&key).unwrap();
        let found = repo
            .mst()
            .get(&format!("app.bsky.feed.post/{rkey}"))
            .await
            .unwrap();
        assert_eq!(found.map(|c| c.to_string()).as_deref(), expect, "{rkey}");
        if let Some(cid) = found {
            assert!(blocks.contains_key(&cid), "the record block is included");
        }
        // A path (two, for a key between two others) of a tree of 40 records: a handful of
        // blocks whatever the tree's depth, where the repository holds over 40.
        assert!(
            blocks.len() < whole_repo / 2,
            "a proof, not the repository: {} of {whole_repo} blocks",
            blocks.len()
        );
    }
    let reply = fetch(format!("getRecord?did={did}&collection=nope&rkey=x")).await;
    assert_eq!(reply.status(), 400);

    let head_reply: Value = fetch(format!("getHead?did={did}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(head_reply, json!({"root": head}));
    let checkout = fetch(format!("getCheckout?did={did}"))
        .await
        .bytes()
        .await
        .unwrap();
    let (verified, _) = verify_car(
        &checkout[..],
        Limits::default(),
        Some(did.as_str()),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(verified.records.len(), 40);

    let status: Value = fetch(format!("getRepoStatus?did={did}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        status,
        json!({"did": did.as_str(), "active": true, "rev": posts[39]["commit"]["rev"]})
    );
    pds.state
        .accounts()
        .deactivate(did.as_str(), chrono::Utc::now().timestamp(), None)
        .await
        .unwrap();
    let status: Value = fetch(format!("getRepoStatus?did={did}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        status,
        json!({"did": did.as_str(), "active": false, "status": "deactivated"})
    );
    let reply = fetch("getRepoStatus?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".into()).await;
    assert_eq!(reply.status(), 400);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"], "RepoNotFound");
}
