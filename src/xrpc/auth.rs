//! Request authentication: axum extractors over the `Authorization` header.
//!
//! One routine, [`authenticate`], checks a Bearer session token and the account's status; the
//! extractor types only say what a route requires, so a handler's signature documents its
//! access rule. Statuses and error names follow the reference PDS: a missing token is 401
//! `AuthenticationRequired`, a bad or expired token is 400 `InvalidToken`/`ExpiredToken` (which
//! is what makes official clients refresh their session), a taken-down account is 401
//! `AccountTakedown` and a deactivated one 401 `AccountDeactivated`.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::accounts::{AccountInfo, AccountRef, AccountStatus};
use crate::auth::{AccessScope, AuthError, RefreshClaims};
use crate::error::{ErrorName, XrpcError};
use crate::server::AppState;
use crate::syntax::Did;
use crate::xrpc::oauth::OAuthAccess;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub did: Did,
    pub scope: AccessScope,
    /// The grant of an OAuth (DPoP) token; `None` for session JWTs.
    pub oauth: Option<std::sync::Arc<crate::oauth::AccessGrant>>,
    /// The caller's account as this request's status check read it, so the handler need
    /// not read it again.
    pub account: std::sync::Arc<AccountInfo>,
}

impl Caller {
    /// Refuses an OAuth caller whose scopes do not allow `action` on `collection`
    /// (session JWTs carry no permission scopes and pass).
    pub fn require_repo(
        &self,
        collection: &str,
        action: crate::oauth::scope::RepoAction,
    ) -> Result<(), XrpcError> {
        match &self.oauth {
            Some(grant) if !grant.permissions.allows_repo(collection, action) => {
                Err(insufficient_scope(format!(
                    "Missing required scope \"repo:{collection}?action={}\"",
                    action.as_str()
                )))
            }
            _ => Ok(()),
        }
    }

    /// Refuses an OAuth caller whose scopes do not allow calling `lxm` (`*`: any method) on
    /// the service `aud`, as a service token or through the proxy.
    pub fn require_rpc(&self, lxm: &str, aud: &str) -> Result<(), XrpcError> {
        match &self.oauth {
            Some(grant) if !grant.permissions.allows_rpc(lxm, aud) => Err(insufficient_scope(
                format!("Missing required scope \"rpc:{lxm}?aud={aud}\""),
            )),
            _ => Ok(()),
        }
    }

    /// Refuses an OAuth caller whose scopes do not allow uploading a blob of `mime`.
    pub fn require_blob(&self, mime: &str) -> Result<(), XrpcError> {
        match &self.oauth {
            Some(grant) if !grant.permissions.allows_blob(mime) => Err(insufficient_scope(
                format!("Missing required scope \"blob:{mime}\""),
            )),
            _ => Ok(()),
        }
    }
}

/// 403 for an OAuth token without the permission a call needs (the reference's
/// `ScopeMissingError` is a 403 `InvalidToken`).
fn insufficient_scope(message: String) -> XrpcError {
    XrpcError::new(
        axum::http::StatusCode::FORBIDDEN,
        ErrorName::InvalidToken,
        message,
    )
}

/// What a route demands of the caller's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requirement {
    /// Any access token (main password or app password) of an active account.
    Standard,
    /// Like `Standard`, but a deactivated account may call (getSession, activateAccount…).
    AllowDeactivated,
    /// A main-password session, or a privileged app password.
    Privileged,
    /// A main-password session only (managing app passwords, deleting the account…).
    Full,
    /// Like `Full`, but a deactivated account may call (importRepo, submitPlcOperation and
    /// activateAccount while an account moves in).
    FullAllowDeactivated,
}

impl Requirement {
    fn allows_deactivated(self) -> bool {
        matches!(
            self,
            Requirement::AllowDeactivated | Requirement::FullAllowDeactivated
        )
    }

    fn needs_full(self) -> bool {
        matches!(self, Requirement::Full | Requirement::FullAllowDeactivated)
    }
}

/// The permission an OAuth token needs on a route that takes one: the token is checked
/// against it instead of the session requirement, as the reference's `authorize` callbacks
/// do. Routes without a rule refuse OAuth tokens where they need a full session.
#[derive(Debug, Clone, Copy)]
struct OAuthRule {
    /// The scope that would allow the call, for the refusal's message.
    scope: &'static str,
    allows: fn(&crate::oauth::scope::Permissions) -> bool,
}

/// The Bearer token of a request, if any.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, XrpcError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| XrpcError::invalid_token("Malformed authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(XrpcError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            ErrorName::AuthenticationRequired,
            "Unexpected authorization type",
        )),
    }
}

