//! OAuth clients: the `client_id` is the URL of the client's metadata document, fetched
//! through the SSRF-guarded HTTP client with size and time limits and cached; or the
//! loopback development client `http://localhost?redirect_uri=…&scope=…`, whose metadata is
//! derived from its own `client_id`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::OAuthError;
use super::dpop::Jwk;
use super::scope::Scope;
use crate::identity::net::{FetchError, GuardedHttp};

/// Largest metadata document accepted.
pub(crate) const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Deadline of a metadata fetch.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long fetched metadata is reused.
const CACHE_TTL: Duration = Duration::from_secs(10 * 60);
/// Most clients cached at once.
const CACHE_ENTRIES: usize = 1000;

/// The validated metadata of a client.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientMetadata {
    pub client_id: String,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<String>,
    #[serde(default = "default_response_types")]
    pub response_types: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_signing_alg: Option<String>,
    #[serde(default)]
    pub jwks: Option<Jwks>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub dpop_bound_access_tokens: Option<bool>,
    #[serde(default)]
    pub application_type: Option<String>,
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwks {
    pub keys: Vec<serde_json::Value>,
}

impl Jwks {
    pub(crate) fn p256_keys(&self) -> Vec<(Option<String>, p256::ecdsa::VerifyingKey)> {
        self.keys
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .filter_map(|k| k.p256().map(|key| (k.kid.clone(), key)))
            .collect()
    }
}

fn default_grant_types() -> Vec<String> {
    vec!["authorization_code".to_owned()]
}
fn default_response_types() -> Vec<String> {
    vec!["code".to_owned()]
}

impl ClientMetadata {
    /// `private_key_jwt` clients are confidential; all others public.
    pub fn is_confidential(&self) -> bool {
        self.token_endpoint_auth_method.as_deref() == Some("private_key_jwt")
    }

    /// The scope tokens the client declared.
    pub fn declared_scopes(&self) -> Vec<&str> {
        self.scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Whether `uri` is one of the registered redirect URIs. Loopback redirect URIs
    /// (`http://127.0.0.1…`, `http://[::1]…`) match on any port (RFC 8252 §7.3).
    pub fn accepts_redirect(&self, uri: &str) -> bool {
        if self.redirect_uris.iter().any(|r| r == uri) {
            return true;
        }
        let Ok(asked) = url::Url::parse(uri) else {
            return false;
        };
        if asked.scheme() != "http" || !is_loopback_ip_host(&asked) {
            return false;
        }
        self.redirect_uris.iter().any(|r| {
            url::Url::parse(r).is_ok_and(|mut reg| {
                let mut asked = asked.clone();
                let _ = reg.set_port(None);
                let _ = asked.set_port(None);
                reg == asked
            })
        })
    }

    /// Checks what the atproto profile requires of client metadata.
    fn validate(&self) -> Result<(), OAuthError> {
        let bad = OAuthError::invalid_client_metadata;
        if self.dpop_bound_access_tokens != Some(true) {
            return Err(bad("dpop_bound_access_tokens must be true"));
        }
        if !self.grant_types.iter().any(|g| g == "authorization_code") {
            return Err(bad("grant_types must include authorization_code"));
        }
        if self
            .grant_types
            .iter()
            .any(|g| g != "authorization_code" && g != "refresh_token")
        {
            return Err(bad("unsupported grant type"));
        }
        if !self.response_types.iter().any(|r| r == "code") {
            return Err(bad("response_types must include code"));
        }
        if self.redirect_uris.is_empty() {
            return Err(bad("redirect_uris is empty"));
        }
        for uri in &self.redirect_uris {
            let ok = url::Url::parse(uri).is_ok_and(|u| u.fragment().is_none());
            if !ok {
                return Err(OAuthError::invalid_client_metadata(format!(
                    "invalid redirect_uri {uri}"
                )));
            }
        }
        let scopes = self.declared_scopes();
        if !scopes.contains(&"atproto") {
            return Err(bad("scope must include atproto"));
        }
        match self.token_endpoint_auth_method.as_deref() {
            None | Some("none") => {}
            Some("private_key_jwt") => {
                let keys = self.jwks.as_ref().map(|j| j.p256_keys());
                match (keys, &self.jwks_uri) {
                    (Some(keys), _) if !keys.is_empty() => {}
                    (None, Some(_)) => {}
                    _ => return Err(bad("private_key_jwt needs a jwks with an ES256 key")),
                }
            }
            Some(other) => {
                return Err(OAuthError::invalid_client_metadata(format!(
                    "unsupported token_endpoint_auth_method {other}"
                )));
            }
        }
        Ok(())
    }
}

fn is_loopback_ip_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// The metadata of the loopback development client, derived from its `client_id`.
fn loopback_metadata(client_id: &str) -> Result<ClientMetadata, OAuthError> {
    let bad = OAuthError::invalid_client;
    let url = url::Url::parse(client_id).map_err(|_| bad("Invalid client_id"))?;
    if url.scheme() != "http"
        || url.host_str() != Some("localhost")
        || url.port().is_some()
        || !matches!(url.path(), "" | "/")
        || url.fragment().is_some()
    {
        return Err(bad("Invalid loopback client_id"));
    }
    let mut redirect_uris = Vec::new();
    let mut scope = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "redirect_uri" => {
                let r = url::Url::parse(&v).map_err(|_| bad("Invalid loopback redirect_uri"))?;
                if r.scheme() != "http" || !is_loopback_ip_host(&r) {
                    return Err(bad(
                        "Loopback redirect_uri must be http://127.0.0.1 or http://[::1]",
                    ));
                }
                redirect_uris.push(v.into_owned());
            }
            "scope" if scope.is_none() => scope = Some(v.into_owned()),
            _ => return Err(bad("Invalid loopback client_id parameter")),
        }
    }
    if redirect_uris.is_empty() {
        redirect_uris = vec!["http://127.0.0.1/".to_owned(), "http://[::1]/".to_owned()];
    }
    Ok(ClientMetadata {
        client_id: client_id.to_owned(),
        client_name: Some("Loopback development client".to_owned()),
        client_uri: None,
        redirect_uris,
        scope: Some(scope.unwrap_or_else(|| "atproto".to_owned())),
        grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        response_types: vec!["code".to_owned()],
        token_endpoint_auth_method: Some("none".to_owned()),
        token_endpoint_auth_signing_alg: None,
        jwks: None,
        jwks_uri: None,
        dpop_bound_access_tokens: Some(true),
        application_type: Some("native".to_owned()),
    })
}

