-- Version 8: attachments the relay keeps itself, because Instagram's links expire.

-- One row per distinct file, named by the SHA-256 of its bytes, so a picture sent twice
-- is kept once. `size` comes before `data` so totals never read the blobs.
CREATE TABLE media (
    hash         TEXT PRIMARY KEY,
    kept_at      INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX media_age ON media (kept_at);

-- One row per attachment of a message, from when the fetcher saw it: 'pending' (to be
-- fetched at `due_at`), 'kept' (its file is `hash`), 'expired' (the link failed before it
-- could be kept), 'refused' (not fetched: unsafe address, too big, wrong type), 'evicted'
-- (kept, then removed to stay under --keep-media).
CREATE TABLE media_links (
    message_id INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    url        TEXT NOT NULL,
    state      TEXT NOT NULL
        CHECK (state IN ('pending', 'kept', 'expired', 'refused', 'evicted')),
    hash       TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_at     INTEGER,
    error      TEXT,
    PRIMARY KEY (message_id, position)
) WITHOUT ROWID;
CREATE INDEX media_links_due ON media_links (due_at) WHERE state = 'pending';
CREATE INDEX media_links_hash ON media_links (hash) WHERE hash IS NOT NULL;

-- A deleted message (retention) takes its links with it, and a file no link uses any more
-- goes too: nothing personal outlives --keep-messages.
CREATE TRIGGER media_links_follow_messages AFTER DELETE ON messages
BEGIN
    DELETE FROM media_links WHERE message_id = old.id;
END;
CREATE TRIGGER media_follows_links AFTER DELETE ON media_links
WHEN old.hash IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM media_links WHERE hash = old.hash)
BEGIN
    DELETE FROM media WHERE hash = old.hash;
END;
