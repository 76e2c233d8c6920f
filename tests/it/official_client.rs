//! A full session with the official TypeScript client (`@atproto/api`, Node 22) against a
//! Rookery PDS on a real socket: sign-up (a did:plc registered on the real PLC directory), login,
//! a post, reading it back, refresh, logout. Then the repository it left verifies.

use crate::support;

use rookery::repo::car::Limits;
use support::pds::TestPds;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atproto_api_full_session() {
    let pds = TestPds::start().await;
    let args = vec![pds.url(), "carol.test".to_owned()];
    let result = support::run_js("api-session.mjs", args).await;
    let did: rookery::syntax::Did = result["did"].as_str().unwrap().parse().unwrap();

    // What the client wrote is in a repository that verifies with the account's key.
    let handle = pds.state.repo().stores().open(&did).await.unwrap().unwrap();
    let (car, _) = rookery::store::export::write_repo_car(&handle.block_store(), None, Vec::new())
        .await
        .unwrap();
    let (verified, _) = rookery::repo::verify::verify_car(
        &car[..],
        Limits::default(),
        Some(did.as_str()),
        Some(&handle.keypair().public_key()),
    )
    .await
    .unwrap();
    let paths: Vec<&str> = verified.records.iter().map(|(p, _)| p.as_str()).collect();
    let uri = result["uri"].as_str().unwrap();
    assert_eq!(
        paths,
        vec![
            uri.split_once(did.as_str())
                .unwrap()
                .1
                .trim_start_matches('/')
        ]
    );
    assert_eq!(
        verified.records[0].1.to_string(),
        result["cid"].as_str().unwrap()
    );
}
