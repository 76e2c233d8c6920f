//! `rookery demo`: builds a real signed repository with the engine and checks it like a relay.
//!
//! The account gets a genuine `did:plc` (derived from a signed genesis operation, not submitted
//! anywhere), posts are written in applyWrites-sized commits into a SQLite actor store, the
//! repository is streamed out as a CAR file, and that file is read back and verified: every
//! block hash, the commit signature, the MST structure and the canonical rebuild.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipld_core::ipld::Ipld;

use crate::crypto::{Algorithm, Keypair};
use crate::identity::plc;
use crate::repo::inspect::{self, CarReport};
use crate::repo::repository::{Repo, Write};
use crate::store::sqlite::{OpenOptions, begin_write};
use crate::store::{SqliteBlockStore, commit, export};
use crate::syntax::{Datetime, Handle, TidClock};

/// Records per commit, as the limit of one `applyWrites` call.
const WRITES_PER_COMMIT: usize = 200;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub records: usize,
    /// The CAR file to write.
    pub out: PathBuf,
    /// Where the actor store is created (replaced if present).
    pub store_path: PathBuf,
}

#[derive(Debug)]
pub struct DemoReport {
    pub did: String,
    pub handle: String,
    pub signing_key: String,
    pub records: usize,
    pub commits: usize,
    pub build_time: Duration,
    pub export_time: Duration,
    pub out: PathBuf,
    pub car: CarReport,
}

/// Runs the demo. Errors are reported as text: this is a command-line entry point.
pub async fn run(opts: &DemoOptions) -> anyhow::Result<DemoReport> {
    let key = Keypair::generate(Algorithm::K256);
    let rotation = Keypair::generate(Algorithm::K256);
    let handle: Handle = "demo.rookery.test".parse()?;
    let (did, _genesis) = plc::create_genesis(
        &key.public_key().to_did_key(),
        vec![rotation.public_key().to_did_key()],
        &handle,
        "http://localhost:2583",
        &rotation,
    )?;

    for suffix in ["", "-wal", "-shm"] {
        let mut path = opts.store_path.clone().into_os_string();
        path.push(suffix);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    let store = SqliteBlockStore::open(&opts.store_path, &OpenOptions::default()).await?;
    let clock = TidClock::default();
    let started = Instant::now();
    let mut repo: Option<Repo<SqliteBlockStore>> = None;
    let mut commits = 0;
    let mut written = 0;
    // The first commit may be empty (a new account's repository), then batches of posts.
    while repo.is_none() || written < opts.records {
        let n = WRITES_PER_COMMIT.min(opts.records - written);
        let writes: Vec<Write> = (written..written + n)
            .map(|i| Write::Create {
                collection: "app.bsky.feed.post".parse().expect("valid NSID"),
                rkey: clock.next().into(),
                record: post(i),
            })
            .collect();
        let rev = clock.next().to_string();
        let prepared = match &repo {
            None => Repo::format_init(store.clone(), did.as_str(), &key, rev, &writes).await?,
            Some(r) => r.format_commit(&writes, &key, rev).await?,
        };
        let mut tx = begin_write(store.pool()).await?;
        commit::persist(&mut tx, &prepared.data).await?;
        tx.commit().await?;
        repo = Some(Repo::apply(prepared));
        commits += 1;
        written += n;
    }
    let build_time = started.elapsed();

    let started = Instant::now();
    let file = tokio::fs::File::create(&opts.out).await?;
    let (mut file, _) =
        export::write_repo_car(&store, None, tokio::io::BufWriter::new(file)).await?;
    tokio::io::AsyncWriteExt::shutdown(&mut file).await?;
    let export_time = started.elapsed();
    // Closed before returning, not on drop: a dropped pool closes its connections later, in
    // the background, and the last one to close removes the `-wal` file by name. A next run
    // in this process would have replaced the files by then and lose its own WAL.
    drop(repo);
    store.pool().close().await;

    let file = tokio::fs::File::open(&opts.out).await?;
    let car = inspect::inspect(tokio::io::BufReader::new(file), Some(&key.public_key())).await?;
    Ok(DemoReport {
        did: did.to_string(),
        handle: handle.to_string(),
        signing_key: key.public_key().to_did_key(),
        records: written,
        commits,
        build_time,
        export_time,
        out: opts.out.clone(),
        car,
    })
}

fn post(i: usize) -> Ipld {
    Ipld::Map(BTreeMap::from([
        ("$type".into(), Ipld::String("app.bsky.feed.post".into())),
        (
            "text".into(),
            Ipld::String(format!("Post number {i} from the Rookery demo repository.")),
        ),
        (
            "createdAt".into(),
            Ipld::String(Datetime::now().to_string()),
        ),
        ("langs".into(), Ipld::List(vec![Ipld::String("en".into())])),
    ]))
}

impl DemoReport {
    /// Whether the exported repository passed every check.
    pub fn verified(&self) -> bool {
        self.car
            .repo
            .as_ref()
            .is_some_and(|r| r.verification.is_ok() && matches!(r.signature, Some(Ok(()))))
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "account:     {} (@{})", self.did, self.handle)?;
        writeln!(f, "signing key: {}", self.signing_key)?;
        writeln!(
            f,
            "built:       {} records in {} signed commits in {:.2?}",
            self.records, self.commits, self.build_time
        )?;
        writeln!(
            f,
            "exported:    {} ({} bytes) in {:.2?}",
            self.out.display(),
            self.car.bytes,
            self.export_time
        )?;
        writeln!(f, "read back and verified:")?;
        write!(f, "{}", self.car)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn demo_builds_exports_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let opts = DemoOptions {
            records: 450,
            out: dir.path().join("demo.car"),
            store_path: dir.path().join("demo.sqlite"),
        };
        let report = run(&opts).await.unwrap();
        assert!(report.verified(), "{report}");
        assert_eq!(report.records, 450);
        assert_eq!(report.commits, 3, "200 + 200 + 50");
        let repo = report.car.repo.as_ref().unwrap();
        assert_eq!(repo.did, report.did);
        let summary = repo.verification.as_ref().unwrap();
        assert_eq!(summary.records, 450);
        assert_eq!(summary.collections.get("app.bsky.feed.post"), Some(&450));
        assert!(report.did.starts_with("did:plc:") && report.did.len() == 32);
        // Running again replaces the store instead of appending to it.
        let again = run(&opts).await.unwrap();
        assert!(again.verified());
        assert_eq!(again.car.repo.unwrap().verification.unwrap().records, 450);
    }
}
