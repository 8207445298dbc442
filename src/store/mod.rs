//! The SQLite database: every SQL statement lives below this module. One `Store` is one
//! connection; each worker thread and the writer thread own their own.

mod backup;
mod conversations;
mod inbox;
mod ingest;
mod media;
mod messages;
mod outbox;
mod requests;
mod retention;
mod rollups;
mod search;
mod sessions;
mod stats;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::Result;

pub use backup::backup;
pub use conversations::{Before, ContactSummary};
pub use inbox::{CatchUpRules, InboxCounts, InboxRow};
pub use ingest::{IngestOutcome, IngestRequest, IngestRules, Rejection, Write};
pub use media::{DueMedia, MediaTotals, KEPT_KINDS};
pub use messages::{Contact, FirstMessage, Message, StoredAttachment};
pub use outbox::{
    Attempt, AttemptResult, DueDelivery, FailedDelivery, Requeue, TargetStatus, FORWARD_TARGETS,
};
pub use requests::{Arrival, FlaggedRequest, MergedRequest, Problem, ProblemBody, RejectedRequest};
pub use retention::Pruned;
pub use search::Found;
pub use stats::ByDay;

/// Each entry upgrades the schema by one version; `PRAGMA user_version` says how many have
/// been applied. Never edit a released entry: append a new one.
const MIGRATIONS: &[Migration] = &[
    Migration::Sql(include_str!("schema.sql")),
    Migration::Sql(include_str!("schema_forward.sql")),
    Migration::Sql(include_str!("schema_repeats_and_names.sql")),
    Migration::SqlThenBackfill(
        include_str!("schema_rollups.sql"),
        rollups::backfill_and_rekey,
    ),
    Migration::Sql(include_str!("schema_inbox.sql")),
    Migration::SqlThenSchema(
        include_str!("schema_ended_deliveries.sql"),
        outbox::allow_ended_deliveries,
    ),
    Migration::Sql(include_str!("schema_sessions.sql")),
    Migration::Sql(include_str!("schema_media.sql")),
    Migration::SqlThenBackfill(
        include_str!("schema_conversations.sql"),
        conversations::backfill,
    ),
    Migration::SqlThenBackfill(include_str!("schema_search.sql"), search::backfill),
];

