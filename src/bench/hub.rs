//! `rookery bench hub`: `cn.pocketbase.hub.listPlugins` throughput over real HTTP on
//! 127.0.0.1, with and without full-text queries, over a marketplace of N plugin records.
//!
//! A server is started in-process on a fresh data directory. Authors are seeded through the
//! library (did:plc genesis signed, not submitted), their plugin records committed through
//! the repository service in batches, a moderator's reviews approve every plugin, and the
//! index is built by a full reindex (timed: the same path as `rookery reindex`). Then one
//! HTTP/1.1 keep-alive client sends sequential `listPlugins` calls.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::harness::{BenchServer, WorkDir, seed_account, server_error};
use super::{Error, Latency, check_eq, per_second};
use crate::AppState;
use crate::actor::{MAX_WRITES, RecordWrite};
use crate::hub::{PLUGIN, REVIEW};
use crate::repo::cbor::json_to_record;
use crate::repo::repository::Write;
use crate::syntax::{Did, TidClock};

#[derive(Debug, Clone)]
pub struct Options {
    /// Plugin records in the marketplace.
    pub plugins: usize,
    /// Authors they are spread over.
    pub authors: usize,
    /// Sequential listPlugins calls per kind of query.
    pub queries: usize,
    /// Parent of the working directory; default: the system temp directory.
    pub dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            plugins: 10_000,
            authors: 20,
            queries: 1_000,
            dir: None,
        }
    }
}

/// One measured kind of listing.
#[derive(Debug)]
pub struct Measured {
    pub name: &'static str,
    /// Plugins the listing's filter matches (over all pages).
    pub matches: usize,
    pub latency: Latency,
    pub elapsed: Duration,
}

#[derive(Debug)]
pub struct Report {
    pub machine: super::Machine,
    pub plugins: usize,
    pub seed_elapsed: Duration,
    pub reindex_records: usize,
    pub reindex_elapsed: Duration,
    pub listings: Vec<Measured>,
}

const EN: [&str; 10] = [
    "auth", "storage", "sync", "cache", "image", "email", "payment", "search", "admin", "backup",
];
const ZH: [&str; 10] = [
    "认证", "存储", "同步", "缓存", "图片", "邮件", "支付", "搜索", "管理", "备份",
];
const CATEGORIES: [&str; 6] = ["auth", "storage", "api", "ui", "utils", "ai"];

/// Query parameters of a listing.
type Params = Vec<(&'static str, &'static str)>;

/// The listings measured: (name, query parameters, plugins matched).
fn listings(plugins: usize) -> Vec<(&'static str, Params, usize)> {
    let count = |f: fn(usize) -> bool| (0..plugins).filter(|&i| f(i)).count();
    // Plugin i has EN[i % 10], ZH[(i / 10) % 10] and CATEGORIES[i % 6].
    let api = count(|i| i % 6 == 2);
    let payment = count(|i| i % 10 == 6);
    let auth_zh = count(|i| (i / 10) % 10 == 0);
    vec![
        ("no q (featured, limit 50)", vec![], plugins),
        ("no q, sort=name", vec![("sort", "name")], plugins),
        ("no q, category=api", vec![("category", "api")], api),
        ("q=payment (trigram)", vec![("q", "payment")], payment),
        ("q=认证插件 (trigram)", vec![("q", "认证插件")], auth_zh),
        ("q=认证 (2 chars, LIKE)", vec![("q", "认证")], auth_zh),
    ]
}

/// Runs the benchmark and removes its data directory.
pub async fn run(opts: &Options) -> Result<Report, Error> {
    let dir = WorkDir::create(opts.dir.as_deref(), "hub")?;
    let server = BenchServer::start(dir.path(), |config| {
        // The benchmark seeds thousands of plugins per account.
        config.hub_rate_limits = false;
    })
    .await?;
    let result = measure(opts, server.state(), &server.url()).await;
    server.stop().await;
    result
}

