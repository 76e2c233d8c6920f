-- OAuth authorization server (issue 13). Tokens are opaque random strings; only their
-- SHA-256 is stored.

-- A pushed authorization request, from PAR to the code exchange.
CREATE TABLE oauth_request (
    id TEXT PRIMARY KEY NOT NULL,         -- the request_uri's identifier
    client_id TEXT NOT NULL,
    params TEXT NOT NULL,                 -- JSON of the authorization parameters
    dpop_jkt TEXT,                        -- key the PAR's DPoP proof used, if any
    expires_at INTEGER NOT NULL,
    did TEXT,                             -- the account once signed in
    consent_hash TEXT,                    -- SHA-256 of the consent page's one-time secret
    code_hash TEXT UNIQUE,                -- SHA-256 of the authorization code, once consented
    code_expires_at INTEGER
);

-- One authorized session of a client: the current access and refresh tokens.
CREATE TABLE oauth_token (
    id TEXT PRIMARY KEY NOT NULL,
    did TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_name TEXT,
    scope TEXT NOT NULL,
    dpop_jkt TEXT NOT NULL,
    confidential INTEGER NOT NULL,
    code_hash TEXT UNIQUE,                -- the code it came from (reuse revokes it)
    access_hash TEXT NOT NULL UNIQUE,
    access_expires_at INTEGER NOT NULL,
    refresh_hash TEXT NOT NULL UNIQUE,
    refresh_expires_at INTEGER NOT NULL,
    session_expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX oauth_token_did ON oauth_token (did);

-- Refresh tokens already exchanged: presenting one again revokes its session.
CREATE TABLE oauth_used_refresh (
    refresh_hash TEXT PRIMARY KEY NOT NULL,
    token_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
