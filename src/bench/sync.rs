//! `rookery bench sync`: the sync endpoints a relay or mirror uses, over real HTTP on 127.0.0.1.
//!
//! A server is started in-process on a fresh data directory and port 0, one account's
//! repository is filled with [`Options::records`] small posts through the repository service
//! (commits of [`Options::batch`] creates, as `applyWrites` would make them), then one
//! keep-alive client measures:
//! 1. `getRepo` of the whole repository, and `since` the revision at half the records;
//! 2. the store export alone (`write_repo_car` into a byte counter), to tell the store's cost
//!    from HTTP's;
//!    and the store's block read alone (no CAR written);
//! 3. `getBlocks` for [`Options::cids`] blocks of the repository in one request.
//!
//! Every download is checked (the CAR's root is the head and it holds the expected number of
//! blocks; `getBlocks` returns exactly the blocks asked for) so a wrong answer is an error,
//! not a number.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cid::Cid;
use futures::StreamExt;
use ipld_core::ipld::Ipld;

use super::harness::{BenchServer, Serve, WorkDir, seed_account, server_error};
use super::{CountingWriter, Error, Latency, Machine, check_eq, human, mb_per_second};
use crate::AppState;
use crate::actor::{MAX_WRITES, RecordWrite};
use crate::repo::car::{CarReader, Limits, RootPolicy};
use crate::repo::repository::Write;
use crate::store::export::write_repo_car;
use crate::syntax::{Did, TidClock};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records in the repository.
    pub records: usize,
    /// Creates per commit while building (at most the commit limit, 200).
    pub batch: usize,
    /// Downloads of each kind; the median is reported.
    pub runs: usize,
    /// CIDs per `getBlocks` request (at most 1,000, the server's limit).
    pub cids: usize,
    /// Parent of the working directory; default: the system temp directory.
    pub dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            records: 100_000,
            batch: MAX_WRITES,
            runs: 3,
            cids: 1_000,
            dir: None,
        }
    }
}

/// One measured transfer kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// Bytes of one transfer.
    pub bytes: u64,
    /// Blocks in one transfer.
    pub blocks: u64,
    /// Timings of the runs.
    pub latency: Latency,
}

impl Transfer {
    /// MB/s of the median run.
    pub fn mb_per_second(&self) -> f64 {
        mb_per_second(self.bytes, self.latency.median)
    }
}

#[derive(Debug)]
pub struct Report {
    pub machine: Machine,
    pub records: usize,
    pub build_elapsed: Duration,
    pub commits: usize,
    pub get_repo: Transfer,
    pub get_repo_since: Transfer,
    pub store_export: Transfer,
    /// Reading every block from the store, no CAR written (block bytes only).
    pub store_read: Transfer,
    pub get_blocks: Transfer,
}

/// Runs the benchmark and removes its data directory.
pub async fn run(opts: &Options) -> Result<Report, Error> {
    let dir = WorkDir::create(opts.dir.as_deref(), "sync")?;
    let serve = Serve {
        nodelay: true,
        ..Serve::default()
    };
    let server = BenchServer::start_with(dir.path(), serve, |_| {}).await?;
    let result = measure(opts, server.state(), &server.url()).await;
    server.stop().await;
    result
}

fn post(i: usize) -> Ipld {
    Ipld::Map(BTreeMap::from([
        ("$type".into(), Ipld::String("app.bsky.feed.post".into())),
        (
            "text".into(),
            Ipld::String(format!("Benchmark post number {i}, fetched over sync.")),
        ),
        (
            "createdAt".into(),
            Ipld::String("2026-11-23T00:00:00.000Z".into()),
        ),
    ]))
}

/// Fills the repository; returns the number of commits and the revision after half the
/// records.
async fn build(opts: &Options, state: &AppState, did: &Did) -> Result<(usize, String), Error> {
    let clock = TidClock::default();
    let batch = opts.batch.clamp(1, MAX_WRITES);
    let mut commits = 0;
    let mut half_rev = None;
    let mut written = 0;
    while written < opts.records {
        let n = batch.min(opts.records - written);
        let writes: Vec<RecordWrite> = (written..written + n)
            .map(|i| {
                Ok(Write::Create {
                    collection: "app.bsky.feed.post".parse()?,
                    rkey: clock.next().to_string().parse()?,
                    record: post(i),
                }
                .into())
            })
            .collect::<Result<_, crate::syntax::Error>>()?;
        let commit = state
            .repo()
            .apply_writes(did, writes, None)
            .await
            .map_err(|e| server_error("applyWrites", e))?;
        commits += 1;
        written += n;
        if half_rev.is_none() && written >= opts.records / 2 {
            half_rev = Some(commit.rev);
        }
    }
    let half_rev = match half_rev {
        Some(rev) => rev,
        None => {
            state
                .repo()
                .current_root(did)
                .await
                .map_err(|e| server_error("head", e))?
                .rev
        }
    };
    Ok((commits, half_rev))
}

