//! An embedded `did:plc` directory: the PLC directory server (as `https://plc.directory`
//! runs it) on SQLite, so a development PDS works offline and registers no junk identities
//! on the public network.
//!
//! - [`validate`]: the rules for a proposed operation (signatures by the current rotation
//!   keys, `prev` chaining, the 72-hour nullification window, genesis DID derivation);
//! - [`store`]: the SQL;
//! - [`http`]: the directory's HTTP API (`POST /:did`, `GET /:did`, `/:did/data`,
//!   `/:did/log`, `/:did/log/audit`, `/:did/log/last`, `/export`), mounted under `/plc` by
//!   `rookery serve` on the development defaults and served alone by `rookery plc serve`.
//!
//! [`Directory`] also implements [`PlcDirectory`], so the PDS it is embedded in talks to it
//! in-process rather than over HTTP.

pub mod http;
pub mod store;
pub mod validate;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use sqlx::SqlitePool;

use crate::crypto::{Algorithm, PublicKey};
use crate::identity::did_doc::DidDocument;
use crate::identity::plc::{PlcData, PlcDirectory, PlcError, PlcOp, SignedOp};
use crate::store::sqlite::{OpenOptions, begin_write, open_migrated};
use crate::syntax::Did;
use store::ExportFrom;
use validate::IndexedOp;

// The directory schema, embedded at compile time from `migrations/plc/`.
pub(crate) use crate::store::migrations::PLC as PLC_MIGRATOR;

/// File name of the directory database inside a data directory.
pub const DATABASE_FILE: &str = "plc.sqlite";
/// Path under which `rookery serve` mounts the embedded directory.
pub(crate) const MOUNT_PATH: &str = "/plc";
/// Most operations one `/export` page returns.
pub(crate) const MAX_EXPORT_COUNT: i64 = 1000;

/// Why a directory request failed; each maps to the reference directory's status and
/// `{"message": …}` body.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404: no operation for this DID.
    #[error("DID not registered: {0}")]
    NotRegistered(String),
    /// 404 on `/data`, 410 on the document: the DID is tombstoned.
    #[error("DID not available: {0}")]
    NotAvailable(String),
    /// 400: the operation or the request is refused (the reference's message).
    #[error("{0}")]
    Invalid(String),
    #[error("directory database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("directory database: {0}")]
    Store(#[from] crate::store::Error),
    #[error("directory data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored operation unreadable: {0}")]
    Corrupt(String),
}

impl From<crate::identity::plc::OpError> for Error {
    fn from(e: crate::identity::plc::OpError) -> Self {
        Error::Corrupt(e.to_string())
    }
}

/// The directory service. Cheap to clone.
#[derive(Clone)]
pub struct Directory(Arc<Inner>);

struct Inner {
    pool: SqlitePool,
    /// Serialises submissions within this process (`BEGIN IMMEDIATE` across processes).
    write_lock: tokio::sync::Mutex<()>,
}

