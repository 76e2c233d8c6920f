//! Moving an account between two Rookery servers over HTTP, following the documented
//! migration steps (createAccount with a service token from the old host, importRepo, blobs,
//! preferences, the PLC operation signed by the old host and submitted by the new one,
//! activateAccount / deactivateAccount), against the real PLC directory and a real SMTP
//! server for the PLC token. And what each step refuses.

use crate::account_mail::{Auth, FROM, assert_error, email_of, get, post};
use crate::support;

use reqwest::StatusCode;
use rookery::config::Secret;
use serde_json::{Value, json};
use support::pds::TestPds;
use support::smtp::SmtpServer;

async fn pds() -> TestPds {
    let smtp = SmtpServer::shared();
    TestPds::start_with(|config| {
        config.email = Some(smtp.config(FROM));
        config.admin_password = Some(Secret::new("admin-pass-123"));
    })
    .await
}

async fn raw_post(pds: &TestPds, nsid: &str, body: Vec<u8>, token: &str) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/xrpc/{nsid}", pds.url()))
        .bearer_auth(token)
        .header("content-type", "application/vnd.ipld.car")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get_bytes(url: String) -> Vec<u8> {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.bytes().await.unwrap().to_vec()
}

/// A service token of `token`'s account on `pds` for `lxm`.
async fn service_token(pds: &TestPds, token: &str, lxm: &str) -> String {
    let aud = pds.state.config().service_did.clone();
    let (status, out) = get(
        pds,
        "com.atproto.server.getServiceAuth",
        &[("aud", aud.as_str()), ("lxm", lxm)],
        Auth::Bearer(token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    out["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_moves_between_two_servers() {
    let smtp = SmtpServer::shared();
    let old = pds().await;
    let new = pds().await;
    let (did, old_access) = old.seed_account("mover.test", "password123").await;
    let old_auth = Auth::Bearer(&old_access);

    // Content on the old host: records, a blob referenced by a record, preferences.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR migration test blob".to_vec();
    let res = reqwest::Client::new()
        .post(format!("{}/xrpc/com.atproto.repo.uploadBlob", old.url()))
        .bearer_auth(&old_access)
        .header("content-type", "image/png")
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let blob: Value = res.json().await.unwrap();
    let blob = blob["blob"].clone();
    let mut writes = vec![json!({
        "$type": "com.atproto.repo.applyWrites#create",
        "collection": "app.bsky.feed.post",
        "value": {
            "$type": "app.bsky.feed.post",
            "text": "with an image",
            "createdAt": "2024-01-01T00:00:00.000Z",
            "embed": { "$type": "app.bsky.embed.images", "images": [{ "alt": "", "image": blob }] },
        },
    })];
    for i in 0..120 {
        writes.push(json!({
            "$type": "com.atproto.repo.applyWrites#create",
            "collection": "app.bsky.feed.post",
            "value": { "$type": "app.bsky.feed.post", "text": format!("post {i}"), "createdAt": "2024-01-01T00:00:00.000Z" },
        }));
    }
    for chunk in writes.chunks(50) {
        let (status, out) = post(
            &old,
            "com.atproto.repo.applyWrites",
            json!({ "repo": did.as_str(), "writes": chunk }),
            old_auth,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{out}");
    }
    let prefs = json!({ "preferences": [{ "$type": "app.bsky.actor.defs#adultContentPref", "enabled": true }] });
    let (status, out) = post(
        &old,
        "app.bsky.actor.putPreferences",
        prefs.clone(),
        old_auth,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");

    // 1. The account on the new host, authorised by the old host's service token.
    let body = json!({
        "did": did.as_str(),
        "handle": "mover2.test",
        "email": "mover-new@example.com",
        "password": "password456",
    });
    // No token, or one bound to another method: refused.
    assert_error(
        post(
            &new,
            "com.atproto.server.createAccount",
            body.clone(),
            Auth::None,
        )
        .await,
        401,
        "AuthenticationRequired",
    );
    let wrong_lxm = service_token(&old, &old_access, "com.atproto.repo.createRecord").await;
    assert_error(
        post(
            &new,
            "com.atproto.server.createAccount",
            body.clone(),
            Auth::Bearer(&wrong_lxm),
        )
        .await,
        401,
        "AuthenticationRequired",
    );
    let token = service_token(&old, &old_access, "com.atproto.server.createAccount").await;
    let (status, created) = post(
        &new,
        "com.atproto.server.createAccount",
        body.clone(),
        Auth::Bearer(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["did"], did.as_str());
    let new_access = created["accessJwt"].as_str().unwrap().to_owned();
    let new_auth = Auth::Bearer(&new_access);
    let (_, status_out) = get(&new, "com.atproto.server.checkAccountStatus", &[], new_auth).await;
    assert_eq!(status_out["activated"], false, "{status_out}");
    assert_eq!(status_out["validDid"], false, "{status_out}");

    // 2. The repository.
    let car = get_bytes(format!(
        "{}/xrpc/com.atproto.sync.getRepo?did={}",
        old.url(),
        did
    ))
    .await;
    let (_, old_head) = get(
        &old,
        "com.atproto.sync.getLatestCommit",
        &[("did", did.as_str())],
        Auth::None,
    )
    .await;
    // A truncated CAR is refused and changes nothing.
    let (status, out) = raw_post(
        &new,
        "com.atproto.repo.importRepo",
        car[..car.len() - 10].to_vec(),
        &new_access,
    )
    .await;
    assert_eq!(
        (status, out["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidRequest")),
        "{out}"
    );
    let (status, out) = raw_post(
        &new,
        "com.atproto.repo.importRepo",
        car.clone(),
        &new_access,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (_, status_out) = get(&new, "com.atproto.server.checkAccountStatus", &[], new_auth).await;
    assert_eq!(status_out["repoCommit"], old_head["cid"], "{status_out}");
    assert_eq!(status_out["repoRev"], old_head["rev"], "{status_out}");
    assert_eq!(status_out["indexedRecords"], 121, "{status_out}");
    assert_eq!(status_out["expectedBlobs"], 1, "{status_out}");
    assert_eq!(status_out["importedBlobs"], 0, "{status_out}");

    // 3. Blobs: listMissingBlobs, then upload.
    let (_, missing) = get(&new, "com.atproto.repo.listMissingBlobs", &[], new_auth).await;
    let missing = missing["blobs"].as_array().unwrap().clone();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["cid"], blob["ref"]["$link"]);
    let bytes = get_bytes(format!(
        "{}/xrpc/com.atproto.sync.getBlob?did={}&cid={}",
        old.url(),
        did,
        missing[0]["cid"].as_str().unwrap()
    ))
    .await;
    assert_eq!(bytes, png);
    let res = reqwest::Client::new()
        .post(format!("{}/xrpc/com.atproto.repo.uploadBlob", new.url()))
        .bearer_auth(&new_access)
        .header("content-type", "image/png")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let (_, status_out) = get(&new, "com.atproto.server.checkAccountStatus", &[], new_auth).await;
    assert_eq!(status_out["importedBlobs"], 1, "{status_out}");
    let (_, missing) = get(&new, "com.atproto.repo.listMissingBlobs", &[], new_auth).await;
    assert_eq!(missing["blobs"], json!([]));

    // 4. Preferences.
    let (_, old_prefs) = get(&old, "app.bsky.actor.getPreferences", &[], old_auth).await;
    let (status, out) = post(
        &new,
        "app.bsky.actor.putPreferences",
        old_prefs.clone(),
        new_auth,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (_, new_prefs) = get(&new, "app.bsky.actor.getPreferences", &[], new_auth).await;
    assert_eq!(new_prefs, old_prefs);

    // 5. The identity: credentials from the new host, signed by the old, submitted by the new.
    let (status, creds) = get(
        &new,
        "com.atproto.identity.getRecommendedDidCredentials",
        &[],
        new_auth,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{creds}");
    let (status, out) = post(
        &old,
        "com.atproto.identity.requestPlcOperationSignature",
        json!({}),
        old_auth,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let plc_token = smtp.wait_for(&email_of("mover.test"), 1).await.token();
    // Without the token, or with a wrong one: refused.
    assert_error(
        post(
            &old,
            "com.atproto.identity.signPlcOperation",
            json!({}),
            old_auth,
        )
        .await,
        400,
        "InvalidRequest",
    );
    assert_error(
        post(
            &old,
            "com.atproto.identity.signPlcOperation",
            json!({ "token": "AAAAA-BBBBB" }),
            old_auth,
        )
        .await,
        400,
        "InvalidToken",
    );
    // An operation that keeps the DID on the old host: the new host refuses to send it.
    let mut sign = creds.clone();
    sign["token"] = json!(plc_token);
    let stay = json!({ "token": plc_token });
    let (status, staying) = post(
        &old,
        "com.atproto.identity.signPlcOperation",
        stay,
        old_auth,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{staying}");
    let before = new.state.resolver().resolve_did_fresh(&did).await.unwrap();
    assert_error(
        post(
            &new,
            "com.atproto.identity.submitPlcOperation",
            json!({ "operation": staying["operation"] }),
            new_auth,
        )
        .await,
        400,
        "InvalidRequest",
    );
    assert_eq!(
        new.state.resolver().resolve_did_fresh(&did).await.unwrap(),
        before
    );
    // The token was spent: a second one.
    post(
        &old,
        "com.atproto.identity.requestPlcOperationSignature",
        json!({}),
        old_auth,
    )
    .await;
    let plc_token = smtp.wait_for(&email_of("mover.test"), 2).await.token();
    sign["token"] = json!(plc_token);
    let (status, signed) = post(
        &old,
        "com.atproto.identity.signPlcOperation",
        sign,
        old_auth,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    let op = &signed["operation"];
    // The rotation keys are the new host's recommendation, as requested.
    assert_eq!(op["rotationKeys"], creds["rotationKeys"]);
    let (status, out) = post(
        &new,
        "com.atproto.identity.submitPlcOperation",
        json!({ "operation": op }),
        new_auth,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let doc = new.state.resolver().resolve_did_fresh(&did).await.unwrap();
    assert_eq!(doc.pds_endpoint(), Some(new.url().as_str()));
    assert_eq!(doc.signing_key().unwrap(), new.signing_key(&did).await);
    // A retried import after the PLC update: the document now names the new host's key, but
    // the old host's commit still imports, its key being in the DID's operation log.
    let (status, out) = raw_post(
        &new,
        "com.atproto.repo.importRepo",
        car.clone(),
        &new_access,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");

    // 6. Switch over.
    let (status, out) = post(
        &new,
        "com.atproto.server.activateAccount",
        json!({}),
        new_auth,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (status, out) = post(
        &old,
        "com.atproto.server.deactivateAccount",
        json!({}),
        old_auth,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (_, status_out) = get(&new, "com.atproto.server.checkAccountStatus", &[], new_auth).await;
    assert_eq!(
        (
            status_out["activated"].clone(),
            status_out["validDid"].clone()
        ),
        (json!(true), json!(true)),
        "{status_out}"
    );
    let (_, old_status) = get(&old, "com.atproto.server.checkAccountStatus", &[], old_auth).await;
    assert_eq!(old_status["activated"], false, "{old_status}");

    // The new host writes on top of the imported repository, and serves it all.
    let (status, out) = post(
        &new,
        "com.atproto.repo.createRecord",
        json!({ "repo": did.as_str(), "collection": "app.bsky.feed.post", "record": { "$type": "app.bsky.feed.post", "text": "moved", "createdAt": "2024-01-02T00:00:00.000Z" } }),
        new_auth,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let car = get_bytes(format!(
        "{}/xrpc/com.atproto.sync.getRepo?did={}",
        new.url(),
        did
    ))
    .await;
    let key = new.signing_key(&did).await;
    let (verified, _) = rookery::repo::verify::verify_car(
        &car[..],
        Default::default(),
        Some(did.as_str()),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(verified.records.len(), 122);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_repo_body_limit_and_auth() {
    let pds = TestPds::start_with(|config| config.import_repo_limit = 1000).await;
    let (_, access) = pds.seed_account("limited.test", "password123").await;
    let (status, out) = raw_post(
        &pds,
        "com.atproto.repo.importRepo",
        vec![0u8; 5000],
        &access,
    )
    .await;
    assert_eq!(
        (status.as_u16(), out["error"].as_str()),
        (413, Some("PayloadTooLarge")),
        "{out}"
    );
    let (status, _) = raw_post(
        &pds,
        "com.atproto.repo.importRepo",
        vec![0u8; 10],
        "not-a-token",
    )
    .await;
    assert!(
        status.is_client_error() && status != StatusCode::PAYLOAD_TOO_LARGE,
        "{status}"
    );
}

/// A did:web account moves in: its owner serves the DID document (here on loopback), signs
/// the service token and the repository with the key in it, imports, then points the document
/// at this server with the key it recommends; activation checks the document, and the export
/// verifies with the official `verifyRepoCar` against the document's new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_did_web_account_moves_in() {
    use std::sync::{Arc, Mutex};

    use rookery::crypto::{Algorithm, Keypair};
    use rookery::repo::blockstore::MemoryBlockStore;
    use rookery::repo::cbor::Ipld;
    use rookery::repo::repository::{Repo, Write};

    // The owner's document, served at /.well-known/did.json.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let did = format!("did:web:localhost%3A{port}");
    let served = Arc::new(Mutex::new(Value::Null));
    let app = {
        let served = served.clone();
        axum::Router::new().route(
            "/.well-known/did.json",
            axum::routing::get(move || {
                let doc = served.lock().unwrap().clone();
                async move { axum::Json(doc) }
            }),
        )
    };
    tokio::spawn(axum::serve(listener, app).into_future());
    let document = |key: &str, handle: &str, pds: &str| {
        json!({
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1",
                         "https://w3id.org/security/suites/secp256k1-2019/v1"],
            "id": did,
            "alsoKnownAs": [format!("at://{handle}")],
            "verificationMethod": [{
                "id": format!("{did}#atproto"),
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": key.strip_prefix("did:key:").unwrap(),
            }],
            "service": [{
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": pds,
            }],
        })
    };
    let own_key = Keypair::generate(Algorithm::K256);
    *served.lock().unwrap() = document(
        &own_key.public_key().to_did_key(),
        "webby.test",
        "http://localhost:1",
    );

    let new = pds().await;
    let aud = new.state.config().service_did.clone();
    let now = chrono::Utc::now().timestamp();
    let token = rookery::auth::service::create_service_jwt(
        &own_key,
        rookery::auth::service::ServiceJwtParams {
            iss: did.clone(),
            aud,
            lxm: Some("com.atproto.server.createAccount".into()),
            iat: now,
            exp: now + 60,
        },
    );
    // A handle outside this server's domains must already resolve to the DID.
    let (status, refused) = post(
        &new,
        "com.atproto.server.createAccount",
        json!({"handle": "webby.invalid", "did": did, "password": "web-pass-123",
               "email": email_of("webby.test")}),
        Auth::Bearer(&token),
    )
    .await;
    assert_error((status, refused), 400, "InvalidHandle");
    let (status, created) = post(
        &new,
        "com.atproto.server.createAccount",
        json!({"handle": "webby.test", "did": did, "password": "web-pass-123",
               "email": email_of("webby.test")}),
        Auth::Bearer(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let access = created["accessJwt"].as_str().unwrap().to_owned();
    let auth = Auth::Bearer(&access);
    // The document still names another host: no didDoc in the session.
    assert!(created.get("didDoc").is_none(), "{created}");

    // The repository as the owner's old host would export it, signed with the owner's key.
    let writes: Vec<Write> = (0..50)
        .map(|i| Write::Create {
            collection: "app.bsky.feed.post".parse().unwrap(),
            rkey: format!("3kweb{i:08}").parse().unwrap(),
            record: Ipld::Map(
                [
                    (
                        "$type".to_owned(),
                        Ipld::String("app.bsky.feed.post".into()),
                    ),
                    ("text".to_owned(), Ipld::String(format!("web post {i}"))),
                    (
                        "createdAt".to_owned(),
                        Ipld::String("2026-12-03T00:00:00.000Z".into()),
                    ),
                ]
                .into_iter()
                .collect(),
            ),
        })
        .collect();
    let prepared = Repo::format_init(
        MemoryBlockStore::new(),
        &did,
        &own_key,
        "3kwebimport22".to_owned(),
        &writes,
    )
    .await
    .unwrap();
    let mut car = Vec::new();
    {
        let mut writer = rookery::repo::car::CarWriter::new(&mut car, prepared.data.cid);
        for (cid, bytes) in &prepared.data.new_blocks {
            writer.write_block(cid, bytes).await.unwrap();
        }
        writer.finish().await.unwrap();
    }
    let (status, out) = raw_post(&new, "com.atproto.repo.importRepo", car, &access).await;
    assert_eq!(status, StatusCode::OK, "{out}");

    // Activation is refused while the document names another host.
    let (status, out) = post(&new, "com.atproto.server.activateAccount", json!({}), auth).await;
    assert_ne!(status, StatusCode::OK, "{out}");

    // The owner points the document here, with the key this server recommends.
    let (_, recommended) = get(
        &new,
        "com.atproto.identity.getRecommendedDidCredentials",
        &[],
        auth,
    )
    .await;
    let new_key = recommended["verificationMethods"]["atproto"]
        .as_str()
        .unwrap()
        .to_owned();
    let endpoint = recommended["services"]["atproto_pds"]["endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(endpoint, new.url());
    *served.lock().unwrap() = document(&new_key, "webby.test", &endpoint);
    let (status, out) = post(&new, "com.atproto.server.activateAccount", json!({}), auth).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (_, account) = get(&new, "com.atproto.server.checkAccountStatus", &[], auth).await;
    assert_eq!(account["activated"], true, "{account}");
    assert_eq!(account["validDid"], true, "{account}");
    assert_eq!(account["indexedRecords"], 50, "{account}");

    // The export verifies against the document's key, with every record.
    // `%3A` is part of the DID: escaped in the query string.
    let car = get_bytes(format!(
        "{}/xrpc/com.atproto.sync.getRepo?did={}",
        new.url(),
        did.replace('%', "%25")
    ))
    .await;
    let official = support::verify_repo_car(&car, &did, &new_key);
    assert_eq!(official["records"].as_u64(), Some(50), "{official}");
    new.stop().await;
}
