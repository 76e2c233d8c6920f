use super::*;

const KEY_HEX: &str = "44e6ab94ce98b0966e849dd62cba8428d49e765616ada0ea85770c794dd71940";

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn from_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_sources(env(pairs), None)
}

fn url(s: &str) -> url::Url {
    url::Url::parse(s).unwrap()
}

/// Parses `KEY=VALUE` lines as docker's `env_file` does: no quotes, `#` comments.
fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn defaults_without_any_configuration() {
    let config = from_env(&[]).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.hostname, "localhost");
    assert_eq!(config.port, 2583);
    assert_eq!(config.bind_address.to_string(), "0.0.0.0");
    assert_eq!(config.public_url, "http://localhost:2583");
    assert_eq!(config.service_did, "did:web:localhost");
    assert_eq!(config.version, env!("CARGO_PKG_VERSION"));
    assert!(!config.dev_mode);
    // Sign-up is open on the local development defaults (no admin exists to issue codes)...
    assert!(!config.invite_required);
    assert!(!config.rate_limits_enabled);
    assert_eq!(config.service_handle_domains, [".test"]);
    assert_eq!(config.data_directory, PathBuf::from("./data"));
    assert_eq!(
        config.blobstore,
        BlobstoreConfig::Disk {
            location: PathBuf::from("./data/blocks"),
            tmp_location: PathBuf::from("./data/tmp"),
        }
    );
    assert_eq!(config.blob_upload_limit, 104_857_600);
    assert_eq!(config.blob_grace_period, Duration::from_secs(6 * 60 * 60));
    assert_eq!(config.actor_store_cache_size, 32);
    assert_eq!(config.blocking_threads, 8);
    // Offline by default on localhost: the embedded directory, mounted on this server.
    assert_eq!(config.did_plc_url, None);
    assert_eq!(
        config.embedded_plc_url().as_deref(),
        Some("http://localhost:2583/plc")
    );
    assert_eq!(config.jwt_secret, None);
    assert_eq!(config.admin_password, None);
    assert_eq!(config.plc_rotation_key, None);
    assert_eq!(config.bsky_app_view, None);
    assert_eq!(config.report_service, None);
    assert!(config.crawlers.is_empty());
    assert_eq!(
        config.repo_backfill_limit,
        Duration::from_millis(86_400_000)
    );
    assert_eq!(config.max_subscription_buffer, 500);
    assert_eq!(config.firehose_ping_interval, Duration::from_secs(30));
    assert_eq!(config.email, None);
    assert!(config.hub_moderators.is_empty());
    assert!(config.hub_rate_limits);
    assert!(config.log_enabled);
    assert_eq!(config.log_level, "info");
    assert_eq!(config.log_filter().as_deref(), Some("info"));
    assert!(config.warnings.is_empty());
}

