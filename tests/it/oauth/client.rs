//! A small OAuth client of our own for the refusal tests: P-256 DPoP proofs, PAR, the
//! sign-in and consent forms, the token endpoint. Every step returns the raw response so
//! tests can assert the exact errors.

use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const REDIRECT: &str = "http://127.0.0.1/cb";

/// `application/x-www-form-urlencoded` bodies and query strings (reqwest is built without
/// its `form` and `query` features).
pub trait FormExt {
    fn form_pairs(self, pairs: &[(&str, &str)]) -> Self;
}

pub fn encode_pairs(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

impl FormExt for reqwest::RequestBuilder {
    fn form_pairs(self, pairs: &[(&str, &str)]) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(encode_pairs(pairs))
    }
}

/// The loopback development client declaring `scope`.
pub fn loopback_client_id(scope: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "http://localhost?redirect_uri={}&scope={}",
        enc(REDIRECT),
        enc(scope)
    )
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn random(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    b64(&buf)
}

/// A DPoP key.
pub struct DpopKey {
    key: SigningKey,
    pub jwk: Value,
}

impl DpopKey {
    pub fn generate() -> Self {
        Self::from_key(SigningKey::random(&mut rand::rngs::OsRng))
    }

    /// From a private JWK (what the Node client stores as `dpopJwk`).
    pub fn from_private_jwk(jwk: &Value) -> Self {
        let d = URL_SAFE_NO_PAD.decode(jwk["d"].as_str().unwrap()).unwrap();
        Self::from_key(SigningKey::from_slice(&d).unwrap())
    }

