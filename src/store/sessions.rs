//! The setup page's sessions: each signed-in browser's CSRF token, its times and its
//! one-shot message, found by the SHA-256 of the cookie's id. The rules (how long a
//! session lives, how many there may be) are the caller's.

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::Store;
use crate::error::Result;

/// One session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub csrf: String,
    pub created_at_ms: i64,
    pub last_seen_at_ms: i64,
}

/// Setting: the digest of the admin token the sessions were signed in with.
const SESSIONS_TOKEN: &str = "sessions_admin_token";

impl Store {
    /// Adds a session, after deleting those last seen before `stale_before` or created
    /// before `old_before`, and then the least recently seen beyond `keep - 1`.
    pub fn insert_session(
        &self,
        id_digest: &str,
        csrf: &str,
        now_ms: i64,
        (stale_before, old_before, keep): (i64, i64, usize),
    ) -> Result<()> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        tx.prepare_cached("DELETE FROM sessions WHERE last_seen_at < ?1 OR created_at < ?2")?
            .execute(params![stale_before, old_before])?;
        tx.prepare_cached(
            "DELETE FROM sessions WHERE id_digest IN (
                 SELECT id_digest FROM sessions ORDER BY last_seen_at DESC LIMIT -1 OFFSET ?1)",
        )?
        .execute([keep.saturating_sub(1) as i64])?;
        tx.prepare_cached(
            "INSERT INTO sessions (id_digest, csrf, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?3)",
        )?
        .execute(params![id_digest, csrf, now_ms])?;
        tx.commit()?;
        Ok(())
    }

    pub fn session(&self, id_digest: &str) -> Result<Option<StoredSession>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT csrf, created_at, last_seen_at FROM sessions WHERE id_digest = ?1",
            )?
            .query_row([id_digest], |r| {
                Ok(StoredSession {
                    csrf: r.get(0)?,
                    created_at_ms: r.get(1)?,
                    last_seen_at_ms: r.get(2)?,
                })
            })
            .optional()?)
    }

    pub fn touch_session(&self, id_digest: &str, now_ms: i64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE sessions SET last_seen_at = ?2 WHERE id_digest = ?1")?
            .execute(params![id_digest, now_ms])?;
        Ok(())
    }

    pub fn delete_session(&self, id_digest: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM sessions WHERE id_digest = ?1")?
            .execute([id_digest])?;
        Ok(())
    }

    pub fn set_session_flash(&self, id_digest: &str, flash: &str) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE sessions SET flash = ?2 WHERE id_digest = ?1")?
            .execute(params![id_digest, flash])?;
        Ok(())
    }

    /// The session's one-shot sentence, removed as it is read.
    pub fn take_session_flash(&self, id_digest: &str) -> Result<Option<String>> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let flash: Option<String> = tx
            .prepare_cached("SELECT flash FROM sessions WHERE id_digest = ?1")?
            .query_row([id_digest], |r| r.get(0))
            .optional()?
            .flatten();
        if flash.is_some() {
            tx.prepare_cached("UPDATE sessions SET flash = NULL WHERE id_digest = ?1")?
                .execute([id_digest])?;
        }
        tx.commit()?;
        Ok(flash)
    }

    /// Ends every session when the admin token (`digest`) is not the one they were signed
    /// in with: a token changed because it leaked must not leave its sessions behind.
    /// Returns how many ended.
    pub fn keep_sessions_of(&self, digest: &str) -> Result<usize> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let known: Option<String> = tx
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
            .query_row([SESSIONS_TOKEN], |r| r.get(0))
            .optional()?;
        let mut ended = 0;
        if known.as_deref() != Some(digest) {
            ended = tx.execute("DELETE FROM sessions", [])?;
            tx.prepare_cached(
                "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                                                 updated_at = excluded.updated_at",
            )?
            .execute(params![SESSIONS_TOKEN, digest, crate::time::now_ms()])?;
        }
        tx.commit()?;
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_kept_pruned_and_ended_with_their_token() {
        let store = Store::open(std::path::Path::new(":memory:")).unwrap();
        assert_eq!(store.keep_sessions_of("t1").unwrap(), 0);
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            store
                .insert_session(id, "csrf", 100 + i as i64, (0, 0, 2))
                .unwrap();
        }
        assert_eq!(store.session("a").unwrap(), None, "the oldest went first");
        assert_eq!(store.session("c").unwrap().unwrap().created_at_ms, 102);
        store.touch_session("b", 500).unwrap();
        assert_eq!(store.session("b").unwrap().unwrap().last_seen_at_ms, 500);
        store.insert_session("d", "x", 600, (200, 0, 10)).unwrap();
        assert_eq!(store.session("c").unwrap(), None, "stale");
        store.set_session_flash("d", "done").unwrap();
        assert_eq!(
            store.take_session_flash("d").unwrap().as_deref(),
            Some("done")
        );
        assert_eq!(store.take_session_flash("d").unwrap(), None);
        store.delete_session("b").unwrap();
        assert_eq!(store.session("b").unwrap(), None);
        assert_eq!(store.keep_sessions_of("t1").unwrap(), 0);
        assert_eq!(store.keep_sessions_of("t2").unwrap(), 1);
        assert_eq!(store.session("d").unwrap(), None);
    }
}
