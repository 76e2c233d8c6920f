//! Where raw setting values come from: the environment and the optional TOML file.
//!
//! Every setting Rookery reads has one environment name (the reference PDS's name where
//! one exists) and one TOML key derived from it: lowercase, without the `PDS_` or
//! `ROOKERY_` prefix (`PDS_PORT` → `port`, `ROOKERY_BIND_ADDRESS` → `bind_address`,
//! `LOG_LEVEL` → `log_level`). An environment value overrides the file; an empty value
//! counts as unset, as in the reference implementation.

use std::collections::HashMap;
use std::fmt;

use super::ConfigError;

/// The environment variables Rookery reads. `secret` values are never echoed in errors.
pub(crate) const SETTINGS: &[Setting] = &[
    Setting::plain("PDS_HOSTNAME"),
    Setting::plain("PDS_PORT"),
    Setting::plain("ROOKERY_BIND_ADDRESS"),
    Setting::plain("PDS_SERVICE_DID"),
    Setting::plain("PDS_VERSION"),
    Setting::plain("PDS_DEV_MODE"),
    Setting::plain("PDS_INVITE_REQUIRED"),
    Setting::plain("PDS_RATE_LIMITS_ENABLED"),
    Setting::secret("PDS_RATE_LIMIT_BYPASS_KEY"),
    Setting::plain("PDS_RATE_LIMIT_BYPASS_IPS"),
    Setting::plain("ROOKERY_TRUSTED_PROXY_HEADER"),
    Setting::plain("ROOKERY_METRICS_ADDR"),
    Setting::plain("PDS_SERVICE_HANDLE_DOMAINS"),
    Setting::plain("PDS_DATA_DIRECTORY"),
    Setting::plain("PDS_BLOBSTORE_DISK_LOCATION"),
    Setting::plain("PDS_BLOBSTORE_DISK_TMP_LOCATION"),
    Setting::plain("PDS_BLOBSTORE_S3_BUCKET"),
    Setting::plain("PDS_BLOBSTORE_S3_REGION"),
    Setting::plain("PDS_BLOBSTORE_S3_ENDPOINT"),
    Setting::plain("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE"),
    Setting::plain("PDS_BLOBSTORE_S3_ACCESS_KEY_ID"),
    Setting::secret("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY"),
    Setting::plain("ROOKERY_REPLICA_S3_BUCKET"),
    Setting::plain("ROOKERY_REPLICA_S3_REGION"),
    Setting::plain("ROOKERY_REPLICA_S3_ENDPOINT"),
    Setting::plain("ROOKERY_REPLICA_S3_FORCE_PATH_STYLE"),
    Setting::plain("ROOKERY_REPLICA_S3_ACCESS_KEY_ID"),
    Setting::secret("ROOKERY_REPLICA_S3_SECRET_ACCESS_KEY"),
    Setting::plain("ROOKERY_REPLICA_S3_PREFIX"),
    Setting::plain("ROOKERY_REPLICA_INTERVAL_MS"),
    Setting::plain("ROOKERY_REPLICA_STRICT"),
    Setting::plain("ROOKERY_REPLICA_STRICT_TIMEOUT_MS"),
    Setting::plain("ROOKERY_REPLICA_RETENTION_HOURS"),
    Setting::plain("ROOKERY_REPLICA_COMPACT_SEGMENTS"),
    Setting::plain("PDS_BLOB_UPLOAD_LIMIT"),
    Setting::plain("ROOKERY_BLOB_GRACE_PERIOD_MS"),
    Setting::plain("ROOKERY_IMPORT_REPO_LIMIT"),
    Setting::plain("ROOKERY_ACTOR_STORE_CACHE_SIZE"),
    Setting::plain("ROOKERY_BLOCKING_THREADS"),
    Setting::plain("PDS_DID_PLC_URL"),
    Setting::secret("PDS_JWT_SECRET"),
    Setting::secret("PDS_ADMIN_PASSWORD"),
    Setting::secret("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX"),
    Setting::plain("PDS_BSKY_APP_VIEW_URL"),
    Setting::plain("PDS_BSKY_APP_VIEW_DID"),
    Setting::plain("PDS_REPORT_SERVICE_URL"),
    Setting::plain("PDS_REPORT_SERVICE_DID"),
    Setting::plain("PDS_CRAWLERS"),
    Setting::plain("PDS_REPO_BACKFILL_LIMIT_MS"),
    Setting::plain("PDS_MAX_SUBSCRIPTION_BUFFER"),
    Setting::plain("ROOKERY_FIREHOSE_PING_INTERVAL_MS"),
    Setting::secret("PDS_EMAIL_SMTP_URL"),
    Setting::plain("PDS_EMAIL_FROM_ADDRESS"),
    Setting::secret("PDS_MODERATION_EMAIL_SMTP_URL"),
    Setting::plain("PDS_MODERATION_EMAIL_ADDRESS"),
    Setting::plain("ROOKERY_HUB_MODERATORS"),
    Setting::plain("ROOKERY_HUB_RATE_LIMITS"),
    Setting::plain("ROOKERY_LEXICON_AUTHORITIES"),
    Setting::plain("LOG_ENABLED"),
    Setting::plain("LOG_LEVEL"),
    Setting::plain("ROOKERY_LOG_FORMAT"),
];

