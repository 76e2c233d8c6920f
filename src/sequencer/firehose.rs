//! The live firehose: one broadcaster reads new `repo_seq` rows, encodes each frame once and
//! hands it to every subscriber's bounded queue; a [`Subscription`] replays from the
//! database and then switches to its queue.
//!
//! # Replay → live handover
//!
//! A subscription with a cursor first pages through `repo_seq` (`seq > cursor`) without a
//! queue. When a page comes back short it has caught up with what was committed then; it
//! registers its queue and reads the database once more from where it stopped, until a
//! short page again; after that it takes frames from the queue, dropping those with a `seq`
//! it already sent. No gap: an event the broadcaster published before the registration was
//! committed before it, so the second read finds it; one published after lands in the
//! queue. `seq` is assigned inside SQLite's single write transaction, so rows become
//! visible in `seq` order and neither reader ever skips one.
//!
//! # Backpressure
//!
//! Each queue holds at most [`FirehoseSettings::buffer`] frames (the reference's
//! `PDS_MAX_SUBSCRIPTION_BUFFER`). The broadcaster never waits for a subscriber: when a
//! queue is full, that subscriber is marked too slow and dropped from the fan-out; its
//! connection then sends `ConsumerTooSlow` and closes. Frames are [`Bytes`] shared by every
//! queue, and a replay holds one page at a time, so memory stays bounded whatever the
//! consumers do.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::frame::{self, Frame};
use super::{CursorStart, Error, EventType, SeqEvent, Sequencer, SubscriberGuard};

/// Events read from the database per query, by the broadcaster and by replays.
pub(crate) const PAGE_SIZE: u32 = 100;
/// A page also ends once its event bodies reach this many bytes (commits reach 2 MB).
pub(crate) const PAGE_BYTES: usize = 4 * 1024 * 1024;
/// How long the broadcaster waits before retrying after a database error.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// The broadcaster re-reads the log at least this often, even without a wake-up.
const POLL_FALLBACK: Duration = Duration::from_secs(5);

/// Firehose limits, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirehoseSettings {
    /// Frames a subscriber may fall behind before it is dropped (at least 1).
    pub buffer: usize,
    /// How far back a cursor may reach (`PDS_REPO_BACKFILL_LIMIT_MS`).
    pub backfill_window: Duration,
    /// How often the connection is pinged (`ROOKERY_FIREHOSE_PING_INTERVAL_MS`).
    pub ping_interval: Duration,
}

/// The fan-out hub. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Firehose(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    sequencer: Sequencer,
    settings: FirehoseSettings,
    hub: Mutex<Hub>,
    /// Subscribers dropped for falling more than their buffer behind.
    too_slow: AtomicU64,
    /// Subscriptions ended, for any reason.
    ended: AtomicU64,
    /// Frames fanned out by the broadcaster.
    published: AtomicU64,
}

/// The fan-out's state, for the metrics; see [`Firehose::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FirehoseStats {
    /// Subscribers receiving live frames.
    pub live: usize,
    /// Frames waiting in the fullest live subscriber's queue (how far it lags).
    pub max_queued: usize,
    /// Frames waiting in all live queues together.
    pub queued: usize,
    /// The last `seq` fanned out (0 before the broadcaster started).
    pub published_seq: i64,
    /// Frames fanned out since start-up.
    pub frames: u64,
    /// Subscribers disconnected with `ConsumerTooSlow` since start-up.
    pub too_slow: u64,
    /// Subscriptions ended since start-up (closed by either side, or too slow).
    pub ended: u64,
}

#[derive(Debug, Default)]
struct Hub {
    next_id: u64,
    slots: HashMap<u64, Slot>,
    /// The last `seq` the broadcaster has handed out; `None` before it started.
    published: Option<i64>,
    /// Set when the broadcaster stops: no more live frames will come.
    closed: bool,
}

#[derive(Debug)]
struct Slot {
    tx: mpsc::Sender<Frame>,
    too_slow: CancellationToken,
}

/// What [`Firehose::open`] found.
#[derive(Debug)]
pub enum Opened {
    /// The cursor is past the latest event (`FutureCursor`).
    Future {
        latest: i64,
    },
    Stream(Subscription),
}

/// The next thing to send a subscriber.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Frame(Bytes),
    /// The subscriber fell more than its buffer behind.
    TooSlow,
    /// The server is shutting down.
    Closed,
}

impl Firehose {
    pub fn new(sequencer: Sequencer, settings: FirehoseSettings) -> Self {
        Firehose(Arc::new(Inner {
            sequencer,
            settings: FirehoseSettings {
                buffer: settings.buffer.max(1),
                ..settings
            },
            hub: Mutex::new(Hub::default()),
            too_slow: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            published: AtomicU64::new(0),
        }))
    }

