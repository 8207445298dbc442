//! Reads for the setup checklist: the latest authenticated request, what went wrong since,
//! the first real message.

use rusqlite::{params, OptionalExtension};

use super::Store;
use crate::error::Result;

/// Rejection reasons that mean "someone (likely Chatrace) calls, but misconfigured".
const CONFIG_REJECTIONS: &str = "'bad_secret', 'missing_secret', 'wrong_path', 'malformed'";
/// The first message is looked for among this many real messages: enough for any setup,
/// and a bound on the scan when no Instagram message exists in a big database.
const FIRST_MESSAGE_WINDOW: i64 = 10_000;

/// An accepted (right-secret) request that was not a test.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub received_at_ms: i64,
    pub remote_addr: Option<String>,
}

/// A request that reached the relay but did not deliver a usable message.
#[derive(Debug, Clone)]
pub struct Problem {
    pub received_at_ms: i64,
    /// A rejection reason or a raw request flag.
    pub reason: String,
    pub detail: String,
    pub remote_addr: Option<String>,
    /// Rejections keep an excerpt; flagged requests keep the whole body.
    pub body: ProblemBody,
}

#[derive(Debug, Clone)]
pub enum ProblemBody {
    Excerpt(String),
    Raw(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct FirstMessage {
    pub received_at_ms: i64,
    pub channel: Option<String>,
    pub contact_id: String,
    pub contact_name: Option<String>,
    pub username: Option<String>,
}

impl Store {
    /// The newest non-test request that came with the right secret; `clean` keeps only
    /// those without a flag (a message was read from them).
    pub fn last_arrival(&self, clean: bool) -> Result<Option<Arrival>> {
        let sql = if clean {
            "SELECT received_at, remote_addr FROM raw_requests
             WHERE is_test = 0 AND flag IS NULL ORDER BY id DESC LIMIT 1"
        } else {
            "SELECT received_at, remote_addr FROM raw_requests
             WHERE is_test = 0 ORDER BY id DESC LIMIT 1"
        };
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row([], |r| {
                Ok(Arrival {
                    received_at_ms: r.get(0)?,
                    remote_addr: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// Misconfiguration signs after `since_ms`, newest first: rejections that mean a caller
    /// is set up wrong, and accepted requests flagged as unusable.
    pub fn problems_since(&self, since_ms: i64, limit: u32) -> Result<Vec<Problem>> {
        let mut problems = self.rejections_since(since_ms, limit)?;
        problems.extend(self.flagged_since(since_ms, limit)?);
        problems.sort_by_key(|p| std::cmp::Reverse(p.received_at_ms));
        problems.truncate(limit as usize);
        Ok(problems)
    }

    fn rejections_since(&self, since_ms: i64, limit: u32) -> Result<Vec<Problem>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT received_at, reason, detail, remote_addr, excerpt FROM rejected
             WHERE received_at > ?1 AND reason IN ({CONFIG_REJECTIONS})
             ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![since_ms, limit], |r| {
            Ok(Problem {
                received_at_ms: r.get(0)?,
                reason: r.get(1)?,
                detail: r.get(2)?,
                remote_addr: r.get(3)?,
                body: ProblemBody::Excerpt(r.get(4)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn flagged_since(&self, since_ms: i64, limit: u32) -> Result<Vec<Problem>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT received_at, flag, coalesce(flag_detail, ''), remote_addr, body
             FROM raw_requests
             WHERE flag IS NOT NULL AND is_test = 0 AND received_at > ?1
             ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![since_ms, limit], |r| {
            Ok(Problem {
                received_at_ms: r.get(0)?,
                reason: r.get(1)?,
                detail: r.get(2)?,
                remote_addr: r.get(3)?,
                body: ProblemBody::Raw(r.get(4)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
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
