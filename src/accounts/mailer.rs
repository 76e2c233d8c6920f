//! Outgoing mail: the [`Mailer`] the account flows send tokens through.
//!
//! Only two implementations exist so far: [`LogMailer`] writes each mail to the log (for
//! development, where nobody reads a real inbox) and [`MemoryMailer`] keeps them for tests.
//! Sending over SMTP (`PDS_EMAIL_SMTP_URL`) is not implemented yet.

use std::sync::Mutex;

use futures::future::BoxFuture;

/// One plain-text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// A message could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not send mail: {0}")]
pub struct MailError(pub String);

/// Sends mail. Used as `Arc<dyn Mailer>`, so the method returns a boxed future.
pub trait Mailer: Send + Sync {
    fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), MailError>>;
}

/// Logs every mail at `info` instead of sending it: recipient and subject, and the body
/// (which carries confirmation and reset tokens) only when `show_text` is set, i.e. in
/// development.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMailer {
    pub show_text: bool,
}

impl Mailer for LogMailer {
    fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            if self.show_text {
                tracing::info!(to = %mail.to, subject = %mail.subject, text = %mail.text, "mail (not sent: no SMTP configured)");
            } else {
                tracing::info!(to = %mail.to, subject = %mail.subject, "mail (not sent: no SMTP configured; its text is logged in development only)");
            }
            Ok(())
        })
    }
}

/// Counts the mails another [`Mailer`] sent and failed to send (for the metrics).
pub struct CountingMailer {
    inner: std::sync::Arc<dyn Mailer>,
    counts: std::sync::Arc<MailCounts>,
}

/// Mails sent and failed since start-up.
#[derive(Debug, Default)]
pub struct MailCounts {
    pub sent: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
}

impl CountingMailer {
    pub fn new(inner: std::sync::Arc<dyn Mailer>) -> Self {
        CountingMailer {
            inner,
            counts: Default::default(),
        }
    }

    pub fn counts(&self) -> std::sync::Arc<MailCounts> {
        self.counts.clone()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn mail(n: u32) -> Mail {
        Mail {
            to: format!("user{n}@example.com"),
            subject: format!("subject {n}"),
            text: format!("token ABCDE-FGH{n}J"),
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
        let mailer: Arc<dyn Mailer> = Arc::new(LogMailer { show_text: true });
        assert_eq!(mailer.send(&mail(1)).await, Ok(()));
    }

    /// What `mailer` logs when sending `mail(7)`.
    fn logged(mailer: LogMailer) -> String {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // Another test thread may have cached the callsites' interest while no
            // subscriber wanted them.
            tracing::callsite::rebuild_interest_cache();
            futures::executor::block_on(mailer.send(&mail(7))).unwrap();
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn mailed_tokens_are_logged_in_development_only() {
        let dev = logged(LogMailer { show_text: true });
        assert!(dev.contains("token ABCDE-FGH7J"), "{dev}");
        let prod = logged(LogMailer { show_text: false });
        assert!(prod.contains("user7@example.com"), "{prod}");
        assert!(prod.contains("subject 7"), "{prod}");
        assert!(!prod.contains("ABCDE"), "{prod}");
    }
}