    /// Subscriber counts, queue depths and disconnects (takes the fan-out lock briefly).
    pub fn stats(&self) -> FirehoseStats {
        let hub = self.hub();
        let depths = hub
            .slots
            .values()
            .map(|slot| slot.tx.max_capacity() - slot.tx.capacity());
        let (max_queued, queued) = depths.fold((0, 0), |(max, sum), d| (max.max(d), sum + d));
        FirehoseStats {
            live: hub.slots.len(),
            max_queued,
            queued,
            published_seq: hub.published.unwrap_or(0),
            frames: self.0.published.load(Ordering::Relaxed),
            too_slow: self.0.too_slow.load(Ordering::Relaxed),
            ended: self.0.ended.load(Ordering::Relaxed),
        }
    }

    /// Each live subscriber's queue depth (frames behind), deepest first.
    pub fn subscriber_lags(&self) -> Vec<usize> {
        let hub = self.hub();
        let mut depths: Vec<usize> = hub
            .slots
            .values()
            .map(|slot| slot.tx.max_capacity() - slot.tx.capacity())
            .collect();
        depths.sort_unstable_by(|a, b| b.cmp(a));
        depths
    }

    pub fn sequencer(&self) -> &Sequencer {
        &self.0.sequencer
    }

    pub fn settings(&self) -> &FirehoseSettings {
        &self.0.settings
    }

    fn hub(&self) -> MutexGuard<'_, Hub> {
        // The hub's invariants hold between statements; a panic elsewhere cannot break them.
        self.0.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribers currently registered for live frames.
    pub fn live_subscribers(&self) -> usize {
        self.hub().slots.len()
    }

    /// The last `seq` the broadcaster has fanned out (or found at its start); `None` while
    /// it has not started.
    pub fn published_through(&self) -> Option<i64> {
        self.hub().published
    }

    /// The broadcaster: until `shutdown`, reads the events appended since it started and
    /// fans each one out, encoded once. Database errors are logged and retried. On return
    /// every live subscription ends with [`Next::Closed`].
    pub async fn run_broadcaster(&self, shutdown: CancellationToken) -> Result<(), Error> {
        let sequencer = &self.0.sequencer;
        let mut position = loop {
            match sequencer.latest_seq().await {
                Ok(latest) => break latest.unwrap_or(0),
                Err(err) => {
                    tracing::warn!(error = %err, "firehose: cannot read the latest seq; retrying");
                    if pause(&shutdown, RETRY_DELAY).await {
                        self.close();
                        return Ok(());
                    }
                }
            }
        };
        self.hub().published = Some(position);
        loop {
            // Armed before reading, so an append after the read still wakes us.
            let notified = sequencer.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (page, full) = match sequencer.events_page(position, PAGE_SIZE, PAGE_BYTES).await {
                Ok(page) => page,
                Err(err) => {
                    tracing::warn!(error = %err, "firehose: reading repo_seq failed; retrying");
                    if pause(&shutdown, RETRY_DELAY).await {
                        break;
                    }
                    continue;
                }
            };
            for event in &page {
                position = event.seq;
                if let Some(frame) = encode(event) {
                    self.publish(frame);
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = &mut notified => {}
                () = tokio::time::sleep(POLL_FALLBACK) => {}
            }
        }
        self.close();
        Ok(())
    }

    /// Hands `frame` to every live subscriber; those whose queue is full are dropped as too
    /// slow, those gone are forgotten.
    fn publish(&self, frame: Frame) {
        self.0.published.fetch_add(1, Ordering::Relaxed);
        let mut hub = self.hub();
        hub.published = Some(frame.seq);
        hub.slots
            .retain(|_, slot| match slot.tx.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    slot.too_slow.cancel();
                    self.0.too_slow.fetch_add(1, Ordering::Relaxed);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
    }

    /// Ends every live subscription and refuses new ones.
    fn close(&self) {
        let mut hub = self.hub();
        hub.closed = true;
        hub.slots.clear();
    }

    fn register(&self, too_slow: &CancellationToken) -> Option<Registration> {
        let mut hub = self.hub();
        if hub.closed {
            return None;
        }
        let (tx, rx) = mpsc::channel(self.0.settings.buffer);
        let id = hub.next_id;
        hub.next_id += 1;
        hub.slots.insert(
            id,
            Slot {
                tx,
                too_slow: too_slow.clone(),
            },
        );
        Some(Registration { id, rx })
    }

    fn unregister(&self, id: u64) {
        self.hub().slots.remove(&id);
    }

    /// Starts a subscription: live only without a cursor, else a replay of the events after
    /// it (see [`Sequencer::resolve_cursor`]) that continues live.
    pub async fn open(&self, cursor: Option<i64>) -> Result<Opened, Error> {
        let guard = self.0.sequencer.subscriber_guard();
        let mut subscription = Subscription {
            firehose: self.clone(),
            _guard: guard,
            phase: Phase::Backfill,
            position: 0,
            pending: VecDeque::new(),
            live: None,
            too_slow: CancellationToken::new(),
        };
        match cursor {
            None => {
                // Live means what is appended from now on: skip anything already committed
                // that the broadcaster has yet to fan out.
                subscription.go_live();
                subscription.position = self.0.sequencer.latest_seq().await?.unwrap_or(0);
                subscription.phase = Phase::Live;
            }
            Some(cursor) => {
                match self
                    .0
                    .sequencer
                    .resolve_cursor(cursor, self.0.settings.backfill_window)
                    .await?
                {
                    CursorStart::Future { latest } => return Ok(Opened::Future { latest }),
                    CursorStart::Replay { after, outdated } => {
                        subscription.position = after;
                        if outdated {
                            let info = frame::info_frame(
                                frame::OUTDATED_CURSOR,
                                Some("Requested cursor exceeded limit. Possibly missing events"),
                            )?;
                            subscription.pending.push_back(Pending::Info(info));
                        }
                    }
                }
            }
        }
        Ok(Opened::Stream(subscription))
    }
}

/// Waits `delay` unless `shutdown` comes first; returns whether it did.
async fn pause(shutdown: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(delay) => false,
    }
}

/// The frame of a stored event; invalidated events and undecodable rows give none.
fn encode(event: &SeqEvent) -> Option<Frame> {
    if event.invalidated {
        return None;
    }
    let encoded = event
        .event_type
        .parse::<EventType>()
        .and_then(|t| frame::message_frame(t, &event.event, event.seq));
    match encoded {
        Ok(frame) => Some(frame),
        Err(err) => {
            tracing::error!(seq = event.seq, error = %err, "firehose: skipping an event that cannot be framed");
            None
        }
    }
}

#[derive(Debug)]
struct Registration {
    id: u64,
    rx: mpsc::Receiver<Frame>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the database, not yet registered.
    Backfill,
    /// Registered; reading the database up to what the queue will carry.
    CatchUp,
    /// Taking frames from the queue.
    Live,
}

#[derive(Debug)]
enum Pending {
    Info(Bytes),
    Frame(Frame),
}

/// One subscriber's position in the stream. Counts in [`Sequencer::subscriber_count`] while
/// it exists; dropping it unregisters its queue.
#[derive(Debug)]
pub struct Subscription {
    firehose: Firehose,
    _guard: SubscriberGuard,
    phase: Phase,
    /// Highest `seq` read (from the database or the queue); later frames must exceed it.
    position: i64,
    /// Frames read from the database, not yet handed out (at most one page).
    pending: VecDeque<Pending>,
    live: Option<Registration>,
    too_slow: CancellationToken,
}

impl Subscription {
    /// Cancelled when the broadcaster drops this subscriber for being too slow. A sender
    /// blocked on a slow socket watches it to give up in time.
    pub fn too_slow(&self) -> &CancellationToken {
        &self.too_slow
    }

