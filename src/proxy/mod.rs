//! Service proxying: forwarding XRPC requests this PDS does not serve itself to another
//! atproto service (the AppView, a labeler, the chat service, …) with an inter-service JWT
//! issued for the calling account, as the XRPC specification's "Service Proxying" section
//! describes.
//!
//! - The target is the service named by the client's `atproto-proxy` header
//!   (`did:web:api.bsky.app#bsky_appview`: a DID, `#`, a service id in its DID document), or
//!   the configured default for the method's namespace ([`default_service`]).
//! - Account-management methods are never proxied ([`PROTECTED_METHODS`]); direct-message
//!   methods need a full session or a privileged app password ([`is_privileged_method`]).
//! - Only an allow-list of request headers goes upstream, and only an allow-list of response
//!   headers comes back. Bodies stream both ways, under size caps and timeouts.
//! - Upstream error bodies are re-rendered as XRPC errors the way the reference PDS does
//!   (status 500 becomes 502 `UpstreamFailure`); an unreachable upstream is 502
//!   `UpstreamFailure`, a slow one 504 `UpstreamTimeout`.
//!
//! The caller's identity comes in as a plain [`Caller`]; authenticating the request is the
//! job of whoever calls [`proxy_request`].

mod forward;
mod target;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::header::HeaderMap;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use futures::future::BoxFuture;

use crate::config::{Config, ServiceEndpoint};
use crate::crypto::Keypair;
use crate::error::{ErrorName, XrpcError};
use crate::identity::net::{HostLookup, SystemHostLookup};
use crate::identity::resolver::ResolveError;
use crate::identity::{DidDocument, IdResolver};
use crate::oauth::AccessGrant;
use crate::syntax::{Did, Nsid};

pub use forward::{
    ERROR_RESPONSE_HEADERS, FORWARDED_BODY_HEADERS, FORWARDED_REQUEST_HEADERS,
    FORWARDED_RESPONSE_HEADERS, MAX_ERROR_BODY, is_json_content_type,
};
pub use target::{
    PROTECTED_METHODS, PROXY_HEADER, ProxyTarget, default_service, is_privileged_method,
    is_protected_method, parse_proxy_header, resolve_target, service_endpoint,
};

/// Default [`ProxyConfig::headers_timeout`]: 10 s, as the reference.
pub(crate) const DEFAULT_HEADERS_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ProxyConfig::body_timeout`]: 30 s, as the reference.
pub(crate) const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ProxyConfig::max_response_body`]: 10 MiB, as the reference.
pub(crate) const DEFAULT_MAX_RESPONSE_BODY: u64 = 10 * 1024 * 1024;
/// Default [`ProxyConfig::max_request_body`]: 10 MiB, the same bound as responses (the
/// methods worth proxying take small JSON bodies).
pub(crate) const DEFAULT_MAX_REQUEST_BODY: u64 = 10 * 1024 * 1024;

/// What the proxy needs to know: where the default services are, and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The AppView: the default for `app.bsky.*` and every other method without a more
    /// specific default.
    pub app_view: Option<ServiceEndpoint>,
    /// Default for `com.atproto.moderation.createReport`.
    pub report_service: Option<ServiceEndpoint>,
    /// Default for `chat.bsky.*` (else they go to the AppView, as in the reference).
    pub chat_service: Option<ServiceEndpoint>,
    /// Default for `tools.ozone.*`.
    pub mod_service: Option<ServiceEndpoint>,
    /// Longest wait for the upstream's response headers, connecting and sending the request
    /// body included. Past it: 504 `UpstreamTimeout`.
    pub headers_timeout: Duration,
    /// Longest silence between two chunks of the upstream's response body; past it the
    /// response is cut off.
    pub body_timeout: Duration,
    /// Largest request body forwarded; larger is 413 `PayloadTooLarge`.
    pub max_request_body: u64,
    /// Largest response body passed back; a longer one is refused (declared length) or cut
    /// off (streamed).
    pub max_response_body: u64,
    /// Development only: allow plain `http` upstreams and loopback or private addresses.
    /// Otherwise only `https` to public unicast addresses is dialled (SSRF protection).
    pub allow_insecure: bool,
}

