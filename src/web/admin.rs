//! The operator dashboard: sign-in with the admin password, accounts (search, status,
//! moderation and changes) and invite codes.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::i18n::{Lang, Text};
use super::layout::{AdminNav, notice, page, redirect, respond};
use super::sessions::{Subject, WebSession, random_token};
use super::{CookieNames, cookie, now, same_token, set_cookie};
use crate::account_service::{StatusChange, rules};
use crate::accounts::{AccountInfo, AccountRef, AccountStatus, InviteSort};
use crate::error::XrpcError;
use crate::server::AppState;
use crate::syntax::Did;
use crate::xrpc::server::invite::{CREATED_BY_ADMIN, MAX_CODE_COUNT, check_use_count};

const SESSION_COOKIE: &str = "rookery-admin";
const LOGIN_CSRF_COOKIE: &str = "rookery-admin-csrf";
const COOKIE_PATH: &str = "/admin";
const COOKIES: CookieNames = CookieNames {
    session: SESSION_COOKIE,
    login_csrf: LOGIN_CSRF_COOKIE,
    path: COOKIE_PATH,
};
const PAGE_SIZE: u32 = 50;

pub(super) type FormData = HashMap<String, String>;

/// A signed-in operator's request.
pub(super) struct Admin {
    pub(super) lang: Lang,
    token: String,
    session: WebSession,
}

impl Admin {
    fn nav(&self) -> Option<AdminNav<'_>> {
        Some(AdminNav {
            csrf: &self.session.csrf,
        })
    }

    pub(super) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.session.csrf); }
    }

    /// Whether a form carries this session's CSRF token.
    pub(super) fn form_ok(&self, form: &FormData) -> bool {
        form.get("csrf")
            .is_some_and(|given| same_token(given, &self.session.csrf))
    }
}

/// An operator page with the navigation.
pub(super) fn admin_page(admin: &Admin, status: StatusCode, title: &str, body: Markup) -> Response {
    respond(
        status,
        page(
            admin.lang,
            Text::AdminTitle,
            title,
            admin.nav(),
            false,
            body,
        ),
        &[],
    )
}

/// The operator session of the request, or the sign-in page to answer with instead (a
/// session of an account is no operator session).
pub(super) fn admin_session(state: &AppState, headers: &HeaderMap) -> Result<Admin, Box<Response>> {
    admin(state, headers)
}

fn admin(state: &AppState, headers: &HeaderMap) -> Result<Admin, Box<Response>> {
    let lang = Lang::from_headers(headers);
    let found = cookie(headers, SESSION_COOKIE).and_then(|token| {
        let session = state.web_sessions().get(&token, now())?;
        (session.subject == Subject::Admin).then_some((token, session))
    });
    match found {
        Some((token, session)) => Ok(Admin {
            lang,
            token,
            session,
        }),
        None => Err(Box::new(sign_in_page(
            state,
            lang,
            None,
            StatusCode::UNAUTHORIZED,
        ))),
    }
}

fn sign_in_page(state: &AppState, lang: Lang, error: Option<Text>, status: StatusCode) -> Response {
    let csrf = random_token();
    let body = html! {
        h1 { (lang.t(Text::SignInTitle)) }
        @if let Some(error) = error { (notice(false, lang.t(error))) }
        form method="post" action="/admin/login" {
            input type="hidden" name="csrf" value=(csrf);
            label for="password" { (lang.t(Text::AdminPassword)) }
            input #password type="password" name="password" autocomplete="current-password" required autofocus;
            button type="submit" { (lang.t(Text::SignIn)) }
        }
    };
    let cookie = set_cookie(state, LOGIN_CSRF_COOKIE, &csrf, COOKIE_PATH, 3600);
    respond(
        status,
        page(
            lang,
            Text::AdminTitle,
            lang.t(Text::SignInTitle),
            None,
            true,
            body,
        ),
        &[cookie],
    )
}

