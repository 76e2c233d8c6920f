//! `include:` scopes: permission sets published as lexicons, resolved and expanded into the
//! `repo:` and `rpc:` permissions they grant (atproto permission spec, "Permission Sets").
//!
//! Resolving `include:com.example.app.basic`:
//! 1. the NSID's authority (`app.example.com`) names a DID in the DNS TXT record
//!    `_lexicon.app.example.com` (`did=…`); in development mode an operator may pin
//!    authorities to DIDs instead (`ROOKERY_LEXICON_AUTHORITIES`), as the reference's
//!    resolver hook allows;
//! 2. the DID document gives the PDS and the repository signing key;
//! 3. `com.atproto.sync.getRecord` of `com.atproto.lexicon.schema/<nsid>` returns the
//!    record with its proof: the commit's signature and the MST path to the record are
//!    checked here, so a PDS cannot serve a set its owner did not sign;
//! 4. the document's `main` must be a `permission-set`.
//!
//! Expansion keeps only `repo:` and `rpc:` permissions whose collections and methods are under
//! the set's own NSID group (`com.example.app.*` for `com.example.app.basic`, never `*`); an
//! `rpc` permission with its own `aud` is dropped, and `inheritAud` takes the `aud` of the
//! `include:` scope. Resolved sets are cached; failures are not.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::OAuthError;
use super::scope::{RepoAction, Scope};
use crate::identity::handle::{DnsError, TxtLookup};
use crate::identity::net::GuardedHttp;
use crate::identity::resolver::TtlCache;
use crate::proxy::DidDocResolver;
use crate::repo::blockstore::MemoryBlockStore;
use crate::repo::car::{Limits, read_car_bytes};
use crate::repo::commit::Commit;
use crate::repo::mst::Mst;
use crate::syntax::{Did, Nsid};

/// How long a resolved permission set is reused.
const CACHE_TTL: Duration = Duration::from_secs(60 * 60);
/// Most cached sets.
const CACHE_ENTRIES: usize = 1000;
/// Longest wait for the authority's TXT record.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// The collection lexicons are published in.
const SCHEMA_COLLECTION: &str = "com.atproto.lexicon.schema";

/// A resolved permission set: its title (for the consent page) and its permissions, as
/// published (filtered per `include:` scope by [`PermissionSet::scopes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionSet {
    pub nsid: String,
    pub title: Option<String>,
    permissions: Vec<Value>,
}

impl PermissionSet {
    /// Reads a lexicon document whose `main` definition is a permission set.
    pub fn from_lexicon(nsid: &str, doc: &Value) -> Result<Self, String> {
        if doc.get("id").and_then(Value::as_str) != Some(nsid) {
            return Err("lexicon id does not match".into());
        }
        let main = doc
            .pointer("/defs/main")
            .ok_or("lexicon has no main definition")?;
        if main.get("type").and_then(Value::as_str) != Some("permission-set") {
            return Err("lexicon document is not a permission set".into());
        }
        let permissions = main
            .get("permissions")
            .and_then(Value::as_array)
            .ok_or("permission set has no permissions")?
            .clone();
        let title = main
            .get("title")
            .and_then(Value::as_str)
            .map(|t| t.chars().take(200).collect());
        Ok(PermissionSet {
            nsid: nsid.to_owned(),
            title,
            permissions,
        })
    }

    /// The `repo:` and `rpc:` scopes this set grants through `include:<nsid>` with `aud`.
    pub fn scopes(&self, aud: Option<&str>) -> Vec<Scope> {
        self.permissions
            .iter()
            .filter_map(|p| self.permission(p, aud))
            .collect()
    }

