//! `did:web` resolution, as atproto restricts it: a bare hostname (no path), fetched from
//! `https://<host>/.well-known/did.json`. A port (`%3A`) is only accepted for `localhost`,
//! and only in dev mode (`allow_private`), where the document is fetched over plain HTTP.

use std::sync::Arc;
use std::time::Duration;

use crate::identity::did_doc::DidDocument;
use crate::identity::net::{FetchError, GuardedConfig, GuardedHttp, HostLookup, SystemHostLookup};
use crate::syntax::{Did, Handle};

/// Settings of a [`DidWebResolver`].
#[derive(Debug, Clone)]
pub struct DidWebConfig {
    /// Deadline for the whole fetch.
    pub timeout: Duration,
    /// Largest document read.
    pub max_body: usize,
    /// Dev/test only: allow private and loopback addresses, and `did:web:localhost%3A<port>`
    /// over plain HTTP.
    pub allow_private: bool,
}

impl Default for DidWebConfig {
    fn default() -> Self {
        DidWebConfig {
            timeout: Duration::from_secs(3),
            max_body: 64 * 1024,
            allow_private: false,
        }
    }
}

/// Why a `did:web` could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebError {
    #[error("not a did:web DID")]
    NotWeb,
    #[error("did:web with a path is not supported by atproto")]
    PathNotSupported,
    #[error("did:web host is not a valid hostname")]
    InvalidHost,
    #[error("did:web host has a disallowed top-level domain")]
    DisallowedTld,
    #[error("did:web with a port is only allowed for localhost in dev mode")]
    PortNotAllowed,
    #[error("DID document not found")]
    NotFound,
    #[error("did:web host answered HTTP {0}")]
    Status(u16),
    #[error("did:web fetch failed: {0}")]
    Fetch(#[from] FetchError),
    #[error("invalid DID document: {0}")]
    InvalidDocument(String),
    #[error("DID document id does not match the DID")]
    IdMismatch,
}

/// The URL of the document of a `did:web`, or why there is none.
pub(crate) fn did_web_url(did: &Did, allow_localhost: bool) -> Result<String, WebError> {
    if did.method() != "web" {
        return Err(WebError::NotWeb);
    }
    let id = did.identifier();
    if id.contains(':') {
        return Err(WebError::PathNotSupported);
    }
    let lower = id.to_ascii_lowercase();
    let (host, port) = match lower.split_once("%3a") {
        Some((host, port)) => (host, Some(port)),
        None => (lower.as_str(), None),
    };
    if host == "localhost" {
        if !allow_localhost {
            return Err(WebError::PortNotAllowed);
        }
        return Ok(match port {
            Some(port) => {
                let port: u16 = port.parse().map_err(|_| WebError::InvalidHost)?;
                format!("http://localhost:{port}/.well-known/did.json")
            }
            None => "http://localhost/.well-known/did.json".to_owned(),
        });
    }
    if port.is_some() {
        return Err(WebError::PortNotAllowed);
    }
    let host: Handle = host.parse().map_err(|_| WebError::InvalidHost)?;
    if host.has_disallowed_tld() {
        return Err(WebError::DisallowedTld);
    }
    Ok(format!("https://{host}/.well-known/did.json"))
}

/// Resolves `did:web` DIDs to their documents.
#[derive(Debug, Clone)]
pub struct DidWebResolver {
    http: GuardedHttp,
}

impl DidWebResolver {
    /// A resolver using the system's name resolution.
    pub fn new(config: DidWebConfig) -> Result<Self, WebError> {
        Self::with_hosts(config, Arc::new(SystemHostLookup))
    }

    /// A resolver using the given host lookup (tests map names to 127.0.0.1).
    pub fn with_hosts(config: DidWebConfig, hosts: Arc<dyn HostLookup>) -> Result<Self, WebError> {
        let http = GuardedHttp::new(
            GuardedConfig {
                timeout: config.timeout,
                max_body: config.max_body,
                allow_private: config.allow_private,
            },
            hosts,
        )?;
        Ok(DidWebResolver { http })
    }

