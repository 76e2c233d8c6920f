//! Shared helpers for integration tests.

// Each test crate uses only some of these helpers.
#![allow(dead_code)]

pub mod pds;
pub mod plc;
pub mod process;
pub mod refpds;
pub mod s3;
pub mod smtp;

/// Runs the Node script `tests/js/{script}` with `args` under the cached Node 22 and returns
/// the JSON line it prints; fails the test, with its output, when it exits unsuccessfully.
pub async fn run_js(script: &str, args: Vec<String>) -> serde_json::Value {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let node = plc::node_binary(repo);
    let path = repo.join("tests/js").join(script);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(node)
            .arg(path)
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

/// Makes sure Chromium is installed (`scripts/browser-deps.sh`) and returns the directory the
/// browser tests save their screenshots in, `target/screenshots`.
pub fn browser_screenshot_dir() -> std::path::PathBuf {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new("bash")
        .arg(repo.join("scripts/browser-deps.sh"))
        .status()
        .unwrap();
    assert!(status.success(), "scripts/browser-deps.sh failed");
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A port free on 127.0.0.1 a moment ago, for a child server that must be told its port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `did`'s whole repository exported by the server at `base` (`getRepo`), as CAR bytes.
pub async fn get_repo(client: &reqwest::Client, base: &str, did: &str) -> bytes::Bytes {
    client
        .get(format!("{base}/xrpc/com.atproto.sync.getRepo?did={did}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

/// Checks a repository CAR with the official `verifyRepoCar` (`@atproto/repo`, through
/// `tests/js/verify-repo-car.mjs`) against `did` and its signing `did:key`. Fails the test
/// when it refuses; else returns what the script printed (`{"rev": …, "records": …}`).
pub fn verify_repo_car(car: &[u8], did: &str, key: &str) -> serde_json::Value {
    verify_repo_cars(&[(car, did, key)]).remove(0)
}

/// [`verify_repo_car`] for several repositories `(CAR, DID, signing did:key)` in one Node
/// process; what it reported for each, in order.
pub fn verify_repo_cars(repos: &[(&[u8], &str, &str)]) -> Vec<serde_json::Value> {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(plc::node_binary(repo));
    command.arg(repo.join("tests/js/verify-repo-car.mjs"));
    for (i, (car, did, key)) in repos.iter().enumerate() {
        let file = dir.path().join(format!("repo{i}.car"));
        std::fs::write(&file, car).unwrap();
        command.arg(&file).arg(did).arg(key);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "verifyRepoCar refused: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reports: Vec<serde_json::Value> = output
        .stdout
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    assert_eq!(reports.len(), repos.len(), "one report per repository");
    reports
}
