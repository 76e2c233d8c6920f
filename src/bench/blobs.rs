//! `rookery bench blobs`: `uploadBlob` and `getBlob` throughput over real HTTP on 127.0.0.1,
//! for 1 MiB and 50 MiB blobs, on the disk blob store and (when one is configured) on S3.
//!
//! For each store a server is started in-process on a fresh data directory and port 0, and an
//! account is seeded through the library. Each blob size is uploaded `n` times (distinct
//! bytes, so every upload is a new blob), one record referencing them all makes them
//! permanent, and each is then read back whole with `getBlob`, the body consumed chunk by
//! chunk as it arrives. The figures include HTTP, hashing, sniffing and the store's I/O.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use super::harness::{BenchServer, WorkDir, bearer, seed_account, server_error};
use super::{Error, Latency};
use crate::AppState;
use crate::blobs::S3BlobStore;
use crate::config::{BlobstoreConfig, Config, S3Config};

const MIB: usize = 1024 * 1024;
/// The blob sizes measured.
pub(crate) const SIZES: [usize; 2] = [MIB, 50 * MIB];
/// The collection of the record that references the blobs (no lexicon: not validated).
const COLLECTION: &str = "dev.rookery.bench.blobs";

#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Bytes moved per size and direction, in MiB: a size is uploaded (and read)
    /// `max(3, volume / size)` times.
    pub volume_mib: usize,
    /// Also measure this S3 bucket (created if missing).
    pub s3: Option<S3Config>,
    /// Parent of the working directory; default: the system temp directory.
    pub dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            volume_mib: 256,
            s3: None,
            dir: None,
        }
    }
}

/// One store and blob size.
#[derive(Debug)]
pub(crate) struct Row {
    pub store: &'static str,
    pub size: usize,
    pub upload: Latency,
    pub upload_elapsed: Duration,
    pub get: Latency,
    pub get_elapsed: Duration,
}

#[derive(Debug)]
pub(crate) struct Report {
    pub machine: super::Machine,
    pub rows: Vec<Row>,
}

