-- Actor store: one SQLite database per account, holding that account's repository.
--
-- CIDs are stored as their binary form (`Cid::to_bytes()`: 36 bytes for atproto's CIDv1 +
-- SHA-256), in every table of this database, never as base32 strings: half the size in rows
-- and indexes, and byte order is a stable total order for paging.
-- Revisions (`rev`, `repoRev`) are TID strings, which sort chronologically as text.

-- Every block of the repository (commits, MST nodes, records), content-addressed.
-- `repoRev` is the revision of the commit that first wrote the block; rewriting an existing
-- block keeps it, so `repoRev > since` selects exactly the blocks a sync since `since` lacks.
CREATE TABLE repo_block (
    cid     BLOB    PRIMARY KEY NOT NULL,
    repoRev TEXT    NOT NULL,
    size    INTEGER NOT NULL,
    content BLOB    NOT NULL
);

-- Export order and `repoRev > ?` range scans (getRepo with `since`).
CREATE INDEX repo_block_repo_rev_idx ON repo_block (repoRev, cid);

-- The head of the repository: its current signed commit. Written in the same transaction as
-- the blocks of that commit. A database holds exactly one repository, so the table holds at
-- most one row (`id` is always 1).
CREATE TABLE repo_root (
    id        INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    did       TEXT    NOT NULL,
    cid       BLOB    NOT NULL,
    rev       TEXT    NOT NULL,
    indexedAt TEXT    NOT NULL
);
