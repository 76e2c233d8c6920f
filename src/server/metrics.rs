//! `GET /metrics`: the Prometheus text exposition of the server's counters, gathered at
//! scrape time from the services (each keeps its own atomics) plus a few cheap reads: the
//! sequencer's latest `seq` and the sizes of the service databases.
//!
//! On the main port it needs the admin password (HTTP Basic, as the admin API); with
//! `ROOKERY_METRICS_ADDR` it is also served, unauthenticated, on that address alone.

use std::path::Path;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::telemetry::Exposition;
use crate::telemetry::exposition::{CONTENT_TYPE as EXPOSITION_TYPE, Kind};
use crate::xrpc::auth::AdminAuth;

/// The service databases whose file sizes are reported (each with its `-wal` file).
const DATABASES: [(&str, &str); 3] = [
    ("account", "account.sqlite"),
    ("sequencer", crate::sequencer::DATABASE_FILE),
    ("hub", crate::hub::DATABASE_FILE),
];

/// `GET /metrics` on the main port, behind the admin password.
pub async fn admin_metrics(State(state): State<AppState>, _admin: AdminAuth) -> Response {
    metrics(State(state)).await
}

/// `GET /metrics` without authentication (the separate metrics address).
pub async fn metrics(State(state): State<AppState>) -> Response {
    ([(CONTENT_TYPE, EXPOSITION_TYPE)], render(&state).await).into_response()
}

/// The router of the separate metrics address: `/metrics` only.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn file_size(path: &Path) -> u64 {
    let mut total = 0;
    for suffix in ["", "-wal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        if let Ok(meta) = tokio::fs::metadata(&name).await {
            total += meta.len();
        }
    }
    total
}

/// The whole exposition.
pub async fn render(state: &AppState) -> String {
    let mut exp = Exposition::new();
    state.http_metrics().write(&mut exp);

    let writes = state.repo().write_counts();
    exp.single(
        "rookery_repo_commits_total",
        Kind::Counter,
        "Repository commits made by record writes.",
        writes.commits,
    );
    const WRITES: &str = "rookery_repo_writes_total";
    exp.family(WRITES, Kind::Counter, "Record writes committed, by action.");
    for (action, n) in [
        ("create", writes.creates),
        ("update", writes.updates),
        ("delete", writes.deletes),
    ] {
        exp.sample(WRITES, &[("action", action)], n);
    }

    let sequencer = state.repo().sequencer();
    match sequencer.latest_seq().await {
        Ok(seq) => exp.single(
            "rookery_sequencer_seq",
            Kind::Gauge,
            "The highest firehose sequence number handed out.",
            seq.unwrap_or(0),
        ),
        Err(err) => tracing::warn!(error = %err, "metrics: cannot read the latest seq"),
    }
    let firehose = state.firehose().stats();
    exp.single(
        "rookery_firehose_subscribers",
        Kind::Gauge,
        "Firehose (subscribeRepos) connections, replaying or live.",
        sequencer.subscriber_count(),
    );
    exp.single(
        "rookery_firehose_live_subscribers",
        Kind::Gauge,
        "Firehose subscribers receiving live frames.",
        firehose.live,
    );
    exp.single(
        "rookery_firehose_published_seq",
        Kind::Gauge,
        "The last sequence number the firehose fanned out.",
        firehose.published_seq,
    );
    exp.single(
        "rookery_firehose_frames_total",
        Kind::Counter,
        "Frames fanned out to live subscribers.",
        firehose.frames,
    );
    exp.single(
        "rookery_firehose_max_lag_frames",
        Kind::Gauge,
        "Frames queued for the live subscriber furthest behind.",
        firehose.max_queued,
    );
    exp.single(
        "rookery_firehose_queued_frames",
        Kind::Gauge,
        "Frames queued for all live subscribers together.",
        firehose.queued,
    );
    const DISCONNECTS: &str = "rookery_firehose_disconnects_total";
    exp.family(
        DISCONNECTS,
        Kind::Counter,
        "Firehose subscriptions ended, by reason (too_slow: ConsumerTooSlow).",
    );
    exp.sample(DISCONNECTS, &[("reason", "too_slow")], firehose.too_slow);
    exp.sample(
        DISCONNECTS,
        &[("reason", "other")],
        firehose.ended.saturating_sub(firehose.too_slow),
    );

    let stores = state.repo().stores();
    let cache = stores.cache_counts();
    exp.single(
        "rookery_actor_store_cache_hits_total",
        Kind::Counter,
        "Per-account store opens answered from the cache.",
        cache.hits,
    );
    exp.single(
        "rookery_actor_store_cache_misses_total",
        Kind::Counter,
        "Per-account store opens that loaded the store.",
        cache.misses,
    );
    exp.single(
        "rookery_actor_store_cache_evictions_total",
        Kind::Counter,
        "Per-account stores evicted from the cache to make room.",
        cache.evictions,
    );
    exp.single(
        "rookery_actor_store_open",
        Kind::Gauge,
        "Per-account stores open now.",
        stores.open_pools(),
    );

    let blobs = state.blob_counter().counts();
    exp.single(
        "rookery_blob_uploads_total",
        Kind::Counter,
        "Blob uploads stored.",
        blobs.uploads,
    );
    exp.single(
        "rookery_blob_uploaded_bytes_total",
        Kind::Counter,
        "Bytes of blob uploads stored.",
        blobs.uploaded_bytes,
    );
    exp.single(
        "rookery_blob_read_bytes_total",
        Kind::Counter,
        "Bytes of blobs (or ranges) served.",
        blobs.read_bytes,
    );
    exp.single(
        "rookery_blob_store_errors_total",
        Kind::Counter,
        "Blob store calls that failed (missing blobs included).",
        blobs.errors,
    );

    let mails = state.mail_counts();
    const MAILS: &str = "rookery_mails_total";
    exp.family(
        MAILS,
        Kind::Counter,
        "Mails handed to the mailer, by outcome.",
    );
    exp.sample(
        MAILS,
        &[("outcome", "sent")],
        mails.sent.load(Ordering::Relaxed),
    );
    exp.sample(
        MAILS,
        &[("outcome", "failed")],
        mails.failed.load(Ordering::Relaxed),
    );

    if let Some(replica) = state.replica() {
        let stats = replica.stats();
        exp.single(
            "rookery_replica_lag_seconds",
            Kind::Gauge,
            "Age of the oldest database change not yet in the replica bucket (0: caught up).",
            stats.lag_seconds(),
        );
        for (name, help, value) in [
            (
                "rookery_replica_uploaded_bytes_total",
                "Bytes of database segments uploaded to the replica bucket.",
                &stats.uploaded_bytes,
            ),
            (
                "rookery_replica_segments_total",
                "Database segments uploaded to the replica bucket.",
                &stats.segments,
            ),
            (
                "rookery_replica_failures_total",
                "Databases whose shipment to the replica bucket failed (retried).",
                &stats.failures,
            ),
            (
                "rookery_replica_cycles_total",
                "Replication cycles run.",
                &stats.cycles,
            ),
        ] {
            exp.single(name, Kind::Counter, help, value.load(Ordering::Relaxed));
        }
    }

    const SIZES: &str = "rookery_sqlite_file_bytes";
    exp.family(
        SIZES,
        Kind::Gauge,
        "Size of the service databases, with their write-ahead logs.",
    );
    let data = &state.config().data_directory;
    for (db, file) in DATABASES {
        exp.sample(SIZES, &[("db", db)], file_size(&data.join(file)).await);
    }
    exp.finish()
}