/// Runs the benchmark (disk, then S3 if configured) and removes its data directories.
pub(crate) async fn run(opts: &Options) -> Result<Report, Error> {
    let mut rows = Vec::new();
    let mut stores: Vec<(&'static str, Option<&S3Config>)> = vec![("disk", None)];
    if let Some(s3) = &opts.s3 {
        stores.push(("s3", Some(s3)));
    }
    for (name, s3) in stores {
        let dir = WorkDir::create(opts.dir.as_deref(), &format!("blobs-{name}"))?;
        rows.extend(run_in(opts, name, s3, dir.path()).await?);
    }
    Ok(Report {
        machine: super::Machine::current(),
        rows,
    })
}

async fn run_in(
    opts: &Options,
    name: &'static str,
    s3: Option<&S3Config>,
    dir: &Path,
) -> Result<Vec<Row>, Error> {
    let blobstore = match s3 {
        Some(s3) => {
            // An existing bucket (of ours) is fine; a real failure shows in the uploads.
            let store = S3BlobStore::new(s3).await;
            let _ = store.client().create_bucket(&s3.bucket).await;
            BlobstoreConfig::S3(s3.clone())
        }
        None => BlobstoreConfig::Disk {
            location: dir.join("blocks"),
            tmp_location: dir.join("tmp"),
        },
    };
    let server = BenchServer::start(dir, |config| config.blobstore = blobstore).await?;
    let result = measure(opts, name, server.state(), &server.url()).await;
    server.stop().await;
    result
}

/// Seeds an account through the library; returns its DID and a bearer header value.
async fn seed(state: &AppState) -> Result<(String, String), Error> {
    let did = seed_account(state, "blobs").await?;
    let auth = bearer(state, &did).await?;
    Ok((did.to_string(), auth))
}

/// `size` bytes of noise, distinct for each `round`.
fn blob_bytes(size: usize, round: usize) -> Bytes {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (round as u64).wrapping_mul(0xA076_1D64_78BD_642F);
    let mut bytes = Vec::with_capacity(size + 8);
    while bytes.len() < size {
        // xorshift64: cheap, and incompressible enough for a store that might compress.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    Bytes::from(bytes)
}

async fn measure(
    opts: &Options,
    store: &'static str,
    state: &AppState,
    base: &str,
) -> Result<Vec<Row>, Error> {
    let (did, auth) = seed(state).await?;
    let client = reqwest::Client::new();
    let mut rows = Vec::new();
    for size in SIZES {
        let rounds = (opts.volume_mib * MIB / size).max(3);
        let mut refs = Vec::with_capacity(rounds);
        let mut samples = Vec::with_capacity(rounds);
        let mut upload_elapsed = Duration::ZERO;
        for round in 0..rounds {
            let body = blob_bytes(size, round);
            let t = Instant::now();
            let response = client
                .post(format!("{base}/xrpc/com.atproto.repo.uploadBlob"))
                .header("authorization", &auth)
                .header("content-type", "application/octet-stream")
                .body(body)
                .send()
                .await
                .map_err(|e| server_error("uploadBlob", e))?;
            let status = response.status();
            let out: Value = response
                .json()
                .await
                .map_err(|e| server_error("uploadBlob body", e))?;
            let took = t.elapsed();
            upload_elapsed += took;
            samples.push(took);
            if !status.is_success() {
                return Err(server_error("uploadBlob", format!("{status}: {out}")));
            }
            refs.push(out["blob"].clone());
        }
        let upload = Latency::of(&samples);

        // One record makes them all permanent.
        let response = client
            .post(format!("{base}/xrpc/com.atproto.repo.createRecord"))
            .header("authorization", &auth)
            .json(&json!({
                "repo": did,
                "collection": COLLECTION,
                "record": {"$type": COLLECTION, "blobs": refs},
            }))
            .send()
            .await
            .map_err(|e| server_error("createRecord", e))?;
        let status = response.status();
        let out: Value = response
            .json()
            .await
            .map_err(|e| server_error("createRecord body", e))?;
        if !status.is_success() {
            return Err(server_error("createRecord", format!("{status}: {out}")));
        }
        let uri = out["uri"].as_str().unwrap_or_default().to_owned();

        let mut samples = Vec::with_capacity(rounds);
        let mut get_elapsed = Duration::ZERO;
        for blob in &refs {
            let cid = blob["ref"]["$link"].as_str().unwrap_or_default();
            let t = Instant::now();
            let mut response = client
                .get(format!(
                    "{base}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"
                ))
                .send()
                .await
                .map_err(|e| server_error("getBlob", e))?;
            let status = response.status();
            let mut received = 0usize;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| server_error("getBlob body", e))?
            {
                received += chunk.len();
            }
            let took = t.elapsed();
            get_elapsed += took;
            samples.push(took);
            if !status.is_success() || received != size {
                return Err(server_error(
                    "getBlob",
                    format!("{status}: {received} of {size} bytes"),
                ));
            }
        }
        rows.push(Row {
            store,
            size,
            upload,
            upload_elapsed,
            get: Latency::of(&samples),
            get_elapsed,
        });

        // Deleting the record deletes the blobs (not measured).
        let rkey = uri.rsplit('/').next().unwrap_or_default();
        client
            .post(format!("{base}/xrpc/com.atproto.repo.deleteRecord"))
            .header("authorization", &auth)
            .json(&json!({"repo": did, "collection": COLLECTION, "rkey": rkey}))
            .send()
            .await
            .map_err(|e| server_error("deleteRecord", e))?;
    }
    Ok(rows)
}

/// `rookery bench blobs` on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct CliArgs {
    /// MiB moved per blob size and direction (each size at least 3 times).
    #[arg(long, default_value_t = 256)]
    pub volume_mib: usize,
    /// Skip S3 even when `PDS_BLOBSTORE_S3_BUCKET` (with its `PDS_BLOBSTORE_S3_*` settings)
    /// names a bucket.
    #[arg(long)]
    pub disk_only: bool,
}

/// Runs the benchmark for the command line: disk, and the S3 bucket the environment (or
/// `rookery.toml`) configures, if any. Prints the table.
pub fn cli(args: &CliArgs) -> Result<(), Error> {
    let config = Config::load(None).map_err(|e| server_error("configuration", e))?;
    let s3 = match config.blobstore {
        BlobstoreConfig::S3(s3) if !args.disk_only => Some(s3),
        _ => None,
    };
    let opts = Options {
        volume_mib: args.volume_mib,
        s3,
        dir: None,
    };
    let report = tokio::runtime::Runtime::new()?.block_on(run(&opts))?;
    print!("{report}");
    Ok(())
}

fn mib_per_second(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / MIB as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rookery bench blobs: uploadBlob / getBlob over HTTP/1.1 on 127.0.0.1, one client, sequential"
        )?;
        writeln!(f, "machine: {}", self.machine)?;
        writeln!(
            f,
            "    {:<6} {:>8} {:>5} {:>12} {:>12} {:>12} {:>12}",
            "store", "size", "n", "upload MiB/s", "median ms", "get MiB/s", "median ms"
        )?;
        for row in &self.rows {
            let n = row.upload.count;
            writeln!(
                f,
                "    {:<6} {:>5}MiB {:>5} {:>12.1} {:>12.1} {:>12.1} {:>12.1}",
                row.store,
                row.size / MIB,
                n,
                mib_per_second(row.size * n, row.upload_elapsed),
                row.upload.median.as_secs_f64() * 1000.0,
                mib_per_second(row.size * row.get.count, row.get_elapsed),
                row.get.median.as_secs_f64() * 1000.0,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_bytes_are_distinct_and_sized() {
        let a = blob_bytes(1001, 0);
        assert_eq!(a.len(), 1001);
        assert_eq!(a, blob_bytes(1001, 0));
        assert_ne!(a, blob_bytes(1001, 1));
    }
}