fn token_error(err: AuthError) -> XrpcError {
    match err {
        AuthError::ExpiredToken => XrpcError::expired_token("Token has expired"),
        AuthError::InvalidToken(_) => XrpcError::invalid_token("Token could not be verified"),
    }
}

/// A caller whose DPoP-bound OAuth token the resource layer already checked
/// ([`crate::xrpc::oauth::dpop_resource_auth`]): `transition:generic` stands for an app
/// password, `transition:chat.bsky` for a privileged one; full-access routes stay closed.
async fn authenticate_oauth(
    state: &AppState,
    grant: std::sync::Arc<crate::oauth::AccessGrant>,
    requirement: Requirement,
    rule: Option<OAuthRule>,
) -> Result<Caller, XrpcError> {
    let did: Did = grant
        .did
        .parse()
        .map_err(|_| XrpcError::invalid_token("Token could not be verified"))?;
    let scope = if grant.permissions.chat {
        AccessScope::AppPassPrivileged
    } else {
        AccessScope::AppPass
    };
    match (rule, requirement) {
        (Some(rule), _) if !(rule.allows)(&grant.permissions) => {
            return Err(insufficient_scope(format!(
                "Missing required scope \"{}\"",
                rule.scope
            )));
        }
        (Some(_), _) => {}
        (None, r) if r.needs_full() => {
            return Err(insufficient_scope("Bad token scope".to_owned()));
        }
        (None, Requirement::Privileged) if !scope.is_privileged() => {
            return Err(insufficient_scope("Bad token scope".to_owned()));
        }
        _ => {}
    }
    let account = check_status(state, &did, requirement).await?;
    Ok(Caller {
        did,
        scope,
        oauth: Some(grant),
        account,
    })
}

async fn authenticate(
    parts: &Parts,
    state: &AppState,
    requirement: Requirement,
) -> Result<Caller, XrpcError> {
    authenticate_with(parts, state, requirement, None).await
}

async fn authenticate_with(
    parts: &Parts,
    state: &AppState,
    requirement: Requirement,
    rule: Option<OAuthRule>,
) -> Result<Caller, XrpcError> {
    if let Some(OAuthAccess(grant)) = parts.extensions.get::<OAuthAccess>().cloned() {
        return authenticate_oauth(state, grant, requirement, rule).await;
    }
    let token = bearer_token(&parts.headers)?
        .ok_or_else(|| XrpcError::auth_required("Authentication Required"))?;
    let claims = state
        .session()
        .verify_access(token, chrono::Utc::now().timestamp())
        .map_err(token_error)?;
    let did: Did = claims
        .did
        .parse()
        .map_err(|_| XrpcError::invalid_token("Token could not be verified"))?;
    match requirement {
        r if r.needs_full() && !claims.scope.is_full() => {
            return Err(XrpcError::invalid_token("Bad token scope"));
        }
        Requirement::Privileged if !claims.scope.is_privileged() => {
            return Err(XrpcError::invalid_token("Bad token scope"));
        }
        _ => {}
    }
    let account = check_status(state, &did, requirement).await?;
    Ok(Caller {
        did,
        scope: claims.scope,
        oauth: None,
        account,
    })
}

/// Refuses a deactivated (unless allowed), taken-down or deleted account; else the account.
async fn check_status(
    state: &AppState,
    did: &Did,
    requirement: Requirement,
) -> Result<std::sync::Arc<AccountInfo>, XrpcError> {
    let account = state
        .accounts()
        .get_account(AccountRef::Did(did.as_str()))
        .await
        .map_err(XrpcError::internal)?
        .ok_or_else(|| XrpcError::invalid_token("Token could not be verified"))?;
    match account.status() {
        AccountStatus::Active => {}
        AccountStatus::Deactivated if requirement.allows_deactivated() => {}
        AccountStatus::Deactivated => {
            return Err(XrpcError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                ErrorName::AccountDeactivated,
                "Account is deactivated",
            ));
        }
        AccountStatus::Takendown => {
            return Err(XrpcError::account_takedown("Account has been taken down"));
        }
        AccountStatus::Deleted => {
            return Err(XrpcError::invalid_token("Token could not be verified"));
        }
    }
    Ok(std::sync::Arc::new(account))
}

