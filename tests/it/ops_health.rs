//! `/xrpc/_health` probes the account database, the sequencer database and the blob store,
//! and answers 503 naming the component that is down.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support;
use support::pds::TestPds;

async fn health(pds: &TestPds) -> (StatusCode, Value) {
    let reply = reqwest::get(format!("{}/xrpc/_health", pds.url()))
        .await
        .unwrap();
    (reply.status(), reply.json().await.unwrap())
}

fn down(component: &str) -> Value {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "error": "Service Unavailable",
        "message": format!("{component} unavailable"),
    })
}

#[tokio::test]
async fn health_reports_the_blob_store_down_and_up_again() {
    let pds = TestPds::start().await;
    let ok = json!({ "version": env!("CARGO_PKG_VERSION") });
    assert_eq!(health(&pds).await, (StatusCode::OK, ok.clone()));

    // The blob directory is not a directory (a failed mount, a wrong path).
    let blocks = pds.state.config().data_directory.join("blocks");
    std::fs::write(&blocks, b"not a directory").unwrap();
    assert_eq!(
        health(&pds).await,
        (StatusCode::SERVICE_UNAVAILABLE, down("blob store"))
    );
    std::fs::remove_file(&blocks).unwrap();
    assert_eq!(health(&pds).await, (StatusCode::OK, ok));
}

#[tokio::test]
async fn health_reports_a_closed_account_database() {
    let pds = TestPds::start().await;
    pds.state.accounts().pool().close().await;
    assert_eq!(
        health(&pds).await,
        (StatusCode::SERVICE_UNAVAILABLE, down("account database"))
    );
}

#[tokio::test]
async fn health_reports_a_closed_sequencer_database() {
    let pds = TestPds::start().await;
    pds.state.repo().sequencer().pool().close().await;
    assert_eq!(
        health(&pds).await,
        (StatusCode::SERVICE_UNAVAILABLE, down("sequencer database"))
    );
}
