//! Request counters by XRPC method (NSID) and status, and latency histograms by method.
//!
//! The hot path takes a read lock on the method table and does a few relaxed atomic adds;
//! the write lock is taken once per method name ever seen. Label sets stay bounded: at most
//! [`MAX_METHODS`] method names (later ones count as `_other`) and [`STATUS_SLOTS`]
//! statuses per method (later ones count as `other`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::exposition::{Exposition, Histogram, HistogramSnapshot, Kind};

/// Most distinct method labels.
pub const MAX_METHODS: usize = 1000;
/// Most distinct statuses counted per method.
pub const STATUS_SLOTS: usize = 16;
/// The label of requests that are not a (valid, answered) XRPC method call.
pub const OTHER: &str = "_other";

/// Counters of one method.
#[derive(Debug, Default)]
struct MethodStats {
    /// `(status, count)`; a slot is claimed by storing its status (0 = free).
    statuses: [(AtomicU16, AtomicU64); STATUS_SLOTS],
    /// Requests whose status found no free slot.
    other_statuses: AtomicU64,
    latency: Histogram,
}

impl MethodStats {
    fn count_status(&self, status: u16) {
        for (slot, count) in &self.statuses {
            let mut current = slot.load(Ordering::Acquire);
            if current == 0 {
                current =
                    match slot.compare_exchange(0, status, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => status,
                        Err(actual) => actual,
                    };
            }
            if current == status {
                count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.other_statuses.fetch_add(1, Ordering::Relaxed);
    }
}

/// HTTP request metrics. Shared (`Arc`) by the middleware and the `/metrics` route.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    methods: RwLock<HashMap<Box<str>, Arc<MethodStats>>>,
    in_flight: AtomicU64,
}

impl HttpMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a request to `method` answered with `status` after `elapsed`.
    pub fn observe(&self, method: &str, status: u16, elapsed: Duration) {
        let stats = self.stats(method);
        stats.count_status(status);
        stats.latency.observe(elapsed);
    }

    /// A request started; the guard marks it finished when dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn stats(&self, method: &str) -> Arc<MethodStats> {
        let read = self.methods.read().unwrap_or_else(|p| p.into_inner());
        if let Some(stats) = read.get(method) {
            return stats.clone();
        }
        let full = read.len() >= MAX_METHODS;
        drop(read);
        let key = if full { OTHER } else { method };
        let mut write = self.methods.write().unwrap_or_else(|p| p.into_inner());
        write.entry(key.into()).or_default().clone()
    }

    /// The methods that answered with a 5xx status, with how many times, most first (the
    /// operator dashboard's "recent errors").
    pub fn server_errors(&self) -> Vec<(String, u64)> {
        let read = self.methods.read().unwrap_or_else(|p| p.into_inner());
        let mut errors: Vec<(String, u64)> = read
            .iter()
            .filter_map(|(method, stats)| {
                let n: u64 = stats
                    .statuses
                    .iter()
                    .filter(|(slot, _)| slot.load(Ordering::Acquire) >= 500)
                    .map(|(_, n)| n.load(Ordering::Relaxed))
                    .sum();
                (n > 0).then(|| (method.to_string(), n))
            })
            .collect();
        errors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        errors
    }

    /// Requests answered so far for `method` with `status` (for tests and the bench).
    pub fn count(&self, method: &str, status: u16) -> u64 {
        let read = self.methods.read().unwrap_or_else(|p| p.into_inner());
        read.get(method).map_or(0, |stats| {
            stats
                .statuses
                .iter()
                .filter(|(slot, _)| slot.load(Ordering::Acquire) == status)
                .map(|(_, n)| n.load(Ordering::Relaxed))
                .sum()
        })
    }

    /// Writes `rookery_http_requests_total`, `rookery_http_request_duration_seconds` and
    /// `rookery_http_requests_in_flight`.
    pub fn write(&self, exp: &mut Exposition) {
        let mut methods: Vec<(String, Arc<MethodStats>)> = {
            let read = self.methods.read().unwrap_or_else(|p| p.into_inner());
            read.iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        methods.sort_by(|a, b| a.0.cmp(&b.0));

        const REQUESTS: &str = "rookery_http_requests_total";
        exp.family(
            REQUESTS,
            Kind::Counter,
            "HTTP requests answered, by XRPC method (nsid) and status.",
        );
        for (method, stats) in &methods {
            let mut rows: Vec<(u16, u64)> = stats
                .statuses
                .iter()
                .map(|(s, n)| (s.load(Ordering::Acquire), n.load(Ordering::Relaxed)))
                .filter(|&(s, _)| s != 0)
                .collect();
            rows.sort_unstable();
            for (status, n) in rows {
                exp.sample(
                    REQUESTS,
                    &[("nsid", method), ("status", &status.to_string())],
                    n,
                );
            }
            let other = stats.other_statuses.load(Ordering::Relaxed);
            if other > 0 {
                exp.sample(REQUESTS, &[("nsid", method), ("status", "other")], other);
            }
        }

        const LATENCY: &str = "rookery_http_request_duration_seconds";
        exp.family(
            LATENCY,
            Kind::Histogram,
            "Time from receiving a request to its response head, by XRPC method (nsid).",
        );
        for (method, stats) in &methods {
            let snapshot: HistogramSnapshot = stats.latency.snapshot();
            snapshot.write(exp, LATENCY, &[("nsid", method)]);
        }
        exp.single(
            "rookery_http_requests_in_flight",
            Kind::Gauge,
            "Requests being handled now.",
            self.in_flight.load(Ordering::Relaxed),
        );
    }
}

/// One request being handled; see [`HttpMetrics::start`].
#[derive(Debug)]
pub struct InFlight(Arc<HttpMetrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_method_and_status_with_bounded_labels() {
        let m = HttpMetrics::new();
        for _ in 0..3 {
            m.observe(
                "com.atproto.repo.createRecord",
                200,
                Duration::from_millis(3),
            );
        }
        m.observe(
            "com.atproto.repo.createRecord",
            400,
            Duration::from_millis(1),
        );
        for status in 100..(100 + STATUS_SLOTS as u16 + 2) {
            m.observe("x.y.z", status, Duration::ZERO);
        }
        assert_eq!(m.count("com.atproto.repo.createRecord", 200), 3);
        assert_eq!(m.count("com.atproto.repo.createRecord", 400), 1);
        let mut exp = Exposition::new();
        m.write(&mut exp);
        let text = exp.finish();
        assert!(text.contains(
            "rookery_http_requests_total{nsid=\"com.atproto.repo.createRecord\",status=\"200\"} 3\n"
        ));
        assert!(text.contains("rookery_http_requests_total{nsid=\"x.y.z\",status=\"other\"} 2\n"));
        assert!(text.contains(
            "rookery_http_request_duration_seconds_count{nsid=\"com.atproto.repo.createRecord\"} 4\n"
        ));

        let m = HttpMetrics::new();
        for i in 0..MAX_METHODS + 5 {
            m.observe(&format!("a.b.m{i}"), 200, Duration::ZERO);
        }
        assert_eq!(m.count(OTHER, 200), 5);
    }
}
