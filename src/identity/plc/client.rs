//! HTTP client of a PLC directory (`https://plc.directory` in production).

use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;

use super::{PlcData, PlcDirectory, PlcError, SignedOp};
use crate::identity::did_doc::DidDocument;
use crate::identity::net::{FetchError, read_capped};
use crate::syntax::Did;

/// Largest directory answer read (an operation log of a long-lived DID can be sizeable; one
/// operation is at most 7.5 kB).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Longest error message kept from a directory answer.
const MAX_MESSAGE_CHARS: usize = 1000;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A PLC directory reached over HTTP. The directory is trusted configuration (not a
/// user-named host), so this client is not SSRF-guarded and may use `http://127.0.0.1`.
#[derive(Debug, Clone)]
pub struct PlcClient {
    base_url: String,
    client: reqwest::Client,
}

impl PlcClient {
    /// A client with its own connection pool and a 10 s timeout per request.
    pub fn new(base_url: &str) -> Result<Self, PlcError> {
        let client = reqwest::Client::builder()
            .timeout(DEFAULT_TIMEOUT)
            .connect_timeout(DEFAULT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rookery/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PlcError::Transport(e.to_string()))?;
        Self::with_client(base_url, client)
    }

    /// A client over an existing `reqwest::Client` (shared pool, custom timeouts).
    pub fn with_client(base_url: &str, client: reqwest::Client) -> Result<Self, PlcError> {
        let url = reqwest::Url::parse(base_url).map_err(|e| PlcError::BadUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(PlcError::BadUrl(
                "needs an http or https URL with a host".into(),
            ));
        }
        Ok(PlcClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            client,
        })
    }

    #[cfg(test)]
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    fn url(&self, did: &Did, suffix: &str) -> Result<String, PlcError> {
        // A did:plc identifier is lowercase base32 (a-z, 2-7): nothing to escape, and
        // nothing that could change the request path.
        let id = did.identifier();
        if did.method() != "plc"
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        {
            return Err(PlcError::NotPlc);
        }
        Ok(format!("{}/{}{}", self.base_url, did, suffix))
    }

    async fn get_json<T: DeserializeOwned>(&self, did: &Did, suffix: &str) -> Result<T, PlcError> {
        let url = self.url(did, suffix)?;
        let response = self
            .client
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/did+ld+json, application/json",
            )
            .send()
            .await
            .map_err(transport)?;
        let body = success_body(response).await?;
        serde_json::from_slice(&body).map_err(|e| PlcError::InvalidResponse(e.to_string()))
    }

    async fn post_op(&self, did: &Did, op: &SignedOp) -> Result<(), PlcError> {
        let url = self.url(did, "")?;
        let response = self
            .client
            .post(url)
            .json(op)
            .send()
            .await
            .map_err(transport)?;
        success_body(response).await.map(drop)
    }
}

fn transport(e: reqwest::Error) -> PlcError {
    PlcError::Transport(e.to_string())
}

/// The body of a 2xx answer; other statuses become the matching [`PlcError`].
async fn success_body(response: reqwest::Response) -> Result<Vec<u8>, PlcError> {
    let status = response.status().as_u16();
    let body = read_capped(response, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| match e {
            FetchError::TooLarge(n) => PlcError::InvalidResponse(format!("over {n} bytes")),
            other => PlcError::Transport(other.to_string()),
        })?;
    match status {
        200..=299 => Ok(body),
        404 => Err(PlcError::NotFound),
        410 => Err(PlcError::Tombstoned),
        400 => Err(PlcError::Rejected(error_message(&body))),
        _ => Err(PlcError::Status {
            status,
            message: error_message(&body),
        }),
    }
}

/// The directory's `{"message": …}`, else the body text, cut to a sane length.
fn error_message(body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    message.chars().take(MAX_MESSAGE_CHARS).collect()
}

impl PlcDirectory for PlcClient {
    fn submit<'a>(&'a self, did: &'a Did, op: &'a SignedOp) -> BoxFuture<'a, Result<(), PlcError>> {
        Box::pin(self.post_op(did, op))
    }

    fn get_data<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<PlcData, PlcError>> {
        Box::pin(self.get_json(did, "/data"))
    }

    fn get_last_op<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<SignedOp, PlcError>> {
        Box::pin(self.get_json(did, "/log/last"))
    }

    fn get_log<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<Vec<SignedOp>, PlcError>> {
        Box::pin(self.get_json(did, "/log"))
    }

    fn resolve<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<DidDocument, PlcError>> {
        Box::pin(async move {
            let doc: DidDocument = self.get_json(did, "").await?;
            if &doc.id != did {
                return Err(PlcError::InvalidResponse(
                    "DID document id does not match the requested DID".into(),
                ));
            }
            Ok(doc)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let client = PlcClient::new("http://127.0.0.1:2582/").unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:2582");
        let did: Did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse().unwrap();
        assert_eq!(
            client.url(&did, "/log/last").unwrap(),
            "http://127.0.0.1:2582/did:plc:ewvi7nxzyoun6zhxrhs64oiz/log/last"
        );
        for bad in [
            "did:web:example.com",
            "did:plc:ABC",
            "did:plc:a%2Fb",
            "did:plc:..",
            "did:plc:a1",
        ] {
            let did: Did = bad.parse().unwrap();
            assert_eq!(client.url(&did, ""), Err(PlcError::NotPlc), "{bad}");
        }
        for bad in ["not a url", "ftp://plc.example.com", "file:///tmp/x"] {
            assert!(
                matches!(PlcClient::new(bad), Err(PlcError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"message":"Invalid signature"}"#),
            "Invalid signature"
        );
        assert_eq!(error_message(b"plain text"), "plain text");
        assert_eq!(error_message(br#"{"error":"x"}"#), r#"{"error":"x"}"#);
        assert_eq!(error_message(&[b'a'; 5000]).len(), MAX_MESSAGE_CHARS);
    }
}
