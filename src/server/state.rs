//! The shared state of every request handler: configuration and the services, built once.

use std::sync::Arc;
use std::time::Duration;

use crate::accounts::{
    ACCOUNT_DB_FILE, AccountDb, MAIL_TOKEN_LIMITS, RateLimiter, UPDATE_HANDLE_LIMITS,
};
use crate::actor::{ActorRepo, ActorStores};
use crate::auth::SessionSigner;
use crate::blobs::{self, BlobCounter, BlobStore, MeteredBlobStore};
use crate::config::{Config, EmailConfig, ServiceSecrets};
use crate::crypto::{Algorithm, Keypair};
use crate::hub::HubIndex;
use crate::identity::did_web::{DidWebConfig, DidWebResolver};
use crate::identity::handle::{HandleResolver, HandleResolverConfig};
use crate::identity::plc::{PlcClient, PlcDirectory};
use crate::identity::resolver::{IdResolver, IdResolverConfig};
use crate::lexicon::Catalog;
use crate::mail::smtp::SmtpMailer;
use crate::mail::{CountingMailer, LogMailer, MailCounts, MailError, Mailer, Outbox};
use crate::plc_directory::Directory;
use crate::proxy::{ProxyConfig, ProxyContext};
use crate::replica::Replicator;
use crate::sequencer::{Firehose, FirehoseSettings, Sequencer};
use crate::telemetry::HttpMetrics;

/// Most distinct keys a rate limiter tracks before it evicts idle ones.
const RATE_LIMIT_KEYS: usize = 100_000;

/// State shared by every request handler. Cheap to clone.
///
/// External systems (PLC directory, blob store, mailer) are held as `Arc<dyn Trait>` so tests
/// can point them at real local instances.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: Config,
    secrets: ServiceSecrets,
    session: SessionSigner,
    plc_rotation_key: Keypair,
    accounts: AccountDb,
    repo: ActorRepo,
    firehose: Firehose,
    resolver: Arc<IdResolver>,
    proxy: ProxyContext,
    catalog: Arc<Catalog>,
    blobs: Arc<dyn BlobStore>,
    mail: Outbox,
    moderation_mail: Outbox,
    handle_limiter: RateLimiter,
    mail_limiter: RateLimiter,
    rate_limits: super::limits::RateLimits,
    hub: HubIndex,
    http_metrics: Arc<HttpMetrics>,
    blob_counter: BlobCounter,
    mail_counts: Arc<MailCounts>,
    embedded_plc: Option<Directory>,
    oauth: crate::oauth::OAuthProvider,
    replica: Option<Replicator>,
    web_sessions: crate::web::WebSessions,
}