impl Default for ProxyConfig {
    /// No services configured, the reference's limits, SSRF protection on.
    fn default() -> Self {
        ProxyConfig {
            app_view: None,
            report_service: None,
            chat_service: None,
            mod_service: None,
            headers_timeout: DEFAULT_HEADERS_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_request_body: DEFAULT_MAX_REQUEST_BODY,
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
            allow_insecure: false,
        }
    }
}

impl ProxyConfig {
    /// The proxy settings of the service configuration: the AppView and report service it
    /// names, default limits, and insecure upstreams allowed only in development mode.
    pub fn from_config(config: &Config) -> Self {
        ProxyConfig {
            app_view: config.bsky_app_view.clone(),
            report_service: config.report_service.clone(),
            allow_insecure: config.dev_mode,
            ..ProxyConfig::default()
        }
    }
}

/// Resolves a service's DID to its document. Object-safe so tests can hand out documents
/// of their own; [`IdResolver`] is the real one.
pub trait DidDocResolver: Send + Sync {
    fn resolve_did<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<DidDocument, ResolveError>>;
}

impl DidDocResolver for IdResolver {
    fn resolve_did<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<DidDocument, ResolveError>> {
        Box::pin(IdResolver::resolve_did(self, did))
    }
}

/// Why a request was not (successfully) forwarded. Upstream error *responses* are not
/// errors here: they are passed back as responses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Not GET, HEAD or POST.
    #[error("XRPC requests only supports GET and POST")]
    MethodNotAllowed,
    /// The path is not `/xrpc/<nsid>`.
    #[error("invalid xrpc path")]
    InvalidPath,
    /// A protected method, or a privileged one without a privileged credential.
    #[error("Bad token method")]
    BadTokenMethod,
    /// An OAuth credential whose permissions do not allow this method on this service; the
    /// text names the scope that would.
    #[error("Missing required scope \"{0}\"")]
    MissingScope(String),
    /// The `atproto-proxy` header is malformed; the text says how.
    #[error("{0}")]
    BadProxyHeader(&'static str),
    /// The service DID of the `atproto-proxy` header does not resolve.
    #[error("could not resolve proxy did")]
    UnresolvableDid,
    /// The service DID's document has no usable endpoint for the service id.
    #[error("could not resolve proxy did service url")]
    NoServiceEndpoint,
    /// No `atproto-proxy` header, and no default service for the method.
    #[error("No service configured for {0}")]
    NoServiceConfigured(String),
    /// The request body is over [`ProxyConfig::max_request_body`].
    #[error("Request body is larger than the proxy forwards")]
    RequestTooLarge,
    /// The upstream is not one we may dial (plain http, or a non-public address).
    #[error("refusing to contact upstream: {0}")]
    Refused(String),
    /// Connecting to or exchanging with the upstream failed.
    #[error("upstream request failed: {0}")]
    Unreachable(String),
    /// The upstream did not answer within [`ProxyConfig::headers_timeout`].
    #[error("Upstream service timed out")]
    Timeout,
    /// The upstream declared a body over [`ProxyConfig::max_response_body`].
    #[error("Upstream response is too large")]
    ResponseTooLarge,
    /// The HTTP client could not be built.
    #[error("cannot build the proxy HTTP client: {0}")]
    Client(String),
}

/// The message of a 502 for an upstream we could not reach (the reference's words).
pub(crate) const UNREACHABLE_MESSAGE: &str = "Upstream service unreachable";

