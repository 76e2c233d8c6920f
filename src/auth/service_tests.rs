use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;
use crate::auth::jws::MALFORMED_CLAIMS;
use crate::auth::{CLOCK_SKEW_SECS, InvalidReason};
use crate::crypto::{self, Algorithm};

const ALICE: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const APPVIEW: &str = "did:web:api.bsky.app";
const LXM: &str = "app.bsky.feed.getTimeline";
const NOW: i64 = 1_700_000_000;

fn keypair(algorithm: Algorithm) -> Keypair {
    Keypair::from_private_bytes(algorithm, &[0x42; 32]).expect("key")
}

fn params(lxm: Option<&str>) -> ServiceJwtParams {
    ServiceJwtParams::new(ALICE.into(), APPVIEW.into(), lxm.map(String::from), NOW)
}

fn invalid(reason: InvalidReason) -> AuthError {
    AuthError::InvalidToken(reason)
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn part_bytes(token: &str, index: usize) -> Vec<u8> {
    let part = token.split('.').nth(index).expect("part");
    URL_SAFE_NO_PAD.decode(part).expect("base64url")
}

fn part_json(token: &str, index: usize) -> serde_json::Value {
    serde_json::from_slice(&part_bytes(token, index)).expect("json")
}

/// Signs `header.payload` (JSON texts) with our keypair, by hand.
fn signed(keypair: &Keypair, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    format!("{input}.{}", b64(keypair.sign(input.as_bytes())))
}

fn payload(extra: &str) -> String {
    format!(
        r#"{{"iat":{NOW},"iss":"{ALICE}","aud":"{APPVIEW}","exp":{}{extra}}}"#,
        NOW + 60
    )
}

/// Replaces the signature part of a token.
fn with_signature(token: &str, sig: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').expect("three parts");
    format!("{input}.{}", b64(sig))
}

#[test]
fn round_trip_k256() {
    let keypair = keypair(Algorithm::K256);
    let token = create_service_jwt(&keypair, params(Some(LXM)));
    assert_eq!(
        String::from_utf8(part_bytes(&token, 0)).expect("utf8"),
        r#"{"typ":"JWT","alg":"ES256K"}"#
    );
    let body = part_json(&token, 1);
    let jti = body["jti"].as_str().expect("jti").to_string();
    assert_eq!(jti.len(), 32);
    assert!(
        jti.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(
        String::from_utf8(part_bytes(&token, 1)).expect("utf8"),
        format!(
            r#"{{"iat":{NOW},"iss":"{ALICE}","aud":"{APPVIEW}","exp":{},"lxm":"{LXM}","jti":"{jti}"}}"#,
            NOW + 60
        )
    );
    let claims = verify_service_jwt(&token, &keypair.public_key(), APPVIEW, Some(LXM), NOW)
        .expect("verifies");
    assert_eq!(
        claims,
        ServiceClaims {
            iss: ALICE.into(),
            aud: APPVIEW.into(),
            exp: NOW + 60,
            iat: Some(NOW),
            jti: Some(jti),
            lxm: Some(LXM.into()),
        }
    );
    // A second token differs by its nonce.
    let again = create_service_jwt(&keypair, params(Some(LXM)));
    assert_ne!(part_json(&again, 1)["jti"], part_json(&token, 1)["jti"]);
}

#[test]
fn round_trip_p256_without_lxm() {
    let keypair = keypair(Algorithm::P256);
    let token = create_service_jwt(&keypair, params(None));
    assert_eq!(
        part_json(&token, 0),
        serde_json::json!({"typ": "JWT", "alg": "ES256"})
    );
    let body = part_json(&token, 1);
    assert_eq!(body.get("lxm"), None);
    assert_eq!(body["exp"], NOW + 60);
    let claims =
        verify_service_jwt(&token, &keypair.public_key(), APPVIEW, None, NOW).expect("verifies");
    assert_eq!(claims.lxm, None);
    assert_eq!(claims.iss, ALICE);
    // A token without lxm cannot be used where a method is required.
    assert_eq!(
        verify_service_jwt(&token, &keypair.public_key(), APPVIEW, Some(LXM), NOW),
        Err(invalid(InvalidReason::LexiconMethod { found: None }))
    );
}

/// Our tokens verify under an independent ECDSA verifier working from the raw parts.
#[test]
fn cross_check_with_k256_directly() {
    use k256::ecdsa::signature::Verifier;
    let keypair = keypair(Algorithm::K256);
    let token = create_service_jwt(&keypair, params(Some(LXM)));
    let (input, _) = token.rsplit_once('.').expect("parts");
    let header: serde_json::Value = serde_json::from_slice(&part_bytes(&token, 0)).expect("json");
    assert_eq!(header["alg"], "ES256K");
    let payload: serde_json::Value = serde_json::from_slice(&part_bytes(&token, 1)).expect("json");
    assert_eq!(payload["aud"], APPVIEW);

    let sig_bytes = part_bytes(&token, 2);
    assert_eq!(sig_bytes.len(), 64);
    let sig = k256::ecdsa::Signature::from_slice(&sig_bytes).expect("r||s");
    assert!(sig.normalize_s().is_none(), "signature must be low-S");
    let verifying =
        k256::ecdsa::VerifyingKey::from_sec1_bytes(&keypair.public_key().to_compressed_bytes())
            .expect("public key");
    assert!(verifying.verify(input.as_bytes(), &sig).is_ok());
    assert!(verifying.verify(b"something else", &sig).is_err());
}

#[test]
fn cross_check_with_p256_directly() {
    use p256::ecdsa::signature::Verifier;
    let keypair = keypair(Algorithm::P256);
    let token = create_service_jwt(&keypair, params(None));
    let (input, _) = token.rsplit_once('.').expect("parts");
    let sig = p256::ecdsa::Signature::from_slice(&part_bytes(&token, 2)).expect("r||s");
    assert!(sig.normalize_s().is_none(), "signature must be low-S");
    let verifying =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&keypair.public_key().to_compressed_bytes())
            .expect("public key");
    assert!(verifying.verify(input.as_bytes(), &sig).is_ok());
}

/// A token built entirely outside our code (k256 signer, hand-written JSON) verifies.
#[test]
fn verifies_independently_built_token() {
    use k256::ecdsa::signature::Signer;
    let signing = k256::ecdsa::SigningKey::from_slice(&[0x42; 32]).expect("key");
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"ES256K","typ":"JWT"}"#),
        b64(payload(r#","jti":"n1","lxm":"app.bsky.feed.getTimeline""#))
    );
    let sig: k256::ecdsa::Signature = signing.sign(input.as_bytes());
    let sig = sig.normalize_s().unwrap_or(sig);
    let token = format!("{input}.{}", b64(sig.to_bytes()));
    let key = keypair(Algorithm::K256).public_key();
    let claims = verify_service_jwt(&token, &key, APPVIEW, Some(LXM), NOW).expect("verifies");
    assert_eq!(claims.jti.as_deref(), Some("n1"));
}

#[test]
fn high_s_is_refused() {
    let keypair = keypair(Algorithm::K256);
    let token = create_service_jwt(&keypair, params(Some(LXM)));
    let sig = k256::ecdsa::Signature::from_slice(&part_bytes(&token, 2)).expect("r||s");
    let (r, s) = sig.split_scalars();
    let high = k256::ecdsa::Signature::from_scalars(r, -s).expect("high-S twin");
    assert!(high.normalize_s().is_some(), "twin is high-S");
    let token = with_signature(&token, &high.to_bytes());
    assert_eq!(
        verify_service_jwt(&token, &keypair.public_key(), APPVIEW, Some(LXM), NOW),
        Err(invalid(InvalidReason::BadSignature(crypto::Error::HighS)))
    );

    let keypair = self::keypair(Algorithm::P256);
    let token = create_service_jwt(&keypair, params(None));
    let sig = p256::ecdsa::Signature::from_slice(&part_bytes(&token, 2)).expect("r||s");
    let (r, s) = sig.split_scalars();
    let high = p256::ecdsa::Signature::from_scalars(r, -s).expect("high-S twin");
    let token = with_signature(&token, &high.to_bytes());
    assert_eq!(
        verify_service_jwt(&token, &keypair.public_key(), APPVIEW, None, NOW),
        Err(invalid(InvalidReason::BadSignature(crypto::Error::HighS)))
    );
}

#[test]
fn der_signature_is_refused() {
    let keypair = keypair(Algorithm::K256);
    let token = create_service_jwt(&keypair, params(Some(LXM)));
    let sig = k256::ecdsa::Signature::from_slice(&part_bytes(&token, 2)).expect("r||s");
    let der = sig.to_der();
    let der = der.as_bytes();
    assert_ne!(der.len(), 64);
    assert_eq!(
        verify_service_jwt(
            &with_signature(&token, der),
            &keypair.public_key(),
            APPVIEW,
            Some(LXM),
            NOW
        ),
        Err(invalid(InvalidReason::BadSignature(
            crypto::Error::MalformedSignature(der.len())
        )))
    );
}

#[test]
fn algorithm_must_match_the_key() {
    let k256 = keypair(Algorithm::K256);
    let p256 = keypair(Algorithm::P256);
    // A genuine P-256 token checked against a secp256k1 key, and the reverse.
    let token = create_service_jwt(&p256, params(None));
    assert_eq!(
        verify_service_jwt(&token, &k256.public_key(), APPVIEW, None, NOW),
        Err(invalid(InvalidReason::Algorithm {
            found: "ES256".into()
        }))
    );
    let token = create_service_jwt(&k256, params(None));
    assert_eq!(
        verify_service_jwt(&token, &p256.public_key(), APPVIEW, None, NOW),
        Err(invalid(InvalidReason::Algorithm {
            found: "ES256K".into()
        }))
    );
    // A secp256k1 signature under a header that claims ES256.
    for alg in ["ES256", "none", "HS256", "EdDSA", "es256k"] {
        let header = format!(r#"{{"typ":"JWT","alg":"{alg}"}}"#);
        let token = signed(&k256, &header, &payload(""));
        assert_eq!(
            verify_service_jwt(&token, &k256.public_key(), APPVIEW, None, NOW),
            Err(invalid(InvalidReason::Algorithm { found: alg.into() })),
            "{alg}"
        );
    }
}

#[test]
fn expiry_and_issue_time() {
    let keypair = keypair(Algorithm::K256);
    let key = keypair.public_key();
    let token = create_service_jwt(&keypair, params(None));
    assert!(verify_service_jwt(&token, &key, APPVIEW, None, NOW + 59).is_ok());
    assert_eq!(
        verify_service_jwt(&token, &key, APPVIEW, None, NOW + 60),
        Err(AuthError::ExpiredToken)
    );
    assert_eq!(
        verify_service_jwt(&token, &key, APPVIEW, None, NOW + 61),
        Err(AuthError::ExpiredToken)
    );

    let mut future = params(None);
    future.iat = NOW + CLOCK_SKEW_SECS + 1;
    future.exp = future.iat + 60;
    let token = create_service_jwt(&keypair, future.clone());
    assert_eq!(
        verify_service_jwt(&token, &key, APPVIEW, None, NOW),
        Err(invalid(InvalidReason::NotYetValid))
    );
    assert!(verify_service_jwt(&token, &key, APPVIEW, None, NOW + 1).is_ok());
}

#[test]
fn audience_must_match() {
    let keypair = keypair(Algorithm::K256);
    let token = create_service_jwt(&keypair, params(Some(LXM)));
    assert_eq!(
        verify_service_jwt(
            &token,
            &keypair.public_key(),
            "did:web:other.example",
            Some(LXM),
            NOW
        ),
        Err(invalid(InvalidReason::Audience))
    );
}

#[test]
fn lexicon_method_must_match() {
    let keypair = keypair(Algorithm::K256);
    let key = keypair.public_key();
    let token = create_service_jwt(&keypair, params(Some(LXM)));
    assert_eq!(
        verify_service_jwt(
            &token,
            &key,
            APPVIEW,
            Some("com.atproto.server.createAccount"),
            NOW
        ),
        Err(invalid(InvalidReason::LexiconMethod {
            found: Some(LXM.into())
        }))
    );
    // Without an expected method, any (or no) lxm is accepted and reported.
    let claims = verify_service_jwt(&token, &key, APPVIEW, None, NOW).expect("verifies");
    assert_eq!(claims.lxm.as_deref(), Some(LXM));
}

#[test]
fn other_token_types_are_refused() {
    let keypair = keypair(Algorithm::K256);
    for typ in ["at+jwt", "refresh+jwt", "dpop+jwt"] {
        let header = format!(r#"{{"typ":"{typ}","alg":"ES256K"}}"#);
        let token = signed(&keypair, &header, &payload(""));
        assert_eq!(
            verify_service_jwt(&token, &keypair.public_key(), APPVIEW, None, NOW),
            Err(invalid(InvalidReason::TokenType {
                found: Some(typ.into())
            })),
            "{typ}"
        );
    }
    // A missing typ is tolerated, as the reference does.
    let token = signed(&keypair, r#"{"alg":"ES256K"}"#, &payload(""));
    assert!(verify_service_jwt(&token, &keypair.public_key(), APPVIEW, None, NOW).is_ok());
}

#[test]
fn tampering_and_wrong_key() {
    let keypair = keypair(Algorithm::K256);
    let token = create_service_jwt(&keypair, params(None));
    let parts: Vec<&str> = token.split('.').collect();
    let forged = b64(payload(r#","lxm":"com.atproto.server.deleteAccount""#));
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    let bad = invalid(InvalidReason::BadSignature(crypto::Error::InvalidSignature));
    assert_eq!(
        verify_service_jwt(&tampered, &keypair.public_key(), APPVIEW, None, NOW),
        Err(bad.clone())
    );
    let other = Keypair::from_private_bytes(Algorithm::K256, &[0x43; 32]).expect("key");
    assert_eq!(
        verify_service_jwt(&token, &other.public_key(), APPVIEW, None, NOW),
        Err(bad)
    );
}

#[test]
fn legacy_tokens_without_iat_or_jti() {
    let keypair = keypair(Algorithm::K256);
    let legacy = format!(
        r#"{{"iss":"{ALICE}","aud":"{APPVIEW}","exp":{}}}"#,
        NOW + 60
    );
    let token = signed(&keypair, r#"{"typ":"JWT","alg":"ES256K"}"#, &legacy);
    let claims =
        verify_service_jwt(&token, &keypair.public_key(), APPVIEW, None, NOW).expect("verifies");
    assert_eq!((claims.iat, claims.jti, claims.lxm), (None, None, None));
}

#[test]
fn malformed_claims() {
    let keypair = keypair(Algorithm::K256);
    let header = r#"{"typ":"JWT","alg":"ES256K"}"#;
    let exp = NOW + 60;
    for body in [
        format!(r#"{{"aud":"{APPVIEW}","exp":{exp}}}"#),
        format!(r#"{{"iss":"{ALICE}","exp":{exp}}}"#),
        format!(r#"{{"iss":"{ALICE}","aud":"{APPVIEW}"}}"#),
        format!(r#"{{"iss":"{ALICE}","aud":"{APPVIEW}","exp":"{exp}"}}"#),
        format!(r#"{{"iss":"{ALICE}","aud":"{APPVIEW}","exp":{exp},"lxm":5}}"#),
        format!(r#"{{"iss":"{ALICE}","aud":["{APPVIEW}"],"exp":{exp}}}"#),
        format!(r#"{{"iss":"{ALICE}","aud":"{APPVIEW}","aud":"did:web:x","exp":{exp}}}"#),
    ] {
        let token = signed(&keypair, header, &body);
        assert_eq!(
            verify_service_jwt(&token, &keypair.public_key(), APPVIEW, None, NOW),
            Err(invalid(InvalidReason::Malformed(MALFORMED_CLAIMS))),
            "{body}"
        );
    }
    let not_did = format!(r#"{{"iss":"alice.example.com","aud":"{APPVIEW}","exp":{exp}}}"#);
    assert_eq!(
        verify_service_jwt(
            &signed(&keypair, header, &not_did),
            &keypair.public_key(),
            APPVIEW,
            None,
            NOW
        ),
        Err(invalid(InvalidReason::Malformed("issuer is not a DID")))
    );
}

#[test]
fn issuer_with_service_suffix() {
    let keypair = keypair(Algorithm::K256);
    let mut p = params(None);
    p.iss = "did:web:label.example.com#atproto_labeler".into();
    let token = create_service_jwt(&keypair, p);
    let claims =
        verify_service_jwt(&token, &keypair.public_key(), APPVIEW, None, NOW).expect("verifies");
    assert_eq!(claims.issuer_did(), "did:web:label.example.com");
    assert_eq!(claims.issuer_service(), Some("atproto_labeler"));

    let plain = create_service_jwt(&keypair, params(None));
    let claims =
        verify_service_jwt(&plain, &keypair.public_key(), APPVIEW, None, NOW).expect("verifies");
    assert_eq!(claims.issuer_did(), ALICE);
    assert_eq!(claims.issuer_service(), None);
}

#[test]
fn requested_expiry_bounds() {
    use ServiceExpiryError::*;
    assert_eq!(check_requested_expiry(NOW - 1, NOW, true), Err(InPast));
    assert_eq!(check_requested_expiry(NOW, NOW, false), Ok(()));
    assert_eq!(check_requested_expiry(NOW + 60, NOW, false), Ok(()));
    assert_eq!(
        check_requested_expiry(NOW + 61, NOW, false),
        Err(TooFarWithoutMethod)
    );
    assert_eq!(check_requested_expiry(NOW + 3600, NOW, true), Ok(()));
    assert_eq!(check_requested_expiry(NOW + 3601, NOW, true), Err(TooFar));
    assert_eq!(
        check_requested_expiry(i64::MAX, i64::MIN, true),
        Err(TooFar)
    );
    assert_eq!(
        check_requested_expiry(i64::MIN, i64::MAX, true),
        Err(InPast)
    );
}
