//! Blobs as files: `<location>/<did>/<cid>`, uploads in `<tmp_location>/<did>/<key>`,
//! takedowns in `<location>/quarantine/<did>/<cid>` (the reference's layout and default).
//!
//! A blob becomes permanent by a rename (atomic; the temp directory is meant to be on the
//! same file system), or, across file systems, by a copy to a hidden file in the target
//! directory and a rename. Data and directories are fsynced before a blob counts as
//! stored.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::BytesMut;
use cid::Cid;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::ingest::Ingest;
use super::{
    BlobStore, BlobStream, ByteRange, ByteStream, Error, Result, TempBlob, TempEntry,
    check_temp_key, cid_segment, did_segment, new_temp_key,
};
use crate::syntax::Did;

/// Read size when streaming a blob out.
const READ_CHUNK: usize = 64 * 1024;
/// Write buffer when streaming an upload in.
const WRITE_BUFFER: usize = 256 * 1024;

/// Blob store on the local file system.
#[derive(Clone, Debug)]
pub struct DiskBlobStore {
    location: PathBuf,
    tmp_location: PathBuf,
    quarantine_location: PathBuf,
}

impl DiskBlobStore {
    /// Blobs under `location`, uploads under `tmp_location`, takedowns under
    /// `location/quarantine` (as the reference defaults; `quarantine` is no DID, so it
    /// cannot collide with an account directory).
    pub fn new(location: impl Into<PathBuf>, tmp_location: impl Into<PathBuf>) -> DiskBlobStore {
        let location = location.into();
        DiskBlobStore {
            quarantine_location: location.join("quarantine"),
            location,
            tmp_location: tmp_location.into(),
        }
    }

    fn blob_path(&self, did: &Did, cid: &Cid) -> Result<PathBuf> {
        Ok(self
            .location
            .join(did_segment(did)?)
            .join(cid_segment(cid)?))
    }

    fn quarantine_path(&self, did: &Did, cid: &Cid) -> Result<PathBuf> {
        Ok(self
            .quarantine_location
            .join(did_segment(did)?)
            .join(cid_segment(cid)?))
    }

    fn temp_path(&self, did: &Did, key: &str) -> Result<PathBuf> {
        check_temp_key(key)?;
        Ok(self.tmp_location.join(did_segment(did)?).join(key))
    }

    async fn put_temp_impl(&self, did: &Did, mut data: ByteStream, max: u64) -> Result<TempBlob> {
        let dir = self.tmp_location.join(did_segment(did)?);
        fs::create_dir_all(&dir).await.map_err(Error::Io)?;
        let key = new_temp_key();
        let path = dir.join(&key);
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(Error::Io)?;
        // Removes the partial file on every early return, and if this future is dropped.
        let guard = RemoveOnDrop(Some(path));
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut ingest = Ingest::new(max);
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(Error::Stream)?;
            ingest.update(&chunk)?;
            out.write_all(&chunk).await.map_err(Error::Io)?;
        }
        out.flush().await.map_err(Error::Io)?;
        let file = out.into_inner();
        file.sync_all().await.map_err(Error::Io)?;
        drop(file);
        guard.disarm();
        Ok(ingest.finish(key))
    }

    async fn make_permanent_impl(&self, did: &Did, key: &str, cid: &Cid) -> Result<()> {
        let temp = self.temp_path(did, key)?;
        let target = self.blob_path(did, cid)?;
        if exists(&target).await? {
            return remove_if_exists(&temp).await;
        }
        let dir = self.location.join(did_segment(did)?);
        fs::create_dir_all(&dir).await.map_err(Error::Io)?;
        match fs::rename(&temp, &target).await {
            Ok(()) => sync_dir(&dir).await,
            // Made permanent concurrently, or never uploaded.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if exists(&target).await? {
                    Ok(())
                } else {
                    Err(Error::NotFound)
                }
            }
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                copy_into_place(&temp, &dir, &target).await?;
                remove_if_exists(&temp).await
            }
            Err(e) => Err(Error::Io(e)),
        }
    }

    async fn get_impl(&self, did: &Did, cid: &Cid, range: Option<ByteRange>) -> Result<BlobStream> {
        let path = self.blob_path(did, cid)?;
        let mut file = match fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound),
            Err(e) => return Err(Error::Io(e)),
        };
        let meta = file.metadata().await.map_err(Error::Io)?;
        if !meta.is_file() {
            return Err(Error::NotFound);
        }
        let size = meta.len();
        let (start, len, range) = match range {
            None => (0, size, None),
            Some(r) => {
                let (first, last) = r.resolve(size).ok_or(Error::RangeNotSatisfiable { size })?;
                file.seek(io::SeekFrom::Start(first))
                    .await
                    .map_err(Error::Io)?;
                (first, last - first + 1, Some((first, last)))
            }
        };
        debug_assert!(start + len <= size);
        Ok(BlobStream {
            size,
            range,
            stream: file_stream(file, len),
        })
    }

    async fn move_blob(&self, from: PathBuf, to: PathBuf) -> Result<()> {
        let Some(dir) = to.parent().map(Path::to_path_buf) else {
            return Err(Error::InvalidKey("blob path has no parent"));
        };
        fs::create_dir_all(&dir).await.map_err(Error::Io)?;
        match fs::rename(&from, &to).await {
            Ok(()) => sync_dir(&dir).await,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound),
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// Walks `<tmp_location>/<did>/<key>`; runs on a blocking thread.
    fn list_temp_blocking(
        tmp_location: &Path,
        cutoff: SystemTime,
        limit: usize,
    ) -> io::Result<Vec<TempEntry>> {
        let mut found = Vec::new();
        let dids = match std::fs::read_dir(tmp_location) {
            Ok(dids) => dids,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e),
        };
        for entry in dids {
            let entry = entry?;
            let Some(did) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<Did>().ok())
            else {
                continue;
            };
            if !entry.file_type()?.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(entry.path())? {
                if found.len() >= limit {
                    return Ok(found);
                }
                let file = file?;
                let Some(key) = file.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if check_temp_key(&key).is_err() {
                    continue;
                }
                let meta = file.metadata()?;
                let modified = meta.modified()?;
                if meta.is_file() && modified < cutoff {
                    found.push(TempEntry {
                        did: did.clone(),
                        key,
                        modified,
                    });
                }
            }
        }
        Ok(found)
    }
}

