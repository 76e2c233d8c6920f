//! The verifying, limit-enforcing CAR v1 reader.

use bytes::Bytes;
use cid::Cid;
use ipld_core::ipld::Ipld;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

use super::{Error, Limits, Location, Result};
use crate::repo::cid::{DAG_CBOR, RAW, SHA2_256, verify};

/// Multiformats unsigned varints are at most 9 bytes (63 bits) and minimally encoded.
const MAX_VARINT_BYTES: usize = 9;
/// Initial buffer for a section: the buffer then grows with the bytes that actually arrive, so a
/// length prefix alone never makes us allocate up to the limit.
const INITIAL_SECTION_CAPACITY: usize = 64 * 1024;

/// Streams the blocks of a CAR v1 file, checking each block's hash against its CID.
///
/// Every limit of [`Limits`] is enforced before the bytes it guards are buffered. Accepted
/// CIDs are those atproto allows (CIDv1, SHA-256 with a 32-byte digest, DAG-CBOR or raw);
/// anything else is an error rather than a block we could not check. Unknown keys in the
/// header are ignored, as other CAR readers do. After an error the reader is unusable and
/// returns [`Error::ReaderFailed`].
#[derive(Debug)]
pub struct CarReader<R> {
    reader: BufReader<R>,
    limits: Limits,
    roots: Vec<Cid>,
    bytes_read: u64,
    blocks_read: usize,
    state: State,
}

/// How many roots a header must list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RootPolicy {
    /// At least one ([`Error::EmptyRoots`] otherwise): repositories, proofs, commit slices.
    #[default]
    AtLeastOne,
    /// Any number, none included: block sets such as `sync.getBlocks` answers.
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Done,
    Failed,
}

impl<R: AsyncRead + Unpin + Send> CarReader<R> {
    /// Reads and checks the header: version 1 and a non-empty list of atproto CIDs as roots.
    pub async fn new(reader: R, limits: Limits) -> Result<Self> {
        Self::with_root_policy(reader, limits, RootPolicy::AtLeastOne).await
    }

    /// As [`new`](Self::new), with `policy` deciding whether a header without roots is valid.
    pub async fn with_root_policy(reader: R, limits: Limits, policy: RootPolicy) -> Result<Self> {
        let mut this = Self {
            reader: BufReader::new(reader),
            limits,
            roots: Vec::new(),
            bytes_read: 0,
            blocks_read: 0,
            state: State::Reading,
        };
        let Some(len) = this.read_varint(Location::Header).await? else {
            return Err(Error::Empty);
        };
        if len == 0 {
            return Err(Error::EmptyHeaderSection);
        }
        if len > limits.max_header_len as u64 {
            return Err(Error::HeaderTooLong {
                len,
                limit: limits.max_header_len,
            });
        }
        let header = this.read_section(Location::Header, len).await?;
        this.roots = parse_header(&header, policy)?;
        Ok(this)
    }

    /// The roots listed in the header (atproto: one, the commit CID; none in a block set).
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// Sections read so far.
    pub fn blocks_read(&self) -> usize {
        self.blocks_read
    }

    /// Bytes consumed so far, header included.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next block in file order, verified, or `None` at a clean end of the file.
    pub async fn next_block(&mut self) -> Result<Option<(Cid, Bytes)>> {
        match self.state {
            State::Reading => {}
            State::Done => return Ok(None),
            State::Failed => return Err(Error::ReaderFailed),
        }
        match self.read_block().await {
            Ok(Some(block)) => {
                self.blocks_read += 1;
                Ok(Some(block))
            }
            Ok(None) => {
                self.state = State::Done;
                Ok(None)
            }
            Err(error) => {
                self.state = State::Failed;
                Err(error)
            }
        }
    }

    async fn read_block(&mut self) -> Result<Option<(Cid, Bytes)>> {
        let at = Location::Block(self.blocks_read);
        let Some(len) = self.read_varint(at).await? else {
            return Ok(None);
        };
        if let Some(limit) = self.limits.max_blocks
            && self.blocks_read >= limit
        {
            return Err(Error::TooManyBlocks { limit });
        }
        if len == 0 {
            return Err(Error::ZeroLengthSection { at });
        }
        if len > self.limits.max_block_len as u64 {
            return Err(Error::SectionTooLong {
                at,
                len,
                limit: self.limits.max_block_len,
            });
        }
        let section = Bytes::from(self.read_section(at, len).await?);

        let mut cursor = std::io::Cursor::new(&section[..]);
        let cid =
            Cid::read_bytes(&mut cursor).map_err(|source| Error::InvalidCid { at, source })?;
        let cid_len = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
        if cid_len > section.len() {
            // Cannot happen with a Cursor over `section`; kept so no slice below can panic.
            return Err(Error::Truncated {
                at,
                expected: cid_len as u64,
                got: section.len() as u64,
            });
        }
        if let Some(reason) = unsupported_reason(&cid) {
            return Err(Error::UnsupportedCid {
                at,
                cid: Box::new(cid),
                reason,
            });
        }
        let data = section.slice(cid_len..);
        if !verify(&cid, &data) {
            return Err(Error::HashMismatch {
                at,
                cid: Box::new(cid),
            });
        }
        Ok(Some((cid, data)))
    }

