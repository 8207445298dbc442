//! Messages: the cursor, the export, the page's lists, the contacts, replies the relay
//! sent itself (stored as direction `out`, so both sides of a conversation show), and the
//! first real message the checklist looks for.

use rusqlite::types::Type;
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::{rfc3339, rfc3339_or_null};

use super::rollups::Tally;
use super::Store;
use crate::contact::ContactInfo;
use crate::error::Result;
use crate::payload::{Attachment, Direction};

/// The first message is looked for among this many real messages: enough for any setup,
/// and a bound on the scan when no Instagram message exists in a big database.
const FIRST_MESSAGE_WINDOW: i64 = 10_000;

/// A stored message as the API and the export show it.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: i64,
    #[serde(rename = "received_at", serialize_with = "rfc3339")]
    pub received_at_ms: i64,
    #[serde(rename = "sent_at", serialize_with = "rfc3339_or_null")]
    pub sent_at_ms: Option<i64>,
    pub channel: Option<String>,
    pub direction: Direction,
    pub contact_id: String,
    pub contact_name: Option<String>,
    pub username: Option<String>,
    pub text: Option<String>,
    pub attachments: Vec<StoredAttachment>,
    pub external_id: Option<String>,
    pub raw_request_id: Option<i64>,
    pub test: bool,
    /// `webhook`, `inbox` (caught up from Chatrace's inbox) or `relay` (a reply it sent).
    pub source: String,
    /// Who wrote an outgoing message: `bot`, `agent`, `instagram_app`, `facebook_inbox`.
    pub sender: Option<String>,
    /// The team member, when `sender` is `agent`.
    pub sender_id: Option<String>,
}

/// An attachment as sent, and whether the relay keeps its file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StoredAttachment {
    #[serde(rename = "type")]
    pub kind: String,
    /// The link the message came with (Instagram's links expire within days).
    pub url: String,
    /// The relay's own path to the kept file, `/media/<sha-256>`; null until kept.
    pub media_url: Option<String>,
    pub kept: bool,
    /// What became of the fetch (`pending`, `kept`, `expired`, `refused`, `evicted`);
    /// None when the relay does not keep media or has not seen the message yet.
    #[serde(skip)]
    pub fate: Option<String>,
}

impl StoredAttachment {
    /// A message's attachments with what the fetcher recorded for each (by position).
    fn list(attachments: Vec<Attachment>, fates: &str) -> Vec<StoredAttachment> {
        let fates: Vec<(i64, String, Option<String>)> =
            serde_json::from_str(fates).unwrap_or_default();
        attachments
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                let fate = fates.iter().find(|(p, _, _)| *p == i as i64);
                let hash =
                    fate.and_then(|(_, state, hash)| hash.as_ref().filter(|_| state == "kept"));
                StoredAttachment {
                    kind: a.kind,
                    url: a.url,
                    media_url: hash.map(|h| format!("{}{h}", crate::paths::MEDIA)),
                    kept: hash.is_some(),
                    fate: fate.map(|(_, state, _)| state.clone()),
                }
            })
            .collect()
    }
}

/// A person to reply to, for the reply box's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub contact_id: String,
    pub name: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FirstMessage {
    pub received_at_ms: i64,
    pub channel: Option<String>,
    pub contact_id: String,
    pub contact_name: Option<String>,
    pub username: Option<String>,
}

/// A message's columns, its name and username filled from the contact when the message
/// itself had none: Chatrace often sends no name, and the name lookup learns it later.
pub(super) const MESSAGE_COLUMNS: &str = "m.id, m.received_at, m.sent_at, m.channel,
    m.direction, m.contact_id, coalesce(m.contact_name, c.contact_name),
    coalesce(m.username, c.username), m.text, m.attachments, m.external_id,
    m.raw_request_id, m.is_test, m.source, m.sender, m.sender_id,
    (SELECT json_group_array(json_array(l.position, l.state, l.hash))
     FROM media_links l WHERE l.message_id = m.id)";
/// Where `MESSAGE_COLUMNS` come from.
pub(super) const MESSAGES: &str = "messages m LEFT JOIN contacts c ON c.contact_id = m.contact_id";

pub(super) fn message_from_row(row: &Row) -> rusqlite::Result<Message> {
    let attachments: String = row.get(9)?;
    let fates: String = row.get(16)?;
    let direction: String = row.get(4)?;
    Ok(Message {
        id: row.get(0)?,
        received_at_ms: row.get(1)?,
        sent_at_ms: row.get(2)?,
        channel: row.get(3)?,
        direction: direction.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(4, Type::Text, e.into())
        })?,
        contact_id: row.get(5)?,
        contact_name: row.get(6)?,
        username: row.get(7)?,
        text: row.get(8)?,
        attachments: StoredAttachment::list(
            serde_json::from_str(&attachments).unwrap_or_default(),
            &fates,
        ),
        external_id: row.get(10)?,
        raw_request_id: row.get(11)?,
        test: row.get(12)?,
        source: row.get(13)?,
        sender: row.get(14)?,
        sender_id: row.get(15)?,
    })
}

