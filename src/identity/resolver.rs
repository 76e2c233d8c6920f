//! [`IdResolver`]: DID resolution (`did:plc` through a [`PlcDirectory`], `did:web`), handle
//! resolution, and the bidirectional check that makes a handle trustworthy: the handle
//! resolves to the DID *and* the DID document claims the handle.
//!
//! Successful answers are cached for a fixed time; failures are not cached.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock (the system clock unless a test pauses it), so tests step over a TTL.
use tokio::time::Instant;

use crate::identity::did_doc::DidDocument;
use crate::identity::did_web::{DidWebResolver, WebError};
use crate::identity::handle::{HandleError, HandleResolver};
use crate::identity::plc::{PlcDirectory, PlcError};
use crate::syntax::{Did, Handle};

/// Settings of an [`IdResolver`].
#[derive(Debug, Clone)]
pub struct IdResolverConfig {
    /// How long a resolved document or handle is reused.
    pub ttl: Duration,
    /// Most entries kept per cache (documents, handles).
    pub max_entries: usize,
}

impl Default for IdResolverConfig {
    fn default() -> Self {
        IdResolverConfig {
            ttl: Duration::from_secs(600),
            // A DID document takes about 1.5 KB here: 2,000 of them about 3 MB. Creating
            // 10,000 accounts in a row filled 10,000 entries (about 16 MB) with documents
            // nothing read again; the hot ones (the app view, labelers, accounts in use)
            // are far fewer.
            max_entries: 2_000,
        }
    }
}

/// Why an identity could not be resolved or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("unsupported DID method (only plc and web)")]
    UnsupportedMethod,
    #[error(transparent)]
    Plc(#[from] PlcError),
    #[error(transparent)]
    Web(#[from] WebError),
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// The handle resolves to a DID whose document does not claim the handle.
    #[error("handle resolves to {0}, whose DID document does not claim it")]
    HandleMismatch(Did),
}

/// A DID with its document and, if it verified both ways, its handle.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub did: Did,
    /// `None` when the declared handle is missing or does not resolve back to the DID
    /// (shown as `handle.invalid`).
    pub handle: Option<Handle>,
    pub doc: DidDocument,
}

/// Resolves DIDs and handles, with a TTL cache and bidirectional handle verification.
pub struct IdResolver {
    plc: Arc<dyn PlcDirectory>,
    web: DidWebResolver,
    handles: HandleResolver,
    docs: TtlCache<Did, DidDocument>,
    handle_dids: TtlCache<Handle, Did>,
}

impl IdResolver {
    pub fn new(
        plc: Arc<dyn PlcDirectory>,
        web: DidWebResolver,
        handles: HandleResolver,
        config: IdResolverConfig,
    ) -> Self {
        IdResolver {
            plc,
            web,
            handles,
            docs: TtlCache::new(config.ttl, config.max_entries),
            handle_dids: TtlCache::new(config.ttl, config.max_entries),
        }
    }

    /// The PLC directory this resolver reads (also where a PDS submits operations).
    pub fn plc(&self) -> &Arc<dyn PlcDirectory> {
        &self.plc
    }

    /// The DID document (cached).
    pub async fn resolve_did(&self, did: &Did) -> Result<DidDocument, ResolveError> {
        if let Some(doc) = self.docs.get(did) {
            return Ok(doc);
        }
        let doc = match did.method() {
            "plc" => self.plc.resolve(did).await?,
            "web" => self.web.resolve(did).await?,
            _ => return Err(ResolveError::UnsupportedMethod),
        };
        self.docs.insert(did.clone(), doc.clone());
        Ok(doc)
    }

    /// The DID document read now from its source (the cache is refreshed): for checks that
    /// must see a change just made, such as a key rotation during a migration.
    pub async fn resolve_did_fresh(&self, did: &Did) -> Result<DidDocument, ResolveError> {
        let doc = match did.method() {
            "plc" => self.plc.resolve(did).await?,
            "web" => self.web.resolve(did).await?,
            _ => return Err(ResolveError::UnsupportedMethod),
        };
        self.docs.insert(did.clone(), doc.clone());
        Ok(doc)
    }

    /// The DID a handle points to (cached), without checking the document.
    pub async fn resolve_handle(&self, handle: &Handle) -> Result<Did, ResolveError> {
        if let Some(did) = self.handle_dids.get(handle) {
            return Ok(did);
        }
        let did = self.handles.resolve(handle).await?;
        self.handle_dids.insert(handle.clone(), did.clone());
        Ok(did)
    }

    /// From a handle: resolve it, fetch the DID document and require that the document
    /// claims the handle.
    pub async fn lookup_handle(&self, handle: &Handle) -> Result<Identity, ResolveError> {
        let did = self.resolve_handle(handle).await?;
        let doc = self.resolve_did(&did).await?;
        if doc.handle().as_ref() != Some(handle) {
            return Err(ResolveError::HandleMismatch(did));
        }
        Ok(Identity {
            did,
            handle: Some(handle.clone()),
            doc,
        })
    }

    /// From a DID: fetch the document, and keep its declared handle only if that handle
    /// resolves back to this DID. Handle resolution failures are not errors here.
    pub async fn lookup_did(&self, did: &Did) -> Result<Identity, ResolveError> {
        let doc = self.resolve_did(did).await?;
        let handle = match doc.handle() {
            Some(handle) => match self.resolve_handle(&handle).await {
                Ok(resolved) if &resolved == did => Some(handle),
                _ => None,
            },
            None => None,
        };
        Ok(Identity {
            did: did.clone(),
            handle,
            doc,
        })
    }

    /// Forgets a cached document (e.g. after an identity event).
    pub fn purge_did(&self, did: &Did) {
        self.docs.remove(did);
    }

    /// Forgets a cached handle resolution.
    pub fn purge_handle(&self, handle: &Handle) {
        self.handle_dids.remove(handle);
    }
}

/// A small map whose entries expire; when full, expired entries go first, then the oldest.
pub(crate) struct TtlCache<K, V> {
    ttl: Duration,
    max: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub(crate) fn new(ttl: Duration, max: usize) -> Self {
        TtlCache {
            ttl,
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((at, value)) if at.elapsed() < self.ttl => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        if self.max == 0 || self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.max && !entries.contains_key(&key) {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= self.max
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    fn remove(&self, key: &K) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests;
