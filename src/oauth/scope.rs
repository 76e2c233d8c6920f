//! OAuth scopes of the atproto profile: `atproto`, the `transition:` scopes, and the
//! permission scopes `repo:`, `blob:`, `rpc:`, `account:`, `identity:` and `include:`.
//!
//! A scope string is `resource[:positional][?query]`; the query is split on the first `?`
//! and its `&`-separated `key=value` pairs are percent-decoded (a key may repeat).

use std::collections::BTreeMap;

use crate::syntax::Nsid;

/// One scope split into its generic parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericScope {
    pub resource: String,
    pub positional: String,
    pub params: BTreeMap<String, Vec<String>>,
}

/// Splits a scope token; `None` if it is not printable ASCII or badly encoded.
pub fn parse_generic(scope: &str) -> Option<GenericScope> {
    if scope.is_empty() || !scope.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return None;
    }
    let (head, query) = match scope.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (scope, None),
    };
    let (resource, positional) = match head.split_once(':') {
        Some((r, p)) => (r, p),
        None => (head, ""),
    };
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_encoding::percent_decode_str(k).decode_utf8().ok()?;
        let v = percent_encoding::percent_decode_str(v).decode_utf8().ok()?;
        params
            .entry(k.into_owned())
            .or_default()
            .push(v.into_owned());
    }
    Some(GenericScope {
        resource: resource.to_owned(),
        positional: positional.to_owned(),
        params,
    })
}

/// A record action of `repo:` scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoAction {
    Create,
    Update,
    Delete,
}

impl RepoAction {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "create" => Some(Self::Create),
            "update" => Some(Self::Update),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
    /// The action's name in scope strings.
    pub fn as_str(self) -> &'static str {
        self.word()
    }

    fn word(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// A parsed scope token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Atproto,
    TransitionGeneric,
    TransitionChat,
    TransitionEmail,
    /// Collections (`*` for any) and the actions allowed on them.
    Repo {
        collections: Vec<String>,
        actions: Vec<RepoAction>,
    },
    /// Accepted MIME patterns (`*/*`, `image/*`, `image/png`).
    Blob {
        accept: Vec<String>,
    },
    /// Methods (`*` for any) callable through the proxy at `aud` (`*` for any service).
    Rpc {
        lxm: Vec<String>,
        aud: String,
    },
    /// `email` or `repo`; `manage` or only `read`.
    Account {
        attr: String,
        manage: bool,
    },
    /// `handle` or `*`.
    Identity {
        attr: String,
    },
    /// A permission set published as a lexicon.
    Include {
        nsid: String,
        aud: Option<String>,
    },
}

/// The positional value, or else the values of `key`; never both.
fn values(g: &GenericScope, key: &str) -> Option<Vec<String>> {
    let from_params = g.params.get(key).cloned().unwrap_or_default();
    match (g.positional.is_empty(), from_params.is_empty()) {
        (false, true) => Some(vec![g.positional.clone()]),
        (true, _) => Some(from_params),
        (false, false) => None,
    }
}

fn only_keys(g: &GenericScope, keys: &[&str]) -> bool {
    g.params.keys().all(|k| keys.contains(&k.as_str()))
}

fn is_nsid(s: &str) -> bool {
    s.parse::<Nsid>().is_ok()
}

/// A service reference `did:…#fragment`, or `*` where `wildcard`.
fn is_service_ref(s: &str, wildcard: bool) -> bool {
    if wildcard && s == "*" {
        return true;
    }
    let Some((did, frag)) = s.split_once('#') else {
        return false;
    };
    !frag.is_empty()
        && did.parse::<crate::syntax::Did>().is_ok()
        && (did.starts_with("did:web:") || did.starts_with("did:plc:"))
}