/// Variables the reference TypeScript PDS reads (now or in earlier releases) that Rookery
/// does not use. They are accepted so an operator's `pds.env` starts unchanged; each one
/// that is set is reported as a [`super::ConfigWarning::UnusedReferenceVariable`].
pub(crate) const REFERENCE_ONLY: &[&str] = &[
    "PDS_SERVICE_NAME",
    "PDS_HOME_URL",
    "PDS_LOGO_URL",
    "PDS_PRIVACY_POLICY_URL",
    "PDS_SUPPORT_URL",
    "PDS_TERMS_OF_SERVICE_URL",
    "PDS_CONTACT_EMAIL_ADDRESS",
    "PDS_ACCEPTING_REPO_IMPORTS",
    "PDS_MAX_REPO_IMPORT_SIZE",
    "PDS_HCAPTCHA_SITE_KEY",
    "PDS_HCAPTCHA_SECRET_KEY",
    "PDS_HCAPTCHA_TOKEN_SALT",
    "PDS_OAUTH_TRUSTED_CLIENTS",
    "PDS_LIGHT_COLOR",
    "PDS_DARK_COLOR",
    "PDS_PRIMARY_COLOR",
    "PDS_PRIMARY_COLOR_CONTRAST",
    "PDS_PRIMARY_COLOR_HUE",
    "PDS_ERROR_COLOR",
    "PDS_ERROR_COLOR_CONTRAST",
    "PDS_ERROR_COLOR_HUE",
    "PDS_WARNING_COLOR",
    "PDS_WARNING_COLOR_CONTRAST",
    "PDS_WARNING_COLOR_HUE",
    "PDS_SUCCESS_COLOR",
    "PDS_SUCCESS_COLOR_CONTRAST",
    "PDS_SUCCESS_COLOR_HUE",
    "PDS_SQLITE_DISABLE_WAL_AUTO_CHECKPOINT",
    "PDS_ACCOUNT_DB_LOCATION",
    "PDS_SEQUENCER_DB_LOCATION",
    "PDS_DID_CACHE_DB_LOCATION",
    "PDS_ACTOR_STORE_DIRECTORY",
    "PDS_ACTOR_STORE_CACHE_SIZE",
    "PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS",
    "PDS_DID_CACHE_STALE_TTL",
    "PDS_DID_CACHE_MAX_TTL",
    "PDS_ID_RESOLVER_TIMEOUT",
    "PDS_RECOVERY_DID_KEY",
    "PDS_HANDLE_BACKUP_NAMESERVERS",
    "PDS_ENABLE_DID_DOC_WITH_SESSION",
    "PDS_ENTRYWAY_URL",
    "PDS_ENTRYWAY_DID",
    "PDS_ENTRYWAY_JWT_VERIFY_KEY_K256_PUBLIC_KEY_HEX",
    "PDS_ENTRYWAY_PLC_ROTATION_KEY",
    "PDS_ENTRYWAY_PLC_ROTATION_KEY_K256_PUBLIC_KEY_HEX",
    "PDS_ENTRYWAY_ADMIN_TOKEN",
    "PDS_INVITE_INTERVAL",
    "PDS_INVITE_EPOCH",
    "PDS_BSKY_APP_VIEW_CDN_URL_PATTERN",
    "PDS_BSKY_APP_VIEW_MODERATION",
    "PDS_MOD_SERVICE_URL",
    "PDS_MOD_SERVICE_DID",
    "PDS_REDIS_SCRATCH_ADDRESS",
    "PDS_REDIS_SCRATCH_PASSWORD",
    "PDS_DPOP_SECRET",
    "PDS_PLC_ROTATION_KEY_KMS_KEY_ID",
    "PDS_REPO_SIGNING_KEY_K256_PRIVATE_KEY_HEX",
    "PDS_MODERATOR_PASSWORD",
    "PDS_TRIAGE_PASSWORD",
    "PDS_DB_SQLITE_LOCATION",
    "PDS_DB_SQLITE_DIRECTORY",
    "PDS_DB_POSTGRES_URL",
    "PDS_DISABLE_SSRF_PROTECTION",
    "PDS_FETCH_MAX_RESPONSE_SIZE",
    "PDS_PROXY_ALLOW_HTTP2",
    "PDS_PROXY_HEADERS_TIMEOUT",
    "PDS_PROXY_BODY_TIMEOUT",
    "PDS_PROXY_MAX_RESPONSE_SIZE",
    "PDS_PROXY_MAX_RETRIES",
    "PDS_PROXY_PREFER_COMPRESSED",
    "PDS_LEXICON_AUTHORITY_DID",
];

