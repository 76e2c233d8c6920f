//! A [`BlobStore`] decorator counting bytes stored and served, for the metrics. The store
//! underneath does not know it is measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use cid::Cid;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::{BlobStore, BlobStream, ByteRange, ByteStream, Result, TempBlob, TempEntry};
use crate::syntax::Did;

/// Counters since start-up; see [`MeteredBlobStore::counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobCounts {
    /// Uploads stored (temp), and their bytes.
    pub uploads: u64,
    pub uploaded_bytes: u64,
    /// Reads started, and the bytes they were to send.
    pub reads: u64,
    pub read_bytes: u64,
    /// Calls that failed (any operation, a missing blob included).
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    uploads: AtomicU64,
    uploaded_bytes: AtomicU64,
    reads: AtomicU64,
    read_bytes: AtomicU64,
    errors: AtomicU64,
}

/// Wraps a store; clone the `Arc` of the counters with [`MeteredBlobStore::counter`].
pub struct MeteredBlobStore {
    inner: Arc<dyn BlobStore>,
    counters: Arc<Counters>,
}

/// A handle on a [`MeteredBlobStore`]'s counters.
#[derive(Debug, Clone)]
pub struct BlobCounter(Arc<Counters>);

impl BlobCounter {
    pub fn counts(&self) -> BlobCounts {
        let c = &self.0;
        BlobCounts {
            uploads: c.uploads.load(Ordering::Relaxed),
            uploaded_bytes: c.uploaded_bytes.load(Ordering::Relaxed),
            reads: c.reads.load(Ordering::Relaxed),
            read_bytes: c.read_bytes.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }
}

impl MeteredBlobStore {
    pub fn new(inner: Arc<dyn BlobStore>) -> Self {
        MeteredBlobStore {
            inner,
            counters: Arc::default(),
        }
    }

    pub fn counter(&self) -> BlobCounter {
        BlobCounter(self.counters.clone())
    }

    fn count<T>(&self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

impl BlobStore for MeteredBlobStore {
    fn put_temp<'a>(
        &'a self,
        did: &'a Did,
        data: ByteStream,
        max_size: u64,
    ) -> BoxFuture<'a, Result<TempBlob>> {
        async move {
            let result = self.inner.put_temp(did, data, max_size).await;
            if let Ok(temp) = &result {
                self.counters.uploads.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .uploaded_bytes
                    .fetch_add(temp.size, Ordering::Relaxed);
            }
            self.count(result)
        }
        .boxed()
    }

    fn make_permanent<'a>(
        &'a self,
        did: &'a Did,
        temp_key: &'a str,
        cid: &'a Cid,
    ) -> BoxFuture<'a, Result<()>> {
        async move { self.count(self.inner.make_permanent(did, temp_key, cid).await) }.boxed()
    }

    fn get<'a>(
        &'a self,
        did: &'a Did,
        cid: &'a Cid,
        range: Option<ByteRange>,
    ) -> BoxFuture<'a, Result<BlobStream>> {
        async move {
            let result = self.inner.get(did, cid, range).await;
            if let Ok(stream) = &result {
                self.counters.reads.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .read_bytes
                    .fetch_add(stream.len(), Ordering::Relaxed);
            }
            self.count(result)
        }
        .boxed()
    }

    fn has<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<bool>> {
        async move { self.count(self.inner.has(did, cid).await) }.boxed()
    }

    fn has_temp<'a>(&'a self, did: &'a Did, temp_key: &'a str) -> BoxFuture<'a, Result<bool>> {
        async move { self.count(self.inner.has_temp(did, temp_key).await) }.boxed()
    }

    fn delete<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<()>> {
        async move { self.count(self.inner.delete(did, cid).await) }.boxed()
    }

    fn delete_many<'a>(&'a self, did: &'a Did, cids: &'a [Cid]) -> BoxFuture<'a, Result<()>> {
        async move { self.count(self.inner.delete_many(did, cids).await) }.boxed()
    }

    fn delete_temp<'a>(&'a self, did: &'a Did, temp_key: &'a str) -> BoxFuture<'a, Result<()>> {
        async move { self.count(self.inner.delete_temp(did, temp_key).await) }.boxed()
    }

    fn quarantine<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<()>> {
        async move { self.count(self.inner.quarantine(did, cid).await) }.boxed()
    }

    fn unquarantine<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<()>> {
        async move { self.count(self.inner.unquarantine(did, cid).await) }.boxed()
    }

    fn list_temp_older_than<'a>(
        &'a self,
        cutoff: SystemTime,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<TempEntry>>> {
        async move { self.count(self.inner.list_temp_older_than(cutoff, limit).await) }.boxed()
    }

    fn stored_bytes(&self) -> BoxFuture<'_, Result<u64>> {
        self.inner.stored_bytes()
    }

    fn delete_all<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<()>> {
        async move { self.count(self.inner.delete_all(did).await) }.boxed()
    }

    fn probe(&self) -> BoxFuture<'_, Result<()>> {
        self.inner.probe()
    }
}
