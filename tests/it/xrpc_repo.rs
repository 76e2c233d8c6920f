//! `com.atproto.repo.*` and `app.bsky.actor.{get,put}Preferences` over real HTTP against a
//! whole PDS (real socket, real PLC directory).

use crate::support;

use reqwest::StatusCode;
use rookery::repo::cbor::{cid_for_value, json_to_record};
use serde_json::{Value, json};
use support::pds::TestPds;

const POST: &str = "app.bsky.feed.post";

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn new(pds: &TestPds) -> Client {
        Client {
            base: pds.url(),
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, token: Option<&str>, method: &str, body: &Value) -> (StatusCode, Value) {
        self.post_raw(token, method, body.to_string()).await
    }

    async fn post_raw(
        &self,
        token: Option<&str>,
        method: &str,
        body: String,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}/xrpc/{method}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(
        &self,
        token: Option<&str>,
        method: &str,
        query: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let url = reqwest::Url::parse_with_params(&format!("{}/xrpc/{method}", self.base), query)
            .unwrap();
        let mut req = self.http.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }
}

fn post_record(text: &str) -> Value {
    json!({"$type": POST, "text": text, "createdAt": "2024-01-02T03:04:05.678Z"})
}

fn record_cid(record: &Value) -> String {
    cid_for_value(&json_to_record(record).unwrap())
        .unwrap()
        .to_string()
}

fn assert_error(got: &(StatusCode, Value), status: StatusCode, name: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"], name, "{}", got.1);
    assert!(got.1["message"].is_string(), "{}", got.1);
}

