//! Reads for the HTML page: messages newest first, a page at a time, and the accepted
//! requests that were flagged because no message could be read from them, and the contacts
//! the reply box offers.

use rusqlite::params;

use super::read::{message_from_row, Message, MESSAGE_COLUMNS};
use super::Store;
use crate::error::Result;
use crate::payload::excerpt;

/// How much of a flagged body is read from disk: enough for any excerpt, however big the
/// stored body is.
const BODY_PREFIX_BYTES: i64 = 4096;

/// An accepted request that held no readable message, with the start of what arrived.
#[derive(Debug)]
pub struct FlaggedRequest {
    pub id: i64,
    pub received_at_ms: i64,
    pub method: String,
    pub content_type: Option<String>,
    pub flag: String,
    pub flag_detail: String,
    /// The body's start (or the query string, for a GET), safe to show as text.
    pub excerpt: String,
    pub test: bool,
}

/// A person to reply to, for the reply box's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub contact_id: String,
    pub name: Option<String>,
    pub username: Option<String>,
}

impl Store {
    /// The people seen most recently, newest first.
    pub fn recent_contacts(&self, limit: u32) -> Result<Vec<Contact>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT contact_id, contact_name, username FROM contacts
             ORDER BY last_seen DESC, contact_id LIMIT ?1",
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

    /// One page of messages, newest first (test messages included: the page marks them),
    /// and whether older ones exist.
    pub fn recent_messages(&self, page: u32, per_page: u32) -> Result<(Vec<Message>, bool)> {
        let offset = i64::from(page) * i64::from(per_page);
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages ORDER BY id DESC LIMIT ?1 OFFSET ?2"
        ))?;
        let rows = stmt.query_map(params![i64::from(per_page) + 1, offset], message_from_row)?;
        let mut messages = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let more = messages.len() > per_page as usize;
        messages.truncate(per_page as usize);
        Ok((messages, more))
    }

    /// The newest flagged requests ("received, no message found" and unfilled variables).
    pub fn recent_flagged(&self, limit: u32, excerpt_chars: usize) -> Result<Vec<FlaggedRequest>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, received_at, method, content_type, flag, coalesce(flag_detail, ''),
                    substr(body, 1, ?2), query, is_test
             FROM raw_requests WHERE flag IS NOT NULL ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit, BODY_PREFIX_BYTES], |r| {
            let body: Vec<u8> = r.get(6)?;
            let query: String = r.get(7)?;
            let mut shown = excerpt(&body, excerpt_chars);
            if shown.is_empty() && !query.is_empty() {
                shown = format!("?{}", excerpt(query.as_bytes(), excerpt_chars));
            }
            Ok(FlaggedRequest {
                id: r.get(0)?,
                received_at_ms: r.get(1)?,
                method: r.get(2)?,
                content_type: r.get(3)?,
                flag: r.get(4)?,
                flag_detail: r.get(5)?,
                excerpt: shown,
                test: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
