//! Keeping the index in step with the repositories: the hook's two steps around a commit
//! (see [`super::hook`]), per-account and full reindexing, and start-up repair.

use std::collections::{BTreeMap, BTreeSet};

use super::moderators::moderator_set;
use super::records::{self, CASE, PLUGIN, REVIEW, Review, Submission};
use super::store::{self, Kind, Located};
use super::{CASE_CREATES_PER_HOUR, Error, HubIndex, PLUGIN_CREATES_PER_HOUR, Result, now_secs};
use crate::actor::{ActorRepo, RecordWrite};
use crate::repo::cbor::Ipld;
use crate::repo::repository::Write;
use crate::syntax::{Did, Nsid, RecordKey};

/// Seconds in the window of the creation limits.
const HOUR: i64 = 3600;

impl HubIndex {
    /// Checks and logs the creation limits (when enabled) and marks the account pending.
    /// Returns the create-log rows added, to take back if the commit fails. The write is
    /// counted in flight until the indexer has handled it.
    pub(super) async fn before_commit(
        &self,
        did: &Did,
        writes: &[RecordWrite],
    ) -> Result<Vec<i64>> {
        let _guard = self.0.write_lock.lock().await;
        let now = now_secs();
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let mut logged = Vec::new();
        if self.0.rate_limits {
            let mut creates: BTreeMap<&str, usize> = BTreeMap::new();
            for w in writes {
                if let Write::Create { collection, .. } = &w.write
                    && matches!(collection.as_str(), PLUGIN | CASE)
                {
                    *creates.entry(collection.as_str()).or_default() += 1;
                }
            }
            for (collection, count) in creates {
                let limit = if collection == PLUGIN {
                    PLUGIN_CREATES_PER_HOUR
                } else {
                    CASE_CREATES_PER_HOUR
                };
                let recent =
                    store::creations_since(&mut tx, did.as_str(), collection, now - HOUR).await?;
                let wanted = recent.len() as i64 + count as i64;
                if wanted > limit {
                    // The oldest creations that must leave the window first.
                    let must_leave = usize::try_from(wanted - limit).unwrap_or(usize::MAX);
                    let reset = recent
                        .get(must_leave.saturating_sub(1))
                        .map_or(now + HOUR, |at| at + HOUR);
                    return Err(Error::RateLimited {
                        message: format!(
                            "Rate Limit Exceeded: at most {limit} {collection} records per hour"
                        ),
                        limit,
                        reset,
                    });
                }
                logged.extend(
                    store::log_creations(&mut tx, did.as_str(), collection, count, now).await?,
                );
            }
        }
        store::mark_pending(&mut tx, did.as_str(), now).await?;
        tx.commit().await?;
        self.0.indexer.enter(did.as_str());
        Ok(logged)
    }

