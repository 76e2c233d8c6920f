//! The account page (`/account`): a person signs in with the account's own password (and
//! the mailed code where email sign-in codes are on) and manages app passwords, the
//! password, their data and deactivation, through the accounts service as the XRPC methods
//! do.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};

use super::i18n::{Lang, Text};
use super::layout::{notice, page, respond};
use super::sessions::{Subject, WebSession, random_token};
use super::{CookieNames, cookie, now, same_token, set_cookie};
use crate::account_service::{self, rules};
use crate::accounts::{self, AccountInfo, AccountRef};
use crate::server::AppState;
use crate::syntax::Did;

const SESSION_COOKIE: &str = "rookery-account";
const LOGIN_CSRF_COOKIE: &str = "rookery-account-csrf";
const COOKIE_PATH: &str = "/account";
const COOKIES: CookieNames = CookieNames {
    session: SESSION_COOKIE,
    login_csrf: LOGIN_CSRF_COOKIE,
    path: COOKIE_PATH,
};

type FormData = HashMap<String, String>;

/// A signed-in person's request.
struct Person {
    lang: Lang,
    token: String,
    session: WebSession,
    did: Did,
}

impl Person {
    fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.session.csrf); }
    }

    fn form_ok(&self, form: &FormData) -> bool {
        form.get("csrf")
            .is_some_and(|given| same_token(given, &self.session.csrf))
    }
}

/// The account session of the request, or the sign-in page instead (an operator session
/// is no account session).
fn person(state: &AppState, headers: &HeaderMap) -> Result<Person, Box<Response>> {
    let lang = Lang::from_headers(headers);
    let found = cookie(headers, SESSION_COOKIE).and_then(|token| {
        let session = state.web_sessions().get(&token, now())?;
        let Subject::Account(did) = &session.subject else {
            return None;
        };
        let did = did.parse::<Did>().ok()?;
        Some((token, session, did))
    });
    match found {
        Some((token, session, did)) => Ok(Person {
            lang,
            token,
            session,
            did,
        }),
        None => Err(Box::new(sign_in_page(
            state,
            lang,
            SignInState::default(),
            StatusCode::UNAUTHORIZED,
        ))),
    }
}

/// What the sign-in form shows.
#[derive(Default)]
struct SignInState<'a> {
    identifier: &'a str,
    message: Option<(bool, Text)>,
    ask_code: bool,
}

fn sign_in_page(
    state: &AppState,
    lang: Lang,
    form: SignInState<'_>,
    status: StatusCode,
) -> Response {
    let csrf = random_token();
    let body = html! {
        h1 { (lang.t(Text::AccountSignIn)) }
        @if let Some((ok, text)) = form.message { (notice(ok, lang.t(text))) }
        form method="post" action="/account/login" {
            input type="hidden" name="csrf" value=(csrf);
            label for="identifier" { (lang.t(Text::Identifier)) }
            input #identifier type="text" name="identifier" value=(form.identifier) autocomplete="username" required autofocus[form.identifier.is_empty()];
            label for="password" { (lang.t(Text::Password)) }
            input #password type="password" name="password" autocomplete="current-password" required autofocus[!form.identifier.is_empty() && !form.ask_code];
            @if form.ask_code {
                label for="code" { (lang.t(Text::SignInCode)) }
                input #code type="text" name="code" autocomplete="one-time-code" required;
            }
            button type="submit" { (lang.t(Text::SignIn)) }
        }
    };
    let cookie = set_cookie(state, LOGIN_CSRF_COOKIE, &csrf, COOKIE_PATH, 3600);
    respond(
        status,
        page(
            lang,
            Text::AccountTitle,
            lang.t(Text::AccountSignIn),
            None,
            true,
            body,
        ),
        &[cookie],
    )
}

