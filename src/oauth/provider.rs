//! The authorization server's flows: PAR, the authorization (sign-in and consent) steps,
//! the token endpoint, revocation, and the check of DPoP-bound access tokens.
//!
//! Every method takes the current time (UNIX seconds) from its caller, so lifetimes are
//! testable without waiting.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::client::{ClientMetadata, ClientResolver, check_requested_scope};
use super::dpop::{DpopVerifier, ProofContext, sha256_b64};
use super::permission_set::PermissionSets;
use super::scope::{Permissions, Scope};
use super::store::{self, RequestRow, TokenRow};
use super::{OAuthError, SessionSummary, random_id};
use crate::accounts::{AccountDb, AccountStatus};

/// Lifetime of a pushed authorization request (the reference's `PAR_EXPIRES_IN`).
const PAR_LIFETIME: i64 = 5 * 60;
/// Lifetime of an authorization code.
const CODE_LIFETIME: i64 = 60;
/// Lifetime of an access token (the reference's `TOKEN_MAX_AGE`).
pub(crate) const ACCESS_LIFETIME: i64 = 60 * 60;
const WEEK: i64 = 7 * 24 * 60 * 60;
/// Public clients: two weeks per refresh token and per session, as the atproto profile says.
const PUBLIC_REFRESH_LIFETIME: i64 = 2 * WEEK;
const PUBLIC_SESSION_LIFETIME: i64 = 2 * WEEK;
/// Confidential clients: three months per refresh token, two years per session.
const CONFIDENTIAL_REFRESH_LIFETIME: i64 = 13 * WEEK;
const CONFIDENTIAL_SESSION_LIFETIME: i64 = 104 * WEEK;
/// Prefix of `request_uri`s.
pub(crate) const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The HTTP facts a DPoP proof is checked against.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    pub method: &'a str,
    /// Absolute URL of the endpoint (query ignored).
    pub url: &'a str,
    /// The `DPoP` header.
    pub dpop: Option<&'a str>,
}

/// The authorization parameters kept between PAR and the code exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AuthParams {
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    code_challenge: String,
    login_hint: Option<String>,
    response_mode: String,
}

/// What the sign-in and consent pages show about a pending request.
#[derive(Debug, Clone)]
pub struct AuthorizationView {
    pub request_id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    /// Each requested scope with what it allows in plain words.
    pub scopes: Vec<(String, String)>,
    pub login_hint: Option<String>,
}

/// What the sign-in form carries.
#[derive(Debug, Clone, Copy)]
pub struct SignInForm<'a> {
    pub request_id: &'a str,
    /// Handle, email address or DID.
    pub identifier: &'a str,
    pub password: &'a str,
    /// The mailed sign-in code, where the account asks for one.
    pub code: Option<&'a str>,
    pub ip: Option<std::net::IpAddr>,
}

/// The result of a sign-in form.
#[derive(Debug)]
pub enum SignInOutcome {
    /// Signed in: show the consent page with this one-time secret.
    Consent {
        view: AuthorizationView,
        secret: String,
        handle: String,
    },
    /// Show the sign-in page again with this message (wrong password, code mailed, …).
    Retry {
        view: AuthorizationView,
        message: String,
        needs_code: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDecision {
    Approve,
    Deny,
}

/// The token endpoint's answer.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub scope: String,
    pub sub: String,
}

/// What a valid DPoP-bound access token grants.
#[derive(Debug, Clone)]
pub struct AccessGrant {
    pub did: String,
    pub client_id: String,
    pub scope: String,
    pub permissions: Permissions,
}

/// The authorization server.
#[derive(Clone)]
pub struct OAuthProvider(Arc<Inner>);

struct Inner {
    accounts: AccountDb,
    issuer: String,
    clients: ClientResolver,
    dpop: DpopVerifier,
    permission_sets: PermissionSets,
}

impl std::fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthProvider")
            .field("issuer", &self.0.issuer)
            .finish_non_exhaustive()
    }
}

