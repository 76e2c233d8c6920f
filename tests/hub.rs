//! The PocketBase.cn hub (`cn.pocketbase.hub.*`) over real HTTP against a whole PDS: record
//! writes through the repository routes, moderation, listings, full text, downloads, rate
//! limits, hidden accounts, reindexing and crash repair.

mod support;

use std::net::IpAddr;

use reqwest::StatusCode;
use rookery::actor::RecordWrite;
use rookery::config::Secret;
use rookery::repo::cbor::json_to_record;
use rookery::repo::repository::Write;
use rookery::syntax::Did;
use serde_json::{Value, json};
use support::pds::TestPds;

const PLUGIN: &str = "cn.pocketbase.hub.plugin";
const CASE: &str = "cn.pocketbase.hub.case";
const REVIEW: &str = "cn.pocketbase.hub.review";
const ADMIN_PASSWORD: &str = "hub-admin-password";

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn new(pds: &TestPds) -> Client {
        Client::from_address(pds, None)
    }

    /// A client whose connections come from `local` (e.g. 127.0.0.2), so the server sees
    /// another client address.
    fn from_address(pds: &TestPds, local: Option<IpAddr>) -> Client {
        Client {
            base: pds.url(),
            http: reqwest::Client::builder()
                .local_address(local)
                .build()
                .unwrap(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value, Option<String>) {
        let res = req.send().await.unwrap();
        let status = res.status();
        let reset = res
            .headers()
            .get("ratelimit-reset")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body, reset)
    }

    async fn post(&self, token: Option<&str>, method: &str, body: &Value) -> (StatusCode, Value) {
        let (status, body, _) = self.post_full(token, method, body).await;
        (status, body)
    }

    async fn post_full(
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

    async fn admin_post(&self, password: &str, method: &str, body: &Value) -> (StatusCode, Value) {
        let req = self
            .http
            .post(format!("{}/xrpc/{method}", self.base))
            .basic_auth("admin", Some(password))
            .json(body);
        let (status, body, _) = self.send(req).await;
        (status, body)
    }

    async fn get(
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

    async fn create(
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
    async fn list(
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

    async fn plugins(&self, query: &[(&str, &str)]) -> Vec<String> {
        self.list(None, "cn.pocketbase.hub.listPlugins", query)
            .await
            .0
    }
}

fn plugin(name: &str, category: &str, created: &str) -> Value {
    json!({
        "$type": PLUGIN,
        "name": name,
        "description": format!("{name} for PocketBase"),
        "githubUrl": "https://github.com/acme/plugin",
        "category": category,
        "createdAt": created,
    })
}

fn review(
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

fn plugin_uri(did: &Did, slug: &str) -> String {
    format!("at://{did}/{PLUGIN}/{slug}")
}

async fn start(moderators: &[&str], rate_limits: bool) -> TestPds {
    let moderators: Vec<String> = moderators.iter().map(|m| (*m).to_owned()).collect();
    TestPds::start_with(move |config| {
        config.hub_moderators = moderators;
        config.rate_limits_enabled = rate_limits;
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    })
    .await
}

#[tokio::test]
async fn writes_are_checked_and_moderation_decides_status() {
    // The moderator is named by handle; its account is created after the configuration.
    let pds = start(&["mod.test"], false).await;
    let c = Client::new(&pds);
    let (alice, alice_tok) = pds.seed_account("alice.test", "alice-pass").await;
    let (_mod_did, mod_tok) = pds.seed_account("mod.test", "mod-pass").await;
    let (bob, bob_tok) = pds.seed_account("bob.test", "bob-pass").await;

    // Hub rules and lexicon rules on write.
    let good = plugin("Auth Kit", "auth", "2025-01-01T00:00:00Z");
    for rkey in ["PB_Auth", "a", "under_score"] {
        let (status, body) = c
            .create(&alice_tok, &alice, PLUGIN, Some(rkey), good.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "InvalidRequest");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("Invalid plugin slug {rkey:?}")),
            "{body}"
        );
    }
    let mut gitlab = good.clone();
    gitlab["githubUrl"] = json!("https://gitlab.com/acme/plugin");
    let (status, body) = c
        .create(&alice_tok, &alice, PLUGIN, Some("pb-auth"), gitlab)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "Invalid githubUrl \"https://gitlab.com/acme/plugin\": must be https://github.com/OWNER/REPO"
    );
    let mut gif_logo = good.clone();
    gif_logo["logo"] = json!({"$type": "blob", "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"}, "mimeType": "image/gif", "size": 10});
    let (status, body) = c
        .create(&alice_tok, &alice, PLUGIN, Some("pb-auth"), gif_logo)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Record/logo: blob MIME type"),
        "{body}"
    );

    let (status, created) = c
        .create(&alice_tok, &alice, PLUGIN, Some("pb-auth"), good)
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["validationStatus"], "valid");
    let uri = created["uri"].as_str().unwrap().to_owned();
    let cid = created["cid"].as_str().unwrap().to_owned();
    assert_eq!(uri, plugin_uri(&alice, "pb-auth"));

    // Pending: not listed publicly, visible to moderators and the author.
    assert!(c.plugins(&[]).await.is_empty());
    let (status, body) = c
        .get(
            None,
            "cn.pocketbase.hub.listPlugins",
            &[("status", "pending")],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("AuthenticationRequired"))
    );
    let (status, body) = c
        .get(
            Some(&bob_tok),
            "cn.pocketbase.hub.listPlugins",
            &[("status", "pending")],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("Forbidden"))
    );
    let (pending, _) = c
        .list(
            Some(&mod_tok),
            "cn.pocketbase.hub.listPlugins",
            &[("status", "pending")],
        )
        .await;
    assert_eq!(pending, ["pb-auth"]);
    let by_slug = [("author", "alice.test"), ("slug", "pb-auth")];
    let (status, body) = c.get(None, "cn.pocketbase.hub.getPlugin", &by_slug).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("RecordNotFound"))
    );
    let (status, body) = c
        .get(Some(&alice_tok), "cn.pocketbase.hub.getPlugin", &by_slug)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let view = &body["plugin"];
    assert_eq!(view["uri"], uri.as_str());
    assert_eq!(view["cid"], cid.as_str());
    assert_eq!(view["slug"], "pb-auth");
    assert_eq!(
        view["author"],
        json!({"did": alice.as_str(), "handle": "alice.test"})
    );
    assert_eq!(view["status"], "pending");
    assert_eq!(view["featured"], false);
    assert_eq!(view["downloads"], 0);
    assert_eq!(view["category"], "auth");
    assert_eq!(view["record"]["name"], "Auth Kit");
    assert_eq!(view["screenshots"], json!([]));
    assert!(view.get("logo").is_none());

    // A non-moderator's review is stored in their repository but ignored.
    let status_of = |body: &Value| {
        (
            body["plugin"]["status"].clone(),
            body["plugin"]["featured"].clone(),
        )
    };
    let (status, _) = c
        .create(
            &bob_tok,
            &bob,
            REVIEW,
            None,
            review(&uri, &cid, "approved", true, "2025-02-01T00:00:00Z"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = c
        .get(
            Some(&alice_tok),
            "cn.pocketbase.hub.getPlugin",
            &[("uri", &uri)],
        )
        .await;
    assert_eq!(status_of(&body), (json!("pending"), json!(false)));

    // pending → approved → featured → rejected, each by the latest moderator review.
    let mod_did: Did = c.get(None, "cn.pocketbase.hub.listModerators", &[]).await.1["moderators"]
        [0]["did"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let steps = [
        ("approved", false, "2025-03-01T00:00:00Z", "approved", false),
        ("approved", true, "2025-03-02T00:00:00Z", "approved", true),
        ("rejected", true, "2025-03-03T00:00:00Z", "rejected", false),
    ];
    for (decision, featured, at, want_status, want_featured) in steps {
        let (status, body) = c
            .create(
                &mod_tok,
                &mod_did,
                REVIEW,
                None,
                review(&uri, &cid, decision, featured, at),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, body) = c
            .get(
                Some(&mod_tok),
                "cn.pocketbase.hub.getPlugin",
                &[("uri", &uri)],
            )
            .await;
        assert_eq!(
            status_of(&body),
            (json!(want_status), json!(want_featured)),
            "{decision} {featured}"
        );
        let public = c.plugins(&[]).await;
        assert_eq!(public.len(), usize::from(want_status == "approved"));
    }
    let (rejected, _) = c
        .list(
            Some(&mod_tok),
            "cn.pocketbase.hub.listPlugins",
            &[("status", "rejected")],
        )
        .await;
    assert_eq!(rejected, ["pb-auth"]);

    // The admin makes bob a moderator: his later review now decides; removing him undoes it.
    let (status, body) = c
        .admin_post(
            "wrong",
            "cn.pocketbase.hub.setModerator",
            &json!({"did": bob.as_str(), "moderator": true}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("AuthenticationRequired"))
    );
    let (status, body) = c
        .admin_post(
            ADMIN_PASSWORD,
            "cn.pocketbase.hub.setModerator",
            &json!({"did": bob.as_str(), "moderator": true}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"did": bob.as_str(), "moderator": true})
        )
    );
    let (_, body) = c
        .get(None, "cn.pocketbase.hub.getPlugin", &[("uri", &uri)])
        .await;
    assert_eq!(
        body["error"], "RecordNotFound",
        "bob's February review is older than the rejection"
    );
    c.create(
        &bob_tok,
        &bob,
        REVIEW,
        None,
        review(&uri, &cid, "approved", true, "2025-04-01T00:00:00Z"),
    )
    .await;
    let (_, body) = c
        .get(None, "cn.pocketbase.hub.getPlugin", &[("uri", &uri)])
        .await;
    assert_eq!(status_of(&body), (json!("approved"), json!(true)));
    let (_, mods) = c.get(None, "cn.pocketbase.hub.listModerators", &[]).await;
    let mut mods: Vec<(String, String)> = mods["moderators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["handle"].as_str().unwrap().to_owned(),
                m["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    mods.sort();
    assert_eq!(
        mods,
        [
            ("bob.test".to_owned(), "admin".to_owned()),
            ("mod.test".to_owned(), "config".to_owned())
        ]
    );
    c.admin_post(
        ADMIN_PASSWORD,
        "cn.pocketbase.hub.setModerator",
        &json!({"did": bob.as_str(), "moderator": false}),
    )
    .await;
    let (_, body) = c
        .get(
            Some(&mod_tok),
            "cn.pocketbase.hub.getPlugin",
            &[("uri", &uri)],
        )
        .await;
    assert_eq!(status_of(&body), (json!("rejected"), json!(false)));
    // The admin can also remove a configured moderator: no review counts any more.
    c.admin_post(
        ADMIN_PASSWORD,
        "cn.pocketbase.hub.setModerator",
        &json!({"did": mod_did.as_str(), "moderator": false}),
    )
    .await;
    let (_, body) = c
        .get(
            Some(&alice_tok),
            "cn.pocketbase.hub.getPlugin",
            &[("uri", &uri)],
        )
        .await;
    assert_eq!(status_of(&body), (json!("pending"), json!(false)));
    c.admin_post(
        ADMIN_PASSWORD,
        "cn.pocketbase.hub.setModerator",
        &json!({"did": mod_did.as_str(), "moderator": true}),
    )
    .await;

    // Deleting the record removes it.
    let (status, _) = c
        .post(
            Some(&alice_tok),
            "com.atproto.repo.deleteRecord",
            &json!({"repo": alice.as_str(), "collection": PLUGIN, "rkey": "pb-auth"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = c
        .get(
            Some(&mod_tok),
            "cn.pocketbase.hub.getPlugin",
            &[("uri", &uri)],
        )
        .await;
    assert_eq!(body["error"], "RecordNotFound");
    let (rejected, _) = c
        .list(
            Some(&mod_tok),
            "cn.pocketbase.hub.listPlugins",
            &[("status", "rejected")],
        )
        .await;
    assert!(rejected.is_empty());
}

/// A plugin of the seeded marketplace.
#[derive(Debug, Clone)]
struct Seeded {
    slug: &'static str,
    uri: String,
    name: &'static str,
    created: &'static str,
    featured: bool,
    approved: bool,
    downloads: i64,
}

struct Market {
    alice: Did,
    alice_tok: String,
    carol: Did,
    mod_tok: String,
    plugins: Vec<Seeded>,
}

const SEED: [(&str, &str, &str, &str, &str, &str); 8] = [
    // (author, slug, name, category, createdAt, extra text)
    (
        "alice",
        "jwt-auth",
        "JWT Auth",
        "auth",
        "2025-01-01T00:00:00Z",
        "JWT 认证插件",
    ),
    (
        "alice",
        "s3-storage",
        "S3 Storage",
        "storage",
        "2025-01-02T00:00:00+08:00",
        "对象存储",
    ),
    (
        "alice",
        "rest-api",
        "REST API Builder",
        "api",
        "2025-01-03T00:00:00Z",
        "接口",
    ),
    (
        "alice",
        "ui-kit",
        "admin UI kit",
        "ui",
        "2025-01-04T00:00:00Z",
        "界面",
    ),
    (
        "alice",
        "ai-helper",
        "AI Helper",
        "ai",
        "2025-01-05T00:00:00Z",
        "智能",
    ),
    (
        "carol",
        "oauth-login",
        "OAuth Login",
        "auth",
        "2025-01-06T00:00:00Z",
        "支持微信登录认证",
    ),
    (
        "carol",
        "cache-utils",
        "Cache Utils",
        "utils",
        "2025-01-07T00:00:00Z",
        "缓存",
    ),
    (
        "carol",
        "pending-one",
        "Pending One",
        "utils",
        "2025-01-08T00:00:00Z",
        "待审",
    ),
];

fn apply_create(collection: &str, rkey: Option<&str>, value: Value) -> Value {
    let mut w = json!({"$type": "com.atproto.repo.applyWrites#create", "collection": collection, "value": value});
    if let Some(rkey) = rkey {
        w["rkey"] = json!(rkey);
    }
    w
}

/// Seeds two authors' plugins, approves all but `pending-one` (featuring `s3-storage` and
/// `cache-utils`) and counts downloads from three client addresses.
async fn seed_market(pds: &TestPds, moderator: (Did, String)) -> Market {
    let c = Client::new(pds);
    let (alice, alice_tok) = pds.seed_account("alice.test", "alice-pass").await;
    let (carol, carol_tok) = pds.seed_account("carol.test", "carol-pass").await;
    let (mod_did, mod_tok) = moderator;
    let mut plugins = Vec::new();
    let mut reviews = Vec::new();
    for (who, did, tok) in [("alice", &alice, &alice_tok), ("carol", &carol, &carol_tok)] {
        let mine: Vec<_> = SEED.iter().filter(|s| s.0 == who).collect();
        let writes: Vec<Value> = mine
            .iter()
            .map(|(_, slug, name, category, created, extra)| {
                let mut record = plugin(name, category, created);
                record["descriptionZh"] = json!(extra);
                if *slug == "jwt-auth" {
                    record["tags"] = json!(["jwt", "oauth"]);
                }
                if *slug == "oauth-login" {
                    record["readme"] = json!(format!("# OAuth\n{extra}"));
                }
                apply_create(PLUGIN, Some(slug), record)
            })
            .collect();
        let (status, body) = c
            .post(
                Some(tok),
                "com.atproto.repo.applyWrites",
                &json!({"repo": did.as_str(), "writes": writes}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for ((_, slug, name, _, created, _), result) in
            mine.iter().zip(body["results"].as_array().unwrap())
        {
            let uri = result["uri"].as_str().unwrap().to_owned();
            let approved = *slug != "pending-one";
            let featured = matches!(*slug, "s3-storage" | "cache-utils");
            if approved {
                reviews.push(apply_create(
                    REVIEW,
                    None,
                    review(
                        &uri,
                        result["cid"].as_str().unwrap(),
                        "approved",
                        featured,
                        "2025-06-01T00:00:00Z",
                    ),
                ));
            }
            plugins.push(Seeded {
                slug,
                uri,
                name,
                created,
                featured,
                approved,
                downloads: 0,
            });
        }
    }
    let (status, body) = c
        .post(
            Some(&mod_tok),
            "com.atproto.repo.applyWrites",
            &json!({"repo": mod_did.as_str(), "writes": reviews}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Downloads: rest-api from three addresses, jwt-auth from two, ui-kit from one.
    let wanted = [("rest-api", 3), ("jwt-auth", 2), ("ui-kit", 1)];
    for (slug, n) in wanted {
        let p = plugins.iter_mut().find(|p| p.slug == slug).unwrap();
        for i in 0..n {
            let ip: IpAddr = format!("127.0.0.{}", i + 1).parse().unwrap();
            let client = Client::from_address(pds, Some(ip));
            for repeat in 0..2 {
                let (status, body) = client
                    .post(
                        None,
                        "cn.pocketbase.hub.trackDownload",
                        &json!({"uri": p.uri}),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(body, json!({"counted": repeat == 0, "downloads": i + 1}));
            }
        }
        p.downloads = n;
    }
    Market {
        alice,
        alice_tok,
        carol,
        mod_tok,
        plugins,
    }
}

/// The expected order of the approved plugins for a sort, by the model.
fn expected(market: &Market, sort: &str, filter: impl Fn(&Seeded) -> bool) -> Vec<String> {
    let mut list: Vec<&Seeded> = market
        .plugins
        .iter()
        .filter(|p| p.approved && filter(p))
        .collect();
    match sort {
        "featured" => list.sort_by(|a, b| {
            (b.featured, b.downloads, &b.uri).cmp(&(a.featured, a.downloads, &a.uri))
        }),
        "downloads" => list.sort_by(|a, b| (b.downloads, &b.uri).cmp(&(a.downloads, &a.uri))),
        "new" => list.sort_by(|a, b| {
            let t = |p: &Seeded| chrono::DateTime::parse_from_rfc3339(p.created).unwrap();
            (t(b), &b.uri).cmp(&(t(a), &a.uri))
        }),
        "name" => list
            .sort_by(|a, b| (a.name.to_lowercase(), &a.uri).cmp(&(b.name.to_lowercase(), &b.uri))),
        _ => unreachable!(),
    }
    list.iter().map(|p| p.slug.to_owned()).collect()
}

async fn moderator_pds() -> (TestPds, (Did, String)) {
    // The moderator's DID is not known before its account exists: it is made one by the admin.
    let pds = start(&[], false).await;
    let (mod_did, mod_tok) = pds.seed_account("mod.test", "mod-pass").await;
    let c = Client::new(&pds);
    let (status, _) = c
        .admin_post(
            ADMIN_PASSWORD,
            "cn.pocketbase.hub.setModerator",
            &json!({"did": mod_did.as_str(), "moderator": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    (pds, (mod_did, mod_tok))
}

#[tokio::test]
async fn listings_filter_sort_page_and_search() {
    let (pds, moderator) = moderator_pds().await;
    let market = seed_market(&pds, moderator).await;
    let c = Client::new(&pds);
    const LIST: &str = "cn.pocketbase.hub.listPlugins";

    // Sort orders (the default is featured, then downloads), and stable cursor paging.
    assert_eq!(
        c.plugins(&[]).await,
        expected(&market, "featured", |_| true)
    );
    // Featured first (the two featured have no downloads: their order is by URI), then
    // by downloads.
    let first = c.plugins(&[]).await;
    let mut featured = first[..2].to_vec();
    featured.sort();
    assert_eq!(featured, ["cache-utils", "s3-storage"]);
    assert_eq!(first[2..5], ["rest-api", "jwt-auth", "ui-kit"]);
    assert_eq!(
        &c.plugins(&[("sort", "downloads")]).await[..3],
        ["rest-api", "jwt-auth", "ui-kit"]
    );
    assert_eq!(
        c.plugins(&[("sort", "name")]).await,
        [
            "ui-kit",
            "ai-helper",
            "cache-utils",
            "jwt-auth",
            "oauth-login",
            "rest-api",
            "s3-storage"
        ]
    );
    // s3-storage's createdAt is 2025-01-01T16:00Z once normalised, after jwt-auth's.
    assert_eq!(
        c.plugins(&[("sort", "new")]).await,
        [
            "cache-utils",
            "oauth-login",
            "ai-helper",
            "ui-kit",
            "rest-api",
            "s3-storage",
            "jwt-auth"
        ]
    );
    for sort in ["featured", "downloads", "new", "name"] {
        let all = c.plugins(&[("sort", sort), ("limit", "100")]).await;
        assert_eq!(all, expected(&market, sort, |_| true), "{sort}");
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let mut query = vec![("sort", sort), ("limit", "2")];
            if let Some(c) = &cursor {
                query.push(("cursor", c.as_str()));
            }
            let (page, next) = c.list(None, LIST, &query).await;
            assert!(page.len() <= 2);
            paged.extend(page);
            cursor = next;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(paged, all, "{sort} paged");
    }

    // Category filter; unknown categories are listed as `other`.
    assert_eq!(
        c.plugins(&[("category", "auth")]).await,
        expected(&market, "featured", |p| p.slug.contains("auth"))
    );
    assert_eq!(c.plugins(&[("category", "other")]).await, ["ai-helper"]);
    assert!(c.plugins(&[("category", "ai")]).await.is_empty());

    // Full text, English and Chinese, words shorter than three characters included.
    let search = |q: &'static str| {
        let c = &c;
        async move {
            let mut found = c.plugins(&[("q", q), ("sort", "name")]).await;
            found.sort();
            found
        }
    };
    assert_eq!(search("auth").await, ["jwt-auth", "oauth-login"]);
    assert_eq!(search("AUTH").await, ["jwt-auth", "oauth-login"]);
    assert_eq!(search("认证").await, ["jwt-auth", "oauth-login"]);
    assert_eq!(search("认证插件").await, ["jwt-auth"]);
    assert_eq!(search("微信登录").await, ["oauth-login"]);
    assert_eq!(search("存储").await, ["s3-storage"]);
    assert_eq!(search("jwt 认证").await, ["jwt-auth"]);
    assert_eq!(
        search("ui").await,
        ["rest-api", "ui-kit"],
        "\"Builder\" contains \"ui\""
    );
    assert_eq!(
        search("oauth").await,
        ["jwt-auth", "oauth-login"],
        "tags are indexed"
    );
    assert!(search("nothing-like-this").await.is_empty());
    assert!(search("\"a\" OR *").await.is_empty());
    assert!(search("100%").await.is_empty());
    for hostile in [
        "\0",
        "\"",
        "NEAR(",
        "a:b",
        "-x",
        "^yy",
        "auth*",
        "(((",
        "'; DROP TABLE hub_plugin; --",
        "_%_%",
    ] {
        let (status, body) = c.get(None, LIST, &[("q", hostile)]).await;
        assert_eq!(status, StatusCode::OK, "{hostile:?}: {body}");
    }
    let (_, body) = c.get(None, LIST, &[("q", "auth*")]).await;
    assert_eq!(
        body["plugins"],
        json!([]),
        "query syntax is matched literally"
    );
    assert!(
        search("待审").await.is_empty(),
        "pending plugins are not listed"
    );
    let (found, _) = c
        .list(
            Some(&market.mod_tok),
            LIST,
            &[("q", "待审"), ("status", "pending")],
        )
        .await;
    assert_eq!(found, ["pending-one"]);

    // Bad parameters.
    for query in [
        vec![("cursor", "not-a-cursor")],
        vec![("sort", "stars")],
        vec![("status", "deleted")],
        vec![("limit", "0")],
        vec![("limit", "101")],
        vec![("limit", "ten")],
    ] {
        let (status, body) = c.get(None, LIST, &query).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("InvalidRequest")),
            "{query:?}"
        );
    }

    // Downloads: counted views, unknown or unapproved plugins refused, per-day stats.
    let rest = market
        .plugins
        .iter()
        .find(|p| p.slug == "rest-api")
        .unwrap();
    let (_, body) = c
        .get(None, "cn.pocketbase.hub.getPlugin", &[("uri", &rest.uri)])
        .await;
    assert_eq!(body["plugin"]["downloads"], 3);
    let pending = market
        .plugins
        .iter()
        .find(|p| p.slug == "pending-one")
        .unwrap();
    for uri in [pending.uri.clone(), plugin_uri(&market.alice, "missing")] {
        let (status, body) = c
            .post(
                None,
                "cn.pocketbase.hub.trackDownload",
                &json!({"uri": uri}),
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("RecordNotFound"))
        );
    }
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (status, stats) = c
        .get(None, "cn.pocketbase.hub.getStats", &[("plugin", &rest.uri)])
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(
        stats,
        json!({
            "plugins": 7,
            "cases": 0,
            "downloads": 6,
            "pluginCategories": [
                {"category": "api", "count": 1},
                {"category": "auth", "count": 2},
                {"category": "other", "count": 1},
                {"category": "storage", "count": 1},
                {"category": "ui", "count": 1},
                {"category": "utils", "count": 1},
            ],
            "caseCategories": [],
            "pluginDownloads": [{"day": today, "count": 3}],
        })
    );

    // One count per address and plugin per hour, per UTC day.
    let hub = pds.state.hub();
    let t0 = 1_735_732_800; // 2025-01-01T12:00:00Z
    assert_eq!(
        hub.track_download(&rest.uri, "10.0.0.9", t0).await.unwrap(),
        (true, 4)
    );
    assert_eq!(
        hub.track_download(&rest.uri, "10.0.0.9", t0 + 3599)
            .await
            .unwrap(),
        (false, 4)
    );
    assert_eq!(
        hub.track_download(&rest.uri, "10.0.0.8", t0 + 3599)
            .await
            .unwrap(),
        (true, 5)
    );
    assert_eq!(
        hub.track_download(&rest.uri, "10.0.0.9", t0 + 3600)
            .await
            .unwrap(),
        (true, 6)
    );
    assert_eq!(
        hub.track_download(&rest.uri, "10.0.0.9", t0 + 43_200)
            .await
            .unwrap(),
        (true, 7)
    );
    let days: Vec<(String, i64)> =
        sqlx::query_as("SELECT day, count FROM hub_download_day WHERE uri = ? ORDER BY day")
            .bind(&rest.uri)
            .fetch_all(hub.pool())
            .await
            .unwrap();
    assert_eq!(
        days,
        [
            ("2025-01-01".to_owned(), 3),
            ("2025-01-02".to_owned(), 1),
            (today, 3)
        ]
    );
}

/// The full bodies of a set of listings (for comparing index states).
async fn snapshot(c: &Client, mod_tok: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for (method, query) in [
        ("cn.pocketbase.hub.listPlugins", vec![]),
        (
            "cn.pocketbase.hub.listPlugins",
            vec![("sort", "new"), ("limit", "3")],
        ),
        ("cn.pocketbase.hub.listPlugins", vec![("q", "认证")]),
        ("cn.pocketbase.hub.listPlugins", vec![("status", "pending")]),
        ("cn.pocketbase.hub.listCases", vec![]),
        ("cn.pocketbase.hub.listCases", vec![("q", "网店")]),
        ("cn.pocketbase.hub.getStats", vec![]),
    ] {
        let (status, body) = c.get(Some(mod_tok), method, &query).await;
        assert_eq!(status, StatusCode::OK, "{method}: {body}");
        out.push(body);
    }
    out
}

#[tokio::test]
async fn cases_hidden_accounts_reindex_and_repair() {
    let (pds, moderator) = moderator_pds().await;
    let mod_did = moderator.0.clone();
    let market = seed_market(&pds, moderator).await;
    let c = Client::new(&pds);
    let (alice, tok) = (&market.alice, market.alice_tok.as_str());

    // Case studies: written with TIDs, approved, listed, searched, fetched.
    let shop = json!({"$type": CASE, "title": "Shop", "titleZh": "网店", "description": "A shop", "category": "saas", "createdAt": "2025-02-01T00:00:00Z"});
    let sensor = json!({"$type": CASE, "title": "Sensor hub", "description": "Telemetry", "category": "iot", "techStack": ["pocketbase", "mqtt"], "githubUrl": "https://github.com/acme/sensor", "createdAt": "2025-02-02T00:00:00Z"});
    let mut case_uris = Vec::new();
    for record in [shop, sensor] {
        let (status, body) = c.create(tok, alice, CASE, None, record).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let uri = body["uri"].as_str().unwrap().to_owned();
        c.create(
            &market.mod_tok,
            &mod_did,
            REVIEW,
            None,
            review(
                &uri,
                body["cid"].as_str().unwrap(),
                "approved",
                false,
                "2025-06-02T00:00:00Z",
            ),
        )
        .await;
        case_uris.push(uri);
    }
    let mut bad_case = json!({"$type": CASE, "title": "X", "description": "Y", "category": "saas", "githubUrl": "https://github.com/only-owner"});
    let (status, body) = c.create(tok, alice, CASE, None, bad_case.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidRequest"))
    );
    bad_case["githubUrl"] = json!("https://github.com/o/r");
    bad_case["thumbnail"] = json!({"$type": "blob", "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"}, "mimeType": "image/png", "size": 2_000_001});
    let (status, body) = c.create(tok, alice, CASE, None, bad_case).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Record/thumbnail: blob is 2000001 bytes"),
        "{body}"
    );
    const CASES: &str = "cn.pocketbase.hub.listCases";
    let rkey = |uri: &str| uri.rsplit('/').next().unwrap().to_owned();
    assert_eq!(
        c.list(None, CASES, &[]).await.0,
        [rkey(&case_uris[1]), rkey(&case_uris[0])]
    );
    // "sensor hub" sorts before "shop".
    assert_eq!(
        c.list(None, CASES, &[("sort", "name")]).await.0,
        [rkey(&case_uris[1]), rkey(&case_uris[0])]
    );
    assert_eq!(
        c.list(None, CASES, &[("sort", "new"), ("limit", "1")])
            .await
            .0,
        [rkey(&case_uris[1])]
    );
    assert_eq!(
        c.list(None, CASES, &[("q", "网店")]).await.0,
        [rkey(&case_uris[0])]
    );
    assert_eq!(
        c.list(None, CASES, &[("q", "mqtt")]).await.0,
        [rkey(&case_uris[1])]
    );
    assert_eq!(
        c.list(None, CASES, &[("category", "iot")]).await.0,
        [rkey(&case_uris[1])]
    );
    let (status, body) = c.get(None, CASES, &[("sort", "downloads")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidRequest"))
    );
    let shop_rkey = rkey(&case_uris[0]);
    let (status, body) = c
        .get(
            None,
            "cn.pocketbase.hub.getCase",
            &[("author", "alice.test"), ("rkey", &shop_rkey)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["case"]["record"]["titleZh"], "网店");
    assert_eq!(body["case"]["status"], "approved");
    assert_eq!(body["case"]["author"]["handle"], "alice.test");

    // Taken-down and deactivated accounts' submissions are hidden, and come back.
    let carol_slugs = ["cache-utils", "oauth-login"];
    let accounts = pds.state.accounts();
    accounts
        .takedown(market.carol.as_str(), "hub-test")
        .await
        .unwrap();
    let listed = c.plugins(&[("limit", "100")]).await;
    assert!(
        carol_slugs.iter().all(|s| !listed.iter().any(|l| l == s)),
        "{listed:?}"
    );
    assert_eq!(listed.len(), 5);
    let (_, body) = c
        .get(
            None,
            "cn.pocketbase.hub.getPlugin",
            &[("author", "carol.test"), ("slug", "cache-utils")],
        )
        .await;
    assert_eq!(body["error"], "RecordNotFound");
    let (_, stats) = c.get(None, "cn.pocketbase.hub.getStats", &[]).await;
    assert_eq!(stats["plugins"], 5);
    accounts.untakedown(market.carol.as_str()).await.unwrap();
    assert_eq!(c.plugins(&[("limit", "100")]).await.len(), 7);
    accounts
        .deactivate(alice.as_str(), 1_700_000_000, None)
        .await
        .unwrap();
    assert_eq!(
        c.plugins(&[("limit", "100")]).await,
        ["cache-utils", "oauth-login"]
    );
    assert!(c.list(None, CASES, &[]).await.0.is_empty());
    accounts.activate(alice.as_str()).await.unwrap();

    // `rookery reindex` (and a rebuild from an emptied index) yields the same listings.
    let before = snapshot(&c, &market.mod_tok).await;
    assert_eq!(before[0]["plugins"].as_array().unwrap().len(), 7);
    let hub = pds.state.hub();
    let (accounts_seen, records) = hub.reindex_all(pds.state.repo()).await.unwrap();
    assert_eq!((accounts_seen, records), (3, 8 + 2 + 9));
    assert_eq!(snapshot(&c, &market.mod_tok).await, before);
    for table in [
        "hub_plugin",
        "hub_plugin_fts",
        "hub_case",
        "hub_case_fts",
        "hub_review",
        "hub_status",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(hub.pool())
            .await
            .unwrap();
    }
    assert!(c.plugins(&[]).await.is_empty());
    hub.reindex_all(pds.state.repo()).await.unwrap();
    assert_eq!(snapshot(&c, &market.mod_tok).await, before);

    // A crash between a commit and its index update: the account stays marked pending and
    // start-up repair reindexes it. Simulated by committing through the repository service
    // directly (no index update) with the mark set.
    let logo_cid = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy";
    let shot_cid = "bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";
    let blob = |cid: &str, mime: &str| json!({"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": 1000});
    let mut record = plugin("Crash Safe", "utils", "2025-03-01T00:00:00Z");
    record["logo"] = blob(logo_cid, "image/png");
    record["screenshots"] = json!([blob(shot_cid, "image/jpeg")]);
    let write = Write::Create {
        collection: PLUGIN.parse().unwrap(),
        rkey: "crash-safe".parse().unwrap(),
        record: json_to_record(&record).unwrap(),
    };
    sqlx::query("INSERT INTO hub_pending (did, since) VALUES (?, 0)")
        .bind(alice.as_str())
        .execute(hub.pool())
        .await
        .unwrap();
    pds.state
        .repo()
        .apply_writes(alice, vec![RecordWrite::from(write)], None)
        .await
        .unwrap();
    let uri = plugin_uri(alice, "crash-safe");
    let (_, body) = c
        .get(Some(tok), "cn.pocketbase.hub.getPlugin", &[("uri", &uri)])
        .await;
    assert_eq!(body["error"], "RecordNotFound");
    assert_eq!(hub.repair(pds.state.repo()).await.unwrap(), 1);
    let (status, body) = c
        .get(Some(tok), "cn.pocketbase.hub.getPlugin", &[("uri", &uri)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let blob_url = |cid: &str| {
        format!(
            "{}/xrpc/com.atproto.sync.getBlob?did={}&cid={cid}",
            pds.url(),
            alice.as_str().replace(':', "%3A")
        )
    };
    assert_eq!(body["plugin"]["logo"], blob_url(logo_cid));
    assert_eq!(body["plugin"]["screenshots"], json!([blob_url(shot_cid)]));
    assert_eq!(body["plugin"]["status"], "pending");
    let pending: Vec<(String,)> = sqlx::query_as("SELECT did FROM hub_pending")
        .fetch_all(hub.pool())
        .await
        .unwrap();
    assert!(pending.is_empty());
    assert_eq!(hub.repair(pds.state.repo()).await.unwrap(), 0);
}

#[tokio::test]
async fn creation_rate_limits() {
    let pds = start(&[], true).await;
    let c = Client::new(&pds);
    let (alice, tok) = pds.seed_account("alice.test", "alice-pass").await;
    let (bob, bob_tok) = pds.seed_account("bob.test", "bob-pass").await;
    let before = chrono::Utc::now().timestamp();
    // Ten plugins in one hour: nine one by one, one in a batch with a case.
    for i in 0..9 {
        let (status, body) = c
            .create(
                &tok,
                &alice,
                PLUGIN,
                Some(&format!("p-{i}")),
                plugin("P", "ui", "2025-01-01T00:00:00Z"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{i}: {body}");
    }
    let case = || json!({"$type": CASE, "title": "C", "description": "D", "category": "saas"});
    let writes = json!({"repo": alice.as_str(), "writes": [
        apply_create(PLUGIN, Some("p-9"), plugin("P", "ui", "2025-01-01T00:00:00Z")),
        apply_create(CASE, None, case()),
    ]});
    let (status, body) = c
        .post(Some(&tok), "com.atproto.repo.applyWrites", &writes)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The eleventh is refused, with the time the oldest creation leaves the window.
    let (status, body, reset) = c.post_full(Some(&tok), "com.atproto.repo.createRecord", &json!({"repo": alice.as_str(), "collection": PLUGIN, "rkey": "p-10", "record": plugin("P", "ui", "2025-01-01T00:00:00Z")})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("RateLimitExceeded"))
    );
    let reset: i64 = reset.expect("ratelimit-reset header").parse().unwrap();
    let after = chrono::Utc::now().timestamp();
    assert!((before + 3600..=after + 3600).contains(&reset), "{reset}");
    // Updates are not creations; other accounts have their own budget.
    let (status, _) = c.post(Some(&tok), "com.atproto.repo.putRecord", &json!({"repo": alice.as_str(), "collection": PLUGIN, "rkey": "p-0", "record": plugin("P2", "ui", "2025-01-01T00:00:00Z")})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = c
        .create(
            &bob_tok,
            &bob,
            PLUGIN,
            Some("b-0"),
            plugin("B", "ui", "2025-01-01T00:00:00Z"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Cases: five per hour (one already made in the batch).
    for i in 0..4 {
        let (status, body) = c.create(&tok, &alice, CASE, None, case()).await;
        assert_eq!(status, StatusCode::OK, "{i}: {body}");
    }
    let (status, body, reset) = c
        .post_full(
            Some(&tok),
            "com.atproto.repo.createRecord",
            &json!({"repo": alice.as_str(), "collection": CASE, "record": case()}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("RateLimitExceeded"))
    );
    assert!(reset.is_some());
    // A refused batch commits nothing.
    let (status, _) = c.post(Some(&tok), "com.atproto.repo.applyWrites", &json!({"repo": alice.as_str(), "writes": [
        apply_create("app.bsky.feed.post", None, json!({"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2025-01-01T00:00:00Z"})),
        apply_create(PLUGIN, Some("p-11"), plugin("P", "ui", "2025-01-01T00:00:00Z")),
    ]})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (_, listed) = c
        .get(
            None,
            "com.atproto.repo.listRecords",
            &[
                ("repo", alice.as_str()),
                ("collection", "app.bsky.feed.post"),
            ],
        )
        .await;
    assert_eq!(listed["records"], json!([]));
}
