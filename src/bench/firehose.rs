//! `rookery bench firehose`: `com.atproto.sync.subscribeRepos` over real WebSockets on
//! 127.0.0.1 against an in-process server (the same router and background tasks as `serve`).
//!
//! A backlog of real one-op `#commit` bodies is appended to `repo_seq` in batches (the body
//! of one commit built by the repo engine, repeated under distinct revisions), then:
//! - replay: one subscriber, then `subscribers` at once, read from cursor 0 to the end;
//! - live fan-out: `subscribers` connected live while events are appended one at a time;
//!   latency runs from the append call (its fsync'd commit included) to each delivery.
//!
//! Bounded: every phase stops at `time_limit` and reports what it delivered by then.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::harness::{BenchServer, Serve, WorkDir, server_error};
use super::{Error, Latency, Machine, human, micros, per_second};
use crate::crypto::{Algorithm, Keypair};
use crate::repo::blockstore::{BlockStore, MemoryBlockStore};
use crate::repo::cbor::Ipld;
use crate::repo::repository::{Repo, Write};
use crate::sequencer::{Sequencer, events, frame};
use crate::store::outbox::OutboxRow;
use crate::syntax::TidClock;

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
/// Backlog rows appended per sequencer transaction.
const APPEND_BATCH: usize = 1_000;

#[derive(Debug, Clone)]
pub struct Options {
    /// Events in the backlog replayed from cursor 0.
    pub backlog: usize,
    /// Concurrent subscribers of the fan-out phases.
    pub subscribers: usize,
    /// Events appended one by one while `subscribers` listen live.
    pub live: usize,
    /// Longest each phase may run.
    pub time_limit: Duration,
    /// Parent of the working directory; default: the system temp directory.
    pub dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backlog: 100_000,
            subscribers: 100,
            live: 1_000,
            time_limit: Duration::from_secs(120),
            dir: None,
        }
    }
}

/// Frames delivered in one phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delivery {
    pub subscribers: usize,
    /// Frames received, summed over subscribers.
    pub frames: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Whether every subscriber got every event before the time limit.
    pub complete: bool,
}

impl Delivery {
    pub fn frames_per_second(&self) -> f64 {
        per_second(self.frames, self.elapsed)
    }
}

#[derive(Debug)]
pub struct Report {
    pub machine: Machine,
    pub backlog: usize,
    pub frame_len: usize,
    pub append_elapsed: Duration,
    pub replay_one: Delivery,
    pub replay_many: Delivery,
    pub live: Delivery,
    pub live_latency: Latency,
}

/// Runs the benchmark and removes its data directory.
pub async fn run(opts: &Options) -> Result<Report, Error> {
    let dir = WorkDir::create(opts.dir.as_deref(), "firehose")?;
    let serve = Serve {
        background_tasks: true,
        ..Serve::default()
    };
    let server = BenchServer::start_with(dir.path(), serve, |config| {
        // Every subscriber may lag by the whole live phase without being dropped.
        config.max_subscription_buffer = opts.live.max(500);
        config.firehose_ping_interval = Duration::from_secs(30);
    })
    .await?;
    let url = format!(
        "ws://{}/xrpc/com.atproto.sync.subscribeRepos",
        server.addr()
    );
    let result = measure(opts, server.state().repo().sequencer(), &url).await;
    server.stop().await;
    result
}

/// The body of a real one-op `#commit` (a like added to a 100-record repository).
async fn commit_body() -> Result<Vec<u8>, Error> {
    let key = Keypair::generate(Algorithm::K256);
    let clock = TidClock::default();
    let store = MemoryBlockStore::new();
    let like = |i: usize| -> Result<Write, Error> {
        Ok(Write::Create {
            collection: "app.bsky.feed.like".parse()?,
            rkey: format!("3l{i:011}").parse()?,
            record: Ipld::Map(BTreeMap::from([
                ("$type".into(), Ipld::String("app.bsky.feed.like".into())),
                (
                    "createdAt".into(),
                    Ipld::String("2026-11-23T00:00:00.000Z".into()),
                ),
            ])),
        })
    };
    let initial = (0..100).map(like).collect::<Result<Vec<_>, _>>()?;
    let prepared =
        Repo::format_init(store.clone(), DID, &key, clock.next().to_string(), &initial).await?;
    store
        .put_many(&prepared.data.new_blocks, &prepared.data.rev)
        .await?;
    let repo = Repo::apply(prepared);
    let next = repo
        .format_commit(&[like(1000)?], &key, clock.next().to_string())
        .await?;
    let event = events::commit_event(&next.data, &events::now())
        .await
        .map_err(|e| server_error("commit event", e))?;
    Ok(event.body)
}

