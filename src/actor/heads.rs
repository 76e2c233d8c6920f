//! Keeping the account database's copy of each repository head (`repo_root`, for
//! `com.atproto.sync.listRepos`) in step with the actor stores.
//!
//! The actor store's head is the truth and changes only in a commit's actor-store transaction;
//! the copy is written right after that transaction commits, under the account's writer lock
//! (so copies are written in commit order). A failure or a crash in between leaves the copy
//! stale or missing, never ahead. Every commit marks its account in the sequencer's
//! `outbox_pending` before its transaction, and the mark stays until start-up recovery, so
//! recovery rewrites the copy of every account that committed since the last start
//! ([`repair`]), then fills in any account that has none ([`backfill`]: an empty repository
//! created without events, or data from before the table).

use cid::Cid;

use super::locks::KeyedLocks;
use super::stores::ActorHandle;
use super::{ActorStores, Result};
use crate::accounts::{AccountDb, RepoHead};
use crate::store::root;
use crate::syntax::Did;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Records the head a commit just made durable. Never fails the commit: an error is logged
/// and recovery repairs the copy at the next start-up.
pub(super) async fn record(accounts: &AccountDb, did: &Did, cid: &Cid, rev: &str) {
    let head = RepoHead {
        cid: cid.to_string(),
        rev: rev.to_owned(),
    };
    if let Err(err) = accounts.set_repo_head(did.as_str(), &head, now()).await {
        tracing::warn!(%did, error = %err, "recording the repository head failed; recovery will repair it");
    }
}

/// Copies the store's current head into the account database (or forgets the copy when the
/// store has no repository). The caller holds the account's writer lock.
pub(super) async fn repair(accounts: &AccountDb, handle: &ActorHandle) -> Result<()> {
    let head = {
        let mut conn = handle.pool().acquire().await?;
        root::get(&mut conn).await?
    };
    let did = handle.did().as_str();
    let stored = match head {
        Some(head) => {
            let head = RepoHead {
                cid: head.cid.to_string(),
                rev: head.rev,
            };
            accounts.repair_repo_head(did, &head, now()).await
        }
        None => accounts.delete_repo_head(did).await.map(drop),
    };
    Ok(stored?)
}

/// Forgets the copy of a destroyed repository.
pub(super) async fn forget(accounts: &AccountDb, did: &str) -> Result<()> {
    accounts.delete_repo_head(did).await?;
    Ok(())
}

