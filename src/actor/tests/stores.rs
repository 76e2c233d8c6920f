use std::time::Duration;

use sha2::{Digest, Sha256};

use super::*;
use crate::actor::keyfile::KEY_FILE;

#[tokio::test]
async fn layout_create_open_exists_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let stores = ActorStores::new(dir.path(), 4);
    let alice: Did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse().unwrap();
    let hash = hex::encode(Sha256::digest(alice.as_str().as_bytes()));
    let expected_dir = dir
        .path()
        .join("actors")
        .join(&hash[..2])
        .join(alice.as_str());
    assert_eq!(stores.dir(&alice), expected_dir);

    assert!(!stores.exists(&alice).await.unwrap());
    assert!(stores.open(&alice).await.unwrap().is_none());
    assert!(!expected_dir.exists(), "open must never create anything");

    let key = Keypair::generate(Algorithm::K256);
    let handle = stores.create(&alice, &key).await.unwrap();
    assert_eq!(handle.did(), &alice);
    assert_eq!(handle.dir(), expected_dir);
    assert!(expected_dir.join(STORE_FILE).exists());
    assert_eq!(
        std::fs::read_to_string(expected_dir.join(KEY_FILE)).unwrap(),
        hex::encode(key.to_private_bytes())
    );
    assert_eq!(handle.keypair().to_private_bytes(), key.to_private_bytes());
    assert_eq!(
        handle.pool().options().get_max_connections(),
        POOL_CONNECTIONS
    );
    assert!(stores.exists(&alice).await.unwrap());
    assert!(matches!(
        stores.create(&alice, &key).await,
        Err(Error::AlreadyExists(d)) if d == alice.as_str()
    ));
    // The schema is migrated: the records table is there.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM record")
        .fetch_one(handle.pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
    drop(handle);

    // A second instance (a restart) opens it with the same key.
    let again = ActorStores::new(dir.path(), 4);
    let reopened = again.open(&alice).await.unwrap().unwrap();
    assert_eq!(
        reopened.keypair().to_private_bytes(),
        key.to_private_bytes()
    );
    // Its schema is current, so its sqlx pool opened without a connection (nor a thread);
    // the first cold-path query connects it.
    assert_eq!(reopened.pool().size(), 0);
    assert!(reopened.direct().head().await.unwrap().is_none());
    assert_eq!(reopened.pool().size(), 0);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM record")
        .fetch_one(reopened.pool())
        .await
        .unwrap();
    assert_eq!((n, reopened.pool().size()), (0, 1));
    drop(reopened);
    assert!(again.destroy(&alice).await.unwrap());

    // Already deleted by the other instance: this one only closes its cached pool.
    assert!(!stores.destroy(&alice).await.unwrap());
    assert!(!expected_dir.exists());
    assert!(!stores.exists(&alice).await.unwrap());
    assert!(stores.open(&alice).await.unwrap().is_none());
    assert!(!stores.destroy(&alice).await.unwrap());
    // P-256 keys are refused before anything is written.
    let bob = did(2);
    assert!(matches!(
        stores
            .create(&bob, &Keypair::generate(Algorithm::P256))
            .await,
        Err(Error::UnsupportedKeyAlgorithm)
    ));
    assert!(!stores.exists(&bob).await.unwrap());
}

#[tokio::test]
async fn destroy_waits_for_users_and_closes_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let stores = ActorStores::new(dir.path(), 4);
    let alice = did(1);
    let handle = stores
        .create(&alice, &Keypair::generate(Algorithm::K256))
        .await
        .unwrap();
    let conn = handle.pool().acquire().await.unwrap();
    let destroy = {
        let stores = stores.clone();
        let alice = alice.clone();
        tokio::spawn(async move { stores.destroy(&alice).await.unwrap() })
    };
    // Destroy has begun closing the pool (the event); it cannot finish, nor remove the files,
    // while the connection is in use.
    let pool = handle.pool().clone();
    wait_until("destroy closes the pool", || pool.is_closed()).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(
        !destroy.is_finished(),
        "destroy must wait for the connection in use"
    );
    assert!(stores.dir(&alice).exists());
    drop(conn);
    assert!(
        tokio::time::timeout(Duration::from_secs(5), destroy)
            .await
            .unwrap()
            .unwrap()
    );
    assert!(handle.pool().is_closed());
    assert!(handle.pool().acquire().await.is_err());
    assert!(!stores.dir(&alice).exists());
    drop(handle);
    wait_until("every pool is closed", || stores.open_pools() == 0).await;
}

