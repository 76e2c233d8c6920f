//! `GET /metrics` after a scripted session over HTTP, read back with the reference
//! Prometheus text parser (PyPI `prometheus-client`, installed pinned by
//! `scripts/s3-deps.sh`): the counters must match what the session did.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use rookery::config::Secret;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support;
use support::pds::TestPds;

const ADMIN_PASSWORD: &str = "metrics-admin-pw";
const DEADLINE: Duration = Duration::from_secs(30);

/// One parsed sample.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses `text` with `prometheus_client.parser.text_string_to_metric_families`; panics if
/// the parser rejects it.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = support::s3::python_binary(repo);
    let mut child = Command::new(python)
        .arg(repo.join("tests/s3/parse-metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the parser");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser rejected the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            Sample {
                name: v["name"].as_str().unwrap().to_owned(),
                labels: serde_json::from_value(v["labels"].clone()).unwrap(),
                value: v["value"].as_f64().unwrap(),
            }
        })
        .collect()
}

/// The value of the sample `name` with exactly `labels`; panics if absent.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
        .value
}

async fn scrape(pds: &TestPds, http: &reqwest::Client) -> String {
    let reply = http
        .get(format!("{}/metrics", pds.url()))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(
        reply.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    reply.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_match_a_scripted_session() {
    let pds = TestPds::start_with(|c| c.admin_password = Some(Secret::new(ADMIN_PASSWORD))).await;
    let http = reqwest::Client::new();
    let (did, token) = pds.seed_account("metrics.test", "hunter2-metrics").await;
    let xrpc = |m: &str| format!("{}/xrpc/{m}", pds.url());

    // A live firehose subscriber.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/xrpc/com.atproto.sync.subscribeRepos",
        pds.addr
    ))
    .await
    .unwrap();
    let started = Instant::now();
    while pds.state.firehose().live_subscribers() != 1 {
        assert!(started.elapsed() < DEADLINE, "subscriber never registered");
        tokio::task::yield_now().await;
    }

    // 3 creates, 1 update, 1 delete, 1 failed read, 1 upload, 1 mail, 2 describeServer.
    let mut rkeys = Vec::new();
    for i in 0..3 {
        let reply = http
            .post(xrpc("com.atproto.repo.createRecord"))
            .bearer_auth(&token)
            .json(&json!({
                "repo": did.as_str(),
                "collection": "app.bsky.feed.post",
                "record": {"$type": "app.bsky.feed.post", "text": format!("post {i}"), "createdAt": "2024-01-01T00:00:00.000Z"},
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        let body: Value = reply.json().await.unwrap();
        let uri = body["uri"].as_str().unwrap();
        rkeys.push(uri.rsplit('/').next().unwrap().to_owned());
    }
    let reply = http
        .post(xrpc("com.atproto.repo.putRecord"))
        .bearer_auth(&token)
        .json(&json!({
            "repo": did.as_str(),
            "collection": "app.bsky.feed.post",
            "rkey": rkeys[0],
            "record": {"$type": "app.bsky.feed.post", "text": "edited", "createdAt": "2024-01-01T00:00:00.000Z"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let reply = http
        .post(xrpc("com.atproto.repo.deleteRecord"))
        .bearer_auth(&token)
        .json(&json!({"repo": did.as_str(), "collection": "app.bsky.feed.post", "rkey": rkeys[1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let reply = http
        .get(format!(
            "{}?repo={did}&collection=app.bsky.feed.post&rkey=3zzzzzzzzzzzz",
            xrpc("com.atproto.repo.getRecord")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    let blob = vec![b'x'; 1000];
    let reply = http
        .post(xrpc("com.atproto.repo.uploadBlob"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(blob)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    // One mail (the deletion code, written to the log: no SMTP is configured).
    let reply = http
        .post(xrpc("com.atproto.server.requestAccountDelete"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    for _ in 0..2 {
        let reply = http
            .get(xrpc("com.atproto.server.describeServer"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
    }
    // The five commits reach the subscriber.
    let mut frames = 0;
    while frames < 5 {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a frame within the deadline");
        match message {
            Some(Ok(Message::Binary(_))) => frames += 1,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("unexpected firehose message {other:?}"),
        }
    }

    // The admin password guards /metrics.
    let reply = http
        .get(format!("{}/metrics", pds.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    let reply = http
        .get(format!("{}/metrics", pds.url()))
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);

    // The writes' firehose events follow their acknowledgement; scraped once sequenced.
    pds.state.repo().moves_settled().await;
    let samples = parse_exposition(&scrape(&pds, &http).await);
    let requests = "rookery_http_requests_total";
    for (nsid, status, n) in [
        ("com.atproto.repo.createRecord", "200", 3.0),
        ("com.atproto.repo.putRecord", "200", 1.0),
        ("com.atproto.repo.deleteRecord", "200", 1.0),
        ("com.atproto.repo.getRecord", "400", 1.0),
        ("com.atproto.repo.uploadBlob", "200", 1.0),
        ("com.atproto.server.describeServer", "200", 2.0),
        ("com.atproto.server.requestAccountDelete", "200", 1.0),
        ("com.atproto.sync.subscribeRepos", "101", 1.0),
        ("_other", "401", 2.0),
    ] {
        assert_eq!(
            value(&samples, requests, &[("nsid", nsid), ("status", status)]),
            n,
            "{nsid} {status}"
        );
    }
    let latency = "rookery_http_request_duration_seconds";
    let create = [("nsid", "com.atproto.repo.createRecord")];
    assert_eq!(value(&samples, &format!("{latency}_count"), &create), 3.0);
    assert_eq!(
        value(
            &samples,
            &format!("{latency}_bucket"),
            &[("nsid", "com.atproto.repo.createRecord"), ("le", "+Inf")]
        ),
        3.0
    );
    assert!(value(&samples, &format!("{latency}_sum"), &create) > 0.0);
    // The scrape itself is the one request in flight.
    assert_eq!(value(&samples, "rookery_http_requests_in_flight", &[]), 1.0);

    let writes = "rookery_repo_writes_total";
    assert_eq!(value(&samples, writes, &[("action", "create")]), 3.0);
    assert_eq!(value(&samples, writes, &[("action", "update")]), 1.0);
    assert_eq!(value(&samples, writes, &[("action", "delete")]), 1.0);
    assert_eq!(value(&samples, "rookery_repo_commits_total", &[]), 5.0);

    let seq = pds
        .state
        .repo()
        .sequencer()
        .latest_seq()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(value(&samples, "rookery_sequencer_seq", &[]), seq as f64);
    assert_eq!(
        value(&samples, "rookery_firehose_published_seq", &[]),
        seq as f64
    );
    assert_eq!(value(&samples, "rookery_firehose_subscribers", &[]), 1.0);
    assert_eq!(
        value(&samples, "rookery_firehose_live_subscribers", &[]),
        1.0
    );
    assert!(value(&samples, "rookery_firehose_frames_total", &[]) >= 5.0);
    let disconnects = "rookery_firehose_disconnects_total";
    assert_eq!(value(&samples, disconnects, &[("reason", "too_slow")]), 0.0);

    assert_eq!(value(&samples, "rookery_blob_uploads_total", &[]), 1.0);
    assert_eq!(
        value(&samples, "rookery_blob_uploaded_bytes_total", &[]),
        1000.0
    );
    assert!(value(&samples, "rookery_actor_store_cache_hits_total", &[]) >= 5.0);
    let mails = "rookery_mails_total";
    assert_eq!(value(&samples, mails, &[("outcome", "sent")]), 1.0);
    assert_eq!(value(&samples, mails, &[("outcome", "failed")]), 0.0);
    for db in ["account", "sequencer", "hub"] {
        assert!(
            value(&samples, "rookery_sqlite_file_bytes", &[("db", db)]) > 0.0,
            "{db}"
        );
    }

    // The subscriber leaves: counted as a disconnect once the server notices.
    ws.close(None).await.unwrap();
    drop(ws);
    let started = Instant::now();
    loop {
        let samples = parse_exposition(&scrape(&pds, &http).await);
        if value(&samples, "rookery_firehose_subscribers", &[]) == 0.0 {
            assert_eq!(value(&samples, disconnects, &[("reason", "other")]), 1.0);
            break;
        }
        assert!(started.elapsed() < DEADLINE, "the subscriber never left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `ROOKERY_METRICS_ADDR`: the exposition without authentication on its own address, while
/// the main port still wants the admin password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_metrics_address_needs_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = rookery::config::Config {
        data_directory: dir.path().to_path_buf(),
        blobstore: rookery::config::BlobstoreConfig::Disk {
            location: dir.path().join("blocks"),
            tmp_location: dir.path().join("tmp"),
        },
        bind_address: "127.0.0.1".parse().unwrap(),
        port: 0,
        metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
        admin_password: Some(Secret::new(ADMIN_PASSWORD)),
        ..rookery::config::Config::default()
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = rookery::server::serve(config, shutdown.clone())
        .await
        .unwrap();
    let metrics = server.metrics_addr().expect("a metrics address");
    let http = reqwest::Client::new();
    let describe = format!(
        "http://{}/xrpc/com.atproto.server.describeServer",
        server.local_addr()
    );
    assert_eq!(
        http.get(&describe).send().await.unwrap().status(),
        StatusCode::OK
    );
    let reply = http
        .get(format!("http://{}/metrics", server.local_addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    let reply = http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let samples = parse_exposition(&reply.text().await.unwrap());
    let requests = "rookery_http_requests_total";
    let describe = [
        ("nsid", "com.atproto.server.describeServer"),
        ("status", "200"),
    ];
    assert_eq!(value(&samples, requests, &describe), 1.0);
    // Only /metrics is served there.
    let reply = http
        .get(format!(
            "http://{metrics}/xrpc/com.atproto.server.describeServer"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    shutdown.cancel();
    server.wait().await.unwrap();
}
