//! The replica bucket: the few S3 calls replication needs, on the blob store's client set-up.

use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::Error;
use crate::blobs::s3::S3BlobStore;
use crate::config::ReplicaConfig;

/// Keys per `DeleteObjects` request (S3's maximum).
const DELETE_BATCH: usize = 1000;

/// One object of a listing.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    /// The key without the replica prefix.
    pub key: String,
    pub size: u64,
}

/// The bucket and prefix replicas live under. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Bucket {
    client: Client,
    bucket: String,
    prefix: String,
}

fn sdk<E: std::error::Error + Send + Sync + 'static>(operation: &'static str, err: E) -> Error {
    Error::Bucket {
        operation,
        detail: DisplayErrorContext(&err).to_string(),
    }
}

impl Bucket {
    /// The bucket of `config`, with a client built as the S3 blob store builds its own
    /// (retries with back-off, timeouts, path style, checksums only where required).
    pub async fn new(config: &ReplicaConfig) -> Bucket {
        let store = S3BlobStore::new(&config.s3).await;
        Bucket {
            client: store.client().clone(),
            bucket: config.s3.bucket.clone(),
            prefix: config.prefix.clone(),
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub(crate) async fn put_file(&self, key: &str, path: &Path) -> Result<(), Error> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| sdk("PutObject", e))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .body(body)
            .send()
            .await
            .map_err(|e| sdk("PutObject", e))?;
        Ok(())
    }

    pub(crate) async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), Error> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| sdk("PutObject", e))?;
        Ok(())
    }

    /// The object's bytes, or `None` when there is no such key.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) => {
                if err
                    .as_service_error()
                    .is_some_and(aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key)
                {
                    return Ok(None);
                }
                return Err(sdk("GetObject", err));
            }
        };
        let bytes = out.body.collect().await.map_err(|e| sdk("GetObject", e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    /// Every object under `under` (relative to the replica prefix), in key order.
    pub(crate) async fn list(&self, under: &str) -> Result<Vec<Object>, Error> {
        let prefix = self.full(under);
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| sdk("ListObjectsV2", e))?;
            for object in out.contents() {
                let Some(key) = object.key() else { continue };
                let Some(rel) = key.strip_prefix(&self.prefix) else {
                    continue;
                };
                objects.push(Object {
                    key: rel.to_owned(),
                    size: object
                        .size()
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0),
                });
            }
            match out.next_continuation_token() {
                Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Deletes `keys` (relative to the replica prefix).
    pub(crate) async fn delete(&self, keys: &[String]) -> Result<(), Error> {
        for batch in keys.chunks(DELETE_BATCH) {
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(self.full(k)).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| sdk("DeleteObjects", e))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| sdk("DeleteObjects", e))?;
            self.client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| sdk("DeleteObjects", e))?;
        }
        Ok(())
    }
}
