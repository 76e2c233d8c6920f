//! `did:plc`: operations ([`op`]) and the PLC directory ([`PlcDirectory`], [`PlcClient`]).

mod client;
mod op;

#[cfg(test)]
mod tests;

pub use client::PlcClient;
pub use op::{
    ATPROTO_KEY_ID, LegacyCreateOp, MAX_OP_BYTES, MAX_ROTATION_KEYS, PDS_SERVICE_ID,
    PDS_SERVICE_TYPE, PlcChanges, PlcData, PlcOp, Service, SignedOp, TombstoneOp, UnsignedOp,
    create_genesis, did_for_genesis, replace_op, tombstone_op, update_op, verify_genesis,
    verify_log,
};

use futures::future::BoxFuture;

use crate::identity::did_doc::DidDocument;
use crate::syntax::Did;

/// Why an operation could not be built, read or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// DAG-CBOR encoding or strict decoding failed (the cbor error, as text).
    #[error("operation encoding: {0}")]
    Encoding(String),
    #[error("signed operation is {0} bytes of DAG-CBOR, over the {MAX_OP_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("an operation needs 1 to {MAX_ROTATION_KEYS} rotation keys, got {0}")]
    RotationKeyCount(usize),
    #[error("a rotation key is listed twice")]
    DuplicateRotationKey,
    #[error("invalid key: {0}")]
    Key(#[from] crate::crypto::Error),
    #[error("service endpoint must be an http or https URL")]
    InvalidEndpoint,
    #[error("the signer is not one of the authorising rotation keys")]
    SignerNotRotationKey,
    #[error("signature is not base64url without padding")]
    SigEncoding,
    #[error("no rotation key verifies the signature")]
    BadSignature,
    #[error("the previous operation is a tombstone")]
    Tombstoned,
    #[error("not a genesis operation (tombstone, or prev is not null)")]
    NotGenesis,
    #[error("genesis operation hashes to {0}, not the expected DID")]
    DidMismatch(Did),
    #[error("could not derive a DID from the genesis hash")]
    DidDerivation,
    #[error("operation log is empty")]
    EmptyLog,
    #[error("operation log is out of order (prev does not point at the previous operation)")]
    BrokenChain,
}

impl From<crate::repo::cbor::Error> for OpError {
    fn from(e: crate::repo::cbor::Error) -> Self {
        OpError::Encoding(e.to_string())
    }
}

/// A PLC directory request that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlcError {
    /// 404: the directory does not know this DID.
    #[error("DID not registered in the PLC directory")]
    NotFound,
    /// 410: the DID was deactivated with a tombstone.
    #[error("DID is tombstoned")]
    Tombstoned,
    /// 400: the directory refused the operation; the directory's message.
    #[error("PLC directory rejected the operation: {0}")]
    Rejected(String),
    /// Any other non-success status.
    #[error("PLC directory answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    /// Connection, timeout or body-read failure.
    #[error("PLC directory request failed: {0}")]
    Transport(String),
    /// A success answer we could not read.
    #[error("unreadable PLC directory answer: {0}")]
    InvalidResponse(String),
    /// Only `did:plc` DIDs live in a PLC directory.
    #[error("not a did:plc DID")]
    NotPlc,
    #[error("invalid PLC directory URL: {0}")]
    BadUrl(String),
}

/// A PLC directory. Object safe, so services hold an `Arc<dyn PlcDirectory>` and tests can
/// point it at a real local directory.
pub trait PlcDirectory: Send + Sync {
    /// Posts a signed operation (genesis, update or tombstone) for `did`.
    fn submit<'a>(&'a self, did: &'a Did, op: &'a SignedOp) -> BoxFuture<'a, Result<(), PlcError>>;
    /// The current state (`/<did>/data`).
    fn get_data<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<PlcData, PlcError>>;
    /// The most recent valid operation (`/<did>/log/last`); needed to chain an update.
    fn get_last_op<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<SignedOp, PlcError>>;
    /// The valid operations, oldest first (`/<did>/log`).
    fn get_log<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<Vec<SignedOp>, PlcError>>;
    /// The DID document (`/<did>`).
    fn resolve<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<DidDocument, PlcError>>;
}
