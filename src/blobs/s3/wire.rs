//! Response details: error classification, `Content-Range`, skipping into a body, key
//! parsing.

use std::time::SystemTime;

use futures::{StreamExt, TryStreamExt};

use crate::blobs::{ByteStream, Error, TempEntry, check_temp_key};
use crate::s3::Error as S3Error;

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

pub(super) fn is_not_found(err: &S3Error) -> bool {
    matches!(err.code(), Some("NoSuchKey" | "NotFound" | "NoSuchUpload"))
        || (err.code().is_none() && err.status() == Some(404))
}

pub(super) fn is_invalid_range(err: &S3Error) -> bool {
    err.code() == Some("InvalidRange") || err.status() == Some(416)
}

pub(super) fn s3_error(operation: &'static str, err: S3Error) -> Error {
    Error::S3 {
        operation,
        retriable: err.is_retriable(),
        message: err.to_string(),
    }
}

pub(super) fn bad_response(operation: &'static str, what: &str) -> Error {
    Error::S3 {
        operation,
        retriable: false,
        message: format!("unexpected response: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn copy_source_encoding() {
        // The client encodes `x-amz-copy-source` the same way: once, `/` kept.
        assert_eq!(
            crate::s3::sign::uri_encode("tmp/did:plc:abc/key2", true),
            "tmp/did%3Aplc%3Aabc/key2"
        );
        assert_eq!(
            crate::s3::sign::uri_encode("tmp/did:web:localhost%3A1234/k", true),
            "tmp/did%3Aweb%3Alocalhost%253A1234/k"
        );
    }

    #[test]
    fn error_classes() {
        let service = |status: u16, code: Option<&str>| S3Error::Service {
            status,
            code: code.map(str::to_owned),
            message: String::new(),
        };
        assert!(is_not_found(&service(404, Some("NoSuchKey"))));
        assert!(is_not_found(&service(404, None)));
        assert!(is_not_found(&service(404, Some("NoSuchUpload"))));
        assert!(!is_not_found(&service(404, Some("NoSuchBucket"))));
        assert!(!is_not_found(&S3Error::Transport("x".into())));
        assert!(is_invalid_range(&service(416, None)));
        assert!(is_invalid_range(&service(400, Some("InvalidRange"))));
        let e = s3_error("GetObject", service(503, Some("SlowDown")));
        assert!(matches!(
            e,
            Error::S3 {
                retriable: true,
                operation: "GetObject",
                ..
            }
        ));
        let e = s3_error("GetObject", service(403, Some("AccessDenied")));
        assert!(matches!(
            e,
            Error::S3 {
                retriable: false,
                ..
            }
        ));
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
