-- Actor store, part 2: the records index, blob references, preferences and the event outbox.
--
-- As in 0001, CIDs are stored in binary form (`Cid::to_bytes()`).

-- The current version of every record in the repository: one row per MST leaf. The MST
-- is the truth; this table is an index over it for listing and lookups, written in the
-- same transaction as the commit that changes the tree.
-- `uri` is `at://<did>/<collection>/<rkey>`; `takedownRef` is set while a moderator has
-- taken the record down (it is then hidden from reads, but stays in the repository).
CREATE TABLE record (
    uri         TEXT PRIMARY KEY NOT NULL,
    cid         BLOB NOT NULL,
    collection  TEXT NOT NULL,
    rkey        TEXT NOT NULL,
    repoRev     TEXT NOT NULL,
    indexedAt   TEXT NOT NULL,
    takedownRef TEXT
);

-- listRecords: one collection, paged by record key in either direction.
CREATE UNIQUE INDEX record_collection_rkey_idx ON record (collection, rkey);
-- Whether another record still holds a CID a commit released (identical records share a block).
CREATE INDEX record_cid_idx ON record (cid);
-- Records written after a revision.
CREATE INDEX record_repo_rev_idx ON record (repoRev);

-- Blobs referenced by the current version of each record (found with `find_blobs`).
CREATE TABLE record_blob (
    blobCid   BLOB NOT NULL,
    recordUri TEXT NOT NULL,
    PRIMARY KEY (blobCid, recordUri)
) WITHOUT ROWID;

-- Rewriting or deleting a record drops its references.
CREATE INDEX record_blob_record_uri_idx ON record_blob (recordUri);

-- The account's private app preferences (app.bsky.actor.getPreferences / putPreferences):
-- one row per preference object, `name` its `$type`, `valueJson` the object as JSON.
CREATE TABLE account_pref (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT    NOT NULL,
    valueJson TEXT    NOT NULL
);

-- The firehose outbox of this repository: events written in the same transaction as the
-- commit they announce, then moved into the server-wide sequencer database (`repo_seq`)
-- and deleted here. See `crate::sequencer` for the protocol that makes the move
-- crash-safe across the two databases.
-- `id` orders the events (insertion order = commit order) and is never reused (AUTOINCREMENT),
-- so "delete every event up to id N" cannot catch an event written later; one commit may carry several
-- events (e.g. #identity, #account, #commit, #sync for a new repository), at most one of
-- each type, hence the unique (rev, eventType). `event` is the DAG-CBOR message body
-- without `seq`, which the sequencer assigns.
CREATE TABLE repo_seq_outbox (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    rev       TEXT    NOT NULL,
    eventType TEXT    NOT NULL,
    event     BLOB    NOT NULL,
    createdAt TEXT    NOT NULL,
    UNIQUE (rev, eventType)
);
