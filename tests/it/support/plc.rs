//! The real PLC directory (`@did-plc/server`, in-memory) as a child process.
//!
//! The Node runtime and the package come from `scripts/test-deps.sh`, which writes
//! `<cache>/env` (`ROOKERY_NODE=…`); the cache is `$ROOKERY_TEST_CACHE` or
//! `$HOME/.cache/rookery-test`. If the env file is missing the script is run first. A
//! directory that cannot start is a test failure, never a skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::process::ChildServer;

/// A running directory; killed (and reaped) on drop.
pub struct PlcServer(ChildServer);

/// The test binary's one directory, see [`PlcServer::shared`].
static SHARED: OnceLock<PlcServer> = OnceLock::new();

impl PlcServer {
    /// The directory shared by every test of this binary, started by the first test that asks.
    /// Tests never collide in it: each creates its own DIDs (a DID is the hash of its own
    /// genesis operation). A static is never dropped; the child exits instead when its stdin
    /// closes, which the kernel does when this process ends, normally, by a panic or by a
    /// signal. A test that needs a directory of its own calls [`PlcServer::start`].
    pub fn shared() -> &'static PlcServer {
        SHARED.get_or_init(PlcServer::start)
    }

    /// Starts a directory on 127.0.0.1 (any free port); panics if it cannot.
    pub fn start() -> PlcServer {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let node = node_binary(repo);
        let script = repo.join("tests/js/plc-server.mjs");
        PlcServer(ChildServer::start(
            "PLC directory",
            &node,
            &script,
            repo,
            "PLC_URL",
        ))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.0.url
    }
}

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ROOKERY_TEST_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").expect("HOME or ROOKERY_TEST_CACHE must be set");
    PathBuf::from(home).join(".cache/rookery-test")
}

/// `ROOKERY_NODE` from `<cache>/env`, installing the test dependencies first if needed.
pub fn node_binary(repo: &Path) -> PathBuf {
    let env_file = cache_dir().join("env");
    if !env_file.exists() {
        let status = Command::new("bash")
            .arg(repo.join("scripts/test-deps.sh"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("cannot run scripts/test-deps.sh");
        assert!(status.success(), "scripts/test-deps.sh failed: {status}");
    }
    let text = std::fs::read_to_string(&env_file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", env_file.display()));
    let node = text
        .lines()
        .find_map(|l| l.strip_prefix("ROOKERY_NODE="))
        .unwrap_or_else(|| panic!("no ROOKERY_NODE in {}", env_file.display()));
    PathBuf::from(node)
}

/// `ROOKERY_ATPROTO_PYTHON` from `<cache>/py/env`: a Python with the pinned atproto SDK,
/// installing it first (`scripts/py-deps.sh`) if needed.
pub fn atproto_python(repo: &Path) -> PathBuf {
    let env_file = cache_dir().join("py/env");
    if !env_file.exists() {
        let status = Command::new("bash")
            .arg(repo.join("scripts/py-deps.sh"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("cannot run scripts/py-deps.sh");
        assert!(status.success(), "scripts/py-deps.sh failed: {status}");
    }
    let text = std::fs::read_to_string(&env_file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", env_file.display()));
    let python = text
        .lines()
        .find_map(|l| l.strip_prefix("ROOKERY_ATPROTO_PYTHON="))
        .unwrap_or_else(|| panic!("no ROOKERY_ATPROTO_PYTHON in {}", env_file.display()));
    PathBuf::from(python)
}
