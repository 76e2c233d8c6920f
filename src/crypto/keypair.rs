//! Private signing keys.

use super::{Algorithm, Error, PublicKey};
use k256::ecdsa::signature::Signer;
use rand::rngs::OsRng;

/// A private signing key on one of the two atproto curves.
///
/// `Debug` shows only the public key, never the secret.
#[derive(Clone)]
pub enum Keypair {
    K256(k256::ecdsa::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({})", self.public_key().to_did_key())
    }
}

impl Keypair {
    /// A fresh random key from the operating system's generator.
    pub fn generate(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::K256 => Keypair::K256(k256::ecdsa::SigningKey::random(&mut OsRng)),
            Algorithm::P256 => Keypair::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
        }
    }

    /// Loads a key from its 32-byte big-endian scalar.
    pub fn from_private_bytes(algorithm: Algorithm, bytes: &[u8]) -> Result<Self, Error> {
        // The underlying constructors left-pad short input; a stored key is always 32 bytes.
        if bytes.len() != 32 {
            return Err(Error::InvalidKey(algorithm));
        }
        let invalid = |_| Error::InvalidKey(algorithm);
        Ok(match algorithm {
            Algorithm::K256 => {
                Keypair::K256(k256::ecdsa::SigningKey::from_slice(bytes).map_err(invalid)?)
            }
            Algorithm::P256 => {
                Keypair::P256(p256::ecdsa::SigningKey::from_slice(bytes).map_err(invalid)?)
            }
        })
    }

    /// Loads a key from the hex form of its 32-byte scalar (surrounding whitespace, such as a
    /// trailing newline in a key file, is ignored).
    pub fn from_private_hex(algorithm: Algorithm, hex_str: &str) -> Result<Self, Error> {
        let bytes = hex::decode(hex_str.trim()).map_err(|_| Error::InvalidKey(algorithm))?;
        Self::from_private_bytes(algorithm, &bytes)
    }

    /// The 32-byte big-endian private scalar (for storage).
    pub fn to_private_bytes(&self) -> [u8; 32] {
        match self {
            Keypair::K256(k) => k.to_bytes().into(),
            Keypair::P256(k) => k.to_bytes().into(),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Keypair::K256(_) => Algorithm::K256,
            Keypair::P256(_) => Algorithm::P256,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            Keypair::K256(k) => PublicKey::K256(*k.verifying_key()),
            Keypair::P256(k) => PublicKey::P256(*k.verifying_key()),
        }
    }

    /// ECDSA (RFC 6979 deterministic nonce) over SHA-256(`msg`), as 64 bytes `r ‖ s`,
    /// always in low-S form.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        match self {
            Keypair::K256(k) => {
                let sig: k256::ecdsa::Signature = k.sign(msg);
                sig.normalize_s().unwrap_or(sig).to_bytes().into()
            }
            Keypair::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                sig.normalize_s().unwrap_or(sig).to_bytes().into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the `s` half of a compact signature is at most n/2 for the curve.
    fn is_low_s(algorithm: Algorithm, sig: &[u8; 64]) -> bool {
        match algorithm {
            Algorithm::K256 => k256::ecdsa::Signature::from_slice(sig)
                .expect("valid signature")
                .normalize_s()
                .is_none(),
            Algorithm::P256 => p256::ecdsa::Signature::from_slice(sig)
                .expect("valid signature")
                .normalize_s()
                .is_none(),
        }
    }

    #[test]
    fn sign_verify_round_trip_always_low_s() {
        for algorithm in [Algorithm::K256, Algorithm::P256] {
            let keypair = Keypair::generate(algorithm);
            assert_eq!(keypair.algorithm(), algorithm);
            let public = keypair.public_key();
            assert_eq!(public.algorithm(), algorithm);
            for i in 0..200u32 {
                let msg = format!("message number {i}");
                let sig = keypair.sign(msg.as_bytes());
                assert!(is_low_s(algorithm, &sig), "{algorithm:?} #{i}");
                assert_eq!(public.verify(msg.as_bytes(), &sig), Ok(()));
                assert_eq!(
                    public.verify(format!("message number {}", i + 1).as_bytes(), &sig),
                    Err(Error::InvalidSignature)
                );
                // The high-S twin of a valid signature must be refused.
                let twin = high_s_twin(algorithm, &sig);
                assert_eq!(public.verify(msg.as_bytes(), &twin), Err(Error::HighS));
            }
        }
    }

    /// (r, n - s): the other, high-S, signature for the same message and key.
    fn high_s_twin(algorithm: Algorithm, sig: &[u8; 64]) -> Vec<u8> {
        match algorithm {
            Algorithm::K256 => {
                let s = k256::ecdsa::Signature::from_slice(sig).expect("sig");
                let (r, s) = (s.r(), -*s.s());
                let twin =
                    k256::ecdsa::Signature::from_scalars(r.to_bytes(), s.to_bytes()).expect("twin");
                twin.to_bytes().to_vec()
            }
            Algorithm::P256 => {
                let s = p256::ecdsa::Signature::from_slice(sig).expect("sig");
                let (r, s) = (s.r(), -*s.s());
                let twin =
                    p256::ecdsa::Signature::from_scalars(r.to_bytes(), s.to_bytes()).expect("twin");
                twin.to_bytes().to_vec()
            }
        }
    }

    #[test]
    fn tampered_message_and_wrong_key_fail() {
        for algorithm in [Algorithm::K256, Algorithm::P256] {
            let keypair = Keypair::generate(algorithm);
            let sig = keypair.sign(b"hello world");
            assert_eq!(keypair.public_key().verify(b"hello world", &sig), Ok(()));
            assert_eq!(
                keypair.public_key().verify(b"hello world!", &sig),
                Err(Error::InvalidSignature)
            );
            let other = Keypair::generate(algorithm);
            assert_eq!(
                other.public_key().verify(b"hello world", &sig),
                Err(Error::InvalidSignature)
            );
            let mut flipped = sig;
            flipped[10] ^= 1;
            assert!(
                keypair
                    .public_key()
                    .verify(b"hello world", &flipped)
                    .is_err()
            );
            assert_eq!(
                keypair.public_key().verify(b"hello world", &sig[..63]),
                Err(Error::MalformedSignature(63))
            );
            assert_eq!(
                keypair.public_key().verify(b"hello world", &[0u8; 64]),
                Err(Error::MalformedSignature(64))
            );
        }
    }

    #[test]
    fn private_key_round_trip_and_rejects_bad_bytes() {
        for algorithm in [Algorithm::K256, Algorithm::P256] {
            let keypair = Keypair::generate(algorithm);
            let bytes = keypair.to_private_bytes();
            let again = Keypair::from_private_bytes(algorithm, &bytes).expect("reload");
            assert_eq!(again.public_key(), keypair.public_key());
            let again = Keypair::from_private_hex(algorithm, &hex::encode(bytes)).expect("hex");
            assert_eq!(again.public_key(), keypair.public_key());
            // Deterministic signatures: same key, same message, same bytes.
            assert_eq!(again.sign(b"x"), keypair.sign(b"x"));

            assert_eq!(
                Keypair::from_private_bytes(algorithm, &[0u8; 32]).map(|k| k.algorithm()),
                Err(Error::InvalidKey(algorithm))
            );
            assert_eq!(
                Keypair::from_private_bytes(algorithm, &[0xff; 32]).map(|k| k.algorithm()),
                Err(Error::InvalidKey(algorithm))
            );
            assert_eq!(
                Keypair::from_private_bytes(algorithm, &bytes[..31]).map(|k| k.algorithm()),
                Err(Error::InvalidKey(algorithm))
            );
            assert_eq!(
                Keypair::from_private_hex(algorithm, "zz").map(|k| k.algorithm()),
                Err(Error::InvalidKey(algorithm))
            );
            let debug = format!("{keypair:?}");
            assert!(!debug.contains(&hex::encode(bytes)));
            assert!(debug.contains("did:key:z"));
        }
    }
}