async fn append_backlog(sequencer: &Sequencer, body: &[u8], n: usize) -> Result<(), Error> {
    let clock = TidClock::default();
    let mut rows = Vec::with_capacity(APPEND_BATCH);
    let mut id = 0;
    while id < n {
        rows.clear();
        while rows.len() < APPEND_BATCH && id < n {
            id += 1;
            rows.push(OutboxRow {
                id: id as i64,
                rev: clock.next().to_string(),
                event_type: "commit".to_owned(),
                event: body.to_vec(),
                created_at: events::now(),
            });
        }
        sequencer
            .sequence_outbox(DID, &rows)
            .await
            .map_err(|e| server_error("append", e))?;
    }
    Ok(())
}

/// Reads frames until one with `seq >= last` or `deadline`; returns (frames, bytes,
/// reached).
async fn read_until(url: &str, last: i64, deadline: Instant) -> Result<(u64, u64, bool), Error> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| server_error("connect", e))?;
    let (mut frames, mut bytes) = (0u64, 0u64);
    loop {
        let Ok(message) = tokio::time::timeout_at(deadline.into(), ws.next()).await else {
            return Ok((frames, bytes, false));
        };
        match message {
            Some(Ok(Message::Binary(data))) => {
                frames += 1;
                bytes += data.len() as u64;
                // Only the seq is needed: the header and the body's small fields come first,
                // but a full parse is what a consumer does anyway.
                let parsed = frame::parse(&data).map_err(|e| server_error("frame", e))?;
                if parsed.seq().is_some_and(|seq| seq >= last) {
                    return Ok((frames, bytes, true));
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(server_error("websocket", e)),
            None => return Ok((frames, bytes, false)),
        }
    }
}

async fn replay(
    url: &str,
    subscribers: usize,
    last: i64,
    limit: Duration,
) -> Result<Delivery, Error> {
    let started = Instant::now();
    let deadline = started + limit;
    let url = format!("{url}?cursor=0");
    let tasks: Vec<_> = (0..subscribers)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { read_until(&url, last, deadline).await })
        })
        .collect();
    let mut delivery = Delivery {
        subscribers,
        frames: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        complete: true,
    };
    for task in tasks {
        let (frames, bytes, reached) = task
            .await
            .map_err(|e| server_error("subscriber task", e))??;
        delivery.frames += frames;
        delivery.bytes += bytes;
        delivery.complete &= reached;
    }
    delivery.elapsed = started.elapsed();
    Ok(delivery)
}

type Sent = Arc<Mutex<BTreeMap<i64, Instant>>>;

async fn live(
    url: &str,
    sequencer: &Sequencer,
    body: &[u8],
    opts: &Options,
) -> Result<(Delivery, Latency), Error> {
    let sent: Sent = Arc::default();
    let first = sequencer
        .latest_seq()
        .await
        .map_err(|e| server_error("seq", e))?
        .unwrap_or(0)
        + 1;
    let last = first + opts.live as i64 - 1;
    let started = Instant::now();
    let deadline = started + opts.time_limit;
    let mut sockets = Vec::with_capacity(opts.subscribers);
    for _ in 0..opts.subscribers {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| server_error("connect", e))?;
        sockets.push(ws);
    }
    // Every subscriber is registered before the first append.
    let connected = Instant::now();
    while sequencer.subscriber_count() < opts.subscribers {
        if connected.elapsed() > Duration::from_secs(30) {
            return Err(server_error("live", "subscribers did not register"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut bytes = 0u64;
                loop {
                    let Ok(Some(Ok(message))) =
                        tokio::time::timeout_at(deadline.into(), ws.next()).await
                    else {
                        return (samples, bytes, false);
                    };
                    let Message::Binary(data) = message else {
                        continue;
                    };
                    let at = Instant::now();
                    bytes += data.len() as u64;
                    let Some(seq) = frame::parse(&data).ok().and_then(|f| f.seq()) else {
                        continue;
                    };
                    let from = sent
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(&seq)
                        .copied();
                    if let Some(from) = from {
                        samples.push(at.saturating_duration_since(from));
                    }
                    if seq >= last {
                        return (samples, bytes, true);
                    }
                }
            })
        })
        .collect();
    let clock = TidClock::default();
    for i in 0..opts.live {
        if Instant::now() > deadline {
            break;
        }
        let seq = first + i as i64;
        sent.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(seq, Instant::now());
        let row = OutboxRow {
            id: seq,
            rev: clock.next().to_string(),
            event_type: "commit".to_owned(),
            event: body.to_vec(),
            created_at: events::now(),
        };
        sequencer
            .sequence_outbox("did:plc:livebenchmarkaccount00", &[row])
            .await
            .map_err(|e| server_error("append", e))?;
    }
    let mut delivery = Delivery {
        subscribers: opts.subscribers,
        frames: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        complete: true,
    };
    let mut samples = Vec::new();
    for reader in readers {
        let (mut got, bytes, reached) = reader
            .await
            .map_err(|e| server_error("subscriber task", e))?;
        delivery.frames += got.len() as u64;
        delivery.bytes += bytes;
        delivery.complete &= reached;
        samples.append(&mut got);
    }
    delivery.elapsed = started.elapsed();
    Ok((delivery, Latency::of(&samples)))
}

