//! The hub lexicons in the built-in catalog: each file is a valid lexicon document, and
//! records of each collection validate (or not) with the same validator as every other
//! collection, blob constraints included.

use serde_json::{Value, json};

use super::records::{self, CASE, PLUGIN, REVIEW};
use crate::lexicon::{Catalog, LexiconDoc, ValidationErrorKind};
use crate::repo::cbor::json_to_record;
use crate::syntax::Nsid;

const HUB_FILES: [&str; 12] = [
    "case",
    "defs",
    "getCase",
    "getPlugin",
    "getStats",
    "listCases",
    "listModerators",
    "listPlugins",
    "plugin",
    "review",
    "setModerator",
    "trackDownload",
];

fn blob(mime: &str, size: u64) -> Value {
    json!({
        "$type": "blob",
        "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"},
        "mimeType": mime,
        "size": size,
    })
}

fn plugin() -> Value {
    json!({
        "$type": PLUGIN,
        "name": "PocketBase Auth Kit",
        "description": "OAuth helpers",
        "descriptionZh": "认证工具",
        "githubUrl": "https://github.com/acme/pb-auth",
        "category": "auth",
        "tags": ["oauth", "认证"],
        "logo": blob("image/png", 1_000_000),
        "screenshots": [blob("image/webp", 5_000_000)],
        "readme": "# Auth",
        "createdAt": "2025-01-02T03:04:05.000Z",
    })
}

fn case() -> Value {
    json!({
        "$type": CASE,
        "title": "Shop",
        "description": "A shop on PocketBase",
        "category": "saas",
        "techStack": ["pocketbase", "svelte"],
        "thumbnail": blob("image/jpeg", 2_000_000),
        "createdAt": "2025-01-02T03:04:05.000Z",
    })
}

fn review() -> Value {
    json!({
        "$type": REVIEW,
        "subject": {
            "uri": "at://did:plc:abc/cn.pocketbase.hub.plugin/pb-auth",
            "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
        },
        "status": "approved",
        "featured": true,
        "createdAt": "2025-01-02T03:04:05.000Z",
    })
}

