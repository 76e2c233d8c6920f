//! Streaming a repository out of its actor store as a CAR v1 file.
//!
//! Order: the head commit first, then every other block of the store in storage order (as the
//! reference PDS's `getRepo` does). The store holds exactly the current repository: commits
//! delete what they make unreachable (see `store::commit`). Blocks are read page by page, so
//! the repository is never in memory as a whole.

use cid::Cid;
use futures::TryStreamExt;
use tokio::io::AsyncWrite;

use super::{Error as StoreError, SqliteBlockStore, blocks, root};
use crate::repo::car::{self, CarWriter};

/// Rows fetched per query while exporting.
pub(crate) const PAGE: u32 = 2000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the store holds no repository")]
    NoRepo,
    #[error("head commit {0} is missing from the store")]
    MissingCommit(Cid),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the CAR failed: {0}")]
    Car(#[from] car::Error),
}

/// Writes the repository at the store's current head to `writer` as a CAR whose single root is
/// the head commit; with `since` (a revision), only blocks written after it (`getRepo?since=`).
/// Returns the writer (flushed) and the number of blocks written.
pub async fn write_repo_car<W: AsyncWrite + Unpin + Send>(
    store: &SqliteBlockStore,
    since: Option<&str>,
    writer: W,
) -> Result<(W, u64), Error> {
    let (head, commit) = {
        let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
        let head = root::get(&mut conn).await?.ok_or(Error::NoRepo)?;
        let commit = blocks::get(&mut conn, &head.cid)
            .await?
            .ok_or(Error::MissingCommit(head.cid))?;
        (head, commit)
    };
    let mut car = CarWriter::new(writer, head.cid);
    car.write_block(&head.cid, &commit).await?;
    let mut written = 1;
    let since = since.map(str::to_owned);
    let mut stream = std::pin::pin!(blocks::stream_since(store.pool().clone(), since, PAGE));
    while let Some((cid, bytes)) = stream.try_next().await? {
        if cid != head.cid {
            car.write_block(&cid, &bytes).await?;
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
    use crate::repo::repository::{Repo, Write};
    use crate::repo::verify::verify_car;
    use crate::store::commit::persist;
    use crate::store::sqlite::begin_write;
    use crate::syntax::TidClock;

    const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

    #[tokio::test]
    async fn exports_exactly_the_current_repository() {
        let store = SqliteBlockStore::open_in_memory().await.unwrap();
        assert!(matches!(
            write_repo_car(&store, None, Vec::new()).await,
            Err(Error::NoRepo)
        ));
        let key = Keypair::generate(Algorithm::K256);
        let clock = TidClock::default();
        let mut repo: Option<Repo<SqliteBlockStore>> = None;
        let mut revs = Vec::new();
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
            revs.push((prepared.data.rev.clone(), prepared.data.new_blocks.clone()));
            repo = Some(Repo::apply(prepared));
        }
        let repo = repo.unwrap();
        let (bytes, written) = write_repo_car(&store, None, Vec::new()).await.unwrap();
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

        // `since` the second commit: the head commit and exactly the third commit's new blocks.
        let (bytes, written) = write_repo_car(&store, Some(&revs[1].0), Vec::new())
            .await
            .unwrap();
        let (roots, blocks) = crate::repo::car::read_car_bytes(&bytes, Limits::default())
            .await
            .unwrap();
        assert_eq!(roots, vec![repo.cid()]);
        assert_eq!(blocks, revs[2].1);
        assert_eq!(written, revs[2].1.len() as u64);
    }
}
