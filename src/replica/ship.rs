//! One replication cycle: find the databases that changed, read a consistent image of
//! each, write the pages that changed into a segment and upload it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};

use super::image::{PageImage, WalSalt};
use super::segment::SegmentWriter;
use super::{
    Error, FIXED_DATABASES, SEQ_LEASE, SEQ_LEASE_KEY, STATE_IDLE, Shared, UPLOAD_CONCURRENCY,
    WATCH_TIME, WORK_DIR, now_ms,
};

/// File under [`WORK_DIR`] whose content is the start time (ms) of the last cycle that
/// left nothing unshipped.
const CLEAN_MARKER: &str = "clean";

/// Size and modification time of a database file and its WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Fingerprint {
    db: Option<(u64, SystemTime)>,
    wal: Option<(u64, SystemTime)>,
}

fn stat(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

pub(crate) fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

fn fingerprint(path: &Path) -> Fingerprint {
    Fingerprint {
        db: stat(path),
        wal: stat(&wal_path(path)),
    }
}

/// What was shipped of one database.
#[derive(Debug, Clone)]
struct DbState {
    generation: String,
    next_index: u64,
    page_size: u32,
    hashes: Vec<u128>,
    wal_salt: Option<WalSalt>,
    wal_frames: u64,
    shipped: Fingerprint,
    last_change: Instant,
}

/// The result of reading one database.
struct Snapshot {
    path: PathBuf,
    state: DbState,
    /// The segment file, when there is anything to upload.
    segment: Option<(PathBuf, String, u64)>,
    new_generation: bool,
    /// The sequencer's newest `seq` (only read for the sequencer).
    latest_seq: Option<i64>,
}

/// The outcome of shipping one database: the snapshot and bytes uploaded, `None` when the
/// database is gone.
type Shipped = Result<Option<(Snapshot, u64)>, Error>;

/// What a cycle did.
#[derive(Debug, Default, Clone, Copy)]
pub struct CycleReport {
    /// Databases looked at (read, because their files changed).
    pub read: usize,
    /// Segments uploaded.
    pub uploaded: usize,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Databases whose segment could not be made or uploaded.
    pub failed: usize,
}

pub(crate) struct Shipper {
    shared: Arc<Shared>,
    states: HashMap<PathBuf, DbState>,
    /// What was last shipped of every database, kept after its page hashes are dropped, so
    /// an idle store that is only read is not shipped again.
    shipped: HashMap<PathBuf, Fingerprint>,
    lease: Option<i64>,
    tmp_counter: u64,
    /// Whether the generated secrets at the top of the data directory are in the bucket.
    secrets_shipped: bool,
}

/// The key of a database under `dbs/`: its path under the data directory, `/`-separated.
pub(crate) fn db_id(data: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(data).ok()?;
    let parts: Vec<_> = rel
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()?;
    Some(parts.join("/"))
}

pub(crate) fn segment_key(id: &str, generation: &str, index: u64, cycle_ms: u64) -> String {
    format!("dbs/{id}/{generation}/{index:08}-{cycle_ms:013}.seg")
}

fn new_generation() -> String {
    format!("g{:013}-{:08x}", now_ms(), rand::random::<u32>())
}

fn page_hash(page: &[u8]) -> u128 {
    let digest = Sha256::digest(page);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(bytes)
}

impl Shipper {
    pub fn new(shared: Arc<Shared>) -> Shipper {
        Shipper {
            shared,
            states: HashMap::new(),
            shipped: HashMap::new(),
            lease: None,
            tmp_counter: 0,
            secrets_shipped: false,
        }
    }

    fn work_dir(&self) -> PathBuf {
        self.shared.data.join(WORK_DIR)
    }

    fn all_stores(&self) -> Result<Vec<PathBuf>, Error> {
        let root = self.shared.data.join(crate::actor::ACTORS_DIR);
        let mut stores = Vec::new();
        let shards = match std::fs::read_dir(&root) {
            Ok(shards) => shards,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(stores),
            Err(e) => return Err(Error::io(&root, e)),
        };
        for shard in shards.flatten() {
            let Ok(accounts) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for account in accounts.flatten() {
                let store = account.path().join(crate::actor::STORE_FILE);
                if store.is_file() {
                    stores.push(store);
                }
            }
        }
        Ok(stores)
    }

    fn watch(&self, stores: Vec<PathBuf>) {
        let mut watched = self
            .shared
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        for store in stores {
            watched.insert(store, now);
        }
    }

    /// Watches every actor store (a full backup).
    pub fn watch_all_stores(&mut self) -> Result<(), Error> {
        let stores = self.all_stores()?;
        self.watch(stores);
        Ok(())
    }

    /// At start-up: watches the actor stores modified since the last clean cycle (all of
    /// them when there is no record of one), so changes made before a crash are shipped.
    pub fn watch_changed_since_clean(&mut self) -> Result<(), Error> {
        let marker = self.work_dir().join(CLEAN_MARKER);
        let clean_ms = std::fs::read_to_string(&marker)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        let stores = self.all_stores()?;
        let changed = stores
            .into_iter()
            .filter(|store| {
                let Some(clean_ms) = clean_ms else {
                    return true;
                };
                let fp = fingerprint(store);
                [fp.db, fp.wal].into_iter().flatten().any(|(_, modified)| {
                    let ms = modified
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    // A second of slack for coarse file-system clocks.
                    ms + 1000 >= clean_ms
                })
            })
            .collect();
        self.watch(changed);
        Ok(())
    }

    /// The databases that may have changed: the fixed ones (sequencer first) and the
    /// watched stores. Watches that expired are dropped, as are idle states.
    fn candidates(&mut self) -> (Option<PathBuf>, Vec<PathBuf>) {
        let data = &self.shared.data;
        let sequencer = data.join(FIXED_DATABASES[0]);
        let mut others: Vec<PathBuf> = FIXED_DATABASES[1..]
            .iter()
            .map(|name| data.join(name))
            .filter(|p| p.exists())
            .collect();
        let shared = self.shared.clone();
        {
            let mut watched = shared.watched.lock().unwrap_or_else(|e| e.into_inner());
            // A store stays watched while recently opened, and after that until what it
            // holds is shipped (or it is gone and forgotten).
            watched.retain(|path, since| since.elapsed() < WATCH_TIME || self.changed(path));
            others.extend(watched.keys().cloned());
        }
        self.states.retain(|path, state| {
            state.last_change.elapsed() < STATE_IDLE
                || FIXED_DATABASES.iter().any(|f| path.ends_with(f))
        });
        let sequencer = sequencer.exists().then_some(sequencer);
        (sequencer, others)
    }

    /// Whether `path` differs from what was last shipped of it (a deleted database whose
    /// state is still held counts as changed, so it is forgotten).
    fn changed(&self, path: &Path) -> bool {
        match self.states.get(path) {
            Some(state) => state.shipped != fingerprint(path),
            None => match self.shipped.get(path) {
                Some(shipped) => *shipped != fingerprint(path),
                None => path.exists(),
            },
        }
    }

    /// The state a new segment of `path` extends; `None` (a new generation, a fresh base
    /// snapshot: the compaction) when its generation has `compact_segments` segments.
    fn state_to_extend(&self, path: &Path) -> Option<&DbState> {
        self.states
            .get(path)
            .filter(|s| s.next_index < self.shared.config.compact_segments)
    }

    fn tmp_file(&mut self) -> PathBuf {
        self.tmp_counter += 1;
        self.work_dir()
            .join("tmp")
            .join(format!("{}-{}.seg", std::process::id(), self.tmp_counter))
    }

    /// One cycle. Errors of single databases are counted in the report, not returned.
    pub async fn cycle(&mut self) -> Result<CycleReport, Error> {
        let shared = self.shared.clone();
        let id = shared.cycle_started.fetch_add(1, Ordering::AcqRel) + 1;
        let cycle_ms = now_ms();
        let tmp_dir = self.work_dir().join("tmp");
        std::fs::create_dir_all(&tmp_dir).map_err(|e| Error::io(&tmp_dir, e))?;
        let mut report = CycleReport::default();
        if !self.secrets_shipped {
            match self.ship_secrets().await {
                Ok(()) => self.secrets_shipped = true,
                Err(err) => {
                    tracing::warn!(error = %err, "replica: shipping the generated secrets failed");
                    report.failed += 1;
                }
            }
        }
        let (sequencer, others) = self.candidates();

        // The sequencer is read first and uploaded last.
        let sequencer_snapshot = match sequencer.filter(|p| self.changed(p)) {
            Some(path) => {
                report.read += 1;
                let tmp = self.tmp_file();
                match snapshot(
                    &shared.data,
                    &path,
                    self.state_to_extend(&path),
                    &tmp,
                    cycle_ms,
                    true,
                )
                .await
                {
                    Ok(snap) => Some(snap),
                    Err(err) => {
                        tracing::warn!(error = %err, "replica: reading the sequencer failed");
                        report.failed += 1;
                        None
                    }
                }
            }
            None => None,
        };
        let changed: Vec<PathBuf> = others.into_iter().filter(|p| self.changed(p)).collect();
        let mut jobs: Vec<(PathBuf, Option<DbState>, PathBuf)> = Vec::with_capacity(changed.len());
        for path in changed {
            let tmp = self.tmp_file();
            let state = self.state_to_extend(&path).cloned();
            jobs.push((path, state, tmp));
        }
        report.read += jobs.len();
        let data = shared.data.clone();
        let results: Vec<(PathBuf, Shipped)> = futures::stream::iter(jobs)
            .map(|(path, state, tmp)| {
                let shared = shared.clone();
                let data = data.clone();
                async move {
                    if !path.exists() {
                        // Deleted (account deletion): forget it.
                        return (path, Ok(None));
                    }
                    let result =
                        match snapshot(&data, &path, state.as_ref(), &tmp, cycle_ms, false).await {
                            Ok(snap) => upload(&shared, snap).await.map(Some),
                            Err(err) => Err(err),
                        };
                    (path, result)
                }
            })
            .buffer_unordered(UPLOAD_CONCURRENCY)
            .collect()
            .await;
        for (path, result) in results {
            match result {
                Ok(Some((snap, bytes))) => {
                    if bytes > 0 {
                        report.uploaded += 1;
                        report.bytes += bytes;
                    }
                    self.shipped.insert(path.clone(), snap.state.shipped);
                    self.states.insert(path, snap.state);
                }
                Ok(None) => {
                    self.states.remove(&path);
                    self.shipped.remove(&path);
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "replica: shipping failed");
                    report.failed += 1;
                }
            }
        }
        if let Some(snap) = sequencer_snapshot {
            if report.failed == 0 {
                let latest_seq = snap.latest_seq;
                let path = snap.path.clone();
                match upload(&shared, snap).await {
                    Ok((snap, bytes)) => {
                        if bytes > 0 {
                            report.uploaded += 1;
                            report.bytes += bytes;
                        }
                        self.shipped.insert(path.clone(), snap.state.shipped);
                        self.states.insert(path, snap.state);
                        if let Some(seq) = latest_seq
                            && let Err(err) = self.raise_lease(seq).await
                        {
                            tracing::warn!(error = %err, "replica: raising the seq lease failed");
                            report.failed += 1;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "replica: shipping the sequencer failed");
                        report.failed += 1;
                    }
                }
            } else if let Some((tmp, _, _)) = &snap.segment {
                let _ = std::fs::remove_file(tmp);
            }
        }

        let stats = &shared.stats;
        stats.cycles.fetch_add(1, Ordering::Relaxed);
        stats
            .uploaded_bytes
            .fetch_add(report.bytes, Ordering::Relaxed);
        stats
            .segments
            .fetch_add(report.uploaded as u64, Ordering::Relaxed);
        if report.failed == 0 {
            stats.unclean_since_ms.store(0, Ordering::Release);
            if report.uploaded > 0 {
                let marker = self.work_dir().join(CLEAN_MARKER);
                if let Err(e) = std::fs::write(&marker, cycle_ms.to_string()) {
                    tracing::warn!(error = %e, "replica: cannot write the clean marker");
                }
            }
            shared.clean_through.send_replace(id);
        } else {
            stats
                .failures
                .fetch_add(report.failed as u64, Ordering::Relaxed);
            let _ = stats.unclean_since_ms.compare_exchange(
                0,
                cycle_ms,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        Ok(report)
    }

    /// The service secrets generated into the data directory (when not configured): without
    /// them a restored server could not sign PLC operations for its accounts.
    async fn ship_secrets(&self) -> Result<(), Error> {
        for name in [
            crate::config::SESSION_KEY_FILE,
            crate::config::PLC_ROTATION_KEY_FILE,
        ] {
            let path = self.shared.data.join(name);
            if path.is_file() {
                self.shared
                    .bucket
                    .put_file(&format!("files/{name}"), &path)
                    .await?;
            }
        }
        Ok(())
    }

    async fn raise_lease(&mut self, seq: i64) -> Result<(), Error> {
        let lease = match self.lease {
            Some(lease) => lease,
            None => {
                let stored = self
                    .shared
                    .bucket
                    .get(SEQ_LEASE_KEY)
                    .await?
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .unwrap_or(0);
                self.lease = Some(stored);
                stored
            }
        };
        if lease - seq >= SEQ_LEASE / 2 {
            return Ok(());
        }
        let raised = seq + SEQ_LEASE;
        self.shared
            .bucket
            .put_bytes(SEQ_LEASE_KEY, raised.to_string().into_bytes())
            .await?;
        self.lease = Some(raised);
        Ok(())
    }
}

/// Uploads `snap`'s segment (and, for a new generation of an actor store, its key file).
/// Returns the snapshot and the bytes uploaded.
async fn upload(shared: &Shared, snap: Snapshot) -> Result<(Snapshot, u64), Error> {
    let Some((tmp, key, size)) = &snap.segment else {
        return Ok((snap, 0));
    };
    let result = async {
        if snap.new_generation
            && let Some(dir) = snap.path.parent()
            && snap.path.ends_with(crate::actor::STORE_FILE)
        {
            let key_file = dir.join("key");
            if let Some(id) = db_id(&shared.data, &key_file)
                && key_file.exists()
            {
                shared
                    .bucket
                    .put_file(&format!("files/{id}"), &key_file)
                    .await?;
            }
        }
        shared.bucket.put_file(key, tmp).await
    }
    .await;
    let _ = std::fs::remove_file(tmp);
    result?;
    let size = *size;
    Ok((snap, size))
}

/// Reads `path` under a read transaction and writes the segment of what changed since
/// `state` into `tmp`.
async fn snapshot(
    data: &Path,
    path: &Path,
    state: Option<&DbState>,
    tmp: &Path,
    cycle_ms: u64,
    sequencer: bool,
) -> Result<Snapshot, Error> {
    let sqlite = |source| Error::Sqlite {
        path: path.to_owned(),
        source,
    };
    let id = db_id(data, path).ok_or_else(|| {
        Error::Restore(format!("{} is outside the data directory", path.display()))
    })?;
    let shipped = fingerprint(path);
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(sqlite)?;
    conn.execute("BEGIN").await.map_err(sqlite)?;
    // The first read takes the read snapshot that pins the WAL.
    let _: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master")
        .fetch_one(&mut conn)
        .await
        .map_err(sqlite)?;
    let latest_seq = if sequencer {
        sqlx::query_scalar::<_, i64>("SELECT seq FROM sqlite_sequence WHERE name = 'repo_seq'")
            .fetch_optional(&mut conn)
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let path_owned = path.to_owned();
    let tmp_owned = tmp.to_owned();
    let state_owned = state.cloned();
    let built = tokio::task::spawn_blocking(move || {
        build_segment(&path_owned, state_owned.as_ref(), &tmp_owned)
    })
    .await
    .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    // Ends the read transaction whatever happened.
    let _ = conn.execute("COMMIT").await;
    let _ = conn.close().await;
    let (mut new_state, entries, size, page_count_changed) = built?;
    let new_generation = state.is_none();
    let (generation, index) = match state {
        Some(s) => (s.generation.clone(), s.next_index),
        None => (new_generation_id(), 0),
    };
    new_state.generation = generation.clone();
    new_state.shipped = shipped;
    let segment = if entries > 0 || page_count_changed || new_generation {
        new_state.next_index = index + 1;
        new_state.last_change = Instant::now();
        Some((
            tmp.to_owned(),
            segment_key(&id, &generation, index, cycle_ms),
            size,
        ))
    } else {
        let _ = std::fs::remove_file(tmp);
        new_state.next_index = index;
        new_state.last_change = state.map_or_else(Instant::now, |s| s.last_change);
        None
    };
    Ok(Snapshot {
        path: path.to_owned(),
        state: new_state,
        segment,
        new_generation,
        latest_seq,
    })
}

fn new_generation_id() -> String {
    new_generation()
}

/// Compares the image's pages with `state`'s hashes and writes the changed ones. Returns
/// the new state (generation and index filled in by the caller), the entries written, the
/// segment's size and whether the page count changed.
fn build_segment(
    path: &Path,
    state: Option<&DbState>,
    tmp: &Path,
) -> Result<(DbState, u32, u64, bool), Error> {
    let io = |e| Error::io(path, e);
    let since = state.map_or(0, |s| s.wal_frames);
    let image = PageImage::open(path, since)
        .map_err(io)?
        .ok_or_else(|| Error::io(path, std::io::ErrorKind::NotFound.into()))?;
    let page_size = image.page_size;
    let count = image.page_count;
    let incremental = state.filter(|s| {
        s.page_size == page_size
            && s.wal_salt.is_some()
            && s.wal_salt == image.wal_salt
            && image.wal_frames >= s.wal_frames
    });
    let mut hashes = state
        .filter(|s| s.page_size == page_size)
        .map(|s| s.hashes.clone())
        .unwrap_or_default();
    let old_count = u32::try_from(hashes.len()).unwrap_or(u32::MAX);
    hashes.resize(count as usize, 0);
    let pages: Vec<u32> = match incremental {
        Some(_) => {
            let mut pages: Vec<u32> = image
                .wal_pages_since
                .iter()
                .copied()
                .filter(|p| *p <= count)
                .chain(old_count.min(count) + 1..=count)
                .collect();
            pages.sort_unstable();
            pages.dedup();
            pages
        }
        None => (1..=count).collect(),
    };
    let full = state.is_none();
    let mut writer = SegmentWriter::create(tmp, page_size, count).map_err(|e| Error::io(tmp, e))?;
    let mut buf = vec![0u8; page_size as usize];
    for pgno in pages {
        image.read_page(pgno, &mut buf).map_err(io)?;
        let hash = page_hash(&buf);
        let slot = &mut hashes[(pgno - 1) as usize];
        if full || *slot != hash {
            writer.page(pgno, &buf).map_err(|e| Error::io(tmp, e))?;
            *slot = hash;
        }
    }
    let entries = writer.entries();
    let size = writer.finish().map_err(|e| Error::io(tmp, e))?;
    Ok((
        DbState {
            generation: String::new(),
            next_index: 0,
            page_size,
            hashes,
            wal_salt: image.wal_salt,
            wal_frames: image.wal_frames,
            shipped: Fingerprint::default(),
            last_change: Instant::now(),
        },
        entries,
        size,
        old_count != count,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteJournalMode, SqlitePoolOptions};

    async fn count(path: &Path) -> (i64, String) {
        let mut conn = SqliteConnectOptions::new()
            .filename(path)
            .connect()
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        (n, check)
    }

    async fn insert(pool: &sqlx::SqlitePool, from: i64, to: i64) {
        for i in from..to {
            sqlx::query("INSERT INTO t (id, body) VALUES (?, ?)")
                .bind(i)
                .bind(vec![(i % 251) as u8; 700])
                .execute(pool)
                .await
                .unwrap();
        }
    }

    /// Ships a live WAL database in three segments (base, incremental from the WAL, and
    /// after a WAL restart) and rebuilds it from them at each step.
    #[tokio::test]
    async fn segments_rebuild_a_live_wal_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("live.sqlite");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(&db)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
            .execute(&pool)
            .await
            .unwrap();
        insert(&pool, 0, 100).await;
        let restored = dir.path().join("restored.sqlite");
        let target = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&restored)
            .unwrap();
        let seg = dir.path().join("seg");

        let (state, entries, _, _) = build_segment(&db, None, &seg).unwrap();
        assert!(state.wal_frames > 0, "the writes are still in the WAL");
        assert_eq!(entries as usize, state.hashes.len());
        crate::replica::segment::apply(&std::fs::read(&seg).unwrap(), &target, None).unwrap();
        assert_eq!(count(&restored).await, (100, "ok".to_owned()));

        // More writes: only the pages of the new WAL frames are compared and shipped.
        insert(&pool, 100, 110).await;
        let (state2, entries, _, _) = build_segment(&db, Some(&state), &seg).unwrap();
        assert!(
            entries > 0 && (entries as usize) < state2.hashes.len() / 2,
            "{entries}"
        );
        crate::replica::segment::apply(&std::fs::read(&seg).unwrap(), &target, Some(4096)).unwrap();
        assert_eq!(count(&restored).await, (110, "ok".to_owned()));

        // A checkpoint that restarts the WAL: the next segment compares every page.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await
            .unwrap();
        insert(&pool, 110, 115).await;
        let (state3, entries, _, _) = build_segment(&db, Some(&state2), &seg).unwrap();
        assert_ne!(state3.wal_salt, state2.wal_salt);
        assert!(
            entries > 0 && (entries as usize) < state3.hashes.len() / 2,
            "{entries}"
        );
        crate::replica::segment::apply(&std::fs::read(&seg).unwrap(), &target, Some(4096)).unwrap();
        assert_eq!(count(&restored).await, (115, "ok".to_owned()));

        // Nothing changed: an empty segment.
        let (_, entries, _, changed) = build_segment(&db, Some(&state3), &seg).unwrap();
        assert_eq!((entries, changed), (0, false));
        pool.close().await;
    }
}
