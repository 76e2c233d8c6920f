//! Shared helpers for integration tests.

// Each test crate uses only some of these helpers.
#![allow(dead_code)]

pub mod pds;
pub mod plc;
pub mod process;
pub mod refpds;
pub mod s3;
pub mod smtp;

/// Checks a repository CAR with the official `verifyRepoCar` (`@atproto/repo`, through
/// `tests/js/verify-repo-car.mjs`) against `did` and its signing `did:key`. Fails the test
/// when it refuses; else returns what the script printed (`{"rev": …, "records": …}`).
pub fn verify_repo_car(car: &[u8], did: &str, key: &str) -> serde_json::Value {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("repo.car");
    std::fs::write(&file, car).unwrap();
    let output = std::process::Command::new(plc::node_binary(repo))
        .arg(repo.join("tests/js/verify-repo-car.mjs"))
        .arg(&file)
        .arg(did)
        .arg(key)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "verifyRepoCar refused {did}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}
