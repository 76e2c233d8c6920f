//! A client of a running server's admin API over HTTP, for `rookery admin …` (the
//! reference operator's `pdsadmin` workflow).
//!
//! The server and password come from `--url` / `--password`, else from the same `PDS_*`
//! settings the server reads (`PDS_HOSTNAME`, `PDS_PORT`, `PDS_ADMIN_PASSWORD`), taken from
//! the environment or a `pds.env` file (`--config`), as `pdsadmin` reads `/pds/pds.env`.

pub mod cli;

use std::collections::HashMap;
use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;

/// Why an admin call failed. Each kind has its own exit status (see [`Error::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "the server at {url} refused the admin password (check PDS_ADMIN_PASSWORD or --password)"
    )]
    WrongPassword { url: String },
    #[error("{method}: {status} {error}: {message}")]
    Server {
        method: String,
        status: u16,
        error: String,
        message: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// 1: the server refused the call; 2: bad usage or settings; 3: server unreachable;
    /// 4: wrong admin password.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Server { .. } | Error::Io(_) => 1,
            Error::Usage(_) => 2,
            Error::Unreachable { .. } => 3,
            Error::WrongPassword { .. } => 4,
        }
    }
}

/// Where the server is and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Base URL without a trailing slash, e.g. `https://pds.example.com`.
    pub url: String,
    pub password: Option<String>,
}

/// Reads `KEY=VALUE` lines (blank lines and `#` comments skipped, optional quotes removed),
/// the format of the reference's `pds.env`.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

