//! `rookery serve` with `ROOKERY_LOG_FORMAT=json`, run as the operator runs it (the real
//! binary, configured only by its environment): every stderr line is a JSON object, each
//! request has one line with its id (the client's `x-request-id` when sane, else a fresh
//! one, echoed in the response), method, path, NSID, status and latency, and no token
//! reaches the log.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

/// The server process and its stderr lines, parsed as JSON (a line that is not JSON fails
/// the test).
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<Value>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_rookery"))
            .arg("serve")
            .env_clear()
            .env("PDS_DATA_DIRECTORY", dir.path())
            .env("PDS_PORT", "0")
            .env("ROOKERY_BIND_ADDRESS", "127.0.0.1")
            .env("ROOKERY_LOG_FORMAT", "json")
            .env("PDS_DEV_MODE", "false")
            .env("PDS_RATE_LIMITS_ENABLED", "false")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run rookery serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            lines,
            seen: Vec::new(),
            _dir: dir,
        }
    }

    /// Waits for a log line matching `want` (every line read is kept and must be JSON).
    fn wait_for(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        if let Some(found) = self.seen.iter().find(|v| want(v)) {
            return found.clone();
        }
        let started = Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(started.elapsed());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no log line {what} ({e}); seen: {:?}", self.seen));
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
            assert!(value.is_object(), "log line is not an object: {line}");
            self.seen.push(value.clone());
            if want(&value) {
                return value;
            }
        }
    }
}

fn request_line<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    (v["target"] == "rookery::request" && v["path"] == path).then_some(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_request_ids() {
    let mut server = Server::start();
    let listening = server.wait_for("announcing the address", |v| {
        v["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("listening"))
    });
    for key in ["timestamp", "level", "target"] {
        assert!(listening.get(key).is_some(), "{key} missing: {listening}");
    }
    let addr = listening["address"].as_str().unwrap().to_owned();
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();

    // A client id is kept and echoed.
    let reply = http
        .get(format!("{base}/xrpc/_health"))
        .header("x-request-id", "client-id-123")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["x-request-id"], "client-id-123");

    // An unsafe one is replaced by a fresh id; so is a missing one. A bearer token is sent
    // along and must not be logged.
    let secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2VuLW5ldmVyLWxvZ2dlZA.sig";
    let reply = http
        .get(format!(
            "{base}/xrpc/com.atproto.server.getSession?token-in-query=no"
        ))
        .header("x-request-id", "bad id\"{}")
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    let fresh = reply.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(fresh, "bad id\"{}");
    assert_eq!(fresh.len(), 32, "{fresh}");
    assert!(fresh.bytes().all(|b| b.is_ascii_hexdigit()), "{fresh}");
    let status = reply.status().as_u16();
    assert!(matches!(status, 400 | 401), "{status}");
    let reply = http
        .get(format!("{base}/xrpc/com.atproto.server.describeServer"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let described = reply.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(described, fresh);

    let health = server.wait_for("for _health", |v| {
        request_line(v, "/xrpc/_health").is_some()
    });
    assert_eq!(health["span"]["request_id"], "client-id-123", "{health}");
    assert_eq!(health["method"], "GET");
    assert_eq!(health["status"], 200);
    assert_eq!(health["nsid"], "_health");
    assert!(
        health["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{health}"
    );
    assert_eq!(health["level"], "INFO");

    let session = server.wait_for("for getSession", |v| {
        request_line(v, "/xrpc/com.atproto.server.getSession").is_some()
    });
    assert_eq!(session["span"]["request_id"], fresh.as_str());
    assert_eq!(session["status"], status);
    assert_eq!(session["nsid"], "com.atproto.server.getSession");

    let describe = server.wait_for("for describeServer", |v| {
        request_line(v, "/xrpc/com.atproto.server.describeServer").is_some()
    });
    assert_eq!(describe["span"]["request_id"], described.as_str());

    let everything = serde_json::to_string(&server.seen).unwrap();
    assert!(!everything.contains("c2VjcmV0LXRva2VuLW5ldmVyLWxvZ2dlZA"));
    assert!(!everything.contains("token-in-query"));
}