#[test]
fn every_variable_is_read() {
    let config = from_env(&[
        ("PDS_HOSTNAME", "PDS.Example.com"),
        ("PDS_PORT", "3000"),
        ("ROOKERY_BIND_ADDRESS", "::1"),
        ("PDS_SERVICE_DID", "did:plc:ewvi7nxzyoun6zhxrhs64oiz"),
        ("PDS_VERSION", "9.9.9"),
        ("PDS_DEV_MODE", "true"),
        ("PDS_INVITE_REQUIRED", "false"),
        ("PDS_RATE_LIMITS_ENABLED", "1"),
        ("PDS_SERVICE_HANDLE_DOMAINS", ".example.com, .Other.example"),
        ("PDS_DATA_DIRECTORY", "/srv/pds"),
        ("PDS_BLOBSTORE_DISK_LOCATION", "/srv/blobs"),
        ("PDS_BLOBSTORE_DISK_TMP_LOCATION", "/srv/blobs-tmp"),
        ("PDS_BLOB_UPLOAD_LIMIT", "104857600"),
        ("ROOKERY_BLOB_GRACE_PERIOD_MS", "600000"),
        ("ROOKERY_ACTOR_STORE_CACHE_SIZE", "250"),
        ("ROOKERY_BLOCKING_THREADS", "32"),
        ("PDS_DID_PLC_URL", "http://127.0.0.1:2582"),
        ("PDS_JWT_SECRET", "f475b5267b5e71b0d6973e8895c24bd8"),
        ("PDS_ADMIN_PASSWORD", "ffb5d23d1449cec05914c491caee8863"),
        ("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", KEY_HEX),
        ("PDS_BSKY_APP_VIEW_URL", "https://api.bsky.app"),
        ("PDS_BSKY_APP_VIEW_DID", "did:web:api.bsky.app"),
        ("PDS_REPORT_SERVICE_URL", "https://mod.bsky.app"),
        ("PDS_REPORT_SERVICE_DID", "did:plc:ar7c4by46qjdydhdevvrndac"),
        (
            "PDS_CRAWLERS",
            "https://bsky.network,https://relay.example.net",
        ),
        ("PDS_REPO_BACKFILL_LIMIT_MS", "3600000"),
        ("PDS_MAX_SUBSCRIPTION_BUFFER", "64"),
        ("ROOKERY_FIREHOSE_PING_INTERVAL_MS", "1500"),
        (
            "PDS_EMAIL_SMTP_URL",
            "smtps://user:pass@mail.example.com:465",
        ),
        ("PDS_EMAIL_FROM_ADDRESS", "noreply@example.com"),
        (
            "ROOKERY_HUB_MODERATORS",
            "did:plc:aaaa, did:web:mod.example.com, Mod.Example.COM",
        ),
        ("ROOKERY_HUB_RATE_LIMITS", "false"),
        ("LOG_ENABLED", "true"),
        ("LOG_LEVEL", "debug"),
    ])
    .unwrap();
    assert_eq!(config.hostname, "pds.example.com");
    assert_eq!(config.port, 3000);
    assert_eq!(config.bind_address.to_string(), "::1");
    assert_eq!(config.public_url, "https://pds.example.com");
    assert_eq!(config.service_did, "did:plc:ewvi7nxzyoun6zhxrhs64oiz");
    assert_eq!(config.version, "9.9.9");
    assert!(config.dev_mode);
    assert!(!config.invite_required);
    assert!(config.rate_limits_enabled);
    assert!(!config.hub_rate_limits);
    assert_eq!(
        config.service_handle_domains,
        [".example.com", ".other.example"]
    );
    assert_eq!(config.data_directory, PathBuf::from("/srv/pds"));
    assert_eq!(
        config.blobstore,
        BlobstoreConfig::Disk {
            location: PathBuf::from("/srv/blobs"),
            tmp_location: PathBuf::from("/srv/blobs-tmp"),
        }
    );
    assert_eq!(config.blob_upload_limit, 104_857_600);
    assert_eq!(config.blob_grace_period, Duration::from_secs(600));
    assert_eq!(config.actor_store_cache_size, 250);
    assert_eq!(config.blocking_threads, 32);
    assert_eq!(config.max_subscription_buffer, 64);
    assert_eq!(config.firehose_ping_interval, Duration::from_millis(1500));
    assert_eq!(config.did_plc_url, Some(url("http://127.0.0.1:2582")));
    assert_eq!(
        config.jwt_secret.as_ref().map(Secret::expose),
        Some("f475b5267b5e71b0d6973e8895c24bd8")
    );
    assert_eq!(
        config.admin_password.as_ref().map(Secret::expose),
        Some("ffb5d23d1449cec05914c491caee8863")
    );
    assert_eq!(
        config
            .plc_rotation_key
            .as_ref()
            .map(|k| hex::encode(k.expose())),
        Some(KEY_HEX.to_owned())
    );
    assert_eq!(
        config.bsky_app_view,
        Some(ServiceEndpoint {
            url: url("https://api.bsky.app"),
            did: "did:web:api.bsky.app".into()
        })
    );
    assert_eq!(
        config.report_service,
        Some(ServiceEndpoint {
            url: url("https://mod.bsky.app"),
            did: "did:plc:ar7c4by46qjdydhdevvrndac".into()
        })
    );
    assert_eq!(
        config.crawlers,
        [
            url("https://bsky.network"),
            url("https://relay.example.net")
        ]
    );
    assert_eq!(config.repo_backfill_limit, Duration::from_secs(3600));
    assert_eq!(
        config.email,
        Some(EmailConfig {
            smtp_url: Secret::new("smtps://user:pass@mail.example.com:465"),
            from_address: "noreply@example.com".into()
        })
    );
    assert_eq!(
        config.hub_moderators,
        ["did:plc:aaaa", "did:web:mod.example.com", "mod.example.com"]
    );
    assert!(config.log_enabled);
    assert_eq!(config.log_filter().as_deref(), Some("debug"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn s3_blobstore() {
    let config = from_env(&[
        ("PDS_BLOBSTORE_S3_BUCKET", "pds-blobs"),
        ("PDS_BLOBSTORE_S3_REGION", "auto"),
        (
            "PDS_BLOBSTORE_S3_ENDPOINT",
            "https://acct.r2.cloudflarestorage.com",
        ),
        ("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE", "true"),
        ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "AKID"),
        ("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY", "s3cr3t"),
    ])
    .unwrap();
    assert_eq!(
        config.blobstore,
        BlobstoreConfig::S3(S3Config {
            bucket: "pds-blobs".into(),
            region: Some("auto".into()),
            endpoint: Some(url("https://acct.r2.cloudflarestorage.com")),
            force_path_style: true,
            credentials: Some(S3Credentials {
                access_key_id: "AKID".into(),
                secret_access_key: Secret::new("s3cr3t"),
            }),
        })
    );
    let minimal = from_env(&[("PDS_BLOBSTORE_S3_BUCKET", "b")]).unwrap();
    assert_eq!(
        minimal.blobstore,
        BlobstoreConfig::S3(S3Config {
            bucket: "b".into(),
            region: None,
            endpoint: None,
            force_path_style: false,
            credentials: None,
        })
    );
}

#[test]
fn malformed_values_name_the_variable() {
    let cases: &[(&str, &str)] = &[
        ("PDS_PORT", "abc"),
        ("PDS_PORT", "65536"),
        ("PDS_PORT", "-1"),
        ("PDS_HOSTNAME", "https://pds.example.com"),
        ("PDS_HOSTNAME", "pds.example.com:443"),
        ("PDS_HOSTNAME", "pds..example.com"),
        ("ROOKERY_BIND_ADDRESS", "localhost"),
        ("PDS_SERVICE_DID", "web:example.com"),
        ("PDS_DEV_MODE", "maybe"),
        ("PDS_INVITE_REQUIRED", "yes"),
        ("PDS_RATE_LIMITS_ENABLED", "on"),
        ("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE", "2"),
        ("LOG_ENABLED", "enabled"),
        ("PDS_SERVICE_HANDLE_DOMAINS", "example.com"),
        ("PDS_BLOB_UPLOAD_LIMIT", "5mb"),
        ("PDS_BLOB_UPLOAD_LIMIT", "0"),
        ("ROOKERY_BLOB_GRACE_PERIOD_MS", "59999"),
        ("ROOKERY_BLOB_GRACE_PERIOD_MS", "6h"),
        ("ROOKERY_ACTOR_STORE_CACHE_SIZE", "0"),
        ("ROOKERY_ACTOR_STORE_CACHE_SIZE", "lots"),
        ("ROOKERY_BLOCKING_THREADS", "0"),
        ("PDS_DID_PLC_URL", "plc.directory"),
        ("PDS_DID_PLC_URL", "ftp://plc.directory"),
        ("PDS_CRAWLERS", "https://bsky.network,not a url"),
        ("PDS_REPO_BACKFILL_LIMIT_MS", "1.5"),
        ("PDS_MAX_SUBSCRIPTION_BUFFER", "0"),
        ("PDS_MAX_SUBSCRIPTION_BUFFER", "-5"),
        ("ROOKERY_FIREHOSE_PING_INTERVAL_MS", "0"),
        ("ROOKERY_HUB_MODERATORS", "did:plc:ok,not a handle"),
        ("ROOKERY_HUB_MODERATORS", "did:plc:ok,did:"),
        ("LOG_LEVEL", "verbose"),
        ("LOG_LEVEL", "rookery=loud"),
    ];
    for (var, value) in cases {
        let mut pairs = vec![(*var, *value)];
        if var.starts_with("PDS_BLOBSTORE_S3_") {
            pairs.push(("PDS_BLOBSTORE_S3_BUCKET", "b"));
        }
        let err = from_env(&pairs).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, ConfigError::InvalidValue { name, .. } if name.env == *var),
            "{var}={value}: {err:?}"
        );
        assert!(text.contains(var), "{var}={value}: {text}");
        assert!(
            text.contains(&format!("{value:?}")),
            "{var}={value}: {text}"
        );
    }
    assert_eq!(
        from_env(&[("PDS_PORT", "abc")]).unwrap_err().to_string(),
        r#"invalid value "abc" for PDS_PORT: expected an integer from 0 to 65535"#
    );
    assert_eq!(
        from_env(&[("PDS_DEV_MODE", "maybe")])
            .unwrap_err()
            .to_string(),
        r#"invalid value "maybe" for PDS_DEV_MODE: expected true, false, 1 or 0"#
    );
}