/// One setting Rookery reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Setting {
    pub env: &'static str,
    pub secret: bool,
}

impl Setting {
    const fn plain(env: &'static str) -> Self {
        Setting { env, secret: false }
    }

    const fn secret(env: &'static str) -> Self {
        Setting { env, secret: true }
    }

    /// The key of this setting in `rookery.toml`.
    pub fn file_key(&self) -> String {
        let bare = self
            .env
            .strip_prefix("PDS_")
            .or_else(|| self.env.strip_prefix("ROOKERY_"))
            .unwrap_or(self.env);
        bare.to_ascii_lowercase()
    }
}

/// Where a value was read from, so an error can name what the operator must fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Env,
    File { key: String },
}

/// The name of a setting as the operator wrote it, used in error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingName {
    /// The environment variable name, e.g. `PDS_PORT`.
    pub env: &'static str,
    /// The key in the configuration file, when the value came from there.
    pub file_key: Option<String>,
}

impl fmt::Display for SettingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file_key {
            None => f.write_str(self.env),
            Some(key) => write!(f, "`{key}` ({}) in the configuration file", self.env),
        }
    }
}

#[derive(Clone, Debug)]
struct RawValue {
    value: String,
    origin: Origin,
    secret: bool,
}

/// Merged raw values (file first, environment on top) plus the names that were not used.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    values: HashMap<&'static str, RawValue>,
    /// `PDS_*` / `ROOKERY_*` environment names Rookery does not know, sorted.
    pub unknown: Vec<String>,
    /// Reference-PDS names that are set but unused by Rookery, sorted.
    pub reference_only: Vec<String>,
}

fn setting_for_env(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.env == name)
}

fn setting_for_key(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.file_key() == key)
}

impl Sources {
    pub fn collect(
        env: impl IntoIterator<Item = (String, String)>,
        file: Option<&str>,
    ) -> Result<Sources, ConfigError> {
        let mut sources = Sources::default();
        if let Some(text) = file {
            let table: toml::Table =
                toml::from_str(text).map_err(|e| ConfigError::FileSyntax(e.to_string()))?;
            for (key, value) in table {
                let setting = setting_for_key(&key)
                    .ok_or_else(|| ConfigError::UnknownFileKey(key.clone()))?;
                let value =
                    toml_value_to_string(&value).map_err(|reason| ConfigError::InvalidValue {
                        name: SettingName {
                            env: setting.env,
                            file_key: Some(key.clone()),
                        },
                        value: None,
                        reason,
                    })?;
                sources.values.insert(
                    setting.env,
                    RawValue {
                        value,
                        origin: Origin::File { key },
                        secret: setting.secret,
                    },
                );
            }
        }
        for (name, value) in env {
            if let Some(setting) = setting_for_env(&name) {
                sources.values.insert(
                    setting.env,
                    RawValue {
                        value,
                        origin: Origin::Env,
                        secret: setting.secret,
                    },
                );
            } else if REFERENCE_ONLY.contains(&name.as_str()) {
                if !value.is_empty() {
                    sources.reference_only.push(name);
                }
            } else if name.starts_with("PDS_") || name.starts_with("ROOKERY_") {
                sources.unknown.push(name);
            }
        }
        sources.unknown.sort();
        sources.unknown.dedup();
        sources.reference_only.sort();
        sources.reference_only.dedup();
        Ok(sources)
    }

