use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;

use super::node::{Entry, Node};
use super::*;
use crate::repo::blockstore::{BlockMap, MemoryBlockStore};
use crate::repo::cid::cid_for_cbor;

#[tokio::test]
async fn known_answers_on_memory_store() {
    testsuite::known_answer_suite(async || MemoryBlockStore::new()).await;
}

fn value(n: u32) -> Cid {
    cid_for_cbor(&n.to_be_bytes())
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

async fn build(keys: &[String]) -> Mst<MemoryBlockStore> {
    let mut tree = Mst::create(MemoryBlockStore::new());
    for (i, key) in keys.iter().enumerate() {
        tree = tree.add(key, value(i as u32)).await.unwrap();
    }
    tree
}

async fn persist(tree: &Mst<MemoryBlockStore>) {
    let blocks = tree.collect_new_blocks().await.unwrap();
    tree.store().put_many(&blocks, "r").await.unwrap();
}

/// Every node CID of a tree, by walking it.
async fn node_cids(tree: &Mst<MemoryBlockStore>) -> BTreeSet<Cid> {
    let mut walker = tree.walk_blocks();
    let mut out = BTreeSet::new();
    while let Some(block) = walker.next().await.unwrap() {
        assert_eq!(cid_for_cbor(&block.bytes), block.cid);
        out.insert(block.cid);
    }
    out
}

/// Example keys whose second character is their height.
const A0: &str = "A0/374913";
const B1: &str = "B1/986427";
const C2: &str = "C2/014073";
const D1: &str = "D1/834852";

fn stored_node(store: &MemoryBlockStore, node: &Node) -> Cid {
    let bytes = node.encode();
    let cid = cid_for_cbor(&bytes);
    let blocks = BlockMap::from([(cid, bytes::Bytes::from(bytes))]);
    block_on(store.put_many(&blocks, "r")).unwrap();
    cid
}

fn leaf_node(layer: u8, keys: &[&str], left: Option<Cid>) -> Node {
    Node {
        layer,
        left: left.map(Link::stored),
        entries: keys
            .iter()
            .map(|k| Entry {
                key: Arc::from(*k),
                value: value(0),
                right: None,
            })
            .collect(),
    }
}

#[test]
fn hostile_trees_give_errors() {
    let store = MemoryBlockStore::new();
    let missing = value(99);
    assert!(matches!(
        block_on(Mst::load(store.clone(), missing)),
        Err(Error::MissingBlock(c)) if c == missing
    ));

    // A layer-0 key in a child of a layer-2 root (children of layer 2 are on layer 1).
    let child = stored_node(&store, &leaf_node(0, &[A0], None));
    let root = stored_node(&store, &leaf_node(2, &[C2], Some(child)));
    let tree = block_on(Mst::load(store.clone(), root)).unwrap();
    assert_eq!(tree.layer(), 2);
    let err = block_on(tree.get(A0)).unwrap_err();
    assert!(
        matches!(err, Error::BadNode { cid, .. } if cid == child),
        "{err}"
    );
    // The same subtree missing from the store.
    let root = stored_node(&store, &leaf_node(2, &[C2], Some(missing)));
    let tree = block_on(Mst::load(store.clone(), root)).unwrap();
    assert!(matches!(block_on(tree.get(A0)), Err(Error::MissingBlock(c)) if c == missing));
    assert!(matches!(
        block_on(tree.add(A0, value(1))),
        Err(Error::MissingBlock(_))
    ));
    // A key that sorts after C2 stored to its left.
    let child = stored_node(&store, &leaf_node(1, &[D1], None));
    let root = stored_node(&store, &leaf_node(2, &[C2], Some(child)));
    let tree = block_on(Mst::load(store.clone(), root)).unwrap();
    assert!(matches!(
        block_on(tree.all_leaves()),
        Err(Error::BadNode { .. })
    ));
    assert_eq!(block_on(tree.get(D1)).unwrap(), None);
    // A layer-0 node with a subtree.
    let root = stored_node(&store, &leaf_node(0, &[A0], Some(child)));
    assert!(matches!(
        block_on(Mst::load(store.clone(), root)),
        Err(Error::BadNode { .. })
    ));
    // An empty node below the root.
    let empty = stored_node(&store, &Node::empty(1));
    let root = stored_node(&store, &leaf_node(2, &[C2], Some(empty)));
    let tree = block_on(Mst::load(store.clone(), root)).unwrap();
    assert!(matches!(block_on(tree.get(A0)), Err(Error::BadNode { .. })));
    // Bytes that are not a node, and bytes that do not match their CID.
    let not_node = stored_node(&store, &leaf_node(0, &[], None));
    let map = cid_for_cbor(&[0xa0]);
    block_on(store.put_many(
        &BlockMap::from([(map, bytes::Bytes::from_static(&[0xa0]))]),
        "r",
    ))
    .unwrap();
    assert!(matches!(
        block_on(Mst::load(store.clone(), map)),
        Err(Error::BadNode { .. })
    ));
    let liar = MemoryBlockStore::from_blocks(&BlockMap::from([(
        not_node,
        bytes::Bytes::from_static(&[0xa2, 0x61, b'e', 0x80, 0x61, b'l', 0xf6, 0x00]),
    )]));
    assert!(matches!(
        block_on(Mst::load(liar, not_node)),
        Err(Error::BadNode { .. })
    ));
    // A root that is only a left subtree (untrimmed) takes its layer from below.
    let child = stored_node(&store, &leaf_node(1, &[B1], None));
    let root = stored_node(&store, &leaf_node(2, &[], Some(child)));
    let tree = block_on(Mst::load(store.clone(), root)).unwrap();
    assert_eq!(tree.layer(), 2);
    assert_eq!(block_on(tree.get(B1)).unwrap(), Some(value(0)));
}

#[tokio::test]
async fn mutation_errors() {
    let tree = build(&[A0.into(), B1.into()]).await;
    assert!(matches!(tree.add(A0, value(5)).await, Err(Error::KeyExists(k)) if k == A0));
    assert!(matches!(tree.update(C2, value(5)).await, Err(Error::KeyNotFound(k)) if k == C2));
    assert!(matches!(tree.delete(C2).await, Err(Error::KeyNotFound(k)) if k == C2));
    assert!(matches!(
        tree.delete("bad").await,
        Err(Error::InvalidKey(_))
    ));
    let updated = tree.update(B1, value(7)).await.unwrap();
    assert_eq!(updated.get(B1).await.unwrap(), Some(value(7)));
    assert_eq!(
        tree.get(B1).await.unwrap(),
        Some(value(1)),
        "old version unchanged"
    );
    assert!(matches!(
        Mst::from_sorted(MemoryBlockStore::new(), [(B1.to_owned(), value(0)), (A0.to_owned(), value(0))]),
        Err(Error::NotSorted(k)) if k == A0
    ));
    let op = RecordOp::Delete {
        key: A0.into(),
        prev: value(9),
    };
    assert!(matches!(tree.apply(&op).await, Err(Error::OpMismatch(k)) if k == A0));
}

#[tokio::test]
async fn lists_ranges_prefixes_and_walks() {
    let keys: Vec<String> = (0..300)
        .map(|i| format!("coll{}/k{:04}", i % 3, i))
        .collect();
    let tree = build(&keys).await;
    persist(&tree).await;
    let tree = Mst::load(tree.store().clone(), tree.root_cid())
        .await
        .unwrap();
    let map: BTreeMap<String, Cid> = tree.all_leaves().await.unwrap().into_iter().collect();
    assert_eq!(map.len(), 300);
    let sorted: Vec<&String> = map.keys().collect();
    let mut expected = keys.iter().collect::<Vec<_>>();
    expected.sort();
    assert_eq!(sorted, expected);

    let coll1 = tree.list_prefix("coll1/", false, 1000).await.unwrap();
    assert_eq!(coll1.len(), 100);
    assert!(coll1.iter().all(|(k, _)| k.starts_with("coll1/")));
    assert!(coll1.windows(2).all(|w| w[0].0 < w[1].0));
    let rev = tree.list_prefix("coll1/", true, 5).await.unwrap();
    let last5: Vec<_> = coll1.iter().rev().take(5).cloned().collect();
    assert_eq!(rev, last5);
    assert!(tree.list_prefix("coll", false, 10).await.unwrap().len() == 10);
    assert!(
        tree.list_prefix("zzz/", false, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let after = "coll0/k0150";
    let before = "coll2/k0005";
    let got = tree.list(Some(after), Some(before), 1000).await.unwrap();
    let want: Vec<(String, Cid)> = map
        .range::<str, _>((
            std::ops::Bound::Excluded(after),
            std::ops::Bound::Excluded(before),
        ))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(got, want);
    let got = tree
        .list_reverse(Some(after), Some(before), 7)
        .await
        .unwrap();
    let want_rev: Vec<_> = want.iter().rev().take(7).cloned().collect();
    assert_eq!(got, want_rev);

    let mut cursor = tree.leaves();
    let mut n = 0;
    while let Some((k, v)) = cursor.next().await.unwrap() {
        assert_eq!(map.get(&k), Some(&v));
        n += 1;
    }
    assert_eq!(n, 300);

    // Walking every block of the stored tree gives exactly what was written.
    let nodes = node_cids(&tree).await;
    let fresh = build(&keys).await.collect_new_blocks().await.unwrap();
    assert_eq!(nodes, fresh.keys().copied().collect());
}

#[tokio::test]
async fn key_proofs_prove_presence_and_absence() {
    let keys: Vec<String> = (0..200).map(|i| format!("c/{i:05}")).collect();
    let tree = build(&keys).await;
    for key in ["c/00042", "c/00199", "c/00000", "c/00042a", "b/1", "d/1"] {
        let proof = tree.proof_for_key(key).await.unwrap();
        assert!(proof.len() <= usize::from(tree.layer()) + 1);
        let partial = Mst::load(MemoryBlockStore::from_blocks(&proof), tree.root_cid())
            .await
            .unwrap();
        assert_eq!(
            partial.get(key).await.unwrap(),
            tree.get(key).await.unwrap(),
            "{key}"
        );
    }
}

/// Random keys, mixed with the interop example keys (heights 0 to 5, so that trees gain and
/// lose several layers at once).
fn key_strategy() -> impl Strategy<Value = String> {
    let examples: Vec<String> = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/interop/mst/example_keys.txt"
    ))
    .unwrap()
    .lines()
    .filter(|l| !l.is_empty() && !l.starts_with('#'))
    .map(str::to_owned)
    .collect();
    prop_oneof![
        ("[a-c]", "[a-z0-9]{1,5}").prop_map(|(c, r)| format!("app.{c}/{r}")),
        proptest::sample::select(examples),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shape_ignores_insertion_order(
        keys in proptest::collection::btree_set(key_strategy(), 0..120),
        seed in any::<u64>(),
    ) {
        let sorted: Vec<String> = keys.into_iter().collect();
        let mut shuffled = sorted.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        block_on(async {
            let leaf = value(1);
            let mut a = Mst::create(MemoryBlockStore::new());
            for k in &sorted { a = a.add(k, leaf).await.unwrap(); }
            let mut b = Mst::create(MemoryBlockStore::new());
            for k in &shuffled { b = b.add(k, leaf).await.unwrap(); }
            let bulk = Mst::from_sorted(
                MemoryBlockStore::new(),
                sorted.iter().map(|k| (k.clone(), leaf)),
            ).unwrap();
            assert_eq!(a.root_cid(), b.root_cid());
            assert_eq!(a.root_cid(), bulk.root_cid());
            assert_eq!(a.layer(), bulk.layer());
            let leaves: Vec<String> = b.all_leaves().await.unwrap().into_iter().map(|(k, _)| k).collect();
            assert_eq!(leaves, sorted);
            // Deleting in shuffled order empties the tree.
            let mut c = b.clone();
            for k in &shuffled { c = c.delete(k).await.unwrap(); }
            assert_eq!(c.root_cid(), Mst::create(MemoryBlockStore::new()).root_cid());
            assert_eq!(c.layer(), 0);
        });
    }

    #[test]
    fn add_then_delete_restores_root(
        keys in proptest::collection::btree_set(key_strategy(), 0..80),
        extra in key_strategy(),
    ) {
        let keys: Vec<String> = keys.into_iter().filter(|k| *k != extra).collect();
        block_on(async {
            let tree = build(&keys).await;
            persist(&tree).await;
            let stored = Mst::load(tree.store().clone(), tree.root_cid()).await.unwrap();
            let added = stored.add(&extra, value(7)).await.unwrap();
            assert_eq!(added.get(&extra).await.unwrap(), Some(value(7)));
            let removed = added.delete(&extra).await.unwrap();
            assert_eq!(removed.root_cid(), tree.root_cid());
            assert_eq!(removed.layer(), tree.layer());
        });
    }

    #[test]
    fn diffs_apply_and_commits_invert(
        keys in proptest::collection::btree_set(key_strategy(), 0..80),
        changes in proptest::collection::vec((key_strategy(), 0u8..3), 1..12),
    ) {
        let keys: Vec<String> = keys.into_iter().collect();
        block_on(async {
            let old = build(&keys).await;
            persist(&old).await;
            let old = Mst::load(old.store().clone(), old.root_cid()).await.unwrap();
            let mut new = old.clone();
            let mut touched = BTreeSet::new();
            for (i, (key, kind)) in changes.iter().enumerate() {
                if !touched.insert(key.clone()) { continue; }
                let present = new.get(key).await.unwrap().is_some();
                new = match (present, kind) {
                    (false, _) => new.add(key, value(1000 + i as u32)).await.unwrap(),
                    (true, 0) => new.delete(key).await.unwrap(),
                    (true, _) => new.update(key, value(1000 + i as u32)).await.unwrap(),
                };
            }
            let d = diff(Some(&old), &new).await.unwrap();
            // Applying the diff's ops to the old tree gives the new tree.
            let mut applied = old.clone();
            for op in d.ops() { applied = applied.apply(&op).await.unwrap(); }
            assert_eq!(applied.root_cid(), new.root_cid());
            // New blocks and removed nodes are exactly the node-set differences.
            let old_nodes = node_cids(&old).await;
            let new_nodes = node_cids(&new).await;
            let added: BTreeSet<Cid> = new_nodes.difference(&old_nodes).copied().collect();
            let gone: Vec<Cid> = old_nodes.difference(&new_nodes).copied().collect();
            assert_eq!(d.new_blocks.keys().copied().collect::<BTreeSet<_>>(), added);
            assert_eq!(d.removed_cids, gone);
            assert_eq!(new.collect_new_blocks().await.unwrap(), d.new_blocks);
            // A diff from nothing creates every leaf.
            let full = diff(None, &new).await.unwrap();
            assert_eq!(full.creates, new.all_leaves().await.unwrap());
            assert_eq!(full.new_blocks.len(), new_nodes.len());
            // The new blocks plus the covering proof invert the ops back to the old root.
            let ops = d.ops();
            let mut blocks = new.covering_proof(ops.iter().map(RecordOp::key)).await.unwrap();
            for cid in d.new_blocks.keys() {
                assert!(blocks.contains_key(cid), "new block {cid} outside the covering proof");
            }
            blocks.extend(d.new_blocks.clone());
            let store = MemoryBlockStore::from_blocks(&blocks);
            let mut reversed = ops.clone();
            reversed.reverse();
            for order in [ops, reversed] {
                let root = invert(store.clone(), new.root_cid(), &order).await.unwrap();
                assert_eq!(root, old.root_cid());
            }
        });
    }
}

/// Commit messages captured from the network (indigo test data): partial trees of unusual
/// shape. `4623075231` must invert; the other three are robustness inputs.
#[tokio::test]
async fn live_firehose_commits_on_partial_trees() {
    use base64::Engine;

    #[derive(serde::Deserialize)]
    struct Commit {
        data: Cid,
    }
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/interop/extra/indigo/atproto/repo/testdata"
    );
    for seq in ["4623075231", "4621317030", "4621317332", "4621332152"] {
        let text = std::fs::read_to_string(format!("{dir}/firehose_commit_{seq}.json")).unwrap();
        let msg: serde_json::Value = serde_json::from_str(&text).unwrap();
        let car = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(
                msg["blocks"]["$bytes"]
                    .as_str()
                    .unwrap()
                    .trim_end_matches('='),
            )
            .unwrap();
        let mut reader = iroh_car::CarReader::new(car.as_slice()).await.unwrap();
        let mut blocks = BlockMap::new();
        while let Some((cid, bytes)) = reader.next_block().await.unwrap() {
            blocks.insert(cid, bytes.into());
        }
        let commit_cid: Cid = msg["commit"]["$link"].as_str().unwrap().parse().unwrap();
        let commit: Commit = serde_ipld_dagcbor::from_slice(&blocks[&commit_cid]).unwrap();
        let store = MemoryBlockStore::from_blocks(&blocks);
        let tree = Mst::load(store.clone(), commit.data).await.unwrap();
        let mut ops = Vec::new();
        for op in msg["ops"].as_array().unwrap() {
            assert_eq!(op["action"], "create");
            let key = op["path"].as_str().unwrap().to_owned();
            let cid: Cid = op["cid"]["$link"].as_str().unwrap().parse().unwrap();
            assert_eq!(tree.get(&key).await.unwrap(), Some(cid), "{seq} {key}");
            ops.push(RecordOp::Create { key, cid });
        }
        match (seq, invert(store, commit.data, &ops).await) {
            // Deleting the only layer-1 key leaves its layer-0 subtree, absent from the
            // message, as the root: the tree is trimmed without reading it.
            ("4623075231", Ok(root)) => {
                assert_eq!(
                    root.to_string(),
                    "bafyreicfeeojgjj7gtgl6go25tk5jmcuoytjp5hhulbdd7gwzk7gtqw3ka"
                );
            }
            // Merging two neighbours the message does not carry: a clear error.
            (_, Err(Error::MissingBlock(cid))) if seq != "4623075231" => {
                assert!(!blocks.contains_key(&cid), "{seq}");
            }
            (_, other) => panic!("{seq}: {other:?}"),
        }
    }
}

/// The futures of the public API are `Send`, so they can run in spawned tasks and handlers.
#[allow(dead_code)]
fn futures_are_send<S: BlockStore + Clone + 'static>(tree: &Mst<S>, cid: Cid) {
    fn send<T: Send>(_: T) {}
    send(tree.get("a/b"));
    send(tree.add("a/b", cid));
    send(tree.update("a/b", cid));
    send(tree.delete("a/b"));
    send(tree.list(None, None, 1));
    send(tree.list_prefix("a/", true, 1));
    send(tree.all_leaves());
    send(tree.collect_new_blocks());
    send(tree.proof_for_key("a/b"));
    send(tree.covering_proof(["a/b"]));
    send(diff(None, tree));
    send(invert(tree.store().clone(), cid, &[]));
    send(Mst::load(tree.store().clone(), cid));
    send(async {
        let mut cursor = tree.leaves();
        cursor.next().await
    });
    send(async {
        let mut walker = tree.walk_blocks();
        walker.next().await
    });
}

