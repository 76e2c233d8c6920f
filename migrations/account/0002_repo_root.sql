-- The head of every repository hosted here (`com.atproto.sync.listRepos`), as the reference
-- keeps it beside the accounts.
--
-- A copy: each actor store's own `repo_root` is the truth. The repository service writes this
-- row right after every commit's actor-store transaction, and start-up recovery rewrites it
-- for every account that committed since (they are all in the sequencer's `outbox_pending`)
-- and for every actor still without one, so a crash between the two databases is repaired.
-- No foreign key to `actor`: the repository (and so its head) is created before the account
-- row. Listing joins `actor`, and deleting the account deletes the row.
CREATE TABLE repo_root (
    did       TEXT    PRIMARY KEY NOT NULL,
    -- The head commit's CID (base32 string) and revision (a TID).
    cid       TEXT    NOT NULL,
    rev       TEXT    NOT NULL,
    -- When the row was last written (UNIX seconds).
    indexedAt INTEGER NOT NULL
) STRICT;
