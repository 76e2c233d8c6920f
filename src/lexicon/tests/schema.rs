//! Schema documents: the interop vectors, the indigo test catalog, the project's
//! `lexicons/`, and each document rule.

use super::*;
use crate::lexicon::{Def, Error, LexiconDoc, RecordKeyType, StringFormat};

fn load(json: &Json) -> Result<LexiconDoc, Error> {
    LexiconDoc::from_value(json)
}

#[test]
fn interop_lexicon_valid() {
    let cases = fixture_json("interop/lexicon/lexicon-valid.json");
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = &case["name"];
        let doc = load(&case["lexicon"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(doc.id.as_str(), case["lexicon"]["id"], "{name}");
        let mut catalog = Catalog::new();
        catalog.add(doc).unwrap();
    }
}

#[test]
fn interop_lexicon_invalid() {
    let cases = fixture_json("interop/lexicon/lexicon-invalid.json");
    let cases = cases.as_array().unwrap();
    // (name, whether the JSON shape already fails, expected message or its start)
    let expected = [
        (
            "invalid lexicon field",
            "malformed lexicon document: invalid type: string \"one\"",
        ),
        (
            "invalid id field",
            "malformed lexicon document: invalid type: integer `2`",
        ),
        ("invalid NSID", "malformed lexicon document: invalid NSID"),
        (
            "defined unknown",
            "invalid lexicon example.lexicon.other at defs/demo: type unknown cannot be a named definition",
        ),
        (
            "defined ref",
            "invalid lexicon example.lexicon.other at defs/demo: type ref cannot be a named definition",
        ),
        (
            "non-main primary",
            "invalid lexicon example.lexicon.other at defs/demo: a record definition must be named main",
        ),
        (
            "record missing type object",
            "malformed lexicon document: missing field `type`",
        ),
    ];
    assert_eq!(cases.len(), expected.len());
    for (case, (name, message)) in cases.iter().zip(expected) {
        assert_eq!(case["name"], name);
        let e = load(&case["lexicon"]).unwrap_err().to_string();
        assert!(e.starts_with(message), "{name}: {e}");
        // The same through the catalog, from text.
        let e = Catalog::new()
            .add_json(&case["lexicon"].to_string())
            .unwrap_err();
        assert!(e.to_string().starts_with(message), "{name}: {e}");
    }
}

#[test]
fn interop_catalog_loads() {
    let catalog = interop_catalog();
    let ids: Vec<&str> = catalog.ids().collect();
    assert_eq!(
        ids,
        [
            "example.lexicon.permissionset",
            "example.lexicon.procedure",
            "example.lexicon.query",
            "example.lexicon.record",
            "example.lexicon.subscription",
        ]
    );
    let record = catalog
        .record_def(&"example.lexicon.record".parse().unwrap())
        .unwrap();
    assert_eq!(
        RecordKeyType::parse(&record.key),
        Some(RecordKeyType::Literal("demo".into()))
    );
    assert_eq!(
        record.record.required.as_deref(),
        Some(&["integer".to_owned()][..])
    );
    assert!(record.record.is_nullable("nullableString"));
    assert_eq!(record.record.properties.len(), 26);
    let Some(Def::String(s)) = catalog
        .resolve("example.lexicon.record#stringFormats")
        .and_then(|d| match d {
            Def::Object(o) => o.properties.get("recordkey"),
            _ => None,
        })
    else {
        panic!("stringFormats/recordkey");
    };
    assert_eq!(s.format, Some(StringFormat::RecordKey));
    assert!(matches!(
        catalog.resolve("example.lexicon.record#demoToken"),
        Some(Def::Token(_))
    ));
    assert!(catalog.resolve("example.lexicon.record#nope").is_none());
    assert!(catalog.resolve("#demoToken").is_none());
    let Some(Def::PermissionSet(set)) = catalog.resolve("example.lexicon.permissionset") else {
        panic!("permission set");
    };
    assert_eq!(set.permissions.len(), 6);
    assert_eq!(
        set.title_lang.as_ref().unwrap()["fr"],
        "Example for Modération"
    );
    assert_eq!(
        set.detail_lang.as_ref().unwrap()["fr-FR"],
        "Créer des rapports de modération"
    );
    // The procedure's input needs app.bsky.actor.defs, which this catalog lacks.
    let e = catalog.check_refs().unwrap_err().to_string();
    assert_eq!(
        e,
        "invalid lexicon example.lexicon.procedure at defs/main/input/schema/properties/preferences/ref: reference \"app.bsky.actor.defs#preferences\" does not resolve"
    );
}

#[test]
fn indigo_catalog_loads_and_round_trips() {
    let mut catalog = Catalog::new();
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/interop/extra/indigo/atproto/lexicon/testdata/catalog"
    );
    assert_eq!(catalog.load_dir(dir).unwrap(), 3);
    let ids: Vec<&str> = catalog.ids().collect();
    assert_eq!(
        ids,
        [
            "com.atproto.label.defs",
            "example.lexicon.minimal.procedure",
            "example.lexicon.minimal.query"
        ]
    );
    catalog.check_refs().unwrap();

    let original = fixture_json(
        "interop/extra/indigo/atproto/lexicon/testdata/catalog/com_atproto_label_defs.json",
    );
    let doc = load(&original).unwrap();
    assert_eq!(serde_json::to_value(&doc).unwrap(), original);
    assert_eq!(&doc, catalog.get("com.atproto.label.defs").unwrap());
}

