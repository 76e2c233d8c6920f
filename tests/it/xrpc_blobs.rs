//! Blobs end to end over real HTTP, each test body run against both blob stores: the disk
//! store in the PDS's data directory, and the S3 store against a real S3-compatible server
//! (`support::s3`). After each step the test lists everything the store holds, so a blob left
//! behind (or missing) is a failure.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use rookery::accounts::EmailTokenPurpose;
use rookery::config::{BlobstoreConfig, Config};
use rookery::repo::cid::cid_for_raw;
use rookery::server::blob_gc::BlobGc;
use rookery::syntax::Did;
use serde_json::{Value, json};
use support::pds::TestPds;
use support::s3::S3Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Each S3 test's bucket is `rookery-blobs-{n}`.
const BUCKET: &str = "rookery-blobs";
const POST: &str = "app.bsky.feed.post";

#[derive(Clone, Copy)]
enum Kind {
    Disk,
    S3,
}

struct Env {
    pds: TestPds,
    /// The shared S3 server and this test's own bucket on it.
    s3: Option<(&'static S3Server, String)>,
    data: PathBuf,
    http: reqwest::Client,
}

impl Env {
    async fn start(kind: Kind, adjust: impl FnOnce(&mut Config)) -> Env {
        let s3 = match kind {
            Kind::Disk => None,
            Kind::S3 => {
                let server = S3Server::shared();
                Some((server, server.new_bucket(BUCKET).await))
            }
        };
        let store = s3
            .as_ref()
            .map(|(s, bucket)| BlobstoreConfig::S3(s.config(bucket)));
        let pds = TestPds::start_with(|config| {
            config.blobstore = store.unwrap_or_else(|| BlobstoreConfig::Disk {
                location: config.data_directory.join("blocks"),
                tmp_location: config.data_directory.join("tmp"),
            });
            adjust(config);
        })
        .await;
        let data = pds.state.config().data_directory.clone();
        Env {
            pds,
            s3,
            data,
            http: reqwest::Client::new(),
        }
    }

    /// Everything the blob store holds: `blocks/<did>/<cid>` and `tmp/<did>/*` (temp keys are
    /// random), sorted.
    async fn inventory(&self) -> Vec<String> {
        let mut found = match &self.s3 {
            Some((server, bucket)) => server.inventory(bucket).await,
            None => {
                let mut found = Vec::new();
                for area in ["blocks", "tmp"] {
                    walk(&self.data, &self.data.join(area), &mut found);
                }
                found
            }
        };
        for name in &mut found {
            if name.starts_with("tmp/")
                && let Some((dir, _key)) = name.rsplit_once('/')
            {
                *name = format!("{dir}/*");
            }
        }
        found.sort();
        found
    }

    fn url(&self, method: &str) -> String {
        format!("{}/xrpc/{method}", self.pds.url())
    }

    async fn upload(&self, token: &str, content_type: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let reply = self
            .http
            .post(self.url("com.atproto.repo.uploadBlob"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap();
        (reply.status(), reply.json().await.unwrap())
    }

    /// Uploads `bytes` and returns the blob reference.
    async fn upload_ok(&self, token: &str, content_type: &str, bytes: Vec<u8>) -> Value {
        let (status, out) = self.upload(token, content_type, bytes).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out["blob"].clone()
    }

    async fn post(&self, token: &str, method: &str, body: Value) -> (StatusCode, Value) {
        let reply = self
            .http
            .post(self.url(method))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (reply.status(), reply.json().await.unwrap())
    }

    async fn get(&self, token: Option<&str>, method: &str, query: &str) -> (StatusCode, Value) {
        let mut request = self.http.get(format!("{}?{query}", self.url(method)));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let reply = request.send().await.unwrap();
        (reply.status(), reply.json().await.unwrap())
    }

    async fn get_blob(&self, did: &Did, cid: &str, range: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!(
            "{}?did={did}&cid={cid}",
            self.url("com.atproto.sync.getBlob")
        ));
        if let Some(range) = range {
            request = request.header("range", range);
        }
        request.send().await.unwrap()
    }

    async fn create_record(
        &self,
        token: &str,
        did: &Did,
        collection: &str,
        rkey: &str,
        record: Value,
    ) -> (StatusCode, Value) {
        self.post(
            token,
            "com.atproto.repo.createRecord",
            json!({"repo": did.as_str(), "collection": collection, "rkey": rkey, "record": record}),
        )
        .await
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).unwrap();
            out.push(rel.to_string_lossy().into_owned());
        }
    }
}

