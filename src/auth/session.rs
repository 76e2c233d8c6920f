//! Session tokens: the `accessJwt` / `refreshJwt` pair of `com.atproto.server.createSession`.
//!
//! Claims follow the reference PDS: `scope`, `sub` (the account DID), `aud` (this PDS's
//! service DID), `iat`, `exp`, and for refresh tokens a random `jti` under which the token is
//! stored and revoked. Unlike the reference (HS256 with a shared secret) they are signed with
//! Ed25519 (JOSE `alg: "EdDSA"`), so the verifying half could be handed out without the
//! ability to mint tokens. Access and refresh tokens are domain-separated twice: by the `typ`
//! header (`at+jwt` / `refresh+jwt`, as the XRPC specification asks) and by `scope`.
//!
//! The reference still accepts tokens without `typ` (issued before it set one); we have never
//! issued such tokens, so `typ` is required.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;

use super::jws::{self, Compact};
use super::{AuthError, InvalidReason, check_issued, check_times};
use crate::crypto;

/// The JOSE algorithm name of Ed25519 signatures (RFC 8037).
pub(crate) const ALG: &str = "EdDSA";
/// `typ` header of access tokens ("access token", RFC 9068; not "atproto").
pub(crate) const ACCESS_TYP: &str = "at+jwt";
/// `typ` header of refresh tokens (a non-standard type the reference PDS uses).
pub(crate) const REFRESH_TYP: &str = "refresh+jwt";
/// `scope` of every refresh token.
pub(crate) const REFRESH_SCOPE: &str = "com.atproto.refresh";
/// Lifetime of an access token: two hours.
pub(crate) const ACCESS_LIFETIME_SECS: i64 = 2 * 60 * 60;
/// Lifetime of a refresh token: ninety days.
pub(crate) const REFRESH_LIFETIME_SECS: i64 = 90 * 24 * 60 * 60;

/// What an access token allows, carried in its `scope` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessScope {
    /// A session opened with the account password: everything.
    Access,
    /// A session opened with an ordinary app password: no account-management actions.
    AppPass,
    /// A session opened with a privileged app password: also direct messages.
    AppPassPrivileged,
}

impl AccessScope {
    /// The `scope` claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessScope::Access => "com.atproto.access",
            AccessScope::AppPass => "com.atproto.appPass",
            AccessScope::AppPassPrivileged => "com.atproto.appPassPrivileged",
        }
    }

    /// Parses a `scope` claim value.
    pub fn parse(scope: &str) -> Option<Self> {
        [
            AccessScope::Access,
            AccessScope::AppPass,
            AccessScope::AppPassPrivileged,
        ]
        .into_iter()
        .find(|s| s.as_str() == scope)
    }

    /// Whether the session may do what the account password allows (manage the account,
    /// app passwords, …): only full-access sessions.
    pub fn is_full(self) -> bool {
        self == AccessScope::Access
    }

    /// Whether the session may use privileged endpoints (e.g. chat): full access and
    /// privileged app passwords.
    pub fn is_privileged(self) -> bool {
        matches!(self, AccessScope::Access | AccessScope::AppPassPrivileged)
    }
}

/// The verified claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// The account's DID (`sub`).
    pub did: String,
    /// What the session allows.
    pub scope: AccessScope,
    /// Issued at (UNIX seconds).
    pub iat: i64,
    /// Expires at (UNIX seconds).
    pub exp: i64,
}

/// The verified claims of a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshClaims {
    /// The account's DID (`sub`).
    pub did: String,
    /// The token id under which the token is stored (and revoked).
    pub jti: String,
    /// Issued at (UNIX seconds).
    pub iat: i64,
    /// Expires at (UNIX seconds).
    pub exp: i64,
}

/// Claims as they appear in the payload, before checking.
#[derive(Deserialize)]
struct RawClaims {
    scope: String,
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: Option<String>,
    /// A proof-of-possession key (RFC 7800): such tokens are not Bearer tokens.
    cnf: Option<IgnoredAny>,
}

/// Which of the two token kinds is being checked.
#[derive(Clone, Copy)]
enum Kind {
    Access,
    Refresh,
}

/// Mints and verifies this PDS's session tokens.
pub struct SessionSigner {
    key: SigningKey,
    verifying: VerifyingKey,
    service_did: String,
    /// Access tokens already verified, by their whole text, with their claims: a client
    /// sends the same token with every request for its lifetime, and the Ed25519
    /// verification was about a twentieth of a `createRecord`'s CPU. Only the times are
    /// checked again. At most [`VERIFIED_TOKENS`]; emptied when full.
    verified: std::sync::Mutex<HashMap<Box<str>, AccessClaims>>,
}

/// The most verified access tokens [`SessionSigner`] remembers (about 400 bytes each).
const VERIFIED_TOKENS: usize = 1024;

impl std::fmt::Debug for SessionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSigner")
            .field("public_key", &hex::encode(self.verifying.as_bytes()))
            .field("service_did", &self.service_did)
            .finish_non_exhaustive()
    }
}

