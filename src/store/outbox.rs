//! The forwarding outbox: due deliveries, attempt outcomes, replays and per-target status.
//! The rows themselves are created by `ingest` in the same transaction as their message.

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;

use super::messages::{message_from_row, MESSAGES, MESSAGE_COLUMNS};
use super::{Message, Store};
use crate::error::Result;
use crate::time::format_rfc3339;

/// Longest error text kept per delivery: enough to act on, too short to hoard a body.
const MAX_ERROR_CHARS: usize = 300;

/// Messages queued per transaction by a replay since a time: a replay over a long history
/// holds the write lock for moments at a time, never long enough to turn a webhook away.
const QUEUE_BATCH: i64 = 500;

/// Setting: the `--forward-url`s the relay last started with, one a line, so a replay
/// from the command line knows the targets of the running relay.
pub const FORWARD_TARGETS: &str = "forward_targets";

/// A delivery whose next attempt is due, with the message it carries.
#[derive(Debug)]
pub struct DueDelivery {
    pub id: i64,
    /// Attempts already made.
    pub attempts: i64,
    pub message: Message,
}

/// How one attempt ended, as the outbox records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered {
        status: u16,
    },
    /// Try again at `next_attempt_at` (unix ms).
    Retry {
        status: Option<u16>,
        error: String,
        next_attempt_at: i64,
    },
    /// No more attempts: the schedule ran out or the target asked to stop.
    Failed {
        status: Option<u16>,
        error: String,
    },
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub delivery_id: i64,
    /// Unix ms when the attempt ended.
    pub at_ms: i64,
    /// The attempt's number, 1 for the first.
    pub number: i64,
    pub result: AttemptResult,
}

/// Which deliveries a replay puts back in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// One delivery, whatever its state.
    One(i64),
    /// Every failed delivery created at or after the time (unix ms).
    Failed { since_ms: i64 },
    /// Every message received at or after the time, to every configured target that has
    /// not had it: deliveries created for messages that have none there (stored before
    /// the target was set), failed and pending ones due now. Delivered ones are sent again
    /// only with `delivered_too`, for a downstream that lost what it had received.
    Since { since_ms: i64, delivered_too: bool },
}

/// One forwarding target's state, for the page, the JSON API and metrics.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TargetStatus {
    pub target: String,
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
    /// Pending deliveries ended because their target is no longer a `--forward-url`.
    pub ended: i64,
    pub oldest_pending_at: Option<String>,
    /// Age in seconds of the oldest pending delivery, so nobody has to do date maths.
    pub oldest_pending_age_seconds: Option<i64>,
    /// The newest error among deliveries not (yet) delivered: what is wrong right now.
    pub last_error: Option<String>,
    pub last_attempt_at: Option<String>,
    /// HTTP status of the newest attempt, when one came back.
    pub last_status: Option<u16>,
    /// False for a target that has deliveries but is no longer a `--forward-url`; its
    /// pending rows were ended when the relay started without it.
    pub configured: bool,
}

impl TargetStatus {
    /// A target with no deliveries yet.
    pub fn empty(target: &str) -> TargetStatus {
        TargetStatus {
            target: target.to_string(),
            pending: 0,
            delivered: 0,
            failed: 0,
            ended: 0,
            oldest_pending_at: None,
            oldest_pending_age_seconds: None,
            last_error: None,
            last_attempt_at: None,
            last_status: None,
            configured: true,
        }
    }
}

/// A delivery that gave up, for the page's list of deliveries to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedDelivery {
    pub id: i64,
    pub target: String,
    pub contact_id: String,
    /// Chatrace's message id, when the webhook carried one.
    pub external_id: Option<String>,
    pub attempts: i64,
    /// Unix ms of the last attempt (the creation time if none was recorded).
    pub last_attempt_at: i64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

