//! Request extractors whose rejections are [`XrpcError`]s, so malformed input gets a 400
//! `{"error":"InvalidRequest","message":…}` (or 413 `PayloadTooLarge`) instead of axum's
//! plain-text rejections.
//!
//! Body limits: the router applies [`JSON_BODY_LIMIT`] to every route through axum's
//! [`DefaultBodyLimit`]; a route that accepts more sets its own, e.g.
//! `.route("/xrpc/com.atproto.repo.createRecord", post(h).layer(body_limit(RECORD_BODY_LIMIT)))`.
//! The innermost limit wins.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::XrpcError;

/// Default limit for JSON request bodies: 150 KiB, as the reference's body parser.
pub const JSON_BODY_LIMIT: usize = 150 * 1024;
/// Limit for bodies that carry a record (`createRecord`, `putRecord`, `applyWrites`).
pub const RECORD_BODY_LIMIT: usize = 1024 * 1024;

/// A layer setting the body limit of the routes it wraps to `bytes`.
pub fn body_limit(bytes: usize) -> DefaultBodyLimit {
    DefaultBodyLimit::max(bytes)
}

/// A JSON request body (`Content-Type: application/json`) deserialised into `T`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XrpcJson<T>(pub T);

impl<T, S> FromRequest<S> for XrpcJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = XrpcError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_json_content_type(req.headers().get(CONTENT_TYPE))?;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        if bytes.is_empty() {
            return Err(XrpcError::invalid_request(
                "Request body is empty; expected a JSON object",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(XrpcJson)
            .map_err(|e| XrpcError::invalid_request(format!("Invalid JSON body: {e}")))
    }
}

fn check_json_content_type(value: Option<&axum::http::HeaderValue>) -> Result<(), XrpcError> {
    let Some(value) = value else {
        return Err(XrpcError::invalid_request(
            "Missing Content-Type header; expected application/json",
        ));
    };
    let text = value.to_str().unwrap_or_default();
    let essence = text.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(XrpcError::invalid_request(format!(
            "Wrong Content-Type {text:?}; expected application/json"
        )))
    }
}

fn body_rejection(rejection: BytesRejection) -> XrpcError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        XrpcError::payload_too_large("Request body is larger than this method accepts")
    } else {
        XrpcError::invalid_request(format!(
            "Cannot read request body: {}",
            rejection.body_text()
        ))
    }
}

/// XRPC query parameters deserialised into `T`. Repeated keys (`?uris=a&uris=b`) fill a
/// `Vec`, as XRPC array parameters are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XrpcQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for XrpcQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = XrpcError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_html_form::from_str(query)
            .map(XrpcQuery)
            .map_err(|e| XrpcError::invalid_request(format!("Invalid query parameters: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorName;
    use axum::body::Body;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Input {
        repo: String,
        #[serde(default)]
        limit: Option<u32>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Params {
        #[serde(default)]
        uris: Vec<String>,
        limit: Option<u32>,
    }

    fn json_request(content_type: Option<&str>, body: impl Into<Body>) -> Request {
        let mut builder = Request::builder().method("POST").uri("/xrpc/x.y.z");
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        builder.body(body.into()).unwrap()
    }

    async fn json(content_type: Option<&str>, body: &str) -> Result<Input, XrpcError> {
        XrpcJson::<Input>::from_request(json_request(content_type, body.to_owned()), &())
            .await
            .map(|XrpcJson(v)| v)
    }

    async fn query(uri: &str) -> Result<Params, XrpcError> {
        let (mut parts, ()) = Request::builder().uri(uri).body(()).unwrap().into_parts();
        XrpcQuery::<Params>::from_request_parts(&mut parts, &())
            .await
            .map(|XrpcQuery(v)| v)
    }

    #[tokio::test]
    async fn json_accepts_valid_bodies() {
        let ok = json(
            Some("application/json"),
            r#"{"repo":"did:plc:abc","limit":5}"#,
        )
        .await;
        assert_eq!(
            ok.unwrap(),
            Input {
                repo: "did:plc:abc".into(),
                limit: Some(5)
            }
        );
        let ok = json(Some("Application/JSON; charset=utf-8"), r#"{"repo":"a"}"#).await;
        assert_eq!(ok.unwrap().repo, "a");
    }

    #[tokio::test]
    async fn json_rejections_are_invalid_request() {
        let cases = [
            (
                Some("application/json"),
                "{not json",
                "Invalid JSON body: key must be a string at line 1 column 2",
            ),
            (
                Some("application/json"),
                "{}",
                "Invalid JSON body: missing field `repo` at line 1 column 2",
            ),
            (
                Some("application/json"),
                r#"{"repo":7}"#,
                "Invalid JSON body: invalid type: integer `7`, expected a string at line 1 column 9",
            ),
            (
                Some("application/json"),
                "",
                "Request body is empty; expected a JSON object",
            ),
            (
                None,
                r#"{"repo":"a"}"#,
                "Missing Content-Type header; expected application/json",
            ),
            (
                Some("text/plain"),
                r#"{"repo":"a"}"#,
                "Wrong Content-Type \"text/plain\"; expected application/json",
            ),
        ];
        for (content_type, body, message) in cases {
            let err = json(content_type, body).await.unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(err.error, ErrorName::InvalidRequest, "{body}");
            assert_eq!(err.message, message);
        }
    }

    #[tokio::test]
    async fn json_over_the_default_limit_is_payload_too_large() {
        // No DefaultBodyLimit layer: axum's own default (2 MiB) applies to a bare extractor.
        let big = format!(r#"{{"repo":"{}"}}"#, "a".repeat(3 * 1024 * 1024));
        let err = json(Some("application/json"), &big).await.unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(err.error, ErrorName::PayloadTooLarge);
    }

    #[tokio::test]
    async fn query_parses_repeated_keys_and_rejects_bad_types() {
        let p = query("/xrpc/x.y.z?uris=at%3A%2F%2Fa&uris=at%3A%2F%2Fb&limit=10")
            .await
            .unwrap();
        assert_eq!(
            p,
            Params {
                uris: vec!["at://a".into(), "at://b".into()],
                limit: Some(10)
            }
        );
        let p = query("/xrpc/x.y.z").await.unwrap();
        assert_eq!(
            p,
            Params {
                uris: vec![],
                limit: None
            }
        );
        let err = query("/xrpc/x.y.z?limit=ten").await.unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.error, ErrorName::InvalidRequest);
        assert_eq!(
            err.message,
            "Invalid query parameters: invalid digit found in string"
        );
    }
}
