//! Blobs in an S3-compatible bucket (AWS, Cloudflare R2, MinIO, …), with the reference's
//! keys: `blocks/<did>/<cid>`, `tmp/<did>/<key>`, `quarantine/<did>/<cid>`.
//!
//! Uploads are buffered one part at a time: a blob that fits in one part
//! ([`DEFAULT_PART_SIZE`]) is sent with one `PutObject`; a larger one becomes a multipart
//! upload, aborted on any failure (or when the upload future is dropped). Moving a blob
//! is `CopyObject` + `DeleteObject`, so `blob_upload_limit` must stay under S3's 5 GiB
//! single-copy limit. Transient failures are retried by the client ([`crate::s3`]: five
//! attempts, exponential back-off). Operators should still add a bucket lifecycle rule that
//! aborts incomplete multipart uploads, for processes killed mid-upload.

mod multipart;
mod wire;

use std::time::SystemTime;

use bytes::BytesMut;
use cid::Cid;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use self::multipart::{Multipart, abort};
use self::wire::{
    SkipBytes, bad_response, is_invalid_range, is_not_found, parse_content_range, parse_temp_key,
    s3_error,
};
use super::ingest::Ingest;
use super::{
    BlobStore, BlobStream, ByteRange, ByteStream, Error, Result, TempBlob, TempEntry,
    check_temp_key, cid_segment, did_segment, new_temp_key,
};
use crate::config::S3Config;
use crate::s3::{Body, Client};
use crate::syntax::Did;

/// Multipart part size: uploads up to this size are one `PutObject`.
pub(crate) const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// Keys per `DeleteObjects` request (S3's maximum).
const DELETE_BATCH: usize = 1000;

const BLOCKS: &str = "blocks";
const TMP: &str = "tmp";
const QUARANTINE: &str = "quarantine";

/// Blob store in an S3 bucket.
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    part_size: usize,
}

impl S3BlobStore {
    /// A store for the configured bucket. Credentials not in the configuration come from
    /// the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`),
    /// the region from `AWS_REGION` / `AWS_DEFAULT_REGION`, falling back to `us-east-1`.
    pub async fn new(config: &S3Config) -> S3BlobStore {
        S3BlobStore::with_client(Client::new(config), &config.bucket)
    }

    /// A store over an existing client (tests, custom set-ups).
    pub fn with_client(client: Client, bucket: &str) -> S3BlobStore {
        S3BlobStore {
            client,
            bucket: bucket.to_owned(),
            part_size: DEFAULT_PART_SIZE,
        }
    }

