//! Our `did:plc` operations against the REAL PLC directory (`@did-plc/server`, run by
//! `tests/support/plc.rs`): the directory checks our DAG-CBOR encoding, signatures, DID
//! derivation and `prev` chaining, and we read back what it serves.

use crate::support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rookery::crypto::{Algorithm, Keypair};
use rookery::identity::did_web::{DidWebConfig, DidWebResolver};
use rookery::identity::handle::{DnsError, HandleResolver, HandleResolverConfig, TxtLookup};
use rookery::identity::net::HostLookup;
use rookery::identity::plc::{
    self, OpError, PlcChanges, PlcClient, PlcDirectory, PlcError, Service, SignedOp, UnsignedOp,
};
use rookery::identity::resolver::{IdResolver, IdResolverConfig, ResolveError};
use rookery::syntax::{Did, Handle};
use support::plc::PlcServer;

const PDS: &str = "https://pds.example.com";

fn handle(s: &str) -> Handle {
    s.parse().unwrap()
}

fn start() -> (&'static PlcServer, Arc<dyn PlcDirectory>) {
    let started = Instant::now();
    let server = PlcServer::shared();
    eprintln!(
        "PLC directory at {} in {:?}",
        server.url(),
        started.elapsed()
    );
    let client = PlcClient::new(server.url()).unwrap();
    (server, Arc::new(client))
}

struct Account {
    did: Did,
    genesis: SignedOp,
    rotation: Keypair,
    recovery: Keypair,
    signing: Keypair,
}

/// A new account whose genesis is signed by `rotation` (listed second, after `recovery`).
fn account(rotation_alg: Algorithm, name: &str) -> Account {
    let rotation = Keypair::generate(rotation_alg);
    let recovery = Keypair::generate(Algorithm::P256);
    let signing = Keypair::generate(Algorithm::K256);
    let (did, genesis) = plc::create_genesis(
        &signing.public_key().to_did_key(),
        vec![
            recovery.public_key().to_did_key(),
            rotation.public_key().to_did_key(),
        ],
        &handle(name),
        PDS,
        &rotation,
    )
    .unwrap();
    Account {
        did,
        genesis,
        rotation,
        recovery,
        signing,
    }
}