/// `POST /admin/login`.
pub(super) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let csrf_ok = COOKIES.login_csrf_ok(&headers, &form);
    if !csrf_ok {
        return sign_in_page(&state, lang, Some(Text::FormExpired), StatusCode::FORBIDDEN);
    }
    let configured = state
        .config()
        .admin_password
        .as_ref()
        .map(|s| s.expose())
        .unwrap_or_default();
    let given = form.get("password").map(String::as_str).unwrap_or_default();
    if !crate::auth::admin::check_admin_password(given, configured) {
        tracing::warn!("operator dashboard sign-in refused: wrong password");
        return sign_in_page(
            &state,
            lang,
            Some(Text::WrongPassword),
            StatusCode::UNAUTHORIZED,
        );
    }
    COOKIES.start_session(&state, Subject::Admin)
}

/// `POST /admin/logout`.
pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    let admin = match admin(&state, &headers) {
        Ok(admin) => admin,
        Err(page) => return *page,
    };
    if !admin.form_ok(&form) {
        return refused(&admin);
    }
    COOKIES.end_session(&state, &admin.token)
}

/// The answer to a post without this session's CSRF token.
pub(super) fn refused(admin: &Admin) -> Response {
    let lang = admin.lang;
    let body = html! {
        (notice(false, lang.t(Text::FormExpired)))
        p { a href="/admin" { (lang.t(Text::Back)) } }
    };
    respond(
        StatusCode::FORBIDDEN,
        page(
            lang,
            Text::AdminTitle,
            lang.t(Text::AdminTitle),
            admin.nav(),
            false,
            body,
        ),
        &[],
    )
}

pub(super) fn date(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn status_cell(lang: Lang, status: AccountStatus) -> Markup {
    let (class, text) = match status {
        AccountStatus::Active => ("status-active", Text::Active),
        AccountStatus::Deactivated => ("status-deactivated", Text::Deactivated),
        AccountStatus::Takendown | AccountStatus::Deleted => ("status-takendown", Text::TakenDown),
    };
    html! { span class=(class) { (lang.t(text)) } }
}

fn account_link(did: &str) -> String {
    format!(
        "/admin/accounts/{}",
        percent_encoding::utf8_percent_encode(did, percent_encoding::NON_ALPHANUMERIC)
    )
}

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    q: Option<String>,
    cursor: Option<String>,
}