/// `POST /account/login`.
pub(super) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let identifier = form.get("identifier").map(|i| i.trim()).unwrap_or_default();
    let csrf_ok = COOKIES.login_csrf_ok(&headers, &form);
    let again = |message: Text, ask_code: bool, status: StatusCode| {
        sign_in_page(
            &state,
            lang,
            SignInState {
                identifier,
                message: Some((false, message)),
                ask_code,
            },
            status,
        )
    };
    if !csrf_ok {
        return again(Text::FormExpired, false, StatusCode::FORBIDDEN);
    }
    let password = form.get("password").map(String::as_str).unwrap_or_default();
    let code = form.get("code").map(String::as_str);
    let signed_in = state
        .account_service()
        .password_sign_in(identifier, password, code, Some(peer.ip()))
        .await;
    let account = match signed_in {
        Ok(account) => account,
        Err(account_service::Error::AuthFactorTokenRequired) => {
            return sign_in_page(
                &state,
                lang,
                SignInState {
                    identifier,
                    message: Some((true, Text::CodeSent)),
                    ask_code: true,
                },
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(account_service::Error::InvalidSignInCode) => {
            return again(Text::WrongCode, true, StatusCode::UNAUTHORIZED);
        }
        Err(account_service::Error::Accounts(accounts::Error::AccountLocked { .. })) => {
            return again(Text::AccountLocked, false, StatusCode::TOO_MANY_REQUESTS);
        }
        Err(account_service::Error::Accounts(accounts::Error::AccountTakedown)) => {
            return again(Text::AccountSuspended, false, StatusCode::UNAUTHORIZED);
        }
        Err(
            account_service::Error::BadCredentials
            | account_service::Error::Accounts(accounts::Error::AuthFailed),
        ) => return again(Text::WrongCredentials, false, StatusCode::UNAUTHORIZED),
        Err(err) => {
            tracing::error!(error = %err, "account page sign-in failed");
            return again(Text::Error, false, StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    COOKIES.start_session(&state, Subject::Account(account.did))
}

/// `POST /account/logout`.
pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    let person = match person(&state, &headers) {
        Ok(person) => person,
        Err(page) => return *page,
    };
    if !person.form_ok(&form) {
        return refused(person.lang);
    }
    COOKIES.end_session(&state, &person.token)
}

fn refused(lang: Lang) -> Response {
    let body = html! {
        (notice(false, lang.t(Text::FormExpired)))
        p { a href="/account" { (lang.t(Text::Back)) } }
    };
    respond(
        StatusCode::FORBIDDEN,
        page(
            lang,
            Text::AccountTitle,
            lang.t(Text::AccountTitle),
            None,
            true,
            body,
        ),
        &[],
    )
}

/// `GET /account`.
pub(super) async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let person = match person(&state, &headers) {
        Ok(person) => person,
        Err(page) => return *page,
    };
    overview(&state, &person, None, StatusCode::OK).await
}

/// The outcome an overview shows: a confirmation, an error, or a new app password.
enum Outcome {
    Done,
    Failed(String),
    NewAppPassword(String, String),
    /// Every session ended with the old password, this one too.
    PasswordChanged,
    /// The account is gone, and its sessions.
    Deleted,
    /// A confirmation of something under way.
    Notice(Text),
}

/// A code field's value, if one was given.
fn code(value: &str) -> Option<&str> {
    Some(value.trim()).filter(|v| !v.is_empty())
}

/// The account's current address.
async fn current_email(state: &AppState, did: &str) -> Result<String, crate::error::XrpcError> {
    state
        .accounts()
        .get_account(AccountRef::Did(did))
        .await?
        .and_then(|a| a.email)
        .ok_or_else(|| {
            crate::error::XrpcError::invalid_request("account does not have an email address")
        })
}

async fn overview(
    state: &AppState,
    person: &Person,
    outcome: Option<Outcome>,
    status: StatusCode,
) -> Response {
    let lang = person.lang;
    let account: AccountInfo = match state
        .accounts()
        .get_account(AccountRef::Did(person.did.as_str()))
        .await
    {
        Ok(Some(account)) => account,
        _ => {
            // Deleted or unreadable: this session is over.
            state.web_sessions().end(&person.token);
            return sign_in_page(
                state,
                lang,
                SignInState::default(),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    let app_passwords = state
        .accounts()
        .list_app_passwords(person.did.as_str())
        .await
        .unwrap_or_default();
    let oauth_sessions = state
        .oauth()
        .sessions_of(person.did.as_str(), now())
        .await
        .unwrap_or_default();
    let repo_link = format!(
        "/xrpc/com.atproto.sync.getRepo?did={}",
        percent_encoding::utf8_percent_encode(
            person.did.as_str(),
            percent_encoding::NON_ALPHANUMERIC
        )
    );
    let body = html! {
        h1 { (account.handle.as_deref().unwrap_or(&account.did)) }
        @match &outcome {
            Some(Outcome::Done) => (notice(true, lang.t(Text::Done))),
            Some(Outcome::Failed(message)) => (notice(false, message)),
            Some(Outcome::Notice(text)) => (notice(true, lang.t(*text))),
            Some(Outcome::PasswordChanged | Outcome::Deleted) | None => {},
            Some(Outcome::NewAppPassword(name, password)) => {
                div.notice.ok role="status" {
                    (lang.t(Text::NewAppPassword)) " " strong { (name) } ": " code #new-app-password { (password) }
                }
            }
        }
        dl {
            dt { "DID" } dd { code { (account.did) } }
            dt { (lang.t(Text::Email)) }
            dd {
                (account.email.as_deref().unwrap_or("—")) " ("
                @if account.email_confirmed_at.is_some() { (lang.t(Text::EmailConfirmed)) } @else { (lang.t(Text::EmailUnconfirmed)) }
                ")"
            }
            dt { (lang.t(Text::TwoFactor)) }
            dd { @if account.email_auth_factor { (lang.t(Text::On)) } @else { (lang.t(Text::Off)) } }
        }
        h2 { (lang.t(Text::EmailSection)) }
        section.card {
            @let confirmed = account.email_confirmed_at.is_some();
            form method="post" action="/account" {
                (person.csrf_field())
                input type="hidden" name="action" value="send-email-code";
                input type="hidden" name="purpose" value=(if confirmed { "update" } else { "confirm" });
                button.secondary type="submit" { (lang.t(Text::SendCode)) }
            }
            @if !confirmed {
                form.row method="post" action="/account" {
                    (person.csrf_field())
                    input type="hidden" name="action" value="confirm-email";
                    div {
                        label for="confirm-code" { (lang.t(Text::EmailCode)) }
                        input #confirm-code type="text" name="code" autocomplete="one-time-code" required;
                    }
                    button type="submit" { (lang.t(Text::ConfirmEmail)) }
                }
            }
            form method="post" action="/account" {
                (person.csrf_field())
                input type="hidden" name="action" value="update-email";
                label for="new-email" { (lang.t(Text::NewEmail)) }
                input #new-email type="email" name="email" autocomplete="email" required;
                @if confirmed {
                    label for="update-code" { (lang.t(Text::EmailCode)) }
                    input #update-code type="text" name="code" autocomplete="one-time-code" required;
                }
                button type="submit" { (lang.t(Text::UpdateEmail)) }
            }
            form.row method="post" action="/account" {
                (person.csrf_field())
                input type="hidden" name="action" value="two-factor";
                input type="hidden" name="on" value=(if account.email_auth_factor { "false" } else { "true" });
                @if confirmed {
                    div {
                        label for="factor-code" { (lang.t(Text::TwoFactor)) " — " (lang.t(Text::EmailCode)) }
                        input #factor-code type="text" name="code" autocomplete="one-time-code" required;
                    }
                }
                button type="submit" {
                    @if account.email_auth_factor { (lang.t(Text::TurnOff)) } @else { (lang.t(Text::TurnOn)) }
                    " · " (lang.t(Text::TwoFactor))
                }
            }
        }
        h2 { (lang.t(Text::AppPasswords)) }
        section.card {
            @if app_passwords.is_empty() {
                p { (lang.t(Text::NoAppPasswords)) }
            } @else {
                table {
                    tbody {
                        @for app in &app_passwords {
                            tr {
                                td { (app.name) }
                                td {
                                    form.inline method="post" action="/account" {
                                        (person.csrf_field())
                                        input type="hidden" name="action" value="revoke-app-password";
                                        input type="hidden" name="name" value=(app.name);
                                        button.secondary type="submit" aria-label=(format!("{} {}", lang.t(Text::Revoke), app.name)) { (lang.t(Text::Revoke)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.row method="post" action="/account" {
                (person.csrf_field())
                input type="hidden" name="action" value="create-app-password";
                div {
                    label for="app-name" { (lang.t(Text::AppPasswordName)) }
                    input #app-name type="text" name="name" required maxlength=(rules::MAX_APP_PASSWORD_NAME_LEN);
                }
                button type="submit" { (lang.t(Text::CreateAppPassword)) }
            }
        }
        h2 { (lang.t(Text::AuthorizedApps)) }
        section.card {
            @if oauth_sessions.is_empty() {
                p { (lang.t(Text::NoAuthorizedApps)) }
            } @else {
                table #oauth-apps {
                    thead { tr {
                        th scope="col" { (lang.t(Text::AppPasswordName)) }
                        th scope="col" { (lang.t(Text::Permissions)) }
                        th scope="col" { (lang.t(Text::LastUsed)) }
                        th scope="col" { span.visually-hidden { (lang.t(Text::Actions)) } }
                    } }
                    tbody {
                        @for app in &oauth_sessions {
                            @let name = app.client_name.as_deref().unwrap_or(&app.client_id);
                            tr {
                                td { (name) br; code { (app.client_id) } }
                                td { code { (app.scope) } }
                                td { (super::admin::date(app.updated_at)) }
                                td {
                                    form.inline method="post" action="/account" {
                                        (person.csrf_field())
                                        input type="hidden" name="action" value="revoke-oauth";
                                        input type="hidden" name="id" value=(app.id);
                                        button.secondary type="submit" aria-label=(format!("{} {}", lang.t(Text::Revoke), name)) { (lang.t(Text::Revoke)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { (lang.t(Text::ChangePassword)) }
        section.card {
            form method="post" action="/account" {
                (person.csrf_field())
                input type="hidden" name="action" value="change-password";
                label for="current-password" { (lang.t(Text::CurrentPassword)) }
                input #current-password type="password" name="current" autocomplete="current-password" required;
                label for="new-password" { (lang.t(Text::NewPassword)) }
                input #new-password type="password" name="new" autocomplete="new-password" required minlength=(rules::MIN_PASSWORD_LEN);
                button type="submit" { (lang.t(Text::ChangePassword)) }
            }
        }
        h2 { (lang.t(Text::YourData)) }
        section.card {
            p { a href=(repo_link) download="repo.car" { (lang.t(Text::DownloadRepo)) } }
            @if account.deactivated_at.is_none() {
                form method="post" action="/account" {
                    (person.csrf_field())
                    input type="hidden" name="action" value="deactivate";
                    p { (lang.t(Text::DeactivateHint)) }
                    button.secondary type="submit" { (lang.t(Text::Deactivate)) }
                }
            } @else {
                p { (lang.t(Text::Status)) ": " (lang.t(Text::Deactivated)) }
            }
        }
        h2 { (lang.t(Text::DeleteMyAccount)) }
        section.card {
            p { (lang.t(Text::DeleteHint)) }
            form method="post" action="/account" {
                (person.csrf_field())
                input type="hidden" name="action" value="send-email-code";
                input type="hidden" name="purpose" value="delete";
                button.secondary type="submit" { (lang.t(Text::SendCode)) }
            }
            form method="post" action="/account" {
                (person.csrf_field())
                input type="hidden" name="action" value="delete";
                label for="delete-password" { (lang.t(Text::Password)) }
                input #delete-password type="password" name="password" autocomplete="current-password" required;
                label for="delete-code" { (lang.t(Text::EmailCode)) }
                input #delete-code type="text" name="code" autocomplete="one-time-code" required;
                button.danger type="submit" { (lang.t(Text::DeleteMyAccount)) }
            }
        }
        form method="post" action="/account/logout" {
            (person.csrf_field())
            button.secondary type="submit" { (lang.t(Text::SignOut)) }
        }
    };
    let title = account.handle.as_deref().unwrap_or(&account.did).to_owned();
    respond(
        status,
        page(lang, Text::AccountTitle, &title, None, false, body),
        &[],
    )
}

/// `POST /account`: one action of the account page.
pub(super) async fn action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    let person = match person(&state, &headers) {
        Ok(person) => person,
        Err(page) => return *page,
    };
    if !person.form_ok(&form) {
        return refused(person.lang);
    }
    let lang = person.lang;
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let service = state.account_service();
    let did = person.did.as_str();
    let result: Result<Outcome, crate::error::XrpcError> = async {
        match field("action") {
            "create-app-password" => {
                let name = rules::app_password_name(field("name"))?;
                let created = state
                    .accounts()
                    .create_app_password(did, name, false, now())
                    .await?;
                Ok(Outcome::NewAppPassword(created.name, created.password))
            }
            "revoke-app-password" => {
                state
                    .accounts()
                    .revoke_app_password(did, field("name"))
                    .await?;
                Ok(Outcome::Done)
            }
            "change-password" => {
                service
                    .change_password(&person.did, field("current"), field("new"))
                    .await?;
                state.web_sessions().end_account(did);
                Ok(Outcome::PasswordChanged)
            }
            "send-email-code" => match field("purpose") {
                "confirm" => {
                    service.request_email_confirmation(did).await?;
                    Ok(Outcome::Notice(Text::CodeMailed))
                }
                "update" => {
                    if service.request_email_update(did).await? {
                        Ok(Outcome::Notice(Text::CodeMailed))
                    } else {
                        Ok(Outcome::Notice(Text::NoCodeNeeded))
                    }
                }
                "delete" => {
                    service.request_account_delete(did).await?;
                    Ok(Outcome::Notice(Text::CodeMailed))
                }
                _ => Err(crate::error::XrpcError::invalid_request("unknown code")),
            },
            "confirm-email" => {
                let email = current_email(&state, did).await?;
                service
                    .confirm_email(did, &email, field("code").trim())
                    .await?;
                Ok(Outcome::Done)
            }
            "update-email" => {
                let email = rules::normalize_email(field("email"))
                    .ok_or_else(crate::xrpc::server::unsupported_email)?;
                service
                    .update_email(did, &email, code(field("code")), None)
                    .await?;
                Ok(Outcome::Done)
            }
            "two-factor" => {
                let email = current_email(&state, did).await?;
                let on = field("on") == "true";
                service
                    .update_email(did, &email, code(field("code")), Some(on))
                    .await?;
                Ok(Outcome::Done)
            }
            "delete" => {
                service
                    .delete_with_credentials(&person.did, field("password"), field("code"))
                    .await?;
                state.web_sessions().end_account(did);
                Ok(Outcome::Deleted)
            }
            "revoke-oauth" => {
                let revoked = state
                    .oauth()
                    .revoke_session(did, field("id"))
                    .await
                    .map_err(|e| crate::error::XrpcError::internal(format!("{e:?}")))?;
                if !revoked {
                    return Err(crate::error::XrpcError::invalid_request(
                        "no such app session",
                    ));
                }
                Ok(Outcome::Done)
            }
            "deactivate" => {
                service.deactivate(&person.did, None).await?;
                Ok(Outcome::Done)
            }
            _ => Err(crate::error::XrpcError::invalid_request("unknown action")),
        }
    }
    .await;
    match result {
        Ok(outcome @ (Outcome::PasswordChanged | Outcome::Deleted)) => {
            let message = match outcome {
                Outcome::Deleted => Text::AccountDeleted,
                _ => Text::PasswordChanged,
            };
            let mut response = sign_in_page(
                &state,
                lang,
                SignInState {
                    identifier: "",
                    message: Some((true, message)),
                    ask_code: false,
                },
                StatusCode::OK,
            );
            if let Ok(value) = set_cookie(&state, SESSION_COOKIE, "", COOKIE_PATH, 0).parse() {
                response
                    .headers_mut()
                    .append(axum::http::header::SET_COOKIE, value);
            }
            response
        }
        Ok(outcome) => overview(&state, &person, Some(outcome), StatusCode::OK).await,
        Err(err) if err.status.is_server_error() => {
            overview(
                &state,
                &person,
                Some(Outcome::Failed(lang.t(Text::Error).to_owned())),
                err.status,
            )
            .await
        }
        Err(err) => {
            overview(
                &state,
                &person,
                Some(Outcome::Failed(err.message)),
                err.status,
            )
            .await
        }
    }
}