impl From<ProxyError> for XrpcError {
    fn from(err: ProxyError) -> Self {
        let message = err.to_string();
        match err {
            ProxyError::MethodNotAllowed
            | ProxyError::InvalidPath
            | ProxyError::BadProxyHeader(_)
            | ProxyError::UnresolvableDid
            | ProxyError::NoServiceEndpoint
            | ProxyError::NoServiceConfigured(_) => XrpcError::invalid_request(message),
            ProxyError::BadTokenMethod => XrpcError::invalid_token(message),
            ProxyError::MissingScope(_) => {
                XrpcError::new(StatusCode::FORBIDDEN, ErrorName::InvalidToken, message)
            }
            ProxyError::RequestTooLarge => XrpcError::payload_too_large(message),
            ProxyError::Refused(_) | ProxyError::Unreachable(_) => {
                XrpcError::upstream_failure(UNREACHABLE_MESSAGE)
            }
            ProxyError::ResponseTooLarge => XrpcError::upstream_failure(message),
            ProxyError::Timeout => XrpcError::new(
                StatusCode::GATEWAY_TIMEOUT,
                ErrorName::UpstreamTimeout,
                message,
            ),
            ProxyError::Client(detail) => XrpcError::internal(detail),
        }
    }
}

/// The authenticated account a request is forwarded for.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account's DID: the `iss` of the service token.
    pub did: Did,
    /// The account's atproto signing key, which signs the service token.
    pub keypair: Keypair,
    /// Whether the credential may call privileged methods (a full session or a privileged
    /// app password).
    pub privileged: bool,
    /// An OAuth credential's grant, whose `rpc:` permissions are checked against each call's
    /// method and service; `None` for session tokens.
    pub oauth: Option<Arc<AccessGrant>>,
}

/// Everything a proxied request needs: the HTTP client, the settings and the DID resolver.
pub struct ProxyContext {
    client: reqwest::Client,
    config: ProxyConfig,
    resolver: Arc<dyn DidDocResolver>,
}

impl std::fmt::Debug for ProxyContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyContext")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ProxyContext {
    /// A context resolving upstream host names through the operating system.
    pub fn new(config: ProxyConfig, resolver: Arc<dyn DidDocResolver>) -> Result<Self, ProxyError> {
        Self::with_host_lookup(config, resolver, Arc::new(SystemHostLookup))
    }

    /// A context resolving upstream host names through `hosts` (checked against the
    /// public-address rule unless [`ProxyConfig::allow_insecure`]).
    pub fn with_host_lookup(
        config: ProxyConfig,
        resolver: Arc<dyn DidDocResolver>,
        hosts: Arc<dyn HostLookup>,
    ) -> Result<Self, ProxyError> {
        let client = forward::build_client(&config, hosts)?;
        Ok(ProxyContext {
            client,
            config,
            resolver,
        })
    }

    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// The `aud` an OAuth `rpc:` permission must allow for `nsid` called with these headers
    /// on a route this server answers itself (the preferences): the `atproto-proxy` service
    /// if one is named, else the configured default's `did#service_id`. `None` when neither
    /// is known, so only an `aud=*` permission can allow the call.
    pub fn permission_audience(&self, headers: &HeaderMap, nsid: &Nsid) -> Option<String> {
        match single_header(headers, PROXY_HEADER) {
            Ok(Some(value)) if !value.is_empty() => {
                let (did, id) = target::parse_proxy_header(value).ok()?;
                Some(format!("{did}#{id}"))
            }
            Ok(_) => target::default_target(&self.config, nsid).map(|t| t.permission_audience()),
            Err(_) => None,
        }
    }

    /// The target for a request with these headers calling `nsid`.
    pub async fn resolve_target(
        &self,
        headers: &HeaderMap,
        nsid: &Nsid,
    ) -> Result<ProxyTarget, ProxyError> {
        let header = single_header(headers, PROXY_HEADER)?;
        resolve_target(&self.config, self.resolver.as_ref(), header, nsid).await
    }
}

/// The one value of header `name`, if present; several values or a value that is not
/// visible ASCII make the header malformed.
fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ProxyError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ProxyError::BadProxyHeader("invalid proxy header format"));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| ProxyError::BadProxyHeader("invalid proxy header format"))
}