/// `GET /admin`: the accounts, or those matching a handle or email prefix or a DID.
pub(super) async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
) -> Response {
    let admin = match admin(&state, &headers) {
        Ok(admin) => admin,
        Err(page) => return *page,
    };
    let lang = admin.lang;
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let found: Result<(Vec<AccountInfo>, Option<String>), XrpcError> = async {
        match q {
            Some(did) if did.starts_with("did:") => {
                let account = state.accounts().get_account(AccountRef::Did(did)).await?;
                Ok((account.into_iter().collect(), None))
            }
            prefix => {
                let page = state
                    .accounts()
                    .search_accounts(
                        prefix.map(str::to_lowercase).as_deref(),
                        query.cursor.as_deref(),
                        PAGE_SIZE,
                    )
                    .await?;
                Ok((page.items, page.cursor))
            }
        }
    }
    .await;
    let (accounts, cursor) = match found {
        Ok(found) => found,
        Err(err) => return error_page(&admin, &err),
    };
    let body = html! {
        h1 { (lang.t(Text::Accounts)) }
        form.row method="get" action="/admin" role="search" {
            div {
                label for="q" { (lang.t(Text::SearchHint)) }
                input #q type="search" name="q" value=(q.unwrap_or_default());
            }
            button type="submit" { (lang.t(Text::Search)) }
        }
        @if accounts.is_empty() {
            p { (lang.t(Text::NoAccounts)) }
        } @else {
            table.accounts {
                thead { tr {
                    th scope="col" { (lang.t(Text::Handle)) }
                    th scope="col" { (lang.t(Text::Email)) }
                    th scope="col" { (lang.t(Text::Status)) }
                    th scope="col" { (lang.t(Text::Created)) }
                } }
                tbody {
                    @for account in &accounts {
                        tr {
                            td { a href=(account_link(&account.did)) { (account.handle.as_deref().unwrap_or(&account.did)) } }
                            td { (account.email.as_deref().unwrap_or("—")) }
                            td { (status_cell(lang, account.status())) }
                            td { (date(account.created_at)) }
                        }
                    }
                }
            }
            @if let Some(cursor) = cursor {
                p { a href=(format!("/admin?cursor={}&q={}", enc(&cursor), enc(q.unwrap_or_default()))) { (lang.t(Text::NextPage)) } }
            }
        }
    };
    respond(
        StatusCode::OK,
        page(
            lang,
            Text::AdminTitle,
            lang.t(Text::Accounts),
            admin.nav(),
            false,
            body,
        ),
        &[],
    )
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// An error page: the XRPC error's message for a 4xx, nothing internal for a 5xx.
pub(super) fn error_page(admin: &Admin, err: &XrpcError) -> Response {
    let lang = admin.lang;
    let text = if err.status.is_server_error() {
        lang.t(Text::Error).to_owned()
    } else {
        err.message.clone()
    };
    let body = html! {
        (notice(false, &text))
        p { a href="/admin" { (lang.t(Text::Back)) } }
    };
    respond(
        err.status,
        page(
            lang,
            Text::AdminTitle,
            lang.t(Text::AdminTitle),
            admin.nav(),
            false,
            body,
        ),
        &[],
    )
}

#[derive(Deserialize)]
pub(super) struct AccountQuery {
    done: Option<String>,
}

/// `GET /admin/accounts/{did}`.
pub(super) async fn account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(did): Path<String>,
    Query(query): Query<AccountQuery>,
) -> Response {
    let admin = match admin(&state, &headers) {
        Ok(admin) => admin,
        Err(page) => return *page,
    };
    let outcome = query.done.is_some().then_some(Ok(()));
    account_page(&state, &admin, &did, outcome, StatusCode::OK).await
}

