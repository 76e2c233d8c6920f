//! A small S3 client over reqwest: SigV4-signed requests, retries with back-off, and the
//! operations the blob store ([`crate::blobs::S3BlobStore`]) and replication
//! ([`crate::replica::Bucket`]) use.
//!
//! Credentials are the configuration's static keys, else `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`); without either, requests go out
//! unsigned. The region is the configuration's, else `AWS_REGION` / `AWS_DEFAULT_REGION`,
//! else `us-east-1`; the endpoint the configuration's, else `AWS_ENDPOINT_URL_S3` /
//! `AWS_ENDPOINT_URL`, else AWS. Small bodies are signed with their SHA-256; files are
//! streamed as `UNSIGNED-PAYLOAD`.

pub mod sign;
pub mod xml;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest as _, Md5};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::config::S3Config;

/// Attempts per request, the first included.
pub const MAX_ATTEMPTS: u32 = 5;
/// Back-off before the second attempt; doubled each time, up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One attempt, up to the response headers: a part of up to 8 MiB, or the headers of a GET.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Region used when neither the configuration nor the environment names one (R2 and
/// MinIO accept any; `auto` is R2's own).
pub const FALLBACK_REGION: &str = "us-east-1";

/// A failed S3 request (after retries).
#[derive(Debug, Clone)]
pub enum Error {
    /// No (complete) response: connection refused, timeout, broken connection.
    Transport(String),
    /// An error response from the service.
    Service {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// A local failure or a response that makes no sense.
    Other(String),
}

impl Error {
    /// The S3 error code (`NoSuchKey`, `SlowDown`, …), if the response had one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Service { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status of an error response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (transport failures, throttling, 5xx).
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Service { status, code, .. } => {
                *status == 429
                    || *status >= 500
                    || matches!(
                        code.as_deref(),
                        Some(
                            "SlowDown"
                                | "Throttling"
                                | "ThrottlingException"
                                | "RequestTimeout"
                                | "RequestTimeTooSkewed"
                                | "InternalError"
                                | "ServiceUnavailable"
                        )
                    )
            }
            Error::Other(_) => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Transport(m) => write!(f, "transport error: {m}"),
            Error::Service {
                status,
                code,
                message,
            } => {
                write!(f, "HTTP {status}")?;
                if let Some(code) = code {
                    write!(f, " {code}")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A request body; every kind can be sent again on a retry.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    /// Sent with its SHA-256 as the payload hash.
    Bytes(Bytes),
    /// A file, re-opened on each attempt and streamed (`UNSIGNED-PAYLOAD`).
    File(PathBuf),
}

/// Static or session credentials.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The client: one endpoint, region and set of credentials. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    endpoint: Url,
    path_style: bool,
    region: String,
    credentials: Option<Credentials>,
}

/// One request before signing.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub bucket: String,
    /// Empty for bucket operations.
    pub key: String,
    pub query: Vec<(String, String)>,
    /// Extra headers (all signed), lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Request {
    pub fn new(method: Method, bucket: &str, key: &str) -> Request {
        Request {
            method,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub fn query(mut self, name: &str, value: &str) -> Request {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: Body) -> Request {
        self.body = body;
        self
    }
}

/// The URL and headers of one signed attempt.
#[derive(Debug)]
struct Prepared {
    url: Url,
    headers: Vec<(String, String)>,
}

/// A successful response, body not yet read.
pub struct Response(reqwest::Response);

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// `Content-Length`.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }

    pub async fn bytes(self) -> Result<Bytes> {
        self.0
            .bytes()
            .await
            .map_err(|e| Error::Transport(error_chain(&e)))
    }

    pub async fn text(self) -> Result<String> {
        let bytes = self.bytes().await?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::Other("response is not UTF-8".into()))
    }

    /// The body as a stream of chunks.
    pub fn stream(self) -> futures::stream::BoxStream<'static, std::io::Result<Bytes>> {
        self.0.bytes_stream().map_err(std::io::Error::other).boxed()
    }
}

