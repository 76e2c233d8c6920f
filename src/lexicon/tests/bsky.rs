//! Real `app.bsky` / `com.atproto` data against the built-in catalog.

use serde_json::json;

use super::*;
use crate::lexicon::ValidationErrorKind;
use crate::repo::cbor::{decode_record, json_to_record, json_to_value};
use crate::syntax::Nsid;

const IMAGE_CID: &str = "bafkreieqq463374bbcbeq7gpmet5rvrpeqow6t4rtjzrkhnlumdylagaqa";
const POST_CID: &str = "bafyreiaku7udekkiijxcuue3sn6esz7qijqj637rigz4xqdw57fk5houji";
const POST_URI: &str = "at://did:plc:rbtury4cp2sdk4tvnedaqu54/app.bsky.feed.post/3jilislho4s2k";

fn nsid(s: &str) -> Nsid {
    s.parse().unwrap()
}

/// Validates a JSON record (read through the data-model reader) as its own `$type`.
fn check(catalog: &Catalog, record: &Json) -> Result<(), String> {
    let value = json_to_record(record).unwrap_or_else(|e| panic!("not a record: {e}"));
    let collection = nsid(record["$type"].as_str().unwrap());
    catalog
        .validate_record(&collection, &value)
        .map_err(|e| e.to_string())
}

fn testdata_record(name: &str) -> Ipld {
    let path = format!(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/interop/extra/indigo/testing/testdata/{}"
        ),
        name
    );
    decode_record(&std::fs::read(&path).unwrap()).unwrap()
}

fn blob(mime: &str, size: u64) -> Json {
    json!({"$type": "blob", "ref": {"$link": IMAGE_CID}, "mimeType": mime, "size": size})
}

fn post(text: &str) -> Json {
    json!({"$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-05-06T07:08:09.123Z"})
}

/// Both DAG-CBOR posts from 2023 are still valid under the current `app.bsky.feed.post`.
#[test]
fn cbor_posts_validate() {
    let catalog = Catalog::builtin().unwrap();
    let post_nsid = nsid("app.bsky.feed.post");
    for name in ["feedpost_record.cbor", "post_richtext_link.cbor"] {
        let value = testdata_record(name);
        assert_eq!(
            catalog.validate_record(&post_nsid, &value),
            Ok(()),
            "{name}"
        );
    }
    let value = testdata_record("feedpost_record.cbor");
    let json = crate::repo::cbor::value_to_json(&value);
    assert_eq!(json["text"], "Who the hell do you think you are");
    assert_eq!(json["embed"]["media"]["images"][0]["image"]["size"], 751473);

    // Changing the fixtures breaks them where expected.
    let mut bad = json.clone();
    bad["embed"]["media"]["images"][0]["image"]["mimeType"] = "video/mp4".into();
    assert_eq!(
        check(&catalog, &bad),
        Err("Record/embed/media/images/0/image: blob MIME type \"video/mp4\" is not accepted (accepts image/*)".into())
    );
    let mut bad = json.clone();
    bad["embed"]["media"]["images"][0]["image"]["size"] = 2_000_001.into();
    assert_eq!(
        check(&catalog, &bad),
        Err("Record/embed/media/images/0/image: blob is 2000001 bytes, larger than the maximum of 2000000".into())
    );
    let mut bad = json.clone();
    bad["embed"]["record"]["record"]["uri"] = "https://example.com".into();
    let e = check(&catalog, &bad).unwrap_err();
    assert!(
        e.starts_with("Record/embed/record/record/uri: must be a valid at-uri ("),
        "{e}"
    );
    let mut bad = json;
    bad["embed"]["media"]["images"][0]["alt"] = 7.into();
    assert_eq!(
        check(&catalog, &bad),
        Err("Record/embed/media/images/0/alt: must be a string".into())
    );

    let json = crate::repo::cbor::value_to_json(&testdata_record("post_richtext_link.cbor"));
    assert_eq!(
        json["facets"][0]["features"][0]["$type"],
        "app.bsky.richtext.facet#link"
    );
    let mut bad = json.clone();
    bad["facets"][0]["features"][0]["uri"] = "not a uri".into();
    let e = check(&catalog, &bad).unwrap_err();
    assert!(
        e.starts_with("Record/facets/0/features/0/uri: must be a valid uri ("),
        "{e}"
    );
    let mut bad = json;
    bad["facets"][0]["index"]["byteStart"] = (-1).into();
    assert_eq!(
        check(&catalog, &bad),
        Err("Record/facets/0/index/byteStart: can not be less than 0".into())
    );
}

