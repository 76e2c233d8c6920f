//! SQL of the OAuth tables (account database, migration `0004_oauth.sql`).

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

/// A pushed authorization request.
#[derive(Debug, Clone)]
pub(crate) struct RequestRow {
    pub id: String,
    pub client_id: String,
    pub params: String,
    pub dpop_jkt: Option<String>,
    pub expires_at: i64,
    pub did: Option<String>,
    pub consent_hash: Option<String>,
    pub code_expires_at: Option<i64>,
}

macro_rules! request_columns {
    () => {
        "id, client_id, params, dpop_jkt, expires_at, did, consent_hash, code_expires_at"
    };
}

fn request_row(row: &SqliteRow) -> Result<RequestRow, sqlx::Error> {
    Ok(RequestRow {
        id: row.try_get(0)?,
        client_id: row.try_get(1)?,
        params: row.try_get(2)?,
        dpop_jkt: row.try_get(3)?,
        expires_at: row.try_get(4)?,
        did: row.try_get(5)?,
        consent_hash: row.try_get(6)?,
        code_expires_at: row.try_get(7)?,
    })
}

pub(crate) async fn insert_request(
    conn: &mut SqliteConnection,
    row: &RequestRow,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM oauth_request WHERE expires_at < ?1")
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO oauth_request (id, client_id, params, dpop_jkt, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(&row.id)
    .bind(&row.client_id)
    .bind(&row.params)
    .bind(&row.dpop_jkt)
    .bind(row.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn select_request(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<RequestRow>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        request_columns!(),
        " FROM oauth_request WHERE id = ?1"
    );
    let row = sqlx::query(sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(request_row).transpose()
}

/// Takes (deletes and returns) the request whose code hashes to `code_hash`.
pub(crate) async fn take_request_by_code(
    conn: &mut SqliteConnection,
    code_hash: &str,
) -> Result<Option<RequestRow>, sqlx::Error> {
    let sql = concat!(
        "DELETE FROM oauth_request WHERE code_hash = ?1 RETURNING ",
        request_columns!()
    );
    let row = sqlx::query(sql)
        .bind(code_hash)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(request_row).transpose()
}

pub(crate) async fn set_request_account(
    conn: &mut SqliteConnection,
    id: &str,
    did: &str,
    consent_hash: &str,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE oauth_request SET did = ?2, consent_hash = ?3, expires_at = ?4
         WHERE id = ?1 AND code_hash IS NULL",
    )
    .bind(id)
    .bind(did)
    .bind(consent_hash)
    .bind(expires_at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records the code of a consented request (once).
pub(crate) async fn set_request_code(
    conn: &mut SqliteConnection,
    id: &str,
    code_hash: &str,
    code_expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE oauth_request SET code_hash = ?2, code_expires_at = ?3, consent_hash = NULL
         WHERE id = ?1 AND code_hash IS NULL AND consent_hash IS NOT NULL",
    )
    .bind(id)
    .bind(code_hash)
    .bind(code_expires_at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub(crate) async fn delete_request(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM oauth_request WHERE id = ?1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An authorized session and its current tokens.
#[derive(Debug, Clone)]
pub(crate) struct TokenRow {
    pub id: String,
    pub did: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub scope: String,
    pub dpop_jkt: String,
    pub confidential: bool,
    pub code_hash: Option<String>,
    pub access_hash: String,
    pub access_expires_at: i64,
    pub refresh_hash: String,
    pub refresh_expires_at: i64,
    pub session_expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! token_select {
    ($column:literal) => {
        concat!(
            "SELECT id, did, client_id, client_name, scope, dpop_jkt, confidential, code_hash, \
             access_hash, access_expires_at, refresh_hash, refresh_expires_at, \
             session_expires_at, created_at, updated_at FROM oauth_token WHERE ",
            $column,
            " = ?1"
        )
    };
}

fn token_row(row: &SqliteRow) -> Result<TokenRow, sqlx::Error> {
    Ok(TokenRow {
        id: row.try_get(0)?,
        did: row.try_get(1)?,
        client_id: row.try_get(2)?,
        client_name: row.try_get(3)?,
        scope: row.try_get(4)?,
        dpop_jkt: row.try_get(5)?,
        confidential: row.try_get(6)?,
        code_hash: row.try_get(7)?,
        access_hash: row.try_get(8)?,
        access_expires_at: row.try_get(9)?,
        refresh_hash: row.try_get(10)?,
        refresh_expires_at: row.try_get(11)?,
        session_expires_at: row.try_get(12)?,
        created_at: row.try_get(13)?,
        updated_at: row.try_get(14)?,
    })
}

pub(crate) async fn insert_token(
    conn: &mut SqliteConnection,
    t: &TokenRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_token (id, did, client_id, client_name, scope, dpop_jkt, confidential,
            code_hash, access_hash, access_expires_at, refresh_hash, refresh_expires_at,
            session_expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )
    .bind(&t.id)
    .bind(&t.did)
    .bind(&t.client_id)
    .bind(&t.client_name)
    .bind(&t.scope)
    .bind(&t.dpop_jkt)
    .bind(t.confidential)
    .bind(&t.code_hash)
    .bind(&t.access_hash)
    .bind(t.access_expires_at)
    .bind(&t.refresh_hash)
    .bind(t.refresh_expires_at)
    .bind(t.session_expires_at)
    .bind(t.created_at)
    .bind(t.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn select_token_where(
    conn: &mut SqliteConnection,
    sql: &'static str,
    value: &str,
) -> Result<Option<TokenRow>, sqlx::Error> {
    let row = sqlx::query(sql).bind(value).fetch_optional(conn).await?;
    row.as_ref().map(token_row).transpose()
}

pub(crate) async fn token_by_access(
    conn: &mut SqliteConnection,
    access_hash: &str,
) -> Result<Option<TokenRow>, sqlx::Error> {
    select_token_where(conn, token_select!("access_hash"), access_hash).await
}

pub(crate) async fn token_by_refresh(
    conn: &mut SqliteConnection,
    refresh_hash: &str,
) -> Result<Option<TokenRow>, sqlx::Error> {
    select_token_where(conn, token_select!("refresh_hash"), refresh_hash).await
}

pub(crate) async fn token_by_code(
    conn: &mut SqliteConnection,
    code_hash: &str,
) -> Result<Option<TokenRow>, sqlx::Error> {
    select_token_where(conn, token_select!("code_hash"), code_hash).await
}

/// The session a spent refresh token belonged to.
pub(crate) async fn used_refresh_session(
    conn: &mut SqliteConnection,
    refresh_hash: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT token_id FROM oauth_used_refresh WHERE refresh_hash = ?1")
        .bind(refresh_hash)
        .fetch_optional(conn)
        .await
}

/// Replaces the tokens of session `t.id` whose refresh token hashed to `old_refresh`;
/// false if it was rotated meanwhile.
pub(crate) async fn rotate_token(
    conn: &mut SqliteConnection,
    t: &TokenRow,
    old_refresh: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE oauth_token SET access_hash = ?3, access_expires_at = ?4, refresh_hash = ?5,
            refresh_expires_at = ?6, updated_at = ?7
         WHERE id = ?1 AND refresh_hash = ?2",
    )
    .bind(&t.id)
    .bind(old_refresh)
    .bind(&t.access_hash)
    .bind(t.access_expires_at)
    .bind(&t.refresh_hash)
    .bind(t.refresh_expires_at)
    .bind(t.updated_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n != 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT OR REPLACE INTO oauth_used_refresh (refresh_hash, token_id, expires_at)
         VALUES (?1, ?2, ?3)",
    )
    .bind(old_refresh)
    .bind(&t.id)
    .bind(t.session_expires_at)
    .execute(conn)
    .await?;
    Ok(true)
}

/// Deletes a session and its spent refresh tokens; returns whether it existed.
pub(crate) async fn delete_token(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM oauth_used_refresh WHERE token_id = ?1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let n = sqlx::query("DELETE FROM oauth_token WHERE id = ?1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Deletes every session of `did`; returns how many.
pub(crate) async fn delete_tokens_of(
    conn: &mut SqliteConnection,
    did: &str,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "DELETE FROM oauth_used_refresh WHERE token_id IN (SELECT id FROM oauth_token WHERE did = ?1)",
    )
    .bind(did)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM oauth_request WHERE did = ?1")
        .bind(did)
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query("DELETE FROM oauth_token WHERE did = ?1")
        .bind(did)
        .execute(conn)
        .await?
        .rows_affected())
}

/// An app a person authorized, as listed to them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    pub id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub scope: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) async fn list_tokens_of(
    conn: &mut SqliteConnection,
    did: &str,
    now: i64,
) -> Result<Vec<SessionSummary>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, client_id, client_name, scope, created_at, updated_at FROM oauth_token
         WHERE did = ?1 AND session_expires_at > ?2 ORDER BY created_at, id",
    )
    .bind(did)
    .bind(now)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SessionSummary {
                id: r.try_get(0)?,
                client_id: r.try_get(1)?,
                client_name: r.try_get(2)?,
                scope: r.try_get(3)?,
                created_at: r.try_get(4)?,
                updated_at: r.try_get(5)?,
            })
        })
        .collect()
}
