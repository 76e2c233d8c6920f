//! Service configuration: one typed [`Config`], documented field by field.
//!
//! Values come from, in increasing precedence: embedded defaults, the optional TOML file
//! (`--config PATH`, else `./rookery.toml` when present), and environment variables. The
//! environment names are those of the reference TypeScript PDS, so an operator's existing
//! `pds.env` works unchanged; Rookery's own settings use `ROOKERY_*`. A TOML key is the
//! environment name in lowercase without its `PDS_` / `ROOKERY_` prefix (`PDS_PORT` →
//! `port`, `LOG_LEVEL` → `log_level`); list settings may be written as TOML arrays.
//!
//! With no configuration at all, `rookery serve` runs a development server: data under
//! `./data`, port 2583, hostname `localhost` (public URL `http://localhost:2583`), handles
//! under `.test`, SQLite and blobs on local disk, secrets generated on first start (see
//! [`ServiceSecrets`]).
//!
//! [`Config::from_sources`] is pure: tests pass their own environment and never touch the
//! process's. `docs/configuration.md` holds the same information as a table.

mod replica;
mod secrets;
mod sources;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use secrets::{
    PLC_ROTATION_KEY_FILE, SESSION_KEY_FILE, SecretBytes, SecretsError, ServiceSecrets,
};
pub use sources::SettingName;

pub use replica::ReplicaConfig;
use sources::{Sources, parse_http_url};

use crate::accounts::RateLimit;

/// Default `PDS_PORT`.
pub const DEFAULT_PORT: u16 = 2583;
/// Default `PDS_HOSTNAME`.
pub const DEFAULT_HOSTNAME: &str = "localhost";
/// Default `PDS_DATA_DIRECTORY`.
pub const DEFAULT_DATA_DIRECTORY: &str = "./data";
/// Default `PDS_DID_PLC_URL`.
pub const DEFAULT_PLC_URL: &str = "https://plc.directory";
/// Default `PDS_BLOB_UPLOAD_LIMIT`: 100 MiB, the value the reference's self-host installer
/// writes into every `pds.env` (the reference's built-in default, 5 MiB, is too small for
/// video).
pub const DEFAULT_BLOB_UPLOAD_LIMIT: u64 = 100 * 1024 * 1024;
/// Default `ROOKERY_IMPORT_REPO_LIMIT`: 1 GiB, room for a repository of a few million records.
pub const DEFAULT_IMPORT_REPO_LIMIT: u64 = 1024 * 1024 * 1024;
/// Default `ROOKERY_BLOB_GRACE_PERIOD_MS`: six hours.
pub const DEFAULT_BLOB_GRACE_PERIOD: Duration = Duration::from_secs(6 * 60 * 60);
/// Shortest `ROOKERY_BLOB_GRACE_PERIOD_MS` accepted from the environment: one minute, so an
/// upload is always tracked long before it could be collected.
pub const MIN_BLOB_GRACE_PERIOD: Duration = Duration::from_secs(60);
/// Default `ROOKERY_ACTOR_STORE_CACHE_SIZE` (sized with the other actor-store figures).
pub const DEFAULT_ACTOR_STORE_CACHE_SIZE: usize = crate::actor::DEFAULT_CAPACITY;
/// Default `PDS_REPO_BACKFILL_LIMIT_MS`: one day, as the reference.
pub const DEFAULT_REPO_BACKFILL_LIMIT: Duration = Duration::from_secs(24 * 60 * 60);
/// Default `PDS_MAX_SUBSCRIPTION_BUFFER`: 500 frames, as the reference.
pub const DEFAULT_MAX_SUBSCRIPTION_BUFFER: usize = 500;
/// Default `ROOKERY_FIREHOSE_PING_INTERVAL_MS`: 30 seconds.
pub const DEFAULT_FIREHOSE_PING_INTERVAL: Duration = Duration::from_secs(30);
/// The configuration file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "rookery.toml";