/// One schema version: SQL, or SQL followed by a part written in Rust: a backfill of rows
/// an older version wrote (which must log its progress on a big database, and has nothing
/// to do on a new one), or a change to the schema SQL's DDL cannot say (which every
/// database needs, new or old).
enum Migration {
    Sql(&'static str),
    SqlThenBackfill(&'static str, fn(&Connection) -> Result<()>),
    SqlThenSchema(&'static str, fn(&Connection) -> Result<()>),
}

/// WAL size, in pages, at which a commit also checkpoints (see `Store::connect`).
const WAL_CHECKPOINT_PAGES: i64 = 10_000;

pub struct Store {
    conn: Connection,
    /// The file as opened: its path, and its device and inode then.
    file: Option<(std::path::PathBuf, (u64, u64))>,
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let mut store = Store::connect(path)?;
        store.migrate()?;
        Ok(store)
    }

    /// One more connection to a database `open` already prepared: no migration, so it needs
    /// no write lock and cannot be held up by a writer.
    pub fn connect(path: &Path) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // WAL lets readers run while the writer commits; FULL makes every COMMIT fsync the
        // WAL, so an acknowledged webhook survives power loss, not just a crash.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Small per-connection cache (256 KiB): there is one connection per worker, and the
        // OS page cache already holds the hot pages.
        conn.pragma_update(None, "cache_size", -256)?;
        // Checkpoint when the WAL reaches 10,000 pages (40 MB), not SQLite's default 1,000.
        // Every commit rewrites the same hot pages (the last leaf of each table, the
        // counters, the header page); a checkpoint copies each page once however often it
        // was rewritten, so rarer checkpoints copy far less. Measured: +23 % webhooks/s and
        // a lower p99, for a WAL file of up to 40 MB (BENCHMARKS.md).
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
        conn.busy_timeout(Duration::from_secs(2))?;
        let file = identity(path).map(|id| (path.to_path_buf(), id));
        Ok(Store { conn, file })
    }

    /// Why the database file this connection writes to is no longer the one at its path:
    /// deleted (with its directory, say) or replaced. SQLite would go on writing into the
    /// unlinked file, and every acknowledged webhook would vanish with the process.
    pub fn file_gone(&self) -> Option<String> {
        let (path, opened) = self.file.as_ref()?;
        match identity(path) {
            None => Some(format!("the database file {} is gone", path.display())),
            Some(now) if now != *opened => Some(format!(
                "the database file {} was replaced by another file",
                path.display()
            )),
            Some(_) => None,
        }
    }

    fn migrate(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let latest = MIGRATIONS.len() as i64;
        // A fresh database (version 0) is created, not upgraded: nothing worth a log line.
        if version > 0 && version < latest {
            log::info!(
                "upgrading the database from schema version {version} to {latest}; \
                 on a big database this takes a while, progress is logged"
            );
        }
        let started = std::time::Instant::now();
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            match migration {
                Migration::Sql(sql) => tx.execute_batch(sql)?,
                Migration::SqlThenSchema(sql, then) => {
                    tx.execute_batch(sql)?;
                    then(&tx)?;
                }
                Migration::SqlThenBackfill(sql, then) => {
                    tx.execute_batch(sql)?;
                    // A data migration converts rows an older version wrote; a database
                    // being created has none, and its progress lines would read as an
                    // upgrade that never happened.
                    if version > 0 {
                        then(&tx)?;
                    }
                }
            }
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        tx.commit()?;
        if version > 0 && version < latest {
            log::info!(
                "database upgraded to schema version {latest} in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    /// Caps the database file so that a full disk is met as a clean "database is full"
    /// (webhooks answered 503) before the filesystem itself runs out.
    pub fn limit_size(&self, max_bytes: u64) -> Result<()> {
        let page_size: i64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))?;
        let pages = (max_bytes / page_size.max(1) as u64).max(1);
        self.conn
            .pragma_update(None, "max_page_count", pages.min(i64::MAX as u64) as i64)?;
        Ok(())
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                                                 updated_at = excluded.updated_at",
            )?
            .execute(rusqlite::params![key, value, crate::time::now_ms()])?;
        Ok(())
    }

    pub fn delete_setting(&self, key: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM settings WHERE key = ?1")?
            .execute([key])?;
        Ok(())
    }

    /// The stored value of a secret, created with `generate` on first use. Runs in one
    /// immediate transaction so two processes starting at once agree on one value.
    pub fn ensure_setting(
        &mut self,
        key: &str,
        generate: impl FnOnce() -> std::io::Result<String>,
    ) -> Result<String> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let existing: Option<String> = tx
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?;
        let value = match existing {
            Some(v) => v,
            None => {
                let v = generate()?;
                tx.execute(
                    "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)",
                    rusqlite::params![key, v, crate::time::now_ms()],
                )?;
                v
            }
        };
        tx.commit()?;
        Ok(value)
    }

    /// A secret given from outside wins; otherwise the stored one, generated on first use.
    pub fn resolve_secret(&mut self, given: Option<String>, key: &str) -> Result<String> {
        match given {
            Some(secret) => Ok(secret),
            None => self.ensure_setting(key, || {
                crate::secret::random_hex(crate::secret::SECRET_BYTES)
            }),
        }
    }

    /// The journal mode and synchronous level actually in force (WAL and FULL = 2 are what
    /// the relay asks for; a network filesystem may refuse WAL).
    pub fn durability(&self) -> Result<(String, i64)> {
        let mode: String = self
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        let sync: i64 = self
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))?;
        Ok((mode, sync))
    }
}

/// A file's device and inode; None where it does not exist or has no such identity.
#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// Bytes on disk of the database file and of its write-ahead log beside it.
pub fn file_sizes(db: &Path) -> (u64, u64) {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    (size(db), size(Path::new(&wal)))
}

/// Free and total bytes of the filesystem holding the database file, as an unprivileged
/// user may use them.
#[cfg(unix)]
pub fn disk_space(db: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs only writes into the zeroed struct we own; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    // The field types differ between platforms (u32 on some 32-bit ones).
    #[allow(clippy::unnecessary_cast)]
    let (avail, blocks, frsize) = (st.f_bavail as u64, st.f_blocks as u64, st.f_frsize as u64);
    Some((avail.saturating_mul(frsize), blocks.saturating_mul(frsize)))
}

#[cfg(not(unix))]
pub fn disk_space(_db: &Path) -> Option<(u64, u64)> {
    None
}

/// Times are kept in milliseconds up to the view; JSON shows them as RFC 3339.
fn rfc3339<S: serde::Serializer>(ms: &i64, out: S) -> std::result::Result<S::Ok, S::Error> {
    out.serialize_str(&crate::time::format_rfc3339(*ms))
}

fn rfc3339_or_null<S: serde::Serializer>(
    ms: &Option<i64>,
    out: S,
) -> std::result::Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => rfc3339(ms, out),
        None => out.serialize_none(),
    }
}
