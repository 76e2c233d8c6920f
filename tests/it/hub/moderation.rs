//! Write checks and the moderation flow.

use reqwest::StatusCode;
use rookery::syntax::Did;
use serde_json::{Value, json};

use super::client::{ADMIN_PASSWORD, Client, PLUGIN, REVIEW, plugin, plugin_uri, review, start};

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
