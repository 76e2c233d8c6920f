use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::BoxFuture;

use super::*;
use crate::identity::did_web::DidWebConfig;
use crate::identity::handle::HandleResolverConfig;
use crate::identity::plc::{PlcData, SignedOp};
use crate::identity::test_server::{Reply, StaticHosts, StaticTxt, TestServer};

const DID_A: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const DID_B: &str = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";
const DID_C: &str = "did:plc:cccccccccccccccccccccccc";

/// A directory that serves fixed documents and counts resolutions.
#[derive(Default)]
struct MemoryPlc {
    docs: HashMap<Did, DidDocument>,
    resolves: AtomicUsize,
}

impl PlcDirectory for MemoryPlc {
    fn submit<'a>(&'a self, _: &'a Did, _: &'a SignedOp) -> BoxFuture<'a, Result<(), PlcError>> {
        Box::pin(async { Err(PlcError::Rejected("read-only test directory".into())) })
    }
    fn get_data<'a>(&'a self, _: &'a Did) -> BoxFuture<'a, Result<PlcData, PlcError>> {
        Box::pin(async { Err(PlcError::NotFound) })
    }
    fn get_last_op<'a>(&'a self, _: &'a Did) -> BoxFuture<'a, Result<SignedOp, PlcError>> {
        Box::pin(async { Err(PlcError::NotFound) })
    }
    fn get_log<'a>(&'a self, _: &'a Did) -> BoxFuture<'a, Result<Vec<SignedOp>, PlcError>> {
        Box::pin(async { Err(PlcError::NotFound) })
    }
    fn resolve<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<DidDocument, PlcError>> {
        Box::pin(async move {
            self.resolves.fetch_add(1, Ordering::SeqCst);
            self.docs.get(did).cloned().ok_or(PlcError::NotFound)
        })
    }
}

fn did(s: &str) -> Did {
    s.parse().unwrap()
}

fn handle(s: &str) -> Handle {
    s.parse().unwrap()
}

fn doc(id: &str, aka: &[&str]) -> DidDocument {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "alsoKnownAs": aka,
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                     "serviceEndpoint": "https://pds.example.com"}],
    }))
    .unwrap()
}

struct Setup {
    plc: Arc<MemoryPlc>,
    resolver: IdResolver,
    server: TestServer,
}

async fn setup(ttl: Duration) -> Setup {
    let server = TestServer::start().await;
    let mut plc = MemoryPlc::default();
    for d in [
        doc(DID_A, &["at://Alice.test"]),
        doc(DID_B, &["https://example.com", "at://carol.test"]),
        doc(DID_C, &[]),
    ] {
        plc.docs.insert(d.id.clone(), d);
    }
    let plc = Arc::new(plc);
    let txt = StaticTxt::default()
        .with("_atproto.alice.test", &format!("did={DID_A}"))
        .with("_atproto.bob.test", &format!("did={DID_A}"))
        .with("_atproto.carol.test", &format!("did={DID_A}"));
    let hosts = StaticHosts::localhost().with("dave.test", IpAddr::V4(Ipv4Addr::LOCALHOST));
    let hosts = Arc::new(hosts);
    let handles = HandleResolver::new(
        HandleResolverConfig {
            timeout: Duration::from_millis(300),
            max_body: 1024,
            allow_private: true,
            insecure_http_port: Some(server.port()),
        },
        Arc::new(txt),
        hosts.clone(),
    )
    .unwrap();
    let web = DidWebResolver::with_hosts(
        DidWebConfig {
            timeout: Duration::from_millis(300),
            max_body: 4096,
            allow_private: true,
        },
        hosts,
    )
    .unwrap();
    let directory: Arc<dyn PlcDirectory> = plc.clone();
    let resolver = IdResolver::new(
        directory,
        web,
        handles,
        IdResolverConfig {
            ttl,
            max_entries: 100,
        },
    );
    Setup {
        plc,
        resolver,
        server,
    }
}

#[tokio::test]
async fn bidirectional_handle_verification() {
    let s = setup(Duration::from_secs(60)).await;
    // alice.test → A, and A claims alice.test (case-insensitively: handles are normalised).
    let id = s
        .resolver
        .lookup_handle(&handle("alice.test"))
        .await
        .unwrap();
    assert_eq!(id.did, did(DID_A));
    assert_eq!(id.handle, Some(handle("alice.test")));
    assert_eq!(id.doc.pds_endpoint(), Some("https://pds.example.com"));

    // bob.test → A, but A does not claim bob.test.
    assert_eq!(
        s.resolver.lookup_handle(&handle("bob.test")).await,
        Err(ResolveError::HandleMismatch(did(DID_A)))
    );

    // From the DID side.
    let a = s.resolver.lookup_did(&did(DID_A)).await.unwrap();
    assert_eq!(a.handle, Some(handle("alice.test")));
    // B claims carol.test, which resolves to A: not verified.
    let b = s.resolver.lookup_did(&did(DID_B)).await.unwrap();
    assert_eq!(b.handle, None);
    assert_eq!(b.doc.handle(), Some(handle("carol.test")));
    // C claims nothing.
    assert_eq!(
        s.resolver.lookup_did(&did(DID_C)).await.unwrap().handle,
        None
    );
    // The handle whose well-known answers (no TXT record): dave.test → C, C claims nothing.
    s.server
        .route("/.well-known/atproto-did", Reply::text(DID_C));
    assert_eq!(
        s.resolver.lookup_handle(&handle("dave.test")).await,
        Err(ResolveError::HandleMismatch(did(DID_C)))
    );
}

