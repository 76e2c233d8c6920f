//! Web pages for people, server-rendered (maud) with no scripts and nothing loaded from
//! elsewhere: the operator dashboard under `/admin` and the account page under `/account`.
//!
//! Every action goes through the same services as the XRPC API
//! ([`crate::account_service`], the account database's invite codes), so no rule has a
//! second implementation here. Forms are protected by a CSRF token: before sign-in a
//! double-submit cookie, after it the token of the session ([`sessions`]).

mod account;
mod admin;
mod hub;
mod i18n;
mod layout;
mod server;
pub mod sessions;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};

use crate::server::AppState;

pub use sessions::WebSessions;

/// The pages' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(layout::STYLE_PATH, get(layout::stylesheet))
        .route("/account", get(account::home).post(account::action))
        .route("/account/login", post(account::login))
        .route("/account/logout", post(account::logout))
        .route("/admin", get(admin::home))
        .route("/admin/login", post(admin::login))
        .route("/admin/server", get(server::page))
        .route("/admin/hub", get(hub::page).post(hub::review))
        .route("/admin/logout", post(admin::logout))
        .route(
            "/admin/accounts/{did}",
            get(admin::account).post(admin::account_action),
        )
        .route(
            "/admin/invites",
            get(admin::invites).post(admin::invite_action),
        )
}

/// The value of cookie `name`, if it is a plausible token.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A `Set-Cookie` value for `name` under `path`: `HttpOnly`, `SameSite=Strict`, `Secure`
/// when the server is reached over HTTPS; `max_age` 0 deletes it.
fn set_cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: i64) -> String {
    let secure = if state.config().public_url.starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// The cookies of one kind of page session: the session token, the sign-in form's
/// double-submit CSRF token, and the path both are sent to.
struct CookieNames {
    session: &'static str,
    login_csrf: &'static str,
    path: &'static str,
}

impl CookieNames {
    /// Whether a sign-in form's CSRF field matches its cookie.
    fn login_csrf_ok(
        &self,
        headers: &HeaderMap,
        form: &std::collections::HashMap<String, String>,
    ) -> bool {
        match (cookie(headers, self.login_csrf), form.get("csrf")) {
            (Some(cookie), Some(field)) => same_token(&cookie, field),
            _ => false,
        }
    }

    /// Starts a session for `subject` and sends the browser to the pages' home.
    fn start_session(
        &self,
        state: &AppState,
        subject: sessions::Subject,
    ) -> axum::response::Response {
        let (token, _) = state.web_sessions().create(subject, now());
        let cookies = [
            set_cookie(
                state,
                self.session,
                &token,
                self.path,
                sessions::SESSION_LIFETIME_SECS,
            ),
            set_cookie(state, self.login_csrf, "", self.path, 0),
        ];
        layout::redirect(self.path, &cookies)
    }

    /// Ends the session of `token` and sends the browser to the sign-in page.
    fn end_session(&self, state: &AppState, token: &str) -> axum::response::Response {
        state.web_sessions().end(token);
        layout::redirect(
            self.path,
            &[set_cookie(state, self.session, "", self.path, 0)],
        )
    }
}

/// Compares two tokens without data-dependent timing.
fn same_token(a: &str, b: &str) -> bool {
    crate::auth::admin::constant_time_eq(a.as_bytes(), b.as_bytes())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
