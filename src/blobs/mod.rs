//! Blob storage: uploaded media, addressed by the CID of their bytes.
//!
//! An upload first lands under a random *temp key* ([`BlobStore::put_temp`]); when a record
//! referencing it is committed, [`BlobStore::make_permanent`] moves it to its CID. Temp
//! uploads that never become permanent are garbage (found with
//! [`BlobStore::list_temp_older_than`]).
//!
//! The layout is the reference PDS's, so an operator's existing directory or bucket keeps
//! working:
//!
//! | what | disk ([`DiskBlobStore`]) | S3 ([`S3BlobStore`]) |
//! | --- | --- | --- |
//! | permanent | `<location>/<did>/<cid>` | `blocks/<did>/<cid>` |
//! | temporary | `<tmp_location>/<did>/<key>` | `tmp/<did>/<key>` |
//! | taken down | `<location>/quarantine/<did>/<cid>` | `quarantine/<did>/<cid>` |
//!
//! Every path or key is built from a parsed [`Did`], a [`Cid`] re-stringified by the `cid`
//! crate, and a temp key checked by [`check_temp_key`]; each segment is checked again
//! where it is joined, so nothing can name a location outside the store.

pub mod disk;
mod ingest;
pub mod metered;
pub mod s3;
pub mod sniff;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use cid::Cid;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use rand::Rng;

use crate::config::BlobstoreConfig;
use crate::syntax::Did;

pub use disk::DiskBlobStore;
pub use metered::{BlobCounter, BlobCounts, MeteredBlobStore};
pub use s3::S3BlobStore;
pub use sniff::Sniffed;

/// A stream of byte chunks: the body of an upload, or of a blob being read.
pub type ByteStream = BoxStream<'static, Result<Bytes, io::Error>>;

/// Errors of the blob stores.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such blob (or temp upload).
    #[error("blob not found")]
    NotFound,
    /// The upload went past the size limit; nothing of it was kept.
    #[error("blob is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// A temp key or path segment that could name something outside the store.
    #[error("invalid blob store key: {0}")]
    InvalidKey(&'static str),
    /// The requested byte range lies outside the blob (HTTP 416).
    #[error("range not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    /// The upload stream itself failed (client disconnect, body error); nothing was kept.
    #[error("upload stream failed: {0}")]
    Stream(#[source] io::Error),
    /// Local file system failure.
    #[error("blob store I/O error: {0}")]
    Io(#[source] io::Error),
    /// An S3 request failed after the client's own retries.
    #[error("S3 {operation} failed: {message}")]
    S3 {
        operation: &'static str,
        /// Whether trying again later may succeed (timeouts, throttling, 5xx).
        retriable: bool,
        message: String,
    },
}

impl Error {
    /// Whether the same call may succeed later: S3 timeouts, throttling and server
    /// errors, and interrupted local I/O.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::S3 { retriable, .. } => *retriable,
            Error::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// A freshly uploaded blob, not yet referenced by any record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TempBlob {
    /// Where it waits: pass it to [`BlobStore::make_permanent`] or [`BlobStore::delete_temp`].
    pub key: String,
    /// Length in bytes.
    pub size: u64,
    /// Raw-codec CID of the bytes, hashed while they streamed.
    pub cid: Cid,
    /// What the first bytes look like; see [`sniff::resolve_mime`].
    pub sniffed: Sniffed,
}

/// A requested byte range, as in an HTTP `Range` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=start-end`, both inclusive.
    FromTo(u64, u64),
    /// `bytes=start-`: from `start` to the end.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The inclusive `(first, last)` offsets this range selects in a blob of `size` bytes,
    /// clamped to the blob as HTTP does, or `None` if it selects nothing.
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        let last = size.checked_sub(1)?;
        match self {
            ByteRange::FromTo(start, end) if start <= end && start <= last => {
                Some((start, end.min(last)))
            }
            ByteRange::From(start) if start <= last => Some((start, last)),
            ByteRange::Suffix(n) if n > 0 => Some((size - n.min(size), last)),
            _ => None,
        }
    }

    /// The value of an HTTP/S3 `Range` header for this range.
    pub fn header_value(self) -> String {
        match self {
            ByteRange::FromTo(start, end) => format!("bytes={start}-{end}"),
            ByteRange::From(start) => format!("bytes={start}-"),
            ByteRange::Suffix(n) => format!("bytes=-{n}"),
        }
    }
}

