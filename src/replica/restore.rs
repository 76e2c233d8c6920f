//! Rebuilding the data directory from the bucket, verifying it, and the listing and
//! pruning of generations.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use super::bucket::{Bucket, Object};
use super::segment;
use super::ship::wal_path;
use super::{Error, FIXED_DATABASES, SEQ_LEASE_KEY, UPLOAD_CONCURRENCY, WORK_DIR, now_ms};
use crate::actor::ActorRepo;
use crate::crypto::{Algorithm, Keypair};
use crate::repo::commit::Commit;
use crate::syntax::Did;

/// File under [`WORK_DIR`] left by a restore: the next start announces repositories whose
/// commit may be missing from the firehose (see [`announce_restored`]).
pub(crate) const RESTORED_MARKER: &str = "restored";

/// One segment key, parsed.
#[derive(Debug, Clone)]
struct SegmentKey {
    key: String,
    db: String,
    generation: String,
    index: u64,
    cycle_ms: u64,
    size: u64,
}

fn parse_key(object: &Object) -> Option<SegmentKey> {
    let rest = object.key.strip_prefix("dbs/")?;
    let (head, file) = rest.rsplit_once('/')?;
    let (db, generation) = head.rsplit_once('/')?;
    let name = file.strip_suffix(".seg")?;
    let (index, cycle_ms) = name.split_once('-')?;
    if !generation.starts_with('g') || db.split('/').any(|c| c.is_empty() || c == "..") {
        return None;
    }
    Some(SegmentKey {
        key: object.key.clone(),
        db: db.to_owned(),
        generation: generation.to_owned(),
        index: index.parse().ok()?,
        cycle_ms: cycle_ms.parse().ok()?,
        size: object.size,
    })
}

/// A generation of one database in the bucket.
#[derive(Debug, Clone)]
pub struct Generation {
    pub db: String,
    pub generation: String,
    /// Cycle times (ms since the epoch) of its first and last segment.
    pub first_ms: u64,
    pub last_ms: u64,
    pub segments: usize,
    pub bytes: u64,
}

/// Segments grouped by database, then generation, in index order.
type Catalog = BTreeMap<String, BTreeMap<String, Vec<SegmentKey>>>;

async fn catalog(bucket: &Bucket) -> Result<Catalog, Error> {
    let mut catalog: Catalog = BTreeMap::new();
    for object in bucket.list("dbs/").await? {
        if let Some(seg) = parse_key(&object) {
            catalog
                .entry(seg.db.clone())
                .or_default()
                .entry(seg.generation.clone())
                .or_default()
                .push(seg);
        }
    }
    for generations in catalog.values_mut() {
        for segments in generations.values_mut() {
            segments.sort_by_key(|s| s.index);
        }
    }
    Ok(catalog)
}

/// Every generation in the bucket.
pub async fn list_generations(bucket: &Bucket) -> Result<Vec<Generation>, Error> {
    let mut out = Vec::new();
    for (db, generations) in catalog(bucket).await? {
        for (generation, segments) in generations {
            out.push(Generation {
                db: db.clone(),
                generation,
                first_ms: segments.first().map_or(0, |s| s.cycle_ms),
                last_ms: segments.last().map_or(0, |s| s.cycle_ms),
                segments: segments.len(),
                bytes: segments.iter().map(|s| s.size).sum(),
            });
        }
    }
    Ok(out)
}

/// The segments to apply for one database: of the newest generation whose base is at or
/// before `to`, the contiguous run from index 0 up to `to`.
fn chain(generations: &BTreeMap<String, Vec<SegmentKey>>, to: Option<u64>) -> Vec<SegmentKey> {
    for segments in generations.values().rev() {
        let mut run = Vec::new();
        for (expected, seg) in segments.iter().enumerate() {
            if seg.index != expected as u64 || to.is_some_and(|t| seg.cycle_ms > t) {
                break;
            }
            run.push(seg.clone());
        }
        if !run.is_empty() {
            return run;
        }
    }
    Vec::new()
}

/// What a restore did.
#[derive(Debug, Clone, Default)]
pub struct RestoreReport {
    pub databases: usize,
    pub segments: usize,
    pub bytes: u64,
    pub files: usize,
    /// Actor stores in the bucket left out because the restored account database has no
    /// such account (deleted accounts).
    pub skipped_stores: usize,
    /// Repositories whose head commit was checked.
    pub verified_repos: usize,
    /// The sequencer's counter after the restore (past the lease).
    pub seq_floor: i64,
    pub elapsed: Duration,
}

