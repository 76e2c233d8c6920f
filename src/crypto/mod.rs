//! Keys, `did:key` and signatures, as the atproto cryptography specification defines them.
//!
//! Two curves are supported: secp256k1 ([`Algorithm::K256`], the default for new repo signing
//! keys) and NIST P-256 ([`Algorithm::P256`]). Signatures are ECDSA over the SHA-256 hash of
//! the message, written as 64 raw bytes `r ‖ s`; only the "low-S" form is produced or accepted
//! on either curve, so a signature cannot be re-shaped into a second valid one.
//!
//! Public keys travel as compressed points, either in a `did:key:z…` string or as the bare
//! `z…` "Multikey" used by current DID documents. Older DID documents carry the point without
//! a multicodec prefix (see [`PublicKey::from_legacy_multibase`]).

mod keypair;
mod public_key;

pub use keypair::Keypair;
pub use public_key::PublicKey;

/// The two elliptic curves atproto signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// secp256k1 ("k256"); what new accounts get by default.
    #[default]
    K256,
    /// NIST P-256 / secp256r1 ("p256").
    P256,
}

impl Algorithm {
    /// The JOSE `alg` name of ECDSA with SHA-256 on this curve (used in service-auth JWTs).
    pub fn jwt_alg(self) -> &'static str {
        match self {
            Algorithm::K256 => "ES256K",
            Algorithm::P256 => "ES256",
        }
    }

    /// Multicodec prefix (an unsigned varint) that marks a compressed public key of this curve
    /// in `did:key` and Multikey strings: `secp256k1-pub` (0xe7) and `p256-pub` (0x1200).
    fn multicodec_prefix(self) -> [u8; 2] {
        match self {
            Algorithm::K256 => [0xe7, 0x01],
            Algorithm::P256 => [0x80, 0x24],
        }
    }
}

