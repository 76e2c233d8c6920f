//! The HTTP exchange with the upstream: the URL, the allow-listed headers each way, the
//! service token, streamed bodies under caps and timeouts, and the reference PDS's
//! treatment of upstream errors.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap,
    HeaderName, HeaderValue,
};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream::BoxStream;
use url::{Host, Url};

use super::{ProxyConfig, ProxyContext, ProxyError, ProxyTarget, check_http_method};
use crate::auth::{ServiceJwtParams, create_service_jwt};
use crate::crypto::Keypair;
use crate::identity::net::{HostLookup, is_public_ip};
use crate::syntax::{Did, Nsid};

/// Request headers passed upstream as they are (besides `accept-encoding`, which defaults
/// to `identity`, and the body headers of a POST).
pub const FORWARDED_REQUEST_HEADERS: [&str; 3] = [
    "accept-language",
    "atproto-accept-labelers",
    "x-bsky-topics",
];
/// Headers describing a POST body, passed upstream with it.
pub const FORWARDED_BODY_HEADERS: [&str; 3] =
    ["content-type", "content-encoding", "content-length"];
/// Response headers passed back with a successful upstream answer.
pub const FORWARDED_RESPONSE_HEADERS: [&str; 7] = [
    "content-length",
    "content-encoding",
    "content-type",
    "content-language",
    "atproto-repo-rev",
    "atproto-content-labelers",
    "retry-after",
];
/// Response headers passed back with a re-rendered upstream error.
pub const ERROR_RESPONSE_HEADERS: [&str; 3] = [
    "atproto-repo-rev",
    "atproto-content-labelers",
    "retry-after",
];
/// Largest upstream error body read to find its `error` and `message`; a longer one is
/// answered with the status's generic name.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// The HTTP client: no redirects, no environment proxies, and (unless insecure upstreams
/// are allowed) host names resolved only to public addresses.
pub(super) fn build_client(
    config: &ProxyConfig,
    hosts: Arc<dyn HostLookup>,
) -> Result<reqwest::Client, ProxyError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(config.headers_timeout)
        .user_agent(concat!("rookery/", env!("CARGO_PKG_VERSION")));
    if !config.allow_insecure {
        builder = builder.dns_resolver(Arc::new(PublicOnlyResolver { hosts }));
    }
    builder
        .build()
        .map_err(|e| ProxyError::Client(e.to_string()))
}

impl ProxyContext {
    /// Sends the request described by `parts` and `body` to `target` as
    /// `<endpoint>/xrpc/<lxm>?<same query>`, with a service token for `issuer` bound to
    /// `lxm`, and turns the upstream's answer into ours.
    pub async fn forward(
        &self,
        parts: &Parts,
        body: Body,
        target: &ProxyTarget,
        issuer: Option<(&Did, &Keypair)>,
        lxm: &Nsid,
    ) -> Result<Response, ProxyError> {
        check_http_method(&parts.method)?;
        let url = upstream_url(&target.endpoint, lxm, parts.uri.query());
        check_destination(&url, self.config.allow_insecure)?;

        let is_post = parts.method == Method::POST;
        let mut headers = request_headers(&parts.headers, is_post);
        if let Some((did, keypair)) = issuer {
            let params = ServiceJwtParams::new(
                did.to_string(),
                target.audience(),
                Some(lxm.to_string()),
                chrono::Utc::now().timestamp(),
            );
            let bearer = format!("Bearer {}", create_service_jwt(keypair, params));
            let value = HeaderValue::from_str(&bearer)
                .map_err(|e| ProxyError::Client(format!("service token header: {e}")))?;
            headers.insert(AUTHORIZATION, value);
        }

        let mut request = reqwest::Request::new(parts.method.clone(), url);
        *request.headers_mut() = headers;
        let too_large = Arc::new(AtomicBool::new(false));
        if is_post {
            let max = self.config.max_request_body;
            if declared_length(&parts.headers).is_some_and(|len| len > max) {
                return Err(ProxyError::RequestTooLarge);
            }
            *request.body_mut() = Some(capped_request_body(body, max, Arc::clone(&too_large)));
        }

        let sent = tokio::time::timeout(self.config.headers_timeout, self.client.execute(request));
        let response = match sent.await {
            Err(_) => return Err(ProxyError::Timeout),
            Ok(Err(_)) if too_large.load(Ordering::SeqCst) => {
                return Err(ProxyError::RequestTooLarge);
            }
            Ok(Err(e)) => {
                let err = map_request_error(&e);
                tracing::warn!(target_did = %target.did, error = %e, "proxy upstream request failed");
                return Err(err);
            }
            Ok(Ok(response)) => response,
        };

        if response.status().as_u16() >= 400 {
            return Ok(upstream_error(response, self.config.body_timeout).await);
        }
        // A HEAD answer declares the length of a body it does not carry.
        if parts.method != Method::HEAD
            && declared_length(response.headers())
                .is_some_and(|len| len > self.config.max_response_body)
        {
            return Err(ProxyError::ResponseTooLarge);
        }
        let mut answer = Response::builder().status(response.status());
        if let Some(out) = answer.headers_mut() {
            copy_headers(response.headers(), out, &FORWARDED_RESPONSE_HEADERS);
        }
        let body = streamed_response_body(
            response,
            self.config.max_response_body,
            self.config.body_timeout,
        );
        answer
            .body(body)
            .map_err(|e| ProxyError::Client(format!("response: {e}")))
    }
}

