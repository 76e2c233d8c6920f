//! A real S3-compatible server (moto's S3 service) as a child process on 127.0.0.1.
//!
//! `scripts/s3-deps.sh` installs it on first use into `<cache>/s3` (the cache is
//! `$ROOKERY_TEST_CACHE` or `$HOME/.cache/rookery-test`) and prints
//! `ROOKERY_S3_PYTHON=…`; `tests/s3/moto-server.py` binds a free port, prints its URL once
//! listening, and exits when its stdin closes. A server that cannot start is a test
//! failure, never a skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rookery::config::{S3Config, S3Credentials, Secret};
use rookery::s3::Client;

use super::process::ChildServer;

/// The only keys the server accepts (tests/s3/moto-server.py checks every signature).
const ACCESS_KEY: &str = "rookery-test";
const SECRET_KEY: &str = "rookery-test-secret";
const REGION: &str = "us-east-1";

/// A running server; killed (and reaped) on drop.
pub struct S3Server(ChildServer);

/// The test binary's one server, see [`S3Server::shared`].
static SHARED: OnceLock<S3Server> = OnceLock::new();

/// Numbers the buckets of [`S3Server::new_bucket`].
static BUCKETS: AtomicUsize = AtomicUsize::new(0);

impl S3Server {
    /// The server shared by every test of this binary, started by the first test that asks;
    /// tests keep apart by each using buckets of its own ([`S3Server::new_bucket`]). Like the
    /// shared PLC directory, it exits when this process ends and closes its stdin.
    pub fn shared() -> &'static S3Server {
        SHARED.get_or_init(S3Server::start)
    }

    /// Creates a bucket no other test of this process uses: `{prefix}-{n}`.
    pub async fn new_bucket(&self, prefix: &str) -> String {
        let bucket = format!("{prefix}-{}", BUCKETS.fetch_add(1, Ordering::Relaxed));
        self.create_bucket(&bucket).await;
        bucket
    }

    /// Installs (first time only) and starts the server; panics if it cannot. Prints the
    /// install check and start-up times to stderr.
    pub fn start() -> S3Server {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let begin = Instant::now();
        let python = python_binary(repo);
        let installed = begin.elapsed();
        let begin = Instant::now();
        let script = repo.join("tests/s3/moto-server.py");
        let server = ChildServer::start("S3 server", &python, &script, repo, "S3_URL");
        eprintln!(
            "s3 test server: deps check {:.2}s, start {:.2}s, {}",
            installed.as_secs_f64(),
            begin.elapsed().as_secs_f64(),
            server.url
        );
        S3Server(server)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.0.url
    }

    /// Rookery's configuration for `bucket` on this server (path-style, static keys).
    pub fn config(&self, bucket: &str) -> S3Config {
        S3Config {
            bucket: bucket.to_owned(),
            region: Some(REGION.to_owned()),
            endpoint: Some(url::Url::parse(&self.0.url).expect("server URL")),
            force_path_style: true,
            credentials: Some(S3Credentials {
                access_key_id: ACCESS_KEY.to_owned(),
                secret_access_key: Secret::new(SECRET_KEY),
            }),
        }
    }

    /// A plain client (rookery's own) for inspecting the server.
    pub fn client(&self) -> Client {
        Client::new(&self.config("unused"))
    }

    /// Creates a bucket (the server starts empty).
    pub async fn create_bucket(&self, bucket: &str) {
        self.client()
            .create_bucket(bucket)
            .await
            .unwrap_or_else(|e| panic!("cannot create bucket {bucket}: {e}"));
    }

    /// Every object key in `bucket`, and every multipart upload still open, sorted.
    pub async fn inventory(&self, bucket: &str) -> Vec<String> {
        let client = self.client();
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let page = client
                .list_objects_v2(bucket, "", token.as_deref())
                .await
                .expect("ListObjectsV2");
            found.extend(page.objects.into_iter().map(|o| o.key));
            token = page.next;
            if token.is_none() {
                break;
            }
        }
        let uploads = client
            .list_multipart_uploads(bucket, "", None, None)
            .await
            .expect("ListMultipartUploads");
        found.extend(
            uploads
                .uploads
                .into_iter()
                .map(|(key, _)| format!("multipart:{key}")),
        );
        found.sort();
        found
    }
}

/// `ROOKERY_S3_PYTHON` as printed by `scripts/s3-deps.sh` (a quick stamp check after the
/// first install): the virtualenv Python of the test tools.
pub fn python_binary(repo: &Path) -> PathBuf {
    let out = Command::new("bash")
        .arg(repo.join("scripts/s3-deps.sh"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run scripts/s3-deps.sh");
    assert!(
        out.status.success(),
        "scripts/s3-deps.sh failed: {}",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let python = text
        .lines()
        .find_map(|l| l.strip_prefix("ROOKERY_S3_PYTHON="))
        .unwrap_or_else(|| panic!("no ROOKERY_S3_PYTHON in {text:?}"));
    PathBuf::from(python)
}