#[test]
fn posts() {
    let catalog = Catalog::builtin().unwrap();
    assert_eq!(check(&catalog, &post("")), Ok(()));
    assert_eq!(check(&catalog, &post(&"a".repeat(300))), Ok(()));
    assert_eq!(
        check(&catalog, &post(&"a".repeat(301))),
        Err("Record/text: must not be longer than 300 graphemes".into())
    );
    // Graphemes, not characters: 300 accented letters of 2 code points each pass, 301 fail.
    assert_eq!(check(&catalog, &post(&"e\u{301}".repeat(300))), Ok(()));
    assert_eq!(
        check(&catalog, &post(&"e\u{301}".repeat(301))),
        Err("Record/text: must not be longer than 300 graphemes".into())
    );
    // 150 family emoji are 150 graphemes but 3750 UTF-8 bytes.
    assert_eq!(
        check(&catalog, &post(&"👨‍👩‍👧‍👦".repeat(150))),
        Err("Record/text: must not be longer than 3000 bytes (UTF-8)".into())
    );

    let mut p = post("hi");
    p["createdAt"] = "2023-02-30T12:00:00Z".into();
    let e = check(&catalog, &p).unwrap_err();
    assert!(
        e.starts_with("Record/createdAt: must be a valid datetime ("),
        "{e}"
    );
    p["createdAt"] = "2023-03-29 20:59:19Z".into();
    let e = check(&catalog, &p).unwrap_err();
    assert!(
        e.starts_with("Record/createdAt: must be a valid datetime ("),
        "{e}"
    );
    let p = json!({"$type": "app.bsky.feed.post", "text": "hi"});
    assert_eq!(
        check(&catalog, &p),
        Err("Record: must have the property \"createdAt\"".into())
    );

    let mut p = post("hi");
    p["langs"] = json!(["en", "pt-BR", "ja"]);
    p["tags"] = json!(["rust"]);
    p["labels"] =
        json!({"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "nudity"}]});
    p["reply"] = json!({
        "root": {"uri": POST_URI, "cid": POST_CID},
        "parent": {"$type": "com.atproto.repo.strongRef", "uri": POST_URI, "cid": POST_CID}
    });
    p["embed"] = json!({"$type": "app.bsky.embed.images", "images": [
        {"alt": "a cat", "image": blob("image/png", 1000), "aspectRatio": {"width": 4, "height": 3}}
    ]});
    assert_eq!(check(&catalog, &p), Ok(()));

    let with = |path: &[&str], value: Json| {
        let mut p = p.clone();
        let mut slot = &mut p;
        for key in path {
            slot = match key.parse::<usize>() {
                Ok(i) => &mut slot[i],
                Err(_) => &mut slot[*key],
            };
        }
        *slot = value;
        check(&catalog, &p)
    };
    assert_eq!(
        with(&["langs"], json!(["en", "en", "en", "en"])),
        Err("Record/langs: must not have more than 3 elements".into())
    );
    let e = with(&["langs", "1"], json!("english!")).unwrap_err();
    assert!(
        e.starts_with("Record/langs/1: must be a valid language ("),
        "{e}"
    );
    assert_eq!(
        with(&["reply", "root"], json!({"uri": POST_URI})),
        Err("Record/reply/root: must have the property \"cid\"".into())
    );
    assert_eq!(
        with(&["reply", "parent", "$type"], json!("app.bsky.feed.post#replyRef")),
        Err("Record/reply/parent/$type: must be \"com.atproto.repo.strongRef\" (or absent), got \"app.bsky.feed.post#replyRef\"".into())
    );
    assert_eq!(
        with(&["labels", "values", "0", "val"], json!("x".repeat(129))),
        Err("Record/labels/values/0/val: must not be longer than 128 bytes (UTF-8)".into())
    );
    assert_eq!(
        with(&["embed", "images", "0", "aspectRatio", "width"], json!(0)),
        Err("Record/embed/images/0/aspectRatio/width: can not be less than 1".into())
    );
    assert_eq!(
        with(&["embed", "images", "0", "image"], json!({"cid": IMAGE_CID, "mimeType": "image/png"})),
        Err("Record/embed/images/0/image: must be a blob reference with $type \"blob\" (legacy form)".into())
    );
    assert_eq!(
        with(
            &["embed", "images", "0", "image"],
            json!({"$link": IMAGE_CID})
        ),
        Err("Record/embed/images/0/image: must be a blob reference".into())
    );
    // Open union: an unlisted type passes unvalidated; a listed one is validated; `$type` is
    // required and is never `…#main`.
    assert_eq!(
        with(&["embed"], json!({"$type": "com.example.embed", "x": [1]})),
        Ok(())
    );
    assert_eq!(
        with(
            &["embed"],
            json!({"$type": "app.bsky.embed.external", "external": {"uri": "https://a.test", "title": "t"}})
        ),
        Err("Record/embed/external: must have the property \"description\"".into())
    );
    assert_eq!(
        with(
            &["embed"],
            json!({"$type": "app.bsky.embed.images#main", "images": []})
        ),
        Err(
            "Record/embed/$type: a $type never ends in #main, got \"app.bsky.embed.images#main\""
                .into()
        )
    );
    assert_eq!(
        with(&["embed"], json!({"$type": "images", "images": []})),
        Err("Record/embed/$type: \"images\" is not a type name (nsid or nsid#name)".into())
    );
    assert_eq!(
        with(&["embed"], json!({"images": []})),
        Err(
            "Record/embed: must be an object which includes the \"$type\" property (union member)"
                .into()
        )
    );
    // Unknown properties are ignored; `null` is not a value unless the schema says so.
    assert_eq!(with(&["futureField"], json!({"anything": [1, 2]})), Ok(()));
    assert_eq!(
        with(&["reply"], Json::Null),
        Err("Record/reply: must not be null".into())
    );
}

#[test]
fn likes_follows_profiles() {
    let catalog = Catalog::builtin().unwrap();
    let created = "2024-05-06T07:08:09Z";
    let like = json!({"$type": "app.bsky.feed.like", "subject": {"uri": POST_URI, "cid": POST_CID}, "createdAt": created});
    assert_eq!(check(&catalog, &like), Ok(()));
    let no_subject = json!({"$type": "app.bsky.feed.like", "createdAt": created});
    assert_eq!(
        check(&catalog, &no_subject),
        Err("Record: must have the property \"subject\"".into())
    );
    let mut bad = like.clone();
    bad["subject"]["cid"] = "not-a-cid!".into();
    let e = check(&catalog, &bad).unwrap_err();
    assert!(
        e.starts_with("Record/subject/cid: must be a valid cid ("),
        "{e}"
    );

    let follow = json!({"$type": "app.bsky.graph.follow", "subject": "did:plc:rbtury4cp2sdk4tvnedaqu54", "createdAt": created});
    assert_eq!(check(&catalog, &follow), Ok(()));
    let mut bad = follow.clone();
    bad["subject"] = "alice.test".into();
    let e = check(&catalog, &bad).unwrap_err();
    assert!(
        e.starts_with("Record/subject: must be a valid did ("),
        "{e}"
    );
    let missing = json!({"$type": "app.bsky.graph.follow", "createdAt": created});
    assert_eq!(
        check(&catalog, &missing),
        Err("Record: must have the property \"subject\"".into())
    );

    let profile = json!({
        "$type": "app.bsky.actor.profile",
        "displayName": "Alice",
        "description": "hello",
        "avatar": blob("image/jpeg", 1_000_000),
        "banner": blob("image/png", 5),
        "pinnedPost": {"uri": POST_URI, "cid": POST_CID}
    });
    assert_eq!(check(&catalog, &profile), Ok(()));
    let mut bad = profile.clone();
    bad["avatar"] = blob("image/gif", 10);
    assert_eq!(
        check(&catalog, &bad),
        Err("Record/avatar: blob MIME type \"image/gif\" is not accepted (accepts image/png, image/jpeg)".into())
    );
    bad["avatar"] = blob("image/png", 1_000_001);
    assert_eq!(
        check(&catalog, &bad),
        Err("Record/avatar: blob is 1000001 bytes, larger than the maximum of 1000000".into())
    );
    bad["avatar"] = blob("IMAGE/PNG; q=1", 10);
    assert_eq!(check(&catalog, &bad), Ok(()));
    let mut bad = profile;
    bad["displayName"] = "ü".repeat(65).into();
    assert_eq!(
        check(&catalog, &bad),
        Err("Record/displayName: must not be longer than 64 graphemes".into())
    );

    // Record keys: posts take TIDs, profiles only `self`.
    let post_nsid = nsid("app.bsky.feed.post");
    let profile_nsid = nsid("app.bsky.actor.profile");
    let tid = "3jzfcijpj2z2a".parse().unwrap();
    let this = "self".parse().unwrap();
    assert_eq!(catalog.validate_record_key(&post_nsid, &tid), Ok(()));
    assert_eq!(catalog.validate_record_key(&profile_nsid, &this), Ok(()));
    assert_eq!(
        catalog
            .validate_record_key(&post_nsid, &this)
            .unwrap_err()
            .to_string(),
        "RecordKey: record key \"self\" does not match the key type \"tid\" of app.bsky.feed.post"
    );
    assert_eq!(
        catalog
            .validate_record_key(&profile_nsid, &tid)
            .unwrap_err()
            .to_string(),
        "RecordKey: record key \"3jzfcijpj2z2a\" does not match the key type \"literal:self\" of app.bsky.actor.profile"
    );
    let e = catalog
        .validate_record_key(&nsid("com.example.thing"), &tid)
        .unwrap_err();
    assert_eq!(e.kind(), ValidationErrorKind::UnknownSchema);
}

#[test]
fn xrpc_inputs_and_params() {
    let catalog = Catalog::builtin().unwrap();
    let create = nsid("com.atproto.repo.createRecord");
    let input = |j: Json| json_to_value(&j).unwrap();
    assert_eq!(
        catalog.validate_input(&create, &input(json!({"repo": "alice.test", "collection": "app.bsky.feed.post", "record": post("hi")}))),
        Ok(())
    );
    let e = catalog
        .validate_input(
            &create,
            &input(
                json!({"repo": "alice.test", "collection": "app.bsky.feed.post", "record": "text"}),
            ),
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "Input/record: must be an object");
    let e = catalog
        .validate_input(
            &create,
            &input(json!({"repo": "alice.test", "collection": "post", "record": {}})),
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Input/collection: must be a valid nsid ("),
        "{e}"
    );

    let list = nsid("com.atproto.repo.listRecords");
    let values = catalog
        .validate_params(
            &list,
            &[
                ("repo", "alice.test"),
                ("collection", "app.bsky.feed.post"),
                ("reverse", "true"),
            ],
        )
        .unwrap();
    let got: Vec<(&str, &Ipld)> = values.iter().map(|(k, v)| (k.as_str(), v)).collect();
    assert_eq!(
        got,
        [
            ("collection", &Ipld::String("app.bsky.feed.post".into())),
            ("limit", &Ipld::Integer(50)),
            ("repo", &Ipld::String("alice.test".into())),
            ("reverse", &Ipld::Bool(true)),
        ]
    );
    let e = catalog
        .validate_params(
            &list,
            &[
                ("repo", "alice.test"),
                ("collection", "app.bsky.feed.post"),
                ("limit", "101"),
            ],
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "Params/limit: can not be greater than 100");
    let e = catalog
        .validate_params(&list, &[("repo", "alice.test")])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Params: must have the property \"collection\""
    );

    // validate_value: a named definition, by global reference.
    let strong = json_to_value(&json!({"uri": POST_URI, "cid": POST_CID})).unwrap();
    assert_eq!(
        catalog.validate_value("com.atproto.repo.strongRef", &strong),
        Ok(())
    );
    let e = catalog
        .validate_value("com.atproto.repo.strongRef#nope", &strong)
        .unwrap_err();
    assert_eq!(e.kind(), ValidationErrorKind::UnknownSchema);
    let e = catalog.validate_value("#main", &strong).unwrap_err();
    assert_eq!(e.to_string(), "Value: \"#main\" is not a global reference");
    let prefs = json_to_value(
        &json!([{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": "yes"}]),
    )
    .unwrap();
    assert_eq!(
        catalog
            .validate_value("app.bsky.actor.defs#preferences", &prefs)
            .unwrap_err()
            .to_string(),
        "Value/0/enabled: must be a boolean"
    );
    // A record referenced as a value needs its `$type`.
    let e = catalog
        .validate_value("app.bsky.feed.post", &strong)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Value: must have a $type of \"app.bsky.feed.post\""
    );
}

/// Deep nesting ends in an error, not a stack overflow.
#[test]
fn deep_values_are_bounded() {
    let mut catalog = Catalog::new();
    catalog
        .add_json(r##"{"lexicon": 1, "id": "example.deep.node", "defs": {"main": {"type": "object", "properties": {"next": {"type": "ref", "ref": "#main"}}}}}"##)
        .unwrap();
    let mut value = Ipld::Map(Default::default());
    for _ in 0..200 {
        value = Ipld::Map([("next".to_owned(), value)].into());
    }
    let e = catalog
        .validate_value("example.deep.node", &value)
        .unwrap_err();
    assert_eq!(e.message(), "nested deeper than 64 levels");
    assert_eq!(e.path().split('/').count(), 66);
}