/// Everything Rookery reads at start-up. Each field names its environment variable and
/// default; the TOML key is the variable's name in lowercase without `PDS_`/`ROOKERY_`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `PDS_HOSTNAME` — the public host name of this server, without scheme or port.
    /// Default `localhost`.
    pub hostname: String,
    /// `PDS_PORT` — the TCP port to listen on; `0` picks a free port. Default `2583`.
    pub port: u16,
    /// `ROOKERY_BIND_ADDRESS` — the local address to listen on. Default `0.0.0.0`.
    pub bind_address: IpAddr,
    /// Derived, not settable: `https://{hostname}`, or `http://localhost:{port}` when the
    /// hostname is `localhost` (as the reference does in development). No trailing slash.
    pub public_url: String,
    /// `PDS_SERVICE_DID` — this server's DID. Default `did:web:{hostname}`.
    pub service_did: String,
    /// `PDS_VERSION` — the version reported by `/xrpc/_health`. Default: Rookery's version.
    pub version: String,
    /// `PDS_DEV_MODE` — development mode (relaxed checks for local testing). Default `false`.
    pub dev_mode: bool,
    /// `PDS_INVITE_REQUIRED` — whether account creation needs an invite code. Default
    /// `true`, as the reference, except on the embedded development defaults (hostname
    /// `localhost`), where no admin exists to issue codes and sign-up would be impossible.
    pub invite_required: bool,
    /// `PDS_RATE_LIMITS_ENABLED` — whether request rate limits apply. Default `true`,
    /// except in development: with `PDS_DEV_MODE=true` or on the embedded development
    /// defaults (hostname `localhost`).
    pub rate_limits_enabled: bool,
    /// `PDS_RATE_LIMIT_BYPASS_KEY` — requests carrying it in an `x-ratelimit-bypass` header
    /// are not rate-limited. Default: none.
    pub rate_limit_bypass_key: Option<Secret>,
    /// `PDS_RATE_LIMIT_BYPASS_IPS` — comma list of client addresses or CIDR blocks
    /// (`10.0.0.0/8`) that are not rate-limited. Default: none.
    pub rate_limit_bypass_ips: Vec<IpBlock>,
    /// `ROOKERY_TRUSTED_PROXY_HEADER` — the request header in which a reverse proxy in front
    /// of Rookery passes the client address (e.g. `x-forwarded-for`, `x-real-ip`,
    /// `cf-connecting-ip`); its last address is used. Set it only behind such a proxy, which
    /// must overwrite or append to the header. Default: none (the socket's peer address).
    pub trusted_proxy_header: Option<String>,
    /// The limits themselves: the reference PDS's numbers. Not settable (tests lower them).
    pub rate_limits: RateLimitPolicy,
    /// `ROOKERY_METRICS_ADDR` — an extra `host:port` serving only `GET /metrics` without
    /// authentication (for a Prometheus on a private network). Default: none; `/metrics` on
    /// the main port always needs the admin password.
    pub metrics_addr: Option<SocketAddr>,
    /// `PDS_SERVICE_HANDLE_DOMAINS` — comma list of handle suffixes this server hands out,
    /// each starting with `.`. Default `.test` for `localhost`, else `.{hostname}`.
    pub service_handle_domains: Vec<String>,
    /// `PDS_DATA_DIRECTORY` — where databases, per-account stores and generated secrets
    /// live. Default `./data`.
    pub data_directory: PathBuf,
    /// Blob storage: local disk unless `PDS_BLOBSTORE_S3_BUCKET` is set.
    pub blobstore: BlobstoreConfig,
    /// Continuous replication of the databases to a bucket (`ROOKERY_REPLICA_S3_*`, see
    /// [`ReplicaConfig`] and `docs/replication.md`). Default: off.
    pub replica: Option<ReplicaConfig>,
    /// `PDS_BLOB_UPLOAD_LIMIT` — largest accepted blob, in bytes. Default `104857600`
    /// (100 MiB, as the reference's self-host installer sets it).
    pub blob_upload_limit: u64,
    /// `ROOKERY_IMPORT_REPO_LIMIT` — largest `com.atproto.repo.importRepo` body (a CAR), in
    /// bytes. The body is streamed to a temporary file under the data directory, never held
    /// in memory. Default `1073741824` (1 GiB); at least 1.
    pub import_repo_limit: u64,
    /// `ROOKERY_BLOB_GRACE_PERIOD_MS` — how long an uploaded blob may wait for a record to
    /// reference it before the garbage collector deletes it, in milliseconds. Default
    /// `21600000` (six hours); at least `60000`.
    pub blob_grace_period: Duration,
    /// `ROOKERY_ACTOR_STORE_CACHE_SIZE` — how many per-account SQLite stores stay open (the
    /// bound of their LRU). Default `32` (about 0.3 MB each; see `crate::actor::stores`);
    /// at least 1.
    pub actor_store_cache_size: usize,
    /// `ROOKERY_BLOCKING_THREADS` — the most threads of the runtime's blocking pool, where
    /// database work runs. Default `8` (see [`crate::server::BLOCKING_THREADS`]); at least 1.
    pub blocking_threads: usize,
    /// `PDS_DID_PLC_URL` — the PLC directory. `None` runs the embedded directory (see
    /// [`crate::plc_directory`]) in-process, mounted at `{public_url}/plc` and stored in
    /// `{data}/plc.sqlite`: the default for hostname `localhost`, so a development server
    /// works offline and publishes nothing on the public network. Default for any other
    /// hostname: `https://plc.directory`.
    pub did_plc_url: Option<url::Url>,
    /// `PDS_JWT_SECRET` — secret from which the session-token signing key is derived. When
    /// unset, a key is generated on first start and kept in the data directory.
    pub jwt_secret: Option<Secret>,
    /// `PDS_ADMIN_PASSWORD` — password for the admin API (HTTP Basic, user `admin`).
    /// Default: unset, which disables the admin API.
    pub admin_password: Option<Secret>,
    /// `PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX` — the server's secp256k1 PLC rotation key,
    /// 64 hex characters. When unset, one is generated on first start and kept in the data
    /// directory.
    pub plc_rotation_key: Option<SecretBytes>,
    /// `PDS_BSKY_APP_VIEW_URL` + `PDS_BSKY_APP_VIEW_DID` — the App View that app requests
    /// are proxied to. Default: none. A URL without a DID is an error.
    pub bsky_app_view: Option<ServiceEndpoint>,
    /// `PDS_REPORT_SERVICE_URL` + `PDS_REPORT_SERVICE_DID` — where moderation reports go.
    /// Default: none. A URL without a DID is an error.
    pub report_service: Option<ServiceEndpoint>,
    /// `PDS_CRAWLERS` — comma list of relay URLs asked to crawl this server (at start-up and
    /// after updates, each at most once per 20 minutes; see `server::crawlers`). Default: none.
    pub crawlers: Vec<url::Url>,
    /// `PDS_REPO_BACKFILL_LIMIT_MS` — how far back a firehose cursor may reach, in
    /// milliseconds. Default `86400000` (one day).
    pub repo_backfill_limit: Duration,
    /// `PDS_MAX_SUBSCRIPTION_BUFFER` — how many frames a firehose subscriber may fall behind
    /// before it is sent `ConsumerTooSlow` and disconnected. Default `500`; at least 1.
    pub max_subscription_buffer: usize,
    /// `ROOKERY_FIREHOSE_PING_INTERVAL_MS` — how often firehose subscribers are pinged; one
    /// that sends nothing (not even a pong) for 2.5 intervals is disconnected. Default
    /// `30000`; at least 1.
    pub firehose_ping_interval: Duration,
    /// `PDS_EMAIL_SMTP_URL` + `PDS_EMAIL_FROM_ADDRESS` — outgoing mail. Default: none (mail
    /// is not sent: in development mode it is logged, otherwise the methods that mail a
    /// token answer an error). Setting only one of the two is an error.
    pub email: Option<EmailConfig>,
    /// `PDS_MODERATION_EMAIL_SMTP_URL` + `PDS_MODERATION_EMAIL_ADDRESS` — the mail of
    /// `com.atproto.admin.sendEmail`. Default: none, in which case that mail goes through
    /// `email`. Setting only one of the two is an error.
    pub moderation_email: Option<EmailConfig>,
    /// `ROOKERY_HUB_MODERATORS` — comma list of DIDs, or handles of accounts hosted here,
    /// allowed to moderate the hub (the admin adds or removes moderators at run time with
    /// `cn.pocketbase.hub.setModerator`). Default: none.
    pub hub_moderators: Vec<String>,
    /// `ROOKERY_HUB_RATE_LIMITS` — whether an account may create at most 10
    /// `cn.pocketbase.hub.plugin` and 5 `cn.pocketbase.hub.case` records per hour. Default
    /// `true` (a marketplace rule, independent of `PDS_RATE_LIMITS_ENABLED`).
    pub hub_rate_limits: bool,
    /// `ROOKERY_LEXICON_AUTHORITIES` — development mode only: comma list of
    /// `domain=did` pairs pinning lexicon authorities (the DNS `_lexicon.<domain>` TXT
    /// record) to DIDs, so OAuth `include:` permission sets published from a local account
    /// resolve before DNS is set up. Ignored outside development mode. Default: none.
    pub lexicon_authorities: std::collections::BTreeMap<String, crate::syntax::Did>,
    /// `LOG_ENABLED` — whether to log at all. Default `true` (the reference defaults to
    /// off; Rookery logs so that a first `rookery serve` explains itself).
    pub log_enabled: bool,
    /// `LOG_LEVEL` — a reference level name (`trace`, `debug`, `info`, `warn`, `error`,
    /// `fatal`, `silent`) or a tracing filter directive such as `rookery=debug,info`.
    /// Default `info`.
    pub log_level: String,
    /// `ROOKERY_LOG_FORMAT` — `text` (human-readable lines) or `json` (one JSON object per
    /// line, with the request id of the request being handled). Default `text`.
    pub log_format: LogFormat,
    /// Diagnostics found while reading the sources (unknown or unused variables). Logged by
    /// `main` once logging is set up; never fatal.
    pub warnings: Vec<ConfigWarning>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The request rate limits (each a list of windows that all apply). The defaults are the
