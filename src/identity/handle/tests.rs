use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::identity::test_server::{Reply, StaticHosts, StaticTxt, TestServer, within};

const DID_A: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const DID_B: &str = "did:plc:hezjmhcxiopucpa4ixrqyhe3";
const WELL_KNOWN: &str = "/.well-known/atproto-did";

fn handle(s: &str) -> Handle {
    s.parse().unwrap()
}

fn did(s: &str) -> Did {
    s.parse().unwrap()
}

/// Every test handle resolves to 127.0.0.1.
fn hosts() -> Arc<StaticHosts> {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    Arc::new(
        StaticHosts::default()
            .with("alice.test", lo)
            .with("bob.test", lo)
            .with("carol.test", lo),
    )
}

fn resolver(
    txt: StaticTxt,
    port: Option<u16>,
    allow_private: bool,
    timeout_ms: u64,
) -> HandleResolver {
    let config = HandleResolverConfig {
        timeout: Duration::from_millis(timeout_ms),
        max_body: 256,
        allow_private,
        insecure_http_port: port,
    };
    HandleResolver::new(config, Arc::new(txt), hosts()).unwrap()
}

#[tokio::test]
async fn dns_records() {
    let txt = StaticTxt::default()
        .with("_atproto.alice.test", &format!("did={DID_A}"))
        .with("_atproto.bob.test", "v=spf1 -all")
        .with("_atproto.bob.test", &format!("did={DID_B}"))
        .with("_atproto.two.test", &format!("did={DID_A}"))
        .with("_atproto.two.test", &format!("did={DID_B}"))
        .with("_atproto.bad.test", "did=not a did")
        .with("_atproto.spaced.test", &format!("did= {DID_A}"))
        .with("_atproto.other.test", "something=else");
    let txt = StaticTxt {
        failing: vec!["_atproto.fail.test".into()],
        slow: vec!["_atproto.slow.test".into()],
        ..txt
    };
    let r = resolver(txt, None, false, 300);
    let dns = |h: &'static str| {
        let r = r.clone();
        async move { r.resolve_dns(&handle(h)).await }
    };
    assert_eq!(dns("alice.test").await, Ok(did(DID_A)));
    assert_eq!(dns("bob.test").await, Ok(did(DID_B)));
    assert_eq!(dns("two.test").await, Err(HandleError::AmbiguousDns(2)));
    assert_eq!(dns("bad.test").await, Err(HandleError::InvalidDid("DNS")));
    assert_eq!(
        dns("spaced.test").await,
        Err(HandleError::InvalidDid("DNS"))
    );
    assert_eq!(dns("other.test").await, Err(HandleError::NotFound));
    assert_eq!(dns("nothing.test").await, Err(HandleError::NotFound));
    assert_eq!(
        dns("fail.test").await,
        Err(HandleError::Dns("SERVFAIL".into()))
    );
    // The fake answers after 30 s: only the 300 ms resolver deadline ends this in time.
    assert_eq!(within(dns("slow.test")).await, Err(HandleError::DnsTimeout));
}

#[tokio::test]
async fn well_known_on_a_real_socket() {
    let server = TestServer::start().await;
    let r = resolver(StaticTxt::default(), Some(server.port()), true, 300);
    let alice = handle("alice.test");

    server.route(WELL_KNOWN, Reply::text(format!("{DID_A}\n")));
    assert_eq!(r.resolve_http(&alice).await, Ok(did(DID_A)));
    server.route(WELL_KNOWN, Reply::text(format!("  \t{DID_B}\r\n\n")));
    assert_eq!(r.resolve_http(&alice).await, Ok(did(DID_B)));
    assert_eq!(server.hits(WELL_KNOWN), 2);
}

#[tokio::test]
async fn well_known_bad_answers() {
    let server = TestServer::start().await;
    let r = resolver(StaticTxt::default(), Some(server.port()), true, 300);
    let alice = handle("alice.test");
    let invalid = Err(HandleError::InvalidDid("well-known"));

    for body in [
        "",
        "not a did",
        "<html>did:plc:abc</html>",
        "did:plc:aaa\ndid:plc:bbb",
        "did=did:plc:aaa",
        "did:",
    ] {
        server.route(WELL_KNOWN, Reply::text(body));
        assert_eq!(r.resolve_http(&alice).await, invalid, "{body:?}");
    }
    server.route(WELL_KNOWN, Reply::status(404));
    assert_eq!(r.resolve_http(&alice).await, Err(HandleError::NotFound));
    server.route(WELL_KNOWN, Reply::status(500));
    assert_eq!(
        r.resolve_http(&alice).await,
        Err(HandleError::HttpStatus(500))
    );

    // Redirects are not followed, wherever they point.
    server.route("/elsewhere", Reply::text(DID_A));
    let target = format!("http://alice.test:{}/elsewhere", server.port());
    server.route(WELL_KNOWN, Reply::redirect(&target));
    assert_eq!(
        r.resolve_http(&alice).await,
        Err(HandleError::HttpStatus(302))
    );
    assert_eq!(server.hits("/elsewhere"), 0);

    // Body cap (256 bytes in this config), with or without a Content-Length.
    server.route(
        WELL_KNOWN,
        Reply::text(format!("{DID_A}{}", " ".repeat(300))),
    );
    assert_eq!(
        r.resolve_http(&alice).await,
        Err(HandleError::Http(FetchError::TooLarge(256)))
    );

    // A server that accepts and never answers: bounded by the 300 ms deadline.
    server.route(WELL_KNOWN, Reply::Hang);
    assert_eq!(
        within(r.resolve_http(&alice)).await,
        Err(HandleError::Http(FetchError::Timeout))
    );
}

