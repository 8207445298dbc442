//! Conversations: the contacts by their latest activity, one contact's thread in time
//! order, and when the contact last wrote (Instagram's reply window). Each contact's newest
//! message is kept by the triggers of `schema_conversations.sql`, so no read here scans the
//! messages: the list walks `contacts_activity`, a thread a range of `messages_thread`.

use std::time::Instant;

use rusqlite::{params, Connection, Row};

use super::messages::{message_from_row, Message, MESSAGE_COLUMNS};
use super::Store;
use crate::error::Result;
use crate::payload::{Attachment, Direction};

/// A message's place in its thread: the sender's time when known, else its arrival. The
/// `messages_thread` index is built on this very expression.
pub(super) const THREAD_TIME: &str = "coalesce(m.sent_at, m.received_at)";

/// One row of the contact list.
#[derive(Debug)]
pub struct ContactSummary {
    pub contact_id: String,
    pub name: Option<String>,
    pub username: Option<String>,
    pub profile_pic: Option<String>,
    pub channel: Option<String>,
    /// Messages stored for the contact (by webhook or from the inbox), all time.
    pub messages: i64,
    /// The thread time of the newest message (when the contact was last seen, without one).
    pub last_at_ms: i64,
    pub last: Option<LastMessage>,
}

/// The newest message of a contact, as the list shows it.
#[derive(Debug)]
pub struct LastMessage {
    pub direction: Direction,
    pub text: Option<String>,
    pub attachments: Vec<Attachment>,
}

/// Where a page of contacts or of a thread starts: below this (time, key) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Before<K> {
    pub at_ms: i64,
    pub key: K,
}

impl Store {
    /// One page of contacts, most recent activity first, below `before` (the newest when
    /// None), and whether more follow. Keyset paging over `contacts_activity`.
    pub fn contacts_page(
        &self,
        before: Option<&Before<String>>,
        per_page: u32,
    ) -> Result<(Vec<ContactSummary>, bool)> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.contact_id, c.contact_name, c.username, c.profile_pic, c.channel,
                    c.messages, c.last_at, m.id, m.direction, m.text, m.attachments
             FROM contacts c INDEXED BY contacts_activity
             LEFT JOIN messages m ON m.id = c.last_message_id
             WHERE (c.last_at, c.contact_id) < (?1, ?2)
             ORDER BY c.last_at DESC, c.contact_id DESC LIMIT ?3",
        )?;
        let (at, key) = match before {
            Some(b) => (b.at_ms, b.key.as_str()),
            None => (i64::MAX, ""),
        };
        let rows = stmt.query_map(params![at, key, i64::from(per_page) + 1], contact_row)?;
        let mut contacts = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let more = contacts.len() > per_page as usize;
        contacts.truncate(per_page as usize);
        Ok((contacts, more))
    }

    /// One contact's summary, for the thread's heading.
    pub fn contact_summary(&self, contact_id: &str) -> Result<Option<ContactSummary>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .prepare_cached(
                "SELECT c.contact_id, c.contact_name, c.username, c.profile_pic, c.channel,
                        c.messages, c.last_at, m.id, m.direction, m.text, m.attachments
                 FROM contacts c LEFT JOIN messages m ON m.id = c.last_message_id
                 WHERE c.contact_id = ?1",
            )?
            .query_row([contact_id], contact_row)
            .optional()?)
    }

    /// The newest `per_page` messages of a contact's thread before `before` (the newest
    /// when None), in time order (oldest first), and whether earlier ones exist.
    pub fn thread(
        &self,
        contact_id: &str,
        before: Option<&Before<i64>>,
        per_page: u32,
    ) -> Result<(Vec<Message>, bool)> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES_BY_THREAD}
             WHERE m.contact_id = ?1 AND ({THREAD_TIME}, m.id) < (?2, ?3)
             ORDER BY {THREAD_TIME} DESC, m.id DESC LIMIT ?4"
        ))?;
        let (at, id) = before.map_or((i64::MAX, i64::MAX), |b| (b.at_ms, b.key));
        let rows = stmt.query_map(
            params![contact_id, at, id, i64::from(per_page) + 1],
            message_from_row,
        )?;
        let mut messages = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let more = messages.len() > per_page as usize;
        messages.truncate(per_page as usize);
        messages.reverse();
        Ok((messages, more))
    }

    /// Every message of a contact's thread in time order, for the export.
    pub fn for_each_in_thread(
        &self,
        contact_id: &str,
        mut each: impl FnMut(Message) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES_BY_THREAD}
             WHERE m.contact_id = ?1 ORDER BY {THREAD_TIME}, m.id"
        ))?;
        for row in stmt.query_map([contact_id], message_from_row)? {
            each(row?)?;
        }
        Ok(())
    }

    /// The thread time of the contact's newest incoming real message: Instagram lets a
    /// business answer for 24 hours after it. Walks the thread back to the first one.
    pub fn last_incoming_at(&self, contact_id: &str) -> Result<Option<i64>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {THREAD_TIME} FROM messages m INDEXED BY messages_thread
                 WHERE m.contact_id = ?1 AND m.direction = 'in' AND m.is_test = 0
                 ORDER BY {THREAD_TIME} DESC, m.id DESC LIMIT 1"
            ))?
            .query_row([contact_id], |r| r.get(0))
            .optional()?)
    }
}

