//! CAR export from the SQLite store and CAR import, with the benchmark's correctness checks.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use cid::Cid;
use futures::TryStreamExt;
use tokio::io::AsyncWrite;

use super::{Checks, Corpus, DID, DumpProfile, Export, Import, WalkProfile, open};
use crate::bench::{CountingWriter, Error, check_eq};
use crate::crypto::{Keypair, PublicKey};
use crate::repo::blockstore::{BlockMap, BlockStore, MemoryBlockStore};
use crate::repo::car::{self, CarReader, CarWriter, Limits};
use crate::repo::cbor;
use crate::repo::commit::Commit;
use crate::repo::mst::Mst;
use crate::repo::verify::{verify_blocks, verify_car};
use crate::store::sqlite::begin_write;
use crate::store::{SqliteBlockStore, blocks, root};

impl Export {
    pub(super) fn with_target(mut self, target: &'static str) -> Self {
        self.target = target;
        self
    }
}

pub(super) async fn timed_walk<W: AsyncWrite + Unpin + Send>(
    store: &SqliteBlockStore,
    head: Cid,
    out: W,
) -> Result<(W, Export, WalkProfile), Error> {
    let started = Instant::now();
    let (out, blocks, bytes, profile) = export_walk(store, head, out).await?;
    let export = Export {
        method: "MST walk",
        target: "",
        blocks,
        bytes,
        elapsed: started.elapsed(),
    };
    Ok((out, export, profile))
}

/// Writes the repository at `head` as a CAR in the order a reader can verify while streaming:
/// the commit, then each MST node (pre-order) followed by its entries' records, fetched with
/// one query per node.
async fn export_walk<W: AsyncWrite + Unpin + Send>(
    store: &SqliteBlockStore,
    head: Cid,
    out: W,
) -> Result<(W, usize, u64, WalkProfile), Error> {
    let mut profile = WalkProfile::default();
    let commit_bytes = store.get(&head).await?.ok_or(Error::MissingBlock(head))?;
    let commit = Commit::from_cbor(&commit_bytes)?;
    let tree = Mst::load(store.clone(), *commit.data()).await?;
    let mut car = CarWriter::new(CountingWriter::new(out), head);
    car.write_block(&head, &commit_bytes).await?;
    let mut written = HashSet::from([head]);
    let mut walker = tree.walk_blocks();
    loop {
        let t = Instant::now();
        let node = walker.next().await?;
        profile.nodes += t.elapsed();
        let Some(node) = node else { break };
        profile.node_count += 1;

        let t = Instant::now();
        let wanted: Vec<Cid> = node
            .records
            .iter()
            .filter(|cid| !written.contains(*cid))
            .copied()
            .collect();
        let found = if wanted.is_empty() {
            Default::default()
        } else {
            profile.record_queries += 1;
            let (found, missing) = store.get_many(&wanted).await?;
            if let Some(cid) = missing.first() {
                return Err(Error::MissingBlock(*cid));
            }
            found
        };
        profile.records += t.elapsed();

        let t = Instant::now();
        if written.insert(node.cid) {
            car.write_block(&node.cid, &node.bytes).await?;
        }
        for cid in &wanted {
            if written.insert(*cid) {
                let bytes = found.get(cid).ok_or(Error::MissingBlock(*cid))?;
                car.write_block(cid, bytes).await?;
            }
        }
        profile.write += t.elapsed();
    }
    let out = car.finish().await?;
    let bytes = out.bytes();
    Ok((out.into_inner(), written.len(), bytes, profile))
}

/// Writes every stored block (`blocks::stream_since` from the start) as a CAR rooted at `head`.
pub(super) async fn timed_dump<W: AsyncWrite + Unpin + Send>(
    store: &SqliteBlockStore,
    head: Cid,
    page: u32,
    out: W,
) -> Result<(Export, DumpProfile), Error> {
    let started = Instant::now();
    let mut profile = DumpProfile::default();
    let mut car = CarWriter::new(CountingWriter::new(out), head);
    let mut stream = std::pin::pin!(blocks::stream_since(store.pool().clone(), None, page));
    let mut count = 0;
    loop {
        let t = Instant::now();
        let next = stream.try_next().await?;
        profile.fetch += t.elapsed();
        let Some((cid, bytes)) = next else { break };
        let t = Instant::now();
        car.write_block(&cid, &bytes).await?;
        profile.write += t.elapsed();
        count += 1;
    }
    let t = Instant::now();
    let out = car.finish().await?;
    profile.write += t.elapsed();
    let export = Export {
        method: "block dump",
        target: "",
        blocks: count,
        bytes: out.bytes(),
        elapsed: started.elapsed(),
    };
    Ok((export, profile))
}

