//! Persisting a formatted commit: blocks, removals and the new head in one transaction.

use sqlx::SqliteConnection;

use super::{Error, blocks, root};
use crate::repo::repository::CommitData;

/// Writes `commit`'s new blocks, deletes the blocks it made unreachable (the previous commit and
/// replaced MST nodes) and moves the head to it. Call inside a write transaction
/// ([`super::sqlite::begin_write`]) so all of it, or none, is durable.
///
/// Record blocks released by the commit (`released_record_cids`) are left to the records
/// index, which alone knows whether another path still holds an identical record.
pub(crate) async fn persist(conn: &mut SqliteConnection, commit: &CommitData) -> Result<(), Error> {
    blocks::put_many(conn, &commit.new_blocks, &commit.rev).await?;
    blocks::delete_many(conn, &commit.removed_cids).await?;
    root::set(conn, &commit.did, &commit.cid, &commit.rev).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Algorithm, Keypair};
    use crate::repo::blockstore::BlockStore;
    use crate::repo::repository::{Repo, Write};
    use crate::repo::verify::verify_blocks;
    use crate::store::SqliteBlockStore;
    use crate::store::sqlite::{OpenOptions, begin_write};
    use crate::syntax::TidClock;
    use ipld_core::ipld::Ipld;
    use std::collections::BTreeMap;

    const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

    fn like(i: usize) -> Write {
        Write::Create {
            collection: "app.bsky.feed.like".parse().unwrap(),
            rkey: format!("3l{i:011}").parse().unwrap(),
            record: Ipld::Map(BTreeMap::from([
                ("$type".into(), Ipld::String("app.bsky.feed.like".into())),
                ("n".into(), Ipld::Integer(i as i128)),
            ])),
        }
    }

    async fn all_blocks(store: &SqliteBlockStore) -> crate::repo::blockstore::BlockMap {
        let mut conn = store.pool().acquire().await.unwrap();
        blocks::list_since(&mut conn, None, None, u32::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|b| (b.cid, b.bytes))
            .collect()
    }

    #[tokio::test]
    async fn persisted_commits_leave_exactly_the_current_repository() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("actor.sqlite");
        let store = SqliteBlockStore::open(&path, &OpenOptions::default())
            .await
            .unwrap();
        let key = Keypair::generate(Algorithm::K256);
        let clock = TidClock::default();
        let writes: Vec<Write> = (0..500).map(like).collect();
        let prepared =
            Repo::format_init(store.clone(), DID, &key, clock.next().to_string(), &writes)
                .await
                .unwrap();
        let mut tx = begin_write(store.pool()).await.unwrap();
        persist(&mut tx, &prepared.data).await.unwrap();
        tx.commit().await.unwrap();
        let mut repo = Repo::apply(prepared);

        for round in 0..5 {
            let writes: Vec<Write> = (0..50).map(|i| like(1000 + round * 50 + i)).collect();
            let prepared = repo
                .format_commit(&writes, &key, clock.next().to_string())
                .await
                .unwrap();
            let mut tx = begin_write(store.pool()).await.unwrap();
            persist(&mut tx, &prepared.data).await.unwrap();
            tx.commit().await.unwrap();
            repo = Repo::apply(prepared);
        }

        // The store holds the current commit, its MST and its records, and nothing else.
        let blocks = all_blocks(&store).await;
        let verified = verify_blocks(&blocks, repo.cid(), Some(DID), Some(&key.public_key()))
            .await
            .unwrap();
        assert_eq!(verified.records.len(), 750);
        assert_eq!(blocks.len(), 1 + verified.node_count + 750);
        let mut conn = store.pool().acquire().await.unwrap();
        let head = root::get(&mut conn).await.unwrap().unwrap();
        assert_eq!(
            (head.cid, head.rev.as_str()),
            (repo.cid(), repo.rev().unwrap())
        );
    }

    #[tokio::test]
    async fn an_unfinished_transaction_leaves_the_previous_head_intact() {
        let store = SqliteBlockStore::open_in_memory().await.unwrap();
        let key = Keypair::generate(Algorithm::K256);
        let clock = TidClock::default();
        let prepared = Repo::format_init(
            store.clone(),
            DID,
            &key,
            clock.next().to_string(),
            &[like(1)],
        )
        .await
        .unwrap();
        let mut tx = begin_write(store.pool()).await.unwrap();
        persist(&mut tx, &prepared.data).await.unwrap();
        tx.commit().await.unwrap();
        let repo = Repo::apply(prepared);
        let before = all_blocks(&store).await;

        let next = repo
            .format_commit(&[like(2)], &key, clock.next().to_string())
            .await
            .unwrap();
        {
            let mut tx = begin_write(store.pool()).await.unwrap();
            persist(&mut tx, &next.data).await.unwrap();
            // Dropped without commit: as if the process died here.
        }
        assert_eq!(all_blocks(&store).await, before);
        let mut conn = store.pool().acquire().await.unwrap();
        assert_eq!(root::get(&mut conn).await.unwrap().unwrap().cid, repo.cid());
        drop(conn);
        assert!(store.has(&repo.cid()).await.unwrap());
        // A stale head is refused.
        let mut tx = begin_write(store.pool()).await.unwrap();
        assert!(matches!(
            root::set(&mut tx, DID, &repo.cid(), repo.rev().unwrap()).await,
            Err(Error::StaleRev { .. })
        ));
    }
}
