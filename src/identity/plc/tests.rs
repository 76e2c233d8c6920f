//! Known answers computed with the reference implementation (`@did-plc/lib` 0.0.4 with
//! `@atproto/crypto`, both RFC 6979 deterministic like ours): same keys, same inputs, so the
//! same signatures, CIDs and DIDs, byte for byte.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::*;
use crate::crypto::{Algorithm, Keypair};
use crate::syntax::Handle;

const ROT_K256_HEX: &str = "9085d2bef69286a6cbb51623c8fa258629945cd55ca705cc4e66700396894e0c";
const SIGN_K256_HEX: &str = "f0f4df55a2b3ff13051ea814a8f24ad00f2e469af73c363ac7e9fb999a9072ed";
const ROT_P256_HEX: &str = "6b0b91287ae3348f8c2f2552d766f30e3604867e34adc37ccbb74a8e6b893e02";
const ROT_K256: &str = "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme";
const SIGN_K256: &str = "did:key:zQ3shtxV1FrJfhqE1dvxYRcCknWNjHc3c5X1y3ZSoPDi2aur2";
const ROT_P256: &str = "did:key:zDnaeTVRbsJvXzujNP9oDyd7XcMW429hMyB8XLLBE2kyyyWbD";

const GENESIS_DID: &str = "did:plc:hezjmhcxiopucpa4ixrqyhe3";
const GENESIS_CID: &str = "bafyreibzgklbyv2dt5atyhcf4mgbzg6qvqgwul7kngztpipcx4sl6uxi7u";
const GENESIS_SIG: &str =
    "Utp11qs0uKom10s7uQgI8-wQDWIRZkLSM_SY6XALfFEuHbMw-mHpc2NuOtgU5HpC219MmEEpaGKtN-yyaamn6g";
const UPDATE_CID: &str = "bafyreidssyeg2n7qybq5brygopedjfvrsvzcsqh7a7oyq3lvlroay4uwry";
const UPDATE_SIG: &str =
    "Zd_1T_livQn-HbW0SNFpBVvy9Fn5fiBlOedS5ShHPBRYnqC1HxLd7PTRUeAFYZTToOWhNFejVEmurVR4sUVzuw";
const TOMBSTONE_SIG: &str =
    "-zwGcMgCW_1bz_Q4Y_trrWJZXg2IIpwE2ykCML18PitePDkF7EdPw7NGff_i50Lo-OgV2XIW-cywkLmkQsw_ig";

fn key(alg: Algorithm, hex: &str) -> Keypair {
    Keypair::from_private_hex(alg, hex).unwrap()
}

fn rot() -> Keypair {
    key(Algorithm::K256, ROT_K256_HEX)
}

fn rot_p256() -> Keypair {
    key(Algorithm::P256, ROT_P256_HEX)
}

fn handle(s: &str) -> Handle {
    s.parse().unwrap()
}

fn genesis() -> (Did, SignedOp) {
    create_genesis(
        SIGN_K256,
        vec![ROT_K256.into(), ROT_P256.into()],
        &handle("alice.test"),
        "https://pds.example.com",
        &rot(),
    )
    .unwrap()
}

