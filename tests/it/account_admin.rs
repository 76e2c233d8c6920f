//! The admin API over accounts and invites, identity resolution, and the completeness of
//! the `com.atproto.*` methods, against a whole PDS and the real PLC directory.

use crate::account_mail::{ADMIN_PASSWORD, Auth, assert_error, email_of, get, post};
use crate::support;

use reqwest::StatusCode;
use rookery::config::Secret;
use rookery::crypto::{Algorithm, Keypair};
use serde_json::{Value, json};
use support::pds::TestPds;

const ADMIN: Auth<'static> = Auth::Admin(ADMIN_PASSWORD);

async fn admin_pds() -> TestPds {
    TestPds::start_with(|config| {
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    })
    .await
}

async fn login(pds: &TestPds, identifier: &str, password: &str) -> StatusCode {
    post(
        pds,
        "com.atproto.server.createSession",
        json!({ "identifier": identifier, "password": password }),
        Auth::None,
    )
    .await
    .0
}

/// An admin method, its JSON body (procedures) or its query (queries).
type AdminCall = (&'static str, Option<Value>, Vec<(&'static str, String)>);

/// Every admin method this PR adds, with a well-formed input.
fn admin_calls(did: &str) -> Vec<AdminCall> {
    vec![
        ("getAccountInfos", None, vec![("dids", did.to_owned())]),
        ("searchAccounts", None, vec![]),
        ("getInviteCodes", None, vec![]),
        (
            "updateAccountEmail",
            Some(json!({ "account": did, "email": "x@example.com" })),
            vec![],
        ),
        (
            "updateAccountHandle",
            Some(json!({ "did": did, "handle": "xyz.test" })),
            vec![],
        ),
        (
            "updateAccountPassword",
            Some(json!({ "did": did, "password": "password999" })),
            vec![],
        ),
        (
            "updateAccountSigningKey",
            Some(
                json!({ "did": did, "signingKey": Keypair::generate(Algorithm::K256).public_key().to_did_key() }),
            ),
            vec![],
        ),
        ("deleteAccount", Some(json!({ "did": did })), vec![]),
        (
            "disableInviteCodes",
            Some(json!({ "codes": ["x"] })),
            vec![],
        ),
        (
            "disableAccountInvites",
            Some(json!({ "account": did })),
            vec![],
        ),
        (
            "enableAccountInvites",
            Some(json!({ "account": did })),
            vec![],
        ),
        (
            "sendEmail",
            Some(json!({ "recipientDid": did, "senderDid": did, "content": "hi" })),
            vec![],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_methods_refuse_everyone_but_the_admin() {
    let pds = admin_pds().await;
    let (did, access) = pds.seed_account("aauth.test", "password123").await;
    // A token signed with another key, claiming this account.
    let forged = rookery::auth::SessionSigner::new([1; 32], pds.state.config().service_did.clone())
        .create_access(
            did.as_str(),
            rookery::auth::AccessScope::Access,
            chrono::Utc::now().timestamp(),
        );
    let wrong_basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "admin:wrong")
    );
    let forged_bearer = format!("Bearer {forged}");
    for (method, body, query) in admin_calls(did.as_str()) {
        let nsid = format!("com.atproto.admin.{method}");
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for auth in [
            Auth::None,
            Auth::Bearer(&access),
            Auth::Raw(&wrong_basic),
            Auth::Raw(&forged_bearer),
        ] {
            let got = match &body {
                Some(body) => post(&pds, &nsid, body.clone(), auth).await,
                None => get(&pds, &nsid, &query, auth).await,
            };
            assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{method}: {}", got.1);
        }
    }
    // Nothing changed.
    assert_eq!(
        login(&pds, "aauth.test", "password123").await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_accounts() {
    let pds = admin_pds().await;
    let (alice, alice_access) = pds.seed_account("aalice.test", "password123").await;
    let (bob, _) = pds.seed_account("abob.test", "password123").await;

    // Views.
    let (status, out) = get(
        &pds,
        "com.atproto.admin.getAccountInfos",
        &[
            ("dids", alice.as_str()),
            ("dids", bob.as_str()),
            ("dids", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"),
        ],
        ADMIN,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let dids: Vec<&str> = out["infos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["did"].as_str().unwrap())
        .collect();
    assert_eq!(dids, [alice.as_str(), bob.as_str()]);
    assert_eq!(out["infos"][0]["email"], email_of("aalice.test"));
    assert_error(
        get(
            &pds,
            "com.atproto.admin.getAccountInfos",
            &[("dids", "not-a-did")],
            ADMIN,
        )
        .await,
        400,
        "InvalidRequest",
    );

    // Search by address prefix, paged (accounts created in the same second come in DID order).
    let (status, page) = get(
        &pds,
        "com.atproto.admin.searchAccounts",
        &[("email", "a"), ("limit", "1")],
        ADMIN,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let first = page["accounts"][0]["did"].as_str().unwrap().to_owned();
    let cursor = page["cursor"].as_str().unwrap().to_owned();
    let (_, page) = get(
        &pds,
        "com.atproto.admin.searchAccounts",
        &[("email", "a"), ("limit", "1"), ("cursor", &cursor)],
        ADMIN,
    )
    .await;
    let second = page["accounts"][0]["did"].as_str().unwrap().to_owned();
    let mut found = vec![first, second];
    found.sort();
    let mut expected = vec![alice.as_str().to_owned(), bob.as_str().to_owned()];
    expected.sort();
    assert_eq!(found, expected);
    let (_, page) = get(
        &pds,
        "com.atproto.admin.searchAccounts",
        &[("email", "abob")],
        ADMIN,
    )
    .await;
    assert_eq!(page["accounts"].as_array().unwrap().len(), 1);
    assert_error(
        get(
            &pds,
            "com.atproto.admin.searchAccounts",
            &[("cursor", "junk")],
            ADMIN,
        )
        .await,
        400,
        "InvalidRequest",
    );
    assert_error(
        get(
            &pds,
            "com.atproto.admin.searchAccounts",
            &[("limit", "0")],
            ADMIN,
        )
        .await,
        400,
        "InvalidRequest",
    );

    // Email: malformed and taken addresses refused; by handle or DID.
    let update_email = |account: &str, email: &str| json!({ "account": account, "email": email });
    assert_error(
        post(
            &pds,
            "com.atproto.admin.updateAccountEmail",
            update_email(alice.as_str(), "nope"),
            ADMIN,
        )
        .await,
        400,
        "InvalidRequest",
    );
    assert_error(
        post(
            &pds,
            "com.atproto.admin.updateAccountEmail",
            update_email(alice.as_str(), &email_of("abob.test")),
            ADMIN,
        )
        .await,
        400,
        "InvalidRequest",
    );
    assert_error(
        post(
            &pds,
            "com.atproto.admin.updateAccountEmail",
            update_email("nobody.test", "n@example.com"),
            ADMIN,
        )
        .await,
        400,
        "InvalidRequest",
    );
    let got = post(
        &pds,
        "com.atproto.admin.updateAccountEmail",
        update_email("aalice.test", "Alice.New@Example.com"),
        ADMIN,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    assert_eq!(
        login(&pds, "alice.new@example.com", "password123").await,
        StatusCode::OK
    );

    // Handle: taken, invalid and short handles refused; reserved names allowed to the admin.
    let update_handle = |did: &str, handle: &str| json!({ "did": did, "handle": handle });
    assert_error(
        post(
            &pds,
            "com.atproto.admin.updateAccountHandle",
            update_handle(alice.as_str(), "abob.test"),
            ADMIN,
        )
        .await,
        400,
        "HandleNotAvailable",
    );
    assert_error(
        post(
            &pds,
            "com.atproto.admin.updateAccountHandle",
            update_handle(alice.as_str(), "bad handle"),
            ADMIN,
        )
        .await,
        400,
        "InvalidHandle",
    );
    assert_error(
        post(
            &pds,
            "com.atproto.admin.updateAccountHandle",
            update_handle(alice.as_str(), "al.test"),
            ADMIN,
        )
        .await,
        400,
        "InvalidHandle",
    );
    assert_error(
        post(
            &pds,
            "com.atproto.identity.updateHandle",
            json!({ "handle": "admin.test" }),
            Auth::Bearer(&alice_access),
        )
        .await,
        400,
        "HandleNotAvailable",
    );
    let got = post(
        &pds,
        "com.atproto.admin.updateAccountHandle",
        update_handle(alice.as_str(), "admin.test"),
        ADMIN,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    let (_, resolved) = get(
        &pds,
        "com.atproto.identity.resolveHandle",
        &[("handle", "admin.test")],
        Auth::None,
    )
    .await;
    assert_eq!(resolved["did"], alice.as_str());
    let (_, doc) = get(
        &pds,
        "com.atproto.identity.resolveDid",
        &[("did", alice.as_str())],
        Auth::None,
    )
    .await;
    assert_eq!(doc["didDoc"]["alsoKnownAs"][0], "at://admin.test");

    // Password: the old one is refused, the new one works, sessions end.
    assert_error(
        post(
            &pds,
            "com.atproto.admin.updateAccountPassword",
            json!({ "did": alice.as_str(), "password": "x" }),
            ADMIN,
        )
        .await,
        400,
        "InvalidPassword",
    );
    let got = post(
        &pds,
        "com.atproto.admin.updateAccountPassword",
        json!({ "did": alice.as_str(), "password": "password456" }),
        ADMIN,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    assert_eq!(
        login(&pds, "admin.test", "password123").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&pds, "admin.test", "password456").await,
        StatusCode::OK
    );

    // Signing key: the PLC document names the new key.
    let key = Keypair::generate(Algorithm::K256).public_key().to_did_key();
    assert_error(
        post(
            &pds,
            "com.atproto.admin.updateAccountSigningKey",
            json!({ "did": alice.as_str(), "signingKey": "zQ3-not-a-key" }),
            ADMIN,
        )
        .await,
        400,
        "InvalidRequest",
    );
    let got = post(
        &pds,
        "com.atproto.admin.updateAccountSigningKey",
        json!({ "did": alice.as_str(), "signingKey": key }),
        ADMIN,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    let (_, doc) = get(
        &pds,
        "com.atproto.identity.resolveDid",
        &[("did", alice.as_str())],
        Auth::None,
    )
    .await;
    let method = &doc["didDoc"]["verificationMethod"][0]["publicKeyMultibase"];
    assert_eq!(Some(key.trim_start_matches("did:key:")), method.as_str());

    // Deletion: the account is gone, its session too, and #account (deleted) is on the firehose.
    let got = post(
        &pds,
        "com.atproto.admin.deleteAccount",
        json!({ "did": alice.as_str() }),
        ADMIN,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    let (status, _) = get(
        &pds,
        "com.atproto.admin.getAccountInfo",
        &[("did", alice.as_str())],
        ADMIN,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(
        &pds,
        "com.atproto.server.getSession",
        &[],
        Auth::Bearer(&alice_access),
    )
    .await;
    assert_ne!(status, StatusCode::OK);
    // The firehose keeps only the account's final #account event (status deleted).
    let events = pds
        .state
        .repo()
        .sequencer()
        .events_after(0, 1000)
        .await
        .unwrap();
    let alice_events: Vec<_> = events.iter().filter(|e| e.did == alice.as_str()).collect();
    assert_eq!(alice_events.len(), 1);
    assert_eq!(alice_events[0].event_type, "account");
    let event: Value = rookery::repo::cbor::decode_serde(&alice_events[0].event).unwrap();
    assert_eq!(
        (event["active"].as_bool(), event["status"].as_str()),
        (Some(false), Some("deleted")),
        "{event}"
    );
    let (_, repo_status) = get(
        &pds,
        "com.atproto.sync.getRepoStatus",
        &[("did", alice.as_str())],
        Auth::None,
    )
    .await;
    assert_eq!(repo_status["error"], "RepoNotFound", "{repo_status}");
    assert_error(
        post(
            &pds,
            "com.atproto.admin.deleteAccount",
            json!({ "did": alice.as_str() }),
            ADMIN,
        )
        .await,
        400,
        "AccountNotFound",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_invites() {
    let pds = admin_pds().await;
    let (alice, alice_access) = pds.seed_account("ainv.test", "password123").await;
    let (status, made) = post(
        &pds,
        "com.atproto.server.createInviteCodes",
        json!({ "codeCount": 3, "useCount": 2, "forAccounts": [alice.as_str()] }),
        ADMIN,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let codes: Vec<String> = made["codes"][0]["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let mut query = vec![("limit", "2".to_owned()), ("sort", "usage".to_owned())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, page) = get(&pds, "com.atproto.admin.getInviteCodes", &query, ADMIN).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["codes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["code"].as_str().unwrap().to_owned()),
        );
        cursor = page["cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    seen.sort();
    let mut expected = codes.clone();
    expected.sort();
    assert_eq!(seen, expected);
    assert_error(
        get(
            &pds,
            "com.atproto.admin.getInviteCodes",
            &[("sort", "oldest")],
            ADMIN,
        )
        .await,
        400,
        "InvalidRequest",
    );
    assert_error(
        get(
            &pds,
            "com.atproto.admin.getInviteCodes",
            &[("cursor", "x::y")],
            ADMIN,
        )
        .await,
        400,
        "InvalidRequest",
    );

    assert_error(
        post(
            &pds,
            "com.atproto.admin.disableInviteCodes",
            json!({ "accounts": ["admin"] }),
            ADMIN,
        )
        .await,
        400,
        "InvalidRequest",
    );
    let got = post(
        &pds,
        "com.atproto.admin.disableInviteCodes",
        json!({ "codes": [codes[0]] }),
        ADMIN,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    let (_, info) = get(
        &pds,
        "com.atproto.admin.getAccountInfo",
        &[("did", alice.as_str())],
        ADMIN,
    )
    .await;
    let disabled: Vec<bool> = info["invites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["disabled"].as_bool().unwrap())
        .collect();
    assert_eq!(disabled.iter().filter(|d| **d).count(), 1, "{info}");

    // Account invites off: the account may not create codes; on again: it may.
    let got = post(
        &pds,
        "com.atproto.admin.disableAccountInvites",
        json!({ "account": alice.as_str(), "note": "spam" }),
        ADMIN,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    let (_, info) = get(
        &pds,
        "com.atproto.admin.getAccountInfo",
        &[("did", alice.as_str())],
        ADMIN,
    )
    .await;
    assert_eq!(info["invitesDisabled"], true);
    let (status, _) = get(
        &pds,
        "com.atproto.server.getAccountInviteCodes",
        &[],
        Auth::Bearer(&alice_access),
    )
    .await;
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let got = post(
        &pds,
        "com.atproto.admin.enableAccountInvites",
        json!({ "account": alice.as_str() }),
        ADMIN,
    )
    .await;
    assert_eq!(got, (StatusCode::OK, json!({})));
    let (_, info) = get(
        &pds,
        "com.atproto.admin.getAccountInfo",
        &[("did", alice.as_str())],
        ADMIN,
    )
    .await;
    assert_eq!(info["invitesDisabled"], false);
    assert_error(
        post(
            &pds,
            "com.atproto.admin.enableAccountInvites",
            json!({ "account": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa" }),
            ADMIN,
        )
        .await,
        400,
        "AccountNotFound",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_resolution_with_lexicon_errors() {
    let pds = admin_pds().await;
    let (did, access) = pds.seed_account("ident.test", "password123").await;

    let (status, out) = get(
        &pds,
        "com.atproto.identity.resolveDid",
        &[("did", did.as_str())],
        Auth::None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["didDoc"]["id"], did.as_str());
    assert_error(
        get(
            &pds,
            "com.atproto.identity.resolveDid",
            &[("did", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")],
            Auth::None,
        )
        .await,
        400,
        "DidNotFound",
    );
    assert_error(
        get(
            &pds,
            "com.atproto.identity.resolveDid",
            &[("did", "nope")],
            Auth::None,
        )
        .await,
        400,
        "InvalidRequest",
    );

    for identifier in ["ident.test", "IDENT.test", did.as_str()] {
        let (status, out) = get(
            &pds,
            "com.atproto.identity.resolveIdentity",
            &[("identifier", identifier)],
            Auth::None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{identifier}: {out}");
        assert_eq!(
            (out["did"].as_str(), out["handle"].as_str()),
            (Some(did.as_str()), Some("ident.test"))
        );
        assert_eq!(out["didDoc"]["id"], did.as_str());
    }
    assert_error(
        get(
            &pds,
            "com.atproto.identity.resolveIdentity",
            &[("identifier", "nobody.test")],
            Auth::None,
        )
        .await,
        400,
        "HandleNotFound",
    );
    assert_error(
        get(
            &pds,
            "com.atproto.identity.resolveHandle",
            &[("handle", "nobody.test")],
            Auth::None,
        )
        .await,
        400,
        "HandleNotFound",
    );
    assert_error(
        get(
            &pds,
            "com.atproto.identity.resolveIdentity",
            &[("identifier", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")],
            Auth::None,
        )
        .await,
        400,
        "DidNotFound",
    );
    // After a handle change the refreshed identity shows the new handle.
    let (status, _) = post(
        &pds,
        "com.atproto.identity.updateHandle",
        json!({ "handle": "ident2.test" }),
        Auth::Bearer(&access),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, out) = post(
        &pds,
        "com.atproto.identity.refreshIdentity",
        json!({ "identifier": did.as_str() }),
        Auth::None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["handle"], "ident2.test");
    assert_error(
        post(
            &pds,
            "com.atproto.identity.refreshIdentity",
            json!({ "identifier": "ident.test" }),
            Auth::None,
        )
        .await,
        400,
        "HandleNotFound",
    );

    // The small methods.
    let (status, out) = get(
        &pds,
        "com.atproto.temp.checkSignupQueue",
        &[],
        Auth::Bearer(&access),
    )
    .await;
    assert_eq!(
        (status, out),
        (StatusCode::OK, json!({ "activated": true }))
    );
    let (status, out) = post(
        &pds,
        "com.atproto.server.reserveSigningKey",
        json!({ "did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa" }),
        Auth::None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let key = out["signingKey"].as_str().unwrap();
    assert!(
        rookery::crypto::PublicKey::from_did_key(key).is_ok(),
        "{key}"
    );
    assert_eq!(
        pds.state
            .accounts()
            .take_reserved_signing_key("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
            .await
            .unwrap()
            .map(|k| k.len()),
        Some(32)
    );
}

/// Every `com.atproto.*` method the reference PDS serves itself (except the account-migration
/// ones, served elsewhere) answers here: none is `501 MethodNotImplemented`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reference_method_is_served() {
    let pds = admin_pds().await;
    let methods = [
        "admin.updateSubjectStatus",
        "admin.getSubjectStatus",
        "admin.getAccountInfo",
        "admin.getAccountInfos",
        "admin.enableAccountInvites",
        "admin.disableAccountInvites",
        "admin.disableInviteCodes",
        "admin.getInviteCodes",
        "admin.updateAccountHandle",
        "admin.updateAccountEmail",
        "admin.updateAccountPassword",
        "admin.sendEmail",
        "admin.deleteAccount",
        "identity.resolveHandle",
        "identity.updateHandle",
        "identity.getRecommendedDidCredentials",
        "identity.requestPlcOperationSignature",
        "identity.signPlcOperation",
        "identity.submitPlcOperation",
        "repo.applyWrites",
        "repo.createRecord",
        "repo.deleteRecord",
        "repo.describeRepo",
        "repo.getRecord",
        "repo.importRepo",
        "repo.listMissingBlobs",
        "repo.listRecords",
        "repo.putRecord",
        "repo.uploadBlob",
        "server.activateAccount",
        "server.checkAccountStatus",
        "server.confirmEmail",
        "server.createAccount",
        "server.createAppPassword",
        "server.createInviteCode",
        "server.createInviteCodes",
        "server.createSession",
        "server.deactivateAccount",
        "server.deleteAccount",
        "server.deleteSession",
        "server.describeServer",
        "server.getAccountInviteCodes",
        "server.getServiceAuth",
        "server.getSession",
        "server.listAppPasswords",
        "server.refreshSession",
        "server.requestAccountDelete",
        "server.requestEmailConfirmation",
        "server.requestEmailUpdate",
        "server.requestPasswordReset",
        "server.reserveSigningKey",
        "server.resetPassword",
        "server.revokeAppPassword",
        "server.updateEmail",
        "sync.getBlob",
        "sync.getBlocks",
        "sync.getLatestCommit",
        "sync.getRecord",
        "sync.getRepo",
        "sync.getRepoStatus",
        "sync.listBlobs",
        "sync.listRepos",
        "sync.getHead",
        "sync.getCheckout",
        "temp.checkSignupQueue",
        "identity.resolveDid",
        "identity.resolveIdentity",
        "identity.refreshIdentity",
        "admin.searchAccounts",
        "admin.updateAccountSigningKey",
    ];
    for method in methods {
        let nsid = format!("com.atproto.{method}");
        let (get_status, _) = get(&pds, &nsid, &[], Auth::None).await;
        let (post_status, _) = post(&pds, &nsid, json!({}), Auth::None).await;
        for status in [get_status, post_status] {
            assert_ne!(status, StatusCode::NOT_IMPLEMENTED, "{nsid}");
            assert!(status.as_u16() < 500, "{nsid}: {status}");
        }
    }
}