/// Every schema of `lexicons/` is embedded, loads, and every reference resolves.
#[test]
fn builtin_catalog() {
    let catalog = Catalog::builtin().unwrap();
    assert_eq!(catalog.len(), 271);
    catalog.check_refs().unwrap();
    for id in [
        "com.atproto.repo.createRecord",
        "com.atproto.sync.subscribeRepos",
        "app.bsky.feed.post",
        "cn.pocketbase.hub.plugin",
        "cn.pocketbase.hub.listPlugins",
    ] {
        assert!(catalog.get(id).is_some(), "{id}");
    }
    assert_eq!(
        catalog
            .record_def(&"app.bsky.feed.post".parse().unwrap())
            .unwrap()
            .key,
        "tid"
    );
    assert_eq!(
        catalog
            .record_def(&"app.bsky.actor.profile".parse().unwrap())
            .unwrap()
            .key,
        "literal:self"
    );
    let profile = catalog.record_def(&"app.bsky.actor.profile".parse().unwrap());
    assert_eq!(
        profile.unwrap().key_type(),
        Some(RecordKeyType::Literal("self".into()))
    );
    assert!(
        catalog
            .record_def(&"app.bsky.feed.defs".parse().unwrap())
            .is_none()
    );
}

/// The embedded list names exactly the `*.json` files of `lexicons/`, with their contents,
/// and each file's path is its NSID.
#[test]
fn embedded_list_matches_folder() {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path.display().to_string());
            }
        }
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/lexicons/");
    let mut on_disk = Vec::new();
    walk(std::path::Path::new(root), &mut on_disk);
    let mut on_disk: Vec<String> = on_disk
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().to_owned())
        .collect();
    on_disk.sort();
    let embedded: Vec<String> = crate::lexicon::embedded::FILES
        .iter()
        .map(|(p, _)| (*p).to_owned())
        .collect();
    assert_eq!(embedded, on_disk);
    let mut catalog = Catalog::new();
    for (path, json) in crate::lexicon::embedded::FILES {
        assert_eq!(
            *json,
            std::fs::read_to_string(format!("{root}{path}")).unwrap()
        );
        let id = catalog.add_json(json).unwrap();
        assert_eq!(format!("{}.json", id.as_str().replace('.', "/")), *path);
    }
}

/// Reading and writing back every project schema gives the same JSON object.
#[test]
fn builtin_round_trip() {
    for (path, json) in crate::lexicon::embedded::FILES {
        let original: Json = serde_json::from_str(json).unwrap();
        let doc = LexiconDoc::from_json(json).unwrap();
        assert_eq!(serde_json::to_value(&doc).unwrap(), original, "{path}");
    }
}

/// A document `example.rules.doc` with one definition `name`.
fn doc_with(name: &str, def: Json) -> Json {
    serde_json::json!({"lexicon": 1, "id": "example.rules.doc", "defs": {name: def}})
}

fn obj(props: Json) -> Json {
    serde_json::json!({"type": "object", "properties": props})
}