    fn from_key(key: SigningKey) -> Self {
        let point = key.verifying_key().to_encoded_point(false);
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64(point.x().unwrap()),
            "y": b64(point.y().unwrap()),
        });
        DpopKey { key, jwk }
    }

    /// A signed compact JWS of `header` and `claims`.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig.to_bytes()))
    }

    pub fn proof(&self, htm: &str, htu: &str, nonce: Option<&str>, token: Option<&str>) -> String {
        let mut claims = json!({
            "jti": random(12),
            "htm": htm,
            "htu": htu,
            "iat": chrono::Utc::now().timestamp(),
        });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        if let Some(t) = token {
            claims["ath"] = json!(b64(&Sha256::digest(t.as_bytes())));
        }
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk });
        self.sign(&header, &claims)
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    /// The OAuth `error` of a JSON answer.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_owned()
    }
    /// The `name=value` of the cookie the answer sets.
    pub fn cookie(&self) -> String {
        let set = self.header("set-cookie").expect("a cookie");
        set.split(';').next().unwrap().to_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

pub async fn read(response: reqwest::Response) -> Answer {
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

/// An OAuth session in the making.
pub struct TestClient {
    pub base: String,
    pub client_id: String,
    pub http: reqwest::Client,
    pub key: DpopKey,
    pub nonce: Mutex<Option<String>>,
    pub verifier: String,
    /// A confidential client's key: `private_key_jwt` assertions (kid `k1`) go with every
    /// PAR and token request.
    pub client_key: Option<DpopKey>,
    /// The consent page of the last [`TestClient::authorize`].
    pub consent_page: Mutex<String>,
}

/// Tokens from the token endpoint.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

impl TestClient {
    pub fn new(base: &str, client_id: &str) -> Self {
        TestClient {
            base: base.to_owned(),
            client_id: client_id.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            key: DpopKey::generate(),
            nonce: Mutex::new(None),
            verifier: random(32),
            client_key: None,
            consent_page: Mutex::new(String::new()),
        }
    }

    /// A fresh `private_key_jwt` assertion for this client, signed with `key`.
    pub fn assertion(&self, key: &DpopKey) -> String {
        let header = json!({ "alg": "ES256", "kid": "k1", "typ": "JWT" });
        let claims = json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.base,
            "jti": random(16),
            "iat": chrono::Utc::now().timestamp(),
        });
        key.sign(&header, &claims)
    }

    /// `form` plus this client's assertion, if it is confidential.
    fn authenticated<'a>(
        &self,
        form: &[(&'a str, &'a str)],
        assertion: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        let mut form = form.to_vec();
        if self.client_key.is_some() {
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
            form.push(("client_assertion", assertion));
        }
        form
    }

    fn own_assertion(&self) -> String {
        self.client_key
            .as_ref()
            .map(|k| self.assertion(k))
            .unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn nonce(&self) -> Option<String> {
        self.nonce.lock().unwrap().clone()
    }

    /// Posts a form with a DPoP proof made by `proof` (given the nonce), retrying once on
    /// `use_dpop_nonce`.
    pub async fn post_dpop(
        &self,
        path: &str,
        form: &[(&str, &str)],
        proof: impl Fn(Option<&str>) -> String,
    ) -> Answer {
        for _ in 0..2 {
            let nonce = self.nonce();
            let answer = read(
                self.http
                    .post(self.url(path))
                    .header("DPoP", proof(nonce.as_deref()))
                    .form_pairs(form)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            if let Some(n) = answer.header("dpop-nonce") {
                *self.nonce.lock().unwrap() = Some(n);
            }
            if answer.error() != "use_dpop_nonce" {
                return answer;
            }
        }
        panic!("use_dpop_nonce twice on {path}");
    }

    /// A proof by this client's key for `POST {path}`.
    pub fn own_proof(&self, path: &str) -> impl Fn(Option<&str>) -> String + '_ {
        let htu = self.url(path);
        move |nonce| self.key.proof("POST", &htu, nonce, None)
    }

    pub async fn par(&self, scope: &str, redirect: &str) -> Answer {
        let challenge = b64(&Sha256::digest(self.verifier.as_bytes()));
        let assertion = self.own_assertion();
        let form = [
            ("client_id", self.client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("scope", scope),
            ("state", "st"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("login_hint", "alice.test"),
        ];
        let form = self.authenticated(&form, &assertion);
        self.post_dpop("/oauth/par", &form, self.own_proof("/oauth/par"))
            .await
    }

    /// `GET /oauth/authorize` for the pushed request `request_uri`.
    pub async fn authorize_page(&self, request_uri: &str) -> Answer {
        let query = encode_pairs(&[("client_id", &self.client_id), ("request_uri", request_uri)]);
        let url = format!("{}?{query}", self.url("/oauth/authorize"));
        read(self.http.get(url).send().await.unwrap()).await
    }

    /// PAR, sign-in and consent: returns the authorization code.
    pub async fn authorize(&self, scope: &str, handle: &str, password: &str) -> String {
        let par = self.par(scope, REDIRECT).await;
        assert_eq!(par.status, 201, "{}", par.text);
        let request_uri = par.json()["request_uri"].as_str().unwrap().to_owned();
        let page = self.authorize_page(&request_uri).await;
        assert_eq!(page.status, 200);
        let cookie = page.cookie();
        let html = page.text;
        let csrf = hidden(&html, "csrf");
        let signed = read(
            self.http
                .post(self.url("/oauth/authorize/sign-in"))
                .header("cookie", &cookie)
                .form_pairs(&[
                    ("csrf", csrf.as_str()),
                    ("request_id", &hidden(&html, "request_id")),
                    ("identifier", handle),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(signed.status, 200, "{}", signed.text);
        *self.consent_page.lock().unwrap() = signed.text.clone();
        self.approve(&cookie, &csrf, &signed.text).await
    }

    /// Approves on the consent page `page` (with the page's CSRF `cookie` and token);
    /// returns the authorization code the client is redirected with.
    pub async fn approve(&self, cookie: &str, csrf: &str, page: &str) -> String {
        let consent = read(
            self.http
                .post(self.url("/oauth/authorize/consent"))
                .header("cookie", cookie)
                .form_pairs(&[
                    ("csrf", csrf),
                    ("request_id", &hidden(page, "request_id")),
                    ("secret", &hidden(page, "secret")),
                    ("decision", "approve"),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(consent.status, 303, "{}", consent.text);
        let location = url::Url::parse(&consent.header("location").unwrap()).unwrap();
        let pairs: std::collections::HashMap<String, String> =
            location.query_pairs().into_owned().collect();
        assert_eq!(pairs["state"], "st");
        assert_eq!(pairs["iss"], self.base);
        pairs["code"].clone()
    }

    pub async fn exchange(&self, code: &str, verifier: &str) -> Answer {
        let form = [
            ("client_id", self.client_id.as_str()),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ];
        let assertion = self.own_assertion();
        let form = self.authenticated(&form, &assertion);
        self.post_dpop("/oauth/token", &form, self.own_proof("/oauth/token"))
            .await
    }

    pub async fn refresh(&self, refresh: &str, key: &DpopKey) -> Answer {
        let form = [
            ("client_id", self.client_id.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
        ];
        let assertion = self.own_assertion();
        let form = self.authenticated(&form, &assertion);
        let htu = self.url("/oauth/token");
        self.post_dpop("/oauth/token", &form, |n| key.proof("POST", &htu, n, None))
            .await
    }

    pub async fn tokens(&self, scope: &str, handle: &str, password: &str) -> Tokens {
        let code = self.authorize(scope, handle, password).await;
        let answer = self.exchange(&code, &self.verifier).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        let body = answer.json();
        assert_eq!(body["token_type"], "DPoP");
        Tokens {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// `GET /xrpc/com.atproto.server.getSession` with a DPoP-bound token and `key`'s proof,
    /// retrying once on `use_dpop_nonce`.
    pub async fn get_session(&self, access: &str, key: &DpopKey) -> Answer {
        self.resource(
            "GET",
            "/xrpc/com.atproto.server.getSession",
            access,
            key,
            None,
        )
        .await
    }

    /// A resource request (`GET`, or `POST` with a JSON or byte body) with a DPoP-bound
    /// token and `key`'s proof, retrying once on `use_dpop_nonce`.
    pub async fn resource(
        &self,
        method: &str,
        path: &str,
        access: &str,
        key: &DpopKey,
        body: Option<Body>,
    ) -> Answer {
        let htu = self.url(path.split('?').next().unwrap());
        for _ in 0..2 {
            let proof = key.proof(method, &htu, self.nonce().as_deref(), Some(access));
            let mut request = match method {
                "GET" => self.http.get(self.url(path)),
                _ => self.http.post(self.url(path)),
            }
            .header("Authorization", format!("DPoP {access}"))
            .header("DPoP", proof);
            match &body {
                Some(Body::Json(value)) => request = request.json(value),
                Some(Body::Bytes(bytes, mime)) => {
                    request = request.header("content-type", *mime).body(bytes.clone())
                }
                None => {}
            }
            let answer = read(request.send().await.unwrap()).await;
            if let Some(n) = answer.header("dpop-nonce") {
                *self.nonce.lock().unwrap() = Some(n);
            }
            let retry = answer
                .header("www-authenticate")
                .is_some_and(|w| w.contains("use_dpop_nonce"));
            if !retry {
                return answer;
            }
        }
        panic!("use_dpop_nonce twice");
    }
}

/// The body of a [`TestClient::resource`] call.
pub enum Body {
    Json(Value),
    Bytes(Vec<u8>, &'static str),
}
