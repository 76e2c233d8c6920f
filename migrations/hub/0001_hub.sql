-- Hub index (`{data}/hub.sqlite`): the PocketBase.cn community hub's listings over the
-- cn.pocketbase.hub.* records of the repositories hosted here. Everything in the first
-- group of tables is derived from the repositories and rebuilt by `rookery reindex`; the
-- download counters, moderators set by the admin and the create log are the hub's own.
-- Connections attach the account database as `acct` (handles and account status are read
-- from there at query time).

-- Plugins: one row per valid cn.pocketbase.hub.plugin record. `id` is the rowid of the
-- record's row in `hub_plugin_fts`. `category` is the record's category when it is a known
-- value, else 'other'. `createdAt` is normalised to UTC (`YYYY-MM-DDTHH:MM:SS.sssZ`) so it
-- sorts as text; `nameKey` is the lowercase name. `logo`/`screenshots` are blob CIDs
-- (`screenshots` a JSON array). `downloads` is the sum of `hub_download_day` for `uri`.
-- `status`/`featured` copy the subject's `hub_status` row (pending and 0 without one), so
-- that every listing order walks an index instead of sorting.
CREATE TABLE hub_plugin (
    id          INTEGER PRIMARY KEY,
    uri         TEXT    NOT NULL UNIQUE,
    did         TEXT    NOT NULL,
    rkey        TEXT    NOT NULL,
    cid         TEXT    NOT NULL,
    nameKey     TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    createdAt   TEXT    NOT NULL,
    indexedAt   TEXT    NOT NULL,
    record      TEXT    NOT NULL,
    logo        TEXT,
    screenshots TEXT    NOT NULL,
    downloads   INTEGER NOT NULL DEFAULT 0,
    status      TEXT    NOT NULL DEFAULT 'pending',
    featured    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX hub_plugin_did_idx ON hub_plugin (did, rkey);
CREATE INDEX hub_plugin_featured_idx ON hub_plugin (status, featured, downloads, uri);
CREATE INDEX hub_plugin_downloads_idx ON hub_plugin (status, downloads, uri);
CREATE INDEX hub_plugin_created_idx ON hub_plugin (status, createdAt, uri);
CREATE INDEX hub_plugin_name_idx ON hub_plugin (status, nameKey, uri);

-- Case studies, as plugins (`titleKey` for the name order; `thumbnail` a blob CID).
CREATE TABLE hub_case (
    id          INTEGER PRIMARY KEY,
    uri         TEXT    NOT NULL UNIQUE,
    did         TEXT    NOT NULL,
    rkey        TEXT    NOT NULL,
    cid         TEXT    NOT NULL,
    titleKey    TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    createdAt   TEXT    NOT NULL,
    indexedAt   TEXT    NOT NULL,
    record      TEXT    NOT NULL,
    thumbnail   TEXT,
    screenshots TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'pending',
    featured    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX hub_case_did_idx ON hub_case (did, rkey);
CREATE INDEX hub_case_featured_idx ON hub_case (status, featured, createdAt, uri);
CREATE INDEX hub_case_created_idx ON hub_case (status, createdAt, uri);
CREATE INDEX hub_case_title_idx ON hub_case (status, titleKey, uri);

-- Full text (trigram tokenizer: substring search that works for Chinese as for English).
-- The rowid is the `id` of the plugin or case row.
CREATE VIRTUAL TABLE hub_plugin_fts USING fts5(text, tokenize = 'trigram');
CREATE VIRTUAL TABLE hub_case_fts USING fts5(text, tokenize = 'trigram');

-- Every valid review record, whoever wrote it: whether it counts depends on the moderator
-- set at the time `hub_status` is computed.
CREATE TABLE hub_review (
    uri       TEXT    PRIMARY KEY NOT NULL,
    did       TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    status    TEXT    NOT NULL CHECK (status IN ('approved', 'rejected')),
    featured  INTEGER NOT NULL CHECK (featured IN (0, 1)),
    createdAt TEXT    NOT NULL,
    indexedAt TEXT    NOT NULL
) STRICT;
CREATE INDEX hub_review_subject_idx ON hub_review (subject, createdAt);
CREATE INDEX hub_review_did_idx ON hub_review (did);

-- The decision for each reviewed subject: its latest review by a current moderator.
-- No row: pending. `featured` is 1 only for an approval that features the subject.
-- Copied into `hub_plugin`/`hub_case` whenever it changes.
CREATE TABLE hub_status (
    subject  TEXT    PRIMARY KEY NOT NULL,
    status   TEXT    NOT NULL,
    featured INTEGER NOT NULL,
    review   TEXT    NOT NULL
) STRICT;

-- Moderators set by the admin (cn.pocketbase.hub.setModerator): `moderator` 1 adds the
-- DID, 0 removes it even when ROOKERY_HUB_MODERATORS names it.
CREATE TABLE hub_moderator (
    did       TEXT    PRIMARY KEY NOT NULL,
    moderator INTEGER NOT NULL CHECK (moderator IN (0, 1)),
    updatedAt INTEGER NOT NULL
) STRICT;

-- Downloads per plugin URI and UTC day (`YYYY-MM-DD`).
CREATE TABLE hub_download_day (
    uri   TEXT    NOT NULL,
    day   TEXT    NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (uri, day)
) STRICT, WITHOUT ROWID;

-- When each client address last had a download of a plugin counted (UNIX seconds).
CREATE TABLE hub_download_seen (
    uri TEXT    NOT NULL,
    ip  TEXT    NOT NULL,
    at  INTEGER NOT NULL,
    PRIMARY KEY (uri, ip)
) STRICT, WITHOUT ROWID;
CREATE INDEX hub_download_seen_at_idx ON hub_download_seen (at);

-- Plugin and case creations per account (UNIX seconds), for the hourly limits.
CREATE TABLE hub_create_log (
    id         INTEGER PRIMARY KEY,
    did        TEXT    NOT NULL,
    collection TEXT    NOT NULL,
    at         INTEGER NOT NULL
) STRICT;
CREATE INDEX hub_create_log_idx ON hub_create_log (did, collection, at);

-- Accounts with a hub write committed but maybe not indexed: set before the commit,
-- cleared once the index caught up. Start-up reindexes the accounts left here by a crash.
CREATE TABLE hub_pending (
    did   TEXT    PRIMARY KEY NOT NULL,
    since INTEGER NOT NULL
) STRICT;
