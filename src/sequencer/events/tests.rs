use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use super::*;
use crate::crypto::{Algorithm, Keypair};
use crate::repo::blockstore::{BlockMap, MemoryBlockStore};
use crate::repo::car::{Limits, read_car_bytes};
use crate::repo::commit::Commit;
use crate::repo::mst::invert;
use crate::repo::repository::{Repo, Write};
use crate::syntax::TidClock;

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const TIME: &str = "2025-04-16T21:30:26.717Z";
const RELAY_TESTDATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/interop/extra/indigo/cmd/relay/testing/testdata/"
);

/// A `#commit` body decoded back into its parts.
#[derive(Debug)]
pub(crate) struct DecodedCommit {
    pub fields: BTreeMap<String, Ipld>,
    pub repo: String,
    pub commit: Cid,
    pub rev: String,
    pub since: Option<String>,
    pub prev_data: Option<Cid>,
    pub ops: Vec<RecordOp>,
    pub roots: Vec<Cid>,
    pub blocks: BlockMap,
}

fn text(fields: &BTreeMap<String, Ipld>, key: &str) -> String {
    match fields.get(key) {
        Some(Ipld::String(s)) => s.clone(),
        other => panic!("{key}: expected a string, got {other:?}"),
    }
}

fn link(value: Option<&Ipld>) -> Option<Cid> {
    match value {
        Some(Ipld::Link(cid)) => Some(*cid),
        None | Some(Ipld::Null) => None,
        other => panic!("expected a link, got {other:?}"),
    }
}

/// Decodes a stored `#commit` body strictly (canonical DAG-CBOR) and reads its CAR with
/// every block's hash verified.
pub(crate) async fn decode_commit(body: &[u8]) -> DecodedCommit {
    let Ipld::Map(fields) = cbor::decode(body).unwrap() else {
        panic!("not a map")
    };
    let Some(Ipld::Bytes(car)) = fields.get("blocks") else {
        panic!("blocks is not bytes")
    };
    let (roots, blocks) = read_car_bytes(car, Limits::default()).await.unwrap();
    let Some(Ipld::List(ops)) = fields.get("ops") else {
        panic!("ops is not a list")
    };
    let ops = ops
        .iter()
        .map(|op| {
            let Ipld::Map(op) = op else {
                panic!("op is not a map")
            };
            let key = text(op, "path");
            let cid = link(op.get("cid"));
            let prev = link(op.get("prev"));
            match (text(op, "action").as_str(), cid, prev) {
                ("create", Some(cid), None) => RecordOp::Create { key, cid },
                ("update", Some(cid), Some(prev)) => RecordOp::Update { key, prev, cid },
                ("delete", None, Some(prev)) => RecordOp::Delete { key, prev },
                other => panic!("malformed op {other:?}"),
            }
        })
        .collect();
    DecodedCommit {
        repo: text(&fields, "repo"),
        commit: link(fields.get("commit")).unwrap(),
        rev: text(&fields, "rev"),
        since: match fields.get("since") {
            Some(Ipld::Null) => None,
            Some(Ipld::String(s)) => Some(s.clone()),
            other => panic!("since: {other:?}"),
        },
        prev_data: link(fields.get("prevData")),
        ops,
        roots,
        blocks,
        fields,
    }
}

