//! `rookery bench repo`: the repository engine on a SQLite file store.
//!
//! Measures, in a fresh directory:
//! 1. building a repository of small `app.bsky.feed.post`-like records, (a) as one initial
//!    commit in one transaction, with a profile of its phases, and (b) as commits of
//!    [`Options::batch`] creates, each in its own transaction (capped by time);
//! 2. the latency of single-record updates and creates on that repository;
//! 3. CAR export from the store, by walking the MST and by dumping every stored block;
//! 4. CAR import: whole-repository verification from memory, and reading into a fresh store.
//!
//! Every export is checked: it verifies (signature, hashes, MST, records, canonical rebuild)
//! and holds exactly the records written. A wrong answer is an [`Error::Mismatch`], not a
//! number.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat};
use cid::Cid;
use ipld_core::ipld::Ipld;
use rand::{Rng, SeedableRng};

use super::{Error, Latency, Machine, check_eq};
use crate::crypto::{Algorithm, Keypair};
use crate::repo::blockstore::MemoryBlockStore;
use crate::repo::cbor;
use crate::repo::cid::cid_for_cbor;
use crate::repo::commit::{Commit, UnsignedCommit};
use crate::repo::mst::{self, Mst};
use crate::repo::repository::{CommitData, Repo, Write};
use crate::store::sqlite::{OpenOptions, begin_write};
use crate::store::{self, SqliteBlockStore, blocks, root};
use crate::syntax::{Nsid, RecordKey, TidClock};

mod car_io;
mod report;

use car_io::{import_and_check, timed_dump, timed_walk};

pub use report::Report;

/// The account the benchmark repositories belong to.
const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const COLLECTION: &str = "app.bsky.feed.post";
/// 2024-01-01T00:00:00Z: record `i` is created `i` seconds later.
const EPOCH: i64 = 1_704_067_200;
/// Seed of the choice of records to update, so runs are comparable.
const SEED: u64 = 0x0072_6f6f_6b65_7279;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records in the repository.
    pub records: usize,
    /// Single-record writes measured of each kind.
    pub updates: usize,
    /// Where to create the working directory (a fresh subdirectory, kept afterwards); `None`
    /// for the system temporary directory (removed afterwards).
    pub dir: Option<PathBuf>,
    /// Creates per commit on the write path (applyWrites-like).
    pub batch: usize,
    /// The write-path build stops after the commit that passes this much time.
    pub write_path_budget: Duration,
    /// Blocks per page of the block-dump export.
    pub export_page: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            records: 100_000,
            updates: 1_000,
            dir: None,
            batch: 200,
            write_path_budget: Duration::from_secs(60),
            export_page: 1_000,
        }
    }
}

/// Build (a): one initial commit.
#[derive(Debug, Clone, PartialEq)]
pub struct InitBuild {
    pub records: usize,
    /// Blocks the commit wrote (commit, records, MST nodes) and their total size.
    pub blocks: usize,
    pub bytes: u64,
    /// `Repo::format_init`: record encoding, MST build and hashing, diff, proofs, signing.
    pub format: Duration,
    /// `store::commit::persist` inside the transaction.
    pub persist: Duration,
    /// The transaction's `COMMIT` (the WAL fsync).
    pub sqlite_commit: Duration,
    pub profile: InitProfile,
}

impl InitBuild {
    pub fn total(&self) -> Duration {
        self.format + self.persist + self.sqlite_commit
    }
}

/// The phases of `format_init`, re-run one by one on a memory store (the initial build reads
/// nothing from its store, so this is the same work).
#[derive(Debug, Clone, PartialEq)]
pub struct InitProfile {
    /// DAG-CBOR encoding and CID of every record.
    pub encode: Duration,
    /// `Mst::add` of every record, one by one (no hashing).
    pub inserts: Duration,
    /// Encoding and hashing every node (`root_cid`).
    pub hash: Duration,
    /// `mst::diff` against the empty tree (collects the new nodes).
    pub diff: Duration,
    /// The covering proof of every created key.
    pub covering_proof: Duration,
    /// Signing the commit.
    pub sign: Duration,
    /// For comparison: `Mst::from_sorted` plus hashing, which gives the same root.
    pub from_sorted: Duration,
    pub nodes: usize,
}

/// Build (b): commits of `batch` creates, each its own transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct WritePath {
    pub batch: usize,
    pub records: usize,
    pub commits: usize,
    /// Stopped by [`Options::write_path_budget`] before all records were written.
    pub capped: bool,
    /// Per commit: the whole write, the formatting, the transaction.
    pub commit: Latency,
    pub format: Latency,
    pub write: Latency,
}

