//! The repository engine: no HTTP and no SQL in here. Everything is generic over
//! [`blockstore::BlockStore`].

pub mod blockstore;
pub mod car;
pub mod cbor;
pub mod cid;
pub mod commit;
pub mod inspect;
pub mod mst;
pub mod repository;
pub mod verify;