/// One object of a listing.
#[derive(Debug, Clone)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<SystemTime>,
}

/// One page of `ListObjectsV2`.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    /// The token of the next page, when the listing is truncated.
    pub next: Option<String>,
}

/// One page of `ListMultipartUploads`.
#[derive(Debug, Clone, Default)]
pub struct UploadsPage {
    /// `(key, upload id)`.
    pub uploads: Vec<(String, String)>,
    /// `(key marker, upload id marker)` of the next page, when truncated.
    pub next: Option<(String, Option<String>)>,
}

/// A key `DeleteObjects` could not delete.
#[derive(Debug, Clone)]
pub struct DeleteError {
    pub key: String,
    pub code: String,
    pub message: String,
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Bucket names usable as a DNS label of a TLS host name.
fn virtual_host_compatible(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-')
}

impl Client {
    /// A client for `config`'s endpoint, region and credentials (environment fallbacks
    /// as the module documentation says).
    pub fn new(config: &S3Config) -> Client {
        let region = config
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| FALLBACK_REGION.to_owned());
        let credentials = match &config.credentials {
            Some(c) => Some(Credentials {
                access_key_id: c.access_key_id.clone(),
                secret_access_key: c.secret_access_key.expose().to_owned(),
                session_token: None,
            }),
            None => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
                    access_key_id,
                    secret_access_key,
                    session_token: env("AWS_SESSION_TOKEN"),
                }),
                _ => {
                    tracing::warn!(
                        "no S3 credentials in the configuration or the environment: requests are unsigned"
                    );
                    None
                }
            },
        };
        let endpoint = config
            .endpoint
            .clone()
            .or_else(|| {
                env("AWS_ENDPOINT_URL_S3")
                    .or_else(|| env("AWS_ENDPOINT_URL"))
                    .and_then(|u| Url::parse(&u).ok())
            })
            .unwrap_or_else(|| {
                Url::parse(&format!("https://s3.{region}.amazonaws.com"))
                    .unwrap_or_else(|_| Url::parse("https://s3.amazonaws.com").expect("static URL"))
            });
        Client::with_parts(endpoint, config.force_path_style, region, credentials)
    }

    /// A client from its parts.
    pub fn with_parts(
        endpoint: Url,
        path_style: bool,
        region: String,
        credentials: Option<Credentials>,
    ) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Client {
            inner: Arc::new(Inner {
                http,
                endpoint,
                path_style,
                region,
                credentials,
            }),
        }
    }

    /// The URL and signed headers of `req` at `now` (`payload_hash` of its body).
    fn prepare(&self, req: &Request, payload_hash: &str, now: SystemTime) -> Result<Prepared> {
        let inner = &self.inner;
        let scheme = inner.endpoint.scheme();
        let base_host = inner
            .endpoint
            .host_str()
            .ok_or_else(|| Error::Other("S3 endpoint without a host".into()))?;
        let port = inner
            .endpoint
            .port()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        let base_path = inner.endpoint.path().trim_end_matches('/');
        let key = sign::uri_encode(&req.key, true);
        let virtual_host = !inner.path_style && virtual_host_compatible(&req.bucket);
        let (host, path) = if req.bucket.is_empty() {
            (format!("{base_host}{port}"), format!("{base_path}/"))
        } else if virtual_host {
            (
                format!("{}.{base_host}{port}", req.bucket),
                format!("{base_path}/{key}"),
            )
        } else if req.key.is_empty() {
            (
                format!("{base_host}{port}"),
                format!("{base_path}/{}", sign::uri_encode(&req.bucket, false)),
            )
        } else {
            (
                format!("{base_host}{port}"),
                format!("{base_path}/{}/{key}", sign::uri_encode(&req.bucket, false)),
            )
        };
        let query = sign::canonical_query(&req.query);
        let mut text = format!("{scheme}://{host}{path}");
        if !query.is_empty() {
            text.push('?');
            text.push_str(&query);
        }
        let url = Url::parse(&text).map_err(|e| Error::Other(format!("bad S3 URL {text}: {e}")))?;
        // The URL parser removes `.` and `..` segments: such a key would be sent (and
        // signed) as another one.
        if url.path() != path {
            return Err(Error::Other(format!(
                "key {:?} cannot be addressed (dot segments)",
                req.key
            )));
        }
        let amz_date = chrono::DateTime::<chrono::Utc>::from(now)
            .format("%Y%m%dT%H%M%SZ")
            .to_string();
        let mut headers = req.headers.clone();
        headers.push(("x-amz-date".into(), amz_date.clone()));
        headers.push(("x-amz-content-sha256".into(), payload_hash.to_owned()));
        if let Some(creds) = &inner.credentials {
            if let Some(token) = &creds.session_token {
                headers.push(("x-amz-security-token".into(), token.clone()));
            }
            let mut signed = headers.clone();
            signed.push(("host".into(), host.clone()));
            let authorization = sign::authorization(
                &creds.access_key_id,
                &creds.secret_access_key,
                &sign::Signing {
                    method: req.method.as_str(),
                    canonical_uri: url.path(),
                    canonical_query: &query,
                    headers: &signed,
                    payload_hash,
                    amz_date: &amz_date,
                    region: &inner.region,
                },
            );
            headers.push(("authorization".into(), authorization));
        }
        Ok(Prepared { url, headers })
    }

    /// Sends `req`, retrying transient failures with exponential back-off; a non-2xx
    /// response is an [`Error::Service`] with the code and message of its XML body.
    pub async fn send(&self, req: Request) -> Result<Response> {
        let payload_hash = match &req.body {
            Body::Empty => sign::EMPTY_SHA256.to_owned(),
            Body::Bytes(b) => sign::sha256_hex(b),
            Body::File(_) => sign::UNSIGNED_PAYLOAD.to_owned(),
        };
        let mut attempt = 1;
        loop {
            let result = self.attempt(&req, &payload_hash).await;
            match result {
                Err(e) if e.is_retriable() && attempt < MAX_ATTEMPTS => {
                    let backoff = INITIAL_BACKOFF
                        .saturating_mul(1u32 << (attempt - 1).min(16))
                        .min(MAX_BACKOFF);
                    // Jitter: between half and all of the back-off.
                    let jitter = rand::random::<f64>() * 0.5 + 0.5;
                    tracing::debug!(attempt, error = %e, "S3 request failed; retrying");
                    tokio::time::sleep(backoff.mul_f64(jitter)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn attempt(&self, req: &Request, payload_hash: &str) -> Result<Response> {
        let prepared = self.prepare(req, payload_hash, SystemTime::now())?;
        let mut headers = HeaderMap::new();
        for (name, value) in &prepared.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Error::Other(format!("bad header name {name}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| Error::Other(format!("bad value of header {name}: {e}")))?;
            headers.insert(name, value);
        }
        let body = match &req.body {
            Body::Empty => reqwest::Body::from(Bytes::new()),
            Body::Bytes(b) => reqwest::Body::from(b.clone()),
            Body::File(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| Error::Other(format!("cannot open {}: {e}", path.display())))?;
                let len = file
                    .metadata()
                    .await
                    .map_err(|e| Error::Other(format!("cannot stat {}: {e}", path.display())))?
                    .len();
                headers.insert(reqwest::header::CONTENT_LENGTH, HeaderValue::from(len));
                reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file))
            }
        };
        let request = self
            .inner
            .http
            .request(req.method.clone(), prepared.url)
            .headers(headers)
            .body(body);
        let response = match tokio::time::timeout(ATTEMPT_TIMEOUT, request.send()).await {
            Err(_) => return Err(Error::Transport("attempt timed out".into())),
            Ok(Err(e)) => return Err(Error::Transport(error_chain(&e))),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(Response(response));
        }
        Err(error_response(status, response).await)
    }

    /// `PutObject`.
    pub async fn put_object(&self, bucket: &str, key: &str, body: Body) -> Result<()> {
        self.send(Request::new(Method::PUT, bucket, key).body(body))
            .await?;
        Ok(())
    }

    /// `GetObject`, with an optional `Range` header value.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<&str>,
    ) -> Result<Response> {
        let mut req = Request::new(Method::GET, bucket, key);
        if let Some(range) = range {
            req = req.header("range", range);
        }
        self.send(req).await
    }

    /// `HeadObject`: the object's size.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<Option<u64>> {
        let out = self.send(Request::new(Method::HEAD, bucket, key)).await?;
        Ok(out.content_length())
    }

    /// `HeadBucket`.
    pub async fn head_bucket(&self, bucket: &str) -> Result<()> {
        self.send(Request::new(Method::HEAD, bucket, "")).await?;
        Ok(())
    }

    /// `CreateBucket` (in the client's region).
    pub async fn create_bucket(&self, bucket: &str) -> Result<()> {
        let mut req = Request::new(Method::PUT, bucket, "");
        let region = self.inner.region.as_str();
        if region != FALLBACK_REGION && region != "auto" {
            req = req.body(Body::Bytes(Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                xml::escape(region)
            ))));
        }
        self.send(req).await?;
        Ok(())
    }

    /// `CopyObject` within `bucket`.
    pub async fn copy_object(&self, bucket: &str, from: &str, to: &str) -> Result<()> {
        let source = format!("{bucket}/{}", sign::uri_encode(from, true));
        let out = self
            .send(Request::new(Method::PUT, bucket, to).header("x-amz-copy-source", &source))
            .await?;
        // A copy can fail after its 200 status: the body is then an error document.
        embedded_error(&out.text().await?)
    }

    /// `DeleteObject`.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        self.send(Request::new(Method::DELETE, bucket, key)).await?;
        Ok(())
    }

    /// `DeleteObjects` (quiet, up to 1000 keys): the keys that could not be deleted.
    pub async fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<Vec<DeleteError>> {
        let mut doc = String::from(
            "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>",
        );
        for key in keys {
            doc.push_str("<Object><Key>");
            doc.push_str(&xml::escape(key));
            doc.push_str("</Key></Object>");
        }
        doc.push_str("</Delete>");
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(doc.as_bytes()));
        let out = self
            .send(
                Request::new(Method::POST, bucket, "")
                    .query("delete", "")
                    .header("content-md5", &md5)
                    .header("content-type", "application/xml")
                    .body(Body::Bytes(Bytes::from(doc))),
            )
            .await?;
        let text = out.text().await?;
        Ok(xml::elements(&text, "Error")
            .into_iter()
            .map(|e| DeleteError {
                key: xml::text(e, "Key").unwrap_or_default(),
                code: xml::text(e, "Code").unwrap_or_default(),
                message: xml::text(e, "Message").unwrap_or_default(),
            })
            .collect())
    }

    /// One page of `ListObjectsV2` under `prefix`.
    pub async fn list_objects_v2(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
    ) -> Result<ListPage> {
        let mut req = Request::new(Method::GET, bucket, "")
            .query("list-type", "2")
            .query("prefix", prefix);
        if let Some(token) = continuation {
            req = req.query("continuation-token", token);
        }
        let text = self.send(req).await?.text().await?;
        Ok(parse_list(&text))
    }

    /// `CreateMultipartUpload`: the upload id.
    pub async fn create_multipart_upload(&self, bucket: &str, key: &str) -> Result<String> {
        let text = self
            .send(Request::new(Method::POST, bucket, key).query("uploads", ""))
            .await?
            .text()
            .await?;
        xml::text(&text, "UploadId")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::Other("no upload id in the response".into()))
    }

    /// `UploadPart`: the part's ETag.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> Result<Option<String>> {
        let out = self
            .send(
                Request::new(Method::PUT, bucket, key)
                    .query("partNumber", &number.to_string())
                    .query("uploadId", upload_id)
                    .body(Body::Bytes(body)),
            )
            .await?;
        Ok(out.header("etag").map(str::to_owned))
    }

    /// `CompleteMultipartUpload` of `(part number, ETag)`s.
    pub async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, Option<String>)],
    ) -> Result<()> {
        let mut doc = String::from(
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
        );
        for (number, etag) in parts {
            doc.push_str(&format!("<Part><PartNumber>{number}</PartNumber>"));
            if let Some(etag) = etag {
                doc.push_str(&format!("<ETag>{}</ETag>", xml::escape(etag)));
            }
            doc.push_str("</Part>");
        }
        doc.push_str("</CompleteMultipartUpload>");
        let out = self
            .send(
                Request::new(Method::POST, bucket, key)
                    .query("uploadId", upload_id)
                    .header("content-type", "application/xml")
                    .body(Body::Bytes(Bytes::from(doc))),
            )
            .await?;
        embedded_error(&out.text().await?)
    }

    /// `AbortMultipartUpload`.
    pub async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<()> {
        self.send(Request::new(Method::DELETE, bucket, key).query("uploadId", upload_id))
            .await?;
        Ok(())
    }

    /// One page of `ListMultipartUploads` under `prefix`.
    pub async fn list_multipart_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: Option<&str>,
        upload_id_marker: Option<&str>,
    ) -> Result<UploadsPage> {
        let mut req = Request::new(Method::GET, bucket, "")
            .query("uploads", "")
            .query("prefix", prefix);
        if let Some(marker) = key_marker {
            req = req.query("key-marker", marker);
        }
        if let Some(marker) = upload_id_marker {
            req = req.query("upload-id-marker", marker);
        }
        let text = self.send(req).await?.text().await?;
        let uploads = xml::elements(&text, "Upload")
            .into_iter()
            .filter_map(|u| Some((xml::text(u, "Key")?, xml::text(u, "UploadId")?)))
            .collect();
        let truncated = xml::text(&text, "IsTruncated").as_deref() == Some("true");
        let next = xml::text(&text, "NextKeyMarker")
            .filter(|m| truncated && !m.is_empty())
            .map(|m| {
                let id = xml::text(&text, "NextUploadIdMarker").filter(|i| !i.is_empty());
                (m, id)
            });
        Ok(UploadsPage { uploads, next })
    }
}

