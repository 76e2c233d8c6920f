-- How far the pruning of old events has reached: the highest `seq` ever deleted for age.
-- A firehose cursor below it may have missed events (the server answers `OutdatedCursor`).
-- One row at most.
CREATE TABLE repo_seq_pruned (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    through INTEGER NOT NULL
);
