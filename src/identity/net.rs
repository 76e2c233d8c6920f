//! Outbound HTTP to hosts that users name (handles, `did:web`), guarded against SSRF.
//!
//! A handle or `did:web` host is chosen by whoever registers it, so fetching it must not
//! become a way to reach our own network. [`GuardedHttp`] resolves every host itself (through
//! an injectable [`HostLookup`]) and only connects to public unicast addresses — the check
//! sits in the connector, so it also holds for the address actually dialled, not just one
//! looked up earlier. Redirects are never followed, every request has a deadline, and bodies
//! are read up to a cap.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

/// Resolves a host name to IP addresses. Injectable so tests can map names to 127.0.0.1.
pub trait HostLookup: Send + Sync {
    fn lookup_ip<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemHostLookup;

impl HostLookup for SystemHostLookup {
    fn lookup_ip<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// Whether an address is globally routable unicast, i.e. safe to fetch on a user's behalf.
/// Refuses loopback, private (RFC 1918), shared (CGNAT), link-local, unique-local (ULA),
/// multicast, broadcast, unspecified, documentation, benchmarking and reserved ranges, and
/// looks inside IPv4-mapped, NAT64 and 6to4 IPv6 addresses.
pub(crate) fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let seg = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        return is_public_v4(embedded(seg[6], seg[7])); // NAT64 well-known prefix
    }
    if seg[0] == 0x2002 {
        return is_public_v4(embedded(seg[1], seg[2])); // 6to4
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || seg[0..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
        || (seg[0] & 0xff00) == 0xff00 // multicast
        || (seg[0] & 0xfe00) == 0xfc00 // unique local
        || (seg[0] & 0xffc0) == 0xfe80 // link-local
        || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0])) // discard-only
}

/// Settings of a [`GuardedHttp`].
#[derive(Debug, Clone)]
pub(crate) struct GuardedConfig {
    /// Deadline for a whole request, body included.
    pub timeout: Duration,
    /// Largest body read; longer answers are an error.
    pub max_body: usize,
    /// Dev/test only: allow loopback and private addresses.
    pub allow_private: bool,
}

/// Why a guarded fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The host resolves only to addresses we refuse to contact.
    #[error("refusing to connect to a non-public address for {0}")]
    Forbidden(String),
    /// The host name did not resolve to any address.
    #[error("host {0} does not resolve")]
    UnknownHost(String),
    #[error("request timed out")]
    Timeout,
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("request failed: {0}")]
    Transport(String),
    #[error("invalid URL")]
    BadUrl,
}

/// A successful exchange (any status; callers decide what a status means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
}

/// An HTTP client for user-named hosts: SSRF-guarded, no redirects, deadlines, size caps.
#[derive(Clone)]
pub(crate) struct GuardedHttp {
    client: reqwest::Client,
    config: GuardedConfig,
}

impl std::fmt::Debug for GuardedHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedHttp")
            .field("config", &self.config)
            .finish()
    }
}

impl GuardedHttp {
    pub(crate) fn new(
        config: GuardedConfig,
        hosts: Arc<dyn HostLookup>,
    ) -> Result<Self, FetchError> {
        let resolver = GuardedResolver {
            hosts,
            allow_private: config.allow_private,
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("rookery/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(resolver))
            .build()
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        Ok(GuardedHttp { client, config })
    }

    pub(crate) fn config(&self) -> &GuardedConfig {
        &self.config
    }

    /// GETs `url` with the given `Accept` header, within the deadline and body cap.
    pub(crate) async fn get(&self, url: &str, accept: &str) -> Result<Fetched, FetchError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| FetchError::BadUrl)?;
        // IP literals never reach the resolver, so check them here.
        let host = parsed.host_str().ok_or(FetchError::BadUrl)?;
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if let Some(ip) = literal
            && !self.config.allow_private
            && !is_public_ip(ip)
        {
            return Err(FetchError::Forbidden(ip.to_string()));
        }
        let request = async {
            let response = self
                .client
                .get(parsed)
                .header(reqwest::header::ACCEPT, accept)
                .send()
                .await
                .map_err(map_reqwest_error)?;
            let status = response.status().as_u16();
            let body = read_capped(response, self.config.max_body).await?;
            Ok(Fetched { status, body })
        };
        tokio::time::timeout(self.config.timeout, request)
            .await
            .map_err(|_| FetchError::Timeout)?
    }
}

/// Reads a response body, failing as soon as it exceeds `max` bytes.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, FetchError> {
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(FetchError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(map_reqwest_error)? {
        if body.len() + chunk.len() > max {
            return Err(FetchError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn map_reqwest_error(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(forbidden) = err.downcast_ref::<ForbiddenAddress>() {
            return FetchError::Forbidden(forbidden.0.clone());
        }
        if let Some(unknown) = err.downcast_ref::<UnknownHost>() {
            return FetchError::UnknownHost(unknown.0.clone());
        }
        source = err.source();
    }
    if e.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Transport(e.to_string())
    }
}

/// Raised inside the connector when a host has no acceptable address.
#[derive(Debug)]
struct ForbiddenAddress(String);

impl std::fmt::Display for ForbiddenAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves only to non-public addresses", self.0)
    }
}

impl std::error::Error for ForbiddenAddress {}

/// Raised inside the connector when a host name does not resolve.
#[derive(Debug)]
struct UnknownHost(String);

impl std::fmt::Display for UnknownHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} does not resolve", self.0)
    }
}

impl std::error::Error for UnknownHost {}

struct GuardedResolver {
    hosts: Arc<dyn HostLookup>,
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let hosts = Arc::clone(&self.hosts);
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = match hosts.lookup_ip(&host).await {
                Ok(ips) if !ips.is_empty() => ips,
                _ => return Err(Box::new(UnknownHost(host)) as Box<_>),
            };
            let allowed: Vec<SocketAddr> = ips
                .into_iter()
                .filter(|ip| allow_private || is_public_ip(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(ForbiddenAddress(host)) as Box<_>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_private_addresses() {
        let refused = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::a00:1",
            "2002:c0a8:0101::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "100::1",
        ];
        for s in refused {
            let ip: IpAddr = s.parse().unwrap();
            assert!(!is_public_ip(ip), "{s} must be refused");
        }
        let allowed = [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.254",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ];
        for s in allowed {
            let ip: IpAddr = s.parse().unwrap();
            assert!(is_public_ip(ip), "{s} must be allowed");
        }
    }
}
