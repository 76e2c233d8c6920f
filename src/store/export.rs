//! Streaming a repository out of its actor store as a CAR v1 file.
//!
//! Order: the commit, then the MST nodes in pre-order, each followed by the record blocks it
//! points to. A receiver can verify while it reads; the whole repository is never in memory
//! (MST nodes are loaded as the walk reaches them; records are fetched node by node).

use cid::Cid;
use tokio::io::AsyncWrite;

use super::{Error as StoreError, SqliteBlockStore, blocks, root};
use crate::repo::car::{self, CarWriter};
use crate::repo::mst;
use crate::repo::repository::{self, Repo};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the store holds no repository")]
    NoRepo,
    #[error("record block {0} is missing from the store")]
    MissingRecord(Cid),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Repo(#[from] repository::Error),
    #[error(transparent)]
    Mst(#[from] mst::Error),
    #[error("writing the CAR failed: {0}")]
    Car(#[from] car::Error),
}

/// Writes the repository at the store's current head to `writer` as a CAR whose single root is
/// the head commit. Returns the writer (flushed) and the number of blocks written.
pub async fn write_repo_car<W: AsyncWrite + Unpin + Send>(
    store: &SqliteBlockStore,
    writer: W,
) -> Result<(W, u64), Error> {
    let head = {
        let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
        root::get(&mut conn).await?.ok_or(Error::NoRepo)?
    };
    let repo = Repo::load(store.clone(), head.cid).await?;
    let mut car = CarWriter::new(writer, head.cid);
    car.write_block(&head.cid, &repo.commit().to_cbor()).await?;
    let mut written = 1;
    let mut walker = repo.mst().walk_blocks();
    while let Some(node) = walker.next().await? {
        car.write_block(&node.cid, &node.bytes).await?;
        written += 1;
        if node.records.is_empty() {
            continue;
        }
        let found = {
            let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
            blocks::get_many(&mut conn, &node.records).await?.0
        };
        for cid in &node.records {
            let bytes = found.get(cid).ok_or(Error::MissingRecord(*cid))?;
            car.write_block(cid, bytes).await?;
            written += 1;
        }
    }
    Ok((car.finish().await?, written))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ipld_core::ipld::Ipld;

    use super::*;
    use crate::crypto::{Algorithm, Keypair};
    use crate::repo::car::Limits;
    use crate::repo::repository::Write;
    use crate::repo::verify::verify_car;
    use crate::store::commit::persist;
    use crate::store::sqlite::begin_write;
    use crate::syntax::TidClock;

    const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

    #[tokio::test]
    async fn exports_exactly_the_current_repository() {
        let store = SqliteBlockStore::open_in_memory().await.unwrap();
        assert!(matches!(
            write_repo_car(&store, Vec::new()).await,
            Err(Error::NoRepo)
        ));
        let key = Keypair::generate(Algorithm::K256);
        let clock = TidClock::default();
        let mut repo: Option<Repo<SqliteBlockStore>> = None;
        // Three commits, the last one updating and deleting, so stale blocks exist in between.
        for round in 0..3u32 {
            let writes: Vec<Write> = (0..100u32)
                .map(|i| {
                    let rkey = format!("3m{:011}", round * 100 + i).parse().unwrap();
                    let record = Ipld::Map(BTreeMap::from([
                        ("$type".into(), Ipld::String("app.bsky.feed.post".into())),
                        ("text".into(), Ipld::String(format!("post {round}/{i}"))),
                    ]));
                    Write::Create {
                        collection: "app.bsky.feed.post".parse().unwrap(),
                        rkey,
                        record,
                    }
                })
                .collect();
            let rev = clock.next().to_string();
            let prepared = match &repo {
                None => Repo::format_init(store.clone(), DID, &key, rev, &writes).await,
                Some(r) => r.format_commit(&writes, &key, rev).await,
            }
            .unwrap();
            let mut tx = begin_write(store.pool()).await.unwrap();
            persist(&mut tx, &prepared.data).await.unwrap();
            tx.commit().await.unwrap();
            repo = Some(Repo::apply(prepared));
        }
        let repo = repo.unwrap();
        let (bytes, written) = write_repo_car(&store, Vec::new()).await.unwrap();
        let (verified, blocks) = verify_car(
            &bytes[..],
            Limits::default(),
            Some(DID),
            Some(&key.public_key()),
        )
        .await
        .unwrap();
        assert_eq!(verified.commit_cid, repo.cid());
        assert_eq!(verified.records.len(), 300);
        assert_eq!(written, blocks.len() as u64);
        assert_eq!(written, 1 + verified.node_count as u64 + 300);
    }
}
