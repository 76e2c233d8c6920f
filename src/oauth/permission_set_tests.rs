use serde_json::json;

use super::*;

fn set(nsid: &str, permissions: Value) -> PermissionSet {
    PermissionSet::from_lexicon(
        nsid,
        &json!({
            "lexicon": 1,
            "id": nsid,
            "defs": {"main": {"type": "permission-set", "title": "Basic", "permissions": permissions}},
        }),
    )
    .unwrap()
}

fn strings(scopes: &[Scope]) -> Vec<String> {
    scopes.iter().map(Scope::to_scope_string).collect()
}

#[test]
fn scope_strings_round_trip_the_valid_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/interop/extra/indigo/atproto/auth/testdata/permission_scopes_valid.txt"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut checked = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = Scope::parse(line).unwrap_or_else(|| panic!("{line}"));
        let again = Scope::parse(&parsed.to_scope_string());
        assert_eq!(
            again.as_ref(),
            Some(&parsed),
            "{line} → {}",
            parsed.to_scope_string()
        );
        checked += 1;
    }
    assert!(checked > 20, "only {checked} vectors");
}

#[test]
fn a_set_grants_only_repo_and_rpc_under_its_own_group() {
    let basic = set(
        "com.example.app.basic",
        json!([
            {"type": "permission", "resource": "repo",
             "collection": ["com.example.app.note", "com.example.app.like"], "action": ["create"]},
            {"type": "permission", "resource": "repo", "collection": ["com.example.app.profile"]},
            // Outside the group, a wildcard, another resource: dropped.
            {"type": "permission", "resource": "repo", "collection": ["app.bsky.feed.post"]},
            {"type": "permission", "resource": "repo", "collection": ["*"]},
            {"type": "permission", "resource": "repo",
             "collection": ["com.example.app.note", "com.example.other.x"]},
            {"type": "permission", "resource": "blob", "accept": ["*/*"]},
            {"type": "permission", "resource": "identity", "attr": "*"},
            // rpc: the include's aud when inherited, `*` as published, never a set's own.
            {"type": "permission", "resource": "rpc", "lxm": ["com.example.app.getFeed"],
             "inheritAud": true},
            {"type": "permission", "resource": "rpc", "lxm": ["com.example.app.search"], "aud": "*"},
            {"type": "permission", "resource": "rpc", "lxm": ["com.example.app.evil"],
             "aud": "did:web:evil.example#svc"},
            {"type": "permission", "resource": "rpc", "lxm": ["app.bsky.feed.getTimeline"], "aud": "*"},
            {"type": "nonsense"},
        ]),
    );
    assert_eq!(basic.title.as_deref(), Some("Basic"));
    let with_aud = basic.scopes(Some("did:web:api.example.com#svc"));
    assert_eq!(
        strings(&with_aud),
        [
            "repo?collection=com.example.app.note&collection=com.example.app.like&action=create",
            "repo:com.example.app.profile",
            "rpc:com.example.app.getFeed?aud=did:web:api.example.com%23svc",
            "rpc:com.example.app.search?aud=*",
        ]
    );
    // Without an aud on the include, an inherited rpc permission has none to take.
    assert_eq!(
        strings(&basic.scopes(None)),
        [
            "repo?collection=com.example.app.note&collection=com.example.app.like&action=create",
            "repo:com.example.app.profile",
            "rpc:com.example.app.search?aud=*",
        ]
    );
}

#[test]
fn only_permission_set_lexicons_are_sets() {
    let doc = |id: &str, kind: &str| json!({"lexicon": 1, "id": id, "defs": {"main": {"type": kind, "permissions": []}}});
    assert!(
        PermissionSet::from_lexicon(
            "com.example.app.basic",
            &doc("com.example.app.basic", "permission-set")
        )
        .is_ok()
    );
    assert!(
        PermissionSet::from_lexicon(
            "com.example.app.basic",
            &doc("com.example.app.basic", "record")
        )
        .is_err()
    );
    assert!(
        PermissionSet::from_lexicon(
            "com.example.app.basic",
            &doc("com.example.app.other", "permission-set")
        )
        .is_err()
    );
    assert!(
        PermissionSet::from_lexicon(
            "com.example.app.basic",
            &json!({"id": "com.example.app.basic"})
        )
        .is_err()
    );
}

#[test]
fn authority_domains() {
    assert_eq!(authority_domain("com.example.app.basic"), "app.example.com");
    assert_eq!(authority_domain("app.bsky.feed.post"), "feed.bsky.app");
    assert!(under_group("com.example.app.basic", "com.example.app.note"));
    assert!(!under_group("com.example.app.basic", "com.example.app."));
    assert!(!under_group(
        "com.example.app.basic",
        "com.example.apple.note"
    ));
    assert!(!under_group("com.example.app.basic", "*"));
}