fn parse_list(text: &str) -> ListPage {
    let objects = xml::elements(text, "Contents")
        .into_iter()
        .filter_map(|c| {
            Some(ListedObject {
                key: xml::text(c, "Key")?,
                size: xml::text(c, "Size")
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0),
                last_modified: xml::text(c, "LastModified")
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
                    .map(SystemTime::from),
            })
        })
        .collect();
    let truncated = xml::text(text, "IsTruncated").as_deref() == Some("true");
    let next = xml::text(text, "NextContinuationToken").filter(|t| truncated && !t.is_empty());
    ListPage { objects, next }
}

/// An `<Error>` document in a 200 response (`CopyObject`, `CompleteMultipartUpload`).
fn embedded_error(text: &str) -> Result<()> {
    let trimmed = text.trim_start();
    let body = trimmed
        .strip_prefix("<?xml")
        .and_then(|t| t.find("?>").map(|i| &t[i + 2..]))
        .unwrap_or(trimmed)
        .trim_start();
    if body.starts_with("<Error>") || body.starts_with("<Error ") {
        return Err(Error::Service {
            // Treated as S3 does: a server-side failure.
            status: 500,
            code: xml::text(body, "Code"),
            message: xml::text(body, "Message").unwrap_or_default(),
        });
    }
    Ok(())
}