/// `<endpoint origin>/xrpc/<nsid>` with the client's query string unchanged; any path,
/// credentials or fragment of the endpoint are dropped.
fn upstream_url(endpoint: &Url, nsid: &Nsid, query: Option<&str>) -> Url {
    let mut url = endpoint.clone();
    url.set_path(&format!("/xrpc/{nsid}"));
    url.set_query(query);
    url.set_fragment(None);
    // Only fails for URLs that cannot have credentials, which then have none.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url
}

/// Refuses, unless insecure upstreams are allowed, anything but `https` and IP literals
/// that are not public unicast (host names are checked when they resolve).
fn check_destination(url: &Url, allow_insecure: bool) -> Result<(), ProxyError> {
    if allow_insecure {
        return Ok(());
    }
    if url.scheme() != "https" {
        return Err(ProxyError::Refused(format!(
            "forbidden protocol {:?}",
            url.scheme()
        )));
    }
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(Host::Domain(_)) => None,
        None => return Err(ProxyError::Refused("no host".into())),
    };
    match literal {
        Some(ip) if !is_public_ip(ip) => {
            Err(ProxyError::Refused(format!("{ip} is not a public address")))
        }
        _ => Ok(()),
    }
}

/// The allow-listed headers of the client's request: `accept-encoding` (default
/// `identity`), the [`FORWARDED_REQUEST_HEADERS`], and for a POST the
/// [`FORWARDED_BODY_HEADERS`].
fn request_headers(incoming: &HeaderMap, is_post: bool) -> HeaderMap {
    let mut out = HeaderMap::new();
    copy_headers(incoming, &mut out, &["accept-encoding"]);
    if !out.contains_key(ACCEPT_ENCODING) {
        out.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    copy_headers(incoming, &mut out, &FORWARDED_REQUEST_HEADERS);
    if is_post {
        copy_headers(incoming, &mut out, &FORWARDED_BODY_HEADERS);
    }
    out
}

/// Appends every value of each of `names` from `from` to `to`.
fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, names: &[&'static str]) {
    for name in names {
        let name = HeaderName::from_static(name);
        for value in from.get_all(&name) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// The `content-length` of a message, if declared and numeric.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The client's body as a stream for the upstream, failing (and raising `too_large`) once
/// more than `max` bytes have gone through.
fn capped_request_body(body: Body, max: u64, too_large: Arc<AtomicBool>) -> reqwest::Body {
    let mut seen: u64 = 0;
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen = seen.saturating_add(chunk.len() as u64);
        if seen > max {
            too_large.store(true, Ordering::SeqCst);
            return Err(std::io::Error::other("request body over the proxy limit"));
        }
        Ok::<Bytes, std::io::Error>(chunk)
    });
    reqwest::Body::wrap_stream(stream)
}

/// The upstream's body as ours: cut off with an error when a chunk takes longer than
/// `idle` to arrive or the total passes `max` bytes (the client then sees an aborted
/// response rather than a silently truncated one).
fn streamed_response_body(response: reqwest::Response, max: u64, idle: Duration) -> Body {
    struct State {
        upstream: BoxStream<'static, reqwest::Result<Bytes>>,
        seen: u64,
        done: bool,
    }
    let state = State {
        upstream: response.bytes_stream().boxed(),
        seen: 0,
        done: false,
    };
    let stream = futures::stream::unfold(state, move |mut state| async move {
        if state.done {
            return None;
        }
        let failure = match tokio::time::timeout(idle, state.upstream.next()).await {
            Ok(None) => return None,
            Ok(Some(Ok(chunk))) => {
                state.seen = state.seen.saturating_add(chunk.len() as u64);
                if state.seen <= max {
                    return Some((Ok(chunk), state));
                }
                std::io::Error::other("upstream response over the proxy limit")
            }
            Ok(Some(Err(e))) => std::io::Error::other(e),
            Err(_) => std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "upstream response body timed out",
            ),
        };
        tracing::warn!(error = %failure, "proxied response cut off");
        state.done = true;
        Some((Err(failure), state))
    });
    Body::from_stream(stream)
}

