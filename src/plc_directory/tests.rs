use super::store::ExportFrom;
use super::validate::{MAX_OP_BYTES, RECOVERY_WINDOW_MS, parse_incoming};
use super::*;
use crate::crypto::{Algorithm, Keypair};
use crate::identity::plc::{PlcChanges, UnsignedOp, create_genesis, tombstone_op, update_op};

const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 60 * 60 * 1000;

struct Keys {
    recovery: Keypair,
    rotation: Keypair,
    signing: Keypair,
}

fn keys() -> Keys {
    Keys {
        recovery: Keypair::generate(Algorithm::P256),
        rotation: Keypair::generate(Algorithm::K256),
        signing: Keypair::generate(Algorithm::K256),
    }
}

fn genesis(k: &Keys) -> (String, SignedOp) {
    let (did, op) = create_genesis(
        &k.signing.public_key().to_did_key(),
        vec![
            k.recovery.public_key().to_did_key(),
            k.rotation.public_key().to_did_key(),
        ],
        &"alice.test".parse().unwrap(),
        "https://pds.example.com",
        &k.rotation,
    )
    .unwrap();
    (did.to_string(), op)
}

fn handle_change(prev: &SignedOp, handle: &str, signer: &Keypair) -> SignedOp {
    let changes = PlcChanges {
        handle: Some(handle.parse().unwrap()),
        ..PlcChanges::default()
    };
    update_op(prev, &changes, signer).unwrap()
}

async fn directory() -> (tempfile::TempDir, Directory) {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::open_in(dir.path()).await.unwrap();
    (dir, directory)
}

