//! The HTTP client of the hub tests and record builders.

use std::net::IpAddr;

use reqwest::StatusCode;
use rookery::config::Secret;
use rookery::syntax::Did;
use serde_json::{Value, json};

use crate::support::pds::TestPds;

pub const PLUGIN: &str = "cn.pocketbase.hub.plugin";
pub const CASE: &str = "cn.pocketbase.hub.case";
pub const REVIEW: &str = "cn.pocketbase.hub.review";
pub const ADMIN_PASSWORD: &str = "hub-admin-password";

pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(pds: &TestPds) -> Client {
        Client::from_address(pds, None)
    }

    /// A client whose connections come from `local` (e.g. 127.0.0.2), so the server sees
    /// another client address.
    pub fn from_address(pds: &TestPds, local: Option<IpAddr>) -> Client {
        Client {
            base: pds.url(),
            http: reqwest::Client::builder()
                .local_address(local)
                .build()
                .unwrap(),
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value, Option<String>) {
        let res = req.send().await.unwrap();
        let status = res.status();
        // The reset time, with the limit and policy when the server sent them:
        // "RESET" or "RESET LIMIT POLICY".
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let reset = header("ratelimit-reset").map(|reset| {
            match (header("ratelimit-limit"), header("ratelimit-policy")) {
                (Some(limit), Some(policy)) => format!("{reset} {limit} {policy}"),
                _ => reset,
            }
        });
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body, reset)
    }

    /// Uploads `bytes` as `content_type`; returns the blob ref the server answers.
    pub async fn upload(&self, token: &str, content_type: &str, bytes: Vec<u8>) -> Value {
        let req = self
            .http
            .post(format!("{}/xrpc/com.atproto.repo.uploadBlob", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(bytes);
        let (status, body, _) = self.send(req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["blob"].clone()
    }

    pub async fn post(
        &self,
        token: Option<&str>,
        method: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let (status, body, _) = self.post_full(token, method, body).await;
        (status, body)
    }

    pub async fn post_full(
        &self,
        token: Option<&str>,
        method: &str,
        body: &Value,
    ) -> (StatusCode, Value, Option<String>) {
        let mut req = self
            .http
            .post(format!("{}/xrpc/{method}", self.base))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn admin_post(
        &self,
        password: &str,
        method: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let req = self
            .http
            .post(format!("{}/xrpc/{method}", self.base))
            .basic_auth("admin", Some(password))
            .json(body);
        let (status, body, _) = self.send(req).await;
        (status, body)
    }

    pub async fn get(
        &self,
        token: Option<&str>,
        method: &str,
        query: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let url = reqwest::Url::parse_with_params(&format!("{}/xrpc/{method}", self.base), query)
            .unwrap();
        let mut req = self.http.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let (status, body, _) = self.send(req).await;
        (status, body)
    }

    pub async fn create(
        &self,
        token: &str,
        did: &Did,
        collection: &str,
        rkey: Option<&str>,
        record: Value,
    ) -> (StatusCode, Value) {
        let mut body = json!({"repo": did.as_str(), "collection": collection, "record": record});
        if let Some(rkey) = rkey {
            body["rkey"] = json!(rkey);
        }
        self.post(Some(token), "com.atproto.repo.createRecord", &body)
            .await
    }

    /// The slugs (or rkeys) of a listing, in order, and its cursor.
    pub async fn list(
        &self,
        token: Option<&str>,
        method: &str,
        query: &[(&str, &str)],
    ) -> (Vec<String>, Option<String>) {
        let (status, body) = self.get(token, method, query).await;
        assert_eq!(status, StatusCode::OK, "{method} {query:?}: {body}");
        let key = if method.ends_with("listPlugins") {
            "plugins"
        } else {
            "cases"
        };
        let names = body[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                v["uri"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        (names, body["cursor"].as_str().map(str::to_owned))
    }

    pub async fn plugins(&self, query: &[(&str, &str)]) -> Vec<String> {
        self.list(None, "cn.pocketbase.hub.listPlugins", query)
            .await
            .0
    }
}

pub fn plugin(name: &str, category: &str, created: &str) -> Value {
    json!({
        "$type": PLUGIN,
        "name": name,
        "description": format!("{name} for PocketBase"),
        "githubUrl": "https://github.com/acme/plugin",
        "category": category,
        "createdAt": created,
    })
}

pub fn review(
    subject_uri: &str,
    subject_cid: &str,
    status: &str,
    featured: bool,
    created: &str,
) -> Value {
    json!({
        "$type": REVIEW,
        "subject": {"uri": subject_uri, "cid": subject_cid},
        "status": status,
        "featured": featured,
        "createdAt": created,
    })
}

pub fn plugin_uri(did: &Did, slug: &str) -> String {
    format!("at://{did}/{PLUGIN}/{slug}")
}

pub async fn start(moderators: &[&str], rate_limits: bool) -> TestPds {
    let moderators: Vec<String> = moderators.iter().map(|m| (*m).to_owned()).collect();
    TestPds::start_with(move |config| {
        config.hub_moderators = moderators;
        config.hub_rate_limits = rate_limits;
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    })
    .await
}
