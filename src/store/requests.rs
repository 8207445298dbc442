//! Requests as they arrived: the accepted ones flagged because no message could be read
//! from them, the rejected ones, and from both, what the checklist shows as signs of a
//! misconfigured caller.

use rusqlite::{params, OptionalExtension};

use super::Store;
use crate::error::Result;
use crate::outcome::{Flag, Refusal, Trouble, UnknownCode};
use crate::text::request_excerpt;
/// How much of a flagged body is read from disk: enough for any excerpt, however big the
/// stored body is.
const BODY_PREFIX_BYTES: i64 = 4096;

/// An accepted request that held no readable message, with the start of what arrived.
#[derive(Debug)]
pub struct FlaggedRequest {
    pub received_at_ms: i64,
    pub method: String,
    pub content_type: Option<String>,
    pub flag: std::result::Result<Flag, UnknownCode>,
    /// The body's start (or the query string, for a GET), safe to show as text.
    pub excerpt: String,
    pub test: bool,
}

/// A request whose message was taken for a repeat of one already stored.
#[derive(Debug)]
pub struct MergedRequest {
    pub received_at_ms: i64,
    /// The start of the request's body (or query string), safe to show as text.
    pub excerpt: String,
    /// The stored message it was merged into.
    pub message_id: Option<i64>,
    /// That message's contact, for a link to the thread.
    pub contact_id: Option<String>,
    pub test: bool,
}

#[derive(Debug)]
pub struct RejectedRequest {
    pub received_at_ms: i64,
    pub refusal: std::result::Result<Refusal, UnknownCode>,
    pub detail: String,
    pub method: String,
    pub path: String,
    pub remote_addr: Option<String>,
    pub excerpt: String,
}

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
    pub trouble: std::result::Result<Trouble, UnknownCode>,
    /// A refusal's stored detail (which names the path or the parser's complaint).
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

impl Store {
    /// The newest requests that produced no message ("received, no message found" and
    /// unfilled variables). `substr` of an empty body is NULL, hence the coalesce: an empty
    /// body is an ordinary misconfiguration and must show, not break the page.
    pub fn recent_flagged(&self, limit: u32, excerpt_chars: usize) -> Result<Vec<FlaggedRequest>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT received_at, method, content_type, flag, coalesce(flag_detail, ''),
                    coalesce(substr(body, 1, ?2), x''), query, is_test
             FROM raw_requests WHERE flag IS NOT NULL AND stored = 0 AND duplicates = 0
             ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit, BODY_PREFIX_BYTES], |r| {
            let body: Vec<u8> = r.get(5)?;
            let query: String = r.get(6)?;
            let shown = request_excerpt(&body, &query, excerpt_chars);
            let code: String = r.get(3)?;
            let detail: String = r.get(4)?;
            Ok(FlaggedRequest {
                received_at_ms: r.get(0)?,
                method: r.get(1)?,
                content_type: r.get(2)?,
                flag: Flag::from_stored(&code, &detail),
                excerpt: shown,
                test: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest merged repeats, newest first.
    pub fn recent_merged(&self, limit: u32, excerpt_chars: usize) -> Result<Vec<MergedRequest>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT g.received_at, coalesce(substr(r.body, 1, ?2), x''), r.query, g.message_id,
                    r.is_test, m.contact_id
             FROM merged g JOIN raw_requests r ON r.id = g.raw_request_id
             LEFT JOIN messages m ON m.id = g.message_id
             ORDER BY g.id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit, BODY_PREFIX_BYTES], |r| {
            let body: Vec<u8> = r.get(1)?;
            let query: String = r.get(2)?;
            Ok(MergedRequest {
                received_at_ms: r.get(0)?,
                excerpt: request_excerpt(&body, &query, excerpt_chars),
                message_id: r.get(3)?,
                contact_id: r.get(5)?,
                test: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn recent_rejected(&self, limit: u32) -> Result<Vec<RejectedRequest>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT received_at, reason, detail, method, path, remote_addr, excerpt
             FROM rejected ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(RejectedRequest {
                received_at_ms: r.get(0)?,
                refusal: r.get::<_, String>(1)?.parse(),
                detail: r.get(2)?,
                method: r.get(3)?,
                path: r.get(4)?,
                remote_addr: r.get(5)?,
                excerpt: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

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
    /// is set up wrong, and accepted requests flagged as unusable (with the start of their
    /// body, however big it is).
    pub fn problems_since(&self, since_ms: i64, limit: u32) -> Result<Vec<Problem>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT * FROM (
                 SELECT received_at, reason, detail, remote_addr, excerpt AS shown, 0 AS raw
                 FROM rejected
                 WHERE received_at > ?1 AND reason IN ({misconfigured})
                 ORDER BY id DESC LIMIT ?2)
             UNION ALL
             SELECT * FROM (
                 SELECT received_at, flag, coalesce(flag_detail, ''), remote_addr,
                        coalesce(substr(body, 1, ?3), x''), 1
                 FROM raw_requests
                 WHERE flag IS NOT NULL AND is_test = 0 AND received_at > ?1
                 ORDER BY id DESC LIMIT ?2)
             ORDER BY received_at DESC LIMIT ?2",
            misconfigured = Refusal::misconfigured_codes_sql()
        ))?;
        let rows = stmt.query_map(params![since_ms, limit, BODY_PREFIX_BYTES], |r| {
            let raw: bool = r.get(5)?;
            let code: String = r.get(1)?;
            let detail: String = r.get(2)?;
            let trouble = if raw {
                Flag::from_stored(&code, &detail).map(Trouble::Flagged)
            } else {
                code.parse().map(Trouble::Refused)
            };
            Ok(Problem {
                received_at_ms: r.get(0)?,
                trouble,
                detail,
                remote_addr: r.get(3)?,
                body: if raw {
                    ProblemBody::Raw(r.get(4)?)
                } else {
                    ProblemBody::Excerpt(r.get(4)?)
                },
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
