//! CID helpers for the two kinds of CID atproto uses: DAG-CBOR and raw, both CIDv1 + SHA-256.

use cid::Cid;
use cid::multihash::Multihash;
use sha2::{Digest, Sha256};

/// Multicodec code of DAG-CBOR (repo nodes, commits, records).
pub(crate) const DAG_CBOR: u64 = 0x71;
/// Multicodec code of raw bytes (blobs).
pub(crate) const RAW: u64 = 0x55;
/// Multihash code of SHA-256.
pub(crate) const SHA2_256: u64 = 0x12;

fn cid_v1(codec: u64, bytes: &[u8]) -> Cid {
    let digest = Sha256::digest(bytes);
    let hash =
        Multihash::<64>::wrap(SHA2_256, &digest).expect("32-byte digest fits a 64-byte multihash");
    Cid::new_v1(codec, hash)
}

/// The CID of a DAG-CBOR block.
pub(crate) fn cid_for_cbor(bytes: &[u8]) -> Cid {
    cid_v1(DAG_CBOR, bytes)
}

/// The CID of a blob (raw codec).
pub fn cid_for_raw(bytes: &[u8]) -> Cid {
    cid_v1(RAW, bytes)
}

/// Whether `bytes` hash to `cid`. Only CIDv1 with SHA-256 is accepted: atproto uses no other
/// hash, and accepting others would let hostile input pick a hash we never check.
pub(crate) fn verify(cid: &Cid, bytes: &[u8]) -> bool {
    cid.version() == cid::Version::V1
        && cid.hash().code() == SHA2_256
        && matches!(cid.codec(), DAG_CBOR | RAW)
        && cid_v1(cid.codec(), bytes) == *cid
}

/// Whether a CID has a form atproto allows in repositories and links (v1, SHA-256, DAG-CBOR or raw).
pub(crate) fn is_atproto_cid(cid: &Cid) -> bool {
    cid.version() == cid::Version::V1
        && cid.hash().code() == SHA2_256
        && cid.hash().size() == 32
        && matches!(cid.codec(), DAG_CBOR | RAW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_cids() {
        // The empty DAG-CBOR map and the empty raw block have well-known CIDs.
        assert_eq!(
            cid_for_cbor(&[0xa0]).to_string(),
            "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua"
        );
        assert_eq!(
            cid_for_raw(b"").to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        assert!(verify(&cid_for_cbor(b"x"), b"x"));
        assert!(!verify(&cid_for_cbor(b"x"), b"y"));
        assert!(!verify(&cid_for_raw(b"x"), b"y"));
    }
}
