use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use super::*;
use crate::auth::jws::{MALFORMED_CLAIMS, MALFORMED_PARTS};
use crate::auth::{CLOCK_SKEW_SECS, InvalidReason};

const SEED: [u8; 32] = [7; 32];
const PDS: &str = "did:web:pds.example.com";
const ALICE: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const NOW: i64 = 1_700_000_000;

fn signer() -> SessionSigner {
    SessionSigner::new(SEED, PDS.to_string())
}

fn invalid(reason: InvalidReason) -> AuthError {
    AuthError::InvalidToken(reason)
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes one part of a token to its JSON text, independently of the code under test.
fn part_json(token: &str, index: usize) -> serde_json::Value {
    let part = token.split('.').nth(index).expect("part");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

/// Signs `header.payload` (given as JSON texts) with an Ed25519 seed, by hand.
fn ed25519_token(seed: [u8; 32], header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = SigningKey::from_bytes(&seed).sign(input.as_bytes());
    format!("{input}.{}", b64(sig.to_bytes()))
}

fn access_payload(scope: &str) -> String {
    format!(
        r#"{{"scope":"{scope}","sub":"{ALICE}","aud":"{PDS}","iat":{NOW},"exp":{}}}"#,
        NOW + 7200
    )
}

fn refresh_payload(scope: &str) -> String {
    format!(
        r#"{{"scope":"{scope}","sub":"{ALICE}","aud":"{PDS}","jti":"abc","iat":{NOW},"exp":{}}}"#,
        NOW + 7200
    )
}

/// HMAC-SHA256 (RFC 2104), for keys of at most one block.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    assert!(key.len() <= 64);
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[test]
fn hmac_helper_matches_rfc4231_case_2() {
    assert_eq!(
        hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

/// RFC 8037 appendix A.4: the Ed25519 JWS known answer, through the same signing path.
#[test]
fn rfc8037_ed25519_jws_known_answer() {
    let seed: [u8; 32] = URL_SAFE_NO_PAD
        .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
        .expect("d")
        .try_into()
        .expect("32 bytes");
    let key = SessionSigner::new(seed, PDS.into());
    assert_eq!(
        b64(key.public_key()),
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    );
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"EdDSA"}"#),
        b64("Example of Ed25519 signing")
    );
    let token = jws::finish(input.clone(), &key.key.sign(input.as_bytes()).to_bytes());
    assert_eq!(
        token,
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.\
         hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    );
}

#[test]
fn access_round_trip_for_every_scope() {
    let signer = signer();
    for scope in [
        AccessScope::Access,
        AccessScope::AppPass,
        AccessScope::AppPassPrivileged,
    ] {
        let token = signer.create_access(ALICE, scope, NOW);
        assert_eq!(
            part_json(&token, 0),
            serde_json::json!({"typ": "at+jwt", "alg": "EdDSA"})
        );
        assert_eq!(
            part_json(&token, 1),
            serde_json::json!({
                "scope": scope.as_str(), "sub": ALICE, "aud": PDS,
                "iat": NOW, "exp": NOW + 2 * 3600,
            })
        );
        let claims = signer.verify_access(&token, NOW + 60).expect("verifies");
        assert_eq!(
            claims,
            AccessClaims {
                did: ALICE.into(),
                scope,
                iat: NOW,
                exp: NOW + 7200,
            }
        );
    }
}

#[test]
fn refresh_round_trip() {
    let signer = signer();
    let token = signer.create_refresh(ALICE, "token-id-1", NOW);
    assert_eq!(
        part_json(&token, 0),
        serde_json::json!({"typ": "refresh+jwt", "alg": "EdDSA"})
    );
    assert_eq!(
        part_json(&token, 1),
        serde_json::json!({
            "scope": "com.atproto.refresh", "sub": ALICE, "aud": PDS,
            "jti": "token-id-1", "iat": NOW, "exp": NOW + 90 * 86400,
        })
    );
    let expected = RefreshClaims {
        did: ALICE.into(),
        jti: "token-id-1".into(),
        iat: NOW,
        exp: NOW + 7_776_000,
    };
    assert_eq!(signer.verify_refresh(&token, NOW), Ok(expected.clone()));
    // An expired refresh token is still identifiable for revocation, through the
    // dedicated entry point only.
    let late = NOW + 7_776_000 + 5;
    assert_eq!(
        signer.verify_refresh(&token, late),
        Err(AuthError::ExpiredToken)
    );
    assert_eq!(
        signer.verify_refresh_ignoring_expiry(&token, late),
        Ok(expected)
    );
}

/// The signature is ordinary Ed25519 over `header.payload`: an independent verifier agrees.
#[test]
fn signature_verifies_independently() {
    let signer = signer();
    let token = signer.create_access(ALICE, AccessScope::Access, NOW);
    let (input, sig) = token.rsplit_once('.').expect("three parts");
    let sig = ed25519_dalek::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).expect("b64"))
        .expect("64 bytes");
    let public = SigningKey::from_bytes(&SEED).verifying_key();
    assert_eq!(public.to_bytes(), signer.public_key());
    assert!(public.verify_strict(input.as_bytes(), &sig).is_ok());
    // Ed25519 is deterministic: the same inputs give the same token.
    assert_eq!(token, signer.create_access(ALICE, AccessScope::Access, NOW));
    // A hand-built token with the same JSON is byte-identical.
    let header = r#"{"typ":"at+jwt","alg":"EdDSA"}"#;
    assert_eq!(
        token,
        ed25519_token(SEED, header, &access_payload("com.atproto.access"))
    );
}

