//! Multipart uploads: parts, completion, and aborting on failure or cancellation.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use super::wire::s3_error;
use crate::blobs::{Error, Result};

/// A multipart upload in progress.
pub(super) struct Multipart {
    pub(super) guard: AbortOnDrop,
    parts: Vec<CompletedPart>,
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
        let number = i32::try_from(self.parts.len() + 1).map_err(|_| Error::S3 {
            operation: "UploadPart",
            retriable: false,
            message: "too many parts".into(),
        })?;
        let g = &self.guard;
        let out = g
            .client
            .upload_part()
            .bucket(&g.bucket)
            .key(&g.key)
            .upload_id(g.upload_id.as_deref().unwrap_or_default())
            .part_number(number)
            .content_length(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .body(SdkByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3_error("UploadPart", e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    pub(super) async fn complete(&mut self) -> Result<()> {
        let g = &self.guard;
        g.client
            .complete_multipart_upload()
            .bucket(&g.bucket)
            .key(&g.key)
            .upload_id(g.upload_id.as_deref().unwrap_or_default())
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| s3_error("CompleteMultipartUpload", e))?;
        Ok(())
    }
}

/// Aborts the upload (if any) and returns `error`; an abort failure is only logged, the
/// drop guard having nothing left to do.
pub(super) async fn abort(upload: Option<Multipart>, error: Error) -> Error {
    if let Some(mut upload) = upload {
        let g = &mut upload.guard;
        if let Some(id) = g.upload_id.take() {
            let result = g
                .client
                .abort_multipart_upload()
                .bucket(&g.bucket)
                .key(&g.key)
                .upload_id(&id)
                .send()
                .await;
            if let Err(e) = result {
                tracing::warn!(key = %g.key, error = %DisplayErrorContext(&e), "cannot abort multipart upload");
            }
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
        let request = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(id);
        let key = self.key.clone();
        runtime.spawn(async move {
            if let Err(e) = request.send().await {
                tracing::warn!(%key, error = %DisplayErrorContext(&e), "cannot abort multipart upload");
            }
        });
    }
}
