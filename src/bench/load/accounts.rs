//! The many-accounts phases of `rookery bench load`: [`Options::touch_accounts`] accounts
//! created over `createAccount`, then one `createRecord` on each of them in a row, so every
//! write opens another actor store. The second phase shows whether the store cache (and
//! what each open store costs) keeps the server within its memory budget; after it, the
//! server's open stores and threads are read from `/metrics` and `/proc`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Account, Options, Phase, Unit, create_account, create_record, drive, measured};
use crate::bench::Error;
use crate::bench::spawned::SpawnedServer;

/// The admin password the spawned server is given, so `/metrics` can be read.
pub(super) const ADMIN_PASSWORD: &str = "load-benchmark-admin";

/// Connections of the two phases.
const CONNECTIONS: usize = 4;

/// What the server holds after the touch phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterTouch {
    /// `rookery_actor_store_open`: actor stores open.
    pub open_stores: Option<u64>,
    /// Threads of the server process.
    pub threads: Option<u64>,
}

/// Runs the two phases (nothing when [`Options::touch_accounts`] is 0).
pub(super) async fn phases(
    opts: &Options,
    server: &SpawnedServer,
) -> Result<(Vec<Phase>, Option<AfterTouch>), Error> {
    let n = opts.touch_accounts;
    if n == 0 {
        return Ok((Vec::new(), None));
    }
    let base = server.url().to_owned();
    let created: Arc<Mutex<Vec<Account>>> = Arc::default();
    let (b, out) = (base.clone(), created.clone());
    let name = format!("createAccount, {n} in a row");
    let create = measured(&name, CONNECTIONS, Unit::Requests, server, async {
        drive(&b, CONNECTIONS, n, opts.touch_limit, move |client, _, i| {
            let out = out.clone();
            async move {
                let account = create_account(&client, &format!("many{i}")).await?;
                out.lock().expect("not poisoned").push(account);
                Ok(1)
            }
        })
        .await
    })
    .await?;
    let accounts: Arc<Vec<Account>> =
        Arc::new(std::mem::take(&mut *created.lock().expect("not poisoned")));
    let count = accounts.len();
    let name = format!("createRecord, {count} accounts once");
    let list = accounts.clone();
    let touch = measured(&name, CONNECTIONS, Unit::Requests, server, async {
        drive(
            &base,
            CONNECTIONS,
            count,
            opts.touch_limit,
            move |client, _, i| {
                let list = list.clone();
                async move {
                    let text = format!("Many-accounts post of account {i}.");
                    create_record(&client, &list[i], &text).await?;
                    Ok(1)
                }
            },
        )
        .await
    })
    .await?;
    let after = AfterTouch {
        open_stores: open_stores(server.url()).await,
        threads: threads(server.pid()),
    };
    Ok((vec![create, touch], Some(after)))
}

/// `rookery_actor_store_open` from the server's `/metrics` (admin password).
async fn open_stores(base: &str) -> Option<u64> {
    let response = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body = response.bytes().await.ok()?;
    gauge(&String::from_utf8_lossy(&body), "rookery_actor_store_open")
}

/// The value of an unlabelled sample `name` of a Prometheus text exposition.
fn gauge(exposition: &str, name: &str) -> Option<u64> {
    exposition.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse::<f64>().ok().map(|v| v as u64)
    })
}

/// `Threads:` of `/proc/{pid}/status`.
fn threads(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauge_reads_the_unlabelled_sample() {
        let text = "# HELP rookery_actor_store_open Per-account stores open now.\n\
                    # TYPE rookery_actor_store_open gauge\n\
                    rookery_actor_store_open_total 9\n\
                    rookery_actor_store_open 42\n";
        assert_eq!(gauge(text, "rookery_actor_store_open"), Some(42));
        assert_eq!(gauge(text, "rookery_missing"), None);
        assert_eq!(threads(std::process::id()).map(|t| t >= 1), Some(true));
    }
}