impl BlobStore for DiskBlobStore {
    fn probe(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            // Directories are created on first write: a missing one is fine as long as its
            // nearest existing ancestor is a writable directory.
            for dir in [&self.location, &self.tmp_location] {
                let mut path: &Path = dir;
                let meta = loop {
                    match fs::metadata(path).await {
                        Ok(meta) => break meta,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => match path.parent() {
                            Some(parent) if !parent.as_os_str().is_empty() => path = parent,
                            _ => break fs::metadata(".").await.map_err(Error::Io)?,
                        },
                        Err(e) => return Err(Error::Io(e)),
                    }
                };
                if !meta.is_dir() || meta.permissions().readonly() {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("{} is not a writable directory", path.display()),
                    )));
                }
            }
            Ok(())
        }
        .boxed()
    }

    fn put_temp<'a>(
        &'a self,
        did: &'a Did,
        data: ByteStream,
        max_size: u64,
    ) -> BoxFuture<'a, Result<TempBlob>> {
        self.put_temp_impl(did, data, max_size).boxed()
    }

    fn make_permanent<'a>(
        &'a self,
        did: &'a Did,
        temp_key: &'a str,
        cid: &'a Cid,
    ) -> BoxFuture<'a, Result<()>> {
        self.make_permanent_impl(did, temp_key, cid).boxed()
    }

    fn get<'a>(
        &'a self,
        did: &'a Did,
        cid: &'a Cid,
        range: Option<ByteRange>,
    ) -> BoxFuture<'a, Result<BlobStream>> {
        self.get_impl(did, cid, range).boxed()
    }

    fn has<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<bool>> {
        async move { is_file(&self.blob_path(did, cid)?).await }.boxed()
    }

    fn has_temp<'a>(&'a self, did: &'a Did, temp_key: &'a str) -> BoxFuture<'a, Result<bool>> {
        async move { is_file(&self.temp_path(did, temp_key)?).await }.boxed()
    }

    fn delete<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<()>> {
        async move { remove_if_exists(&self.blob_path(did, cid)?).await }.boxed()
    }

    fn delete_many<'a>(&'a self, did: &'a Did, cids: &'a [Cid]) -> BoxFuture<'a, Result<()>> {
        async move {
            for cid in cids {
                remove_if_exists(&self.blob_path(did, cid)?).await?;
            }
            Ok(())
        }
        .boxed()
    }

    fn delete_temp<'a>(&'a self, did: &'a Did, temp_key: &'a str) -> BoxFuture<'a, Result<()>> {
        async move { remove_if_exists(&self.temp_path(did, temp_key)?).await }.boxed()
    }

    fn quarantine<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<()>> {
        async move {
            let from = self.blob_path(did, cid)?;
            let to = self.quarantine_path(did, cid)?;
            self.move_blob(from, to).await
        }
        .boxed()
    }

    fn unquarantine<'a>(&'a self, did: &'a Did, cid: &'a Cid) -> BoxFuture<'a, Result<()>> {
        async move {
            let from = self.quarantine_path(did, cid)?;
            let to = self.blob_path(did, cid)?;
            self.move_blob(from, to).await
        }
        .boxed()
    }

    fn list_temp_older_than<'a>(
        &'a self,
        cutoff: SystemTime,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<TempEntry>>> {
        let tmp_location = self.tmp_location.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                DiskBlobStore::list_temp_blocking(&tmp_location, cutoff, limit)
            })
            .await
            .map_err(|e| Error::Io(io::Error::other(e)))?
            .map_err(Error::Io)
        }
        .boxed()
    }

    fn stored_bytes(&self) -> BoxFuture<'_, Result<u64>> {
        let roots = [self.location.clone(), self.quarantine_location.clone()];
        async move {
            tokio::task::spawn_blocking(move || {
                let mut total = 0u64;
                let mut dirs: Vec<PathBuf> = roots.into_iter().collect();
                while let Some(dir) = dirs.pop() {
                    let entries = match std::fs::read_dir(&dir) {
                        Ok(entries) => entries,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(Error::Io(e)),
                    };
                    for entry in entries {
                        let entry = entry.map_err(Error::Io)?;
                        let meta = entry.metadata().map_err(Error::Io)?;
                        if meta.is_dir() {
                            dirs.push(entry.path());
                        } else {
                            total += meta.len();
                        }
                    }
                }
                Ok(total)
            })
            .await
            .map_err(|e| Error::Io(io::Error::other(e)))?
        }
        .boxed()
    }

    fn delete_all<'a>(&'a self, did: &'a Did) -> BoxFuture<'a, Result<()>> {
        async move {
            let segment = did_segment(did)?;
            for root in [
                &self.location,
                &self.tmp_location,
                &self.quarantine_location,
            ] {
                match fs::remove_dir_all(root.join(segment)).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::Io(e)),
                }
            }
            Ok(())
        }
        .boxed()
    }
}