fn is_mime_pattern(s: &str) -> bool {
    let Some((t, sub)) = s.split_once('/') else {
        return false;
    };
    let token = |x: &str| {
        !x.is_empty()
            && x.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match (t, sub) {
        ("*", "*") => true,
        ("*", _) => false,
        (t, "*") => token(t),
        (t, s) => token(t) && token(s),
    }
}

impl Scope {
    /// Parses one scope token; `None` for an unknown or malformed one.
    pub fn parse(token: &str) -> Option<Scope> {
        match token {
            "atproto" => return Some(Scope::Atproto),
            "transition:generic" => return Some(Scope::TransitionGeneric),
            "transition:chat.bsky" => return Some(Scope::TransitionChat),
            "transition:email" => return Some(Scope::TransitionEmail),
            _ => {}
        }
        let g = parse_generic(token)?;
        match g.resource.as_str() {
            "repo" => {
                if !only_keys(&g, &["collection", "action"]) {
                    return None;
                }
                let collections = values(&g, "collection")?;
                if collections.is_empty() || !collections.iter().all(|c| c == "*" || is_nsid(c)) {
                    return None;
                }
                let actions = match g.params.get("action") {
                    None => vec![RepoAction::Create, RepoAction::Update, RepoAction::Delete],
                    Some(list) => list
                        .iter()
                        .map(|a| RepoAction::parse(a))
                        .collect::<Option<Vec<_>>>()?,
                };
                Some(Scope::Repo {
                    collections,
                    actions,
                })
            }
            "blob" => {
                if !only_keys(&g, &["accept"]) {
                    return None;
                }
                let accept = values(&g, "accept")?;
                (!accept.is_empty() && accept.iter().all(|m| is_mime_pattern(m)))
                    .then_some(Scope::Blob { accept })
            }
            "rpc" => {
                if !only_keys(&g, &["lxm", "aud"]) {
                    return None;
                }
                let lxm = values(&g, "lxm")?;
                let aud = match g.params.get("aud").map(Vec::as_slice) {
                    Some([aud]) if is_service_ref(aud, true) => aud.clone(),
                    _ => return None,
                };
                if lxm.is_empty() || !lxm.iter().all(|m| m == "*" || is_nsid(m)) {
                    return None;
                }
                if aud == "*" && lxm.iter().any(|m| m == "*") {
                    return None;
                }
                Some(Scope::Rpc { lxm, aud })
            }
            "account" => {
                if !only_keys(&g, &["attr", "action"]) {
                    return None;
                }
                // `status` is in the reference's list but not in the permission vectors
                // (indigo), which the tests follow.
                let attr = match values(&g, "attr")?.as_slice() {
                    [a] if a == "email" || a == "repo" => a.clone(),
                    _ => return None,
                };
                // `action` may repeat (`read`, `manage`); `manage` includes reading.
                let manage = match g.params.get("action") {
                    None => false,
                    Some(list)
                        if !list.is_empty()
                            && list.iter().all(|a| a == "read" || a == "manage") =>
                    {
                        list.iter().any(|a| a == "manage")
                    }
                    Some(_) => return None,
                };
                Some(Scope::Account { attr, manage })
            }
            "identity" => {
                if !only_keys(&g, &["attr"]) {
                    return None;
                }
                match values(&g, "attr")?.as_slice() {
                    [a] if a == "handle" || a == "*" => Some(Scope::Identity { attr: a.clone() }),
                    _ => None,
                }
            }
            "include" => {
                if !only_keys(&g, &["nsid", "aud"]) {
                    return None;
                }
                let nsid = match values(&g, "nsid")?.as_slice() {
                    [n] if is_nsid(n) => n.clone(),
                    _ => return None,
                };
                let aud = match g.params.get("aud").map(Vec::as_slice) {
                    None => None,
                    Some([a]) if is_service_ref(a, false) => Some(a.clone()),
                    _ => return None,
                };
                Some(Scope::Include { nsid, aud })
            }
            _ => None,
        }
    }

    /// The scope in its string form, as [`Scope::parse`] reads it (values percent-encoded
    /// where the syntax needs it: `#` in a service reference is `%23`).
    pub fn to_scope_string(&self) -> String {
        const VALUE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
            .add(b' ')
            .add(b'#')
            .add(b'%')
            .add(b'&')
            .add(b'?')
            .add(b'=')
            .add(b'+');
        let enc = |v: &str| percent_encoding::utf8_percent_encode(v, VALUE).to_string();
        // `resource:value` for one value, else `resource?key=v1&key=v2`; then `rest`.
        let head = |resource: &str, key: &str, values: &[String], rest: Vec<String>| {
            let mut query: Vec<String> = Vec::new();
            let mut out = if let [one] = values {
                format!("{resource}:{}", enc(one))
            } else {
                query.extend(values.iter().map(|v| format!("{key}={}", enc(v))));
                resource.to_owned()
            };
            query.extend(rest);
            if !query.is_empty() {
                out.push('?');
                out.push_str(&query.join("&"));
            }
            out
        };
        match self {
            Scope::Atproto => "atproto".to_owned(),
            Scope::TransitionGeneric => "transition:generic".to_owned(),
            Scope::TransitionChat => "transition:chat.bsky".to_owned(),
            Scope::TransitionEmail => "transition:email".to_owned(),
            Scope::Repo {
                collections,
                actions,
            } => {
                let all = [RepoAction::Create, RepoAction::Update, RepoAction::Delete]
                    .iter()
                    .all(|a| actions.contains(a));
                let rest = if all {
                    Vec::new()
                } else {
                    actions
                        .iter()
                        .map(|a| format!("action={}", a.as_str()))
                        .collect()
                };
                head("repo", "collection", collections, rest)
            }
            Scope::Blob { accept } => head("blob", "accept", accept, Vec::new()),
            Scope::Rpc { lxm, aud } => head("rpc", "lxm", lxm, vec![format!("aud={}", enc(aud))]),
            Scope::Account { attr, manage } => {
                let rest = if *manage {
                    vec!["action=manage".to_owned()]
                } else {
                    Vec::new()
                };
                head("account", "attr", std::slice::from_ref(attr), rest)
            }
            Scope::Identity { attr } => format!("identity:{attr}"),
            Scope::Include { nsid, aud } => {
                let rest = aud.iter().map(|a| format!("aud={}", enc(a))).collect();
                head("include", "nsid", std::slice::from_ref(nsid), rest)
            }
        }
    }

    /// What the scope allows, in plain words, for the consent page.
    pub fn describe(&self) -> String {
        match self {
            Scope::Atproto => "Identify you by your account (your DID and handle)".to_owned(),
            Scope::TransitionGeneric => {
                "Act as you on the whole network, as an app password can: read and write all \
                 your records, upload files, call other services (not your direct messages, \
                 email address or account settings)"
                    .to_owned()
            }
            Scope::TransitionChat => "Read and send your direct messages".to_owned(),
            Scope::TransitionEmail => "See your email address".to_owned(),
            Scope::Repo {
                collections,
                actions,
            } => {
                let what = if collections.iter().any(|c| c == "*") {
                    "records of any kind".to_owned()
                } else {
                    format!("records of kind {}", collections.join(", "))
                };
                let verbs: Vec<&str> = actions.iter().map(|a| a.word()).collect();
                format!(
                    "{} {what} in your repository",
                    capitalise(&verbs.join(", "))
                )
            }
            Scope::Blob { accept } => format!("Upload files of type {}", accept.join(", ")),
            Scope::Rpc { lxm, aud } => {
                let service = if aud == "*" {
                    "any service"
                } else {
                    aud.as_str()
                };
                format!("Call {} on {service} as you", lxm.join(", "))
            }
            Scope::Account { attr, manage } => {
                let verb = if *manage { "Change" } else { "See" };
                let thing = match attr.as_str() {
                    "email" => "your email address",
                    _ => "your whole repository (export and import)",
                };
                format!("{verb} {thing}")
            }
            Scope::Identity { attr } => {
                if attr == "handle" {
                    "Change your handle".to_owned()
                } else {
                    "Change your identity (handle and DID document)".to_owned()
                }
            }
            Scope::Include { nsid, .. } => format!("Permissions of the set {nsid}"),
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The permissions a token grants, from its scope string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    pub atproto: bool,
    pub generic: bool,
    pub chat: bool,
    pub email: bool,
    scopes: Vec<Scope>,
}

impl Permissions {
    /// Parses a space-separated scope string, ignoring tokens it does not know.
    pub fn from_scope(scope: &str) -> Self {
        let mut p = Permissions::default();
        for token in scope.split(' ').filter(|t| !t.is_empty()) {
            match Scope::parse(token) {
                Some(Scope::Atproto) => p.atproto = true,
                Some(Scope::TransitionGeneric) => p.generic = true,
                Some(Scope::TransitionChat) => p.chat = true,
                Some(Scope::TransitionEmail) => p.email = true,
                Some(other) => p.scopes.push(other),
                None => {}
            }
        }
        p
    }

    /// May the token `action` a record of `collection`?
    pub fn allows_repo(&self, collection: &str, action: RepoAction) -> bool {
        self.generic
            || self.scopes.iter().any(|s| match s {
                Scope::Repo {
                    collections,
                    actions,
                } => {
                    actions.contains(&action)
                        && collections.iter().any(|c| c == "*" || c == collection)
                }
                _ => false,
            })
    }

    /// May the token upload a blob of type `mime`?
    pub fn allows_blob(&self, mime: &str) -> bool {
        let (t, _) = mime.split_once('/').unwrap_or((mime, ""));
        self.generic
            || self.scopes.iter().any(|s| match s {
                Scope::Blob { accept } => accept.iter().any(|a| {
                    a == "*/*" || a == mime || a.strip_suffix("/*").is_some_and(|p| p == t)
                }),
                _ => false,
            })
    }

    /// May the token call `lxm` on the service `aud` (through the proxy or service auth)?
    pub fn allows_rpc(&self, lxm: &str, aud: &str) -> bool {
        let chat = lxm.starts_with("chat.bsky.");
        if chat {
            return self.chat || self.rpc_scope(lxm, aud);
        }
        self.generic || self.rpc_scope(lxm, aud)
    }

    fn rpc_scope(&self, lxm: &str, aud: &str) -> bool {
        self.scopes.iter().any(|s| match s {
            Scope::Rpc { lxm: l, aud: a } => {
                (a == "*" || a == aud) && l.iter().any(|m| m == "*" || m == lxm)
            }
            _ => false,
        })
    }

    /// May the token see (or with `manage`, change) the account attribute `attr`?
    pub fn allows_account(&self, attr: &str, manage: bool) -> bool {
        if attr == "email" && !manage && self.email {
            return true;
        }
        self.scopes.iter().any(|s| match s {
            Scope::Account { attr: a, manage: m } => a == attr && (*m || !manage),
            _ => false,
        })
    }

    /// May the token change the identity attribute `attr` (`handle`, or `*` for the DID
    /// document)?
    pub fn allows_identity(&self, attr: &str) -> bool {
        self.scopes.iter().any(|s| match s {
            Scope::Identity { attr: a } => a == "*" || a == attr,
            _ => false,
        })
    }
}

#[cfg(test)]
#[path = "scope_tests.rs"]
mod tests;