#[tokio::test]
async fn errors_pass_through_and_are_not_cached() {
    let s = setup(Duration::from_secs(60)).await;
    let unknown = did("did:plc:zzzzzzzzzzzzzzzzzzzzzzzz");
    for _ in 0..2 {
        assert_eq!(
            s.resolver.resolve_did(&unknown).await,
            Err(ResolveError::Plc(PlcError::NotFound))
        );
    }
    assert_eq!(s.plc.resolves.load(Ordering::SeqCst), 2);
    assert_eq!(
        s.resolver
            .resolve_did(&did(
                "did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"
            ))
            .await,
        Err(ResolveError::UnsupportedMethod)
    );
    // nobody.test has no TXT record and no address.
    assert_eq!(
        s.resolver.resolve_handle(&handle("nobody.test")).await,
        Err(ResolveError::Handle(HandleError::NotFound))
    );
}

#[tokio::test]
async fn documents_and_handles_are_cached_until_ttl_or_purge() {
    let s = setup(Duration::from_millis(200)).await;
    let a = did(DID_A);
    s.resolver.resolve_did(&a).await.unwrap();
    s.resolver.resolve_did(&a).await.unwrap();
    assert_eq!(s.plc.resolves.load(Ordering::SeqCst), 1);
    s.resolver.purge_did(&a);
    s.resolver.resolve_did(&a).await.unwrap();
    assert_eq!(s.plc.resolves.load(Ordering::SeqCst), 2);
    // Past the TTL on tokio's paused clock (no waiting); real time resumes for the sockets.
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(250)).await;
    tokio::time::resume();
    s.resolver.resolve_did(&a).await.unwrap();
    assert_eq!(s.plc.resolves.load(Ordering::SeqCst), 3);

    // Handles: the well-known path is hit once while cached.
    s.server
        .route("/.well-known/atproto-did", Reply::text(DID_C));
    let dave = handle("dave.test");
    assert_eq!(s.resolver.resolve_handle(&dave).await, Ok(did(DID_C)));
    assert_eq!(s.resolver.resolve_handle(&dave).await, Ok(did(DID_C)));
    assert_eq!(s.server.hits("/.well-known/atproto-did"), 1);
    s.resolver.purge_handle(&dave);
    s.server
        .route("/.well-known/atproto-did", Reply::text(DID_B));
    assert_eq!(s.resolver.resolve_handle(&dave).await, Ok(did(DID_B)));
    assert_eq!(s.server.hits("/.well-known/atproto-did"), 2);
}

#[tokio::test]
async fn did_web_through_the_resolver() {
    let s = setup(Duration::from_secs(60)).await;
    let web = did(&format!("did:web:localhost%3A{}", s.server.port()));
    let body = serde_json::json!({"id": web.as_str(), "alsoKnownAs": ["at://alice.test"]});
    s.server.route(
        "/.well-known/did.json",
        Reply::ok("application/json", body.to_string()),
    );
    let id = s.resolver.lookup_did(&web).await.unwrap();
    assert_eq!(id.doc.id, web);
    // alice.test resolves to A, not to this did:web.
    assert_eq!(id.handle, None);
}

#[tokio::test(start_paused = true)]
async fn ttl_cache_evicts_oldest_when_full() {
    let cache = TtlCache::new(Duration::from_secs(60), 2);
    cache.insert(1, "one");
    tokio::time::advance(Duration::from_millis(2)).await;
    cache.insert(2, "two");
    tokio::time::advance(Duration::from_millis(2)).await;
    cache.insert(3, "three");
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get(&2), Some("two"));
    assert_eq!(cache.get(&3), Some("three"));
    // Replacing an existing key evicts nothing.
    cache.insert(3, "THREE");
    assert_eq!(cache.get(&2), Some("two"));
    assert_eq!(cache.get(&3), Some("THREE"));
    let off = TtlCache::new(Duration::from_secs(60), 0);
    off.insert(1, "one");
    assert_eq!(off.get(&1), None);
}

#[tokio::test(start_paused = true)]
async fn ttl_cache_entries_expire_at_their_ttl() {
    let cache = TtlCache::new(Duration::from_secs(60), 10);
    cache.insert("a", 1);
    tokio::time::advance(Duration::from_secs(59)).await;
    cache.insert("b", 2);
    assert_eq!(cache.get(&"a"), Some(1));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(cache.get(&"a"), None);
    assert_eq!(cache.get(&"b"), Some(2));
}