#[test]
fn expiry_boundaries() {
    let signer = signer();
    let access = signer.create_access(ALICE, AccessScope::Access, NOW);
    let exp = NOW + ACCESS_LIFETIME_SECS;
    assert!(signer.verify_access(&access, exp - 1).is_ok());
    assert_eq!(
        signer.verify_access(&access, exp),
        Err(AuthError::ExpiredToken)
    );
    assert_eq!(
        signer.verify_access(&access, exp + 1),
        Err(AuthError::ExpiredToken)
    );

    let refresh = signer.create_refresh(ALICE, "j", NOW);
    let exp = NOW + REFRESH_LIFETIME_SECS;
    assert!(signer.verify_refresh(&refresh, exp - 1).is_ok());
    assert_eq!(
        signer.verify_refresh(&refresh, exp + 1),
        Err(AuthError::ExpiredToken)
    );
}

#[test]
fn not_yet_valid() {
    let signer = signer();
    let edge = signer.create_access(ALICE, AccessScope::Access, NOW + CLOCK_SKEW_SECS);
    assert!(signer.verify_access(&edge, NOW).is_ok());
    let future = signer.create_access(ALICE, AccessScope::Access, NOW + CLOCK_SKEW_SECS + 1);
    assert_eq!(
        signer.verify_access(&future, NOW),
        Err(invalid(InvalidReason::NotYetValid))
    );
    let refresh = signer.create_refresh(ALICE, "j", NOW + 3600);
    assert_eq!(
        signer.verify_refresh(&refresh, NOW),
        Err(invalid(InvalidReason::NotYetValid))
    );
    assert_eq!(
        signer.verify_refresh_ignoring_expiry(&refresh, NOW),
        Err(invalid(InvalidReason::NotYetValid))
    );
}

#[test]
fn refresh_and_access_are_not_interchangeable() {
    let signer = signer();
    let access = signer.create_access(ALICE, AccessScope::Access, NOW);
    let refresh = signer.create_refresh(ALICE, "j", NOW);
    assert_eq!(
        signer.verify_access(&refresh, NOW),
        Err(invalid(InvalidReason::TokenType {
            found: Some("refresh+jwt".into())
        }))
    );
    assert_eq!(
        signer.verify_refresh(&access, NOW),
        Err(invalid(InvalidReason::TokenType {
            found: Some("at+jwt".into())
        }))
    );
    // Even with a matching `typ`, the scope keeps them apart.
    let access_typ = r#"{"typ":"at+jwt","alg":"EdDSA"}"#;
    let refresh_typ = r#"{"typ":"refresh+jwt","alg":"EdDSA"}"#;
    let token = ed25519_token(SEED, access_typ, &refresh_payload("com.atproto.refresh"));
    assert_eq!(
        signer.verify_access(&token, NOW),
        Err(invalid(InvalidReason::Scope {
            found: "com.atproto.refresh".into()
        }))
    );
    for scope in [
        "com.atproto.access",
        "com.atproto.appPass",
        "com.atproto.takendown",
    ] {
        let token = ed25519_token(SEED, refresh_typ, &refresh_payload(scope));
        assert_eq!(
            signer.verify_refresh(&token, NOW),
            Err(invalid(InvalidReason::Scope {
                found: scope.into()
            }))
        );
    }
    let token = ed25519_token(
        SEED,
        access_typ,
        &access_payload("com.atproto.signupQueued"),
    );
    assert_eq!(
        signer.verify_access(&token, NOW),
        Err(invalid(InvalidReason::Scope {
            found: "com.atproto.signupQueued".into()
        }))
    );
}

