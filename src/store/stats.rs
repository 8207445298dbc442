//! Counts: the figures of `/instagram/stats`, the CLI's `stats` and the metrics.

use rusqlite::params;
use serde::Serialize;

use super::rfc3339_or_null;
use super::rollups::HOUR_MS;
use super::Store;
use crate::error::Result;
use crate::time::format_rfc3339;
use crate::zone::Zone;

const DAY_MS: i64 = 86_400_000;

/// The figures of `/instagram/stats`. Test messages are left out of every count.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub total_messages: i64,
    pub messages_today: i64,
    pub messages_last_24h: i64,
    pub unique_contacts: i64,
    #[serde(rename = "last_message_at", serialize_with = "rfc3339_or_null")]
    pub last_message_at_ms: Option<i64>,
    pub webhooks_received: i64,
    pub webhooks_rejected: i64,
    pub duplicates: i64,
    pub by_day: Vec<ByDay>,
    pub forwarding: Forwarding,
    /// Messages stored from Chatrace's inbox that no webhook brought, in all...
    pub caught_up: i64,
    /// ...and with their time in the last 24 hours.
    pub caught_up_last_24h: i64,
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
    /// Pending deliveries ended because their target is no longer a `--forward-url`.
    pub ended: i64,
    pub oldest_pending_at: Option<String>,
}

impl Store {
    /// Every figure comes from a rollup or an index lookup; none scans the messages (see
    /// `rollups`). `messages_last_24h` is exact to the millisecond: whole hours from the
    /// hourly rollup, plus the one partial hour at the window's start counted through the
    /// `received_at` index, which holds at most one hour of messages.
    pub fn stats(&self, now_ms: i64, zone: &Zone) -> Result<Stats> {
        let conn = &self.conn;
        let by_day = self.by_local_day(now_ms, zone)?;
        let messages_today = by_day.last().map_or(0, |d| d.count);
        let last = self.counter("last_message_at")?;
        let webhooks_rejected: i64 = conn
            .prepare_cached(
                "SELECT coalesce(sum(value), 0) FROM counters WHERE name LIKE 'rejected:%'",
            )?
            .query_row([], |r| r.get(0))?;
        Ok(Stats {
            total_messages: self.counter("messages:in")? + self.counter("messages:out")?,
            messages_today,
            messages_last_24h: self.messages_since(now_ms - DAY_MS)?,
            unique_contacts: self.counter("contacts")?,
            last_message_at_ms: (last != 0).then_some(last),
            webhooks_received: self.counter("webhooks_received")?,
            webhooks_rejected,
            duplicates: self.counter("duplicates")?,
            by_day,
            forwarding: self.forwarding()?,
            caught_up: self.counter("caught_up")?,
            caught_up_last_24h: self.inbox_counts(now_ms)?.last_24h,
        })
    }

    /// The last 30 days in `zone`, each counted from the hourly rollup: an hour inside a
    /// day counts whole; an hour a day begins in (zones half an hour off UTC) is split at
    /// the day's start through the `received_at` index, which holds at most that hour.
    fn by_local_day(&self, now_ms: i64, zone: &Zone) -> Result<Vec<ByDay>> {
        let days = zone.last_days(now_ms, 30);
        let (Some(first), Some(last)) = (days.first(), days.last()) else {
            return Ok(Vec::new());
        };
        let hours: Vec<(i64, i64)> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT hour, messages FROM hourly WHERE hour BETWEEN ?1 AND ?2 ORDER BY hour",
            )?;
            let rows = stmt.query_map(
                params![
                    first.1.div_euclid(HOUR_MS),
                    (last.2 - 1).div_euclid(HOUR_MS)
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut counts = vec![0i64; days.len()];
        let day_of = |ms: i64| days.iter().position(|d| d.1 <= ms && ms < d.2);
        for (hour, n) in hours {
            let (start, end) = (hour * HOUR_MS, (hour + 1) * HOUR_MS);
            let (Some(a), b) = (day_of(start), day_of(end - 1)) else {
                // The hour before the first day begins: only its tail counts.
                if let Some(b) = day_of(end - 1) {
                    counts[b] += self.received_between(days[b].1, end)?;
                }
                continue;
            };
            match b {
                Some(b) if b != a => {
                    let before = self.received_between(start, days[b].1)?;
                    counts[a] += before;
                    counts[b] += n - before;
                }
                Some(_) => counts[a] += n,
                // The hour the last day ends in (the future, for today): its head.
                None => counts[a] += self.received_between(start, days[a].2)?,
            }
        }
        Ok(days
            .into_iter()
            .zip(counts)
            .map(|((date, _, _), count)| ByDay { date, count })
            .collect())
    }

    /// Real messages received in [from, to), counted through the index: for spans within
    /// one hour.
    fn received_between(&self, from_ms: i64, to_ms: i64) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM messages INDEXED BY messages_real_received
                 WHERE is_test = 0 AND received_at >= ?1 AND received_at < ?2",
            )?
            .query_row(params![from_ms, to_ms], |r| r.get(0))?)
    }

    /// Real messages received at or after `since_ms`, for a time at most a few days back:
    /// the hours after the one holding `since_ms` from the rollup, that hour's tail by index.
    fn messages_since(&self, since_ms: i64) -> Result<i64> {
        let hour = since_ms.div_euclid(HOUR_MS);
        let whole: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(sum(messages), 0) FROM hourly WHERE hour > ?1")?
            .query_row([hour], |r| r.get(0))?;
        let tail: i64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM messages INDEXED BY messages_real_received
                 WHERE is_test = 0 AND received_at >= ?1 AND received_at < ?2",
            )?
            .query_row(params![since_ms, (hour + 1) * HOUR_MS], |r| r.get(0))?;
        Ok(whole + tail)
    }

    pub fn counter(&self, name: &str) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT coalesce(max(value), 0) FROM counters WHERE name = ?1")?
            .query_row([name], |r| r.get(0))?)
    }

    /// Messages ever stored by direction, test messages left out: for metrics. From the
    /// rollup, so messages deleted by retention stay counted (the metric is a counter).
    pub fn messages_by_direction(&self) -> Result<Vec<(String, i64)>> {
        Ok(vec![
            ("in".to_string(), self.counter("messages:in")?),
            ("out".to_string(), self.counter("messages:out")?),
        ])
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
            ended: 0,
            oldest_pending_at: None,
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, sum(deliveries) FROM delivery_counts GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            match row? {
                (s, n) if s == "pending" => f.pending = n,
                (s, n) if s == "delivered" => f.delivered = n,
                (s, n) if s == "ended" => f.ended = n,
                (_, n) => f.failed += n,
            }
        }
        f.oldest_pending_at = self
            .conn
            .prepare_cached(
                "SELECT min(created_at) FROM deliveries INDEXED BY deliveries_state
                 WHERE state = 'pending'",
            )?
            .query_row([], |r| r.get::<_, Option<i64>>(0))?
            .map(format_rfc3339);
        Ok(f)
    }
}
