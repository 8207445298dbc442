//! The read side of the store: stats, the message cursor, the rejected-request log.

use rusqlite::{params, Row};
use serde::Serialize;

use super::Store;
use crate::error::Result;
use crate::payload::Attachment;
use crate::time::{day_number, day_start_ms, format_rfc3339};

const DAY_MS: i64 = 86_400_000;

/// The figures of `/instagram/stats`. Test messages are left out of every count.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub total_messages: i64,
    pub messages_today: i64,
    pub messages_last_24h: i64,
    pub unique_contacts: i64,
    pub last_message_at: Option<String>,
    pub webhooks_received: i64,
    pub webhooks_rejected: i64,
    pub duplicates: i64,
    pub by_day: Vec<ByDay>,
    pub forwarding: Forwarding,
}

#[derive(Debug, Serialize)]
pub struct ByDay {
    pub date: String,
    pub count: i64,
}

#[derive(Debug, Serialize)]
pub struct Forwarding {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
    pub oldest_pending_at: Option<String>,
}

/// A stored message as the API and the export show it.
#[derive(Debug, Serialize)]
pub struct Message {
    pub id: i64,
    pub received_at: String,
    pub sent_at: Option<String>,
    pub channel: Option<String>,
    pub direction: String,
    pub contact_id: String,
    pub contact_name: Option<String>,
    pub username: Option<String>,
    pub text: Option<String>,
    pub attachments: Vec<Attachment>,
    pub external_id: Option<String>,
    pub raw_request_id: Option<i64>,
    pub test: bool,
}

#[derive(Debug, Serialize)]
pub struct RejectedRequest {
    pub received_at: String,
    pub reason: String,
    pub detail: String,
    pub method: String,
    pub path: String,
    pub remote_addr: Option<String>,
    pub excerpt: String,
}

pub(super) const MESSAGE_COLUMNS: &str = "id, received_at, sent_at, channel, direction, contact_id,
    contact_name, username, text, attachments, external_id, raw_request_id, is_test";

pub(super) fn message_from_row(row: &Row) -> rusqlite::Result<Message> {
    let attachments: String = row.get(9)?;
    Ok(Message {
        id: row.get(0)?,
        received_at: format_rfc3339(row.get(1)?),
        sent_at: row.get::<_, Option<i64>>(2)?.map(format_rfc3339),
        channel: row.get(3)?,
        direction: row.get(4)?,
        contact_id: row.get(5)?,
        contact_name: row.get(6)?,
        username: row.get(7)?,
        text: row.get(8)?,
        attachments: serde_json::from_str(&attachments).unwrap_or_default(),
        external_id: row.get(10)?,
        raw_request_id: row.get(11)?,
        test: row.get(12)?,
    })
}

impl Store {
    pub fn stats(&self, now_ms: i64) -> Result<Stats> {
        let conn = &self.conn;
        let count_since = |since: i64| -> Result<i64> {
            Ok(conn
                .prepare_cached(
                    "SELECT count(*) FROM messages WHERE is_test = 0 AND received_at >= ?1",
                )?
                .query_row([since], |r| r.get(0))?)
        };
        let today = day_number(now_ms);
        let first_day = today - 29;
        let mut counts = std::collections::HashMap::new();
        {
            let mut stmt = conn.prepare_cached(
                "SELECT received_at / ?1 AS day, count(*) FROM messages
                 WHERE is_test = 0 AND received_at >= ?2 GROUP BY day",
            )?;
            let rows = stmt.query_map(params![DAY_MS, day_start_ms(first_day)], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (day, count) = row?;
                counts.insert(day, count);
            }
        }
        let by_day = (first_day..=today)
            .map(|day| ByDay {
                date: crate::time::date_string(day_start_ms(day)),
                count: counts.get(&day).copied().unwrap_or(0),
            })
            .collect();
        let last: Option<i64> = conn
            .prepare_cached("SELECT max(received_at) FROM messages WHERE is_test = 0")?
            .query_row([], |r| r.get(0))?;
        let webhooks_rejected: i64 = conn
            .prepare_cached(
                "SELECT coalesce(sum(value), 0) FROM counters WHERE name LIKE 'rejected:%'",
            )?
            .query_row([], |r| r.get(0))?;
        Ok(Stats {
            total_messages: count_since(i64::MIN)?,
            messages_today: count_since(day_start_ms(today))?,
            messages_last_24h: count_since(now_ms - DAY_MS)?,
            unique_contacts: conn
                .prepare_cached("SELECT count(*) FROM contacts")?
                .query_row([], |r| r.get(0))?,
            last_message_at: last.map(format_rfc3339),
            webhooks_received: self.counter("webhooks_received")?,
            webhooks_rejected,
            duplicates: self.counter("duplicates")?,
            by_day,
            forwarding: self.forwarding()?,
        })
    }

    pub fn counter(&self, name: &str) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT coalesce(max(value), 0) FROM counters WHERE name = ?1")?
            .query_row([name], |r| r.get(0))?)
    }

    /// Totals of rejections by reason, for metrics.
    pub fn rejected_by_reason(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT substr(name, 10), value FROM counters
             WHERE name LIKE 'rejected:%' ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn forwarding(&self) -> Result<Forwarding> {
        let mut f = Forwarding {
            pending: 0,
            delivered: 0,
            failed: 0,
            oldest_pending_at: None,
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, count(*) FROM deliveries GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            match row? {
                (s, n) if s == "pending" => f.pending = n,
                (s, n) if s == "delivered" => f.delivered = n,
                (_, n) => f.failed = n,
            }
        }
        f.oldest_pending_at = self
            .conn
            .prepare_cached("SELECT min(created_at) FROM deliveries WHERE state = 'pending'")?
            .query_row([], |r| r.get::<_, Option<i64>>(0))?
            .map(format_rfc3339);
        Ok(f)
    }

    /// The catch-up cursor: messages with id greater than `after`, oldest first.
    pub fn messages_after(&self, after: i64, limit: u32) -> Result<Vec<Message>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2"
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
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE received_at >= ?1 AND is_test = 0 ORDER BY id"
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

    pub fn recent_rejected(&self, limit: u32) -> Result<Vec<RejectedRequest>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT received_at, reason, detail, method, path, remote_addr, excerpt
             FROM rejected ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(RejectedRequest {
                received_at: format_rfc3339(r.get(0)?),
                reason: r.get(1)?,
                detail: r.get(2)?,
                method: r.get(3)?,
                path: r.get(4)?,
                remote_addr: r.get(5)?,
                excerpt: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
