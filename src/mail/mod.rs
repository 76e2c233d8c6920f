//! Outgoing mail: the [`Mailer`] trait the account flows send through, its implementations,
//! the message templates, and the [`Outbox`] that sends in the background with retries.
//!
//! - [`smtp::SmtpMailer`] delivers over SMTP (`PDS_EMAIL_SMTP_URL`, lettre with rustls).
//! - [`LogMailer`] writes each mail, token included, to the log: only ever chosen in
//!   development mode, where nobody reads a real inbox.
//! - [`MemoryMailer`] keeps them, for unit tests.
//!
//! With no SMTP server configured outside development mode there is no mailer at all: the
//! [`Outbox`] refuses every mail with [`MailError::NotConfigured`] before any token is made.

pub mod smtp;
mod templates;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::task::TaskTracker;

pub use templates::{Template, TemplateValues};

/// One message: a plain-text body and, usually, an HTML alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// A message could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// No SMTP server is configured (and this is not development mode).
    #[error("email is not configured on this server")]
    NotConfigured,
    /// The recipient or sender address is not usable.
    #[error("invalid address: {0}")]
    Address(String),
    /// The SMTP settings are not usable.
    #[error("invalid SMTP settings: {0}")]
    Settings(String),
    /// The SMTP server could not be reached or refused the message.
    #[error("SMTP delivery failed: {0}")]
    Transport(String),
}

/// Sends mail. Used as `Arc<dyn Mailer>`, so the method returns a boxed future.
pub trait Mailer: Send + Sync {
    fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), MailError>>;
}

/// Logs every mail (recipient, subject and body) at `info` instead of sending it. Only for
/// development mode: the body carries the token.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMailer;

impl Mailer for LogMailer {
    fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            tracing::info!(to = %mail.to, subject = %mail.subject, text = %mail.text, "mail (development mode: logged, not sent)");
            Ok(())
        })
    }
}

/// Keeps every mail in memory, for tests to read.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<Mail>>,
}

impl MemoryMailer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every mail sent so far, oldest first.
    pub fn sent(&self) -> Vec<Mail> {
        self.lock().clone()
    }

    /// Removes and returns every mail sent so far.
    pub fn take(&self) -> Vec<Mail> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Mail>> {
        self.sent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Mailer for MemoryMailer {
    fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            self.lock().push(mail.clone());
            Ok(())
        })
    }
}

/// Mails sent and failed since start-up (for the metrics).
#[derive(Debug, Default)]
pub struct MailCounts {
    pub sent: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
}

/// Counts the mails another [`Mailer`] sent and failed to send (each attempt).
pub struct CountingMailer {
    inner: Arc<dyn Mailer>,
    counts: Arc<MailCounts>,
}

impl CountingMailer {
    pub fn new(inner: Arc<dyn Mailer>, counts: Arc<MailCounts>) -> Self {
        CountingMailer { inner, counts }
    }
}

impl Mailer for CountingMailer {
    fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            let result = self.inner.send(mail).await;
            let counter = if result.is_ok() {
                &self.counts.sent
            } else {
                &self.counts.failed
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            result
        })
    }
}

/// How many times the [`Outbox`] tries one mail, and the pause before the first retry
/// (doubled before each later one): 1 + 2 + 4 + 8 s.
pub const SEND_ATTEMPTS: u32 = 5;
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Sends rendered templates through a mailer, in the background, retrying a bounded number
/// of times; failures are logged without the message (which carries the token). Cheap to
/// clone.
#[derive(Clone)]
pub struct Outbox {
    mailer: Option<Arc<dyn Mailer>>,
    from_hostname: String,
    first_retry: Duration,
    /// The deliveries under way (shared by clones), so shutdown can wait for them.
    deliveries: TaskTracker,
}

