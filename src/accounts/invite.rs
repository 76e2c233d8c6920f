//! Invite codes: the `invite_code` and `invite_code_use` tables.

use rand::Rng;
use rand::rngs::OsRng;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{AccountDb, Error, flag};
use crate::syntax::Did;

/// `forAccount` and `createdBy` of codes an administrator creates for no one in particular.
pub const ADMIN: &str = "admin";

/// The characters of the random part: lowercase RFC 4648 base32.
const CODE_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// How many times a colliding random code is redrawn (50 random bits: never, in practice).
const MAX_DRAWS: usize = 8;

/// An invite code and its uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteCode {
    pub code: String,
    /// How many accounts the code may create.
    pub available_uses: i64,
    pub disabled: bool,
    /// The DID the code was issued to, or `admin`.
    pub for_account: String,
    /// Who created it: a DID or `admin`.
    pub created_by: String,
    pub created_at: i64,
    /// Newest first.
    pub uses: Vec<InviteCodeUse>,
}

/// One account created with a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteCodeUse {
    pub used_by: String,
    pub used_at: i64,
}

/// The codes created for one account (`com.atproto.server.createInviteCodes` output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCodes {
    /// A DID, or `admin`.
    pub account: String,
    pub codes: Vec<String>,
}

/// A new code in the reference's shape: the hostname with `.` replaced by `-` (so it does
/// not read as a link), then two groups of five lowercase base32 characters (50 bits):
/// `pds-example-com-abc23-4567x`.
pub fn generate_invite_code(hostname: &str) -> String {
    let mut code = hostname.replace('.', "-");
    code.push('-');
    for i in 0..10 {
        if i == 5 {
            code.push('-');
        }
        let index = OsRng.gen_range(0..CODE_ALPHABET.len());
        code.push(char::from(CODE_ALPHABET[index]));
    }
    code
}

/// The invite-code query followed by `$rest` (a literal: sqlx takes static SQL only).
macro_rules! select_code_then {
    ($rest:literal) => {
        concat!(
            "SELECT code, availableUses, disabled, forAccount, createdBy, createdAt ",
            "FROM invite_code ",
            $rest
        )
    };
}

fn code_from_row(row: &SqliteRow) -> Result<InviteCode, sqlx::Error> {
    Ok(InviteCode {
        code: row.try_get(0)?,
        available_uses: row.try_get(1)?,
        disabled: flag(row.try_get(2)?),
        for_account: row.try_get(3)?,
        created_by: row.try_get(4)?,
        created_at: row.try_get(5)?,
        uses: Vec::new(),
    })
}

/// Inserts a code unless it exists; returns whether it was inserted.
pub async fn insert_code(
    conn: &mut SqliteConnection,
    code: &str,
    available_uses: i64,
    for_account: &str,
    created_by: &str,
    now: i64,
) -> Result<bool, Error> {
    let inserted = sqlx::query(
        "INSERT INTO invite_code (code, availableUses, disabled, forAccount, createdBy, createdAt)
         VALUES (?1, ?2, 0, ?3, ?4, ?5) ON CONFLICT (code) DO NOTHING",
    )
    .bind(code.to_owned())
    .bind(available_uses)
    .bind(for_account.to_owned())
    .bind(created_by.to_owned())
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The code (without its uses), if it exists.
pub async fn select_code(
    conn: &mut SqliteConnection,
    code: &str,
) -> Result<Option<InviteCode>, Error> {
    let row = sqlx::query(select_code_then!("WHERE code = ?1"))
        .bind(code.to_owned())
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(code_from_row).transpose()?)
}

/// The codes issued to `account` (without their uses), oldest first.
pub async fn select_codes_for(
    conn: &mut SqliteConnection,
    account: &str,
) -> Result<Vec<InviteCode>, Error> {
    let rows = sqlx::query(select_code_then!(
        "WHERE forAccount = ?1 ORDER BY createdAt, code"
    ))
    .bind(account.to_owned())
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(code_from_row)
        .collect::<Result<_, sqlx::Error>>()?)
}

