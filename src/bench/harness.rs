//! What the HTTP benchmarks share: a working directory that removes itself, an in-process
//! server on 127.0.0.1 port 0, and an account seeded through the library.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Error;
use crate::AppState;
use crate::account_service::AccountRequest;
use crate::config::{Config, SecretBytes, ServiceSecrets};
use crate::crypto::{Algorithm, Keypair};
use crate::server::tasks::TaskRunner;
use crate::syntax::{Did, Handle};

/// [`Error::Server`] naming what failed.
pub(crate) fn server_error(what: &str, e: impl fmt::Display) -> Error {
    Error::Server(format!("{what}: {e}"))
}

/// `rookery-bench-{name}-{pid}` under `parent` (default: the system temp directory), created
/// on [`WorkDir::create`] and removed, with everything in it, on drop.
#[derive(Debug)]
pub(crate) struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    pub(crate) fn create(parent: Option<&Path>, name: &str) -> Result<Self, Error> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let path = parent.join(format!("rookery-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| Error::Dir {
            path: path.clone(),
            source,
        })?;
        Ok(WorkDir { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// How the server is run, beyond its [`Config`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Serve {
    /// `TCP_NODELAY` on every accepted connection.
    pub(crate) nodelay: bool,
    /// The background tasks `serve` runs ([`crate::server::spawn_tasks`]), supervised.
    pub(crate) background_tasks: bool,
}

/// The router of `rookery serve` on 127.0.0.1 port 0 over a data directory, with fresh random
/// service secrets. Stop it with [`BenchServer::stop`].
pub(crate) struct BenchServer {
    state: AppState,
    addr: SocketAddr,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    supervisor: Option<JoinHandle<Vec<crate::server::tasks::TaskExit>>>,
}

impl BenchServer {
    /// Starts a plain server: the default configuration for `dir` (no invite codes, no
    /// logging) changed by `adjust`.
    pub(crate) async fn start(dir: &Path, adjust: impl FnOnce(&mut Config)) -> Result<Self, Error> {
        Self::start_with(dir, Serve::default(), adjust).await
    }

    pub(crate) async fn start_with(
        dir: &Path,
        serve: Serve,
        adjust: impl FnOnce(&mut Config),
    ) -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut config = Config {
            data_directory: dir.to_path_buf(),
            invite_required: false,
            port: addr.port(),
            public_url: format!("http://{addr}"),
            log_enabled: false,
            ..Config::default()
        };
        adjust(&mut config);
        let secrets = ServiceSecrets {
            session_key_seed: SecretBytes::new(rand::random()),
            plc_rotation_key: SecretBytes::new(
                Keypair::generate(Algorithm::K256).to_private_bytes(),
            ),
        };
        let state = AppState::build(config, secrets)
            .await
            .map_err(|e| server_error("server state", e))?;
        let shutdown = CancellationToken::new();
        let supervisor = serve.background_tasks.then(|| {
            let mut runner = TaskRunner::new(shutdown.child_token());
            crate::server::spawn_tasks(&state, &mut runner);
            tokio::spawn(runner.supervise(Duration::from_secs(5)))
        });
        let app = crate::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let token = shutdown.clone();
        let server = if serve.nodelay {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(token.cancelled_owned())
                    .await
            })
        } else {
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(token.cancelled_owned())
                    .await
            })
        };
        Ok(BenchServer {
            state,
            addr,
            shutdown,
            server,
            supervisor,
        })
    }

    pub(crate) fn state(&self) -> &AppState {
        &self.state
    }

    /// `http://127.0.0.1:{port}`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shuts the server (and its background tasks) down gracefully and waits for them.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        if let Some(supervisor) = self.supervisor {
            let _ = supervisor.await;
        }
    }
}

/// The password of every account [`seed_account`] creates.
pub(crate) const SEED_PASSWORD: &str = "benchmark-password";

/// Creates an account as `createAccount` does, through the accounts service: handle
/// `{name}.test`, email `{name}@example.com`, password [`SEED_PASSWORD`], and a did:plc
/// registered with the server's PLC directory (the embedded one on the default
/// configuration).
pub(crate) async fn seed_account(state: &AppState, name: &str) -> Result<Did, Error> {
    let handle: Handle = format!("{name}.test")
        .parse()
        .map_err(|e| server_error("handle", e))?;
    let created = state
        .account_service()
        .create_account(AccountRequest {
            handle: &handle,
            email: &format!("{name}@example.com"),
            password: SEED_PASSWORD,
            invite_code: None,
            recovery_key: None,
        })
        .await
        .map_err(|e| server_error("create account", e))?;
    Ok(created.did)
}

/// An `authorization` header value for a new session of `did`.
pub(crate) async fn bearer(state: &AppState, did: &Did) -> Result<String, Error> {
    let session = state
        .accounts()
        .create_session_tokens(
            did.as_str(),
            None,
            chrono::Utc::now().timestamp(),
            state.session(),
        )
        .await
        .map_err(|e| server_error("session", e))?;
    Ok(format!("Bearer {}", session.access_jwt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn server_serves_the_adjusted_config_until_stopped() {
        let parent = tempfile::tempdir().unwrap();
        let dir = WorkDir::create(Some(parent.path()), "harness").unwrap();
        let path = parent
            .path()
            .join(format!("rookery-bench-harness-{}", std::process::id()));
        assert_eq!(dir.path(), path);
        assert!(path.is_dir());

        let server = BenchServer::start(dir.path(), |config| config.hub_rate_limits = false)
            .await
            .unwrap();
        let config = server.state().config();
        assert_eq!(config.data_directory, path);
        assert!(!config.invite_required);
        assert!(!config.hub_rate_limits);
        assert_eq!(config.public_url, server.url());
        assert_eq!(server.url(), format!("http://127.0.0.1:{}", config.port));
        let status = reqwest::get(format!("{}/xrpc/_health", server.url()))
            .await
            .unwrap()
            .status();
        assert_eq!(status, reqwest::StatusCode::OK);

        let did = seed_account(server.state(), "harness").await.unwrap();
        let auth = bearer(server.state(), &did).await.unwrap();
        assert!(auth.starts_with("Bearer "), "{auth}");
        let account = server
            .state()
            .accounts()
            .account_status(did.as_str())
            .await
            .unwrap();
        assert_eq!(account, crate::accounts::AccountStatus::Active);

        let url = server.url();
        server.stop().await;
        assert!(reqwest::get(format!("{url}/xrpc/_health")).await.is_err());
        drop(dir);
        assert!(!path.exists());
    }
}