    /// The S3 client, e.g. to inspect the bucket.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    fn blob_key(did: &Did, cid: &Cid) -> Result<String> {
        Ok(format!(
            "{BLOCKS}/{}/{}",
            did_segment(did)?,
            cid_segment(cid)?
        ))
    }

    fn quarantine_key(did: &Did, cid: &Cid) -> Result<String> {
        Ok(format!(
            "{QUARANTINE}/{}/{}",
            did_segment(did)?,
            cid_segment(cid)?
        ))
    }

    fn temp_key(did: &Did, key: &str) -> Result<String> {
        check_temp_key(key)?;
        Ok(format!("{TMP}/{}/{key}", did_segment(did)?))
    }

    async fn put_temp_impl(&self, did: &Did, mut data: ByteStream, max: u64) -> Result<TempBlob> {
        let key = new_temp_key();
        let object = S3BlobStore::temp_key(did, &key)?;
        let mut ingest = Ingest::new(max);
        let mut buffer = BytesMut::new();
        let mut multipart: Option<Multipart> = None;
        loop {
            let next = data.next().await;
            let step = match next {
                None => break,
                Some(Err(e)) => Err(Error::Stream(e)),
                Some(Ok(chunk)) => ingest.update(&chunk).map(|()| chunk),
            };
            let chunk = match step {
                Ok(chunk) => chunk,
                Err(e) => return Err(abort(multipart, e).await),
            };
            buffer.extend_from_slice(&chunk);
            while buffer.len() >= self.part_size {
                let part = buffer.split_to(self.part_size).freeze();
                let upload = match multipart.as_mut() {
                    Some(upload) => upload,
                    None => match self.start_multipart(&object).await {
                        Ok(upload) => multipart.insert(upload),
                        Err(e) => return Err(e),
                    },
                };
                if let Err(e) = upload.send_part(part).await {
                    return Err(abort(multipart, e).await);
                }
            }
        }
        match multipart {
            None => {
                self.client
                    .put_object(&self.bucket, &object, Body::Bytes(buffer.freeze()))
                    .await
                    .map_err(|e| s3_error("PutObject", e))?;
            }
            Some(mut upload) => {
                if !buffer.is_empty()
                    && let Err(e) = upload.send_part(buffer.freeze()).await
                {
                    return Err(abort(Some(upload), e).await);
                }
                if let Err(e) = upload.complete().await {
                    return Err(abort(Some(upload), e).await);
                }
                upload.guard.disarm();
            }
        }
        Ok(ingest.finish(key))
    }

    async fn start_multipart(&self, object: &str) -> Result<Multipart> {
        let upload_id = self
            .client
            .create_multipart_upload(&self.bucket, object)
            .await
            .map_err(|e| s3_error("CreateMultipartUpload", e))?;
        Ok(Multipart::new(
            self.client.clone(),
            self.bucket.clone(),
            object.to_owned(),
            upload_id,
        ))
    }

    /// `CopyObject` + `DeleteObject`. A missing source is [`Error::NotFound`].
    async fn move_object(&self, from: &str, to: &str) -> Result<()> {
        match self.client.copy_object(&self.bucket, from, to).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Err(Error::NotFound),
            Err(e) => return Err(s3_error("CopyObject", e)),
        }
        self.delete_key(from).await
    }

    async fn make_permanent_impl(&self, did: &Did, key: &str, cid: &Cid) -> Result<()> {
        let from = S3BlobStore::temp_key(did, key)?;
        let to = S3BlobStore::blob_key(did, cid)?;
        // Optimistic move (the usual case); a missing temp object is fine when the blob
        // is already permanent (an earlier or concurrent call).
        match self.move_object(&from, &to).await {
            Err(Error::NotFound) if self.has_key(&to).await? => Ok(()),
            other => other,
        }
    }

    async fn get_impl(&self, did: &Did, cid: &Cid, range: Option<ByteRange>) -> Result<BlobStream> {
        let key = S3BlobStore::blob_key(did, cid)?;
        // Ranges S3 would ignore rather than refuse (`5-2`, `-0`) are refused here.
        if let Some(ByteRange::FromTo(start, end)) = range
            && start > end
        {
            return Err(self.unsatisfiable(&key).await);
        }
        if range == Some(ByteRange::Suffix(0)) {
            return Err(self.unsatisfiable(&key).await);
        }
        let header = range.map(ByteRange::header_value);
        let out = match self
            .client
            .get_object(&self.bucket, &key, header.as_deref())
            .await
        {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Err(Error::NotFound),
            Err(e) if is_invalid_range(&e) => return Err(self.unsatisfiable(&key).await),
            Err(e) => return Err(s3_error("GetObject", e)),
        };
        let length = out
            .content_length()
            .ok_or_else(|| bad_response("GetObject", "no Content-Length"))?;
        let content_range = out.header("content-range").map(str::to_owned);
        let (size, served) = match (range, content_range.as_deref()) {
            (None, _) => (length, None),
            (Some(_), Some(header)) => {
                let (first, last, size) = parse_content_range(header)
                    .ok_or_else(|| bad_response("GetObject", "malformed Content-Range"))?;
                (size, Some((first, last)))
            }
            // The server ignored the range and sent everything: select it ourselves.
            (Some(r), None) => {
                let (first, last) = r
                    .resolve(length)
                    .ok_or(Error::RangeNotSatisfiable { size: length })?;
                let body = out.stream().skip_bytes(first, last - first + 1);
                return Ok(BlobStream {
                    size: length,
                    range: Some((first, last)),
                    stream: body,
                });
            }
        };
        Ok(BlobStream {
            size,
            range: served,
            stream: out.stream(),
        })
    }

    /// [`Error::RangeNotSatisfiable`] with the blob's size, or [`Error::NotFound`].
    async fn unsatisfiable(&self, key: &str) -> Error {
        match self.client.head_object(&self.bucket, key).await {
            Ok(size) => Error::RangeNotSatisfiable {
                size: size.unwrap_or(0),
            },
            Err(e) if is_not_found(&e) => Error::NotFound,
            Err(e) => s3_error("HeadObject", e),
        }
    }

    async fn has_key(&self, key: &str) -> Result<bool> {
        match self.client.head_object(&self.bucket, key).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(s3_error("HeadObject", e)),
        }
    }

    async fn delete_key(&self, key: &str) -> Result<()> {
        match self.client.delete_object(&self.bucket, key).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(s3_error("DeleteObject", e)),
        }
    }

    async fn delete_keys(&self, keys: Vec<String>) -> Result<()> {
        for batch in keys.chunks(DELETE_BATCH) {
            let errors = self
                .client
                .delete_objects(&self.bucket, batch)
                .await
                .map_err(|e| s3_error("DeleteObjects", e))?;
            // Per-key failures; a key already gone is not one.
            if let Some(failed) = errors.iter().find(|e| e.code != "NoSuchKey") {
                return Err(Error::S3 {
                    operation: "DeleteObjects",
                    retriable: matches!(failed.code.as_str(), "InternalError" | "SlowDown"),
                    message: format!("{}: {} {}", failed.key, failed.code, failed.message),
                });
            }
        }
        Ok(())
    }

    /// Every key under `prefix`, with its modification time, page by page; stops once
    /// `keep` has accepted `limit` of them.
    async fn list_prefix(
        &self,
        prefix: &str,
        limit: usize,
        mut keep: impl FnMut(&str, Option<SystemTime>) -> bool,
    ) -> Result<usize> {
        let mut kept = 0;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2(&self.bucket, prefix, token.as_deref())
                .await
                .map_err(|e| s3_error("ListObjectsV2", e))?;
            for object in &page.objects {
                if kept >= limit {
                    return Ok(kept);
                }
                if keep(&object.key, object.last_modified) {
                    kept += 1;
                }
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(kept),
            }
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let mut keys = Vec::new();
        self.list_prefix(prefix, usize::MAX, |key, _| {
            keys.push(key.to_owned());
            true
        })
        .await?;
        self.delete_keys(keys).await
    }

    /// Aborts unfinished multipart uploads under `prefix`.
    async fn abort_uploads(&self, prefix: &str) -> Result<()> {
        let mut key_marker: Option<String> = None;
        let mut id_marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_multipart_uploads(
                    &self.bucket,
                    prefix,
                    key_marker.as_deref(),
                    id_marker.as_deref(),
                )
                .await
                .map_err(|e| s3_error("ListMultipartUploads", e))?;
            for (key, id) in &page.uploads {
                match self
                    .client
                    .abort_multipart_upload(&self.bucket, key, id)
                    .await
                {
                    Ok(()) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(s3_error("AbortMultipartUpload", e)),
                }
            }
            match page.next {
                Some((key, id)) => {
                    key_marker = Some(key);
                    id_marker = id;
                }
                None => return Ok(()),
            }
        }
    }

    async fn delete_all_impl(&self, did: &Did) -> Result<()> {
        let did = did_segment(did)?;
        self.abort_uploads(&format!("{TMP}/{did}/")).await?;
        for area in [BLOCKS, TMP, QUARANTINE] {
            self.delete_prefix(&format!("{area}/{did}/")).await?;
        }
        Ok(())
    }

    async fn list_temp_impl(&self, cutoff: SystemTime, limit: usize) -> Result<Vec<TempEntry>> {
        let mut found = Vec::new();
        self.list_prefix(&format!("{TMP}/"), limit, |key, modified| {
            let Some(entry) = parse_temp_key(key, modified) else {
                return false;
            };
            if entry.modified >= cutoff {
                return false;
            }
            found.push(entry);
            true
        })
        .await?;
        Ok(found)
    }
}