/// The uses of `code`, newest first.
pub async fn select_uses(
    conn: &mut SqliteConnection,
    code: &str,
) -> Result<Vec<InviteCodeUse>, Error> {
    let rows = sqlx::query(
        "SELECT usedBy, usedAt FROM invite_code_use WHERE code = ?1
         ORDER BY usedAt DESC, usedBy",
    )
    .bind(code.to_owned())
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(InviteCodeUse {
                used_by: row.try_get(0)?,
                used_at: row.try_get(1)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}

/// Fails with [`Error::InvalidInviteCode`] unless `code` exists, is not disabled, has uses
/// left, and was not issued to a taken-down account.
pub async fn ensure_available(conn: &mut SqliteConnection, code: &str) -> Result<(), Error> {
    let available: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM invite_code
         WHERE code = ?1 AND disabled = 0
           AND availableUses > (SELECT COUNT(*) FROM invite_code_use WHERE code = ?1)
           AND NOT EXISTS (SELECT 1 FROM actor
                           WHERE actor.did = invite_code.forAccount
                             AND actor.takedownRef IS NOT NULL)",
    )
    .bind(code.to_owned())
    .fetch_optional(conn)
    .await?;
    available.map(drop).ok_or(Error::InvalidInviteCode)
}

/// Records that `did` was created with `code`.
pub async fn record_use(
    conn: &mut SqliteConnection,
    code: &str,
    did: &str,
    now: i64,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO invite_code_use (code, usedBy, usedAt) VALUES (?1, ?2, ?3)")
        .bind(code.to_owned())
        .bind(did.to_owned())
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Disables one code; returns the rows changed.
pub async fn disable_code(conn: &mut SqliteConnection, code: &str) -> Result<u64, Error> {
    Ok(
        sqlx::query("UPDATE invite_code SET disabled = 1 WHERE code = ?1")
            .bind(code.to_owned())
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Disables every code issued to `account`; returns the rows changed.
pub async fn disable_codes_for(conn: &mut SqliteConnection, account: &str) -> Result<u64, Error> {
    Ok(
        sqlx::query("UPDATE invite_code SET disabled = 1 WHERE forAccount = ?1")
            .bind(account.to_owned())
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Deletes the codes issued to `account` (their uses cascade); returns the codes deleted.
pub async fn delete_for_account(conn: &mut SqliteConnection, account: &str) -> Result<u64, Error> {
    Ok(sqlx::query("DELETE FROM invite_code WHERE forAccount = ?1")
        .bind(account.to_owned())
        .execute(conn)
        .await?
        .rows_affected())
}

impl AccountDb {
    /// Creates `count` codes of `uses` uses for each of `for_accounts`, or for `admin` when
    /// the list is empty (as `com.atproto.server.createInviteCodes`), all in one transaction.
    pub async fn create_invite_codes(
        &self,
        hostname: &str,
        count: usize,
        uses: i64,
        for_accounts: &[Did],
        created_by: &str,
        now: i64,
    ) -> Result<Vec<AccountCodes>, Error> {
        let accounts: Vec<&str> = if for_accounts.is_empty() {
            vec![ADMIN]
        } else {
            for_accounts.iter().map(Did::as_str).collect()
        };
        let mut tx = self.begin_write().await?;
        let mut created = Vec::with_capacity(accounts.len());
        for account in accounts {
            let mut codes = Vec::with_capacity(count);
            for _ in 0..count {
                let mut draws = 0;
                let code = loop {
                    let code = generate_invite_code(hostname);
                    if insert_code(&mut tx, &code, uses, account, created_by, now).await? {
                        break code;
                    }
                    draws += 1;
                    if draws == MAX_DRAWS {
                        return Err(Error::Internal("invite codes keep colliding".into()));
                    }
                };
                codes.push(code);
            }
            created.push(AccountCodes {
                account: account.to_owned(),
                codes,
            });
        }
        tx.commit().await?;
        Ok(created)
    }

    /// One code with its uses.
    pub async fn get_invite_code(&self, code: &str) -> Result<Option<InviteCode>, Error> {
        let mut conn = self.pool.acquire().await?;
        let Some(mut found) = select_code(&mut conn, code).await? else {
            return Ok(None);
        };
        found.uses = select_uses(&mut conn, code).await?;
        Ok(Some(found))
    }

    /// The codes issued to `did`, oldest first, each with its uses.
    pub async fn get_account_invite_codes(&self, did: &str) -> Result<Vec<InviteCode>, Error> {
        let mut conn = self.pool.acquire().await?;
        let mut codes = select_codes_for(&mut conn, did).await?;
        for code in &mut codes {
            code.uses = select_uses(&mut conn, &code.code).await?;
        }
        Ok(codes)
    }

    /// Disables the listed codes and every code issued to the listed accounts; returns how
    /// many codes were changed (`com.atproto.admin.disableInviteCodes`).
    pub async fn disable_invite_codes(
        &self,
        codes: &[String],
        accounts: &[String],
    ) -> Result<u64, Error> {
        let mut tx = self.begin_write().await?;
        let mut changed = 0;
        for code in codes {
            changed += disable_code(&mut tx, code).await?;
        }
        for account in accounts {
            changed += disable_codes_for(&mut tx, account).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
}

#[cfg(test)]
#[path = "invite_tests.rs"]
mod tests;
