//! Identity: `did:plc` operations and the PLC directory, `did:web`, DID documents, handle
//! resolution, and the bidirectional handle ↔ DID check that ties them together.
//!
//! - [`plc`]: build, sign and verify `did:plc` operations; derive the DID of a genesis
//!   operation; talk to a PLC directory through the object-safe [`plc::PlcDirectory`] trait
//!   (real HTTP client: [`plc::PlcClient`]).
//! - [`did_doc`]: read the atproto parts of a DID document (signing key in the current
//!   `Multikey` and the legacy forms, declared handle, PDS endpoint).
//! - [`did_web`]: resolve `did:web:<host>` through `https://<host>/.well-known/did.json`.
//! - [`handle`]: resolve a handle to a DID through DNS TXT and HTTPS well-known, with
//!   timeouts, size caps and SSRF protection.
//! - [`resolver`]: [`resolver::IdResolver`], DID + handle resolution with bidirectional
//!   verification and a small TTL cache.
//!
//! Outbound fetches to hosts named by users (handles, `did:web`) go through
//! [`net::GuardedHttp`], which refuses private and local addresses at connect time.

pub mod did_doc;
pub mod did_web;
pub mod handle;
pub mod net;
pub mod plc;
pub mod reserved;
pub mod resolver;

#[cfg(test)]
mod test_server;

pub use did_doc::DidDocument;
pub use did_web::DidWebResolver;
pub use handle::{HandleResolver, HandleResolverConfig, TxtLookup};
pub use plc::{PlcClient, PlcDirectory, SignedOp};
pub use resolver::{IdResolver, Identity};
