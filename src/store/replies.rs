//! Messages the relay itself sent through Chatrace: stored as direction `out`, so the
//! cursor and the page show both sides of a conversation.

use rusqlite::params;

use super::Store;
use crate::error::Result;

impl Store {
    /// Stores a sent reply; returns its message id. One statement, so it commits atomically
    /// without holding the write lock any longer than the insert.
    pub fn insert_sent_message(
        &self,
        contact_id: &str,
        channel: &str,
        text: &str,
        sent_at_ms: i64,
    ) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO messages (raw_request_id, received_at, sent_at, channel, direction,
                                       contact_id, text, attachments, is_test)
                 VALUES (NULL, ?1, ?1, ?2, 'out', ?3, ?4, '[]', 0)",
            )?
            .execute(params![sent_at_ms, channel, contact_id, text])?;
        Ok(self.conn.last_insert_rowid())
    }
}
