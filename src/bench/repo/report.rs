//! The report of `rookery bench repo` and its printed table.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::{
    Checks, DumpProfile, Export, Import, InitBuild, SqliteFacts, WalkProfile, WriteLatency,
    WritePath,
};
use crate::bench::{Latency, Machine, grouped, human, mb_per_second, micros, per_second};

/// Target of the issue: a 100k-record repository builds in under this.
const BUILD_TARGET: Duration = Duration::from_secs(2);
const BUILD_TARGET_RECORDS: f64 = 100_000.0;
/// Target of the issue: export at least this many MB/s.
const EXPORT_TARGET_MBPS: f64 = 500.0;

/// Everything [`run`](super::run) measured. `Display` prints the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub machine: Machine,
    pub sqlite: SqliteFacts,
    /// The working directory (removed afterwards unless `kept`).
    pub dir: PathBuf,
    pub kept: bool,
    /// Records of the repository built (before the single-record creates).
    pub records: usize,
    pub init: InitBuild,
    pub write_path: WritePath,
    /// Update (tree in memory), create (tree in memory), update (repo loaded per write).
    pub single: Vec<WriteLatency>,
    /// MST walk to sink and file, block dump to sink and file.
    pub exports: Vec<Export>,
    /// Of the MST walk to the sink.
    pub walk_profile: WalkProfile,
    /// Of the block dump to the sink.
    pub dump_profile: DumpProfile,
    /// Blocks per page of the block dump.
    pub export_page: u32,
    pub imports: Vec<Import>,
    pub checks: Checks,
}

