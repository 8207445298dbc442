//! Retention: deleting raw requests and messages older than the configured age, a small
//! batch per short transaction so the webhook writer never waits long for the write lock.
//! Counts are not touched: the rollups keep counting what was deleted (see `rollups`).
//!
//! Rows are visited oldest first by id. Ids grow with arrival time (one writer assigns
//! them in commit order, a few milliseconds apart at most), so a pass stops at the first
//! batch that holds nothing old enough, instead of scanning the rest of the table.

use rusqlite::{params, TransactionBehavior};

use super::Store;
use crate::error::Result;

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Rows deleted.
    pub deleted: usize,
    /// Where the next batch starts (an id to pass as `after`); None when the pass is done.
    pub next_after: Option<i64>,
}

impl Store {
    /// For the retention thread's own connection: its commits need no fsync (a deletion
    /// forgotten by a power cut is simply done again), so it holds the write lock for
    /// microseconds, not a disk flush.
    pub fn relax_retention_durability(&self) -> Result<()> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(())
    }

    /// Deletes, among the `limit` messages after id `after`, those received before
    /// `before_ms`, with their finished deliveries. A message with a delivery still pending
    /// is kept (forwarding comes first); merges recorded against a deleted message keep
    /// their row, without the message.
    pub fn prune_messages(&mut self, before_ms: i64, after: i64, limit: u32) -> Result<Pruned> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let window: Vec<(i64, i64, bool, bool)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, received_at, is_test,
                        EXISTS (SELECT 1 FROM deliveries d INDEXED BY deliveries_message
                                WHERE d.message_id = m.id AND d.state = 'pending')
                 FROM messages m WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut pruned = Pruned::default();
        let mut real = 0i64;
        let mut any_old = false;
        for &(id, received_at, is_test, pending) in &window {
            if received_at >= before_ms {
                continue;
            }
            any_old = true;
            if pending {
                continue;
            }
            tx.prepare_cached("DELETE FROM deliveries WHERE message_id = ?1")?
                .execute([id])?;
            tx.prepare_cached("UPDATE merged SET message_id = NULL WHERE message_id = ?1")?
                .execute([id])?;
            tx.prepare_cached("DELETE FROM messages WHERE id = ?1")?
                .execute([id])?;
            pruned.deleted += 1;
            if !is_test {
                real += 1;
            }
        }
        bump(&tx, "pruned:messages", real)?;
        tx.commit()?;
        if any_old && window.len() == limit as usize {
            pruned.next_after = window.last().map(|w| w.0);
        }
        Ok(pruned)
    }

    /// Deletes, among the `limit` raw requests after id `after`, those received before
    /// `before_ms`. Their messages stay, without the link to the raw record; the merges
    /// recorded for them go with them (a merge is a note about that request).
    pub fn prune_raw_requests(&mut self, before_ms: i64, after: i64, limit: u32) -> Result<Pruned> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let window: Vec<(i64, i64)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, received_at FROM raw_requests WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut pruned = Pruned::default();
        for &(id, received_at) in &window {
            if received_at >= before_ms {
                continue;
            }
            tx.prepare_cached(
                "UPDATE messages SET raw_request_id = NULL WHERE raw_request_id = ?1",
            )?
            .execute([id])?;
            tx.prepare_cached("DELETE FROM merged WHERE raw_request_id = ?1")?
                .execute([id])?;
            tx.prepare_cached("DELETE FROM raw_requests WHERE id = ?1")?
                .execute([id])?;
            pruned.deleted += 1;
        }
        bump(&tx, "pruned:raw_requests", pruned.deleted as i64)?;
        tx.commit()?;
        if pruned.deleted > 0 && window.len() == limit as usize {
            pruned.next_after = window.last().map(|w| w.0);
        }
        Ok(pruned)
    }

    /// Deletes up to `limit` contacts last seen before `before_ms`: their names and
    /// pictures are personal data too, and all their messages are older than that.
    pub fn prune_contacts(&mut self, before_ms: i64, limit: u32) -> Result<usize> {
        Ok(self
            .conn
            .prepare_cached(
                "DELETE FROM contacts WHERE contact_id IN (
                     SELECT contact_id FROM contacts INDEXED BY contacts_recent
                     WHERE last_seen < ?1 ORDER BY last_seen LIMIT ?2)",
            )?
            .execute(params![before_ms, limit])?)
    }
}

fn bump(conn: &rusqlite::Connection, name: &str, by: i64) -> Result<()> {
    if by != 0 {
        conn.prepare_cached(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
        )?
        .execute(params![name, by])?;
    }
    Ok(())
}
