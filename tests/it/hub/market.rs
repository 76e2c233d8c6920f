//! A seeded marketplace: two authors' plugins, a moderator's reviews, downloads.

use std::net::IpAddr;

use reqwest::StatusCode;
use rookery::syntax::Did;
use serde_json::{Value, json};

use super::client::{ADMIN_PASSWORD, Client, PLUGIN, REVIEW, plugin, review, start};
use crate::support::pds::TestPds;

/// A plugin of the seeded marketplace.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub slug: &'static str,
    pub uri: String,
    pub name: &'static str,
    pub created: &'static str,
    pub featured: bool,
    pub approved: bool,
    pub downloads: i64,
}

pub struct Market {
    pub alice: Did,
    pub alice_tok: String,
    pub carol: Did,
    pub mod_tok: String,
    pub plugins: Vec<Seeded>,
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

pub fn apply_create(collection: &str, rkey: Option<&str>, value: Value) -> Value {
    let mut w = json!({"$type": "com.atproto.repo.applyWrites#create", "collection": collection, "value": value});
    if let Some(rkey) = rkey {
        w["rkey"] = json!(rkey);
    }
    w
}

/// Seeds two authors' plugins, approves all but `pending-one` (featuring `s3-storage` and
/// `cache-utils`) and counts downloads from three client addresses.
pub async fn seed_market(pds: &TestPds, moderator: (Did, String)) -> Market {
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
pub fn expected(market: &Market, sort: &str, filter: impl Fn(&Seeded) -> bool) -> Vec<String> {
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

pub async fn moderator_pds() -> (TestPds, (Did, String)) {
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
