//! The two secrets a server cannot start without, and where they come from.
//!
//! - The session-token key: a 32-byte Ed25519 seed. Derived from `PDS_JWT_SECRET` when set
//!   (SHA-256 of `rookery/session-key/v1`, a NUL byte and the secret, so any string an
//!   operator already has works), else generated once and kept in
//!   `{data_directory}/session_key.hex`.
//! - The PLC rotation key: a secp256k1 private key. From
//!   `PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX` when set, else generated once and kept in
//!   `{data_directory}/plc_rotation_key.hex`.
//!
//! Generated files hold 64 lowercase hex characters and a newline. They are created with
//! mode 0600 from the start (a temporary file opened with that mode, then linked into
//! place without replacing an existing file), never chmod-ed afterwards.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Config;

/// File (in the data directory) holding the generated session-token key.
pub const SESSION_KEY_FILE: &str = "session_key.hex";
/// File (in the data directory) holding the generated PLC rotation key.
pub const PLC_ROTATION_KEY_FILE: &str = "plc_rotation_key.hex";

/// Domain separation for deriving the session key from `PDS_JWT_SECRET`.
const SESSION_KEY_CONTEXT: &[u8] = b"rookery/session-key/v1\0";

/// 32 secret bytes. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes([u8; 32]);

impl SecretBytes {
    pub fn new(bytes: [u8; 32]) -> Self {
        SecretBytes(bytes)
    }

    /// The bytes themselves; call only where they are used.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// The secrets the running server uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSecrets {
    /// Ed25519 seed for signing session tokens.
    pub session_key_seed: SecretBytes,
    /// secp256k1 private key (a valid scalar) for PLC operations.
    pub plc_rotation_key: SecretBytes,
}

/// Why the secrets could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDirectory { path: PathBuf, source: io::Error },
    #[error("cannot read secret file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write secret file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "secret file {path} is invalid ({reason}); restore it or remove it to generate a new one"
    )]
    Invalid { path: PathBuf, reason: String },
}

/// Parses a secp256k1 private key written as 64 hex characters and checks it is a valid
/// scalar (non-zero, below the group order). The error never contains the key.
pub(crate) fn parse_k256_private_key_hex(s: &str) -> Result<SecretBytes, String> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(format!(
            "expected 64 hex characters (a 32-byte secp256k1 private key), got {} characters",
            s.len()
        ));
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(s, &mut bytes)
        .map_err(|_| "expected only hex characters (0-9, a-f)".to_owned())?;
    if k256::SecretKey::from_slice(&bytes).is_err() {
        return Err("not a valid secp256k1 private key (zero or not below the group order)".into());
    }
    Ok(SecretBytes(bytes))
}

impl ServiceSecrets {
    /// Takes configured secrets from `config` and loads or generates the others in its data
    /// directory (created with mode 0700 if missing). Logs a warning for each secret that
    /// is not configured.
    pub fn load_or_generate(config: &Config) -> Result<ServiceSecrets, SecretsError> {
        let dir = &config.data_directory;
        create_private_dir(dir)?;

        let session_key_seed = match &config.jwt_secret {
            Some(secret) => derive_session_key(secret.expose()),
            None => {
                let path = dir.join(SESSION_KEY_FILE);
                load_or_create(&path, &SESSION_KEY)?
            }
        };
        let plc_rotation_key = match &config.plc_rotation_key {
            Some(key) => key.clone(),
            None => {
                let path = dir.join(PLC_ROTATION_KEY_FILE);
                load_or_create(&path, &PLC_ROTATION_KEY)?
            }
        };
        Ok(ServiceSecrets {
            session_key_seed,
            plc_rotation_key,
        })
    }
}

fn derive_session_key(secret: &str) -> SecretBytes {
    let mut hasher = Sha256::new();
    hasher.update(SESSION_KEY_CONTEXT);
    hasher.update(secret.as_bytes());
    SecretBytes(hasher.finalize().into())
}

fn random_seed() -> SecretBytes {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SecretBytes(bytes)
}