/// Fetches, validates and caches client metadata.
pub struct ClientResolver {
    http: GuardedHttp,
    /// Development mode: `http://` client ids are accepted (tests on loopback).
    allow_http: bool,
    cache: Mutex<HashMap<String, (Instant, Arc<ClientMetadata>)>>,
}

impl std::fmt::Debug for ClientResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientResolver")
            .field("allow_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

impl ClientResolver {
    pub(crate) fn new(http: GuardedHttp, allow_http: bool) -> Self {
        ClientResolver {
            http,
            allow_http,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The metadata of `client_id`.
    pub async fn resolve(&self, client_id: &str) -> Result<Arc<ClientMetadata>, OAuthError> {
        if client_id.starts_with("http://localhost") {
            return Ok(Arc::new(loopback_metadata(client_id)?));
        }
        let url = url::Url::parse(client_id)
            .map_err(|_| OAuthError::invalid_client("client_id must be a URL"))?;
        let scheme_ok = url.scheme() == "https" || (self.allow_http && url.scheme() == "http");
        if !scheme_ok
            || url.fragment().is_some()
            || url.path() == "/"
            || !url.username().is_empty()
            || url.as_str() != client_id
        {
            return Err(OAuthError::invalid_client(
                "client_id must be an https URL with a path",
            ));
        }
        if let Some((at, meta)) = self.lock().get(client_id)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(meta.clone());
        }
        let fetched = self
            .http
            .get(client_id, "application/json")
            .await
            .map_err(|e| {
                OAuthError::invalid_client_metadata(match e {
                    FetchError::Forbidden(_) => {
                        "Client metadata is on a non-public address".to_owned()
                    }
                    FetchError::TooLarge(_) => "Client metadata is too large".to_owned(),
                    FetchError::Timeout => "Client metadata fetch timed out".to_owned(),
                    other => format!("Cannot fetch client metadata: {other}"),
                })
            })?;
        if fetched.status != 200 {
            return Err(OAuthError::invalid_client_metadata(format!(
                "Client metadata answered HTTP {}",
                fetched.status
            )));
        }
        let meta: ClientMetadata = serde_json::from_slice(&fetched.body).map_err(|e| {
            OAuthError::invalid_client_metadata(format!("Invalid client metadata: {e}"))
        })?;
        if meta.client_id != client_id {
            return Err(OAuthError::invalid_client_metadata(
                "client_id in the metadata does not match its URL",
            ));
        }
        meta.validate()?;
        let meta = Arc::new(meta);
        let mut cache = self.lock();
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(client_id.to_owned(), (Instant::now(), meta.clone()));
        Ok(meta)
    }

    /// The ES256 keys of a confidential client: its `jwks`, or its `jwks_uri` fetched.
    pub(crate) async fn client_keys(
        &self,
        meta: &ClientMetadata,
    ) -> Result<Vec<(Option<String>, p256::ecdsa::VerifyingKey)>, OAuthError> {
        if let Some(jwks) = &meta.jwks {
            return Ok(jwks.p256_keys());
        }
        let uri = meta
            .jwks_uri
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_client("Client has no keys"))?;
        let fetched =
            self.http.get(uri, "application/json").await.map_err(|e| {
                OAuthError::invalid_client(format!("Cannot fetch client jwks: {e}"))
            })?;
        let jwks: Jwks = serde_json::from_slice(&fetched.body)
            .ok()
            .filter(|_| fetched.status == 200)
            .ok_or_else(|| OAuthError::invalid_client("Invalid client jwks"))?;
        Ok(jwks.p256_keys())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<ClientMetadata>)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Longest a client assertion may live (the reference's `CLIENT_ASSERTION_MAX_AGE`).
const CLIENT_ASSERTION_MAX_AGE: i64 = 60;

#[derive(Deserialize)]
struct AssertionHeader {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    exp: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

/// Verifies a `private_key_jwt` client assertion (RFC 7523) signed with one of `keys`.
pub(crate) fn verify_client_assertion(
    assertion: &str,
    keys: &[(Option<String>, p256::ecdsa::VerifyingKey)],
    client_id: &str,
    issuer: &str,
    now: i64,
    spend: impl FnOnce(&str) -> Result<(), OAuthError>,
) -> Result<(), OAuthError> {
    use base64::Engine;
    let bad = OAuthError::invalid_client;
    let head = assertion.split('.').next().unwrap_or("");
    let head = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .map_err(|_| bad("Malformed client assertion"))?;
    let head: AssertionHeader =
        serde_json::from_slice(&head).map_err(|_| bad("Malformed client assertion"))?;
    if head.alg != "ES256" {
        return Err(bad("Unsupported client assertion algorithm"));
    }
    let payload = keys
        .iter()
        .filter(|(kid, _)| head.kid.is_none() || *kid == head.kid)
        .find_map(|(_, key)| super::dpop::verify_es256(assertion, key).ok())
        .ok_or_else(|| bad("Client assertion signature does not verify"))?;
    let claims: AssertionClaims =
        serde_json::from_slice(&payload).map_err(|_| bad("Malformed client assertion claims"))?;
    if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
        return Err(bad("Client assertion iss and sub must be the client_id"));
    }
    let token_endpoint = format!("{issuer}/oauth/token");
    let aud_ok = |a: &str| a == issuer || a == token_endpoint;
    let aud = match &claims.aud {
        Some(serde_json::Value::String(a)) => aud_ok(a),
        Some(serde_json::Value::Array(list)) => list.iter().any(|a| a.as_str().is_some_and(aud_ok)),
        _ => false,
    };
    if !aud {
        return Err(bad("Client assertion audience must be the issuer"));
    }
    let iat = claims
        .iat
        .ok_or_else(|| bad("Client assertion iat missing"))?;
    if iat > now + 10 || now - iat > CLIENT_ASSERTION_MAX_AGE {
        return Err(bad("Client assertion too old"));
    }
    if claims.exp.is_some_and(|exp| exp <= now) {
        return Err(bad("Client assertion expired"));
    }
    let jti = claims
        .jti
        .ok_or_else(|| bad("Client assertion jti missing"))?;
    spend(&jti)
}

/// Checks that every requested scope is known and declared by the client, and that
/// `atproto` is among them.
pub fn check_requested_scope(meta: &ClientMetadata, requested: &str) -> Result<(), OAuthError> {
    let declared = meta.declared_scopes();
    let mut atproto = false;
    for token in requested.split(' ').filter(|s| !s.is_empty()) {
        if Scope::parse(token).is_none() {
            return Err(OAuthError::invalid_scope(format!("Unknown scope {token}")));
        }
        if !declared.contains(&token) {
            return Err(OAuthError::invalid_scope(format!(
                "Scope {token} is not declared in the client metadata"
            )));
        }
        atproto |= token == "atproto";
    }
    if !atproto {
        return Err(OAuthError::invalid_scope("The atproto scope is required"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_client() {
        let meta = loopback_metadata(
            "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcb&scope=atproto%20transition%3Ageneric",
        )
        .unwrap();
        assert_eq!(meta.redirect_uris, vec!["http://127.0.0.1:8080/cb"]);
        assert_eq!(meta.scope.as_deref(), Some("atproto transition:generic"));
        assert!(meta.accepts_redirect("http://127.0.0.1:8080/cb"));
        assert!(meta.accepts_redirect("http://127.0.0.1:9999/cb"));
        assert!(!meta.accepts_redirect("http://127.0.0.1:8080/other"));
        assert!(!meta.accepts_redirect("https://evil.example/cb"));
        check_requested_scope(&meta, "atproto transition:generic").unwrap();
        assert_eq!(
            check_requested_scope(&meta, "atproto transition:chat.bsky")
                .unwrap_err()
                .code,
            "invalid_scope"
        );
        assert!(loopback_metadata("http://localhost:8080?scope=atproto").is_err());
        assert!(
            loopback_metadata("http://localhost?redirect_uri=https%3A%2F%2Fx.example%2F").is_err()
        );
        let default = loopback_metadata("http://localhost").unwrap();
        assert_eq!(default.scope.as_deref(), Some("atproto"));
    }

    #[test]
    fn fixture_metadata_validates() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/interop/extra/indigo/atproto/auth/oauth/testdata/"
        );
        for file in [
            "statusphere-client-metadata.json",
            "flaskdemo-client-metadata.json",
        ] {
            let text = std::fs::read_to_string(format!("{dir}{file}")).unwrap();
            let meta: ClientMetadata = serde_json::from_str(&text).unwrap();
            meta.validate().unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}
