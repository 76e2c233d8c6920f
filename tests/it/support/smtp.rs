//! A real SMTP server (aiosmtpd) as a child process on 127.0.0.1, shared by the test binary.
//!
//! `scripts/smtp-deps.sh` installs it on first use into `<cache>/smtp` and prints
//! `ROOKERY_SMTP_PYTHON=…`; `tests/smtp/smtp-server.py` binds a free port, requires AUTH
//! with [`USER`]/[`PASSWORD`], prints `SMTP_URL=smtp://127.0.0.1:<port>`, then one line
//! `MAIL=<json>` per delivered message, and exits when its stdin closes. A server that
//! cannot start is a test failure, never a skip.
//!
//! Tests never collide in it: each uses its own recipient addresses, and waits for mail to
//! one of them ([`SmtpServer::wait_for`]).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use rookery::config::{EmailConfig, Secret};
use serde::Deserialize;
use tokio::sync::Notify;

/// The credentials the server requires.
pub const USER: &str = "rookery";
pub const PASSWORD: &str = "smtp p@ss/word";

/// How long a mail may take to arrive before a test fails.
pub const MAIL_TIMEOUT: Duration = Duration::from_secs(30);

/// One delivered message, as the server parsed it.
#[derive(Debug, Clone, Deserialize)]
pub struct Delivered {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl Delivered {
    /// The first token in the reference's shape (`ABCDE-FGHIJ`) in the plain-text body.
    pub fn token(&self) -> String {
        let text = self.text.as_deref().expect("a plain-text body");
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .find(|word| {
                word.len() == 11
                    && word.as_bytes()[5] == b'-'
                    && word
                        .bytes()
                        .enumerate()
                        .all(|(i, b)| i == 5 || b.is_ascii_uppercase() || b.is_ascii_digit())
            })
            .unwrap_or_else(|| panic!("no token in {text:?}"))
            .to_owned()
    }
}

#[derive(Default)]
struct Inbox {
    mail: Mutex<Vec<Delivered>>,
    arrived: Notify,
}

/// The running server; the child exits when this process ends (its stdin closes).
pub struct SmtpServer {
    port: u16,
    inbox: Arc<Inbox>,
    _child: Mutex<Child>,
    _stdin: ChildStdin,
}

static SHARED: OnceLock<SmtpServer> = OnceLock::new();

impl SmtpServer {
    /// The server shared by every test of this binary, started by the first that asks.
    pub fn shared() -> &'static SmtpServer {
        SHARED.get_or_init(SmtpServer::start)
    }

    fn start() -> SmtpServer {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = python_binary(repo);
        let mut child = Command::new(&python)
            .arg(repo.join("tests/smtp/smtp-server.py"))
            .args([USER, PASSWORD])
            .current_dir(repo)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let inbox = Arc::new(Inbox::default());
        let (tx, rx) = mpsc::channel();
        let reader_inbox = inbox.clone();
        std::thread::spawn(move || {
            let reader = BufReader::new(stdout);
            let mut tx = Some(tx);
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("SMTP_URL=") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url.to_owned());
                    }
                } else if let Some(json) = line.strip_prefix("MAIL=") {
                    let mail: Delivered = serde_json::from_str(json).expect("MAIL line");
                    reader_inbox
                        .mail
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(mail);
                    reader_inbox.arrived.notify_waiters();
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| {
                let _ = child.kill();
                panic!("SMTP server did not start: {e}")
            });
        let port = url
            .strip_prefix("smtp://127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("SMTP server must listen on 127.0.0.1: {url}"));
        SmtpServer {
            port,
            inbox,
            _child: Mutex::new(child),
            _stdin: stdin,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://USER:PASSWORD@127.0.0.1:PORT` (percent-encoded).
    pub fn url(&self) -> String {
        let mut url = url::Url::parse(&format!("smtp://127.0.0.1:{}", self.port)).unwrap();
        url.set_username(USER).unwrap();
        url.set_password(Some(PASSWORD)).unwrap();
        url.to_string()
    }

    /// Rookery's mail settings for this server.
    pub fn config(&self, from: &str) -> EmailConfig {
        EmailConfig {
            smtp_url: Secret::new(self.url()),
            from_address: from.to_owned(),
        }
    }

    /// Every message delivered to `to` so far, oldest first.
    pub fn mail_to(&self, to: &str) -> Vec<Delivered> {
        self.inbox
            .mail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|m| m.rcpt_tos.iter().any(|r| r.eq_ignore_ascii_case(to)))
            .cloned()
            .collect()
    }

    /// Waits until `to` has received `count` messages in all, and returns the last one;
    /// panics after [`MAIL_TIMEOUT`].
    pub async fn wait_for(&self, to: &str, count: usize) -> Delivered {
        let deadline = tokio::time::Instant::now() + MAIL_TIMEOUT;
        loop {
            let arrived = self.inbox.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let mail = self.mail_to(to);
            if mail.len() >= count {
                return mail[count - 1].clone();
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "no mail #{count} to {to} within {MAIL_TIMEOUT:?}; got {:?}",
                    self.mail_to(to)
                );
            }
        }
    }
}

/// `ROOKERY_SMTP_PYTHON` as printed by `scripts/smtp-deps.sh`.
fn python_binary(repo: &Path) -> PathBuf {
    let out = Command::new("bash")
        .arg(repo.join("scripts/smtp-deps.sh"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run scripts/smtp-deps.sh");
    assert!(
        out.status.success(),
        "scripts/smtp-deps.sh failed: {}",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let python = text
        .lines()
        .find_map(|l| l.strip_prefix("ROOKERY_SMTP_PYTHON="))
        .unwrap_or_else(|| panic!("no ROOKERY_SMTP_PYTHON in {text:?}"));
    PathBuf::from(python)
}