#[test]
fn missing_or_unknown_typ() {
    let signer = signer();
    let payload = access_payload("com.atproto.access");
    for (header, found) in [
        (r#"{"alg":"EdDSA"}"#, None),
        (r#"{"alg":"EdDSA","typ":"JWT"}"#, Some("JWT")),
        (r#"{"alg":"EdDSA","typ":"dpop+jwt"}"#, Some("dpop+jwt")),
    ] {
        let token = ed25519_token(SEED, header, &payload);
        assert_eq!(
            signer.verify_access(&token, NOW),
            Err(invalid(InvalidReason::TokenType {
                found: found.map(String::from)
            })),
            "{header}"
        );
    }
}

#[test]
fn alg_none_is_refused() {
    let signer = signer();
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"none","typ":"at+jwt"}"#),
        b64(access_payload("com.atproto.access"))
    );
    // The classic unsecured form, with an empty signature part.
    assert_eq!(
        signer.verify_access(&format!("{input}."), NOW),
        Err(invalid(InvalidReason::Malformed(MALFORMED_PARTS)))
    );
    // With some signature bytes attached, the algorithm itself is what is refused.
    assert_eq!(
        signer.verify_access(&format!("{input}.AAAA"), NOW),
        Err(invalid(InvalidReason::Algorithm {
            found: "none".into()
        }))
    );
    for alg in ["None", "NONE", "eddsa", "Ed25519"] {
        let header = format!(r#"{{"alg":"{alg}","typ":"at+jwt"}}"#);
        let token = ed25519_token(SEED, &header, &access_payload("com.atproto.access"));
        assert_eq!(
            signer.verify_access(&token, NOW),
            Err(invalid(InvalidReason::Algorithm { found: alg.into() })),
            "{alg}"
        );
    }
}

/// Algorithm confusion: an HS256 token whose HMAC key is our (public) Ed25519 key.
#[test]
fn hs256_with_public_key_as_secret_is_refused() {
    let signer = signer();
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"HS256","typ":"at+jwt"}"#),
        b64(access_payload("com.atproto.access"))
    );
    let mac = hmac_sha256(&signer.public_key(), input.as_bytes());
    let token = format!("{input}.{}", b64(mac));
    assert_eq!(
        signer.verify_access(&token, NOW),
        Err(invalid(InvalidReason::Algorithm {
            found: "HS256".into()
        }))
    );
    let refresh_input = format!(
        "{}.{}",
        b64(r#"{"alg":"HS256","typ":"refresh+jwt"}"#),
        b64(refresh_payload("com.atproto.refresh"))
    );
    let mac = hmac_sha256(&signer.public_key(), refresh_input.as_bytes());
    assert_eq!(
        signer.verify_refresh(&format!("{refresh_input}.{}", b64(mac)), NOW),
        Err(invalid(InvalidReason::Algorithm {
            found: "HS256".into()
        }))
    );
}

/// An ES256K token (validly signed with a secp256k1 key) is not a session token.
#[test]
fn es256k_is_refused() {
    let signer = signer();
    let keypair =
        crypto::Keypair::from_private_bytes(crypto::Algorithm::K256, &[9u8; 32]).expect("k256 key");
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"ES256K","typ":"at+jwt"}"#),
        b64(access_payload("com.atproto.access"))
    );
    let token = format!("{input}.{}", b64(keypair.sign(input.as_bytes())));
    assert_eq!(
        signer.verify_access(&token, NOW),
        Err(invalid(InvalidReason::Algorithm {
            found: "ES256K".into()
        }))
    );
}