/// Refuses HTTP methods other than GET, HEAD and POST.
pub(crate) fn check_http_method(method: &Method) -> Result<(), ProxyError> {
    if method == Method::GET || method == Method::HEAD || method == Method::POST {
        Ok(())
    } else {
        Err(ProxyError::MethodNotAllowed)
    }
}

/// The method NSID of an `/xrpc/<nsid>` path.
pub(crate) fn method_nsid(path: &str) -> Result<Nsid, ProxyError> {
    crate::xrpc::method_name(path)
        .and_then(|name| name.parse().ok())
        .ok_or(ProxyError::InvalidPath)
}

/// Refuses protected methods, and privileged methods unless the caller's credential is
/// privileged.
pub(crate) fn authorize_method(nsid: &Nsid, caller: Option<&Caller>) -> Result<(), ProxyError> {
    if is_protected_method(nsid.as_str()) {
        return Err(ProxyError::BadTokenMethod);
    }
    if is_privileged_method(nsid.as_str()) && !caller.is_some_and(|c| c.privileged) {
        return Err(ProxyError::BadTokenMethod);
    }
    Ok(())
}

/// Refuses an OAuth caller whose permissions do not allow `nsid` on `target`'s service.
pub(crate) fn authorize_service(
    nsid: &Nsid,
    target: &ProxyTarget,
    caller: Option<&Caller>,
) -> Result<(), ProxyError> {
    let Some(grant) = caller.and_then(|c| c.oauth.as_ref()) else {
        return Ok(());
    };
    let aud = target.permission_audience();
    if grant.permissions.allows_rpc(nsid.as_str(), &aud) {
        Ok(())
    } else {
        Err(ProxyError::MissingScope(format!("rpc:{nsid}?aud={aud}")))
    }
}