/// An extractor type for a route's requirement; with an OAuth rule (scope, check), an OAuth
/// token holding that permission passes in place of the session requirement.
macro_rules! access_extractor {
    ($(#[$doc:meta])* $name:ident, $requirement:expr) => {
        access_extractor!($(#[$doc])* $name, $requirement, None);
    };
    ($(#[$doc:meta])* $name:ident, $requirement:expr, $scope:literal, $allows:expr) => {
        access_extractor!(
            $(#[$doc])* $name,
            $requirement,
            Some(OAuthRule {
                scope: $scope,
                allows: $allows,
            })
        );
    };
    ($(#[$doc:meta])* $name:ident, $requirement:expr, $rule:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl FromRequestParts<AppState> for $name {
            type Rejection = XrpcError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                authenticate_with(parts, state, $requirement, $rule)
                    .await
                    .map($name)
            }
        }
    };
}

access_extractor!(
    /// Any session of an active account.
    AccessStandard,
    Requirement::Standard
);
access_extractor!(
    /// Any session of an active or deactivated account.
    AccessAllowDeactivated,
    Requirement::AllowDeactivated
);
access_extractor!(
    /// A main-password session or a privileged app-password session of an active account.
    AccessPrivileged,
    Requirement::Privileged
);
access_extractor!(
    /// A main-password session of an active account.
    AccessFull,
    Requirement::Full
);
access_extractor!(
    /// A main-password session of an active or deactivated account (activateAccount).
    AccessFullAllowDeactivated,
    Requirement::FullAllowDeactivated
);

access_extractor!(
    /// Any session of an active account, or an OAuth token with `identity:handle`
    /// (updateHandle).
    AccessIdentityHandle,
    Requirement::Standard,
    "identity:handle",
    |p| p.allows_identity("handle")
);
access_extractor!(
    /// A main-password session of an active account, or an OAuth token with `identity:*`
    /// (requesting and signing PLC operations).
    AccessIdentityFull,
    Requirement::Full,
    "identity:*",
    |p| p.allows_identity("*")
);
access_extractor!(
    /// As [`AccessIdentityFull`], for a deactivated account too (submitPlcOperation while
    /// the account moves in).
    AccessIdentityFullAllowDeactivated,
    Requirement::FullAllowDeactivated,
    "identity:*",
    |p| p.allows_identity("*")
);
access_extractor!(
    /// A main-password session of an active or deactivated account, or an OAuth token with
    /// `account:repo?action=manage` (importRepo).
    AccessRepoManage,
    Requirement::FullAllowDeactivated,
    "account:repo?action=manage",
    |p| p.allows_account("repo", true)
);
access_extractor!(
    /// A main-password session of an active account, or an OAuth token with
    /// `account:email?action=manage` (confirming the email address).
    AccessEmailManage,
    Requirement::Full,
    "account:email?action=manage",
    |p| p.allows_account("email", true)
);

/// An optional session: no `Authorization` header gives `None`; a bad token is still refused.
#[derive(Debug, Clone)]
pub struct OptionalAccess(pub Option<Caller>);

impl FromRequestParts<AppState> for OptionalAccess {
    type Rejection = XrpcError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.extensions.get::<OAuthAccess>().is_none()
            && bearer_token(&parts.headers)?.is_none()
        {
            return Ok(OptionalAccess(None));
        }
        authenticate(parts, state, Requirement::Standard)
            .await
            .map(|c| OptionalAccess(Some(c)))
    }
}

/// A refresh token (refreshSession, deleteSession). Its expiry is checked by the handler
/// through [`RefreshAuth::claims`], since deleteSession accepts an expired one.
#[derive(Debug, Clone)]
pub struct RefreshAuth {
    pub token: String,
}

impl RefreshAuth {
    /// The verified claims; `allow_expired` for revocation of an expired token.
    pub fn claims(
        &self,
        state: &AppState,
        allow_expired: bool,
    ) -> Result<RefreshClaims, XrpcError> {
        let now = chrono::Utc::now().timestamp();
        let session = state.session();
        let result = if allow_expired {
            session.verify_refresh_ignoring_expiry(&self.token, now)
        } else {
            session.verify_refresh(&self.token, now)
        };
        result.map_err(token_error)
    }
}

impl FromRequestParts<AppState> for RefreshAuth {
    type Rejection = XrpcError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?
            .ok_or_else(|| XrpcError::auth_required("Authentication Required"))?;
        Ok(RefreshAuth {
            token: token.to_owned(),
        })
    }
}

/// HTTP Basic admin authentication (`admin:PDS_ADMIN_PASSWORD`), as the reference's admin
/// routes use. Without a configured admin password every admin call is refused.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = XrpcError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| XrpcError::auth_required("Authentication Required"))?;
        let password = state
            .config()
            .admin_password
            .as_ref()
            .map(|s| s.expose())
            .unwrap_or_default();
        if crate::auth::check_admin_basic(header, password) {
            Ok(AdminAuth)
        } else {
            Err(XrpcError::auth_required("Invalid admin credentials"))
        }
    }
}