    fn go_live(&mut self) {
        self.live = self.firehose.register(&self.too_slow);
    }

    /// The next frame to send, in `seq` order without gaps or repeats. Cancel-safe: the
    /// state changes only after each await completes.
    pub async fn next(&mut self) -> Result<Next, Error> {
        loop {
            if self.too_slow.is_cancelled() {
                return Ok(Next::TooSlow);
            }
            match self.pending.pop_front() {
                Some(Pending::Info(bytes)) => return Ok(Next::Frame(bytes)),
                Some(Pending::Frame(frame)) => return Ok(Next::Frame(frame.bytes)),
                None => {}
            }
            match self.phase {
                Phase::Backfill | Phase::CatchUp => {
                    let (page, more) = self
                        .firehose
                        .0
                        .sequencer
                        .events_page(self.position, PAGE_SIZE, PAGE_BYTES)
                        .await?;
                    for event in &page {
                        self.position = event.seq;
                        if let Some(frame) = encode(event) {
                            self.pending.push_back(Pending::Frame(frame));
                        }
                    }
                    if !more {
                        if self.phase == Phase::Backfill {
                            self.go_live();
                            self.phase = Phase::CatchUp;
                        } else {
                            self.phase = Phase::Live;
                        }
                    }
                }
                Phase::Live => {
                    let Some(live) = self.live.as_mut() else {
                        return Ok(Next::Closed);
                    };
                    match live.rx.recv().await {
                        Some(frame) if frame.seq <= self.position => {}
                        Some(frame) => {
                            self.position = frame.seq;
                            return Ok(Next::Frame(frame.bytes));
                        }
                        None if self.too_slow.is_cancelled() => return Ok(Next::TooSlow),
                        None => return Ok(Next::Closed),
                    }
                }
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.firehose.0.ended.fetch_add(1, Ordering::Relaxed);
        if let Some(live) = &self.live {
            self.firehose.unregister(live.id);
        }
    }
}

#[cfg(test)]
mod tests;