/// Opening 3× more accounts than the cache holds works, and never are more pools open than
/// the bound, even with handles held across evictions.
#[tokio::test]
async fn lru_bounds_open_pools() {
    const BOUND: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let stores = ActorStores::new(dir.path(), BOUND);
    let dids: Vec<Did> = (0..3 * BOUND).map(did).collect();
    let mut max_seen = 0;
    for (i, d) in dids.iter().enumerate() {
        let handle = stores
            .create(d, &Keypair::generate(Algorithm::K256))
            .await
            .unwrap();
        sqlx::query("INSERT INTO account_pref (name, valueJson) VALUES (?1, '{}')")
            .bind(format!("pref-{i}"))
            .execute(handle.pool())
            .await
            .unwrap();
        max_seen = max_seen.max(stores.open_pools());
        assert!(stores.open_pools() <= BOUND && stores.cached() <= BOUND);
    }
    assert_eq!(stores.cached(), BOUND);

    // Round-robin over all of them, twice: every open evicts another.
    for round in 0..2 {
        for (i, d) in dids.iter().enumerate() {
            let handle = stores.open(d).await.unwrap().unwrap();
            let name: String = sqlx::query_scalar("SELECT name FROM account_pref")
                .fetch_one(handle.pool())
                .await
                .unwrap();
            assert_eq!(name, format!("pref-{i}"), "round {round}");
            max_seen = max_seen.max(stores.open_pools());
            assert!(stores.open_pools() <= BOUND, "{} open", stores.open_pools());
        }
    }

    // Hold BOUND - 1 handles; opening others keeps evicting the idle entry only, and the
    // held pools keep working.
    let held: Vec<ActorHandle> =
        futures::future::join_all(dids[..BOUND - 1].iter().map(|d| stores.open(d)))
            .await
            .into_iter()
            .map(|h| h.unwrap().unwrap())
            .collect();
    for d in &dids[BOUND..] {
        let handle = stores.open(d).await.unwrap().unwrap();
        assert!(!handle.pool().is_closed());
        max_seen = max_seen.max(stores.open_pools());
        assert!(stores.open_pools() <= BOUND);
    }
    for (i, handle) in held.iter().enumerate() {
        assert!(!handle.pool().is_closed());
        let name: String = sqlx::query_scalar("SELECT name FROM account_pref")
            .fetch_one(handle.pool())
            .await
            .unwrap();
        assert_eq!(name, format!("pref-{i}"));
    }

    // Hold BOUND handles: the next open must wait until one is released, and then succeeds.
    let mut held = held;
    held.push(stores.open(&dids[BOUND]).await.unwrap().unwrap());
    let waiting = {
        let stores = stores.clone();
        let d = dids[2 * BOUND].clone();
        tokio::spawn(async move { stores.open(&d).await.unwrap().unwrap().did().clone() })
    };
    wait_until("the opener waits for a permit", || {
        stores.permit_waiters() == 1
    })
    .await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!waiting.is_finished(), "must wait for a permit");
    assert!(stores.open_pools() <= BOUND);
    // An evicted entry in use is found again, not opened twice.
    let again = stores.open(&dids[0]).await.unwrap().unwrap();
    assert!(std::sync::Arc::ptr_eq(&again.0, &held[0].0));
    drop(again);
    held.truncate(1);
    let opened = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(opened, dids[2 * BOUND]);
    assert!(stores.open_pools() <= BOUND);
    assert_eq!(max_seen, BOUND);

    drop(held);
    drop(stores);
    // Pools close once the last reference goes.
}

#[tokio::test]
async fn concurrent_opens_of_one_account_share_one_pool() {
    let dir = tempfile::tempdir().unwrap();
    let stores = ActorStores::new(dir.path(), 2);
    let alice = did(1);
    drop(
        stores
            .create(&alice, &Keypair::generate(Algorithm::K256))
            .await
            .unwrap(),
    );
    // Evict it, so the opens below race on a cold cache.
    for i in 2..4 {
        drop(
            stores
                .create(&did(i), &Keypair::generate(Algorithm::K256))
                .await
                .unwrap(),
        );
    }
    let handles: Vec<ActorHandle> = futures::future::join_all((0..8).map(|_| stores.open(&alice)))
        .await
        .into_iter()
        .map(|h| h.unwrap().unwrap())
        .collect();
    assert!(
        handles
            .iter()
            .all(|h| std::sync::Arc::ptr_eq(&h.0, &handles[0].0))
    );
    assert!(stores.open_pools() <= 2);
}

/// The metrics' cache counters: a cached open is a hit, a load a miss, and making room for
/// a store beyond the capacity an eviction.
#[tokio::test]
async fn cache_counts_hits_misses_and_evictions() {
    let dir = tempfile::tempdir().unwrap();
    let stores = ActorStores::new(dir.path(), 1);
    let (alice, bob) = (did(1), did(2));
    for who in [&alice, &bob] {
        drop(
            stores
                .create(who, &Keypair::generate(Algorithm::K256))
                .await
                .unwrap(),
        );
    }
    // Creating bob evicted alice (capacity 1); creations are neither hits nor misses.
    assert_eq!(
        stores.cache_counts(),
        CacheCounts {
            hits: 0,
            misses: 0,
            evictions: 1
        }
    );
    drop(stores.open(&bob).await.unwrap().unwrap());
    drop(stores.open(&alice).await.unwrap().unwrap());
    assert_eq!(
        stores.cache_counts(),
        CacheCounts {
            hits: 1,
            misses: 1,
            evictions: 2
        }
    );
    assert!(stores.open(&did(3)).await.unwrap().is_none());
    assert_eq!(stores.cache_counts().misses, 1);
}

/// A store whose recorded migrations differ from this build's is not opened lazily: sqlx
/// checks it as before and refuses the changed migration.
#[tokio::test]
async fn a_store_with_other_migrations_goes_through_the_migrator() {
    let dir = tempfile::tempdir().unwrap();
    let alice = did(1);
    let key = Keypair::generate(Algorithm::K256);
    {
        let stores = ActorStores::new(dir.path(), 4);
        let handle = stores.create(&alice, &key).await.unwrap();
        sqlx::query("UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1")
            .execute(handle.pool())
            .await
            .unwrap();
        handle.pool().close().await;
    }
    let stores = ActorStores::new(dir.path(), 4);
    let err = stores.open(&alice).await.unwrap_err();
    assert!(err.to_string().contains("migration"), "{err}");
}