/// Single-record writes.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteLatency {
    pub kind: &'static str,
    /// format + transaction + apply (+ loading the repo, for the cold kind).
    pub total: Latency,
    pub format: Latency,
    /// The transaction: persist and `COMMIT`.
    pub write: Latency,
}

/// One CAR export.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub method: &'static str,
    pub target: &'static str,
    pub blocks: usize,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Where an MST-walk export spends its time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WalkProfile {
    /// Loading (one query each), hash-checking and decoding MST nodes.
    pub nodes: Duration,
    pub node_count: usize,
    /// `blocks::get_many` of each node's records.
    pub records: Duration,
    pub record_queries: usize,
    /// Writing sections into the CAR writer.
    pub write: Duration,
}

/// Where a block-dump export spends its time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DumpProfile {
    /// Polling `blocks::stream_since` (paged queries).
    pub fetch: Duration,
    /// Writing sections into the CAR writer, and finishing it.
    pub write: Duration,
}

/// One CAR import.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    pub method: &'static str,
    pub source: &'static str,
    pub blocks: usize,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// SQLite as the actor store opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteFacts {
    pub version: String,
    pub journal_mode: String,
    pub synchronous: String,
}

/// What the correctness checks saw; [`run`] fails rather than report a failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checks {
    /// Records in the verified export, equal to the records written.
    pub records: usize,
    pub nodes: usize,
    /// Blocks of the repository: commit + nodes + records, as exported, dumped and stored.
    pub blocks: usize,
    /// Blocks stored by the import.
    pub imported: usize,
}

/// The benchmark's working directory; removed on drop unless the caller chose its parent.
struct WorkDir {
    path: PathBuf,
    remove: bool,
}