/// `len` bytes that sniff as PNG.
fn png(len: usize, seed: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend((0..len - bytes.len()).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    bytes
}

fn image_post(blob: &Value) -> Value {
    json!({
        "$type": POST,
        "text": "a picture",
        "createdAt": "2026-11-23T00:00:00.000Z",
        "embed": {"$type": "app.bsky.embed.images", "images": [{"image": blob, "alt": "noise"}]},
    })
}

fn blob_ref(bytes: &[u8], mime: &str) -> Value {
    json!({
        "$type": "blob",
        "ref": {"$link": cid_for_raw(bytes).to_string()},
        "mimeType": mime,
        "size": bytes.len(),
    })
}

fn assert_error(got: &(StatusCode, Value), status: StatusCode, name: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"], name, "{}", got.1);
    assert!(got.1["message"].is_string(), "{}", got.1);
}

/// Runs a test body once on each blob store.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn disk() {
                super::$name(super::Kind::Disk).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3() {
                super::$name(super::Kind::S3).await;
            }
        }
    )*};
}

both_stores!(
    lifecycle,
    garbage_collection,
    refusals,
    truncated_and_oversized_uploads,
    missing_blobs,
    account_deletion,
);

/// Upload → post with an image → getBlob (headers, ranges) → listBlobs → delete → gone.
async fn lifecycle(kind: Kind) {
    let env = Env::start(kind, |_| {}).await;
    let (did, token) = env.pds.seed_account("alice.test", "hunter2hunter2").await;
    let bytes = png(3000, 1);
    let cid = cid_for_raw(&bytes).to_string();

    // Declared as JPEG, stored as what the bytes are.
    let blob = env.upload_ok(&token, "image/jpeg", bytes.clone()).await;
    assert_eq!(blob, blob_ref(&bytes, "image/png"));
    let tmp = format!("tmp/{did}/*");
    assert_eq!(env.inventory().await, vec![tmp.clone()]);
    // Not served before a record references it.
    let reply = env.get_blob(&did, &cid, None).await;
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    // The same bytes again replace the waiting upload.
    assert_eq!(
        env.upload_ok(&token, "image/png", bytes.clone()).await,
        blob
    );
    assert_eq!(env.inventory().await, vec![tmp]);

    let (status, out) = env
        .create_record(&token, &did, POST, "3kaaaaaaaaaa2", image_post(&blob))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let permanent = format!("blocks/{did}/{cid}");
    assert_eq!(env.inventory().await, vec![permanent.clone()]);
    // Uploading a permanent blob again keeps nothing new.
    assert_eq!(
        env.upload_ok(&token, "image/png", bytes.clone()).await,
        blob
    );
    assert_eq!(env.inventory().await, vec![permanent.clone()]);

    let reply = env.get_blob(&did, &cid, None).await;
    assert_eq!(reply.status(), StatusCode::OK);
    let headers = reply.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["content-length"], "3000");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(reply.bytes().await.unwrap(), bytes);

    for (range, first, last) in [
        ("bytes=10-19", 10, 19),
        ("bytes=2990-", 2990, 2999),
        ("bytes=-5", 2995, 2999),
        ("bytes=2000-99999", 2000, 2999),
    ] {
        let reply = env.get_blob(&did, &cid, Some(range)).await;
        assert_eq!(reply.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            reply.headers()["content-range"],
            format!("bytes {first}-{last}/3000").as_str()
        );
        assert_eq!(
            reply.headers()["content-length"],
            (last - first + 1).to_string().as_str()
        );
        assert_eq!(
            reply.bytes().await.unwrap(),
            &bytes[first..=last],
            "{range}"
        );
    }
    let reply = env.get_blob(&did, &cid, Some("bytes=3000-")).await;
    assert_eq!(reply.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(reply.headers()["content-range"], "bytes */3000");
    // Several ranges: the whole blob.
    let reply = env.get_blob(&did, &cid, Some("bytes=0-1,5-6")).await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.bytes().await.unwrap(), bytes);

    let list = |query: String| {
        let env = &env;
        async move { env.get(None, "com.atproto.sync.listBlobs", &query).await }
    };
    assert_eq!(
        list(format!("did={did}")).await,
        (StatusCode::OK, json!({"cids": [cid], "cursor": cid}))
    );
    assert_eq!(
        list(format!("did={did}&cursor={cid}")).await,
        (StatusCode::OK, json!({"cids": []}))
    );
    // A second post sharing the blob: deleting the first keeps it.
    let (status, second) = env
        .create_record(&token, &did, POST, "3kaaaaaaaaab2", image_post(&blob))
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let rev = second["commit"]["rev"].as_str().unwrap();
    assert_eq!(
        list(format!("did={did}&since={rev}")).await,
        (StatusCode::OK, json!({"cids": []}))
    );
    let delete = |rkey: &'static str| {
        let env = &env;
        let did = did.clone();
        let token = token.clone();
        async move {
            env.post(
                &token,
                "com.atproto.repo.deleteRecord",
                json!({"repo": did.as_str(), "collection": POST, "rkey": rkey}),
            )
            .await
        }
    };
    assert_eq!(delete("3kaaaaaaaaaa2").await.0, StatusCode::OK);
    assert_eq!(env.inventory().await, vec![permanent]);
    assert_eq!(
        env.get_blob(&did, &cid, None).await.status(),
        StatusCode::OK
    );

    assert_eq!(delete("3kaaaaaaaaab2").await.0, StatusCode::OK);
    assert_eq!(env.inventory().await, Vec::<String>::new());
    let reply = env.get_blob(&did, &cid, None).await;
    let got = (reply.status(), reply.json::<Value>().await.unwrap());
    assert_error(&got, StatusCode::BAD_REQUEST, "BlobNotFound");
    assert_eq!(
        list(format!("did={did}")).await,
        (StatusCode::OK, json!({"cids": []}))
    );
}