/// Exports the account's repository as a CAR and verifies it with the account's key.
async fn assert_repo_verifies(pds: &TestPds, did: &rookery::syntax::Did) -> usize {
    let handle = pds.state.repo().stores().open(did).await.unwrap().unwrap();
    let (car, _) = rookery::store::export::write_repo_car(&handle.block_store(), None, Vec::new())
        .await
        .unwrap();
    let key = handle.keypair().public_key();
    let (verified, _) = rookery::repo::verify::verify_car(
        car.as_slice(),
        rookery::repo::car::Limits::default(),
        Some(did.as_str()),
        Some(&key),
    )
    .await
    .unwrap();
    verified.records.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_lifecycle() {
    let pds = TestPds::start().await;
    let c = Client::new(&pds);
    let (did, token) = pds.seed_account("alice.test", "hunter2hunter2").await;
    let t = Some(token.as_str());

    // createRecord with a generated TID key, by handle.
    let record = post_record("hello world");
    let created = c
        .post(
            t,
            "com.atproto.repo.createRecord",
            &json!({"repo": "alice.test", "collection": POST, "record": record}),
        )
        .await;
    assert_eq!(created.0, StatusCode::OK, "{}", created.1);
    let out = created.1.as_object().unwrap();
    let mut keys: Vec<_> = out.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["cid", "commit", "uri", "validationStatus"]);
    assert_eq!(out["validationStatus"], "valid");
    assert_eq!(out["cid"], record_cid(&record));
    let uri = out["uri"].as_str().unwrap();
    let prefix = format!("at://{did}/{POST}/");
    let rkey = uri.strip_prefix(&prefix).unwrap().to_owned();
    assert!(rkey.parse::<rookery::syntax::Tid>().is_ok(), "{rkey}");
    let rev1 = out["commit"]["rev"].as_str().unwrap().to_owned();
    let head = pds.state.repo().current_root(&did).await.unwrap();
    assert_eq!(out["commit"]["cid"], head.cid.to_string());
    assert_eq!(rev1, head.rev);

    // getRecord round trip (no auth), by DID and by handle.
    for repo in [did.as_str(), "alice.test"] {
        let got = c
            .get(
                None,
                "com.atproto.repo.getRecord",
                &[("repo", repo), ("collection", POST), ("rkey", &rkey)],
            )
            .await;
        assert_eq!(got.0, StatusCode::OK, "{}", got.1);
        assert_eq!(
            got.1,
            json!({"uri": uri, "cid": record_cid(&record), "value": record})
        );
    }
    // A cid that is not the current one.
    let other_cid = record_cid(&post_record("other"));
    let got = c
        .get(
            None,
            "com.atproto.repo.getRecord",
            &[
                ("repo", did.as_str()),
                ("collection", POST),
                ("rkey", &rkey),
                ("cid", &other_cid),
            ],
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "RecordNotFound");

    // putRecord: create at `self`-style key, then update, then unchanged (no commit).
    let profile = json!({"$type": "app.bsky.actor.profile", "displayName": "Alice"});
    let put = c
        .post(t, "com.atproto.repo.putRecord", &json!({"repo": did.as_str(), "collection": "app.bsky.actor.profile", "rkey": "self", "record": profile}))
        .await;
    assert_eq!(put.0, StatusCode::OK, "{}", put.1);
    assert_eq!(
        put.1["uri"],
        format!("at://{did}/app.bsky.actor.profile/self")
    );
    assert_eq!(put.1["cid"], record_cid(&profile));
    assert_eq!(put.1["validationStatus"], "valid");
    let rev2 = put.1["commit"]["rev"].as_str().unwrap().to_owned();
    assert!(rev2 > rev1);
    let profile2 = json!({"$type": "app.bsky.actor.profile", "displayName": "Alice 2"});
    let put2 = c
        .post(t, "com.atproto.repo.putRecord", &json!({"repo": did.as_str(), "collection": "app.bsky.actor.profile", "rkey": "self", "record": profile2, "swapRecord": record_cid(&profile)}))
        .await;
    assert_eq!(put2.0, StatusCode::OK, "{}", put2.1);
    assert_eq!(put2.1["cid"], record_cid(&profile2));
    let rev3 = put2.1["commit"]["rev"].as_str().unwrap().to_owned();
    assert!(rev3 > rev2);
    let same = c
        .post(t, "com.atproto.repo.putRecord", &json!({"repo": did.as_str(), "collection": "app.bsky.actor.profile", "rkey": "self", "record": profile2}))
        .await;
    assert_eq!(same.0, StatusCode::OK);
    assert_eq!(
        same.1,
        json!({"uri": format!("at://{did}/app.bsky.actor.profile/self"), "cid": record_cid(&profile2), "validationStatus": "valid"})
    );

    // Swap mismatches.
    let bad = c
        .post(t, "com.atproto.repo.putRecord", &json!({"repo": did.as_str(), "collection": "app.bsky.actor.profile", "rkey": "self", "record": profile, "swapRecord": record_cid(&profile)}))
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidSwap");
    assert_eq!(
        bad.1["message"],
        format!("Record was at {}", record_cid(&profile2))
    );
    let bad = c
        .post(t, "com.atproto.repo.putRecord", &json!({"repo": did.as_str(), "collection": "app.bsky.actor.profile", "rkey": "self", "record": profile, "swapRecord": null}))
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidSwap");
    let bad = c
        .post(t, "com.atproto.repo.createRecord", &json!({"repo": did.as_str(), "collection": POST, "record": post_record("x"), "swapCommit": put.1["commit"]["cid"]}))
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidSwap");
    assert_eq!(
        bad.1["message"],
        format!(
            "Commit was at {}",
            put2.1["commit"]["cid"].as_str().unwrap()
        )
    );

    // describeRepo.
    let described = c
        .get(
            None,
            "com.atproto.repo.describeRepo",
            &[("repo", "alice.test")],
        )
        .await;
    assert_eq!(described.0, StatusCode::OK, "{}", described.1);
    assert_eq!(described.1["handle"], "alice.test");
    assert_eq!(described.1["did"], did.as_str());
    assert_eq!(described.1["didDoc"]["id"], did.as_str());
    assert_eq!(
        described.1["collections"],
        json!(["app.bsky.actor.profile", POST])
    );
    assert_eq!(described.1["handleIsCorrect"], true);

    // deleteRecord with a wrong swapRecord, then for real, then get → RecordNotFound.
    let bad = c
        .post(t, "com.atproto.repo.deleteRecord", &json!({"repo": did.as_str(), "collection": POST, "rkey": rkey, "swapRecord": other_cid}))
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidSwap");
    let deleted = c
        .post(
            t,
            "com.atproto.repo.deleteRecord",
            &json!({"repo": did.as_str(), "collection": POST, "rkey": rkey}),
        )
        .await;
    assert_eq!(deleted.0, StatusCode::OK, "{}", deleted.1);
    assert!(deleted.1["commit"]["rev"].as_str().unwrap() > rev3.as_str());
    assert_eq!(deleted.1.as_object().unwrap().len(), 1);
    let again = c
        .post(
            t,
            "com.atproto.repo.deleteRecord",
            &json!({"repo": did.as_str(), "collection": POST, "rkey": rkey}),
        )
        .await;
    assert_eq!(again, (StatusCode::OK, json!({})));
    let got = c
        .get(
            None,
            "com.atproto.repo.getRecord",
            &[
                ("repo", did.as_str()),
                ("collection", POST),
                ("rkey", &rkey),
            ],
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "RecordNotFound");
    assert_eq!(got.1["message"], format!("Could not locate record: {uri}"));

    assert_eq!(assert_repo_verifies(&pds, &did).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_writes_and_list_records() {
    let pds = TestPds::start().await;
    let c = Client::new(&pds);
    let (did, token) = pds.seed_account("bob.test", "hunter2hunter2").await;
    let t = Some(token.as_str());

    let keys: Vec<String> = "234567a"
        .chars()
        .map(|i| format!("3kabc{i}aaaaaa2"))
        .collect();
    let writes: Vec<Value> = keys
        .iter()
        .map(|k| json!({"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "rkey": k, "value": post_record(k)}))
        .collect();
    let applied = c
        .post(
            t,
            "com.atproto.repo.applyWrites",
            &json!({"repo": did.as_str(), "writes": writes}),
        )
        .await;
    assert_eq!(applied.0, StatusCode::OK, "{}", applied.1);
    let results = applied.1["results"].as_array().unwrap();
    assert_eq!(results.len(), 7);
    for (r, k) in results.iter().zip(&keys) {
        assert_eq!(
            r,
            &json!({"$type": "com.atproto.repo.applyWrites#createResult", "uri": format!("at://{did}/{POST}/{k}"), "cid": record_cid(&post_record(k)), "validationStatus": "valid"})
        );
    }
    let rev1 = applied.1["commit"]["rev"].as_str().unwrap().to_owned();

    // Update + delete + create (unknown collection, validate unset) in one commit.
    let updated = post_record("updated");
    let mixed = c
        .post(t, "com.atproto.repo.applyWrites", &json!({"repo": did.as_str(), "swapCommit": applied.1["commit"]["cid"], "writes": [
            {"$type": "com.atproto.repo.applyWrites#update", "collection": POST, "rkey": keys[0], "value": updated},
            {"$type": "com.atproto.repo.applyWrites#delete", "collection": POST, "rkey": keys[1]},
            {"$type": "com.atproto.repo.applyWrites#create", "collection": "com.example.thing", "value": {"$type": "com.example.thing", "n": 1}},
        ]}))
        .await;
    assert_eq!(mixed.0, StatusCode::OK, "{}", mixed.1);
    assert!(mixed.1["commit"]["rev"].as_str().unwrap() > rev1.as_str());
    let r = mixed.1["results"].as_array().unwrap();
    assert_eq!(
        r[0],
        json!({"$type": "com.atproto.repo.applyWrites#updateResult", "uri": format!("at://{did}/{POST}/{}", keys[0]), "cid": record_cid(&updated), "validationStatus": "valid"})
    );
    assert_eq!(
        r[1],
        json!({"$type": "com.atproto.repo.applyWrites#deleteResult"})
    );
    assert_eq!(r[2]["validationStatus"], "unknown");
    assert_eq!(r[2]["$type"], "com.atproto.repo.applyWrites#createResult");

    // listRecords: descending by key by default, paging with cursor, reverse.
    let page = c
        .get(
            None,
            "com.atproto.repo.listRecords",
            &[("repo", did.as_str()), ("collection", POST), ("limit", "4")],
        )
        .await;
    assert_eq!(page.0, StatusCode::OK, "{}", page.1);
    let rkeys = |v: &Value| -> Vec<String> {
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r["uri"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let mut remaining: Vec<String> = keys.iter().filter(|k| **k != keys[1]).cloned().collect();
    remaining.sort();
    let desc: Vec<String> = remaining.iter().rev().cloned().collect();
    assert_eq!(rkeys(&page.1), desc[..4]);
    assert_eq!(page.1["cursor"], desc[3]);
    let first = &page.1["records"][0];
    assert_eq!(first["value"], post_record(&desc[0]));
    assert_eq!(first["cid"], record_cid(&post_record(&desc[0])));
    let next = c
        .get(
            None,
            "com.atproto.repo.listRecords",
            &[
                ("repo", "bob.test"),
                ("collection", POST),
                ("limit", "4"),
                ("cursor", &desc[3]),
            ],
        )
        .await;
    assert_eq!(rkeys(&next.1), desc[4..]);
    let rev = c
        .get(
            None,
            "com.atproto.repo.listRecords",
            &[
                ("repo", did.as_str()),
                ("collection", POST),
                ("reverse", "true"),
            ],
        )
        .await;
    assert_eq!(rkeys(&rev.1), remaining);
    for limit in ["0", "101"] {
        let bad = c
            .get(
                None,
                "com.atproto.repo.listRecords",
                &[
                    ("repo", did.as_str()),
                    ("collection", POST),
                    ("limit", limit),
                ],
            )
            .await;
        assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidRequest");
    }

    // 201 writes → 400, nothing written.
    let too_many: Vec<Value> = (0..201)
        .map(|_| json!({"$type": "com.atproto.repo.applyWrites#create", "collection": "com.example.thing", "value": {"n": 1}}))
        .collect();
    let bad = c
        .post(
            t,
            "com.atproto.repo.applyWrites",
            &json!({"repo": did.as_str(), "writes": too_many}),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidRequest");
    assert_eq!(bad.1["message"], "Too many writes. Max: 200");
    // 200 is fine.
    let ok: Vec<Value> = (0..200)
        .map(|_| json!({"$type": "com.atproto.repo.applyWrites#create", "collection": "com.example.thing", "value": {"n": 1}}))
        .collect();
    let res = c
        .post(
            t,
            "com.atproto.repo.applyWrites",
            &json!({"repo": did.as_str(), "writes": ok}),
        )
        .await;
    assert_eq!(res.0, StatusCode::OK, "{}", res.1);

    assert_eq!(assert_repo_verifies(&pds, &did).await, 6 + 1 + 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_and_refusals() {
    let pds = TestPds::start().await;
    let c = Client::new(&pds);
    let (did, token) = pds.seed_account("carol.test", "hunter2hunter2").await;
    let (_, other_token) = pds.seed_account("dave.test", "hunter2hunter2").await;
    let t = Some(token.as_str());
    let create = |collection: &str, record: Value, validate: Option<bool>| {
        let mut body = json!({"repo": did.as_str(), "collection": collection, "record": record});
        if let Some(v) = validate {
            body["validate"] = json!(v);
        }
        body
    };
    let m = "com.atproto.repo.createRecord";

    // 301 graphemes; bad createdAt; wrong $type; unknown collection with validate true.
    let long = post_record(&"é".repeat(301));
    let bad = c.post(t, m, &create(POST, long.clone(), None)).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidRequest");
    assert!(
        bad.1["message"].as_str().unwrap().contains("Record/text"),
        "{}",
        bad.1
    );
    let ok300 = c
        .post(t, m, &create(POST, post_record(&"é".repeat(300)), None))
        .await;
    assert_eq!(ok300.0, StatusCode::OK, "{}", ok300.1);
    let bad_date = json!({"$type": POST, "text": "hi", "createdAt": "yesterday"});
    let bad = c
        .post(t, m, &create(POST, bad_date.clone(), Some(true)))
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidRequest");
    assert!(
        bad.1["message"]
            .as_str()
            .unwrap()
            .contains("Record/createdAt"),
        "{}",
        bad.1
    );
    let bad = c
        .post(
            t,
            m,
            &create(
                POST,
                json!({"$type": "app.bsky.actor.profile", "text": "x"}),
                None,
            ),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidRequest");
    assert_eq!(
        bad.1["message"],
        format!("Invalid $type: expected {POST}, got app.bsky.actor.profile")
    );
    let thing = json!({"$type": "com.example.thing", "n": 1});
    let bad = c
        .post(
            t,
            m,
            &create("com.example.thing", thing.clone(), Some(true)),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidRequest");
    assert_eq!(bad.1["message"], "Lexicon not found: lex:com.example.thing");
    // Known record with a key of the wrong type (profile is literal:self).
    let bad = c
        .post(t, "com.atproto.repo.putRecord", &json!({"repo": did.as_str(), "collection": "app.bsky.actor.profile", "rkey": "notself", "record": {"displayName": "x"}}))
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidRequest");

    // Unknown collection, validate unset → "unknown"; validate false → no status; $type set.
    let unknown = c
        .post(t, m, &create("com.example.thing", json!({"n": 1}), None))
        .await;
    assert_eq!(unknown.0, StatusCode::OK, "{}", unknown.1);
    assert_eq!(unknown.1["validationStatus"], "unknown");
    assert_eq!(unknown.1["cid"], record_cid(&thing));
    let skipped = c
        .post(t, m, &create(POST, bad_date.clone(), Some(false)))
        .await;
    assert_eq!(skipped.0, StatusCode::OK, "{}", skipped.1);
    assert!(skipped.1.get("validationStatus").is_none(), "{}", skipped.1);
    assert_eq!(skipped.1["cid"], record_cid(&bad_date));
    let skipped = c
        .post(
            t,
            m,
            &create("com.example.thing", json!({"n": 2}), Some(false)),
        )
        .await;
    assert_eq!(skipped.0, StatusCode::OK, "{}", skipped.1);
    assert!(skipped.1.get("validationStatus").is_none());

    // Bad collection NSID, bad rkey, record not an object, bad swapCommit.
    let bad = c.post(t, m, &create("not an nsid", json!({}), None)).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidRequest");
    let mut body = create(POST, post_record("x"), None);
    body["rkey"] = json!("bad/key");
    assert_error(
        &c.post(t, m, &body).await,
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
    );
    assert_error(
        &c.post(t, m, &create(POST, json!("text"), None)).await,
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
    );
    let mut body = create(POST, post_record("x"), None);
    body["swapCommit"] = json!("nope");
    assert_error(
        &c.post(t, m, &body).await,
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
    );
    // Same key twice.
    let mut body = create(POST, post_record("x"), None);
    body["rkey"] = json!("3kaaaaaaaaaa2");
    assert_eq!(c.post(t, m, &body).await.0, StatusCode::OK);
    assert_error(
        &c.post(t, m, &body).await,
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
    );

    // Malformed JSON, no auth, another user's repo, unknown repo.
    assert_error(
        &c.post_raw(t, m, "{not json".to_owned()).await,
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
    );
    assert_error(
        &c.post(None, m, &create(POST, post_record("x"), None)).await,
        StatusCode::UNAUTHORIZED,
        "AuthenticationRequired",
    );
    let theirs = c
        .post(Some(&other_token), m, &create(POST, post_record("x"), None))
        .await;
    assert_error(&theirs, StatusCode::UNAUTHORIZED, "AuthenticationRequired");
    let theirs = c
        .post(
            Some(&other_token),
            "com.atproto.repo.deleteRecord",
            &json!({"repo": "carol.test", "collection": POST, "rkey": "3kaaaaaaaaaa2"}),
        )
        .await;
    assert_error(&theirs, StatusCode::UNAUTHORIZED, "AuthenticationRequired");
    let nobody = c
        .post(
            t,
            m,
            &json!({"repo": "nobody.test", "collection": POST, "record": post_record("x")}),
        )
        .await;
    assert_error(&nobody, StatusCode::BAD_REQUEST, "InvalidRequest");
    let nobody = c
        .get(
            None,
            "com.atproto.repo.describeRepo",
            &[("repo", "nobody.test")],
        )
        .await;
    assert_error(&nobody, StatusCode::BAD_REQUEST, "InvalidRequest");

    // Bodies over 1 MB → 413; a large record under the limit is accepted.
    let big = json!({"repo": did.as_str(), "collection": "com.example.blob", "record": {"data": "a".repeat(1024 * 1024)}});
    assert_error(
        &c.post(t, m, &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PayloadTooLarge",
    );
    let sizable = json!({"repo": did.as_str(), "collection": "com.example.blob", "record": {"data": "a".repeat(900 * 1024)}});
    assert_eq!(c.post(t, m, &sizable).await.0, StatusCode::OK);
    // deleteRecord keeps the 150 KB limit.
    let big_delete = json!({"repo": did.as_str(), "collection": POST, "rkey": "x", "pad": "a".repeat(200 * 1024)});
    assert_error(
        &c.post(t, "com.atproto.repo.deleteRecord", &big_delete)
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PayloadTooLarge",
    );

    assert_eq!(assert_repo_verifies(&pds, &did).await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferences_round_trip() {
    let pds = TestPds::start().await;
    let c = Client::new(&pds);
    let (_, token) = pds.seed_account("erin.test", "hunter2hunter2").await;
    let t = Some(token.as_str());

    let empty = c.get(t, "app.bsky.actor.getPreferences", &[]).await;
    assert_eq!(empty, (StatusCode::OK, json!({"preferences": []})));
    let prefs = json!([
        {"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true},
        {"$type": "app.bsky.actor.defs#personalDetailsPref", "birthDate": "1990-01-01T00:00:00.000Z"},
        {"$type": "app.bsky.actor.defs#savedFeedsPrefV2", "items": []}
    ]);
    let put = c
        .post(
            t,
            "app.bsky.actor.putPreferences",
            &json!({"preferences": prefs}),
        )
        .await;
    assert_eq!(put.0, StatusCode::OK, "{}", put.1);
    let got = c.get(t, "app.bsky.actor.getPreferences", &[]).await;
    assert_eq!(got, (StatusCode::OK, json!({"preferences": prefs})));

    // Replacing drops what is not sent.
    let fewer = json!([{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": false}]);
    assert_eq!(
        c.post(
            t,
            "app.bsky.actor.putPreferences",
            &json!({"preferences": fewer})
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        c.get(t, "app.bsky.actor.getPreferences", &[]).await.1,
        json!({"preferences": fewer})
    );

    // Refused: other namespaces, missing $type, invalid known pref, no auth.
    let bad = c
        .post(
            t,
            "app.bsky.actor.putPreferences",
            &json!({"preferences": [{"$type": "com.example.pref", "x": 1}]}),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidRequest");
    assert_eq!(
        bad.1["message"],
        "Some preferences are not in the app.bsky namespace"
    );
    let bad = c
        .post(
            t,
            "app.bsky.actor.putPreferences",
            &json!({"preferences": [{"enabled": true}]}),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidRequest");
    let bad = c.post(t, "app.bsky.actor.putPreferences", &json!({"preferences": [{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": "yes"}]})).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "InvalidRequest");
    assert_error(
        &c.get(None, "app.bsky.actor.getPreferences", &[]).await,
        StatusCode::UNAUTHORIZED,
        "AuthenticationRequired",
    );
    assert_eq!(
        c.get(t, "app.bsky.actor.getPreferences", &[]).await.1,
        json!({"preferences": fewer})
    );
}
