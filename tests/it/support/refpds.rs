//! The reference PDS (npm `@atproto/pds`, pinned by `tests/refpds/package-lock.json`) as a
//! real peer: one process per test, on loopback, with its own data directory, the given PLC
//! directory and SMTP server. Installed by `scripts/refpds-deps.sh` (run here if needed).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::free_port;
use super::plc::node_binary;
use super::process::ChildServer;
use super::smtp::SmtpServer;

/// A running reference PDS; stopped on drop.
pub struct RefPds {
    server: ChildServer,
    _dir: tempfile::TempDir,
    /// The admin password (`PDS_ADMIN_PASSWORD`).
    pub admin_password: String,
}

/// `ROOKERY_REFPDS` (the reference PDS's `node_modules`), installing it first if needed; the
/// cached Node must be installed already. The script returns at once when its stamp is current.
fn refpds_modules(repo: &Path) -> PathBuf {
    let output = Command::new("bash")
        .arg(repo.join("scripts/refpds-deps.sh"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run scripts/refpds-deps.sh");
    assert!(
        output.status.success(),
        "scripts/refpds-deps.sh failed: {}",
        output.status
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let dir = text
        .lines()
        .find_map(|l| l.strip_prefix("ROOKERY_REFPDS="))
        .unwrap_or_else(|| panic!("scripts/refpds-deps.sh printed {text:?}"));
    PathBuf::from(dir)
}

impl RefPds {
    /// Starts a reference PDS on `plc_url`, mailing through `smtp`, with handles under
    /// `.ref.test`, no invites and its rate limits off.
    pub fn start(plc_url: &str, smtp: &SmtpServer) -> RefPds {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let node = node_binary(repo);
        let modules = refpds_modules(repo);
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let rotation = rookery::crypto::Keypair::generate(rookery::crypto::Algorithm::K256);
        let admin_password = "ref-admin-pass".to_owned();
        let mut command = Command::new(node);
        command
            .arg(repo.join("tests/refpds/serve.mjs"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ROOKERY_REFPDS", &modules)
            .env("PDS_PORT", port.to_string())
            .env("PDS_HOSTNAME", "localhost")
            .env("PDS_DEV_MODE", "true")
            .env("PDS_DATA_DIRECTORY", dir.path())
            .env("PDS_BLOBSTORE_DISK_LOCATION", dir.path().join("blocks"))
            // Its fetch refuses IP-literal hosts, so the directory is named by host name.
            .env(
                "PDS_DID_PLC_URL",
                plc_url.replace("//127.0.0.1:", "//localhost:"),
            )
            .env("PDS_SERVICE_HANDLE_DOMAINS", ".ref.test")
            .env("PDS_INVITE_REQUIRED", "false")
            .env("PDS_RATE_LIMITS_ENABLED", "false")
            .env("PDS_JWT_SECRET", "ref-jwt-secret-for-tests-only")
            .env("PDS_ADMIN_PASSWORD", &admin_password)
            .env(
                "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
                hex::encode(rotation.to_private_bytes()),
            )
            .env("PDS_EMAIL_SMTP_URL", smtp.url())
            .env("PDS_EMAIL_FROM_ADDRESS", "noreply@ref.test")
            // It serves preferences itself only with an AppView configured; nothing in these
            // tests reaches it (the port is closed).
            .env(
                "PDS_BSKY_APP_VIEW_URL",
                format!("http://127.0.0.1:{}", free_port()),
            )
            .env("PDS_BSKY_APP_VIEW_DID", "did:web:appview.ref.test")
            .env("PDS_CRAWLERS", "")
            .env("PDS_ACCEPTING_REPO_IMPORTS", "true")
            .env("PDS_DISABLE_SSRF_PROTECTION", "true");
        let server = ChildServer::start_command("the reference PDS", command, "REFPDS_URL");
        RefPds {
            server,
            _dir: dir,
            admin_password,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.server.url
    }
}