/// Deletes a file when dropped, unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Synchronous on purpose: it must happen even when the future is dropped.
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove partial upload");
            }
        }
    }
}

/// Streams `len` bytes from the file's current position; a file that ends early is an
/// error, not a short blob.
fn file_stream(file: fs::File, len: u64) -> ByteStream {
    futures::stream::try_unfold((file, len), |(mut file, remaining)| async move {
        if remaining == 0 {
            return Ok(None);
        }
        let want = usize::try_from(remaining).map_or(READ_CHUNK, |r| r.min(READ_CHUNK));
        let mut buf = BytesMut::with_capacity(want);
        let n = (&mut file).take(want as u64).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "blob file is shorter than its recorded size",
            ));
        }
        Ok(Some((buf.freeze(), (file, remaining - n as u64))))
    })
    .into_stream()
    .boxed()
}

async fn exists(path: &Path) -> Result<bool> {
    fs::try_exists(path).await.map_err(Error::Io)
}

async fn is_file(path: &Path) -> Result<bool> {
    match fs::metadata(path).await {
        Ok(meta) => Ok(meta.is_file()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::Io(e)),
    }
}

async fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io(e)),
    }
}

/// Makes a rename or a new entry in `dir` durable.
async fn sync_dir(dir: &Path) -> Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(|e| Error::Io(io::Error::other(e)))?
        .map_err(Error::Io)
}

/// Copies `from` to a hidden temporary name in `dir`, fsyncs it, and renames it to `to`.
async fn copy_into_place(from: &Path, dir: &Path, to: &Path) -> Result<()> {
    let staging = dir.join(format!(".{}.partial", new_temp_key()));
    let guard = RemoveOnDrop(Some(staging.clone()));
    match fs::copy(from, &staging).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound),
        Err(e) => return Err(Error::Io(e)),
    }
    fs::File::open(&staging)
        .await
        .map_err(Error::Io)?
        .sync_all()
        .await
        .map_err(Error::Io)?;
    fs::rename(&staging, to).await.map_err(Error::Io)?;
    guard.disarm();
    sync_dir(dir).await
}

#[cfg(test)]
mod tests;
