//! The streaming CAR v1 writer.

use cid::Cid;
use iroh_car::CarHeader;
use tokio::io::{AsyncWrite, BufWriter};

use super::{Error, Result};

/// Bytes gathered before a write reaches the underlying stream: a repository export is
/// mostly sections of a few hundred bytes.
const WRITE_BUFFER: usize = 64 * 1024;

/// Writes a CAR v1 file block by block: with one root (repositories, proofs, firehose slices)
/// or none (`sync.getBlocks`, whose blocks are a set without an entry point).
///
/// A thin layer over iroh-car's writer (which encodes the header and sections the way the
/// CAR spec and the atproto fixtures expect), adding a write buffer, so small sections do not
/// each become a write on the underlying stream, and making [`finish`](Self::finish) emit the
/// header even when no block was written (iroh-car writes it lazily with the first block).
/// Blocks are written as given: the caller is trusted to pass CIDs that match their bytes.
pub struct CarWriter<W: AsyncWrite + Unpin + Send> {
    inner: iroh_car::CarWriter<BufWriter<W>>,
}

impl<W: AsyncWrite + Unpin + Send> CarWriter<W> {
    /// A writer whose header lists `root` as the only root. Nothing is written until the first
    /// block or [`finish`](Self::finish).
    pub fn new(writer: W, root: Cid) -> Self {
        Self {
            inner: iroh_car::CarWriter::new(
                CarHeader::new_v1(vec![root]),
                BufWriter::with_capacity(WRITE_BUFFER, writer),
            ),
        }
    }

    /// A writer whose header lists no root: `{roots: [], version: 1}`, as the reference PDS
    /// writes block sets. The CAR v1 specification leaves the number of roots open (readers
    /// such as iroh-car's insist on one; ours accepts none only when asked, see
    /// [`RootPolicy`](super::RootPolicy)).
    pub(crate) fn without_roots(writer: W) -> Self {
        Self {
            inner: iroh_car::CarWriter::new(
                CarHeader::new_v1(Vec::new()),
                BufWriter::with_capacity(WRITE_BUFFER, writer),
            ),
        }
    }

    /// Appends one section: `varint(len) ‖ cid ‖ bytes`.
    pub async fn write_block(&mut self, cid: &Cid, bytes: &[u8]) -> Result<()> {
        self.inner.write(*cid, bytes).await.map_err(Error::Write)?;
        Ok(())
    }

    /// Writes the header if no block did, flushes everything, and hands back the writer (not
    /// shut down: closing it is the caller's choice).
    pub async fn finish(mut self) -> Result<W> {
        self.inner.write_header().await.map_err(Error::Write)?;
        let buffered = self.inner.finish().await.map_err(Error::Write)?;
        Ok(buffered.into_inner())
    }
}