/// reference PDS's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// Every request, per client address: 3000 per 5 minutes.
    pub global_ip: Vec<RateLimit>,
    /// Repository writes, in points per account (create 3, update 2, delete 1): 5000 per
    /// hour and 35000 per day.
    pub repo_write: Vec<RateLimit>,
    /// `createSession`, per identifier and address: 30 per 5 minutes, 300 per day.
    pub create_session: Vec<RateLimit>,
    /// Methods limited per client address, besides the global limit: `createAccount` 100
    /// per 5 minutes, `uploadBlob` 1000 per day, `requestPasswordReset` 15 per hour and 50
    /// per day, `resetPassword` and `deleteAccount` 50 per 5 minutes, `sync.getRepo` 6000
    /// per 5 minutes.
    pub per_address: Vec<MethodLimit>,
}

/// The limits of one XRPC method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodLimit {
    pub nsid: String,
    pub limits: Vec<RateLimit>,
}

impl RateLimitPolicy {
    /// Replaces (or adds) the per-address limits of `nsid`.
    pub fn set_per_address(&mut self, nsid: &str, limits: Vec<RateLimit>) {
        self.per_address.retain(|m| m.nsid != nsid);
        self.per_address.push(MethodLimit {
            nsid: nsid.to_owned(),
            limits,
        });
    }
}

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