impl Store {
    /// The newest failed deliveries, newest first, with the message they carry.
    pub fn recent_failed_deliveries(&self, limit: u32) -> Result<Vec<FailedDelivery>> {
        // Ordered by creation so the (state, created_at) index answers without a sort.
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.id, d.target, m.contact_id, m.external_id, d.attempts,
                    coalesce(d.last_attempt_at, d.created_at), d.last_status, d.last_error
             FROM deliveries d JOIN messages m ON m.id = d.message_id
             WHERE d.state = 'failed'
             ORDER BY d.created_at DESC, d.id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(FailedDelivery {
                id: r.get(0)?,
                target: r.get(1)?,
                contact_id: r.get(2)?,
                external_id: r.get(3)?,
                attempts: r.get(4)?,
                last_attempt_at: r.get(5)?,
                last_status: r.get(6)?,
                last_error: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// For a delivery thread's own connection: commits append to the WAL without waiting
    /// for fsync, so the write lock the webhook writer needs is held for microseconds, not
    /// a disk flush. Power loss may forget the newest outcomes; those deliveries are then
    /// simply sent again (at-least-once), and no stored message is ever at risk.
    pub fn relax_outcome_durability(&self) -> Result<()> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(())
    }

    /// Pending deliveries to `target` due at `now_ms`, earliest first.
    pub fn due_deliveries(
        &self,
        target: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, message_id, attempts FROM deliveries
             WHERE target = ?1 AND state = 'pending' AND next_attempt_at <= ?2
             ORDER BY next_attempt_at, id LIMIT ?3",
        )?;
        let rows: Vec<(i64, i64, i64)> = stmt
            .query_map(params![target, now_ms, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut message = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES} WHERE m.id = ?1"
        ))?;
        let mut due = Vec::with_capacity(rows.len());
        for (id, message_id, attempts) in rows {
            if let Some(message) = message
                .query_row([message_id], message_from_row)
                .optional()?
            {
                due.push(DueDelivery {
                    id,
                    attempts,
                    message,
                });
            }
        }
        Ok(due)
    }