/// Downloads `url` `runs` times (at least once), checking each body with `check`, which
/// returns the number of blocks.
async fn download<F>(
    client: &reqwest::Client,
    url: &str,
    runs: usize,
    check: F,
) -> Result<(Transfer, Vec<u8>), Error>
where
    F: AsyncCheck,
{
    let mut samples = Vec::new();
    let mut last = Vec::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|e| server_error("request", e))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(server_error("request", format!("{status}: {body}")));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk.map_err(|e| server_error("body", e))?);
        }
        samples.push(started.elapsed());
        last = body;
    }
    let blocks = check.blocks(&last).await?;
    Ok((
        Transfer {
            bytes: last.len() as u64,
            blocks,
            latency: Latency::of(&samples),
        },
        last,
    ))
}

/// Checks a downloaded CAR and counts its blocks.
trait AsyncCheck {
    fn blocks(&self, car: &[u8]) -> impl std::future::Future<Output = Result<u64, Error>>;
}

/// A repository CAR: its one root is `head`.
struct RootedAt(Cid);

impl AsyncCheck for RootedAt {
    async fn blocks(&self, car: &[u8]) -> Result<u64, Error> {
        let mut reader = CarReader::new(car, Limits::default()).await?;
        check_eq(
            "getRepo root",
            self.0.to_string(),
            reader.roots().iter().map(Cid::to_string).collect(),
        )?;
        let mut n = 0;
        while reader.next_block().await?.is_some() {
            n += 1;
        }
        Ok(n)
    }
}

/// A block set: exactly these blocks, in this order.
struct Exactly(Vec<Cid>);

impl AsyncCheck for Exactly {
    async fn blocks(&self, car: &[u8]) -> Result<u64, Error> {
        let mut reader =
            CarReader::with_root_policy(car, Limits::default(), RootPolicy::Any).await?;
        let mut got = Vec::new();
        while let Some((cid, _)) = reader.next_block().await? {
            got.push(cid);
        }
        check_eq("getBlocks blocks", self.0.len(), got.len())?;
        if got != self.0 {
            return Err(Error::mismatch(
                "getBlocks order",
                "the CIDs asked for",
                "others",
            ));
        }
        Ok(got.len() as u64)
    }
}