/// What a relay checks of a `#commit` (sync 1.1): the CAR's root is the commit, the commit is
/// signed by `key` and matches `repo`/`rev`, every created or updated record is in the CAR, and
/// inverting the operations on the CAR's partial tree gives `prevData` (the empty tree for a
/// first commit). Returns the MST root.
pub(crate) async fn check_commit(decoded: &DecodedCommit, key: &Keypair) -> Cid {
    assert_eq!(decoded.roots, vec![decoded.commit]);
    let commit = Commit::from_cbor(decoded.blocks.get(&decoded.commit).unwrap()).unwrap();
    commit.verify(&key.public_key()).unwrap();
    assert_eq!(commit.did(), decoded.repo);
    assert_eq!(commit.rev(), Some(decoded.rev.as_str()));
    for op in &decoded.ops {
        if let RecordOp::Create { cid, .. } | RecordOp::Update { cid, .. } = op {
            assert!(decoded.blocks.contains_key(cid), "record {cid} missing");
        }
    }
    let store = MemoryBlockStore::from_blocks(&decoded.blocks);
    let inverted = invert(store, *commit.data(), &decoded.ops).await.unwrap();
    // A first commit has no prevData: inverting it must give the empty tree.
    let expected = decoded.prev_data.unwrap_or_else(|| {
        assert_eq!(decoded.since, None, "only a first commit may omit prevData");
        crate::repo::mst::Mst::create(MemoryBlockStore::new()).root_cid()
    });
    assert_eq!(inverted, expected, "inversion must give prevData");
    *commit.data()
}

/// The body key sets of real firehose messages in the relay scenarios, per message type.
fn fixture_key_sets() -> BTreeMap<(String, bool), BTreeSet<String>> {
    let mut sets = BTreeMap::new();
    for file in [
        "post_lifecycle.json",
        "account_lifecycle.json",
        "deactivation.json",
        "seq_ordering.json",
    ] {
        let text = std::fs::read_to_string(format!("{RELAY_TESTDATA}{file}")).unwrap();
        let json: Json = serde_json::from_str(&text).unwrap();
        for message in json["messages"].as_array().unwrap() {
            let t = message["frame"]["header"]["t"].as_str().unwrap().to_owned();
            let body = message["frame"]["body"].as_object().unwrap();
            let keys: BTreeSet<String> = body.keys().cloned().collect();
            // Distinguish the optional-field variants: prevData, handle, status.
            let variant = ["prevData", "handle", "status"]
                .iter()
                .any(|k| body.contains_key(*k));
            sets.insert((t, variant), keys);
        }
    }
    sets
}

/// The body's keys once `seq` is added; also holds the splice to the decode/re-encode
/// reference for this body at every head width of `seq`.
fn keys_with_seq(body: &[u8]) -> BTreeSet<String> {
    assert_splices_like_reencoding(body);
    let Ipld::Map(fields) = cbor::decode(&with_seq(body, 7).unwrap()).unwrap() else {
        panic!("not a map")
    };
    assert_eq!(fields.get("seq"), Some(&Ipld::Integer(7)));
    fields.keys().cloned().collect()
}

fn like(i: usize) -> Write {
    Write::Create {
        collection: "app.bsky.feed.like".parse().unwrap(),
        rkey: format!("3l{i:011}").parse().unwrap(),
        record: Ipld::Map(BTreeMap::from([
            ("$type".into(), Ipld::String("app.bsky.feed.like".into())),
            ("n".into(), Ipld::Integer(i as i128)),
        ])),
    }
}

/// A repository with `n` likes, then one more commit applying `writes`.
async fn commit_after(n: usize, writes: &[Write], key: &Keypair) -> CommitData {
    let clock = TidClock::default();
    let store = MemoryBlockStore::new();
    let initial: Vec<Write> = (0..n).map(like).collect();
    let prepared = Repo::format_init(store.clone(), DID, key, clock.next().to_string(), &initial)
        .await
        .unwrap();
    let repo = Repo::apply(prepared.clone());
    use crate::repo::blockstore::BlockStore;
    store
        .put_many(&prepared.data.new_blocks, &prepared.data.rev)
        .await
        .unwrap();
    repo.format_commit(writes, key, clock.next().to_string())
        .await
        .unwrap()
        .data
}

