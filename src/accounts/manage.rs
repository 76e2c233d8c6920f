//! Address changes with their tokens, the sign-in factor, reserved signing keys, and the
//! administrator's listings (accounts by address or handle prefix, invite codes).

use sqlx::{Row, SqliteConnection};

use super::account::{self, AccountRef, select_account};
use super::email_token::{self, EmailTokenPurpose};
use super::invite::{self, InviteCode};
use super::{AccountDb, AccountInfo, Error, MalformedCursor};

/// What [`AccountDb::update_email_with_token`] changes.
#[derive(Debug, Clone, Copy)]
pub struct EmailUpdate<'a> {
    /// The new address (normalised, lowercase). The current one keeps its confirmation.
    pub email: &'a str,
    /// The `update_email` token; required when the current address is confirmed.
    pub token: Option<&'a str>,
    /// Turns the email sign-in factor on or off, if given.
    pub email_auth_factor: Option<bool>,
    pub now: i64,
}

/// How `com.atproto.admin.getInviteCodes` orders codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteSort {
    /// Newest first.
    Recent,
    /// Most used first.
    Usage,
}

/// A page of results and the cursor of the next page, if there may be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub cursor: Option<String>,
}

/// `primary::secondary`, the reference's keyset cursor shape.
fn split_cursor(cursor: &str) -> Result<(i64, String), MalformedCursor> {
    let (primary, secondary) = cursor.split_once("::").ok_or(MalformedCursor)?;
    let primary = primary.parse().map_err(|_| MalformedCursor)?;
    Ok((primary, secondary.to_owned()))
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` prefix pattern.
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

async fn select_invite_page(
    conn: &mut SqliteConnection,
    sort: InviteSort,
    limit: u32,
    cursor: Option<(i64, String)>,
) -> Result<Vec<(InviteCode, i64)>, Error> {
    // Keyset over (createdAt, code) or (uses, code), both descending.
    let sql = match sort {
        InviteSort::Recent => {
            "SELECT code, availableUses, disabled, forAccount, createdBy, createdAt, uses
             FROM (SELECT *, (SELECT COUNT(*) FROM invite_code_use u
                              WHERE u.code = invite_code.code) AS uses FROM invite_code)
             WHERE ?1 IS NULL OR createdAt < ?1 OR (createdAt = ?1 AND code < ?2)
             ORDER BY createdAt DESC, code DESC LIMIT ?3"
        }
        InviteSort::Usage => {
            "SELECT code, availableUses, disabled, forAccount, createdBy, createdAt, uses
             FROM (SELECT *, (SELECT COUNT(*) FROM invite_code_use u
                              WHERE u.code = invite_code.code) AS uses FROM invite_code)
             WHERE ?1 IS NULL OR uses < ?1 OR (uses = ?1 AND code < ?2)
             ORDER BY uses DESC, code DESC LIMIT ?3"
        }
    };
    let (primary, secondary) = match cursor {
        Some((p, s)) => (Some(p), s),
        None => (None, String::new()),
    };
    let rows = sqlx::query(sql)
        .bind(primary)
        .bind(secondary)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let code = InviteCode {
            code: row.try_get(0)?,
            available_uses: row.try_get(1)?,
            disabled: super::flag(row.try_get(2)?),
            for_account: row.try_get(3)?,
            created_by: row.try_get(4)?,
            created_at: row.try_get(5)?,
            uses: Vec::new(),
        };
        out.push((code, row.try_get(6)?));
    }
    Ok(out)
}

impl AccountDb {
    /// `com.atproto.server.updateEmail`, in one transaction: checks (and consumes) the
    /// `update_email` token — required while the current address is confirmed —, changes the
    /// address if it differs (unconfirmed from then on; the account's other tokens, sent to
    /// the old address, are voided), and sets the sign-in factor if asked.
    pub async fn update_email_with_token(
        &self,
        did: &str,
        update: EmailUpdate<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        let current = select_account(&mut tx, AccountRef::Did(did))
            .await?
            .ok_or(Error::AccountNotFound)?;
        match update.token {
            Some(token) => {
                email_token::consume(
                    &mut tx,
                    did,
                    EmailTokenPurpose::UpdateEmail,
                    token,
                    update.now,
                )
                .await?
            }
            None if current.email_confirmed_at.is_some() => return Err(Error::TokenRequired),
            None => {}
        }
        if current.email.as_deref() != Some(update.email) {
            if let Some(owner) = account::email_owner(&mut tx, update.email).await?
                && owner != did
            {
                return Err(Error::EmailTaken);
            }
            account::set_email(&mut tx, did, update.email).await?;
            email_token::delete_all_for(&mut tx, did).await?;
        }
        if let Some(enabled) = update.email_auth_factor {
            account::set_email_auth_factor(&mut tx, did, enabled).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The accounts of `dids` that exist, in the order asked.
    pub async fn get_accounts(&self, dids: &[String]) -> Result<Vec<AccountInfo>, Error> {
        let mut conn = self.pool.acquire().await?;
        let mut found = Vec::with_capacity(dids.len());
        for did in dids {
            if let Some(account) = select_account(&mut conn, AccountRef::Did(did)).await?
                && !found.iter().any(|a: &AccountInfo| a.did == account.did)
            {
                found.push(account);
            }
        }
        Ok(found)
    }

    /// Accounts whose address or handle starts with `prefix` (any case; all accounts when
    /// `None`), oldest first, `limit` at a time.
    pub async fn search_accounts(
        &self,
        prefix: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<AccountInfo>, Error> {
        let after = cursor.map(split_cursor).transpose()?;
        let (after_at, after_did) = match after {
            Some((at, did)) => (Some(at), did),
            None => (None, String::new()),
        };
        let pattern = prefix.map(|p| like_prefix(&p.to_lowercase()));
        let mut conn = self.pool.acquire().await?;
        let dids: Vec<String> = sqlx::query_scalar(
            "SELECT actor.did FROM actor LEFT JOIN account ON account.did = actor.did
             WHERE (?1 IS NULL OR account.email LIKE ?1 ESCAPE '\\'
                    OR actor.handle LIKE ?1 ESCAPE '\\')
               AND (?2 IS NULL OR actor.createdAt > ?2
                    OR (actor.createdAt = ?2 AND actor.did > ?3))
             ORDER BY actor.createdAt, actor.did LIMIT ?4",
        )
        .bind(pattern)
        .bind(after_at)
        .bind(after_did)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        let mut items = Vec::with_capacity(dids.len());
        for did in &dids {
            if let Some(account) = select_account(&mut conn, AccountRef::Did(did)).await? {
                items.push(account);
            }
        }
        let cursor = (items.len() == limit as usize)
            .then(|| items.last().map(|a| format!("{}::{}", a.created_at, a.did)))
            .flatten();
        Ok(Page { items, cursor })
    }

    /// Every invite code, `limit` at a time, each with its uses (newest first).
    pub async fn list_invite_codes(
        &self,
        sort: InviteSort,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<InviteCode>, Error> {
        let after = cursor
            .map(|c| {
                let (primary, code) = split_cursor(c)?;
                // Recent cursors carry milliseconds, as the reference's.
                Ok::<_, MalformedCursor>(match sort {
                    InviteSort::Recent => (primary.div_euclid(1000), code),
                    InviteSort::Usage => (primary, code),
                })
            })
            .transpose()?;
        let mut conn = self.pool.acquire().await?;
        let rows = select_invite_page(&mut conn, sort, limit, after).await?;
        let cursor = (rows.len() == limit as usize)
            .then(|| {
                rows.last().map(|(code, uses)| match sort {
                    InviteSort::Recent => format!("{}::{}", code.created_at * 1000, code.code),
                    InviteSort::Usage => format!("{uses}::{}", code.code),
                })
            })
            .flatten();
        let mut items = Vec::with_capacity(rows.len());
        for (mut code, _) in rows {
            code.uses = invite::select_uses(&mut conn, &code.code).await?;
            items.push(code);
        }
        Ok(Page { items, cursor })
    }

    /// The code `did` signed up with, with its uses, if any.
    pub async fn invited_by(&self, did: &str) -> Result<Option<InviteCode>, Error> {
        let code: Option<String> = sqlx::query_scalar(
            "SELECT code FROM invite_code_use WHERE usedBy = ?1 ORDER BY usedAt LIMIT 1",
        )
        .bind(did.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        match code {
            Some(code) => self.get_invite_code(&code).await,
            None => Ok(None),
        }
    }

    /// Keeps a reserved signing key (`keyDid` is its `did:key`), for `did` if given; a later
    /// reservation for the same DID replaces the earlier one.
    pub async fn reserve_signing_key(
        &self,
        key_did: &str,
        private_key: &[u8],
        did: Option<&str>,
        now: i64,
    ) -> Result<(), Error> {
        let mut tx = self.begin_write().await?;
        if let Some(did) = did {
            sqlx::query("DELETE FROM reserved_signing_key WHERE did = ?1")
                .bind(did.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO reserved_signing_key (keyDid, did, privateKey, createdAt)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(key_did.to_owned())
        .bind(did.map(str::to_owned))
        .bind(private_key.to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes and returns the private key reserved under `key_did` (or for the DID
    /// `key_did`), if any.
    pub async fn take_reserved_signing_key(&self, key_did: &str) -> Result<Option<Vec<u8>>, Error> {
        let mut tx = self.begin_write().await?;
        let key: Option<Vec<u8>> = sqlx::query_scalar(
            "DELETE FROM reserved_signing_key WHERE keyDid = ?1 OR did = ?1 RETURNING privateKey",
        )
        .bind(key_did.to_owned())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(key)
    }
}

#[cfg(test)]
#[path = "manage_tests.rs"]
mod tests;