#[tokio::test]
async fn genesis_update_and_resolution() {
    let began = Instant::now();
    let (_server, directory) = start();

    // Several accounts, both curves signing: random signatures, all accepted.
    for (i, alg) in [
        Algorithm::K256,
        Algorithm::P256,
        Algorithm::K256,
        Algorithm::P256,
    ]
    .into_iter()
    .enumerate()
    {
        let a = account(alg, &format!("user{i}.test"));
        directory.submit(&a.did, &a.genesis).await.unwrap();
        assert_eq!(directory.get_last_op(&a.did).await.unwrap(), a.genesis);
    }

    let a = account(Algorithm::K256, "alice.test");
    directory.submit(&a.did, &a.genesis).await.unwrap();

    // The DID document, in the directory's current (Multikey) format.
    let doc = directory.resolve(&a.did).await.unwrap();
    assert_eq!(doc.id, a.did);
    assert_eq!(doc.signing_key().unwrap(), a.signing.public_key());
    assert_eq!(doc.handle(), Some(handle("alice.test")));
    assert_eq!(doc.pds_endpoint(), Some(PDS));
    assert_eq!(doc.also_known_as, vec!["at://alice.test".to_owned()]);
    assert_eq!(doc.verification_method.len(), 1);
    let vm = &doc.verification_method[0];
    assert_eq!(vm.id, format!("{}#atproto", a.did));
    assert_eq!(vm.kind, "Multikey");
    assert_eq!(vm.controller, a.did.as_str());
    assert_eq!(
        vm.public_key_multibase.as_deref(),
        Some(a.signing.public_key().to_multikey().as_str())
    );

    // The PLC state, the last operation and the log give back exactly what we sent.
    let data = directory.get_data(&a.did).await.unwrap();
    assert_eq!(data.did, a.did);
    assert_eq!(
        data.rotation_keys,
        vec![
            a.recovery.public_key().to_did_key(),
            a.rotation.public_key().to_did_key()
        ]
    );
    assert_eq!(
        data.verification_methods,
        BTreeMap::from([("atproto".to_owned(), a.signing.public_key().to_did_key())])
    );
    assert_eq!(
        data.services,
        BTreeMap::from([(
            "atproto_pds".to_owned(),
            Service {
                kind: "AtprotoPersonalDataServer".into(),
                endpoint: PDS.into()
            }
        )])
    );
    assert_eq!(directory.get_last_op(&a.did).await.unwrap(), a.genesis);
    assert_eq!(
        directory.get_log(&a.did).await.unwrap(),
        vec![a.genesis.clone()]
    );

    // Handle change, signed by the (second) rotation key, chained on the genesis CID.
    let last = directory.get_last_op(&a.did).await.unwrap();
    let changes = PlcChanges {
        handle: Some(handle("bob.test")),
        ..PlcChanges::default()
    };
    let update = plc::update_op(&last, &changes, &a.rotation).unwrap();
    directory.submit(&a.did, &update).await.unwrap();
    let doc = directory.resolve(&a.did).await.unwrap();
    assert_eq!(doc.handle(), Some(handle("bob.test")));
    assert_eq!(doc.also_known_as, vec!["at://bob.test".to_owned()]);
    assert_eq!(doc.signing_key().unwrap(), a.signing.public_key());
    assert_eq!(doc.pds_endpoint(), Some(PDS));

    // New PDS and signing key, signed by the recovery key (P-256).
    let new_signing = Keypair::generate(Algorithm::P256);
    let changes = PlcChanges {
        pds_endpoint: Some("https://new-pds.example.com".into()),
        signing_key: Some(new_signing.public_key().to_did_key()),
        ..PlcChanges::default()
    };
    let update2 = plc::update_op(&update, &changes, &a.recovery).unwrap();
    directory.submit(&a.did, &update2).await.unwrap();
    let doc = directory.resolve(&a.did).await.unwrap();
    assert_eq!(doc.signing_key().unwrap(), new_signing.public_key());
    assert_eq!(doc.pds_endpoint(), Some("https://new-pds.example.com"));
    assert_eq!(doc.handle(), Some(handle("bob.test")));

    // The whole log replays and verifies locally.
    let log = directory.get_log(&a.did).await.unwrap();
    assert_eq!(
        log,
        vec![a.genesis.clone(), update.clone(), update2.clone()]
    );
    let state = plc::verify_log(&a.did, &log).unwrap().unwrap();
    assert_eq!(state.handle(), Some(handle("bob.test")));
    assert_eq!(state.pds_endpoint(), Some("https://new-pds.example.com"));

    // Bidirectional verification with the real directory: bob.test → DID via (fake) DNS,
    // and the DID document served by the directory claims bob.test.
    let txt = FakeTxt(HashMap::from([(
        "_atproto.bob.test".to_owned(),
        format!("did={}", a.did),
    )]));
    let resolver = id_resolver(Arc::clone(&directory), txt);
    let identity = resolver.lookup_handle(&handle("bob.test")).await.unwrap();
    assert_eq!(identity.did, a.did);
    assert_eq!(identity.handle, Some(handle("bob.test")));
    let identity = resolver.lookup_did(&a.did).await.unwrap();
    assert_eq!(identity.handle, Some(handle("bob.test")));
    assert_eq!(
        resolver.lookup_handle(&handle("alice.test")).await,
        Err(ResolveError::Handle(
            rookery::identity::handle::HandleError::NotFound
        ))
    );

    eprintln!("genesis_update_and_resolution took {:?}", began.elapsed());
}

#[tokio::test]
async fn rejections() {
    let began = Instant::now();
    let (_server, directory) = start();

    // Unknown DID; non-PLC DID.
    let unknown: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
    assert_eq!(directory.resolve(&unknown).await, Err(PlcError::NotFound));
    assert_eq!(directory.get_data(&unknown).await, Err(PlcError::NotFound));
    assert_eq!(directory.get_log(&unknown).await, Err(PlcError::NotFound));
    assert_eq!(
        directory.get_last_op(&unknown).await,
        Err(PlcError::NotFound)
    );
    let web: Did = "did:web:example.com".parse().unwrap();
    assert_eq!(directory.resolve(&web).await, Err(PlcError::NotPlc));

    let a = account(Algorithm::K256, "alice.test");

    // A genesis tampered after signing.
    let mut tampered = a.genesis.clone();
    if let UnsignedOp::Plc(op) = &mut tampered.op {
        op.also_known_as = vec!["at://mallory.test".into()];
    }
    let tampered_did = plc::did_for_genesis(&tampered).unwrap();
    let rejected = directory.submit(&tampered_did, &tampered).await;
    assert!(
        matches!(&rejected, Err(PlcError::Rejected(m)) if m.starts_with("Invalid signature on op")),
        "{rejected:?}"
    );

    // A valid genesis posted under another DID.
    let rejected = directory.submit(&unknown, &a.genesis).await;
    assert!(
        matches!(&rejected, Err(PlcError::Rejected(m))
            if m.starts_with("Hash of genesis operation does not match DID identifier")),
        "{rejected:?}"
    );
    assert_eq!(directory.resolve(&unknown).await, Err(PlcError::NotFound));

    directory.submit(&a.did, &a.genesis).await.unwrap();

    // An update signed by a key that is not a rotation key.
    let mut op = a.genesis.op.normalize().unwrap();
    op.prev = Some(a.genesis.cid().unwrap().to_string());
    op.also_known_as = vec!["at://mallory.test".into()];
    let forged = UnsignedOp::Plc(op).sign(&a.signing).unwrap();
    let rejected = directory.submit(&a.did, &forged).await;
    assert!(
        matches!(&rejected, Err(PlcError::Rejected(m)) if m.starts_with("Invalid signature on op")),
        "{rejected:?}"
    );
    assert_eq!(
        plc::update_op(&a.genesis, &PlcChanges::default(), &a.signing),
        Err(OpError::SignerNotRotationKey)
    );

    // An update whose prev is not an operation of this DID.
    let mut op = a.genesis.op.normalize().unwrap();
    op.prev = Some(
        account(Algorithm::K256, "x.test")
            .genesis
            .cid()
            .unwrap()
            .to_string(),
    );
    let misordered = UnsignedOp::Plc(op).sign(&a.rotation).unwrap();
    assert_eq!(
        directory.submit(&a.did, &misordered).await,
        Err(PlcError::Rejected(
            "Operations not correctly ordered".into()
        ))
    );

    // A second genesis for an existing DID.
    assert_eq!(
        directory.submit(&a.did, &a.genesis).await,
        Err(PlcError::Rejected(
            "Operations not correctly ordered".into()
        ))
    );

    // Nothing of the above changed the document.
    let doc = directory.resolve(&a.did).await.unwrap();
    assert_eq!(doc.handle(), Some(handle("alice.test")));
    assert_eq!(
        directory.get_log(&a.did).await.unwrap(),
        vec![a.genesis.clone()]
    );

    eprintln!("rejections took {:?}", began.elapsed());
}

