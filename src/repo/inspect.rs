//! `rookery car inspect`: what a CAR file holds, with every check a receiver would make.

use std::collections::BTreeMap;
use std::fmt;

use cid::Cid;

use super::blockstore::BlockMap;
use super::car::{self, CarReader, Limits};
use super::commit::Commit;
use super::verify::{self, VerifiedRepo};
use crate::crypto::PublicKey;

/// What a CAR holds. `repo` is set when its root is a repository commit.
#[derive(Debug)]
pub struct CarReport {
    pub roots: Vec<Cid>,
    pub blocks: usize,
    pub bytes: u64,
    /// Blocks by codec: DAG-CBOR and raw.
    pub cbor_blocks: usize,
    pub raw_blocks: usize,
    pub repo: Option<RepoReport>,
}

/// The repository found at a CAR's root commit.
#[derive(Debug)]
pub struct RepoReport {
    pub did: String,
    pub version: i64,
    pub rev: Option<String>,
    pub data: Cid,
    /// `Ok` when the whole repository verified; else why not.
    pub verification: Result<VerifiedSummary, String>,
    /// Whether the signature verified, when a key was given.
    pub signature: Option<Result<(), String>>,
}

#[derive(Debug)]
pub struct VerifiedSummary {
    pub records: usize,
    pub nodes: usize,
    pub collections: BTreeMap<String, usize>,
}

impl From<&VerifiedRepo> for VerifiedSummary {
    fn from(v: &VerifiedRepo) -> Self {
        let mut collections = BTreeMap::new();
        for (path, _) in &v.records {
            let collection = path.split('/').next().unwrap_or_default();
            *collections.entry(collection.to_owned()).or_insert(0) += 1;
        }
        VerifiedSummary {
            records: v.records.len(),
            nodes: v.node_count,
            collections,
        }
    }
}

/// Reads a CAR (every block hash verified, hostile-input limits applied). When its single root
/// is a commit, the repository is verified too: MST structure, records present and valid, the
/// canonical rebuild matching `data`, and the signature when `key` is given.
pub async fn inspect<R: tokio::io::AsyncRead + Unpin + Send>(
    reader: R,
    key: Option<&PublicKey>,
) -> Result<CarReport, car::Error> {
    let mut car = CarReader::new(reader, Limits::default()).await?;
    let roots = car.roots().to_vec();
    let mut blocks = BlockMap::new();
    let (mut cbor_blocks, mut raw_blocks) = (0, 0);
    while let Some((cid, bytes)) = car.next_block().await? {
        match cid.codec() {
            super::cid::RAW => raw_blocks += 1,
            _ => cbor_blocks += 1,
        }
        blocks.insert(cid, bytes);
    }
    let repo = match roots.as_slice() {
        [root] => match blocks.get(root).map(|b| Commit::from_cbor(b)) {
            Some(Ok(commit)) => Some(repo_report(&blocks, *root, commit, key).await),
            _ => None,
        },
        _ => None,
    };
    Ok(CarReport {
        roots,
        blocks: car.blocks_read(),
        bytes: car.bytes_read(),
        cbor_blocks,
        raw_blocks,
        repo,
    })
}

async fn repo_report(
    blocks: &BlockMap,
    root: Cid,
    commit: Commit,
    key: Option<&PublicKey>,
) -> RepoReport {
    let verification = verify::verify_blocks(blocks, root, None, None)
        .await
        .map(|v| VerifiedSummary::from(&v))
        .map_err(|e| e.to_string());
    let signature = key.map(|k| commit.verify(k).map_err(|e| e.to_string()));
    RepoReport {
        did: commit.did().to_owned(),
        version: commit.version(),
        rev: commit.rev().map(str::to_owned),
        data: *commit.data(),
        verification,
        signature,
    }
}

