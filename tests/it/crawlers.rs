//! The `requestCrawl` notifier against real HTTP receivers on 127.0.0.1: asked at start-up
//! (through `rookery::server::serve`), after writes, at most once per interval, never while a
//! firehose subscriber is connected, and a failing relay never holds up a write.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use rookery::config::Config;
use rookery::server::crawlers::{CrawlerNotifier, NOTIFY_INTERVAL, NotifierStats};
use rookery::server::tasks::BackgroundTask;
use serde_json::{Value, json};
use support::pds::TestPds;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Upper bound for anything expected to happen promptly.
const DEADLINE: Duration = Duration::from_secs(20);

/// A relay stand-in that records every `requestCrawl` body it receives.
struct Receiver {
    url: url::Url,
    requests: mpsc::UnboundedReceiver<Value>,
}

impl Receiver {
    async fn start() -> Receiver {
        let (tx, requests) = mpsc::unbounded_channel();
        let app =
            axum::Router::new()
                .route(
                    "/xrpc/com.atproto.sync.requestCrawl",
                    post(
                        |State(tx): State<mpsc::UnboundedSender<Value>>,
                         Json(body): Json<Value>| async move {
                            let _ = tx.send(body);
                            Json(json!({}))
                        },
                    ),
                )
                .with_state(tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url: format!("http://{addr}").parse().unwrap(),
            requests,
        }
    }

    async fn next(&mut self) -> Value {
        tokio::time::timeout(DEADLINE, self.requests.recv())
            .await
            .expect("no requestCrawl in time")
            .unwrap()
    }

    fn assert_idle(&mut self) {
        assert!(self.requests.try_recv().is_err(), "unexpected requestCrawl");
    }
}

async fn wait_for(
    stats: &mut watch::Receiver<NotifierStats>,
    what: impl FnMut(&NotifierStats) -> bool,
) {
    tokio::time::timeout(DEADLINE, stats.wait_for(what))
        .await
        .expect("notifier did not get there in time")
        .unwrap();
}

async fn write(pds: &TestPds, access: &str, did: &str, i: usize) {
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
}

fn start(notifier: &Arc<CrawlerNotifier>, token: &CancellationToken) {
    tokio::spawn(notifier.clone().run(token.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_requests_a_crawl_at_start_up() {
    let mut relay = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_directory: dir.path().to_path_buf(),
        bind_address: "127.0.0.1".parse().unwrap(),
        port: 0,
        hostname: "pds.example.test".to_owned(),
        crawlers: vec![relay.url.clone()],
        ..Config::default()
    };
    let shutdown = CancellationToken::new();
    let server = rookery::server::serve(config, shutdown.clone())
        .await
        .unwrap();
    assert_eq!(relay.next().await, json!({"hostname": "pds.example.test"}));
    shutdown.cancel();
    server.wait().await.unwrap();
    relay.assert_idle();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_request_crawls_unless_recent_or_subscribed() {
    let pds = TestPds::start().await;
    let (did, access) = pds.seed_account("kim.test", "hunter2hunter2").await;
    let sequencer = pds.state.repo().sequencer().clone();
    let token = CancellationToken::new();

    // The reference's interval: asked at start-up, so the write that follows asks nobody.
    let mut limited_relay = Receiver::start().await;
    let limited = Arc::new(
        CrawlerNotifier::new(
            "kim.pds",
            &[limited_relay.url.clone()],
            sequencer.clone(),
            NOTIFY_INTERVAL,
        )
        .unwrap(),
    );
    // No interval: every update asks, unless a firehose subscriber is connected. A second
    // crawler that refuses connections fails without holding anything up.
    let mut eager_relay = Receiver::start().await;
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap()
    };
    let eager = Arc::new(
        CrawlerNotifier::new(
            "kim.pds",
            &[eager_relay.url.clone(), dead],
            sequencer.clone(),
            Duration::ZERO,
        )
        .unwrap(),
    );
    let (mut limited_stats, mut eager_stats) = (limited.stats(), eager.stats());
    start(&limited, &token);
    start(&eager, &token);
    assert_eq!(limited_relay.next().await, json!({"hostname": "kim.pds"}));
    assert_eq!(eager_relay.next().await, json!({"hostname": "kim.pds"}));
    wait_for(&mut eager_stats, |s| s.failed == 1).await;

    write(&pds, &access, did.as_str(), 0).await;
    assert_eq!(eager_relay.next().await, json!({"hostname": "kim.pds"}));
    wait_for(&mut limited_stats, |s| s.updates == 1).await;
    assert_eq!(
        *limited_stats.borrow(),
        NotifierStats {
            updates: 1,
            skipped_subscribed: 0,
            skipped_recent: 1,
            sent: 1,
            failed: 0,
        }
    );
    limited_relay.assert_idle();

    // While a subscriber is connected, updates ask nobody.
    let guard = sequencer.subscriber_guard();
    write(&pds, &access, did.as_str(), 1).await;
    wait_for(&mut eager_stats, |s| s.skipped_subscribed == 1).await;
    assert_eq!(eager_stats.borrow().sent, 4);
    eager_relay.assert_idle();
    drop(guard);
    write(&pds, &access, did.as_str(), 2).await;
    assert_eq!(eager_relay.next().await, json!({"hostname": "kim.pds"}));
    wait_for(&mut eager_stats, |s| s.failed == 3).await;
    assert_eq!(
        *eager_stats.borrow(),
        NotifierStats {
            updates: 3,
            skipped_subscribed: 1,
            skipped_recent: 0,
            sent: 6,
            failed: 3,
        }
    );
    token.cancel();
}
