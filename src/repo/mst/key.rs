//! MST keys: repository paths (`collection/rkey`), their tree height, and prefix sharing.

use sha2::{Digest, Sha256};

use super::Error;

/// Longest key the tree accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// The layer a key lives on: leading zero bits of SHA-256(key), two bits per layer (fanout 4).
pub fn key_height(key: &[u8]) -> u8 {
    let digest = Sha256::digest(key);
    let mut zeros = 0u32;
    for byte in digest {
        if byte == 0 {
            zeros += 8;
        } else {
            zeros += byte.leading_zeros();
            break;
        }
    }
    // At most 256 / 2 = 128, which fits.
    u8::try_from(zeros / 2).unwrap_or(u8::MAX)
}

/// Length in bytes of the common prefix of two keys.
pub fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn valid_part(part: &str) -> bool {
    !part.is_empty()
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'~'))
}

/// Whether `key` is a valid repository path: one `/` between a non-empty collection and a
/// non-empty record key, ASCII letters, digits and `.-_:~` only, at most [`MAX_KEY_LEN`] bytes.
pub fn is_valid_key(key: &str) -> bool {
    if key.len() > MAX_KEY_LEN {
        return false;
    }
    match key.split_once('/') {
        Some((collection, rkey)) => valid_part(collection) && valid_part(rkey),
        None => false,
    }
}

/// [`is_valid_key`] as a `Result`.
pub fn validate_key(key: &str) -> Result<(), Error> {
    if is_valid_key(key) {
        Ok(())
    } else {
        Err(Error::InvalidKey(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/fixtures/interop/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn key_heights_vectors() {
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(&fixture("mst/key_heights.json")).unwrap();
        assert_eq!(cases.len(), 9);
        for case in cases {
            let key = case["key"].as_str().unwrap();
            let height = case["height"].as_u64().unwrap();
            assert_eq!(u64::from(key_height(key.as_bytes())), height, "{key}");
        }
    }

    #[test]
    fn common_prefix_vectors() {
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(&fixture("mst/common_prefix.json")).unwrap();
        assert_eq!(cases.len(), 13);
        for case in cases {
            let left = case["left"].as_str().unwrap();
            let right = case["right"].as_str().unwrap();
            let len = case["len"].as_u64().unwrap() as usize;
            assert_eq!(common_prefix_len(left.as_bytes(), right.as_bytes()), len);
        }
    }

    #[test]
    fn example_keys_heights() {
        let text = fixture("mst/example_keys.txt");
        let mut count = 0;
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let digit = line.as_bytes()[1];
            assert!(digit.is_ascii_digit(), "{line}");
            assert_eq!(key_height(line.as_bytes()), digit - b'0', "{line}");
            assert!(is_valid_key(line), "{line}");
            count += 1;
        }
        assert_eq!(count, 156);
    }

    #[test]
    fn key_syntax() {
        assert!(is_valid_key("app.bsky.feed.post/3jui7kd54zh2y"));
        assert!(!is_valid_key("a/b/c"));
        assert!(!is_valid_key("/b"));
        assert!(!is_valid_key("a/"));
        let long = format!("c/{}", "a".repeat(MAX_KEY_LEN - 2));
        assert!(is_valid_key(&long));
        assert!(!is_valid_key(&format!("{long}a")));
        assert!(matches!(validate_key("x"), Err(Error::InvalidKey(k)) if k == "x"));
    }
}
