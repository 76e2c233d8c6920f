//! `rookery bench load`: the server under concurrent load, as a separate process.
//!
//! The real binary runs as `rookery serve` (by default this executable; `--server` names
//! another, e.g. a release build while the load generator is a debug one) on a fresh data
//! directory. Accounts are created over `createAccount` (the embedded did:plc directory),
//! two of them filled over `applyWrites` with [`Options::small_repo`] and
//! [`Options::big_repo`] posts. Then keep-alive HTTP/1.1 connections (a minimal client,
//! [`super::http1`], light enough not to cap the read phases on two cores) drive it in
//! phases:
//!
//! 1. createRecord, one connection, one account;
//! 2. createRecord, [`Options::accounts`] connections, one account each;
//! 3. getRecord of random records written in 1–2, 16 connections;
//! 4. listRecords limit=100 from random cursors of the small repo, 8 connections;
//! 5. getRepo of the small repo, then of the big one, one connection;
//! 6. [`Options::touch_accounts`] accounts created, then one createRecord on each in a row
//!    (see [`accounts`]): the memory of many actor stores opened one after another.
//!
//! Every phase is bounded by a request count and [`Options::phase_limit`]. Each prints its
//! rate, p50/p99 latency and the server's peak resident set during the phase (`VmHWM` of the
//! child, reset before each phase through `/proc/PID/clear_refs`). Every answer is checked
//! (status, record count, CAR size constant between runs), so a failing server is an error,
//! not a number.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::harness::{WorkDir, server_error};
use super::http1::{Client, Response};
use super::spawned::{Memory, SpawnedServer, load_average, reset_peak};
use super::{Error, Latency, Machine, grouped, per_second};
use crate::actor::MAX_WRITES;
use crate::syntax::Did;

mod accounts;
pub use accounts::AfterTouch;

const COLLECTION: &str = "app.bsky.feed.post";

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// createRecord calls of the one-connection phase.
    pub creates_single: usize,
    /// createRecord calls of the many-connection phase (over all connections).
    pub creates_multi: usize,
    /// Accounts (and connections) of the many-connection write phase.
    pub accounts: usize,
    /// getRecord calls (16 connections).
    pub reads: usize,
    /// listRecords calls (8 connections).
    pub lists: usize,
    /// Records of the small repository (getRepo, listRecords); 0 skips its phases.
    pub small_repo: usize,
    /// Records of the big repository (getRepo); 0 skips it.
    pub big_repo: usize,
    /// getRepo downloads of each repository.
    pub repo_runs: usize,
    /// Longest each phase may run.
    pub phase_limit: Duration,
    /// Accounts created and then written to once each, in a row; 0 skips.
    pub touch_accounts: usize,
    /// Longest each of the two many-accounts phases may run.
    pub touch_limit: Duration,
    /// The `rookery` binary to run as the server; default: this executable.
    pub binary: Option<PathBuf>,
    /// Parent of the working directory; default: the system temp directory.
    pub dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            creates_single: 3_000,
            creates_multi: 10_000,
            accounts: 16,
            reads: 100_000,
            lists: 10_000,
            small_repo: 10_000,
            big_repo: 100_000,
            repo_runs: 5,
            phase_limit: Duration::from_secs(20),
            touch_accounts: 200,
            touch_limit: Duration::from_secs(600),
            binary: None,
            dir: None,
        }
    }
}

/// What a phase's rate counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Requests,
    Records,
    Bytes,
}

/// One measured phase.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub connections: usize,
    pub latency: Latency,
    pub elapsed: Duration,
    /// Requests, records or bytes, as `unit` says.
    pub items: u64,
    pub unit: Unit,
    /// The server's memory at the end of the phase (peak: during the phase).
    pub memory: Option<Memory>,
}

impl Phase {
    pub fn requests_per_second(&self) -> f64 {
        per_second(self.latency.count as u64, self.elapsed)
    }

    pub fn items_per_second(&self) -> f64 {
        per_second(self.items, self.elapsed)
    }
}

