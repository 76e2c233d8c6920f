//! A map of async mutexes, one per key (DID), that does not grow forever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OwnedMutexGuard;

/// Smallest number of map entries at which dead ones are swept.
const MIN_SWEEP: usize = 64;

/// One `tokio::sync::Mutex` per key, created on first use.
///
/// The map holds only weak references: a key's mutex lives while someone holds or waits for
/// it, and its dead entry is swept once the map has doubled since the last sweep, so the map
/// stays within about twice the number of keys in use (amortised O(1) per lock).
#[derive(Debug, Default)]
pub(crate) struct KeyedLocks {
    inner: Mutex<Map>,
}

#[derive(Debug, Default)]
struct Map {
    locks: HashMap<String, Weak<tokio::sync::Mutex<()>>>,
    sweep_at: usize,
}

impl KeyedLocks {
    /// Waits for and takes the lock of `key`.
    pub(crate) async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let mutex = self.mutex(key);
        mutex.lock_owned().await
    }

    fn mutex(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        // A poisoned map is still a valid map: every operation on it is a single insert or
        // retain that cannot leave it half-done.
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mutex) = map.locks.get(key).and_then(Weak::upgrade) {
            return mutex;
        }
        let mutex = Arc::new(tokio::sync::Mutex::new(()));
        map.locks.insert(key.to_owned(), Arc::downgrade(&mutex));
        if map.locks.len() >= map.sweep_at.max(MIN_SWEEP) {
            map.locks.retain(|_, weak| weak.strong_count() > 0);
            map.sweep_at = 2 * map.locks.len();
        }
        mutex
    }

    /// How many hold or wait for `key`'s lock (each keeps a reference to its mutex).
    #[cfg(test)]
    pub(crate) fn users(&self, key: &str) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .locks
            .get(key)
            .map_or(0, Weak::strong_count)
    }

    /// Entries in the map, live or not yet swept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .locks
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn same_key_is_exclusive_other_keys_are_not() {
        let locks = Arc::new(KeyedLocks::default());
        let a = locks.lock("did:plc:a").await;
        // Another key is free.
        let b = tokio::time::timeout(Duration::from_millis(100), locks.lock("did:plc:b")).await;
        assert!(b.is_ok());
        // The same key waits until the first guard is dropped: the waiter is queued on the
        // mutex (it holds a reference to it) and, polled again and again, stays pending.
        let mut waiter = std::pin::pin!(locks.lock("did:plc:a"));
        for _ in 0..100 {
            assert!(futures::poll!(waiter.as_mut()).is_pending());
            tokio::task::yield_now().await;
        }
        assert_eq!(locks.users("did:plc:a"), 2);
        drop(a);
        let taken = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        drop(taken.expect("the waiter takes the lock once it is free"));
    }

    #[tokio::test]
    async fn users_counts_holders_and_waiters() {
        let locks = KeyedLocks::default();
        assert_eq!(locks.users("did:plc:k"), 0);
        let held = locks.lock("did:plc:k").await;
        assert_eq!(locks.users("did:plc:k"), 1);
        {
            let mut waiting = std::pin::pin!(locks.lock("did:plc:k"));
            // Not yet polled: not yet a user.
            assert_eq!(locks.users("did:plc:k"), 1);
            assert!(futures::poll!(waiting.as_mut()).is_pending());
            assert_eq!(locks.users("did:plc:k"), 2);
        }
        // A waiter given up lets go of the mutex.
        assert_eq!(locks.users("did:plc:k"), 1);
        drop(held);
        assert_eq!(locks.users("did:plc:k"), 0);
    }

    #[tokio::test]
    async fn map_does_not_grow_with_keys_used_once() {
        let locks = KeyedLocks::default();
        for i in 0..10_000 {
            drop(locks.lock(&format!("did:plc:{i}")).await);
            assert!(locks.len() <= MIN_SWEEP, "{} entries at {i}", locks.len());
        }
        // Held locks survive sweeps.
        let keys: Vec<String> = (0..100).map(|i| format!("did:web:{i}")).collect();
        let held: Vec<_> = futures::future::join_all(keys.iter().map(|k| locks.lock(k))).await;
        for i in 0..1000 {
            drop(locks.lock(&format!("did:key:{i}")).await);
        }
        assert!(
            locks.len() >= 100 && locks.len() <= 2 * 100 + MIN_SWEEP,
            "{}",
            locks.len()
        );
        let again = tokio::time::timeout(Duration::from_millis(50), locks.lock("did:web:7")).await;
        assert!(again.is_err(), "a held lock must stay held across sweeps");
        drop(held);
    }
}
