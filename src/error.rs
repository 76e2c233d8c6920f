//! The HTTP boundary's one error type: [`XrpcError`], rendered as the XRPC error body
//! `{"error": "<Name>", "message": "<text>"}`.
//!
//! A 500 never carries internal detail in its body: [`XrpcError::internal`] keeps the
//! detail aside, the response carries it in an [`InternalErrorDetail`] extension, and the
//! [`log_internal_errors`] middleware logs it with the request line.

use std::fmt;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Defines [`ErrorName`] and its wire spelling from one list, so they cannot drift apart.
macro_rules! error_names {
    ($( $(#[$attr:meta])* $name:ident ),* $(,)?) => {
        /// The `error` names used in XRPC error bodies: the generic names of the XRPC
        /// protocol and the lexicon-declared errors of the methods Rookery serves.
        /// Serialised as the variant name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorName {
            $( $(#[$attr])* $name, )*
        }

        impl ErrorName {
            /// Every name, in declaration order.
            #[cfg(test)]
            pub(crate) const ALL: &'static [ErrorName] = &[$(ErrorName::$name),*];

            /// The name as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( ErrorName::$name => stringify!($name), )*
                }
            }
        }
    };
}

error_names! {
    // Generic XRPC names (one per status).
    InvalidRequest,
    /// The reference's generic 401 name.
    AuthenticationRequired,
    /// Older generic 401 name, still used by some lexicons and clients.
    AuthRequired,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimitExceeded,
    InternalServerError,
    MethodNotImplemented,
    UpstreamFailure,
    NotEnoughResources,
    UpstreamTimeout,
    // Authentication.
    AuthMissing,
    InvalidToken,
    ExpiredToken,
    AuthFactorTokenRequired,
    /// `updateEmail`: the address is confirmed, so a mailed token is needed.
    TokenRequired,
    // Accounts and identity.
    AccountTakedown,
    AccountDeactivated,
    AccountNotFound,
    HandleNotAvailable,
    InvalidHandle,
    UnsupportedDomain,
    InvalidInviteCode,
    InvalidPassword,
    InvalidEmail,
    IncompatibleDidDoc,
    HandleNotFound,
    DidNotFound,
    DidDeactivated,
    // Repositories, records and blobs.
    RepoNotFound,
    RepoTakendown,
    RepoSuspended,
    RepoDeactivated,
    HeadNotFound,
    RecordNotFound,
    BlobNotFound,
    BlobTooLarge,
    /// A record's blob reference disagrees with the upload's type (the reference's name).
    InvalidMimeType,
    /// A record's blob reference disagrees with the upload's size (the reference's name).
    InvalidSize,
    BlockNotFound,
    InvalidSwap,
    // Sync.
    FutureCursor,
    ConsumerTooSlow,
    // Server.
    /// `getServiceAuth`: the requested expiry is out of bounds.
    BadExpiration,
}

impl Serialize for ErrorName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The message of every 500 response, whatever went wrong.
pub(crate) const INTERNAL_ERROR_MESSAGE: &str = "Internal Server Error";

/// An error answered to an XRPC client.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{status} {error}: {message}")]
pub struct XrpcError {
    pub status: StatusCode,
    pub error: ErrorName,
    pub message: String,
    /// What went wrong inside, for 5xx errors: logged, never sent.
    detail: Option<Arc<str>>,
}

/// The internal detail of a 5xx response, carried in its extensions for
/// [`log_internal_errors`]. Never serialised into the body.
#[derive(Clone, Debug)]
pub(crate) struct InternalErrorDetail(pub Arc<str>);

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorName,
    message: &'a str,
}

impl XrpcError {
    pub fn new(status: StatusCode, error: ErrorName, message: impl Into<String>) -> Self {
        XrpcError {
            status,
            error,
            message: message.into(),
            detail: None,
        }
    }

    /// 400 with a lexicon-specific name, e.g. `InvalidSwap`.
    pub fn bad_request(error: ErrorName, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::bad_request(ErrorName::InvalidRequest, message)
    }