#[derive(Debug)]
pub struct Report {
    pub machine: Machine,
    pub load_before: Option<f64>,
    pub load_after: Option<f64>,
    pub seed_elapsed: Duration,
    /// The server's memory right after start, before any request.
    pub idle: Option<Memory>,
    pub phases: Vec<Phase>,
    /// Open stores and threads after the many-accounts phase, if it ran.
    pub after_touch: Option<AfterTouch>,
    /// The server's resident set at the end, after every phase.
    pub end: Option<Memory>,
}

/// An account of the spawned server.
#[derive(Debug, Clone)]
struct Account {
    did: Did,
    token: String,
}

const PASSWORD: &str = "load-benchmark-password";

/// What the seeding wrote.
struct Seeded {
    accounts: Vec<Account>,
    /// (account, record keys) of the small and big repositories.
    small: Option<(Account, Vec<String>)>,
    big: Option<Account>,
}

/// Runs the benchmark and removes its data directory.
pub async fn run(opts: &Options) -> Result<Report, Error> {
    let binary = match &opts.binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()?,
    };
    let dir = WorkDir::create(opts.dir.as_deref(), "load")?;
    let load_before = load_average();
    let env = [
        ("PDS_INVITE_REQUIRED", "false".to_owned()),
        ("PDS_ADMIN_PASSWORD", accounts::ADMIN_PASSWORD.to_owned()),
    ];
    let server = SpawnedServer::start(&binary, &dir.path().join("data"), &env)?;
    let idle = Memory::of(server.pid());
    let started = Instant::now();
    let result = match seed(opts, server.url()).await {
        Ok(seeded) => {
            let seed_elapsed = started.elapsed();
            match phases(opts, &server, &seeded).await {
                Ok(mut phases) => accounts::phases(opts, &server).await.map(|(more, after)| {
                    phases.extend(more);
                    (seed_elapsed, phases, after, Memory::of(server.pid()))
                }),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    server.kill();
    let (seed_elapsed, phases, after_touch, end) = result?;
    Ok(Report {
        machine: Machine::current(),
        load_before,
        load_after: load_average(),
        seed_elapsed,
        idle,
        phases,
        after_touch,
        end,
    })
}

/// Creates an account over XRPC (handle `{name}.test`, did:plc from the server's directory).
async fn create_account(client: &Client, name: &str) -> Result<Account, Error> {
    let body = json!({
        "handle": format!("{name}.test"),
        "email": format!("{name}@example.com"),
        "password": PASSWORD,
    });
    let response = client
        .post_json(
            "/xrpc/com.atproto.server.createAccount",
            &[],
            &body.to_string().into_bytes(),
        )
        .await
        .map_err(|e| server_error("createAccount", e))?;
    let body = ok_body("createAccount", response)?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| server_error("createAccount body", e))?;
    let did = value["did"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e| server_error("createAccount did", e))?;
    let token = format!("Bearer {}", value["accessJwt"].as_str().unwrap_or_default());
    Ok(Account { did, token })
}

/// Fills the account's repository with `records` posts over `applyWrites` (200 creates a
/// commit); returns their record keys.
async fn fill(client: &Client, account: &Account, records: usize) -> Result<Vec<String>, Error> {
    let mut rkeys = Vec::with_capacity(records);
    while rkeys.len() < records {
        let n = MAX_WRITES.min(records - rkeys.len());
        let writes: Vec<serde_json::Value> = (rkeys.len()..rkeys.len() + n)
            .map(|i| {
                json!({
                    "$type": "com.atproto.repo.applyWrites#create",
                    "collection": COLLECTION,
                    "value": {
                        "$type": COLLECTION,
                        "text": format!("Load benchmark post number {i}."),
                        "createdAt": "2026-12-02T00:00:00.000Z",
                    },
                })
            })
            .collect();
        let body = json!({ "repo": account.did.as_str(), "writes": writes }).to_string();
        let response = client
            .post_json(
                "/xrpc/com.atproto.repo.applyWrites",
                &[("authorization", &account.token)],
                body.as_bytes(),
            )
            .await
            .map_err(|e| server_error("applyWrites", e))?;
        let body = ok_body("applyWrites", response)?;
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| server_error("applyWrites body", e))?;
        let results = value["results"].as_array().cloned().unwrap_or_default();
        super::check_eq("applyWrites results", n, results.len())?;
        for result in results {
            rkeys.push(rkey_of(result["uri"].as_str().unwrap_or_default()));
        }
    }
    Ok(rkeys)
}

