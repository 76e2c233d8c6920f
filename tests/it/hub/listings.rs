//! Listing filters, sort orders, cursor paging, full text, downloads and statistics.

use reqwest::StatusCode;
use serde_json::json;

use super::client::{Client, plugin_uri};
use super::market::{expected, moderator_pds, seed_market};

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
