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

use super::harness::{BenchServer, WorkDir, bearer, seed_account, server_error};
use super::{Error, Latency, per_second};
use crate::AppState;

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

/// Runs the benchmark and removes its data directory.
pub async fn run(opts: &Options) -> Result<Report, Error> {
    let dir = WorkDir::create(opts.dir.as_deref(), "server")?;
    let server = BenchServer::start(dir.path(), |_| {}).await?;
    let result = measure(opts, server.state(), &server.url()).await;
    server.stop().await;
    result
}

async fn measure(opts: &Options, state: &AppState, base: &str) -> Result<Report, Error> {
    // The account, seeded through the library.
    let did = seed_account(state, "bench").await?;
    let auth = bearer(state, &did).await?;
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
            .map_err(|e| server_error("createRecord", e))?;
        let status = response.status();
        let out: serde_json::Value = response
            .json()
            .await
            .map_err(|e| server_error("createRecord body", e))?;
        samples.push(t.elapsed());
        if !status.is_success() {
            return Err(server_error("createRecord", format!("{status}: {out}")));
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
            .map_err(|e| server_error("getRecord", e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| server_error("getRecord body", e))?;
        samples.push(t.elapsed());
        if !status.is_success() {
            return Err(server_error("getRecord", format!("{status}: {bytes:?}")));
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
                per_second(lat.count as u64, elapsed),
                lat.median.as_micros(),
                lat.p99.as_micros(),
                lat.max.as_micros()
            )?;
        }
        Ok(())
    }
}

// Small runs of the whole benchmark, checking its counts: `cargo test --features bench-tests`.
#[cfg(all(test, feature = "bench-tests"))]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_run_writes_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            creates: 5,
            reads: 7,
            dir: Some(dir.path().to_path_buf()),
        };
        let report = run(&opts).await.unwrap();
        assert_eq!(report.create.count, 5);
        assert_eq!(report.read.count, 7);
        let text = report.to_string();
        assert!(text.contains("createRecord (one account)"), "{text}");
        assert!(
            !dir.path()
                .join(format!("rookery-bench-server-{}", std::process::id()))
                .exists()
        );
    }
}
