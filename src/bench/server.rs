//! `rookery bench server`: XRPC throughput of a running server over real HTTP on 127.0.0.1.
//!
//! A server is started in-process on a fresh data directory and port 0. The account is seeded
//! through the library (its did:plc genesis is signed but not submitted: the benchmark needs no
//! network), then one HTTP/1.1 keep-alive client sends `createRecord` sequentially and then
//! `getRecord` for the records written, exactly as a client app would.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Error, Latency};
use crate::AppState;
use crate::accounts::NewAccount;
use crate::config::{Config, SecretBytes, ServiceSecrets};
use crate::crypto::{Algorithm, Keypair};
use crate::identity::plc;
use crate::syntax::Handle;

#[derive(Debug, Clone)]
pub struct Options {
    /// Sequential createRecord calls.
    pub creates: usize,
    /// Sequential getRecord calls (cycling over the records created).
    pub reads: usize,
    /// Parent of the working directory; default: the system temp directory.
    pub dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            creates: 2_000,
            reads: 5_000,
            dir: None,
        }
    }
}

#[derive(Debug)]
pub struct Report {
    pub machine: super::Machine,
    pub create: Latency,
    pub create_elapsed: Duration,
    pub read: Latency,
    pub read_elapsed: Duration,
}

fn http_error(what: &str, e: impl fmt::Display) -> Error {
    Error::Server(format!("{what}: {e}"))
}

/// Runs the benchmark and removes its data directory.
pub async fn run(opts: &Options) -> Result<Report, Error> {
    let parent = opts.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = parent.join(format!("rookery-bench-server-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(opts, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(opts: &Options, dir: &std::path::Path) -> Result<Report, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = Config {
        data_directory: dir.to_path_buf(),
        invite_required: false,
        port: addr.port(),
        public_url: format!("http://{addr}"),
        log_enabled: false,
        ..Config::default()
    };
    let secrets = ServiceSecrets {
        session_key_seed: SecretBytes::new(rand::random()),
        plc_rotation_key: SecretBytes::new(Keypair::generate(Algorithm::K256).to_private_bytes()),
    };
    let state = AppState::build(config, secrets)
        .await
        .map_err(|e| http_error("server state", e))?;
    let shutdown = CancellationToken::new();
    let app = crate::app(state.clone());
    let token = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(token.cancelled_owned())
        .await
    });
    let result = measure(opts, &state, &format!("http://{addr}")).await;
    shutdown.cancel();
    let _ = server.await;
    result
}

async fn measure(opts: &Options, state: &AppState, base: &str) -> Result<Report, Error> {
    // The account, seeded through the library.
    let handle: Handle = "bench.test".parse().map_err(|e| http_error("handle", e))?;
    let key = Keypair::generate(Algorithm::K256);
    let (did, _) = plc::create_genesis(
        &key.public_key().to_did_key(),
        vec![state.plc_rotation_key().public_key().to_did_key()],
        &handle,
        &state.config().public_url,
        state.plc_rotation_key(),
    )
    .map_err(|e| http_error("genesis", e))?;
    state
        .repo()
        .create_repo(&did, &key, Some(&handle))
        .await
        .map_err(|e| http_error("create_repo", e))?;
    let now = chrono::Utc::now().timestamp();
    state
        .accounts()
        .create_account(NewAccount {
            did: &did,
            handle: &handle,
            email: "bench@example.com",
            password: "benchmark-password",
            invite_code: None,
            invite_required: false,
            now,
        })
        .await
        .map_err(|e| http_error("create_account", e))?;
    let session = state
        .accounts()
        .create_session_tokens(did.as_str(), None, now, state.session())
        .await
        .map_err(|e| http_error("session", e))?;
    let auth = format!("Bearer {}", session.access_jwt);
    let client = reqwest::Client::new();

    let mut rkeys = Vec::with_capacity(opts.creates);
    let mut samples = Vec::with_capacity(opts.creates);
    let started = Instant::now();
    for i in 0..opts.creates {
        let body = json!({
            "repo": did.as_str(),
            "collection": "app.bsky.feed.post",
            "record": {
                "$type": "app.bsky.feed.post",
                "text": format!("Benchmark post number {i}, written over XRPC."),
                "createdAt": crate::syntax::Datetime::now().to_string(),
            },
        });
        let t = Instant::now();
        let response = client
            .post(format!("{base}/xrpc/com.atproto.repo.createRecord"))
            .header("authorization", &auth)
            .json(&body)
            .send()
            .await
            .map_err(|e| http_error("createRecord", e))?;
        let status = response.status();
        let out: serde_json::Value = response
            .json()
            .await
            .map_err(|e| http_error("createRecord body", e))?;
        samples.push(t.elapsed());
        if !status.is_success() {
            return Err(http_error("createRecord", format!("{status}: {out}")));
        }
        let uri = out["uri"].as_str().unwrap_or_default();
        rkeys.push(uri.rsplit('/').next().unwrap_or_default().to_owned());
    }
    let create_elapsed = started.elapsed();
    let create = Latency::of(&samples);

    let mut samples = Vec::with_capacity(opts.reads);
    let started = Instant::now();
    for i in 0..opts.reads {
        let Some(rkey) = rkeys.get(i % rkeys.len().max(1)) else {
            break;
        };
        let t = Instant::now();
        let response = client
            // DIDs and record keys need no escaping in a query string.
            .get(format!(
                "{base}/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={rkey}"
            ))
            .send()
            .await
            .map_err(|e| http_error("getRecord", e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| http_error("getRecord body", e))?;
        samples.push(t.elapsed());
        if !status.is_success() {
            return Err(http_error("getRecord", format!("{status}: {bytes:?}")));
        }
    }
    let read_elapsed = started.elapsed();
    Ok(Report {
        machine: super::Machine::current(),
        create,
        create_elapsed,
        read: Latency::of(&samples),
        read_elapsed,
    })
}

fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rookery bench server: XRPC over HTTP/1.1 keep-alive on 127.0.0.1, one client"
        )?;
        writeln!(f, "machine: {}", self.machine)?;
        writeln!(
            f,
            "    {:<28} {:>6} {:>10} {:>10} {:>10} {:>10}",
            "call (sequential)", "n", "per s", "median", "p99", "max"
        )?;
        for (name, lat, elapsed) in [
            (
                "createRecord (one account)",
                &self.create,
                self.create_elapsed,
            ),
            ("getRecord", &self.read, self.read_elapsed),
        ] {
            writeln!(
                f,
                "    {:<28} {:>6} {:>10.0} {:>8}µs {:>8}µs {:>8}µs",
                name,
                lat.count,
                per_second(lat.count, elapsed),
                lat.median.as_micros(),
                lat.p99.as_micros(),
                lat.max.as_micros()
            )?;
        }
        Ok(())
    }
}
