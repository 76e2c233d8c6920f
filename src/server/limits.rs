//! Request rate limits, with the reference PDS's names and numbers (see
//! [`crate::config::RateLimitPolicy`]): every XRPC call per client address and some methods
//! (`createAccount`, `uploadBlob`, password resets, …) per address, checked by
//! [`limit_requests`]; repository writes in points per account and `createSession` per
//! identifier and address, checked by their handlers, which know the account and the
//! identifier.
//!
//! A refused call gets 429 `RateLimitExceeded` with the reference's `RateLimit-Limit`,
//! `RateLimit-Remaining`, `RateLimit-Reset` (UNIX seconds) and `RateLimit-Policy`
//! (`{limit};w={window seconds}`) headers; an allowed one carries the same headers for the
//! tightest limit it counted against.
//!
//! The client address is the socket's peer, or the last address in
//! `ROOKERY_TRUSTED_PROXY_HEADER` when that is configured (only a proxy in front can be
//! trusted to set it). Requests with `x-ratelimit-bypass: PDS_RATE_LIMIT_BYPASS_KEY` or from
//! `PDS_RATE_LIMIT_BYPASS_IPS` are not limited, nor is anything when
//! `PDS_RATE_LIMITS_ENABLED` is off.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::accounts::{LimitStatus, RateLimiter};
use crate::config::{Config, IpBlock, Secret};
use crate::error::XrpcError;
use crate::syntax::Did;

/// Most distinct keys each limiter tracks before it evicts idle ones.
const MAX_KEYS: usize = 100_000;
/// The header that carries `PDS_RATE_LIMIT_BYPASS_KEY`.
pub const BYPASS_HEADER: &str = "x-ratelimit-bypass";

/// Who is calling, as the limits see it; put in every request's extensions by
/// [`limit_requests`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// The client address (see the module documentation); `None` without a socket.
    pub ip: Option<IpAddr>,
    /// Whether no limit applies to this request.
    pub exempt: bool,
}

impl Client {
    /// The address as a limiter key.
    pub fn key(&self) -> String {
        self.ip
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// The limiters and the rules deciding whom they apply to.
#[derive(Debug)]
pub struct RateLimits {
    enabled: bool,
    bypass_key: Option<Secret>,
    bypass_ips: Vec<IpBlock>,
    proxy_header: Option<HeaderName>,
    global: RateLimiter,
    repo_write: RateLimiter,
    create_session: RateLimiter,
    /// By the path of the method (`/xrpc/{nsid}`).
    per_address: HashMap<String, RateLimiter>,
}

/// Compares without stopping at the first difference.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl RateLimits {
    pub fn new(config: &Config) -> Self {
        let policy = &config.rate_limits;
        let limiter = |limits: &[crate::accounts::RateLimit]| RateLimiter::new(limits, MAX_KEYS);
        RateLimits {
            enabled: config.rate_limits_enabled,
            bypass_key: config.rate_limit_bypass_key.clone(),
            bypass_ips: config.rate_limit_bypass_ips.clone(),
            proxy_header: config
                .trusted_proxy_header
                .as_deref()
                .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
            global: limiter(&policy.global_ip),
            repo_write: limiter(&policy.repo_write),
            create_session: limiter(&policy.create_session),
            per_address: policy
                .per_address
                .iter()
                .map(|m| (format!("/xrpc/{}", m.nsid), limiter(&m.limits)))
                .collect(),
        }
    }

    /// The client of a request with these `headers`, from socket address `peer`.
    pub fn client(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Client {
        let forwarded = self.proxy_header.as_ref().and_then(|name| {
            let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
            let last = value.rsplit(',').next()?.trim();
            last.parse::<IpAddr>()
                .ok()
                .or_else(|| last.parse::<SocketAddr>().ok().map(|a| a.ip()))
        });
        let ip = forwarded.or(peer);
        let by_key = self.bypass_key.as_ref().is_some_and(|key| {
            headers
                .get(BYPASS_HEADER)
                .is_some_and(|v| same_secret(v.as_bytes(), key.expose().as_bytes()))
        });
        let by_ip = ip.is_some_and(|ip| self.bypass_ips.iter().any(|b| b.contains(ip)));
        Client {
            ip,
            exempt: !self.enabled || by_key || by_ip,
        }
    }

    fn consume(
        &self,
        limiter: &RateLimiter,
        client: &Client,
        key: &str,
        cost: u32,
    ) -> Result<Option<LimitStatus>, LimitStatus> {
        if client.exempt {
            return Ok(None);
        }
        limiter.consume(key, crate::accounts::rate_limit::now_secs(), cost)
    }

    /// Counts a repository write of `points` (create 3, update 2, delete 1) against `did`.
    pub fn repo_write(
        &self,
        client: &Client,
        did: &Did,
        points: u32,
    ) -> Result<Option<LimitStatus>, LimitStatus> {
        self.consume(&self.repo_write, client, did.as_str(), points)
    }

    /// Counts a `createSession` for `identifier` (normalised) from `client`.
    pub fn create_session(
        &self,
        client: &Client,
        identifier: &str,
    ) -> Result<Option<LimitStatus>, LimitStatus> {
        let key = RateLimiter::create_session_key(identifier, &client.key());
        self.consume(&self.create_session, client, &key, 1)
    }
}

/// Sets the `RateLimit-*` headers of `status`.
pub fn set_headers(headers: &mut HeaderMap, status: &LimitStatus) {
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put("ratelimit-limit", status.limit.points.to_string());
    put("ratelimit-remaining", status.remaining.to_string());
    put("ratelimit-reset", status.reset.to_string());
    put(
        "ratelimit-policy",
        format!("{};w={}", status.limit.points, status.limit.window_secs),
    );
}

/// The 429 `RateLimitExceeded` answer for a refused request.
pub fn too_many(status: &LimitStatus, message: &str) -> Response {
    let mut response = XrpcError::rate_limit_exceeded(message).into_response();
    set_headers(response.headers_mut(), status);
    response
}

/// Middleware: records the [`Client`] in the request and applies the per-address limits to
/// XRPC calls (not to `/xrpc/_health`).
pub async fn limit_requests(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let limits = state.rate_limits();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let client = limits.client(request.headers(), peer);
    let path = request.uri().path();
    let limited = !client.exempt && path.starts_with("/xrpc/") && path != "/xrpc/_health";
    let mut status: Option<LimitStatus> = None;
    if limited {
        let key = client.key();
        let route = limits.per_address.get(path);
        for limiter in std::iter::once(&limits.global).chain(route) {
            match limits.consume(limiter, &client, &key, 1) {
                Ok(Some(s)) => status = Some(status.map_or(s, |t| t.tighter(s))),
                Ok(None) => {}
                Err(refused) => return too_many(&refused, "Rate Limit Exceeded"),
            }
        }
    }
    request.extensions_mut().insert(client);
    let mut response = next.run(request).await;
    if let Some(status) = status
        && !response.headers().contains_key("ratelimit-limit")
    {
        set_headers(response.headers_mut(), &status);
    }
    response
}
