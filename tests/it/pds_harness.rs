//! The integration-test PDS itself: it starts on a real socket against the real PLC directory,
//! and a seeded account is registered there and has a repository.

use crate::support;

use support::pds::TestPds;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_account_is_real() {
    let pds = TestPds::start().await;
    let health: serde_json::Value = reqwest::get(format!("{}/xrpc/_health", pds.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));

    let (did, access) = pds.seed_account("alice.test", "hunter2hunter2").await;
    let claims = pds
        .state
        .session()
        .verify_access(&access, chrono::Utc::now().timestamp())
        .unwrap();
    assert_eq!(claims.did, did.as_str());
    let doc = pds.state.resolver().resolve_did(&did).await.unwrap();
    assert_eq!(doc.handle().unwrap().as_str(), "alice.test");
    assert_eq!(
        doc.pds_endpoint(),
        Some(pds.state.config().public_url.as_str())
    );
    let root = pds.state.repo().current_root(&did).await.unwrap();
    assert_eq!(root.did, did.as_str());
}

/// The binary's PLC directory is one process that every test shares: two servers use the same
/// directory, and an identity one registers is resolved by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_share_one_plc_directory() {
    let first = TestPds::start().await;
    let second = TestPds::start().await;
    assert_eq!(first.plc.url(), second.plc.url());
    assert_eq!(
        first.state.config().did_plc_url,
        second.state.config().did_plc_url
    );
    let (did, _) = first.seed_account("shared.test", "hunter2hunter2").await;
    let doc = second.state.resolver().resolve_did(&did).await.unwrap();
    assert_eq!(doc.handle().unwrap().as_str(), "shared.test");
    assert_eq!(
        doc.pds_endpoint(),
        Some(first.state.config().public_url.as_str())
    );
}