async fn account_page(
    state: &AppState,
    admin: &Admin,
    did: &str,
    outcome: Option<Result<(), String>>,
    status: StatusCode,
) -> Response {
    let lang = admin.lang;
    let account = match state.accounts().get_account(AccountRef::Did(did)).await {
        Ok(Some(account)) => account,
        Ok(None) => {
            return error_page(
                admin,
                &XrpcError::bad_request(
                    crate::error::ErrorName::AccountNotFound,
                    lang.t(Text::AccountNotFound),
                ),
            );
        }
        Err(err) => return error_page(admin, &err.into()),
    };
    let (report, repo_bytes) = match account.did.parse::<Did>() {
        Ok(did) => (
            state.account_service().status_report(&did).await.ok(),
            state.repo().stores().disk_bytes(&did).await,
        ),
        Err(_) => (None, 0),
    };
    let status_now = account.status();
    let handle = account.handle.clone().unwrap_or_default();
    let action = account_link(&account.did);
    let body = html! {
        h1 { (account.handle.as_deref().unwrap_or(&account.did)) }
        @match &outcome {
            Some(Ok(())) => (notice(true, lang.t(Text::Done))),
            Some(Err(message)) => (notice(false, message)),
            None => {},
        }
        dl {
            dt { "DID" } dd { code { (account.did) } }
            dt { (lang.t(Text::Email)) } dd { (account.email.as_deref().unwrap_or("—")) }
            dt { (lang.t(Text::Status)) } dd { (status_cell(lang, status_now)) }
            dt { (lang.t(Text::Created)) } dd { (date(account.created_at)) }
        }
        @if let Some(report) = &report {
            h2 { (lang.t(Text::Repository)) }
            dl {
                dt { (lang.t(Text::Revision)) } dd { code { (report.repo_rev) } }
                dt { (lang.t(Text::LastWrite)) }
                dd #last-write {
                    (report.repo_rev.parse::<crate::syntax::Tid>().ok()
                        .and_then(|tid| i64::try_from(tid.timestamp_micros() / 1_000_000).ok())
                        .map(date)
                        .unwrap_or_default())
                }
                dt { (lang.t(Text::RepoBytes)) } dd #repo-bytes { (repo_bytes) }
                dt { (lang.t(Text::Records)) } dd { (report.indexed_records) }
                dt { (lang.t(Text::Blocks)) } dd { (report.repo_blocks) }
                dt { (lang.t(Text::Blobs)) } dd { (report.imported_blobs) " / " (report.expected_blobs) }
            }
        }
        h2 { (lang.t(Text::Actions)) }
        section.card {
            @if account.takedown_ref.is_some() {
                form.inline method="post" action=(action) {
                    (admin.csrf_field())
                    input type="hidden" name="action" value="restore";
                    button type="submit" { (lang.t(Text::Restore)) }
                }
            } @else {
                form.inline method="post" action=(action) {
                    (admin.csrf_field())
                    input type="hidden" name="action" value="takedown";
                    label.check { input type="checkbox" name="confirm" value="yes" required; " " (lang.t(Text::ConfirmAction)) }
                    button.danger type="submit" { (lang.t(Text::TakeDown)) }
                }
            }
            @if account.deactivated_at.is_some() {
                form.inline method="post" action=(action) {
                    (admin.csrf_field())
                    input type="hidden" name="action" value="activate";
                    button type="submit" { (lang.t(Text::Activate)) }
                }
            } @else {
                form.inline method="post" action=(action) {
                    (admin.csrf_field())
                    input type="hidden" name="action" value="deactivate";
                    label.check { input type="checkbox" name="confirm" value="yes" required; " " (lang.t(Text::ConfirmAction)) }
                    button.secondary type="submit" { (lang.t(Text::Deactivate)) }
                }
            }
        }
        section.card {
            form method="post" action=(action) {
                (admin.csrf_field())
                input type="hidden" name="action" value="password";
                label for="new-password" { (lang.t(Text::NewPassword)) }
                input #new-password type="password" name="value" autocomplete="new-password" required;
                button type="submit" { (lang.t(Text::SetPassword)) }
            }
            form method="post" action=(action) {
                (admin.csrf_field())
                input type="hidden" name="action" value="handle";
                label for="new-handle" { (lang.t(Text::NewHandle)) }
                input #new-handle type="text" name="value" value=(handle) required;
                button type="submit" { (lang.t(Text::ChangeHandle)) }
            }
            form method="post" action=(action) {
                (admin.csrf_field())
                input type="hidden" name="action" value="email";
                label for="new-email" { (lang.t(Text::NewEmail)) }
                input #new-email type="email" name="value" value=(account.email.as_deref().unwrap_or_default()) required;
                button type="submit" { (lang.t(Text::ChangeEmail)) }
            }
        }
        section.card {
            form method="post" action=(action) {
                (admin.csrf_field())
                input type="hidden" name="action" value="delete";
                label for="confirm-delete" { (lang.t(Text::DeleteConfirmHint)) }
                input #confirm-delete type="text" name="confirm" autocomplete="off" required;
                button.danger type="submit" { (lang.t(Text::DeleteAccount)) }
            }
        }
        p { a href="/admin" { (lang.t(Text::Back)) } }
    };
    let title = account.handle.as_deref().unwrap_or(&account.did).to_owned();
    respond(
        status,
        page(lang, Text::AdminTitle, &title, admin.nav(), false, body),
        &[],
    )
}

