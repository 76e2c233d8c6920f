//! The running server: shared state, the listener, graceful shutdown and background tasks.

pub mod blob_gc;
pub mod crawlers;
pub mod health;
pub mod limits;
pub mod metrics;
mod state;
pub mod tasks;

pub use state::{AppState, StateError};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, SecretsError, ServiceSecrets};
use tasks::TaskRunner;

/// How long background tasks get to stop after shutdown begins before they are aborted.
pub const TASK_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Crawlers(#[from] crawlers::NotifierError),
    #[error("restore from the replica: {0}")]
    Restore(#[from] crate::replica::Error),
    #[error("server task panicked")]
    Panicked,
}

/// A server that is accepting connections.
pub struct RunningServer {
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    public_url: String,
    embedded_plc_url: Option<String>,
    handle: JoinHandle<Result<(), ServeError>>,
}

impl RunningServer {
    /// The address actually bound (useful with `PDS_PORT=0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the separate metrics listener (`ROOKERY_METRICS_ADDR`), if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The public URL, with the port actually bound.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The embedded PLC directory's URL, when it is in use.
    pub fn embedded_plc_url(&self) -> Option<&str> {
        self.embedded_plc_url.as_deref()
    }

    /// Waits until the server has shut down: in-flight requests finished, background tasks
    /// stopped.
    pub async fn wait(self) -> Result<(), ServeError> {
        self.handle.await.map_err(|_| ServeError::Panicked)?
    }
}

/// Most threads of the runtime's blocking pool by default (tokio's own default is 512;
/// `ROOKERY_BLOCKING_THREADS` sets another). Database work runs there, one thread per unit of
/// work in progress (see [`crate::store::direct`]), each a short burst of CPU and an fsync;
/// exports, which wait on their clients, run on threads of their own. More threads add
/// nothing but memory: each keeps its own stack pages, allocator cache and SQLite scratch
/// space while it lives (`rookery bench load` on two cores: 8 threads gave the rates of 24
/// with 12 MB less at peak). Work beyond it waits for a thread.
pub const BLOCKING_THREADS: usize = 8;
/// How long an idle blocking thread lives (tokio's default is 10 s): an idle thread still
/// holds its memory, and starting one again costs microseconds.
pub const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(2);

/// The multi-threaded runtime `rookery serve` runs on: at most `blocking_threads` blocking
/// threads ([`Config::blocking_threads`](crate::config::Config::blocking_threads)), idle ones
/// ending after [`BLOCKING_KEEP_ALIVE`].
pub fn runtime(blocking_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads.max(1))
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
}