fn rkey_of(uri: &str) -> String {
    uri.rsplit('/').next().unwrap_or_default().to_owned()
}

/// Creates the accounts and fills the two repositories through the server itself.
async fn seed(opts: &Options, base: &str) -> Result<Seeded, Error> {
    let client = Client::new(base);
    let mut accounts = Vec::new();
    for i in 0..opts.accounts.max(1) {
        accounts.push(create_account(&client, &format!("load{i}")).await?);
    }
    let small = if opts.small_repo > 0 {
        let account = create_account(&client, "small-repo").await?;
        let rkeys = fill(&client, &account, opts.small_repo).await?;
        Some((account, rkeys))
    } else {
        None
    };
    let big = if opts.big_repo > 0 {
        let account = create_account(&client, "big-repo").await?;
        fill(&client, &account, opts.big_repo).await?;
        Some(account)
    } else {
        None
    };
    Ok(Seeded {
        accounts,
        small,
        big,
    })
}

/// Runs `request(client, connection, i)` for i in `0..total` over `connections` keep-alive
/// connections until done or `limit` passes; `request` returns the items it moved.
async fn drive<F, Fut>(
    base: &str,
    connections: usize,
    total: usize,
    limit: Duration,
    request: F,
) -> Result<(Latency, Duration, u64), Error>
where
    F: Fn(Client, usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, Error>> + Send,
{
    let request = Arc::new(request);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + limit;
    let mut tasks = tokio::task::JoinSet::new();
    for conn in 0..connections.max(1) {
        let (request, next) = (request.clone(), next.clone());
        let client = Client::new(base);
        tasks.spawn(async move {
            let mut samples = Vec::new();
            let mut items = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() >= deadline {
                    return Ok::<_, Error>((samples, items));
                }
                let t = Instant::now();
                items += request(client.clone(), conn, i).await?;
                samples.push(t.elapsed());
            }
        });
    }
    let mut samples = Vec::new();
    let mut items = 0;
    while let Some(joined) = tasks.join_next().await {
        let (s, n) = joined.map_err(|e| server_error("load task", e))??;
        samples.extend(s);
        items += n;
    }
    Ok((Latency::of(&samples), started.elapsed(), items))
}

/// Fails unless the response succeeded; returns its body.
fn ok_body(what: &str, response: Response) -> Result<bytes::Bytes, Error> {
    if (200..300).contains(&response.status) {
        Ok(response.body)
    } else {
        Err(server_error(
            what,
            format!(
                "{}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ),
        ))
    }
}

/// One post by `account` over `createRecord`; returns its URI.
async fn create_record(client: &Client, account: &Account, text: &str) -> Result<String, Error> {
    let body = json!({
        "repo": account.did.as_str(),
        "collection": COLLECTION,
        "record": {
            "$type": COLLECTION,
            "text": text,
            "createdAt": "2026-12-02T00:00:00.000Z",
        },
    });
    let response = client
        .post_json(
            "/xrpc/com.atproto.repo.createRecord",
            &[("authorization", &account.token)],
            body.to_string().as_bytes(),
        )
        .await
        .map_err(|e| server_error("createRecord", e))?;
    let body = ok_body("createRecord", response)?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| server_error("createRecord body", e))?;
    Ok(value["uri"].as_str().unwrap_or_default().to_owned())
}

/// Record keys written, per account index.
type Written = Arc<Mutex<Vec<(usize, String)>>>;

/// A phase of createRecord calls, account `conn % accounts` on connection `conn`.
async fn creates(
    name: &str,
    opts: &Options,
    server: &SpawnedServer,
    accounts: &[Account],
    written: &Written,
) -> Result<Phase, Error> {
    let base = server.url().to_owned();
    let list: Arc<Vec<Account>> = Arc::new(accounts.to_vec());
    let out = written.clone();
    let total = if accounts.len() == 1 {
        opts.creates_single
    } else {
        opts.creates_multi
    };
    measured(name, accounts.len(), Unit::Requests, server, async {
        drive(
            &base,
            accounts.len(),
            total,
            opts.phase_limit,
            move |client, conn, i| {
                let (list, out) = (list.clone(), out.clone());
                async move {
                    let index = conn % list.len();
                    let text = format!("Load post {i} on connection {conn}.");
                    let uri = create_record(&client, &list[index], &text).await?;
                    let rkey = rkey_of(&uri);
                    out.lock().expect("not poisoned").push((index, rkey));
                    Ok(1)
                }
            },
        )
        .await
    })
    .await
}