    /// When the next pending delivery to `target` falls due, if any is pending.
    pub fn next_delivery_due(&self, target: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT min(next_attempt_at) FROM deliveries
                 WHERE target = ?1 AND state = 'pending'",
            )?
            .query_row([target], |r| r.get(0))?)
    }

    /// Records attempt outcomes in one short transaction: one fsync for a whole batch.
    pub fn record_attempts(&mut self, attempts: &[Attempt]) -> Result<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE deliveries SET state = ?2, attempts = ?3, next_attempt_at = ?4,
                        delivered_at = ?5, last_status = ?6,
                        last_error = coalesce(?7, last_error), last_attempt_at = ?8
                 WHERE id = ?1",
            )?;
            for a in attempts {
                let (state, next, delivered_at, status, error) = match &a.result {
                    AttemptResult::Delivered { status } => {
                        ("delivered", a.at_ms, Some(a.at_ms), Some(*status), None)
                    }
                    AttemptResult::Retry {
                        status,
                        error,
                        next_attempt_at,
                    } => ("pending", *next_attempt_at, None, *status, Some(error)),
                    AttemptResult::Failed { status, error } => {
                        ("failed", a.at_ms, None, *status, Some(error))
                    }
                };
                let error = error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect::<String>());
                stmt.execute(params![
                    a.delivery_id,
                    state,
                    a.number,
                    next,
                    delivered_at,
                    status,
                    error,
                    a.at_ms
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Puts deliveries back in the queue, due now, with a fresh retry schedule; `targets`
    /// are the configured ones, which a replay since a time covers. Returns how many were
    /// queued.
    pub fn requeue(&self, which: Requeue, targets: &[String], now_ms: i64) -> Result<usize> {
        let (sql, arg) = match which {
            Requeue::One(id) => ("WHERE id = ?2", id),
            Requeue::Failed { since_ms } => {
                ("WHERE state = 'failed' AND created_at >= ?2", since_ms)
            }
            Requeue::Since {
                since_ms,
                delivered_too,
            } => return self.queue_since(since_ms, delivered_too, targets, now_ms),
        };
        Ok(self
            .conn
            .prepare_cached(&format!(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?1,
                        delivered_at = NULL {sql}"
            ))?
            .execute(params![now_ms, arg])?)
    }

    /// Ends the pending deliveries to every target not in `targets`: no thread sends them
    /// any more, and a pending delivery keeps its message from retention for ever. Returns
    /// how many were ended. A replay can still send them once the target is back.
    pub fn end_deliveries_elsewhere(&self, targets: &[String], now_ms: i64) -> Result<usize> {
        let waiting: Vec<String> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT target FROM delivery_counts WHERE state = 'pending' AND deliveries > 0",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut ended = 0;
        for target in waiting.iter().filter(|t| !targets.contains(t)) {
            ended += self
                .conn
                .prepare_cached(
                    "UPDATE deliveries SET state = 'ended', last_attempt_at = ?2,
                            last_error = 'ended: no longer a --forward-url'
                     WHERE target = ?1 AND state = 'pending'",
                )?
                .execute(params![target, now_ms])?;
        }
        Ok(ended)
    }

    /// `Requeue::Since`, a batch of messages per transaction, in id order (caught-up
    /// messages carry the inbox's time, so ids do not follow `received_at`).
    fn queue_since(
        &self,
        since_ms: i64,
        delivered_too: bool,
        targets: &[String],
        now_ms: i64,
    ) -> Result<usize> {
        if targets.is_empty() {
            return Ok(0);
        }
        // Test messages are never counted, and only what the relay forwards is queued:
        // incoming messages, and whatever the inbox catch-up stored.
        const WANTED: &str = "received_at >= ?1 AND is_test = 0
                              AND (direction = 'in' OR source = 'inbox')";
        let mut after: i64 = self
            .conn
            .prepare_cached(&format!("SELECT min(id) FROM messages WHERE {WANTED}"))?
            .query_row([since_ms], |r| r.get::<_, Option<i64>>(0))?
            .map_or(i64::MAX, |first| first - 1);
        let mut queued = 0;
        loop {
            let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
            let last: Option<i64> = tx
                .prepare_cached(&format!(
                    "SELECT max(id) FROM (SELECT id FROM messages
                     WHERE id > ?2 AND {WANTED} ORDER BY id LIMIT ?3)"
                ))?
                .query_row(params![since_ms, after, QUEUE_BATCH], |r| r.get(0))?;
            let Some(last) = last else { break };
            for target in targets {
                // Existing deliveries first, so the ones created next count once.
                queued += tx
                    .prepare_cached(&format!(
                        "UPDATE deliveries SET state = 'pending', attempts = 0,
                                next_attempt_at = ?5, delivered_at = NULL
                         WHERE target = ?4 AND (state != 'delivered' OR ?6)
                           AND message_id IN (SELECT id FROM messages
                                              WHERE id > ?2 AND id <= ?3 AND {WANTED})"
                    ))?
                    .execute(params![
                        since_ms,
                        after,
                        last,
                        target,
                        now_ms,
                        delivered_too
                    ])?;
                queued += tx
                    .prepare_cached(&format!(
                        "INSERT INTO deliveries (message_id, target, next_attempt_at, created_at)
                         SELECT id, ?4, ?5, ?5 FROM messages m
                         WHERE id > ?2 AND id <= ?3 AND {WANTED}
                           AND NOT EXISTS (SELECT 1 FROM deliveries d
                                           WHERE d.message_id = m.id AND d.target = ?4)"
                    ))?
                    .execute(params![since_ms, after, last, target, now_ms])?;
            }
            tx.commit()?;
            after = last;
        }
        Ok(queued)
    }

    /// Every target that has deliveries, in name order.
    pub fn target_status(&self, now_ms: i64) -> Result<Vec<TargetStatus>> {
        let mut targets: Vec<TargetStatus> = Vec::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT target, state, deliveries FROM delivery_counts
                 WHERE deliveries != 0 ORDER BY target",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (target, state, n) = row?;
                if targets.last().is_none_or(|t| t.target != target) {
                    targets.push(TargetStatus::empty(&target));
                }
                if let Some(t) = targets.last_mut() {
                    match state.as_str() {
                        "pending" => t.pending = n,
                        "delivered" => t.delivered = n,
                        "ended" => t.ended = n,
                        _ => t.failed = n,
                    }
                }
            }
        }
        for t in &mut targets {
            let oldest: Option<i64> = self
                .conn
                .prepare_cached(
                    "SELECT min(created_at) FROM deliveries INDEXED BY deliveries_target_state
                     WHERE target = ?1 AND state = 'pending'",
                )?
                .query_row([&t.target], |r| r.get(0))?;
            t.oldest_pending_at = oldest.map(format_rfc3339);
            t.oldest_pending_age_seconds = oldest.map(|at| (now_ms - at).max(0) / 1000);
            let newest: Option<(i64, Option<u16>)> = self
                .conn
                .prepare_cached(
                    "SELECT last_attempt_at, last_status FROM deliveries
                     INDEXED BY deliveries_target_attempt
                     WHERE target = ?1 AND last_attempt_at IS NOT NULL
                     ORDER BY last_attempt_at DESC LIMIT 1",
                )?
                .query_row([&t.target], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            t.last_attempt_at = newest.map(|(at, _)| format_rfc3339(at));
            t.last_status = newest.and_then(|(_, status)| status);
            t.last_error = self
                .conn
                .prepare_cached(
                    "SELECT last_error FROM deliveries INDEXED BY deliveries_target_error
                     WHERE target = ?1 AND state IN ('pending', 'failed')
                       AND last_error IS NOT NULL
                     ORDER BY last_attempt_at DESC LIMIT 1",
                )?
                .query_row([&t.target], |r| r.get(0))
                .optional()?;
        }
        Ok(targets)
    }
}