impl Default for RateLimitPolicy {
    fn default() -> Self {
        let limit = |points, window_secs| RateLimit {
            points,
            window_secs,
        };
        RateLimitPolicy {
            global_ip: vec![limit(3000, 5 * MINUTE)],
            repo_write: vec![limit(5000, HOUR), limit(35_000, DAY)],
            create_session: vec![limit(30, 5 * MINUTE), limit(300, DAY)],
            per_address: [
                (
                    "com.atproto.server.createAccount",
                    vec![limit(100, 5 * MINUTE)],
                ),
                ("com.atproto.repo.uploadBlob", vec![limit(1000, DAY)]),
                (
                    "com.atproto.server.requestPasswordReset",
                    vec![limit(15, HOUR), limit(50, DAY)],
                ),
                (
                    "com.atproto.server.resetPassword",
                    vec![limit(50, 5 * MINUTE)],
                ),
                (
                    "com.atproto.server.deleteAccount",
                    vec![limit(50, 5 * MINUTE)],
                ),
                ("com.atproto.sync.getRepo", vec![limit(6000, 5 * MINUTE)]),
            ]
            .into_iter()
            .map(|(nsid, limits)| MethodLimit {
                nsid: nsid.to_owned(),
                limits,
            })
            .collect(),
        }
    }
}

/// An address block: one address, or a CIDR network such as `10.0.0.0/8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpBlock {
    pub network: IpAddr,
    pub prefix: u8,
}

impl IpBlock {
    /// Whether `ip` lies in the block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpBlock {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(IpBlock { network, prefix })
    }
}

/// Where blobs are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobstoreConfig {
    /// Local files.
    Disk {
        /// `PDS_BLOBSTORE_DISK_LOCATION` — permanent blobs. Default `{data_directory}/blocks`.
        location: PathBuf,
        /// `PDS_BLOBSTORE_DISK_TMP_LOCATION` — uploads not yet referenced by a record.
        /// Default `{data_directory}/tmp` (same file system, so promotion is a rename).
        tmp_location: PathBuf,
    },
    /// An S3-compatible bucket (AWS, R2, MinIO).
    S3(S3Config),
}

/// S3 blob store settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// `PDS_BLOBSTORE_S3_BUCKET` — the bucket name.
    pub bucket: String,
    /// `PDS_BLOBSTORE_S3_REGION` — the region. Default: `AWS_REGION`, `AWS_DEFAULT_REGION`,
    /// else `us-east-1`.
    pub region: Option<String>,
    /// `PDS_BLOBSTORE_S3_ENDPOINT` — a non-AWS endpoint URL. Default: AWS.
    pub endpoint: Option<url::Url>,
    /// `PDS_BLOBSTORE_S3_FORCE_PATH_STYLE` — path-style addressing. Default `false`.
    pub force_path_style: bool,
    /// `PDS_BLOBSTORE_S3_ACCESS_KEY_ID` + `PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY` — static
    /// credentials; both or neither. Default: `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`).
    pub credentials: Option<S3Credentials>,
}

/// Static S3 credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

/// A remote atproto service: its URL and DID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEndpoint {
    pub url: url::Url,
    pub did: String,
}

/// Outgoing mail settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailConfig {
    /// `PDS_EMAIL_SMTP_URL`, e.g. `smtps://user:pass@mail.example.com:465`. Secret because
    /// it usually carries a password.
    pub smtp_url: Secret,
    /// `PDS_EMAIL_FROM_ADDRESS`.
    pub from_address: String,
}

/// A configured secret string. Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A non-fatal finding about the configuration sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigWarning {
    /// A `PDS_*` or `ROOKERY_*` variable that neither Rookery nor the reference PDS reads —
    /// probably a typo.
    UnknownVariable(String),
    /// A variable of the reference PDS that Rookery accepts but does not use.
    UnusedReferenceVariable(String),
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigWarning::UnknownVariable(name) => {
                write!(f, "unknown setting {name} ignored (typo?)")
            }
            ConfigWarning::UnusedReferenceVariable(name) => write!(
                f,
                "{name} is a setting of the reference PDS that Rookery does not use; ignored"
            ),
        }
    }
}

/// Why the configuration cannot be used. Every message names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is present but malformed. Secret values are not echoed.
    #[error("invalid value{} for {name}: {reason}", .value.as_ref().map(|v| format!(" {v:?}")).unwrap_or_default())]
    InvalidValue {
        name: SettingName,
        value: Option<String>,
        reason: String,
    },
    /// Settings that contradict each other or are incomplete together.
    #[error("{0}")]
    Conflict(String),
    /// The configuration file is not valid TOML.
    #[error("configuration file is not valid TOML: {0}")]
    FileSyntax(String),
    /// The configuration file has a key Rookery does not know.
    #[error("unknown key `{0}` in the configuration file")]
    UnknownFileKey(String),
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The public URL the reference derives from hostname and port.
pub fn public_url_for(hostname: &str, port: u16) -> String {
    if hostname == DEFAULT_HOSTNAME {
        format!("http://localhost:{port}")
    } else {
        format!("https://{hostname}")
    }
}

fn default_handle_domains(hostname: &str) -> Vec<String> {
    if hostname == DEFAULT_HOSTNAME {
        vec![".test".to_owned()]
    } else {
        vec![format!(".{hostname}")]
    }
}