fn plugin_record(i: usize) -> serde_json::Value {
    let (en, zh) = (EN[i % 10], ZH[(i / 10) % 10]);
    serde_json::json!({
        "$type": PLUGIN,
        "name": format!("{} toolkit {i}", en.to_uppercase()),
        "description": format!("A {en} plugin for PocketBase, number {i}."),
        "descriptionZh": format!("{zh}插件，第 {i} 号。"),
        "githubUrl": format!("https://github.com/bench/plugin-{i}"),
        "category": CATEGORIES[i % CATEGORIES.len()],
        "tags": [en, zh],
        "readme": format!("# {en}\n\nInstall with `go get`. {zh}"),
        "createdAt": format!("2025-{:02}-{:02}T{:02}:00:00.000Z", 1 + i % 12, 1 + i % 28, i % 24),
    })
}

async fn commit_all(state: &AppState, did: &Did, writes: Vec<Write>) -> Result<Vec<String>, Error> {
    let mut out = Vec::with_capacity(writes.len());
    let mut writes = writes.into_iter().peekable();
    while writes.peek().is_some() {
        let batch: Vec<RecordWrite> = writes.by_ref().take(MAX_WRITES).map(Into::into).collect();
        let commit = state
            .repo()
            .apply_writes(did, batch, None)
            .await
            .map_err(|e| server_error("apply_writes", e))?;
        for r in commit.results {
            let cid = r.cid.map(|c| c.to_string()).unwrap_or_default();
            out.push(format!("{}\n{cid}", r.uri));
        }
    }
    Ok(out)
}