impl Store {
    /// The catch-up cursor: messages with id greater than `after`, oldest first.
    pub fn messages_after(&self, after: i64, limit: u32) -> Result<Vec<Message>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES} WHERE m.id > ?1 ORDER BY m.id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after, limit], message_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Messages received at or after `since_ms`, oldest first, for the export command.
    pub fn for_each_message_since(
        &self,
        since_ms: i64,
        mut each: impl FnMut(Message) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES}
             WHERE m.received_at >= ?1 AND m.is_test = 0 ORDER BY m.id"
        ))?;
        let rows = stmt.query_map([since_ms], message_from_row)?;
        for row in rows {
            each(row?)?;
        }
        Ok(())
    }

    pub fn newest_message_id(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM messages")?
            .query_row([], |r| r.get(0))?)
    }

    /// One page of messages older than message `before` (the newest when None), newest
    /// first (test messages included: the page marks them), and whether older ones exist.
    /// Keyset pagination: any page costs the same, however far back.
    pub fn recent_messages(
        &self,
        before: Option<i64>,
        per_page: u32,
    ) -> Result<(Vec<Message>, bool)> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES} WHERE m.id < ?2 ORDER BY m.id DESC LIMIT ?1"
        ))?;
        let before = before.unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![i64::from(per_page) + 1, before], message_from_row)?;
        let mut messages = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let more = messages.len() > per_page as usize;
        messages.truncate(per_page as usize);
        Ok((messages, more))
    }

    /// The page just newer than message `after`, newest first, and whether newer ones exist
    /// beyond it: the way back from an older page.
    pub fn newer_messages(&self, after: i64, per_page: u32) -> Result<(Vec<Message>, bool)> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES} WHERE m.id > ?2 ORDER BY m.id LIMIT ?1"
        ))?;
        let rows = stmt.query_map(params![i64::from(per_page) + 1, after], message_from_row)?;
        let mut messages = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let more = messages.len() > per_page as usize;
        messages.truncate(per_page as usize);
        messages.reverse();
        Ok((messages, more))
    }

    /// The people seen most recently, newest first.
    pub fn recent_contacts(&self, limit: u32) -> Result<Vec<Contact>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT contact_id, contact_name, username FROM contacts
             ORDER BY last_seen DESC, contact_id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(Contact {
                contact_id: r.get(0)?,
                name: r.get(1)?,
                username: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stores a sent reply and counts it; returns its message id. One short transaction,
    /// so the message and its counts commit together.
    pub fn insert_sent_message(
        &self,
        contact_id: &str,
        channel: &str,
        text: &str,
        sent_at_ms: i64,
    ) -> Result<i64> {
        // The weak key lets catch-up recognise this reply when it sees it in Chatrace's
        // inbox, instead of storing it twice.
        let weak_key = crate::payload::NewMessage {
            sent_at_ms: None,
            channel: None,
            direction: crate::payload::Direction::Out,
            contact_id: contact_id.to_string(),
            contact_name: None,
            username: None,
            profile_pic: None,
            text: Some(text.to_string()),
            attachments: Vec::new(),
            external_id: None,
        }
        .weak_key();
        let tx = self.conn.unchecked_transaction()?;
        tx.prepare_cached(
            "INSERT INTO messages (raw_request_id, received_at, sent_at, channel, direction,
                                   contact_id, text, attachments, is_test, source, sender,
                                   weak_key)
             VALUES (NULL, ?1, ?1, ?2, 'out', ?3, ?4, '[]', 0, 'relay', NULL, ?5)",
        )?
        .execute(params![
            sent_at_ms,
            channel,
            contact_id,
            text,
            &weak_key[..]
        ])?;
        let id = tx.last_insert_rowid();
        let mut tally = Tally::default();
        tally.messages(sent_at_ms, 0, 1);
        tally.write(&tx)?;
        tx.commit()?;
        Ok(id)
    }

    /// Contacts without a name whose lookup has not run, or last ran before `retry_before`.
    pub fn contacts_to_look_up(&self, retry_before: i64, limit: u32) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT contact_id FROM contacts INDEXED BY contacts_unnamed
             WHERE contact_name IS NULL AND (looked_up_at IS NULL OR looked_up_at < ?1)
             ORDER BY looked_up_at LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![retry_before, limit], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What a lookup found; a name or picture the contact already has is kept.
    pub fn record_lookup(
        &self,
        contact_id: &str,
        info: &ContactInfo,
        error: Option<&str>,
        at_ms: i64,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE contacts SET contact_name = coalesce(contact_name, ?2),
                                     profile_pic = coalesce(profile_pic, ?3),
                                     channel = coalesce(channel, ?4),
                                     looked_up_at = ?5, lookup_error = ?6
                 WHERE contact_id = ?1",
            )?
            .execute(params![
                contact_id,
                info.name,
                info.profile_pic,
                info.channel,
                at_ms,
                error
            ])?;
        Ok(())
    }

    /// The first real message: an incoming Instagram one when there is one early on, else
    /// the first of any channel.
    pub fn first_message(&self) -> Result<Option<FirstMessage>> {
        let instagram = self
            .conn
            .prepare_cached(
                "SELECT received_at, channel, contact_id, contact_name, username FROM messages
                 WHERE id IN (SELECT id FROM messages WHERE is_test = 0 ORDER BY id LIMIT ?1)
                   AND lower(channel) = 'instagram' AND direction = 'in'
                 ORDER BY id LIMIT 1",
            )?
            .query_row([FIRST_MESSAGE_WINDOW], first_message_row)
            .optional()?;
        if instagram.is_some() {
            return Ok(instagram);
        }
        Ok(self
            .conn
            .prepare_cached(
                "SELECT received_at, channel, contact_id, contact_name, username FROM messages
                 WHERE is_test = 0 ORDER BY id LIMIT 1",
            )?
            .query_row([], first_message_row)
            .optional()?)
    }

    pub fn test_message_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT count(*) FROM messages WHERE is_test = 1")?
            .query_row([], |r| r.get(0))?)
    }
}

fn first_message_row(r: &rusqlite::Row) -> rusqlite::Result<FirstMessage> {
    Ok(FirstMessage {
        received_at_ms: r.get(0)?,
        channel: r.get(1)?,
        contact_id: r.get(2)?,
        contact_name: r.get(3)?,
        username: r.get(4)?,
    })
}