#[tokio::test]
async fn ssrf_refused_without_allow_private() {
    let server = TestServer::start().await;
    server.route(WELL_KNOWN, Reply::text(DID_A));
    let r = resolver(StaticTxt::default(), Some(server.port()), false, 300);
    // alice.test resolves to 127.0.0.1: refused before connecting.
    assert_eq!(
        r.resolve_http(&handle("alice.test")).await,
        Err(HandleError::Http(FetchError::Forbidden(
            "alice.test".into()
        )))
    );
    assert_eq!(server.hits(WELL_KNOWN), 0);
    // The same server is reachable once private addresses are allowed.
    let dev = resolver(StaticTxt::default(), Some(server.port()), true, 300);
    assert_eq!(
        dev.resolve_http(&handle("alice.test")).await,
        Ok(did(DID_A))
    );
    assert_eq!(server.hits(WELL_KNOWN), 1);
}

#[tokio::test]
async fn combined_resolution_order() {
    let server = TestServer::start().await;
    server.route(WELL_KNOWN, Reply::text(DID_B));
    let txt = StaticTxt {
        failing: vec!["_atproto.bob.test".into()],
        ..StaticTxt::default().with("_atproto.alice.test", &format!("did={DID_A}"))
    };
    let r = resolver(txt, Some(server.port()), true, 300);

    // DNS and HTTPS disagree: DNS wins.
    assert_eq!(r.resolve(&handle("alice.test")).await, Ok(did(DID_A)));
    // No TXT record: the well-known answer.
    assert_eq!(r.resolve(&handle("carol.test")).await, Ok(did(DID_B)));
    // DNS failure, well-known works.
    assert_eq!(r.resolve(&handle("bob.test")).await, Ok(did(DID_B)));

    server.route(WELL_KNOWN, Reply::status(404));
    // Both say "not found".
    assert_eq!(
        r.resolve(&handle("carol.test")).await,
        Err(HandleError::NotFound)
    );
    // A DNS failure is reported over an HTTPS not-found.
    assert_eq!(
        r.resolve(&handle("bob.test")).await,
        Err(HandleError::Dns("SERVFAIL".into()))
    );
    // No TXT record and a host name that does not resolve: not found.
    assert_eq!(
        r.resolve(&handle("nohost.test")).await,
        Err(HandleError::NotFound)
    );
    assert_eq!(
        r.resolve_http(&handle("nohost.test")).await,
        Err(HandleError::NotFound)
    );
    // Reserved TLDs are refused without any lookup.
    let hits = server.hits(WELL_KNOWN);
    assert_eq!(
        r.resolve(&handle("alice.local")).await,
        Err(HandleError::DisallowedTld)
    );
    assert_eq!(
        r.resolve(&handle("handle.invalid")).await,
        Err(HandleError::DisallowedTld)
    );
    assert_eq!(server.hits(WELL_KNOWN), hits);
}

#[tokio::test]
async fn dns_answer_cancels_a_hanging_well_known() {
    let server = TestServer::start().await;
    server.route(WELL_KNOWN, Reply::Hang);
    let txt = StaticTxt::default().with("_atproto.alice.test", &format!("did={DID_A}"));
    // The HTTPS deadline (60 s) and the hang (30 s) both lie beyond the test deadline: only
    // cancelling the well-known request on the DNS answer finishes in time.
    let r = resolver(txt, Some(server.port()), true, 60_000);
    assert_eq!(
        within(r.resolve(&handle("alice.test"))).await,
        Ok(did(DID_A))
    );
}

#[tokio::test]
async fn slow_dns_falls_back_to_well_known_after_its_deadline() {
    let server = TestServer::start().await;
    server.route(WELL_KNOWN, Reply::text(DID_B));
    let txt = StaticTxt {
        slow: vec!["_atproto.alice.test".into()],
        ..StaticTxt::default()
    };
    let r = resolver(txt, Some(server.port()), true, 300);
    // The DNS fake hangs for 30 s: the answer comes from the well-known method once the
    // 300 ms DNS deadline has passed.
    assert_eq!(
        within(r.resolve(&handle("alice.test"))).await,
        Ok(did(DID_B))
    );
}
