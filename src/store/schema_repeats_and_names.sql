-- Version 3: repeated messages without an id are merged only within a short window, and
-- through a keyed lookup; every merge is recorded; contacts learn their names and pictures
-- from Chatrace's API.

-- A hash of contact, direction, text and attachments, set only on messages that have
-- neither an external id nor a sender time (dedup_key IS NULL).
ALTER TABLE messages ADD COLUMN weak_key BLOB;
DROP INDEX messages_weak;
CREATE INDEX messages_weak ON messages (weak_key, raw_request_id) WHERE weak_key IS NOT NULL;

-- One row per message a request carried that was merged into an earlier one, so every
-- merge stays visible: which request, and the message it was taken for.
CREATE TABLE merged (
    id             INTEGER PRIMARY KEY,
    raw_request_id INTEGER NOT NULL REFERENCES raw_requests (id),
    message_id     INTEGER REFERENCES messages (id),
    received_at    INTEGER NOT NULL
);

ALTER TABLE contacts ADD COLUMN profile_pic TEXT;
-- The name lookup through Chatrace's API: when it last ran for this contact, and why it
-- failed if it did (NULL: found, or never asked).
ALTER TABLE contacts ADD COLUMN looked_up_at INTEGER;
ALTER TABLE contacts ADD COLUMN lookup_error TEXT;
CREATE INDEX contacts_unnamed ON contacts (looked_up_at) WHERE contact_name IS NULL;