    fn permission(&self, p: &Value, aud: Option<&str>) -> Option<Scope> {
        let strings = |key: &str| -> Option<Vec<String>> {
            p.get(key)?
                .as_array()?
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        if p.get("type").and_then(Value::as_str) != Some("permission") {
            return None;
        }
        let scope = match p.get("resource").and_then(Value::as_str)? {
            "repo" => {
                let collections = strings("collection")?;
                let actions = match p.get("action") {
                    None => vec![RepoAction::Create, RepoAction::Update, RepoAction::Delete],
                    Some(_) => strings("action")?
                        .iter()
                        .map(|a| RepoAction::parse(a))
                        .collect::<Option<Vec<_>>>()?,
                };
                Scope::Repo {
                    collections,
                    actions,
                }
            }
            "rpc" => {
                let lxm = strings("lxm")?;
                let inherit = p.get("inheritAud").and_then(Value::as_bool) == Some(true);
                let aud = match p.get("aud") {
                    None if inherit => aud?.to_owned(),
                    Some(Value::String(a)) if a == "*" => a.clone(),
                    // A set may not name a service of its own.
                    _ => return None,
                };
                Scope::Rpc { lxm, aud }
            }
            _ => return None,
        };
        // Round-trip through the scope syntax: whatever it would refuse is dropped.
        let scope = Scope::parse(&scope.to_scope_string())?;
        let names: &[String] = match &scope {
            Scope::Repo { collections, .. } => collections,
            Scope::Rpc { lxm, .. } => lxm,
            _ => return None,
        };
        names
            .iter()
            .all(|n| under_group(&self.nsid, n))
            .then_some(scope)
    }
}

/// Whether `name` is under the NSID group of `set` (`com.example.app.` for
/// `com.example.app.basic`); `*` never is.
fn under_group(set: &str, name: &str) -> bool {
    let Some(dot) = set.rfind('.') else {
        return false;
    };
    let group = &set[..=dot];
    name != "*" && name.len() > group.len() && name.starts_with(group)
}

/// Resolves and caches permission sets.
pub struct PermissionSets {
    txt: Arc<dyn TxtLookup>,
    dids: Arc<dyn DidDocResolver>,
    http: GuardedHttp,
    /// Authorities pinned to DIDs (development mode only).
    pinned: BTreeMap<String, Did>,
    cache: TtlCache<String, Arc<PermissionSet>>,
}

impl std::fmt::Debug for PermissionSets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PermissionSets")
            .field("pinned", &self.pinned)
            .finish_non_exhaustive()
    }
}

impl PermissionSets {
    pub(crate) fn new(
        txt: Arc<dyn TxtLookup>,
        dids: Arc<dyn DidDocResolver>,
        http: GuardedHttp,
        pinned: BTreeMap<String, Did>,
    ) -> Self {
        PermissionSets {
            txt,
            dids,
            http,
            pinned,
            cache: TtlCache::new(CACHE_TTL, CACHE_ENTRIES),
        }
    }

    /// The permission set `nsid` (cached).
    pub async fn get(&self, nsid: &str) -> Result<Arc<PermissionSet>, OAuthError> {
        if let Some(set) = self.cache.get(&nsid.to_owned()) {
            return Ok(set);
        }
        let set = Arc::new(self.resolve(nsid).await.map_err(|why| {
            OAuthError::invalid_scope(format!("Cannot resolve permission set {nsid}: {why}"))
        })?);
        self.cache.insert(nsid.to_owned(), set.clone());
        Ok(set)
    }

    /// `scope` with every `include:` replaced by the permissions its set grants (the
    /// reference's token scope); unchanged when there is none.
    pub async fn expand(&self, scope: &str) -> Result<String, OAuthError> {
        let mut out: Vec<String> = Vec::new();
        for token in scope.split(' ').filter(|t| !t.is_empty()) {
            match Scope::parse(token) {
                Some(Scope::Include { nsid, aud }) => {
                    let set = self.get(&nsid).await?;
                    for granted in set.scopes(aud.as_deref()) {
                        let granted = granted.to_scope_string();
                        if !out.contains(&granted) {
                            out.push(granted);
                        }
                    }
                }
                _ => {
                    if !out.iter().any(|t| t == token) {
                        out.push(token.to_owned());
                    }
                }
            }
        }
        Ok(out.join(" "))
    }

