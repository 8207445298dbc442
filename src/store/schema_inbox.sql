-- Version 5: messages caught up from Chatrace's inbox, and who wrote each outgoing message.

-- Where a message came from: 'webhook' (a request to the relay), 'inbox' (caught up from
-- Chatrace's inbox, which no request brought), 'relay' (a reply the relay sent itself).
ALTER TABLE messages ADD COLUMN source TEXT NOT NULL DEFAULT 'webhook'
    CHECK (source IN ('webhook', 'inbox', 'relay'));
-- Outgoing messages: 'bot', 'agent' (with the team member's id), 'instagram_app',
-- 'facebook_inbox'; NULL when unknown or incoming.
ALTER TABLE messages ADD COLUMN sender TEXT;
ALTER TABLE messages ADD COLUMN sender_id TEXT;
-- Caught up while a person had the conversation (flows paused, so no webhook could come).
ALTER TABLE messages ADD COLUMN live_chat INTEGER NOT NULL DEFAULT 0;
-- Replies the relay sent are the only messages without a request (found by messages_raw).
UPDATE messages SET source = 'relay' WHERE raw_request_id IS NULL;
-- The caught-up messages of the last day, counted without scanning the rest.
CREATE INDEX messages_caught_up ON messages (received_at) WHERE source = 'inbox';

-- Caught-up messages per UTC day, during live chat and not; like `daily`, kept when
-- retention deletes the messages.
CREATE TABLE caught_up_daily (
    day       INTEGER PRIMARY KEY,
    live_chat INTEGER NOT NULL,
    other     INTEGER NOT NULL
);

-- Conversations a history import (`catch-up --since`) has finished, so an interrupted
-- import resumes where it stopped. `job` names the import (its start and contact).
CREATE TABLE catch_up_done (
    job        TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    PRIMARY KEY (job, contact_id)
) WITHOUT ROWID;
