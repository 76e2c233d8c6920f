//! A `rookery serve` child process over a prepared data directory, for benchmarks that must
//! measure the server alone (its CPU and its memory, apart from the load generator's).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::Error;
use super::harness::server_error;

/// How long the server may take to announce its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The running child; killed (and reaped) on drop.
pub(crate) struct SpawnedServer {
    child: Child,
    url: String,
}

impl SpawnedServer {
    /// Runs `{binary} serve --port 0` on 127.0.0.1 with `PDS_DATA_DIRECTORY={data}` (rate
    /// limits off, logging off) plus `env`, and waits for its `rookery listening on` line.
    pub(crate) fn start(
        binary: &Path,
        data: &Path,
        env: &[(&str, String)],
    ) -> Result<SpawnedServer, Error> {
        let mut command = Command::new(binary);
        command
            .args(["serve", "--port", "0"])
            .env("PDS_DATA_DIRECTORY", data)
            .env("ROOKERY_BIND_ADDRESS", "127.0.0.1")
            .env("PDS_RATE_LIMITS_ENABLED", "false")
            .env("RUST_LOG", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .spawn()
            .map_err(|e| server_error(&format!("run {}", binary.display()), e))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            // Forward lines until the address is announced, then drain the pipe.
            let mut announced = false;
            while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                if !announced {
                    announced = line.starts_with("rookery listening on ");
                    let _ = tx.send(line.clone());
                }
                line.clear();
            }
        });
        let mut server = SpawnedServer {
            child,
            url: String::new(),
        };
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx
                .recv_timeout(left)
                .map_err(|e| server_error("rookery serve did not announce its address", e))?;
            // "rookery listening on 127.0.0.1:PORT (http://localhost:PORT)"
            if let Some(rest) = line.trim().strip_prefix("rookery listening on ") {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                server.url = format!("http://{addr}");
                return Ok(server);
            }
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`, then reaps the process.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Memory of a process from `/proc/{pid}/status`, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// `VmHWM`: the peak resident set since start or the last [`reset_peak`].
    pub peak_kib: u64,
    /// `VmRSS`: the resident set now.
    pub rss_kib: u64,
}

impl Memory {
    pub(crate) fn of(pid: u32) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Some(Self::parse(&status))
    }

    fn parse(status: &str) -> Memory {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Memory {
            peak_kib: field("VmHWM:"),
            rss_kib: field("VmRSS:"),
        }
    }
}

/// Resets the peak resident set (`VmHWM`) of `pid` to its current size; false when the kernel
/// refuses (then the peak runs from the process start).
pub(crate) fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The 1-minute load average of the machine (`/proc/loadavg`), when readable.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_from_proc_status() {
        let status = "Name:\trookery\nVmPeak:\t 999 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(
            Memory::parse(status),
            Memory {
                peak_kib: 20480,
                rss_kib: 10240
            }
        );
        let me = Memory::of(std::process::id()).unwrap();
        assert!(me.peak_kib >= me.rss_kib && me.rss_kib > 0, "{me:?}");
        assert!(load_average().is_some());
    }
}