impl Directory {
    /// Opens (creating and migrating) the directory database at `path`. `synchronous =
    /// FULL`, as every server database: an accepted operation is the source of truth.
    pub async fn open(path: &Path) -> Result<Directory, Error> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let opts = OpenOptions {
            idle_timeout: None,
            ..OpenOptions::default()
        };
        let pool = open_migrated(path, &opts, &PLC_MIGRATOR).await?;
        Ok(Directory(Arc::new(Inner {
            pool,
            write_lock: tokio::sync::Mutex::new(()),
        })))
    }

    /// Opens `{data_directory}/plc.sqlite`.
    pub async fn open_in(data_directory: &Path) -> Result<Directory, Error> {
        Self::open(&data_directory.join(DATABASE_FILE)).await
    }

    /// `POST /:did` with a JSON body.
    pub async fn submit_json(&self, did: &str, body: &Value) -> Result<(), Error> {
        let op = validate::parse_incoming(body)?;
        self.submit_op(did, op, now_ms()).await
    }

    /// Validates `op` against the DID's history at time `now_ms` and appends it.
    pub async fn submit_op(&self, did: &str, op: SignedOp, now_ms: i64) -> Result<(), Error> {
        let _guard = self.0.write_lock.lock().await;
        let mut tx = begin_write(&self.0.pool).await?;
        let ops = store::ops_for_did(&mut tx, did, false).await?;
        let accepted = validate::assure_valid_next_op(did, &ops, &op, now_ms)?;
        // Per DID, creation times strictly increase (they order the log and the recovery
        // window), even for two operations within one millisecond.
        let latest = store::latest_created(&mut tx, did).await?;
        let created_at_ms = latest.map_or(now_ms, |l| now_ms.max(l + 1));
        let indexed = IndexedOp {
            cid: op.cid()?.to_string(),
            op,
            nullified: false,
            created_at_ms,
        };
        store::nullify(&mut tx, did, &accepted.nullified).await?;
        store::insert_op(&mut tx, did, &indexed).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `GET /:did/log/last`: the most recent valid operation (a tombstone included).
    pub async fn last_op(&self, did: &str) -> Result<SignedOp, Error> {
        let mut conn = self.0.pool.acquire().await?;
        store::last_op(&mut conn, did)
            .await?
            .map(|op| op.op)
            .ok_or_else(|| Error::NotRegistered(did.to_owned()))
    }

    /// `GET /:did/log`: the valid operations, oldest first.
    pub async fn log(&self, did: &str) -> Result<Vec<SignedOp>, Error> {
        let mut conn = self.0.pool.acquire().await?;
        let ops = store::ops_for_did(&mut conn, did, false).await?;
        if ops.is_empty() {
            return Err(Error::NotRegistered(did.to_owned()));
        }
        Ok(ops.into_iter().map(|op| op.op).collect())
    }

    /// `GET /:did/log/audit`: every operation, nullified ones included, oldest first.
    pub async fn audit_log(&self, did: &str) -> Result<Vec<Value>, Error> {
        let mut conn = self.0.pool.acquire().await?;
        let ops = store::ops_for_did(&mut conn, did, true).await?;
        if ops.is_empty() {
            return Err(Error::NotRegistered(did.to_owned()));
        }
        ops.iter().map(|op| audit_entry(did, op)).collect()
    }

    /// The current state of an active DID, `NotAvailable` once tombstoned.
    pub async fn state(&self, did: &str) -> Result<PlcOp, Error> {
        let last = self.last_op(did).await?;
        last.op
            .normalize()
            .ok_or_else(|| Error::NotAvailable(did.to_owned()))
    }

    /// `GET /:did/data`.
    pub async fn data(&self, did: &str) -> Result<Value, Error> {
        let state = self.state(did).await?;
        Ok(json!({
            "did": did,
            "verificationMethods": state.verification_methods,
            "rotationKeys": state.rotation_keys,
            "alsoKnownAs": state.also_known_as,
            "services": state.services,
        }))
    }

    /// `GET /:did`: the DID document in the directory's current (`Multikey`) form.
    pub async fn document(&self, did: &str) -> Result<Value, Error> {
        let state = self.state(did).await?;
        Ok(format_did_doc(did, &state))
    }

    /// `GET /export`: up to `count` operations of every DID, in order, from `from` on.
    pub async fn export(&self, from: ExportFrom, count: i64) -> Result<Vec<Value>, Error> {
        let mut conn = self.0.pool.acquire().await?;
        let rows = store::export(&mut conn, from, count.clamp(1, MAX_EXPORT_COUNT)).await?;
        rows.iter()
            .map(|row| {
                let mut entry = audit_entry(&row.did, &row.op)?;
                if let (ExportFrom::SeqAfter(_), Value::Object(map)) = (from, &mut entry) {
                    map.shift_remove("nullified");
                    map.insert("seq".into(), row.seq.into());
                    map.insert("type".into(), "sequenced_op".into());
                }
                Ok(entry)
            })
            .collect()
    }
}

