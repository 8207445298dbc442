//! Kept attachments: the links of stored messages queued for the fetcher, the files kept
//! (named by the SHA-256 of their bytes, so one picture sent twice is kept once), eviction
//! of the oldest when over `--keep-media`, and reading a file back. Retention needs
//! nothing here: triggers delete a message's links with it, and a file with its last link.

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Store;
use crate::error::Result;
use crate::payload::Attachment;

/// Attachment types whose file is kept; shares, stories and the like are links only.
pub const KEPT_KINDS: &[&str] = &["image", "video", "audio", "voice", "file"];

/// Where the fetcher's reading of messages stands.
const CURSOR: &str = "media_cursor";

/// One attachment to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueMedia {
    pub message_id: i64,
    pub position: i64,
    pub kind: String,
    pub url: String,
    /// Failed tries so far.
    pub attempts: i64,
}

/// A kept file, as served.
#[derive(Debug)]
pub struct MediaBlob {
    pub content_type: String,
    pub data: Vec<u8>,
}

/// What the checklist and the metrics show.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct MediaTotals {
    /// Distinct files kept, and their bytes.
    pub files: i64,
    pub bytes: i64,
    /// Attachments still to be fetched.
    pub pending: i64,
    /// Attachments whose link failed before they could be kept, ever.
    pub expired: i64,
    /// Attachments not fetched for safety or size, ever.
    pub refused: i64,
}

