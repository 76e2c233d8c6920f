//! `ROOKERY_REPLICA_*`: continuous replication of the databases to an S3-compatible bucket.

use std::time::Duration;

use super::sources::Sources;
use super::{ConfigError, S3Config, S3Credentials, Secret};

/// Default `ROOKERY_REPLICA_S3_PREFIX`.
pub const DEFAULT_REPLICA_PREFIX: &str = "rookery/";
/// Default `ROOKERY_REPLICA_INTERVAL_MS`: half a second.
pub const DEFAULT_REPLICA_INTERVAL: Duration = Duration::from_millis(500);
/// Default `ROOKERY_REPLICA_STRICT_TIMEOUT_MS`: 30 seconds.
pub const DEFAULT_STRICT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `ROOKERY_REPLICA_RETENTION_HOURS`: three days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(72 * 3600);
/// Default `ROOKERY_REPLICA_COMPACT_SEGMENTS`.
pub const DEFAULT_COMPACT_SEGMENTS: u64 = 1000;

/// Where and how the databases are replicated (see `docs/replication.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// `ROOKERY_REPLICA_S3_BUCKET`, `_REGION`, `_ENDPOINT`, `_FORCE_PATH_STYLE`,
    /// `_ACCESS_KEY_ID`, `_SECRET_ACCESS_KEY`. Each one left unset takes the value of the
    /// matching `PDS_BLOBSTORE_S3_*` setting, so one bucket can hold blobs and replicas
    /// (under different prefixes).
    pub s3: S3Config,
    /// `ROOKERY_REPLICA_S3_PREFIX` — key prefix of every replica object; ends with `/`.
    /// Default `rookery/`.
    pub prefix: String,
    /// `ROOKERY_REPLICA_INTERVAL_MS` — how often changed databases are shipped. Default
    /// `500`; from 50 to 60000.
    pub interval: Duration,
    /// `ROOKERY_REPLICA_STRICT` — acknowledge a repository write only once it is in the
    /// bucket. Default `false`.
    pub strict: bool,
    /// `ROOKERY_REPLICA_STRICT_TIMEOUT_MS` — longest a strict write waits for the bucket
    /// before it is acknowledged anyway. Default `30000`.
    pub strict_timeout: Duration,
    /// `ROOKERY_REPLICA_RETENTION_HOURS` — how long superseded generations are kept (the
    /// reach of point-in-time restore). Default `72`.
    pub retention: Duration,
    /// `ROOKERY_REPLICA_COMPACT_SEGMENTS` — a database whose generation holds this many
    /// segments starts a new generation (a fresh base snapshot) at its next change, so the
    /// old chain can be pruned. Default `1000`; at least `2`.
    pub compact_segments: u64,
}

fn setting(src: &Sources, own: &'static str, blob: &'static str) -> Option<String> {
    src.string(own).or_else(|| src.string(blob))
}