#[tokio::test]
async fn commit_body_fields_and_inversion() {
    let key = Keypair::generate(Algorithm::K256);
    let writes = vec![
        like(1000),
        Write::Update {
            collection: "app.bsky.feed.like".parse().unwrap(),
            rkey: "3l00000000003".parse().unwrap(),
            record: Ipld::Map(BTreeMap::from([("n".into(), Ipld::Integer(-1))])),
        },
        Write::Delete {
            collection: "app.bsky.feed.like".parse().unwrap(),
            rkey: "3l00000000007".parse().unwrap(),
        },
    ];
    let data = commit_after(300, &writes, &key).await;
    let event = commit_event(&data, TIME).await.unwrap();
    assert_eq!(event.event_type, EventType::Commit);
    let decoded = decode_commit(&event.body).await;

    let keys: BTreeSet<&str> = decoded.fields.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "blobs", "blocks", "commit", "ops", "prevData", "rebase", "repo", "rev", "since",
            "time", "tooBig"
        ])
    );
    assert_eq!(decoded.fields["rebase"], Ipld::Bool(false));
    assert_eq!(decoded.fields["tooBig"], Ipld::Bool(false));
    assert_eq!(decoded.fields["blobs"], Ipld::List(vec![]));
    assert_eq!(decoded.fields["time"], Ipld::String(TIME.into()));
    assert_eq!(decoded.repo, DID);
    assert_eq!(decoded.commit, data.cid);
    assert_eq!(decoded.rev, data.rev);
    assert_eq!(decoded.since, data.since);
    assert_eq!(decoded.prev_data, data.prev_data);
    assert_eq!(decoded.ops, data.ops);
    // The exact op shapes: no `prev` on a create, a null `cid` on a delete.
    let Ipld::List(ops) = &decoded.fields["ops"] else {
        panic!()
    };
    let op_keys: Vec<BTreeSet<&str>> = ops
        .iter()
        .map(|op| match op {
            Ipld::Map(m) => m.keys().map(String::as_str).collect(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        op_keys,
        vec![
            BTreeSet::from(["action", "cid", "path"]),
            BTreeSet::from(["action", "cid", "path", "prev"]),
            BTreeSet::from(["action", "cid", "path", "prev"]),
        ]
    );
    let Ipld::Map(delete) = &ops[2] else { panic!() };
    assert_eq!(delete["cid"], Ipld::Null);
    assert_eq!(decoded.blocks, data.relevant_blocks);

    let data_root = check_commit(&decoded, &key).await;
    assert_eq!(data_root, *data.commit.data());

    // With `seq`, the key set is exactly that of real #commit messages.
    let sets = fixture_key_sets();
    assert_eq!(
        keys_with_seq(&event.body),
        sets[&("#commit".to_owned(), true)]
    );
}

#[tokio::test]
async fn first_commit_has_null_since_and_no_prev_data() {
    let key = Keypair::generate(Algorithm::K256);
    let clock = TidClock::default();
    let prepared = Repo::format_init(
        MemoryBlockStore::new(),
        DID,
        &key,
        clock.next().to_string(),
        &[like(1)],
    )
    .await
    .unwrap();
    let event = commit_event(&prepared.data, TIME).await.unwrap();
    let decoded = decode_commit(&event.body).await;
    assert_eq!(decoded.fields["since"], Ipld::Null);
    assert!(!decoded.fields.contains_key("prevData"));
    assert_eq!(decoded.since, None);
    let sets = fixture_key_sets();
    // Real commits without prevData (older PDSes) have this key set.
    assert_eq!(
        keys_with_seq(&event.body),
        sets[&("#commit".to_owned(), false)]
    );
    // Inverting the only create leaves the empty tree: the CAR alone shows it.
    let store = MemoryBlockStore::from_blocks(&decoded.blocks);
    let empty = crate::repo::mst::Mst::create(MemoryBlockStore::new()).root_cid();
    assert_eq!(
        invert(store, *prepared.data.commit.data(), &decoded.ops)
            .await
            .unwrap(),
        empty
    );
}

#[tokio::test]
async fn oversized_commit_becomes_a_sync_event() {
    let key = Keypair::generate(Algorithm::K256);
    // Three records of 700,000 bytes: the CAR passes 2,000,000 bytes.
    let big = |i: usize| Write::Create {
        collection: "app.bsky.feed.post".parse().unwrap(),
        rkey: format!("3m{i:011}").parse().unwrap(),
        record: Ipld::Map(BTreeMap::from([(
            "blob".into(),
            Ipld::Bytes(vec![i as u8; 700_000]),
        )])),
    };
    let data = commit_after(10, &[big(1), big(2), big(3)], &key).await;
    let event = commit_event(&data, TIME).await.unwrap();
    assert_eq!(event.event_type, EventType::Sync);
    let Ipld::Map(fields) = cbor::decode(&event.body).unwrap() else {
        panic!()
    };
    let keys: BTreeSet<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["blocks", "did", "rev", "time"]));
    assert_eq!(fields["did"], Ipld::String(DID.into()));
    assert_eq!(fields["rev"], Ipld::String(data.rev.clone()));
    let Ipld::Bytes(car) = &fields["blocks"] else {
        panic!()
    };
    let (roots, blocks) = read_car_bytes(car, Limits::default()).await.unwrap();
    assert_eq!(roots, vec![data.cid]);
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[&data.cid], data.new_blocks[&data.cid]);
    assert!(car.len() < 1000, "{}", car.len());

    // Just under the limit stays a #commit.
    let data = commit_after(10, &[big(1), big(2)], &key).await;
    let event = commit_event(&data, TIME).await.unwrap();
    assert_eq!(event.event_type, EventType::Commit);
    let decoded = decode_commit(&event.body).await;
    let Ipld::Bytes(car) = &decoded.fields["blocks"] else {
        panic!()
    };
    assert!(car.len() > 1_400_000 && car.len() <= MAX_COMMIT_BLOCKS_LEN);
    check_commit(&decoded, &key).await;
}

