//! The frame of every page and the headers of every answer: a strict Content-Security-Policy
//! (nothing but this server's own stylesheet; no scripts), no framing, no caching.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::i18n::{Lang, Text};

/// The one stylesheet, embedded in the binary.
pub const STYLE: &str = include_str!("style.css");
/// Where [`STYLE`] is served.
pub const STYLE_PATH: &str = "/web/rookery.css";

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The operator pages' navigation, shown once signed in.
pub struct AdminNav<'a> {
    pub csrf: &'a str,
}

/// A whole page: the `brand` line, `title`, the operator navigation if signed in, and
/// `body`.
pub fn page(
    lang: Lang,
    brand: Text,
    title: &str,
    nav: Option<AdminNav<'_>>,
    narrow: bool,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · Rookery" }
                link rel="stylesheet" href=(STYLE_PATH);
            }
            body {
                header.top {
                    span.brand { (lang.t(brand)) }
                    @if let Some(nav) = nav {
                        nav aria-label="Main" {
                            a href="/admin" { (lang.t(Text::Accounts)) }
                            a href="/admin/invites" { (lang.t(Text::Invites)) }
                            a href="/admin/hub" { (lang.t(Text::Hub)) }
                            a href="/admin/server" { (lang.t(Text::Server)) }
                        }
                        form.inline method="post" action="/admin/logout" {
                            input type="hidden" name="csrf" value=(nav.csrf);
                            button.secondary type="submit" { (lang.t(Text::SignOut)) }
                        }
                    }
                }
                main.narrow[narrow] { (body) }
            }
        }
    }
}

/// A notice box: an error or a confirmation.
pub fn notice(ok: bool, text: &str) -> Markup {
    html! {
        @if ok {
            p.notice.ok role="status" { (text) }
        } @else {
            p.notice.error role="alert" { (text) }
        }
    }
}

/// An HTML answer with the security headers, and `Set-Cookie` values.
pub fn respond(status: StatusCode, markup: Markup, cookies: &[String]) -> Response {
    let mut response = (status, Html(markup.into_string())).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// A `303 See Other` to `to` (after a form post), with `Set-Cookie` values.
pub fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(to) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `GET /web/rookery.css`.
pub async fn stylesheet() -> Response {
    let mut response = STYLE.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