    pub async fn resolve(&self, did: &Did) -> Result<DidDocument, WebError> {
        let url = did_web_url(did, self.http.config().allow_private)?;
        let fetched = match self
            .http
            .get(&url, "application/did+ld+json, application/json")
            .await
        {
            Ok(fetched) => fetched,
            Err(FetchError::UnknownHost(_)) => return Err(WebError::NotFound),
            Err(e) => return Err(e.into()),
        };
        match fetched.status {
            200 => {}
            404 | 410 => return Err(WebError::NotFound),
            status => return Err(WebError::Status(status)),
        }
        let doc = DidDocument::from_json(&fetched.body)
            .map_err(|e| WebError::InvalidDocument(e.to_string()))?;
        if &doc.id != did {
            return Err(WebError::IdMismatch);
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::test_server::{Reply, StaticHosts, TestServer, within};

    fn did(s: &str) -> Did {
        s.parse().unwrap()
    }

    #[test]
    fn urls() {
        let ok = |s: &str, dev: bool| did_web_url(&did(s), dev).unwrap();
        assert_eq!(
            ok("did:web:example.com", false),
            "https://example.com/.well-known/did.json"
        );
        assert_eq!(
            ok("did:web:Sub.Example.COM", false),
            "https://sub.example.com/.well-known/did.json"
        );
        assert_eq!(
            ok("did:web:localhost%3A2583", true),
            "http://localhost:2583/.well-known/did.json"
        );
        assert_eq!(
            ok("did:web:localhost%3a80", true),
            "http://localhost:80/.well-known/did.json"
        );
        let err = |s: &str, dev: bool| did_web_url(&did(s), dev).unwrap_err();
        assert_eq!(err("did:plc:abc", true), WebError::NotWeb);
        assert_eq!(
            err("did:web:example.com:user:alice", true),
            WebError::PathNotSupported
        );
        assert_eq!(
            err("did:web:localhost%3A2583", false),
            WebError::PortNotAllowed
        );
        assert_eq!(
            err("did:web:example.com%3A8443", true),
            WebError::PortNotAllowed
        );
        assert_eq!(
            err("did:web:localhost%3A99999", true),
            WebError::InvalidHost
        );
        assert_eq!(err("did:web:localhost%3Axyz", true), WebError::InvalidHost);
        assert_eq!(err("did:web:127.0.0.1", true), WebError::InvalidHost);
        assert_eq!(err("did:web:exa%20mple.com", true), WebError::InvalidHost);
        assert_eq!(err("did:web:single", true), WebError::InvalidHost);
        assert_eq!(err("did:web:printer.local", true), WebError::DisallowedTld);
        assert_eq!(
            err("did:web:thing.internal", false),
            WebError::DisallowedTld
        );
    }

    fn resolver(allow_private: bool) -> DidWebResolver {
        DidWebResolver::with_hosts(
            DidWebConfig {
                timeout: Duration::from_millis(300),
                max_body: 4096,
                allow_private,
            },
            Arc::new(StaticHosts::localhost()),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn resolves_localhost_in_dev_mode() {
        let server = TestServer::start().await;
        let did = did(&format!("did:web:localhost%3A{}", server.port()));
        let doc = serde_json::json!({
            "id": did.as_str(),
            "alsoKnownAs": ["at://web.example.com"],
            "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                         "serviceEndpoint": "https://pds.example.com"}],
        });
        server.route(
            "/.well-known/did.json",
            Reply::ok("application/json", doc.to_string()),
        );
        let got = resolver(true).resolve(&did).await.unwrap();
        assert_eq!(got.id, did);
        assert_eq!(got.pds_endpoint(), Some("https://pds.example.com"));
        assert_eq!(got.handle().unwrap().as_str(), "web.example.com");

        // Not in dev mode: refused before any request.
        assert_eq!(
            resolver(false).resolve(&did).await,
            Err(WebError::PortNotAllowed)
        );
    }

    #[tokio::test]
    async fn bad_answers() {
        let server = TestServer::start().await;
        let did = did(&format!("did:web:localhost%3A{}", server.port()));
        let r = resolver(true);
        assert_eq!(r.resolve(&did).await, Err(WebError::NotFound));

        let other = serde_json::json!({"id": "did:web:other.com"}).to_string();
        server.route(
            "/.well-known/did.json",
            Reply::ok("application/json", other),
        );
        assert_eq!(r.resolve(&did).await, Err(WebError::IdMismatch));

        server.route(
            "/.well-known/did.json",
            Reply::ok("application/json", "{not json"),
        );
        assert!(matches!(
            r.resolve(&did).await,
            Err(WebError::InvalidDocument(_))
        ));

        server.route("/.well-known/did.json", Reply::status(500));
        assert_eq!(r.resolve(&did).await, Err(WebError::Status(500)));

        server.route(
            "/.well-known/did.json",
            Reply::redirect("https://evil.example.com/"),
        );
        assert_eq!(r.resolve(&did).await, Err(WebError::Status(302)));

        let huge = format!("{{\"id\":\"{did}\",\"pad\":\"{}\"}}", "x".repeat(5000));
        server.route("/.well-known/did.json", Reply::ok("application/json", huge));
        assert_eq!(
            r.resolve(&did).await,
            Err(WebError::Fetch(FetchError::TooLarge(4096)))
        );

        // A host that does not resolve: not found.
        let nowhere: Did = "did:web:nowhere.example.com".parse().unwrap();
        assert_eq!(r.resolve(&nowhere).await, Err(WebError::NotFound));

        server.route("/.well-known/did.json", Reply::Hang);
        assert_eq!(
            within(r.resolve(&did)).await,
            Err(WebError::Fetch(FetchError::Timeout))
        );
    }
}
