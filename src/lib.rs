//! Rookery: an AT Protocol Personal Data Server.
//!
//! Layers, with dependencies pointing down only:
//! - [`syntax`]: typed atproto identifiers (DID, handle, NSID, TID, record key, AT-URI, …);
//! - [`crypto`]: secp256k1 / P-256 keys, `did:key`, low-S signatures;
//! - [`repo`]: the repository engine (DAG-CBOR, CIDs, MST, commits, CAR), storage-agnostic;
//! - [`store`]: SQLite persistence (the block store behind the repo engine).

pub mod crypto;
pub mod identity;
pub mod repo;
pub mod store;
pub mod syntax;