#[test]
fn malformed_secrets_are_not_echoed() {
    let bad_keys = [
        "e049f",
        "zz6ab94ce98b0966e849dd62cba8428d49e765616ada0ea85770c794dd71940",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
    ];
    for value in bad_keys {
        let err = from_env(&[("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", value)]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("invalid value for PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: "),
            "{text}"
        );
        assert!(!text.contains(value), "{text}");
    }
    let err = from_env(&[
        ("PDS_EMAIL_SMTP_URL", "smtp//user:hunter2@mail"),
        ("PDS_EMAIL_FROM_ADDRESS", "noreply@example.com"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("PDS_EMAIL_SMTP_URL"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn incomplete_or_conflicting_groups_are_errors() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("PDS_BLOBSTORE_S3_BUCKET", "b"),
                ("PDS_BLOBSTORE_DISK_LOCATION", "/b"),
            ],
            "PDS_BLOBSTORE_S3_BUCKET and PDS_BLOBSTORE_DISK_LOCATION are both set; choose one blob store",
        ),
        (
            &[
                ("PDS_BLOBSTORE_S3_BUCKET", "b"),
                ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "k"),
            ],
            "PDS_BLOBSTORE_S3_ACCESS_KEY_ID and PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY must be set together",
        ),
        (
            &[("PDS_BSKY_APP_VIEW_URL", "https://api.bsky.app")],
            "PDS_BSKY_APP_VIEW_URL is set but PDS_BSKY_APP_VIEW_DID is not; both are needed",
        ),
        (
            &[("PDS_REPORT_SERVICE_URL", "https://mod.bsky.app")],
            "PDS_REPORT_SERVICE_URL is set but PDS_REPORT_SERVICE_DID is not; both are needed",
        ),
        (
            &[("PDS_EMAIL_FROM_ADDRESS", "noreply@example.com")],
            "PDS_EMAIL_SMTP_URL and PDS_EMAIL_FROM_ADDRESS must be set together",
        ),
        (
            &[("PDS_MODERATION_EMAIL_SMTP_URL", "smtp://mail.example.com")],
            "PDS_MODERATION_EMAIL_SMTP_URL and PDS_MODERATION_EMAIL_ADDRESS must be set together",
        ),
    ];
    for (pairs, message) in cases {
        assert_eq!(from_env(pairs).unwrap_err().to_string(), *message);
    }
}