/// `Ok` or the error path (`Record/...`).
fn check(collection: &str, record: &Value) -> Result<(), String> {
    let catalog = Catalog::builtin().unwrap();
    let nsid: Nsid = collection.parse().unwrap();
    let value = json_to_record(record).unwrap();
    catalog.validate_record(&nsid, &value).map_err(|e| {
        assert_eq!(e.kind(), ValidationErrorKind::Invalid);
        e.path().to_owned()
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

#[test]
fn every_hub_lexicon_is_valid() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/lexicons/cn/pocketbase/hub");
    let mut on_disk: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let expected: Vec<String> = HUB_FILES.iter().map(|f| format!("{f}.json")).collect();
    assert_eq!(on_disk, expected);
    for file in HUB_FILES {
        let json = std::fs::read_to_string(format!("{root}/{file}.json")).unwrap();
        let doc = LexiconDoc::from_json(&json).unwrap();
        doc.check().unwrap();
        assert_eq!(doc.id.as_str(), format!("cn.pocketbase.hub.{file}"));
    }
    let catalog = Catalog::builtin().unwrap();
    catalog.check_refs().unwrap();
    let key = |c: &str| catalog.record_def(&c.parse().unwrap()).unwrap().key.clone();
    assert_eq!(key(PLUGIN), "any");
    assert_eq!(key(CASE), "tid");
    assert_eq!(key(REVIEW), "tid");
}

#[test]
fn valid_records() {
    assert_eq!(check(PLUGIN, &plugin()), Ok(()));
    assert_eq!(check(CASE, &case()), Ok(()));
    assert_eq!(check(REVIEW, &review()), Ok(()));
    // Unknown categories are accepted by the lexicon (listed under `other`).
    assert_eq!(
        check(PLUGIN, &with(plugin(), "category", json!("ai"))),
        Ok(())
    );
    assert_eq!(
        check(CASE, &with(case(), "category", json!("game"))),
        Ok(())
    );
    // Minimal records.
    for key in ["descriptionZh", "tags", "logo", "screenshots", "readme"] {
        assert_eq!(check(PLUGIN, &without(plugin(), key)), Ok(()), "{key}");
    }
    assert_eq!(check(CASE, &without(case(), "createdAt")), Ok(()));
    assert_eq!(check(REVIEW, &without(review(), "featured")), Ok(()));
}

#[test]
fn invalid_plugins() {
    let cases: Vec<(Value, &str)> = vec![
        (without(plugin(), "name"), "Record"),
        (without(plugin(), "description"), "Record"),
        (without(plugin(), "githubUrl"), "Record"),
        (without(plugin(), "category"), "Record"),
        (without(plugin(), "createdAt"), "Record"),
        (
            with(plugin(), "name", json!("n".repeat(101))),
            "Record/name",
        ),
        (
            with(plugin(), "name", json!("名".repeat(101))),
            "Record/name",
        ),
        (
            with(plugin(), "description", json!("d".repeat(3001))),
            "Record/description",
        ),
        (
            with(plugin(), "githubUrl", json!("not a uri")),
            "Record/githubUrl",
        ),
        (
            with(plugin(), "createdAt", json!("yesterday")),
            "Record/createdAt",
        ),
        (with(plugin(), "tags", json!(vec!["t"; 11])), "Record/tags"),
        (
            with(plugin(), "tags", json!(["t".repeat(33)])),
            "Record/tags/0",
        ),
        (
            with(plugin(), "readme", json!("r".repeat(100_001))),
            "Record/readme",
        ),
        // Blob constraints: MIME type, size, count.
        (with(plugin(), "logo", blob("image/gif", 10)), "Record/logo"),
        (
            with(plugin(), "logo", blob("image/png", 1_000_001)),
            "Record/logo",
        ),
        (
            with(
                plugin(),
                "screenshots",
                json!([blob("image/png", 5_000_001)]),
            ),
            "Record/screenshots/0",
        ),
        (
            with(plugin(), "screenshots", json!([blob("text/plain", 1)])),
            "Record/screenshots/0",
        ),
        (
            with(
                plugin(),
                "screenshots",
                json!(vec![blob("image/png", 1); 6]),
            ),
            "Record/screenshots",
        ),
        (with(plugin(), "logo", json!("logo.png")), "Record/logo"),
    ];
    for (record, path) in cases {
        assert_eq!(check(PLUGIN, &record), Err(path.to_owned()), "{record}");
    }
}

#[test]
fn invalid_cases_and_reviews() {
    let cases: Vec<(&str, Value, &str)> = vec![
        (CASE, without(case(), "title"), "Record"),
        (CASE, without(case(), "description"), "Record"),
        (CASE, without(case(), "category"), "Record"),
        (
            CASE,
            with(case(), "techStack", json!(vec!["x"; 21])),
            "Record/techStack",
        ),
        (
            CASE,
            with(case(), "thumbnail", blob("image/png", 2_000_001)),
            "Record/thumbnail",
        ),
        (
            CASE,
            with(case(), "thumbnail", blob("video/mp4", 10)),
            "Record/thumbnail",
        ),
        (
            CASE,
            with(case(), "screenshots", json!(vec![blob("image/png", 1); 11])),
            "Record/screenshots",
        ),
        (CASE, with(case(), "url", json!("example")), "Record/url"),
        (
            CASE,
            with(case(), "content", json!("c".repeat(100_001))),
            "Record/content",
        ),
        (REVIEW, without(review(), "subject"), "Record"),
        (REVIEW, without(review(), "status"), "Record"),
        (
            REVIEW,
            with(review(), "status", json!("maybe")),
            "Record/status",
        ),
        (
            REVIEW,
            with(review(), "featured", json!("yes")),
            "Record/featured",
        ),
        (
            REVIEW,
            with(
                review(),
                "subject",
                json!({"uri": "at://did:plc:abc/x.y.z/1"}),
            ),
            "Record/subject",
        ),
    ];
    for (collection, record, path) in cases {
        assert_eq!(check(collection, &record), Err(path.to_owned()), "{record}");
    }
}

#[test]
fn hub_rules_beyond_the_lexicon() {
    let value = json_to_record(&plugin()).unwrap();
    assert_eq!(records::check_write(PLUGIN, "pb-auth", &value), Ok(()));
    let err = records::check_write(PLUGIN, "PB_Auth", &value).unwrap_err();
    assert!(err.starts_with("Invalid plugin slug \"PB_Auth\""), "{err}");
    let bad = json_to_record(&with(
        plugin(),
        "githubUrl",
        json!("https://gitlab.com/acme/pb-auth"),
    ))
    .unwrap();
    assert_eq!(
        records::check_write(PLUGIN, "pb-auth", &bad),
        Err("Invalid githubUrl \"https://gitlab.com/acme/pb-auth\": must be https://github.com/OWNER/REPO".to_owned())
    );
    let case_value = json_to_record(&case()).unwrap();
    assert_eq!(records::check_write(CASE, "3l2xyz", &case_value), Ok(()));
    let bad_case =
        json_to_record(&with(case(), "githubUrl", json!("https://github.com/x"))).unwrap();
    assert!(records::check_write(CASE, "3l2xyz", &bad_case).is_err());
}

#[test]
fn submissions_keep_what_the_index_needs() {
    let value = json_to_record(&with(plugin(), "category", json!("ai"))).unwrap();
    let sub = records::Submission::read(&value, true, "2025-05-05T00:00:00.000Z");
    assert_eq!(sub.category, "other");
    assert_eq!(sub.name_key, "pocketbase auth kit");
    assert_eq!(sub.created_at, "2025-01-02T03:04:05.000Z");
    assert_eq!(
        sub.image.as_deref(),
        Some("bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy")
    );
    assert_eq!(sub.screenshots.len(), 1);
    assert_eq!(
        sub.text,
        "PocketBase Auth Kit\nOAuth helpers\n认证工具\n# Auth\noauth\n认证"
    );
    let review = records::Review::read(&json_to_record(&review()).unwrap()).unwrap();
    assert_eq!(
        review.subject,
        "at://did:plc:abc/cn.pocketbase.hub.plugin/pb-auth"
    );
    assert!(review.featured);
    let not_hub = json_to_record(&with(
        review_json_subject("at://did:plc:abc/app.bsky.feed.post/1"),
        "status",
        json!("approved"),
    ))
    .unwrap();
    assert_eq!(records::Review::read(&not_hub), None);
}

fn review_json_subject(uri: &str) -> Value {
    with(
        review(),
        "subject",
        json!({"uri": uri, "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}),
    )
}