    /// Reads `len` bytes, growing the buffer only as bytes arrive.
    async fn read_section(&mut self, at: Location, len: u64) -> Result<Vec<u8>> {
        self.charge(at, len)?;
        let capacity = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .min(INITIAL_SECTION_CAPACITY);
        let mut buf = Vec::with_capacity(capacity);
        (&mut self.reader).take(len).read_to_end(&mut buf).await?;
        if buf.len() as u64 != len {
            return Err(Error::Truncated {
                at,
                expected: len,
                got: buf.len() as u64,
            });
        }
        Ok(buf)
    }

    /// Counts `len` more bytes against `max_total_len`.
    fn charge(&mut self, at: Location, len: u64) -> Result<()> {
        let total = self.bytes_read.saturating_add(len);
        if let Some(limit) = self.limits.max_total_len
            && total > limit
        {
            return Err(Error::TotalTooLong { at, limit });
        }
        self.bytes_read = total;
        Ok(())
    }

    /// An unsigned LEB128 varint; `None` when the input ends before its first byte.
    async fn read_varint(&mut self, at: Location) -> Result<Option<u64>> {
        let mut value = 0u64;
        for i in 0..MAX_VARINT_BYTES {
            let mut byte = [0u8; 1];
            if self.reader.read(&mut byte).await? == 0 {
                if i == 0 {
                    return Ok(None);
                }
                return Err(Error::TruncatedVarint { at });
            }
            let [byte] = byte;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if byte == 0 && i > 0 {
                    return Err(Error::VarintNotMinimal { at });
                }
                self.charge(at, i as u64 + 1)?;
                return Ok(Some(value));
            }
        }
        Err(Error::VarintTooLong { at })
    }
}

/// Why a CID is not one atproto allows, or `None` when it is fine.
fn unsupported_reason(cid: &Cid) -> Option<String> {
    if cid.version() == cid::Version::V0 {
        return Some("CIDv0 (atproto uses CIDv1 only)".to_owned());
    }
    let hash = cid.hash();
    if hash.code() != SHA2_256 {
        return Some(format!(
            "hash function 0x{:x} is not SHA-256 (0x12)",
            hash.code()
        ));
    }
    if hash.size() != 32 {
        return Some(format!("SHA-256 digest is {} bytes, not 32", hash.size()));
    }
    if !matches!(cid.codec(), DAG_CBOR | RAW) {
        return Some(format!(
            "codec 0x{:x} is neither dag-cbor (0x71) nor raw (0x55)",
            cid.codec()
        ));
    }
    None
}

fn parse_header(bytes: &[u8], policy: RootPolicy) -> Result<Vec<Cid>> {
    let header: Ipld = serde_ipld_dagcbor::from_slice(bytes).map_err(Error::HeaderCbor)?;
    let Ipld::Map(map) = header else {
        return Err(Error::HeaderShape("not a map".to_owned()));
    };
    // The version decides how to read the rest (a CARv2 pragma has no roots), so check it first.
    match map.get("version") {
        Some(Ipld::Integer(1)) => {}
        Some(Ipld::Integer(version)) => return Err(Error::UnsupportedVersion(*version)),
        Some(_) => return Err(Error::HeaderShape("`version` is not an integer".to_owned())),
        None => return Err(Error::HeaderShape("`version` is missing".to_owned())),
    }
    let roots = match map.get("roots") {
        Some(Ipld::List(roots)) => roots,
        Some(_) => return Err(Error::HeaderShape("`roots` is not a list".to_owned())),
        None => return Err(Error::HeaderShape("`roots` is missing".to_owned())),
    };
    if roots.is_empty() && policy == RootPolicy::AtLeastOne {
        return Err(Error::EmptyRoots);
    }
    roots
        .iter()
        .enumerate()
        .map(|(index, root)| match root {
            Ipld::Link(cid) => match unsupported_reason(cid) {
                None => Ok(*cid),
                Some(reason) => Err(Error::UnsupportedRoot {
                    index,
                    cid: Box::new(*cid),
                    reason,
                }),
            },
            _ => Err(Error::HeaderShape(format!(
                "root {index} is not a CID link"
            ))),
        })
        .collect()
}
