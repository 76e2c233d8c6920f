//! Multipart uploads: parts, completion, and aborting on failure or cancellation.

use bytes::Bytes;

use super::wire::s3_error;
use crate::blobs::{Error, Result};
use crate::s3::Client;

/// S3's largest part number.
const MAX_PARTS: usize = 10_000;

/// A multipart upload in progress.
pub(super) struct Multipart {
    pub(super) guard: AbortOnDrop,
    /// `(part number, ETag)` of each part sent.
    parts: Vec<(u32, Option<String>)>,
}

impl Multipart {
    /// Wraps an upload that `CreateMultipartUpload` opened.
    pub(super) fn new(client: Client, bucket: String, key: String, upload_id: String) -> Multipart {
        Multipart {
            guard: AbortOnDrop {
                client,
                bucket,
                key,
                upload_id: Some(upload_id),
            },
            parts: Vec::new(),
        }
    }

    pub(super) async fn send_part(&mut self, body: Bytes) -> Result<()> {
        let number = self.parts.len() + 1;
        let number = u32::try_from(number)
            .ok()
            .filter(|_| number <= MAX_PARTS)
            .ok_or_else(|| Error::S3 {
                operation: "UploadPart",
                retriable: false,
                message: "too many parts".into(),
            })?;
        let g = &self.guard;
        let etag = g
            .client
            .upload_part(
                &g.bucket,
                &g.key,
                g.upload_id.as_deref().unwrap_or_default(),
                number,
                body,
            )
            .await
            .map_err(|e| s3_error("UploadPart", e))?;
        self.parts.push((number, etag));
        Ok(())
    }

    pub(super) async fn complete(&mut self) -> Result<()> {
        let g = &self.guard;
        g.client
            .complete_multipart_upload(
                &g.bucket,
                &g.key,
                g.upload_id.as_deref().unwrap_or_default(),
                &self.parts,
            )
            .await
            .map_err(|e| s3_error("CompleteMultipartUpload", e))
    }
}

/// Aborts the upload (if any) and returns `error`; an abort failure is only logged, the
/// drop guard having nothing left to do.
pub(super) async fn abort(upload: Option<Multipart>, error: Error) -> Error {
    if let Some(mut upload) = upload {
        let g = &mut upload.guard;
        if let Some(id) = g.upload_id.take()
            && let Err(e) = g
                .client
                .abort_multipart_upload(&g.bucket, &g.key, &id)
                .await
        {
            tracing::warn!(key = %g.key, error = %e, "cannot abort multipart upload");
        }
    }
    error
}

/// Aborts a multipart upload when dropped (a cancelled upload future), unless disarmed.
pub(super) struct AbortOnDrop {
    client: Client,
    bucket: String,
    key: String,
    upload_id: Option<String>,
}

impl AbortOnDrop {
    pub(super) fn disarm(&mut self) {
        self.upload_id = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let Some(id) = self.upload_id.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(key = %self.key, "multipart upload left open: no runtime to abort it");
            return;
        };
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let key = self.key.clone();
        runtime.spawn(async move {
            if let Err(e) = client.abort_multipart_upload(&bucket, &key, &id).await {
                tracing::warn!(%key, error = %e, "cannot abort multipart upload");
            }
        });
    }
}
