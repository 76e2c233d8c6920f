//! How much one actor store holds: what `checkAccountStatus` reports of a repository.

use cid::Cid;
use sqlx::SqliteConnection;

use super::{Error, cid_from_column};

/// The counts of one actor store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCounts {
    /// Blocks of the repository (commits, MST nodes, records).
    pub blocks: i64,
    /// Records in the index.
    pub records: i64,
    /// Stored preferences: the account's private state.
    pub preferences: i64,
    /// Every distinct blob a record references, whether its bytes are here or not.
    pub referenced_blobs: Vec<Cid>,
}

/// Counts what the store behind `conn` holds.
pub async fn counts(conn: &mut SqliteConnection) -> Result<StoreCounts, Error> {
    let blocks = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM repo_block")
        .fetch_one(&mut *conn)
        .await?;
    let records = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM record")
        .fetch_one(&mut *conn)
        .await?;
    let preferences = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM account_pref")
        .fetch_one(&mut *conn)
        .await?;
    let referenced_blobs =
        sqlx::query_scalar::<_, Vec<u8>>("SELECT DISTINCT blobCid FROM record_blob")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|bytes| cid_from_column(bytes))
            .collect::<Result<_, _>>()?;
    Ok(StoreCounts {
        blocks,
        records,
        preferences,
        referenced_blobs,
    })
}