impl BlobStore for S3BlobStore {
    fn probe(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            self.client
                .head_bucket(&self.bucket)
                .await
                .map_err(|e| s3_error("HeadBucket", e))?;
            Ok(())
        }
        .boxed()
    }

    fn put_temp<'a>(
        &'a self,
        did: &'a Did,
        data: ByteStream,
        max_size: u64,
    ) -> BoxFuture<'a, Result<TempBlob>> {
        self.put_temp_impl(did, data, max_size).boxed()
    }

    fn make_permanent<'a>(
        &'a self,
        did: &'a Did,
        temp_key: &'a str,
        cid: &'a Cid,
    ) -> BoxFuture<'a, Result<()>> {
        self.make_permanent_impl(did, temp_key, cid).boxed()
    }

    fn get<'a>(
        &'a self,
        did: &'a Did,
        cid: &'a Cid,
        range: Option<ByteRange>,
    ) -> BoxFuture<'a, Result<BlobStream>> {
        self.get_impl(did, cid, range).boxed()
    }

    fn has<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<bool>> {
        async move { self.has_key(&S3BlobStore::blob_key(did, cid)?).await }.boxed()
    }

    fn has_temp<'a>(&'a self, did: &'a Did, temp_key: &'a str) -> BoxFuture<'a, Result<bool>> {
        async move { self.has_key(&S3BlobStore::temp_key(did, temp_key)?).await }.boxed()
    }

    fn delete<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<()>> {
        async move { self.delete_key(&S3BlobStore::blob_key(did, cid)?).await }.boxed()
    }

    fn delete_many<'a>(&'a self, did: &'a Did, cids: &'a [Cid]) -> BoxFuture<'a, Result<()>> {
        async move {
            let keys = cids
                .iter()
                .map(|cid| S3BlobStore::blob_key(did, cid))
                .collect::<Result<Vec<_>>>()?;
            self.delete_keys(keys).await
        }
        .boxed()
    }

    fn delete_temp<'a>(&'a self, did: &'a Did, temp_key: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            self.delete_key(&S3BlobStore::temp_key(did, temp_key)?)
                .await
        }
        .boxed()
    }

    fn quarantine<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<()>> {
        async move {
            let from = S3BlobStore::blob_key(did, cid)?;
            let to = S3BlobStore::quarantine_key(did, cid)?;
            self.move_object(&from, &to).await
        }
        .boxed()
    }

    fn unquarantine<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<()>> {
        async move {
            let from = S3BlobStore::quarantine_key(did, cid)?;
            let to = S3BlobStore::blob_key(did, cid)?;
            self.move_object(&from, &to).await
        }
        .boxed()
    }

    fn list_temp_older_than<'a>(
        &'a self,
        cutoff: SystemTime,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<TempEntry>>> {
        self.list_temp_impl(cutoff, limit).boxed()
    }

    fn stored_bytes(&self) -> BoxFuture<'_, Result<u64>> {
        async move {
            let mut total = 0u64;
            for area in [BLOCKS, QUARANTINE] {
                let mut token: Option<String> = None;
                loop {
                    let page = self
                        .client
                        .list_objects_v2(&self.bucket, &format!("{area}/"), token.as_deref())
                        .await
                        .map_err(|e| s3_error("ListObjectsV2", e))?;
                    total += page.objects.iter().map(|o| o.size).sum::<u64>();
                    match page.next {
                        Some(next) => token = Some(next),
                        None => break,
                    }
                }
            }
            Ok(total)
        }
        .boxed()
    }

    fn delete_all<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<()>> {
        self.delete_all_impl(did).boxed()
    }
}