    async fn resolve(&self, nsid: &str) -> Result<PermissionSet, String> {
        let parsed: Nsid = nsid.parse().map_err(|_| "invalid NSID".to_owned())?;
        let did = self.authority(&parsed).await?;
        let doc = self
            .dids
            .resolve_did(&did)
            .await
            .map_err(|e| format!("cannot resolve {did}: {e}"))?;
        let pds = doc
            .pds_endpoint()
            .ok_or_else(|| format!("{did} has no PDS"))?
            .trim_end_matches('/')
            .to_owned();
        let key = doc
            .signing_key()
            .map_err(|e| format!("{did} has no signing key: {e}"))?;
        let url = format!(
            "{pds}/xrpc/com.atproto.sync.getRecord?did={did}&collection={SCHEMA_COLLECTION}&rkey={nsid}"
        );
        let fetched = self
            .http
            .get(&url, "application/vnd.ipld.car")
            .await
            .map_err(|e| format!("cannot fetch the lexicon: {e}"))?;
        if fetched.status != 200 {
            return Err(format!(
                "the lexicon's PDS answered HTTP {}",
                fetched.status
            ));
        }
        let record = verified_record(&fetched.body, &did, &key, nsid).await?;
        PermissionSet::from_lexicon(nsid, &record)
    }

    /// The DID publishing the lexicons of `nsid`'s authority.
    async fn authority(&self, nsid: &Nsid) -> Result<Did, String> {
        let authority = authority_domain(nsid.as_str());
        if let Some(did) = self.pinned.get(&authority) {
            return Ok(did.clone());
        }
        let name = format!("_lexicon.{authority}");
        let records = tokio::time::timeout(DNS_TIMEOUT, self.txt.txt(&name))
            .await
            .map_err(|_| format!("DNS lookup of {name} timed out"))?
            .map_err(|e| match e {
                DnsError::NotFound => format!("no TXT record at {name}"),
                DnsError::Failed(why) => format!("DNS lookup of {name} failed: {why}"),
            })?;
        let mut dids = records.iter().filter_map(|r| r.strip_prefix("did="));
        match (dids.next(), dids.next()) {
            (Some(did), None) => did.parse().map_err(|_| format!("invalid DID in {name}")),
            (None, _) => Err(format!("no did= TXT record at {name}")),
            (Some(_), Some(_)) => Err(format!("more than one did= TXT record at {name}")),
        }
    }
}

/// The domain of an NSID's authority: every segment but the name, reversed
/// (`com.example.app.basic` → `app.example.com`).
pub fn authority_domain(nsid: &str) -> String {
    let mut segments: Vec<&str> = nsid.split('.').collect();
    segments.pop();
    segments.reverse();
    segments.join(".").to_ascii_lowercase()
}

/// The record `com.atproto.lexicon.schema/<rkey>` of a `sync.getRecord` CAR, after checking
/// the commit is `did`'s, signed by `key`, and that its tree leads to the record.
async fn verified_record(
    car: &[u8],
    did: &Did,
    key: &crate::crypto::PublicKey,
    rkey: &str,
) -> Result<Value, String> {
    let limits = Limits {
        max_total_len: Some(2 * 1024 * 1024),
        max_blocks: Some(1000),
        ..Limits::default()
    };
    let (roots, blocks) = read_car_bytes(car, limits)
        .await
        .map_err(|e| format!("bad record proof: {e}"))?;
    let [root] = roots.as_slice() else {
        return Err("bad record proof: not one root".into());
    };
    let commit_bytes = blocks
        .get(root)
        .ok_or("bad record proof: no commit block")?;
    let commit = Commit::from_cbor(commit_bytes).map_err(|e| format!("bad commit: {e}"))?;
    if commit.did() != did.as_str() {
        return Err("the record proof is for another repository".into());
    }
    commit
        .verify(key)
        .map_err(|_| "the record proof's signature does not verify".to_owned())?;
    let store = MemoryBlockStore::from_blocks(&blocks);
    let tree = Mst::load(store, *commit.data())
        .await
        .map_err(|e| format!("bad record proof: {e}"))?;
    let path = format!("{SCHEMA_COLLECTION}/{rkey}");
    let cid = tree
        .get(&path)
        .await
        .map_err(|e| format!("bad record proof: {e}"))?
        .ok_or("the lexicon record does not exist")?;
    let bytes = blocks
        .get(&cid)
        .ok_or("bad record proof: no record block")?;
    let value = crate::repo::cbor::decode(bytes).map_err(|e| format!("bad record: {e}"))?;
    Ok(crate::repo::cbor::value_to_json(&value))
}

#[cfg(test)]
#[path = "permission_set_tests.rs"]
mod tests;