/// Uploads no record references are collected after the grace period; referenced ones stay.
async fn garbage_collection(kind: Kind) {
    let env = Env::start(kind, |_| {}).await;
    let (did, token) = env.pds.seed_account("gc.test", "hunter2hunter2").await;
    let kept = png(500, 2);
    let dropped = png(600, 3);
    let kept_ref = env.upload_ok(&token, "image/png", kept.clone()).await;
    let dropped_ref = env.upload_ok(&token, "image/png", dropped).await;
    let (status, out) = env
        .create_record(&token, &did, POST, "3kaaaaaaaaaa2", image_post(&kept_ref))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let permanent = format!("blocks/{did}/{}", cid_for_raw(&kept));
    let tmp = format!("tmp/{did}/*");
    assert_eq!(env.inventory().await, vec![permanent.clone(), tmp]);

    // Within the grace period nothing goes.
    let gc = BlobGc::new(env.pds.state.repo().clone(), Duration::from_secs(3600));
    assert_eq!(gc.step().await.unwrap(), Default::default());
    assert_eq!(env.inventory().await.len(), 2);

    let gc = BlobGc::new(env.pds.state.repo().clone(), Duration::ZERO);
    let report = gc.step().await.unwrap();
    assert_eq!((report.temp_deleted, report.failed), (1, 0));
    assert_eq!(env.inventory().await, vec![permanent.clone()]);
    // A later pass finds nothing more; the collected blob can no longer be referenced.
    let report = gc.step().await.unwrap();
    assert_eq!((report.temp_deleted, report.rows_deleted), (0, 0));
    let got = env
        .create_record(
            &token,
            &did,
            POST,
            "3kaaaaaaaaab2",
            image_post(&dropped_ref),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "BlobNotFound");
    assert_eq!(env.inventory().await, vec![permanent]);
}

