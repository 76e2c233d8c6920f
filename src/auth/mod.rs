//! Authentication primitives: session tokens, inter-service JWTs, passwords, admin Basic auth.
//!
//! Everything here is pure (no HTTP, no database, no hidden clock): callers pass the current
//! time as UNIX seconds, so every check is deterministic and testable.
//!
//! - [`session`]: the legacy Bearer session tokens (`accessJwt` / `refreshJwt` of
//!   `com.atproto.server.createSession`). They are only ever read by this PDS, so they are
//!   signed with an Ed25519 key of ours (JOSE `EdDSA`) and domain-separated by the `typ`
//!   header (`at+jwt` / `refresh+jwt`) as the XRPC specification asks.
//! - [`service`]: inter-service auth JWTs (`getServiceAuth`, `atproto-proxy`), signed with an
//!   account's atproto signing key (ES256K / ES256) as the XRPC specification describes.
//! - [`password`]: argon2id password hashing and app-password generation.
//! - [`admin`]: the `Authorization: Basic` admin check.

pub mod admin;
mod jws;
pub mod password;
pub mod service;
pub mod session;

pub use admin::check_admin_basic;
pub use password::{
    PasswordError, generate_app_password, hash_password, is_app_password_format, verify_password,
};
pub use service::{
    ServiceClaims, ServiceExpiryError, ServiceJwtParams, check_requested_expiry,
    create_service_jwt, verify_service_jwt,
};
pub use session::{AccessClaims, AccessScope, RefreshClaims, SessionSigner, new_refresh_jti};

/// How far in the future a token's `iat` may lie before it is refused as not yet valid,
/// to tolerate clocks that run slightly apart (other services', or ours across restarts).
///
/// `exp` gets no allowance, as in the reference implementation: a lenient `exp` would only
/// extend the life of a bearer credential.
pub(crate) const CLOCK_SKEW_SECS: i64 = 30;

/// Why a token was refused. Maps to the XRPC error names `InvalidToken` and `ExpiredToken`
/// ([`AuthError::error_name`]); service-auth endpoints use the finer names of
/// [`AuthError::service_error_name`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The token is not acceptable here, for the reason given.
    #[error("invalid token: {0}")]
    InvalidToken(InvalidReason),
    /// The token was valid but its `exp` has passed.
    #[error("token has expired")]
    ExpiredToken,
}

/// The precise reason behind [`AuthError::InvalidToken`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidReason {
    /// Not a well-formed compact JWS / JWT (wrong number of parts, bad base64url, bad JSON,
    /// missing or mistyped claims, unsupported `crit` header, oversized token).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not the one this kind of token must use (e.g. `none`, `HS256`,
    /// `ES256K` on a session token, or an `alg` that does not match the issuer's key type).
    #[error("unexpected signature algorithm {found:?}")]
    Algorithm {
        /// The `alg` the token declared.
        found: String,
    },
    /// The header's `typ` is wrong for this kind of token (e.g. a refresh token presented
    /// as an access token).
    #[error("unexpected token type {found:?}")]
    TokenType {
        /// The `typ` the token declared, if any.
        found: Option<String>,
    },
    /// The `scope` claim is not one this kind of token may carry.
    #[error("unexpected token scope {found:?}")]
    Scope {
        /// The `scope` the token carried.
        found: String,
    },
    /// The `sub` claim is not a DID.
    #[error("token subject is not a DID")]
    Subject,
    /// The `aud` claim is not the expected audience.
    #[error("token audience does not match")]
    Audience,
    /// The `lxm` (lexicon method) claim is missing or names another method.
    #[error("token lexicon method {found:?} does not match the requested method")]
    LexiconMethod {
        /// The `lxm` the token carried, if any.
        found: Option<String>,
    },
    /// The `iat` claim lies further in the future than [`CLOCK_SKEW_SECS`] allows.
    #[error("token is not yet valid")]
    NotYetValid,
    /// The signature is malformed (wrong length, DER), high-S, or does not verify.
    #[error("bad signature: {0}")]
    BadSignature(crate::crypto::Error),
}

