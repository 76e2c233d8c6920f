//! Case studies, hidden accounts, reindexing, crash repair and creation rate limits.

use reqwest::StatusCode;
use rookery::actor::RecordWrite;
use rookery::repo::cbor::json_to_record;
use rookery::repo::repository::Write;
use serde_json::{Value, json};

use super::client::{CASE, Client, PLUGIN, REVIEW, plugin, plugin_uri, review, start};
use super::market::{apply_create, moderator_pds, seed_market};

/// The full bodies of a set of listings (for comparing index states).
async fn snapshot(c: &Client, mod_tok: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for (method, query) in [
        ("cn.pocketbase.hub.listPlugins", vec![]),
        (
            "cn.pocketbase.hub.listPlugins",
            vec![("sort", "new"), ("limit", "3")],
        ),
        ("cn.pocketbase.hub.listPlugins", vec![("q", "认证")]),
        ("cn.pocketbase.hub.listPlugins", vec![("status", "pending")]),
        ("cn.pocketbase.hub.listCases", vec![]),
        ("cn.pocketbase.hub.listCases", vec![("q", "网店")]),
        ("cn.pocketbase.hub.getStats", vec![]),
    ] {
        let (status, body) = c.get(Some(mod_tok), method, &query).await;
        assert_eq!(status, StatusCode::OK, "{method}: {body}");
        out.push(body);
    }
    out
}

