//! `com.atproto.admin.*` over real HTTP: account takedown (sessions refused, repository
//! unavailable, `#account` on the firehose) and its reversal, admin deactivation, record and
//! blob takedowns, `getSubjectStatus`, `getAccountInfo`, and the admin-auth and input errors.

use crate::support;

use reqwest::StatusCode;
use rookery::config::{BlobstoreConfig, Secret};
use rookery::repo::cbor::{self, Ipld};
use rookery::syntax::Did;
use serde_json::{Value, json};
use support::pds::TestPds;

const ADMIN_PASSWORD: &str = "admin-pass-123";

struct Env {
    pds: TestPds,
    http: reqwest::Client,
}

impl Env {
    async fn start() -> Env {
        let pds = TestPds::start_with(|config| {
            config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        })
        .await;
        Env {
            pds,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, method: &str) -> String {
        format!("{}/xrpc/{method}", self.pds.url())
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let reply = request.send().await.unwrap();
        let status = reply.status();
        let bytes = reply.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn admin_post(&self, method: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .post(self.url(method))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .json(&body),
        )
        .await
    }

    async fn admin_get(&self, method: &str, query: &str) -> (StatusCode, Value) {
        self.send(
            self.http
                .get(format!("{}?{query}", self.url(method)))
                .basic_auth("admin", Some(ADMIN_PASSWORD)),
        )
        .await
    }

    async fn user_post(&self, token: &str, method: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .post(self.url(method))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    async fn get(&self, method: &str, query: &str) -> (StatusCode, Value) {
        self.send(self.http.get(format!("{}?{query}", self.url(method))))
            .await
    }

    async fn update(&self, subject: Value, extra: Value) -> Value {
        let mut body = extra;
        body["subject"] = subject;
        let (status, out) = self
            .admin_post("com.atproto.admin.updateSubjectStatus", body)
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out
    }

    /// The latest `seq` once every acknowledged write's events are sequenced.
    async fn latest_seq(&self) -> i64 {
        self.pds.state.repo().moves_settled().await;
        let seq = self.pds.state.repo().sequencer();
        seq.latest_seq().await.unwrap().unwrap_or(0)
    }

    /// The `#account` events after `after`: (did, body).
    async fn account_events(&self, after: i64) -> Vec<(String, Ipld)> {
        let seq = self.pds.state.repo().sequencer();
        seq.events_after(after, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event_type == "account")
            .map(|e| (e.did, cbor::decode(&e.event).unwrap()))
            .collect()
    }

    async fn create_post(&self, token: &str, did: &Did, record: Value) -> Value {
        let (status, out) = self
            .user_post(
                token,
                "com.atproto.repo.createRecord",
                json!({"repo": did.as_str(), "collection": "app.bsky.feed.post", "record": record}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out
    }
}

fn post(text: &str) -> Value {
    json!({"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-23T00:00:00.000Z"})
}

fn error(out: &Value) -> &str {
    out["error"].as_str().unwrap_or_default()
}

/// An `#account` body's `active` and `status`.
fn account_fields(body: &Ipld) -> (Option<bool>, Option<String>) {
    let Ipld::Map(map) = body else {
        panic!("not a map: {body:?}")
    };
    let active = match map.get("active") {
        Some(Ipld::Bool(b)) => Some(*b),
        _ => None,
    };
    let status = match map.get("status") {
        Some(Ipld::String(s)) => Some(s.clone()),
        _ => None,
    };
    (active, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_takedown_and_reversal() {
    let env = Env::start().await;
    let (did, access) = env.pds.seed_account("tako.test", "hunter2hunter2").await;
    let (other, other_access) = env.pds.seed_account("safe.test", "hunter2hunter2").await;
    env.create_post(&access, &did, post("before")).await;
    let (status, session) = env
        .send(
            env.http
                .post(env.url("com.atproto.server.createSession"))
                .json(&json!({"identifier": "tako.test", "password": "hunter2hunter2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let refresh = session["refreshJwt"].as_str().unwrap().to_owned();

    let before = env.latest_seq().await;
    let subject = json!({"$type": "com.atproto.admin.defs#repoRef", "did": did.as_str()});
    let out = env
        .update(
            subject.clone(),
            json!({"takedown": {"applied": true, "ref": "mod-1"}}),
        )
        .await;
    assert_eq!(
        out,
        json!({"subject": subject, "takedown": {"applied": true, "ref": "mod-1"}})
    );

    // Exactly one #account event, inactive and taken down.
    let events = env.account_events(before).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, did.as_str());
    assert_eq!(
        account_fields(&events[0].1),
        (Some(false), Some("takendown".to_owned()))
    );

    // The account's tokens are refused; its sessions are gone.
    let (status, out) = env
        .user_post(&access, "com.atproto.repo.createRecord", json!({"repo": did.as_str(), "collection": "app.bsky.feed.post", "record": post("after")}))
        .await;
    assert_eq!(
        (status, error(&out)),
        (StatusCode::BAD_REQUEST, "AccountTakedown")
    );
    let (status, out) = env
        .send(
            env.http
                .post(env.url("com.atproto.server.refreshSession"))
                .bearer_auth(&refresh),
        )
        .await;
    assert_eq!(
        (status, error(&out)),
        (StatusCode::BAD_REQUEST, "ExpiredToken"),
        "{out}"
    );
    // Other accounts are untouched.
    env.create_post(&other_access, &other, post("still here"))
        .await;

    // The repository is unavailable.
    let query = format!("did={did}");
    let (status, out) = env.get("com.atproto.sync.getRepo", &query).await;
    assert_eq!(
        (status, error(&out)),
        (StatusCode::BAD_REQUEST, "RepoTakendown")
    );
    let (status, out) = env.get("com.atproto.sync.getRepoStatus", &query).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        out,
        json!({"did": did.as_str(), "active": false, "status": "takendown"})
    );
    let (status, out) = env
        .admin_get("com.atproto.admin.getSubjectStatus", &query)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        out,
        json!({
            "subject": subject,
            "takedown": {"applied": true, "ref": "mod-1"},
            "deactivated": {"applied": false},
        })
    );

    // Reversal.
    let before = env.latest_seq().await;
    let out = env
        .update(subject.clone(), json!({"takedown": {"applied": false}}))
        .await;
    assert_eq!(
        out,
        json!({"subject": subject, "takedown": {"applied": false}})
    );
    let events = env.account_events(before).await;
    assert_eq!(events.len(), 1);
    assert_eq!(account_fields(&events[0].1), (Some(true), None));
    let (status, _) = env.get("com.atproto.sync.getRepo", &query).await;
    assert_eq!(status, StatusCode::OK);
    let (_, out) = env.get("com.atproto.sync.getRepoStatus", &query).await;
    assert_eq!(out["active"], json!(true));
    assert_eq!(out.get("status"), None);
    let (_, out) = env
        .admin_get("com.atproto.admin.getSubjectStatus", &query)
        .await;
    assert_eq!(
        out,
        json!({
            "subject": subject,
            "takedown": {"applied": false},
            "deactivated": {"applied": false},
        })
    );
    env.create_post(&access, &did, post("after")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takedown_without_ref_uses_the_time_and_deactivation_is_announced() {
    let env = Env::start().await;
    let (did, _access) = env.pds.seed_account("deac.test", "hunter2hunter2").await;
    let subject = json!({"$type": "com.atproto.admin.defs#repoRef", "did": did.as_str()});
    let query = format!("did={did}");

    let before = env.latest_seq().await;
    env.update(subject.clone(), json!({"deactivated": {"applied": true}}))
        .await;
    let events = env.account_events(before).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        account_fields(&events[0].1),
        (Some(false), Some("deactivated".to_owned()))
    );
    let (_, out) = env.get("com.atproto.sync.getRepoStatus", &query).await;
    assert_eq!(
        out,
        json!({"did": did.as_str(), "active": false, "status": "deactivated"})
    );

    // A takedown without a reference stores the time; takedown outranks deactivation.
    let before = env.latest_seq().await;
    env.update(subject.clone(), json!({"takedown": {"applied": true}}))
        .await;
    let events = env.account_events(before).await;
    assert_eq!(
        account_fields(&events[0].1),
        (Some(false), Some("takendown".to_owned()))
    );
    let (_, out) = env
        .admin_get("com.atproto.admin.getSubjectStatus", &query)
        .await;
    assert_eq!(out["takedown"]["applied"], json!(true));
    let reference = out["takedown"]["ref"].as_str().unwrap();
    assert!(
        reference.parse::<rookery::syntax::Datetime>().is_ok(),
        "{reference}"
    );
    assert_eq!(out["deactivated"], json!({"applied": true}));

    // Both lifted at once: active again, one event.
    let before = env.latest_seq().await;
    env.update(
        subject,
        json!({"takedown": {"applied": false}, "deactivated": {"applied": false}}),
    )
    .await;
    let events = env.account_events(before).await;
    assert_eq!(events.len(), 1);
    assert_eq!(account_fields(&events[0].1), (Some(true), None));
    let (_, out) = env.get("com.atproto.sync.getRepoStatus", &query).await;
    assert_eq!(out["active"], json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_takedown_hides_the_record() {
    let env = Env::start().await;
    let (did, access) = env.pds.seed_account("rec.test", "hunter2hunter2").await;
    let created = env.create_post(&access, &did, post("hide me")).await;
    let uri = created["uri"].as_str().unwrap().to_owned();
    let cid = created["cid"].as_str().unwrap().to_owned();
    let rkey = uri.rsplit('/').next().unwrap().to_owned();
    let record_query = format!("repo={did}&collection=app.bsky.feed.post&rkey={rkey}");
    let subject = json!({"$type": "com.atproto.repo.strongRef", "uri": uri, "cid": cid});

    let before = env.latest_seq().await;
    let out = env
        .update(
            subject.clone(),
            json!({"takedown": {"applied": true, "ref": "spam"}}),
        )
        .await;
    assert_eq!(
        out,
        json!({"subject": subject, "takedown": {"applied": true, "ref": "spam"}})
    );
    // Records are not announced.
    assert!(env.account_events(before).await.is_empty());
    let (status, out) = env.get("com.atproto.repo.getRecord", &record_query).await;
    assert_eq!(
        (status, error(&out)),
        (StatusCode::BAD_REQUEST, "RecordNotFound")
    );
    let (status, out) = env
        .admin_get("com.atproto.admin.getSubjectStatus", &format!("uri={uri}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        out,
        json!({"subject": subject, "takedown": {"applied": true, "ref": "spam"}})
    );

    env.update(subject.clone(), json!({"takedown": {"applied": false}}))
        .await;
    let (status, out) = env.get("com.atproto.repo.getRecord", &record_query).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["value"]["text"], json!("hide me"));
    let (_, out) = env
        .admin_get("com.atproto.admin.getSubjectStatus", &format!("uri={uri}"))
        .await;
    assert_eq!(
        out,
        json!({"subject": subject, "takedown": {"applied": false}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_takedown_refuses_get_blob() {
    let env = Env::start().await;
    let (did, access) = env.pds.seed_account("blob.test", "hunter2hunter2").await;
    let bytes = b"\x89PNG\r\n\x1a\n fake image bytes".to_vec();
    let reply = env
        .http
        .post(env.url("com.atproto.repo.uploadBlob"))
        .bearer_auth(&access)
        .header("content-type", "image/png")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let blob: Value = reply.json().await.unwrap();
    let blob = blob["blob"].clone();
    let cid = blob["ref"]["$link"].as_str().unwrap().to_owned();
    let mut record = post("with image");
    record["embed"] = json!({
        "$type": "app.bsky.embed.images",
        "images": [{"image": blob, "alt": ""}],
    });
    env.create_post(&access, &did, record).await;
    let blob_query = format!("did={did}&cid={cid}");
    let (status, _) = env.get("com.atproto.sync.getBlob", &blob_query).await;
    assert_eq!(status, StatusCode::OK);

    let subject =
        json!({"$type": "com.atproto.admin.defs#repoBlobRef", "did": did.as_str(), "cid": cid});
    env.update(
        subject.clone(),
        json!({"takedown": {"applied": true, "ref": "csam-1"}}),
    )
    .await;
    let (status, out) = env.get("com.atproto.sync.getBlob", &blob_query).await;
    assert_eq!(
        (status, error(&out)),
        (StatusCode::BAD_REQUEST, "BlobNotFound")
    );
    // The bytes moved to quarantine.
    let BlobstoreConfig::Disk { location, .. } = &env.pds.state.config().blobstore else {
        panic!("the test PDS stores blobs on disk")
    };
    let quarantined = location.join("quarantine").join(did.as_str()).join(&cid);
    assert_eq!(std::fs::read(&quarantined).unwrap(), bytes);
    let status_query = format!("did={did}&blob={cid}");
    let (status, out) = env
        .admin_get("com.atproto.admin.getSubjectStatus", &status_query)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        out,
        json!({"subject": subject, "takedown": {"applied": true, "ref": "csam-1"}})
    );

    env.update(subject.clone(), json!({"takedown": {"applied": false}}))
        .await;
    let reply = env
        .http
        .get(format!(
            "{}?{blob_query}",
            env.url("com.atproto.sync.getBlob")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.bytes().await.unwrap().as_ref(), &bytes[..]);
    assert!(!quarantined.exists());
    let (_, out) = env
        .admin_get("com.atproto.admin.getSubjectStatus", &status_query)
        .await;
    assert_eq!(
        out,
        json!({"subject": subject, "takedown": {"applied": false}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_auth_and_input_errors() {
    let env = Env::start().await;
    let (did, access) = env.pds.seed_account("auth.test", "hunter2hunter2").await;
    let method = "com.atproto.admin.updateSubjectStatus";
    let body = json!({
        "subject": {"$type": "com.atproto.admin.defs#repoRef", "did": did.as_str()},
        "takedown": {"applied": true},
    });

    // Missing, wrong, or non-admin credentials: 401, nothing changes.
    for request in [
        env.http.post(env.url(method)).json(&body),
        env.http
            .post(env.url(method))
            .basic_auth("admin", Some("wrong"))
            .json(&body),
        env.http
            .post(env.url(method))
            .bearer_auth(&access)
            .json(&body),
    ] {
        let (status, out) = env.send(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{out}");
        assert_eq!(error(&out), "AuthenticationRequired");
    }
    for query in [format!("did={did}"), String::new()] {
        let (status, _) = env
            .send(env.http.get(format!(
                "{}?{query}",
                env.url("com.atproto.admin.getSubjectStatus")
            )))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = env
        .send(
            env.http
                .get(format!(
                    "{}?did={did}",
                    env.url("com.atproto.admin.getAccountInfo")
                ))
                .basic_auth("admin", Some("wrong")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, out) = env
        .get("com.atproto.sync.getRepoStatus", &format!("did={did}"))
        .await;
    assert_eq!(out["active"], json!(true));

    // Malformed subjects.
    for (body, message) in [
        (json!({}), None),
        (
            json!({"subject": {"did": did.as_str()}}),
            Some("Invalid subject"),
        ),
        (
            json!({"subject": {"$type": "com.example.nope", "did": did.as_str()}}),
            Some("Invalid subject"),
        ),
        (
            json!({"subject": {"$type": "com.atproto.admin.defs#repoRef", "did": "not-a-did"}}),
            None,
        ),
        (
            json!({"subject": {"$type": "com.atproto.admin.defs#repoRef"}}),
            Some("subject must have a string did"),
        ),
        (
            json!({"subject": {"$type": "com.atproto.repo.strongRef", "uri": format!("at://{did}/app.bsky.feed.post"), "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}}),
            Some("uri must name a record"),
        ),
        (
            json!({"subject": {"$type": "com.atproto.admin.defs#repoBlobRef", "did": did.as_str(), "cid": "nope"}}),
            Some("Invalid cid \"nope\""),
        ),
        (
            json!({"subject": {"$type": "com.atproto.admin.defs#repoRef", "did": did.as_str()}, "takedown": {"ref": "x"}}),
            None,
        ),
    ] {
        let (status, out) = env.admin_post(method, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {out}");
        assert_eq!(error(&out), "InvalidRequest", "{body} → {out}");
        if let Some(message) = message {
            assert_eq!(out["message"], json!(message), "{body}");
        }
    }

    // Unknown subjects.
    let before = env.latest_seq().await;
    let unknown = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    for body in [
        json!({"subject": {"$type": "com.atproto.admin.defs#repoRef", "did": unknown}, "takedown": {"applied": true}}),
        json!({"subject": {"$type": "com.atproto.repo.strongRef", "uri": format!("at://{did}/app.bsky.feed.post/3kabcabcabc22"), "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}, "takedown": {"applied": true}}),
        json!({"subject": {"$type": "com.atproto.admin.defs#repoBlobRef", "did": did.as_str(), "cid": "bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}, "takedown": {"applied": true}}),
    ] {
        let (status, out) = env.admin_post(method, body.clone()).await;
        assert_eq!(
            (status, error(&out)),
            (StatusCode::BAD_REQUEST, "NotFound"),
            "{body} → {out}"
        );
    }
    // Nothing was announced for refused or unknown subjects.
    assert!(env.account_events(before).await.is_empty());

    // getSubjectStatus input errors.
    for (query, name, message) in [
        ("", "InvalidRequest", "No provided subject"),
        (
            "blob=bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
            "InvalidRequest",
            "Must provide a did to request blob state",
        ),
        (
            &format!("did={unknown}") as &str,
            "NotFound",
            "Subject not found",
        ),
    ] {
        let (status, out) = env
            .admin_get("com.atproto.admin.getSubjectStatus", query)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            (error(&out), out["message"].as_str().unwrap()),
            (name, message),
            "{query}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_account_info_views_the_account() {
    let env = Env::start().await;
    let (did, _) = env.pds.seed_account("info.test", "hunter2hunter2").await;
    let (status, out) = env
        .admin_get("com.atproto.admin.getAccountInfo", &format!("did={did}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let indexed_at = out["indexedAt"].as_str().unwrap().to_owned();
    assert!(indexed_at.parse::<rookery::syntax::Datetime>().is_ok());
    assert_eq!(
        out,
        json!({
            "did": did.as_str(),
            "handle": "info.test",
            "email": "info-test@example.com",
            "indexedAt": indexed_at,
            "invitesDisabled": false,
            "invites": [],
        })
    );
    let (status, out) = env
        .admin_get(
            "com.atproto.admin.getAccountInfo",
            "did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
        )
        .await;
    assert_eq!((status, error(&out)), (StatusCode::BAD_REQUEST, "NotFound"));
}
