-- The embedded did:plc directory: every operation ever accepted, per DID in order.
-- `seq` orders everything (per DID and for /export); `created_at_ms` is strictly increasing
-- per DID (see plc_directory::store::insert_op).
CREATE TABLE plc_operation (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    did TEXT NOT NULL,
    cid TEXT NOT NULL,
    -- The signed operation as JSON (its canonical field order).
    operation TEXT NOT NULL,
    nullified INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    UNIQUE (did, cid)
);

CREATE INDEX plc_operation_did ON plc_operation (did, seq);
CREATE INDEX plc_operation_created ON plc_operation (created_at_ms, seq);