#[tokio::test]
async fn more_than_200_ops_become_a_sync_event() {
    let key = Keypair::generate(Algorithm::K256);
    let writes: Vec<Write> = (0..201).map(|i| like(5000 + i)).collect();
    let data = commit_after(0, &writes, &key).await;
    assert_eq!(
        commit_event(&data, TIME).await.unwrap().event_type,
        EventType::Sync
    );
    let data = commit_after(0, &writes[..200], &key).await;
    assert_eq!(
        commit_event(&data, TIME).await.unwrap().event_type,
        EventType::Commit
    );
}

#[tokio::test]
async fn sync_identity_and_account_bodies() {
    let sets = fixture_key_sets();
    let key = Keypair::generate(Algorithm::K256);
    let data = commit_after(2, &[like(9)], &key).await;
    let block = data.new_blocks[&data.cid].clone();
    let sync = sync_event(DID, &data.cid, &block, &data.rev, TIME)
        .await
        .unwrap();
    assert_eq!(sync.event_type, EventType::Sync);
    assert_eq!(
        keys_with_seq(&sync.body),
        sets[&("#sync".to_owned(), false)]
    );

    let identity = identity_event(DID, Some("alice.test"), TIME).unwrap();
    assert_eq!(identity.event_type, EventType::Identity);
    assert_eq!(
        cbor::decode(&identity.body).unwrap(),
        Ipld::Map(BTreeMap::from([
            ("did".into(), Ipld::String(DID.into())),
            ("handle".into(), Ipld::String("alice.test".into())),
            ("time".into(), Ipld::String(TIME.into())),
        ]))
    );
    assert_eq!(
        keys_with_seq(&identity.body),
        sets[&("#identity".to_owned(), true)]
    );
    let bare = identity_event(DID, None, TIME).unwrap();
    assert_eq!(
        keys_with_seq(&bare.body),
        sets[&("#identity".to_owned(), false)]
    );

    let inactive = account_event(DID, false, Some("deactivated"), TIME).unwrap();
    assert_eq!(inactive.event_type, EventType::Account);
    assert_eq!(
        cbor::decode(&inactive.body).unwrap(),
        Ipld::Map(BTreeMap::from([
            ("did".into(), Ipld::String(DID.into())),
            ("active".into(), Ipld::Bool(false)),
            ("status".into(), Ipld::String("deactivated".into())),
            ("time".into(), Ipld::String(TIME.into())),
        ]))
    );
    assert_eq!(
        keys_with_seq(&inactive.body),
        sets[&("#account".to_owned(), true)]
    );
    // An active account never carries a status.
    let active = account_event(DID, true, Some("deactivated"), TIME).unwrap();
    assert_eq!(
        keys_with_seq(&active.body),
        sets[&("#account".to_owned(), false)]
    );
}