async fn read_car(path: &str) -> (Vec<Cid>, BlockMap) {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = iroh_car::CarReader::new(bytes.as_slice()).await.unwrap();
    let roots = reader.header().roots().to_vec();
    let mut blocks = BlockMap::new();
    while let Some((cid, bytes)) = reader.next_block().await.unwrap() {
        blocks.insert(cid, bytes.into());
    }
    (roots, blocks)
}

/// Real repository exports (indigo test data, commit formats 2 and 3): the stored tree reads
/// back, rebuilding it from its leaves gives the commit's `data` CID, and a walk visits every
/// node of the export exactly once.
#[tokio::test]
async fn repository_exports_rebuild_to_their_root() {
    #[derive(serde::Deserialize)]
    struct Commit {
        data: Cid,
    }
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/interop/extra/indigo/testing/testdata"
    );
    let cases = [
        ("greenground.repo.car", 2, 0),
        ("divy.repo", 6, 1),
        ("fakermaker.repo.car", 142, 3),
        ("paul_staging.repo.car", 185, 4),
        (
            "bafyreieovfuizojpw3zresz7sx3nk4trm2by23pt5rxbey3jme4uo5ogiu.car",
            6,
            1,
        ),
    ];
    for (file, expected_leaves, expected_layer) in cases {
        let (roots, blocks) = read_car(&format!("{dir}/{file}")).await;
        let commit: Commit = serde_ipld_dagcbor::from_slice(&blocks[&roots[0]]).unwrap();
        let store = MemoryBlockStore::from_blocks(&blocks);
        let tree = Mst::load(store, commit.data).await.unwrap();
        let leaves = tree.all_leaves().await.unwrap();
        assert_eq!(leaves.len(), expected_leaves, "{file}");
        assert_eq!(tree.layer(), expected_layer, "{file}");
        for (key, cid) in &leaves {
            assert!(blocks.contains_key(cid), "{file}: record {key}");
        }
        let rebuilt = Mst::from_sorted(MemoryBlockStore::new(), leaves.clone()).unwrap();
        assert_eq!(rebuilt.root_cid(), commit.data, "{file}");
        assert_eq!(rebuilt.layer(), tree.layer(), "{file}");
        let walked = node_cids(&tree).await;
        let rebuilt_nodes = rebuilt.collect_new_blocks().await.unwrap();
        assert_eq!(walked, rebuilt_nodes.keys().copied().collect(), "{file}");
        for (cid, bytes) in &rebuilt_nodes {
            assert_eq!(blocks.get(cid), Some(bytes), "{file}: node {cid}");
        }
        let full = diff(None, &tree).await.unwrap();
        assert_eq!(full.creates, leaves, "{file}");
    }

    // A partial repository: the path to one record, which reads back; other paths are missing.
    let (roots, blocks) = read_car(&format!("{dir}/repo_slice.car")).await;
    let commit: Commit = serde_ipld_dagcbor::from_slice(&blocks[&roots[0]]).unwrap();
    let tree = Mst::load(MemoryBlockStore::from_blocks(&blocks), commit.data)
        .await
        .unwrap();
    let record = tree
        .get("app.bsky.feed.post/3jquh3emtzo2o")
        .await
        .unwrap()
        .unwrap();
    assert!(blocks.contains_key(&record));
    assert!(matches!(
        tree.all_leaves().await,
        Err(Error::MissingBlock(_))
    ));
}