    fn raw(&self, env: &'static str) -> Option<&RawValue> {
        self.values.get(env).filter(|v| !v.value.is_empty())
    }

    /// Whether the setting has a non-empty value.
    pub fn is_set(&self, env: &'static str) -> bool {
        self.raw(env).is_some()
    }

    /// The name to report for `env`, including the file key when that is where it came from.
    pub fn name(&self, env: &'static str) -> SettingName {
        let file_key = match self.values.get(env).map(|v| &v.origin) {
            Some(Origin::File { key }) => Some(key.clone()),
            _ => None,
        };
        SettingName { env, file_key }
    }

    /// Builds the error for a present-but-unacceptable value.
    pub fn invalid(&self, env: &'static str, reason: impl Into<String>) -> ConfigError {
        let value = self
            .values
            .get(env)
            .filter(|v| !v.secret)
            .map(|v| v.value.clone());
        ConfigError::InvalidValue {
            name: self.name(env),
            value,
            reason: reason.into(),
        }
    }

    /// The value, or `None` when unset or empty. Surrounding whitespace is removed except
    /// from secrets, which are taken byte for byte as the reference implementation does.
    pub fn string(&self, env: &'static str) -> Option<String> {
        self.raw(env).map(|v| {
            if v.secret {
                v.value.clone()
            } else {
                v.value.trim().to_owned()
            }
        })
    }

    /// Parses the value with `parse`, whose error string becomes the reason.
    pub fn parse<T>(
        &self,
        env: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.raw(env) {
            None => Ok(None),
            Some(raw) => parse(raw.value.trim())
                .map(Some)
                .map_err(|reason| self.invalid(env, reason)),
        }
    }

    pub fn bool(&self, env: &'static str) -> Result<Option<bool>, ConfigError> {
        self.parse(env, parse_bool)
    }

    pub fn int<T: std::str::FromStr>(
        &self,
        env: &'static str,
        expected: &str,
    ) -> Result<Option<T>, ConfigError> {
        self.parse(env, |s| {
            s.parse::<T>().map_err(|_| format!("expected {expected}"))
        })
    }

    pub fn url(&self, env: &'static str) -> Result<Option<url::Url>, ConfigError> {
        self.parse(env, parse_http_url)
    }

    /// A comma-separated list; blank items are dropped.
    pub fn list(&self, env: &'static str) -> Vec<String> {
        self.raw(env)
            .map(|v| {
                v.value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `true`/`false`/`1`/`0` (any case); anything else is an error rather than a silent default.
pub(crate) fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err("expected true, false, 1 or 0".to_owned()),
    }
}

/// An absolute `http(s)` URL with a host.
pub(crate) fn parse_http_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| format!("not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "expected an http or https URL, got scheme `{}`",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    Ok(url)
}

fn toml_value_to_string(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Array(items) => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    toml::Value::String(s) if s.contains(',') => {
                        return Err(format!("list item {s:?} contains a comma"));
                    }
                    toml::Value::String(s) => parts.push(s.clone()),
                    _ => return Err("expected a list of strings".to_owned()),
                }
            }
            Ok(parts.join(","))
        }
        toml::Value::Float(_) => Err("expected a string, integer or boolean, got a float".into()),
        toml::Value::Datetime(_) => Err("expected a string, integer or boolean, got a date".into()),
        toml::Value::Table(_) => Err("expected a string, integer or boolean, got a table".into()),
    }
}
