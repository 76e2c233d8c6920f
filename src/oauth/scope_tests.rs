use super::*;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/interop/extra/indigo/atproto/auth/testdata/"
);

fn lines(file: &str) -> Vec<String> {
    std::fs::read_to_string(format!("{VECTORS}{file}"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn permission_vectors() {
    let valid = lines("permission_scopes_valid.txt");
    assert!(valid.len() > 30);
    for scope in &valid {
        assert!(
            Scope::parse(scope).is_some(),
            "valid scope refused: {scope}"
        );
    }
    let invalid = lines("permission_scopes_invalid.txt");
    assert!(invalid.len() > 60);
    for scope in &invalid {
        assert_eq!(Scope::parse(scope), None, "invalid scope accepted: {scope}");
    }
}

#[test]
fn generic_vectors() {
    let text = std::fs::read_to_string(format!("{VECTORS}generic_scopes_valid.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() > 10);
    for case in cases {
        let scope = case["scope"].as_str().unwrap();
        let g = parse_generic(scope).unwrap_or_else(|| panic!("{scope}"));
        let want = &case["generic"];
        assert_eq!(g.resource, want["resource"].as_str().unwrap(), "{scope}");
        assert_eq!(
            g.positional,
            want["positional"].as_str().unwrap(),
            "{scope}"
        );
        let params: BTreeMap<String, Vec<String>> =
            serde_json::from_value(want["params"].clone()).unwrap();
        assert_eq!(g.params, params, "{scope}");
    }
    for scope in lines("generic_scopes_invalid.txt") {
        assert_eq!(parse_generic(&scope), None, "{scope}");
    }
}

#[test]
fn repo_permissions() {
    let p = Permissions::from_scope("atproto repo:app.bsky.feed.post?action=create");
    assert!(p.atproto && !p.generic);
    assert!(p.allows_repo("app.bsky.feed.post", RepoAction::Create));
    assert!(!p.allows_repo("app.bsky.feed.post", RepoAction::Delete));
    assert!(!p.allows_repo("app.bsky.feed.like", RepoAction::Create));
    assert!(!p.allows_repo("app.bsky.actor.profile", RepoAction::Update));
    let any = Permissions::from_scope("atproto repo:*");
    assert!(any.allows_repo("app.bsky.feed.like", RepoAction::Delete));
    let generic = Permissions::from_scope("atproto transition:generic");
    assert!(generic.allows_repo("x.y.z", RepoAction::Update));
    assert!(generic.allows_blob("image/png"));
    assert!(!generic.allows_rpc("chat.bsky.convo.listConvos", "*"));
    assert!(generic.allows_rpc(
        "app.bsky.feed.getTimeline",
        "did:web:api.bsky.app#bsky_appview"
    ));
    assert!(!generic.allows_account("email", false));
}

#[test]
fn blob_rpc_account_identity_permissions() {
    let p = Permissions::from_scope(
        "atproto blob:image/* rpc:app.bsky.feed.getFeed?aud=did:web:feed.example%23svc \
         account:email transition:chat.bsky identity:handle",
    );
    assert!(p.allows_blob("image/jpeg"));
    assert!(!p.allows_blob("video/mp4"));
    assert!(p.allows_rpc("app.bsky.feed.getFeed", "did:web:feed.example#svc"));
    assert!(!p.allows_rpc("app.bsky.feed.getFeed", "did:web:other.example#svc"));
    assert!(p.allows_rpc(
        "chat.bsky.convo.listConvos",
        "did:web:api.bsky.chat#bsky_chat"
    ));
    assert!(p.allows_account("email", false));
    assert!(!p.allows_account("email", true));
    assert!(p.allows_identity("handle"));
    assert!(!p.allows_identity("*"));
}

#[test]
fn descriptions_are_plain_words() {
    let s = Scope::parse("repo:app.bsky.feed.post?action=create").unwrap();
    assert_eq!(
        s.describe(),
        "Create records of kind app.bsky.feed.post in your repository"
    );
    assert_eq!(
        Scope::parse("account:email?action=manage")
            .unwrap()
            .describe(),
        "Change your email address"
    );
}

#[test]
fn account_attributes_and_repeated_actions() {
    let p = Permissions::from_scope("account:repo?action=read&action=manage");
    assert!(p.allows_account("repo", true));
    assert!(p.allows_account("repo", false));
    assert!(!p.allows_account("email", false));
    for bad in [
        "account:phone",
        "account:status",
        "account:repo?action=delete",
        "account:repo?action=read&action=write",
        "account:email?attr=repo",
    ] {
        assert_eq!(Scope::parse(bad), None, "{bad}");
    }
}