impl Default for Config {
    /// The zero-configuration development server.
    fn default() -> Self {
        let data_directory = PathBuf::from(DEFAULT_DATA_DIRECTORY);
        Config {
            hostname: DEFAULT_HOSTNAME.to_owned(),
            port: DEFAULT_PORT,
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            public_url: public_url_for(DEFAULT_HOSTNAME, DEFAULT_PORT),
            service_did: format!("did:web:{DEFAULT_HOSTNAME}"),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            dev_mode: false,
            // The default hostname is `localhost`: see the field's documentation.
            invite_required: false,
            rate_limits_enabled: false,
            rate_limit_bypass_key: None,
            rate_limit_bypass_ips: Vec::new(),
            trusted_proxy_header: None,
            rate_limits: RateLimitPolicy::default(),
            metrics_addr: None,
            service_handle_domains: default_handle_domains(DEFAULT_HOSTNAME),
            blobstore: BlobstoreConfig::Disk {
                location: data_directory.join("blocks"),
                tmp_location: data_directory.join("tmp"),
            },
            data_directory,
            replica: None,
            blob_upload_limit: DEFAULT_BLOB_UPLOAD_LIMIT,
            import_repo_limit: DEFAULT_IMPORT_REPO_LIMIT,
            blob_grace_period: DEFAULT_BLOB_GRACE_PERIOD,
            actor_store_cache_size: DEFAULT_ACTOR_STORE_CACHE_SIZE,
            blocking_threads: crate::server::BLOCKING_THREADS,
            // The default hostname is `localhost`: the embedded directory.
            did_plc_url: None,
            jwt_secret: None,
            admin_password: None,
            plc_rotation_key: None,
            bsky_app_view: None,
            report_service: None,
            crawlers: Vec::new(),
            repo_backfill_limit: DEFAULT_REPO_BACKFILL_LIMIT,
            max_subscription_buffer: DEFAULT_MAX_SUBSCRIPTION_BUFFER,
            firehose_ping_interval: DEFAULT_FIREHOSE_PING_INTERVAL,
            email: None,
            moderation_email: None,
            hub_moderators: Vec::new(),
            hub_rate_limits: true,
            lexicon_authorities: std::collections::BTreeMap::new(),
            log_enabled: true,
            log_level: "info".to_owned(),
            log_format: LogFormat::Text,
            warnings: Vec::new(),
        }
    }
}

fn default_plc_url() -> url::Url {
    url::Url::parse(DEFAULT_PLC_URL).expect("DEFAULT_PLC_URL is a valid URL")
}

impl Config {
    /// Development mode: `PDS_DEV_MODE`, or the hostname `localhost` (the zero-configuration
    /// defaults). Mail without an SMTP server is then logged, tokens included.
    pub fn is_development(&self) -> bool {
        self.dev_mode || self.hostname == "localhost"
    }

    /// Builds the configuration from environment pairs (`(name, value)`) and the text of
    /// the optional TOML file. Pure: reads nothing else. Environment values override the
    /// file; empty values count as unset.
    pub fn from_sources(
        env: impl IntoIterator<Item = (String, String)>,
        file: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let src = Sources::collect(env, file)?;
        let defaults = Config::default();

        let hostname = src
            .parse("PDS_HOSTNAME", parse_hostname)?
            .unwrap_or(defaults.hostname);
        let port = src
            .int::<u16>("PDS_PORT", "an integer from 0 to 65535")?
            .unwrap_or(DEFAULT_PORT);
        let bind_address = src
            .parse("ROOKERY_BIND_ADDRESS", |s| {
                s.parse::<IpAddr>()
                    .map_err(|_| "expected an IPv4 or IPv6 address".to_owned())
            })?
            .unwrap_or(defaults.bind_address);
        let service_did = src
            .parse("PDS_SERVICE_DID", parse_did)?
            .unwrap_or_else(|| format!("did:web:{hostname}"));
        let service_handle_domains = match src.list("PDS_SERVICE_HANDLE_DOMAINS") {
            list if list.is_empty() => default_handle_domains(&hostname),
            list => {
                let mut domains = Vec::with_capacity(list.len());
                for domain in list {
                    if !domain.starts_with('.') || domain.len() < 2 {
                        return Err(src.invalid(
                            "PDS_SERVICE_HANDLE_DOMAINS",
                            format!(
                                "handle domain {domain:?} must start with '.', e.g. .example.com"
                            ),
                        ));
                    }
                    domains.push(domain.to_ascii_lowercase());
                }
                domains
            }
        };

        let data_directory = src
            .string("PDS_DATA_DIRECTORY")
            .map(PathBuf::from)
            .unwrap_or(defaults.data_directory);
        let blobstore = blobstore_from(&src, &data_directory)?;
        let replica = replica::replica_from(&src)?;
        let blob_upload_limit = src
            .int::<u64>("PDS_BLOB_UPLOAD_LIMIT", "a positive number of bytes")?
            .unwrap_or(DEFAULT_BLOB_UPLOAD_LIMIT);
        if blob_upload_limit == 0 {
            return Err(src.invalid("PDS_BLOB_UPLOAD_LIMIT", "must be at least 1 byte"));
        }
        let import_repo_limit = src
            .int::<u64>("ROOKERY_IMPORT_REPO_LIMIT", "a positive number of bytes")?
            .unwrap_or(DEFAULT_IMPORT_REPO_LIMIT);
        if import_repo_limit == 0 {
            return Err(src.invalid("ROOKERY_IMPORT_REPO_LIMIT", "must be at least 1 byte"));
        }
        let blob_grace_period = src
            .int::<u64>("ROOKERY_BLOB_GRACE_PERIOD_MS", "a number of milliseconds")?
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_BLOB_GRACE_PERIOD);
        if blob_grace_period < MIN_BLOB_GRACE_PERIOD {
            return Err(src.invalid(
                "ROOKERY_BLOB_GRACE_PERIOD_MS",
                "must be at least 60000 (one minute)",
            ));
        }
        let actor_store_cache_size = src
            .int::<usize>("ROOKERY_ACTOR_STORE_CACHE_SIZE", "a positive integer")?
            .unwrap_or(DEFAULT_ACTOR_STORE_CACHE_SIZE);
        if actor_store_cache_size == 0 {
            return Err(src.invalid("ROOKERY_ACTOR_STORE_CACHE_SIZE", "must be at least 1"));
        }
        let blocking_threads = src
            .int::<usize>("ROOKERY_BLOCKING_THREADS", "a positive integer")?
            .unwrap_or(crate::server::BLOCKING_THREADS);
        if blocking_threads == 0 {
            return Err(src.invalid("ROOKERY_BLOCKING_THREADS", "must be at least 1"));
        }
        let max_subscription_buffer = src
            .int::<usize>("PDS_MAX_SUBSCRIPTION_BUFFER", "a positive integer")?
            .unwrap_or(DEFAULT_MAX_SUBSCRIPTION_BUFFER);
        if max_subscription_buffer == 0 {
            return Err(src.invalid("PDS_MAX_SUBSCRIPTION_BUFFER", "must be at least 1"));
        }
        let firehose_ping_interval = src
            .int::<u64>(
                "ROOKERY_FIREHOSE_PING_INTERVAL_MS",
                "a number of milliseconds",
            )?
            .map_or(DEFAULT_FIREHOSE_PING_INTERVAL, Duration::from_millis);
        if firehose_ping_interval.is_zero() {
            return Err(src.invalid("ROOKERY_FIREHOSE_PING_INTERVAL_MS", "must be at least 1"));
        }