#[tokio::test]
async fn cases_hidden_accounts_reindex_and_repair() {
    let (pds, moderator) = moderator_pds().await;
    let mod_did = moderator.0.clone();
    let market = seed_market(&pds, moderator).await;
    let c = Client::new(&pds);
    let (alice, tok) = (&market.alice, market.alice_tok.as_str());

    // Case studies: written with TIDs, approved, listed, searched, fetched.
    let shop = json!({"$type": CASE, "title": "Shop", "titleZh": "网店", "description": "A shop", "category": "saas", "createdAt": "2025-02-01T00:00:00Z"});
    let sensor = json!({"$type": CASE, "title": "Sensor hub", "description": "Telemetry", "category": "iot", "techStack": ["pocketbase", "mqtt"], "githubUrl": "https://github.com/acme/sensor", "createdAt": "2025-02-02T00:00:00Z"});
    let mut case_uris = Vec::new();
    for record in [shop, sensor] {
        let (status, body) = c.create(tok, alice, CASE, None, record).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let uri = body["uri"].as_str().unwrap().to_owned();
        c.create(
            &market.mod_tok,
            &mod_did,
            REVIEW,
            None,
            review(
                &uri,
                body["cid"].as_str().unwrap(),
                "approved",
                false,
                "2025-06-02T00:00:00Z",
            ),
        )
        .await;
        case_uris.push(uri);
    }
    let mut bad_case = json!({"$type": CASE, "title": "X", "description": "Y", "category": "saas", "githubUrl": "https://github.com/only-owner"});
    let (status, body) = c.create(tok, alice, CASE, None, bad_case.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidRequest"))
    );
    bad_case["githubUrl"] = json!("https://github.com/o/r");
    bad_case["thumbnail"] = json!({"$type": "blob", "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"}, "mimeType": "image/png", "size": 2_000_001});
    let (status, body) = c.create(tok, alice, CASE, None, bad_case).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Record/thumbnail: blob is 2000001 bytes"),
        "{body}"
    );
    const CASES: &str = "cn.pocketbase.hub.listCases";
    let rkey = |uri: &str| uri.rsplit('/').next().unwrap().to_owned();
    assert_eq!(
        c.list(None, CASES, &[]).await.0,
        [rkey(&case_uris[1]), rkey(&case_uris[0])]
    );
    // "sensor hub" sorts before "shop".
    assert_eq!(
        c.list(None, CASES, &[("sort", "name")]).await.0,
        [rkey(&case_uris[1]), rkey(&case_uris[0])]
    );
    assert_eq!(
        c.list(None, CASES, &[("sort", "new"), ("limit", "1")])
            .await
            .0,
        [rkey(&case_uris[1])]
    );
    assert_eq!(
        c.list(None, CASES, &[("q", "网店")]).await.0,
        [rkey(&case_uris[0])]
    );
    assert_eq!(
        c.list(None, CASES, &[("q", "mqtt")]).await.0,
        [rkey(&case_uris[1])]
    );
    assert_eq!(
        c.list(None, CASES, &[("category", "iot")]).await.0,
        [rkey(&case_uris[1])]
    );
    let (status, body) = c.get(None, CASES, &[("sort", "downloads")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidRequest"))
    );
    let shop_rkey = rkey(&case_uris[0]);
    let (status, body) = c
        .get(
            None,
            "cn.pocketbase.hub.getCase",
            &[("author", "alice.test"), ("rkey", &shop_rkey)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case"]["record"]["titleZh"], "网店");
    assert_eq!(body["case"]["status"], "approved");
    assert_eq!(body["case"]["author"]["handle"], "alice.test");

    // Taken-down and deactivated accounts' submissions are hidden, and come back.
    let carol_slugs = ["cache-utils", "oauth-login"];
    let accounts = pds.state.accounts();
    accounts
        .takedown(market.carol.as_str(), "hub-test")
        .await
        .unwrap();
    let listed = c.plugins(&[("limit", "100")]).await;
    assert!(
        carol_slugs.iter().all(|s| !listed.iter().any(|l| l == s)),
        "{listed:?}"
    );
    assert_eq!(listed.len(), 5);
    let (_, body) = c
        .get(
            None,
            "cn.pocketbase.hub.getPlugin",
            &[("author", "carol.test"), ("slug", "cache-utils")],
        )
        .await;
    assert_eq!(body["error"], "RecordNotFound");
    let (_, stats) = c.get(None, "cn.pocketbase.hub.getStats", &[]).await;
    assert_eq!(stats["plugins"], 5);
    accounts.untakedown(market.carol.as_str()).await.unwrap();
    assert_eq!(c.plugins(&[("limit", "100")]).await.len(), 7);
    accounts
        .deactivate(alice.as_str(), 1_700_000_000, None)
        .await
        .unwrap();
    assert_eq!(
        c.plugins(&[("limit", "100")]).await,
        ["cache-utils", "oauth-login"]
    );
    assert!(c.list(None, CASES, &[]).await.0.is_empty());
    accounts.activate(alice.as_str()).await.unwrap();

    // `rookery reindex` (and a rebuild from an emptied index) yields the same listings.
    let before = snapshot(&c, &market.mod_tok).await;
    assert_eq!(before[0]["plugins"].as_array().unwrap().len(), 7);
    let hub = pds.state.hub();
    let (accounts_seen, records) = hub.reindex_all(pds.state.repo()).await.unwrap();
    assert_eq!((accounts_seen, records), (3, 8 + 2 + 9));
    assert_eq!(snapshot(&c, &market.mod_tok).await, before);
    for table in [
        "hub_plugin",
        "hub_plugin_fts",
        "hub_case",
        "hub_case_fts",
        "hub_review",
        "hub_status",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(hub.pool())
            .await
            .unwrap();
    }
    assert!(c.plugins(&[]).await.is_empty());
    hub.reindex_all(pds.state.repo()).await.unwrap();
    assert_eq!(snapshot(&c, &market.mod_tok).await, before);

    // A crash between a commit's acknowledgement and its index update: the hub's commit
    // hook marked the account pending before the commit, so start-up repair reindexes it.
    // Simulated by losing the queued index update, as a process killed then would.
    // Real uploads: a commit may only reference blobs the account uploaded.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.resize(1000, 7);
    let mut jpeg = b"\xff\xd8\xff\xe0\0\x10JFIF\0".to_vec();
    jpeg.resize(1200, 9);
    let logo = c.upload(tok, "image/png", png).await;
    let shot = c.upload(tok, "image/jpeg", jpeg).await;
    assert_eq!(
        (logo["mimeType"].as_str(), logo["size"].as_u64()),
        (Some("image/png"), Some(1000))
    );
    assert_eq!(
        (shot["mimeType"].as_str(), shot["size"].as_u64()),
        (Some("image/jpeg"), Some(1200))
    );
    let logo_cid = logo["ref"]["$link"].as_str().unwrap().to_owned();
    let shot_cid = shot["ref"]["$link"].as_str().unwrap().to_owned();
    let mut record = plugin("Crash Safe", "utils", "2025-03-01T00:00:00Z");
    record["logo"] = logo;
    record["screenshots"] = json!([shot]);
    let write = Write::Create {
        collection: PLUGIN.parse().unwrap(),
        rkey: "crash-safe".parse().unwrap(),
        record: json_to_record(&record).unwrap(),
    };
    let lost = hub.lose_index_updates();
    pds.state
        .repo()
        .apply_writes(alice, vec![RecordWrite::from(write)], None)
        .await
        .unwrap();
    hub.caught_up().await;
    drop(lost);
    let uri = plugin_uri(alice, "crash-safe");
    let (_, body) = c
        .get(Some(tok), "cn.pocketbase.hub.getPlugin", &[("uri", &uri)])
        .await;
    assert_eq!(body["error"], "RecordNotFound");
    assert_eq!(hub.repair(pds.state.repo()).await.unwrap(), 1);
    let (status, body) = c
        .get(Some(tok), "cn.pocketbase.hub.getPlugin", &[("uri", &uri)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let blob_url = |cid: &str| {
        format!(
            "{}/xrpc/com.atproto.sync.getBlob?did={}&cid={cid}",
            pds.url(),
            alice.as_str().replace(':', "%3A")
        )
    };
    assert_eq!(body["plugin"]["logo"], blob_url(&logo_cid));
    assert_eq!(body["plugin"]["screenshots"], json!([blob_url(&shot_cid)]));
    assert_eq!(body["plugin"]["status"], "pending");
    let pending: Vec<(String,)> = sqlx::query_as("SELECT did FROM hub_pending")
        .fetch_all(hub.pool())
        .await
        .unwrap();
    assert!(pending.is_empty());
    assert_eq!(hub.repair(pds.state.repo()).await.unwrap(), 0);
}

#[tokio::test]
async fn creation_rate_limits() {
    let pds = start(&[], true).await;
    let c = Client::new(&pds);
    let (alice, tok) = pds.seed_account("alice.test", "alice-pass").await;
    let (bob, bob_tok) = pds.seed_account("bob.test", "bob-pass").await;
    let before = chrono::Utc::now().timestamp();
    // Ten plugins in one hour: nine one by one, one in a batch with a case.
    for i in 0..9 {
        let (status, body) = c
            .create(
                &tok,
                &alice,
                PLUGIN,
                Some(&format!("p-{i}")),
                plugin("P", "ui", "2025-01-01T00:00:00Z"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{i}: {body}");
    }
    let case = || json!({"$type": CASE, "title": "C", "description": "D", "category": "saas"});
    let writes = json!({"repo": alice.as_str(), "writes": [
        apply_create(PLUGIN, Some("p-9"), plugin("P", "ui", "2025-01-01T00:00:00Z")),
        apply_create(CASE, None, case()),
    ]});
    let (status, body) = c
        .post(Some(&tok), "com.atproto.repo.applyWrites", &writes)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The eleventh is refused, with the time the oldest creation leaves the window.
    let (status, body, reset) = c.post_full(Some(&tok), "com.atproto.repo.createRecord", &json!({"repo": alice.as_str(), "collection": PLUGIN, "rkey": "p-10", "record": plugin("P", "ui", "2025-01-01T00:00:00Z")})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("RateLimitExceeded"))
    );
    let reset = reset.expect("ratelimit-reset header");
    let (reset, limit) = reset
        .split_once(' ')
        .expect("ratelimit-limit and -policy headers");
    assert_eq!(limit, "10 10;w=3600");
    let reset: i64 = reset.parse().unwrap();
    let after = chrono::Utc::now().timestamp();
    assert!((before + 3600..=after + 3600).contains(&reset), "{reset}");
    // Updates are not creations; other accounts have their own budget.
    let (status, _) = c.post(Some(&tok), "com.atproto.repo.putRecord", &json!({"repo": alice.as_str(), "collection": PLUGIN, "rkey": "p-0", "record": plugin("P2", "ui", "2025-01-01T00:00:00Z")})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = c
        .create(
            &bob_tok,
            &bob,
            PLUGIN,
            Some("b-0"),
            plugin("B", "ui", "2025-01-01T00:00:00Z"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Cases: five per hour (one already made in the batch).
    for i in 0..4 {
        let (status, body) = c.create(&tok, &alice, CASE, None, case()).await;
        assert_eq!(status, StatusCode::OK, "{i}: {body}");
    }
    let (status, body, reset) = c
        .post_full(
            Some(&tok),
            "com.atproto.repo.createRecord",
            &json!({"repo": alice.as_str(), "collection": CASE, "record": case()}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("RateLimitExceeded"))
    );
    let reset = reset.expect("ratelimit-reset header");
    assert!(reset.ends_with(" 5 5;w=3600"), "{reset}");
    // A refused batch commits nothing.
    let (status, _) = c.post(Some(&tok), "com.atproto.repo.applyWrites", &json!({"repo": alice.as_str(), "writes": [
        apply_create("app.bsky.feed.post", None, json!({"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2025-01-01T00:00:00Z"})),
        apply_create(PLUGIN, Some("p-11"), plugin("P", "ui", "2025-01-01T00:00:00Z")),
    ]})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (_, listed) = c
        .get(
            None,
            "com.atproto.repo.listRecords",
            &[
                ("repo", alice.as_str()),
                ("collection", "app.bsky.feed.post"),
            ],
        )
        .await;
    assert_eq!(listed["records"], json!([]));
}