/// Records whose blobs are unknown, another account's, or of the wrong kind; bad parameters.
async fn refusals(kind: Kind) {
    let env = Env::start(kind, |_| {}).await;
    let (alice, alice_token) = env.pds.seed_account("alice.test", "hunter2hunter2").await;
    let (bob, bob_token) = env.pds.seed_account("bob.test", "hunter2hunter2").await;

    // Never uploaded.
    let ghost = png(100, 9);
    let got = env
        .create_record(
            &alice_token,
            &alice,
            POST,
            "3kaaaaaaaaaa2",
            image_post(&blob_ref(&ghost, "image/png")),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "BlobNotFound");
    assert_eq!(
        got.1["message"],
        format!("Could not find blob: {}", cid_for_raw(&ghost))
    );

    // Bob's blob in Alice's record.
    let bobs = png(200, 4);
    let bobs_ref = env.upload_ok(&bob_token, "image/png", bobs.clone()).await;
    let got = env
        .create_record(
            &alice_token,
            &alice,
            POST,
            "3kaaaaaaaaaa2",
            image_post(&bobs_ref),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "BlobNotFound");
    assert_eq!(env.inventory().await, vec![format!("tmp/{bob}/*")]);

    // PNG bytes declared as HTML: refused, nothing kept.
    let got = env.upload(&alice_token, "text/html", png(300, 5)).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "InvalidRequest");
    assert_eq!(env.inventory().await, vec![format!("tmp/{bob}/*")]);

    // A reference whose type or size differs from the upload.
    let image = png(400, 6);
    let image_ref = env
        .upload_ok(&alice_token, "image/png", image.clone())
        .await;
    let mut wrong = image_ref.clone();
    wrong["mimeType"] = json!("image/jpeg");
    let got = env
        .create_record(
            &alice_token,
            &alice,
            POST,
            "3kaaaaaaaaaa2",
            image_post(&wrong),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "InvalidMimeType");
    let mut wrong = image_ref.clone();
    wrong["size"] = json!(401);
    let got = env
        .create_record(
            &alice_token,
            &alice,
            POST,
            "3kaaaaaaaaaa2",
            image_post(&wrong),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "InvalidSize");

    // The lexicon's accept: a text avatar.
    let text_ref = env
        .upload_ok(&alice_token, "text/plain", b"not a picture".to_vec())
        .await;
    assert_eq!(text_ref["mimeType"], "text/plain");
    let got = env
        .create_record(
            &alice_token,
            &alice,
            "app.bsky.actor.profile",
            "self",
            json!({"$type": "app.bsky.actor.profile", "avatar": text_ref}),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "InvalidRequest");
    // Nothing was made permanent by the refused writes.
    let tmp_alice = format!("tmp/{alice}/*");
    let mut expected = vec![tmp_alice.clone(), tmp_alice, format!("tmp/{bob}/*")];
    expected.sort();
    assert_eq!(env.inventory().await, expected);

    // Parameters.
    let sync = |query: &str| {
        let env = &env;
        let query = query.to_owned();
        async move { env.get(None, "com.atproto.sync.getBlob", &query).await }
    };
    let image_cid = cid_for_raw(&image).to_string();
    for query in [
        format!("did=not-a-did&cid={image_cid}"),
        format!("did={alice}&cid=..%2F..%2Fetc%2Fpasswd"),
        format!("did=did:plc:..%2F..%2Fetc&cid={image_cid}"),
        format!("did={alice}&cid=bafkrei"),
        format!("did={alice}"),
        "cid=x".to_owned(),
    ] {
        assert_error(
            &sync(&query).await,
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
        );
    }
    assert_error(
        &sync(&format!("did=did:plc:..&cid={image_cid}")).await,
        StatusCode::BAD_REQUEST,
        "RepoNotFound",
    );
    assert_error(
        &sync(&format!("did={alice}&cid={}", cid_for_raw(&ghost))).await,
        StatusCode::BAD_REQUEST,
        "BlobNotFound",
    );
    // Bob's blob is not Alice's (and is not yet permanent anyway).
    assert_error(
        &sync(&format!("did={alice}&cid={}", cid_for_raw(&bobs))).await,
        StatusCode::BAD_REQUEST,
        "BlobNotFound",
    );
    for query in [
        format!("did={alice}&limit=0"),
        format!("did={alice}&limit=1001"),
        format!("did={alice}&cursor=nope"),
        format!("did={alice}&since=yesterday"),
        "did=nope".to_owned(),
    ] {
        assert_error(
            &env.get(None, "com.atproto.sync.listBlobs", &query).await,
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
        );
    }
    assert_error(
        &env.get(None, "com.atproto.sync.listBlobs", "did=did:plc:nobody")
            .await,
        StatusCode::BAD_REQUEST,
        "RepoNotFound",
    );
    // Uploads need a session.
    let reply = env
        .http
        .post(env.url("com.atproto.repo.uploadBlob"))
        .body(png(50, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(env.inventory().await, expected);

    // Unavailable repositories: neither a deactivated account nor a taken-down one serves
    // blobs. (A deactivated account may still upload, as with the reference: an account
    // moving here brings its blobs before activation; see the migration tests.)
    let now = chrono::Utc::now().timestamp();
    let accounts = env.pds.state.accounts();
    accounts.deactivate(bob.as_str(), now, None).await.unwrap();
    let bobs_cid = cid_for_raw(&bobs);
    assert_error(
        &sync(&format!("did={bob}&cid={bobs_cid}")).await,
        StatusCode::BAD_REQUEST,
        "RepoDeactivated",
    );
    assert_error(
        &env.get(None, "com.atproto.sync.listBlobs", &format!("did={bob}"))
            .await,
        StatusCode::BAD_REQUEST,
        "RepoDeactivated",
    );
    accounts.takedown(alice.as_str(), "mod-1").await.unwrap();
    assert_error(
        &sync(&format!("did={alice}&cid={image_cid}")).await,
        StatusCode::BAD_REQUEST,
        "RepoTakendown",
    );
    assert_eq!(env.inventory().await, expected);
}

/// Uploads that break off or go past the limit leave nothing behind.
async fn truncated_and_oversized_uploads(kind: Kind) {
    let env = Env::start(kind, |config| config.blob_upload_limit = 1000).await;
    let (_did, token) = env.pds.seed_account("carol.test", "hunter2hunter2").await;

    // Announced too large.
    let got = env.upload(&token, "image/png", png(1001, 1)).await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "BlobTooLarge");
    // Exactly the limit is fine.
    let at_limit = env.upload_ok(&token, "image/png", png(1000, 1)).await;
    assert_eq!(at_limit["size"], 1000);
    let kept = env.inventory().await;
    assert_eq!(kept.len(), 1);

    // Streamed without a length, too large.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..4).map(|i| Ok(png(400, i as u8))).collect();
    let reply = env
        .http
        .post(env.url("com.atproto.repo.uploadBlob"))
        .bearer_auth(&token)
        .header("content-type", "image/png")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let got = (reply.status(), reply.json::<Value>().await.unwrap());
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "BlobTooLarge");
    assert_eq!(env.inventory().await, kept);

    // A client that announces 900 bytes, sends 300 and stops sending.
    let mut socket = tokio::net::TcpStream::connect(env.pds.addr).await.unwrap();
    let head = format!(
        "POST /xrpc/com.atproto.repo.uploadBlob HTTP/1.1\r\nhost: {}\r\n\
         authorization: Bearer {token}\r\ncontent-type: image/png\r\n\
         content-length: 900\r\n\r\n",
        env.pds.addr
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&png(300, 7)).await.unwrap();
    socket.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut answer))
        .await
        .expect("the server answers a broken-off upload")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains(r#""error":"InvalidRequest""#), "{answer}");
    assert_eq!(env.inventory().await, kept);
}

