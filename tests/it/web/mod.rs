//! The web pages over real HTTP, as a browser without scripts uses them.

mod account;
mod admin;
mod browser;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};

use crate::support::pds::TestPds;

/// A cookie jar and a client that does not follow redirects, so each answer is seen.
pub(crate) struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

/// The `name=value` pairs `Set-Cookie` sets (an empty value deletes).
pub(crate) fn set_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The value of the first hidden `csrf` field of a page.
pub(crate) fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a csrf field") + marker.len();
    page[start..start + 64].to_owned()
}

impl Browser {
    pub(crate) fn new(pds: &TestPds) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: pds.url(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for (name, value) in set_cookies(headers) {
            self.cookies.retain(|(k, _)| *k != name);
            if !value.is_empty() {
                self.cookies.push((name, value));
            }
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> (StatusCode, HeaderMap, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        self.keep(&headers);
        (status, headers, response.text().await.unwrap())
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_html_form::to_string(form).unwrap())
            .send()
            .await
            .unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        self.keep(&headers);
        (status, headers, response.text().await.unwrap())
    }
}

/// A browser signed in to the operator dashboard with `password`, and its CSRF token.
pub(crate) async fn admin_browser(pds: &TestPds, password: &str) -> (Browser, String) {
    let mut browser = Browser::new(pds);
    let (_, _, page) = browser.get("/admin").await;
    let csrf = csrf_of(&page);
    let (status, _, _) = browser
        .post("/admin/login", &[("csrf", &csrf), ("password", password)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "operator sign-in");
    let (_, _, page) = browser.get("/admin").await;
    let csrf = csrf_of(&page);
    (browser, csrf)
}
