-- Actor store, part 3: the account's blobs.
--
-- One row per blob the account uploaded (as the reference's `blob` table). As everywhere in
-- this database, `cid` is the binary CID (`Cid::to_bytes()`), so it joins `record_blob.blobCid`.
--
-- `tempKey` is set while the blob waits in the blob store's temporary area (uploaded, not yet
-- referenced by a committed record); the commit that first references it moves it to its
-- permanent place and clears `tempKey` in the same transaction as the records. A row whose
-- `tempKey` stays set past the grace period with no record referencing it is garbage.
-- `createdAt` (RFC 3339, UTC, milliseconds, so it sorts as text) is when the current upload
-- was tracked. `takedownRef` is set while a moderator has taken the blob down.
CREATE TABLE blob (
    cid         BLOB    PRIMARY KEY NOT NULL,
    mimeType    TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    tempKey     TEXT,
    createdAt   TEXT    NOT NULL,
    takedownRef TEXT
);

-- Finding the row of a temp upload (garbage collection), and the temporary rows at all.
CREATE INDEX blob_temp_key_idx ON blob (tempKey) WHERE tempKey IS NOT NULL;