#[test]
fn empty_values_count_as_unset() {
    let config = from_env(&[
        ("PDS_PORT", ""),
        ("PDS_HOSTNAME", ""),
        ("PDS_DEV_MODE", ""),
        ("PDS_CRAWLERS", ""),
        ("PDS_JWT_SECRET", ""),
        ("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", ""),
    ])
    .unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn public_url_follows_the_reference() {
    let local = from_env(&[("PDS_PORT", "8080")]).unwrap();
    assert_eq!(local.public_url, "http://localhost:8080");
    let remote = from_env(&[("PDS_HOSTNAME", "pds.example.com"), ("PDS_PORT", "8080")]).unwrap();
    assert_eq!(remote.public_url, "https://pds.example.com");
    assert_eq!(remote.service_did, "did:web:pds.example.com");
    assert_eq!(remote.service_handle_domains, [".pds.example.com"]);
}

/// The `pds.env` written by the reference self-host installer (bluesky-social/pds
/// `installer.sh`), with placeholder secrets.
const INSTALLER_PDS_ENV: &str = "\
PDS_HOSTNAME=pds.example.com
PDS_JWT_SECRET=9b4fd3c1e7a2f5d806c3b1a9e4d7f2c5
PDS_ADMIN_PASSWORD=0c5d8e1f2a3b4c5d6e7f8091a2b3c4d5
PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX=44e6ab94ce98b0966e849dd62cba8428d49e765616ada0ea85770c794dd71940
PDS_DATA_DIRECTORY=/pds
PDS_BLOBSTORE_DISK_LOCATION=/pds/blocks
PDS_BLOB_UPLOAD_LIMIT=104857600
PDS_DID_PLC_URL=https://plc.directory
PDS_BSKY_APP_VIEW_URL=https://api.bsky.app
PDS_BSKY_APP_VIEW_DID=did:web:api.bsky.app
PDS_REPORT_SERVICE_URL=https://mod.bsky.app
PDS_REPORT_SERVICE_DID=did:plc:ar7c4by46qjdydhdevvrndac
PDS_CRAWLERS=https://bsky.network
LOG_ENABLED=true
PDS_RATE_LIMITS_ENABLED=true
";

#[test]
fn reference_installer_pds_env_parses() {
    let config = Config::from_sources(parse_env_file(INSTALLER_PDS_ENV), None).unwrap();
    assert_eq!(config.hostname, "pds.example.com");
    assert_eq!(config.port, 2583);
    assert_eq!(config.public_url, "https://pds.example.com");
    assert_eq!(config.service_did, "did:web:pds.example.com");
    assert_eq!(config.service_handle_domains, [".pds.example.com"]);
    assert_eq!(config.data_directory, PathBuf::from("/pds"));
    assert_eq!(
        config.blobstore,
        BlobstoreConfig::Disk {
            location: PathBuf::from("/pds/blocks"),
            tmp_location: PathBuf::from("/pds/tmp"),
        }
    );
    assert_eq!(config.blob_upload_limit, 104_857_600);
    // A real hostname uses the public directory.
    assert_eq!(
        config.did_plc_url.as_ref().map(url::Url::as_str),
        Some("https://plc.directory/")
    );
    assert_eq!(config.embedded_plc_url(), None);
    assert_eq!(
        config.bsky_app_view.as_ref().map(|e| e.did.as_str()),
        Some("did:web:api.bsky.app")
    );
    assert_eq!(
        config.report_service.as_ref().map(|e| e.url.as_str()),
        Some("https://mod.bsky.app/")
    );
    assert_eq!(config.crawlers, [url("https://bsky.network")]);
    assert!(config.rate_limits_enabled);
    assert!(config.invite_required);
    assert!(config.jwt_secret.is_some());
    assert!(config.admin_password.is_some());
    assert!(config.plc_rotation_key.is_some());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

/// The older sample `pds.env` of the self-host repository, which also sets variables
/// Rookery does not use (the contact address, the service name) and one nobody reads (a
/// typo).
const SAMPLE_PDS_ENV: &str = "\
# Taken from a self-host guide
PDS_HOSTNAME=pds.example.com

# 5*1024*1024 (5mb)
PDS_BLOB_UPLOAD_LIMIT=5242880
PDS_ADMIN_PASSWORD=ffb5d23d1449cec05914c491caee8863
PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX=44e6ab94ce98b0966e849dd62cba8428d49e765616ada0ea85770c794dd71940
PDS_JWT_SECRET=f475b5267b5e71b0d6973e8895c24bd8

PDS_INVITE_REQUIRED=true
PDS_EMAIL_SMTP_URL=smtp://username@gmail.com:password@smtp.gmail.com:587
PDS_EMAIL_FROM_ADDRESS=noreply@pds.example.com
PDS_MODERATION_EMAIL_SMTP_URL=smtp://username@gmail.com:password@smtp.gmail.com:587
PDS_MODERATION_EMAIL_ADDRESS=moderation@pds.example.com
PDS_CONTACT_EMAIL_ADDRESS=admin@pds.example.com
PDS_SERVICE_NAME=Example PDS
PDS_DATA_DIRECTORY=/pds
PDS_BLOBSTORE_DISK_LOCATION=/pds/blocks
PDS_DID_PLC_URL=https://plc.directory
PDS_BSKY_APP_VIEW_URL=https://api.bsky.app
PDS_BSKY_APP_VIEW_DID=did:web:api.bsky.app
PDS_CRAWLERS=https://bsky.network
PDS_CRAWLER=https://bsky.network
LOG_ENABLED=true
";

#[test]
fn unused_and_unknown_variables_only_warn() {
    let mut pairs = parse_env_file(SAMPLE_PDS_ENV);
    // Unrelated process variables are not ours to judge.
    pairs.push(("HOME".into(), "/root".into()));
    pairs.push(("NODE_ENV".into(), "production".into()));
    let config = Config::from_sources(pairs, None).unwrap();
    assert_eq!(
        config.email.as_ref().map(|e| e.from_address.as_str()),
        Some("noreply@pds.example.com")
    );
    assert_eq!(
        config
            .moderation_email
            .as_ref()
            .map(|e| e.from_address.as_str()),
        Some("moderation@pds.example.com")
    );
    assert_eq!(
        config.warnings,
        [
            ConfigWarning::UnknownVariable("PDS_CRAWLER".into()),
            ConfigWarning::UnusedReferenceVariable("PDS_CONTACT_EMAIL_ADDRESS".into()),
            ConfigWarning::UnusedReferenceVariable("PDS_SERVICE_NAME".into()),
        ]
    );
    assert_eq!(
        config.warnings[0].to_string(),
        "unknown setting PDS_CRAWLER ignored (typo?)"
    );
    let typo = from_env(&[("ROOKERY_ACTOR_STORE_CACHE", "5")]).unwrap();
    assert_eq!(
        typo.warnings,
        [ConfigWarning::UnknownVariable(
            "ROOKERY_ACTOR_STORE_CACHE".into()
        )]
    );
}

#[test]
fn file_values_and_env_precedence() {
    let file = r#"
hostname = "file.example.com"
port = 1234
dev_mode = true
service_handle_domains = [".file.example.com", ".alt.example"]
crawlers = "https://bsky.network"
actor_store_cache_size = 64
log_level = "rookery=debug,warn"
"#;
    let config = Config::from_sources(env(&[("PDS_PORT", "4321")]), Some(file)).unwrap();
    assert_eq!(config.hostname, "file.example.com");
    assert_eq!(config.port, 4321);
    assert_eq!(config.public_url, "https://file.example.com");
    assert!(config.dev_mode);
    assert_eq!(
        config.service_handle_domains,
        [".file.example.com", ".alt.example"]
    );
    assert_eq!(config.crawlers, [url("https://bsky.network")]);
    assert_eq!(config.actor_store_cache_size, 64);
    assert_eq!(config.log_filter().as_deref(), Some("rookery=debug,warn"));

    // An environment value, even one that only restates the default, wins over the file.
    let config = Config::from_sources(env(&[("PDS_DEV_MODE", "false")]), Some(file)).unwrap();
    assert!(!config.dev_mode);
}

#[test]
fn file_errors_name_the_key() {
    let err = Config::from_sources(Vec::new(), Some("port = \"abc\"")).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid value "abc" for `port` (PDS_PORT) in the configuration file: expected an integer from 0 to 65535"#
    );
    let err = Config::from_sources(Vec::new(), Some("prot = 80")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown key `prot` in the configuration file"
    );
    let err = Config::from_sources(Vec::new(), Some("port = 1.5")).unwrap_err();
    assert!(err.to_string().contains("`port` (PDS_PORT)"), "{err}");
    let err = Config::from_sources(Vec::new(), Some("port = ")).unwrap_err();
    assert!(matches!(err, ConfigError::FileSyntax(_)), "{err:?}");
    // An environment value replaces a bad file value before it is parsed.
    let ok = Config::from_sources(env(&[("PDS_PORT", "80")]), Some("port = \"abc\"")).unwrap();
    assert_eq!(ok.port, 80);
}

#[test]
fn file_keys_are_unique_and_derived_from_env_names() {
    let mut keys: Vec<String> = sources::SETTINGS.iter().map(|s| s.file_key()).collect();
    assert!(keys.contains(&"port".to_owned()));
    assert!(keys.contains(&"actor_store_cache_size".to_owned()));
    assert!(keys.contains(&"log_level".to_owned()));
    assert!(keys.contains(&"plc_rotation_key_k256_private_key_hex".to_owned()));
    let count = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), count);
    for name in sources::REFERENCE_ONLY {
        assert!(
            !sources::SETTINGS.iter().any(|s| s.env == *name),
            "{name} is both used and ignored"
        );
    }
}

