//! The real PLC directory (`@did-plc/server`, in-memory) as a child process.
//!
//! The Node runtime and the package come from `scripts/test-deps.sh`, which writes
//! `<cache>/env` (`ROOKERY_NODE=…`); the cache is `$ROOKERY_TEST_CACHE` or
//! `$HOME/.cache/rookery-test`. If the env file is missing the script is run first. A
//! directory that cannot start is a test failure, never a skip.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the directory may take to print its URL.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running directory; killed (and reaped) on drop.
pub struct PlcServer {
    child: Child,
    /// Held open: the server exits when its stdin reaches EOF, so even a test process that
    /// dies without running `Drop` leaves nothing behind.
    _stdin: ChildStdin,
    url: String,
}

impl PlcServer {
    /// Starts a directory on 127.0.0.1 (any free port); panics if it cannot.
    pub fn start() -> PlcServer {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let node = node_binary(repo);
        let script = repo.join("tests/js/plc-server.mjs");
        let mut child = Command::new(&node)
            .arg(&script)
            .current_dir(repo)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", node.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");

        // Read the first stdout line on a thread so the wait can time out.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let result = reader.read_line(&mut line).map(|_| line);
            let _ = tx.send(result);
            // Keep draining so the server never blocks on a full pipe.
            let mut sink = String::new();
            while matches!(reader.read_line(&mut sink), Ok(n) if n > 0) {
                sink.clear();
            }
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("PLC directory did not start: {other:?}");
            }
        };
        let Some(url) = line.trim().strip_prefix("PLC_URL=").map(str::to_owned) else {
            let _ = child.kill();
            let status = child.wait();
            panic!("PLC directory printed {line:?} instead of PLC_URL=… (exit: {status:?})");
        };
        PlcServer {
            child,
            _stdin: stdin,
            url,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PlcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
fn node_binary(repo: &Path) -> PathBuf {
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