/// Resets the server's peak memory, runs `work`, and makes a [`Phase`] of its figures.
async fn measured(
    name: &str,
    connections: usize,
    unit: Unit,
    server: &SpawnedServer,
    work: impl Future<Output = Result<(Latency, Duration, u64), Error>>,
) -> Result<Phase, Error> {
    let reset = reset_peak(server.pid());
    let (latency, elapsed, items) = work.await?;
    Ok(Phase {
        name: name.to_owned(),
        connections,
        latency,
        elapsed,
        items,
        unit,
        memory: Memory::of(server.pid()).filter(|_| reset),
    })
}

async fn phases(
    opts: &Options,
    server: &SpawnedServer,
    seeded: &Seeded,
) -> Result<Vec<Phase>, Error> {
    let base = server.url().to_owned();
    let mut out = Vec::new();
    let written: Written = Arc::default();
    let single = &seeded.accounts[..1];
    out.push(creates("createRecord, 1 account", opts, server, single, &written).await?);
    let name = format!("createRecord, {} accounts", seeded.accounts.len());
    out.push(creates(&name, opts, server, &seeded.accounts, &written).await?);

    // getRecord of random records written above.
    let records: Arc<Vec<(Did, String)>> = Arc::new(
        written
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(i, rkey)| (seeded.accounts[*i].did.clone(), rkey.clone()))
            .collect(),
    );
    if !records.is_empty() {
        let b = base.clone();
        let phase = measured("getRecord, random", 16, Unit::Requests, server, async {
            drive(&b, 16, opts.reads, opts.phase_limit, move |client, _, _| {
                let records = records.clone();
                async move {
                    let (did, rkey) = &records[rand::random::<usize>() % records.len()];
                    let response = client
                        .get(&format!(
                            "/xrpc/com.atproto.repo.getRecord?repo={did}&collection={COLLECTION}&rkey={rkey}"
                        ))
                        .await
                        .map_err(|e| server_error("getRecord", e))?;
                    ok_body("getRecord", response)?;
                    Ok(1)
                }
            })
            .await
        })
        .await?;
        out.push(phase);
    }

    if let Some((account, rkeys)) = &seeded.small {
        let (b, did) = (base.clone(), account.did.clone());
        // Cursors leaving at least 100 older records.
        let cursors: Arc<Vec<String>> = Arc::new(rkeys.iter().skip(100).cloned().collect());
        let phase = measured("listRecords limit=100", 8, Unit::Records, server, async {
            drive(&b, 8, opts.lists, opts.phase_limit, move |client, _, _| {
                let (did, cursors) = (did.clone(), cursors.clone());
                async move {
                    let cursor = cursors
                        .get(rand::random::<usize>() % cursors.len().max(1))
                        .map(|c| format!("&cursor={c}"))
                        .unwrap_or_default();
                    let response = client
                        .get(&format!(
                            "/xrpc/com.atproto.repo.listRecords?repo={did}&collection={COLLECTION}&limit=100{cursor}"
                        ))
                        .await
                        .map_err(|e| server_error("listRecords", e))?;
                    let body = ok_body("listRecords", response)?;
                    // The server writes each record as `{"uri":"at://…`; counting those
                    // costs the client far less than parsing the page (the posts' texts
                    // never hold that string).
                    let records = memchr::memmem::find_iter(&body, br#"{"uri":"at://"#).count();
                    Ok(records as u64)
                }
            })
            .await
        })
        .await?;
        super::check_eq(
            "listRecords page size",
            phase.latency.count as u64 * 100,
            phase.items,
        )?;
        out.push(phase);
        out.push(get_repo(opts, server, &account.did, rkeys.len()).await?);
    }
    if let Some(account) = &seeded.big {
        out.push(get_repo(opts, server, &account.did, opts.big_repo).await?);
    }
    Ok(out)
}