/// The data part of the upgrade to version 6: the deliveries table's CHECK gains the state
/// `ended`. Widening a CHECK changes nothing stored, so the table's recorded definition is
/// edited in place (SQLite's documented procedure for such changes), instead of copying a
/// table that may hold millions of rows.
pub(super) fn allow_ended_deliveries(conn: &rusqlite::Connection) -> Result<()> {
    const OLD: &str = "CHECK (state IN ('pending', 'delivered', 'failed'))";
    const NEW: &str = "CHECK (state IN ('pending', 'delivered', 'failed', 'ended'))";
    let sql: String = conn.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'deliveries'",
        [],
        |r| r.get(0),
    )?;
    if !sql.contains(OLD) {
        return Err(crate::error::Error::Config(
            "the deliveries table is not as the relay made it; cannot upgrade".into(),
        ));
    }
    let version: i64 = conn.pragma_query_value(None, "schema_version", |r| r.get(0))?;
    conn.pragma_update(None, "writable_schema", true)?;
    conn.execute(
        "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = 'deliveries'",
        [sql.replace(OLD, NEW)],
    )?;
    conn.pragma_update(None, "schema_version", version + 1)?;
    conn.pragma_update(None, "writable_schema", false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{IngestRequest, IngestRules, Write};

    fn store_with_messages(n: usize, targets: &[&str]) -> Store {
        let mut store = Store::open(std::path::Path::new(":memory:")).unwrap();
        let rules = IngestRules {
            forward_targets: targets.iter().map(|t| t.to_string()).collect(),
            dedup_window_ms: 2000,
        };
        let requests: Vec<IngestRequest> = (0..n)
            .map(|i| {
                let mut request = IngestRequest::sample(&format!("m{i}"), &format!("x{i}"));
                request.received_at_ms = 1_000 + i as i64;
                request
            })
            .collect();
        let writes: Vec<Write> = requests.iter().map(Write::Ingest).collect();
        store.write_batch(&writes, &rules).unwrap();
        store
    }

    #[test]
    fn attempts_move_deliveries_through_their_states() {
        let mut store = store_with_messages(3, &["http://a", "http://b"]);
        let due = store.due_deliveries("http://a", 5_000, 10).unwrap();
        assert_eq!(due.len(), 3);
        assert_eq!(due[0].message.text.as_deref(), Some("m0"));
        assert!(store
            .due_deliveries("http://a", 500, 10)
            .unwrap()
            .is_empty());
        store
            .record_attempts(&[
                Attempt {
                    delivery_id: due[0].id,
                    at_ms: 6_000,
                    number: 1,
                    result: AttemptResult::Delivered { status: 200 },
                },
                Attempt {
                    delivery_id: due[1].id,
                    at_ms: 6_000,
                    number: 1,
                    result: AttemptResult::Retry {
                        status: Some(503),
                        error: "HTTP 503".into(),
                        next_attempt_at: 9_000,
                    },
                },
                Attempt {
                    delivery_id: due[2].id,
                    at_ms: 6_500,
                    number: 1,
                    result: AttemptResult::Failed {
                        status: Some(410),
                        error: "410 Gone".into(),
                    },
                },
            ])
            .unwrap();
        assert_eq!(store.next_delivery_due("http://a").unwrap(), Some(9_000));
        let status = store.target_status(11_000).unwrap();
        assert_eq!(status.len(), 2);
        let a = &status[0];
        assert_eq!((a.pending, a.delivered, a.failed), (1, 1, 1));
        assert_eq!(
            a.oldest_pending_age_seconds,
            Some(9),
            "created at 1.001s, now 11s"
        );
        assert_eq!(a.last_error.as_deref(), Some("410 Gone"));
        assert_eq!(a.last_status, Some(410));
        assert_eq!(status[1].pending, 3);
        assert_eq!(status[1].last_attempt_at, None);

        assert_eq!(
            store
                .requeue(Requeue::Failed { since_ms: 0 }, &[], 12_000)
                .unwrap(),
            1
        );
        assert_eq!(
            store.requeue(Requeue::One(due[0].id), &[], 12_000).unwrap(),
            1
        );
        assert_eq!(
            store.requeue(Requeue::One(999_999), &[], 12_000).unwrap(),
            0
        );
        let again = store.due_deliveries("http://a", 12_000, 10).unwrap();
        assert_eq!(again.len(), 3, "the retry at 9s is due too");
        assert!(again.iter().all(|d| d.attempts <= 1));
        let since = Requeue::Since {
            since_ms: 1_002,
            delivered_too: false,
        };
        assert_eq!(
            store.requeue(since, &["http://a".into()], 12_000).unwrap(),
            1,
            "the third message, pending at a; b is not configured"
        );
    }

    /// Since a time: every message to every configured target that has not had it, new
    /// targets included; delivered ones only when asked.
    #[test]
    fn a_replay_since_a_time_fills_in_new_targets_and_skips_delivered_ones() {
        let a = "http://a".to_string();
        let later = "http://later".to_string();
        let mut store = store_with_messages(3, &[&a]);
        let due = store.due_deliveries(&a, 5_000, 10).unwrap();
        let delivered: Vec<Attempt> = due
            .iter()
            .map(|d| Attempt {
                delivery_id: d.id,
                at_ms: 6_000,
                number: 1,
                result: AttemptResult::Delivered { status: 200 },
            })
            .collect();
        store.record_attempts(&delivered).unwrap();
        let since = |delivered_too| Requeue::Since {
            since_ms: 1_001,
            delivered_too,
        };
        let both = [a.clone(), later.clone()];
        assert_eq!(store.requeue(since(false), &both, 7_000).unwrap(), 2);
        assert!(store.due_deliveries(&a, 7_000, 10).unwrap().is_empty());
        let new = store.due_deliveries(&later, 7_000, 10).unwrap();
        let texts: Vec<_> = new
            .iter()
            .map(|d| d.message.text.clone().unwrap())
            .collect();
        assert_eq!(texts, ["m1", "m2"]);
        assert_eq!(
            store.requeue(since(false), &both, 7_000).unwrap(),
            2,
            "pending ones are made due again, never doubled"
        );
        assert_eq!(store.due_deliveries(&later, 7_000, 10).unwrap().len(), 2);
        assert_eq!(
            store
                .requeue(since(true), std::slice::from_ref(&a), 7_000)
                .unwrap(),
            2
        );
        assert_eq!(store.due_deliveries(&a, 7_000, 10).unwrap().len(), 2);
        assert_eq!(store.requeue(since(false), &[], 7_000).unwrap(), 0);
    }
}
