//! Where a proxied request goes: the `atproto-proxy` header (`<did>#<service id>`, resolved
//! through the service's DID document) or the configured default for the method, and which
//! methods may not be proxied at all.

use url::Url;

use super::{DidDocResolver, ProxyConfig, ProxyError};
use crate::config::ServiceEndpoint;
use crate::identity::DidDocument;
use crate::syntax::{Did, Nsid};

/// The request header naming the service to forward to.
pub const PROXY_HEADER: &str = "atproto-proxy";

/// Account-management methods that are only ever served by the account's own PDS: never
/// proxied, and never granted a service token (`getServiceAuth` refuses them too).
/// The reference PDS's list.
pub const PROTECTED_METHODS: &[&str] = &[
    "com.atproto.admin.sendEmail",
    "com.atproto.identity.requestPlcOperationSignature",
    "com.atproto.identity.signPlcOperation",
    "com.atproto.identity.updateHandle",
    "com.atproto.server.activateAccount",
    "com.atproto.server.confirmEmail",
    "com.atproto.server.createAppPassword",
    "com.atproto.server.deactivateAccount",
    "com.atproto.server.getAccountInviteCodes",
    "com.atproto.server.listAppPasswords",
    "com.atproto.server.requestAccountDelete",
    "com.atproto.server.requestEmailConfirmation",
    "com.atproto.server.requestEmailUpdate",
    "com.atproto.server.revokeAppPassword",
    "com.atproto.server.updateEmail",
];

/// Whether `nsid` is one of the [`PROTECTED_METHODS`].
pub fn is_protected_method(nsid: &str) -> bool {
    PROTECTED_METHODS.contains(&nsid)
}

/// Whether calling `nsid` through the PDS needs a full session or a *privileged* app
/// password: every `chat.bsky.*` method (direct messages) and `createAccount` (whose service
/// token moves an account to another PDS).
///
/// The reference names its chat methods one by one; taking the whole namespace also covers
/// chat methods added after that list was written.
pub fn is_privileged_method(nsid: &str) -> bool {
    nsid.starts_with("chat.bsky.") || nsid == "com.atproto.server.createAccount"
}

/// A service to forward a request to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTarget {
    /// Where the service listens (scheme, host, port; any path is ignored).
    pub endpoint: Url,
    /// The service's DID.
    pub did: String,
    /// The service id from the `atproto-proxy` header, without `#` (e.g. `bsky_appview`);
    /// `None` for a configured default.
    pub service_id: Option<String>,
    /// The service id a configured default stands for (`bsky_appview`, `bsky_chat`,
    /// `atproto_labeler`), which OAuth `rpc:` permissions name in their `aud`.
    pub default_service_id: &'static str,
}

impl ProxyTarget {
    /// A configured service (no service id in the request), standing for `default_service_id`.
    pub fn from_endpoint(endpoint: &ServiceEndpoint, default_service_id: &'static str) -> Self {
        ProxyTarget {
            endpoint: endpoint.url.clone(),
            did: endpoint.did.clone(),
            service_id: None,
            default_service_id,
        }
    }

    /// The `aud` an OAuth `rpc:` permission must allow for this target: always
    /// `did#service_id`, the configured default's id when the client named none (as the
    /// reference checks scopes).
    pub fn permission_audience(&self) -> String {
        let id = self
            .service_id
            .as_deref()
            .unwrap_or(self.default_service_id);
        format!("{}#{id}", self.did)
    }

    /// The `aud` of the service token: `did#service_id` when the client named a service,
    /// else the bare DID, as the reference PDS issues it.
    pub fn audience(&self) -> String {
        match &self.service_id {
            Some(id) => format!("{}#{id}", self.did),
            None => self.did.clone(),
        }
    }
}

