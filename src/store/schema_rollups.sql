-- Version 4: every figure the stats, the page and /metrics show is read from a rollup
-- written in the same transaction as what it counts, never from a scan of the messages;
-- the indexes that retention needs to delete old rows without scanning; and the dedup key
-- becomes a 16-byte hash (re-keyed in place by the Rust part of this migration).

-- Real (non-test) messages per UTC day and per hour since 1970, both directions. Kept when
-- retention deletes the messages themselves: the daily counts outlive personal data.
CREATE TABLE daily (
    day      INTEGER PRIMARY KEY,
    messages INTEGER NOT NULL
);
CREATE TABLE hourly (
    hour     INTEGER PRIMARY KEY,
    messages INTEGER NOT NULL
);

-- Deliveries per target and state, kept by triggers: every path that creates, moves or
-- deletes a delivery (ingest, attempts, replays, retention) is counted without its own code.
CREATE TABLE delivery_counts (
    target     TEXT NOT NULL,
    state      TEXT NOT NULL,
    deliveries INTEGER NOT NULL,
    PRIMARY KEY (target, state)
) WITHOUT ROWID;
INSERT INTO delivery_counts (target, state, deliveries)
    SELECT target, state, count(*) FROM deliveries GROUP BY target, state;

CREATE TRIGGER deliveries_counted_insert AFTER INSERT ON deliveries BEGIN
    INSERT INTO delivery_counts (target, state, deliveries) VALUES (NEW.target, NEW.state, 1)
        ON CONFLICT (target, state) DO UPDATE SET deliveries = deliveries + 1;
END;
CREATE TRIGGER deliveries_counted_update AFTER UPDATE OF state ON deliveries
WHEN OLD.state IS NOT NEW.state BEGIN
    UPDATE delivery_counts SET deliveries = deliveries - 1
        WHERE target = OLD.target AND state = OLD.state;
    INSERT INTO delivery_counts (target, state, deliveries) VALUES (NEW.target, NEW.state, 1)
        ON CONFLICT (target, state) DO UPDATE SET deliveries = deliveries + 1;
END;
CREATE TRIGGER deliveries_counted_delete AFTER DELETE ON deliveries BEGIN
    UPDATE delivery_counts SET deliveries = deliveries - 1
        WHERE target = OLD.target AND state = OLD.state;
END;

-- The number of contacts, kept by triggers (an upsert that finds the contact fires no
-- INSERT trigger, so the common message costs nothing here).
INSERT INTO counters (name, value) SELECT 'contacts', count(*) FROM contacts WHERE true
    ON CONFLICT (name) DO UPDATE SET value = excluded.value;
CREATE TRIGGER contacts_counted_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO counters (name, value) VALUES ('contacts', 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;
CREATE TRIGGER contacts_counted_delete AFTER DELETE ON contacts BEGIN
    UPDATE counters SET value = value - 1 WHERE name = 'contacts';
END;

-- Retention deletes by id; each foreign key into a deleted row is looked up, so every
-- referencing column needs an index or each delete would scan the referencing table.
CREATE INDEX messages_raw ON messages (raw_request_id);
CREATE INDEX merged_raw ON merged (raw_request_id);
CREATE INDEX merged_message ON merged (message_id);
CREATE INDEX deliveries_message ON deliveries (message_id);
-- The reply box's newest contacts, and retention's oldest ones.
CREATE INDEX contacts_recent ON contacts (last_seen);
-- A target's oldest pending delivery, and its newest error, found by index alone.
DROP INDEX deliveries_target_state;
CREATE INDEX deliveries_target_state ON deliveries (target, state, created_at);
CREATE INDEX deliveries_target_error ON deliveries (target, last_attempt_at)
    WHERE state IN ('pending', 'failed') AND last_error IS NOT NULL;