impl fmt::Display for CarReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roots: Vec<String> = self.roots.iter().map(Cid::to_string).collect();
        writeln!(f, "roots:       {}", roots.join(", "))?;
        writeln!(
            f,
            "blocks:      {} ({} DAG-CBOR, {} raw), {} bytes, every hash verified",
            self.blocks, self.cbor_blocks, self.raw_blocks, self.bytes
        )?;
        let Some(repo) = &self.repo else {
            return writeln!(f, "repository:  none (the root is not a single commit)");
        };
        writeln!(f, "repository:  {} (version {})", repo.did, repo.version)?;
        writeln!(f, "rev:         {}", repo.rev.as_deref().unwrap_or("-"))?;
        writeln!(f, "data:        {}", repo.data)?;
        match &repo.signature {
            Some(Ok(())) => writeln!(f, "signature:   valid")?,
            Some(Err(e)) => writeln!(f, "signature:   INVALID: {e}")?,
            None => writeln!(f, "signature:   not checked (no --key)")?,
        }
        match &repo.verification {
            Ok(v) => {
                writeln!(
                    f,
                    "structure:   valid: {} records in {} MST nodes, canonical tree",
                    v.records, v.nodes
                )?;
                for (collection, n) in &v.collections {
                    writeln!(f, "  {collection:<40} {n}")?;
                }
                Ok(())
            }
            Err(e) => writeln!(f, "structure:   INVALID: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/fixtures/interop/extra/indigo/testing/testdata/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn did_doc_key(name: &str) -> PublicKey {
        let doc: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
        let method = doc["verificationMethod"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"].as_str().unwrap().ends_with("#atproto"))
            .unwrap();
        let multibase = method["publicKeyMultibase"].as_str().unwrap();
        PublicKey::from_legacy_multibase(multibase, crate::crypto::Algorithm::K256)
            .or_else(|_| PublicKey::from_multikey(multibase))
            .unwrap()
    }

    /// The real repository exports of the reference implementations: every block verifies,
    /// and rebuilding each MST from its records gives the commit's `data`.
    #[tokio::test]
    async fn real_repository_exports() {
        let cases = [
            ("greenground.repo.car", 2, Some("greenground.didDoc.json")),
            ("divy.repo", 6, None),
            (
                "paul_staging.repo.car",
                185,
                Some("paul_staging.didDoc.json"),
            ),
            ("fakermaker.repo.car", 142, None),
            (
                "bafyreieovfuizojpw3zresz7sx3nk4trm2by23pt5rxbey3jme4uo5ogiu.car",
                6,
                None,
            ),
        ];
        for (file, expect_records, key_doc) in cases {
            let bytes = fixture(file);
            let key = key_doc.map(did_doc_key);
            let report = inspect(&bytes[..], key.as_ref()).await.unwrap();
            assert_eq!(report.bytes, bytes.len() as u64, "{file}");
            let repo = report
                .repo
                .as_ref()
                .unwrap_or_else(|| panic!("{file}: no repo"));
            let summary = repo
                .verification
                .as_ref()
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(summary.records, expect_records, "{file}");
            if key.is_some() {
                assert_eq!(repo.signature.as_ref().unwrap(), &Ok(()), "{file}");
            }
            let text = report.to_string();
            assert!(text.contains("canonical tree"), "{file}: {text}");
        }
    }

    #[tokio::test]
    async fn a_car_that_is_not_a_repository_and_a_corrupt_one() {
        // A partial repository: the commit is there but most of the tree is not.
        let report = inspect(&fixture("repo_slice.car")[..], None).await.unwrap();
        let repo = report.repo.unwrap();
        assert!(repo.verification.unwrap_err().contains("missing"));

        let mut bytes = fixture("greenground.repo.car");
        let last = bytes.len() - 3;
        bytes[last] ^= 0x01;
        let err = inspect(&bytes[..], None).await.unwrap_err();
        assert!(err.to_string().contains("hash does not match"), "{err}");
    }
}