/// Parses an `atproto-proxy` value into the service DID and the service id (without `#`).
/// Checked: exactly one `#`, a DID before it, a non-empty fragment of URI fragment
/// characters after it.
pub fn parse_proxy_header(value: &str) -> Result<(Did, String), ProxyError> {
    let bad = ProxyError::BadProxyHeader;
    let (did, fragment) = match value.split_once('#') {
        Some(("", _)) => return Err(bad("no did specified in proxy header")),
        Some((_, "")) | None => return Err(bad("no service id specified in proxy header")),
        Some(parts) => parts,
    };
    if fragment.contains('#') {
        return Err(bad("invalid proxy header format"));
    }
    if value.contains(' ') {
        return Err(bad("proxy header cannot contain spaces"));
    }
    let did: Did = did
        .parse()
        .map_err(|_| bad("invalid DID in proxy header"))?;
    if !fragment.bytes().all(is_fragment_byte) {
        return Err(bad("invalid service id in proxy header"));
    }
    Ok((did, fragment.to_owned()))
}

/// RFC 3986 fragment characters: unreserved, sub-delims, `:`, `@`, `/`, `?` and `%`
/// (percent-encoding).
fn is_fragment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b)
}

/// The configured service for a method when the client named none, as the reference PDS
/// routes: moderation reports to the report service, `tools.ozone.*` to the moderation
/// service, `chat.bsky.*` to the chat service when one is configured, everything else to
/// the AppView.
pub fn default_service<'a>(config: &'a ProxyConfig, nsid: &Nsid) -> Option<&'a ServiceEndpoint> {
    default_route(config, nsid).0
}

/// [`default_service`] with the service id it stands for.
fn default_route<'a>(
    config: &'a ProxyConfig,
    nsid: &Nsid,
) -> (Option<&'a ServiceEndpoint>, &'static str) {
    let nsid = nsid.as_str();
    if nsid == "com.atproto.moderation.createReport" {
        (config.report_service.as_ref(), "atproto_labeler")
    } else if nsid.starts_with("tools.ozone.") {
        (config.mod_service.as_ref(), "atproto_labeler")
    } else if nsid.starts_with("chat.bsky.") && config.chat_service.is_some() {
        (config.chat_service.as_ref(), "bsky_chat")
    } else {
        (config.app_view.as_ref(), "bsky_appview")
    }
}

/// The configured default target for `nsid`, if there is one.
pub fn default_target(config: &ProxyConfig, nsid: &Nsid) -> Option<ProxyTarget> {
    let (endpoint, id) = default_route(config, nsid);
    endpoint.map(|e| ProxyTarget::from_endpoint(e, id))
}

/// The target of a request: the service named by `atproto-proxy` if present (resolved
/// through `resolver`), else the configured default for `nsid`. An empty header counts as
/// absent, as in the reference.
pub async fn resolve_target(
    config: &ProxyConfig,
    resolver: &dyn DidDocResolver,
    proxy_header: Option<&str>,
    nsid: &Nsid,
) -> Result<ProxyTarget, ProxyError> {
    if let Some(value) = proxy_header.filter(|v| !v.is_empty()) {
        let (did, service_id) = parse_proxy_header(value)?;
        let doc = resolver.resolve_did(&did).await.map_err(|e| {
            tracing::debug!(%did, error = %e, "cannot resolve proxy DID");
            ProxyError::UnresolvableDid
        })?;
        let endpoint = service_endpoint(&doc, &service_id).ok_or(ProxyError::NoServiceEndpoint)?;
        return Ok(ProxyTarget {
            endpoint,
            did: did.to_string(),
            service_id: Some(service_id),
            default_service_id: "",
        });
    }
    default_target(config, nsid).ok_or_else(|| ProxyError::NoServiceConfigured(nsid.to_string()))
}

