use std::time::Duration;

use super::*;
use crate::repo::cbor::{self, Ipld};

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const OTHER: &str = "did:plc:44ybard66vv44zksje25o7dz";

fn row(id: i64, rev: &str, event_type: &str, body: &[u8]) -> OutboxRow {
    OutboxRow {
        id,
        rev: rev.to_owned(),
        event_type: event_type.to_owned(),
        event: body.to_vec(),
        created_at: "2025-01-01T00:00:00.000Z".to_owned(),
    }
}

async fn open_temp() -> (tempfile::TempDir, Sequencer) {
    let dir = tempfile::tempdir().unwrap();
    let seq = Sequencer::open_in(dir.path()).await.unwrap();
    (dir, seq)
}

#[tokio::test]
async fn database_settings_and_schema() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let seq = Sequencer::open_in(&dir).await.unwrap();
    assert!(
        dir.join(DATABASE_FILE).exists(),
        "creates the data directory too"
    );
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(seq.pool())
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(seq.pool())
        .await
        .unwrap();
    assert_eq!(sync, 2, "synchronous must be FULL");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(seq.pool())
    .await
    .unwrap();
    assert_eq!(
        tables,
        vec![
            "outbox_pending",
            "repo_seq",
            "repo_seq_pruned",
            "sqlite_sequence"
        ]
    );
    // Reopening runs no migration twice.
    drop(seq);
    let again = Sequencer::open_in(&dir).await.unwrap();
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(again.pool())
        .await
        .unwrap();
    assert_eq!(versions, vec![1, 2]);
}

