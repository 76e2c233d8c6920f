//! The MST known-answer suite over any block store, driven by the interop vectors in
//! `fixtures/interop/`. Unit tests run it on `MemoryBlockStore`; other stores can run it too.

use std::collections::BTreeSet;

use cid::Cid;
use serde::Deserialize;

use super::{Error, Mst, RecordOp, diff, invert, is_valid_key};
use crate::repo::blockstore::{BlockMap, BlockStore};

fn fixture(path: &str) -> String {
    let full = format!("{}/fixtures/interop/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn cid(s: &str) -> Cid {
    Cid::try_from(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KnownTrees {
    leaf_value: String,
    cases: Vec<KnownTree>,
    allowed_keys: Vec<String>,
    rejected_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KnownTree {
    name: String,
    initial_keys: Vec<String>,
    expected_root_cid: String,
    expected_root_layer: u8,
    steps: Vec<KnownStep>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KnownStep {
    op: String,
    key: String,
    expected_root_cid: String,
    expected_root_layer: u8,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommitProof {
    comment: String,
    leaf_value: String,
    keys: Vec<String>,
    adds: Vec<String>,
    dels: Vec<String>,
    root_before_commit: String,
    root_after_commit: String,
    blocks_in_proof: Vec<String>,
}

async fn persist<S: BlockStore + Clone>(tree: &Mst<S>, rev: &str) {
    let blocks = tree.collect_new_blocks().await.unwrap();
    tree.store().put_many(&blocks, rev).await.unwrap();
    assert!(tree.collect_new_blocks().await.unwrap().is_empty());
}

fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut perm in permutations(&rest) {
            perm.insert(0, first.clone());
            out.push(perm);
        }
    }
    out
}

async fn known_trees<S: BlockStore + Clone>(make_store: &impl AsyncFn() -> S) {
    let data: KnownTrees =
        serde_json::from_str(&fixture("extra/atproto/transcribed/mst-known-trees.json")).unwrap();
    let leaf = cid(&data.leaf_value);
    assert_eq!(data.cases.len(), 7);
    for case in &data.cases {
        let name = &case.name;
        let mut tree = Mst::create(make_store().await);
        for key in &case.initial_keys {
            tree = tree.add(key, leaf).await.unwrap();
        }
        assert_eq!(tree.root_cid(), cid(&case.expected_root_cid), "{name}");
        assert_eq!(tree.layer(), case.expected_root_layer, "{name}");

        // The same tree built in bulk, and reloaded from the store.
        let sorted: BTreeSet<&String> = case.initial_keys.iter().collect();
        let bulk = Mst::from_sorted(
            make_store().await,
            sorted.iter().map(|k| (k.to_string(), leaf)),
        )
        .unwrap();
        assert_eq!(bulk.root_cid(), tree.root_cid(), "{name} bulk");
        assert_eq!(bulk.layer(), tree.layer(), "{name} bulk");
        persist(&tree, "rev0").await;
        let loaded = Mst::load(tree.store().clone(), tree.root_cid())
            .await
            .unwrap();
        assert_eq!(loaded.layer(), case.expected_root_layer, "{name} loaded");
        let leaves = loaded.all_leaves().await.unwrap();
        let keys: Vec<&str> = leaves.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, sorted.iter().map(|k| k.as_str()).collect::<Vec<_>>());

        let mut tree = loaded;
        for (n, step) in case.steps.iter().enumerate() {
            let before = tree.clone();
            tree = match step.op.as_str() {
                "add" => tree.add(&step.key, leaf).await.unwrap(),
                "delete" => tree.delete(&step.key).await.unwrap(),
                other => panic!("unknown op {other}"),
            };
            assert_eq!(
                tree.root_cid(),
                cid(&step.expected_root_cid),
                "{name} step {n}"
            );
            assert_eq!(tree.layer(), step.expected_root_layer, "{name} step {n}");
            // The diff of the step is exactly the step.
            let d = diff(Some(&before), &tree).await.unwrap();
            let expected_op = match step.op.as_str() {
                "add" => RecordOp::Create {
                    key: step.key.clone(),
                    cid: leaf,
                },
                _ => RecordOp::Delete {
                    key: step.key.clone(),
                    prev: leaf,
                },
            };
            assert_eq!(d.ops(), vec![expected_op], "{name} step {n}");
            persist(&tree, &format!("rev{}", n + 1)).await;
            let reloaded = Mst::load(tree.store().clone(), tree.root_cid())
                .await
                .unwrap();
            assert_eq!(
                reloaded.layer(),
                step.expected_root_layer,
                "{name} step {n}"
            );
        }
    }

    for key in &data.allowed_keys {
        assert!(is_valid_key(key), "{key}");
        let tree = Mst::create(make_store().await)
            .add(key, leaf)
            .await
            .unwrap();
        assert_eq!(tree.get(key).await.unwrap(), Some(leaf), "{key}");
    }
    assert_eq!(data.rejected_keys.len(), 23);
    for key in &data.rejected_keys {
        assert!(!is_valid_key(key), "{key}");
        let err = Mst::create(make_store().await)
            .add(key, leaf)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidKey(ref k) if k == key),
            "{key}: {err}"
        );
    }
}

async fn commit_proofs<S: BlockStore + Clone>(make_store: &impl AsyncFn() -> S) -> usize {
    let cases: Vec<CommitProof> =
        serde_json::from_str(&fixture("firehose/commit-proof-fixtures.json")).unwrap();
    assert_eq!(cases.len(), 6);
    let mut exact = 0;
    for case in &cases {
        let name = &case.comment;
        let leaf = cid(&case.leaf_value);
        let mut tree = Mst::create(make_store().await);
        for key in &case.keys {
            tree = tree.add(key, leaf).await.unwrap();
        }
        assert_eq!(tree.root_cid(), cid(&case.root_before_commit), "{name}");
        persist(&tree, "before").await;
        let before = tree.clone();

        let mut ops = Vec::new();
        for key in &case.adds {
            tree = tree.add(key, leaf).await.unwrap();
            ops.push(RecordOp::Create {
                key: key.clone(),
                cid: leaf,
            });
        }
        for key in &case.dels {
            tree = tree.delete(key).await.unwrap();
            ops.push(RecordOp::Delete {
                key: key.clone(),
                prev: leaf,
            });
        }
        let after = cid(&case.root_after_commit);
        assert_eq!(tree.root_cid(), after, "{name}");

        // What a PDS sends: the new nodes, plus the covering proof of every touched key.
        let d = diff(Some(&before), &tree).await.unwrap();
        let mut expected_ops = ops.clone();
        expected_ops.sort_by(|a, b| a.key().cmp(b.key()));
        assert_eq!(d.ops(), expected_ops, "{name}");
        let proof = tree
            .covering_proof(ops.iter().map(RecordOp::key))
            .await
            .unwrap();
        let wanted: BTreeSet<Cid> = case.blocks_in_proof.iter().map(|c| cid(c)).collect();
        let got: BTreeSet<Cid> = proof.keys().copied().collect();
        let missing: Vec<&Cid> = wanted.difference(&got).collect();
        assert!(missing.is_empty(), "{name}: missing {missing:?}");
        assert_eq!(
            got, wanted,
            "{name}: covering proof differs from blocksInProof"
        );
        exact += usize::from(got == wanted);
        for cid in d.new_blocks.keys() {
            assert!(
                proof.contains_key(cid),
                "{name}: new block {cid} not in proof"
            );
        }
        let mut commit_blocks = proof.clone();
        commit_blocks.extend(d.new_blocks.clone());

        // A receiver holding only those blocks inverts the ops, in every order.
        for order in permutations(&ops) {
            let store = make_store().await;
            store.put_many(&commit_blocks, "proof").await.unwrap();
            let inverted = invert(store, after, &order).await.unwrap();
            assert_eq!(inverted, cid(&case.root_before_commit), "{name}");
        }
        // The proof blocks alone suffice, too.
        let store = make_store().await;
        store.put_many(&proof, "proof").await.unwrap();
        assert_eq!(
            invert(store, after, &ops).await.unwrap(),
            cid(&case.root_before_commit),
            "{name}"
        );
        // Dropping any one proof block breaks the inversion (each block is needed) or leaves
        // it correct; it never yields a wrong root.
        for skip in proof.keys() {
            let partial: BlockMap = proof
                .iter()
                .filter(|(c, _)| *c != skip)
                .map(|(c, b)| (*c, b.clone()))
                .collect();
            let store = make_store().await;
            store.put_many(&partial, "proof").await.unwrap();
            match invert(store, after, &ops).await {
                Ok(root) => assert_eq!(root, cid(&case.root_before_commit), "{name}"),
                Err(e) => assert!(matches!(e, Error::MissingBlock(_)), "{name}: {e}"),
            }
        }
    }
    exact
}

/// Runs every known-answer MST vector against stores made by `make_store` (each call must give
/// an empty, independent store).
pub(crate) async fn known_answer_suite<S: BlockStore + Clone>(make_store: impl AsyncFn() -> S) {
    known_trees(&make_store).await;
    let exact = commit_proofs(&make_store).await;
    assert_eq!(exact, 6);
}
