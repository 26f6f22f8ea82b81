-- The journal: every change of state the broker makes, in the order it made them. Rows are
-- only ever appended; a restarted server folds them to find the leases that are still held,
-- and the HTTP API serves them as the audit history.
CREATE TABLE events (
    -- The event's sequence number. An alias of the rowid, so appends go to the end of the
    -- table's b-tree and need no separate index.
    seq  INTEGER PRIMARY KEY,
    -- When the server stored it: unix time in milliseconds.
    at   INTEGER NOT NULL,
    -- The event's `type` (`granted`, `released`, ...), to filter the history without parsing.
    kind TEXT    NOT NULL,
    -- The whole event as JSON, as `summoner_broker::Event` serializes it.
    json TEXT    NOT NULL
);
