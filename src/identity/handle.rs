//! Handle → DID resolution (atproto "Handle" specification): a DNS TXT record
//! `_atproto.<handle>` holding `did=<DID>`, or `https://<handle>/.well-known/atproto-did`
//! answering the DID as text.
//!
//! Both methods start together, as in the reference implementation; a DNS answer wins and
//! cancels the HTTPS request, otherwise the HTTPS answer is used. Each method has its own
//! deadline, the HTTPS body is capped, and the HTTPS fetch is SSRF-guarded (see
//! [`crate::identity::net`]) and never follows redirects.

use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, Either, select};

use crate::identity::net::{FetchError, GuardedConfig, GuardedHttp, HostLookup, SystemHostLookup};
use crate::syntax::{Did, Handle};

/// Looks up TXT records. Injectable so tests run without DNS.
pub trait TxtLookup: Send + Sync {
    /// The TXT records at `name` (no trailing dot), each record's character-strings joined.
    /// A name with no TXT records (or that does not exist) is [`DnsError::NotFound`].
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, DnsError>>;
}

/// A TXT lookup that did not produce records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("no TXT record")]
    NotFound,
    #[error("DNS lookup failed: {0}")]
    Failed(String),
}

/// TXT lookups through hickory-resolver with the system's DNS configuration.
#[derive(Clone)]
pub(crate) struct HickoryTxtLookup {
    resolver: hickory_resolver::TokioResolver,
}

impl HickoryTxtLookup {
    /// Reads `/etc/resolv.conf`; each query attempt is bounded by `timeout`.
    pub(crate) fn from_system_conf(timeout: Duration) -> Result<Self, DnsError> {
        let mut builder = hickory_resolver::TokioResolver::builder_tokio()
            .map_err(|e| DnsError::Failed(e.to_string()))?;
        builder.options_mut().timeout = timeout;
        let resolver = builder
            .build()
            .map_err(|e| DnsError::Failed(e.to_string()))?;
        Ok(HickoryTxtLookup { resolver })
    }
}

impl TxtLookup for HickoryTxtLookup {
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, DnsError>> {
        Box::pin(async move {
            // Fully qualified, so no search domain is ever appended.
            match self.resolver.txt_lookup(format!("{name}.")).await {
                Ok(lookup) => Ok(lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        hickory_resolver::proto::rr::RData::TXT(txt) => Some(
                            txt.txt_data
                                .iter()
                                .map(|part| String::from_utf8_lossy(part))
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect()),
                Err(e) if e.is_no_records_found() => Err(DnsError::NotFound),
                Err(e) => Err(DnsError::Failed(e.to_string())),
            }
        })
    }
}

/// Settings of a [`HandleResolver`].
#[derive(Debug, Clone)]
pub struct HandleResolverConfig {
    /// Deadline of each method (DNS, HTTPS).
    pub timeout: Duration,
    /// Largest well-known body read.
    pub max_body: usize,
    /// Dev/test only: allow the HTTPS method to reach private and loopback addresses.
    pub allow_private: bool,
    /// Dev/test only: fetch `http://<handle>:<port>/.well-known/atproto-did` instead of HTTPS.
    pub insecure_http_port: Option<u16>,
}

impl Default for HandleResolverConfig {
    fn default() -> Self {
        HandleResolverConfig {
            timeout: Duration::from_secs(3),
            max_body: 4096,
            allow_private: false,
            insecure_http_port: None,
        }
    }
}

/// Why a handle did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    #[error("handle has a disallowed top-level domain")]
    DisallowedTld,
    #[error("handle not found")]
    NotFound,
    #[error("more than one did= TXT record ({0})")]
    AmbiguousDns(usize),
    #[error("DNS lookup failed: {0}")]
    Dns(String),
    #[error("DNS lookup timed out")]
    DnsTimeout,
    #[error("{0} answer is not a valid DID")]
    InvalidDid(&'static str),
    #[error("well-known fetch answered HTTP {0}")]
    HttpStatus(u16),
    #[error("well-known fetch failed: {0}")]
    Http(#[from] FetchError),
    #[error("could not set up the resolver: {0}")]
    Setup(String),
}

/// Resolves handles to DIDs (no bidirectional check: see [`crate::identity::IdResolver`]).
#[derive(Clone)]
pub struct HandleResolver {
    txt: Arc<dyn TxtLookup>,
    http: GuardedHttp,
    config: HandleResolverConfig,
}

impl std::fmt::Debug for HandleResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandleResolver")
            .field("config", &self.config)
            .finish()
    }
}

