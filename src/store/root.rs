//! The `repo_root` table: the head (current commit) of the database's one repository.
//!
//! Write it in the same transaction as the blocks of the commit it points to, so the head
//! never names a commit whose blocks are missing.

use chrono::{SecondsFormat, Utc};
use cid::Cid;
use sqlx::{Row, SqliteConnection};

use super::{Error, cid_from_column};

/// The head of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRoot {
    /// The account whose repository this database holds.
    pub did: String,
    /// CID of the current signed commit.
    pub cid: Cid,
    /// Revision (TID) of the current commit.
    pub rev: String,
    /// When this head was written (RFC 3339, UTC, milliseconds).
    pub indexed_at: String,
}

/// The head row: did, cid, rev, indexedAt.
pub(crate) const SELECT: &str = "SELECT did, cid, rev, indexedAt FROM repo_root WHERE id = 1";
/// Moves the head (binds did, cid, rev, indexedAt): writes nothing unless the stored row is
/// the same account's with an older revision.
pub(crate) const UPSERT: &str = "INSERT INTO repo_root (id, did, cid, rev, indexedAt)
     VALUES (1, ?1, ?2, ?3, ?4)
     ON CONFLICT (id) DO UPDATE
     SET cid = excluded.cid, rev = excluded.rev, indexedAt = excluded.indexedAt
     WHERE repo_root.did = excluded.did AND repo_root.rev < excluded.rev";

/// The time a head is written with: RFC 3339, UTC, milliseconds.
pub(crate) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The current head, or `None` before the repository's first commit.
pub(crate) async fn get(conn: &mut SqliteConnection) -> Result<Option<RepoRoot>, Error> {
    let row = sqlx::query(SELECT).fetch_optional(conn).await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(RepoRoot {
        did: row.try_get(0)?,
        cid: cid_from_column(row.try_get::<&[u8], _>(1)?)?,
        rev: row.try_get(2)?,
        indexed_at: row.try_get(3)?,
    }))
}

/// Makes the commit `cid` with revision `rev` the head of `did`'s repository.
///
/// Fails with [`Error::WrongRepo`] when the database already holds another account's
/// repository, and with [`Error::StaleRev`] unless `rev` sorts after the current revision
/// (revisions are TIDs and only move forward); nothing is written then.
pub(crate) async fn set(
    conn: &mut SqliteConnection,
    did: &str,
    cid: &Cid,
    rev: &str,
) -> Result<(), Error> {
    let indexed_at = now();
    let written = sqlx::query(UPSERT)
        .bind(did.to_owned())
        .bind(cid.to_bytes())
        .bind(rev.to_owned())
        .bind(indexed_at)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if written == 1 {
        return Ok(());
    }
    // The conflicting row exists (or the upsert would have inserted): say why it was kept.
    let current: (String, String) = sqlx::query("SELECT did, rev FROM repo_root WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| Ok((row.try_get(0)?, row.try_get(1)?)))?;
    if current.0 != did {
        Err(Error::WrongRepo {
            stored: current.0,
            given: did.to_owned(),
        })
    } else {
        Err(Error::StaleRev {
            current: current.1,
            given: rev.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::cid::cid_for_cbor;
    use crate::store::sqlite;

    const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

    #[tokio::test]
    async fn get_and_set() {
        let pool = sqlite::open_in_memory().await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        assert_eq!(get(&mut conn).await.unwrap(), None);

        let first = cid_for_cbor(&[0xa1, 0x61, 0x61, 0x01]);
        set(&mut conn, DID, &first, "3jzfcijpj2z2a").await.unwrap();
        let root = get(&mut conn).await.unwrap().unwrap();
        assert_eq!(root.did, DID);
        assert_eq!(root.cid, first);
        assert_eq!(root.rev, "3jzfcijpj2z2a");
        // RFC 3339 UTC with milliseconds: 2024-01-02T03:04:05.678Z
        assert_eq!(root.indexed_at.len(), 24, "{}", root.indexed_at);
        assert!(root.indexed_at.ends_with('Z'));
        assert!(chrono::DateTime::parse_from_rfc3339(&root.indexed_at).is_ok());

        let second = cid_for_cbor(&[0xa1, 0x61, 0x61, 0x02]);
        set(&mut conn, DID, &second, "3jzfcijpj2z2b").await.unwrap();
        let root = get(&mut conn).await.unwrap().unwrap();
        assert_eq!((root.cid, root.rev.as_str()), (second, "3jzfcijpj2z2b"));
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repo_root")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[tokio::test]
    async fn refuses_stale_rev_and_other_account() {
        let pool = sqlite::open_in_memory().await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let head = cid_for_cbor(&[0x01]);
        set(&mut conn, DID, &head, "3jzfcijpj2z2b").await.unwrap();

        let other = cid_for_cbor(&[0x02]);
        for rev in ["3jzfcijpj2z2b", "3jzfcijpj2z2a"] {
            let err = set(&mut conn, DID, &other, rev).await.unwrap_err();
            assert!(
                matches!(&err, Error::StaleRev { current, given }
                    if current == "3jzfcijpj2z2b" && given == rev),
                "{err:?}"
            );
        }
        let err = set(&mut conn, "did:plc:other", &other, "3jzfcijpj2z2c")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::WrongRepo { stored, given }
                if stored == DID && given == "did:plc:other"),
            "{err:?}"
        );
        let root = get(&mut conn).await.unwrap().unwrap();
        assert_eq!(
            (root.did.as_str(), root.cid, root.rev.as_str()),
            (DID, head, "3jzfcijpj2z2b")
        );
    }

    #[tokio::test]
    async fn corrupt_stored_cid_is_an_error() {
        let pool = sqlite::open_in_memory().await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query(
            "INSERT INTO repo_root (id, did, cid, rev, indexedAt) VALUES (1, 'did:plc:x', x'ff', 'r', 't')",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        assert!(matches!(
            get(&mut conn).await,
            Err(Error::InvalidStoredCid(_))
        ));
    }
}