        let plc_rotation_key = src.parse(
            "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
            secrets::parse_k256_private_key_hex,
        )?;

        let email = email_config(&src, "PDS_EMAIL_SMTP_URL", "PDS_EMAIL_FROM_ADDRESS")?;
        let moderation_email = email_config(
            &src,
            "PDS_MODERATION_EMAIL_SMTP_URL",
            "PDS_MODERATION_EMAIL_ADDRESS",
        )?;

        let mut crawlers = Vec::new();
        for item in src.list("PDS_CRAWLERS") {
            let url = parse_http_url(&item)
                .map_err(|reason| src.invalid("PDS_CRAWLERS", format!("{item:?}: {reason}")))?;
            crawlers.push(url);
        }
        let mut hub_moderators = Vec::new();
        for item in src.list("ROOKERY_HUB_MODERATORS") {
            let moderator = parse_moderator(&item).map_err(|reason| {
                src.invalid("ROOKERY_HUB_MODERATORS", format!("{item:?}: {reason}"))
            })?;
            hub_moderators.push(moderator);
        }

        let mut lexicon_authorities = std::collections::BTreeMap::new();
        for item in src.list("ROOKERY_LEXICON_AUTHORITIES") {
            let pair = item.split_once('=').and_then(|(domain, did)| {
                let domain = domain.trim().to_ascii_lowercase();
                let valid = !domain.is_empty() && domain.contains('.');
                Some((domain, did.trim().parse::<crate::syntax::Did>().ok()?)).filter(|_| valid)
            });
            let (domain, did) = pair.ok_or_else(|| {
                src.invalid(
                    "ROOKERY_LEXICON_AUTHORITIES",
                    format!("{item:?}: expected domain=did"),
                )
            })?;
            lexicon_authorities.insert(domain, did);
        }

        let log_level = src
            .parse("LOG_LEVEL", parse_log_level)?
            .unwrap_or(defaults.log_level);

        let mut warnings: Vec<ConfigWarning> = src
            .unknown
            .iter()
            .cloned()
            .map(ConfigWarning::UnknownVariable)
            .collect();
        warnings.extend(
            src.reference_only
                .iter()
                .cloned()
                .map(ConfigWarning::UnusedReferenceVariable),
        );

