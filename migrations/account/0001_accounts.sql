-- Account database (`{data}/account.sqlite`): one database for the whole server, holding who
-- the accounts are and how they authenticate. Repositories live in the per-account actor
-- stores, not here.
--
-- Times are UNIX seconds (INTEGER). Handles and e-mail addresses are stored lowercase (the
-- application lowercases them before every write and lookup; NOCASE is a second guard for
-- ASCII). Child tables reference `actor` with ON DELETE CASCADE, so deleting the actor row
-- removes everything the account owns (connections enable `foreign_keys`).

-- Every account hosted here: its identity and its availability.
CREATE TABLE actor (
    did           TEXT    PRIMARY KEY NOT NULL,
    handle        TEXT    COLLATE NOCASE UNIQUE,
    createdAt     INTEGER NOT NULL,
    -- Set while the account is taken down by a moderator (the reference's subject status ref).
    takedownRef   TEXT,
    -- Set while the account is deactivated by its owner.
    deactivatedAt INTEGER,
    -- When a deactivated account may be deleted for good, if ever.
    deleteAfter   INTEGER
) STRICT;

-- Listing accounts in creation order (admin paging).
CREATE INDEX actor_cursor_idx ON actor (createdAt, did);

-- Login credentials of an actor. `passwordHash` is an argon2id PHC string.
CREATE TABLE account (
    did              TEXT    PRIMARY KEY NOT NULL REFERENCES actor (did) ON DELETE CASCADE,
    email            TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    passwordHash     TEXT    NOT NULL,
    emailConfirmedAt INTEGER,
    invitesDisabled  INTEGER NOT NULL DEFAULT 0 CHECK (invitesDisabled IN (0, 1))
) STRICT;

-- Refresh tokens (by `jti`). A session is a chain of tokens sharing one `family` (the jti of
-- its first token): rotating a token sets its `nextId`/`rotatedAt` and adds the successor.
-- Rotated tokens are kept until their own expiry so that a replay is recognised and the whole
-- family revoked. `createdAt` is the successor's `iat`, so it can be re-signed identically
-- during the short retry grace window.
CREATE TABLE refresh_token (
    id          TEXT    PRIMARY KEY NOT NULL,
    did         TEXT    NOT NULL REFERENCES actor (did) ON DELETE CASCADE,
    family      TEXT    NOT NULL,
    createdAt   INTEGER NOT NULL,
    expiresAt   INTEGER NOT NULL,
    -- The app password the session was opened with, if any.
    appPassName TEXT,
    nextId      TEXT,
    rotatedAt   INTEGER
) STRICT;

-- Revoking a DID's (or one app password's) sessions, and expiry clean-up per DID.
CREATE INDEX refresh_token_did_idx ON refresh_token (did, appPassName);
-- Revoking a session chain.
CREATE INDEX refresh_token_family_idx ON refresh_token (family);

-- App passwords. `passwordHash` is a domain-separated SHA-256 of the DID and the password
-- (hex): app passwords carry 80 random bits, so one indexed lookup replaces a slow hash per
-- stored app password.
CREATE TABLE app_password (
    did          TEXT    NOT NULL REFERENCES actor (did) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    passwordHash TEXT    NOT NULL,
    createdAt    INTEGER NOT NULL,
    privileged   INTEGER NOT NULL DEFAULT 0 CHECK (privileged IN (0, 1)),
    PRIMARY KEY (did, name)
) STRICT;

CREATE UNIQUE INDEX app_password_hash_idx ON app_password (did, passwordHash);

-- Invite codes. `forAccount` is the DID the code was issued to, or `admin`.
CREATE TABLE invite_code (
    code          TEXT    PRIMARY KEY NOT NULL,
    availableUses INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    forAccount    TEXT    NOT NULL,
    createdBy     TEXT    NOT NULL,
    createdAt     INTEGER NOT NULL
) STRICT;

CREATE INDEX invite_code_for_account_idx ON invite_code (forAccount);

-- One row per account created with a code. Deliberately not tied to `actor`: the use stays
-- counted against the code after the account that used it is deleted.
CREATE TABLE invite_code_use (
    code   TEXT    NOT NULL REFERENCES invite_code (code) ON DELETE CASCADE,
    usedBy TEXT    NOT NULL,
    usedAt INTEGER NOT NULL,
    PRIMARY KEY (code, usedBy)
) STRICT;

CREATE INDEX invite_code_use_used_by_idx ON invite_code_use (usedBy);

-- Tokens mailed to an account's owner; one live token per account and purpose.
CREATE TABLE email_token (
    purpose     TEXT    NOT NULL CHECK (purpose IN (
                    'confirm_email', 'update_email', 'reset_password',
                    'delete_account', 'plc_operation')),
    did         TEXT    NOT NULL REFERENCES actor (did) ON DELETE CASCADE,
    token       TEXT    NOT NULL,
    requestedAt INTEGER NOT NULL,
    PRIMARY KEY (purpose, did),
    UNIQUE (purpose, token)
) STRICT;

-- Login attempts against existing accounts, for lockout. A row is written as a failure
-- before the password is checked (so concurrent guesses count) and flipped to a success when
-- it matches; the ids order the attempts.
CREATE TABLE login_attempt (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    did     TEXT    NOT NULL REFERENCES actor (did) ON DELETE CASCADE,
    at      INTEGER NOT NULL,
    ip      TEXT,
    success INTEGER NOT NULL DEFAULT 0 CHECK (success IN (0, 1))
) STRICT;

CREATE INDEX login_attempt_did_idx ON login_attempt (did, id);
