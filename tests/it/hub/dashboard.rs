//! The operator dashboard's moderation queue (`/admin/hub`): pending submissions listed,
//! decided by a review record written into a local moderator's repository, with the
//! effects seen through the hub's XRPC listings and the moderator's repository.

use reqwest::StatusCode;
use serde_json::Value;

use super::client::{ADMIN_PASSWORD, CASE, Client, PLUGIN, REVIEW, plugin, plugin_uri, start};
use crate::web::admin_browser;

fn as_refs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test]
async fn dashboard_moderates_the_hub_queue() {
    let pds = start(&["mod.test"], false).await;
    let c = Client::new(&pds);
    let (alice, alice_tok) = pds.seed_account("alice.test", "alice-pass").await;
    let (moderator, _) = pds.seed_account("mod.test", "mod-pass").await;
    for (slug, name) in [("pb-auth", "Auth Kit"), ("pb-mail", "Mail Kit")] {
        let (status, body) = c
            .create(
                &alice_tok,
                &alice,
                PLUGIN,
                Some(slug),
                plugin(name, "auth", "2025-01-01T00:00:00Z"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let case = serde_json::json!({
        "$type": CASE, "title": "Shop on PocketBase", "description": "A shop", "category": "ecommerce",
        "createdAt": "2025-01-02T00:00:00Z",
    });
    let (status, body) = c.create(&alice_tok, &alice, CASE, None, case).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (mut browser, csrf) = admin_browser(&pds, ADMIN_PASSWORD).await;
    let (status, _, page) = browser.get("/admin/hub").await;
    assert_eq!(status, StatusCode::OK);
    for text in [
        "Auth Kit",
        "Mail Kit",
        "Shop on PocketBase",
        "mod.test",
        moderator.as_str(),
    ] {
        assert!(page.contains(text), "{text}: {page}");
    }
    let (_, auth) = c
        .get(
            None,
            "cn.pocketbase.hub.getPlugin",
            &[("uri", &plugin_uri(&alice, "pb-auth"))],
        )
        .await;
    let auth_cid = auth["plugin"]["cid"].as_str().map(str::to_owned);
    // Pending plugins are not public; the page carries the CID the review needs.
    let auth_uri = plugin_uri(&alice, "pb-auth");
    let at = page.find(&auth_uri).unwrap();
    let marker = "name=\"cid\" value=\"";
    let cid_at = page[at..].find(marker).unwrap() + at + marker.len();
    let cid = &page[cid_at..cid_at + page[cid_at..].find('"').unwrap()];
    if let Some(public) = auth_cid {
        assert_eq!(public, cid);
    }

    // Refused: no CSRF token; a reviewer who is no moderator.
    let form = |moderator: &str, decision: &'static str| {
        vec![
            ("uri".to_owned(), auth_uri.clone()),
            ("cid".to_owned(), cid.to_owned()),
            ("moderator".to_owned(), moderator.to_owned()),
            ("decision".to_owned(), decision.to_owned()),
            ("note".to_owned(), "looks good".to_owned()),
        ]
    };
    let post = |fields: Vec<(String, String)>, with_csrf: bool| {
        let mut fields = fields;
        if with_csrf {
            fields.push(("csrf".to_owned(), csrf.clone()));
        }
        fields
    };
    let no_csrf = post(form(moderator.as_str(), "feature"), false);
    let (status, _, _) = browser.post("/admin/hub", &as_refs(&no_csrf)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let not_moderator = post(form(alice.as_str(), "feature"), true);
    let (status, _, page) = browser.post("/admin/hub", &as_refs(&not_moderator)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("not a hub moderator hosted here"), "{page}");

    // Approve and feature one plugin.
    let feature = post(form(moderator.as_str(), "feature"), true);
    let (status, headers, _) = browser.post("/admin/hub", &as_refs(&feature)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/admin/hub?done=1");
    let (status, body) = c
        .get(None, "cn.pocketbase.hub.getPlugin", &[("uri", &auth_uri)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plugin"]["status"], "approved", "{body}");
    assert_eq!(body["plugin"]["featured"], true, "{body}");
    let (approved, _) = c.list(None, "cn.pocketbase.hub.listPlugins", &[]).await;
    assert_eq!(approved.len(), 1, "{approved:?}");

    // The decision is a review record in the moderator's repository, with the note.
    let (status, records) = c
        .get(
            None,
            "com.atproto.repo.listRecords",
            &[("repo", moderator.as_str()), ("collection", REVIEW)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{records}");
    let records = records["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let value: &Value = &records[0]["value"];
    assert_eq!(value["subject"]["uri"], auth_uri.as_str());
    assert_eq!(value["status"], "approved");
    assert_eq!(value["reason"], "looks good");

    // The queue no longer lists it.
    let (_, _, page) = browser.get("/admin/hub?done=1").await;
    assert!(
        page.contains("Done.") && !page.contains("Auth Kit") && page.contains("Mail Kit"),
        "{page}"
    );
    pds.stop().await;
}