async fn measure(opts: &Options, state: &AppState, base: &str) -> Result<Report, Error> {
    let did = seed_account(state, "bench-sync").await?;

    let started = Instant::now();
    let (commits, half_rev) = build(opts, state, &did).await?;
    let build_elapsed = started.elapsed();
    let head = state
        .repo()
        .current_root(&did)
        .await
        .map_err(|e| server_error("head", e))?;

    let client = reqwest::Client::new();
    let url = format!("{base}/xrpc/com.atproto.sync.getRepo?did={did}");
    let (get_repo, full_car) = download(&client, &url, opts.runs, RootedAt(head.cid)).await?;
    let url = format!("{base}/xrpc/com.atproto.sync.getRepo?did={did}&since={half_rev}");
    let (get_repo_since, _) = download(&client, &url, opts.runs, RootedAt(head.cid)).await?;
    if get_repo_since.blocks >= get_repo.blocks {
        return Err(Error::mismatch(
            "getRepo since half-way",
            format!("fewer than {} blocks", get_repo.blocks),
            get_repo_since.blocks,
        ));
    }

    // The same export without HTTP.
    let handle = state
        .repo()
        .stores()
        .open(&did)
        .await
        .map_err(|e| server_error("store", e))?
        .ok_or(Error::NoHead)?;
    let mut samples = Vec::new();
    let mut export_bytes = 0;
    let mut export_blocks = 0;
    for _ in 0..opts.runs.max(1) {
        let started = Instant::now();
        let (sink, blocks) = write_repo_car(
            &handle.block_store(),
            None,
            CountingWriter::new(tokio::io::sink()),
        )
        .await
        .map_err(|e| server_error("export", e))?;
        samples.push(started.elapsed());
        export_bytes = sink.bytes();
        export_blocks = blocks;
    }
    check_eq("export bytes", get_repo.bytes, export_bytes)?;
    let store_export = Transfer {
        bytes: export_bytes,
        blocks: export_blocks,
        latency: Latency::of(&samples),
    };
    // Reading the blocks alone, without writing a CAR.
    let mut samples = Vec::new();
    let mut read_bytes = 0;
    let mut read_blocks = 0;
    for _ in 0..opts.runs.max(1) {
        let started = Instant::now();
        let mut stream = std::pin::pin!(crate::store::blocks::stream_since(
            handle.pool().clone(),
            None,
            crate::store::export::PAGE
        ));
        let (mut bytes, mut blocks) = (0u64, 0u64);
        while let Some(block) = stream.next().await {
            let (_, content) = block?;
            bytes += content.len() as u64;
            blocks += 1;
        }
        samples.push(started.elapsed());
        (read_bytes, read_blocks) = (bytes, blocks);
    }
    check_eq("blocks read", export_blocks, read_blocks)?;
    let store_read = Transfer {
        bytes: read_bytes,
        blocks: read_blocks,
        latency: Latency::of(&samples),
    };

    // getBlocks: CIDs spread over the whole repository (the head commit's CAR order).
    let all = {
        let mut reader = CarReader::new(&full_car[..], Limits::default()).await?;
        let mut cids = Vec::new();
        while let Some((cid, _)) = reader.next_block().await? {
            cids.push(cid);
        }
        cids
    };
    let want = opts
        .cids
        .clamp(1, crate::xrpc::sync::MAX_GET_BLOCKS_CIDS)
        .min(all.len());
    let step = (all.len() / want.max(1)).max(1);
    let cids: Vec<Cid> = all.iter().step_by(step).take(want).copied().collect();
    let query: String = cids.iter().map(|c| format!("&cids={c}")).collect();
    let url = format!("{base}/xrpc/com.atproto.sync.getBlocks?did={did}{query}");
    let (get_blocks, _) = download(&client, &url, opts.runs.max(5), Exactly(cids)).await?;

    Ok(Report {
        machine: Machine::current(),
        records: opts.records,
        build_elapsed,
        commits,
        get_repo,
        get_repo_since,
        store_export,
        store_read,
        get_blocks,
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rookery bench sync: sync endpoints over HTTP/1.1 on 127.0.0.1, one client"
        )?;
        writeln!(f, "machine: {}", self.machine)?;
        writeln!(
            f,
            "repository: {} records in {} commits, built in {}",
            self.records,
            self.commits,
            human(self.build_elapsed)
        )?;
        writeln!(
            f,
            "    {:<34} {:>9} {:>8} {:>5} {:>10} {:>10} {:>8}",
            "transfer", "bytes", "blocks", "runs", "median", "max", "MB/s"
        )?;
        for (name, t) in [
            ("getRepo (whole repository)", &self.get_repo),
            ("getRepo since half-way", &self.get_repo_since),
            ("store export only (no HTTP)", &self.store_export),
            ("store block read only (no CAR)", &self.store_read),
            ("getBlocks (one request)", &self.get_blocks),
        ] {
            writeln!(
                f,
                "    {:<34} {:>9} {:>8} {:>5} {:>10} {:>10} {:>8.1}",
                name,
                t.bytes,
                t.blocks,
                t.latency.count,
                human(t.latency.median),
                human(t.latency.max),
                t.mb_per_second()
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
    async fn small_run_checks_every_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            records: 450,
            batch: 200,
            runs: 1,
            cids: 100,
            dir: Some(dir.path().to_path_buf()),
        };
        let report = run(&opts).await.unwrap();
        assert_eq!(report.commits, 3);
        assert_eq!(report.records, 450);
        assert_eq!(report.get_repo.bytes, report.store_export.bytes);
        assert_eq!(report.get_repo.blocks, report.store_export.blocks);
        // The commit, the MST nodes and 450 records.
        assert!(report.get_repo.blocks > 451, "{report}");
        assert!(report.get_repo_since.blocks < report.get_repo.blocks);
        assert_eq!(report.get_blocks.blocks, 100);
        assert_eq!(report.get_blocks.latency.count, 5);
        let text = report.to_string();
        assert!(text.contains("getBlocks (one request)"), "{text}");
        assert!(
            !dir.path()
                .join(format!("rookery-bench-sync-{}", std::process::id()))
                .exists()
        );
    }
}
