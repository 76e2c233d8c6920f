//! The rules on what a person may choose for an account: handle, email address and password,
//! as the reference PDS applies them. Pure functions; the flows call them and so do the
//! handlers that only need to check input before calling a flow.

use super::Error;
use crate::syntax::Handle;

/// Shortest account password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest account password accepted, as the reference.
pub const MAX_PASSWORD_LEN: usize = 256;
/// Shortest label in front of a service handle domain.
pub const MIN_SERVICE_HANDLE_LABEL: usize = 3;
/// Longest label in front of a service handle domain.
pub const MAX_SERVICE_HANDLE_LABEL: usize = 18;

/// Longest app password name accepted.
pub const MAX_APP_PASSWORD_NAME_LEN: usize = 100;

/// A new app password's name, trimmed: 1 to [`MAX_APP_PASSWORD_NAME_LEN`] characters.
pub fn app_password_name(raw: &str) -> Result<&str, Error> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_APP_PASSWORD_NAME_LEN {
        return Err(Error::Refused(format!(
            "App password name must be 1 to {MAX_APP_PASSWORD_NAME_LEN} characters"
        )));
    }
    Ok(name)
}

/// Checks a new account password's length.
pub fn check_password(password: &str) -> Result<(), Error> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        Err(Error::InvalidPassword(format!(
            "Password must be at least {MIN_PASSWORD_LEN} characters"
        )))
    } else if len > MAX_PASSWORD_LEN {
        Err(Error::InvalidPassword("Password too long".into()))
    } else {
        Ok(())
    }
}

/// A plausible e-mail address: one `@`, a non-empty local part, a dotted domain, no spaces
/// or control characters. Returns it lowercased.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let ok = !local.is_empty()
        && local.len() <= 64
        && email.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(email)
}

/// The service handle domain (`.test`, `.pds.example.com`) `handle` is under, if any. The
/// bare domain (`test` for `.test`) counts as under it too, as in the reference.
pub fn service_domain<'a>(handle: &Handle, domains: &'a [String]) -> Option<&'a str> {
    let h = handle.as_str();
    domains
        .iter()
        .map(String::as_str)
        .find(|d| h.ends_with(d) || Some(h) == d.strip_prefix('.'))
}

/// Parses and lowercases `input`, refusing syntax errors and disallowed top-level domains.
pub fn normalize_handle(input: &str) -> Result<Handle, Error> {
    let handle: Handle = input
        .trim()
        .to_ascii_lowercase()
        .parse()
        .map_err(|e: crate::syntax::Error| Error::InvalidHandle(format!("Invalid handle: {e}")))?;
    if handle.has_disallowed_tld() {
        return Err(Error::InvalidHandle(
            "Handle TLD is invalid or disallowed".into(),
        ));
    }
    Ok(handle)
}

/// The constraints on a handle under the service domain `domain`: one label of 3 to 18
/// characters in front of it, and (unless `allow_reserved`, which the administrator has)
/// not a reserved name (see [`crate::identity::reserved`]).
pub fn check_service_handle(
    handle: &Handle,
    domain: &str,
    allow_reserved: bool,
) -> Result<(), Error> {
    let front = handle.as_str().strip_suffix(domain).unwrap_or_default();
    if front.contains('.') {
        return Err(Error::InvalidHandle("Invalid characters in handle".into()));
    }
    if front.len() < MIN_SERVICE_HANDLE_LABEL {
        return Err(Error::InvalidHandle("Handle too short".into()));
    }
    if front.len() > MAX_SERVICE_HANDLE_LABEL {
        return Err(Error::InvalidHandle("Handle too long".into()));
    }
    if !allow_reserved && crate::identity::reserved::is_reserved(front) {
        return Err(Error::HandleNotAvailable("Reserved handle".into()));
    }
    Ok(())
}

/// The handle of a new account: valid, under one of the service's handle `domains`, and
/// passing [`check_service_handle`].
pub fn new_account_handle(raw: &str, domains: &[String]) -> Result<Handle, Error> {
    let handle = normalize_handle(raw)?;
    let domain = service_domain(&handle, domains).ok_or(Error::UnsupportedDomain)?;
    check_service_handle(&handle, domain, false)?;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Handle {
        s.parse().unwrap()
    }

    fn message(err: Error) -> String {
        match err {
            Error::InvalidHandle(m) | Error::HandleNotAvailable(m) | Error::InvalidPassword(m) => m,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn service_domains() {
        let domains = vec![".test".to_owned(), ".pds.example.com".to_owned()];
        assert_eq!(service_domain(&h("alice.test"), &domains), Some(".test"));
        assert_eq!(
            service_domain(&h("bob.pds.example.com"), &domains),
            Some(".pds.example.com")
        );
        assert_eq!(
            service_domain(&h("pds.example.com"), &domains),
            Some(".pds.example.com")
        );
        assert_eq!(service_domain(&h("alice.example.org"), &domains), None);
        assert_eq!(service_domain(&h("alicetest.com"), &domains), None);
    }

    #[test]
    fn normalising() {
        assert_eq!(normalize_handle(" Alice.TEST ").unwrap(), h("alice.test"));
        for bad in [
            "alice",
            "-a.test",
            "a..test",
            "alice.test.",
            "al ice.test",
            "",
        ] {
            let err = normalize_handle(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidHandle(_)), "{bad}: {err:?}");
        }
        let err = normalize_handle("alice.example").unwrap_err();
        assert_eq!(message(err), "Handle TLD is invalid or disallowed");
    }

    #[test]
    fn service_handle_constraints() {
        assert!(check_service_handle(&h("abc.test"), ".test", false).is_ok());
        assert!(check_service_handle(&h("a23456789012345678.test"), ".test", false).is_ok());
        let msg = |s: &str| message(check_service_handle(&h(s), ".test", false).unwrap_err());
        assert_eq!(msg("ab.test"), "Handle too short");
        assert_eq!(msg("a234567890123456789.test"), "Handle too long");
        assert_eq!(msg("a.bcd.test"), "Invalid characters in handle");
        let reserved = check_service_handle(&h("admin.test"), ".test", false).unwrap_err();
        assert!(
            matches!(&reserved, Error::HandleNotAvailable(m) if m == "Reserved handle"),
            "{reserved:?}"
        );
        assert!(check_service_handle(&h("admin.test"), ".test", true).is_ok());
    }

    #[test]
    fn new_account_handles() {
        let domains = vec![".test".to_owned()];
        assert_eq!(
            new_account_handle("Alice.Test", &domains).unwrap(),
            h("alice.test")
        );
        assert!(matches!(
            new_account_handle("alice.example.com", &domains),
            Err(Error::UnsupportedDomain)
        ));
        assert!(matches!(
            new_account_handle("support.test", &domains),
            Err(Error::HandleNotAvailable(_))
        ));
        assert!(matches!(
            new_account_handle("a b.test", &domains),
            Err(Error::InvalidHandle(_))
        ));
    }

    #[test]
    fn passwords_and_emails() {
        assert!(check_password("12345678").is_ok());
        assert!(check_password("1234567").is_err());
        assert!(check_password(&"x".repeat(257)).is_err());
        assert_eq!(
            normalize_email(" Bob@Example.COM ").as_deref(),
            Some("bob@example.com")
        );
        for bad in [
            "bob",
            "@example.com",
            "bob@example",
            "bob@@example.com",
            "b ob@example.com",
            "bob@.example.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }
}
