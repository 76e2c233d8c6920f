//! DPoP (RFC 9449): proof verification, server nonces and the `jti` replay cache.
//!
//! Proofs are ES256 JWTs carrying their public key (`jwk`) in the header; the key's RFC 7638
//! thumbprint (`jkt`) is what tokens are bound to. Nonces are derived from a random secret
//! and a time window, so they rotate without storage: the current, previous and next
//! windows are accepted, as the reference's rotation does.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::OAuthError;

/// How long one nonce window lasts; a nonce stays valid for up to three windows.
const NONCE_WINDOW_SECS: i64 = 60;
/// How far a proof's `iat` may lie in the past or the future (the reference's nonce
/// lifetime as clock tolerance, plus its 10 s maximum proof age).
const MAX_PROOF_SKEW_SECS: i64 = 190;
/// Longest proof accepted, before anything is decoded.
const MAX_PROOF_LEN: usize = 4096;
/// Most `jti`s remembered; when full, proofs are refused until old ones expire.
const MAX_REPLAY_ENTRIES: usize = 200_000;

/// A verified proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopProof {
    /// Thumbprint of the proof's key.
    pub jkt: String,
    pub jti: String,
}

/// What a proof must match.
pub struct ProofContext<'a> {
    pub method: &'a str,
    /// The request URL without query or fragment.
    pub url: &'a str,
    /// The access token the proof accompanies (resource requests), for `ath`.
    pub access_token: Option<&'a str>,
}

#[derive(Deserialize)]
struct ProofHeader {
    typ: Option<String>,
    alg: String,
    jwk: Option<Jwk>,
}

/// A public EC key in JWK form (only P-256 is accepted).
#[derive(Deserialize, Clone, Debug)]
pub(crate) struct Jwk {
    pub kty: String,
    pub crv: Option<String>,
    pub x: Option<String>,
    pub y: Option<String>,
    /// A private key must never be sent.
    pub d: Option<serde::de::IgnoredAny>,
    pub kid: Option<String>,
}

impl Jwk {
    /// The P-256 verifying key, if this is a public P-256 key.
    pub(crate) fn p256(&self) -> Option<VerifyingKey> {
        if self.kty != "EC" || self.crv.as_deref() != Some("P-256") || self.d.is_some() {
            return None;
        }
        let x = URL_SAFE_NO_PAD.decode(self.x.as_deref()?).ok()?;
        let y = URL_SAFE_NO_PAD.decode(self.y.as_deref()?).ok()?;
        if x.len() != 32 || y.len() != 32 {
            return None;
        }
        let mut sec1 = Vec::with_capacity(65);
        sec1.push(0x04);
        sec1.extend_from_slice(&x);
        sec1.extend_from_slice(&y);
        VerifyingKey::from_sec1_bytes(&sec1).ok()
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url.
    pub(crate) fn thumbprint(&self) -> Option<String> {
        let canonical = serde_json::json!({
            "crv": self.crv.as_deref()?,
            "kty": self.kty,
            "x": self.x.as_deref()?,
            "y": self.y.as_deref()?,
        });
        // serde_json with `preserve_order` keeps insertion order, which is the
        // lexicographic order RFC 7638 asks for.
        Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.to_string())))
    }
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    nonce: Option<String>,
    ath: Option<String>,
}

/// A compact ES256 JWS, verified against `key`; returns header and payload JSON bytes.
pub(crate) fn verify_es256(token: &str, key: &VerifyingKey) -> Result<Vec<u8>, &'static str> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS");
    };
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| "bad signature encoding")?;
    let sig = Signature::from_slice(&sig).map_err(|_| "bad signature")?;
    let sig = sig.normalize_s().unwrap_or(sig);
    let input = &token[..h.len() + 1 + p.len()];
    key.verify(input.as_bytes(), &sig)
        .map_err(|_| "signature does not verify")?;
    URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| "bad payload encoding")
}

/// Decodes the header of a compact JWS without verifying anything.
fn header<T: for<'de> Deserialize<'de>>(token: &str) -> Result<T, &'static str> {
    let h = token.split('.').next().ok_or("not a compact JWS")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| "bad header encoding")?;
    serde_json::from_slice(&bytes).map_err(|_| "bad header")
}

/// Base64url SHA-256, as in `ath` and PKCE S256.
pub(crate) fn sha256_b64(data: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(data.as_bytes()))
}

/// `origin + path` of an `htu` (no query, no fragment), or `None` if it is not http(s).
pub(crate) fn normalize_htu(htu: &str) -> Option<String> {
    let url = url::Url::parse(htu).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
        return None;
    }
    if url.password().is_some() {
        return None;
    }
    Some(format!(
        "{}{}",
        url.origin().ascii_serialization(),
        url.path()
    ))
}

/// Verifies proofs, issues nonces and remembers spent `jti`s.
pub struct DpopVerifier {
    secret: [u8; 32],
    seen: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for DpopVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopVerifier").finish_non_exhaustive()
    }
}