async fn rebuild(
    data: &Path,
    bucket: &Bucket,
    db: &str,
    segments: &[SegmentKey],
) -> Result<u64, Error> {
    let path = data.join(db);
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| Error::io(parent, e))?;
    }
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let _ = std::fs::remove_file(wal_path(&path));
    let mut page_size = None;
    let mut bytes = 0;
    for seg in segments {
        let body = bucket
            .get(&seg.key)
            .await?
            .ok_or_else(|| Error::Restore(format!("segment {} vanished", seg.key)))?;
        bytes += body.len() as u64;
        let applied = segment::apply(&body, &file, page_size).map_err(|source| Error::Segment {
            key: seg.key.clone(),
            source,
        })?;
        page_size = Some(applied);
    }
    file.sync_all().map_err(|e| Error::io(&path, e))?;
    Ok(bytes)
}

async fn connect(path: &Path) -> Result<SqliteConnection, Error> {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .connect()
        .await
        .map_err(|source| Error::Sqlite {
            path: path.to_owned(),
            source,
        })
}

async fn integrity_check(path: &Path) -> Result<(), Error> {
    let mut conn = connect(path).await?;
    let result: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .map_err(|source| Error::Sqlite {
            path: path.to_owned(),
            source,
        })?;
    let _ = conn.close().await;
    if result != "ok" {
        return Err(Error::Verify {
            path: path.to_owned(),
            reason: format!("integrity_check: {result}"),
        });
    }
    Ok(())
}

/// Checks that the store's head commit is present, hashes to its CID and is signed by the
/// account's key.
async fn verify_repo(path: &Path) -> Result<bool, Error> {
    let fail = |reason: String| Error::Verify {
        path: path.to_owned(),
        reason,
    };
    let dir = path.parent().ok_or_else(|| fail("no directory".into()))?;
    let key_hex = tokio::fs::read_to_string(dir.join("key"))
        .await
        .map_err(|e| fail(format!("signing key: {e}")))?;
    let key = Keypair::from_private_hex(Algorithm::K256, key_hex.trim())
        .map_err(|e| fail(format!("signing key: {e}")))?;
    let mut conn = connect(path).await?;
    let head = crate::store::root::get(&mut conn)
        .await
        .map_err(|e| fail(format!("repo head: {e}")))?;
    let Some(head) = head else {
        // A store whose creation never committed: nothing to verify.
        return Ok(false);
    };
    let block = crate::store::blocks::get(&mut conn, &head.cid)
        .await
        .map_err(|e| fail(format!("head block: {e}")))?
        .ok_or_else(|| fail(format!("head commit {} is missing", head.cid)))?;
    let _ = conn.close().await;
    if !crate::repo::cid::verify(&head.cid, &block) {
        return Err(fail(format!(
            "head commit {} does not match its CID",
            head.cid
        )));
    }
    let commit = Commit::from_cbor(&block).map_err(|e| fail(format!("head commit: {e}")))?;
    commit
        .verify(&key.public_key())
        .map_err(|e| fail(format!("head commit signature: {e}")))?;
    Ok(true)
}

async fn restored_dids(path: &Path) -> Result<HashSet<String>, Error> {
    let mut conn = connect(path).await?;
    let dids: Vec<String> = sqlx::query_scalar("SELECT did FROM actor")
        .fetch_all(&mut conn)
        .await
        .map_err(|source| Error::Sqlite {
            path: path.to_owned(),
            source,
        })?;
    let _ = conn.close().await;
    Ok(dids.into_iter().collect())
}

/// Whether `data` holds no database: a restore may write there.
pub(crate) fn is_empty(data: &Path) -> bool {
    !data.join(FIXED_DATABASES[1]).exists() && !data.join(crate::actor::ACTORS_DIR).exists()
}