    /// Brings the index entries of `touched` records of `did` to the repository's current
    /// state for `writes` writes of it, and clears the account's pending mark unless other
    /// writes of it are still in flight. On failure the mark stays (start-up repairs it).
    pub(super) async fn sync_records(
        &self,
        repo: &ActorRepo,
        did: &Did,
        touched: &[(Nsid, RecordKey)],
        writes: usize,
    ) -> Result<()> {
        let _guard = self.0.write_lock.lock().await;
        // Under the lock no write of the account enters (`before_commit`), so this count
        // stays right until the transaction commits.
        let idle = self.0.indexer.leave(did.as_str(), writes);
        // Read first (the repository), then write the index in one transaction.
        let mut current = Vec::with_capacity(touched.len());
        for (collection, rkey) in touched {
            let entry = repo.get_record(did, collection, rkey, None).await?;
            current.push((collection, rkey, entry));
        }
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let mut subjects = BTreeSet::new();
        for (collection, rkey, entry) in current {
            let uri = format!("at://{did}/{collection}/{rkey}");
            if collection.as_str() == REVIEW
                && let Some(old) = store::review_subject(&mut tx, &uri).await?
            {
                subjects.insert(old);
            }
            match entry {
                Some(entry) => {
                    let at = Located {
                        uri: &uri,
                        did: did.as_str(),
                        rkey: rkey.as_str(),
                        cid: &entry.cid.to_string(),
                        indexed_at: &entry.indexed_at,
                    };
                    if let Some(subject) = self
                        .index_record(&mut tx, collection, &at, &entry.value)
                        .await?
                    {
                        subjects.insert(subject);
                    }
                }
                None => remove_record(&mut tx, collection.as_str(), &uri).await?,
            }
        }
        if !subjects.is_empty() {
            let mods = moderator_set(&mut tx, &self.0.config_moderators).await?;
            for subject in &subjects {
                store::recompute_status(&mut tx, subject, &mods).await?;
            }
        }
        if idle {
            store::clear_pending(&mut tx, did.as_str()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Indexes one record if it is valid (lexicon and hub rules); an invalid one (written
    /// with `validate: false`, or imported) is removed from the index instead. Returns the
    /// subject of an indexed review.
    async fn index_record(
        &self,
        conn: &mut sqlx::SqliteConnection,
        collection: &Nsid,
        at: &Located<'_>,
        value: &Ipld,
    ) -> Result<Option<String>> {
        let valid = self.0.catalog.validate_record(collection, value).is_ok()
            && records::check_write(collection.as_str(), at.rkey, value).is_ok();
        if !valid {
            remove_record(conn, collection.as_str(), at.uri).await?;
            return Ok(None);
        }
        match collection.as_str() {
            PLUGIN | CASE => {
                let is_plugin = collection.as_str() == PLUGIN;
                let kind = if is_plugin { Kind::Plugin } else { Kind::Case };
                let sub = Submission::read(value, is_plugin, at.indexed_at);
                store::put_submission(conn, kind, at, &sub).await?;
                Ok(None)
            }
            REVIEW => match Review::read(value) {
                Some(review) => {
                    store::put_review(conn, at, &review).await?;
                    Ok(Some(review.subject))
                }
                None => {
                    store::delete_review(conn, at.uri).await?;
                    Ok(None)
                }
            },
            _ => Ok(None),
        }
    }

    /// Rebuilds the index entries of one account from its repository.
    pub async fn reindex_account(&self, repo: &ActorRepo, did: &Did) -> Result<usize> {
        let _guard = self.0.write_lock.lock().await;
        let count = self.reindex_account_locked(repo, did).await?;
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let mods = moderator_set(&mut tx, &self.0.config_moderators).await?;
        store::recompute_all_statuses(&mut tx, &mods).await?;
        tx.commit().await?;
        Ok(count)
    }

    async fn reindex_account_locked(&self, repo: &ActorRepo, did: &Did) -> Result<usize> {
        let mut found = Vec::new();
        let exists = repo.stores().exists(did).await?;
        if exists {
            for collection in [PLUGIN, CASE, REVIEW] {
                let nsid: Nsid = collection
                    .parse()
                    .map_err(|_| Error::Invalid(format!("bad collection {collection}")))?;
                let mut cursor: Option<String> = None;
                loop {
                    let page = repo
                        .list_records(did, &nsid, 100, cursor.as_deref(), false)
                        .await?;
                    let done = page.records.is_empty();
                    for r in page.records {
                        found.push((nsid.clone(), r));
                    }
                    if done || page.cursor.is_none() {
                        break;
                    }
                    cursor = page.cursor;
                }
            }
        }
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        store::delete_account_records(&mut tx, did.as_str()).await?;
        let mut indexed = 0;
        for (collection, entry) in &found {
            let rkey = entry.uri.rsplit('/').next().unwrap_or_default();
            let at = Located {
                uri: &entry.uri,
                did: did.as_str(),
                rkey,
                cid: &entry.cid.to_string(),
                indexed_at: &entry.indexed_at,
            };
            self.index_record(&mut tx, collection, &at, &entry.value)
                .await?;
            indexed += 1;
        }
        store::clear_pending(&mut tx, did.as_str()).await?;
        tx.commit().await?;
        Ok(indexed)
    }

    /// Rebuilds the whole index from the repositories of every account (`rookery
    /// reindex`). Download counters and moderators are kept. Returns (accounts, records).
    pub async fn reindex_all(&self, repo: &ActorRepo) -> Result<(usize, usize)> {
        let _guard = self.0.write_lock.lock().await;
        let dids: Vec<String> = sqlx::query_scalar("SELECT did FROM acct.actor ORDER BY did")
            .fetch_all(self.pool())
            .await?;
        {
            let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
            store::delete_all_records(&mut tx).await?;
            tx.commit().await?;
        }
        let mut records = 0;
        let mut accounts = 0;
        for did in dids {
            let Ok(did) = did.parse::<Did>() else {
                continue;
            };
            records += self.reindex_account_locked(repo, &did).await?;
            accounts += 1;
        }
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let mods = moderator_set(&mut tx, &self.0.config_moderators).await?;
        store::recompute_all_statuses(&mut tx, &mods).await?;
        tx.commit().await?;
        Ok((accounts, records))
    }

    /// At start-up: reindexes the accounts a crash left pending and recomputes statuses
    /// against the current moderators. Returns the accounts reindexed.
    pub async fn repair(&self, repo: &ActorRepo) -> Result<usize> {
        let pending = store::pending(&mut *self.pool().acquire().await?).await?;
        let mut repaired = 0;
        for did in pending {
            match did.parse::<Did>() {
                Ok(did) => {
                    let _guard = self.0.write_lock.lock().await;
                    self.reindex_account_locked(repo, &did).await?;
                    repaired += 1;
                }
                Err(_) => {
                    store::clear_pending(&mut *self.pool().acquire().await?, &did).await?;
                }
            }
        }
        self.refresh_statuses().await?;
        Ok(repaired)
    }

    /// Counts a download of the plugin at `uri` from `ip` (see `count_download`); returns
    /// whether it counted and the plugin's total.
    pub async fn track_download(&self, uri: &str, ip: &str, now: i64) -> Result<(bool, i64)> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let counted = store::count_download(&mut tx, uri, ip, now).await?;
        let total: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(count), 0) FROM hub_download_day WHERE uri = ?",
        )
        .bind(uri)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((counted, total))
    }
}

async fn remove_record(
    conn: &mut sqlx::SqliteConnection,
    collection: &str,
    uri: &str,
) -> Result<()> {
    match collection {
        PLUGIN => store::delete_submission(conn, Kind::Plugin, uri).await,
        CASE => store::delete_submission(conn, Kind::Case, uri).await,
        REVIEW => store::delete_review(conn, uri).await,
        _ => Ok(()),
    }
}
