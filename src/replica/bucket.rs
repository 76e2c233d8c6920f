//! The replica bucket: the few S3 calls replication needs, on the blob store's client set-up.

use std::path::Path;

use bytes::Bytes;

use super::Error;
use crate::blobs::s3::S3BlobStore;
use crate::config::ReplicaConfig;
use crate::s3::{Body, Client};

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

fn s3(operation: &'static str, err: crate::s3::Error) -> Error {
    Error::Bucket {
        operation,
        detail: err.to_string(),
    }
}

impl Bucket {
    /// The bucket of `config`, with a client built as the S3 blob store builds its own
    /// (credentials, retries with back-off, timeouts, path style).
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
        self.client
            .put_object(&self.bucket, &self.full(key), Body::File(path.to_owned()))
            .await
            .map_err(|e| s3("PutObject", e))
    }

    pub(crate) async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), Error> {
        self.client
            .put_object(
                &self.bucket,
                &self.full(key),
                Body::Bytes(Bytes::from(bytes)),
            )
            .await
            .map_err(|e| s3("PutObject", e))
    }

    /// The object's bytes, or `None` when there is no such key.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let out = match self
            .client
            .get_object(&self.bucket, &self.full(key), None)
            .await
        {
            Ok(out) => out,
            Err(err) if err.code() == Some("NoSuchKey") => return Ok(None),
            Err(err) if err.code().is_none() && err.status() == Some(404) => return Ok(None),
            Err(err) => return Err(s3("GetObject", err)),
        };
        let bytes = out.bytes().await.map_err(|e| s3("GetObject", e))?;
        Ok(Some(bytes.to_vec()))
    }

    /// Every object under `under` (relative to the replica prefix), in key order.
    pub(crate) async fn list(&self, under: &str) -> Result<Vec<Object>, Error> {
        let prefix = self.full(under);
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2(&self.bucket, &prefix, token.as_deref())
                .await
                .map_err(|e| s3("ListObjectsV2", e))?;
            for object in page.objects {
                let Some(rel) = object.key.strip_prefix(&self.prefix) else {
                    continue;
                };
                objects.push(Object {
                    key: rel.to_owned(),
                    size: object.size,
                });
            }
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Deletes `keys` (relative to the replica prefix). Per-key failures inside a batch
    /// are not reported.
    pub(crate) async fn delete(&self, keys: &[String]) -> Result<(), Error> {
        for batch in keys.chunks(DELETE_BATCH) {
            let full: Vec<String> = batch.iter().map(|k| self.full(k)).collect();
            self.client
                .delete_objects(&self.bucket, &full)
                .await
                .map_err(|e| s3("DeleteObjects", e))?;
        }
        Ok(())
    }
}