/// Verifies both exports (timing the verification of each), imports the walk CAR into a fresh
/// store, and checks every count against the repository written.
#[allow(clippy::too_many_arguments)]
pub(super) async fn import_and_check(
    walk_car: &[u8],
    dump_car: &[u8],
    corpus: &Corpus,
    key: &Keypair,
    head: &root::RepoRoot,
    store: &SqliteBlockStore,
    exports: &[Export],
    dir: &Path,
) -> Result<(Vec<Import>, Checks), Error> {
    let public = key.public_key();
    let expected: Vec<(String, Cid)> = corpus
        .expected
        .iter()
        .map(|(path, cid)| (path.clone(), *cid))
        .collect();
    let mut imports = Vec::new();
    let mut nodes = 0;
    for (source, bytes) in [("MST walk CAR", walk_car), ("block dump CAR", dump_car)] {
        let started = Instant::now();
        let (verified, blocks) =
            verify_car(bytes, Limits::default(), Some(DID), Some(&public)).await?;
        let elapsed = started.elapsed();
        check_eq("verified commit", head.cid, verified.commit_cid)?;
        check_eq(
            "records in the export",
            expected.len(),
            verified.records.len(),
        )?;
        if let Some(((want, want_cid), (got, got_cid))) =
            expected.iter().zip(&verified.records).find(|(a, b)| a != b)
        {
            return Err(Error::mismatch(
                "record in the export",
                format!("{want} → {want_cid}"),
                format!("{got} → {got_cid}"),
            ));
        }
        check_eq(
            "blocks in the export",
            1 + verified.node_count + expected.len(),
            blocks.len(),
        )?;
        nodes = verified.node_count;
        imports.push(Import {
            method: "verify_car",
            source,
            blocks: blocks.len(),
            bytes: bytes.len() as u64,
            elapsed,
        });
    }
    let blocks = 1 + nodes + expected.len();
    let stored = usize::try_from(store.count().await?).unwrap_or(usize::MAX);
    check_eq("blocks in the store", blocks, stored)?;
    for export in exports {
        check_eq("blocks exported", blocks, export.blocks)?;
    }

    // The phases of verify_car, on the walk CAR: reading with hash checks, then the rest.
    let started = Instant::now();
    let (_, map) = car::read_car_bytes(walk_car, Limits::default()).await?;
    let read = started.elapsed();
    let started = Instant::now();
    for (cid, bytes) in &map {
        if !crate::repo::cid::verify(cid, bytes) {
            return Err(Error::mismatch("block hash", cid, "other content"));
        }
    }
    let hash_only = started.elapsed();
    let started = Instant::now();
    verify_blocks(&map, head.cid, Some(DID), Some(&public)).await?;
    let verify = started.elapsed();
    imports.push(Import {
        method: "  read + hash check",
        source: "MST walk CAR",
        blocks: map.len(),
        bytes: walk_car.len() as u64,
        elapsed: read,
    });
    imports.push(Import {
        method: "    SHA-256 alone",
        source: "MST walk CAR",
        blocks: map.len(),
        bytes: walk_car.len() as u64,
        elapsed: hash_only,
    });
    imports.push(Import {
        method: "  verify_blocks",
        source: "MST walk CAR",
        blocks: map.len(),
        bytes: walk_car.len() as u64,
        elapsed: verify,
    });
    for (method, elapsed) in profile_verify(&map, head.cid, &public).await? {
        imports.push(Import {
            method,
            source: "MST walk CAR",
            blocks: map.len(),
            bytes: walk_car.len() as u64,
            elapsed,
        });
    }

    let target = open(dir, "import.sqlite").await?;
    let started = Instant::now();
    let reader = CarReader::new(walk_car, Limits::default()).await?;
    let imported = car::read_into_store(reader, &target, &head.rev).await?;
    let elapsed = started.elapsed();
    let in_target = usize::try_from(target.count().await?).unwrap_or(usize::MAX);
    target.pool().close().await;
    check_eq("blocks read by the import", blocks, imported.blocks)?;
    check_eq("blocks stored by the import", blocks, in_target)?;
    imports.push(Import {
        method: "read_into_store",
        source: "MST walk CAR",
        blocks: imported.blocks,
        bytes: walk_car.len() as u64,
        elapsed,
    });

    // For comparison: the same blocks in one transaction (read whole, then one put_many).
    let target = open(dir, "import-one-tx.sqlite").await?;
    let started = Instant::now();
    let (_, map) = car::read_car_bytes(walk_car, Limits::default()).await?;
    let mut tx = begin_write(target.pool()).await?;
    blocks::put_many(&mut tx, &map, &head.rev).await?;
    tx.commit().await.map_err(crate::store::Error::from)?;
    let elapsed = started.elapsed();
    let stored = usize::try_from(target.count().await?).unwrap_or(usize::MAX);
    target.pool().close().await;
    check_eq("blocks stored in one transaction", blocks, stored)?;
    imports.push(Import {
        method: "read + 1-txn put_many",
        source: "MST walk CAR",
        blocks: stored,
        bytes: walk_car.len() as u64,
        elapsed,
    });
    Ok((
        imports,
        Checks {
            records: expected.len(),
            nodes,
            blocks,
            imported: in_target,
        },
    ))
}

/// The phases of `verify_blocks`, re-run one by one.
async fn profile_verify(
    map: &BlockMap,
    head: Cid,
    key: &PublicKey,
) -> Result<Vec<(&'static str, Duration)>, Error> {
    let mut phases = Vec::new();
    let t = Instant::now();
    let store = MemoryBlockStore::from_blocks(map);
    phases.push(("    copy into memory store", t.elapsed()));
    let t = Instant::now();
    let commit = Commit::from_cbor(&store.get_required(&head).await?)?;
    commit.verify(key)?;
    phases.push(("    commit + signature", t.elapsed()));
    let t = Instant::now();
    let tree = Mst::load(store.clone(), *commit.data()).await?;
    let mut walker = tree.walk_blocks();
    while walker.next().await?.is_some() {}
    phases.push(("    MST load + node walk", t.elapsed()));
    let t = Instant::now();
    let leaves = tree.all_leaves().await?;
    phases.push(("    list leaves", t.elapsed()));
    let t = Instant::now();
    for (_, cid) in &leaves {
        cbor::decode(&store.get_required(cid).await?)?;
    }
    phases.push(("    fetch + decode records", t.elapsed()));
    let t = Instant::now();
    let rebuilt = Mst::from_sorted(MemoryBlockStore::new(), leaves)?.root_cid();
    phases.push(("    canonical rebuild", t.elapsed()));
    check_eq("rebuilt MST root", *commit.data(), rebuilt)?;
    Ok(phases)
}
