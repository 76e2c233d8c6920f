//! Account preferences (`account_pref`): one row per preference object, named by its
//! `$type`, the JSON kept as sent. Rows keep insertion order (`id`).

use sqlx::{Row, SqliteConnection};

use super::Error;

/// A stored preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredPref {
    pub id: i64,
    /// The preference's `$type`.
    pub name: String,
    pub value_json: String,
}

/// Every preference, in insertion order.
pub(crate) async fn list(conn: &mut SqliteConnection) -> Result<Vec<StoredPref>, Error> {
    let rows = sqlx::query("SELECT id, name, valueJson FROM account_pref ORDER BY id")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredPref {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                value_json: r.try_get("valueJson")?,
            })
        })
        .collect()
}

/// Deletes the preferences with these ids.
pub(crate) async fn delete(conn: &mut SqliteConnection, ids: &[i64]) -> Result<(), Error> {
    for id in ids {
        sqlx::query("DELETE FROM account_pref WHERE id = ?1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Appends a preference.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    name: &str,
    value_json: &str,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO account_pref (name, valueJson) VALUES (?1, ?2)")
        .bind(name)
        .bind(value_json)
        .execute(conn)
        .await?;
    Ok(())
}