fn random_k256_key() -> SecretBytes {
    loop {
        let candidate = random_seed();
        // Fails only for zero or values ≥ the group order: probability about 2^-128.
        if k256::SecretKey::from_slice(candidate.expose()).is_ok() {
            return candidate;
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<(), SecretsError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|source| SecretsError::CreateDirectory {
            path: dir.to_owned(),
            source,
        })
}

/// One kind of generated key: how to name it, make it and check it.
struct KeyKind {
    /// The variable that would configure it instead.
    variable: &'static str,
    what: &'static str,
    generate: fn() -> SecretBytes,
    parse: fn(&str) -> Result<SecretBytes, String>,
}

const SESSION_KEY: KeyKind = KeyKind {
    variable: "PDS_JWT_SECRET",
    what: "session-token key",
    generate: random_seed,
    parse: parse_seed_hex,
};

const PLC_ROTATION_KEY: KeyKind = KeyKind {
    variable: "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
    what: "PLC rotation key",
    generate: random_k256_key,
    parse: parse_k256_private_key_hex,
};

/// Reads the key in `path`, or generates one and stores it there.
fn load_or_create(path: &Path, kind: &KeyKind) -> Result<SecretBytes, SecretsError> {
    let KeyKind { variable, what, .. } = kind;
    match read_key_file(path, kind) {
        Ok(key) => {
            tracing::warn!(
                path = %path.display(),
                "{variable} is not set: using the {what} generated on an earlier start"
            );
            warn_if_shared(path);
            return Ok(key);
        }
        Err(SecretsError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let key = (kind.generate)();
    match write_new_private_file(path, format!("{}\n", hex::encode(key.expose())).as_bytes()) {
        Ok(()) => {
            tracing::warn!(
                path = %path.display(),
                "{variable} is not set: generated a new {what} and saved it (mode 0600); \
                 it will be reused on later starts — back it up"
            );
            Ok(key)
        }
        // Another process created it first: use theirs so both agree.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_key_file(path, kind),
        Err(source) => Err(SecretsError::Write {
            path: path.to_owned(),
            source,
        }),
    }
}

fn read_key_file(path: &Path, kind: &KeyKind) -> Result<SecretBytes, SecretsError> {
    let text = fs::read_to_string(path).map_err(|source| SecretsError::Read {
        path: path.to_owned(),
        source,
    })?;
    (kind.parse)(text.trim()).map_err(|reason| SecretsError::Invalid {
        path: path.to_owned(),
        reason,
    })
}

/// Parses a 32-byte seed written as 64 hex characters.
fn parse_seed_hex(s: &str) -> Result<SecretBytes, String> {
    let mut bytes = [0u8; 32];
    if s.len() != 64 || hex::decode_to_slice(s, &mut bytes).is_err() {
        return Err("expected 64 hex characters".to_owned());
    }
    Ok(SecretBytes(bytes))
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "secret file is readable by other users (mode {mode:o}); run chmod 600 on it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

/// Writes `contents` to a new file at `path` that is private (0600) from its creation.
/// Fails with `AlreadyExists` rather than replacing an existing file.
fn write_new_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        rand::rngs::OsRng.next_u64()
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        // A hard link, unlike rename, refuses to replace a file that appeared meanwhile.
        fs::hard_link(&tmp, path)?;
        #[cfg(unix)]
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    let _ = fs::remove_file(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN_KEY: &str = "44e6ab94ce98b0966e849dd62cba8428d49e765616ada0ea85770c794dd71940";

    fn config_in(dir: &Path) -> Config {
        Config {
            data_directory: dir.to_owned(),
            ..Config::default()
        }
    }

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[test]
    fn generated_once_private_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("nested").join("data");
        let config = config_in(&data);
        let first = ServiceSecrets::load_or_generate(&config).unwrap();

        let session_file = data.join(SESSION_KEY_FILE);
        let plc_file = data.join(PLC_ROTATION_KEY_FILE);
        #[cfg(unix)]
        {
            assert_eq!(mode_of(&session_file), 0o600);
            assert_eq!(mode_of(&plc_file), 0o600);
            assert_eq!(mode_of(&data), 0o700);
        }
        let session_text = fs::read_to_string(&session_file).unwrap();
        assert_eq!(
            session_text,
            format!("{}\n", hex::encode(first.session_key_seed.expose()))
        );
        let plc_text = fs::read_to_string(&plc_file).unwrap();
        assert_eq!(
            plc_text,
            format!("{}\n", hex::encode(first.plc_rotation_key.expose()))
        );
        assert!(k256::SecretKey::from_slice(first.plc_rotation_key.expose()).is_ok());
        assert_ne!(first.session_key_seed, first.plc_rotation_key);
        // No temporary files left behind.
        let mut names: Vec<_> = fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [PLC_ROTATION_KEY_FILE, SESSION_KEY_FILE]);

        let second = ServiceSecrets::load_or_generate(&config).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn configured_secrets_win_and_write_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = config_in(tmp.path());
        config.jwt_secret = Some(super::super::Secret::new("correct horse battery staple"));
        config.plc_rotation_key = Some(parse_k256_private_key_hex(KNOWN_KEY).unwrap());
        let secrets = ServiceSecrets::load_or_generate(&config).unwrap();
        // printf 'rookery/session-key/v1\0correct horse battery staple' | sha256sum
        assert_eq!(
            hex::encode(secrets.session_key_seed.expose()),
            "8f6a9e289283e9537a113e2fbc4af67be9f354864a05b549467369011fcdf123"
        );
        assert_eq!(hex::encode(secrets.plc_rotation_key.expose()), KNOWN_KEY);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn existing_files_are_used_verbatim() {
        let tmp = tempfile::tempdir().unwrap();
        let seed = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        fs::write(tmp.path().join(SESSION_KEY_FILE), format!("{seed}\n")).unwrap();
        fs::write(tmp.path().join(PLC_ROTATION_KEY_FILE), KNOWN_KEY).unwrap();
        let secrets = ServiceSecrets::load_or_generate(&config_in(tmp.path())).unwrap();
        assert_eq!(hex::encode(secrets.session_key_seed.expose()), seed);
        assert_eq!(hex::encode(secrets.plc_rotation_key.expose()), KNOWN_KEY);
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let session = tmp.path().join(SESSION_KEY_FILE);
        fs::write(&session, "not hex at all").unwrap();
        let err = ServiceSecrets::load_or_generate(&config_in(tmp.path())).unwrap_err();
        assert!(matches!(&err, SecretsError::Invalid { path, .. } if *path == session));
        assert!(err.to_string().contains("session_key.hex"), "{err}");

        fs::remove_file(&session).unwrap();
        // The group order n is not a valid private key.
        let order = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
        let plc = tmp.path().join(PLC_ROTATION_KEY_FILE);
        fs::write(&plc, order).unwrap();
        let err = ServiceSecrets::load_or_generate(&config_in(tmp.path())).unwrap_err();
        assert!(matches!(&err, SecretsError::Invalid { path, .. } if *path == plc));
    }

    #[test]
    fn k256_hex_parser() {
        assert_eq!(
            hex::encode(parse_k256_private_key_hex(KNOWN_KEY).unwrap().expose()),
            KNOWN_KEY
        );
        let upper = KNOWN_KEY.to_ascii_uppercase();
        assert_eq!(
            hex::encode(parse_k256_private_key_hex(&upper).unwrap().expose()),
            KNOWN_KEY
        );
        for bad in [
            "",
            "abcd",
            &"0".repeat(64),
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            &format!("{}zz", &KNOWN_KEY[..62]),
            &format!("{KNOWN_KEY}00"),
        ] {
            let err = parse_k256_private_key_hex(bad).unwrap_err();
            assert!(!err.contains(KNOWN_KEY), "error leaks the key: {err}");
        }
        // The largest valid scalar, n - 1.
        assert!(
            parse_k256_private_key_hex(
                "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140"
            )
            .is_ok()
        );
    }

    #[test]
    fn debug_output_is_redacted() {
        let key = parse_k256_private_key_hex(KNOWN_KEY).unwrap();
        assert_eq!(format!("{key:?}"), "SecretBytes(<redacted>)");
    }

    #[test]
    fn existing_target_is_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.hex");
        fs::write(&path, "original").unwrap();
        let err = write_new_private_file(&path, b"new").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&path).unwrap(), "original");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
