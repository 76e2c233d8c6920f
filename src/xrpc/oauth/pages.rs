//! The authorization pages: sign-in and consent, server-rendered HTML forms that work
//! without JavaScript and load nothing from elsewhere.
//!
//! CSRF protection is a double-submit token: `GET /oauth/authorize` sets a random
//! `SameSite=Strict`, `HttpOnly` cookie and every form carries the same value in a hidden
//! field; a POST whose field and cookie differ is refused. The consent form also carries
//! the one-time secret issued on sign-in, so only the browser that signed in can consent.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::oauth::{AuthorizationView, ConsentDecision, OAuthError, SignInOutcome};
use crate::server::AppState;

const CSRF_COOKIE: &str = "rookery-oauth-csrf";
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;\
padding:0 1rem;color:#1a1a1a}h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}\
input[type=text],input[type=password]{width:100%;padding:.5rem;box-sizing:border-box}\
button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem}.error{color:#b00020}\
.client{font-weight:600}li{margin:.3rem 0}code{font-size:.85em;color:#555;overflow-wrap:anywhere}";

#[derive(Deserialize)]
pub(super) struct AuthorizeQuery {
    client_id: Option<String>,
    request_uri: Option<String>,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

/// Security headers of every page: no framing, no scripts, nothing loaded from elsewhere.
fn html_response(status: StatusCode, html: String, cookie: Option<String>) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
             form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

fn error_page(err: &OAuthError) -> Response {
    let status = if err.status.is_server_error() {
        err.status
    } else {
        StatusCode::BAD_REQUEST
    };
    let body = format!(
        "<h1>Authorization failed</h1><p class=\"error\">{}</p>\
         <p>Return to the app and try again.</p>",
        escape(&err.description)
    );
    html_response(status, page("Authorization failed", &body), None)
}

fn client_label(view: &AuthorizationView) -> String {
    let name = view.client_name.as_deref().unwrap_or(&view.client_id);
    format!(
        "<span class=\"client\">{}</span> <code>({})</code>",
        escape(name),
        escape(&view.client_id)
    )
}

fn sign_in_page(
    view: &AuthorizationView,
    csrf: &str,
    message: Option<&str>,
    needs_code: bool,
    identifier: Option<&str>,
) -> String {
    let error = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    let code = if needs_code {
        "<label for=\"code\">Sign-in code from your email</label>\
         <input type=\"text\" id=\"code\" name=\"code\" autocomplete=\"one-time-code\" required>"
    } else {
        ""
    };
    let identifier = identifier.or(view.login_hint.as_deref()).unwrap_or("");
    let body = format!(
        "<h1>Sign in</h1><p>{client} wants to access your account.</p>{error}\
         <form method=\"post\" action=\"/oauth/authorize/sign-in\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"request_id\" value=\"{rid}\">\
         <label for=\"identifier\">Handle or email</label>\
         <input type=\"text\" id=\"identifier\" name=\"identifier\" value=\"{ident}\" autocomplete=\"username\" required>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         {code}<button type=\"submit\">Sign in</button></form>",
        client = client_label(view),
        csrf = escape(csrf),
        rid = escape(&view.request_id),
        ident = escape(identifier),
    );
    page("Sign in", &body)
}

fn consent_page(view: &AuthorizationView, csrf: &str, secret: &str, handle: &str) -> String {
    let items: String = view
        .scopes
        .iter()
        .map(|(token, words)| {
            format!(
                "<li>{} <code>{}</code></li>",
                escape(if words.is_empty() { token } else { words }),
                escape(token)
            )
        })
        .collect();
    let body = format!(
        "<h1>Authorize {client}?</h1><p>Signed in as <strong>{handle}</strong>.</p>\
         <p>The app asks to:</p><ul>{items}</ul>\
         <form method=\"post\" action=\"/oauth/authorize/consent\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"request_id\" value=\"{rid}\">\
         <input type=\"hidden\" name=\"secret\" value=\"{secret}\">\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
        client = client_label(view),
        handle = escape(handle),
        csrf = escape(csrf),
        rid = escape(&view.request_id),
        secret = escape(secret),
    );
    page("Authorize", &body)
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == CSRF_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

fn set_cookie(state: &AppState, value: &str) -> String {
    let secure = if state.oauth().issuer().starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    format!("{CSRF_COOKIE}={value}; Path=/oauth/authorize; HttpOnly; SameSite=Strict{secure}")
}

/// Checks the double-submit CSRF token of a form post.
fn check_csrf(
    headers: &HeaderMap,
    form: &std::collections::HashMap<String, String>,
) -> Result<String, OAuthError> {
    let cookie = cookie_value(headers);
    match (cookie, form.get("csrf")) {
        (Some(c), Some(f)) if &c == f => Ok(c),
        _ => Err(OAuthError::access_denied(
            "The form expired or came from another site (CSRF check failed); start again from the app",
        )),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `GET /oauth/authorize`: the sign-in page of a pushed request.
pub(super) async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    let (Some(client_id), Some(request_uri)) = (query.client_id, query.request_uri) else {
        return error_page(&OAuthError::invalid_request(
            "Missing client_id or request_uri (pushed authorization requests are required)",
        ));
    };
    match state
        .oauth()
        .authorization(&client_id, &request_uri, now())
        .await
    {
        Ok(view) => {
            let csrf = cookie_value(&headers).unwrap_or_else(|| crate::oauth::random_id("", 24));
            let html = sign_in_page(&view, &csrf, None, false, None);
            html_response(StatusCode::OK, html, Some(set_cookie(&state, &csrf)))
        }
        Err(err) => error_page(&err),
    }
}

fn client_ip(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(client) = extensions.get::<crate::server::limits::Client>() {
        return client.ip;
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// `POST /oauth/authorize/sign-in`.
pub(super) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Response {
    let form = match super::parse_form(&headers, &body) {
        Ok(form) => form,
        Err(err) => return error_page(&err),
    };
    let csrf = match check_csrf(&headers, &form) {
        Ok(csrf) => csrf,
        Err(err) => return error_page(&err),
    };
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let identifier = field("identifier").trim();
    let identifier = if identifier.starts_with("did:") {
        identifier.to_owned()
    } else {
        identifier.to_lowercase()
    };
    let ip = client_ip(&extensions);
    let client = extensions
        .get::<crate::server::limits::Client>()
        .cloned()
        .unwrap_or(crate::server::limits::Client {
            ip,
            exempt: !state.config().rate_limits_enabled,
        });
    let limited = state
        .rate_limits()
        .create_session(&client, &identifier)
        .is_err();
    let code = form
        .get("code")
        .map(String::as_str)
        .filter(|c| !c.is_empty());
    let service = state.account_service();
    let outcome = if limited {
        state
            .oauth()
            .authorization_by_id(field("request_id"), now())
            .await
            .map(|view| SignInOutcome::Retry {
                view,
                message: "Too many sign-in attempts; try again later".to_owned(),
                needs_code: false,
            })
    } else {
        state
            .oauth()
            .sign_in(
                &service,
                crate::oauth::SignInForm {
                    request_id: field("request_id"),
                    identifier: &identifier,
                    password: field("password"),
                    code,
                    ip,
                },
                now(),
            )
            .await
    };
    match outcome {
        Ok(SignInOutcome::Consent {
            view,
            secret,
            handle,
        }) => html_response(
            StatusCode::OK,
            consent_page(&view, &csrf, &secret, &handle),
            None,
        ),
        Ok(SignInOutcome::Retry {
            view,
            message,
            needs_code,
        }) => html_response(
            StatusCode::UNAUTHORIZED,
            sign_in_page(&view, &csrf, Some(&message), needs_code, Some(&identifier)),
            None,
        ),
        Err(err) => error_page(&err),
    }
}

/// `POST /oauth/authorize/consent`: redirects back to the client with a code or an error.
pub(super) async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let form = super::parse_form(&headers, &body)?;
        check_csrf(&headers, &form)?;
        let decision = match form.get("decision").map(String::as_str) {
            Some("approve") => ConsentDecision::Approve,
            Some("deny") => ConsentDecision::Deny,
            _ => return Err(OAuthError::invalid_request("Missing decision")),
        };
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        state
            .oauth()
            .consent(field("request_id"), field("secret"), decision, now())
            .await
    }
    .await;
    match result {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(err) => error_page(&err),
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
