//! Every domain error's XRPC form, in one place: which status and lexicon error name each
//! failure of the services answers. Internal failures become a bare 500 whose detail is
//! logged, never sent.

use axum::http::StatusCode;

use crate::account_service;
use crate::accounts;
use crate::error::{ErrorName, XrpcError};
use crate::identity::plc::PlcError;
use crate::mail::MailError;
use crate::xrpc::server::datetime;

impl From<accounts::Error> for XrpcError {
    fn from(err: accounts::Error) -> Self {
        use accounts::Error as E;
        match err {
            E::HandleTaken => {
                XrpcError::bad_request(ErrorName::HandleNotAvailable, "Handle already taken")
            }
            E::EmailTaken => XrpcError::invalid_request("Email already taken"),
            E::AccountExists => XrpcError::invalid_request("Account already exists"),
            E::InvalidInviteCode => XrpcError::bad_request(
                ErrorName::InvalidInviteCode,
                "Provided invite code not available",
            ),
            E::AccountNotFound => {
                XrpcError::bad_request(ErrorName::AccountNotFound, "Account not found")
            }
            E::AuthFailed => XrpcError::auth_required("Invalid identifier or password"),
            E::AccountLocked { until } => XrpcError::rate_limit_exceeded(format!(
                "Too many failed login attempts; try again after {}",
                datetime(until)
            )),
            E::RateLimited { .. } => XrpcError::rate_limit_exceeded("Rate Limit Exceeded"),
            E::AccountTakedown => XrpcError::new(
                StatusCode::UNAUTHORIZED,
                ErrorName::AccountTakedown,
                "Account has been taken down",
            ),
            E::AccountDeactivated => XrpcError::new(
                StatusCode::UNAUTHORIZED,
                ErrorName::AccountDeactivated,
                "Account is deactivated",
            ),
            E::RefreshTokenReused | E::TokenRevoked => {
                XrpcError::expired_token("Token has been revoked")
            }
            E::TokenExpired => XrpcError::expired_token("Token has expired"),
            E::InvalidEmailToken => XrpcError::invalid_token("Token is invalid"),
            E::TokenRequired => {
                XrpcError::bad_request(ErrorName::TokenRequired, "confirmation token required")
            }
            E::MalformedCursor => XrpcError::invalid_request("Malformed cursor"),
            E::ExpiredEmailToken => XrpcError::expired_token("Token is expired"),
            E::AppPasswordExists => {
                XrpcError::invalid_request("An app password with this name already exists")
            }
            other @ (E::Hashing(_) | E::Internal(_) | E::Database(_) | E::Migrate(_)) => {
                XrpcError::internal(other)
            }
        }
    }
}

impl From<MailError> for XrpcError {
    fn from(err: MailError) -> Self {
        match err {
            MailError::NotConfigured => XrpcError::invalid_request(
                "This server cannot send email (no SMTP server is configured)",
            ),
            other => XrpcError::internal(other),
        }
    }
}

/// What the PLC directory refused is the caller's business; any other failure (transport,
/// odd answers, with the directory's URL in them) is logged and answered without detail.
impl From<PlcError> for XrpcError {
    fn from(err: PlcError) -> Self {
        match err {
            PlcError::Rejected(message) => XrpcError::invalid_request(format!(
                "PLC directory rejected the operation: {message}"
            )),
            other => {
                tracing::warn!(error = %other, "PLC directory request failed");
                XrpcError::upstream_failure("The PLC directory could not be reached")
            }
        }
    }
}

impl From<account_service::Error> for XrpcError {
    fn from(err: account_service::Error) -> Self {
        use account_service::Error as E;
        match err {
            E::Accounts(err) => err.into(),
            E::Mail(err) => err.into(),
            E::Actor(err) => (*err).into(),
            E::NoEmail => XrpcError::invalid_request("account does not have an email address"),
            E::EmailMismatch => XrpcError::bad_request(ErrorName::InvalidEmail, "invalid email"),
            E::AuthFactorTokenRequired => XrpcError::new(
                StatusCode::UNAUTHORIZED,
                ErrorName::AuthFactorTokenRequired,
                "A sign in code has been sent to your email address",
            ),
            E::InvalidSignInCode => XrpcError::auth_required("Invalid sign in code"),
            E::InviteCodeRequired => {
                XrpcError::bad_request(ErrorName::InvalidInviteCode, "No invite code provided")
            }
            E::Plc(err) => err.into(),
            E::Genesis(err) => XrpcError::invalid_request(format!("Cannot build the DID: {err}")),
            E::InvalidHandle(message) => XrpcError::bad_request(ErrorName::InvalidHandle, message),
            E::HandleNotAvailable(message) => {
                XrpcError::bad_request(ErrorName::HandleNotAvailable, message)
            }
            E::UnsupportedDomain => XrpcError::bad_request(
                ErrorName::UnsupportedDomain,
                "Not a supported handle domain",
            ),
            E::InvalidPassword(message) => {
                XrpcError::bad_request(ErrorName::InvalidPassword, message)
            }
            E::BadCredentials => XrpcError::auth_required("Invalid did or password"),
            E::Refused(message) => XrpcError::invalid_request(message),
            other @ (E::Sequencer(_) | E::Blobs(_) | E::PlcUpdate(_)) => XrpcError::internal(other),
        }
    }
}

impl From<crate::migration::Error> for XrpcError {
    fn from(err: crate::migration::Error) -> Self {
        use crate::migration::Error as E;
        match err {
            E::TooLarge { .. } => XrpcError::payload_too_large(err.to_string()),
            E::Body(_) => XrpcError::invalid_request(err.to_string()),
            E::AuthRequired(message) => XrpcError::auth_required(message),
            E::InvalidOperation(message) => XrpcError::invalid_request(message),
            E::Op(op) => XrpcError::invalid_request(format!("Invalid operation: {op}")),
            E::Plc(plc) => plc.into(),
            E::Account(account) => account.into(),
            E::Accounts(accounts) => accounts.into(),
            E::Resolve(_) | E::NoSigningKey => XrpcError::invalid_request(err.to_string()),
            E::Import(import) => match *import {
                crate::actor::ImportError::Actor(actor) => (*actor).into(),
                import if import.is_invalid_input() => {
                    XrpcError::invalid_request(import.to_string())
                }
                other => XrpcError::internal(other),
            },
            other => XrpcError::internal(other),
        }
    }
}
