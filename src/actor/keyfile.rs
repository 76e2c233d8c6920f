//! The account's repo signing key, kept next to its actor store in a file named `key`: the
//! secp256k1 private scalar as 64 hex characters, readable by the owner only (0600).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::Error;
use crate::crypto::{Algorithm, Keypair};

/// File name of the key inside the account directory.
pub(crate) const KEY_FILE: &str = "key";
const TEMP_FILE: &str = "key.tmp";

/// Writes `keypair` to `dir/key` atomically: a fresh 0600 temporary file is written and
/// fsynced, renamed over `key`, and the directory fsynced, so `key` is either absent or whole
/// and never readable by others, even briefly.
pub(crate) async fn write(dir: &Path, keypair: &Keypair) -> Result<(), Error> {
    if keypair.algorithm() != Algorithm::K256 {
        return Err(Error::UnsupportedKeyAlgorithm);
    }
    let dir = dir.to_owned();
    let hex = hex::encode(keypair.to_private_bytes());
    tokio::task::spawn_blocking(move || write_blocking(&dir, hex.as_bytes()))
        .await
        .map_err(|e| Error::io(PathBuf::from(KEY_FILE), std::io::Error::other(e)))?
}

fn write_blocking(dir: &Path, contents: &[u8]) -> Result<(), Error> {
    let temp = dir.join(TEMP_FILE);
    let path = dir.join(KEY_FILE);
    // A temporary file left by an interrupted write holds no key anyone relies on.
    match std::fs::remove_file(&temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&temp, e)),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp).map_err(|e| Error::io(&temp, e))?;
    file.write_all(contents).map_err(|e| Error::io(&temp, e))?;
    file.sync_all().map_err(|e| Error::io(&temp, e))?;
    drop(file);
    std::fs::rename(&temp, &path).map_err(|e| Error::io(&path, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Reads the key from `dir/key`.
pub(crate) async fn read(dir: &Path) -> Result<Keypair, Error> {
    let path = dir.join(KEY_FILE);
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|e| Error::io(&path, e))?;
    Keypair::from_private_hex(Algorithm::K256, &text).map_err(|_| Error::InvalidKeyFile(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let key = Keypair::generate(Algorithm::K256);
        write(dir.path(), &key).await.unwrap();
        let text = std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        assert_eq!(text, hex::encode(key.to_private_bytes()));
        assert_eq!(text.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!dir.path().join(TEMP_FILE).exists());
        let read_back = read(dir.path()).await.unwrap();
        assert_eq!(read_back.to_private_bytes(), key.to_private_bytes());

        // Overwriting replaces the key whole; a stale temporary file is no obstacle.
        std::fs::write(dir.path().join(TEMP_FILE), b"junk").unwrap();
        let other = Keypair::generate(Algorithm::K256);
        write(dir.path(), &other).await.unwrap();
        assert_eq!(
            read(dir.path()).await.unwrap().to_private_bytes(),
            other.to_private_bytes()
        );
    }

    #[tokio::test]
    async fn refuses_p256_and_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let p256 = Keypair::generate(Algorithm::P256);
        assert!(matches!(
            write(dir.path(), &p256).await,
            Err(Error::UnsupportedKeyAlgorithm)
        ));
        assert!(matches!(read(dir.path()).await, Err(Error::Io { .. })));
        std::fs::write(dir.path().join(KEY_FILE), "zz").unwrap();
        assert!(matches!(
            read(dir.path()).await,
            Err(Error::InvalidKeyFile(_))
        ));
        std::fs::write(dir.path().join(KEY_FILE), "00".repeat(32)).unwrap();
        assert!(matches!(
            read(dir.path()).await,
            Err(Error::InvalidKeyFile(_))
        ));
    }
}