/// Rebuilds every database under `data` (which must hold none) from the bucket, as of
/// `to` (ms since the epoch) or the newest point, and verifies the result. Fails, having
/// written possibly part of the files, if anything does not verify.
pub async fn restore(
    data: &Path,
    bucket: &Bucket,
    to: Option<u64>,
) -> Result<RestoreReport, Error> {
    let started = Instant::now();
    if !is_empty(data) {
        return Err(Error::Restore(format!(
            "{} already holds databases; restore into an empty directory",
            data.display()
        )));
    }
    tokio::fs::create_dir_all(data)
        .await
        .map_err(|e| Error::io(data, e))?;
    let catalog = catalog(bucket).await?;
    if catalog.is_empty() {
        return Err(Error::Restore("the bucket holds no replica".into()));
    }
    let mut report = RestoreReport::default();
    // The top-level databases first: the account database says which stores still exist.
    let mut stores = Vec::new();
    for (db, generations) in &catalog {
        let segments = chain(generations, to);
        if segments.is_empty() {
            continue;
        }
        if db.contains('/') {
            stores.push((db.clone(), segments));
            continue;
        }
        report.bytes += rebuild(data, bucket, db, &segments).await?;
        report.segments += segments.len();
        report.databases += 1;
    }
    let accounts = data.join(FIXED_DATABASES[1]);
    let live = if accounts.exists() {
        Some(restored_dids(&accounts).await?)
    } else {
        None
    };
    let stores: Vec<_> = stores
        .into_iter()
        .filter(|(db, _)| {
            let did = db.rsplit('/').nth(1).unwrap_or_default();
            let keep = live.as_ref().is_none_or(|live| live.contains(did));
            if !keep {
                report.skipped_stores += 1;
            }
            keep
        })
        .collect();
    let kept: HashSet<String> = stores
        .iter()
        .filter_map(|(db, _)| db.rsplit_once('/').map(|(dir, _)| dir.to_owned()))
        .collect();
    let results: Vec<Result<(u64, usize), Error>> = futures::stream::iter(stores)
        .map(|(db, segments)| async move {
            let bytes = rebuild(data, bucket, &db, &segments).await?;
            Ok((bytes, segments.len()))
        })
        .buffer_unordered(UPLOAD_CONCURRENCY)
        .collect()
        .await;
    for result in results {
        let (bytes, segments) = result?;
        report.bytes += bytes;
        report.segments += segments;
        report.databases += 1;
    }
    // Small files: account keys of the kept stores, generated secrets.
    for object in bucket.list("files/").await? {
        let Some(rel) = object.key.strip_prefix("files/") else {
            continue;
        };
        if rel.split('/').any(|c| c.is_empty() || c == "..") {
            continue;
        }
        if rel.contains('/')
            && !rel
                .rsplit_once('/')
                .is_some_and(|(dir, _)| kept.contains(dir))
        {
            continue;
        }
        let Some(bytes) = bucket.get(&object.key).await? else {
            continue;
        };
        let path = data.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        write_private(&path, &bytes)?;
        report.files += 1;
    }
    verify(data, &mut report).await?;
    report.seq_floor = raise_seq_floor(data, bucket).await?;
    let work = data.join(WORK_DIR);
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    std::fs::write(work.join(RESTORED_MARKER), now_ms().to_string())
        .map_err(|e| Error::io(work.join(RESTORED_MARKER), e))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| Error::io(path, e))?;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

/// `PRAGMA integrity_check` on every restored database, and every repository's head.
async fn verify(data: &Path, report: &mut RestoreReport) -> Result<(), Error> {
    for name in FIXED_DATABASES {
        let path = data.join(name);
        if path.exists() {
            integrity_check(&path).await?;
        }
    }
    let mut stores = Vec::new();
    let root = data.join(crate::actor::ACTORS_DIR);
    if let Ok(shards) = std::fs::read_dir(&root) {
        for shard in shards.flatten() {
            for account in std::fs::read_dir(shard.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let store = account.path().join(crate::actor::STORE_FILE);
                if store.is_file() {
                    stores.push(store);
                }
            }
        }
    }
    let results: Vec<Result<bool, Error>> = futures::stream::iter(stores)
        .map(|store| async move {
            integrity_check(&store).await?;
            verify_repo(&store).await
        })
        .buffer_unordered(UPLOAD_CONCURRENCY)
        .collect()
        .await;
    for result in results {
        if result? {
            report.verified_repos += 1;
        }
    }
    Ok(())
}