/// The answer to an upstream error (status ≥ 400), as the reference PDS gives it: status
/// 500 becomes 502; statuses XRPC does not name become 400 (4xx) or 500 (5xx); a JSON body's
/// `error` and `message` strings are kept, else the status's generic name stands in. A
/// compressed JSON body is passed through as it is, since this server does not decode.
async fn upstream_error(response: reqwest::Response, idle: Duration) -> Response {
    let status = downstream_status(response.status().as_u16());
    let mut headers = HeaderMap::new();
    copy_headers(response.headers(), &mut headers, &ERROR_RESPONSE_HEADERS);
    let content_type = response.headers().get(CONTENT_TYPE).cloned();
    let encoding = response
        .headers()
        .get(CONTENT_ENCODING)
        .filter(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
        .cloned();
    let json = content_type
        .as_ref()
        .is_none_or(|ct| ct.to_str().is_ok_and(is_json_content_type));
    let body = if json {
        read_error_body(response, idle).await
    } else {
        None
    };
    let (error, message) = match (body, encoding) {
        (Some(body), Some(encoding)) => {
            headers.insert(CONTENT_ENCODING, encoding);
            if let Some(ct) = content_type {
                headers.insert(CONTENT_TYPE, ct);
            }
            return (status, headers, body).into_response();
        }
        (Some(body), None) => error_fields(&body),
        (None, _) => (None, None),
    };
    let (error, message) = render_error(status, error, message);
    let json = serde_json::json!({ "error": error, "message": message });
    (status, headers, axum::Json(json)).into_response()
}

/// Reads an error body of at most [`MAX_ERROR_BODY`] bytes; `None` when longer, slow or
/// broken.
async fn read_error_body(response: reqwest::Response, idle: Duration) -> Option<Bytes> {
    if declared_length(response.headers()).is_some_and(|len| len > MAX_ERROR_BODY as u64) {
        return None;
    }
    let mut upstream = response.bytes_stream();
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(idle, upstream.next()).await {
            Ok(None) => return Some(Bytes::from(body)),
            Ok(Some(Ok(chunk))) if body.len() + chunk.len() <= MAX_ERROR_BODY => {
                body.extend_from_slice(&chunk);
            }
            _ => return None,
        }
    }
}

/// The `error` and `message` strings of a JSON error body, when present.
fn error_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(body) else {
        return (None, None);
    };
    let text = |key: &str| fields.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    (text("error"), text("message"))
}

/// The status we answer for an upstream error status.
fn downstream_status(upstream: u16) -> StatusCode {
    let status = match upstream {
        500 => 502,
        400 | 401 | 403 | 404 | 406 | 413 | 415 | 429 | 501..=504 => upstream,
        400..=499 => 400,
        _ => 500,
    };
    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY)
}

/// The XRPC name of a status [`downstream_status`] can produce.
fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "InvalidRequest",
        401 => "AuthenticationRequired",
        403 => "Forbidden",
        404 => "XRPCNotSupported",
        406 => "NotAcceptable",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        429 => "RateLimitExceeded",
        501 => "MethodNotImplemented",
        502 => "UpstreamFailure",
        503 => "NotEnoughResources",
        504 => "UpstreamTimeout",
        _ => "InternalServerError",
    }
}

/// The `error` and `message` we send: the upstream's `error`, else the status's name; the
/// upstream's `message`, else the error name; a 500 always says "Internal Server Error".
fn render_error(
    status: StatusCode,
    error: Option<String>,
    message: Option<String>,
) -> (String, String) {
    let error = error
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| status_name(status).to_owned());
    let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
        crate::error::INTERNAL_ERROR_MESSAGE.to_owned()
    } else {
        message
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| error.clone())
    };
    (error, message)
}

