//! `rookery bench replication`: what continuous replication costs, against the bucket named
//! by `ROOKERY_REPLICA_S3_*` — write throughput without and with it, bytes uploaded per
//! 1,000 writes, and the time to restore a data directory of many accounts.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Error;
use super::harness::{BenchServer, Serve, WorkDir, seed_account, server_error};
use crate::config::ReplicaConfig;
use crate::repo::cbor::Ipld;
use crate::repo::repository::Write;
use crate::syntax::Did;

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Accounts the writes are spread over.
    pub writers: usize,
    /// Sequential single-record writes measured in each mode.
    pub writes: usize,
    /// Accounts in the restored data directory.
    pub restore_accounts: usize,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub plain_writes_per_sec: f64,
    pub replicated_writes_per_sec: f64,
    pub bytes_per_1000_writes: f64,
    pub segments_per_1000_writes: f64,
    pub restore_accounts: usize,
    pub restore: Duration,
    pub restored_bytes: u64,
}

fn post(i: usize) -> Result<Write, Error> {
    Ok(Write::Create {
        collection: "app.bsky.feed.post"
            .parse()
            .map_err(|e| server_error("nsid", e))?,
        rkey: format!("3l{i:011}")
            .parse()
            .map_err(|e| server_error("rkey", e))?,
        record: Ipld::Map(BTreeMap::from([
            ("$type".into(), Ipld::String("app.bsky.feed.post".into())),
            ("text".into(), Ipld::String(format!("post number {i}"))),
            (
                "createdAt".into(),
                Ipld::String("2026-12-02T00:00:00.000Z".into()),
            ),
        ])),
    })
}

async fn writes_per_sec(server: &BenchServer, dids: &[Did], writes: usize) -> Result<f64, Error> {
    let begin = Instant::now();
    for i in 0..writes {
        let did = &dids[i % dids.len()];
        server
            .state()
            .repo()
            .apply_writes(did, vec![post(i)?.into()], None)
            .await
            .map_err(|e| server_error("write", e))?;
    }
    Ok(writes as f64 / begin.elapsed().as_secs_f64())
}

async fn start(
    dir: &std::path::Path,
    replica: Option<ReplicaConfig>,
) -> Result<BenchServer, Error> {
    let serve = Serve {
        background_tasks: true,
        ..Serve::default()
    };
    BenchServer::start_with(dir, serve, |config| config.replica = replica).await
}

/// Runs the three measurements; every object is written under a prefix of its own.
pub async fn run(replica: &ReplicaConfig, opts: &Options) -> Result<Report, Error> {
    let prefix = format!(
        "{}bench-{}-{}/",
        replica.prefix,
        std::process::id(),
        crate::replica::now_ms()
    );
    let replica = ReplicaConfig {
        prefix,
        ..replica.clone()
    };
    let sync = |server: &BenchServer| {
        let replicator = server.state().replica().cloned();
        async move {
            match replicator {
                Some(r) if r.sync(Duration::from_secs(300)).await => Ok(()),
                Some(_) => Err(server_error("replica", "not in sync after 300 s")),
                None => Ok(()),
            }
        }
    };

    // 1. Without replication.
    let dir = WorkDir::create(None, "replication-plain")?;
    let server = start(dir.path(), None).await?;
    let mut dids = Vec::new();
    for i in 0..opts.writers {
        dids.push(seed_account(server.state(), &format!("plain{i}")).await?);
    }
    let plain = writes_per_sec(&server, &dids, opts.writes).await?;
    server.stop().await;
    drop(dir);

    // 2. With replication: throughput, then what reaching the bucket cost.
    let dir = WorkDir::create(None, "replication-on")?;
    let mut on = replica.clone();
    on.prefix = format!("{}writes/", replica.prefix);
    let server = start(dir.path(), Some(on)).await?;
    let mut dids = Vec::new();
    for i in 0..opts.writers {
        dids.push(seed_account(server.state(), &format!("repl{i}")).await?);
    }
    sync(&server).await?;
    let stats = server
        .state()
        .replica()
        .ok_or_else(|| server_error("replica", "off"))?
        .stats();
    let (bytes0, segs0) = (
        stats.uploaded_bytes.load(Ordering::Relaxed),
        stats.segments.load(Ordering::Relaxed),
    );
    let replicated = writes_per_sec(&server, &dids, opts.writes).await?;
    sync(&server).await?;
    let stats = server
        .state()
        .replica()
        .map(|r| r.stats())
        .ok_or_else(|| server_error("replica", "off"))?;
    let per_1000 = 1000.0 / opts.writes as f64;
    let bytes = (stats.uploaded_bytes.load(Ordering::Relaxed) - bytes0) as f64 * per_1000;
    let segments = (stats.segments.load(Ordering::Relaxed) - segs0) as f64 * per_1000;
    server.stop().await;
    drop(dir);

    // 3. Restore time of a directory with many accounts.
    let dir = WorkDir::create(None, "replication-source")?;
    let mut source = replica.clone();
    source.prefix = format!("{}restore/", replica.prefix);
    let server = start(dir.path(), Some(source.clone())).await?;
    for i in 0..opts.restore_accounts {
        seed_account(server.state(), &format!("r{i}")).await?;
    }
    sync(&server).await?;
    server.stop().await;
    let target = WorkDir::create(None, "replication-restore")?;
    let data = target.path().join("data");
    let bucket = crate::replica::Bucket::new(&source).await;
    let begin = Instant::now();
    let restored = crate::replica::restore(&data, &bucket, None)
        .await
        .map_err(|e| server_error("restore", e))?;
    let restore = begin.elapsed();
    Ok(Report {
        plain_writes_per_sec: plain,
        replicated_writes_per_sec: replicated,
        bytes_per_1000_writes: bytes,
        segments_per_1000_writes: segments,
        restore_accounts: restored.verified_repos,
        restore,
        restored_bytes: restored.bytes,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "replication benchmark (sequential single-record writes)")?;
        writeln!(
            f,
            "  writes/s without replication   {:>10.1}",
            self.plain_writes_per_sec
        )?;
        writeln!(
            f,
            "  writes/s with replication      {:>10.1}",
            self.replicated_writes_per_sec
        )?;
        writeln!(
            f,
            "  bytes uploaded per 1,000 writes {:>9.0}",
            self.bytes_per_1000_writes
        )?;
        writeln!(
            f,
            "  segments per 1,000 writes      {:>10.1}",
            self.segments_per_1000_writes
        )?;
        write!(
            f,
            "  restore of {} accounts           {:>9.2} s ({} bytes downloaded)",
            self.restore_accounts,
            self.restore.as_secs_f64(),
            self.restored_bytes
        )
    }
}