async fn error_response(status: StatusCode, response: reqwest::Response) -> Error {
    let text = response.text().await.unwrap_or_default();
    let doc = xml::elements(&text, "Error");
    let error = doc.first().copied().unwrap_or("");
    Error::Service {
        status: status.as_u16(),
        code: xml::text(error, "Code").filter(|c| !c.is_empty()),
        message: xml::text(error, "Message").unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_client(path_style: bool) -> Client {
        Client::with_parts(
            Url::parse("https://s3.amazonaws.com").unwrap(),
            path_style,
            "us-east-1".into(),
            Some(Credentials {
                access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                session_token: None,
            }),
        )
    }

    fn may_24_2013() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    fn header<'a>(p: &'a Prepared, name: &str) -> Option<&'a str> {
        p.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The AWS "GET object" example, through the client's own URL building.
    #[test]
    fn prepares_the_aws_get_object_example() {
        let client = example_client(false);
        let req =
            Request::new(Method::GET, "examplebucket", "test.txt").header("Range", "bytes=0-9");
        let p = client
            .prepare(&req, sign::EMPTY_SHA256, may_24_2013())
            .unwrap();
        assert_eq!(
            p.url.as_str(),
            "https://examplebucket.s3.amazonaws.com/test.txt"
        );
        assert_eq!(header(&p, "x-amz-date"), Some("20130524T000000Z"));
        assert_eq!(
            header(&p, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
                 SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            )
        );
    }

    /// The AWS "list objects" example: query sorted and encoded the same on the wire.
    #[test]
    fn prepares_the_aws_list_objects_example() {
        let client = example_client(false);
        let req = Request::new(Method::GET, "examplebucket", "")
            .query("prefix", "J")
            .query("max-keys", "2");
        let p = client
            .prepare(&req, sign::EMPTY_SHA256, may_24_2013())
            .unwrap();
        assert_eq!(
            p.url.as_str(),
            "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J"
        );
        assert!(header(&p, "authorization").unwrap().ends_with(
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        ));
    }

    #[test]
    fn path_style_and_key_encoding() {
        let client = Client::with_parts(
            Url::parse("http://127.0.0.1:9000/").unwrap(),
            true,
            "auto".into(),
            Some(Credentials {
                access_key_id: "k".into(),
                secret_access_key: "s".into(),
                session_token: Some("tok".into()),
            }),
        );
        let req = Request::new(Method::PUT, "my.bucket", "tmp/did:web:h%3A1/a b+c");
        let p = client
            .prepare(&req, sign::UNSIGNED_PAYLOAD, may_24_2013())
            .unwrap();
        // Encoded once: `%` of the key becomes `%25`, `/` stays.
        assert_eq!(
            p.url.as_str(),
            "http://127.0.0.1:9000/my.bucket/tmp/did%3Aweb%3Ah%253A1/a%20b%2Bc"
        );
        assert_eq!(p.url.path(), "/my.bucket/tmp/did%3Aweb%3Ah%253A1/a%20b%2Bc");
        assert_eq!(header(&p, "x-amz-security-token"), Some("tok"));
        assert_eq!(header(&p, "x-amz-content-sha256"), Some("UNSIGNED-PAYLOAD"));
        let auth = header(&p, "authorization").unwrap();
        assert!(auth.contains("/20130524/auto/s3/aws4_request,"), "{auth}");
        assert!(
            auth.contains(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
            ),
            "{auth}"
        );
        // A bucket that cannot be a host name stays in the path even without path style.
        let virtual_client = example_client(false);
        let p = virtual_client
            .prepare(
                &Request::new(Method::GET, "My_Bucket", "k"),
                sign::EMPTY_SHA256,
                may_24_2013(),
            )
            .unwrap();
        assert_eq!(p.url.as_str(), "https://s3.amazonaws.com/My_Bucket/k");
        let p = example_client(true)
            .prepare(
                &Request::new(Method::HEAD, "examplebucket", ""),
                sign::EMPTY_SHA256,
                may_24_2013(),
            )
            .unwrap();
        assert_eq!(p.url.as_str(), "https://s3.amazonaws.com/examplebucket");
        let dots = example_client(true).prepare(
            &Request::new(Method::GET, "examplebucket", "a/../b"),
            sign::EMPTY_SHA256,
            may_24_2013(),
        );
        assert!(matches!(dots, Err(Error::Other(_))), "{dots:?}");
    }

    #[test]
    fn unsigned_without_credentials() {
        let client = Client::with_parts(
            Url::parse("https://s3.amazonaws.com").unwrap(),
            false,
            "us-east-1".into(),
            None,
        );
        let p = client
            .prepare(
                &Request::new(Method::GET, "examplebucket", "k"),
                sign::EMPTY_SHA256,
                may_24_2013(),
            )
            .unwrap();
        assert_eq!(header(&p, "authorization"), None);
    }

    #[test]
    fn list_pages_and_errors() {
        let page = parse_list(
            "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b</Key>\
             <LastModified>2009-10-12T17:50:30.000Z</LastModified><Size>12</Size></Contents>\
             <NextContinuationToken>t/1=</NextContinuationToken></ListBucketResult>",
        );
        assert_eq!(page.objects.len(), 1);
        assert_eq!(page.objects[0].key, "a&b");
        assert_eq!(page.objects[0].size, 12);
        assert_eq!(
            page.objects[0].last_modified,
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_255_369_830_000))
        );
        assert_eq!(page.next.as_deref(), Some("t/1="));
        let last =
            parse_list("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
        assert!(last.objects.is_empty() && last.next.is_none());

        assert!(embedded_error("<CopyObjectResult><ETag>x</ETag></CopyObjectResult>").is_ok());
        let err = embedded_error(
            "<?xml version=\"1.0\"?>\n<Error><Code>InternalError</Code><Message>oops</Message></Error>",
        )
        .unwrap_err();
        assert_eq!(err.code(), Some("InternalError"));
        assert!(err.is_retriable());
        let slow = Error::Service {
            status: 503,
            code: Some("SlowDown".into()),
            message: String::new(),
        };
        assert!(slow.is_retriable());
        let missing = Error::Service {
            status: 404,
            code: Some("NoSuchKey".into()),
            message: "gone".into(),
        };
        assert!(!missing.is_retriable());
        assert_eq!(missing.to_string(), "HTTP 404 NoSuchKey: gone");
        assert!(Error::Transport("refused".into()).is_retriable());
    }

    /// A local server answering each request with the next status of `script` (then 200),
    /// counting requests.
    async fn scripted(
        script: Vec<(u16, &'static str)>,
    ) -> (Url, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let app = axum::Router::new().fallback(move || {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let (status, code) = script.get(n).copied().unwrap_or((200, ""));
            async move {
                let body = if code.is_empty() {
                    String::new()
                } else {
                    format!("<Error><Code>{code}</Code><Message>m</Message></Error>")
                };
                (StatusCode::from_u16(status).unwrap(), body)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, count)
    }

    fn local(url: Url) -> Client {
        Client::with_parts(
            url,
            true,
            "us-east-1".into(),
            Some(Credentials {
                access_key_id: "k".into(),
                secret_access_key: "s".into(),
                session_token: None,
            }),
        )
    }

    #[tokio::test]
    async fn retries_throttling_and_server_errors() {
        use std::sync::atomic::Ordering;
        let (url, count) = scripted(vec![(503, "SlowDown"), (500, "InternalError")]).await;
        let client = local(url);
        client
            .put_object("b", "k", Body::Bytes(Bytes::from_static(b"replayed")))
            .await
            .unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried_and_keep_their_code() {
        use std::sync::atomic::Ordering;
        let (url, count) = scripted(vec![(403, "AccessDenied")]).await;
        let err = local(url).head_bucket("b").await.unwrap_err();
        assert_eq!(err.status(), Some(403));
        assert!(!err.is_retriable());
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        use std::sync::atomic::Ordering;
        let (url, count) = scripted(vec![(429, ""); 10]).await;
        let err = local(url).delete_object("b", "k").await.unwrap_err();
        assert_eq!(err.status(), Some(429));
        assert!(err.is_retriable());
        assert_eq!(count.load(Ordering::SeqCst), MAX_ATTEMPTS as usize);
    }
}
