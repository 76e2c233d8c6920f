//! Inter-service authentication JWTs, as the XRPC specification's "Inter-Service
//! Authentication" section defines them: issued on behalf of an account (`iss`), for one
//! service (`aud`), optionally bound to one lexicon method (`lxm`), short-lived, and signed
//! with the account's atproto signing key (`ES256K` for secp256k1, `ES256` for P-256).
//!
//! Used for `com.atproto.server.getServiceAuth`, for the tokens the PDS attaches when it
//! forwards a request under `atproto-proxy`, and to check tokens other services send us.
//!
//! Signatures must be compact `r ‖ s` in low-S form, as everywhere in atproto
//! ([`crate::crypto::PublicKey::verify`]). The reference TypeScript verifier tolerates
//! high-S service-JWT signatures; we do not.

use rand::RngCore;
use rand::rngs::OsRng;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jws::{self, Compact};
use super::{AuthError, InvalidReason, check_times};
use crate::crypto::{Keypair, PublicKey};

/// The `typ` header of service JWTs (the specification may move to a more specific value).
pub(crate) const TYP: &str = "JWT";
/// Default lifetime of a service JWT: the specification's "60 seconds is a good lifetime".
pub(crate) const DEFAULT_LIFETIME_SECS: i64 = 60;
/// Longest lifetime `getServiceAuth` grants for a token bound to a method (`lxm`).
pub(crate) const MAX_LIFETIME_SECS: i64 = 60 * 60;
/// Longest lifetime `getServiceAuth` grants for a token not bound to a method.
pub(crate) const MAX_METHODLESS_LIFETIME_SECS: i64 = 60;

/// `typ` values of other kinds of tokens, which must never pass as service JWTs: OAuth
/// access tokens (RFC 9068), our refresh tokens, and DPoP proofs (RFC 9449).
const FOREIGN_TYPS: [&str; 3] = ["at+jwt", "refresh+jwt", "dpop+jwt"];

/// What to put in a new service JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceJwtParams {
    /// The account DID the request is made for, optionally with a `#service` suffix.
    pub iss: String,
    /// The DID of the service the token is for.
    pub aud: String,
    /// The lexicon method (NSID) the token authorises, if bound to one.
    pub lxm: Option<String>,
    /// Issued at (UNIX seconds).
    pub iat: i64,
    /// Expires at (UNIX seconds).
    pub exp: i64,
}

impl ServiceJwtParams {
    /// Parameters for a token issued `now`, expiring after [`DEFAULT_LIFETIME_SECS`].
    pub(crate) fn new(iss: String, aud: String, lxm: Option<String>, now: i64) -> Self {
        ServiceJwtParams {
            iss,
            aud,
            lxm,
            iat: now,
            exp: now.saturating_add(DEFAULT_LIFETIME_SECS),
        }
    }
}

/// The claims of a verified service JWT.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServiceClaims {
    /// The issuer: an account DID, optionally followed by `#` and a service identifier.
    pub iss: String,
    /// The audience (checked against the expected service DID).
    pub aud: String,
    /// Expires at (UNIX seconds).
    pub exp: i64,
    /// Issued at; required by the specification, absent from older tokens.
    pub iat: Option<i64>,
    /// The random nonce; required by the specification, absent from older tokens.
    pub jti: Option<String>,
    /// The lexicon method the token is bound to, if any.
    pub lxm: Option<String>,
}

impl ServiceClaims {
    /// The issuer's DID, without any `#service` suffix: whose DID document holds the key.
    pub(crate) fn issuer_did(&self) -> &str {
        split_issuer(&self.iss).0
    }

    /// The service identifier after `#` in `iss` (e.g. `atproto_labeler`), if any.
    #[cfg(test)]
    pub(crate) fn issuer_service(&self) -> Option<&str> {
        split_issuer(&self.iss).1
    }
}

fn split_issuer(iss: &str) -> (&str, Option<&str>) {
    match iss.split_once('#') {
        Some((did, service)) => (did, Some(service)),
        None => (iss, None),
    }
}

