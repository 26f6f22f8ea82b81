-- Checkpoints: what a restart needs to know of the journal up to event `seq` (the held
-- leases, and which live sessions are not resumable), as `summoner_broker::Checkpoint`
-- serializes it. A restart starts from the newest and folds only the events after it. Older
-- rows keep only `seq` and `at` (their `json` is cleared): they mark how far the history
-- reached at a time, which is how pruning finds the events older than the retention without
-- an index on `events.at` (one more b-tree write per event).
CREATE TABLE checkpoints (
    seq  INTEGER PRIMARY KEY,
    -- When the server stored it: unix time in milliseconds.
    at   INTEGER NOT NULL,
    json TEXT
);

-- The run-time inventory changes, which a restart replays on top of the config and which are
-- never pruned: few rows, found without scanning the history. A partial index costs nothing
-- on the inserts of other events.
CREATE INDEX events_inventory ON events (seq) WHERE kind IN (
    'resource_added', 'resource_changed', 'resource_removed', 'resource_disabled',
    'resource_enabled', 'pool_added', 'pool_removed'
);
