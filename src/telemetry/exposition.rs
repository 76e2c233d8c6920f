//! The Prometheus text exposition format (version 0.0.4), written by hand: `# HELP`,
//! `# TYPE`, then one `name{label="value"} number` line per sample.

use std::fmt::{Display, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// An exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. Its samples must follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                for c in value.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Upper bounds (seconds) of the latency histograms' buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram over [`LATENCY_BUCKETS`]; observing is a few relaxed atomic adds.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

/// A histogram's values, read once (several may be added together).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct HistogramSnapshot {
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
    pub sum_nanos: u64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum_nanos: self.sum_nanos.load(Ordering::Relaxed),
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

impl HistogramSnapshot {
    pub fn add(&mut self, other: &HistogramSnapshot) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.sum_nanos += other.sum_nanos;
        self.count += other.count;
    }

    /// Writes `{name}_bucket` (cumulative, with `le`), `{name}_sum` (seconds) and
    /// `{name}_count` under `labels`. The family line must already be written.
    pub fn write(&self, exp: &mut Exposition, name: &str, labels: &[(&str, &str)]) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            cumulative += count;
            let le = LATENCY_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            exp.sample(&bucket, &with_le, cumulative);
        }
        // Counts read one by one may race an observation; the total stays consistent
        // with the buckets, as the format requires.
        exp.sample(&format!("{name}_sum"), labels, self.sum_nanos as f64 / 1e9);
        exp.sample(&format!("{name}_count"), labels, cumulative);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values_and_writes_cumulative_buckets() {
        let mut exp = Exposition::new();
        exp.family("x_total", Kind::Counter, "a \\ help\nline");
        exp.sample("x_total", &[("a", "q\"b\\c\nd")], 3);
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_secs(60));
        exp.family("lat_seconds", Kind::Histogram, "latency");
        h.snapshot()
            .write(&mut exp, "lat_seconds", &[("nsid", "a.b.c")]);
        let text = exp.finish();
        assert!(text.starts_with(
            "# HELP x_total a \\\\ help\\nline\n# TYPE x_total counter\nx_total{a=\"q\\\"b\\\\c\\nd\"} 3\n"
        ));
        assert!(text.contains("lat_seconds_bucket{nsid=\"a.b.c\",le=\"0.001\"} 1\n"));
        assert!(text.contains("lat_seconds_bucket{nsid=\"a.b.c\",le=\"0.025\"} 2\n"));
        assert!(text.contains("lat_seconds_bucket{nsid=\"a.b.c\",le=\"10\"} 2\n"));
        assert!(text.contains("lat_seconds_bucket{nsid=\"a.b.c\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("lat_seconds_sum{nsid=\"a.b.c\"} 60.02"));
        assert!(text.contains("lat_seconds_count{nsid=\"a.b.c\"} 3\n"));
    }
}
