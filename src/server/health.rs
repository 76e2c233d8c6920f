//! The health check behind `/xrpc/_health`: the account database, the sequencer database
//! and the blob store, each probed cheaply.

use std::time::Duration;

use super::AppState;

/// How long one probe may take before its component counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A component that failed its probe.
#[derive(Debug, thiserror::Error)]
#[error("{component} unavailable: {detail}")]
pub struct Unhealthy {
    /// What is down, for the response: `account database`, `sequencer database`,
    /// `blob store`.
    pub component: &'static str,
    /// Why, for the log only.
    pub detail: String,
}

async fn probe<E: std::fmt::Display>(
    component: &'static str,
    check: impl Future<Output = Result<(), E>>,
) -> Result<(), Unhealthy> {
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(Unhealthy {
            component,
            detail: err.to_string(),
        }),
        Err(_) => Err(Unhealthy {
            component,
            detail: format!("no answer within {PROBE_TIMEOUT:?}"),
        }),
    }
}

async fn select_one(pool: &sqlx::SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}

/// Probes every component concurrently; the first one found down is reported.
pub async fn check(state: &AppState) -> Result<(), Unhealthy> {
    let (accounts, sequencer, blobs) = tokio::join!(
        probe("account database", select_one(state.accounts().pool())),
        probe(
            "sequencer database",
            select_one(state.repo().sequencer().pool())
        ),
        probe("blob store", state.blobs().probe()),
    );
    accounts.and(sequencer).and(blobs)
}