impl Target {
    /// Resolves the target: explicit values first, then `file` (a `pds.env`), then `env`
    /// (the process environment). A server on `localhost` is reached over plain HTTP at its
    /// port, any other over HTTPS, as the server derives its public URL.
    pub fn resolve(
        url: Option<&str>,
        password: Option<&str>,
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Target, Error> {
        let mut settings: HashMap<String, String> = env.into_iter().collect();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
            // The file wins over the environment, as `pdsadmin` sources it.
            settings.extend(parse_env_file(&text));
        }
        let setting = |name: &str| settings.get(name).filter(|v| !v.is_empty()).cloned();
        let url = match url {
            Some(url) => url.to_owned(),
            None => {
                let hostname = setting("PDS_HOSTNAME").ok_or_else(|| {
                    Error::Usage(
                        "no server given: pass --url, or set PDS_HOSTNAME (environment or \
                         --config pds.env)"
                            .to_owned(),
                    )
                })?;
                let port = match setting("PDS_PORT") {
                    Some(p) => p
                        .parse::<u16>()
                        .map_err(|_| Error::Usage(format!("PDS_PORT is not a port: {p:?}")))?,
                    None => crate::config::DEFAULT_PORT,
                };
                crate::config::public_url_for(&hostname, port)
            }
        };
        let parsed = url::Url::parse(&url)
            .map_err(|e| Error::Usage(format!("--url {url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::Usage(format!("--url {url:?} must be http or https")));
        }
        Ok(Target {
            url: url.trim_end_matches('/').to_owned(),
            password: password
                .map(str::to_owned)
                .or_else(|| setting("PDS_ADMIN_PASSWORD")),
        })
    }
}

/// An admin API client.
#[derive(Debug, Clone)]
pub struct AdminClient {
    target: Target,
    http: reqwest::Client,
}

impl AdminClient {
    pub fn new(target: Target) -> Result<AdminClient, Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("rookery-admin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Usage(format!("HTTP client: {e}")))?;
        Ok(AdminClient { target, http })
    }

    pub fn url(&self) -> &str {
        &self.target.url
    }

    fn endpoint(&self, method: &str) -> String {
        format!("{}/xrpc/{method}", self.target.url)
    }

    /// The endpoint with `query` encoded.
    fn endpoint_with(&self, method: &str, query: &[(&str, &str)]) -> String {
        let endpoint = self.endpoint(method);
        match url::Url::parse(&endpoint) {
            Ok(mut url) if !query.is_empty() => {
                url.query_pairs_mut().extend_pairs(query);
                url.to_string()
            }
            _ => endpoint,
        }
    }

    fn authed(&self, request: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, Error> {
        let password = self.target.password.as_deref().ok_or_else(|| {
            Error::Usage(
                "no admin password: pass --password, or set PDS_ADMIN_PASSWORD (environment or \
                 --config pds.env)"
                    .to_owned(),
            )
        })?;
        Ok(request.basic_auth("admin", Some(password)))
    }

    async fn send(
        &self,
        method: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        let response = request.send().await.map_err(|e| Error::Unreachable {
            url: self.target.url.clone(),
            reason: std::error::Error::source(&e)
                .map_or_else(|| e.to_string(), |s| format!("{e}: {s}")),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let error = body["error"].as_str().unwrap_or_default().to_owned();
        if status == StatusCode::UNAUTHORIZED
            && matches!(
                error.as_str(),
                "AuthenticationRequired" | "AuthMissing" | "AuthRequired" | ""
            )
        {
            return Err(Error::WrongPassword {
                url: self.target.url.clone(),
            });
        }
        Err(Error::Server {
            method: method.to_owned(),
            status: status.as_u16(),
            error: if error.is_empty() {
                status.canonical_reason().unwrap_or("Error").to_owned()
            } else {
                error
            },
            message: body["message"].as_str().unwrap_or_default().to_owned(),
        })
    }

    async fn json(response: reqwest::Response, method: &str) -> Result<Value, Error> {
        let bytes = response.bytes().await.map_err(|e| Error::Server {
            method: method.to_owned(),
            status: 200,
            error: "ReadFailed".to_owned(),
            message: e.to_string(),
        })?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Server {
            method: method.to_owned(),
            status: 200,
            error: "InvalidResponse".to_owned(),
            message: e.to_string(),
        })
    }

    /// `GET /xrpc/{method}?{query}` with admin authentication.
    pub async fn get(&self, method: &str, query: &[(&str, &str)]) -> Result<Value, Error> {
        let request = self.authed(self.http.get(self.endpoint_with(method, query)))?;
        let response = self.send(method, request).await?;
        Self::json(response, method).await
    }

    /// `GET` without authentication (public methods such as `listRepos`).
    pub async fn get_public(&self, method: &str, query: &[(&str, &str)]) -> Result<Value, Error> {
        let request = self.http.get(self.endpoint_with(method, query));
        let response = self.send(method, request).await?;
        Self::json(response, method).await
    }

    /// `POST /xrpc/{method}` with a JSON body and admin authentication.
    pub async fn post(&self, method: &str, body: &Value) -> Result<Value, Error> {
        let request = self.authed(self.http.post(self.endpoint(method)).json(body))?;
        let response = self.send(method, request).await?;
        Self::json(response, method).await
    }

    /// `POST` with a JSON body and a bearer token (account calls such as `importRepo`'s
    /// session).
    pub async fn post_bearer(
        &self,
        method: &str,
        token: Option<&str>,
        body: reqwest::Body,
        content_type: &str,
    ) -> Result<Value, Error> {
        let mut request = self
            .http
            .post(self.endpoint(method))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = self.send(method, request).await?;
        Self::json(response, method).await
    }

    /// `GET` of a byte stream (a CAR export): the response, to be read chunk by chunk.
    pub async fn download(
        &self,
        method: &str,
        query: &[(&str, &str)],
    ) -> Result<reqwest::Response, Error> {
        let request = self.authed(self.http.get(self.endpoint_with(method, query)))?;
        self.send(method, request).await
    }

    /// `POST` to another service (a relay's `requestCrawl`), without authentication.
    pub async fn post_to(&self, base: &str, method: &str, body: &Value) -> Result<Value, Error> {
        let url = format!("{}/xrpc/{method}", base.trim_end_matches('/'));
        let response =
            self.http
                .post(&url)
                .json(body)
                .send()
                .await
                .map_err(|e| Error::Unreachable {
                    url: base.to_owned(),
                    reason: e.to_string(),
                })?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err(Error::Server {
                method: format!("{method} at {base}"),
                status: status.as_u16(),
                error: value["error"].as_str().unwrap_or("Error").to_owned(),
                message: value["message"].as_str().unwrap_or_default().to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn target_resolution() {
        let t = Target::resolve(Some("http://127.0.0.1:9/"), Some("pw"), None, env(&[])).unwrap();
        assert_eq!(t.url, "http://127.0.0.1:9");
        assert_eq!(t.password.as_deref(), Some("pw"));

        let t = Target::resolve(
            None,
            None,
            None,
            env(&[
                ("PDS_HOSTNAME", "pds.example.com"),
                ("PDS_ADMIN_PASSWORD", "s3"),
            ]),
        )
        .unwrap();
        assert_eq!(t.url, "https://pds.example.com");
        assert_eq!(t.password.as_deref(), Some("s3"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pds.env");
        std::fs::write(
            &file,
            "# pds.env\nPDS_HOSTNAME=localhost\nexport PDS_PORT=3000\nPDS_ADMIN_PASSWORD=\"from-file\"\n",
        )
        .unwrap();
        let t = Target::resolve(
            None,
            None,
            Some(&file),
            env(&[("PDS_ADMIN_PASSWORD", "from-env")]),
        )
        .unwrap();
        assert_eq!(t.url, "http://localhost:3000");
        assert_eq!(t.password.as_deref(), Some("from-file"));

        let err = Target::resolve(None, None, None, env(&[])).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--url"), "{err}");
        let err = Target::resolve(Some("ftp://x"), None, None, env(&[])).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
