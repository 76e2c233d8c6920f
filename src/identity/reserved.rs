//! Names no account may take in front of this server's handle domains (`admin.pds.example`),
//! unless the administrator gives it: service and protocol words, roles that imply
//! authority, and common infrastructure host names, so that a handle cannot pass for the
//! server or its operators. Our own list, in the spirit of the reference PDS's.

/// Compared against the lowercase label in front of a service domain.
const RESERVED: &[&str] = &[
    // The network and its software.
    "atproto", "at-proto", "bluesky", "bsky", "bskyapp", "bsky-app", "bsky-social", "pds",
    "plc", "did", "relay", "appview", "app-view", "firehose", "feed", "feeds", "labeler",
    "labelers", "ozone", "rookery", "pocketbase", "xrpc", "lexicon", "handle", "handles",
    // Authority.
    "admin", "admins", "administrator", "administrators", "root", "sysadmin", "superuser",
    "owner", "operator", "moderator", "moderators", "moderation", "mod", "mods", "staff",
    "team", "official", "verified", "verification", "security", "safety", "trust",
    "trustandsafety", "abuse", "legal", "privacy", "compliance", "support", "help",
    "helpdesk", "contact", "info", "billing", "payments", "account", "accounts", "system",
    "service", "services", "status", "announcements", "news", "press", "noreply",
    "no-reply", "postmaster", "hostmaster", "webmaster", "mailer-daemon",
    // Infrastructure host names.
    "www", "www1", "www2", "mail", "email", "smtp", "imap", "pop", "pop3", "mx", "ns",
    "ns1", "ns2", "dns", "ftp", "sftp", "ssh", "vpn", "api", "apis", "dev", "staging",
    "prod", "production", "test", "testing", "beta", "alpha", "demo", "docs", "blog",
    "cdn", "static", "assets", "media", "images", "img", "video", "upload", "uploads",
    "download", "downloads", "login", "logout", "signin", "signup", "register", "auth",
    "oauth", "sso", "wellknown", "well-known", "localhost", "server", "servers", "host",
    "hosting", "node", "nodes", "app", "apps", "web", "mobile", "ios", "android",
    // Meaningless or misleading on their own.
    "null", "undefined", "none", "nobody", "anonymous", "unknown", "invalid", "everyone",
    "here", "all", "self", "me", "you",
];

/// Whether `label` (lowercase) is reserved.
pub fn is_reserved(label: &str) -> bool {
    RESERVED.contains(&label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_lowercase_unique_and_usable_as_labels() {
        let mut seen = std::collections::HashSet::new();
        for name in RESERVED {
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name}"
            );
        }
        assert!(is_reserved("admin"));
        assert!(is_reserved("bsky"));
        assert!(!is_reserved("alice"));
    }
}