/// getRepo of `did`, sequentially on one connection; every download the same size.
async fn get_repo(
    opts: &Options,
    server: &SpawnedServer,
    did: &Did,
    records: usize,
) -> Result<Phase, Error> {
    let url = format!("/xrpc/com.atproto.sync.getRepo?did={did}");
    let sizes: Arc<Mutex<Vec<u64>>> = Arc::default();
    let seen = sizes.clone();
    let name = format!("getRepo, {} records", grouped(records as f64));
    // Downloads are long: the time limit applies between them, not within one.
    let phase = measured(&name, 1, Unit::Bytes, server, async {
        drive(
            server.url(),
            1,
            opts.repo_runs.max(1),
            opts.phase_limit,
            move |client, _, _| {
                let (url, seen) = (url.clone(), seen.clone());
                async move {
                    let response = client
                        .get_counted(&url)
                        .await
                        .map_err(|e| server_error("getRepo", e))?;
                    let bytes = response.len;
                    ok_body("getRepo", response)?;
                    seen.lock().expect("not poisoned").push(bytes);
                    Ok(bytes)
                }
            },
        )
        .await
    })
    .await?;
    let sizes = sizes.lock().expect("not poisoned");
    if let Some(first) = sizes.first() {
        if let Some(other) = sizes.iter().find(|s| *s != first) {
            return Err(super::Error::mismatch("getRepo size", first, other));
        }
        // A post is about 250 bytes of CAR with its MST share; far less means a cut export.
        if *first < records as u64 * 100 {
            return Err(super::Error::mismatch(
                "getRepo size",
                format!("at least {} bytes", records * 100),
                first,
            ));
        }
    }
    Ok(phase)
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rookery bench load: a spawned `rookery serve`, HTTP/1.1 keep-alive clients on 127.0.0.1"
        )?;
        writeln!(f, "machine: {}", self.machine)?;
        let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
        writeln!(
            f,
            "load average (1 min): {} before, {} after; seeding took {:.1} s",
            load(self.load_before),
            load(self.load_after),
            self.seed_elapsed.as_secs_f64()
        )?;
        if let Some(idle) = self.idle {
            writeln!(f, "server RSS idle after start: {:.1} MB", mb(idle.rss_kib))?;
        }
        writeln!(
            f,
            "    {:<28} {:>5} {:>7} {:>10} {:>16} {:>9} {:>9} {:>9}",
            "phase", "conns", "n", "req/s", "throughput", "p50 µs", "p99 µs", "peak MB"
        )?;
        let mut peak = 0;
        for p in &self.phases {
            let throughput = match p.unit {
                Unit::Requests => format!("{} /s", grouped(p.items_per_second())),
                Unit::Records => format!("{} rec/s", grouped(p.items_per_second())),
                Unit::Bytes => format!("{:.1} MB/s", p.items_per_second() / 1e6),
            };
            let memory = p.memory.map_or("?".into(), |m| {
                peak = peak.max(m.peak_kib);
                format!("{:.1}", mb(m.peak_kib))
            });
            writeln!(
                f,
                "    {:<28} {:>5} {:>7} {:>10} {:>16} {:>9} {:>9} {:>9}",
                p.name,
                p.connections,
                p.latency.count,
                grouped(p.requests_per_second()),
                throughput,
                grouped(p.latency.median.as_secs_f64() * 1e6),
                grouped(p.latency.p99.as_secs_f64() * 1e6),
                memory
            )?;
        }
        writeln!(f, "server peak RSS over all phases: {:.1} MB", mb(peak))?;
        if let Some(after) = self.after_touch {
            let show = |v: Option<u64>| v.map_or("?".into(), |v| v.to_string());
            writeln!(
                f,
                "after the many-accounts phase: {} actor stores open, {} server threads",
                show(after.open_stores),
                show(after.threads)
            )?;
        }
        if let Some(end) = self.end {
            writeln!(f, "server RSS at the end: {:.1} MB", mb(end.rss_kib))?;
        }
        Ok(())
    }
}
