//! The SQL schemas of Rookery's databases, embedded from `migrations/<database>/` by
//! `build.rs` and turned into sqlx migrators here.
//!
//! Each file is `<version>_<description>.sql`, as `sqlx migrate` names them; the version,
//! description, checksum (SHA-384 of the text) and `-- no-transaction` opt-out are derived
//! exactly as sqlx derives them from a directory, so databases created by earlier builds
//! (which embedded the same files with `sqlx::migrate!`) are recognised as up to date.

use std::borrow::Cow;
use std::sync::LazyLock;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// The account database (`migrations/account/`).
pub static ACCOUNT: LazyLock<Migrator> = LazyLock::new(|| migrator(embedded::ACCOUNT));
/// Each actor store (`migrations/actor/`).
pub(crate) static ACTOR: LazyLock<Migrator> = LazyLock::new(|| migrator(embedded::ACTOR));
/// The hub index (`migrations/hub/`).
pub(crate) static HUB: LazyLock<Migrator> = LazyLock::new(|| migrator(embedded::HUB));
/// The embedded PLC directory (`migrations/plc/`).
pub(crate) static PLC: LazyLock<Migrator> = LazyLock::new(|| migrator(embedded::PLC));
/// The sequencer (`migrations/sequencer/`).
pub(crate) static SEQUENCER: LazyLock<Migrator> = LazyLock::new(|| migrator(embedded::SEQUENCER));

/// A migrator over `(file name, SQL)` pairs.
///
/// # Panics
/// On a file name without a numeric version prefix: `build.rs` embeds only the files under
/// `migrations/`, so that is a mistake in this repository, caught by the tests below.
fn migrator(files: &'static [(&'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(name, sql)| migration(name, sql))
            .collect(),
    )
}

fn migration(file_name: &'static str, sql: &'static str) -> Migration {
    let (version, rest) = file_name
        .split_once('_')
        .unwrap_or_else(|| panic!("migration {file_name:?}: expected <version>_<description>.sql"));
    let version: i64 = version
        .parse()
        .unwrap_or_else(|_| panic!("migration {file_name:?}: the version is not a number"));
    let migration_type = MigrationType::from_filename(rest);
    let description = rest
        .trim_end_matches(migration_type.suffix())
        .replace('_', " ");
    Migration::new(
        version,
        Cow::Owned(description),
        migration_type,
        sql.into_sql_str(),
        sql.starts_with("-- no-transaction"),
    )
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha384};

    use super::*;

    #[test]
    fn every_database_has_its_files_in_order_with_sqlx_checksums() {
        for (migrator, files) in [
            (&*ACCOUNT, embedded::ACCOUNT),
            (&*ACTOR, embedded::ACTOR),
            (&*HUB, embedded::HUB),
            (&*PLC, embedded::PLC),
            (&*SEQUENCER, embedded::SEQUENCER),
        ] {
            assert!(!files.is_empty());
            let versions: Vec<i64> = migrator.iter().map(|m| m.version).collect();
            let expected: Vec<i64> = (1..=files.len() as i64).collect();
            assert_eq!(versions, expected, "{files:?}");
            for (m, (name, sql)) in migrator.iter().zip(files) {
                assert_eq!(m.migration_type, MigrationType::Simple, "{name}");
                assert_eq!(&*m.checksum, &Sha384::digest(sql.as_bytes())[..], "{name}");
                assert!(!m.no_tx, "{name}");
            }
        }
        let first = ACCOUNT.iter().next().unwrap();
        assert_eq!(first.description, "accounts");
        let oauth = ACCOUNT.iter().nth(3).unwrap();
        assert_eq!(oauth.description, "oauth");
        let email = ACCOUNT.iter().nth(2).unwrap();
        assert_eq!(email.description, "email auth factor");
    }
}
