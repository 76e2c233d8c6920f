use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::*;
use crate::repo::cid::cid_for_raw;

fn did(s: &str) -> Did {
    s.parse().unwrap()
}

fn one_chunk(data: &'static [u8]) -> ByteStream {
    futures::stream::iter([Ok(Bytes::from_static(data))]).boxed()
}

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn layout_matches_the_reference() {
    let root = tempfile::tempdir().unwrap();
    let store = DiskBlobStore::new(root.path().join("blocks"), root.path().join("tmp"));
    let alice = did("did:plc:ewvi7nxzyoun6zhxrhs64oiz");
    let temp = store
        .put_temp(&alice, one_chunk(b"hello"), 100)
        .await
        .unwrap();
    assert_eq!(
        files_under(root.path()),
        [format!("tmp/did:plc:ewvi7nxzyoun6zhxrhs64oiz/{}", temp.key)]
    );
    store
        .make_permanent(&alice, &temp.key, &temp.cid)
        .await
        .unwrap();
    let cid = cid_for_raw(b"hello");
    assert_eq!(temp.cid, cid);
    assert_eq!(
        files_under(root.path()),
        [format!("blocks/did:plc:ewvi7nxzyoun6zhxrhs64oiz/{cid}")]
    );
    store.quarantine(&alice, &cid).await.unwrap();
    assert_eq!(
        files_under(root.path()),
        [format!(
            "blocks/quarantine/did:plc:ewvi7nxzyoun6zhxrhs64oiz/{cid}"
        )]
    );
    assert!(matches!(
        store.get(&alice, &cid, None).await,
        Err(Error::NotFound)
    ));
    store.unquarantine(&alice, &cid).await.unwrap();
    assert!(store.has(&alice, &cid).await.unwrap());
    assert!(matches!(
        store.unquarantine(&alice, &cid).await,
        Err(Error::NotFound)
    ));
}

#[tokio::test]
async fn traversal_is_impossible() {
    let root = tempfile::tempdir().unwrap();
    let store = DiskBlobStore::new(root.path().join("blocks"), root.path().join("tmp"));
    let alice = did("did:plc:ewvi7nxzyoun6zhxrhs64oiz");
    let cid = cid_for_raw(b"x");
    for key in [
        "../../etc/passwd",
        "..",
        "%2e%2e",
        "%2e%2e%2fetc",
        "/etc/passwd",
        "a/../../b",
        "key\0",
        "KEY",
    ] {
        for result in [
            store.make_permanent(&alice, key, &cid).await.map(|_| ()),
            store.delete_temp(&alice, key).await,
            store.has_temp(&alice, key).await.map(|_| ()),
        ] {
            assert!(
                matches!(result, Err(Error::InvalidKey(_))),
                "{key:?}: {result:?}"
            );
        }
    }
    // DIDs that could name another directory do not parse at all.
    for bad in [
        "../did:plc:x",
        "did:plc:../../x",
        "did:plc:a/b",
        "/did:plc:x",
        "did:plc:x\0",
        "did:plc:a\\b",
        "..",
    ] {
        assert!(bad.parse::<Did>().is_err(), "{bad:?} parsed");
    }
    // Valid DIDs that look like traversal stay a single segment, never decoded.
    for odd in ["did:web:..", "did:plc:%2e%2e", "did:web:localhost%3A1234"] {
        let d = did(odd);
        let temp = store.put_temp(&d, one_chunk(b"x"), 10).await.unwrap();
        store.make_permanent(&d, &temp.key, &cid).await.unwrap();
        assert!(
            root.path()
                .join("blocks")
                .join(odd)
                .join(cid.to_string())
                .is_file()
        );
    }
    let mut names = files_under(root.path());
    names.retain(|n| !n.starts_with("blocks/did:"));
    assert!(names.is_empty(), "{names:?}");
}

#[tokio::test]
async fn dropped_upload_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let store = DiskBlobStore::new(root.path().join("blocks"), root.path().join("tmp"));
    let alice = did("did:plc:ewvi7nxzyoun6zhxrhs64oiz");
    // A body that sends one chunk and then never ends.
    let body = futures::stream::iter([Ok(Bytes::from_static(b"partial"))])
        .chain(futures::stream::pending())
        .boxed();
    let upload = store.put_temp(&alice, body, 100);
    let timed_out = tokio::time::timeout(Duration::from_millis(200), upload).await;
    assert!(timed_out.is_err());
    assert_eq!(files_under(root.path()), Vec::<String>::new());
}

#[tokio::test]
async fn temp_listing_for_gc() {
    let root = tempfile::tempdir().unwrap();
    let store = DiskBlobStore::new(root.path().join("blocks"), root.path().join("tmp"));
    assert_eq!(
        store
            .list_temp_older_than(SystemTime::now(), 10)
            .await
            .unwrap(),
        []
    );
    let alice = did("did:plc:ewvi7nxzyoun6zhxrhs64oiz");
    let bob = did("did:web:bob.example.com");
    let a = store.put_temp(&alice, one_chunk(b"a"), 10).await.unwrap();
    let b = store.put_temp(&bob, one_chunk(b"b"), 10).await.unwrap();
    // Stray files that are not uploads are skipped, never returned.
    std::fs::create_dir_all(root.path().join("tmp/not-a-did")).unwrap();
    std::fs::write(root.path().join("tmp/not-a-did/abc"), b"?").unwrap();
    std::fs::write(
        root.path()
            .join("tmp/did:plc:ewvi7nxzyoun6zhxrhs64oiz/UPPER"),
        b"?",
    )
    .unwrap();

    let past = SystemTime::now() - Duration::from_secs(3600);
    assert_eq!(store.list_temp_older_than(past, 10).await.unwrap(), []);
    let future = SystemTime::now() + Duration::from_secs(3600);
    let mut found = store.list_temp_older_than(future, 10).await.unwrap();
    found.sort_by(|x, y| x.did.cmp(&y.did));
    let keys: Vec<(&str, &str)> = found
        .iter()
        .map(|e| (e.did.as_str(), e.key.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("did:plc:ewvi7nxzyoun6zhxrhs64oiz", a.key.as_str()),
            ("did:web:bob.example.com", b.key.as_str())
        ]
    );
    assert_eq!(
        store.list_temp_older_than(future, 1).await.unwrap().len(),
        1
    );
}
