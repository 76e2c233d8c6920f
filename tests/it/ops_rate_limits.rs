//! Rate limits over real HTTP with small configured numbers: each trips at its number with
//! a 429 `RateLimitExceeded` and the `RateLimit-*` headers, counts what the reference
//! counts (write points per account, logins per identifier, calls per client address), and
//! lets requests through again once its window has passed.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rookery::accounts::RateLimit;
use rookery::config::{Config, Secret};
use serde_json::{Value, json};

use crate::support;
use support::pds::TestPds;

const DEADLINE: Duration = Duration::from_secs(30);

fn limit(points: u32, window_secs: i64) -> Vec<RateLimit> {
    vec![RateLimit {
        points,
        window_secs,
    }]
}

/// A server with limits on and generous defaults, adjusted by `adjust`.
async fn start(adjust: impl FnOnce(&mut Config)) -> TestPds {
    TestPds::start_with(|c| {
        c.rate_limits_enabled = true;
        c.rate_limits.global_ip = limit(10_000, 300);
        adjust(c);
    })
    .await
}

fn header<'a>(reply: &'a reqwest::Response, name: &str) -> &'a str {
    reply
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// Asserts a 429 with the reference's body and headers for a `points`/`window` limit.
async fn assert_limited(reply: reqwest::Response, points: u32, window: i64) {
    assert_eq!(reply.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&reply, "ratelimit-limit"), points.to_string());
    assert_eq!(header(&reply, "ratelimit-remaining"), "0");
    assert_eq!(
        header(&reply, "ratelimit-policy"),
        format!("{points};w={window}")
    );
    let reset: i64 = header(&reply, "ratelimit-reset").parse().unwrap();
    assert!(reset > 1_700_000_000, "reset is UNIX seconds: {reset}");
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"], "RateLimitExceeded");
}

