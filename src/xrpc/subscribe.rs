//! `com.atproto.sync.subscribeRepos`: the firehose over WebSocket.
//!
//! The cursor is checked before the upgrade (a malformed one is a 400 `InvalidRequest`);
//! everything after it is frames (see [`crate::sequencer::frame`]): `FutureCursor` and
//! `ConsumerTooSlow` are error frames followed by a close. The connection is pinged every
//! [`crate::sequencer::FirehoseSettings::ping_interval`]; a peer silent for 2.5 intervals (no pong, no message)
//! is dropped, so dead connections and readers that stopped reading do not hold a task
//! forever.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::XrpcError;
use crate::sequencer::firehose::{Next, Opened};
use crate::sequencer::frame;
use crate::sequencer::{Firehose, Subscription};
use crate::server::AppState;
use crate::xrpc::extract::XrpcQuery;

/// How long a closing error frame may take to go out before the connection is dropped.
const ERROR_SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/xrpc/com.atproto.sync.subscribeRepos",
        get(subscribe_repos),
    )
}

#[derive(Deserialize)]
struct Params {
    cursor: Option<String>,
}

/// A cursor is a non-negative integer (a sequence number).
fn parse_cursor(text: &str) -> Result<i64, XrpcError> {
    match text.parse::<i64>() {
        Ok(cursor) if cursor >= 0 => Ok(cursor),
        _ => Err(XrpcError::invalid_request(
            "cursor must be a non-negative integer",
        )),
    }
}

async fn subscribe_repos(
    State(state): State<AppState>,
    XrpcQuery(params): XrpcQuery<Params>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, XrpcError> {
    let cursor = params.cursor.as_deref().map(parse_cursor).transpose()?;
    let upgrade = upgrade.map_err(|_| {
        XrpcError::invalid_request(
            "com.atproto.sync.subscribeRepos is a subscription: connect with a WebSocket",
        )
    })?;
    let firehose = state.firehose().clone();
    Ok(upgrade.on_upgrade(move |socket| serve_subscriber(socket, firehose, cursor)))
}

type Sink = SplitSink<WebSocket, Message>;

async fn serve_subscriber(socket: WebSocket, firehose: Firehose, cursor: Option<i64>) {
    let (mut sink, stream) = socket.split();
    // Cancelled when the peer closes, errs, or goes silent for too long.
    let gone = CancellationToken::new();
    let ping_interval = firehose.settings().ping_interval;
    let dead_after = ping_interval.saturating_mul(5) / 2;
    let watcher = tokio::spawn(watch_peer(stream, gone.clone(), dead_after));
    match firehose.open(cursor).await {
        Ok(Opened::Stream(subscription)) => {
            stream_frames(&mut sink, subscription, &gone, ping_interval).await;
        }
        Ok(Opened::Future { .. }) => {
            close_with_error(&mut sink, frame::FUTURE_CURSOR, "Cursor in the future.").await;
        }
        Err(err) => {
            tracing::error!(error = %err, "firehose: opening a subscription failed");
            close_with_error(&mut sink, "InternalServerError", "Internal Server Error").await;
        }
    }
    gone.cancel();
    // The watcher returns once `gone` is cancelled; a panic there has nothing to clean up.
    let _ = watcher.await;
}

/// Reads what the peer sends (pongs, pings, a close) only to know it is alive; cancels
/// `gone` when it closes, fails, or is silent for `dead_after`.
async fn watch_peer(
    mut stream: SplitStream<WebSocket>,
    gone: CancellationToken,
    dead_after: Duration,
) {
    let mut deadline = Instant::now() + dead_after;
    loop {
        tokio::select! {
            () = gone.cancelled() => return,
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!("firehose: subscriber silent too long; disconnecting");
                break;
            }
            message = stream.next() => match message {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => deadline = Instant::now() + dead_after,
            },
        }
    }
    gone.cancel();
}

enum Sent {
    Ok,
    Gone,
    TooSlow,
}

/// Sends `message` unless the peer goes away or the subscriber is dropped as too slow
/// while the send waits on a full socket.
async fn send(
    sink: &mut Sink,
    message: Message,
    gone: &CancellationToken,
    too_slow: &CancellationToken,
) -> Sent {
    tokio::select! {
        biased;
        () = gone.cancelled() => Sent::Gone,
        () = too_slow.cancelled() => Sent::TooSlow,
        sent = sink.send(message) => if sent.is_ok() { Sent::Ok } else { Sent::Gone },
    }
}

async fn stream_frames(
    sink: &mut Sink,
    mut subscription: Subscription,
    gone: &CancellationToken,
    ping_interval: Duration,
) {
    let too_slow = subscription.too_slow().clone();
    let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
    loop {
        let next = tokio::select! {
            biased;
            () = gone.cancelled() => return,
            _ = ping.tick() => {
                match send(sink, Message::Ping(Bytes::new()), gone, &too_slow).await {
                    Sent::Ok => continue,
                    Sent::Gone => return,
                    Sent::TooSlow => Ok(Next::TooSlow),
                }
            }
            next = subscription.next() => next,
        };
        let next = match next {
            Ok(Next::Frame(bytes)) => {
                match send(sink, Message::Binary(bytes), gone, &too_slow).await {
                    Sent::Ok => continue,
                    Sent::Gone => return,
                    Sent::TooSlow => Next::TooSlow,
                }
            }
            Ok(other) => other,
            Err(err) => {
                tracing::error!(error = %err, "firehose: reading events failed");
                drop(subscription);
                close_with_error(sink, "InternalServerError", "Internal Server Error").await;
                return;
            }
        };
        // The queue is no longer needed: let the broadcaster forget it before the slow
        // goodbye below.
        drop(subscription);
        match next {
            Next::TooSlow => {
                close_with_error(sink, frame::CONSUMER_TOO_SLOW, "Stream consumer too slow").await;
            }
            Next::Closed | Next::Frame(_) => {
                let close = Message::Close(Some(CloseFrame {
                    code: close_code::AWAY,
                    reason: "server shutting down".into(),
                }));
                let _ = tokio::time::timeout(ERROR_SEND_TIMEOUT, sink.send(close)).await;
            }
        }
        return;
    }
}

/// Sends an error frame, then closes; gives up after [`ERROR_SEND_TIMEOUT`].
async fn close_with_error(sink: &mut Sink, error: &str, message: &str) {
    let goodbye = async {
        if let Ok(bytes) = frame::error_frame(error, Some(message)) {
            sink.send(Message::Binary(bytes)).await?;
        }
        sink.send(Message::Close(Some(CloseFrame {
            code: close_code::POLICY,
            reason: error.into(),
        })))
        .await
    };
    if tokio::time::timeout(ERROR_SEND_TIMEOUT, goodbye)
        .await
        .is_err()
    {
        tracing::debug!(error, "firehose: closing error frame not delivered in time");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor("0").unwrap(), 0);
        assert_eq!(
            parse_cursor("9007199254740991").unwrap(),
            9_007_199_254_740_991
        );
        for bad in ["", "-1", "1.5", "abc", "99999999999999999999", " 1"] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }
}