/// The thread's messages with their contact, through the thread index.
const MESSAGES_BY_THREAD: &str =
    "messages m INDEXED BY messages_thread LEFT JOIN contacts c ON c.contact_id = m.contact_id";

fn contact_row(r: &Row) -> rusqlite::Result<ContactSummary> {
    let last = match r.get::<_, Option<i64>>(7)? {
        None => None,
        Some(_) => {
            let direction: String = r.get(8)?;
            let attachments: String = r.get(10)?;
            Some(LastMessage {
                direction: direction.parse().unwrap_or(Direction::In),
                text: r.get(9)?,
                attachments: serde_json::from_str(&attachments).unwrap_or_default(),
            })
        }
    };
    Ok(ContactSummary {
        contact_id: r.get(0)?,
        name: r.get(1)?,
        username: r.get(2)?,
        profile_pic: r.get(3)?,
        channel: r.get(4)?,
        messages: r.get(5)?,
        last_at_ms: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
        last,
    })
}

/// Upgrade to schema 7: every contact learns its newest message through the new thread
/// index (one lookup per contact), then the activity index is built.
pub(super) fn backfill(conn: &Connection) -> Result<()> {
    let started = Instant::now();
    let contacts: i64 = conn.query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?;
    log::info!("upgrade: finding the newest message of {contacts} contacts");
    conn.execute_batch(
        "UPDATE contacts SET
             last_message_id = (SELECT id FROM messages INDEXED BY messages_thread
                                WHERE contact_id = contacts.contact_id AND is_test = 0
                                ORDER BY coalesce(sent_at, received_at) DESC, id DESC
                                LIMIT 1),
             last_at = coalesce((SELECT coalesce(sent_at, received_at)
                                 FROM messages INDEXED BY messages_thread
                                 WHERE contact_id = contacts.contact_id AND is_test = 0
                                 ORDER BY coalesce(sent_at, received_at) DESC, id DESC
                                 LIMIT 1), last_seen);",
    )?;
    log::info!(
        "upgrade: contacts' latest messages found in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's plan for `sql`, one line per step.
    fn plan(store: &Store, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        let mut statement = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = statement.query_map(params, |r| r.get(3)).unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    /// A page of contacts is a range of its index, and a page of a thread walks that
    /// contact's entries of the thread index only (SQLite does not range over the
    /// expression, so a deep page costs the thread's length, never the database's).
    #[test]
    fn the_list_and_a_thread_read_ranges_of_their_indexes() {
        let store = Store::open(std::path::Path::new(":memory:")).unwrap();
        let contacts = plan(
            &store,
            "SELECT c.contact_id FROM contacts c INDEXED BY contacts_activity
             LEFT JOIN messages m ON m.id = c.last_message_id
             WHERE (c.last_at, c.contact_id) < (?1, ?2)
             ORDER BY c.last_at DESC, c.contact_id DESC LIMIT 51",
            params![0, ""],
        );
        assert!(
            contacts.iter().any(|s| s
                .starts_with("SEARCH c USING COVERING INDEX contacts_activity")
                || s.starts_with("SEARCH c USING INDEX contacts_activity")),
            "{contacts:?}"
        );
        let thread = plan(
            &store,
            &format!(
                "SELECT m.id FROM {MESSAGES_BY_THREAD}
                 WHERE m.contact_id = ?1 AND ({THREAD_TIME}, m.id) < (?2, ?3)
                 ORDER BY {THREAD_TIME} DESC, m.id DESC LIMIT 201"
            ),
            params!["c", 0, 0],
        );
        assert!(
            thread.iter().any(|s| s
                .starts_with("SEARCH m USING COVERING INDEX messages_thread (contact_id=?")
                || s.starts_with("SEARCH m USING INDEX messages_thread (contact_id=?")),
            "{thread:?}"
        );
        for step in contacts.iter().chain(&thread) {
            assert!(!step.starts_with("SCAN"), "{contacts:?} {thread:?}");
            assert!(!step.contains("TEMP B-TREE"), "{contacts:?} {thread:?}");
        }
    }
}