impl WorkDir {
    fn create(parent: Option<&Path>) -> Result<Self, Error> {
        let (parent, remove) = match parent {
            Some(p) => (p.to_path_buf(), false),
            None => (std::env::temp_dir(), true),
        };
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = parent.join(format!("rookery-bench-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| Error::Dir {
            path: path.clone(),
            source,
        })?;
        Ok(WorkDir { path, remove })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The records of the benchmark, their paths and the CIDs the repository must map them to.
struct Corpus {
    collection: Nsid,
    rkeys: Vec<RecordKey>,
    /// `path → record CID` of the current repository, kept independently of the engine.
    expected: BTreeMap<String, Cid>,
    edits: usize,
}

impl Corpus {
    fn new(records: usize, clock: &TidClock) -> Result<Self, Error> {
        Ok(Corpus {
            collection: COLLECTION.parse()?,
            rkeys: (0..records)
                .map(|_| RecordKey::from(clock.next()))
                .collect(),
            expected: BTreeMap::new(),
            edits: 0,
        })
    }

    fn path(&self, rkey: &RecordKey) -> String {
        format!("{}/{rkey}", self.collection)
    }

    fn create(&self, i: usize) -> Option<Write> {
        Some(Write::Create {
            collection: self.collection.clone(),
            rkey: self.rkeys.get(i)?.clone(),
            record: post(i, None),
        })
    }

    fn creates(&self, range: std::ops::Range<usize>) -> Vec<Write> {
        range.filter_map(|i| self.create(i)).collect()
    }

    fn expect(&mut self, rkey: &RecordKey, record: &Ipld) -> Result<(), Error> {
        let cid = cid_for_cbor(&cbor::encode(record)?);
        self.expected.insert(self.path(rkey), cid);
        Ok(())
    }
}

/// A post-like record: `$type`, ~60 characters of text naming `i`, and `createdAt`.
fn post(i: usize, edit: Option<usize>) -> Ipld {
    let text = match edit {
        None => format!("Benchmark post {i:07}: a short note about the weather and tea."),
        Some(k) => format!("Benchmark post {i:07}, edit {k:06}: second thoughts on the tea."),
    };
    let seconds = i64::try_from(i).unwrap_or(i64::MAX).saturating_add(EPOCH);
    let created_at = DateTime::from_timestamp(seconds, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default();
    Ipld::Map(BTreeMap::from([
        ("$type".to_owned(), Ipld::String(COLLECTION.to_owned())),
        ("text".to_owned(), Ipld::String(text)),
        ("createdAt".to_owned(), Ipld::String(created_at)),
    ]))
}

/// Runs the whole benchmark.
pub async fn run(opts: &Options) -> Result<Report, Error> {
    let machine = Machine::current();
    let work = WorkDir::create(opts.dir.as_deref())?;
    let key = Keypair::generate(Algorithm::K256);
    let clock = TidClock::default();
    let mut corpus = Corpus::new(opts.records, &clock)?;
    let batch = opts.batch.max(1);

    // 1a. One initial commit.
    let store = open(&work.path, "repo.sqlite").await?;
    let sqlite = sqlite_facts(&store).await?;
    let (init, mut repo) = build_initial(&store, &mut corpus, &key, &clock).await?;

    // 1b. The write path, on its own database.
    let write_path = {
        let store = open(&work.path, "write-path.sqlite").await?;
        let result = build_write_path(&store, &corpus, &key, &clock, batch, opts).await;
        store.pool().close().await;
        result?
    };

    // 2. Single-record writes on the big repository.
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let mut single = Vec::new();
    for kind in [Kind::Update, Kind::Create, Kind::ColdUpdate] {
        let measured = single_writes(
            &store,
            &mut repo,
            &mut corpus,
            &key,
            &clock,
            kind,
            opts.updates,
            &mut rng,
        )
        .await?;
        single.push(measured);
    }

    // 3. Export.
    let head = {
        let mut conn = store.pool().acquire().await.map_err(store::Error::from)?;
        root::get(&mut conn).await?.ok_or(Error::NoHead)?
    };
    check_eq("head commit in the store", repo.cid(), head.cid)?;
    let walk_path = work.path.join("walk.car");
    let dump_path = work.path.join("dump.car");
    let mut exports = Vec::new();
    let (_, sink_walk, walk_profile) = timed_walk(&store, head.cid, tokio::io::sink()).await?;
    exports.push(sink_walk.with_target("sink"));
    let file = tokio::fs::File::create(&walk_path).await?;
    let (_, file_walk, _) = timed_walk(&store, head.cid, file).await?;
    exports.push(file_walk.with_target("file"));
    let (sink_dump, dump_profile) =
        timed_dump(&store, head.cid, opts.export_page, tokio::io::sink()).await?;
    exports.push(sink_dump.with_target("sink"));
    let file = tokio::fs::File::create(&dump_path).await?;
    let (file_dump, _) = timed_dump(&store, head.cid, opts.export_page, file).await?;
    exports.push(file_dump.with_target("file"));

    // 4. Import, and the correctness checks.
    let walk_car = tokio::fs::read(&walk_path).await?;
    let dump_car = tokio::fs::read(&dump_path).await?;
    let (imports, checks) = import_and_check(
        &walk_car, &dump_car, &corpus, &key, &head, &store, &exports, &work.path,
    )
    .await?;
    store.pool().close().await;

    Ok(Report {
        machine,
        sqlite,
        dir: work.path.clone(),
        kept: !work.remove,
        records: opts.records,
        init,
        write_path,
        single,
        exports,
        walk_profile,
        dump_profile,
        export_page: opts.export_page,
        imports,
        checks,
    })
}

async fn open(dir: &Path, name: &str) -> Result<SqliteBlockStore, Error> {
    Ok(SqliteBlockStore::open(&dir.join(name), &OpenOptions::default()).await?)
}

/// The settings the actor store's connections run with (read back, not assumed).
async fn sqlite_facts(store: &SqliteBlockStore) -> Result<SqliteFacts, Error> {
    let pool = store.pool();
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(pool)
        .await
        .map_err(store::Error::from)?;
    let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .map_err(store::Error::from)?;
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(pool)
        .await
        .map_err(store::Error::from)?;
    let synchronous = match synchronous {
        0 => "OFF".to_owned(),
        1 => "NORMAL".to_owned(),
        2 => "FULL".to_owned(),
        3 => "EXTRA".to_owned(),
        other => other.to_string(),
    };
    Ok(SqliteFacts {
        version,
        journal_mode,
        synchronous,
    })
}

/// Persists a formatted commit in its own write transaction; returns the time of the persist
/// and of the `COMMIT`.
///
/// Every benchmark record is distinct, so a record block a commit releases is used by no other
/// path: it is deleted in the same transaction, as the records index would. The store then
/// holds exactly the current repository, which the export checks rely on.
async fn persist(
    store: &SqliteBlockStore,
    data: &CommitData,
) -> Result<(Duration, Duration), Error> {
    let started = Instant::now();
    let mut tx = begin_write(store.pool()).await?;
    store::commit::persist(&mut tx, data).await?;
    blocks::delete_many(&mut tx, &data.released_record_cids).await?;
    let persisted = started.elapsed();
    tx.commit().await.map_err(store::Error::from)?;
    Ok((persisted, started.elapsed() - persisted))
}

async fn build_initial(
    store: &SqliteBlockStore,
    corpus: &mut Corpus,
    key: &Keypair,
    clock: &TidClock,
) -> Result<(InitBuild, Repo<SqliteBlockStore>), Error> {
    let writes = corpus.creates(0..corpus.rkeys.len());
    let started = Instant::now();
    let prepared =
        Repo::format_init(store.clone(), DID, key, clock.next().to_string(), &writes).await?;
    let format = started.elapsed();
    let (persist, sqlite_commit) = persist(store, &prepared.data).await?;
    let blocks = prepared.data.new_blocks.len();
    let bytes = prepared
        .data
        .new_blocks
        .values()
        .map(|b| b.len() as u64)
        .sum();
    let repo = Repo::apply(prepared);

    for write in &writes {
        if let Write::Create { rkey, record, .. } = write {
            corpus.expect(rkey, record)?;
        }
    }
    let profile = profile_init(&writes, key, repo.data()).await?;
    check_eq(
        "MST nodes of the initial commit",
        blocks,
        1 + writes.len() + profile.nodes,
    )?;
    let init = InitBuild {
        records: writes.len(),
        blocks,
        bytes,
        format,
        persist,
        sqlite_commit,
        profile,
    };
    Ok((init, repo))
}

/// Re-runs the phases of `format_init` one at a time; the tree must come out as `data`.
async fn profile_init(writes: &[Write], key: &Keypair, data: Cid) -> Result<InitProfile, Error> {
    let started = Instant::now();
    let mut leaves = Vec::with_capacity(writes.len());
    for write in writes {
        if let Write::Create { record, .. } = write {
            let bytes = cbor::encode(record)?;
            leaves.push((write.path(), cid_for_cbor(&bytes)));
        }
    }
    let encode = started.elapsed();

    let started = Instant::now();
    let mut tree = Mst::create(MemoryBlockStore::new());
    for (path, cid) in &leaves {
        tree = tree.add(path, *cid).await?;
    }
    let inserts = started.elapsed();

    let started = Instant::now();
    let root = tree.root_cid();
    let hash = started.elapsed();
    check_eq("profiled MST root", data, root)?;

    let started = Instant::now();
    let nodes = mst::diff(None, &tree).await?.new_blocks.len();
    let diff = started.elapsed();

    let started = Instant::now();
    tree.covering_proof(leaves.iter().map(|(path, _)| path.as_str()))
        .await?;
    let covering_proof = started.elapsed();

    let started = Instant::now();
    let commit = Commit::sign(UnsignedCommit::new(DID, root, "2222222222222"), key);
    let sign = started.elapsed();
    drop(commit);

    leaves.sort();
    let started = Instant::now();
    let bottom_up = Mst::from_sorted(MemoryBlockStore::new(), leaves)?.root_cid();
    let from_sorted = started.elapsed();
    check_eq("Mst::from_sorted root", root, bottom_up)?;

    Ok(InitProfile {
        encode,
        inserts,
        hash,
        diff,
        covering_proof,
        sign,
        from_sorted,
        nodes,
    })
}

async fn build_write_path(
    store: &SqliteBlockStore,
    corpus: &Corpus,
    key: &Keypair,
    clock: &TidClock,
    batch: usize,
    opts: &Options,
) -> Result<WritePath, Error> {
    let started = Instant::now();
    let mut repo: Option<Repo<SqliteBlockStore>> = None;
    let (mut totals, mut formats, mut writes_t) = (Vec::new(), Vec::new(), Vec::new());
    let mut records = 0;
    let mut capped = false;
    let n = corpus.rkeys.len();
    for first in (0..n).step_by(batch) {
        if started.elapsed() >= opts.write_path_budget {
            capped = true;
            break;
        }
        let writes = corpus.creates(first..(first + batch).min(n));
        let rev = clock.next().to_string();
        let t = Instant::now();
        let prepared = match &repo {
            None => Repo::format_init(store.clone(), DID, key, rev, &writes).await?,
            Some(repo) => repo.format_commit(&writes, key, rev).await?,
        };
        let format = t.elapsed();
        let (persisted, committed) = persist(store, &prepared.data).await?;
        repo = Some(Repo::apply(prepared));
        totals.push(t.elapsed());
        formats.push(format);
        writes_t.push(persisted + committed);
        records += writes.len();
    }
    Ok(WritePath {
        batch,
        records,
        commits: totals.len(),
        capped,
        commit: Latency::of(&totals),
        format: Latency::of(&formats),
        write: Latency::of(&writes_t),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Update a random record; the repository's tree stays in memory between writes.
    Update,
    /// Create a record with a fresh TID key.
    Create,
    /// Update a random record of a repository loaded from the store for each write.
    ColdUpdate,
}

#[allow(clippy::too_many_arguments)]
async fn single_writes(
    store: &SqliteBlockStore,
    repo: &mut Repo<SqliteBlockStore>,
    corpus: &mut Corpus,
    key: &Keypair,
    clock: &TidClock,
    kind: Kind,
    count: usize,
    rng: &mut rand::rngs::StdRng,
) -> Result<WriteLatency, Error> {
    let (mut totals, mut formats, mut writes_t) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..count {
        let (rkey, record, write) = match kind {
            Kind::Update | Kind::ColdUpdate => {
                if corpus.rkeys.is_empty() {
                    break;
                }
                let i = rng.gen_range(0..corpus.rkeys.len());
                let Some(rkey) = corpus.rkeys.get(i).cloned() else {
                    break;
                };
                corpus.edits += 1;
                let record = post(i, Some(corpus.edits));
                let write = Write::Update {
                    collection: corpus.collection.clone(),
                    rkey: rkey.clone(),
                    record: record.clone(),
                };
                (rkey, record, write)
            }
            Kind::Create => {
                let rkey = RecordKey::from(clock.next());
                let record = post(corpus.rkeys.len(), None);
                corpus.rkeys.push(rkey.clone());
                let write = Write::Create {
                    collection: corpus.collection.clone(),
                    rkey: rkey.clone(),
                    record: record.clone(),
                };
                (rkey, record, write)
            }
        };
        let rev = clock.next().to_string();
        let started = Instant::now();
        let prepared = if kind == Kind::ColdUpdate {
            let loaded = Repo::load(store.clone(), repo.cid()).await?;
            loaded.format_commit(&[write], key, rev).await?
        } else {
            repo.format_commit(&[write], key, rev).await?
        };
        let format = started.elapsed();
        let (persisted, committed) = persist(store, &prepared.data).await?;
        *repo = Repo::apply(prepared);
        totals.push(started.elapsed());
        formats.push(format);
        writes_t.push(persisted + committed);
        corpus.expect(&rkey, &record)?;
    }
    Ok(WriteLatency {
        kind: match kind {
            Kind::Update => "update (tree in memory)",
            Kind::Create => "create (tree in memory)",
            Kind::ColdUpdate => "update (repo loaded per write)",
        },
        total: Latency::of(&totals),
        format: Latency::of(&formats),
        write: Latency::of(&writes_t),
    })
}

// Small runs of the whole benchmark, checking its counts: `cargo test --features bench-tests`.
#[cfg(all(test, feature = "bench-tests"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_run_reports_checked_counts() {
        let opts = Options {
            records: 300,
            updates: 5,
            ..Options::default()
        };
        let report = run(&opts).await.unwrap();
        assert_eq!(report.records, 300);
        assert_eq!(report.init.records, 300);
        assert_eq!(report.init.blocks, 1 + 300 + report.init.profile.nodes);
        assert!(report.init.profile.nodes > 0);
        // 300 creates in commits of 200: two commits, nothing capped.
        assert_eq!(
            (report.write_path.records, report.write_path.commits),
            (300, 2)
        );
        assert!(!report.write_path.capped);
        let counts: Vec<usize> = report.single.iter().map(|s| s.total.count).collect();
        assert_eq!(counts, vec![5, 5, 5]);
        // 300 records, 5 of them created by the single writes.
        assert_eq!(report.checks.records, 305);
        assert!(report.checks.nodes > 0);
        assert_eq!(
            report.checks.blocks,
            1 + report.checks.nodes + report.checks.records
        );
        assert_eq!(report.checks.imported, report.checks.blocks);
        assert_eq!(report.exports.len(), 4);
        for export in &report.exports {
            assert_eq!(export.blocks, report.checks.blocks);
            assert!(export.bytes > 0);
        }
        // Both targets of one method wrote the same bytes.
        assert_eq!(report.exports[0].bytes, report.exports[1].bytes);
        assert_eq!(report.exports[2].bytes, report.exports[3].bytes);
        assert_eq!(report.sqlite.journal_mode, "wal");
        // The default working directory is temporary.
        assert!(!report.kept);
        assert!(!report.dir.exists());
        let table = report.to_string();
        assert!(table.contains("MST walk"), "{table}");
        assert!(table.contains("305 records"), "{table}");
    }
}