/// Signs a service JWT with `keypair`: header `{"typ":"JWT","alg":"ES256K"|"ES256"}`, claims
/// `iat`, `iss`, `aud`, `exp`, `lxm` (when bound) and a random 128-bit hex `jti`.
pub fn create_service_jwt(keypair: &Keypair, params: ServiceJwtParams) -> String {
    let header = serde_json::json!({ "typ": TYP, "alg": keypair.algorithm().jwt_alg() });
    let mut claims = Map::new();
    claims.insert("iat".into(), params.iat.into());
    claims.insert("iss".into(), params.iss.into());
    claims.insert("aud".into(), params.aud.into());
    claims.insert("exp".into(), params.exp.into());
    if let Some(lxm) = params.lxm {
        claims.insert("lxm".into(), lxm.into());
    }
    claims.insert("jti".into(), new_jti().into());
    let input = jws::signing_input(&header, &Value::Object(claims));
    let signature = keypair.sign(input.as_bytes());
    jws::finish(input, &signature)
}

/// Verifies a service JWT against the issuer's signing key: `typ` (not another token kind),
/// `alg` (must match the key's curve), the low-S signature, `iss` (a DID), `aud`
/// (`expected_aud`), `lxm` (when `expected_lxm` is given, it must be present and equal),
/// `iat` (not in the future beyond the skew allowance) and `exp`.
pub fn verify_service_jwt(
    token: &str,
    key: &PublicKey,
    expected_aud: &str,
    expected_lxm: Option<&str>,
    now: i64,
) -> Result<ServiceClaims, AuthError> {
    let compact = Compact::parse(token)?;
    if let Some(typ) = &compact.header.typ
        && FOREIGN_TYPS.contains(&typ.as_str())
    {
        return Err(InvalidReason::TokenType {
            found: Some(typ.clone()),
        }
        .into());
    }
    if compact.header.alg != key.algorithm().jwt_alg() {
        return Err(InvalidReason::Algorithm {
            found: compact.header.alg,
        }
        .into());
    }
    key.verify(compact.signing_input.as_bytes(), &compact.signature)
        .map_err(InvalidReason::BadSignature)?;

    let claims: ServiceClaims = compact.claims()?;
    if !claims.issuer_did().starts_with("did:") {
        return Err(InvalidReason::Malformed("issuer is not a DID").into());
    }
    if claims.aud != expected_aud {
        return Err(InvalidReason::Audience.into());
    }
    if let Some(expected) = expected_lxm
        && claims.lxm.as_deref() != Some(expected)
    {
        return Err(InvalidReason::LexiconMethod { found: claims.lxm }.into());
    }
    check_times(claims.iat, claims.exp, now)?;
    Ok(claims)
}

/// Why `getServiceAuth` refuses a requested `exp` (XRPC error `BadExpiration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ServiceExpiryError {
    /// The requested expiry has already passed.
    #[error("expiration is in past")]
    InPast,
    /// More than [`MAX_LIFETIME_SECS`] ahead.
    #[error("cannot request a token with an expiration more than an hour in the future")]
    TooFar,
    /// More than [`MAX_METHODLESS_LIFETIME_SECS`] ahead for a token without `lxm`.
    #[error(
        "cannot request a method-less token with an expiration more than a minute in the future"
    )]
    TooFarWithoutMethod,
}

/// Checks an `exp` a client asked `getServiceAuth` for, as the reference PDS does: not in
/// the past, at most an hour ahead, and at most a minute ahead unless bound to a method.
pub fn check_requested_expiry(exp: i64, now: i64, has_lxm: bool) -> Result<(), ServiceExpiryError> {
    let ahead = exp.saturating_sub(now);
    if ahead < 0 {
        Err(ServiceExpiryError::InPast)
    } else if ahead > MAX_LIFETIME_SECS {
        Err(ServiceExpiryError::TooFar)
    } else if !has_lxm && ahead > MAX_METHODLESS_LIFETIME_SECS {
        Err(ServiceExpiryError::TooFarWithoutMethod)
    } else {
        Ok(())
    }
}

/// A random 128-bit nonce in lowercase hex, as the reference issues.
fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
