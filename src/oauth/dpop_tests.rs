use super::*;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer;
use serde_json::{Value, json};

const URL: &str = "https://pds.example/oauth/token";
const NOW: i64 = 1_700_000_000;

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn jwk(key: &SigningKey) -> Value {
    let p = key.verifying_key().to_encoded_point(false);
    json!({"kty": "EC", "crv": "P-256", "x": b64(p.x().unwrap()), "y": b64(p.y().unwrap())})
}

fn sign(key: &SigningKey, header: Value, claims: Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

fn proof(key: &SigningKey, claims: Value) -> String {
    sign(
        key,
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk(key)}),
        claims,
    )
}

fn claims(v: &DpopVerifier, jti: &str) -> Value {
    json!({"jti": jti, "htm": "POST", "htu": URL, "iat": NOW, "nonce": v.nonce(NOW)})
}

fn ctx() -> ProofContext<'static> {
    ProofContext {
        method: "POST",
        url: URL,
        access_token: None,
    }
}

fn code(r: Result<DpopProof, OAuthError>) -> &'static str {
    r.err().map(|e| e.code).unwrap_or("ok")
}

#[test]
fn accepts_a_good_proof_once() {
    let v = DpopVerifier::new();
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let p = proof(&key, claims(&v, "a"));
    let ok = v.verify(&p, &ctx(), NOW).unwrap();
    let expected: Jwk = serde_json::from_value(jwk(&key)).unwrap();
    assert_eq!(ok.jkt, expected.thumbprint().unwrap());
    assert_eq!(code(v.verify(&p, &ctx(), NOW)), "invalid_dpop_proof");
}

#[test]
fn refuses_mismatches() {
    let v = DpopVerifier::new();
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let mut c = claims(&v, "m");
    c["htm"] = json!("GET");
    assert_eq!(
        code(v.verify(&proof(&key, c), &ctx(), NOW)),
        "invalid_dpop_proof"
    );
    let mut c = claims(&v, "u");
    c["htu"] = json!("https://pds.example/oauth/par");
    assert_eq!(
        code(v.verify(&proof(&key, c), &ctx(), NOW)),
        "invalid_dpop_proof"
    );
    // Query and fragment do not count in htu.
    let mut c = claims(&v, "q");
    c["htu"] = json!(format!("{URL}?x=1#f"));
    assert_eq!(code(v.verify(&proof(&key, c), &ctx(), NOW)), "ok");
    let mut c = claims(&v, "old");
    c["iat"] = json!(NOW - 600);
    assert_eq!(
        code(v.verify(&proof(&key, c), &ctx(), NOW)),
        "invalid_dpop_proof"
    );
    let mut c = claims(&v, "n");
    c.as_object_mut().unwrap().remove("nonce");
    assert_eq!(
        code(v.verify(&proof(&key, c), &ctx(), NOW)),
        "use_dpop_nonce"
    );
    let mut c = claims(&v, "n2");
    c["nonce"] = json!("stale");
    assert_eq!(
        code(v.verify(&proof(&key, c), &ctx(), NOW)),
        "use_dpop_nonce"
    );
    // A nonce from the previous window is still good; one from long ago is not.
    let mut c = claims(&v, "n3");
    c["nonce"] = json!(v.nonce(NOW - NONCE_WINDOW_SECS));
    assert_eq!(code(v.verify(&proof(&key, c), &ctx(), NOW)), "ok");
    let mut c = claims(&v, "n4");
    c["nonce"] = json!(v.nonce(NOW - 10 * NONCE_WINDOW_SECS));
    assert_eq!(
        code(v.verify(&proof(&key, c), &ctx(), NOW)),
        "use_dpop_nonce"
    );
}

#[test]
fn checks_ath_and_signature() {
    let v = DpopVerifier::new();
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let token_ctx = ProofContext {
        method: "POST",
        url: URL,
        access_token: Some("tok"),
    };
    let mut c = claims(&v, "a1");
    c["ath"] = json!(sha256_b64("tok"));
    assert_eq!(code(v.verify(&proof(&key, c), &token_ctx, NOW)), "ok");
    let mut c = claims(&v, "a2");
    c["ath"] = json!(sha256_b64("other"));
    assert_eq!(
        code(v.verify(&proof(&key, c), &token_ctx, NOW)),
        "invalid_dpop_proof"
    );
    let c = claims(&v, "a3");
    assert_eq!(
        code(v.verify(&proof(&key, c), &token_ctx, NOW)),
        "invalid_dpop_proof"
    );
    // Signed by another key than the one in the header.
    let other = SigningKey::random(&mut rand::rngs::OsRng);
    let forged = sign(
        &other,
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk(&key)}),
        claims(&v, "f"),
    );
    assert_eq!(code(v.verify(&forged, &ctx(), NOW)), "invalid_dpop_proof");
    // Wrong typ, alg none, a private key in the header.
    let wrong_typ = sign(
        &key,
        json!({"typ": "jwt", "alg": "ES256", "jwk": jwk(&key)}),
        claims(&v, "t"),
    );
    assert_eq!(
        code(v.verify(&wrong_typ, &ctx(), NOW)),
        "invalid_dpop_proof"
    );
    let none = sign(
        &key,
        json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk(&key)}),
        claims(&v, "z"),
    );
    assert_eq!(code(v.verify(&none, &ctx(), NOW)), "invalid_dpop_proof");
    let mut private = jwk(&key);
    private["d"] = json!(b64(&key.to_bytes()));
    let leaked = sign(
        &key,
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}),
        claims(&v, "d"),
    );
    assert_eq!(code(v.verify(&leaked, &ctx(), NOW)), "invalid_dpop_proof");
    assert_eq!(code(v.verify("a.b", &ctx(), NOW)), "invalid_dpop_proof");
}

#[test]
fn thumbprint_matches_rfc7638() {
    // The public key of RFC 9449's examples and its `jkt` (§6.1).
    let key: Jwk = serde_json::from_value(json!({
        "kty": "EC", "crv": "P-256",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"
    }))
    .unwrap();
    let canonical = r#"{"crv":"P-256","kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}"#;
    assert_eq!(key.thumbprint().unwrap(), sha256_b64(canonical));
    assert_eq!(
        key.thumbprint().unwrap(),
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    );
}