/// Whether a content type is JSON (`application/json` or `application/<word>+json`,
/// anywhere in the value, case-insensitively), as the reference tests it.
pub fn is_json_content_type(content_type: &str) -> bool {
    let lower = content_type.to_ascii_lowercase();
    lower.match_indices("application/").any(|(at, prefix)| {
        let rest = lower.get(at + prefix.len()..).unwrap_or_default();
        if rest.starts_with("json") {
            return true;
        }
        let word = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        word > 0 && rest.get(word..).is_some_and(|r| r.starts_with("+json"))
    })
}

/// Classifies a failed exchange: a refused address, a timeout, or anything else.
fn map_request_error(e: &reqwest::Error) -> ProxyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<RefusedHost>() {
            return ProxyError::Refused(refused.to_string());
        }
        source = err.source();
    }
    if e.is_timeout() {
        ProxyError::Timeout
    } else {
        ProxyError::Unreachable(e.to_string())
    }
}

/// Raised in the resolver for a host with no address we may dial.
#[derive(Debug)]
struct RefusedHost(String);

impl std::fmt::Display for RefusedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves to no public address", self.0)
    }
}

impl std::error::Error for RefusedHost {}

/// Resolves through a [`HostLookup`] and keeps only public unicast addresses, so the check
/// holds for the address actually dialled.
struct PublicOnlyResolver {
    hosts: Arc<dyn HostLookup>,
}

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let hosts = Arc::clone(&self.hosts);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = hosts
                .lookup_ip(&host)
                .await
                .map_err(|e| Box::new(e) as Box<_>)?;
            let public: Vec<SocketAddr> = ips
                .into_iter()
                .filter(|ip| is_public_ip(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if public.is_empty() {
                return Err(Box::new(RefusedHost(host)) as Box<_>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        let nsid: Nsid = "app.bsky.feed.getTimeline".parse().unwrap();
        let url = |endpoint: &str, query| {
            upstream_url(&Url::parse(endpoint).unwrap(), &nsid, query).to_string()
        };
        assert_eq!(
            url("https://api.bsky.app", Some("limit=30&cursor=a%2Fb")),
            "https://api.bsky.app/xrpc/app.bsky.feed.getTimeline?limit=30&cursor=a%2Fb"
        );
        assert_eq!(
            url(
                "https://user:pw@api.bsky.app:8443/base/path/?x=1#frag",
                None
            ),
            "https://api.bsky.app:8443/xrpc/app.bsky.feed.getTimeline"
        );
        assert_eq!(
            url("http://127.0.0.1:2584/", Some("uris=at%3A%2F%2Fa&uris=b")),
            "http://127.0.0.1:2584/xrpc/app.bsky.feed.getTimeline?uris=at%3A%2F%2Fa&uris=b"
        );
        assert_eq!(
            url("https://api.bsky.app", Some("")),
            "https://api.bsky.app/xrpc/app.bsky.feed.getTimeline?"
        );
    }

    #[test]
    fn destinations() {
        let check = |u: &str, insecure| check_destination(&Url::parse(u).unwrap(), insecure);
        assert_eq!(check("https://api.bsky.app", false), Ok(()));
        assert_eq!(check("https://8.8.8.8", false), Ok(()));
        assert_eq!(check("http://127.0.0.1:2584", true), Ok(()));
        assert_eq!(check("http://api.bsky.app", true), Ok(()));
        assert_eq!(
            check("http://api.bsky.app", false),
            Err(ProxyError::Refused("forbidden protocol \"http\"".into()))
        );
        for private in [
            "https://127.0.0.1:2584",
            "https://10.0.0.1",
            "https://[::1]:443",
        ] {
            assert!(
                matches!(check(private, false), Err(ProxyError::Refused(_))),
                "{private}"
            );
        }
    }

    #[test]
    fn only_allow_listed_request_headers() {
        let mut incoming = HeaderMap::new();
        for (k, v) in [
            ("accept-language", "en, fr;q=0.5"),
            (
                "atproto-accept-labelers",
                "did:plc:ar7c4by46qjdydhdevvrndac;redact",
            ),
            ("x-bsky-topics", "a,b"),
            ("content-type", "application/json"),
            ("content-length", "2"),
            ("authorization", "Bearer client-token"),
            ("cookie", "session=1"),
            ("atproto-proxy", "did:web:api.bsky.app#bsky_appview"),
            ("x-forwarded-for", "1.2.3.4"),
            ("dpop", "proof"),
        ] {
            incoming.append(k, HeaderValue::from_static(v));
        }
        incoming.append("accept-language", HeaderValue::from_static("de"));
        let names = |h: &HeaderMap| {
            let mut v: Vec<String> = h.keys().map(|k| k.to_string()).collect();
            v.sort();
            v
        };
        let get = request_headers(&incoming, false);
        assert_eq!(
            names(&get),
            [
                "accept-encoding",
                "accept-language",
                "atproto-accept-labelers",
                "x-bsky-topics"
            ]
        );
        assert_eq!(get["accept-encoding"], "identity");
        let languages: Vec<_> = get.get_all("accept-language").iter().collect();
        assert_eq!(languages, ["en, fr;q=0.5", "de"]);

        incoming.insert("accept-encoding", HeaderValue::from_static("gzip, br"));
        let post = request_headers(&incoming, true);
        assert_eq!(
            names(&post),
            [
                "accept-encoding",
                "accept-language",
                "atproto-accept-labelers",
                "content-length",
                "content-type",
                "x-bsky-topics"
            ]
        );
        assert_eq!(post["accept-encoding"], "gzip, br");
    }

    #[test]
    fn error_statuses_and_names() {
        let cases = [
            (400, 400, "InvalidRequest"),
            (401, 401, "AuthenticationRequired"),
            (403, 403, "Forbidden"),
            (404, 404, "XRPCNotSupported"),
            (406, 406, "NotAcceptable"),
            (409, 400, "InvalidRequest"),
            (413, 413, "PayloadTooLarge"),
            (415, 415, "UnsupportedMediaType"),
            (418, 400, "InvalidRequest"),
            (429, 429, "RateLimitExceeded"),
            (500, 502, "UpstreamFailure"),
            (501, 501, "MethodNotImplemented"),
            (502, 502, "UpstreamFailure"),
            (503, 503, "NotEnoughResources"),
            (504, 504, "UpstreamTimeout"),
            (505, 500, "InternalServerError"),
            (599, 500, "InternalServerError"),
        ];
        for (upstream, ours, name) in cases {
            let status = downstream_status(upstream);
            assert_eq!(status.as_u16(), ours, "{upstream}");
            assert_eq!(status_name(status), name, "{upstream}");
        }
    }

    #[test]
    fn error_rendering() {
        let s = |n| StatusCode::from_u16(n).unwrap();
        let some = |t: &str| Some(t.to_owned());
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            render_error(
                s(400),
                some("BlockedActor"),
                some("Requester has blocked actor")
            ),
            pair("BlockedActor", "Requester has blocked actor")
        );
        assert_eq!(
            render_error(s(400), some("NotFound"), None),
            pair("NotFound", "NotFound")
        );
        assert_eq!(
            render_error(s(404), None, None),
            pair("XRPCNotSupported", "XRPCNotSupported")
        );
        assert_eq!(
            render_error(s(502), None, some("boom")),
            pair("UpstreamFailure", "boom")
        );
        assert_eq!(
            render_error(s(500), some("Oops"), some("secret detail")),
            pair("Oops", "Internal Server Error")
        );
        assert_eq!(
            render_error(s(429), some(""), some("")),
            pair("RateLimitExceeded", "RateLimitExceeded")
        );
    }

    #[test]
    fn error_body_fields() {
        let fields = |b: &str| error_fields(b.as_bytes());
        assert_eq!(
            fields(r#"{"error":"InvalidRequest","message":"bad cursor","x":1}"#),
            (Some("InvalidRequest".into()), Some("bad cursor".into()))
        );
        assert_eq!(fields(r#"{"error":7,"message":null}"#), (None, None));
        assert_eq!(fields(r#"["error"]"#), (None, None));
        assert_eq!(fields("<html>"), (None, None));
        assert_eq!(fields(""), (None, None));
    }

    #[test]
    fn json_content_types() {
        for yes in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/problem+json",
            "text/plain, application/ld+json",
            "application/jsonx",
        ] {
            assert!(is_json_content_type(yes), "{yes}");
        }
        for no in [
            "text/html",
            "application/cbor",
            "application/+json",
            "application/a-b+json",
            "text/json",
            "",
        ] {
            assert!(!is_json_content_type(no), "{no}");
        }
    }

    #[test]
    fn declared_lengths() {
        let mut h = HeaderMap::new();
        assert_eq!(declared_length(&h), None);
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("1024"));
        assert_eq!(declared_length(&h), Some(1024));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("-1"));
        assert_eq!(declared_length(&h), None);
    }
}