/// Why the services could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("account database: {0}")]
    Accounts(#[from] crate::accounts::Error),
    #[error("sequencer database: {0}")]
    Sequencer(#[from] crate::sequencer::Error),
    #[error("repository recovery: {0}")]
    Repo(#[from] crate::actor::Error),
    #[error("PLC rotation key: {0}")]
    RotationKey(#[from] crate::crypto::Error),
    #[error("identity resolution: {0}")]
    Identity(String),
    #[error("proxy: {0}")]
    Proxy(#[from] crate::proxy::ProxyError),
    #[error("lexicons: {0}")]
    Lexicon(#[from] crate::lexicon::Error),
    #[error("blob store: {0}")]
    Blobs(#[from] crate::blobs::Error),
    #[error("hub index: {0}")]
    Hub(#[from] crate::hub::Error),
    #[error("mail: {0}")]
    Mail(#[from] MailError),
    /// Boxed: the replica's error is large and start-up errors are rare.
    #[error("replica: {0}")]
    Replica(Box<crate::replica::Error>),
    #[error("embedded PLC directory: {0}")]
    PlcDirectory(#[from] crate::plc_directory::Error),
}

impl From<crate::replica::Error> for StateError {
    fn from(err: crate::replica::Error) -> Self {
        StateError::Replica(Box::new(err))
    }
}

/// The mailer of one SMTP setting: SMTP when configured, else the log in development mode,
/// else none.
fn select_mailer(
    email: Option<&EmailConfig>,
    development: bool,
) -> Result<Option<Arc<dyn Mailer>>, MailError> {
    Ok(match email {
        Some(email) => Some(Arc::new(SmtpMailer::new(
            email.smtp_url.expose(),
            &email.from_address,
        )?)),
        None if development => Some(Arc::new(LogMailer)),
        None => None,
    })
}

/// The OAuth authorization server: client metadata is fetched through an SSRF-guarded
/// client (private addresses and `http://` client ids only in development mode).
fn build_oauth(
    config: &Config,
    accounts: &AccountDb,
    dids: Arc<IdResolver>,
) -> Result<crate::oauth::OAuthProvider, String> {
    use crate::identity::handle::HickoryTxtLookup;
    use crate::oauth::permission_set::PermissionSets;
    let identity = |e: &dyn std::fmt::Display| e.to_string();
    use crate::identity::net::{GuardedConfig, GuardedHttp, SystemHostLookup};
    use crate::oauth::client::{ClientResolver, FETCH_TIMEOUT, MAX_METADATA_BYTES};
    let http = GuardedHttp::new(
        GuardedConfig {
            timeout: FETCH_TIMEOUT,
            max_body: MAX_METADATA_BYTES,
            allow_private: config.dev_mode,
        },
        Arc::new(SystemHostLookup),
    )
    .map_err(|e| identity(&e))?;
    // Permission sets (`include:` scopes): record proofs of published lexicons.
    let lexicon_http = GuardedHttp::new(
        GuardedConfig {
            timeout: FETCH_TIMEOUT,
            max_body: 2 * 1024 * 1024,
            allow_private: config.dev_mode,
        },
        Arc::new(SystemHostLookup),
    )
    .map_err(|e| identity(&e))?;
    let txt = HickoryTxtLookup::from_system_conf(FETCH_TIMEOUT).map_err(|e| identity(&e))?;
    let pinned = if config.is_development() {
        config.lexicon_authorities.clone()
    } else {
        Default::default()
    };
    let permission_sets = PermissionSets::new(Arc::new(txt), dids, lexicon_http, pinned);
    Ok(crate::oauth::OAuthProvider::new(
        accounts.clone(),
        config.public_url.clone(),
        ClientResolver::new(http, config.dev_mode),
        permission_sets,
    ))
}

impl AppState {
    /// Opens every database under the data directory (creating it), recovers unfinished
    /// sequencer moves, and connects the external services named in `config`.
    pub async fn build(config: Config, secrets: ServiceSecrets) -> Result<Self, StateError> {
        let data = &config.data_directory;
        std::fs::create_dir_all(data).map_err(|source| StateError::DataDir {
            path: data.display().to_string(),
            source,
        })?;
        let accounts = AccountDb::open(&data.join(ACCOUNT_DB_FILE)).await?;
        let sequencer = Sequencer::open_in(data).await?;
        let replica = match &config.replica {
            Some(replica) => Some(Replicator::new(data, replica).await),
            None => None,
        };
        let stores = ActorStores::with_change_hook(
            data,
            config.actor_store_cache_size,
            replica
                .clone()
                .map(|r| Arc::new(r) as Arc<dyn crate::store::changes::DbChangeHook>),
        );
        let firehose = Firehose::new(
            sequencer.clone(),
            FirehoseSettings {
                buffer: config.max_subscription_buffer,
                backfill_window: config.repo_backfill_limit,
                ping_interval: config.firehose_ping_interval,
            },
        );
        let metered = MeteredBlobStore::new(blobs::open(&config.blobstore).await?);
        let blob_counter = metered.counter();
        let blobs: Arc<dyn BlobStore> = Arc::new(metered);
        let repo = ActorRepo::with_repo_heads(stores, sequencer, blobs.clone(), accounts.clone());
        let recovered = repo.recover().await?;
        tracing::debug!(?recovered, "sequencer outbox recovery");
        if replica.is_some() {
            let announced = crate::replica::announce_restored(data, &repo).await?;
            if announced > 0 {
                tracing::info!(announced, "restored repositories announced with #sync");
            }
        }

        let (plc, embedded_plc): (Arc<dyn PlcDirectory>, _) = match &config.did_plc_url {
            Some(url) => (
                Arc::new(
                    PlcClient::new(url.as_str())
                        .map_err(|e| StateError::Identity(e.to_string()))?,
                ),
                None,
            ),
            // The embedded directory, used in-process (and served under `/plc`).
            None => {
                let directory = Directory::open_in(data).await?;
                (Arc::new(directory.clone()), Some(directory))
            }
        };
        // Dev mode may resolve handles and did:web on private addresses (local test networks).
        let allow_private = config.dev_mode;
        let web = DidWebResolver::new(DidWebConfig {
            allow_private,
            ..DidWebConfig::default()
        })
        .map_err(|e| StateError::Identity(e.to_string()))?;
        let handles = HandleResolver::system(HandleResolverConfig {
            allow_private,
            timeout: Duration::from_secs(3),
            ..HandleResolverConfig::default()
        })
        .map_err(|e| StateError::Identity(e.to_string()))?;
        let resolver = Arc::new(IdResolver::new(
            plc,
            web,
            handles,
            IdResolverConfig::default(),
        ));
        let proxy = ProxyContext::new(ProxyConfig::from_config(&config), resolver.clone())?;
        let catalog = Arc::new(Catalog::builtin()?);
        let hub = HubIndex::open(&config, catalog.clone()).await?;
        repo.register_hook(hub.commit_hook());
        let repaired = hub.repair(&repo).await?;
        tracing::debug!(repaired, "hub index repair");
        let session = SessionSigner::new(
            *secrets.session_key_seed.expose(),
            config.service_did.clone(),
        );
        let plc_rotation_key =
            Keypair::from_private_bytes(Algorithm::K256, secrets.plc_rotation_key.expose())?;
        let development = config.is_development();
        let mailer = select_mailer(config.email.as_ref(), development)?;
        match (&config.email, &mailer) {
            (Some(_), _) => tracing::info!("mail: sending over SMTP"),
            (None, Some(_)) => {
                tracing::info!("mail: no SMTP configured; development mode logs every mail")
            }
            (None, None) => tracing::warn!(
                "mail is off: PDS_EMAIL_SMTP_URL is not set, so email confirmation, password \
                 reset, email sign-in codes and account deletion are unavailable"
            ),
        }
        let moderation_mailer = match &config.moderation_email {
            Some(email) => select_mailer(Some(email), development)?,
            None => mailer.clone(),
        };
        // Every mail that leaves, account or moderation, is counted for the metrics.
        let mail_counts = Arc::new(MailCounts::default());
        let oauth =
            build_oauth(&config, &accounts, resolver.clone()).map_err(StateError::Identity)?;
        let counted = |mailer: Option<Arc<dyn Mailer>>| {
            mailer.map(|inner| {
                Arc::new(CountingMailer::new(inner, mail_counts.clone())) as Arc<dyn Mailer>
            })
        };
        let mail = Outbox::new(counted(mailer), config.hostname.clone());
        let moderation_mail = Outbox::new(counted(moderation_mailer), config.hostname.clone());
        Ok(AppState(Arc::new(Inner {
            session,
            plc_rotation_key,
            accounts,
            repo,
            firehose,
            resolver,
            proxy,
            catalog,
            blobs,
            mail,
            moderation_mail,
            handle_limiter: RateLimiter::new(&UPDATE_HANDLE_LIMITS, RATE_LIMIT_KEYS),
            mail_limiter: RateLimiter::new(&MAIL_TOKEN_LIMITS, RATE_LIMIT_KEYS),
            mail_counts,
            rate_limits: super::limits::RateLimits::new(&config),
            hub,
            http_metrics: Arc::new(HttpMetrics::new()),
            blob_counter,
            embedded_plc,
            oauth,
            replica,
            web_sessions: crate::web::WebSessions::default(),
            config,
            secrets,
        })))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The web pages' browser sessions.
    pub fn web_sessions(&self) -> &crate::web::WebSessions {
        &self.0.web_sessions
    }

    pub fn secrets(&self) -> &ServiceSecrets {
        &self.0.secrets
    }

    /// Signs and verifies session tokens.
    pub fn session(&self) -> &SessionSigner {
        &self.0.session
    }

    /// The server's PLC rotation key (listed in every account's rotation keys).
    pub fn plc_rotation_key(&self) -> &Keypair {
        &self.0.plc_rotation_key
    }

    pub fn accounts(&self) -> &AccountDb {
        &self.0.accounts
    }

    /// Repositories: per-account stores, writes, reads and the sequencer.
    pub fn repo(&self) -> &ActorRepo {
        &self.0.repo
    }

    /// The firehose fan-out (its broadcaster runs as a background task, see
    /// [`super::spawn_tasks`]).
    pub fn firehose(&self) -> &Firehose {
        &self.0.firehose
    }

    pub fn resolver(&self) -> &Arc<IdResolver> {
        &self.0.resolver
    }

    pub fn proxy(&self) -> &ProxyContext {
        &self.0.proxy
    }

    /// Lexicons records and inputs are validated against.
    pub fn catalog(&self) -> &Catalog {
        &self.0.catalog
    }

    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.0.blobs
    }

    /// Mail to account owners (tokens, codes).
    pub fn mail(&self) -> &Outbox {
        &self.0.mail
    }

    /// Mail from the moderators (`admin.sendEmail`): `PDS_MODERATION_EMAIL_*`, else the
    /// account mail.
    pub fn moderation_mail(&self) -> &Outbox {
        &self.0.moderation_mail
    }

    /// The request rate limits.
    pub fn rate_limits(&self) -> &super::limits::RateLimits {
        &self.0.rate_limits
    }

    /// Request counters and latencies, filled by [`crate::telemetry::request::observe`].
    pub fn http_metrics(&self) -> &Arc<HttpMetrics> {
        &self.0.http_metrics
    }

    /// Bytes stored and served by the blob store.
    pub fn blob_counter(&self) -> &BlobCounter {
        &self.0.blob_counter
    }

    /// Mails sent and failed.
    pub fn mail_counts(&self) -> &MailCounts {
        &self.0.mail_counts
    }

    /// The updateHandle limiter (10 per 5 minutes, 50 per day per account).
    pub fn handle_limiter(&self) -> &RateLimiter {
        &self.0.handle_limiter
    }

    /// The limiter of mailed tokens (5 per hour, 15 per day per account and kind).
    pub fn mail_limiter(&self) -> &RateLimiter {
        &self.0.mail_limiter
    }

    /// The embedded PLC directory, when the configuration names no other
    /// (`PDS_DID_PLC_URL` unset on `localhost`).
    pub fn embedded_plc(&self) -> Option<&Directory> {
        self.0.embedded_plc.as_ref()
    }

    /// The OAuth authorization server.
    pub fn oauth(&self) -> &crate::oauth::OAuthProvider {
        &self.0.oauth
    }

    /// The replicator, when `ROOKERY_REPLICA_S3_BUCKET` is set.
    pub fn replica(&self) -> Option<&Replicator> {
        self.0.replica.as_ref()
    }

    /// The PocketBase.cn hub index.
    pub fn hub(&self) -> &HubIndex {
        &self.0.hub
    }
}