#[tokio::test]
async fn tombstone() {
    let began = Instant::now();
    let (_server, directory) = start();
    let a = account(Algorithm::P256, "alice.test");
    directory.submit(&a.did, &a.genesis).await.unwrap();
    let tombstone = plc::tombstone_op(&a.genesis, &a.rotation).unwrap();
    directory.submit(&a.did, &tombstone).await.unwrap();

    assert_eq!(directory.resolve(&a.did).await, Err(PlcError::Tombstoned));
    // This directory release answers /data of a tombstoned DID with 404 ("DID not available").
    assert_eq!(directory.get_data(&a.did).await, Err(PlcError::NotFound));
    assert_eq!(directory.get_last_op(&a.did).await.unwrap(), tombstone);
    let log = directory.get_log(&a.did).await.unwrap();
    assert_eq!(log, vec![a.genesis.clone(), tombstone.clone()]);
    assert_eq!(plc::verify_log(&a.did, &log), Ok(None));

    // Nothing can be chained after it, locally or in the directory.
    assert_eq!(
        plc::update_op(&tombstone, &PlcChanges::default(), &a.rotation),
        Err(OpError::Tombstoned)
    );
    let mut op = a.genesis.op.normalize().unwrap();
    op.prev = Some(tombstone.cid().unwrap().to_string());
    let after = UnsignedOp::Plc(op).sign(&a.rotation).unwrap();
    assert_eq!(
        directory.submit(&a.did, &after).await,
        Err(PlcError::Rejected(
            "Operations not correctly ordered".into()
        ))
    );

    // The resolver surfaces it as the directory's error.
    let resolver = id_resolver(Arc::clone(&directory), FakeTxt(HashMap::new()));
    assert_eq!(
        resolver.lookup_did(&a.did).await,
        Err(ResolveError::Plc(PlcError::Tombstoned))
    );
    eprintln!("tombstone took {:?}", began.elapsed());
}

/// TXT records from a map.
struct FakeTxt(HashMap<String, String>);

impl TxtLookup for FakeTxt {
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, DnsError>> {
        Box::pin(async move {
            self.0
                .get(name)
                .map(|r| vec![r.clone()])
                .ok_or(DnsError::NotFound)
        })
    }
}

/// No host resolves: the well-known method fails at once, without touching the network.
struct NoHosts;

impl HostLookup for NoHosts {
    fn lookup_ip<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, std::io::Result<Vec<std::net::IpAddr>>> {
        Box::pin(async {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no hosts",
            ))
        })
    }
}

fn id_resolver(directory: Arc<dyn PlcDirectory>, txt: FakeTxt) -> IdResolver {
    let config = HandleResolverConfig {
        timeout: Duration::from_secs(2),
        ..HandleResolverConfig::default()
    };
    let handles = HandleResolver::new(config, Arc::new(txt), Arc::new(NoHosts)).unwrap();
    let web = DidWebResolver::with_hosts(DidWebConfig::default(), Arc::new(NoHosts)).unwrap();
    IdResolver::new(directory, web, handles, IdResolverConfig::default())
}