        let invite_required = src
            .bool("PDS_INVITE_REQUIRED")?
            .unwrap_or(hostname != DEFAULT_HOSTNAME);
        let dev_mode = src.bool("PDS_DEV_MODE")?.unwrap_or(defaults.dev_mode);
        let rate_limits_enabled = src
            .bool("PDS_RATE_LIMITS_ENABLED")?
            .unwrap_or(!dev_mode && hostname != DEFAULT_HOSTNAME);
        let mut rate_limit_bypass_ips = Vec::new();
        for item in src.list("PDS_RATE_LIMIT_BYPASS_IPS") {
            let block = item
                .parse::<IpBlock>()
                .map_err(|reason| src.invalid("PDS_RATE_LIMIT_BYPASS_IPS", reason))?;
            rate_limit_bypass_ips.push(block);
        }
        let trusted_proxy_header = src.parse("ROOKERY_TRUSTED_PROXY_HEADER", |s| {
            axum::http::HeaderName::from_bytes(s.trim().as_bytes())
                .map(|h| h.as_str().to_owned())
                .map_err(|_| "expected an HTTP header name such as x-forwarded-for".to_owned())
        })?;
        let metrics_addr = src.parse("ROOKERY_METRICS_ADDR", |s| {
            s.parse::<SocketAddr>()
                .map_err(|_| "expected an address and port such as 127.0.0.1:9090".to_owned())
        })?;
        let log_format = src
            .parse("ROOKERY_LOG_FORMAT", |s| {
                match s.to_ascii_lowercase().as_str() {
                    "text" => Ok(LogFormat::Text),
                    "json" => Ok(LogFormat::Json),
                    _ => Err("expected text or json".to_owned()),
                }
            })?
            .unwrap_or(defaults.log_format);
        let did_plc_url = match src.url("PDS_DID_PLC_URL")? {
            Some(url) => Some(url),
            None if hostname == DEFAULT_HOSTNAME => None,
            None => Some(default_plc_url()),
        };
        Ok(Config {
            public_url: public_url_for(&hostname, port),
            hostname,
            port,
            bind_address,
            service_did,
            version: src.string("PDS_VERSION").unwrap_or(defaults.version),
            dev_mode,
            invite_required,
            rate_limits_enabled,
            rate_limit_bypass_key: src.string("PDS_RATE_LIMIT_BYPASS_KEY").map(Secret::new),
            rate_limit_bypass_ips,
            trusted_proxy_header,
            rate_limits: RateLimitPolicy::default(),
            metrics_addr,
            service_handle_domains,
            data_directory,
            blobstore,
            replica,
            blob_upload_limit,
            import_repo_limit,
            blob_grace_period,
            actor_store_cache_size,
            blocking_threads,
            did_plc_url,
            jwt_secret: src.string("PDS_JWT_SECRET").map(Secret::new),
            admin_password: src.string("PDS_ADMIN_PASSWORD").map(Secret::new),
            plc_rotation_key,
            bsky_app_view: endpoint_from(&src, "PDS_BSKY_APP_VIEW_URL", "PDS_BSKY_APP_VIEW_DID")?,
            report_service: endpoint_from(
                &src,
                "PDS_REPORT_SERVICE_URL",
                "PDS_REPORT_SERVICE_DID",
            )?,
            crawlers,
            repo_backfill_limit: src
                .int::<u64>("PDS_REPO_BACKFILL_LIMIT_MS", "a number of milliseconds")?
                .map(Duration::from_millis)
                .unwrap_or(defaults.repo_backfill_limit),
            max_subscription_buffer,
            firehose_ping_interval,
            email,
            moderation_email,
            hub_moderators,
            lexicon_authorities,
            hub_rate_limits: src
                .bool("ROOKERY_HUB_RATE_LIMITS")?
                .unwrap_or(defaults.hub_rate_limits),
            log_enabled: src.bool("LOG_ENABLED")?.unwrap_or(defaults.log_enabled),
            log_level,
            log_format,
            warnings,
        })
    }

    /// Sets the listening port and the public URL derived from it (`rookery serve --port`,
    /// and the port actually bound when `0` was asked for).
    pub fn set_port(&mut self, port: u16) {
        self.port = port;
        self.public_url = public_url_for(&self.hostname, port);
    }

    /// The embedded PLC directory's public URL, when it is the one in use.
    pub fn embedded_plc_url(&self) -> Option<String> {
        self.did_plc_url
            .is_none()
            .then(|| format!("{}{}", self.public_url, crate::plc_directory::MOUNT_PATH))
    }

    /// Reads the process environment and the configuration file: `path` if given (it must
    /// exist), else `./rookery.toml` if present. For `main`; tests use [`Config::from_sources`].
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let file = match path {
            Some(path) => Some(read_file(path)?),
            None => {
                let default = Path::new(DEFAULT_CONFIG_FILE);
                if default.is_file() {
                    Some(read_file(default)?)
                } else {
                    None
                }
            }
        };
        // Names or values that are not UTF-8 cannot be ours; skip them rather than panic.
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        Config::from_sources(env, file.as_deref())
    }

    /// The `tracing_subscriber::EnvFilter` directive for `LOG_LEVEL`, or `None` when
    /// logging is disabled (`LOG_ENABLED=false` or `LOG_LEVEL=silent`).
    pub fn log_filter(&self) -> Option<String> {
        if !self.log_enabled {
            return None;
        }
        match self.log_level.to_ascii_lowercase().as_str() {
            "silent" => None,
            "fatal" => Some("error".to_owned()),
            level @ ("trace" | "debug" | "info" | "warn" | "error") => Some(level.to_owned()),
            _ => Some(self.log_level.clone()),
        }
    }
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

