//! Public keys: `did:key` / Multikey encodings, legacy DID-document keys, verification.

use super::{Algorithm, Error};
use k256::ecdsa::signature::Verifier;

/// Length of a compressed SEC1 point on either curve.
const COMPRESSED_LEN: usize = 33;
/// Length of an uncompressed SEC1 point on either curve.
const UNCOMPRESSED_LEN: usize = 65;
/// Length of a compact `r ‖ s` signature.
const SIGNATURE_LEN: usize = 64;

/// A public key on one of the two atproto curves.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    K256(k256::ecdsa::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_did_key())
    }
}

impl PublicKey {
    /// Which curve this key is on.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::K256(_) => Algorithm::K256,
            PublicKey::P256(_) => Algorithm::P256,
        }
    }

    /// Parses a SEC1 point (compressed or uncompressed) on the given curve.
    pub fn from_sec1_bytes(algorithm: Algorithm, bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != COMPRESSED_LEN && bytes.len() != UNCOMPRESSED_LEN {
            return Err(Error::InvalidKey(algorithm));
        }
        let invalid = |_| Error::InvalidKey(algorithm);
        Ok(match algorithm {
            Algorithm::K256 => {
                PublicKey::K256(k256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(invalid)?)
            }
            Algorithm::P256 => {
                PublicKey::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(invalid)?)
            }
        })
    }

    /// The 33-byte compressed SEC1 point.
    pub fn to_compressed_bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::K256(k) => k.to_encoded_point(true).as_bytes().to_vec(),
            PublicKey::P256(k) => k.to_encoded_point(true).as_bytes().to_vec(),
        }
    }

    /// The Multikey form, `z` + base58btc(multicodec prefix ‖ compressed point), as written in
    /// the `publicKeyMultibase` of a DID document's `Multikey` verification method.
    pub fn to_multikey(&self) -> String {
        let mut bytes = self.algorithm().multicodec_prefix().to_vec();
        bytes.extend_from_slice(&self.to_compressed_bytes());
        multibase::encode(multibase::Base::Base58Btc, bytes)
    }

    /// The `did:key:z…` form.
    pub fn to_did_key(&self) -> String {
        format!("did:key:{}", self.to_multikey())
    }

    /// Parses a Multikey string (`z…`): base58btc of a multicodec prefix and a compressed point.
    pub fn from_multikey(multikey: &str) -> Result<Self, Error> {
        let bytes = decode_base58btc(multikey)?;
        let (algorithm, point) = if let Some(rest) = strip(&bytes, Algorithm::K256) {
            (Algorithm::K256, rest)
        } else if let Some(rest) = strip(&bytes, Algorithm::P256) {
            (Algorithm::P256, rest)
        } else {
            return Err(match read_varint(&bytes) {
                Some(code) => Error::UnsupportedKeyType(code),
                None => Error::InvalidMultibase("no multicodec prefix".into()),
            });
        };
        // The specification writes keys compressed; anything else is not a canonical Multikey.
        if point.len() != COMPRESSED_LEN {
            return Err(Error::InvalidKey(algorithm));
        }
        Self::from_sec1_bytes(algorithm, point)
    }

    /// Parses a `did:key:z…` string.
    pub fn from_did_key(did: &str) -> Result<Self, Error> {
        let multikey = did
            .strip_prefix("did:key:")
            .ok_or_else(|| Error::InvalidDidKey("missing did:key: prefix".into()))?;
        Self::from_multikey(multikey).map_err(|e| match e {
            Error::InvalidMultibase(why) => Error::InvalidDidKey(why),
            other => other,
        })
    }

    /// Parses the legacy DID-document form (verification method types
    /// `EcdsaSecp256k1VerificationKey2019` / `EcdsaSecp256r1VerificationKey2019`): `z` +
    /// base58btc of the bare SEC1 point, compressed or uncompressed, with no multicodec prefix,
    /// so the curve has to come from the verification method's type.
    pub fn from_legacy_multibase(multibase: &str, algorithm: Algorithm) -> Result<Self, Error> {
        Self::from_sec1_bytes(algorithm, &decode_base58btc(multibase)?)
    }

    /// Checks a compact (64-byte `r ‖ s`) low-S ECDSA signature over SHA-256(`msg`).
    /// DER signatures and high-S signatures are rejected on both curves.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        if sig.len() != SIGNATURE_LEN {
            return Err(Error::MalformedSignature(sig.len()));
        }
        let malformed = |_| Error::MalformedSignature(sig.len());
        match self {
            PublicKey::K256(key) => {
                let sig = k256::ecdsa::Signature::from_slice(sig).map_err(malformed)?;
                if sig.normalize_s().is_some() {
                    return Err(Error::HighS);
                }
                key.verify(msg, &sig).map_err(|_| Error::InvalidSignature)
            }
            PublicKey::P256(key) => {
                let sig = p256::ecdsa::Signature::from_slice(sig).map_err(malformed)?;
                // p256's verifier accepts both forms; atproto does not.
                if sig.normalize_s().is_some() {
                    return Err(Error::HighS);
                }
                key.verify(msg, &sig).map_err(|_| Error::InvalidSignature)
            }
        }
    }
}