async fn measure(opts: &Options, state: &AppState, base: &str) -> Result<Report, Error> {
    let started = Instant::now();
    let authors = opts.authors.max(1);
    let mut plugins = Vec::with_capacity(opts.plugins);
    for a in 0..authors {
        let did = seed_account(state, &format!("author{a}")).await?;
        let writes = (a..opts.plugins)
            .step_by(authors)
            .map(|i| {
                Ok(Write::Create {
                    collection: PLUGIN.parse().map_err(|e| server_error("nsid", e))?,
                    rkey: format!("plugin-{i}")
                        .parse()
                        .map_err(|e| server_error("rkey", e))?,
                    record: json_to_record(&plugin_record(i))?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        plugins.extend(commit_all(state, &did, writes).await?);
    }
    let moderator = seed_account(state, "moderator").await?;
    state
        .hub()
        .set_moderator(moderator.as_str(), true)
        .await
        .map_err(|e| server_error("set_moderator", e))?;
    let clock = TidClock::default();
    let reviews = plugins
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (uri, cid) = p.split_once('\n').unwrap_or_default();
            let review = serde_json::json!({
                "$type": REVIEW,
                "subject": {"uri": uri, "cid": cid},
                "status": "approved",
                "featured": i % 97 == 0,
                "createdAt": "2025-06-01T00:00:00.000Z",
            });
            Ok(Write::Create {
                collection: REVIEW.parse().map_err(|e| server_error("nsid", e))?,
                rkey: clock
                    .next()
                    .as_str()
                    .parse()
                    .map_err(|e| server_error("rkey", e))?,
                record: json_to_record(&review)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    commit_all(state, &moderator, reviews).await?;
    // Downloads for a spread of plugins, so the default order has something to sort.
    let now = chrono::Utc::now().timestamp();
    for (i, p) in plugins.iter().enumerate().step_by(7) {
        let uri = p.split('\n').next().unwrap_or_default();
        for ip in 0..(i % 5) {
            state
                .hub()
                .track_download(uri, &format!("10.0.0.{ip}"), now)
                .await
                .map_err(|e| server_error("track_download", e))?;
        }
    }
    let seed_elapsed = started.elapsed();

    let started = Instant::now();
    let (_, reindex_records) = state
        .hub()
        .reindex_all(state.repo())
        .await
        .map_err(|e| server_error("reindex", e))?;
    let reindex_elapsed = started.elapsed();

    let client = reqwest::Client::new();
    let mut measured = Vec::new();
    for (name, query, expected) in listings(opts.plugins) {
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/xrpc/cn.pocketbase.hub.listPlugins"),
            &query,
        )
        .map_err(|e| server_error("url", e))?;
        // Check the listing matches what the data says: page through it once.
        let mut matched = 0;
        let mut cursor: Option<String> = None;
        loop {
            let mut page_url = url.clone();
            page_url.query_pairs_mut().append_pair("limit", "100");
            if let Some(c) = &cursor {
                page_url.query_pairs_mut().append_pair("cursor", c);
            }
            let body: serde_json::Value = client
                .get(page_url)
                .send()
                .await
                .map_err(|e| server_error("listPlugins", e))?
                .json()
                .await
                .map_err(|e| server_error("listPlugins body", e))?;
            matched += body["plugins"].as_array().map_or(0, Vec::len);
            cursor = body["cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        check_eq(name, expected, matched)?;
        let mut samples = Vec::with_capacity(opts.queries);
        let started = Instant::now();
        for _ in 0..opts.queries {
            let t = Instant::now();
            let response = client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| server_error("listPlugins", e))?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| server_error("listPlugins body", e))?;
            samples.push(t.elapsed());
            if !status.is_success() {
                return Err(server_error("listPlugins", format!("{status}: {bytes:?}")));
            }
        }
        measured.push(Measured {
            name,
            matches: matched,
            latency: Latency::of(&samples),
            elapsed: started.elapsed(),
        });
    }
    Ok(Report {
        machine: super::Machine::current(),
        plugins: plugins.len(),
        seed_elapsed,
        reindex_records,
        reindex_elapsed,
        listings: measured,
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rookery bench hub: listPlugins over HTTP/1.1 keep-alive on 127.0.0.1, one client"
        )?;
        writeln!(f, "machine: {}", self.machine)?;
        writeln!(
            f,
            "marketplace: {} plugins (seeded in {:.1}s); reindex of {} records in {:.2}s ({:.0} records/s)",
            self.plugins,
            self.seed_elapsed.as_secs_f64(),
            self.reindex_records,
            self.reindex_elapsed.as_secs_f64(),
            per_second(self.reindex_records as u64, self.reindex_elapsed)
        )?;
        writeln!(
            f,
            "    {:<28} {:>7} {:>6} {:>8} {:>10} {:>10} {:>10}",
            "listPlugins (first page)", "matches", "n", "per s", "median", "p99", "max"
        )?;
        for m in &self.listings {
            writeln!(
                f,
                "    {:<28} {:>7} {:>6} {:>8.0} {:>8}µs {:>8}µs {:>8}µs",
                m.name,
                m.matches,
                m.latency.count,
                per_second(m.latency.count as u64, m.elapsed),
                m.latency.median.as_micros(),
                m.latency.p99.as_micros(),
                m.latency.max.as_micros()
            )?;
        }
        Ok(())
    }
}

// Small runs of the whole benchmark, checking its counts: `cargo test --features bench-tests`.
#[cfg(all(test, feature = "bench-tests"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_marketplace() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            plugins: 60,
            authors: 3,
            queries: 3,
            dir: Some(dir.path().to_path_buf()),
        };
        let report = run(&opts).await.unwrap();
        assert_eq!(report.plugins, 60);
        // 60 plugins + 60 reviews.
        assert_eq!(report.reindex_records, 120);
        let matches: Vec<usize> = report.listings.iter().map(|m| m.matches).collect();
        assert_eq!(matches, [60, 60, 10, 6, 10, 10]);
        assert!(report.listings.iter().all(|m| m.latency.count == 3));
        let text = report.to_string();
        assert!(text.contains("q=认证 (2 chars, LIKE)"), "{text}");
    }
}