impl HandleResolver {
    /// A resolver with the system's DNS (hickory) and name resolution.
    pub fn system(config: HandleResolverConfig) -> Result<Self, HandleError> {
        let txt = HickoryTxtLookup::from_system_conf(config.timeout)
            .map_err(|e| HandleError::Setup(e.to_string()))?;
        Self::new(config, Arc::new(txt), Arc::new(SystemHostLookup))
    }

    /// A resolver with injected TXT and host lookups.
    pub fn new(
        config: HandleResolverConfig,
        txt: Arc<dyn TxtLookup>,
        hosts: Arc<dyn HostLookup>,
    ) -> Result<Self, HandleError> {
        let http = GuardedHttp::new(
            GuardedConfig {
                timeout: config.timeout,
                max_body: config.max_body,
                allow_private: config.allow_private,
            },
            hosts,
        )?;
        Ok(HandleResolver { txt, http, config })
    }

    /// Resolves with both methods; DNS is preferred when it answers.
    pub async fn resolve(&self, handle: &Handle) -> Result<Did, HandleError> {
        if handle.has_disallowed_tld() {
            return Err(HandleError::DisallowedTld);
        }
        let dns = std::pin::pin!(self.resolve_dns(handle));
        let http = std::pin::pin!(self.resolve_http(handle));
        let (dns_result, http_result) = match select(dns, http).await {
            Either::Left((Ok(did), _)) => return Ok(did),
            Either::Left((dns_err, http)) => (dns_err, http.await),
            Either::Right((http_result, dns)) => (dns.await, http_result),
        };
        match (dns_result, http_result) {
            (Ok(did), _) | (_, Ok(did)) => Ok(did),
            // The more informative failure: a real DNS problem over an HTTPS one.
            (Err(dns_err), Err(_)) if dns_err != HandleError::NotFound => Err(dns_err),
            (Err(_), Err(http_err)) => Err(http_err),
        }
    }

    /// The DNS method alone: exactly one `did=` record, holding a valid DID.
    pub async fn resolve_dns(&self, handle: &Handle) -> Result<Did, HandleError> {
        let name = format!("_atproto.{handle}");
        let records = tokio::time::timeout(self.config.timeout, self.txt.txt(&name))
            .await
            .map_err(|_| HandleError::DnsTimeout)?
            .map_err(|e| match e {
                DnsError::NotFound => HandleError::NotFound,
                DnsError::Failed(why) => HandleError::Dns(why),
            })?;
        let mut dids = records.iter().filter_map(|r| r.strip_prefix("did="));
        match (dids.next(), dids.count()) {
            (None, _) => Err(HandleError::NotFound),
            (Some(did), 0) => did.parse().map_err(|_| HandleError::InvalidDid("DNS")),
            (Some(_), more) => Err(HandleError::AmbiguousDns(more + 1)),
        }
    }

    /// The HTTPS well-known method alone: a 2xx text body that is a DID (whitespace trimmed).
    pub async fn resolve_http(&self, handle: &Handle) -> Result<Did, HandleError> {
        let url = match self.config.insecure_http_port {
            Some(port) => format!("http://{handle}:{port}/.well-known/atproto-did"),
            None => format!("https://{handle}/.well-known/atproto-did"),
        };
        let fetched = match self.http.get(&url, "text/plain").await {
            Ok(fetched) => fetched,
            Err(FetchError::UnknownHost(_)) => return Err(HandleError::NotFound),
            Err(e) => return Err(e.into()),
        };
        match fetched.status {
            200..=299 => {}
            404 => return Err(HandleError::NotFound),
            status => return Err(HandleError::HttpStatus(status)),
        }
        std::str::from_utf8(&fetched.body)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or(HandleError::InvalidDid("well-known"))
    }
}

#[cfg(test)]
mod tests;