#[test]
fn tampering_is_detected() {
    let signer = signer();
    let token = signer.create_access(ALICE, AccessScope::AppPass, NOW);
    let parts: Vec<&str> = token.split('.').collect();
    let bad_sig = invalid(InvalidReason::BadSignature(crypto::Error::InvalidSignature));

    // Payload swapped for one with a better scope, signature kept.
    let forged = b64(access_payload("com.atproto.access"));
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    assert_eq!(signer.verify_access(&tampered, NOW), Err(bad_sig.clone()));

    // One flipped bit in the signature.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
    assert_eq!(signer.verify_access(&flipped, NOW), Err(bad_sig.clone()));

    // Truncated signature.
    let short = format!("{}.{}.{}", parts[0], parts[1], b64(&sig[..63]));
    assert_eq!(
        signer.verify_access(&short, NOW),
        Err(invalid(InvalidReason::BadSignature(
            crypto::Error::MalformedSignature(63)
        )))
    );

    // Signed by another key.
    let other = SessionSigner::new([8; 32], PDS.into());
    let foreign = other.create_access(ALICE, AccessScope::Access, NOW);
    assert_eq!(signer.verify_access(&foreign, NOW), Err(bad_sig));
}

#[test]
fn wrong_audience() {
    let other_pds = SessionSigner::new(SEED, "did:web:other.example.com".into());
    let token = other_pds.create_access(ALICE, AccessScope::Access, NOW);
    assert_eq!(
        signer().verify_access(&token, NOW),
        Err(invalid(InvalidReason::Audience))
    );
    let token = other_pds.create_refresh(ALICE, "j", NOW);
    assert_eq!(
        signer().verify_refresh(&token, NOW),
        Err(invalid(InvalidReason::Audience))
    );
}

