//! What every store does to an upload while it streams: count, cap, hash, sniff.

use cid::Cid;
use cid::multihash::Multihash;
use sha2::{Digest, Sha256};

use super::sniff;
use super::{Error, Result, TempBlob};
use crate::repo::cid::{RAW, SHA2_256};

/// Running state of one upload.
pub(crate) struct Ingest {
    hasher: Sha256,
    size: u64,
    limit: u64,
    /// The first [`sniff::HEAD_LEN`] bytes, for [`sniff::sniff`].
    head: Vec<u8>,
}

impl Ingest {
    pub(crate) fn new(limit: u64) -> Ingest {
        Ingest {
            hasher: Sha256::new(),
            size: 0,
            limit,
            head: Vec::with_capacity(sniff::HEAD_LEN),
        }
    }

    /// Accounts for the next chunk. Call before storing it: past the limit the chunk is
    /// refused with [`Error::TooLarge`].
    pub(crate) fn update(&mut self, chunk: &[u8]) -> Result<()> {
        let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        let size = self.size.saturating_add(len);
        if size > self.limit {
            return Err(Error::TooLarge { limit: self.limit });
        }
        self.size = size;
        self.hasher.update(chunk);
        let room = sniff::HEAD_LEN.saturating_sub(self.head.len());
        if room > 0 {
            self.head
                .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        }
        Ok(())
    }

    pub(crate) fn finish(self, key: String) -> TempBlob {
        let digest = self.hasher.finalize();
        let hash = Multihash::<64>::wrap(SHA2_256, &digest)
            .expect("a 32-byte digest fits a 64-byte multihash");
        TempBlob {
            key,
            size: self.size,
            cid: Cid::new_v1(RAW, hash),
            sniffed: sniff::sniff(&self.head),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::Sniffed;
    use crate::repo::cid::cid_for_raw;

    #[test]
    fn chunked_hash_equals_whole_hash() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let mut ingest = Ingest::new(10_000);
        for chunk in data.chunks(333) {
            ingest.update(chunk).unwrap();
        }
        let blob = ingest.finish("k".into());
        assert_eq!(blob.cid, cid_for_raw(&data));
        assert_eq!(blob.size, 10_000);
        assert_eq!(blob.sniffed, Sniffed::Binary);
    }

    #[test]
    fn limit_is_inclusive() {
        let mut ingest = Ingest::new(4);
        ingest.update(b"ab").unwrap();
        ingest.update(b"cd").unwrap();
        assert!(matches!(
            ingest.update(b"e"),
            Err(Error::TooLarge { limit: 4 })
        ));
        assert_eq!(ingest.finish(String::new()).size, 4);
    }

    #[test]
    fn head_collects_across_chunks() {
        let mut ingest = Ingest::new(100);
        for b in b"\x89PNG\r\n\x1a\n rest" {
            ingest.update(&[*b]).unwrap();
        }
        assert_eq!(
            ingest.finish(String::new()).sniffed,
            Sniffed::Known("image/png")
        );
    }
}