#[test]
fn document_rules() {
    use serde_json::json;
    let cases: Vec<(Json, &str)> = vec![
        (
            json!({"lexicon": 2, "id": "example.rules.doc", "defs": {"a": {"type": "token"}}}),
            "at lexicon: unsupported Lexicon version 2",
        ),
        (
            json!({"lexicon": 1, "id": "example.rules.doc", "defs": {}}),
            "at defs: a lexicon needs at least one definition",
        ),
        (
            doc_with("a.b", json!({"type": "token"})),
            "at defs/a.b: invalid definition name",
        ),
        (
            doc_with("union", json!({"type": "union", "refs": []})),
            "at defs/union: type union cannot be a named definition",
        ),
        (
            doc_with("params", json!({"type": "params", "properties": {}})),
            "at defs/params: type params cannot be a named definition",
        ),
        (
            doc_with(
                "main",
                json!({"type": "query", "parameters": {"type": "params", "properties": {"o": obj(json!({}))}}}),
            ),
            "at defs/main/parameters/properties/o: type object cannot be a query parameter",
        ),
        (
            doc_with(
                "main",
                json!({"type": "query", "parameters": {"type": "params", "properties": {"a": {"type": "array", "items": {"type": "unknown"}}}}}),
            ),
            "at defs/main/parameters/properties/a/items: type unknown cannot be the items of a query parameter",
        ),
        (
            doc_with(
                "main",
                json!({"type": "query", "parameters": {"type": "params", "required": ["x"], "properties": {}}}),
            ),
            "at defs/main/parameters/required: \"x\" is not a property",
        ),
        (
            doc_with(
                "main",
                json!({"type": "query", "output": {"encoding": "application/json", "schema": {"type": "string"}}}),
            ),
            "at defs/main/output/schema: type string cannot be a body schema",
        ),
        (
            doc_with("main", json!({"type": "query", "output": {"encoding": ""}})),
            "at defs/main/output/encoding: encoding must not be empty",
        ),
        (
            doc_with(
                "main",
                json!({"type": "query", "errors": [{"name": "Bad Name"}]}),
            ),
            "at defs/main/errors/0: error names must be non-empty, without whitespace",
        ),
        (
            doc_with(
                "main",
                json!({"type": "subscription", "message": {"schema": obj(json!({}))}}),
            ),
            "at defs/main/message/schema: type object cannot be a subscription message schema",
        ),
        (
            doc_with(
                "main",
                json!({"type": "record", "key": "uuid", "record": obj(json!({}))}),
            ),
            "at defs/main/key: record key type must be tid, nsid, any or literal:<key>, not \"uuid\"",
        ),
        (
            doc_with(
                "main",
                json!({"type": "record", "key": "literal:..", "record": obj(json!({}))}),
            ),
            "at defs/main/key: \"..\" is not a valid record key",
        ),
        (
            doc_with(
                "o",
                json!({"type": "object", "required": ["a", "a"], "properties": {"a": {"type": "integer"}}}),
            ),
            "at defs/o/required: \"a\" is listed twice",
        ),
        (
            doc_with(
                "o",
                json!({"type": "object", "nullable": ["b"], "properties": {"a": {"type": "integer"}}}),
            ),
            "at defs/o/nullable: \"b\" is not a property",
        ),
        (
            doc_with("o", obj(json!({"t": {"type": "token"}}))),
            "at defs/o/properties/t: type token cannot be a field",
        ),
        (
            doc_with(
                "o",
                obj(json!({"r": {"type": "record", "key": "any", "record": obj(json!({}))}})),
            ),
            "at defs/o/properties/r: type record cannot be a field",
        ),
        (
            doc_with("o", obj(json!({"": {"type": "integer"}}))),
            "at defs/o/properties/: property names must not be empty",
        ),
        (
            doc_with(
                "s",
                json!({"type": "string", "minLength": 5, "maxLength": 4}),
            ),
            "at defs/s: minLength is greater than maxLength",
        ),
        (
            doc_with(
                "s",
                json!({"type": "string", "minGraphemes": 5, "maxGraphemes": 4}),
            ),
            "at defs/s: minGraphemes is greater than maxGraphemes",
        ),
        (
            doc_with("s", json!({"type": "string", "const": "a", "default": "a"})),
            "at defs/s: const and default are mutually exclusive",
        ),
        (
            doc_with("i", json!({"type": "integer", "minimum": 5, "maximum": 4})),
            "at defs/i: minimum is greater than maximum",
        ),
        (
            doc_with(
                "b",
                json!({"type": "boolean", "const": true, "default": true}),
            ),
            "at defs/b: const and default are mutually exclusive",
        ),
        (
            doc_with(
                "a",
                json!({"type": "array", "items": {"type": "integer"}, "minLength": 3, "maxLength": 2}),
            ),
            "at defs/a: minLength is greater than maxLength",
        ),
        (
            doc_with(
                "a",
                json!({"type": "array", "items": {"type": "params", "properties": {}}}),
            ),
            "at defs/a/items: type params cannot be a field",
        ),
        (
            doc_with(
                "y",
                json!({"type": "bytes", "minLength": 3, "maxLength": 2}),
            ),
            "at defs/y: minLength is greater than maxLength",
        ),
        (
            doc_with("blob", json!({"type": "blob", "accept": ["image/*", "*"]})),
            "at defs/blob/accept: invalid MIME type pattern \"*\"",
        ),
        (
            doc_with("blob", json!({"type": "blob", "accept": ["text/ht*"]})),
            "at defs/blob/accept: invalid MIME type pattern \"text/ht*\"",
        ),
        (
            doc_with("blob", json!({"type": "blob", "accept": ["*/png"]})),
            "at defs/blob/accept: invalid MIME type pattern \"*/png\"",
        ),
        (
            doc_with("o", obj(json!({"r": {"type": "ref", "ref": "nope"}}))),
            "at defs/o/properties/r/ref: \"nope\" is not a reference (#name, nsid or nsid#name)",
        ),
        (
            doc_with("o", obj(json!({"r": {"type": "ref", "ref": "#"}}))),
            "at defs/o/properties/r/ref: \"#\" is not a reference (#name, nsid or nsid#name)",
        ),
        (
            doc_with(
                "o",
                obj(json!({"u": {"type": "union", "refs": [], "closed": true}})),
            ),
            "at defs/o/properties/u: a closed union needs at least one ref",
        ),
        (
            doc_with(
                "o",
                obj(json!({"u": {"type": "union", "refs": ["#o", "example.rules.doc#o"]}})),
            ),
            "at defs/o/properties/u/refs/1: \"example.rules.doc#o\" is listed twice",
        ),
        (
            doc_with(
                "main",
                json!({"type": "permission-set", "title:lang": {"x y": "t"}, "permissions": []}),
            ),
            "at defs/main/title:lang: \"x y\" is not a language tag",
        ),
        (
            doc_with(
                "main",
                json!({"type": "permission-set", "permissions": [{"type": "permission", "resource": "repo", "collection": []}]}),
            ),
            "at defs/main/permissions/0/collection: a repo permission needs a non-empty collection",
        ),
        (
            doc_with(
                "main",
                json!({"type": "permission-set", "permissions": [{"type": "permission", "resource": "repo", "collection": ["*"]}]}),
            ),
            "at defs/main/permissions/0/collection/0: \"*\" is not an NSID",
        ),
        (
            doc_with(
                "main",
                json!({"type": "permission-set", "permissions": [{"type": "permission", "resource": "repo", "collection": ["a.b.c"], "action": ["read"]}]}),
            ),
            "at defs/main/permissions/0/action/0: unknown repo action \"read\"",
        ),
        (
            doc_with(
                "main",
                json!({"type": "permission-set", "permissions": [{"type": "permission", "resource": "rpc", "lxm": ["a.b.c"]}]}),
            ),
            "at defs/main/permissions/0: an rpc permission needs aud or inheritAud",
        ),
        (
            doc_with(
                "main",
                json!({"type": "permission-set", "permissions": [{"type": "permission", "resource": "rpc", "lxm": ["*"], "aud": "*"}]}),
            ),
            "at defs/main/permissions/0: aud and lxm cannot both be the wildcard",
        ),
        (
            doc_with(
                "main",
                json!({"type": "permission-set", "permissions": [{"type": "permission", "resource": "rpc", "lxm": ["a.b.c"], "aud": "did:web:x.test#svc"}]}),
            ),
            "at defs/main/permissions/0/aud: in a permission set, aud must be the wildcard",
        ),
    ];
    for (json, message) in cases {
        let e = load(&json).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("invalid lexicon example.rules.doc {message}"),
            "{json}"
        );
    }
    // Shape errors: unknown type, permissions that are not permissions, a bad format.
    for (json, start) in [
        (
            doc_with("x", json!({"type": "float"})),
            "malformed lexicon document: unknown variant `float`",
        ),
        (
            doc_with(
                "main",
                json!({"type": "permission-set", "permissions": [{"type": "token"}]}),
            ),
            "malformed lexicon document: expected type \"permission\", found \"token\"",
        ),
        (
            doc_with("s", json!({"type": "string", "format": "email"})),
            "malformed lexicon document: unknown variant `email`",
        ),
        (
            doc_with("s", json!({"type": "string", "maxLength": -1})),
            "malformed lexicon document: invalid value: integer `-1`",
        ),
        (
            doc_with("main", json!({"type": "subscription"})),
            "malformed lexicon document: missing field `message`",
        ),
    ] {
        let e = load(&json).unwrap_err().to_string();
        assert!(e.starts_with(start), "{e}");
    }
    // Fields the model does not know are ignored; unsupported permission resources too.
    let ok = doc_with(
        "main",
        json!({"type": "permission-set", "permissions": [
            {"type": "permission", "resource": "blob", "accept": ["image/*"]},
            {"type": "permission", "resource": "repo", "collection": ["a.b.c"], "futureField": 1}
        ]}),
    );
    load(&ok).unwrap();
}