/// Start-up backfill: records the head of every account that has none but has a store.
/// Returns how many were recorded; failures are logged and left for the next start.
pub(super) async fn backfill(
    accounts: &AccountDb,
    stores: &ActorStores,
    writers: &KeyedLocks,
) -> Result<usize> {
    let mut recorded = 0;
    for did in accounts.actors_without_repo_head().await? {
        let Ok(parsed) = did.parse::<Did>() else {
            continue;
        };
        let _writer = writers.lock(&did).await;
        let repaired = match stores.open(&parsed).await {
            Ok(Some(handle)) => repair(accounts, &handle).await.map(|()| true),
            Ok(None) => Ok(false),
            Err(err) => Err(err),
        };
        match repaired {
            Ok(true) => recorded += 1,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(%did, error = %err, "recording a missing repository head failed")
            }
        }
    }
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::accounts::NewAccount;
    use crate::actor::{ActorRepo, RecordWrite};
    use crate::crypto::{Algorithm, Keypair};
    use crate::repo::cbor::Ipld;
    use crate::repo::repository::Write;
    use crate::sequencer::Sequencer;
    use crate::syntax::Handle;

    /// The repository service over `dir`, keeping heads in `accounts` or (a crash between
    /// the actor-store commit and the copy, as far as the account database can tell) not.
    async fn service(dir: &Path, accounts: Option<&AccountDb>) -> ActorRepo {
        let stores = ActorStores::new(dir, 4);
        let sequencer = Sequencer::open_in(dir).await.unwrap();
        let blobs = std::sync::Arc::new(crate::blobs::DiskBlobStore::new(
            dir.join("blocks"),
            dir.join("tmp"),
        ));
        match accounts {
            Some(accounts) => {
                ActorRepo::with_repo_heads(stores, sequencer, blobs, accounts.clone())
            }
            None => ActorRepo::new(stores, sequencer, blobs),
        }
    }

    fn post(rkey: &str) -> RecordWrite {
        Write::Create {
            collection: "app.bsky.feed.post".parse().unwrap(),
            rkey: rkey.parse().unwrap(),
            record: Ipld::Map(BTreeMap::from([
                ("$type".into(), Ipld::String("app.bsky.feed.post".into())),
                ("text".into(), Ipld::String(rkey.into())),
            ])),
        }
        .into()
    }

    async fn account(accounts: &AccountDb, did: &Did, name: &str) {
        let handle: Handle = format!("{name}.test").parse().unwrap();
        accounts
            .create_account(NewAccount {
                did,
                handle: &handle,
                email: &format!("{name}@example.com"),
                password: "hunter2hunter2",
                invite_code: None,
                invite_required: false,
                now: 1_700_000_000,
            })
            .await
            .unwrap();
    }

    /// The store's head, as the account database should copy it.
    async fn store_head(repo: &ActorRepo, did: &Did) -> RepoHead {
        let root = repo.current_root(did).await.unwrap();
        RepoHead {
            cid: root.cid.to_string(),
            rev: root.rev,
        }
    }

    #[tokio::test]
    async fn commits_copy_heads_and_recovery_repairs_missed_copies() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = AccountDb::open(&dir.path().join("account.sqlite"))
            .await
            .unwrap();
        let (alice, bob, carol): (Did, Did, Did) = (
            "did:plc:alice000000000000000000".parse().unwrap(),
            "did:plc:bob00000000000000000000".parse().unwrap(),
            "did:plc:carol000000000000000000".parse().unwrap(),
        );
        let key = || Keypair::generate(Algorithm::K256);

        // Every commit copies its head, creation included.
        let repo = service(dir.path(), Some(&accounts)).await;
        repo.create_repo(&alice, &key(), None).await.unwrap();
        assert_eq!(
            accounts.repo_head(alice.as_str()).await.unwrap(),
            Some(store_head(&repo, &alice).await)
        );
        let first = repo
            .apply_writes(&alice, vec![post("3kaaaaaaaaaa2")], None)
            .await
            .unwrap();
        let first_head = store_head(&repo, &alice).await;
        assert_eq!(first_head.rev, first.rev);
        assert_eq!(
            accounts.repo_head(alice.as_str()).await.unwrap(),
            Some(first_head.clone())
        );
        repo.create_repo(&carol, &key(), None).await.unwrap();
        drop(repo);

        // Commits whose copies were lost: Alice's two writes (her account is pending), Bob's
        // creation without events (not pending; he has an account row but no head).
        let crashed = service(dir.path(), None).await;
        for rkey in ["3kaaaaaaaaab2", "3kaaaaaaaaac2"] {
            crashed
                .apply_writes(&alice, vec![post(rkey)], None)
                .await
                .unwrap();
        }
        crashed.create_repo(&bob, &key(), None).await.unwrap();
        account(&accounts, &bob, "bob").await;
        let alice_head = store_head(&crashed, &alice).await;
        let bob_head = store_head(&crashed, &bob).await;
        // Carol's store disappears while she is pending: her copy must go.
        crashed
            .sequencer()
            .mark_pending(carol.as_str())
            .await
            .unwrap();
        std::fs::remove_dir_all(crashed.stores().dir(&carol)).unwrap();
        drop(crashed);
        assert_eq!(
            accounts.repo_head(alice.as_str()).await.unwrap(),
            Some(first_head)
        );
        assert_eq!(accounts.repo_head(bob.as_str()).await.unwrap(), None);
        assert!(accounts.repo_head(carol.as_str()).await.unwrap().is_some());

        let repo = service(dir.path(), Some(&accounts)).await;
        repo.recover().await.unwrap();
        assert_eq!(
            accounts.repo_head(alice.as_str()).await.unwrap(),
            Some(alice_head)
        );
        assert_eq!(
            accounts.repo_head(bob.as_str()).await.unwrap(),
            Some(bob_head)
        );
        assert_eq!(accounts.repo_head(carol.as_str()).await.unwrap(), None);
        assert!(
            accounts
                .actors_without_repo_head()
                .await
                .unwrap()
                .is_empty()
        );

        // Destroying a repository forgets its copy.
        assert!(repo.destroy_repo(&bob).await.unwrap());
        assert_eq!(accounts.repo_head(bob.as_str()).await.unwrap(), None);
    }
}