fn rate(count: usize, elapsed: Duration) -> String {
    grouped(per_second(count as u64, elapsed))
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

impl Report {
    fn fmt_init(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.init;
        let p = &i.profile;
        writeln!(
            f,
            "1a. Build: one initial commit (Repo::format_init + persist in one transaction)"
        )?;
        writeln!(
            f,
            "    {} records in {} = {} records/s; {} blocks ({}) written",
            grouped(i.records as f64),
            human(i.total()),
            rate(i.records, i.total()),
            grouped(i.blocks as f64),
            mb(i.bytes),
        )?;
        let row = |f: &mut fmt::Formatter<'_>, label: &str, d: Duration, extra: String| {
            let line = format!("      {label:<40}{:>10}   {extra}", human(d));
            writeln!(f, "{}", line.trim_end())
        };
        row(f, "format_init", i.format, String::new())?;
        writeln!(
            f,
            "        profile: the same phases re-run one by one on a memory store"
        )?;
        row(
            f,
            "  encode records + CIDs",
            p.encode,
            format!("{} records/s", rate(i.records, p.encode)),
        )?;
        row(
            f,
            "  MST inserts (Mst::add, one by one)",
            p.inserts,
            format!("{} inserts/s", rate(i.records, p.inserts)),
        )?;
        row(
            f,
            "  hash nodes (root_cid)",
            p.hash,
            format!("{} nodes", grouped(p.nodes as f64)),
        )?;
        row(f, "  diff against the empty tree", p.diff, String::new())?;
        row(
            f,
            "  covering proof of every key",
            p.covering_proof,
            String::new(),
        )?;
        row(f, "  sign commit", p.sign, String::new())?;
        let parts = p.encode + p.inserts + p.hash + p.diff + p.covering_proof + p.sign;
        row(
            f,
            "  rest (format_init minus the above)",
            i.format.saturating_sub(parts),
            String::new(),
        )?;
        row(
            f,
            "SQLite persist (INSERTs)",
            i.persist,
            format!("{} blocks/s", rate(i.blocks, i.persist)),
        )?;
        row(
            f,
            "SQLite COMMIT (WAL fsync)",
            i.sqlite_commit,
            String::new(),
        )?;
        row(
            f,
            "for comparison: Mst::from_sorted + hash",
            p.from_sorted,
            "same root as format_init".to_owned(),
        )
    }

    fn fmt_write_path(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.write_path;
        writeln!(
            f,
            "1b. Build: applyWrites-like commits of {} creates, one transaction each (new database)",
            w.batch
        )?;
        let elapsed = w.commit.total;
        writeln!(
            f,
            "    {} records in {} commits, {} = {} records/s, {} commits/s{}",
            grouped(w.records as f64),
            grouped(w.commits as f64),
            human(elapsed),
            rate(w.records, elapsed),
            format_args!("{:.1}", per_second(w.commits as u64, elapsed)),
            if w.capped {
                " (capped by time: not all records written)"
            } else {
                ""
            },
        )?;
        writeln!(
            f,
            "    per commit, µs {:>21}{:>10}{:>10}",
            "median", "p99", "max"
        )?;
        for (label, l) in [
            ("total", &w.commit),
            ("format_commit", &w.format),
            ("transaction", &w.write),
        ] {
            latency_row(f, label, l)?;
        }
        Ok(())
    }

    fn fmt_single(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "2. Single-record writes on the {}-record repo: format_commit + transaction + apply, µs",
            grouped(self.records as f64)
        )?;
        writeln!(
            f,
            "    {:<32}{:>6}{:>10}{:>10}{:>10}{:>12}{:>12}",
            "", "n", "median", "p99", "max", "format med", "txn med"
        )?;
        for s in &self.single {
            writeln!(
                f,
                "    {:<32}{:>6}{:>10}{:>10}{:>10}{:>12}{:>12}",
                s.kind,
                s.total.count,
                micros(s.total.median),
                micros(s.total.p99),
                micros(s.total.max),
                micros(s.format.median),
                micros(s.write.median),
            )?;
        }
        Ok(())
    }

    fn fmt_exports(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "3. CAR export of the current repo from the SQLite store (MB = 10^6 bytes; file: no fsync)"
        )?;
        writeln!(
            f,
            "    {:<14}{:<8}{:>10}{:>12}{:>12}{:>10}",
            "method", "target", "blocks", "bytes", "time", "MB/s"
        )?;
        for e in &self.exports {
            writeln!(
                f,
                "    {:<14}{:<8}{:>10}{:>12}{:>12}{:>10.1}",
                e.method,
                e.target,
                grouped(e.blocks as f64),
                grouped(e.bytes as f64),
                human(e.elapsed),
                mb_per_second(e.bytes, e.elapsed),
            )?;
        }
        let w = &self.walk_profile;
        writeln!(
            f,
            "    MST walk profile (sink): node loads {} ({} nodes, one query each), record fetches {} ({} get_many), CAR writes {}",
            human(w.nodes),
            grouped(w.node_count as f64),
            human(w.records),
            grouped(w.record_queries as f64),
            human(w.write),
        )?;
        writeln!(
            f,
            "    block dump profile (sink): paged queries {} ({} blocks per page), CAR writes {}",
            human(self.dump_profile.fetch),
            self.export_page,
            human(self.dump_profile.write),
        )
    }

    fn fmt_imports(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "4. CAR import from memory")?;
        writeln!(
            f,
            "    {:<30}{:<16}{:>12}{:>12}{:>10}",
            "method", "source", "bytes", "time", "MB/s"
        )?;
        for i in &self.imports {
            writeln!(
                f,
                "    {:<30}{:<16}{:>12}{:>12}{:>10.1}",
                i.method,
                i.source,
                grouped(i.bytes as f64),
                human(i.elapsed),
                mb_per_second(i.bytes, i.elapsed),
            )?;
        }
        writeln!(
            f,
            "    (indented rows: phases of the row above, re-run one by one; verify_car = read + hash check, then verify_blocks:\n     signature, MST walk, records decoded, canonical rebuild;"
        )?;
        writeln!(
            f,
            "     read_into_store = hash check + put_many into a fresh SQLite file, one transaction per 1,000 blocks;"
        )?;
        writeln!(
            f,
            "     read + 1-txn put_many = the same blocks read whole, then stored in one transaction, for comparison)"
        )
    }

    fn fmt_footer(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.checks;
        writeln!(
            f,
            "checks passed: both exports verify with exactly the {} records written; {} blocks = 1 commit + {} MST nodes + {} records",
            grouped(c.records as f64),
            grouped(c.blocks as f64),
            grouped(c.nodes as f64),
            grouped(c.records as f64),
        )?;
        writeln!(
            f,
            "    in the store, in every export and after the import ({} blocks stored)",
            grouped(c.imported as f64)
        )?;
        let secs_per_record = self.init.total().as_secs_f64() / (self.init.records.max(1) as f64);
        let build_100k = Duration::from_secs_f64(secs_per_record * BUILD_TARGET_RECORDS);
        let export_mbps = |method: &str| {
            self.exports
                .iter()
                .filter(|e| e.method == method && e.target == "sink")
                .map(|e| mb_per_second(e.bytes, e.elapsed))
                .next()
                .unwrap_or(0.0)
        };
        let (walk, dump) = (export_mbps("MST walk"), export_mbps("block dump"));
        writeln!(
            f,
            "targets: 100k-record build < 2 s: {} at this rate ({}); export >= 500 MB/s: MST walk {:.1}, block dump {:.1} ({})",
            human(build_100k),
            met(build_100k < BUILD_TARGET),
            walk,
            dump,
            met(walk.max(dump) >= EXPORT_TARGET_MBPS),
        )
    }
}

fn latency_row(f: &mut fmt::Formatter<'_>, label: &str, l: &Latency) -> fmt::Result {
    writeln!(
        f,
        "      {label:<30}{:>10}{:>10}{:>10}",
        micros(l.median),
        micros(l.p99),
        micros(l.max)
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let updates = self.single.first().map_or(0, |s| s.total.count);
        writeln!(
            f,
            "rookery bench repo: {} records, {} single-record writes per kind",
            grouped(self.records as f64),
            grouped(updates as f64)
        )?;
        writeln!(f, "machine: {}", self.machine)?;
        writeln!(
            f,
            "sqlite:  {}, journal_mode={}, synchronous={}; files in {} ({})",
            self.sqlite.version,
            self.sqlite.journal_mode,
            self.sqlite.synchronous,
            self.dir.display(),
            if self.kept { "kept" } else { "removed" },
        )?;
        writeln!(f)?;
        self.fmt_init(f)?;
        writeln!(f)?;
        self.fmt_write_path(f)?;
        writeln!(f)?;
        self.fmt_single(f)?;
        writeln!(f)?;
        self.fmt_exports(f)?;
        writeln!(f)?;
        self.fmt_imports(f)?;
        writeln!(f)?;
        self.fmt_footer(f)
    }
}