/// Errors from parsing keys and checking signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The string is not `did:key:` followed by a base58btc (`z…`) multibase value.
    #[error("invalid did:key: {0}")]
    InvalidDidKey(String),
    /// Not a base58btc multibase string (`z` followed by base58btc characters).
    #[error("invalid multibase key encoding: {0}")]
    InvalidMultibase(String),
    /// The multicodec prefix names a key type atproto does not use (e.g. ed25519 = 0xed).
    #[error("unsupported key type (multicodec {0:#x})")]
    UnsupportedKeyType(u64),
    /// The bytes are not a valid key for the curve (not on the curve, wrong length, zero, …).
    #[error("invalid {0:?} key bytes")]
    InvalidKey(Algorithm),
    /// Not a 64-byte `r ‖ s` signature with non-zero scalars below the curve order
    /// (this includes DER-encoded signatures, which atproto does not accept).
    #[error("malformed signature: expected 64 bytes r||s, got {0} bytes")]
    MalformedSignature(usize),
    /// A mathematically valid signature in the "high-S" form, which atproto forbids.
    #[error("signature is not in low-S form")]
    HighS,
    /// The signature does not match the message and key.
    #[error("signature does not verify")]
    InvalidSignature,
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD;

    fn fixture(path: &str) -> serde_json::Value {
        let full = format!("{}/fixtures/interop/{path}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&full).expect("fixture readable");
        serde_json::from_str(&text).expect("fixture is JSON")
    }

    fn field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
        v[name].as_str().expect("string field")
    }

    fn low_s_twin(algorithm: Algorithm, sig: &[u8]) -> Vec<u8> {
        match algorithm {
            Algorithm::K256 => k256::ecdsa::Signature::from_slice(sig)
                .expect("compact signature")
                .normalize_s()
                .expect("was high-S")
                .to_bytes()
                .to_vec(),
            Algorithm::P256 => p256::ecdsa::Signature::from_slice(sig)
                .expect("compact signature")
                .normalize_s()
                .expect("was high-S")
                .to_bytes()
                .to_vec(),
        }
    }

    #[test]
    fn jwt_alg_names() {
        assert_eq!(Algorithm::K256.jwt_alg(), "ES256K");
        assert_eq!(Algorithm::P256.jwt_alg(), "ES256");
        assert_eq!(Algorithm::default(), Algorithm::K256);
    }

    #[test]
    fn signature_fixtures() {
        let cases = fixture("crypto/signature-fixtures.json");
        let cases = cases.as_array().expect("array");
        assert_eq!(cases.len(), 6);
        let (mut valid, mut invalid) = (0, 0);
        for case in cases {
            let comment = field(case, "comment");
            let msg = STANDARD_NO_PAD
                .decode(field(case, "messageBase64"))
                .expect("message base64");
            let sig = STANDARD_NO_PAD
                .decode(field(case, "signatureBase64"))
                .expect("signature base64");
            let algorithm = match field(case, "algorithm") {
                "ES256K" => Algorithm::K256,
                "ES256" => Algorithm::P256,
                other => panic!("unknown algorithm {other}"),
            };
            let expected = case["validSignature"].as_bool().expect("bool");
            let tags: Vec<&str> = case["tags"]
                .as_array()
                .expect("tags")
                .iter()
                .map(|t| t.as_str().expect("tag"))
                .collect();

            let from_did = PublicKey::from_did_key(field(case, "publicKeyDid")).expect(comment);
            let from_multibase =
                PublicKey::from_legacy_multibase(field(case, "publicKeyMultibase"), algorithm)
                    .expect(comment);
            assert_eq!(from_did, from_multibase, "{comment}");
            assert_eq!(from_did.algorithm(), algorithm, "{comment}");
            assert_eq!(algorithm.jwt_alg(), field(case, "algorithm"));

            for key in [&from_did, &from_multibase] {
                let result = key.verify(&msg, &sig);
                assert_eq!(result.is_ok(), expected, "{comment}: {result:?}");
                if tags.contains(&"high-s") {
                    assert_eq!(result, Err(Error::HighS), "{comment}");
                    // Its low-S twin (r, n - s) is valid: only the form was wrong.
                    assert_eq!(key.verify(&msg, &low_s_twin(algorithm, &sig)), Ok(()));
                }
                if tags.contains(&"der-encoded") {
                    assert_eq!(
                        result,
                        Err(Error::MalformedSignature(sig.len())),
                        "{comment}"
                    );
                }
            }
            if expected {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
        assert_eq!((valid, invalid), (2, 4));
    }

    #[test]
    fn w3c_did_key_k256() {
        let cases = fixture("crypto/w3c_didkey_K256.json");
        let cases = cases.as_array().expect("array");
        assert_eq!(cases.len(), 5);
        for case in cases {
            let expected = field(case, "publicDidKey");
            let keypair =
                Keypair::from_private_hex(Algorithm::K256, field(case, "privateKeyBytesHex"))
                    .expect("private key");
            let public = keypair.public_key();
            assert_eq!(public.to_did_key(), expected);
            assert_eq!(
                hex::encode(keypair.to_private_bytes()),
                field(case, "privateKeyBytesHex")
            );
            let parsed = PublicKey::from_did_key(expected).expect("parse did:key");
            assert_eq!(parsed, public);
            assert_eq!(parsed.algorithm(), Algorithm::K256);
            assert_eq!(parsed.to_did_key(), expected);
        }
    }

    #[test]
    fn w3c_did_key_p256() {
        let cases = fixture("crypto/w3c_didkey_P256.json");
        let cases = cases.as_array().expect("array");
        assert_eq!(cases.len(), 1);
        for case in cases {
            let expected = field(case, "publicDidKey");
            let private = multibase::Base::Base58Btc
                .decode(field(case, "privateKeyBytesBase58"))
                .expect("base58");
            let keypair = Keypair::from_private_bytes(Algorithm::P256, &private).expect("key");
            let public = keypair.public_key();
            assert_eq!(public.to_did_key(), expected);
            assert_eq!(keypair.to_private_bytes().as_slice(), private.as_slice());
            let parsed = PublicKey::from_did_key(expected).expect("parse did:key");
            assert_eq!(parsed, public);
            assert_eq!(parsed.algorithm(), Algorithm::P256);
        }
    }

    /// The current (Multikey) and legacy (uncompressed point) forms of the same DID document
    /// must give the same secp256k1 key.
    #[test]
    fn did_document_key_forms_agree() {
        let dir = "extra/indigo/atproto/identity/testdata";
        let mut keys = Vec::new();
        for name in ["did_plc_doc.json", "did_plc_doc_legacy.json"] {
            let doc = fixture(&format!("{dir}/{name}"));
            let methods = doc["verificationMethod"].as_array().expect("methods");
            assert_eq!(methods.len(), 1);
            let method = &methods[0];
            assert!(field(method, "id").ends_with("#atproto"));
            let multibase = field(method, "publicKeyMultibase");
            let key = match field(method, "type") {
                "Multikey" => PublicKey::from_multikey(multibase).expect("multikey"),
                "EcdsaSecp256k1VerificationKey2019" => {
                    PublicKey::from_legacy_multibase(multibase, Algorithm::K256).expect("legacy")
                }
                other => panic!("unexpected key type {other}"),
            };
            keys.push(key);
        }
        assert_eq!(keys[0], keys[1]);
        assert_eq!(keys[0].algorithm(), Algorithm::K256);
        assert_eq!(
            keys[1].to_multikey(),
            "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"
        );
    }
}
