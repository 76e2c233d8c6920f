//! Shared fixtures for the account tests.

use super::{AccountDb, AccountInfo, NewAccount};
use crate::auth::SessionSigner;
use crate::syntax::{Did, Handle};

/// The time every test starts at (UNIX seconds).
pub const NOW: i64 = 1_700_000_000;
/// The account password of every fixture account.
pub const PASSWORD: &str = "correct horse battery staple";
/// The service DID session tokens are issued for.
pub const SERVICE_DID: &str = "did:web:pds.example.com";

pub fn did(s: &str) -> Did {
    s.parse().expect("test DID")
}

pub fn handle(s: &str) -> Handle {
    s.parse().expect("test handle")
}

pub fn signer() -> SessionSigner {
    SessionSigner::new([9; 32], SERVICE_DID.to_owned())
}

pub async fn db() -> AccountDb {
    AccountDb::open_in_memory()
        .await
        .expect("in-memory account db")
}

/// Creates `did:plc:{name}` with handle `{name}.test` and address `{name}@example.com`,
/// without an invite, at [`NOW`].
pub async fn create(db: &AccountDb, name: &str) -> AccountInfo {
    create_at(db, name, NOW).await
}

pub async fn create_at(db: &AccountDb, name: &str, now: i64) -> AccountInfo {
    let did = did(&format!("did:plc:{name}"));
    let handle = handle(&format!("{name}.test"));
    let email = format!("{name}@example.com");
    db.create_account(NewAccount {
        did: &did,
        handle: &handle,
        email: &email,
        password: PASSWORD,
        invite_code: None,
        invite_required: false,
        now,
    })
    .await
    .expect("create fixture account")
}

/// Rows of `table` whose column `column` equals `value`.
pub async fn count(db: &AccountDb, table: &str, column: &str, value: &str) -> i64 {
    // Table and column names are test constants, never input.
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?1");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(value.to_owned())
        .fetch_one(db.pool())
        .await
        .expect("count rows")
}
