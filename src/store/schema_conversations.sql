-- Version 9: conversations. Each contact knows its newest message, kept by triggers in the
-- same transaction as the message, so the contact list is one walk of an index and never
-- a scan of the messages; a contact's thread is a range of one index.

-- A message's place in its thread: the sender's time when known, else when it arrived.
CREATE INDEX messages_thread ON messages (contact_id, coalesce(sent_at, received_at), id);

-- The contact's newest real message and its thread time (the contact's own last_seen
-- until it has one), filled below by `conversations::backfill`.
ALTER TABLE contacts ADD COLUMN last_message_id INTEGER;
ALTER TABLE contacts ADD COLUMN last_at INTEGER;

-- A new message becomes its contact's newest unless an older-dated one arrives late (a
-- history import). The contact row of a first message is written after the message, and
-- finds it through contacts_thread_insert.
CREATE TRIGGER messages_thread_insert AFTER INSERT ON messages WHEN NEW.is_test = 0 BEGIN
    UPDATE contacts SET last_message_id = NEW.id,
                        last_at = coalesce(NEW.sent_at, NEW.received_at)
    WHERE contact_id = NEW.contact_id
      AND (last_message_id IS NULL OR coalesce(NEW.sent_at, NEW.received_at) >= last_at);
END;

CREATE TRIGGER contacts_thread_insert AFTER INSERT ON contacts BEGIN
    UPDATE contacts SET
        last_message_id = (SELECT id FROM messages INDEXED BY messages_thread
                           WHERE contact_id = NEW.contact_id AND is_test = 0
                           ORDER BY coalesce(sent_at, received_at) DESC, id DESC LIMIT 1),
        last_at = coalesce((SELECT coalesce(sent_at, received_at)
                            FROM messages INDEXED BY messages_thread
                            WHERE contact_id = NEW.contact_id AND is_test = 0
                            ORDER BY coalesce(sent_at, received_at) DESC, id DESC LIMIT 1),
                           NEW.last_seen)
    WHERE contact_id = NEW.contact_id;
END;

-- Catch-up gives a webhook message the inbox's time: its place may change.
CREATE TRIGGER messages_thread_update AFTER UPDATE OF sent_at ON messages
WHEN NEW.is_test = 0 AND OLD.sent_at IS NOT NEW.sent_at BEGIN
    UPDATE contacts SET
        last_message_id = (SELECT id FROM messages INDEXED BY messages_thread
                           WHERE contact_id = NEW.contact_id AND is_test = 0
                           ORDER BY coalesce(sent_at, received_at) DESC, id DESC LIMIT 1),
        last_at = coalesce((SELECT coalesce(sent_at, received_at)
                            FROM messages INDEXED BY messages_thread
                            WHERE contact_id = NEW.contact_id AND is_test = 0
                            ORDER BY coalesce(sent_at, received_at) DESC, id DESC LIMIT 1),
                           last_at)
    WHERE contact_id = NEW.contact_id;
END;

-- Retention deleting a contact's newest message hands the place to the one before it.
CREATE TRIGGER messages_thread_delete AFTER DELETE ON messages WHEN OLD.is_test = 0 BEGIN
    UPDATE contacts SET
        last_message_id = (SELECT id FROM messages INDEXED BY messages_thread
                           WHERE contact_id = OLD.contact_id AND is_test = 0
                           ORDER BY coalesce(sent_at, received_at) DESC, id DESC LIMIT 1),
        last_at = coalesce((SELECT coalesce(sent_at, received_at)
                            FROM messages INDEXED BY messages_thread
                            WHERE contact_id = OLD.contact_id AND is_test = 0
                            ORDER BY coalesce(sent_at, received_at) DESC, id DESC LIMIT 1),
                           last_at)
    WHERE contact_id = OLD.contact_id AND last_message_id = OLD.id;
END;

-- The contact list by latest activity. Made here, not by the backfill, so a new database
-- (which has nothing to backfill) has it too.
CREATE INDEX contacts_activity ON contacts (last_at, contact_id);