impl SessionSigner {
    /// A signer from a 32-byte Ed25519 seed (the secret key, kept in configuration) and the
    /// service DID that tokens are issued for (`aud`).
    pub fn new(seed: [u8; 32], service_did: String) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let verifying = key.verifying_key();
        SessionSigner {
            key,
            verifying,
            service_did,
            verified: Default::default(),
        }
    }

    /// A fresh random seed from the operating system, for new installations.
    pub fn generate_seed() -> [u8; 32] {
        SigningKey::generate(&mut OsRng).to_bytes()
    }

    /// The Ed25519 public key (32 bytes).
    pub fn public_key(&self) -> [u8; 32] {
        self.verifying.to_bytes()
    }

    /// The service DID tokens are issued for.
    pub fn service_did(&self) -> &str {
        &self.service_did
    }

    /// An access token for `did`, valid for [`ACCESS_LIFETIME_SECS`] from `now`.
    pub fn create_access(&self, did: &str, scope: AccessScope, now: i64) -> String {
        let payload = json!({
            "scope": scope.as_str(),
            "sub": did,
            "aud": self.service_did,
            "iat": now,
            "exp": now.saturating_add(ACCESS_LIFETIME_SECS),
        });
        self.sign(ACCESS_TYP, &payload)
    }

    /// A refresh token for `did` with id `jti` (see [`new_refresh_jti`]), valid for
    /// [`REFRESH_LIFETIME_SECS`] from `now`.
    pub fn create_refresh(&self, did: &str, jti: &str, now: i64) -> String {
        let payload = json!({
            "scope": REFRESH_SCOPE,
            "sub": did,
            "aud": self.service_did,
            "jti": jti,
            "iat": now,
            "exp": now.saturating_add(REFRESH_LIFETIME_SECS),
        });
        self.sign(REFRESH_TYP, &payload)
    }

    /// Verifies an access token: signature, `alg`, `typ`, an access scope, `sub`, `aud`,
    /// `iat` and `exp`.
    pub fn verify_access(&self, token: &str, now: i64) -> Result<AccessClaims, AuthError> {
        let known = self.verified_tokens().get(token).cloned();
        if let Some(claims) = known {
            check_times(Some(claims.iat), claims.exp, now)?;
            return Ok(claims);
        }
        let claims = self.verify_access_uncached(token, now)?;
        let mut verified = self.verified_tokens();
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.into(), claims.clone());
        Ok(claims)
    }

    fn verified_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, AccessClaims>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn verify_access_uncached(&self, token: &str, now: i64) -> Result<AccessClaims, AuthError> {
        let raw = self.verify(token, Kind::Access)?;
        let scope = AccessScope::parse(&raw.scope).ok_or_else(|| InvalidReason::Scope {
            found: raw.scope.clone(),
        })?;
        check_times(Some(raw.iat), raw.exp, now)?;
        Ok(AccessClaims {
            did: raw.sub,
            scope,
            iat: raw.iat,
            exp: raw.exp,
        })
    }

    /// Verifies a refresh token: signature, `alg`, `typ`, the refresh scope, `sub`, `aud`,
    /// a non-empty `jti`, `iat` and `exp`.
    pub fn verify_refresh(&self, token: &str, now: i64) -> Result<RefreshClaims, AuthError> {
        let claims = self.verify_refresh_ignoring_expiry(token, now)?;
        check_times(Some(claims.iat), claims.exp, now)?;
        Ok(claims)
    }

    /// Like [`verify_refresh`](Self::verify_refresh) but accepts an expired token, so that
    /// `deleteSession` can still revoke it (the reference does the same).
    pub fn verify_refresh_ignoring_expiry(
        &self,
        token: &str,
        now: i64,
    ) -> Result<RefreshClaims, AuthError> {
        let raw = self.verify(token, Kind::Refresh)?;
        if raw.scope != REFRESH_SCOPE {
            return Err(InvalidReason::Scope { found: raw.scope }.into());
        }
        let jti = raw
            .jti
            .filter(|jti| !jti.is_empty())
            .ok_or(InvalidReason::Malformed("refresh token has no jti"))?;
        check_issued(raw.iat, now)?;
        Ok(RefreshClaims {
            did: raw.sub,
            jti,
            iat: raw.iat,
            exp: raw.exp,
        })
    }

    fn sign(&self, typ: &str, payload: &serde_json::Value) -> String {
        let header = json!({ "typ": typ, "alg": ALG });
        let input = jws::signing_input(&header, payload);
        let signature = self.key.sign(input.as_bytes());
        jws::finish(input, &signature.to_bytes())
    }

    /// The checks common to both kinds, up to (not including) scope and time.
    fn verify(&self, token: &str, kind: Kind) -> Result<RawClaims, AuthError> {
        let compact = Compact::parse(token)?;
        if compact.header.alg != ALG {
            return Err(InvalidReason::Algorithm {
                found: compact.header.alg,
            }
            .into());
        }
        let expected_typ = match kind {
            Kind::Access => ACCESS_TYP,
            Kind::Refresh => REFRESH_TYP,
        };
        if compact.header.typ.as_deref() != Some(expected_typ) {
            return Err(InvalidReason::TokenType {
                found: compact.header.typ,
            }
            .into());
        }
        let signature = Signature::from_slice(&compact.signature).map_err(|_| {
            InvalidReason::BadSignature(crypto::Error::MalformedSignature(compact.signature.len()))
        })?;
        self.verifying
            .verify_strict(compact.signing_input.as_bytes(), &signature)
            .map_err(|_| InvalidReason::BadSignature(crypto::Error::InvalidSignature))?;

        let raw: RawClaims = compact.claims()?;
        if raw.cnf.is_some() {
            return Err(
                InvalidReason::Malformed("proof-of-possession tokens are not accepted").into(),
            );
        }
        if !raw.sub.starts_with("did:") {
            return Err(InvalidReason::Subject.into());
        }
        if raw.aud != self.service_did {
            return Err(InvalidReason::Audience.into());
        }
        Ok(raw)
    }
}

/// A new random refresh-token id: 256 bits, unpadded base64url (43 characters).
pub fn new_refresh_jti() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
