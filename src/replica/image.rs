//! A consistent page image of a WAL-mode SQLite database, read from its files.
//!
//! The caller holds a read transaction on the database while a [`PageImage`] is open: SQLite
//! then neither checkpoints past that reader nor restarts the WAL, so the main file plus the
//! WAL's committed frames stay a stable picture (see `docs/replication.md`). The WAL is
//! validated as SQLite does it: magic, header checksum, each frame's salts and the
//! cumulative checksum; frames after the last valid commit frame are ignored.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

const WAL_MAGIC: u32 = 0x377f_0682;
const WAL_HEADER: u64 = 32;
const FRAME_HEADER: u64 = 24;

/// The WAL's identity: its salts, changed by SQLite at every restart of the log.
pub(crate) type WalSalt = [u8; 8];

/// One database's pages as of its last committed transaction.
pub(crate) struct PageImage {
    db: File,
    wal: Option<File>,
    pub page_size: u32,
    pub page_count: u32,
    /// Page number → offset in the WAL of its newest committed frame's data.
    wal_pages: HashMap<u32, u64>,
    /// The WAL's salts, when it has a valid header.
    pub wal_salt: Option<WalSalt>,
    /// Valid committed frames in the WAL.
    pub wal_frames: u64,
    /// Page numbers of committed frames after the first `since` frames, in frame order
    /// (see [`PageImage::open`]).
    pub wal_pages_since: Vec<u32>,
}

fn u32_be(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// SQLite's WAL checksum over `data` (a multiple of 8 bytes), continuing from `s`.
fn checksum(big_endian: bool, data: &[u8], s: (u32, u32)) -> (u32, u32) {
    let (mut s0, mut s1) = s;
    for pair in data.chunks_exact(8) {
        let (x0, x1) = if big_endian {
            (u32_be(&pair[0..4]), u32_be(&pair[4..8]))
        } else {
            (
                u32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]),
                u32::from_le_bytes([pair[4], pair[5], pair[6], pair[7]]),
            )
        };
        s0 = s0.wrapping_add(x0).wrapping_add(s1);
        s1 = s1.wrapping_add(x1).wrapping_add(s0);
    }
    (s0, s1)
}

fn page_size_field(raw: u32) -> Option<u32> {
    let size = if raw == 1 { 65_536 } else { raw };
    (size.is_power_of_two() && (512..=65_536).contains(&size)).then_some(size)
}

struct WalIndex {
    page_size: u32,
    salt: WalSalt,
    frames: u64,
    db_pages: Option<u32>,
    pages: HashMap<u32, u64>,
    since: Vec<u32>,
}

/// Reads the WAL's committed frames. `None` when the file holds no valid log.
fn index_wal(wal: &mut File, since: u64) -> io::Result<Option<WalIndex>> {
    let mut bytes = Vec::new();
    wal.read_to_end(&mut bytes)?;
    if (bytes.len() as u64) < WAL_HEADER {
        return Ok(None);
    }
    let header = &bytes[..WAL_HEADER as usize];
    let magic = u32_be(&header[0..4]);
    if magic & !1 != WAL_MAGIC {
        return Ok(None);
    }
    let big_endian = magic & 1 == 1;
    let Some(page_size) = page_size_field(u32_be(&header[8..12])) else {
        return Ok(None);
    };
    let sum = checksum(big_endian, &header[..24], (0, 0));
    if sum != (u32_be(&header[24..28]), u32_be(&header[28..32])) {
        return Ok(None);
    }
    let mut salt = [0u8; 8];
    salt.copy_from_slice(&header[16..24]);
    let frame_len = (FRAME_HEADER + u64::from(page_size)) as usize;
    let mut index = WalIndex {
        page_size,
        salt,
        frames: 0,
        db_pages: None,
        pages: HashMap::new(),
        since: Vec::new(),
    };
    let mut pending: Vec<(u32, u64)> = Vec::new();
    let mut sum = sum;
    let mut offset = WAL_HEADER as usize;
    let mut frame_no = 0u64;
    let mut committed: Vec<u32> = Vec::new();
    while offset + frame_len <= bytes.len() {
        let frame = &bytes[offset..offset + frame_len];
        if frame[8..16] != salt {
            break;
        }
        let next = checksum(big_endian, &frame[..8], sum);
        let next = checksum(big_endian, &frame[FRAME_HEADER as usize..], next);
        if next != (u32_be(&frame[16..20]), u32_be(&frame[20..24])) {
            break;
        }
        sum = next;
        frame_no += 1;
        let pgno = u32_be(&frame[0..4]);
        if pgno == 0 {
            break;
        }
        pending.push((pgno, offset as u64 + FRAME_HEADER));
        let db_pages = u32_be(&frame[4..8]);
        if db_pages != 0 {
            // A commit frame: everything pending is now part of the database.
            for (pgno, data) in pending.drain(..) {
                index.pages.insert(pgno, data);
                committed.push(pgno);
            }
            index.frames = frame_no;
            index.db_pages = Some(db_pages);
        }
        offset += frame_len;
    }
    let since = usize::try_from(since)
        .unwrap_or(usize::MAX)
        .min(committed.len());
    index.since = committed.split_off(since);
    Ok(Some(index))
}

