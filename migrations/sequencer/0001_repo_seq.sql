-- The sequencer database (`{data}/sequencer.sqlite`): the server-wide, totally ordered log of
-- firehose events (`com.atproto.sync.subscribeRepos`), and the outbox bookkeeping that moves
-- events from the per-account actor stores into it.

-- Every firehose event, in the order it is broadcast. `seq` is the firehose cursor:
-- AUTOINCREMENT so a number is never handed out twice, even after the newest rows are
-- deleted. `event` is the DAG-CBOR message body without `seq` (added when framing).
-- `eventType` is the message type without `#`: commit, sync, identity, account.
-- `rev` is the repository revision of events that come from an actor-store outbox, and NULL
-- for events written directly (identity, account): the unique index makes moving an outbox
-- row twice a no-op, while NULL revs never conflict.
CREATE TABLE repo_seq (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    did         TEXT    NOT NULL,
    eventType   TEXT    NOT NULL,
    event       BLOB    NOT NULL,
    invalidated INTEGER NOT NULL DEFAULT 0,
    sequencedAt TEXT    NOT NULL,
    rev         TEXT
);

CREATE UNIQUE INDEX repo_seq_did_rev_event_type_idx ON repo_seq (did, rev, eventType);
-- Trimming old events by age.
CREATE INDEX repo_seq_sequenced_at_idx ON repo_seq (sequencedAt);

-- Accounts whose actor-store outbox may hold events not yet moved into `repo_seq`. A row is
-- written (durably) before an account's first write and removed only when its outbox is
-- empty, so start-up recovery visits these accounts and no others.
CREATE TABLE outbox_pending (
    did   TEXT PRIMARY KEY NOT NULL,
    since TEXT NOT NULL
) WITHOUT ROWID;
