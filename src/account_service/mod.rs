//! The account flows that span the account database, the mail outbox, the repositories and
//! the firehose: email confirmation and change, password reset, the email sign-in factor,
//! account deletion and moderation mail. XRPC handlers parse their input, call one method
//! here, and map the [`Error`]; the admin API and the account's own methods share them.
//!
//! Every flow that mails a token checks first that mail can be sent, so no token is made
//! that cannot be delivered. Mail goes out in the background ([`crate::mail::Outbox`]):
//! a slow or failing SMTP server never holds up the call.

mod handles;
pub mod rules;
mod status;

pub use status::{StatusChange, StatusReport};

use crate::accounts::{
    self, AccountInfo, AccountRef, EmailTokenPurpose, EmailUpdate, NewAccount, Session,
};
use crate::crypto::{Algorithm, Keypair};
use crate::identity::plc::{self, PlcError};
use crate::mail::{MailError, Template, TemplateValues};
use crate::server::AppState;
use crate::syntax::{Did, Handle};

/// Why an account flow failed. Mapped to XRPC errors in one place (`xrpc::error_map`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Accounts(#[from] accounts::Error),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("account does not have an email address")]
    NoEmail,
    /// `confirmEmail` named another address than the account's.
    #[error("the email address is not the account's")]
    EmailMismatch,
    /// The account signs in with a mailed code; one was just sent.
    #[error("a sign-in code has been sent to the account's email address")]
    AuthFactorTokenRequired,
    /// The sign-in code is wrong, used or expired.
    #[error("invalid sign-in code")]
    InvalidSignInCode,
    /// No invite code was given where one is required.
    #[error("no invite code provided")]
    InviteCodeRequired,
    /// The genesis operation of a new DID could not be built.
    #[error("cannot build the DID: {0}")]
    Genesis(#[from] plc::OpError),
    #[error(transparent)]
    Plc(#[from] PlcError),
    /// Boxed: the actor error is large, and this one travels through every flow.
    #[error(transparent)]
    Actor(Box<crate::actor::Error>),
    #[error(transparent)]
    Sequencer(#[from] crate::sequencer::Error),
    #[error(transparent)]
    Blobs(#[from] crate::blobs::Error),
    /// A PLC update operation could not be built.
    #[error("cannot build the PLC operation: {0}")]
    PlcUpdate(plc::OpError),
    /// The handle breaks the handle rules.
    #[error("{0}")]
    InvalidHandle(String),
    /// The handle is reserved or held by another account.
    #[error("{0}")]
    HandleNotAvailable(String),
    /// The handle is not under one of the service's handle domains.
    #[error("not a supported handle domain")]
    UnsupportedDomain,
    /// The password breaks the password rules.
    #[error("{0}")]
    InvalidPassword(String),
    /// The DID and password do not match an account's own password.
    #[error("invalid did or password")]
    BadCredentials,
    /// The request cannot be carried out as asked (the reason is for the caller).
    #[error("{0}")]
    Refused(String),
}

impl From<crate::actor::Error> for Error {
    fn from(err: crate::actor::Error) -> Self {
        Error::Actor(Box::new(err))
    }
}

/// The account flows over one server's services. Cheap: a borrowed view of the state.
#[derive(Clone, Copy)]
pub struct AccountService<'a> {
    state: &'a AppState,
}

impl AppState {
    pub fn account_service(&self) -> AccountService<'_> {
        AccountService { state: self }
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// What [`AccountService::create_account`] needs, already checked for syntax.
#[derive(Debug, Clone, Copy)]
pub struct AccountRequest<'a> {
    /// A handle under one of the service domains.
    pub handle: &'a Handle,
    /// Normalised (lowercase).
    pub email: &'a str,
    pub password: &'a str,
    pub invite_code: Option<&'a str>,
    /// A `did:key` listed first among the DID's rotation keys.
    pub recovery_key: Option<&'a str>,
}

/// A new account and its first session.
#[derive(Debug)]
pub struct CreatedAccount {
    pub did: Did,
    pub session: Session,
}

impl AccountService<'_> {
    fn db(&self) -> &accounts::AccountDb {
        self.state.accounts()
    }

    /// The account, whatever its status.
    async fn account(&self, did: &str) -> Result<AccountInfo, Error> {
        self.db()
            .get_account(AccountRef::Did(did))
            .await?
            .ok_or(Error::Accounts(accounts::Error::AccountNotFound))
    }

    /// Mails `template` with `values` to `to` (in the background).
    fn send(&self, template: Template, to: &str, values: TemplateValues) -> Result<(), Error> {
        let outbox = self.state.mail();
        outbox.queue(outbox.render(template, to, values))?;
        Ok(())
    }

    /// A new token of `purpose` for `account`, mailed with `template` to its address.
    async fn mail_token(
        &self,
        account: &AccountInfo,
        purpose: EmailTokenPurpose,
        template: Template,
    ) -> Result<(), Error> {
        self.state.mail().ensure_enabled()?;
        let email = account.email.as_deref().ok_or(Error::NoEmail)?;
        if self.state.config().rate_limits_enabled {
            let key = format!("{}:{}", purpose.as_str(), account.did);
            self.state
                .mail_limiter()
                .check(&key, now())
                .map_err(accounts::Error::from)?;
        }
        let token = self
            .db()
            .create_email_token(&account.did, purpose, now())
            .await?;
        let handle = account.handle.as_deref().unwrap_or(email);
        self.send(
            template,
            email,
            TemplateValues::token(token).with_handle(handle),
        )
    }

    /// `com.atproto.server.requestEmailConfirmation`.
    pub async fn request_email_confirmation(&self, did: &str) -> Result<(), Error> {
        let account = self.account(did).await?;
        self.mail_token(
            &account,
            EmailTokenPurpose::ConfirmEmail,
            Template::ConfirmEmail,
        )
        .await
    }

    /// `com.atproto.server.confirmEmail`: `email` must be the account's current address.
    pub async fn confirm_email(&self, did: &str, email: &str, token: &str) -> Result<(), Error> {
        let account = self.account(did).await?;
        if account.email.as_deref() != Some(email.trim().to_lowercase().as_str()) {
            return Err(Error::EmailMismatch);
        }
        self.db().confirm_email(did, token, now()).await?;
        Ok(())
    }

    /// `com.atproto.server.requestEmailUpdate`: whether a token is required (the address is
    /// confirmed), in which case one was mailed to the current address.
    pub async fn request_email_update(&self, did: &str) -> Result<bool, Error> {
        let account = self.account(did).await?;
        if account.email.is_none() {
            return Err(Error::NoEmail);
        }
        if account.email_confirmed_at.is_none() {
            return Ok(false);
        }
        self.mail_token(
            &account,
            EmailTokenPurpose::UpdateEmail,
            Template::UpdateEmail,
        )
        .await?;
        Ok(true)
    }

    /// `com.atproto.server.updateEmail` with an already normalised `email`.
    pub async fn update_email(
        &self,
        did: &str,
        email: &str,
        token: Option<&str>,
        email_auth_factor: Option<bool>,
    ) -> Result<(), Error> {
        self.db()
            .update_email_with_token(
                did,
                EmailUpdate {
                    email,
                    token,
                    email_auth_factor,
                    now: now(),
                },
            )
            .await?;
        Ok(())
    }

    /// `com.atproto.server.requestPasswordReset` for a normalised address. Answers
    /// [`Error::NoEmail`] for an address no account has, as the reference does.
    pub async fn request_password_reset(&self, email: &str) -> Result<(), Error> {
        self.state.mail().ensure_enabled()?;
        let account = self
            .db()
            .get_account(AccountRef::Email(email))
            .await?
            .ok_or(Error::NoEmail)?;
        self.mail_token(
            &account,
            EmailTokenPurpose::ResetPassword,
            Template::ResetPassword,
        )
        .await
    }

    /// `com.atproto.server.resetPassword`: the token names the account; every session of
    /// the account ends.
    pub async fn reset_password(&self, token: &str, password: &str) -> Result<(), Error> {
        self.db().reset_password(token, password, now()).await?;
        Ok(())
    }

    /// `com.atproto.identity.requestPlcOperationSignature`: mails a `plc_operation` token.
    pub async fn request_plc_operation_signature(&self, did: &str) -> Result<(), Error> {
        let account = self.account(did).await?;
        self.mail_token(
            &account,
            EmailTokenPurpose::PlcOperation,
            Template::PlcOperation,
        )
        .await
    }

    /// `com.atproto.server.requestAccountDelete`.
    pub async fn request_account_delete(&self, did: &str) -> Result<(), Error> {
        let account = self.account(did).await?;
        self.mail_token(
            &account,
            EmailTokenPurpose::DeleteAccount,
            Template::DeleteAccount,
        )
        .await
    }

    /// The second step of a password login to an account with the email sign-in factor:
    /// without `code`, mails one and answers [`Error::AuthFactorTokenRequired`]; with one,
    /// checks and spends it.
    pub async fn check_sign_in_factor(
        &self,
        account: &AccountInfo,
        code: Option<&str>,
    ) -> Result<(), Error> {
        let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
            self.mail_token(account, EmailTokenPurpose::SignIn, Template::SignIn)
                .await?;
            return Err(Error::AuthFactorTokenRequired);
        };
        match self
            .db()
            .assert_valid_email_token(&account.did, EmailTokenPurpose::SignIn, code, now())
            .await
        {
            Ok(()) => Ok(()),
            Err(accounts::Error::InvalidEmailToken | accounts::Error::ExpiredEmailToken) => {
                Err(Error::InvalidSignInCode)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// `com.atproto.admin.sendEmail`: whether the SMTP server accepted the message (a
    /// failed attempt is retried in the background).
    pub async fn send_moderation_mail(
        &self,
        did: &str,
        subject: Option<&str>,
        content: &str,
    ) -> Result<bool, Error> {
        let account = self.account(did).await?;
        let email = account.email.as_deref().ok_or(Error::NoEmail)?;
        let outbox = self.state.moderation_mail();
        outbox.ensure_enabled()?;
        let values = TemplateValues {
            content: content.to_owned(),
            subject: subject.map(str::to_owned),
            ..TemplateValues::default()
        };
        let mail = outbox.render(Template::Moderation, email, values);
        match outbox.send_now(mail).await {
            Ok(()) => Ok(true),
            Err(MailError::NotConfigured) => Err(MailError::NotConfigured.into()),
            Err(_) => Ok(false),
        }
    }

    /// `com.atproto.admin.updateAccountEmail`: sets the address (unconfirmed) without a
    /// token.
    pub async fn set_email(&self, did: &str, email: &str) -> Result<(), Error> {
        self.db().update_email(did, email).await?;
        Ok(())
    }

    /// Sets a new password and ends every session.
    pub async fn set_password(&self, did: &str, password: &str) -> Result<(), Error> {
        self.db().update_password(did, password).await?;
        Ok(())
    }

    /// Deletes the account for good: its repository and blobs, its rows, and its earlier
    /// firehose events; announces `#account` (deleted).
    pub async fn delete_account(&self, did: &Did) -> Result<(), Error> {
        let repo = self.state.repo();
        repo.destroy_repo(did).await?;
        self.db().delete_account(did.as_str()).await?;
        let seq = repo.sequence_account(did, false, Some("deleted")).await?;
        // As the reference: the account's earlier events leave the firehose's backfill.
        repo.sequencer()
            .delete_account_events(did.as_str(), seq)
            .await?;
        Ok(())
    }

    /// Creates an account: a new did:plc registered with the PLC directory (the server's
    /// rotation key listed, after the recovery key if given), its repository, the account
    /// rows (consuming the invite code) and a first session. A failure after the repository
    /// was created removes it again.
    pub async fn create_account(&self, req: AccountRequest<'_>) -> Result<CreatedAccount, Error> {
        let config = self.state.config();
        self.check_new_account(&req).await?;

        let mut rotation_keys: Vec<String> =
            req.recovery_key.map(str::to_owned).into_iter().collect();
        let server_key = self.state.plc_rotation_key().public_key().to_did_key();
        if !rotation_keys.contains(&server_key) {
            rotation_keys.push(server_key);
        }
        let signing_key = Keypair::generate(Algorithm::K256);
        let (did, op) = plc::create_genesis(
            &signing_key.public_key().to_did_key(),
            rotation_keys,
            req.handle,
            &config.public_url,
            self.state.plc_rotation_key(),
        )?;
        self.state.resolver().plc().submit(&did, &op).await?;
        self.state
            .repo()
            .create_repo(&did, &signing_key, Some(req.handle))
            .await?;
        self.finish_account(&req, did, false).await
    }

    /// Creates an account for an existing DID that is moving here (`createAccount` with
    /// `did`; the caller has checked the old host's service token): a new signing key and an
    /// empty repository, announced on nothing, and the account **deactivated** until the
    /// repository is imported, the DID points here and `activateAccount` is called. Invite
    /// code, handle and email rules are those of a new account.
    pub async fn create_migrating_account(
        &self,
        req: AccountRequest<'_>,
        did: &Did,
    ) -> Result<CreatedAccount, Error> {
        self.check_new_account(&req).await?;
        if self
            .db()
            .get_account(AccountRef::Did(did.as_str()))
            .await?
            .is_some()
        {
            return Err(accounts::Error::AccountExists.into());
        }
        // A key reserved for this DID (`reserveSigningKey`) is the one the user may already
        // have put in the DID document.
        let reserved = self.db().take_reserved_signing_key(did.as_str()).await?;
        let signing_key = match reserved
            .and_then(|bytes| Keypair::from_private_bytes(Algorithm::K256, &bytes).ok())
        {
            Some(key) => key,
            None => Keypair::generate(Algorithm::K256),
        };
        self.state
            .repo()
            .create_repo(did, &signing_key, None)
            .await?;
        self.finish_account(&req, did.clone(), true).await
    }

    /// Invite code, handle and email checks of a new account.
    async fn check_new_account(&self, req: &AccountRequest<'_>) -> Result<(), Error> {
        let config = self.state.config();
        let db = self.db();
        match req.invite_code {
            Some(code) => match db.get_invite_code(code).await? {
                Some(found)
                    if !found.disabled
                        && i64::try_from(found.uses.len()).unwrap_or(i64::MAX)
                            < found.available_uses => {}
                _ => return Err(accounts::Error::InvalidInviteCode.into()),
            },
            None if config.invite_required => return Err(Error::InviteCodeRequired),
            None => {}
        }
        if db
            .get_account(AccountRef::Handle(req.handle.as_str()))
            .await?
            .is_some()
        {
            return Err(accounts::Error::HandleTaken.into());
        }
        if db
            .get_account(AccountRef::Email(req.email))
            .await?
            .is_some()
        {
            return Err(accounts::Error::EmailTaken.into());
        }
        Ok(())
    }

    /// The account rows (consuming the invite code; deactivated if asked) and a first
    /// session, for a repository just created; the repository is removed again on failure.
    async fn finish_account(
        &self,
        req: &AccountRequest<'_>,
        did: Did,
        deactivated: bool,
    ) -> Result<CreatedAccount, Error> {
        let config = self.state.config();
        let db = self.db();
        let repo = self.state.repo();
        let now = now();
        let created = async {
            db.create_account(NewAccount {
                did: &did,
                handle: req.handle,
                email: req.email,
                password: req.password,
                invite_code: req.invite_code,
                invite_required: config.invite_required,
                now,
            })
            .await?;
            if deactivated {
                db.deactivate(did.as_str(), now, None).await?;
            }
            db.create_session_tokens(did.as_str(), None, now, self.state.session())
                .await
        }
        .await;
        match created {
            Ok(session) => Ok(CreatedAccount { did, session }),
            Err(err) => {
                if let Err(cleanup) = repo.destroy_repo(&did).await {
                    tracing::error!(%did, error = %cleanup, "cannot remove the repository of a failed account creation");
                }
                Err(err.into())
            }
        }
    }

    /// The account's handle as a [`Handle`], if it has a valid one.
    pub async fn handle_of(&self, did: &str) -> Result<Option<Handle>, Error> {
        Ok(self.account(did).await?.handle.and_then(|h| h.parse().ok()))
    }
}