fn strip(bytes: &[u8], algorithm: Algorithm) -> Option<&[u8]> {
    bytes.strip_prefix(algorithm.multicodec_prefix().as_slice())
}

/// Decodes `z` + base58btc. Other multibase prefixes are refused: atproto keys are base58btc.
fn decode_base58btc(s: &str) -> Result<Vec<u8>, Error> {
    let body = s
        .strip_prefix('z')
        .ok_or_else(|| Error::InvalidMultibase("expected base58btc ('z') prefix".into()))?;
    multibase::Base::Base58Btc
        .decode(body)
        .map_err(|e| Error::InvalidMultibase(e.to_string()))
}

/// Reads an unsigned LEB128 varint (at most 9 bytes, as multiformats allows), only to name an
/// unsupported multicodec in an error.
fn read_varint(bytes: &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().take(9).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_strings() {
        assert!(matches!(
            PublicKey::from_did_key("did:web:example.com"),
            Err(Error::InvalidDidKey(_))
        ));
        assert!(matches!(
            PublicKey::from_did_key("did:key:"),
            Err(Error::InvalidDidKey(_))
        ));
        // base58btc has no '0', 'O', 'I' or 'l'.
        assert!(matches!(
            PublicKey::from_did_key("did:key:zQ3sh0OIl"),
            Err(Error::InvalidDidKey(_))
        ));
        // Not base58btc: base32 multibase of a valid key is refused.
        assert!(matches!(
            PublicKey::from_multikey("bAAAA"),
            Err(Error::InvalidMultibase(_))
        ));
        // An ed25519 did:key (multicodec 0xed) is well-formed but unsupported.
        assert_eq!(
            PublicKey::from_did_key("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"),
            Err(Error::UnsupportedKeyType(0xed))
        );
        // Correct prefix, truncated point.
        let mut bytes = vec![0xe7, 0x01, 0x02];
        bytes.extend_from_slice(&[0x11; 10]);
        let short = multibase::encode(multibase::Base::Base58Btc, &bytes);
        assert_eq!(
            PublicKey::from_multikey(&short),
            Err(Error::InvalidKey(Algorithm::K256))
        );
        // Right length, but x = 2^256 - 1 is not a field element of P-256 (it is >= p).
        let mut bytes = vec![0x80, 0x24, 0x02];
        bytes.extend_from_slice(&[0xff; 32]);
        let off_curve = multibase::encode(multibase::Base::Base58Btc, &bytes);
        assert_eq!(
            PublicKey::from_multikey(&off_curve),
            Err(Error::InvalidKey(Algorithm::P256))
        );
        assert_eq!(
            PublicKey::from_legacy_multibase("z", Algorithm::K256),
            Err(Error::InvalidKey(Algorithm::K256))
        );
        assert_eq!(read_varint(&[0x80, 0x80]), None);
        assert_eq!(read_varint(&[0x80, 0x24]), Some(0x1200));
    }

    #[test]
    fn uncompressed_multikey_is_refused_but_legacy_accepts_it() {
        let legacy = "zQYEBzXeuTM9UR3rfvNag6L3RNAs5pQZyYPsomTsgQhsxLdEgCrPTLgFna8yqCnxPpNT7DBk6Ym3dgPKNu86vt9GR";
        let key = PublicKey::from_legacy_multibase(legacy, Algorithm::K256).expect("legacy key");
        let uncompressed = match &key {
            PublicKey::K256(k) => k.to_encoded_point(false).as_bytes().to_vec(),
            PublicKey::P256(_) => panic!("expected k256"),
        };
        assert_eq!(uncompressed.len(), UNCOMPRESSED_LEN);
        assert_eq!(
            multibase::encode(multibase::Base::Base58Btc, &uncompressed),
            legacy
        );
        let mut prefixed = vec![0xe7, 0x01];
        prefixed.extend_from_slice(&uncompressed);
        let multikey = multibase::encode(multibase::Base::Base58Btc, &prefixed);
        assert_eq!(
            PublicKey::from_multikey(&multikey),
            Err(Error::InvalidKey(Algorithm::K256))
        );
        // The same point is not a P-256 point.
        assert_eq!(
            PublicKey::from_legacy_multibase(legacy, Algorithm::P256),
            Err(Error::InvalidKey(Algorithm::P256))
        );
    }
}