/// Moves the sequencer's counter past the lease, so no `seq` is handed out twice.
async fn raise_seq_floor(data: &Path, bucket: &Bucket) -> Result<i64, Error> {
    let path = data.join(FIXED_DATABASES[0]);
    if !path.exists() {
        return Ok(0);
    }
    let lease = bucket
        .get(SEQ_LEASE_KEY)
        .await?
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let sqlite = |source| Error::Sqlite {
        path: path.clone(),
        source,
    };
    let mut conn = connect(&path).await?;
    let current: i64 = sqlx::query_scalar(
        "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'repo_seq'), 0)",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(sqlite)?;
    let floor = current.max(lease);
    if floor > current {
        let updated = sqlx::query("UPDATE sqlite_sequence SET seq = ? WHERE name = 'repo_seq'")
            .bind(floor)
            .execute(&mut conn)
            .await
            .map_err(sqlite)?;
        if updated.rows_affected() == 0 {
            sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ('repo_seq', ?)")
                .bind(floor)
                .execute(&mut conn)
                .await
                .map_err(sqlite)?;
        }
    }
    let _ = conn.close().await;
    Ok(floor)
}

/// At boot: restores from `bucket` when `data` holds no database and the bucket holds a
/// replica. Returns the report of the restore, if one ran.
pub async fn restore_if_empty(
    data: &Path,
    bucket: &Bucket,
) -> Result<Option<RestoreReport>, Error> {
    if !is_empty(data) {
        return Ok(None);
    }
    if bucket.list("dbs/").await?.is_empty() {
        return Ok(None);
    }
    restore(data, bucket, None).await.map(Some)
}

/// After a restore, once the services are open: announces with a `#sync` event every
/// repository whose head is newer than its last event in the restored sequencer (its
/// commit's event was lost with the disk). Removes the marker. Returns how many.
pub(crate) async fn announce_restored(data: &Path, repo: &ActorRepo) -> Result<usize, Error> {
    let marker = data.join(WORK_DIR).join(RESTORED_MARKER);
    if !marker.exists() {
        return Ok(0);
    }
    let sqlite = |source| Error::Sqlite {
        path: data.join(FIXED_DATABASES[0]),
        source,
    };
    let latest: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT did, max(rev) FROM repo_seq WHERE rev IS NOT NULL GROUP BY did")
            .fetch_all(repo.sequencer().pool())
            .await
            .map_err(sqlite)?;
    let latest: BTreeMap<String, String> = latest
        .into_iter()
        .filter_map(|(did, rev)| rev.map(|r| (did, r)))
        .collect();
    let accounts = data.join(FIXED_DATABASES[1]);
    let dids = if accounts.exists() {
        restored_dids(&accounts).await?
    } else {
        HashSet::new()
    };
    let mut announced = 0;
    for did in dids {
        let Ok(parsed) = did.parse::<Did>() else {
            continue;
        };
        let Ok(Some(handle)) = repo.stores().open(&parsed).await else {
            continue;
        };
        let head = {
            let Ok(mut conn) = handle.pool().acquire().await else {
                continue;
            };
            crate::store::root::get(&mut conn).await.ok().flatten()
        };
        drop(handle);
        let Some(head) = head else { continue };
        if latest.get(&did).is_some_and(|rev| *rev >= head.rev) {
            continue;
        }
        match repo.sequence_sync(&parsed).await {
            Ok(_) => announced += 1,
            Err(err) => {
                tracing::warn!(%did, error = %err, "announcing a restored repository failed")
            }
        }
    }
    std::fs::remove_file(&marker).map_err(|e| Error::io(&marker, e))?;
    Ok(announced)
}

/// Deletes generations older than `retention` that a newer generation of the same
/// database supersedes. Returns the number of segments deleted.
pub async fn prune(bucket: &Bucket, retention: Duration) -> Result<usize, Error> {
    let cutoff = now_ms().saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(u64::MAX));
    let mut doomed = Vec::new();
    for generations in catalog(bucket).await?.values() {
        // The newest generation is always kept; an older one once the next one's base is
        // older than the cutoff (nothing in the retention window needs it).
        let list: Vec<_> = generations.values().collect();
        for pair in list.windows(2) {
            let next_base = pair[1].first().map_or(u64::MAX, |s| s.cycle_ms);
            if next_base < cutoff {
                doomed.extend(pair[0].iter().map(|s| s.key.clone()));
            }
        }
    }
    bucket.delete(&doomed).await?;
    Ok(doomed.len())
}
