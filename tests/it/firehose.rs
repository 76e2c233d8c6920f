//! `com.atproto.sync.subscribeRepos` over real sockets with tokio-tungstenite: frames, commit
//! inversion, cursor replay and the switch to live under concurrent writes, FutureCursor,
//! OutdatedCursor, ConsumerTooSlow, sequence numbers across a restart, and the official
//! consumer (`Firehose` from `@atproto/sync`) verifying a whole scripted session.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use rookery::repo::blockstore::MemoryBlockStore;
use rookery::repo::car::{Limits, read_car_bytes};
use rookery::repo::cbor::Ipld;
use rookery::repo::commit::Commit;
use rookery::repo::mst::{Mst, RecordOp, invert};
use rookery::sequencer::frame::{ParsedFrame, parse};
use serde_json::{Value, json};
use support::pds::TestPds;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const DEADLINE: Duration = Duration::from_secs(60);

fn ws_url(pds: &TestPds, cursor: Option<&str>) -> String {
    let base = format!("ws://{}/xrpc/com.atproto.sync.subscribeRepos", pds.addr);
    match cursor {
        Some(c) => format!("{base}?cursor={c}"),
        None => base,
    }
}

async fn connect(pds: &TestPds, cursor: Option<i64>) -> Ws {
    let cursor = cursor.map(|c| c.to_string());
    let (ws, response) = tokio_tungstenite::connect_async(ws_url(pds, cursor.as_deref()))
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    ws
}

/// The next binary frame, parsed; `None` once the server closed. Pings are skipped.
async fn next_frame(ws: &mut Ws) -> Option<ParsedFrame> {
    loop {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a message within the deadline");
        match message {
            Some(Ok(Message::Binary(bytes))) => return Some(parse(&bytes).unwrap()),
            Some(Ok(Message::Close(_))) | None => return None,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(other)) => panic!("unexpected message {other:?}"),
            Some(Err(err)) => panic!("websocket error: {err}"),
        }
    }
}

/// The latest `seq` once every acknowledged write's events are sequenced (they follow the
/// acknowledgement).
async fn latest_seq(pds: &TestPds) -> i64 {
    pds.state.repo().moves_settled().await;
    pds.state
        .repo()
        .sequencer()
        .latest_seq()
        .await
        .unwrap()
        .unwrap_or(0)
}