fn blobstore_from(src: &Sources, data_directory: &Path) -> Result<BlobstoreConfig, ConfigError> {
    let Some(bucket) = src.string("PDS_BLOBSTORE_S3_BUCKET") else {
        return Ok(BlobstoreConfig::Disk {
            location: src
                .string("PDS_BLOBSTORE_DISK_LOCATION")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_directory.join("blocks")),
            tmp_location: src
                .string("PDS_BLOBSTORE_DISK_TMP_LOCATION")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_directory.join("tmp")),
        });
    };
    if src.is_set("PDS_BLOBSTORE_DISK_LOCATION") {
        return Err(ConfigError::Conflict(
            "PDS_BLOBSTORE_S3_BUCKET and PDS_BLOBSTORE_DISK_LOCATION are both set; \
             choose one blob store"
                .into(),
        ));
    }
    let credentials = match (
        src.string("PDS_BLOBSTORE_S3_ACCESS_KEY_ID"),
        src.string("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY"),
    ) {
        (None, None) => None,
        (Some(access_key_id), Some(secret)) => Some(S3Credentials {
            access_key_id,
            secret_access_key: Secret::new(secret),
        }),
        _ => {
            return Err(ConfigError::Conflict(
                "PDS_BLOBSTORE_S3_ACCESS_KEY_ID and PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY must be \
                 set together"
                    .into(),
            ));
        }
    };
    Ok(BlobstoreConfig::S3(S3Config {
        bucket,
        region: src.string("PDS_BLOBSTORE_S3_REGION"),
        endpoint: src.url("PDS_BLOBSTORE_S3_ENDPOINT")?,
        force_path_style: src
            .bool("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE")?
            .unwrap_or(false),
        credentials,
    }))
}

fn endpoint_from(
    src: &Sources,
    url_var: &'static str,
    did_var: &'static str,
) -> Result<Option<ServiceEndpoint>, ConfigError> {
    let Some(url) = src.url(url_var)? else {
        return Ok(None);
    };
    let Some(did) = src.parse(did_var, parse_did)? else {
        return Err(ConfigError::Conflict(format!(
            "{url_var} is set but {did_var} is not; both are needed"
        )));
    };
    Ok(Some(ServiceEndpoint { url, did }))
}

/// A bare DNS name (letters, digits, hyphens, dots), lowercased.
fn parse_hostname(s: &str) -> Result<String, String> {
    const HINT: &str =
        "expected a bare host name such as pds.example.com (no scheme, port or path)";
    if s.len() > 253 {
        return Err(format!("{HINT}; it is longer than 253 characters"));
    }
    let labels_ok = s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok {
        return Err(HINT.to_owned());
    }
    Ok(s.to_ascii_lowercase())
}

/// A syntactically plausible DID: `did:<method>:<identifier>`.
/// A hub moderator: a DID, or the handle (lowercased) of an account hosted here.
fn parse_moderator(s: &str) -> Result<String, String> {
    if s.starts_with("did:") {
        return parse_did(s);
    }
    s.parse::<crate::syntax::Handle>()
        .map(|h| h.as_str().to_lowercase())
        .map_err(|_| "expected a DID or a handle".to_owned())
}

fn parse_did(s: &str) -> Result<String, String> {
    const HINT: &str = "expected a DID such as did:web:example.com or did:plc:…";
    let rest = s.strip_prefix("did:").ok_or(HINT)?;
    let (method, id) = rest.split_once(':').ok_or(HINT)?;
    let method_ok = !method.is_empty() && method.bytes().all(|b| b.is_ascii_lowercase());
    let id_ok = !id.is_empty()
        && !id.ends_with(':')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:%-".contains(&b));
    if method_ok && id_ok {
        Ok(s.to_owned())
    } else {
        Err(HINT.to_owned())
    }
}

/// One SMTP setting pair: both or neither.
fn email_config(
    src: &Sources,
    url_var: &'static str,
    from_var: &'static str,
) -> Result<Option<EmailConfig>, ConfigError> {
    match (src.string(url_var), src.string(from_var)) {
        (None, None) => Ok(None),
        (Some(smtp), Some(from)) => {
            src.parse(url_var, parse_smtp_url)?;
            src.parse(from_var, parse_email_address)?;
            Ok(Some(EmailConfig {
                smtp_url: Secret::new(smtp.trim()),
                from_address: from,
            }))
        }
        _ => Err(ConfigError::Conflict(format!(
            "{url_var} and {from_var} must be set together"
        ))),
    }
}

fn parse_smtp_url(s: &str) -> Result<(), String> {
    let url = url::Url::parse(s).map_err(|e| format!("not a valid URL: {e}"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    Ok(())
}

fn parse_email_address(s: &str) -> Result<(), String> {
    match s.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') => Ok(()),
        _ => Err("expected an address such as noreply@example.com".to_owned()),
    }
}

/// A reference level name or a tracing filter directive (which must contain `=`, so a
/// misspelt level such as `inf` is an error rather than a filter for a target named `inf`).
fn parse_log_level(s: &str) -> Result<String, String> {
    const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "fatal", "silent"];
    if LEVELS.contains(&s.to_ascii_lowercase().as_str()) {
        return Ok(s.to_owned());
    }
    if !s.contains('=') {
        return Err(format!(
            "expected one of {} or a filter directive such as rookery=debug,info",
            LEVELS.join(", ")
        ));
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("not a valid filter directive: {e}"))
}