impl Default for DpopVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl DpopVerifier {
    pub fn new() -> Self {
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        DpopVerifier {
            secret,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn nonce_for(&self, window: i64) -> String {
        let mut hash = Sha256::new();
        hash.update(self.secret);
        hash.update(window.to_be_bytes());
        URL_SAFE_NO_PAD.encode(&hash.finalize()[..18])
    }

    /// The nonce clients should use now.
    pub fn nonce(&self, now: i64) -> String {
        self.nonce_for(now.div_euclid(NONCE_WINDOW_SECS))
    }

    fn nonce_valid(&self, nonce: &str, now: i64) -> bool {
        let window = now.div_euclid(NONCE_WINDOW_SECS);
        (window - 1..=window + 1).any(|w| self.nonce_for(w) == nonce)
    }

    /// Checks `proof` against `ctx` at `now` and spends its `jti`.
    pub fn verify(
        &self,
        proof: &str,
        ctx: &ProofContext<'_>,
        now: i64,
    ) -> Result<DpopProof, OAuthError> {
        let bad = |m: &str| OAuthError::invalid_dpop_proof(m);
        if proof.len() > MAX_PROOF_LEN {
            return Err(bad("DPoP proof too long"));
        }
        let head: ProofHeader = header(proof).map_err(bad)?;
        if head.typ.as_deref() != Some("dpop+jwt") {
            return Err(bad("Invalid DPoP proof type"));
        }
        if head.alg != "ES256" {
            return Err(bad("Unsupported DPoP proof algorithm"));
        }
        let jwk = head.jwk.ok_or_else(|| bad("DPoP proof has no jwk"))?;
        let key = jwk
            .p256()
            .ok_or_else(|| bad("Unsupported DPoP proof key"))?;
        let payload = verify_es256(proof, &key).map_err(bad)?;
        let claims: ProofClaims =
            serde_json::from_slice(&payload).map_err(|_| bad("Invalid DPoP proof claims"))?;
        let jti = claims
            .jti
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| bad("DPoP \"jti\" missing"))?;
        let iat = claims.iat.ok_or_else(|| bad("DPoP \"iat\" missing"))?;
        if (now - iat).abs() > MAX_PROOF_SKEW_SECS {
            return Err(bad("DPoP proof is too old or not yet valid"));
        }
        if claims.htm.as_deref() != Some(ctx.method) {
            return Err(bad("DPoP \"htm\" mismatch"));
        }
        let htu = claims
            .htu
            .as_deref()
            .ok_or_else(|| bad("DPoP \"htu\" missing"))?;
        let htu = normalize_htu(htu).ok_or_else(|| bad("DPoP \"htu\" is not a valid URL"))?;
        if Some(htu) != normalize_htu(ctx.url) {
            return Err(bad("DPoP \"htu\" mismatch"));
        }
        match claims.nonce.as_deref() {
            None => {
                return Err(OAuthError::use_dpop_nonce(
                    "Authorization server requires nonce in DPoP proof",
                ));
            }
            Some(n) if !self.nonce_valid(n, now) => {
                return Err(OAuthError::use_dpop_nonce("DPoP \"nonce\" mismatch"));
            }
            Some(_) => {}
        }
        match (ctx.access_token, claims.ath.as_deref()) {
            (Some(token), Some(ath)) if sha256_b64(token) == ath => {}
            (Some(_), _) => return Err(bad("DPoP \"ath\" mismatch")),
            (None, Some(_)) => return Err(bad("DPoP \"ath\" claim not allowed")),
            (None, None) => {}
        }
        let jkt = jwk
            .thumbprint()
            .ok_or_else(|| bad("Unsupported DPoP proof key"))?;
        self.spend(&format!("{jkt}:{jti}"), now)?;
        Ok(DpopProof { jkt, jti })
    }

    /// Spends a client assertion's `jti` in the same replay cache.
    pub(crate) fn spend_external(&self, jti: &str, now: i64) -> Result<(), OAuthError> {
        self.spend(&format!("client-assertion:{jti}"), now)
            .map_err(|_| OAuthError::invalid_client("Client assertion replayed"))
    }

    /// Records a `jti`, refusing one seen within the proof lifetime.
    fn spend(&self, key: &str, now: i64) -> Result<(), OAuthError> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_REPLAY_ENTRIES {
            seen.retain(|_, expires| *expires > now);
            if seen.len() >= MAX_REPLAY_ENTRIES {
                return Err(OAuthError::invalid_dpop_proof(
                    "Too many DPoP proofs; retry later",
                ));
            }
        }
        if seen.get(key).is_some_and(|expires| *expires > now) {
            return Err(OAuthError::invalid_dpop_proof("DPoP proof replayed"));
        }
        seen.insert(key.to_owned(), now + 2 * MAX_PROOF_SKEW_SECS);
        Ok(())
    }
}

#[cfg(test)]
#[path = "dpop_tests.rs"]
mod tests;