#[test]
fn log_filter_mapping() {
    let cases = [
        (&[][..], Some("info")),
        (&[("LOG_LEVEL", "fatal")][..], Some("error")),
        (&[("LOG_LEVEL", "WARN")][..], Some("warn")),
        (&[("LOG_LEVEL", "silent")][..], None),
        (
            &[("LOG_ENABLED", "false"), ("LOG_LEVEL", "debug")][..],
            None,
        ),
        (
            &[("LOG_LEVEL", "tower_http=trace,info")][..],
            Some("tower_http=trace,info"),
        ),
    ];
    for (pairs, expected) in cases {
        assert_eq!(
            from_env(pairs).unwrap().log_filter().as_deref(),
            expected,
            "{pairs:?}"
        );
    }
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let config = from_env(&[
        ("PDS_JWT_SECRET", "jwt-very-secret"),
        ("PDS_ADMIN_PASSWORD", "admin-very-secret"),
        ("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", KEY_HEX),
        (
            "PDS_EMAIL_SMTP_URL",
            "smtps://u:mail-very-secret@mail.example.com",
        ),
        ("PDS_EMAIL_FROM_ADDRESS", "a@example.com"),
    ])
    .unwrap();
    let debug = format!("{config:?}");
    for secret in [
        "jwt-very-secret",
        "admin-very-secret",
        KEY_HEX,
        "mail-very-secret",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked");
    }
}

