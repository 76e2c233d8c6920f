//! `com.atproto.sync.getBlocks` and `com.atproto.sync.listRepos` over real HTTP: block sets
//! as root-less CARs (read by our reader and the official one), the lexicon errors, and the
//! repository listing with its paging and account states.

use crate::support;

use std::process::Command;

use rookery::repo::car::{CarReader, Limits, RootPolicy, read_car_bytes};
use serde_json::{Value, json};
use support::pds::TestPds;

async fn create_post(pds: &TestPds, access: &str, did: &str, i: usize) -> Value {
    let reply = reqwest::Client::new()
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

/// Status and JSON body (`Null` when the body is not JSON) of `GET {pds}/xrpc/{query}`.
async fn get_json(pds: &TestPds, query: &str) -> (u16, Value) {
    let reply = reqwest::get(format!("{}/xrpc/{query}", pds.url()))
        .await
        .unwrap();
    (
        reply.status().as_u16(),
        reply.json().await.unwrap_or(Value::Null),
    )
}

fn error_of(reply: &(u16, Value)) -> (u16, Option<&str>) {
    (reply.0, reply.1["error"].as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_blocks_returns_a_rootless_car_of_the_named_blocks() {
    let pds = TestPds::start().await;
    let (did, access) = pds.seed_account("gina.test", "hunter2hunter2").await;
    let mut posts = Vec::new();
    for i in 0..5 {
        posts.push(create_post(&pds, &access, did.as_str(), i).await);
    }
    let commit = posts[4]["commit"]["cid"].as_str().unwrap().to_owned();
    let repo_car = reqwest::get(format!(
        "{}/xrpc/com.atproto.sync.getRepo?did={did}",
        pds.url()
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let (_, repo_blocks) = read_car_bytes(&repo_car, Limits::default()).await.unwrap();
    // The head commit, two records, and an MST node: a block of the repository that is
    // neither the commit nor a record.
    let records: Vec<String> = posts
        .iter()
        .map(|p| p["cid"].as_str().unwrap().to_owned())
        .collect();
    let node = repo_blocks
        .keys()
        .map(|c| c.to_string())
        .find(|c| *c != commit && !records.contains(c))
        .unwrap();
    let wanted = [
        records[3].clone(),
        commit.clone(),
        node.clone(),
        records[0].clone(),
    ];
    // Repeats are answered once, in the order first named.
    let query: String = wanted
        .iter()
        .chain([&commit, &records[3]])
        .map(|c| format!("&cids={c}"))
        .collect();
    let reply = reqwest::get(format!(
        "{}/xrpc/com.atproto.sync.getBlocks?did={did}{query}",
        pds.url()
    ))
    .await
    .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "application/vnd.ipld.car");
    let car = reply.bytes().await.unwrap();
    assert_eq!(
        car[..18],
        *b"\x11\xa2\x65roots\x80\x67version\x01",
        "header {{roots: [], version: 1}}"
    );
    let mut reader = CarReader::with_root_policy(&car[..], Limits::default(), RootPolicy::Any)
        .await
        .unwrap();
    assert!(reader.roots().is_empty());
    let mut got = Vec::new();
    while let Some((cid, bytes)) = reader.next_block().await.unwrap() {
        assert_eq!(repo_blocks[&cid], bytes, "{cid}");
        got.push(cid.to_string());
    }
    assert_eq!(got, wanted);

    // The official reader accepts it the same way.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blocks.car");
    std::fs::write(&file, &car).unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(support::plc::node_binary(repo))
        .arg(repo.join("tests/js/read-car.mjs"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let official: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(official, json!({"roots": [], "cids": wanted}));

    // A block that is not in this repository: nothing but BlockNotFound naming it.
    let absent = rookery::repo::cid::cid_for_raw(b"in no repository").to_string();
    let reply = get_json(
        &pds,
        &format!("com.atproto.sync.getBlocks?did={did}&cids={commit}&cids={absent}"),
    )
    .await;
    assert_eq!(
        reply,
        (
            400,
            json!({"error": "BlockNotFound", "message": format!("Could not find cids: {absent}")})
        )
    );

    // Malformed requests.
    for query in [
        format!("com.atproto.sync.getBlocks?did={did}"),
        format!("com.atproto.sync.getBlocks?did={did}&cids=nope"),
        format!(
            "com.atproto.sync.getBlocks?did={did}&cids=QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
        ),
        format!("com.atproto.sync.getBlocks?did=not-a-did&cids={commit}"),
        format!("com.atproto.sync.getBlocks?cids={commit}"),
        format!(
            "com.atproto.sync.getBlocks?did={did}{}",
            "&cids=x".repeat(1001)
        ),
    ] {
        let reply = get_json(&pds, &query).await;
        assert_eq!(error_of(&reply), (400, Some("InvalidRequest")), "{query}");
    }

    // Repositories not available here.
    let reply = get_json(
        &pds,
        &format!("com.atproto.sync.getBlocks?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa&cids={commit}"),
    )
    .await;
    assert_eq!(error_of(&reply), (400, Some("RepoNotFound")));
    let accounts = pds.state.accounts();
    accounts.takedown(did.as_str(), "mod-1").await.unwrap();
    let blocks_query = format!("com.atproto.sync.getBlocks?did={did}&cids={commit}");
    let reply = get_json(&pds, &blocks_query).await;
    assert_eq!(error_of(&reply), (400, Some("RepoTakendown")));
    accounts.untakedown(did.as_str()).await.unwrap();
    accounts
        .deactivate(did.as_str(), chrono::Utc::now().timestamp(), None)
        .await
        .unwrap();
    let reply = get_json(&pds, &blocks_query).await;
    assert_eq!(error_of(&reply), (400, Some("RepoDeactivated")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_repos_pages_every_hosted_repository() {
    let pds = TestPds::start().await;
    let mut accounts = Vec::new();
    for name in ["hana", "ivan", "jude"] {
        accounts.push(
            pds.seed_account(&format!("{name}.test"), "hunter2hunter2")
                .await,
        );
    }
    let (did0, access0) = &accounts[0];
    for i in 0..3 {
        create_post(&pds, access0, did0.as_str(), i).await;
    }
    let state = &pds.state;
    state
        .accounts()
        .deactivate(accounts[1].0.as_str(), 0, None)
        .await
        .unwrap();
    state
        .accounts()
        .takedown(accounts[2].0.as_str(), "mod-2")
        .await
        .unwrap();

    // Expected: the reference's order (creation time, then DID) and each repository's head.
    let mut expected = Vec::new();
    for (did, _) in &accounts {
        let info = state
            .accounts()
            .get_account(rookery::accounts::AccountRef::Did(did.as_str()))
            .await
            .unwrap()
            .unwrap();
        let root = state.repo().current_root(did).await.unwrap();
        let mut item = json!({
            "did": did.as_str(),
            "head": root.cid.to_string(),
            "rev": root.rev,
            "active": info.status() == rookery::accounts::AccountStatus::Active,
        });
        if let Some(status) = info.status().as_lexicon() {
            item["status"] = json!(status);
        }
        expected.push(((info.created_at, did.to_string()), item));
    }
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let expected: Vec<Value> = expected.into_iter().map(|(_, item)| item).collect();
    let mut states: Vec<String> = expected
        .iter()
        .map(|r| format!("{} {}", r["active"], r["status"]))
        .collect();
    states.sort();
    assert_eq!(
        states,
        ["false \"deactivated\"", "false \"takendown\"", "true null"]
    );

    let (status, all) = get_json(&pds, "com.atproto.sync.listRepos").await;
    assert_eq!((status, all), (200, json!({"repos": expected})));

    // Two pages of two: a cursor after the full page, none after the last.
    let (status, first) = get_json(&pds, "com.atproto.sync.listRepos?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(first["repos"], json!(expected[..2]));
    let cursor = first["cursor"].as_str().unwrap().to_owned();
    let (status, second) = get_json(
        &pds,
        &format!("com.atproto.sync.listRepos?limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!((status, second), (200, json!({"repos": expected[2..]})));

    // A write moves the head; deleting an account removes it from the list.
    let post = create_post(&pds, access0, did0.as_str(), 9).await;
    let (_, all) = get_json(&pds, "com.atproto.sync.listRepos").await;
    let listed = all["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["did"] == did0.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (&listed["head"], &listed["rev"]),
        (&post["commit"]["cid"], &post["commit"]["rev"])
    );
    let (gone, _) = &accounts[2];
    state.repo().destroy_repo(gone).await.unwrap();
    state
        .accounts()
        .delete_account(gone.as_str())
        .await
        .unwrap();
    let (_, all) = get_json(&pds, "com.atproto.sync.listRepos").await;
    let dids: Vec<&str> = all["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["did"].as_str().unwrap())
        .collect();
    assert_eq!(dids.len(), 2);
    assert!(!dids.contains(&gone.as_str()));

    for query in [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "cursor=garbage",
        "cursor=1::",
    ] {
        let reply = get_json(&pds, &format!("com.atproto.sync.listRepos?{query}")).await;
        assert_eq!(error_of(&reply), (400, Some("InvalidRequest")), "{query}");
    }
}
