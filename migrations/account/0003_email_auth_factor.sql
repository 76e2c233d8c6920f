-- Email sign-in codes (`emailAuthFactor`) and reserved signing keys.

-- Whether a password login must also present a code mailed to the account's address.
ALTER TABLE account ADD COLUMN emailAuthFactor INTEGER NOT NULL DEFAULT 0
    CHECK (emailAuthFactor IN (0, 1));

-- `email_token` gains the purpose `2fa_code` (a sign-in code). SQLite cannot alter a CHECK
-- constraint, so the table is rebuilt; nothing references it.
CREATE TABLE email_token_new (
    purpose     TEXT    NOT NULL CHECK (purpose IN (
                    'confirm_email', 'update_email', 'reset_password',
                    'delete_account', 'plc_operation', '2fa_code')),
    did         TEXT    NOT NULL REFERENCES actor (did) ON DELETE CASCADE,
    token       TEXT    NOT NULL,
    requestedAt INTEGER NOT NULL,
    PRIMARY KEY (purpose, did),
    UNIQUE (purpose, token)
) STRICT;
INSERT INTO email_token_new (purpose, did, token, requestedAt)
    SELECT purpose, did, token, requestedAt FROM email_token;
DROP TABLE email_token;
ALTER TABLE email_token_new RENAME TO email_token;

-- Signing keys handed out by `com.atproto.server.reserveSigningKey`, for an account about
-- to be created or migrated here. `did` is the DID the key was reserved for, or NULL. The
-- private key (raw secp256k1 scalar) never leaves this database except into the account's
-- actor store.
CREATE TABLE reserved_signing_key (
    keyDid     TEXT    PRIMARY KEY NOT NULL,
    did        TEXT    UNIQUE,
    privateKey BLOB    NOT NULL,
    createdAt  INTEGER NOT NULL
) STRICT;