/// Prepares the data directory and secrets, binds `bind_address:port` and serves until
/// `shutdown` is cancelled. Returns once listening.
pub async fn serve(
    config: Config,
    shutdown: CancellationToken,
) -> Result<RunningServer, ServeError> {
    let mut config = config;
    // An empty data directory and a replica in the bucket: rebuild and verify it before
    // anything opens a database (or generates new secrets).
    if let Some(replica) = &config.replica {
        let bucket = crate::replica::Bucket::new(replica).await;
        if let Some(report) =
            crate::replica::restore_if_empty(&config.data_directory, &bucket).await?
        {
            tracing::info!(
                databases = report.databases,
                repos = report.verified_repos,
                bytes = report.bytes,
                seq_floor = report.seq_floor,
                elapsed_ms = report.elapsed.as_millis() as u64,
                "restored the data directory from the replica"
            );
        }
    }
    // Bound before the state is built, so that with port 0 the public URL (advertised in
    // DID documents, and the embedded directory's) names the port really served.
    let addr = SocketAddr::new(config.bind_address, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local_addr = listener.local_addr()?;
    if config.port == 0 {
        config.set_port(local_addr.port());
    }
    let secrets = ServiceSecrets::load_or_generate(&config)?;
    let state = AppState::build(config, secrets).await?;
    let config = state.config();
    tracing::info!(
        address = %local_addr,
        public_url = %config.public_url,
        did = %config.service_did,
        data = %config.data_directory.display(),
        "rookery {} listening",
        env!("CARGO_PKG_VERSION"),
    );
    match config.embedded_plc_url() {
        Some(url) => tracing::info!(
            url = %url,
            database = %config.data_directory.join(crate::plc_directory::DATABASE_FILE).display(),
            "embedded PLC directory (PDS_DID_PLC_URL unset on localhost)"
        ),
        None => tracing::info!(
            url = %config.did_plc_url.as_ref().map(url::Url::as_str).unwrap_or_default(),
            "PLC directory"
        ),
    }

    let mut runner = TaskRunner::new(shutdown.child_token());
    spawn_tasks(&state, &mut runner);
    if !config.crawlers.is_empty() {
        runner.spawn(Arc::new(crawlers::CrawlerNotifier::new(
            config.hostname.clone(),
            &config.crawlers,
            state.repo().sequencer().clone(),
            crawlers::NOTIFY_INTERVAL,
        )?));
    }
    let mut metrics_addr = None;
    let metrics_server = match config.metrics_addr {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?;
            let bound = listener.local_addr()?;
            metrics_addr = Some(bound);
            tracing::info!(address = %bound, "metrics served at /metrics");
            let app = metrics::router(state.clone());
            let stop = shutdown.clone();
            Some(tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
                {
                    tracing::error!(error = %err, "metrics listener failed");
                }
            }))
        }
        None => None,
    };
    let public_url = config.public_url.clone();
    let embedded_plc_url = config.embedded_plc_url();
    let mail_state = state.clone();
    let app = crate::app(state);

    let handle = tokio::spawn(async move {
        let supervisor = tokio::spawn(runner.supervise(TASK_SHUTDOWN_GRACE));
        // Without TCP_NODELAY, the last small write of a response can wait for the client's
        // delayed ACK (measured: up to 40 ms more on a getBlocks answer).
        let listener = listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
        // The last acknowledged writes' events may still be moving to the sequencer (else
        // start-up recovery moves them from the outboxes).
        let settled = mail_state.repo().moves_settled();
        if tokio::time::timeout(TASK_SHUTDOWN_GRACE, settled)
            .await
            .is_err()
        {
            tracing::warn!("firehose events still moving at shutdown; recovery moves them");
        }
        // If the server stopped on its own (an I/O error), stop the tasks too.
        shutdown.cancel();
        if supervisor.await.is_err() {
            tracing::error!("background task supervisor panicked");
        }
        if let Some(metrics_server) = metrics_server {
            let _ = metrics_server.await;
        }
        // Mail queued by the last requests (and retries under way) gets a bounded time.
        mail_state.mail().drain(TASK_SHUTDOWN_GRACE).await;
        mail_state
            .moderation_mail()
            .drain(TASK_SHUTDOWN_GRACE)
            .await;
        tracing::info!("server stopped");
        served.map_err(ServeError::Io)
    });
    Ok(RunningServer {
        local_addr,
        metrics_addr,
        public_url,
        embedded_plc_url,
        handle,
    })
}

/// Starts the server's background tasks on `runner`: the firehose broadcaster, the
/// pruning of firehose events older than the backfill window, and the blob collector.
pub fn spawn_tasks(state: &AppState, runner: &mut TaskRunner) {
    use std::sync::Arc;
    runner.spawn(Arc::new(crate::sequencer::tasks::FirehoseBroadcaster(
        state.firehose().clone(),
    )));
    runner.spawn(Arc::new(crate::sequencer::tasks::SeqPruner {
        sequencer: state.repo().sequencer().clone(),
        window: state.config().repo_backfill_limit,
    }));
    runner.spawn(Arc::new(blob_gc::BlobGc::new(
        state.repo().clone(),
        state.config().blob_grace_period,
    )));
    if let Some(replica) = state.replica() {
        runner.spawn(Arc::new(crate::replica::ReplicaTask(replica.clone())));
    }
}

/// Cancels `token` on SIGINT (Ctrl-C) or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            result = ctrl_c => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                    std::future::pending::<()>().await;
                }
                tracing::info!("SIGINT received: shutting down");
            }
            () = terminate => tracing::info!("SIGTERM received: shutting down"),
        }
        token.cancel();
    });
}

/// `GET /`: a short text banner for people who open the server in a browser.
pub async fn banner(State(state): State<AppState>) -> impl IntoResponse {
    let text = format!(
        r"                   _
  _ __ ___   ___ | | _____ _ __ _   _
 | '__/ _ \ / _ \| |/ / _ \ '__| | | |
 | | | (_) | (_) |   <  __/ |  | |_| |
 |_|  \___/ \___/|_|\_\___|_|   \__, |
                                |___/

This is Rookery {version}, an AT Protocol Personal Data Server (PDS).
It hosts accounts and their repositories for the atproto network;
there is nothing to browse here. Apps talk to it at {url}/xrpc/.

  Protocol: https://atproto.com
",
        version = env!("CARGO_PKG_VERSION"),
        url = state.config().public_url,
    );
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], text)
}
