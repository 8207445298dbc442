//! Full-text search: the messages whose text, contact name or username hold every word of
//! a query, newest first, narrowed by contact, direction, channel and time. The index
//! (`message_search`, schema 8) is written by triggers with every message; this module
//! reads it, and fills it once when an older database is upgraded.

use std::time::Instant;

use rusqlite::{params, Connection};

use super::conversations::THREAD_TIME;
use super::messages::{message_from_row, Message, MESSAGE_COLUMNS};
use super::Store;
use crate::error::Result;
use crate::payload::Direction;

/// What to look for: an FTS5 MATCH expression (built by `crate::search`, never from raw
/// input), and the filters.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub fts_match: String,
    pub contact_id: Option<String>,
    pub direction: Option<Direction>,
    pub channel: Option<String>,
    /// Thread time (sender's time when known) from, inclusive...
    pub from_ms: Option<i64>,
    /// ...until, exclusive.
    pub until_ms: Option<i64>,
}

const SEARCH: &str = "FROM message_search s
     JOIN messages m ON m.id = s.rowid
     LEFT JOIN contacts c ON c.contact_id = m.contact_id
     WHERE message_search MATCH ?1 AND s.rowid < ?2
       AND (?3 IS NULL OR m.contact_id = ?3)
       AND (?4 IS NULL OR m.direction = ?4)
       AND (?5 IS NULL OR lower(m.channel) = lower(?5))";

impl Store {
    /// One page of matches with ids below `before` (all when None), newest first, and
    /// whether more exist. The index hands out matches by id, newest first, so a page
    /// stops as soon as it is full.
    pub fn search(
        &self,
        found: &Found,
        before: Option<i64>,
        per_page: u32,
    ) -> Result<(Vec<Message>, bool)> {
        let mut messages = Vec::new();
        self.each_found(found, before, i64::from(per_page) + 1, |m| {
            messages.push(m);
            Ok(())
        })?;
        let more = messages.len() > per_page as usize;
        messages.truncate(per_page as usize);
        Ok((messages, more))
    }

    /// At most `limit` matches with ids below `before`, newest first, one at a time.
    pub fn each_found(
        &self,
        found: &Found,
        before: Option<i64>,
        limit: i64,
        mut each: impl FnMut(Message) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} {SEARCH}
               AND (?6 IS NULL OR {THREAD_TIME} >= ?6)
               AND (?7 IS NULL OR {THREAD_TIME} < ?7)
             ORDER BY s.rowid DESC LIMIT ?8"
        ))?;
        let rows = stmt.query_map(
            params![
                found.fts_match,
                before.unwrap_or(i64::MAX),
                found.contact_id,
                found.direction.map(|d| d.as_str()),
                found.channel,
                found.from_ms,
                found.until_ms,
                limit,
            ],
            message_from_row,
        )?;
        for row in rows {
            each(row?)?;
        }
        Ok(())
    }
}

/// Rows indexed per transaction-free step of the upgrade, between progress lines.
const BACKFILL_BATCH: i64 = 50_000;

/// Upgrade to schema 8: every message already stored goes into the index, in id order,
/// with its progress in the log (a million messages take a while).
pub(super) fn backfill(conn: &Connection) -> Result<()> {
    let started = Instant::now();
    let newest: i64 = conn.query_row("SELECT coalesce(max(id), 0) FROM messages", [], |r| {
        r.get(0)
    })?;
    log::info!("upgrade: indexing the messages for search (newest message id {newest})");
    let mut after = 0i64;
    let mut last_log = Instant::now();
    while after < newest {
        conn.prepare_cached(
            "INSERT INTO message_search (rowid, text, name, username)
             SELECT m.id, m.text, coalesce(m.contact_name, c.contact_name),
                    coalesce(m.username, c.username)
             FROM messages m LEFT JOIN contacts c ON c.contact_id = m.contact_id
             WHERE m.id > ?1 AND m.id <= ?2",
        )?
        .execute(params![after, after + BACKFILL_BATCH])?;
        after += BACKFILL_BATCH;
        if last_log.elapsed().as_secs() >= 5 {
            log::info!(
                "upgrade: search index at message {} of {newest}",
                after.min(newest)
            );
            last_log = Instant::now();
        }
    }
    log::info!(
        "upgrade: search index built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{IngestRequest, IngestRules, Write};

    fn store() -> Store {
        let dir = std::env::temp_dir().join(format!(
            "relay-search-{}-{}",
            std::process::id(),
            crate::time::now_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Store::open(&dir.join("t.db")).unwrap()
    }

    fn found(store: &Store, fts: &str) -> Vec<Option<String>> {
        let (messages, _) = store
            .search(
                &Found {
                    fts_match: fts.into(),
                    ..Found::default()
                },
                None,
                50,
            )
            .unwrap();
        messages.into_iter().map(|m| m.text).collect()
    }

    #[test]
    fn the_index_folds_case_and_accents_and_keeps_cyrillic_letters() {
        let mut store = store();
        for (i, text) in ["ДОСТАВКА в Москву", "Un café noir", "ёлка", "доставочка"]
            .iter()
            .enumerate()
        {
            let request = IngestRequest::sample(text, &format!("x{i}"));
            store
                .write_batch(&[Write::Ingest(&request)], &IngestRules::default())
                .unwrap();
        }
        assert_eq!(
            found(&store, r#""доставка""#),
            [Some("ДОСТАВКА в Москву".into())]
        );
        assert_eq!(found(&store, r#""cafe""#), [Some("Un café noir".into())]);
        assert_eq!(found(&store, r#""ёлка""#).len(), 1);
        assert_eq!(found(&store, r#""доставо"*"#), [Some("доставочка".into())]);
        assert_eq!(found(&store, r#""дост"*"#).len(), 2);
    }
}
