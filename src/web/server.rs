//! The operator dashboard's server page: the firehose, blobs, mail, replication and server
//! errors at a glance, and a chart of firehose events per minute over the last hour drawn
//! as inline SVG on the server (no script, no external asset).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{Duration, SecondsFormat, Utc};
use maud::{Markup, html};

use super::admin::{admin_page, admin_session};
use super::i18n::{Lang, Text};
use crate::server::AppState;

/// Minutes the chart covers.
const CHART_MINUTES: i64 = 60;

/// `GET /admin/server`.
pub(super) async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let admin = match admin_session(&state, &headers) {
        Ok(admin) => admin,
        Err(page) => return *page,
    };
    let lang = admin.lang;
    let sequencer = state.repo().sequencer();
    let seq = sequencer.latest_seq().await.ok().flatten().unwrap_or(0);
    let now = Utc::now();
    let since =
        (now - Duration::minutes(CHART_MINUTES - 1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let since_minute = since[..16].to_owned();
    let counts = sequencer
        .events_per_minute(&since_minute)
        .await
        .unwrap_or_default();
    let minutes: Vec<(String, i64)> = (0..CHART_MINUTES)
        .map(|i| {
            let minute = (now - Duration::minutes(CHART_MINUTES - 1 - i))
                .to_rfc3339_opts(SecondsFormat::Secs, true)[..16]
                .to_owned();
            let n = counts
                .iter()
                .find(|(m, _)| *m == minute)
                .map_or(0, |(_, n)| *n);
            (minute, n)
        })
        .collect();
    let firehose = state.firehose().stats();
    let lags = state.firehose().subscriber_lags();
    let blobs = state.blob_counter().counts();
    let mails = state.mail_counts();
    let errors = state.http_metrics().server_errors();
    let replica_lag = state.replica().map(|r| r.stats().lag_seconds());
    let stored = state.blobs().stored_bytes().await;
    let body = html! {
        h1 { (lang.t(Text::Server)) }
        dl {
            dt { (lang.t(Text::LatestSeq)) } dd #latest-seq { (seq) }
            dt { (lang.t(Text::Subscribers)) } dd { (sequencer.subscriber_count()) " (" (firehose.live) ")" }
            dt { (lang.t(Text::MaxLag)) } dd { (firehose.max_queued) }
            dt { (lang.t(Text::SubscriberLags)) }
            dd #subscriber-lags {
                @if lags.is_empty() { "—" }
                @for (i, lag) in lags.iter().enumerate() {
                    @if i > 0 { ", " }
                    (lag)
                }
            }
            dt { (lang.t(Text::Disconnected)) } dd { (firehose.too_slow) }
            dt { (lang.t(Text::OpenStores)) } dd { (state.repo().stores().open_pools()) }
            dt { (lang.t(Text::BlobStorage)) }
            dd #blob-storage {
                @match &stored {
                    Ok(bytes) => (bytes),
                    Err(_) => (lang.t(Text::Error)),
                }
            }
            dt { (lang.t(Text::BlobUploads)) } dd { (blobs.uploads) " (" (blobs.uploaded_bytes) ")" }
            dt { (lang.t(Text::BlobErrors)) } dd { (blobs.errors) }
            dt { (lang.t(Text::MailsSent)) } dd { (mails.sent.load(Ordering::Relaxed)) " / " (mails.failed.load(Ordering::Relaxed)) }
            dt { (lang.t(Text::ReplicaLag)) }
            dd {
                @match replica_lag {
                    Some(lag) => (format!("{lag:.1}")),
                    None => (lang.t(Text::ReplicaOff)),
                }
            }
        }
        h2 { (lang.t(Text::WritesPerMinute)) }
        (chart(lang, &minutes))
        h2 { (lang.t(Text::ServerErrors)) }
        @if errors.is_empty() {
            p { (lang.t(Text::NoServerErrors)) }
        } @else {
            table {
                tbody {
                    @for (method, n) in &errors {
                        tr { td { code { (method) } } td { (n) } }
                    }
                }
            }
        }
    };
    admin_page(&admin, StatusCode::OK, lang.t(Text::Server), body)
}

/// A bar chart of `(minute, count)`, with a text alternative for screen readers.
fn chart(lang: Lang, minutes: &[(String, i64)]) -> Markup {
    const WIDTH: i64 = 600;
    const HEIGHT: i64 = 120;
    let max = minutes.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let total: i64 = minutes.iter().map(|(_, n)| *n).sum();
    let bar = WIDTH / i64::try_from(minutes.len().max(1)).unwrap_or(1);
    let summary = format!("{}: {total}, max {max}/min", lang.t(Text::WritesPerMinute));
    html! {
        figure {
            svg #events-chart viewBox=(format!("0 0 {WIDTH} {}", HEIGHT + 20)) width="100%" role="img" aria-label=(summary) {
                title { (summary) }
                line x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) stroke="#8a93a3" stroke-width="1" {}
                @for (i, (minute, n)) in minutes.iter().enumerate() {
                    @let h = n * (HEIGHT - 10) / max;
                    @let x = i64::try_from(i).unwrap_or(0) * bar;
                    rect x=(x + 1) y=(HEIGHT - h) width=((bar - 2).max(1)) height=(h) fill="#0b5cad" {
                        title { (minute.replace('T', " ")) ": " (n) }
                    }
                }
                text x="0" y=(HEIGHT + 16) font-size="12" fill="#4d5562" { (minutes.first().map(|(m, _)| &m[11..]).unwrap_or_default()) }
                text x=(WIDTH) y=(HEIGHT + 16) font-size="12" fill="#4d5562" text-anchor="end" { (minutes.last().map(|(m, _)| &m[11..]).unwrap_or_default()) }
                text x=(WIDTH) y="12" font-size="12" fill="#4d5562" text-anchor="end" { (max) "/min" }
            }
        }
    }
}
