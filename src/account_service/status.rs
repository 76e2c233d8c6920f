//! An account's status: deactivation, moderation (takedown), deletion with the account's
//! own credentials, and what `checkAccountStatus` reports.

use cid::Cid;

use super::{AccountService, Error, now};
use crate::accounts::{self, AccountRef, AccountStatus, EmailTokenPurpose};
use crate::syntax::Did;

/// What `com.atproto.server.checkAccountStatus` reports of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub activated: bool,
    /// The DID document points here as activation requires.
    pub valid_did: bool,
    pub repo_commit: Cid,
    pub repo_rev: String,
    pub repo_blocks: i64,
    pub indexed_records: i64,
    pub private_state_values: i64,
    /// Distinct blobs the records reference.
    pub expected_blobs: i64,
    /// Of those, the ones whose bytes are here.
    pub imported_blobs: i64,
}

/// A change of an account's moderation state (`admin.updateSubjectStatus`); `None` leaves
/// that part as it is.
#[derive(Debug, Clone, Default)]
pub struct StatusChange {
    /// `Some(Some(ref))` takes the account down, `Some(None)` lifts the takedown.
    pub takedown: Option<Option<String>>,
    /// `Some(true)` deactivates, `Some(false)` reactivates.
    pub deactivated: Option<bool>,
}

impl AccountService<'_> {
    /// What `checkAccountStatus` reports of `did`.
    pub async fn status_report(&self, did: &Did) -> Result<StatusReport, Error> {
        let account = self.account(did.as_str()).await?;
        let repo = self.state.repo();
        let root = repo.current_root(did).await?;
        let counts = repo.store_counts(did).await?;
        let mut imported = 0i64;
        for cid in &counts.referenced_blobs {
            if self.state.blobs().has(did, cid).await? {
                imported += 1;
            }
        }
        let valid_did = self
            .state
            .migration()
            .check_did_points_here(did)
            .await
            .is_ok();
        Ok(StatusReport {
            activated: account.deactivated_at.is_none(),
            valid_did,
            repo_commit: root.cid,
            repo_rev: root.rev,
            repo_blocks: counts.blocks,
            indexed_records: counts.records,
            private_state_values: counts.preferences,
            expected_blobs: i64::try_from(counts.referenced_blobs.len()).unwrap_or(i64::MAX),
            imported_blobs: imported,
        })
    }

    /// `com.atproto.server.deactivateAccount`: marks the account deactivated (to be deleted
    /// after `delete_after`, a Unix time, if given) and announces `#account` (deactivated).
    pub async fn deactivate(&self, did: &Did, delete_after: Option<i64>) -> Result<(), Error> {
        self.db()
            .deactivate(did.as_str(), now(), delete_after)
            .await?;
        self.state
            .repo()
            .sequence_account(did, false, Some("deactivated"))
            .await?;
        Ok(())
    }

    /// Applies a takedown and/or deactivation to an account, then announces its resulting
    /// status with an `#account` event (also when nothing changed, as the reference).
    pub async fn change_status(&self, did: &Did, change: StatusChange) -> Result<(), Error> {
        self.account(did.as_str()).await?;
        if let Some(reference) = &change.takedown {
            self.db()
                .update_takedown(did.as_str(), reference.as_deref())
                .await?;
        }
        match change.deactivated {
            Some(true) => self.db().deactivate(did.as_str(), now(), None).await?,
            Some(false) => self.db().activate(did.as_str()).await?,
            None => {}
        }
        let status = self.db().account_status(did.as_str()).await?;
        self.state
            .repo()
            .sequence_account(did, status == AccountStatus::Active, status.as_lexicon())
            .await?;
        Ok(())
    }

    /// A person's sign-in with the account password (app passwords do not open the
    /// account's own pages) and, where the account has the email sign-in factor, the mailed
    /// code ([`Self::check_sign_in_factor`]). A taken-down account is refused.
    pub async fn password_sign_in(
        &self,
        identifier: &str,
        password: &str,
        code: Option<&str>,
        ip: Option<std::net::IpAddr>,
    ) -> Result<accounts::AccountInfo, Error> {
        let login = self.db().login(identifier, password, ip, now()).await?;
        if login.app_password.is_some() {
            return Err(Error::BadCredentials);
        }
        if login.account.email_auth_factor {
            self.check_sign_in_factor(&login.account, code).await?;
        }
        Ok(login.account)
    }

    /// Changes the password of a signed-in person who knows the current one; every session
    /// ends, as with a reset.
    pub async fn change_password(&self, did: &Did, current: &str, new: &str) -> Result<(), Error> {
        match self.db().login(did.as_str(), current, None, now()).await {
            Ok(login) if login.app_password.is_none() => {}
            Ok(_) | Err(accounts::Error::AuthFailed) => return Err(Error::BadCredentials),
            Err(err) => return Err(err.into()),
        }
        super::rules::check_password(new)?;
        self.set_password(did.as_str(), new).await
    }

    /// `com.atproto.server.deleteAccount`: with the account's own password (not an app
    /// password; a taken-down account may still delete itself) and the mailed token,
    /// deletes the account ([`Self::delete_account`]).
    pub async fn delete_with_credentials(
        &self,
        did: &Did,
        password: &str,
        token: &str,
    ) -> Result<(), Error> {
        if self
            .db()
            .get_account(AccountRef::Did(did.as_str()))
            .await?
            .is_none()
        {
            return Err(Error::Refused("account not found".into()));
        }
        let now = now();
        match self.db().login(did.as_str(), password, None, now).await {
            Ok(login) if login.app_password.is_none() => {}
            Ok(_) | Err(accounts::Error::AuthFailed) => return Err(Error::BadCredentials),
            Err(accounts::Error::AccountTakedown) => {}
            Err(err) => return Err(err.into()),
        }
        self.db()
            .assert_valid_email_token(
                did.as_str(),
                EmailTokenPurpose::DeleteAccount,
                token.trim(),
                now,
            )
            .await?;
        self.delete_account(did).await
    }
}