impl AuthError {
    /// The XRPC error name for a session (Bearer) token failure.
    pub fn error_name(&self) -> &'static str {
        match self {
            AuthError::InvalidToken(_) => "InvalidToken",
            AuthError::ExpiredToken => "ExpiredToken",
        }
    }

    /// The error name the reference implementation gives an inter-service JWT failure
    /// (sent with status 401).
    pub fn service_error_name(&self) -> &'static str {
        match self {
            AuthError::ExpiredToken => "JwtExpired",
            AuthError::InvalidToken(reason) => match reason {
                InvalidReason::TokenType { .. } => "BadJwtType",
                InvalidReason::Audience => "BadJwtAudience",
                InvalidReason::LexiconMethod { .. } => "BadJwtLexiconMethod",
                InvalidReason::Algorithm { .. } | InvalidReason::BadSignature(_) => {
                    "BadJwtSignature"
                }
                InvalidReason::Malformed(_)
                | InvalidReason::Scope { .. }
                | InvalidReason::Subject
                | InvalidReason::NotYetValid => "BadJwt",
            },
        }
    }
}

impl From<InvalidReason> for AuthError {
    fn from(reason: InvalidReason) -> Self {
        AuthError::InvalidToken(reason)
    }
}

/// Checks `iat` and `exp` against `now`: `iat` may be at most [`CLOCK_SKEW_SECS`] ahead,
/// and the token is expired from the second `exp` is reached on.
fn check_times(iat: Option<i64>, exp: i64, now: i64) -> Result<(), AuthError> {
    if let Some(iat) = iat {
        check_issued(iat, now)?;
    }
    if now >= exp {
        return Err(AuthError::ExpiredToken);
    }
    Ok(())
}

/// Refuses an `iat` more than [`CLOCK_SKEW_SECS`] ahead of `now`.
fn check_issued(iat: i64, now: i64) -> Result<(), AuthError> {
    if iat > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(InvalidReason::NotYetValid.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names() {
        let invalid = |r| AuthError::InvalidToken(r);
        assert_eq!(AuthError::ExpiredToken.error_name(), "ExpiredToken");
        assert_eq!(
            invalid(InvalidReason::Audience).error_name(),
            "InvalidToken"
        );
        assert_eq!(AuthError::ExpiredToken.service_error_name(), "JwtExpired");
        let cases = [
            (InvalidReason::Malformed("x"), "BadJwt"),
            (InvalidReason::TokenType { found: None }, "BadJwtType"),
            (InvalidReason::Audience, "BadJwtAudience"),
            (
                InvalidReason::LexiconMethod { found: None },
                "BadJwtLexiconMethod",
            ),
            (
                InvalidReason::Algorithm {
                    found: "HS256".into(),
                },
                "BadJwtSignature",
            ),
            (
                InvalidReason::BadSignature(crate::crypto::Error::HighS),
                "BadJwtSignature",
            ),
            (InvalidReason::NotYetValid, "BadJwt"),
        ];
        for (reason, name) in cases {
            assert_eq!(invalid(reason).service_error_name(), name);
        }
    }

    #[test]
    fn time_window() {
        let now = 1_000_000;
        assert_eq!(check_times(Some(now), now + 1, now), Ok(()));
        assert_eq!(check_times(None, now + 1, now), Ok(()));
        // exp is exclusive: at exp the token is expired, one second before it is not.
        assert_eq!(
            check_times(Some(now - 10), now, now),
            Err(AuthError::ExpiredToken)
        );
        assert_eq!(
            check_times(Some(now - 10), now - 1, now),
            Err(AuthError::ExpiredToken)
        );
        // iat up to the skew allowance ahead is tolerated; one second more is not.
        let edge = now + CLOCK_SKEW_SECS;
        assert_eq!(check_times(Some(edge), edge + 60, now), Ok(()));
        assert_eq!(
            check_times(Some(edge + 1), edge + 60, now),
            Err(AuthError::InvalidToken(InvalidReason::NotYetValid))
        );
        // No overflow at the extremes.
        assert_eq!(
            check_times(Some(i64::MAX), i64::MAX, 0),
            Err(AuthError::InvalidToken(InvalidReason::NotYetValid))
        );
        assert_eq!(check_times(Some(i64::MAX), i64::MAX, i64::MAX - 1), Ok(()));
        assert_eq!(
            check_times(Some(0), i64::MAX, i64::MAX),
            Err(AuthError::ExpiredToken)
        );
    }
}