fn assert_splices_like_reencoding(body: &[u8]) {
    use crate::sequencer::splice::tests::reencoded_with_seq;
    for seq in [0, 23, 24, 255, 256, 65_535, 1 << 32, 1 << 53] {
        assert_eq!(
            hex::encode(with_seq(body, seq).unwrap()),
            hex::encode(reencoded_with_seq(body, seq)),
            "seq {seq}"
        );
    }
}

/// Every stored kind, with and without its optional fields: `#commit` (first and later),
/// `#sync` (direct and for an oversized commit), `#identity`, `#account`.
#[tokio::test]
async fn every_event_kind_splices_like_reencoding() {
    let key = Keypair::generate(Algorithm::K256);
    let later = commit_after(30, &[like(1000)], &key).await;
    let first = Repo::format_init(
        MemoryBlockStore::new(),
        DID,
        &key,
        TidClock::default().next().to_string(),
        &[like(1)],
    )
    .await
    .unwrap()
    .data;
    let block = later.new_blocks.get(&later.cid).unwrap().clone();
    let too_many: Vec<Write> = (0..=MAX_COMMIT_OPS).map(|i| like(5000 + i)).collect();
    let events = [
        commit_event(&later, TIME).await.unwrap(),
        commit_event(&first, TIME).await.unwrap(),
        commit_event(&commit_after(1, &too_many, &key).await, TIME)
            .await
            .unwrap(),
        sync_event(DID, &later.cid, &block, &later.rev, TIME)
            .await
            .unwrap(),
        identity_event(DID, Some("alice.test"), TIME).unwrap(),
        identity_event(DID, None, TIME).unwrap(),
        account_event(DID, true, None, TIME).unwrap(),
        account_event(DID, false, Some("deactivated"), TIME).unwrap(),
    ];
    let kinds: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
    use EventType::{Account, Commit, Identity, Sync};
    assert_eq!(
        kinds,
        [
            Commit, Commit, Sync, Sync, Identity, Identity, Account, Account
        ]
    );
    for event in &events {
        assert_splices_like_reencoding(&event.body);
    }
}

#[test]
fn with_seq_places_seq_canonically_and_rejects_non_maps() {
    let body = identity_event(DID, None, TIME).unwrap().body;
    let framed = with_seq(&body, 1234567).unwrap();
    // Canonical: decoding strictly and re-encoding gives the same bytes.
    assert_eq!(
        cbor::encode(&cbor::decode(&framed).unwrap()).unwrap(),
        framed
    );
    // Keys by length then bytes: did, seq, time.
    let expected = Ipld::Map(BTreeMap::from([
        ("did".into(), Ipld::String(DID.into())),
        ("seq".into(), Ipld::Integer(1234567)),
        ("time".into(), Ipld::String(TIME.into())),
    ]));
    assert_eq!(framed, cbor::encode(&expected).unwrap());
    assert!(matches!(
        with_seq(&cbor::encode(&Ipld::List(vec![])).unwrap(), 1),
        Err(Error::Splice(crate::sequencer::splice::Error::NotAMap))
    ));
    assert!(matches!(
        with_seq(b"\xff", 1),
        Err(Error::Splice(crate::sequencer::splice::Error::Indefinite))
    ));
}

#[test]
fn event_type_names() {
    for (t, name, wire) in [
        (EventType::Commit, "commit", "#commit"),
        (EventType::Sync, "sync", "#sync"),
        (EventType::Identity, "identity", "#identity"),
        (EventType::Account, "account", "#account"),
    ] {
        assert_eq!(t.as_str(), name);
        assert_eq!(t.wire_name(), wire);
        assert_eq!(name.parse::<EventType>().unwrap(), t);
    }
    assert!(matches!(
        "#commit".parse::<EventType>(),
        Err(Error::UnknownType(_))
    ));
}