async fn measure(opts: &Options, sequencer: &Sequencer, url: &str) -> Result<Report, Error> {
    let body = commit_body().await?;
    let frame_len = frame::message_frame(events::EventType::Commit, &body, 1)
        .map_err(|e| server_error("frame", e))?
        .bytes
        .len();
    let started = Instant::now();
    append_backlog(sequencer, &body, opts.backlog).await?;
    let append_elapsed = started.elapsed();
    let last = opts.backlog as i64;
    let replay_one = replay(url, 1, last, opts.time_limit).await?;
    let replay_many = replay(url, opts.subscribers, last, opts.time_limit).await?;
    let (live, live_latency) = live(url, sequencer, &body, opts).await?;
    Ok(Report {
        machine: Machine::current(),
        backlog: opts.backlog,
        frame_len,
        append_elapsed,
        replay_one,
        replay_many,
        live,
        live_latency,
    })
}

fn delivery_line(f: &mut fmt::Formatter<'_>, what: &str, d: &Delivery) -> fmt::Result {
    writeln!(
        f,
        "  {what:<28} {:>4} subscriber(s): {:>12} frames/s  {:>8.1} MB/s  ({} frames in {}){}",
        d.subscribers,
        super::grouped(d.frames_per_second()),
        super::mb_per_second(d.bytes, d.elapsed),
        super::grouped(d.frames as f64),
        human(d.elapsed),
        if d.complete {
            ""
        } else {
            "  INCOMPLETE (time limit)"
        },
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rookery bench firehose ({})", self.machine)?;
        writeln!(
            f,
            "  backlog: {} one-op #commit events of {} bytes per frame, appended in {} ({} events/s)",
            super::grouped(self.backlog as f64),
            self.frame_len,
            human(self.append_elapsed),
            super::grouped(per_second(self.backlog as u64, self.append_elapsed)),
        )?;
        delivery_line(f, "replay from cursor 0", &self.replay_one)?;
        delivery_line(f, "replay from cursor 0", &self.replay_many)?;
        delivery_line(f, "live fan-out", &self.live)?;
        let l = &self.live_latency;
        writeln!(
            f,
            "  live latency (append → delivery, µs): median {}  p99 {}  max {}  over {} deliveries",
            micros(l.median),
            micros(l.p99),
            micros(l.max),
            super::grouped(l.count as f64),
        )
    }
}

// Small runs of the whole benchmark, checking its counts: `cargo test --features bench-tests`.
#[cfg(all(test, feature = "bench-tests"))]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_run_delivers_everything() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            backlog: 250,
            subscribers: 3,
            live: 20,
            time_limit: Duration::from_secs(60),
            dir: Some(dir.path().to_path_buf()),
        };
        let report = run(&opts).await.unwrap();
        assert!(report.replay_one.complete && report.replay_many.complete && report.live.complete);
        assert_eq!(report.replay_one.frames, 250);
        assert_eq!(report.replay_many.frames, 750);
        assert_eq!(report.live.frames, 60);
        assert_eq!(report.live_latency.count, 60);
        let text = report.to_string();
        assert!(text.contains("live fan-out"), "{text}");
    }
}