/// `POST /admin/accounts/{did}`: one action of the account page, through the accounts
/// service as the admin XRPC methods do.
pub(super) async fn account_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(did): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    let admin = match admin(&state, &headers) {
        Ok(admin) => admin,
        Err(page) => return *page,
    };
    if !admin.form_ok(&form) {
        return refused(&admin);
    }
    let lang = admin.lang;
    let Ok(parsed) = did.parse::<Did>() else {
        return error_page(
            &admin,
            &XrpcError::invalid_request(lang.t(Text::AccountNotFound)),
        );
    };
    let value = form.get("value").map(|v| v.trim()).unwrap_or_default();
    let service = state.account_service();
    let confirmed = form.get("confirm").map(String::as_str) == Some("yes");
    let result: Result<(), XrpcError> = async {
        let action = form.get("action").map(String::as_str);
        if matches!(action, Some("takedown" | "deactivate")) && !confirmed {
            return Err(XrpcError::invalid_request(lang.t(Text::ConfirmRequired)));
        }
        match action {
            Some("takedown") => {
                let reference = format!("web-admin:{}", Utc::now().to_rfc3339());
                service
                    .change_status(
                        &parsed,
                        StatusChange {
                            takedown: Some(Some(reference)),
                            deactivated: None,
                        },
                    )
                    .await?;
            }
            Some("restore") => {
                service
                    .change_status(
                        &parsed,
                        StatusChange {
                            takedown: Some(None),
                            deactivated: None,
                        },
                    )
                    .await?;
            }
            Some("deactivate") => {
                service
                    .change_status(
                        &parsed,
                        StatusChange {
                            takedown: None,
                            deactivated: Some(true),
                        },
                    )
                    .await?;
            }
            Some("activate") => {
                service
                    .change_status(
                        &parsed,
                        StatusChange {
                            takedown: None,
                            deactivated: Some(false),
                        },
                    )
                    .await?;
            }
            Some("password") => {
                rules::check_password(value)?;
                service.set_password(parsed.as_str(), value).await?;
                state.web_sessions().end_account(parsed.as_str());
            }
            Some("handle") => {
                service.change_handle(&parsed, value, true).await?;
            }
            Some("email") => {
                let email = rules::normalize_email(value)
                    .ok_or_else(crate::xrpc::server::unsupported_email)?;
                service.set_email(parsed.as_str(), &email).await?;
            }
            Some("delete") => {
                let account = state
                    .accounts()
                    .get_account(AccountRef::Did(parsed.as_str()))
                    .await?
                    .ok_or_else(|| XrpcError::invalid_request(lang.t(Text::AccountNotFound)))?;
                let confirm = form.get("confirm").map(|c| c.trim()).unwrap_or_default();
                let matches = account.handle.as_deref() == Some(confirm) || account.did == confirm;
                if !matches {
                    return Err(XrpcError::invalid_request(lang.t(Text::ConfirmMismatch)));
                }
                service.delete_account(&parsed).await?;
                state.web_sessions().end_account(parsed.as_str());
            }
            _ => return Err(XrpcError::invalid_request("unknown action")),
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) if form.get("action").map(String::as_str) == Some("delete") => {
            redirect("/admin", &[])
        }
        Ok(()) => redirect(&format!("{}?done=1", account_link(parsed.as_str())), &[]),
        Err(err) if err.status.is_server_error() => error_page(&admin, &err),
        Err(err) => {
            account_page(
                &state,
                &admin,
                parsed.as_str(),
                Some(Err(err.message)),
                err.status,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct InvitesQuery {
    cursor: Option<String>,
    done: Option<String>,
}

/// `GET /admin/invites`: every code, newest first, with a form to create more.
pub(super) async fn invites(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<InvitesQuery>,
) -> Response {
    let admin = match admin(&state, &headers) {
        Ok(admin) => admin,
        Err(page) => return *page,
    };
    let outcome = query.done.is_some().then_some(Ok(()));
    invites_page(
        &state,
        &admin,
        query.cursor.as_deref(),
        outcome,
        StatusCode::OK,
    )
    .await
}

async fn invites_page(
    state: &AppState,
    admin: &Admin,
    cursor: Option<&str>,
    outcome: Option<Result<(), String>>,
    status: StatusCode,
) -> Response {
    let lang = admin.lang;
    let page_of = match state
        .accounts()
        .list_invite_codes(InviteSort::Recent, cursor, PAGE_SIZE)
        .await
    {
        Ok(page) => page,
        Err(err) => return error_page(admin, &err.into()),
    };
    let body = html! {
        h1 { (lang.t(Text::Invites)) }
        @match &outcome {
            Some(Ok(())) => (notice(true, lang.t(Text::Done))),
            Some(Err(message)) => (notice(false, message)),
            None => {},
        }
        section.card {
            form.row method="post" action="/admin/invites" {
                (admin.csrf_field())
                input type="hidden" name="action" value="create";
                div {
                    label for="count" { (lang.t(Text::CodeCount)) }
                    input #count type="number" name="count" value="1" min="1" max=(MAX_CODE_COUNT) required;
                }
                div {
                    label for="uses" { (lang.t(Text::UseCount)) }
                    input #uses type="number" name="uses" value="1" min="1" required;
                }
                button type="submit" { (lang.t(Text::CreateCodes)) }
            }
        }
        @if page_of.items.is_empty() {
            p { (lang.t(Text::NoCodes)) }
        } @else {
            table {
                thead { tr {
                    th scope="col" { (lang.t(Text::Code)) }
                    th scope="col" { (lang.t(Text::Uses)) }
                    th scope="col" { (lang.t(Text::Status)) }
                    th scope="col" { (lang.t(Text::Created)) }
                    th scope="col" { span.visually-hidden { (lang.t(Text::Actions)) } }
                } }
                tbody {
                    @for code in &page_of.items {
                        tr {
                            td { code { (code.code) } }
                            td { (code.uses.len()) " / " (code.available_uses) }
                            td { @if code.disabled { (lang.t(Text::Disabled)) } @else { (lang.t(Text::Usable)) } }
                            td { (date(code.created_at)) }
                            td {
                                @if !code.disabled {
                                    form.inline method="post" action="/admin/invites" {
                                        (admin.csrf_field())
                                        input type="hidden" name="action" value="disable";
                                        input type="hidden" name="code" value=(code.code);
                                        button.secondary type="submit" aria-label=(format!("{} {}", lang.t(Text::Disable), code.code)) { (lang.t(Text::Disable)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(cursor) = &page_of.cursor {
                p { a href=(format!("/admin/invites?cursor={}", enc(cursor))) { (lang.t(Text::NextPage)) } }
            }
        }
    };
    respond(
        status,
        page(
            lang,
            Text::AdminTitle,
            lang.t(Text::Invites),
            admin.nav(),
            false,
            body,
        ),
        &[],
    )
}

/// `POST /admin/invites`: create codes or disable one, as `createInviteCodes` and
/// `admin.disableInviteCodes` do.
pub(super) async fn invite_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    let admin = match admin(&state, &headers) {
        Ok(admin) => admin,
        Err(page) => return *page,
    };
    if !admin.form_ok(&form) {
        return refused(&admin);
    }
    let number = |name: &str| -> Result<i64, XrpcError> {
        form.get(name)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .ok_or_else(|| XrpcError::invalid_request(format!("{name} must be a number")))
    };
    let result: Result<(), XrpcError> = async {
        match form.get("action").map(String::as_str) {
            Some("create") => {
                let count = number("count")?;
                let uses = number("uses")?;
                check_use_count(uses)?;
                let count = usize::try_from(count)
                    .ok()
                    .filter(|c| (1..=MAX_CODE_COUNT).contains(c))
                    .ok_or_else(|| {
                        XrpcError::invalid_request(format!("count must be 1 to {MAX_CODE_COUNT}"))
                    })?;
                state
                    .accounts()
                    .create_invite_codes(
                        &state.config().hostname,
                        count,
                        uses,
                        &[],
                        CREATED_BY_ADMIN,
                        now(),
                    )
                    .await?;
            }
            Some("disable") => {
                let code = form.get("code").cloned().unwrap_or_default();
                state.accounts().disable_invite_codes(&[code], &[]).await?;
            }
            _ => return Err(XrpcError::invalid_request("unknown action")),
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => redirect("/admin/invites?done=1", &[]),
        Err(err) if err.status.is_server_error() => error_page(&admin, &err),
        Err(err) => invites_page(&state, &admin, None, Some(Err(err.message)), err.status).await,
    }
}
