//! Request and response details: error classification, copy-source encoding,
//! `Content-Range`, body streams, key parsing.

use std::time::SystemTime;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use futures::{StreamExt, TryStreamExt};

use crate::blobs::{ByteStream, Error, TempEntry, check_temp_key};

/// `tmp/<did>/<key>` back into its parts.
pub(super) fn parse_temp_key(object: &str, modified: Option<SystemTime>) -> Option<TempEntry> {
    let rest = object.strip_prefix("tmp/")?;
    let (did, key) = rest.split_once('/')?;
    check_temp_key(key).ok()?;
    Some(TempEntry {
        did: did.parse().ok()?,
        key: key.to_owned(),
        modified: modified?,
    })
}

/// Percent-encodes a key for `x-amz-copy-source`, keeping `/` and unreserved characters.
pub(super) fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `bytes first-last/size` (the size may not be `*` here: the object exists).
pub(super) fn parse_content_range(header: &str) -> Option<(u64, u64, u64)> {
    let spec = header.trim().strip_prefix("bytes ")?;
    let (range, size) = spec.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last, size) = (
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        size.trim().parse().ok()?,
    );
    (first <= last && last < size).then_some((first, last, size))
}

/// The SDK body as our stream type.
pub(super) fn body_stream(body: SdkByteStream) -> ByteStream {
    futures::stream::try_unfold(body, |mut body| async move {
        match body.next().await {
            None => Ok(None),
            Some(Ok(chunk)) => Ok(Some((chunk, body))),
            Some(Err(e)) => Err(std::io::Error::other(e)),
        }
    })
    .into_stream()
    .boxed()
}

pub(super) trait SkipBytes {
    /// Drops the first `skip` bytes and ends after `take` more.
    fn skip_bytes(self, skip: u64, take: u64) -> ByteStream;
}

impl SkipBytes for ByteStream {
    fn skip_bytes(self, skip: u64, take: u64) -> ByteStream {
        futures::stream::try_unfold(
            (self, skip, take),
            |(mut inner, mut skip, mut take)| async move {
                while take > 0 {
                    let Some(mut chunk) = inner.try_next().await? else {
                        return Ok(None);
                    };
                    let len = chunk.len() as u64;
                    if skip >= len {
                        skip -= len;
                        continue;
                    }
                    let from = usize::try_from(skip).unwrap_or(usize::MAX);
                    chunk = chunk.slice(from..);
                    skip = 0;
                    if chunk.len() as u64 > take {
                        chunk.truncate(usize::try_from(take).unwrap_or(usize::MAX));
                    }
                    take -= chunk.len() as u64;
                    return Ok(Some((chunk, (inner, skip, take))));
                }
                Ok(None)
            },
        )
        .into_stream()
        .boxed()
    }
}

pub(super) fn is_not_found<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code();
            matches!(code, Some("NoSuchKey" | "NotFound" | "NoSuchUpload"))
                || (code.is_none() && service.raw().status().as_u16() == 404)
        }
        _ => false,
    }
}

pub(super) fn is_invalid_range<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            service.err().code() == Some("InvalidRange") || service.raw().status().as_u16() == 416
        }
        _ => false,
    }
}

pub(super) fn s3_error<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let retriable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service)
            if matches!(service.raw().status().as_u16(), 429 | 500..) =>
        {
            true
        }
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "SlowDown"
                    | "Throttling"
                    | "ThrottlingException"
                    | "RequestTimeout"
                    | "RequestTimeTooSkewed"
                    | "InternalError"
                    | "ServiceUnavailable"
            )
        ),
        _ => false,
    };
    Error::S3 {
        operation,
        retriable,
        message: DisplayErrorContext(&err).to_string(),
    }
}

pub(super) fn bad_response(operation: &'static str, what: &str) -> Error {
    Error::S3 {
        operation,
        retriable: false,
        message: format!("unexpected response: {what}"),
    }
}

pub(super) fn build_error(operation: &'static str, err: aws_sdk_s3::error::BuildError) -> Error {
    Error::S3 {
        operation,
        retriable: false,
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn copy_source_encoding() {
        assert_eq!(
            encode_key("tmp/did:plc:abc/key2"),
            "tmp/did%3Aplc%3Aabc/key2"
        );
        assert_eq!(
            encode_key("tmp/did:web:localhost%3A1234/k"),
            "tmp/did%3Aweb%3Alocalhost%253A1234/k"
        );
    }

    #[test]
    fn content_range() {
        assert_eq!(parse_content_range("bytes 0-0/10"), Some((0, 0, 10)));
        assert_eq!(parse_content_range("bytes 5-9/10"), Some((5, 9, 10)));
        assert_eq!(parse_content_range("bytes 5-10/10"), None);
        assert_eq!(parse_content_range("bytes */10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn temp_keys_parse_back() {
        let t = SystemTime::UNIX_EPOCH;
        let entry = parse_temp_key("tmp/did:plc:abc/abcdef234", Some(t)).unwrap();
        assert_eq!(entry.did.as_str(), "did:plc:abc");
        assert_eq!(entry.key, "abcdef234");
        assert_eq!(parse_temp_key("tmp/did:plc:abc/../x", Some(t)), None);
        assert_eq!(parse_temp_key("tmp/notadid/abc", Some(t)), None);
        assert_eq!(parse_temp_key("blocks/did:plc:abc/abc", Some(t)), None);
        assert_eq!(parse_temp_key("tmp/did:plc:abc/abc", None), None);
    }

    #[tokio::test]
    async fn skip_bytes_across_chunks() {
        let chunks: Vec<std::io::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"0123")),
            Ok(Bytes::from_static(b"4567")),
            Ok(Bytes::from_static(b"89")),
        ];
        let stream: ByteStream = futures::stream::iter(chunks).boxed();
        let out: Vec<Bytes> = stream.skip_bytes(3, 6).try_collect().await.unwrap();
        assert_eq!(out.concat(), b"345678");
    }
}