impl Outbox {
    /// An outbox over `mailer`; `None` refuses every mail with [`MailError::NotConfigured`].
    /// `hostname` (the server's) fills the templates.
    pub fn new(mailer: Option<Arc<dyn Mailer>>, hostname: impl Into<String>) -> Self {
        Outbox {
            mailer,
            from_hostname: hostname.into(),
            first_retry: FIRST_RETRY_DELAY,
            deliveries: TaskTracker::new(),
        }
    }

    /// For shutdown: waits up to `grace` for the mails still being delivered (retries
    /// included), and answers how many were left undelivered when it gave up (logged by
    /// count only: a mail carries a token).
    pub async fn drain(&self, grace: Duration) -> usize {
        self.deliveries.close();
        if tokio::time::timeout(grace, self.deliveries.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let pending = self.deliveries.len();
        tracing::warn!(pending, "shutting down with mail still undelivered");
        pending
    }

    /// Whether mail can be sent at all. Flows that mail a token check this first, so no
    /// token is made that cannot be delivered.
    pub fn ensure_enabled(&self) -> Result<(), MailError> {
        self.mailer
            .as_ref()
            .map(drop)
            .ok_or(MailError::NotConfigured)
    }

    /// Renders `template` for `to` (the server's hostname filled in).
    pub fn render(&self, template: Template, to: &str, mut values: TemplateValues) -> Mail {
        values.hostname = self.from_hostname.clone();
        template.render(to, &values)
    }

    /// Queues `mail`: returns at once, and a background task delivers it, retrying up to
    /// [`SEND_ATTEMPTS`] times.
    pub fn queue(&self, mail: Mail) -> Result<(), MailError> {
        let mailer = self.mailer.clone().ok_or(MailError::NotConfigured)?;
        let first_retry = self.first_retry;
        self.deliveries.spawn(async move {
            deliver(mailer.as_ref(), &mail, 0, first_retry).await;
        });
        Ok(())
    }

    /// Tries `mail` once and answers whether it was accepted; on failure the remaining
    /// attempts continue in the background. For `admin.sendEmail`, whose answer says
    /// whether the mail went out.
    pub async fn send_now(&self, mail: Mail) -> Result<(), MailError> {
        let mailer = self.mailer.clone().ok_or(MailError::NotConfigured)?;
        match mailer.send(&mail).await {
            Ok(()) => Ok(()),
            Err(err) => {
                log_failure(&mail, 1, &err);
                let first_retry = self.first_retry;
                self.deliveries.spawn(async move {
                    tokio::time::sleep(first_retry).await;
                    deliver(mailer.as_ref(), &mail, 1, first_retry * 2).await;
                });
                Err(err)
            }
        }
    }
}

/// Tries `mail` for the attempts after the first `done`, pausing `delay` (then doubling).
async fn deliver(mailer: &dyn Mailer, mail: &Mail, done: u32, mut delay: Duration) {
    for attempt in done + 1..=SEND_ATTEMPTS {
        match mailer.send(mail).await {
            Ok(()) => return,
            Err(err) => log_failure(mail, attempt, &err),
        }
        if attempt < SEND_ATTEMPTS {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
}

/// Logs a failed attempt: the subject and the error, never the body (it carries the token).
fn log_failure(mail: &Mail, attempt: u32, err: &MailError) {
    if attempt < SEND_ATTEMPTS {
        tracing::warn!(subject = %mail.subject, attempt, error = %err, "mail not sent; will retry");
    } else {
        tracing::error!(subject = %mail.subject, attempt, error = %err, "mail not sent; giving up");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn mail(n: u32) -> Mail {
        Mail {
            to: format!("user{n}@example.com"),
            subject: format!("subject {n}"),
            text: format!("token ABCDE-FGH{n}J"),
            html: None,
        }
    }

    #[tokio::test]
    async fn memory_mailer_captures_in_order() {
        let memory = Arc::new(MemoryMailer::new());
        let mailer: Arc<dyn Mailer> = memory.clone();
        mailer.send(&mail(1)).await.unwrap();
        mailer.send(&mail(2)).await.unwrap();
        assert_eq!(memory.sent(), vec![mail(1), mail(2)]);
        assert_eq!(memory.take(), vec![mail(1), mail(2)]);
        assert_eq!(memory.sent(), Vec::<Mail>::new());
        mailer.send(&mail(3)).await.unwrap();
        assert_eq!(memory.take(), vec![mail(3)]);
    }

    #[tokio::test]
    async fn log_mailer_accepts() {
        let mailer: Arc<dyn Mailer> = Arc::new(LogMailer);
        assert_eq!(mailer.send(&mail(1)).await, Ok(()));
    }

    /// Fails its first `failures` sends, then delivers into `sent`.
    struct Flaky {
        failures: u32,
        calls: AtomicU32,
        sent: MemoryMailer,
    }

    impl Mailer for Flaky {
        fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), MailError>> {
            Box::pin(async move {
                if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
                    Err(MailError::Transport("connection refused".into()))
                } else {
                    self.sent.send(mail).await
                }
            })
        }
    }

    async fn run_queue(failures: u32) -> (u32, Vec<Mail>) {
        let flaky = Arc::new(Flaky {
            failures,
            calls: AtomicU32::new(0),
            sent: MemoryMailer::new(),
        });
        let outbox = Outbox::new(Some(flaky.clone() as Arc<dyn Mailer>), "pds.example.com");
        outbox.queue(mail(1)).unwrap();
        // Paused time: the retry pauses pass instantly; the delivery ends within the bound.
        assert_eq!(outbox.drain(Duration::from_secs(3600)).await, 0);
        (flaky.calls.load(Ordering::SeqCst), flaky.sent.sent())
    }

    #[tokio::test(start_paused = true)]
    async fn outbox_retries_then_delivers() {
        assert_eq!(run_queue(3).await, (4, vec![mail(1)]));
    }

    #[tokio::test(start_paused = true)]
    async fn outbox_gives_up_after_bounded_attempts() {
        assert_eq!(run_queue(100).await, (SEND_ATTEMPTS, vec![]));
    }

    /// Accepts a mail only once released.
    struct Gate {
        open: tokio::sync::Semaphore,
        sent: MemoryMailer,
    }

    impl Mailer for Gate {
        fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), MailError>> {
            Box::pin(async move {
                let _permit = self.open.acquire().await.expect("semaphore open");
                self.sent.send(mail).await
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_deliveries_then_gives_up_at_the_bound() {
        let gate = Arc::new(Gate {
            open: tokio::sync::Semaphore::new(0),
            sent: MemoryMailer::new(),
        });
        let outbox = Outbox::new(Some(gate.clone() as Arc<dyn Mailer>), "pds.example.com");
        outbox.queue(mail(1)).unwrap();
        outbox.queue(mail(2)).unwrap();
        // Nothing can be delivered yet: both are still pending at the bound.
        assert_eq!(outbox.drain(Duration::from_secs(5)).await, 2);
        assert!(gate.sent.sent().is_empty());
        // Released, both go out and the drain ends with nothing left.
        gate.open.add_permits(2);
        assert_eq!(outbox.drain(Duration::from_secs(5)).await, 0);
        let mut sent = gate.sent.sent();
        sent.sort_by(|a, b| a.to.cmp(&b.to));
        assert_eq!(sent, vec![mail(1), mail(2)]);
    }

    #[tokio::test]
    async fn outbox_without_mailer_refuses() {
        let outbox = Outbox::new(None, "pds.example.com");
        assert_eq!(outbox.ensure_enabled(), Err(MailError::NotConfigured));
        assert_eq!(outbox.queue(mail(1)), Err(MailError::NotConfigured));
        assert_eq!(
            outbox.send_now(mail(1)).await,
            Err(MailError::NotConfigured)
        );
    }
}
