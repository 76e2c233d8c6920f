//! Benchmarks that print numbers for this machine (`rookery bench …`).
//!
//! Each benchmark is a library function returning a report whose `Display` is the printed
//! table, so the command line stays thin and a unit test can run a small instance of it.
//! [`repo`] measures the repository engine on the SQLite actor store, [`server`] XRPC writes
//! and reads over HTTP, [`load`] a spawned server under concurrent load, [`sync`] the sync endpoints (getRepo, getBlocks) over HTTP.

pub mod blobs;
pub mod firehose;
mod harness;
mod http1;
pub mod hub;
pub mod import;
pub mod load;
pub mod replication;
pub mod repo;
pub mod server;
mod spawned;
pub mod sync;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use cid::Cid;
use tokio::io::AsyncWrite;

use crate::repo::{blockstore, car, cbor, commit, mst, repository, verify};
use crate::{store, syntax};

/// Why a benchmark could not run, or found the engine misbehaving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("benchmark directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Repo(#[from] repository::Error),
    #[error(transparent)]
    Mst(#[from] mst::Error),
    #[error(transparent)]
    Car(#[from] car::Error),
    /// Boxed: a verification error is large and rare.
    #[error(transparent)]
    Verify(Box<verify::Error>),
    #[error(transparent)]
    Blocks(#[from] blockstore::Error),
    /// The server under measurement failed or answered an error.
    #[error("server: {0}")]
    Server(String),
    #[error(transparent)]
    Cbor(#[from] cbor::Error),
    #[error(transparent)]
    Commit(#[from] commit::Error),
    #[error(transparent)]
    Syntax(#[from] syntax::Error),
    #[error("the store has no repository head")]
    NoHead,
    #[error("block {0} is missing from the store")]
    MissingBlock(Cid),
    /// A correctness check of the benchmark failed: the engine produced something wrong.
    #[error("check failed: {what}: expected {expected}, found {found}")]
    Mismatch {
        what: &'static str,
        expected: String,
        found: String,
    },
}

impl From<verify::Error> for Error {
    fn from(e: verify::Error) -> Self {
        Error::Verify(Box::new(e))
    }
}

impl Error {
    fn mismatch(what: &'static str, expected: impl fmt::Display, found: impl fmt::Display) -> Self {
        Error::Mismatch {
            what,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}

/// Fails with [`Error::Mismatch`] unless `expected == found`.
fn check_eq<T: PartialEq + fmt::Display>(
    what: &'static str,
    expected: T,
    found: T,
) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::mismatch(what, expected, found))
    }
}

/// What the numbers were measured on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// `std::thread::available_parallelism` (0 when unknown).
    pub cores: usize,
    /// `"release"` or `"debug"` (whether debug assertions are compiled in).
    pub profile: &'static str,
    pub os: &'static str,
    pub arch: &'static str,
}

impl Machine {
    pub fn current() -> Self {
        Machine {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cores, {} build, {}/{}",
            self.cores, self.profile, self.os, self.arch
        )
    }
}

/// Order statistics of a series of timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    pub count: usize,
    pub median: Duration,
    /// Nearest-rank 99th percentile.
    pub p99: Duration,
    pub max: Duration,
    pub total: Duration,
}

impl Latency {
    pub fn of(samples: &[Duration]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let at = |rank: usize| sorted.get(rank).copied().unwrap_or_default();
        Latency {
            count: n,
            median: at(n / 2),
            // Nearest rank: the smallest sample with at least 99% of samples at or below it.
            p99: at((n * 99).div_ceil(100).saturating_sub(1)),
            max: sorted.last().copied().unwrap_or_default(),
            total: sorted.iter().sum(),
        }
    }

    pub fn mean(&self) -> Duration {
        match u32::try_from(self.count) {
            Ok(n) if n > 0 => self.total / n,
            _ => Duration::ZERO,
        }
    }
}

/// Items per second; 0 for an empty interval.
pub(crate) fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// Megabytes (10⁶ bytes) per second.
pub(crate) fn mb_per_second(bytes: u64, elapsed: Duration) -> f64 {
    per_second(bytes, elapsed) / 1e6
}

/// `1234567.8` → `"1,234,568"`.
pub(crate) fn grouped(value: f64) -> String {
    let rounded = value.round();
    if !rounded.is_finite() || rounded.abs() >= 1e18 {
        return format!("{value:.0}");
    }
    let digits = (rounded.abs() as u64).to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if rounded < 0.0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in the unit that suits it: `"1.234 s"`, `"12.3 ms"`, `"456 µs"`.
pub(crate) fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.3} s")
    } else if secs >= 0.01 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{:.0} µs", secs * 1e6)
    }
}

/// Microseconds, for latency columns.
pub(crate) fn micros(d: Duration) -> String {
    grouped(d.as_secs_f64() * 1e6)
}

/// An [`AsyncWrite`] that counts the bytes its inner writer accepted.
#[derive(Debug)]
pub(crate) struct CountingWriter<W> {
    inner: W,
    bytes: u64,
}

impl<W> CountingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        CountingWriter { inner, bytes: 0 }
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for CountingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            this.bytes += *n as u64;
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn latency_order_statistics() {
        let samples: Vec<Duration> = (1..=200).rev().map(Duration::from_micros).collect();
        let l = Latency::of(&samples);
        assert_eq!(l.count, 200);
        assert_eq!(l.median, Duration::from_micros(101));
        assert_eq!(l.p99, Duration::from_micros(198));
        assert_eq!(l.max, Duration::from_micros(200));
        assert_eq!(l.total, Duration::from_micros(20_100));
        assert_eq!(l.mean(), Duration::from_nanos(100_500));
        let one = Latency::of(&[Duration::from_micros(7)]);
        assert_eq!(
            (one.median, one.p99, one.max),
            (
                Duration::from_micros(7),
                Duration::from_micros(7),
                Duration::from_micros(7)
            )
        );
        assert_eq!(Latency::of(&[]), Latency::default());
    }

    #[test]
    fn number_formatting() {
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(999.4), "999");
        assert_eq!(grouped(1234567.8), "1,234,568");
        assert_eq!(grouped(-1000.0), "-1,000");
        assert_eq!(human(Duration::from_millis(1500)), "1.500 s");
        assert_eq!(human(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(human(Duration::from_micros(456)), "456 µs");
        assert_eq!(mb_per_second(5_000_000, Duration::from_secs(2)), 2.5);
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
    }

    #[tokio::test]
    async fn counting_writer_counts() {
        let mut w = CountingWriter::new(Vec::new());
        w.write_all(b"hello ").await.unwrap();
        w.write_all(b"world").await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(w.bytes(), 11);
        assert_eq!(w.into_inner(), b"hello world");
    }
}