/// `listMissingBlobs` after a migration-like loss of the blob, and the upload that repairs it.
async fn missing_blobs(kind: Kind) {
    let env = Env::start(kind, |_| {}).await;
    let (did, token) = env.pds.seed_account("dave.test", "hunter2hunter2").await;
    let bytes = png(700, 8);
    let cid = cid_for_raw(&bytes);
    let blob = env.upload_ok(&token, "image/png", bytes.clone()).await;
    let (status, out) = env
        .create_record(&token, &did, POST, "3kaaaaaaaaaa2", image_post(&blob))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let missing = |query: &'static str| {
        let env = &env;
        let token = token.clone();
        async move {
            env.get(Some(&token), "com.atproto.repo.listMissingBlobs", query)
                .await
        }
    };
    assert_eq!(missing("").await, (StatusCode::OK, json!({"blobs": []})));

    // As after an import: the record is there, the blob is not.
    let state = &env.pds.state;
    state.blobs().delete(&did, &cid).await.unwrap();
    let handle = state.repo().stores().open(&did).await.unwrap().unwrap();
    sqlx::query("DELETE FROM blob")
        .execute(handle.pool())
        .await
        .unwrap();
    drop(handle);
    assert_eq!(env.inventory().await, Vec::<String>::new());
    let uri = format!("at://{did}/{POST}/3kaaaaaaaaaa2");
    assert_eq!(
        missing("").await,
        (
            StatusCode::OK,
            json!({"blobs": [{"cid": cid.to_string(), "recordUri": uri}], "cursor": cid.to_string()})
        )
    );
    assert_eq!(missing("limit=0").await.0, StatusCode::BAD_REQUEST);

    // Uploading it again makes it permanent at once.
    assert_eq!(
        env.upload_ok(&token, "image/png", bytes.clone()).await,
        blob
    );
    assert_eq!(env.inventory().await, vec![format!("blocks/{did}/{cid}")]);
    assert_eq!(missing("").await, (StatusCode::OK, json!({"blobs": []})));
    let reply = env.get_blob(&did, &cid.to_string(), None).await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.bytes().await.unwrap(), bytes);
    assert_eq!(
        env.get(None, "com.atproto.repo.listMissingBlobs", "")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

/// Deleting the account deletes its blobs, permanent and waiting, and no one else's.
async fn account_deletion(kind: Kind) {
    let env = Env::start(kind, |_| {}).await;
    let (did, token) = env.pds.seed_account("erin.test", "hunter2hunter2").await;
    let (other, other_token) = env.pds.seed_account("frank.test", "hunter2hunter2").await;
    let posted = env.upload_ok(&token, "image/png", png(800, 1)).await;
    env.upload_ok(&token, "image/png", png(900, 2)).await;
    let (status, out) = env
        .create_record(&token, &did, POST, "3kaaaaaaaaaa2", image_post(&posted))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    env.upload_ok(&other_token, "image/png", png(100, 3)).await;
    assert_eq!(env.inventory().await.len(), 3);

    let now = chrono::Utc::now().timestamp();
    let email_token = env
        .pds
        .state
        .accounts()
        .create_email_token(did.as_str(), EmailTokenPurpose::DeleteAccount, now)
        .await
        .unwrap();
    let reply = env
        .http
        .post(env.url("com.atproto.server.deleteAccount"))
        .json(&json!({"did": did.as_str(), "password": "hunter2hunter2", "token": email_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(env.inventory().await, vec![format!("tmp/{other}/*")]);
    let cid = posted["ref"]["$link"].as_str().unwrap();
    let reply = env.get_blob(&did, cid, None).await;
    let got = (reply.status(), reply.json::<Value>().await.unwrap());
    assert_error(&got, StatusCode::BAD_REQUEST, "RepoNotFound");
}

/// The official client (`@atproto/api`, Node 22) uploads, posts and reads a blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_round_trip() {
    let env = Env::start(Kind::Disk, |_| {}).await;
    let (did, _) = env.pds.seed_account("gina.test", "hunter2hunter2").await;
    let args = vec![
        env.pds.url(),
        "gina.test".to_owned(),
        "hunter2hunter2".to_owned(),
    ];
    let result = support::run_js("api-blobs.mjs", args).await;
    assert_eq!(result["did"], did.as_str());
    assert_eq!(result["size"], 5000);
    let cid = result["cid"].as_str().unwrap();
    assert_eq!(env.inventory().await, vec![format!("blocks/{did}/{cid}")]);
}
