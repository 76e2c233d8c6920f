//! Asking relays (`PDS_CRAWLERS`) to crawl this server: `com.atproto.sync.requestCrawl`.
//!
//! As the reference PDS does, each crawler is asked at most once per [`NOTIFY_INTERVAL`],
//! with `{"hostname": PDS_HOSTNAME}`: once at start-up, then when new events reach the
//! sequencer. A relay that is subscribed to our firehose already sees every event, so while
//! any firehose subscriber is connected updates ask nobody. Requests run in their own tasks
//! with a time limit and failures are only logged: a write never waits for or fails on a
//! relay.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::tasks::BackgroundTask;
use crate::sequencer::Sequencer;

/// Least time between two requests to one crawler (the reference's 20 minutes).
pub const NOTIFY_INTERVAL: Duration = Duration::from_secs(20 * 60);
/// How long one request may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The XRPC path appended to each crawler's URL.
const REQUEST_CRAWL_PATH: &str = "xrpc/com.atproto.sync.requestCrawl";

/// What the notifier has done so far (for logs and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifierStats {
    /// Times new events were noticed in the sequencer.
    pub updates: u64,
    /// Updates that asked nobody because a firehose subscriber was connected.
    pub skipped_subscribed: u64,
    /// Requests not sent because the crawler was asked less than the interval ago.
    pub skipped_recent: u64,
    /// Requests started.
    pub sent: u64,
    /// Requests that failed (no answer in time, connection error, or a non-2xx status).
    pub failed: u64,
}

/// Could not set up the notifier.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the crawler HTTP client: {0}")]
pub struct NotifierError(#[from] reqwest::Error);

/// The `requestCrawl` notifier: a [`BackgroundTask`] watching the sequencer.
pub struct CrawlerNotifier {
    hostname: String,
    /// The full `requestCrawl` URL of each crawler.
    endpoints: Vec<Url>,
    sequencer: Sequencer,
    client: reqwest::Client,
    interval: Duration,
    /// When each crawler (same index as `endpoints`) was last asked.
    last_asked: Mutex<Vec<Option<Instant>>>,
    stats: watch::Sender<NotifierStats>,
}

impl CrawlerNotifier {
    /// Asks each of `crawlers` (base URLs) to crawl `hostname`, at most once per `interval`.
    pub fn new(
        hostname: impl Into<String>,
        crawlers: &[Url],
        sequencer: Sequencer,
        interval: Duration,
    ) -> Result<Self, NotifierError> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("rookery/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let endpoints: Vec<Url> = crawlers.iter().map(request_crawl_url).collect();
        Ok(CrawlerNotifier {
            hostname: hostname.into(),
            last_asked: Mutex::new(vec![None; endpoints.len()]),
            endpoints,
            sequencer,
            client,
            interval,
            stats: watch::Sender::new(NotifierStats::default()),
        })
    }

    /// Follows the notifier's counters.
    pub fn stats(&self) -> watch::Receiver<NotifierStats> {
        self.stats.subscribe()
    }

    /// Asks every crawler not asked within the interval; `update` says whether new events
    /// prompted it (counted in the same step, so the counters never show half a decision).
    /// Returns at once: the requests run in their own tasks.
    fn request_crawls(self: &Arc<Self>, update: bool) {
        let now = Instant::now();
        let due: Vec<Url> = {
            let mut last = self.last_asked.lock().unwrap_or_else(|e| e.into_inner());
            self.endpoints
                .iter()
                .zip(last.iter_mut())
                .filter_map(|(url, asked)| {
                    let recent = asked.is_some_and(|t| now.duration_since(t) < self.interval);
                    (!recent).then(|| {
                        *asked = Some(now);
                        url.clone()
                    })
                })
                .collect()
        };
        let skipped = (self.endpoints.len() - due.len()) as u64;
        self.stats.send_modify(|s| {
            s.updates += u64::from(update);
            s.skipped_recent += skipped;
            s.sent += due.len() as u64;
        });
        for url in due {
            let this = Arc::clone(self);
            tokio::spawn(async move { this.request_crawl(url).await });
        }
    }

    async fn request_crawl(&self, url: Url) {
        let body = json!({ "hostname": self.hostname });
        let result = match self.client.post(url.clone()).json(&body).send().await {
            Ok(reply) => reply.error_for_status().map(drop),
            Err(err) => Err(err),
        };
        match result {
            Ok(()) => tracing::debug!(crawler = %url, "requested a crawl"),
            Err(err) => {
                self.stats.send_modify(|s| s.failed += 1);
                tracing::warn!(crawler = %url, error = %err, "failed to request crawl");
            }
        }
    }

    /// New events reached the sequencer.
    fn on_update(self: &Arc<Self>) {
        if self.sequencer.subscriber_count() > 0 {
            self.stats.send_modify(|s| {
                s.updates += 1;
                s.skipped_subscribed += 1;
            });
            return;
        }
        self.request_crawls(true);
    }
}

impl BackgroundTask for CrawlerNotifier {
    fn name(&self) -> &'static str {
        "crawler-notifier"
    }

    async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut seen: Option<i64> = None;
        let mut first = true;
        loop {
            // Armed before reading the latest seq, so an append in between still wakes us.
            let notified = self.sequencer.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.sequencer.latest_seq().await {
                Ok(latest) => {
                    let latest = latest.unwrap_or(0);
                    if seen.is_some_and(|seen| latest > seen) {
                        self.on_update();
                    }
                    seen = Some(seen.map_or(latest, |seen| seen.max(latest)));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "crawler notifier cannot read the sequencer")
                }
            }
            if first {
                // At start-up, once the position is known: later events count as updates.
                first = false;
                self.request_crawls(false);
            }
            tokio::select! {
                () = &mut notified => {}
                () = shutdown.cancelled() => return Ok(()),
            }
        }
    }
}

/// `{crawler}/xrpc/com.atproto.sync.requestCrawl`, keeping any path the crawler URL has.
fn request_crawl_url(base: &Url) -> Url {
    let mut url = base.clone();
    let path = format!("{}/{REQUEST_CRAWL_PATH}", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_crawl_urls_keep_the_crawler_path() {
        for (base, expected) in [
            (
                "https://bsky.network",
                "https://bsky.network/xrpc/com.atproto.sync.requestCrawl",
            ),
            (
                "https://relay.example.com/",
                "https://relay.example.com/xrpc/com.atproto.sync.requestCrawl",
            ),
            (
                "http://127.0.0.1:2470/relay/?x=1",
                "http://127.0.0.1:2470/relay/xrpc/com.atproto.sync.requestCrawl",
            ),
        ] {
            let url = request_crawl_url(&base.parse().unwrap());
            assert_eq!(url.as_str(), expected, "{base}");
        }
    }
}