impl PageImage {
    /// Opens the image of the database at `path` (and `path-wal`). `since` is a number of
    /// WAL frames already seen: the pages of later committed frames are listed in
    /// [`PageImage::wal_pages_since`]. `None` when the database file does not exist.
    pub fn open(path: &Path, since: u64) -> io::Result<Option<PageImage>> {
        let db = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let db_len = db.metadata()?.len();
        let mut header = [0u8; 100];
        let db_page_size = if db_len >= 100 {
            db.read_exact_at(&mut header, 0)?;
            page_size_field(u32::from(u16::from_be_bytes([header[16], header[17]])))
        } else {
            None
        };
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        let (wal, index) = match File::open(&wal_path) {
            Ok(mut file) => {
                let index = index_wal(&mut file, since)?;
                (Some(file), index)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (None, None),
            Err(e) => return Err(e),
        };
        let index = index.filter(|i| db_page_size.is_none_or(|size| size == i.page_size));
        let page_size = match (&index, db_page_size) {
            (Some(index), _) => index.page_size,
            (None, Some(size)) => size,
            (None, None) => {
                return Ok(Some(PageImage {
                    db,
                    wal: None,
                    page_size: 4096,
                    page_count: 0,
                    wal_pages: HashMap::new(),
                    wal_salt: None,
                    wal_frames: 0,
                    wal_pages_since: Vec::new(),
                }));
            }
        };
        let page_count = match index.as_ref().and_then(|i| i.db_pages) {
            Some(n) => n,
            None => u32::try_from(db_len / u64::from(page_size)).unwrap_or(u32::MAX),
        };
        Ok(Some(match index {
            Some(index) => PageImage {
                db,
                wal,
                page_size,
                page_count,
                wal_pages: index.pages,
                wal_salt: Some(index.salt),
                wal_frames: index.frames,
                wal_pages_since: index.since,
            },
            None => PageImage {
                db,
                wal: None,
                page_size,
                page_count,
                wal_pages: HashMap::new(),
                wal_salt: None,
                wal_frames: 0,
                wal_pages_since: Vec::new(),
            },
        }))
    }

    /// Reads page `pgno` (1-based) into `buf` (`page_size` bytes).
    pub fn read_page(&self, pgno: u32, buf: &mut [u8]) -> io::Result<()> {
        if let (Some(offset), Some(wal)) = (self.wal_pages.get(&pgno), &self.wal) {
            return wal.read_exact_at(buf, *offset);
        }
        let offset = u64::from(pgno - 1) * u64::from(self.page_size);
        match self.db.read_exact_at(buf, offset) {
            // A page past the end of the main file that no frame holds: never written.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                buf.fill(0);
                Ok(())
            }
            other => other,
        }
    }
}
