//! The web pages in a real browser: headless Chromium (Debian's) driven by
//! `tests/js/web-pages.mjs` through puppeteer-core signs in, submits the forms and saves a
//! screenshot of every page under `target/screenshots/`; this test checks what it saw and
//! the effects through the XRPC API.

use reqwest::StatusCode;
use rookery::config::Secret;
use serde_json::{Value, json};

use crate::support;
use crate::support::pds::TestPds;

const ADMIN_PASSWORD: &str = "browser-admin-pass";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_work_in_headless_chromium() {
    let shots = support::browser_screenshot_dir();
    let pds = TestPds::start_with(|config| {
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        config.hub_moderators = vec!["moderator.test".to_owned()];
    })
    .await;
    let (did, token) = pds.seed_account("webuser.test", "webuser-password").await;
    let (other, _) = pds.seed_account("another.test", "another-password").await;
    pds.seed_account("moderator.test", "moderator-password")
        .await;
    let http = reqwest::Client::new();
    let plugin = http
        .post(format!("{}/xrpc/com.atproto.repo.createRecord", pds.url()))
        .bearer_auth(&token)
        .json(&json!({
            "repo": did.as_str(),
            "collection": "cn.pocketbase.hub.plugin",
            "rkey": "pb-browser",
            "record": {
                "name": "Browser Kit", "description": "A plugin", "category": "auth",
                "githubUrl": "https://github.com/acme/browser-kit", "createdAt": "2025-01-01T00:00:00Z",
            },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(plugin.status(), StatusCode::OK);
    let args = vec![
        pds.url(),
        ADMIN_PASSWORD.to_owned(),
        "webuser.test".to_owned(),
        "webuser-password".to_owned(),
        shots.display().to_string(),
    ];
    let out = support::run_js("web-pages.mjs", args).await;

    assert_eq!(out["adminSignedOutStatus"], 401, "{out}");
    assert_eq!(out["wrongPasswordStatus"], 401, "{out}");
    assert_eq!(out["wrongPasswordText"], true, "{out}");
    assert_eq!(out["adminHomeStatus"], 200, "{out}");
    assert_eq!(out["searchFound"], true, "{out}");
    assert_eq!(out["confirmRequired"], true, "{out}");
    assert_eq!(out["takedownDone"], true, "{out}");
    assert_eq!(out["deactivated"], true, "{out}");
    assert_eq!(out["renamed"], true, "{out}");
    assert_eq!(out["hubDone"], true, "{out}");
    assert_eq!(out["deletedRedirect"], "/admin", "{out}");
    assert_eq!(out["passwordChanged"], true, "{out}");
    assert_eq!(out["takenDown"], true, "{out}");
    assert_eq!(out["inviteRows"], 2, "{out}");
    assert_eq!(out["serverChart"], 60, "one bar a minute: {out}");
    assert_eq!(out["chineseDashboard"], true, "{out}");
    assert_eq!(out["accountSignedOutStatus"], 401, "{out}");
    assert_eq!(out["accountStatus"], 200, "{out}");
    assert_eq!(out["missingCsrfStatus"], 403, "{out}");
    assert_eq!(out["accountOnAdminStatus"], 401, "{out}");
    assert_eq!(out["chineseAccount"], true, "{out}");

    // The takedown was lifted again from the page; the invite codes exist; the app
    // password made in the browser signs in.
    let status: Value = http
        .get(format!(
            "{}/xrpc/com.atproto.admin.getSubjectStatus?did={did}",
            pds.url()
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["takedown"]["applied"], false, "{status}");
    let codes: Value = http
        .get(format!(
            "{}/xrpc/com.atproto.admin.getInviteCodes",
            pds.url()
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let codes = codes["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 2, "{codes:?}");
    assert_eq!(
        codes.iter().filter(|c| c["disabled"] == true).count(),
        1,
        "{codes:?}"
    );
    let info: Value = http
        .get(format!(
            "{}/xrpc/com.atproto.admin.getAccountInfo?did={did}",
            pds.url()
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["handle"], "webuser2.test", "{info}");
    assert_eq!(info["email"], "webuser-new@example.com", "{info}");
    assert!(
        info["deactivatedAt"].is_string(),
        "deactivated from the account page: {info}"
    );
    let gone = http
        .get(format!(
            "{}/xrpc/com.atproto.admin.getAccountInfo?did={other}",
            pds.url()
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(
        gone.status(),
        StatusCode::BAD_REQUEST,
        "deleted from the dashboard"
    );
    // The decision is the moderator's review record (the plugin itself is hidden now that
    // its author deactivated from the account page).
    let reviews: Value = http
        .get(format!(
            "{}/xrpc/com.atproto.repo.listRecords?repo=moderator.test&collection=cn.pocketbase.hub.review",
            pds.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let review = &reviews["records"][0]["value"];
    assert_eq!(
        review["subject"]["uri"],
        format!("at://{did}/cn.pocketbase.hub.plugin/pb-browser"),
        "{reviews}"
    );
    assert_eq!(review["status"], "approved", "{reviews}");
    assert_eq!(review["featured"], true, "{reviews}");
    let sign_in = |password: String| {
        let http = http.clone();
        let url = format!("{}/xrpc/com.atproto.server.createSession", pds.url());
        async move {
            http.post(url)
                .json(&json!({ "identifier": "webuser2.test", "password": password }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        sign_in("browser-password-2".into()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(sign_in("browser-password-3".into()).await, StatusCode::OK);
    let revoked = out["revokedAppPassword"].as_str().unwrap().to_owned();
    assert_eq!(sign_in(revoked).await, StatusCode::UNAUTHORIZED);
    let app_password = out["appPassword"].as_str().unwrap();
    let session = http
        .post(format!(
            "{}/xrpc/com.atproto.server.createSession",
            pds.url()
        ))
        .json(&json!({ "identifier": "webuser2.test", "password": app_password }))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), StatusCode::OK);

    // Every page left a screenshot.
    let names = out["shots"].as_array().unwrap();
    assert!(names.len() >= 13, "{out}");
    for name in names {
        let path = shots.join(format!("{}.png", name.as_str().unwrap()));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 2_000,
            "{}",
            path.display()
        );
    }
    pds.stop().await;
}