#[tokio::test]
async fn per_address_limit_trips_bypasses_and_resets() {
    let pds = start(|c| {
        c.rate_limits.global_ip = limit(5, 2);
        c.rate_limit_bypass_key = Some(Secret::new("let-me-through"));
    })
    .await;
    let http = reqwest::Client::new();
    let describe = format!("{}/xrpc/com.atproto.server.describeServer", pds.url());
    for remaining in (0..5).rev() {
        let reply = http.get(&describe).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        assert_eq!(header(&reply, "ratelimit-limit"), "5");
        assert_eq!(header(&reply, "ratelimit-remaining"), remaining.to_string());
        assert_eq!(header(&reply, "ratelimit-policy"), "5;w=2");
    }
    assert_limited(http.get(&describe).send().await.unwrap(), 5, 2).await;
    // The health check is not limited; the bypass key passes (the wrong one does not).
    let reply = http
        .get(format!("{}/xrpc/_health", pds.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let reply = http
        .get(&describe)
        .header("x-ratelimit-bypass", "let-me-through")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert!(reply.headers().get("ratelimit-limit").is_none());
    let reply = http
        .get(&describe)
        .header("x-ratelimit-bypass", "guess")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::TOO_MANY_REQUESTS);
    // Refused calls are not counted: once the window has passed, calls go through again.
    let started = Instant::now();
    loop {
        let reply = http.get(&describe).send().await.unwrap();
        if reply.status() == StatusCode::OK {
            break;
        }
        assert_eq!(reply.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(started.elapsed() < DEADLINE, "the limit never reset");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn client_address_comes_from_the_trusted_proxy_header_only() {
    let forwarded = |http: &reqwest::Client, url: &str, ip: &str| {
        http.get(url)
            .header("x-forwarded-for", format!("203.0.113.9, {ip}"))
    };
    // Trusted: each forwarded address has its own budget; a bypass address has none.
    let pds = start(|c| {
        c.rate_limits.global_ip = limit(2, 300);
        c.trusted_proxy_header = Some("x-forwarded-for".to_owned());
        c.rate_limit_bypass_ips = vec!["198.51.100.0/24".parse().unwrap()];
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/xrpc/com.atproto.server.describeServer", pds.url());
    for _ in 0..2 {
        let reply = forwarded(&http, &url, "192.0.2.1").send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
    }
    assert_limited(
        forwarded(&http, &url, "192.0.2.1").send().await.unwrap(),
        2,
        300,
    )
    .await;
    let reply = forwarded(&http, &url, "192.0.2.2").send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    for _ in 0..4 {
        let reply = forwarded(&http, &url, "198.51.100.7").send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
    }

    // Not configured: the header is ignored and the socket address counts.
    let pds = start(|c| c.rate_limits.global_ip = limit(2, 300)).await;
    let url = format!("{}/xrpc/com.atproto.server.describeServer", pds.url());
    for ip in ["192.0.2.1", "192.0.2.2"] {
        let reply = forwarded(&http, &url, ip).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
    }
    assert_limited(
        forwarded(&http, &url, "192.0.2.3").send().await.unwrap(),
        2,
        300,
    )
    .await;
}

#[tokio::test]
async fn repo_writes_cost_points_per_account() {
    let pds = start(|c| c.rate_limits.repo_write = limit(10, 3600)).await;
    let http = reqwest::Client::new();
    let (alice, alice_token) = pds.seed_account("alice.test", "alice-password-1").await;
    let (bob, bob_token) = pds.seed_account("bob.test", "bob-password-12").await;
    let xrpc = |m: &str| format!("{}/xrpc/{m}", pds.url());
    let post = |i: usize| json!({"$type": "app.bsky.feed.post", "text": format!("post {i}"), "createdAt": "2024-01-01T00:00:00.000Z"});
    let create = |token: &str, did: &str, i: usize| {
        http.post(xrpc("com.atproto.repo.createRecord"))
            .bearer_auth(token)
            .json(&json!({"repo": did, "collection": "app.bsky.feed.post", "record": post(i)}))
    };
    // 3 creates (9 points) and a delete (1) fill alice's 10 points.
    let mut rkey = String::new();
    for i in 0..3 {
        let reply = create(&alice_token, alice.as_str(), i)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        let body: Value = reply.json().await.unwrap();
        rkey = body["uri"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
    }
    let reply = http
        .post(xrpc("com.atproto.repo.deleteRecord"))
        .bearer_auth(&alice_token)
        .json(&json!({"repo": alice.as_str(), "collection": "app.bsky.feed.post", "rkey": rkey}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_limited(
        create(&alice_token, alice.as_str(), 9)
            .send()
            .await
            .unwrap(),
        10,
        3600,
    )
    .await;
    let delete_write = json!({"$type": "com.atproto.repo.applyWrites#delete", "collection": "app.bsky.feed.post", "rkey": "3zzzzzzzzzzzz"});
    let reply = http
        .post(xrpc("com.atproto.repo.applyWrites"))
        .bearer_auth(&alice_token)
        .json(&json!({"repo": alice.as_str(), "writes": [delete_write]}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::TOO_MANY_REQUESTS);

    // Bob has his own budget: two creates in one applyWrites (6), then two more (12) fail.
    let creates = |n: usize| {
        let writes: Vec<Value> = (0..n)
            .map(|i| json!({"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": post(i)}))
            .collect();
        http.post(xrpc("com.atproto.repo.applyWrites"))
            .bearer_auth(&bob_token)
            .json(&json!({"repo": bob.as_str(), "writes": writes}))
    };
    let reply = creates(2).send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_limited(creates(2).send().await.unwrap(), 10, 3600).await;
    // What fits still goes through: one create (3 more: 9 of 10).
    let reply = creates(1).send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
}

#[tokio::test]
async fn create_session_is_limited_per_identifier() {
    let pds = start(|c| c.rate_limits.create_session = limit(3, 300)).await;
    let http = reqwest::Client::new();
    let url = format!("{}/xrpc/com.atproto.server.createSession", pds.url());
    pds.seed_account("carol.test", "carol-password-1").await;
    let login = |identifier: &str, password: &str| {
        http.post(&url)
            .json(&json!({"identifier": identifier, "password": password}))
    };
    for _ in 0..2 {
        let reply = login("carol.test", "wrong-password").send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    }
    let reply = login("CAROL.test", "carol-password-1")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(header(&reply, "ratelimit-remaining"), "0");
    assert_limited(
        login("carol.test", "carol-password-1")
            .send()
            .await
            .unwrap(),
        3,
        300,
    )
    .await;
    let reply = login("dave.test", "whatever-pass").send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn methods_limited_per_address() {
    let pds = start(|c| {
        let policy = &mut c.rate_limits;
        policy.set_per_address("com.atproto.server.createAccount", limit(2, 300));
        policy.set_per_address("com.atproto.repo.uploadBlob", limit(1, 86_400));
        policy.set_per_address("com.atproto.sync.getRepo", limit(1, 300));
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/xrpc/com.atproto.server.createAccount", pds.url());
    // Refused input counts too, as in the reference (the limit runs before the handler).
    for _ in 0..2 {
        let reply = http
            .post(&url)
            .json(&json!({"handle": "x.test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    }
    assert_limited(
        http.post(&url)
            .json(&json!({"handle": "x.test"}))
            .send()
            .await
            .unwrap(),
        2,
        300,
    )
    .await;

    let (_, token) = pds.seed_account("erin.test", "erin-password-1").await;
    let upload = || {
        http.post(format!("{}/xrpc/com.atproto.repo.uploadBlob", pds.url()))
            .bearer_auth(&token)
            .header("content-type", "text/plain")
            .body("hello")
    };
    let reply = upload().send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_limited(upload().send().await.unwrap(), 1, 86_400).await;

    let (did, _) = pds.seed_account("frank.test", "frank-password-1").await;
    let get_repo = format!("{}/xrpc/com.atproto.sync.getRepo?did={did}", pds.url());
    let reply = http.get(&get_repo).send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_limited(http.get(&get_repo).send().await.unwrap(), 1, 300).await;
}

#[tokio::test]
async fn limits_are_off_in_development() {
    // TestPds runs in dev mode, where the default is off.
    let pds = TestPds::start_with(|c| {
        c.rate_limits_enabled = Config::from_sources(
            [
                ("PDS_DEV_MODE".to_owned(), "true".to_owned()),
                ("PDS_HOSTNAME".to_owned(), "pds.example.com".to_owned()),
            ],
            None,
        )
        .unwrap()
        .rate_limits_enabled;
        c.rate_limits.global_ip = limit(1, 300);
    })
    .await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let reply = http
            .get(format!(
                "{}/xrpc/com.atproto.server.describeServer",
                pds.url()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        assert!(reply.headers().get("ratelimit-limit").is_none());
    }
}