#[test]
fn invites_are_required_on_a_real_hostname_unless_opened() {
    let parse = |vars: &[(&str, &str)]| {
        Config::from_sources(
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            None,
        )
        .unwrap()
    };
    // ...and required by default anywhere else, as the reference.
    assert!(parse(&[("PDS_HOSTNAME", "pds.example.com")]).invite_required);
    assert!(
        !parse(&[
            ("PDS_HOSTNAME", "pds.example.com"),
            ("PDS_INVITE_REQUIRED", "false")
        ])
        .invite_required
    );
    assert!(parse(&[("PDS_INVITE_REQUIRED", "true")]).invite_required);
}

#[test]
fn operator_settings() {
    // Rate limits: on for a real hostname, off in development.
    let config = from_env(&[("PDS_HOSTNAME", "pds.example.com")]).unwrap();
    assert!(config.rate_limits_enabled);
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.rate_limits, RateLimitPolicy::default());
    assert_eq!(config.rate_limits.global_ip[0].points, 3000);
    assert_eq!(config.rate_limits.repo_write[1].points, 35_000);
    assert!(!config.is_development());
    let dev = from_env(&[
        ("PDS_HOSTNAME", "pds.example.com"),
        ("PDS_DEV_MODE", "true"),
    ])
    .unwrap();
    assert!(!dev.rate_limits_enabled);
    assert!(dev.is_development());
    assert!(!from_env(&[]).unwrap().rate_limits_enabled);
    assert!(
        from_env(&[("PDS_RATE_LIMITS_ENABLED", "true")])
            .unwrap()
            .rate_limits_enabled
    );

    let config = from_env(&[
        ("ROOKERY_LOG_FORMAT", "JSON"),
        ("PDS_RATE_LIMIT_BYPASS_KEY", "k"),
        (
            "PDS_RATE_LIMIT_BYPASS_IPS",
            "10.0.0.0/8, 192.0.2.1,2001:db8::/32",
        ),
        ("ROOKERY_TRUSTED_PROXY_HEADER", "X-Forwarded-For"),
        ("ROOKERY_METRICS_ADDR", "127.0.0.1:9090"),
    ])
    .unwrap();
    assert_eq!(config.log_format, LogFormat::Json);
    assert_eq!(
        config.rate_limit_bypass_key.as_ref().map(Secret::expose),
        Some("k")
    );
    let ips = &config.rate_limit_bypass_ips;
    assert_eq!(ips.len(), 3);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(ips[0].contains(ip("10.200.3.4")));
    assert!(ips[0].contains(ip("::ffff:10.0.0.1")));
    assert!(!ips[0].contains(ip("11.0.0.1")));
    assert!(ips[1].contains(ip("192.0.2.1")));
    assert!(!ips[1].contains(ip("192.0.2.2")));
    assert!(ips[2].contains(ip("2001:db8:1::5")));
    assert!(!ips[2].contains(ip("2001:db9::1")));
    assert_eq!(
        config.trusted_proxy_header.as_deref(),
        Some("x-forwarded-for")
    );
    assert_eq!(config.metrics_addr, Some("127.0.0.1:9090".parse().unwrap()));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    for (name, value) in [
        ("ROOKERY_LOG_FORMAT", "xml"),
        ("PDS_RATE_LIMIT_BYPASS_IPS", "10.0.0.0/33"),
        ("PDS_RATE_LIMIT_BYPASS_IPS", "example.com"),
        ("ROOKERY_TRUSTED_PROXY_HEADER", "bad header"),
        ("ROOKERY_METRICS_ADDR", "9090"),
    ] {
        let err = from_env(&[(name, value)]).unwrap_err();
        assert!(err.to_string().contains(name), "{name}={value}: {err}");
    }
}

#[test]
fn plc_directory_default_follows_the_hostname() {
    // localhost: the embedded directory, under the public URL (port included).
    let config = from_env(&[("PDS_PORT", "3000")]).unwrap();
    assert_eq!(config.did_plc_url, None);
    assert_eq!(
        config.embedded_plc_url().as_deref(),
        Some("http://localhost:3000/plc")
    );
    // A real hostname: the public directory, unless configured.
    let config = from_env(&[("PDS_HOSTNAME", "pds.example.com")]).unwrap();
    assert_eq!(
        config.did_plc_url.as_ref().map(url::Url::as_str),
        Some("https://plc.directory/")
    );
    // An explicit URL wins on localhost too.
    let config = from_env(&[("PDS_DID_PLC_URL", "http://127.0.0.1:2582")]).unwrap();
    assert_eq!(config.did_plc_url, Some(url("http://127.0.0.1:2582")));
    assert_eq!(config.embedded_plc_url(), None);
    // --port / the bound port move the public URL and the directory with it.
    let mut config = Config::default();
    config.set_port(4100);
    assert_eq!(config.public_url, "http://localhost:4100");
    assert_eq!(
        config.embedded_plc_url().as_deref(),
        Some("http://localhost:4100/plc")
    );
}
