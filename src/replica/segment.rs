//! The segment file: the pages of one database that changed in one cycle.
//!
//! Layout: `RKSEG001`, page size, page count after the segment (u32 big-endian each), then
//! `(page number u32, page bytes)` entries, then the number of entries (u32) and the
//! SHA-256 of everything before it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"RKSEG001";
const HEADER: usize = 16;
const TRAILER: usize = 4 + 32;

/// Writes a segment to a file.
pub(crate) struct SegmentWriter {
    out: BufWriter<File>,
    hasher: Sha256,
    entries: u32,
    bytes: u64,
}

impl SegmentWriter {
    pub fn create(path: &Path, page_size: u32, page_count: u32) -> io::Result<SegmentWriter> {
        let mut writer = SegmentWriter {
            out: BufWriter::with_capacity(256 * 1024, File::create(path)?),
            hasher: Sha256::new(),
            entries: 0,
            bytes: 0,
        };
        writer.put(MAGIC)?;
        writer.put(&page_size.to_be_bytes())?;
        writer.put(&page_count.to_be_bytes())?;
        Ok(writer)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    pub fn page(&mut self, pgno: u32, data: &[u8]) -> io::Result<()> {
        self.entries += 1;
        self.put(&pgno.to_be_bytes())?;
        self.put(data)
    }

    pub fn entries(&self) -> u32 {
        self.entries
    }

    /// Finishes the file (fsync not needed: it is uploaded, then deleted). Returns its size.
    pub fn finish(mut self) -> io::Result<u64> {
        let entries = self.entries;
        self.put(&entries.to_be_bytes())?;
        let digest = std::mem::take(&mut self.hasher).finalize();
        self.out.write_all(&digest)?;
        self.out.flush()?;
        Ok(self.bytes + 32)
    }
}

/// Why a segment could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("not a segment (bad magic or length)")]
    Format,
    #[error("segment checksum mismatch")]
    Checksum,
    #[error("segment page size {found} differs from the database's {expected}")]
    PageSize { expected: u32, found: u32 },
    #[error("segment I/O: {0}")]
    Io(#[from] io::Error),
}

/// Applies the segment `bytes` to the database file `target`. Returns its page size.
/// `expected_page_size` is the page size of the segments applied before, if any.
pub(crate) fn apply(
    bytes: &[u8],
    target: &File,
    expected_page_size: Option<u32>,
) -> Result<u32, SegmentError> {
    if bytes.len() < HEADER + TRAILER || &bytes[..8] != MAGIC {
        return Err(SegmentError::Format);
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body)[..] != *digest {
        return Err(SegmentError::Checksum);
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let page_size = be(&body[8..12]);
    let page_count = be(&body[12..16]);
    let entries = be(&body[body.len() - 4..]) as usize;
    if let Some(expected) = expected_page_size
        && expected != page_size
    {
        return Err(SegmentError::PageSize {
            expected,
            found: page_size,
        });
    }
    let entry = 4 + page_size as usize;
    if page_size == 0 || body.len() != HEADER + entries * entry + 4 {
        return Err(SegmentError::Format);
    }
    for k in 0..entries {
        let at = HEADER + k * entry;
        let pgno = be(&body[at..at + 4]);
        if pgno == 0 || pgno > page_count {
            return Err(SegmentError::Format);
        }
        let offset = u64::from(pgno - 1) * u64::from(page_size);
        target.write_all_at(&body[at + 4..at + entry], offset)?;
    }
    target.set_len(u64::from(page_count) * u64::from(page_size))?;
    Ok(page_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let seg = dir.path().join("s");
        let mut w = SegmentWriter::create(&seg, 512, 3).unwrap();
        w.page(3, &[3u8; 512]).unwrap();
        w.page(1, &[1u8; 512]).unwrap();
        let size = w.finish().unwrap();
        let bytes = std::fs::read(&seg).unwrap();
        assert_eq!(size, bytes.len() as u64);
        let target = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("db"))
            .unwrap();
        assert_eq!(apply(&bytes, &target, None).unwrap(), 512);
        let db = std::fs::read(dir.path().join("db")).unwrap();
        assert_eq!(db.len(), 3 * 512);
        assert_eq!(db[0], 1);
        assert_eq!(db[512], 0);
        assert_eq!(db[1024], 3);
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(matches!(
            apply(&bad, &target, None),
            Err(SegmentError::Checksum)
        ));
        assert!(matches!(
            apply(&bytes, &target, Some(4096)),
            Err(SegmentError::PageSize { .. })
        ));
    }
}
