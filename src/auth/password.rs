//! Account passwords and app passwords.
//!
//! Passwords are hashed with argon2id into a PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) with the OWASP Password Storage Cheat
//! Sheet's first recommended configuration: 19 MiB of memory, 2 iterations, 1 lane, a
//! 128-bit random salt and a 256-bit output. That costs a few tens of milliseconds per
//! check on one core, bounded memory per concurrent login, and is far beyond what offline
//! guessing can afford at scale. The parameters live in each PHC string, so they can be
//! raised later without invalidating stored hashes. (The reference PDS uses scrypt.)
//!
//! App passwords have the reference's shape: 16 characters from the lowercase RFC 4648
//! base32 alphabet (`a-z`, `2-7`, 80 bits) in four dash-separated groups. With 80 random
//! bits no slow hash is needed: the account database stores a SHA-256 keyed by the DID
//! (`crate::accounts::app_password_hash`), so a login finds its app password in one lookup.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use rand::rngs::OsRng;

/// Memory cost in KiB (19 MiB).
pub(crate) const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Number of passes over memory.
pub(crate) const ARGON2_ITERATIONS: u32 = 2;
/// Degree of parallelism (lanes).
pub(crate) const ARGON2_PARALLELISM: u32 = 1;
/// Hash output length in bytes.
pub(crate) const ARGON2_OUTPUT_LEN: usize = 32;
/// Salt length in bytes.
const SALT_LEN: usize = 16;

/// The characters of an app password: RFC 4648 base32, lowercase.
const APP_PASSWORD_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A password could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The hasher refused the input or parameters (e.g. a password beyond argon2's limit).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        Some(ARGON2_OUTPUT_LEN),
    )
    .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with argon2id and a fresh random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let hash = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the argon2id PHC string `phc`. The parameters are read from
/// the string; the final comparison is constant-time (done by the `password-hash` crate).
/// Anything that is not an argon2id PHC string is simply a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A new app password, `xxxx-xxxx-xxxx-xxxx` over `a-z2-7` (80 random bits).
pub fn generate_app_password() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    let mut password = String::with_capacity(19);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            password.push('-');
        }
        // 256 is a multiple of 32, so the low five bits are uniform.
        let index = usize::from(byte & 0x1f);
        password.push(char::from(APP_PASSWORD_ALPHABET[index]));
    }
    password
}

/// Whether `s` looks like an app password: four groups of four lowercase ASCII letters or
/// digits, joined by `-` (a little wider than what [`generate_app_password`] emits, like the
/// format check clients make).
pub fn is_app_password_format(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 4
        && groups.iter().all(|group| {
            group.len() == 4
                && group
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format `generate_app_password` promises: `^[a-z2-7]{4}(-[a-z2-7]{4}){3}$`.
    fn matches_generated_format(s: &str) -> bool {
        let bytes = s.as_bytes();
        bytes.len() == 19
            && bytes.iter().enumerate().all(|(i, &b)| {
                if i % 5 == 4 {
                    b == b'-'
                } else {
                    b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)
                }
            })
    }

    #[test]
    fn hash_and_verify() {
        let phc = hash_password("correct horse battery staple").expect("hash");
        assert!(
            phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "unexpected PHC prefix: {phc}"
        );
        let parsed = PasswordHash::new(&phc).expect("PHC string");
        assert_eq!(parsed.salt.map(|s| s.len()), Some(22)); // 16 bytes, unpadded base64
        assert_eq!(parsed.hash.map(|h| h.len()), Some(ARGON2_OUTPUT_LEN));

        assert!(verify_password("correct horse battery staple", &phc));
        assert!(!verify_password("correct horse battery stapler", &phc));
        assert!(!verify_password("", &phc));

        // Salted: the same password never hashes the same twice.
        let again = hash_password("correct horse battery staple").expect("hash");
        assert_ne!(phc, again);
        assert!(verify_password("correct horse battery staple", &again));
    }

    /// A hash made with other (cheap) parameters still verifies: verification reads the
    /// parameters from the PHC string rather than using ours.
    #[test]
    fn verifies_with_parameters_from_the_string() {
        let salt = SaltString::encode_b64(b"somesaltsomesalt").expect("salt");
        let params = Params::new(64, 1, 1, Some(32)).expect("params");
        let cheap = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"password", &salt)
            .expect("hash")
            .to_string();
        assert!(cheap.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(verify_password("password", &cheap));
        assert!(!verify_password("passwore", &cheap));
    }

    #[test]
    fn rejects_other_hashes_and_garbage() {
        let salt = SaltString::encode_b64(b"somesaltsomesalt").expect("salt");
        let params = Params::new(64, 1, 1, None).expect("params");
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"password", &salt)
            .expect("hash")
            .to_string();
        assert!(argon2i.starts_with("$argon2i$"));
        assert!(!verify_password("password", &argon2i));
        for phc in [
            "",
            "password",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA",
        ] {
            assert!(!verify_password("password", phc), "{phc}");
        }
    }

    #[test]
    fn empty_and_unicode_passwords() {
        let phc = hash_password("").expect("hash");
        assert!(verify_password("", &phc));
        assert!(!verify_password(" ", &phc));
        let phc = hash_password("pässwörd 🔑").expect("hash");
        assert!(verify_password("pässwörd 🔑", &phc));
        assert!(!verify_password("passwörd 🔑", &phc));
    }

    #[test]
    fn app_password_shape() {
        let mut seen = [false; 256];
        let mut all = Vec::new();
        for _ in 0..200 {
            let pw = generate_app_password();
            assert!(matches_generated_format(&pw), "{pw}");
            assert!(is_app_password_format(&pw), "{pw}");
            for b in pw.bytes() {
                seen[usize::from(b)] = true;
            }
            all.push(pw);
        }
        // Every base32 character turns up (3200 draws; missing one is ~1e-42 likely).
        for &c in APP_PASSWORD_ALPHABET {
            assert!(seen[usize::from(c)], "never saw {}", char::from(c));
        }
        for c in [b'0', b'1', b'8', b'9'] {
            assert!(!seen[usize::from(c)]);
        }
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 200);
    }

    #[test]
    fn app_password_format_check() {
        for good in ["abcd-efgh-2345-6789", "aaaa-0000-zzzz-1111"] {
            assert!(is_app_password_format(good), "{good}");
        }
        for bad in [
            "",
            "abcd-efgh-2345",
            "abcd-efgh-2345-67890",
            "abcd-efgh-2345-678",
            "abcd-efgh-2345-678-",
            "abcd-efgh-2345-6789-abcd",
            "ABCD-efgh-2345-6789",
            "abcd_efgh_2345_6789",
            "abcdefgh23456789",
            "abcd-efgh-2345-67é",
            " bcd-efgh-2345-6789",
        ] {
            assert!(!is_app_password_format(bad), "{bad}");
        }
    }

    #[test]
    fn app_passwords_hash_like_passwords() {
        let pw = generate_app_password();
        let phc = hash_password(&pw).expect("hash");
        assert!(verify_password(&pw, &phc));
        assert!(!verify_password(&generate_app_password(), &phc));
    }
}