/// The endpoint of the service entry whose id is `#service_id` or `<doc id>#service_id`
/// (any type): a string http(s) URL with a host.
pub fn service_endpoint(doc: &DidDocument, service_id: &str) -> Option<Url> {
    let relative = format!("#{service_id}");
    let absolute = format!("{}{relative}", doc.id);
    let entry = doc
        .service
        .iter()
        .find(|s| s.id == relative || s.id == absolute)?;
    let url = Url::parse(entry.service_endpoint.as_str()?).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty()))
        .then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nsid(s: &str) -> Nsid {
        s.parse().unwrap()
    }

    fn endpoint(url: &str, did: &str) -> ServiceEndpoint {
        ServiceEndpoint {
            url: Url::parse(url).unwrap(),
            did: did.into(),
        }
    }

    #[test]
    fn proxy_header_parses() {
        let (did, id) = parse_proxy_header("did:web:api.bsky.app#bsky_appview").unwrap();
        assert_eq!(did.as_str(), "did:web:api.bsky.app");
        assert_eq!(id, "bsky_appview");
        let (did, id) =
            parse_proxy_header("did:plc:ar7c4by46qjdydhdevvrndac#atproto_labeler").unwrap();
        assert_eq!(did.as_str(), "did:plc:ar7c4by46qjdydhdevvrndac");
        assert_eq!(id, "atproto_labeler");
        let (did, id) = parse_proxy_header("did:web:localhost%3A2584#a.b-c~d:e").unwrap();
        assert_eq!(did.as_str(), "did:web:localhost%3A2584");
        assert_eq!(id, "a.b-c~d:e");
    }

    #[test]
    fn malformed_proxy_headers() {
        for (value, message) in [
            ("#bsky_appview", "no did specified in proxy header"),
            (
                "did:web:api.bsky.app",
                "no service id specified in proxy header",
            ),
            (
                "did:web:api.bsky.app#",
                "no service id specified in proxy header",
            ),
            ("", "no service id specified in proxy header"),
            ("did:web:api.bsky.app#a#b", "invalid proxy header format"),
            (
                "did:web:api.bsky.app#bsky appview",
                "proxy header cannot contain spaces",
            ),
            (
                "did:web:api bsky.app#x",
                "proxy header cannot contain spaces",
            ),
            ("api.bsky.app#bsky_appview", "invalid DID in proxy header"),
            (
                "DID:web:api.bsky.app#bsky_appview",
                "invalid DID in proxy header",
            ),
            ("did:web:#x", "invalid DID in proxy header"),
            (
                "did:web:api.bsky.app#x\ty",
                "invalid service id in proxy header",
            ),
            (
                "did:web:api.bsky.app#x<y>",
                "invalid service id in proxy header",
            ),
            (
                "did:web:api.bsky.app#é",
                "invalid service id in proxy header",
            ),
        ] {
            match parse_proxy_header(value) {
                Err(ProxyError::BadProxyHeader(m)) => assert_eq!(m, message, "{value:?}"),
                other => panic!("{value:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn protected_and_privileged() {
        assert_eq!(PROTECTED_METHODS.len(), 15);
        assert!(is_protected_method("com.atproto.server.createAppPassword"));
        assert!(is_protected_method("com.atproto.identity.signPlcOperation"));
        assert!(is_protected_method("com.atproto.admin.sendEmail"));
        assert!(!is_protected_method("com.atproto.server.createAccount"));
        assert!(!is_protected_method("app.bsky.feed.getTimeline"));
        assert!(!is_protected_method("com.atproto.server.updateEmailX"));

        assert!(is_privileged_method("chat.bsky.convo.sendMessage"));
        assert!(is_privileged_method("chat.bsky.actor.exportAccountData"));
        assert!(is_privileged_method("com.atproto.server.createAccount"));
        assert!(!is_privileged_method("app.bsky.feed.getTimeline"));
        assert!(!is_privileged_method("chat.bskyx.convo.sendMessage"));
    }

    #[test]
    fn default_routing() {
        let app_view = endpoint("https://api.bsky.app", "did:web:api.bsky.app");
        let report = endpoint("https://mod.bsky.app", "did:plc:ar7c4by46qjdydhdevvrndac");
        let chat = endpoint("https://api.bsky.chat", "did:web:api.bsky.chat");
        let mut config = ProxyConfig::default();
        assert_eq!(
            default_service(&config, &nsid("app.bsky.feed.getTimeline")),
            None
        );

        config.app_view = Some(app_view.clone());
        config.report_service = Some(report.clone());
        let route = |config: &ProxyConfig, m: &str| default_service(config, &nsid(m)).cloned();
        assert_eq!(
            route(&config, "app.bsky.feed.getTimeline"),
            Some(app_view.clone())
        );
        assert_eq!(
            route(&config, "app.bsky.actor.getProfile"),
            Some(app_view.clone())
        );
        assert_eq!(
            route(&config, "com.atproto.label.queryLabels"),
            Some(app_view.clone())
        );
        assert_eq!(
            route(&config, "com.atproto.moderation.createReport"),
            Some(report.clone())
        );
        // No chat service: chat falls through to the AppView, as the reference does.
        assert_eq!(
            route(&config, "chat.bsky.convo.listConvos"),
            Some(app_view.clone())
        );
        // No moderation service configured: nothing.
        assert_eq!(route(&config, "tools.ozone.moderation.emitEvent"), None);

        config.chat_service = Some(chat.clone());
        assert_eq!(route(&config, "chat.bsky.convo.listConvos"), Some(chat));
        assert_eq!(route(&config, "app.bsky.feed.getTimeline"), Some(app_view));
    }

    #[test]
    fn audience_has_the_service_id_only_when_named() {
        let configured = ProxyTarget::from_endpoint(
            &endpoint("https://api.bsky.app", "did:web:api.bsky.app"),
            "bsky_appview",
        );
        assert_eq!(configured.audience(), "did:web:api.bsky.app");
        // Permissions always name the service: the default's id when none was named.
        assert_eq!(
            configured.permission_audience(),
            "did:web:api.bsky.app#bsky_appview"
        );
        let named = ProxyTarget {
            service_id: Some("other_view".into()),
            ..configured
        };
        assert_eq!(named.audience(), "did:web:api.bsky.app#other_view");
        assert_eq!(
            named.permission_audience(),
            "did:web:api.bsky.app#other_view"
        );
    }

    #[test]
    fn service_entries_by_relative_or_absolute_id() {
        let doc: DidDocument = serde_json::from_value(serde_json::json!({
            "id": "did:web:api.bsky.app",
            "service": [
                {"id": "#bsky_notif", "type": "BskyNotificationService",
                 "serviceEndpoint": "https://api.bsky.app"},
                {"id": "did:web:api.bsky.app#bsky_appview", "type": "BskyAppView",
                 "serviceEndpoint": "https://api.bsky.app/"},
                {"id": "did:web:other.example#elsewhere", "type": "X",
                 "serviceEndpoint": "https://other.example"},
                {"id": "#ftp", "type": "X", "serviceEndpoint": "ftp://files.example"},
                {"id": "#map", "type": "X", "serviceEndpoint": {"uri": "https://x.example"}},
                {"id": "#nohost", "type": "X", "serviceEndpoint": "https:"},
                {"id": "#plain", "type": "X", "serviceEndpoint": "http://127.0.0.1:2584"},
            ],
        }))
        .unwrap();
        let url = |id| service_endpoint(&doc, id).map(String::from);
        assert_eq!(
            url("bsky_appview").as_deref(),
            Some("https://api.bsky.app/")
        );
        assert_eq!(url("bsky_notif").as_deref(), Some("https://api.bsky.app/"));
        assert_eq!(url("plain").as_deref(), Some("http://127.0.0.1:2584/"));
        assert_eq!(url("elsewhere"), None);
        assert_eq!(url("ftp"), None);
        assert_eq!(url("map"), None);
        assert_eq!(url("nohost"), None);
        assert_eq!(url("missing"), None);
    }
}