#[tokio::test]
async fn outbox_rows_are_sequenced_once_in_order() {
    let (_dir, seq) = open_temp().await;
    assert_eq!(seq.latest_seq().await.unwrap(), None);
    assert!(seq.events_after(0, 10).await.unwrap().is_empty());
    assert_eq!(seq.sequence_outbox(DID, &[]).await.unwrap(), 0);

    let rows = vec![
        row(1, "3kaaaaaaaaaa2", "identity", b"i"),
        row(2, "3kaaaaaaaaaa2", "commit", b"c1"),
        row(3, "3kaaaaaaaaab2", "commit", b"c2"),
    ];
    assert_eq!(seq.sequence_outbox(DID, &rows[..2]).await.unwrap(), 2);
    // A second move of overlapping rows appends only the new one.
    assert_eq!(seq.sequence_outbox(DID, &rows).await.unwrap(), 1);
    assert_eq!(seq.sequence_outbox(DID, &rows).await.unwrap(), 0);
    // The same revision and type for another account is another event.
    assert_eq!(seq.sequence_outbox(OTHER, &rows[2..]).await.unwrap(), 1);

    let events = seq.events_after(0, 100).await.unwrap();
    type Seen<'a> = (i64, &'a str, &'a str, &'a [u8], Option<&'a str>);
    let seen: Vec<Seen> = events
        .iter()
        .map(|e| {
            (
                e.seq,
                e.did.as_str(),
                e.event_type.as_str(),
                e.event.as_slice(),
                e.rev.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, DID, "identity", &b"i"[..], Some("3kaaaaaaaaaa2")),
            (2, DID, "commit", &b"c1"[..], Some("3kaaaaaaaaaa2")),
            (3, DID, "commit", &b"c2"[..], Some("3kaaaaaaaaab2")),
            (4, OTHER, "commit", &b"c2"[..], Some("3kaaaaaaaaab2")),
        ]
    );
    assert!(events.iter().all(|e| !e.invalidated));
    assert!(chrono::DateTime::parse_from_rfc3339(&events[0].sequenced_at).is_ok());
    assert_eq!(seq.latest_seq().await.unwrap(), Some(4));
    let page: Vec<i64> = seq
        .events_after(1, 2)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(page, vec![2, 3]);
    assert!(seq.events_after(4, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn direct_events_have_no_rev_and_never_conflict() {
    let (_dir, seq) = open_temp().await;
    let a = seq
        .sequence_identity(DID, Some("alice.test"))
        .await
        .unwrap();
    let b = seq
        .sequence_identity(DID, Some("alice.test"))
        .await
        .unwrap();
    let c = seq
        .sequence_account(DID, false, Some("takendown"))
        .await
        .unwrap();
    assert_eq!((a, b, c), (1, 2, 3));
    let events = seq.events_after(0, 10).await.unwrap();
    assert!(events.iter().all(|e| e.rev.is_none() && e.did == DID));
    assert_eq!(events[2].event_type, "account");
    let Ipld::Map(body) = cbor::decode(&events[2].event).unwrap() else {
        panic!()
    };
    assert_eq!(body["status"], Ipld::String("takendown".into()));
    assert_eq!(body["active"], Ipld::Bool(false));
    let Ipld::Map(body) = cbor::decode(&events[0].event).unwrap() else {
        panic!()
    };
    assert_eq!(body["handle"], Ipld::String("alice.test".into()));
}

#[tokio::test]
async fn pending_accounts() {
    let (_dir, seq) = open_temp().await;
    assert!(seq.pending_dids().await.unwrap().is_empty());
    seq.mark_pending(OTHER).await.unwrap();
    seq.mark_pending(DID).await.unwrap();
    seq.mark_pending(DID).await.unwrap();
    assert_eq!(seq.pending_dids().await.unwrap(), vec![OTHER, DID]);
    assert!(seq.clear_pending(DID).await.unwrap());
    assert!(!seq.clear_pending(DID).await.unwrap());
    assert_eq!(seq.pending_dids().await.unwrap(), vec![OTHER]);
}

#[tokio::test]
async fn appends_wake_an_armed_waiter() {
    let (_dir, seq) = open_temp().await;
    let waiter = {
        let seq = seq.clone();
        let armed = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let task_armed = armed.clone();
        let task = tokio::spawn(async move {
            let notified = seq.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            task_armed.wait().await;
            notified.await;
            seq.latest_seq().await.unwrap()
        });
        armed.wait().await;
        task
    };
    seq.sequence_outbox(DID, &[row(1, "3kaaaaaaaaaa2", "commit", b"c")])
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the waiter must be woken")
        .unwrap();
    assert_eq!(seen, Some(1));

    // Nothing appended (all duplicates): no wake-up.
    let notified = seq.notify().notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    seq.sequence_outbox(DID, &[row(1, "3kaaaaaaaaaa2", "commit", b"c")])
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(100), notified)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn pages_stop_at_a_byte_budget() {
    let (_dir, seq) = open_temp().await;
    let rows: Vec<OutboxRow> = (1..=5)
        .map(|i| row(i, &format!("3kaaaaaaaaa{i}2"), "commit", &[0u8; 1000]))
        .collect();
    assert_eq!(seq.sequence_outbox(DID, &rows).await.unwrap(), 5);
    let seqs = |page: &[SeqEvent]| page.iter().map(|e| e.seq).collect::<Vec<_>>();
    // The budget is reached by the second body: two events, more to come.
    let (page, more) = seq.events_page(0, 100, 1500).await.unwrap();
    assert_eq!((seqs(&page), more), (vec![1, 2], true));
    // At least one event even when one body exceeds the budget.
    let (page, more) = seq.events_page(2, 100, 10).await.unwrap();
    assert_eq!((seqs(&page), more), (vec![3], true));
    // A full count limit means more may follow; a short page means the end.
    let (page, more) = seq.events_page(0, 5, usize::MAX).await.unwrap();
    assert_eq!((seqs(&page).len(), more), (5, true));
    let (page, more) = seq.events_page(3, 5, usize::MAX).await.unwrap();
    assert_eq!((seqs(&page), more), (vec![4, 5], false));
    let (page, more) = seq.events_page(5, 5, usize::MAX).await.unwrap();
    assert_eq!((page.len(), more), (0, false));
}