pub(super) fn replica_from(src: &Sources) -> Result<Option<ReplicaConfig>, ConfigError> {
    let Some(bucket) = src.string("ROOKERY_REPLICA_S3_BUCKET") else {
        return Ok(None);
    };
    let credentials = match (
        setting(
            src,
            "ROOKERY_REPLICA_S3_ACCESS_KEY_ID",
            "PDS_BLOBSTORE_S3_ACCESS_KEY_ID",
        ),
        setting(
            src,
            "ROOKERY_REPLICA_S3_SECRET_ACCESS_KEY",
            "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY",
        ),
    ) {
        (None, None) => None,
        (Some(access_key_id), Some(secret)) => Some(S3Credentials {
            access_key_id,
            secret_access_key: Secret::new(secret),
        }),
        _ => {
            return Err(ConfigError::Conflict(
                "ROOKERY_REPLICA_S3_ACCESS_KEY_ID and ROOKERY_REPLICA_S3_SECRET_ACCESS_KEY \
                 must be set together"
                    .into(),
            ));
        }
    };
    let endpoint = match src.url("ROOKERY_REPLICA_S3_ENDPOINT")? {
        Some(url) => Some(url),
        None => src.url("PDS_BLOBSTORE_S3_ENDPOINT")?,
    };
    let force_path_style = match src.bool("ROOKERY_REPLICA_S3_FORCE_PATH_STYLE")? {
        Some(v) => v,
        None => src
            .bool("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE")?
            .unwrap_or(false),
    };
    let mut prefix = src
        .string("ROOKERY_REPLICA_S3_PREFIX")
        .unwrap_or_else(|| DEFAULT_REPLICA_PREFIX.to_owned());
    if prefix.starts_with('/') || prefix.contains("//") {
        return Err(src.invalid(
            "ROOKERY_REPLICA_S3_PREFIX",
            "must not start with '/' nor contain '//'",
        ));
    }
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    let interval = src
        .int::<u64>("ROOKERY_REPLICA_INTERVAL_MS", "a number of milliseconds")?
        .map_or(DEFAULT_REPLICA_INTERVAL, Duration::from_millis);
    if interval < Duration::from_millis(50) || interval > Duration::from_secs(60) {
        return Err(src.invalid(
            "ROOKERY_REPLICA_INTERVAL_MS",
            "must be from 50 to 60000 milliseconds",
        ));
    }
    let strict_timeout = src
        .int::<u64>(
            "ROOKERY_REPLICA_STRICT_TIMEOUT_MS",
            "a number of milliseconds",
        )?
        .map_or(DEFAULT_STRICT_TIMEOUT, Duration::from_millis);
    let retention = src
        .int::<u64>("ROOKERY_REPLICA_RETENTION_HOURS", "a number of hours")?
        .map_or(DEFAULT_RETENTION, |h| Duration::from_secs(h * 3600));
    let compact_segments = src
        .int::<u64>("ROOKERY_REPLICA_COMPACT_SEGMENTS", "a number of segments")?
        .unwrap_or(DEFAULT_COMPACT_SEGMENTS);
    if compact_segments < 2 {
        return Err(src.invalid("ROOKERY_REPLICA_COMPACT_SEGMENTS", "must be at least 2"));
    }
    Ok(Some(ReplicaConfig {
        s3: S3Config {
            bucket,
            region: setting(src, "ROOKERY_REPLICA_S3_REGION", "PDS_BLOBSTORE_S3_REGION"),
            endpoint,
            force_path_style,
            credentials,
        },
        prefix,
        interval,
        strict: src.bool("ROOKERY_REPLICA_STRICT")?.unwrap_or(false),
        strict_timeout,
        retention,
        compact_segments,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn off_unless_a_bucket_is_named() {
        assert_eq!(Config::from_sources(env(&[]), None).unwrap().replica, None);
    }

    #[test]
    fn falls_back_to_the_blob_store_settings() {
        let config = Config::from_sources(
            env(&[
                ("ROOKERY_REPLICA_S3_BUCKET", "replicas"),
                ("ROOKERY_REPLICA_S3_PREFIX", "pds1"),
                ("PDS_BLOBSTORE_S3_BUCKET", "blobs"),
                ("PDS_BLOBSTORE_S3_ENDPOINT", "http://127.0.0.1:9000"),
                ("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE", "true"),
                ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "id"),
                ("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY", "secret"),
                ("ROOKERY_REPLICA_STRICT", "true"),
            ]),
            None,
        )
        .unwrap();
        let replica = config.replica.unwrap();
        assert_eq!(replica.s3.bucket, "replicas");
        assert_eq!(replica.prefix, "pds1/");
        assert_eq!(
            replica.s3.endpoint.unwrap().as_str(),
            "http://127.0.0.1:9000/"
        );
        assert!(replica.s3.force_path_style);
        assert_eq!(replica.s3.credentials.unwrap().access_key_id, "id");
        assert!(replica.strict);
        assert_eq!(replica.interval, DEFAULT_REPLICA_INTERVAL);
    }

    #[test]
    fn rejects_bad_values() {
        for pairs in [
            vec![
                ("ROOKERY_REPLICA_S3_BUCKET", "b"),
                ("ROOKERY_REPLICA_INTERVAL_MS", "10"),
            ],
            vec![
                ("ROOKERY_REPLICA_S3_BUCKET", "b"),
                ("ROOKERY_REPLICA_S3_PREFIX", "/abs"),
            ],
            vec![
                ("ROOKERY_REPLICA_S3_BUCKET", "b"),
                ("ROOKERY_REPLICA_S3_ACCESS_KEY_ID", "only-id"),
            ],
        ] {
            assert!(
                Config::from_sources(env(&pairs), None).is_err(),
                "{pairs:?}"
            );
        }
    }
}