/// Polls (bounded) until `n` firehose subscribers are connected.
async fn until_subscribers(pds: &TestPds, n: usize) {
    let start = std::time::Instant::now();
    while pds.state.repo().sequencer().subscriber_count() != n {
        assert!(
            start.elapsed() < DEADLINE,
            "subscriber count never reached {n}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn xrpc(
    client: &reqwest::Client,
    pds: &TestPds,
    method: &str,
    token: Option<&str>,
    body: Value,
) -> Value {
    let mut request = client
        .post(format!("{}/xrpc/{method}", pds.url()))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status();
    let body: Value = reply.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{method}: {body}");
    body
}

/// Creates an account through `com.atproto.server.createAccount`; returns (did, access).
async fn create_account(client: &reqwest::Client, pds: &TestPds, handle: &str) -> (String, String) {
    let email = format!("{}@example.com", handle.replace('.', "-"));
    let out = xrpc(
        client,
        pds,
        "com.atproto.server.createAccount",
        None,
        json!({"handle": handle, "email": email, "password": "hunter2hunter2"}),
    )
    .await;
    (
        out["did"].as_str().unwrap().to_owned(),
        out["accessJwt"].as_str().unwrap().to_owned(),
    )
}

fn post(i: usize) -> Value {
    json!({"$type": "app.bsky.feed.post", "text": format!("post {i}"), "createdAt": "2026-11-23T00:00:00.000Z"})
}

/// 50 writes: creates, with every fifth an update and every seventh a delete of an earlier
/// post. Returns the expected `(action, rkey)` of each commit's one op.
async fn mixed_writes(
    client: &reqwest::Client,
    pds: &TestPds,
    did: &str,
    access: &str,
) -> Vec<(String, String)> {
    let mut live: Vec<String> = Vec::new();
    let mut done = Vec::new();
    for i in 0..50 {
        if i % 5 == 4 && !live.is_empty() {
            let rkey = live[i % live.len()].clone();
            xrpc(
                client,
                pds,
                "com.atproto.repo.putRecord",
                Some(access),
                json!({"repo": did, "collection": "app.bsky.feed.post", "rkey": rkey, "record": post(1000 + i)}),
            )
            .await;
            done.push(("update".to_owned(), rkey));
        } else if i % 7 == 6 && !live.is_empty() {
            let rkey = live.remove(i % live.len());
            xrpc(
                client,
                pds,
                "com.atproto.repo.deleteRecord",
                Some(access),
                json!({"repo": did, "collection": "app.bsky.feed.post", "rkey": rkey}),
            )
            .await;
            done.push(("delete".to_owned(), rkey));
        } else {
            let out = xrpc(
                client,
                pds,
                "com.atproto.repo.createRecord",
                Some(access),
                json!({"repo": did, "collection": "app.bsky.feed.post", "record": post(i)}),
            )
            .await;
            let rkey = out["uri"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned();
            live.push(rkey.clone());
            done.push(("create".to_owned(), rkey));
        }
    }
    done
}

fn field<'a>(frame: &'a ParsedFrame, key: &str) -> &'a Ipld {
    let Ipld::Map(fields) = &frame.body else {
        panic!("body is not a map")
    };
    fields
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
}

fn link(value: Option<&Ipld>) -> Option<cid::Cid> {
    match value {
        Some(Ipld::Link(cid)) => Some(*cid),
        None | Some(Ipld::Null) => None,
        other => panic!("not a link: {other:?}"),
    }
}

/// What a relay checks of a `#commit`: the CAR's root is the commit, and applying the
/// inverse of its ops to the tree in the CAR's blocks alone gives `prevData`.
async fn check_inversion(frame: &ParsedFrame) -> Vec<RecordOp> {
    let Ipld::Bytes(car) = field(frame, "blocks") else {
        panic!("blocks")
    };
    assert!(car.len() <= 2_000_000);
    let (roots, blocks) = read_car_bytes(car, Limits::default()).await.unwrap();
    let commit_cid = link(Some(field(frame, "commit"))).unwrap();
    assert_eq!(roots, vec![commit_cid]);
    let commit = Commit::from_cbor(&blocks[&commit_cid]).unwrap();
    assert_eq!(commit.rev(), frame.text("rev"));
    let Ipld::List(ops) = field(frame, "ops") else {
        panic!("ops")
    };
    assert!(ops.len() <= 200);
    let ops: Vec<RecordOp> = ops
        .iter()
        .map(|op| {
            let Ipld::Map(op) = op else { panic!("op") };
            let Some(Ipld::String(path)) = op.get("path") else {
                panic!("path")
            };
            let Some(Ipld::String(action)) = op.get("action") else {
                panic!("action")
            };
            let key = path.clone();
            match (action.as_str(), link(op.get("cid")), link(op.get("prev"))) {
                ("create", Some(cid), None) => {
                    assert!(blocks.contains_key(&cid), "record block in the CAR");
                    RecordOp::Create { key, cid }
                }
                ("update", Some(cid), Some(prev)) => {
                    assert!(blocks.contains_key(&cid), "record block in the CAR");
                    RecordOp::Update { key, prev, cid }
                }
                ("delete", None, Some(prev)) => RecordOp::Delete { key, prev },
                other => panic!("malformed op {other:?}"),
            }
        })
        .collect();
    let Ipld::Map(fields) = &frame.body else {
        panic!()
    };
    let expected = link(fields.get("prevData"))
        .unwrap_or_else(|| Mst::create(MemoryBlockStore::new()).root_cid());
    let store = MemoryBlockStore::from_blocks(&blocks);
    let inverted = invert(store, *commit.data(), &ops).await.unwrap();
    assert_eq!(inverted, expected, "ops must invert to prevData");
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_session_frames_and_commit_inversion() {
    let pds = TestPds::start().await;
    let client = reqwest::Client::new();
    let mut ws = connect(&pds, None).await;
    until_subscribers(&pds, 1).await;
    let (did, access) = create_account(&client, &pds, "alice.test").await;
    // Account creation: #identity, #account, #commit (empty), #sync, as the reference.
    let mut kinds = Vec::new();
    for expected_seq in 1..=4 {
        let frame = next_frame(&mut ws).await.unwrap();
        assert_eq!((frame.op, frame.seq()), (1, Some(expected_seq)));
        kinds.push(frame.t.clone().unwrap());
        match frame.t.as_deref() {
            Some("#identity") => {
                assert_eq!(frame.text("did"), Some(did.as_str()));
                assert_eq!(frame.text("handle"), Some("alice.test"));
            }
            Some("#account") => {
                assert_eq!(field(&frame, "active"), &Ipld::Bool(true));
                assert_eq!(frame.text("status"), None);
            }
            Some("#commit") => {
                assert_eq!(frame.text("repo"), Some(did.as_str()));
                assert_eq!(field(&frame, "since"), &Ipld::Null);
                assert!(check_inversion(&frame).await.is_empty());
            }
            _ => {}
        }
    }
    assert_eq!(kinds, ["#identity", "#account", "#commit", "#sync"]);

    let writes = mixed_writes(&client, &pds, &did, &access).await;
    let mut previous_rev: Option<String> = None;
    for (i, (action, rkey)) in writes.iter().enumerate() {
        let frame = next_frame(&mut ws).await.unwrap();
        assert_eq!(frame.t.as_deref(), Some("#commit"));
        assert_eq!(frame.seq(), Some(5 + i as i64));
        assert_eq!(field(&frame, "tooBig"), &Ipld::Bool(false));
        assert_eq!(field(&frame, "rebase"), &Ipld::Bool(false));
        assert_eq!(field(&frame, "blobs"), &Ipld::List(vec![]));
        if let Some(prev) = &previous_rev {
            assert_eq!(frame.text("since"), Some(prev.as_str()));
        }
        previous_rev = frame.text("rev").map(str::to_owned);
        let ops = check_inversion(&frame).await;
        assert_eq!(ops.len(), 1);
        let (op_action, key) = match &ops[0] {
            RecordOp::Create { key, .. } => ("create", key),
            RecordOp::Update { key, .. } => ("update", key),
            RecordOp::Delete { key, .. } => ("delete", key),
        };
        assert_eq!(
            (op_action, key.as_str()),
            (
                action.as_str(),
                format!("app.bsky.feed.post/{rkey}").as_str()
            )
        );
    }

    // Deactivation: #account inactive; checked byte for byte against the spec's layout.
    xrpc(
        &client,
        &pds,
        "com.atproto.server.deactivateAccount",
        Some(&access),
        json!({}),
    )
    .await;
    let raw = loop {
        match tokio::time::timeout(DEADLINE, ws.next()).await.unwrap() {
            Some(Ok(Message::Binary(bytes))) => break bytes,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    let frame = parse(&raw).unwrap();
    assert_eq!(frame.seq(), Some(55));
    let time = frame.text("time").unwrap().to_owned();
    assert_eq!(time.len(), 24);
    let mut expected: Vec<u8> = vec![0xa2, 0x61, b't', 0x68];
    expected.extend_from_slice(b"#account");
    expected.extend_from_slice(&[0x62, b'o', b'p', 0x01]);
    // map(5): did, seq, time, active, status.
    expected.extend_from_slice(&[0xa5, 0x63, b'd', b'i', b'd', 0x78, did.len() as u8]);
    expected.extend_from_slice(did.as_bytes());
    expected.extend_from_slice(&[0x63, b's', b'e', b'q', 0x18, 55]);
    expected.extend_from_slice(&[0x64, b't', b'i', b'm', b'e', 0x78, 24]);
    expected.extend_from_slice(time.as_bytes());
    expected.extend_from_slice(&[0x66, b'a', b'c', b't', b'i', b'v', b'e', 0xf4]);
    expected.extend_from_slice(&[0x66, b's', b't', b'a', b't', b'u', b's', 0x6b]);
    expected.extend_from_slice(b"deactivated");
    assert_eq!(hex::encode(&raw), hex::encode(&expected));

    // Reactivation: #account active, #identity, #sync (the reference's order).
    xrpc(
        &client,
        &pds,
        "com.atproto.server.activateAccount",
        Some(&access),
        json!({}),
    )
    .await;
    let mut kinds = Vec::new();
    for seq in 56..=58 {
        let frame = next_frame(&mut ws).await.unwrap();
        assert_eq!(frame.seq(), Some(seq));
        kinds.push(frame.t.unwrap());
    }
    assert_eq!(kinds, ["#account", "#identity", "#sync"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_switches_to_live_without_gap_or_repeat_under_concurrent_writes() {
    let pds = TestPds::start().await;
    let client = reqwest::Client::new();
    let (alice, alice_token) = create_account(&client, &pds, "alice.test").await;
    let (bob, bob_token) = create_account(&client, &pds, "bob.test").await;
    for i in 0..60 {
        let (did, token) = if i % 2 == 0 {
            (&alice, &alice_token)
        } else {
            (&bob, &bob_token)
        };
        xrpc(
            &client,
            &pds,
            "com.atproto.repo.createRecord",
            Some(token),
            json!({"repo": did, "collection": "app.bsky.feed.post", "record": post(i)}),
        )
        .await;
    }
    let cursor = 23;
    // Two writers keep going while the subscriber replays and switches to live.
    let writers: Vec<_> = [(alice.clone(), alice_token.clone()), (bob.clone(), bob_token.clone())]
        .into_iter()
        .map(|(did, token)| {
            let client = client.clone();
            let url = pds.url();
            tokio::spawn(async move {
                for i in 0..40 {
                    let reply = client
                        .post(format!("{url}/xrpc/com.atproto.repo.createRecord"))
                        .bearer_auth(&token)
                        .json(&json!({"repo": did, "collection": "app.bsky.feed.post", "record": post(100 + i)}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(reply.status(), 200);
                }
            })
        })
        .collect();
    let mut ws = connect(&pds, Some(cursor)).await;
    let mut seen = Vec::new();
    // Frames are read while the writers run, and after they are done up to the latest seq.
    // (Waiting for a frame only while the writers run: the subscriber may have every event
    // before the writer tasks have finished.)
    let mut writers = std::pin::pin!(futures::future::join_all(writers));
    let mut writers_done = false;
    loop {
        let frame = if writers_done {
            if seen.last() == Some(&latest_seq(&pds).await) {
                break;
            }
            next_frame(&mut ws).await
        } else {
            tokio::select! {
                finished = &mut writers => {
                    for writer in finished {
                        writer.unwrap();
                    }
                    writers_done = true;
                    continue;
                }
                frame = next_frame(&mut ws) => frame,
            }
        };
        let frame = frame.unwrap();
        assert_eq!(frame.op, 1);
        seen.push(frame.seq().unwrap());
    }
    let latest = latest_seq(&pds).await;
    assert_eq!(latest, 8 + 60 + 80);
    assert_eq!(seen, ((cursor + 1)..=latest).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_and_invalid_cursors() {
    let pds = TestPds::start().await;
    let client = reqwest::Client::new();
    create_account(&client, &pds, "alice.test").await;
    let mut ws = connect(&pds, Some(5)).await;
    let frame = next_frame(&mut ws).await.unwrap();
    assert_eq!((frame.op, frame.t.as_deref()), (-1, None));
    assert_eq!(frame.text("error"), Some("FutureCursor"));
    assert_eq!(frame.text("message"), Some("Cursor in the future."));
    assert!(
        next_frame(&mut ws).await.is_none(),
        "closed after the error"
    );
    // The latest seq itself is fine: nothing to replay, then live.
    let mut ws = connect(&pds, Some(4)).await;
    until_subscribers(&pds, 1).await;
    let (did, access) = create_account(&client, &pds, "bob.test").await;
    let frame = next_frame(&mut ws).await.unwrap();
    assert_eq!(
        (frame.seq(), frame.text("did")),
        (Some(5), Some(did.as_str()))
    );
    drop(access);

    // Malformed cursors are refused before the upgrade.
    for bad in ["abc", "-1", "1.5", "99999999999999999999"] {
        let reply = client
            .get(format!(
                "{}/xrpc/com.atproto.sync.subscribeRepos?cursor={bad}",
                pds.url()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 400, "{bad}");
        let body: Value = reply.json().await.unwrap();
        assert_eq!(body["error"], "InvalidRequest", "{bad}");
        let err = tokio_tungstenite::connect_async(ws_url(&pds, Some(bad)))
            .await
            .unwrap_err();
        match err {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                assert_eq!(response.status(), 400)
            }
            other => panic!("{bad}: {other}"),
        }
    }
    // Not a WebSocket request at all.
    let reply = client
        .get(format!(
            "{}/xrpc/com.atproto.sync.subscribeRepos",
            pds.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outdated_cursor_gets_info_then_the_window() {
    let pds =
        TestPds::start_with(|config| config.repo_backfill_limit = Duration::from_millis(1)).await;
    let client = reqwest::Client::new();
    let (did, access) = create_account(&client, &pds, "alice.test").await;
    let mut ws = connect(&pds, Some(0)).await;
    let frame = next_frame(&mut ws).await.unwrap();
    assert_eq!((frame.op, frame.t.as_deref()), (1, Some("#info")));
    assert_eq!(frame.text("name"), Some("OutdatedCursor"));
    assert_eq!(frame.seq(), None);
    until_subscribers(&pds, 1).await;
    // Everything before the connection is older than the 1 ms window: what follows is live.
    xrpc(
        &client,
        &pds,
        "com.atproto.repo.createRecord",
        Some(&access),
        json!({"repo": did, "collection": "app.bsky.feed.post", "record": post(1)}),
    )
    .await;
    let frame = next_frame(&mut ws).await.unwrap();
    assert_eq!(
        (frame.t.as_deref(), frame.seq()),
        (Some("#commit"), Some(5))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_reader_is_dropped_as_consumer_too_slow() {
    let pds = TestPds::start_with(|config| config.max_subscription_buffer = 2).await;
    let client = reqwest::Client::new();
    let (did, access) = create_account(&client, &pds, "alice.test").await;
    // A small receive buffer, so the server's socket fills after a few megabytes.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let stream = socket.connect(pds.addr).await.unwrap();
    let (mut ws, _) =
        tokio_tungstenite::client_async(ws_url(&pds, None), MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    until_subscribers(&pds, 1).await;
    // The reader stalls while 20 commits of ~900 kB each are written.
    let big = "x".repeat(900_000);
    for i in 0..20 {
        xrpc(&client, &pds, "com.atproto.repo.createRecord", Some(&access),
            json!({"repo": did, "collection": "com.example.big", "record": {"$type": "com.example.big", "i": i, "data": big}})).await;
    }
    // Reading again: consecutive commits, then the error frame, then the end.
    let mut seqs = Vec::new();
    let error = loop {
        let frame = next_frame(&mut ws)
            .await
            .expect("an error frame before the close");
        if frame.op == -1 {
            break frame;
        }
        assert_eq!(frame.t.as_deref(), Some("#commit"));
        seqs.push(frame.seq().unwrap());
    };
    assert_eq!(error.text("error"), Some("ConsumerTooSlow"));
    assert!(next_frame(&mut ws).await.is_none());
    assert!(!seqs.is_empty() && seqs.len() < 20, "{seqs:?}");
    assert_eq!(seqs, (5..5 + seqs.len() as i64).collect::<Vec<_>>());
    until_subscribers(&pds, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let (did, access, latest) = {
        let data = data.clone();
        let pds = TestPds::start_with(move |config| config.data_directory = data).await;
        let client = reqwest::Client::new();
        let (did, access) = create_account(&client, &pds, "alice.test").await;
        for i in 0..3 {
            xrpc(
                &client,
                &pds,
                "com.atproto.repo.createRecord",
                Some(&access),
                json!({"repo": did, "collection": "app.bsky.feed.post", "record": post(i)}),
            )
            .await;
        }
        let latest = latest_seq(&pds).await;
        // The first server must be gone (tasks ended, databases closed) before the second
        // opens the same directory.
        pds.stop().await;
        (did, access, latest)
    };
    assert_eq!(latest, 7);
    let pds = TestPds::start_with(move |config| config.data_directory = data).await;
    assert_eq!(latest_seq(&pds).await, latest);
    // The old cursor is neither in the future nor replays anything; new events follow it.
    let mut ws = connect(&pds, Some(latest)).await;
    until_subscribers(&pds, 1).await;
    let client = reqwest::Client::new();
    xrpc(
        &client,
        &pds,
        "com.atproto.repo.createRecord",
        Some(&access),
        json!({"repo": did, "collection": "app.bsky.feed.post", "record": post(9)}),
    )
    .await;
    let frame = next_frame(&mut ws).await.unwrap();
    assert_eq!(
        (frame.t.as_deref(), frame.seq()),
        (Some("#commit"), Some(latest + 1))
    );
    let mut replay = connect(&pds, Some(0)).await;
    let seqs: Vec<i64> = {
        let mut v = Vec::new();
        while v.len() < 8 {
            v.push(next_frame(&mut replay).await.unwrap().seq().unwrap());
        }
        v
    };
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
}

/// The official consumer: `Firehose` from `@atproto/sync` subscribes (cursor 0) before the
/// session starts, verifies every commit's signature and proofs against the DID document in
/// the local PLC directory, and must report no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_firehose_consumer_verifies_every_event() {
    let pds = TestPds::start().await;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let child = Command::new(support::plc::node_binary(repo))
        .arg(repo.join("tests/js/firehose-verify.mjs"))
        .arg(format!("ws://{}", pds.addr))
        .arg(pds.plc.url())
        .arg("53")
        .current_dir(repo)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until_subscribers(&pds, 1).await;
    let client = reqwest::Client::new();
    let (did, access) = create_account(&client, &pds, "alice.test").await;
    let writes = mixed_writes(&client, &pds, &did, &access).await;
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "firehose-verify failed: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["errors"], json!([]), "{report}");
    let events = report["events"].as_array().unwrap();
    let mut expected: Vec<Value> = vec![
        json!({"event": "identity", "seq": 1, "did": did}),
        json!({"event": "account", "seq": 2, "did": did, "active": true}),
        // seq 3 is the empty first commit: no op, so no event.
        json!({"event": "sync", "seq": 4, "did": did}),
    ];
    for (i, (action, rkey)) in writes.iter().enumerate() {
        expected.push(json!({"event": action, "seq": 5 + i, "did": did, "path": format!("app.bsky.feed.post/{rkey}")}));
    }
    assert_eq!(events, &expected);
    let counts: BTreeMap<&str, usize> = events.iter().fold(BTreeMap::new(), |mut m, e| {
        *m.entry(e["event"].as_str().unwrap()).or_default() += 1;
        m
    });
    assert_eq!(counts.values().sum::<usize>(), 53);
}

/// Keep-alive: a subscriber that reads (so its WebSocket client answers pings) stays; one
/// that never reads sends no pong and is disconnected after 2.5 ping intervals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_keep_readers_and_drop_silent_peers() {
    let pds = TestPds::start_with(|config| {
        config.firehose_ping_interval = Duration::from_millis(200);
    })
    .await;
    let mut reader = connect(&pds, None).await;
    let silent = connect(&pds, None).await;
    until_subscribers(&pds, 2).await;
    // The reader keeps reading (answering pings) until told to stop, handing over its first
    // event; it never stops reading while the test still counts on it being connected.
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let stop = CancellationToken::new();
    let reading = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut pings = 0;
            let mut first_tx = Some(first_tx);
            loop {
                let next = tokio::select! {
                    () = stop.cancelled() => return (pings, reader),
                    next = tokio::time::timeout(DEADLINE, reader.next()) => next,
                };
                match next.unwrap() {
                    Some(Ok(Message::Ping(_))) => pings += 1,
                    Some(Ok(Message::Binary(bytes))) => {
                        if let Some(tx) = first_tx.take() {
                            tx.send(parse(&bytes).unwrap()).unwrap();
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    });
    // The silent peer goes after ~500 ms.
    until_subscribers(&pds, 1).await;
    let client = reqwest::Client::new();
    create_account(&client, &pds, "alice.test").await;
    let frame = first_rx.await.unwrap();
    assert_eq!(
        (frame.t.as_deref(), frame.seq()),
        (Some("#identity"), Some(1))
    );
    assert_eq!(pds.state.repo().sequencer().subscriber_count(), 1);
    stop.cancel();
    let (pings, _reader) = reading.await.unwrap();
    assert!(pings >= 2, "{pings} pings");
    drop(silent);
}
