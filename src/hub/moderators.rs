//! Who moderates the hub: ROOKERY_HUB_MODERATORS (DIDs, or handles of accounts hosted
//! here, resolved through the account database whenever the set is read), overridden DID by
//! DID by the admin's `setModerator` (`hub_moderator`).

use std::collections::{BTreeMap, HashSet};

use sqlx::{Row, SqliteConnection};

use super::{HubIndex, Result, now_secs, store};

/// Where a moderator comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeratorSource {
    /// ROOKERY_HUB_MODERATORS.
    Config,
    /// cn.pocketbase.hub.setModerator.
    Admin,
}

impl ModeratorSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ModeratorSource::Config => "config",
            ModeratorSource::Admin => "admin",
        }
    }
}

/// One current moderator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moderator {
    pub did: String,
    pub handle: Option<String>,
    pub source: ModeratorSource,
}

impl HubIndex {
    /// The current moderators, by DID.
    pub async fn moderators(&self) -> Result<Vec<Moderator>> {
        let mut conn = self.pool().acquire().await?;
        let set = moderator_map(&mut conn, &self.0.config_moderators).await?;
        let mut out = Vec::with_capacity(set.len());
        for (did, source) in set {
            let handle: Option<String> =
                sqlx::query_scalar("SELECT handle FROM acct.actor WHERE did = ?")
                    .bind(&did)
                    .fetch_optional(&mut *conn)
                    .await?
                    .flatten();
            out.push(Moderator {
                did,
                handle,
                source,
            });
        }
        Ok(out)
    }

    /// Whether `did` moderates the hub now.
    pub async fn is_moderator(&self, did: &str) -> Result<bool> {
        let mut conn = self.pool().acquire().await?;
        Ok(moderator_map(&mut conn, &self.0.config_moderators)
            .await?
            .contains_key(did))
    }

    /// Adds (`moderator`) or removes `did`, then recomputes every submission's status.
    pub async fn set_moderator(&self, did: &str, moderator: bool) -> Result<()> {
        let _guard = self.0.write_lock.lock().await;
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO hub_moderator (did, moderator, updatedAt) VALUES (?, ?, ?) \
             ON CONFLICT (did) DO UPDATE SET moderator = excluded.moderator, \
             updatedAt = excluded.updatedAt",
        )
        .bind(did)
        .bind(i64::from(moderator))
        .bind(now_secs())
        .execute(&mut *tx)
        .await?;
        let mods = moderator_set(&mut tx, &self.0.config_moderators).await?;
        store::recompute_all_statuses(&mut tx, &mods).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Recomputes every status against the current moderators (at start-up: the
    /// configuration or the handles it names may have changed).
    pub async fn refresh_statuses(&self) -> Result<()> {
        let _guard = self.0.write_lock.lock().await;
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let mods = moderator_set(&mut tx, &self.0.config_moderators).await?;
        store::recompute_all_statuses(&mut tx, &mods).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The current moderators' DIDs.
pub(crate) async fn moderator_set(
    conn: &mut SqliteConnection,
    config: &[String],
) -> Result<HashSet<String>> {
    Ok(moderator_map(conn, config).await?.into_keys().collect())
}

async fn moderator_map(
    conn: &mut SqliteConnection,
    config: &[String],
) -> Result<BTreeMap<String, ModeratorSource>> {
    let mut out = BTreeMap::new();
    for entry in config {
        if entry.starts_with("did:") {
            out.insert(entry.clone(), ModeratorSource::Config);
        } else {
            let did: Option<String> =
                sqlx::query_scalar("SELECT did FROM acct.actor WHERE handle = ?")
                    .bind(entry.to_lowercase())
                    .fetch_optional(&mut *conn)
                    .await?;
            if let Some(did) = did {
                out.insert(did, ModeratorSource::Config);
            }
        }
    }
    let overrides = sqlx::query("SELECT did, moderator FROM hub_moderator")
        .fetch_all(&mut *conn)
        .await?;
    for row in overrides {
        let did: String = row.try_get(0)?;
        let moderator: i64 = row.try_get(1)?;
        if moderator == 1 {
            out.entry(did).or_insert(ModeratorSource::Admin);
        } else {
            out.remove(&did);
        }
    }
    Ok(out)
}