/// A blob (or part of it) being read.
pub struct BlobStream {
    /// Length of the whole blob.
    pub size: u64,
    /// The inclusive range served, when one was requested (for `Content-Range`).
    pub range: Option<(u64, u64)>,
    /// The bytes: the range if one was requested, the whole blob otherwise.
    pub stream: ByteStream,
}

impl BlobStream {
    /// How many bytes [`BlobStream::stream`] yields (for `Content-Length`).
    pub fn len(&self) -> u64 {
        match self.range {
            Some((first, last)) => last - first + 1,
            None => self.size,
        }
    }

    /// Whether the stream yields no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStream")
            .field("size", &self.size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// A temp upload, as listed for garbage collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TempEntry {
    pub did: Did,
    pub key: String,
    /// When it was last written.
    pub modified: SystemTime,
}

/// Where blobs live. Object-safe: the server holds an `Arc<dyn BlobStore>`.
///
/// Deleting something already gone succeeds; reading or moving it gives
/// [`Error::NotFound`].
pub trait BlobStore: Send + Sync {
    /// Streams an upload to a new temp key, hashing it and sniffing its type on the way,
    /// and never holding more than one S3 part (or one chunk, on disk) in memory. Past
    /// `max_size` bytes it stops with [`Error::TooLarge`]; on that or any other failure
    /// (including a failing `data` stream, [`Error::Stream`]) nothing is left behind.
    fn put_temp<'a>(
        &'a self,
        did: &'a Did,
        data: ByteStream,
        max_size: u64,
    ) -> BoxFuture<'a, Result<TempBlob>>;

    /// Moves a temp upload to its permanent place under `cid` (the CID that
    /// [`BlobStore::put_temp`] reported). Idempotent: when the blob is already permanent
    /// the temp upload is just dropped; [`Error::NotFound`] only if neither exists.
    fn make_permanent<'a>(
        &'a self,
        did: &'a Did,
        temp_key: &'a str,
        cid: &'a Cid,
    ) -> BoxFuture<'a, Result<()>>;

    /// Reads a permanent blob, or the part of it `range` selects
    /// ([`Error::RangeNotSatisfiable`] if it selects nothing).
    fn get<'a>(
        &'a self,
        did: &'a Did,
        cid: &'a Cid,
        range: Option<ByteRange>,
    ) -> BoxFuture<'a, Result<BlobStream>>;

    /// Whether a permanent blob exists.
    fn has<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<bool>>;

    /// Whether a temp upload exists.
    fn has_temp<'a>(&'a self, did: &'a Did, temp_key: &'a str) -> BoxFuture<'a, Result<bool>>;

    /// Deletes a permanent blob.
    fn delete<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<()>>;

    /// Deletes several permanent blobs of one account.
    fn delete_many<'a>(&'a self, did: &'a Did, cids: &'a [Cid]) -> BoxFuture<'a, Result<()>>;

    /// Deletes a temp upload.
    fn delete_temp<'a>(&'a self, did: &'a Did, temp_key: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Moves a permanent blob aside (takedown): it can no longer be read.
    fn quarantine<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<()>>;

    /// Reverses [`BlobStore::quarantine`].
    fn unquarantine<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<()>>;

    /// Up to `limit` temp uploads, of any account, last written before `cutoff`: the
    /// candidates for garbage collection (which must still check that no blob row points
    /// at them). Entries that are not a valid DID and key are skipped.
    fn list_temp_older_than<'a>(
        &'a self,
        cutoff: SystemTime,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<TempEntry>>>;

    /// Deletes everything of one account: permanent, temp and quarantined (account
    /// deletion).
    fn delete_all<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<()>>;

    /// Bytes of the permanent (and quarantined) blobs stored, for the operator dashboard:
    /// walks the whole store, so not for hot paths.
    fn stored_bytes(&self) -> BoxFuture<'_, Result<u64>>;

    /// A cheap check that the store can be used (the health check): on disk, that its
    /// directories (or, before the first upload, their nearest existing ancestors) are
    /// writable directories; on S3, that the bucket answers.
    fn probe(&self) -> BoxFuture<'_, Result<()>>;
}

/// Opens the configured store. For disk, the directories are created when first written.
pub(crate) async fn open(config: &BlobstoreConfig) -> Result<Arc<dyn BlobStore>> {
    Ok(match config {
        BlobstoreConfig::Disk {
            location,
            tmp_location,
        } => Arc::new(DiskBlobStore::new(location, tmp_location)),
        BlobstoreConfig::S3(s3) => Arc::new(S3BlobStore::new(s3).await),
    })
}