#[test]
fn reference_rules() {
    use serde_json::json;
    let check = |defs: Json| {
        let mut catalog = Catalog::new();
        catalog
            .add(load(&json!({"lexicon": 1, "id": "example.rules.doc", "defs": defs})).unwrap())
            .unwrap();
        catalog.check_refs().map_err(|e| e.to_string())
    };
    assert_eq!(
        check(json!({"o": obj(json!({"r": {"type": "ref", "ref": "#t"}})), "t": {"type": "token"}})),
        Err("invalid lexicon example.rules.doc at defs/o/properties/r/ref: reference \"#t\" names a token definition, which cannot be a ref".into())
    );
    assert_eq!(
        check(json!({"o": obj(json!({"u": {"type": "union", "refs": ["#s"]}})), "s": {"type": "string"}})),
        Err("invalid lexicon example.rules.doc at defs/o/properties/u/refs/0: reference \"#s\" names a string definition, which cannot be a union member".into())
    );
    assert_eq!(
        check(json!({"o": obj(json!({"a": {"type": "array", "items": {"type": "ref", "ref": "example.other.doc#x"}}}))})),
        Err("invalid lexicon example.rules.doc at defs/o/properties/a/items/ref: reference \"example.other.doc#x\" does not resolve".into())
    );
    assert_eq!(
        check(json!({"main": {"type": "query", "output": {"encoding": "application/json", "schema": {"type": "ref", "ref": "#main"}}}})),
        Err("invalid lexicon example.rules.doc at defs/main/output/schema/ref: reference \"#main\" names a query definition, which cannot be a ref".into())
    );
    // A ref may name a string, a record or an object; a union member an object or record.
    assert_eq!(
        check(json!({
            "main": {"type": "record", "key": "tid", "record": obj(json!({
                "r": {"type": "ref", "ref": "#s"},
                "m": {"type": "ref", "ref": "example.rules.doc"},
                "u": {"type": "union", "refs": ["#o", "example.rules.doc"]}
            }))},
            "o": obj(json!({})),
            "s": {"type": "string"}
        })),
        Ok(())
    );
    let mut catalog = Catalog::new();
    let doc = load(&doc_with("t", json!({"type": "token"}))).unwrap();
    catalog.add(doc.clone()).unwrap();
    assert_eq!(
        catalog.add(doc).unwrap_err().to_string(),
        "lexicon example.rules.doc is already in the catalog"
    );
}