fn message(result: Result<(), Error>) -> String {
    match result {
        Err(Error::Invalid(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn genesis_chain_and_tombstone() {
    let (_dir, directory) = directory().await;
    let k = keys();
    let (did, g) = genesis(&k);

    // A genesis posted under another DID does not hash to it.
    let other = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    let m = message(directory.submit_op(other, g.clone(), T0).await);
    assert_eq!(
        m,
        format!("Hash of genesis operation does not match DID identifier: {did}")
    );
    assert!(matches!(
        directory.data(other).await,
        Err(Error::NotRegistered(d)) if d == other
    ));

    directory.submit_op(&did, g.clone(), T0).await.unwrap();
    // The same genesis again: its prev is null, so it is out of order.
    assert_eq!(
        message(directory.submit_op(&did, g.clone(), T0 + 1).await),
        "Operations not correctly ordered"
    );

    let u1 = handle_change(&g, "bob.test", &k.rotation);
    directory.submit_op(&did, u1.clone(), T0 + 2).await.unwrap();
    let data = directory.data(&did).await.unwrap();
    assert_eq!(data["alsoKnownAs"], json!(["at://bob.test"]));
    assert_eq!(
        directory.log(&did).await.unwrap(),
        vec![g.clone(), u1.clone()]
    );
    assert_eq!(directory.last_op(&did).await.unwrap(), u1);

    // Signed by a key that is not a rotation key.
    let stranger = Keypair::generate(Algorithm::K256);
    let forged = UnsignedOp::Plc(PlcOp {
        prev: Some(u1.cid().unwrap().to_string()),
        ..u1.op.normalize().unwrap()
    })
    .sign(&stranger)
    .unwrap();
    let m = message(directory.submit_op(&did, forged, T0 + 3).await);
    assert!(m.starts_with("Invalid signature on op: {"), "{m}");

    // A prev that is not in the log.
    let dangling = handle_change(
        &handle_change(&u1, "x.test", &k.rotation),
        "y.test",
        &k.rotation,
    );
    assert_eq!(
        message(directory.submit_op(&did, dangling, T0 + 4).await),
        "Operations not correctly ordered"
    );

    let tomb = tombstone_op(&u1, &k.rotation).unwrap();
    directory
        .submit_op(&did, tomb.clone(), T0 + 5)
        .await
        .unwrap();
    assert!(matches!(
        directory.data(&did).await,
        Err(Error::NotAvailable(_))
    ));
    assert!(matches!(
        directory.document(&did).await,
        Err(Error::NotAvailable(_))
    ));
    assert_eq!(directory.last_op(&did).await.unwrap(), tomb);
    assert_eq!(directory.log(&did).await.unwrap().len(), 3);
    // Nothing follows a tombstone.
    let after = UnsignedOp::Tombstone(crate::identity::plc::TombstoneOp {
        prev: tomb.cid().unwrap().to_string(),
    })
    .sign(&k.rotation)
    .unwrap();
    assert_eq!(
        message(directory.submit_op(&did, after, T0 + 6).await),
        "Operations not correctly ordered"
    );
}

#[tokio::test]
async fn nullification_by_a_higher_key_within_72_hours() {
    let (_dir, directory) = directory().await;
    let k = keys();
    let (did, g) = genesis(&k);
    directory.submit_op(&did, g.clone(), T0).await.unwrap();
    let u1 = handle_change(&g, "mallory.test", &k.rotation);
    directory
        .submit_op(&did, u1.clone(), T0 + HOUR)
        .await
        .unwrap();

    // The key that signed u1 cannot fork it away; neither can it fork after the window.
    let same_key = handle_change(&g, "other.test", &k.rotation);
    let m = message(directory.submit_op(&did, same_key, T0 + 2 * HOUR).await);
    assert!(m.starts_with("Invalid signature on op:"), "{m}");
    let recovery = handle_change(&g, "alice2.test", &k.recovery);
    let late = T0 + HOUR + RECOVERY_WINDOW_MS + 1;
    let m = message(directory.submit_op(&did, recovery.clone(), late).await);
    assert_eq!(
        m,
        format!(
            "Recovery operation occurred outside of the allowed 72 hr recovery window. Time lapsed: {}",
            RECOVERY_WINDOW_MS + 1
        )
    );

    // The recovery key, within the window: u1 is nullified.
    directory
        .submit_op(&did, recovery.clone(), T0 + HOUR + RECOVERY_WINDOW_MS)
        .await
        .unwrap();
    assert_eq!(
        directory.log(&did).await.unwrap(),
        vec![g.clone(), recovery.clone()]
    );
    let audit = directory.audit_log(&did).await.unwrap();
    let flags: Vec<(&str, bool)> = audit
        .iter()
        .map(|e| {
            (
                e["cid"].as_str().unwrap(),
                e["nullified"].as_bool().unwrap(),
            )
        })
        .collect();
    let cid = |op: &SignedOp| op.cid().unwrap().to_string();
    assert_eq!(
        flags,
        vec![
            (cid(&g).as_str(), false),
            (cid(&u1).as_str(), true),
            (cid(&recovery).as_str(), false)
        ]
    );
    assert_eq!(audit[0]["createdAt"], json!(format_time(T0)));
    let doc = directory.document(&did).await.unwrap();
    assert_eq!(doc["alsoKnownAs"], json!(["at://alice2.test"]));

    // Export: everything in order; by sequence number with `seq`.
    let all = directory
        .export(ExportFrom::CreatedAfter(None), 1000)
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[1]["nullified"], json!(true));
    let later = directory
        .export(ExportFrom::CreatedAfter(Some(T0)), 1000)
        .await
        .unwrap();
    assert_eq!(later.len(), 2);
    let seq = directory.export(ExportFrom::SeqAfter(1), 1).await.unwrap();
    assert_eq!(seq.len(), 1);
    assert_eq!(seq[0]["seq"], json!(2));
    assert_eq!(seq[0]["type"], json!("sequenced_op"));
}

#[tokio::test]
async fn rate_limit_per_did() {
    let (_dir, directory) = directory().await;
    let k = keys();
    let (did, mut last) = genesis(&k);
    directory.submit_op(&did, last.clone(), T0).await.unwrap();
    for i in 1..10 {
        last = handle_change(&last, &format!("h{i}.test"), &k.rotation);
        directory
            .submit_op(&did, last.clone(), T0 + i)
            .await
            .unwrap();
    }
    let next = handle_change(&last, "h10.test", &k.rotation);
    assert_eq!(
        message(directory.submit_op(&did, next.clone(), T0 + 10).await),
        "To many operations within last hour (max 10)"
    );
    directory
        .submit_op(&did, next, T0 + HOUR + 10)
        .await
        .unwrap();
}

#[test]
fn incoming_shapes_and_limits() {
    let k = keys();
    let (_, g) = genesis(&k);
    let body = serde_json::to_value(&g).unwrap();
    assert_eq!(parse_incoming(&body).unwrap(), g);

    let legacy = json!({
        "type": "create", "signingKey": "did:key:zQ3shP5TBe1sQfSttXty15FAEHV1DZgcxRZNxvEWnPfLFwLxJ",
        "recoveryKey": "did:key:zQ3shP5TBe1sQfSttXty15FAEHV1DZgcxRZNxvEWnPfLFwLxJ",
        "handle": "a.test", "service": "https://pds.example.com", "prev": null, "sig": "x"
    });
    let m = message(parse_incoming(&legacy).map(drop));
    assert!(
        m.starts_with("Not a valid operation: {\"type\":\"create\""),
        "{m}"
    );
    assert!(
        message(parse_incoming(&json!({"type": "plc_operation"})).map(drop))
            .starts_with("Not a valid operation")
    );

    let mut big = body.clone();
    big["alsoKnownAs"] = json!(["x".repeat(MAX_OP_BYTES)]);
    assert_eq!(
        message(parse_incoming(&big).map(drop)),
        format!("Operation too large ({MAX_OP_BYTES} bytes maximum in cbor encoding)")
    );
    let mut dup = body.clone();
    dup["alsoKnownAs"] = json!(["at://a.test", "at://a.test"]);
    assert_eq!(
        message(parse_incoming(&dup).map(drop)),
        "duplicate alsoKnownAs entry: at://a.test"
    );
    let mut bad_key = body;
    bad_key["rotationKeys"] = json!(["did:key:nope"]);
    assert_eq!(
        message(parse_incoming(&bad_key).map(drop)),
        "Invalid rotationKey: did:key:nope"
    );
}

#[test]
fn times() {
    assert_eq!(format_time(T0), "2023-11-14T22:13:20.000Z");
    assert_eq!(http::parse_time("2023-11-14T22:13:20.000Z"), Some(T0));
    assert_eq!(http::parse_time("2023-11-14"), Some(T0 - 80_000_000));
    assert_eq!(http::parse_time("yesterday"), None);
}

#[test]
fn did_document_form() {
    let k = keys();
    let (did, g) = genesis(&k);
    let doc = format_did_doc(&did, &g.op.normalize().unwrap());
    let multikey = k.signing.public_key().to_multikey();
    assert_eq!(
        doc,
        json!({
            "@context": [
                "https://www.w3.org/ns/did/v1",
                "https://w3id.org/security/multikey/v1",
                "https://w3id.org/security/suites/secp256k1-2019/v1"
            ],
            "id": did,
            "alsoKnownAs": ["at://alice.test"],
            "verificationMethod": [{
                "id": format!("{did}#atproto"),
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": multikey,
            }],
            "service": [{
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": "https://pds.example.com",
            }],
        })
    );
}
