//! `rookery bench import`: `importRepo`'s service ([`ActorRepo::import_repo`]) on a signed
//! repository of N records written as a CAR file: MB/s of CAR and the process's peak memory
//! during the import (Linux `VmHWM`, reset before the import through `/proc/self/clear_refs`).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::Error;
use crate::actor::{ActorRepo, ActorStores};
use crate::crypto::{Algorithm, Keypair};
use crate::repo::blockstore::MemoryBlockStore;
use crate::repo::car::{self, Limits};
use crate::repo::cbor::Ipld;
use crate::repo::repository::{Repo, Write};
use crate::sequencer::Sequencer;
use crate::syntax::Did;

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records in the repository.
    pub records: usize,
    /// Parent of the working directory; default: the system temp directory.
    pub dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            records: 100_000,
            dir: None,
        }
    }
}

/// The figures.
#[derive(Debug, Clone)]
pub struct Report {
    pub records: u64,
    pub blocks: u64,
    pub car_bytes: u64,
    pub seconds: f64,
    /// Peak resident memory during the import, in KiB (`None` off Linux).
    pub peak_rss_kib: Option<u64>,
    /// Resident memory just before the import, in KiB.
    pub start_rss_kib: Option<u64>,
}

impl Report {
    pub fn mb_per_second(&self) -> f64 {
        self.car_bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "importRepo ({} records, {} blocks)",
            self.records, self.blocks
        )?;
        writeln!(
            f,
            "  CAR            {:>10.1} MB",
            self.car_bytes as f64 / 1e6
        )?;
        writeln!(f, "  time           {:>10.2} s", self.seconds)?;
        writeln!(f, "  throughput     {:>10.1} MB/s", self.mb_per_second())?;
        writeln!(
            f,
            "  records/s      {:>10.0}",
            self.records as f64 / self.seconds.max(1e-9)
        )?;
        match (self.start_rss_kib, self.peak_rss_kib) {
            (Some(start), Some(peak)) => writeln!(
                f,
                "  peak RSS       {:>10.1} MiB (before the import {:.1} MiB)",
                peak as f64 / 1024.0,
                start as f64 / 1024.0
            ),
            _ => writeln!(f, "  peak RSS       unavailable on this system"),
        }
    }
}

/// A `VmHWM` / `VmRSS` line of `/proc/self/status`, in KiB.
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn post(i: usize) -> Ipld {
    Ipld::Map(
        [
            (
                "$type".to_owned(),
                Ipld::String("app.bsky.feed.post".into()),
            ),
            (
                "text".to_owned(),
                Ipld::String(format!("benchmark post number {i}, with some text")),
            ),
            (
                "createdAt".to_owned(),
                Ipld::String("2024-01-02T03:04:05.678Z".into()),
            ),
        ]
        .into_iter()
        .collect(),
    )
}

/// Builds the repository, writes it as a CAR, imports it, and reports.
pub async fn run(opts: &Options) -> Result<Report, Error> {
    let dir = super::harness::WorkDir::create(opts.dir.as_deref(), "import")?;
    let did: Did = "did:plc:benchimportaaaaaaaaaaaaa".parse()?;
    let key = Keypair::generate(Algorithm::K256);
    let car_path = dir.path().join("repo.car");
    {
        let writes: Vec<Write> = (0..opts.records)
            .map(|i| {
                Ok(Write::Create {
                    collection: "app.bsky.feed.post".parse()?,
                    rkey: format!("3kbench{i:06}").parse()?,
                    record: post(i),
                })
            })
            .collect::<Result<_, crate::syntax::Error>>()?;
        let prepared = Repo::format_init(
            MemoryBlockStore::new(),
            did.as_str(),
            &key,
            "3kbenchimport".to_owned(),
            &writes,
        )
        .await?;
        let file = tokio::fs::File::create(&car_path).await?;
        let mut writer = car::CarWriter::new(tokio::io::BufWriter::new(file), prepared.data.cid);
        for (cid, bytes) in &prepared.data.new_blocks {
            writer.write_block(cid, bytes).await?;
        }
        use tokio::io::AsyncWriteExt;
        writer.finish().await?.flush().await?;
    }

    let stores = ActorStores::new(dir.path(), 16);
    let sequencer = Sequencer::open_in(dir.path())
        .await
        .map_err(|e| Error::Server(e.to_string()))?;
    let blobs = Arc::new(crate::blobs::DiskBlobStore::new(
        dir.path().join("blocks"),
        dir.path().join("tmp"),
    ));
    let repo = ActorRepo::new(stores, sequencer, blobs);
    repo.create_repo(&did, &Keypair::generate(Algorithm::K256), None)
        .await
        .map_err(|e| Error::Server(e.to_string()))?;

    // Peak memory from here on only.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let start_rss_kib = proc_status_kib("VmRSS:");
    let started = Instant::now();
    let report = repo
        .import_repo(
            &did,
            &car_path,
            &[key.public_key()],
            &dir.path().join("staging"),
            Limits::default(),
        )
        .await
        .map_err(|e| Error::Server(e.to_string()))?;
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss_kib = proc_status_kib("VmHWM:");
    if report.records != opts.records as u64 {
        return Err(Error::Mismatch {
            what: "records imported",
            expected: opts.records.to_string(),
            found: report.records.to_string(),
        });
    }
    Ok(Report {
        records: report.records,
        blocks: report.blocks,
        car_bytes: report.car_bytes,
        seconds,
        peak_rss_kib,
        start_rss_kib,
    })
}

#[cfg(all(test, feature = "bench-tests"))]
mod tests {
    #[tokio::test]
    async fn small_import_run_counts() {
        let report = super::run(&super::Options {
            records: 500,
            dir: None,
        })
        .await
        .unwrap();
        assert_eq!(report.records, 500);
        assert!(report.car_bytes > 0 && report.blocks > 500);
    }
}
