//! The admin token check: HTTP Basic auth with user `admin` and the configured admin
//! password, as the XRPC specification's "Admin Token" section and the reference PDS use
//! for `com.atproto.admin.*` and invite-code endpoints.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The only user name admin requests may use.
pub(crate) const ADMIN_USER: &str = "admin";

/// Whether an `Authorization` header value grants admin access: `Basic ` followed by the
/// standard, padded base64 of `admin:<admin_password>`. The scheme name is matched without
/// regard to case (RFC 9110 §11.1); the password, which may itself contain `:`, is compared
/// in constant time. An empty configured password never matches.
pub fn check_admin_basic(authorization_header: &str, admin_password: &str) -> bool {
    if admin_password.is_empty() {
        return false;
    }
    let Some((scheme, credentials)) = authorization_header.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = STANDARD.decode(credentials.trim_matches(' ')) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, password)) = decoded.split_once(':') else {
        return false;
    };
    // Evaluate both comparisons before combining them, so timing reveals neither.
    let user_ok = user == ADMIN_USER;
    let password_ok = constant_time_eq(password.as_bytes(), admin_password.as_bytes());
    user_ok & password_ok
}

/// Whether `given` is the admin password (`configured`; an empty one admits nobody), as a
/// sign-in form submits it.
pub fn check_admin_password(given: &str, configured: &str) -> bool {
    !configured.is_empty() & constant_time_eq(given.as_bytes(), configured.as_bytes())
}

/// Compares two secrets without data-dependent timing: both are hashed to fixed-length
/// digests first (so lengths do not leak either), then all 32 bytes are folded together.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let a = Sha256::digest(a);
    let b = Sha256::digest(b);
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> String {
        format!("Basic {}", STANDARD.encode(credentials))
    }

    /// The example from the XRPC specification.
    #[test]
    fn spec_example() {
        assert_eq!(
            basic("admin:secret-token"),
            "Basic YWRtaW46c2VjcmV0LXRva2Vu"
        );
        assert!(check_admin_basic(
            "Basic YWRtaW46c2VjcmV0LXRva2Vu",
            "secret-token"
        ));
    }

    #[test]
    fn good_and_bad_credentials() {
        let pw = "hunter2:with:colons";
        assert!(check_admin_basic(&basic("admin:hunter2:with:colons"), pw));
        assert!(check_admin_basic(
            &format!("basic {}", STANDARD.encode("admin:hunter2:with:colons")),
            pw
        ));
        assert!(check_admin_basic(
            &format!("BASIC  {} ", STANDARD.encode("admin:hunter2:with:colons")),
            pw
        ));
        for header in [
            basic("admin:hunter2"),
            basic("admin:hunter2:with:colons "),
            basic("admin:"),
            basic("Admin:hunter2:with:colons"),
            basic("root:hunter2:with:colons"),
            basic(":hunter2:with:colons"),
            basic("adminhunter2:with:colons"),
        ] {
            assert!(!check_admin_basic(&header, pw), "{header}");
        }
    }

    #[test]
    fn malformed_headers() {
        let pw = "secret-token";
        let encoded = STANDARD.encode("admin:secret-token");
        for header in [
            String::new(),
            "Basic".into(),
            "Basic ".into(),
            encoded.clone(),
            format!("Bearer {encoded}"),
            format!("Basic{encoded}"),
            "Basic !!!not-base64!!!".into(),
            "Basic YWRtaW46c2VjcmV0LXRva2Vu===".into(),
            "Basic YWRtaW46c2VjcmV0LXRva2V".into(),
            format!("Basic {}", STANDARD.encode(b"admin:\xff\xfe")),
            basic("admin"),
        ] {
            assert!(!check_admin_basic(&header, pw), "{header:?}");
        }
        // "admin:pw" needs padding; the unpadded form is refused.
        assert!(check_admin_basic("Basic YWRtaW46cHc=", "pw"));
        assert!(!check_admin_basic("Basic YWRtaW46cHc", "pw"));
        // URL-safe alphabet is not standard base64.
        let url_safe = STANDARD
            .encode("admin:??>>")
            .replace('/', "_")
            .replace('+', "-");
        assert_ne!(url_safe, STANDARD.encode("admin:??>>"));
        assert!(!check_admin_basic(&format!("Basic {url_safe}"), "??>>"));
        assert!(check_admin_basic(&basic("admin:??>>"), "??>>"));
    }

    #[test]
    fn empty_admin_password_never_matches() {
        assert!(!check_admin_basic(&basic("admin:"), ""));
        assert!(!check_admin_basic(&basic("admin:x"), ""));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