#[test]
fn reference_and_mime_helpers() {
    use crate::lexicon::check::{full_ref, valid_mime_pattern};
    use crate::lexicon::split_ref;
    use crate::lexicon::validate::mime_matches;
    assert_eq!(split_ref("#view"), Some((None, "view")));
    assert_eq!(
        split_ref("app.bsky.feed.post"),
        Some((Some("app.bsky.feed.post"), "main"))
    );
    assert_eq!(
        split_ref("app.bsky.feed.defs#postView"),
        Some((Some("app.bsky.feed.defs"), "postView"))
    );
    for bad in [
        "",
        "#",
        "post",
        "app.bsky.feed.post#",
        "a.b.c#d#e",
        "#a.b",
        "a..b#c",
    ] {
        assert_eq!(split_ref(bad), None, "{bad:?}");
    }
    assert_eq!(full_ref("a.b.c", "#main"), "a.b.c");
    assert_eq!(full_ref("a.b.c", "#x"), "a.b.c#x");
    assert_eq!(full_ref("a.b.c", "d.e.f#main"), "d.e.f");
    assert_eq!(full_ref("a.b.c", "d.e.f"), "d.e.f");

    for ok in [
        "*/*",
        "image/*",
        "image/png",
        "application/vnd.api+json",
        "video/mp4",
    ] {
        assert!(valid_mime_pattern(ok), "{ok}");
    }
    for bad in [
        "*",
        "",
        "image",
        "image/",
        "/png",
        "*/png",
        "text/ht*",
        "image/png/x",
        "image/p ng",
    ] {
        assert!(!valid_mime_pattern(bad), "{bad}");
    }
    assert!(mime_matches("*/*", "text/plain"));
    assert!(mime_matches("image/*", "image/webp"));
    assert!(mime_matches("image/png", "image/png"));
    assert!(mime_matches("image/png", "Image/PNG; charset=x"));
    assert!(!mime_matches("image/*", "imagery/png"));
    assert!(!mime_matches("image/*", "video/mp4"));
    assert!(!mime_matches("image/png", "image/pngx"));
    assert!(!mime_matches("*/*", "plain"));
    assert!(!mime_matches("*/*", "image/"));
}