    /// 401 `AuthenticationRequired`.
    pub fn auth_required(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorName::AuthenticationRequired,
            message,
        )
    }

    /// 401 `AuthMissing`: no credentials were sent.
    #[cfg(test)]
    pub(crate) fn auth_missing() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorName::AuthMissing,
            "Authentication Required",
        )
    }

    /// 400 `InvalidToken`, as the reference answers for an access token it cannot verify.
    pub fn invalid_token(message: impl Into<String>) -> Self {
        Self::bad_request(ErrorName::InvalidToken, message)
    }

    /// 400 `ExpiredToken`, which clients take as the cue to refresh their session.
    pub fn expired_token(message: impl Into<String>) -> Self {
        Self::bad_request(ErrorName::ExpiredToken, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorName::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorName::NotFound, message)
    }

    /// 400 `RecordNotFound`, as the lexicon declares it for `getRecord`.
    pub fn record_not_found(message: impl Into<String>) -> Self {
        Self::bad_request(ErrorName::RecordNotFound, message)
    }

    /// 400 `RepoNotFound`.
    pub fn repo_not_found(message: impl Into<String>) -> Self {
        Self::bad_request(ErrorName::RepoNotFound, message)
    }

    /// 400 `InvalidSwap`: a compare-and-swap precondition failed.
    pub fn invalid_swap(message: impl Into<String>) -> Self {
        Self::bad_request(ErrorName::InvalidSwap, message)
    }

    /// 400 `AccountTakedown`.
    pub fn account_takedown(message: impl Into<String>) -> Self {
        Self::bad_request(ErrorName::AccountTakedown, message)
    }

    pub fn rate_limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorName::RateLimitExceeded,
            message,
        )
    }

    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorName::PayloadTooLarge,
            message,
        )
    }

    /// 413 `BlobTooLarge`, the name `uploadBlob` declares, with the status of an oversize body.
    pub fn blob_too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorName::BlobTooLarge,
            message,
        )
    }

    /// 501 for an XRPC method this server does not implement.
    pub fn method_not_implemented() -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            ErrorName::MethodNotImplemented,
            "Method Not Implemented",
        )
    }

    pub fn upstream_failure(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, ErrorName::UpstreamFailure, message)
    }

    /// 500 whose `detail` is logged by [`log_internal_errors`] and never sent.
    pub fn internal(detail: impl fmt::Display) -> Self {
        XrpcError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: ErrorName::InternalServerError,
            message: INTERNAL_ERROR_MESSAGE.to_owned(),
            detail: Some(detail.to_string().into()),
        }
    }

    /// The internal detail, if any.
    #[cfg(test)]
    pub(crate) fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl IntoResponse for XrpcError {
    fn into_response(self) -> Response {
        // Whatever a 500 was built with, only the generic message goes out; anything else
        // becomes detail for the log.
        let (message, detail) = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            let detail = match (self.detail, self.message.as_str()) {
                (Some(d), _) => Some(d),
                (None, INTERNAL_ERROR_MESSAGE) => None,
                (None, other) => Some(Arc::from(other)),
            };
            (INTERNAL_ERROR_MESSAGE.to_owned(), detail)
        } else {
            (self.message, self.detail)
        };
        let body = ErrorBody {
            error: self.error,
            message: &message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(detail) = detail {
            response
                .extensions_mut()
                .insert(InternalErrorDetail(detail));
        }
        response
    }
}

/// Middleware: logs the [`InternalErrorDetail`] of a response with its request line.
pub async fn log_internal_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(InternalErrorDetail(detail)) = response.extensions().get::<InternalErrorDetail>() {
        tracing::error!(
            %method,
            %path,
            status = response.status().as_u16(),
            detail = %detail,
            "request failed"
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn parts(err: XrpcError) -> (StatusCode, Option<String>, String, String) {
        let response = err.into_response();
        let status = response.status();
        let detail = response
            .extensions()
            .get::<InternalErrorDetail>()
            .map(|d| d.0.to_string());
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            detail,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn client_errors_render_name_and_message() {
        let (status, detail, content_type, body) =
            parts(XrpcError::invalid_swap("Record was at bafyabc")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(detail, None);
        assert_eq!(content_type, "application/json");
        assert_eq!(
            body,
            r#"{"error":"InvalidSwap","message":"Record was at bafyabc"}"#
        );

        let (status, _, _, body) = parts(XrpcError::method_not_implemented()).await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(
            body,
            r#"{"error":"MethodNotImplemented","message":"Method Not Implemented"}"#
        );

        let (status, _, _, body) = parts(XrpcError::expired_token("Token has expired")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            r#"{"error":"ExpiredToken","message":"Token has expired"}"#
        );

        let (status, _, _, body) = parts(XrpcError::auth_missing()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            r#"{"error":"AuthMissing","message":"Authentication Required"}"#
        );
    }

    #[tokio::test]
    async fn internal_detail_stays_out_of_the_body() {
        let (status, detail, _, body) = parts(XrpcError::internal(
            "sqlite: disk I/O error at /srv/data/x.sqlite",
        ))
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            r#"{"error":"InternalServerError","message":"Internal Server Error"}"#
        );
        assert_eq!(
            detail.as_deref(),
            Some("sqlite: disk I/O error at /srv/data/x.sqlite")
        );

        // A 500 built by hand with a revealing message is scrubbed the same way.
        let by_hand = XrpcError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorName::InternalServerError,
            "password hash column missing",
        );
        let (_, detail, _, body) = parts(by_hand).await;
        assert_eq!(
            body,
            r#"{"error":"InternalServerError","message":"Internal Server Error"}"#
        );
        assert_eq!(detail.as_deref(), Some("password hash column missing"));
    }

    #[test]
    fn names_serialise_as_variant_names() {
        assert_eq!(ErrorName::ALL.len(), 46);
        for name in ErrorName::ALL {
            let json = serde_json::to_string(name).unwrap();
            assert_eq!(json, format!("\"{name:?}\""));
        }
        assert_eq!(
            serde_json::to_string(&ErrorName::RecordNotFound).unwrap(),
            "\"RecordNotFound\""
        );
    }
}
