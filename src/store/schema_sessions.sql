-- Version 7: the setup page's signed-in browsers, kept across restarts (the README asks
-- for a restart after every settings change, which used to sign everyone out). A session
-- id is stored only as its SHA-256 (hex), so a copy of the database signs nobody in.
CREATE TABLE sessions (
    id_digest    TEXT PRIMARY KEY,
    csrf         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    -- A sentence for the next page this session loads, shown once.
    flash        TEXT
) WITHOUT ROWID;
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);