/// Longest temp key accepted. The reference writes 52 characters (32 random bytes in
/// base32); ours are the same length.
const TEMP_KEY_MAX: usize = 128;
const TEMP_KEY_LEN: usize = 52;
const TEMP_KEY_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A new random temp key: 52 base32 characters (260 bits).
fn new_temp_key() -> String {
    let mut rng = rand::thread_rng();
    (0..TEMP_KEY_LEN)
        .map(|_| char::from(TEMP_KEY_ALPHABET[rng.gen_range(0..TEMP_KEY_ALPHABET.len())]))
        .collect()
}

/// Accepts only what a store ever hands out as a temp key: 1 to 128 lowercase ASCII
/// letters and digits. Anything else (`..`, `/`, `%2e`, NUL, …) is [`Error::InvalidKey`].
pub(crate) fn check_temp_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > TEMP_KEY_MAX {
        return Err(Error::InvalidKey("temp key must be 1 to 128 characters"));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(Error::InvalidKey(
            "temp key may only contain lowercase letters and digits",
        ));
    }
    Ok(())
}

/// The DID as one path segment or key component. [`Did`] syntax already rules out `/`,
/// `\`, NUL and the names `.` and `..`; this re-checks it where paths are built.
fn did_segment(did: &Did) -> Result<&str> {
    let s = did.as_str();
    if s.is_empty() || s == "." || s == ".." || s.bytes().any(|b| matches!(b, b'/' | b'\\' | 0)) {
        return Err(Error::InvalidKey("DID is not a safe path segment"));
    }
    Ok(s)
}

/// The CID as one path segment: its canonical string (base32 for CIDv1), which the cid
/// crate produces from the parsed value, never from caller text.
fn cid_segment(cid: &Cid) -> Result<String> {
    let s = cid.to_string();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::InvalidKey("CID is not a safe path segment"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_like_http() {
        assert_eq!(ByteRange::FromTo(0, 0).resolve(10), Some((0, 0)));
        assert_eq!(ByteRange::FromTo(2, 5).resolve(10), Some((2, 5)));
        assert_eq!(ByteRange::FromTo(2, 500).resolve(10), Some((2, 9)));
        assert_eq!(ByteRange::FromTo(9, 9).resolve(10), Some((9, 9)));
        assert_eq!(ByteRange::FromTo(10, 12).resolve(10), None);
        assert_eq!(ByteRange::FromTo(5, 2).resolve(10), None);
        assert_eq!(ByteRange::From(3).resolve(10), Some((3, 9)));
        assert_eq!(ByteRange::From(10).resolve(10), None);
        assert_eq!(ByteRange::Suffix(4).resolve(10), Some((6, 9)));
        assert_eq!(ByteRange::Suffix(40).resolve(10), Some((0, 9)));
        assert_eq!(ByteRange::Suffix(0).resolve(10), None);
        assert_eq!(ByteRange::From(0).resolve(0), None);
        assert_eq!(ByteRange::Suffix(1).resolve(0), None);
        assert_eq!(ByteRange::FromTo(2, 5).header_value(), "bytes=2-5");
        assert_eq!(ByteRange::From(7).header_value(), "bytes=7-");
        assert_eq!(ByteRange::Suffix(9).header_value(), "bytes=-9");
    }

    #[test]
    fn temp_keys() {
        let key = new_temp_key();
        assert_eq!(key.len(), 52);
        assert_eq!(check_temp_key(&key).ok(), Some(()));
        assert_ne!(key, new_temp_key());
        // What the reference writes (base32 of 32 random bytes) is accepted too.
        assert!(check_temp_key("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquv").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "%2e%2e",
            "/etc/passwd",
            "abc\0",
            "ABC",
            "a.b",
            &"a".repeat(129),
        ] {
            assert!(
                matches!(check_temp_key(bad), Err(Error::InvalidKey(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn segments() {
        let did: Did = "did:web:localhost%3A1234".parse().unwrap();
        assert_eq!(did_segment(&did).unwrap(), "did:web:localhost%3A1234");
        let cid = crate::repo::cid::cid_for_raw(b"");
        assert_eq!(
            cid_segment(&cid).unwrap(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }
}
