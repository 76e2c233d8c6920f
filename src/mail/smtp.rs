//! [`SmtpMailer`]: delivery over SMTP with lettre (tokio, rustls; no OpenSSL).
//!
//! The URL is read as the reference PDS's mail library reads `PDS_EMAIL_SMTP_URL`:
//! - `smtps://host[:port]` — TLS from the first byte (default port 465);
//! - `smtp://host[:port]` — plain, upgraded with STARTTLS whenever the server offers it
//!   (default port 587); `?tls=required` refuses a server without STARTTLS, `?tls=none`
//!   never upgrades;
//! - `user:password@` (percent-encoded) logs in with AUTH PLAIN or LOGIN.

use std::time::Duration;

use futures::future::BoxFuture;
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Mail, MailError, Mailer};

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends through one SMTP server, from one address. Connections are pooled.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    Implicit,
    StartTlsIfOffered,
    StartTlsRequired,
    None,
}

/// The parts of an SMTP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SmtpUrl {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<(String, String)>,
}

fn parse_url(text: &str) -> Result<SmtpUrl, MailError> {
    let bad = |why: &str| MailError::Settings(why.to_owned());
    let url = url::Url::parse(text).map_err(|_| bad("the SMTP URL does not parse"))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("the SMTP URL has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let (security, default_port) = match (url.scheme(), tls.as_deref()) {
        ("smtps", _) => (Security::Implicit, 465),
        ("smtp", None | Some("opportunistic")) => (Security::StartTlsIfOffered, 587),
        ("smtp", Some("required")) => (Security::StartTlsRequired, 587),
        ("smtp", Some("none")) => (Security::None, 587),
        ("smtp", Some(_)) => return Err(bad("tls= must be required, opportunistic or none")),
        _ => return Err(bad("the SMTP URL must start with smtp:// or smtps://")),
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| bad("the SMTP credentials are not UTF-8"))
    };
    let credentials = if url.username().is_empty() && url.password().is_none() {
        None
    } else {
        Some((
            decode(url.username())?,
            decode(url.password().unwrap_or_default())?,
        ))
    };
    Ok(SmtpUrl {
        host,
        port: url.port().unwrap_or(default_port),
        security,
        credentials,
    })
}

impl SmtpMailer {
    /// A mailer for the server at `url` sending as `from`. Connects only when sending.
    pub fn new(url: &str, from: &str) -> Result<Self, MailError> {
        let parsed = parse_url(url)?;
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailError::Address(format!("sender {from:?}: {e}")))?;
        let tls_params = || {
            TlsParameters::new(parsed.host.clone())
                .map_err(|e| MailError::Settings(format!("TLS: {e}")))
        };
        let tls = match parsed.security {
            Security::Implicit => Tls::Wrapper(tls_params()?),
            Security::StartTlsIfOffered => Tls::Opportunistic(tls_params()?),
            Security::StartTlsRequired => Tls::Required(tls_params()?),
            Security::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&parsed.host)
            .port(parsed.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let Some((user, password)) = parsed.credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from,
        })
    }

    fn message(&self, mail: &Mail) -> Result<Message, MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| MailError::Address(format!("recipient: {e}")))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone());
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone());
        let built = match &mail.html {
            Some(html) => builder.multipart(
                MultiPart::alternative().singlepart(text).singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html.clone()),
                ),
            ),
            None => builder.singlepart(text),
        };
        built.map_err(|e| MailError::Address(e.to_string()))
    }
}

impl Mailer for SmtpMailer {
    fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            let message = self.message(mail)?;
            self.transport
                .send(message)
                .await
                .map(drop)
                .map_err(|e| MailError::Transport(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("smtps://user%40x.com:p%2Fw@mail.example.com").unwrap(),
            SmtpUrl {
                host: "mail.example.com".into(),
                port: 465,
                security: Security::Implicit,
                credentials: Some(("user@x.com".into(), "p/w".into())),
            }
        );
        assert_eq!(
            parse_url("smtp://127.0.0.1:2525").unwrap(),
            SmtpUrl {
                host: "127.0.0.1".into(),
                port: 2525,
                security: Security::StartTlsIfOffered,
                credentials: None,
            }
        );
        assert_eq!(
            parse_url("smtp://u:p@mail.example.com?tls=required")
                .unwrap()
                .security,
            Security::StartTlsRequired
        );
        assert_eq!(
            parse_url("smtp://mail.example.com?tls=none").unwrap().port,
            587
        );
        for bad in [
            "http://mail.example.com",
            "smtp://",
            "smtp://mail.example.com?tls=maybe",
            "not a url",
        ] {
            assert!(
                matches!(parse_url(bad), Err(MailError::Settings(_))),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn bad_sender_or_recipient() {
        assert!(matches!(
            SmtpMailer::new("smtp://127.0.0.1:25", "not an address"),
            Err(MailError::Address(_))
        ));
        let mailer = SmtpMailer::new("smtp://127.0.0.1:25", "noreply@example.com").unwrap();
        let mail = Mail {
            to: "nobody".into(),
            subject: "s".into(),
            text: "t".into(),
            html: None,
        };
        assert!(matches!(
            mailer.send(&mail).await,
            Err(MailError::Address(_))
        ));
    }
}
