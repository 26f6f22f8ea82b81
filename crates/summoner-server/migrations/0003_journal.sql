-- The journal's identity: a random id given when the server first starts on the database, and
-- kept also in `summoner.state` beside it, with the newest sequence number known to be stored.
-- A database with another id (or none) than that file's is not the journal the file speaks
-- of: it was replaced or emptied. One row at most.
CREATE TABLE journal (
    only INTEGER PRIMARY KEY CHECK (only = 0),
    id   TEXT    NOT NULL
);