/// Forwards `req` (an `/xrpc/<nsid>` request) to its target and returns the upstream's
/// answer; with a `caller`, the request carries a service token issued for the caller.
///
/// Checks in the reference's order: HTTP method, path, protected method, privileged
/// method, then the target.
pub async fn proxy_request(
    ctx: &ProxyContext,
    req: Request,
    caller: Option<Caller>,
) -> Result<Response, XrpcError> {
    let (parts, body) = req.into_parts();
    check_http_method(&parts.method)?;
    let nsid = method_nsid(parts.uri.path())?;
    authorize_method(&nsid, caller.as_ref())?;
    let target = ctx.resolve_target(&parts.headers, &nsid).await?;
    authorize_service(&nsid, &target, caller.as_ref())?;
    let issuer = caller.as_ref().map(|c| (&c.did, &c.keypair));
    Ok(ctx.forward(&parts, body, &target, issuer, &nsid).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn proxy_errors_map_to_xrpc_errors() {
        let cases = [
            (
                ProxyError::MethodNotAllowed,
                400,
                ErrorName::InvalidRequest,
                "XRPC requests only supports GET and POST",
            ),
            (
                ProxyError::InvalidPath,
                400,
                ErrorName::InvalidRequest,
                "invalid xrpc path",
            ),
            (
                ProxyError::BadTokenMethod,
                400,
                ErrorName::InvalidToken,
                "Bad token method",
            ),
            (
                ProxyError::BadProxyHeader("no did specified in proxy header"),
                400,
                ErrorName::InvalidRequest,
                "no did specified in proxy header",
            ),
            (
                ProxyError::UnresolvableDid,
                400,
                ErrorName::InvalidRequest,
                "could not resolve proxy did",
            ),
            (
                ProxyError::NoServiceEndpoint,
                400,
                ErrorName::InvalidRequest,
                "could not resolve proxy did service url",
            ),
            (
                ProxyError::NoServiceConfigured("app.bsky.feed.getTimeline".into()),
                400,
                ErrorName::InvalidRequest,
                "No service configured for app.bsky.feed.getTimeline",
            ),
            (
                ProxyError::RequestTooLarge,
                413,
                ErrorName::PayloadTooLarge,
                "Request body is larger than the proxy forwards",
            ),
            (
                ProxyError::Refused("forbidden protocol http".into()),
                502,
                ErrorName::UpstreamFailure,
                "Upstream service unreachable",
            ),
            (
                ProxyError::Unreachable("connection refused".into()),
                502,
                ErrorName::UpstreamFailure,
                "Upstream service unreachable",
            ),
            (
                ProxyError::Timeout,
                504,
                ErrorName::UpstreamTimeout,
                "Upstream service timed out",
            ),
            (
                ProxyError::ResponseTooLarge,
                502,
                ErrorName::UpstreamFailure,
                "Upstream response is too large",
            ),
        ];
        for (err, status, name, message) in cases {
            let x = XrpcError::from(err.clone());
            assert_eq!(x.status.as_u16(), status, "{err:?}");
            assert_eq!(x.error, name, "{err:?}");
            assert_eq!(x.message, message, "{err:?}");
        }
        let internal = XrpcError::from(ProxyError::Client("tls".into()));
        assert_eq!(internal.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(internal.detail(), Some("tls"));
    }

    #[test]
    fn http_methods_and_paths() {
        assert_eq!(check_http_method(&Method::GET), Ok(()));
        assert_eq!(check_http_method(&Method::HEAD), Ok(()));
        assert_eq!(check_http_method(&Method::POST), Ok(()));
        for m in [Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS] {
            assert_eq!(check_http_method(&m), Err(ProxyError::MethodNotAllowed));
        }
        assert_eq!(
            method_nsid("/xrpc/app.bsky.feed.getTimeline")
                .unwrap()
                .as_str(),
            "app.bsky.feed.getTimeline"
        );
        assert_eq!(
            method_nsid("/xrpc/app.bsky.feed.getTimeline/")
                .unwrap()
                .as_str(),
            "app.bsky.feed.getTimeline"
        );
        for bad in [
            "/xrpc/",
            "/xrpc/getTimeline",
            "/xrpc/app.bsky",
            "/xrpc/app.bsky.feed.get-timeline",
            "/xrpc/app.bsky.feed.getTimeline/x",
            "/other/app.bsky.feed.getTimeline",
            "/xrpc/app..bsky.feed",
        ] {
            assert_eq!(method_nsid(bad), Err(ProxyError::InvalidPath), "{bad}");
        }
    }

    #[test]
    fn method_authorization() {
        let caller = |privileged| Caller {
            did: "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse().unwrap(),
            keypair: Keypair::from_private_bytes(crate::crypto::Algorithm::K256, &[7; 32]).unwrap(),
            privileged,
            oauth: None,
        };
        let nsid = |s: &str| s.parse::<Nsid>().unwrap();
        let full = caller(true);
        let app_password = caller(false);
        let timeline = nsid("app.bsky.feed.getTimeline");
        let chat = nsid("chat.bsky.convo.sendMessage");
        let protected = nsid("com.atproto.server.revokeAppPassword");
        assert_eq!(authorize_method(&timeline, Some(&app_password)), Ok(()));
        assert_eq!(authorize_method(&timeline, None), Ok(()));
        assert_eq!(authorize_method(&chat, Some(&full)), Ok(()));
        assert_eq!(
            authorize_method(&chat, Some(&app_password)),
            Err(ProxyError::BadTokenMethod)
        );
        assert_eq!(
            authorize_method(&chat, None),
            Err(ProxyError::BadTokenMethod)
        );
        assert_eq!(
            authorize_method(&protected, Some(&full)),
            Err(ProxyError::BadTokenMethod)
        );
    }

    #[test]
    fn service_authorization_follows_rpc_permissions() {
        let with_scope = |scope: Option<&str>| Caller {
            did: "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse().unwrap(),
            keypair: Keypair::from_private_bytes(crate::crypto::Algorithm::K256, &[7; 32]).unwrap(),
            privileged: false,
            oauth: scope.map(|scope| {
                Arc::new(AccessGrant {
                    did: "did:plc:ewvi7nxzyoun6zhxrhs64oiz".into(),
                    client_id: "https://app.example/client-metadata.json".into(),
                    scope: scope.into(),
                    permissions: crate::oauth::scope::Permissions::from_scope(scope),
                })
            }),
        };
        let timeline: Nsid = "app.bsky.feed.getTimeline".parse().unwrap();
        let likes: Nsid = "app.bsky.feed.getLikes".parse().unwrap();
        let default = ProxyTarget::from_endpoint(
            &ServiceEndpoint {
                url: "https://api.bsky.app".parse().unwrap(),
                did: "did:web:api.bsky.app".into(),
            },
            "bsky_appview",
        );
        let named = ProxyTarget {
            service_id: Some("other".into()),
            ..default.clone()
        };
        let scoped = with_scope(Some(
            "atproto rpc:app.bsky.feed.getTimeline?aud=did:web:api.bsky.app%23bsky_appview",
        ));
        // Session tokens carry no permissions: nothing to check here.
        assert_eq!(
            authorize_service(&likes, &default, Some(&with_scope(None))),
            Ok(())
        );
        assert_eq!(authorize_service(&likes, &default, None), Ok(()));
        assert_eq!(
            authorize_service(&timeline, &default, Some(&scoped)),
            Ok(())
        );
        assert_eq!(
            authorize_service(&likes, &default, Some(&scoped)),
            Err(ProxyError::MissingScope(
                "rpc:app.bsky.feed.getLikes?aud=did:web:api.bsky.app#bsky_appview".into()
            ))
        );
        assert_eq!(
            authorize_service(&timeline, &named, Some(&scoped)),
            Err(ProxyError::MissingScope(
                "rpc:app.bsky.feed.getTimeline?aud=did:web:api.bsky.app#other".into()
            ))
        );
        // transition:generic allows every method but chat.
        let generic = with_scope(Some("atproto transition:generic"));
        assert_eq!(authorize_service(&likes, &named, Some(&generic)), Ok(()));
        let chat: Nsid = "chat.bsky.convo.listConvos".parse().unwrap();
        assert!(authorize_service(&chat, &default, Some(&generic)).is_err());
    }

    #[test]
    fn proxy_header_must_be_single_ascii() {
        let mut headers = HeaderMap::new();
        assert_eq!(single_header(&headers, PROXY_HEADER), Ok(None));
        headers.insert(PROXY_HEADER, HeaderValue::from_static("did:web:a.com#x"));
        assert_eq!(
            single_header(&headers, PROXY_HEADER),
            Ok(Some("did:web:a.com#x"))
        );
        headers.append(PROXY_HEADER, HeaderValue::from_static("did:web:b.com#x"));
        assert_eq!(
            single_header(&headers, PROXY_HEADER),
            Err(ProxyError::BadProxyHeader("invalid proxy header format"))
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            PROXY_HEADER,
            HeaderValue::from_bytes(b"did:web:\xe9#x").unwrap(),
        );
        assert_eq!(
            single_header(&headers, PROXY_HEADER),
            Err(ProxyError::BadProxyHeader("invalid proxy header format"))
        );
    }

    #[test]
    fn config_from_service_config() {
        let app_view = ServiceEndpoint {
            url: url::Url::parse("https://api.bsky.app").unwrap(),
            did: "did:web:api.bsky.app".into(),
        };
        let config = Config {
            bsky_app_view: Some(app_view.clone()),
            dev_mode: true,
            ..Config::default()
        };
        let proxy = ProxyConfig::from_config(&config);
        assert_eq!(proxy.app_view, Some(app_view));
        assert_eq!(proxy.report_service, None);
        assert!(proxy.allow_insecure);
        assert_eq!(proxy.headers_timeout, Duration::from_secs(10));
        assert_eq!(proxy.body_timeout, Duration::from_secs(30));
        assert_eq!(proxy.max_response_body, 10 * 1024 * 1024);
        assert!(!ProxyConfig::from_config(&Config::default()).allow_insecure);
    }
}
