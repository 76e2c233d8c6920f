//! `com.atproto.identity.*`, `/.well-known/atproto-did` and the proxy fallback, over real
//! HTTP against a whole PDS with a real PLC directory.

use crate::support;

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::response::IntoResponse;
use reqwest::StatusCode;
use rookery::auth::verify_service_jwt;
use rookery::config::ServiceEndpoint;
use rookery::syntax::Handle;
use serde_json::{Value, json};
use support::pds::TestPds;

const PASSWORD: &str = "hunter2hunter2";
const APPVIEW_DID: &str = "did:web:appview.test";

async fn get(pds: &TestPds, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", pds.url()));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn update_handle(pds: &TestPds, token: &str, body: Value) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .post(format!(
            "{}/xrpc/com.atproto.identity.updateHandle",
            pds.url()
        ))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn assert_error(reply: &(StatusCode, Value), status: u16, error: &str, message: &str) {
    assert_eq!(reply.0.as_u16(), status, "{:?}", reply.1);
    assert_eq!(reply.1["error"], error, "{:?}", reply.1);
    assert_eq!(reply.1["message"], message, "{:?}", reply.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_handle_local_unknown_invalid() {
    let pds = TestPds::start().await;
    let (did, _) = pds.seed_account("alice.test", PASSWORD).await;
    let path = "/xrpc/com.atproto.identity.resolveHandle?handle=";

    let (status, body) = get(&pds, &format!("{path}alice.test"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "did": did.as_str() }));
    // Handles are case-insensitive.
    let (_, body) = get(&pds, &format!("{path}ALICE.Test"), None).await;
    assert_eq!(body["did"], did.as_str());

    let unknown = get(&pds, &format!("{path}nobody.test"), None).await;
    assert_error(&unknown, 400, "HandleNotFound", "Unable to resolve handle");
    // Not ours: the resolver is asked (DNS, then well-known), and fails.
    let external = get(
        &pds,
        &format!("{path}nobody.invalid-host-xyz.localhost"),
        None,
    )
    .await;
    assert_error(&external, 400, "HandleNotFound", "Unable to resolve handle");

    for bad in ["not_a_handle", "nodots", "a..test", "%00"] {
        let reply = get(&pds, &format!("{path}{bad}"), None).await;
        assert_error(
            &reply,
            400,
            "InvalidRequest",
            "handle must be a valid handle",
        );
    }
    let missing = get(&pds, "/xrpc/com.atproto.identity.resolveHandle", None).await;
    assert_error(
        &missing,
        400,
        "InvalidRequest",
        "Params must have the property \"handle\"",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_handle_writes_plc_db_and_firehose() {
    let pds = TestPds::start().await;
    let (did, token) = pds.seed_account("alice.test", PASSWORD).await;
    let (bob, _) = pds.seed_account("bob.test", PASSWORD).await;

    // Account creation already sequenced events; only those after it count.
    let before = pds
        .state
        .repo()
        .sequencer()
        .events_after(0, 100)
        .await
        .unwrap()
        .last()
        .map_or(0, |e| e.seq);
    let ok = update_handle(&pds, &token, json!({ "handle": "Alice2.TEST" })).await;
    assert_eq!(ok.0, StatusCode::OK, "{:?}", ok.1);

    // The PLC directory now carries the new handle (read past the resolver's cache).
    let data = pds.state.resolver().plc().get_data(&did).await.unwrap();
    assert_eq!(data.also_known_as, vec!["at://alice2.test".to_owned()]);
    let doc = pds.state.resolver().resolve_did(&did).await.unwrap();
    assert_eq!(doc.handle(), Some("alice2.test".parse::<Handle>().unwrap()));

    let path = "/xrpc/com.atproto.identity.resolveHandle?handle=";
    let (_, body) = get(&pds, &format!("{path}alice2.test"), None).await;
    assert_eq!(body["did"], did.as_str());
    let old = get(&pds, &format!("{path}alice.test"), None).await;
    assert_error(&old, 400, "HandleNotFound", "Unable to resolve handle");

    let events = pds
        .state
        .repo()
        .sequencer()
        .events_after(before, 100)
        .await
        .unwrap();
    let identity: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "identity" && e.did == did.as_str())
        .collect();
    assert_eq!(identity.len(), 1, "{events:?}");
    let body: Value = serde_ipld_dagcbor::from_slice::<ipld_core::ipld::Ipld>(&identity[0].event)
        .map(|ipld| serde_json::to_value(ipld).unwrap())
        .unwrap();
    assert_eq!(body["handle"], "alice2.test");
    assert_eq!(body["did"], did.as_str());

    // Taken by another account.
    let taken = update_handle(&pds, &token, json!({ "handle": "bob.test" })).await;
    assert_error(
        &taken,
        400,
        "HandleNotAvailable",
        "Handle already taken: bob.test",
    );
    let still: Value = get(&pds, &format!("{path}bob.test"), None).await.1;
    assert_eq!(still["did"], bob.as_str());

    // Bad handles.
    for (handle, message) in [
        ("al", ""),
        ("ab.test", "Handle too short"),
        ("a234567890123456789.test", "Handle too long"),
        ("a.bcd.test", "Invalid characters in handle"),
        ("alice.example", "Handle TLD is invalid or disallowed"),
    ] {
        let reply = update_handle(&pds, &token, json!({ "handle": handle })).await;
        assert_eq!(reply.0, StatusCode::BAD_REQUEST, "{handle}: {:?}", reply.1);
        assert_eq!(reply.1["error"], "InvalidHandle", "{handle}: {:?}", reply.1);
        if message.is_empty() {
            let text = reply.1["message"].as_str().unwrap();
            assert!(text.starts_with("Invalid handle: "), "{text}");
        } else {
            assert_eq!(reply.1["message"], message, "{handle}");
        }
    }
    // An external domain that does not resolve to the caller.
    let external = update_handle(
        &pds,
        &token,
        json!({ "handle": "alice.nowhere-xyz.localhost" }),
    )
    .await;
    assert_eq!(external.0, StatusCode::BAD_REQUEST);
    // Malformed bodies and missing auth.
    let no_body = update_handle(&pds, &token, json!({})).await;
    assert_eq!(no_body.0, StatusCode::BAD_REQUEST);
    assert_eq!(no_body.1["error"], "InvalidRequest");
    let anon = reqwest::Client::new()
        .post(format!(
            "{}/xrpc/com.atproto.identity.updateHandle",
            pds.url()
        ))
        .json(&json!({ "handle": "carol.test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    // Nothing changed by the refusals.
    let data = pds.state.resolver().plc().get_data(&did).await.unwrap();
    assert_eq!(data.also_known_as, vec!["at://alice2.test".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommended_did_credentials() {
    let pds = TestPds::start().await;
    let (did, token) = pds.seed_account("alice.test", PASSWORD).await;
    let (status, body) = get(
        &pds,
        "/xrpc/com.atproto.identity.getRecommendedDidCredentials",
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let data = pds.state.resolver().plc().get_data(&did).await.unwrap();
    let rotation = pds.state.plc_rotation_key().public_key().to_did_key();
    assert_eq!(
        body,
        json!({
            "rotationKeys": [rotation],
            "alsoKnownAs": ["at://alice.test"],
            "verificationMethods": { "atproto": data.verification_methods["atproto"] },
            "services": { "atproto_pds": {
                "type": "AtprotoPersonalDataServer",
                "endpoint": pds.state.config().public_url,
            }},
        })
    );
    let anon = get(
        &pds,
        "/xrpc/com.atproto.identity.getRecommendedDidCredentials",
        None,
    )
    .await;
    assert_eq!(anon.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_known_atproto_did_by_host() {
    let pds = TestPds::start().await;
    let (did, _) = pds.seed_account("alice.test", PASSWORD).await;
    let client = reqwest::Client::new();
    let fetch = |host: &'static str| {
        client
            .get(format!("{}/.well-known/atproto-did", pds.url()))
            .header("host", host)
            .send()
    };
    let res = fetch("alice.test").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(res.text().await.unwrap(), did.as_str());
    let res = fetch("ALICE.test:2583").await.unwrap();
    assert_eq!(res.text().await.unwrap(), did.as_str());
    for host in ["bob.test", "alice.example.com", "127.0.0.1", "not a host"] {
        let res = fetch(host).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{host}");
        assert_eq!(res.text().await.unwrap(), "User not found", "{host}");
    }
}

/// One request the fake AppView saw: path and query, and the Authorization header.
type SeenRequest = (String, Option<String>);

/// What the fake AppView saw.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<SeenRequest>>>);

async fn appview(State(seen): State<Seen>, req: Request) -> impl IntoResponse {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let uri = req.uri().to_string();
    seen.0.lock().unwrap().push((uri, auth));
    axum::Json(json!({ "feed": [], "from": "appview" }))
}

async fn start_appview() -> (url::Url, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new()
        .fallback(appview)
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}").parse().unwrap(), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrouted_app_bsky_methods_are_proxied() {
    let (url, seen) = start_appview().await;
    let pds = TestPds::start_with(|c| {
        c.bsky_app_view = Some(ServiceEndpoint {
            url,
            did: APPVIEW_DID.to_owned(),
        })
    })
    .await;
    let (did, token) = pds.seed_account("alice.test", PASSWORD).await;

    let (status, body) = get(
        &pds,
        "/xrpc/app.bsky.feed.getTimeline?limit=5",
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(body, json!({ "feed": [], "from": "appview" }));
    let (uri, auth) = seen.0.lock().unwrap()[0].clone();
    assert_eq!(uri, "/xrpc/app.bsky.feed.getTimeline?limit=5");
    let jwt = auth.unwrap().strip_prefix("Bearer ").unwrap().to_owned();
    let store = pds.state.repo().stores().open(&did).await.unwrap().unwrap();
    let claims = verify_service_jwt(
        &jwt,
        &store.keypair().public_key(),
        APPVIEW_DID,
        Some("app.bsky.feed.getTimeline"),
        chrono::Utc::now().timestamp(),
    )
    .unwrap();
    assert_eq!(claims.iss, did.as_str());
    // The PDS's rotation key does not verify it.
    assert!(
        verify_service_jwt(
            &jwt,
            &pds.state.plc_rotation_key().public_key(),
            APPVIEW_DID,
            Some("app.bsky.feed.getTimeline"),
            chrono::Utc::now().timestamp(),
        )
        .is_err()
    );

    // Without a session: forwarded without Authorization.
    let (status, _) = get(
        &pds,
        "/xrpc/app.bsky.actor.getProfile?actor=alice.test",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (uri, auth) = seen.0.lock().unwrap()[1].clone();
    assert_eq!(uri, "/xrpc/app.bsky.actor.getProfile?actor=alice.test");
    assert_eq!(auth, None);

    // A bad token is refused, not forwarded anonymously.
    let bad = get(&pds, "/xrpc/app.bsky.feed.getTimeline", Some("garbage")).await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST);
    assert_eq!(bad.1["error"], "InvalidToken");

    // A protected method is never proxied, even with an atproto-proxy header: it is served
    // here (signPlcOperation wants the mailed token) and the AppView sees nothing.
    let forwarded = seen.0.lock().unwrap().len();
    let res = reqwest::Client::new()
        .post(format!(
            "{}/xrpc/com.atproto.identity.signPlcOperation",
            pds.url()
        ))
        .bearer_auth(&token)
        .header("atproto-proxy", format!("{APPVIEW_DID}#bsky_appview"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "error": "InvalidRequest",
            "message": "email confirmation token required to sign PLC operations"
        })
    );
    assert_eq!(seen.0.lock().unwrap().len(), forwarded);
    // A routed method with the header is served here, not proxied.
    let routed = reqwest::Client::new()
        .get(format!(
            "{}/xrpc/com.atproto.identity.resolveHandle?handle=alice.test",
            pds.url()
        ))
        .header("atproto-proxy", format!("{APPVIEW_DID}#bsky_appview"))
        .send()
        .await
        .unwrap();
    assert_eq!(routed.status(), StatusCode::OK);
    let body: Value = routed.json().await.unwrap();
    assert_eq!(body["did"], did.as_str());
    // Other unrouted methods are still 501.
    let other = get(&pds, "/xrpc/com.example.nothing.here", None).await;
    assert_eq!(other.0, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(seen.0.lock().unwrap().len(), 2);
}