/// RFC 4648 base32, lowercase, no padding: written out here so the DID derivation is checked
/// against something other than the multibase crate it uses.
fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let (mut out, mut acc, mut bits) = (String::new(), 0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[test]
fn key_fixtures() {
    assert_eq!(rot().public_key().to_did_key(), ROT_K256);
    assert_eq!(rot_p256().public_key().to_did_key(), ROT_P256);
    assert_eq!(
        key(Algorithm::K256, SIGN_K256_HEX)
            .public_key()
            .to_did_key(),
        SIGN_K256
    );
}

#[test]
fn genesis_known_answer() {
    let (did, op) = genesis();
    assert_eq!(did.as_str(), GENESIS_DID);
    assert_eq!(op.sig, GENESIS_SIG);
    assert_eq!(op.cid().unwrap().to_string(), GENESIS_CID);
    assert_eq!(
        serde_json::to_value(&op).unwrap(),
        json!({
            "type": "plc_operation",
            "verificationMethods": {"atproto": SIGN_K256},
            "rotationKeys": [ROT_K256, ROT_P256],
            "alsoKnownAs": ["at://alice.test"],
            "services": {"atproto_pds": {"type": "AtprotoPersonalDataServer",
                                         "endpoint": "https://pds.example.com"}},
            "prev": null,
            "sig": GENESIS_SIG,
        })
    );
    // Recompute the DID from scratch: SHA-256 of the signed DAG-CBOR, base32, 24 chars.
    let digest = Sha256::digest(op.to_cbor().unwrap());
    let encoded = base32_lower(&digest);
    assert_eq!(encoded.len(), 52);
    assert_eq!(format!("did:plc:{}", &encoded[..24]), GENESIS_DID);
    assert_eq!(did_for_genesis(&op).unwrap().as_str(), GENESIS_DID);
    // The unsigned bytes are the signed map minus `sig`: 6 entries vs 7 (CBOR map headers).
    let unsigned = op.op.to_cbor().unwrap();
    let signed = op.to_cbor().unwrap();
    assert_eq!((unsigned[0], signed[0]), (0xa6, 0xa7));
    assert_eq!(
        verify_genesis(&did, &op).unwrap(),
        op.op.normalize().unwrap()
    );
    assert_eq!(op.verify_sig(&[ROT_P256.into(), ROT_K256.into()]), Ok(1));
}

#[test]
fn update_and_tombstone_known_answers() {
    let (did, genesis) = genesis();
    let changes = PlcChanges {
        handle: Some(handle("bob.test")),
        ..PlcChanges::default()
    };
    let update = update_op(&genesis, &changes, &rot_p256()).unwrap();
    assert_eq!(update.op.prev(), Some(GENESIS_CID));
    assert_eq!(update.sig, UPDATE_SIG);
    assert_eq!(update.cid().unwrap().to_string(), UPDATE_CID);
    let state = update.op.normalize().unwrap();
    assert_eq!(state.also_known_as, vec!["at://bob.test".to_owned()]);
    assert_eq!(state.handle(), Some(handle("bob.test")));
    assert_eq!(state.pds_endpoint(), Some("https://pds.example.com"));
    assert_eq!(state.signing_key(), Some(SIGN_K256));
    assert_eq!(update.verify_sig(&state.rotation_keys), Ok(1));

    let tombstone = tombstone_op(&update, &rot()).unwrap();
    assert_eq!(
        serde_json::to_value(&tombstone).unwrap(),
        json!({"type": "plc_tombstone", "prev": UPDATE_CID, "sig": TOMBSTONE_SIG})
    );
    assert_eq!(tombstone.op.normalize(), None);

    let log = [genesis.clone(), update.clone(), tombstone.clone()];
    assert_eq!(verify_log(&did, &log), Ok(None));
    assert_eq!(verify_log(&did, &log[..2]), Ok(Some(state)));
    assert_eq!(verify_log(&did, &[]), Err(OpError::EmptyLog));
    assert_eq!(
        verify_log(&did, &[genesis.clone(), tombstone.clone()]),
        Err(OpError::BrokenChain)
    );
    assert_eq!(
        verify_log(
            &did,
            &[
                genesis.clone(),
                update.clone(),
                tombstone.clone(),
                update.clone()
            ]
        ),
        Err(OpError::BrokenChain)
    );
    // Nothing can follow a tombstone.
    assert_eq!(
        update_op(&tombstone, &changes, &rot()),
        Err(OpError::Tombstoned)
    );
    assert_eq!(tombstone_op(&tombstone, &rot()), Err(OpError::Tombstoned));
}

#[test]
fn legacy_create_known_answer() {
    // A `create` operation signed by the reference implementation.
    let json = json!({
        "type": "create",
        "signingKey": SIGN_K256,
        "recoveryKey": ROT_K256,
        "handle": "carol.test",
        "service": "https://pds.example.com",
        "prev": null,
        "sig": "WR42P8uEwNXDatoZiyNBaHzVyeonS4lpAsjU0-XOemUei_dQIgHOi-g4qEg04fwGGUjGPo_3S5uTiTOopZFxTg",
    });
    let op: SignedOp = serde_json::from_value(json.clone()).unwrap();
    assert!(matches!(op.op, UnsignedOp::LegacyCreate(_)));
    assert_eq!(serde_json::to_value(&op).unwrap(), json);
    let did = did_for_genesis(&op).unwrap();
    assert_eq!(did.as_str(), "did:plc:ws26dznwwrs7qgt6yemi7tsl");
    assert_eq!(
        op.cid().unwrap().to_string(),
        "bafyreifuwxq6lnvumx4bu7wbdch44s4tiak3kep757ptzdq6xkwyxtqkaq"
    );
    // Normalised as the reference does: [recovery, signing], at:// handle, PDS service.
    let state = verify_genesis(&did, &op).unwrap();
    assert_eq!(
        state.rotation_keys,
        vec![ROT_K256.to_owned(), SIGN_K256.to_owned()]
    );
    assert_eq!(state.also_known_as, vec!["at://carol.test".to_owned()]);
    assert_eq!(state.pds_endpoint(), Some("https://pds.example.com"));
    assert_eq!(state.signing_key(), Some(SIGN_K256));

    // An update on top of it, by the recovery key, matches the reference byte for byte.
    let changes = PlcChanges {
        handle: Some(handle("dave.test")),
        ..PlcChanges::default()
    };
    let update = update_op(&op, &changes, &rot()).unwrap();
    assert_eq!(
        serde_json::to_value(&update).unwrap(),
        json!({
            "type": "plc_operation",
            "verificationMethods": {"atproto": SIGN_K256},
            "rotationKeys": [ROT_K256, SIGN_K256],
            "alsoKnownAs": ["at://dave.test"],
            "services": {"atproto_pds": {"type": "AtprotoPersonalDataServer",
                                         "endpoint": "https://pds.example.com"}},
            "prev": "bafyreifuwxq6lnvumx4bu7wbdch44s4tiak3kep757ptzdq6xkwyxtqkaq",
            "sig": "fxPc6XO322X_7YrRvAqpDlScJCR6tLHqzGx4Z5TGP-IJWiu-D6EiUsjQL97AfT_Hd06ISjgYrWgJW2MLOZ-lzQ",
        })
    );
    assert!(verify_log(&did, &[op, update]).unwrap().is_some());
}

#[test]
fn update_changes_every_field() {
    let (_, genesis) = genesis();
    let new_rot = Keypair::generate(Algorithm::K256).public_key().to_did_key();
    let new_sign = Keypair::generate(Algorithm::P256).public_key().to_did_key();
    let changes = PlcChanges {
        handle: Some(handle("new.example.com")),
        pds_endpoint: Some("https://other.example.com".into()),
        signing_key: Some(new_sign.clone()),
        rotation_keys: Some(vec![new_rot.clone()]),
    };
    let update = update_op(&genesis, &changes, &rot()).unwrap();
    let state = update.op.normalize().unwrap();
    assert_eq!(state.rotation_keys, vec![new_rot.clone()]);
    assert_eq!(state.signing_key(), Some(new_sign.as_str()));
    assert_eq!(state.pds_endpoint(), Some("https://other.example.com"));
    assert_eq!(state.handle(), Some(handle("new.example.com")));
    // Signed by an old key; the old keys no longer control the DID.
    assert_eq!(update.verify_sig(&[ROT_K256.into()]), Ok(0));
    assert_eq!(
        update_op(&update, &PlcChanges::default(), &rot()),
        Err(OpError::SignerNotRotationKey)
    );

    // A handle is put first when alsoKnownAs has no at:// entry; other entries stay.
    let mut op = genesis.op.normalize().unwrap();
    op.also_known_as = vec!["https://example.com/me".into()];
    let bare = UnsignedOp::Plc(op).sign(&rot()).unwrap();
    let update = update_op(
        &bare,
        &PlcChanges {
            handle: Some(handle("x.test")),
            ..PlcChanges::default()
        },
        &rot(),
    )
    .unwrap();
    assert_eq!(
        update.op.normalize().unwrap().also_known_as,
        vec![
            "at://x.test".to_owned(),
            "https://example.com/me".to_owned()
        ]
    );
}

#[test]
fn creation_rules() {
    let make = |keys: Vec<&str>, endpoint: &str, signer: &Keypair| {
        create_genesis(
            SIGN_K256,
            keys.into_iter().map(str::to_owned).collect(),
            &handle("alice.test"),
            endpoint,
            signer,
        )
        .map(|(did, _)| did)
    };
    let ok = "https://pds.example.com";
    assert_eq!(make(vec![], ok, &rot()), Err(OpError::RotationKeyCount(0)));
    let six: Vec<String> = (0..6)
        .map(|_| Keypair::generate(Algorithm::K256).public_key().to_did_key())
        .collect();
    let mut six_refs: Vec<&str> = six.iter().map(String::as_str).collect();
    six_refs[0] = ROT_K256;
    assert_eq!(
        make(six_refs.clone(), ok, &rot()),
        Err(OpError::RotationKeyCount(6))
    );
    assert!(make(six_refs[..5].to_vec(), ok, &rot()).is_ok());
    assert_eq!(
        make(vec![ROT_K256, ROT_K256], ok, &rot()),
        Err(OpError::DuplicateRotationKey)
    );
    assert!(matches!(
        make(vec![ROT_K256, "did:key:zNotAKey"], ok, &rot()),
        Err(OpError::Key(_))
    ));
    assert_eq!(
        make(vec![ROT_P256], ok, &rot()),
        Err(OpError::SignerNotRotationKey)
    );
    for bad in [
        "pds.example.com",
        "ftp://pds.example.com",
        "https://",
        "http//x.com",
    ] {
        assert_eq!(
            make(vec![ROT_K256], bad, &rot()),
            Err(OpError::InvalidEndpoint),
            "{bad}"
        );
    }
    let long = format!("https://pds.example.com/{}", "a".repeat(MAX_OP_BYTES));
    assert!(matches!(
        make(vec![ROT_K256], &long, &rot()),
        Err(OpError::TooLarge(n)) if n > MAX_OP_BYTES
    ));
    // The signing key must be a did:key too.
    assert!(matches!(
        create_genesis(
            "zQ3sh",
            vec![ROT_K256.into()],
            &handle("a.test"),
            ok,
            &rot()
        ),
        Err(OpError::Key(_))
    ));
}

#[test]
fn signature_checks() {
    let (did, op) = genesis();
    let keys = [ROT_K256.to_owned(), ROT_P256.to_owned()];
    // Tampered content: same signature, different bytes.
    let mut tampered = op.clone();
    if let UnsignedOp::Plc(inner) = &mut tampered.op {
        inner.also_known_as = vec!["at://mallory.test".into()];
    }
    assert_eq!(tampered.verify_sig(&keys), Err(OpError::BadSignature));
    // A signature by a key not in the list.
    assert_eq!(
        op.verify_sig(&[ROT_P256.into()]),
        Err(OpError::BadSignature)
    );
    assert_eq!(
        op.verify_sig(&["garbage".into()]),
        Err(OpError::BadSignature)
    );
    // Encodings: padding and standard base64 alphabet are refused.
    let mut padded = op.clone();
    padded.sig.push_str("==");
    assert_eq!(padded.verify_sig(&keys), Err(OpError::SigEncoding));
    let mut standard = op.clone();
    standard.sig = standard.sig.replace('-', "+").replace('_', "/");
    assert_eq!(standard.verify_sig(&keys), Err(OpError::SigEncoding));
    // A short signature decodes but cannot verify.
    let mut short = op.clone();
    short.sig.truncate(40);
    assert_eq!(short.verify_sig(&keys), Err(OpError::BadSignature));
    // A high-S twin of a valid signature is refused (crypto enforces low-S).
    let raw = URL_SAFE_NO_PAD.decode(&op.sig).unwrap();
    let sig = k256::ecdsa::Signature::from_slice(&raw).unwrap();
    let (r, s) = sig.split_scalars();
    let high = k256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
    let mut high_s = op.clone();
    high_s.sig = URL_SAFE_NO_PAD.encode(high.to_bytes());
    assert_eq!(high_s.verify_sig(&keys), Err(OpError::BadSignature));

    // Genesis checks.
    let other: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
    assert_eq!(
        verify_genesis(&other, &op),
        Err(OpError::DidMismatch(did.clone()))
    );
    assert_eq!(verify_genesis(&did, &tampered), Err(OpError::BadSignature));
    let update = update_op(&op, &PlcChanges::default(), &rot()).unwrap();
    assert_eq!(verify_genesis(&did, &update), Err(OpError::NotGenesis));
    let forged_update = SignedOp {
        sig: op.sig.clone(),
        ..update.clone()
    };
    assert_eq!(
        verify_log(&did, &[op, forged_update]),
        Err(OpError::BadSignature)
    );
}

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[test]
fn cbor_and_json_round_trips() {
    let (_, genesis) = genesis();
    let update = update_op(&genesis, &PlcChanges::default(), &rot()).unwrap();
    let tombstone = tombstone_op(&update, &rot()).unwrap();
    for op in [genesis, update, tombstone] {
        let bytes = op.to_cbor().unwrap();
        assert_eq!(SignedOp::from_cbor(&bytes).unwrap(), op);
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(serde_json::from_str::<SignedOp>(&json).unwrap(), op);
    }
}

#[test]
fn strict_parsing() {
    let (_, genesis) = genesis();
    let good = serde_json::to_value(&genesis).unwrap();
    let with = |edit: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let mut v = good.clone();
        edit(v.as_object_mut().unwrap());
        serde_json::from_value::<SignedOp>(v)
    };
    assert!(with(&|_| {}).is_ok());
    assert!(with(&|m| drop(m.insert("extra".into(), json!(1)))).is_err());
    assert!(with(&|m| drop(m.remove("prev"))).is_err());
    assert!(with(&|m| drop(m.remove("sig"))).is_err());
    assert!(with(&|m| drop(m.remove("services"))).is_err());
    assert!(with(&|m| drop(m.insert("type".into(), json!("plc_other")))).is_err());
    assert!(with(&|m| drop(m.insert("handle".into(), json!("a.test")))).is_err());
    assert!(with(&|m| drop(m.insert("prev".into(), json!(42)))).is_err());
    assert!(with(&|m| drop(m.insert("rotationKeys".into(), json!("k")))).is_err());
    assert!(
        with(&|m| drop(m.insert(
            "services".into(),
            json!({"atproto_pds": {"type": "x", "endpoint": "y", "more": 1}})
        )))
        .is_err()
    );
    for bad in [
        json!({"type": "plc_tombstone", "prev": null, "sig": "x"}),
        json!({"type": "plc_tombstone", "sig": "x"}),
        json!({"type": "plc_tombstone", "prev": "b", "sig": "x", "alsoKnownAs": []}),
        json!({"type": "create", "signingKey": "a", "recoveryKey": "b", "handle": "c",
               "service": "d", "prev": "bafy", "sig": "x"}),
        json!({"type": "create", "signingKey": "a", "recoveryKey": "b", "handle": "c",
               "service": "d", "sig": "x"}),
        json!({"type": "create", "signingKey": "a", "recoveryKey": "b", "handle": "c",
               "prev": null, "sig": "x"}),
        json!([1, 2]),
        json!("plc_operation"),
        json!(null),
    ] {
        assert!(
            serde_json::from_value::<SignedOp>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    // Non-canonical DAG-CBOR is refused (a trailing byte here).
    let mut bytes = genesis.to_cbor().unwrap();
    bytes.push(0);
    assert!(matches!(
        SignedOp::from_cbor(&bytes),
        Err(OpError::Encoding(_))
    ));
    assert!(matches!(
        SignedOp::from_cbor(&[0xa1]),
        Err(OpError::Encoding(_))
    ));
}
