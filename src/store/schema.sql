-- Version 1 of the chatrace-relay database. Times are unix milliseconds (UTC).

-- Secrets and cached checks, keyed by name.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Every accepted webhook request exactly as it arrived (secrets redacted), also when no
-- message could be read from it: the raw record is what lets a user map an unknown shape.
CREATE TABLE raw_requests (
    id           INTEGER PRIMARY KEY,
    received_at  INTEGER NOT NULL,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    query        TEXT NOT NULL,
    remote_addr  TEXT,
    content_type TEXT,
    headers      TEXT NOT NULL,
    body         BLOB NOT NULL,
    stored       INTEGER NOT NULL DEFAULT 0,
    duplicates   INTEGER NOT NULL DEFAULT 0,
    flag         TEXT,
    flag_detail  TEXT,
    is_test      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX raw_requests_flagged ON raw_requests (id) WHERE flag IS NOT NULL;

CREATE TABLE messages (
    id             INTEGER PRIMARY KEY,
    raw_request_id INTEGER REFERENCES raw_requests (id),
    received_at    INTEGER NOT NULL,
    sent_at        INTEGER,
    channel        TEXT,
    direction      TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    contact_id     TEXT NOT NULL,
    contact_name   TEXT,
    username       TEXT,
    text           TEXT,
    attachments    TEXT NOT NULL DEFAULT '[]',
    external_id    TEXT,
    -- Permanent identity of a logical message (external id, or contact + sender time +
    -- text); NULL when neither is known and only the short time window applies.
    dedup_key      TEXT,
    is_test        INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX messages_dedup ON messages (dedup_key);
-- Stats count real messages by time; the partial index keeps test messages out cheaply.
CREATE INDEX messages_real_received ON messages (received_at) WHERE is_test = 0;
-- Only for the time-window dedup of messages that have neither an external id nor a sender
-- time: partial, so the common keyed message never pays for it.
CREATE INDEX messages_weak ON messages (contact_id, received_at) WHERE dedup_key IS NULL;

-- One row per person seen, so unique counts and names do not scan all messages.
CREATE TABLE contacts (
    contact_id   TEXT PRIMARY KEY,
    contact_name TEXT,
    username     TEXT,
    channel      TEXT,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    messages     INTEGER NOT NULL
) WITHOUT ROWID;

-- Requests turned away (wrong secret, wrong path, bad body...). Bounded: only the newest
-- few hundred are kept; the totals live in counters.
CREATE TABLE rejected (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    remote_addr TEXT,
    excerpt     TEXT NOT NULL
);

-- Monotonic totals that outlive the bounded logs above.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

-- The forwarding outbox: one row per message and target, written in the same transaction
-- as the message, so a stored message is never missing from the outbox.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    message_id      INTEGER NOT NULL REFERENCES messages (id),
    target          TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_status     INTEGER,
    last_error      TEXT
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_state ON deliveries (state, created_at);