fn hash(token: &str) -> String {
    sha256_b64(token)
}

impl OAuthProvider {
    pub fn new(
        accounts: AccountDb,
        issuer: String,
        clients: ClientResolver,
        permission_sets: PermissionSets,
    ) -> Self {
        OAuthProvider(Arc::new(Inner {
            accounts,
            issuer: issuer.trim_end_matches('/').to_owned(),
            clients,
            dpop: DpopVerifier::new(),
            permission_sets,
        }))
    }

    /// The issuer identifier (the server's public URL, no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// The DPoP nonce clients should use now.
    pub fn nonce(&self, now: i64) -> String {
        self.0.dpop.nonce(now)
    }

    pub fn clients(&self) -> &ClientResolver {
        &self.0.clients
    }

    /// `/.well-known/oauth-authorization-server`.
    pub fn server_metadata(&self) -> serde_json::Value {
        let i = self.issuer();
        serde_json::json!({
            "issuer": i,
            "scopes_supported": ["atproto", "transition:email", "transition:generic", "transition:chat.bsky"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "ui_locales_supported": ["en-US"],
            "display_values_supported": ["page"],
            "authorization_response_iss_parameter_supported": true,
            "request_object_signing_alg_values_supported": ["none"],
            "request_parameter_supported": false,
            "request_uri_parameter_supported": true,
            "require_request_uri_registration": true,
            "authorization_endpoint": format!("{i}/oauth/authorize"),
            "token_endpoint": format!("{i}/oauth/token"),
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
            "revocation_endpoint": format!("{i}/oauth/revoke"),
            "pushed_authorization_request_endpoint": format!("{i}/oauth/par"),
            "require_pushed_authorization_requests": true,
            "dpop_signing_alg_values_supported": ["ES256"],
            "protected_resources": [i],
            "client_id_metadata_document_supported": true,
        })
    }

    /// `/.well-known/oauth-protected-resource`.
    pub fn resource_metadata(&self) -> serde_json::Value {
        let i = self.issuer();
        serde_json::json!({
            "resource": i,
            "authorization_servers": [i],
            "scopes_supported": [],
            "bearer_methods_supported": ["header"],
            "resource_documentation": "https://atproto.com",
        })
    }

    /// Checks the client's credentials: none for public clients, a `private_key_jwt`
    /// assertion signed with one of its keys for confidential ones.
    async fn authenticate_client(
        &self,
        form: &HashMap<String, String>,
        now: i64,
    ) -> Result<Arc<ClientMetadata>, OAuthError> {
        let client_id = form
            .get("client_id")
            .ok_or_else(|| OAuthError::invalid_request("Missing client_id"))?;
        let meta = self.0.clients.resolve(client_id).await?;
        let assertion = form.get("client_assertion");
        if !meta.is_confidential() {
            if assertion.is_some() {
                return Err(OAuthError::invalid_client(
                    "Client authentication method none does not use client_assertion",
                ));
            }
            return Ok(meta);
        }
        if form.get("client_assertion_type").map(String::as_str) != Some(CLIENT_ASSERTION_TYPE) {
            return Err(OAuthError::invalid_client("Missing client_assertion_type"));
        }
        let assertion =
            assertion.ok_or_else(|| OAuthError::invalid_client("Missing client_assertion"))?;
        let keys = self.0.clients.client_keys(&meta).await?;
        super::client::verify_client_assertion(
            assertion,
            &keys,
            &meta.client_id,
            self.issuer(),
            now,
            |jti| self.0.dpop.spend_external(jti, now),
        )?;
        Ok(meta)
    }

    /// `POST /oauth/par`: stores the request and returns its `request_uri`.
    pub async fn par(
        &self,
        ctx: RequestContext<'_>,
        form: &HashMap<String, String>,
        now: i64,
    ) -> Result<(String, i64), OAuthError> {
        let dpop = match ctx.dpop {
            Some(proof) => Some(self.verify_proof(proof, ctx, None, now)?),
            None => None,
        };
        let meta = self.authenticate_client(form, now).await?;
        let get = |k: &str| form.get(k).filter(|v| !v.is_empty()).cloned();
        if form.contains_key("request") {
            return Err(OAuthError::invalid_request(
                "Request objects are not supported",
            ));
        }
        if get("response_type").as_deref() != Some("code") {
            return Err(OAuthError::new_unsupported_response_type());
        }
        let redirect_uri = match get("redirect_uri") {
            Some(uri) => uri,
            None if meta.redirect_uris.len() == 1 => meta.redirect_uris[0].clone(),
            None => return Err(OAuthError::invalid_request("Missing redirect_uri")),
        };
        if !meta.accepts_redirect(&redirect_uri) {
            return Err(OAuthError::invalid_redirect_uri(
                "redirect_uri is not registered in the client metadata",
            ));
        }
        let challenge = get("code_challenge")
            .ok_or_else(|| OAuthError::invalid_request("Missing code_challenge"))?;
        if get("code_challenge_method").as_deref() != Some("S256") {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256",
            ));
        }
        if challenge.len() != 43 {
            return Err(OAuthError::invalid_request("Invalid code_challenge"));
        }
        let scope = get("scope").unwrap_or_else(|| meta.scope.clone().unwrap_or_default());
        check_requested_scope(&meta, &scope)?;
        // Every included permission set must resolve now (they are cached for the consent
        // page and the token).
        self.0.permission_sets.expand(&scope).await?;
        let response_mode = get("response_mode").unwrap_or_else(|| "query".to_owned());
        if response_mode != "query" && response_mode != "fragment" {
            return Err(OAuthError::invalid_request("Unsupported response_mode"));
        }
        if let (Some(jkt), Some(proof)) = (get("dpop_jkt"), &dpop)
            && jkt != *proof
        {
            return Err(OAuthError::invalid_dpop_proof(
                "dpop_jkt does not match the DPoP proof",
            ));
        }
        let params = AuthParams {
            redirect_uri,
            scope,
            state: get("state"),
            code_challenge: challenge,
            login_hint: get("login_hint"),
            response_mode,
        };
        let id = random_id("req-", 16);
        let row = RequestRow {
            id: id.clone(),
            client_id: meta.client_id.clone(),
            params: serde_json::to_string(&params).map_err(OAuthError::server_error)?,
            dpop_jkt: dpop.or_else(|| get("dpop_jkt")),
            expires_at: now + PAR_LIFETIME,
            did: None,
            consent_hash: None,
            code_expires_at: None,
        };
        let mut conn = self.0.accounts.pool().acquire().await?;
        store::insert_request(&mut conn, &row, now).await?;
        Ok((format!("{REQUEST_URI_PREFIX}{id}"), PAR_LIFETIME))
    }

    fn verify_proof(
        &self,
        proof: &str,
        ctx: RequestContext<'_>,
        access_token: Option<&str>,
        now: i64,
    ) -> Result<String, OAuthError> {
        let verified = self.0.dpop.verify(
            proof,
            &ProofContext {
                method: ctx.method,
                url: ctx.url,
                access_token,
            },
            now,
        )?;
        Ok(verified.jkt)
    }

    async fn pending(
        &self,
        request_id: &str,
        now: i64,
    ) -> Result<(RequestRow, AuthParams), OAuthError> {
        let mut conn = self.0.accounts.pool().acquire().await?;
        let row = store::select_request(&mut conn, request_id)
            .await?
            .filter(|r| r.expires_at > now && r.code_expires_at.is_none())
            .ok_or_else(|| OAuthError::invalid_request("Unknown or expired request_uri"))?;
        let params: AuthParams =
            serde_json::from_str(&row.params).map_err(OAuthError::server_error)?;
        Ok((row, params))
    }

    async fn view(
        &self,
        row: &RequestRow,
        params: &AuthParams,
    ) -> Result<AuthorizationView, OAuthError> {
        let meta = self.0.clients.resolve(&row.client_id).await?;
        let mut scopes = Vec::new();
        for s in params.scope.split(' ').filter(|s| !s.is_empty()) {
            let words = match Scope::parse(s) {
                Some(Scope::Include { nsid, aud }) => {
                    let set = self.0.permission_sets.get(&nsid).await?;
                    let granted: Vec<String> = set
                        .scopes(aud.as_deref())
                        .iter()
                        .map(Scope::describe)
                        .collect();
                    let name = set.title.clone().unwrap_or(nsid);
                    format!("{name}: {}", granted.join("; "))
                }
                Some(parsed) => parsed.describe(),
                None => String::new(),
            };
            scopes.push((s.to_owned(), words));
        }
        Ok(AuthorizationView {
            request_id: row.id.clone(),
            client_id: row.client_id.clone(),
            client_name: meta.client_name.clone(),
            client_uri: meta.client_uri.clone(),
            scopes,
            login_hint: params.login_hint.clone(),
        })
    }

    /// `GET /oauth/authorize`: the pending request named by `request_uri`.
    pub async fn authorization(
        &self,
        client_id: &str,
        request_uri: &str,
        now: i64,
    ) -> Result<AuthorizationView, OAuthError> {
        let id = request_uri
            .strip_prefix(REQUEST_URI_PREFIX)
            .ok_or_else(|| OAuthError::invalid_request("Invalid request_uri"))?;
        let (row, params) = self.pending(id, now).await?;
        if row.client_id != client_id {
            return Err(OAuthError::invalid_request(
                "client_id does not match the request",
            ));
        }
        self.view(&row, &params).await
    }

    /// A pending request by its id (the pages' hidden field).
    pub async fn authorization_by_id(
        &self,
        request_id: &str,
        now: i64,
    ) -> Result<AuthorizationView, OAuthError> {
        let (row, params) = self.pending(request_id, now).await?;
        self.view(&row, &params).await
    }

    /// The sign-in form: checks the password (and the mailed code where the account asks
    /// for one), then binds the account to the request.
    pub async fn sign_in(
        &self,
        accounts: &crate::account_service::AccountService<'_>,
        form: SignInForm<'_>,
        now: i64,
    ) -> Result<SignInOutcome, OAuthError> {
        let SignInForm {
            request_id,
            identifier,
            password,
            code,
            ip,
        } = form;
        let (row, params) = self.pending(request_id, now).await?;
        let view = self.view(&row, &params).await?;
        let retry = |message: &str, needs_code: bool| SignInOutcome::Retry {
            view: view.clone(),
            message: message.to_owned(),
            needs_code,
        };
        let login = match self
            .0
            .accounts
            .login(identifier.trim(), password, ip, now)
            .await
        {
            Ok(login) => login,
            Err(crate::accounts::Error::AuthFailed) => {
                return Ok(retry("Invalid identifier or password", false));
            }
            Err(crate::accounts::Error::AccountLocked { .. }) => {
                return Ok(retry("Too many failed attempts; try again later", false));
            }
            Err(crate::accounts::Error::AccountTakedown) => {
                return Ok(retry("This account has been taken down", false));
            }
            Err(other) => return Err(other.into()),
        };
        if login.app_password.is_some() {
            return Ok(retry(
                "Sign in with your account password, not an app password",
                false,
            ));
        }
        if login.account.email_auth_factor {
            use crate::account_service::Error as E;
            match accounts.check_sign_in_factor(&login.account, code).await {
                Ok(()) => {}
                Err(E::AuthFactorTokenRequired) => {
                    return Ok(retry("A sign-in code was sent to your email address", true));
                }
                Err(E::InvalidSignInCode) => return Ok(retry("Invalid sign-in code", true)),
                Err(other) => return Err(OAuthError::server_error(other)),
            }
        }
        let secret = random_id("", 24);
        let mut conn = self.0.accounts.pool().acquire().await?;
        if !store::set_request_account(
            &mut conn,
            &row.id,
            &login.account.did,
            &hash(&secret),
            now + PAR_LIFETIME,
        )
        .await?
        {
            return Err(OAuthError::invalid_request("Request already used"));
        }
        Ok(SignInOutcome::Consent {
            view,
            secret,
            handle: login.account.handle.unwrap_or(login.account.did),
        })
    }

    /// The consent form: on approval issues the code. Returns the URL to redirect to.
    pub async fn consent(
        &self,
        request_id: &str,
        secret: &str,
        decision: ConsentDecision,
        now: i64,
    ) -> Result<String, OAuthError> {
        let (row, params) = self.pending(request_id, now).await?;
        if row.did.is_none() || row.consent_hash.as_deref() != Some(hash(secret).as_str()) {
            return Err(OAuthError::access_denied("Sign in first"));
        }
        let mut pairs: Vec<(&str, String)> = Vec::new();
        let mut conn = self.0.accounts.pool().acquire().await?;
        match decision {
            ConsentDecision::Approve => {
                let code = random_id("cod-", 32);
                if !store::set_request_code(&mut conn, &row.id, &hash(&code), now + CODE_LIFETIME)
                    .await?
                {
                    return Err(OAuthError::invalid_request("Request already used"));
                }
                pairs.push(("code", code));
            }
            ConsentDecision::Deny => {
                store::delete_request(&mut conn, &row.id).await?;
                pairs.push(("error", "access_denied".to_owned()));
                pairs.push(("error_description", "The user denied access".to_owned()));
            }
        }
        if let Some(state) = params.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", self.issuer().to_owned()));
        let mut url = url::Url::parse(&params.redirect_uri).map_err(OAuthError::server_error)?;
        if params.response_mode == "fragment" {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            url.set_fragment(Some(&encoded));
        } else {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        Ok(url.into())
    }

    /// `POST /oauth/token`.
    pub async fn token(
        &self,
        ctx: RequestContext<'_>,
        form: &HashMap<String, String>,
        now: i64,
    ) -> Result<TokenResponse, OAuthError> {
        let proof = ctx
            .dpop
            .ok_or_else(|| OAuthError::invalid_dpop_proof("DPoP proof required"))?;
        let jkt = self.verify_proof(proof, ctx, None, now)?;
        let meta = self.authenticate_client(form, now).await?;
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => self.exchange_code(&meta, form, &jkt, now).await,
            Some("refresh_token") => self.refresh(&meta, form, &jkt, now).await,
            Some(other) => Err(OAuthError::unsupported_grant_type(format!(
                "Unsupported grant_type {other}"
            ))),
            None => Err(OAuthError::invalid_request("Missing grant_type")),
        }
    }

    async fn exchange_code(
        &self,
        meta: &ClientMetadata,
        form: &HashMap<String, String>,
        jkt: &str,
        now: i64,
    ) -> Result<TokenResponse, OAuthError> {
        let code = form
            .get("code")
            .ok_or_else(|| OAuthError::invalid_request("Missing code"))?;
        let code_hash = hash(code);
        let mut conn = self.0.accounts.pool().acquire().await?;
        let Some(row) = store::take_request_by_code(&mut conn, &code_hash).await? else {
            // A code used twice revokes what it was exchanged for (RFC 6749 §4.1.2).
            if let Some(token) = store::token_by_code(&mut conn, &code_hash).await? {
                store::delete_token(&mut conn, &token.id).await?;
                return Err(OAuthError::invalid_grant("Code replayed"));
            }
            return Err(OAuthError::invalid_grant("Invalid code"));
        };
        let params: AuthParams =
            serde_json::from_str(&row.params).map_err(OAuthError::server_error)?;
        if row.client_id != meta.client_id {
            return Err(OAuthError::invalid_grant(
                "Code was issued to another client",
            ));
        }
        if row.code_expires_at.is_none_or(|exp| exp <= now) {
            return Err(OAuthError::invalid_grant("Code expired"));
        }
        if form.get("redirect_uri") != Some(&params.redirect_uri) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the request",
            ));
        }
        let verifier = form
            .get("code_verifier")
            .ok_or_else(|| OAuthError::invalid_grant("Missing code_verifier"))?;
        let verifier_ok = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !verifier_ok || sha256_b64(verifier) != params.code_challenge {
            return Err(OAuthError::invalid_grant("Invalid code_verifier"));
        }
        if row.dpop_jkt.as_deref().is_some_and(|bound| bound != jkt) {
            return Err(OAuthError::invalid_grant(
                "DPoP key does not match the one used at PAR",
            ));
        }
        let did = row
            .did
            .ok_or_else(|| OAuthError::invalid_grant("Invalid code"))?;
        self.check_account(&did).await?;
        let (lifetime_refresh, lifetime_session) = if meta.is_confidential() {
            (CONFIDENTIAL_REFRESH_LIFETIME, CONFIDENTIAL_SESSION_LIFETIME)
        } else {
            (PUBLIC_REFRESH_LIFETIME, PUBLIC_SESSION_LIFETIME)
        };
        // The token carries the included sets' permissions themselves (the reference's
        // token scope), so a later change of a set applies to new sessions only.
        let scope = self.0.permission_sets.expand(&params.scope).await?;
        let access = random_id("oat-", 32);
        let refresh = random_id("ref-", 32);
        let token = TokenRow {
            id: random_id("tok-", 16),
            did: did.clone(),
            client_id: meta.client_id.clone(),
            client_name: meta.client_name.clone(),
            scope: scope.clone(),
            dpop_jkt: jkt.to_owned(),
            confidential: meta.is_confidential(),
            code_hash: Some(code_hash),
            access_hash: hash(&access),
            access_expires_at: now + ACCESS_LIFETIME,
            refresh_hash: hash(&refresh),
            refresh_expires_at: now + lifetime_refresh.min(lifetime_session),
            session_expires_at: now + lifetime_session,
            created_at: now,
            updated_at: now,
        };
        store::insert_token(&mut conn, &token).await?;
        Ok(TokenResponse {
            access_token: access,
            token_type: "DPoP",
            expires_in: ACCESS_LIFETIME,
            refresh_token: refresh,
            scope,
            sub: did,
        })
    }

    async fn check_account(&self, did: &str) -> Result<(), OAuthError> {
        match self.0.accounts.account_status(did).await? {
            AccountStatus::Active | AccountStatus::Deactivated => Ok(()),
            AccountStatus::Takendown | AccountStatus::Deleted => {
                Err(OAuthError::invalid_grant("Account is not available"))
            }
        }
    }

    async fn refresh(
        &self,
        meta: &ClientMetadata,
        form: &HashMap<String, String>,
        jkt: &str,
        now: i64,
    ) -> Result<TokenResponse, OAuthError> {
        let refresh = form
            .get("refresh_token")
            .ok_or_else(|| OAuthError::invalid_request("Missing refresh_token"))?;
        let old_hash = hash(refresh);
        let mut conn = self.0.accounts.pool().acquire().await?;
        let Some(mut token) = store::token_by_refresh(&mut conn, &old_hash).await? else {
            // An exchanged refresh token presented again: someone else has a copy, so the
            // whole session goes.
            if let Some(id) = store::used_refresh_session(&mut conn, &old_hash).await? {
                store::delete_token(&mut conn, &id).await?;
                return Err(OAuthError::invalid_grant(
                    "Refresh token replayed; session revoked",
                ));
            }
            return Err(OAuthError::invalid_grant("Invalid refresh token"));
        };
        if token.client_id != meta.client_id {
            return Err(OAuthError::invalid_grant(
                "Refresh token was issued to another client",
            ));
        }
        if token.dpop_jkt != jkt {
            return Err(OAuthError::invalid_grant(
                "DPoP key does not match the session's",
            ));
        }
        if token.refresh_expires_at <= now || token.session_expires_at <= now {
            store::delete_token(&mut conn, &token.id).await?;
            return Err(OAuthError::invalid_grant("Refresh token expired"));
        }
        self.check_account(&token.did).await?;
        let lifetime = if token.confidential {
            CONFIDENTIAL_REFRESH_LIFETIME
        } else {
            PUBLIC_REFRESH_LIFETIME
        };
        let access = random_id("oat-", 32);
        let new_refresh = random_id("ref-", 32);
        token.access_hash = hash(&access);
        token.access_expires_at = now + ACCESS_LIFETIME;
        token.refresh_hash = hash(&new_refresh);
        token.refresh_expires_at = (now + lifetime).min(token.session_expires_at);
        token.updated_at = now;
        if !store::rotate_token(&mut conn, &token, &old_hash).await? {
            return Err(OAuthError::invalid_grant("Refresh token already used"));
        }
        Ok(TokenResponse {
            access_token: access,
            token_type: "DPoP",
            expires_in: ACCESS_LIFETIME,
            refresh_token: new_refresh,
            scope: token.scope,
            sub: token.did,
        })
    }

    /// `POST /oauth/revoke`: ends the session of an access or refresh token. Unknown
    /// tokens are not an error (RFC 7009 §2.2).
    pub async fn revoke(&self, form: &HashMap<String, String>) -> Result<(), OAuthError> {
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("Missing token"))?;
        let h = hash(token);
        let mut conn = self.0.accounts.pool().acquire().await?;
        let found = match store::token_by_access(&mut conn, &h).await? {
            Some(t) => Some(t),
            None => store::token_by_refresh(&mut conn, &h).await?,
        };
        if let Some(t) = found
            && form.get("client_id").is_none_or(|c| *c == t.client_id)
        {
            store::delete_token(&mut conn, &t.id).await?;
        }
        Ok(())
    }

    /// Checks a DPoP-bound access token and its proof on a resource request.
    pub async fn authenticate(
        &self,
        ctx: RequestContext<'_>,
        access_token: &str,
        now: i64,
    ) -> Result<AccessGrant, OAuthError> {
        let proof = ctx
            .dpop
            .ok_or_else(|| OAuthError::invalid_dpop_proof("DPoP proof required"))?;
        let jkt = self.verify_proof(proof, ctx, Some(access_token), now)?;
        let mut conn = self.0.accounts.pool().acquire().await?;
        let token = store::token_by_access(&mut conn, &hash(access_token))
            .await?
            .ok_or_else(|| OAuthError::invalid_token("Invalid token"))?;
        if token.access_expires_at <= now {
            return Err(OAuthError::invalid_token("Token expired"));
        }
        if token.dpop_jkt != jkt {
            return Err(OAuthError::invalid_token("Invalid DPoP key binding"));
        }
        Ok(AccessGrant {
            did: token.did,
            client_id: token.client_id,
            permissions: Permissions::from_scope(&token.scope),
            scope: token.scope,
        })
    }

    /// The apps `did` has authorized (live sessions).
    pub async fn sessions_of(
        &self,
        did: &str,
        now: i64,
    ) -> Result<Vec<SessionSummary>, OAuthError> {
        let mut conn = self.0.accounts.pool().acquire().await?;
        Ok(store::list_tokens_of(&mut conn, did, now).await?)
    }

    /// Revokes one of `did`'s sessions; false if there is no such session.
    pub async fn revoke_session(&self, did: &str, id: &str) -> Result<bool, OAuthError> {
        let mut conn = self.0.accounts.pool().acquire().await?;
        let owned = store::list_tokens_of(&mut conn, did, i64::MIN)
            .await?
            .iter()
            .any(|s| s.id == id);
        if !owned {
            return Ok(false);
        }
        Ok(store::delete_token(&mut conn, id).await?)
    }
}