mod props {
    use proptest::prelude::*;
    use unicode_segmentation::UnicodeSegmentation;

    use crate::repo::cbor::Ipld;

    fn post(text: &str, created: &str) -> Ipld {
        Ipld::Map(
            [
                (
                    "$type".to_owned(),
                    Ipld::String("app.bsky.feed.post".into()),
                ),
                ("text".to_owned(), Ipld::String(text.into())),
                ("createdAt".to_owned(), Ipld::String(created.into())),
            ]
            .into(),
        )
    }

    proptest! {
        /// Post text is accepted exactly when it has at most 3000 UTF-8 bytes and at most 300
        /// graphemes.
        #[test]
        fn post_text_limits(text in "(\\PC|e\u{301}|👨‍👩‍👧‍👦){0,320}") {
            let catalog = &*super::super::BUILTIN;
            let ok = text.len() <= 3000 && text.graphemes(true).count() <= 300;
            let result = catalog.validate_record(&"app.bsky.feed.post".parse().unwrap(), &post(&text, "2024-01-01T00:00:00Z"));
            prop_assert_eq!(result.is_ok(), ok);
        }

        /// Arbitrary values in every position never panic the validator.
        #[test]
        fn arbitrary_values_never_panic(value in arb_ipld()) {
            let catalog = &*super::super::BUILTIN;
            for collection in ["app.bsky.feed.post", "app.bsky.actor.profile", "app.bsky.graph.list"] {
                let mut record = post("x", "2024-01-01T00:00:00Z");
                if let Ipld::Map(map) = &mut record {
                    map.insert("$type".into(), Ipld::String(collection.into()));
                    for key in ["embed", "facets", "reply", "avatar", "labels", "purpose", "langs"] {
                        map.insert(key.into(), value.clone());
                    }
                }
                let _ = catalog.validate_record(&collection.parse().unwrap(), &record);
                let _ = catalog.validate_value("app.bsky.actor.defs#preferences", &value);
            }
        }
    }

    fn arb_ipld() -> impl Strategy<Value = Ipld> {
        let leaf = prop_oneof![
            Just(Ipld::Null),
            any::<bool>().prop_map(Ipld::Bool),
            any::<i64>().prop_map(|i| Ipld::Integer(i.into())),
            "[a-z.#]{0,30}".prop_map(Ipld::String),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(Ipld::Bytes),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Ipld::List),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("$type".to_owned()),
                        Just("images".to_owned()),
                        Just("features".to_owned()),
                        "[a-zA-Z]{1,8}"
                    ],
                    prop_oneof![
                        inner,
                        Just(Ipld::String("app.bsky.embed.images".into())),
                        Just(Ipld::String("app.bsky.richtext.facet#link".into())),
                        Just(Ipld::String("blob".into())),
                    ],
                    0..6
                )
                .prop_map(Ipld::Map),
            ]
        })
    }
}
