-- Version 10: full-text search over the messages' text and their contact's name and
-- username. Contentless (the text stays in `messages` only) with deletes allowed, so the
-- index costs the words' postings, not a second copy of every text. unicode61 folds case
-- in every script (Cyrillic included) and `remove_diacritics 2` makes "cafe" find "café".
-- Rows are written by the triggers below in the same transaction as the message, so the
-- index never falls behind: ingest, catch-up, replies and retention all go through them.
CREATE VIRTUAL TABLE message_search USING fts5(
    text, name, username,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search (rowid, text, name, username)
    SELECT NEW.id, NEW.text,
           coalesce(NEW.contact_name, (SELECT contact_name FROM contacts
                                       WHERE contact_id = NEW.contact_id)),
           coalesce(NEW.username, (SELECT username FROM contacts
                                   WHERE contact_id = NEW.contact_id));
END;

CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_search WHERE rowid = OLD.id;
END;

CREATE TRIGGER messages_search_update AFTER UPDATE OF text, contact_name, username, contact_id
ON messages BEGIN
    DELETE FROM message_search WHERE rowid = OLD.id;
    INSERT INTO message_search (rowid, text, name, username)
    SELECT NEW.id, NEW.text,
           coalesce(NEW.contact_name, (SELECT contact_name FROM contacts
                                       WHERE contact_id = NEW.contact_id)),
           coalesce(NEW.username, (SELECT username FROM contacts
                                   WHERE contact_id = NEW.contact_id));
END;

-- A name learnt later (the contact lookup, the inbox) reaches the messages that carried
-- none of their own: only those take the contact's name.
CREATE TRIGGER contacts_search_update AFTER UPDATE OF contact_name, username ON contacts
WHEN OLD.contact_name IS NOT NEW.contact_name OR OLD.username IS NOT NEW.username BEGIN
    DELETE FROM message_search WHERE rowid IN (
        SELECT id FROM messages INDEXED BY messages_thread
        WHERE contact_id = NEW.contact_id AND (contact_name IS NULL OR username IS NULL));
    INSERT INTO message_search (rowid, text, name, username)
    SELECT id, text, coalesce(contact_name, NEW.contact_name), coalesce(username, NEW.username)
    FROM messages INDEXED BY messages_thread
    WHERE contact_id = NEW.contact_id AND (contact_name IS NULL OR username IS NULL);
END;
