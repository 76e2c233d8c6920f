//! A commit that fails after its blobs were made permanent: the retry still works, and
//! otherwise the garbage collector removes the blob.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::blobs::{BlobStore, ByteStream};
use crate::repo::cbor::BlobRef;
use crate::store::blobs as rows;

const POST: &str = "app.bsky.feed.post";

/// Uploads `bytes` for `did` and tracks them as `image/png`.
async fn upload(env: &Env, did: &Did, bytes: &'static [u8]) -> BlobRef {
    let body: ByteStream = Box::pin(futures::stream::iter([Ok(Bytes::from_static(bytes))]));
    let temp = env
        .repo
        .blob_store()
        .put_temp(did, body, 1000)
        .await
        .unwrap();
    env.repo.track_blob(did, &temp, "image/png").await.unwrap()
}

fn with_blob(blob: &BlobRef) -> Ipld {
    let mut record = post("picture");
    if let Ipld::Map(map) = &mut record {
        map.insert("embed".into(), blob.to_value());
    }
    record
}

/// The blob store's marks of accounts to sweep.
fn marks(env: &Env) -> usize {
    std::fs::read_dir(env.dir.path().join(ACTORS_DIR).join(PENDING_DIR))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn temp_rows(env: &Env, did: &Did) -> u64 {
    let handle = env.repo.stores().open(did).await.unwrap().unwrap();
    let mut conn = handle.pool().acquire().await.unwrap();
    rows::count_temp(&mut conn).await.unwrap()
}

#[tokio::test]
async fn abandoned_commit_is_collected_and_retried_commit_succeeds() {
    let env = Env::new(8).await;
    let alice = did(1);
    env.account(&alice).await;
    let store: Arc<dyn BlobStore> = env.repo.blob_store().clone();

    // Abandoned: the blobs are moved, then the commit never happens.
    let lost = upload(&env, &alice, b"lost picture").await;
    let handle = env.repo.stores().open(&alice).await.unwrap().unwrap();
    let write = create(POST, "3kaaaaaaaaaa2", with_blob(&lost)).write;
    env.repo
        .prepare_blobs(&handle, std::slice::from_ref(&write))
        .await
        .unwrap();
    drop(handle);
    assert!(store.has(&alice, &lost.cid).await.unwrap());
    assert_eq!(temp_rows(&env, &alice).await, 1);
    assert_eq!(marks(&env), 1);

    // Within the grace period it stays (a retry may still come)…
    let report = env
        .repo
        .collect_blob_garbage(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report, BlobGcReport::default());
    assert!(store.has(&alice, &lost.cid).await.unwrap());

    // …and a retry of the commit succeeds although the upload was already moved.
    let retried = upload(&env, &alice, b"retried picture").await;
    let handle = env.repo.stores().open(&alice).await.unwrap().unwrap();
    let write = create(POST, "3kaaaaaaaaab2", with_blob(&retried));
    env.repo
        .prepare_blobs(&handle, std::slice::from_ref(&write.write))
        .await
        .unwrap();
    drop(handle);
    env.repo
        .apply_writes(&alice, vec![write], None)
        .await
        .unwrap();
    assert!(store.has(&alice, &retried.cid).await.unwrap());
    assert_eq!(temp_rows(&env, &alice).await, 1);

    // Past the grace period the abandoned blob goes, the committed one stays.
    let report = env.repo.collect_blob_garbage(Duration::ZERO).await.unwrap();
    assert_eq!(
        report,
        BlobGcReport {
            temp_deleted: 0,
            rows_deleted: 1,
            unmarked: 1,
            failed: 0,
        }
    );
    assert!(!store.has(&alice, &lost.cid).await.unwrap());
    assert!(store.has(&alice, &retried.cid).await.unwrap());
    assert_eq!(temp_rows(&env, &alice).await, 0);
    assert_eq!(marks(&env), 0);

    // Deleting the repository deletes its blobs.
    assert!(env.repo.destroy_repo(&alice).await.unwrap());
    assert!(!store.has(&alice, &retried.cid).await.unwrap());
}