fn audit_entry(did: &str, op: &IndexedOp) -> Result<Value, Error> {
    Ok(json!({
        "did": did,
        "operation": serde_json::to_value(&op.op).map_err(|e| Error::Corrupt(e.to_string()))?,
        "cid": op.cid,
        "nullified": op.nullified,
        "createdAt": format_time(op.created_at_ms),
    }))
}

/// `2024-01-31T12:00:00.000Z`, as JavaScript's `Date.toISOString`.
pub(crate) fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

const DID_CONTEXT: &str = "https://www.w3.org/ns/did/v1";
const MULTIKEY_CONTEXT: &str = "https://w3id.org/security/multikey/v1";
const K256_CONTEXT: &str = "https://w3id.org/security/suites/secp256k1-2019/v1";
const P256_CONTEXT: &str = "https://w3id.org/security/suites/ecdsa-2019/v1";

/// The DID document the directory serves: `Multikey` verification methods with one suite
/// context per key type (first-seen order), services with `#name` ids.
pub(crate) fn format_did_doc(did: &str, state: &PlcOp) -> Value {
    let mut context = vec![DID_CONTEXT, MULTIKEY_CONTEXT];
    let mut methods = Vec::new();
    for (name, key) in &state.verification_methods {
        let suite = PublicKey::from_did_key(key)
            .ok()
            .map(|k| match k.algorithm() {
                Algorithm::K256 => K256_CONTEXT,
                Algorithm::P256 => P256_CONTEXT,
            });
        if let Some(suite) = suite
            && !context.contains(&suite)
        {
            context.push(suite);
        }
        methods.push(json!({
            "id": format!("{did}#{name}"),
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": key.strip_prefix("did:key:").unwrap_or(key),
        }));
    }
    let services: Vec<Value> = state
        .services
        .iter()
        .map(|(name, service)| {
            json!({
                "id": format!("#{name}"),
                "type": service.kind,
                "serviceEndpoint": service.endpoint,
            })
        })
        .collect();
    json!({
        "@context": context,
        "id": did,
        "alsoKnownAs": state.also_known_as,
        "verificationMethod": methods,
        "service": services,
    })
}

impl From<Error> for PlcError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotRegistered(_) => PlcError::NotFound,
            Error::NotAvailable(_) => PlcError::Tombstoned,
            Error::Invalid(message) => PlcError::Rejected(message),
            other => PlcError::Status {
                status: 500,
                message: other.to_string(),
            },
        }
    }
}

/// In-process use by the PDS the directory is embedded in: the same rules and answers as
/// over HTTP.
impl PlcDirectory for Directory {
    fn submit<'a>(&'a self, did: &'a Did, op: &'a SignedOp) -> BoxFuture<'a, Result<(), PlcError>> {
        Box::pin(async move {
            let body =
                serde_json::to_value(op).map_err(|e| PlcError::InvalidResponse(e.to_string()))?;
            Ok(self.submit_json(did.as_str(), &body).await?)
        })
    }

    fn get_data<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<PlcData, PlcError>> {
        Box::pin(async move {
            let state = self.state(did.as_str()).await?;
            Ok(PlcData {
                did: did.clone(),
                rotation_keys: state.rotation_keys,
                verification_methods: state.verification_methods,
                also_known_as: state.also_known_as,
                services: state.services,
            })
        })
    }

    fn get_last_op<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<SignedOp, PlcError>> {
        Box::pin(async move { Ok(self.last_op(did.as_str()).await?) })
    }

    fn get_log<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<Vec<SignedOp>, PlcError>> {
        Box::pin(async move { Ok(self.log(did.as_str()).await?) })
    }

    fn resolve<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<DidDocument, PlcError>> {
        Box::pin(async move {
            let doc = self.document(did.as_str()).await?;
            serde_json::from_value(doc).map_err(|e| PlcError::InvalidResponse(e.to_string()))
        })
    }
}