/// The content hash a kept file is named by: SHA-256, lower-case hex.
pub fn content_hash(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    /// For the media thread's own connection: its commits need no fsync of their own (a
    /// file lost to a power cut is lost with its record, and fetched again), so it holds
    /// the write lock for the copy into the log, not for a disk flush; the webhook
    /// writer's next commit flushes it anyway.
    pub fn relax_media_durability(&self) -> Result<()> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(())
    }

    /// Queues the attachments of up to `limit` messages stored since the last call. On the
    /// first call ever, messages received before `first_since_ms` are left alone: their
    /// links have long expired. Returns how many messages with attachments were read; the
    /// caller calls again while that is `limit`.
    pub fn queue_media(&mut self, first_since_ms: i64, now_ms: i64, limit: u32) -> Result<usize> {
        // Nothing new: no write transaction, so an idle round never holds the writer up.
        let newest: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM messages")?
            .query_row([], |r| r.get(0))?;
        if self.setting(CURSOR)?.and_then(|c| c.parse::<i64>().ok()) == Some(newest) {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let newest: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM messages", [], |r| {
            r.get(0)
        })?;
        let cursor: Option<i64> = tx
            .query_row("SELECT value FROM settings WHERE key = ?1", [CURSOR], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .and_then(|v| v.parse().ok());
        let cursor = match cursor {
            Some(c) => c,
            None => tx.query_row(
                "SELECT coalesce((SELECT id FROM messages WHERE received_at >= ?1 AND is_test = 0
                                  ORDER BY received_at LIMIT 1) - 1, ?2)",
                params![first_since_ms, newest],
                |r| r.get(0),
            )?,
        };
        let rows: Vec<(i64, String)> = tx
            .prepare_cached(
                "SELECT id, attachments FROM messages
                 WHERE id > ?1 AND id <= ?2 AND attachments <> '[]' ORDER BY id LIMIT ?3",
            )?
            .query_map(params![cursor, newest, limit], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO media_links (message_id, position, kind, url, state, due_at)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
            )?;
            for (id, attachments) in &rows {
                let attachments: Vec<Attachment> =
                    serde_json::from_str(attachments).unwrap_or_default();
                for (position, a) in attachments.iter().enumerate() {
                    if KEPT_KINDS.contains(&a.kind.as_str())
                        && crate::text::web_url(&a.url).is_some()
                    {
                        insert.execute(params![id, position as i64, a.kind, a.url, now_ms])?;
                    }
                }
            }
        }
        let next = match rows.last() {
            Some((last, _)) if rows.len() as u32 >= limit => *last,
            _ => newest,
        };
        tx.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                                             updated_at = excluded.updated_at",
            params![CURSOR, next.to_string(), now_ms],
        )?;
        tx.commit()?;
        Ok(rows.len())
    }

    /// Attachments due for a try, the longest waiting first.
    pub fn due_media(&self, now_ms: i64, limit: u32) -> Result<Vec<DueMedia>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT message_id, position, kind, url, attempts FROM media_links
             WHERE state = 'pending' AND due_at <= ?1 ORDER BY due_at LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms, limit], |r| {
            Ok(DueMedia {
                message_id: r.get(0)?,
                position: r.get(1)?,
                kind: r.get(2)?,
                url: r.get(3)?,
                attempts: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// When the next retry is due, if any attachment waits for one.
    pub fn next_media_due(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached("SELECT min(due_at) FROM media_links WHERE state = 'pending'")?
            .query_row([], |r| r.get(0))?)
    }

    /// Keeps a fetched file for its attachment, in one transaction, then evicts the oldest
    /// other files until all of them fit in `cap` bytes. Returns the file's hash and how
    /// many files were evicted; None when the message went away meanwhile.
    pub fn keep_media(
        &mut self,
        link: &DueMedia,
        content_type: &str,
        data: &[u8],
        cap: u64,
        now_ms: i64,
    ) -> Result<Option<(String, usize)>> {
        let hash = content_hash(data);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let linked = tx.execute(
            "UPDATE media_links SET state = 'kept', hash = ?3, error = NULL, due_at = NULL
             WHERE message_id = ?1 AND position = ?2 AND state = 'pending'",
            params![link.message_id, link.position, hash],
        )?;
        if linked == 0 {
            return Ok(None);
        }
        // A file kept again counts as new: eviction goes by the last time it was sent.
        tx.execute(
            "INSERT INTO media (hash, kept_at, size, content_type, data)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (hash) DO UPDATE SET kept_at = excluded.kept_at",
            params![hash, now_ms, data.len() as i64, content_type, data],
        )?;
        let mut total: i64 =
            tx.query_row("SELECT coalesce(sum(size), 0) FROM media", [], |r| r.get(0))?;
        let mut evicted = 0;
        while total > i64::try_from(cap).unwrap_or(i64::MAX) {
            let oldest: Option<(String, i64)> = tx
                .query_row(
                    "SELECT hash, size FROM media WHERE hash <> ?1 ORDER BY kept_at, hash LIMIT 1",
                    [&hash],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((old, size)) = oldest else { break };
            tx.execute(
                "UPDATE media_links SET state = 'evicted', hash = NULL WHERE hash = ?1",
                [&old],
            )?;
            tx.execute("DELETE FROM media WHERE hash = ?1", [&old])?;
            total -= size;
            evicted += 1;
        }
        tx.commit()?;
        Ok(Some((hash, evicted)))
    }

    /// Records a failed try: `retry_at` Some leaves the attachment pending until then;
    /// None ends it as `final_state` (`expired` or `refused`), counted for good.
    pub fn media_failed(
        &mut self,
        link: &DueMedia,
        error: &str,
        retry_at: Option<i64>,
        final_state: &str,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let state = if retry_at.is_some() {
            "pending"
        } else {
            final_state
        };
        let changed = tx.execute(
            "UPDATE media_links SET state = ?3, error = ?4, due_at = ?5, attempts = attempts + 1
             WHERE message_id = ?1 AND position = ?2 AND state = 'pending'",
            params![link.message_id, link.position, state, error, retry_at],
        )?;
        if changed > 0 && retry_at.is_none() {
            tx.execute(
                "INSERT INTO counters (name, value) VALUES (?1, 1)
                 ON CONFLICT (name) DO UPDATE SET value = value + 1",
                [format!("media:{final_state}")],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A kept file by its hash.
    pub fn media(&self, hash: &str) -> Result<Option<MediaBlob>> {
        Ok(self
            .conn
            .prepare_cached("SELECT content_type, data FROM media WHERE hash = ?1")?
            .query_row([hash], |r| {
                Ok(MediaBlob {
                    content_type: r.get(0)?,
                    data: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// What became of one attachment: its state and, when kept, its file's hash.
    pub fn media_state(
        &self,
        message_id: i64,
        position: i64,
    ) -> Result<Option<(String, Option<String>)>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT state, hash FROM media_links WHERE message_id = ?1 AND position = ?2",
            )?
            .query_row(params![message_id, position], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    pub fn media_totals(&self) -> Result<MediaTotals> {
        let (files, bytes) = self
            .conn
            .prepare_cached("SELECT count(*), coalesce(sum(size), 0) FROM media")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let pending = self
            .conn
            .prepare_cached("SELECT count(*) FROM media_links WHERE state = 'pending'")?
            .query_row([], |r| r.get(0))?;
        let counter = |name: &str| -> Result<i64> {
            Ok(self
                .conn
                .prepare_cached("SELECT coalesce(max(value), 0) FROM counters WHERE name = ?1")?
                .query_row([name], |r| r.get(0))?)
        };
        Ok(MediaTotals {
            files,
            bytes,
            pending,
            expired: counter("media:expired")?,
            refused: counter("media:refused")?,
        })
    }
}
