//! A whole Rookery PDS on 127.0.0.1 for integration tests: a fresh data directory, the real
//! PLC directory (one per test binary, shared), the same router `rookery serve` runs, on a real socket.

use std::net::SocketAddr;

use rookery::AppState;
use rookery::config::{BlobstoreConfig, Config, SecretBytes, ServiceSecrets};
use rookery::crypto::{Algorithm, Keypair};
use rookery::syntax::{Did, Handle};
use tokio_util::sync::CancellationToken;

use super::plc::PlcServer;

/// A running PDS; stopped (and its data directory removed) on drop.
pub struct TestPds {
    pub state: AppState,
    pub addr: SocketAddr,
    /// The binary's shared PLC directory ([`PlcServer::shared`]).
    pub plc: &'static PlcServer,
    shutdown: CancellationToken,
    /// The HTTP server and the background-task supervisor, awaited by [`TestPds::stop`].
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestPds {
    /// Starts a PDS with `adjust` applied to its configuration (dev mode, no invites required,
    /// handle domain `.test`, the binary's shared PLC directory).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestPds {
        let plc = PlcServer::shared();
        let dir = tempfile::tempdir().unwrap();
        // Bound first, so the PDS advertises (in DID documents) the address it really serves.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config {
            data_directory: dir.path().to_path_buf(),
            dev_mode: true,
            invite_required: false,
            did_plc_url: Some(plc.url().parse().unwrap()),
            service_handle_domains: vec![".test".to_owned()],
            port: addr.port(),
            public_url: format!("http://{addr}"),
            // Blobs stay inside this test's data directory (the default is relative to the
            // working directory).
            blobstore: BlobstoreConfig::Disk {
                location: dir.path().join("blocks"),
                tmp_location: dir.path().join("tmp"),
            },
            ..Config::default()
        };
        adjust(&mut config);
        let secrets = ServiceSecrets {
            session_key_seed: SecretBytes::new([7; 32]),
            plc_rotation_key: SecretBytes::new(
                Keypair::generate(Algorithm::K256).to_private_bytes(),
            ),
        };
        let state = AppState::build(config, secrets).await.unwrap();
        let shutdown = CancellationToken::new();
        // The background tasks `rookery serve` runs (the firehose broadcaster among them).
        let mut runner = rookery::server::tasks::TaskRunner::new(shutdown.child_token());
        rookery::server::spawn_tasks(&state, &mut runner);
        let supervisor = tokio::spawn(async move {
            runner.supervise(std::time::Duration::from_secs(5)).await;
        });
        let app = rookery::app(state.clone());
        let token = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(token.cancelled_owned())
            .await
            .unwrap();
        });
        TestPds {
            state,
            addr,
            plc,
            shutdown,
            tasks: vec![server, supervisor],
            _dir: dir,
        }
    }

    /// Stops the server and its background tasks and waits until they have finished, so
    /// another server may open the same data directory (a restart). Dropping only signals.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for task in std::mem::take(&mut self.tasks) {
            tokio::time::timeout(std::time::Duration::from_secs(30), task)
                .await
                .expect("the server stops within 30 s")
                .unwrap();
        }
    }

    pub async fn start() -> TestPds {
        Self::start_with(|_| {}).await
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates an account through the accounts service (what createAccount runs, without
    /// the HTTP layer): a real did:plc registered with the test's PLC directory, the
    /// repository, the account rows, a session. The address is `{handle with - for .}@example.com`.
    /// Returns the DID and an access token.
    pub async fn seed_account(&self, handle: &str, password: &str) -> (Did, String) {
        let handle: Handle = handle.parse().unwrap();
        let email = format!("{}@example.com", handle.as_str().replace('.', "-"));
        // Where sign-up needs an invite, the seeded account gets one the admin made for it.
        let invite = if self.state.config().invite_required {
            let codes = self
                .state
                .accounts()
                .create_invite_codes(
                    &self.state.config().hostname,
                    1,
                    1,
                    &[],
                    rookery::accounts::ADMIN_INVITE_ACCOUNT,
                    chrono::Utc::now().timestamp(),
                )
                .await
                .unwrap();
            Some(codes[0].codes[0].clone())
        } else {
            None
        };
        let created = self
            .state
            .account_service()
            .create_account(rookery::account_service::AccountRequest {
                handle: &handle,
                email: &email,
                password,
                invite_code: invite.as_deref(),
                recovery_key: None,
            })
            .await
            .unwrap();
        (created.did, created.session.access_jwt)
    }
}

impl TestPds {
    /// The public repository signing key of an account hosted here.
    pub async fn signing_key(&self, did: &Did) -> rookery::crypto::PublicKey {
        let store = self.state.repo().stores().open(did).await.unwrap();
        store.expect("account hosted here").keypair().public_key()
    }
}

impl Drop for TestPds {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