#[test]
fn malformed_claims() {
    let signer = signer();
    let access_typ = r#"{"typ":"at+jwt","alg":"EdDSA"}"#;
    let refresh_typ = r#"{"typ":"refresh+jwt","alg":"EdDSA"}"#;
    let exp = NOW + 100;
    let claims_err = invalid(InvalidReason::Malformed(MALFORMED_CLAIMS));
    for payload in [
        format!(r#"{{"scope":"com.atproto.access","sub":"{ALICE}","aud":"{PDS}","iat":{NOW}}}"#),
        format!(r#"{{"scope":"com.atproto.access","sub":"{ALICE}","aud":"{PDS}","exp":{exp}}}"#),
        format!(r#"{{"scope":"com.atproto.access","sub":"{ALICE}","iat":{NOW},"exp":{exp}}}"#),
        format!(r#"{{"scope":"com.atproto.access","aud":"{PDS}","iat":{NOW},"exp":{exp}}}"#),
        format!(r#"{{"sub":"{ALICE}","aud":"{PDS}","iat":{NOW},"exp":{exp}}}"#),
        format!(
            r#"{{"scope":"com.atproto.access","sub":"{ALICE}","aud":"{PDS}","iat":{NOW},"exp":{exp}.5}}"#
        ),
        format!(
            r#"{{"scope":"com.atproto.access","sub":"{ALICE}","aud":["{PDS}"],"iat":{NOW},"exp":{exp}}}"#
        ),
        format!(
            r#"{{"scope":"com.atproto.access","sub":"{ALICE}","sub":"did:plc:x","aud":"{PDS}","iat":{NOW},"exp":{exp}}}"#
        ),
    ] {
        let token = ed25519_token(SEED, access_typ, &payload);
        assert_eq!(
            signer.verify_access(&token, NOW),
            Err(claims_err.clone()),
            "{payload}"
        );
    }

    let not_did = format!(
        r#"{{"scope":"com.atproto.access","sub":"alice.example.com","aud":"{PDS}","iat":{NOW},"exp":{exp}}}"#
    );
    assert_eq!(
        signer.verify_access(&ed25519_token(SEED, access_typ, &not_did), NOW),
        Err(invalid(InvalidReason::Subject))
    );

    let pop = format!(
        r#"{{"scope":"com.atproto.access","sub":"{ALICE}","aud":"{PDS}","iat":{NOW},"exp":{exp},"cnf":{{"jkt":"x"}}}}"#
    );
    assert_eq!(
        signer.verify_access(&ed25519_token(SEED, access_typ, &pop), NOW),
        Err(invalid(InvalidReason::Malformed(
            "proof-of-possession tokens are not accepted"
        )))
    );

    let no_jti = format!(
        r#"{{"scope":"com.atproto.refresh","sub":"{ALICE}","aud":"{PDS}","iat":{NOW},"exp":{exp}}}"#
    );
    let empty_jti = format!(
        r#"{{"scope":"com.atproto.refresh","sub":"{ALICE}","aud":"{PDS}","jti":"","iat":{NOW},"exp":{exp}}}"#
    );
    for payload in [no_jti, empty_jti] {
        assert_eq!(
            signer.verify_refresh(&ed25519_token(SEED, refresh_typ, &payload), NOW),
            Err(invalid(InvalidReason::Malformed(
                "refresh token has no jti"
            )))
        );
    }
}

#[test]
fn garbage_never_panics() {
    let signer = signer();
    for token in [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "\u{0}.\u{0}.\u{0}",
        "eyJ.eyJ.eyJ",
        "ééé.ééé.ééé",
    ] {
        assert!(matches!(
            signer.verify_access(token, NOW),
            Err(AuthError::InvalidToken(InvalidReason::Malformed(_)))
        ));
        assert!(matches!(
            signer.verify_refresh(token, NOW),
            Err(AuthError::InvalidToken(InvalidReason::Malformed(_)))
        ));
    }
}

#[test]
fn refresh_jti_is_random_base64url() {
    let a = new_refresh_jti();
    let b = new_refresh_jti();
    assert_ne!(a, b);
    for jti in [&a, &b] {
        assert_eq!(jti.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(jti).expect("base64url").len(), 32);
    }
}

#[test]
fn scopes() {
    let all = [
        (AccessScope::Access, "com.atproto.access", true, true),
        (AccessScope::AppPass, "com.atproto.appPass", false, false),
        (
            AccessScope::AppPassPrivileged,
            "com.atproto.appPassPrivileged",
            false,
            true,
        ),
    ];
    for (scope, name, full, privileged) in all {
        assert_eq!(scope.as_str(), name);
        assert_eq!(AccessScope::parse(name), Some(scope));
        assert_eq!(scope.is_full(), full);
        assert_eq!(scope.is_privileged(), privileged);
    }
    assert_eq!(AccessScope::parse("com.atproto.refresh"), None);
    assert_eq!(AccessScope::parse("com.atproto.Access"), None);
}

#[test]
fn seeds_and_debug() {
    let seed = SessionSigner::generate_seed();
    assert_ne!(seed, SessionSigner::generate_seed());
    let signer = SessionSigner::new(seed, PDS.into());
    let token = signer.create_access(ALICE, AccessScope::Access, NOW);
    assert!(signer.verify_access(&token, NOW).is_ok());
    assert_eq!(signer.service_did(), PDS);
    let debug = format!("{signer:?}");
    assert!(debug.contains(&hex::encode(signer.public_key())));
    assert!(!debug.contains(&hex::encode(seed)));
}

#[test]
fn verified_tokens_are_remembered_bounded_and_still_checked() {
    let signer = signer();
    let access = signer.create_access(ALICE, AccessScope::Access, NOW);
    let first = signer.verify_access(&access, NOW).unwrap();
    // Remembered: the same claims, the times checked again.
    assert_eq!(signer.verify_access(&access, NOW + 1), Ok(first));
    assert_eq!(
        signer.verify_access(&access, NOW + ACCESS_LIFETIME_SECS),
        Err(AuthError::ExpiredToken)
    );
    assert_eq!(
        signer.verify_access(&access, NOW - CLOCK_SKEW_SECS - 1),
        Err(invalid(InvalidReason::NotYetValid))
    );
    // A remembered token with one character changed is a different token.
    let mut tampered = access.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        signer.verify_access(&tampered, NOW),
        Err(invalid(InvalidReason::BadSignature(
            crypto::Error::InvalidSignature
        )))
    );
    // Bounded: many tokens later, every one still verifies and the memory stays small.
    let tokens: Vec<String> = (0..=VERIFIED_TOKENS)
        .map(|i| signer.create_access(&format!("did:example:{i}"), AccessScope::Access, NOW))
        .collect();
    for (i, token) in tokens.iter().enumerate() {
        let claims = signer.verify_access(token, NOW).unwrap();
        assert_eq!(claims.did, format!("did:example:{i}"));
    }
    assert!(signer.verified_tokens().len() <= VERIFIED_TOKENS);
    assert!(signer.verify_access(&access, NOW + 2).is_ok());
}
