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

/// Logs every mail (recipient, subject and body) at `info` instead of sending it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMailer;

impl Mailer for LogMailer {
    fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            tracing::info!(to = %mail.to, subject = %mail.subject, text = %mail.text, "mail (not sent: no SMTP configured)");
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
        let mailer: Arc<dyn Mailer> = Arc::new(LogMailer);
        assert_eq!(mailer.send(&mail(1)).await, Ok(()));
    }
}
