//! Online backup: a consistent copy of a database another process may be writing, made
//! with SQLite's backup API from inside one read transaction.

use std::path::Path;
use std::thread;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::Result;

/// Pages copied per step. The copy reads from one snapshot, so the step size does not
/// change what a writer waits for (in WAL mode readers never hold writers up); it only
/// bounds the memory and time of each call.
const PAGES_PER_STEP: std::os::raw::c_int = 1024;

/// What was copied, counted the way the stats count: test messages apart.
#[derive(Debug, Clone, Copy)]
pub struct BackupSummary {
    pub messages: i64,
    pub test_messages: i64,
}

/// Copies the database at `source` into `dest` (a new file). The whole copy is taken from
/// one read transaction held on the source, so it is the database exactly as it was when
/// the copy began: every webhook acknowledged before that is in it, and the relay's
/// writes meanwhile neither restart the copy nor wait for it.
pub fn backup(source: &Path, dest: &Path) -> Result<BackupSummary> {
    // Read-write without create: a read-only connection cannot open a WAL database whose
    // shared-memory file is missing, and nothing is written through this one.
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(Duration::from_secs(10))?;
    src.execute_batch("BEGIN")?;
    // The first read starts the snapshot the whole copy is taken from.
    src.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })?;
    let mut dst = Connection::open(dest)?;
    {
        let backup = Backup::new(&src, &mut dst)?;
        loop {
            match backup.step(PAGES_PER_STEP)? {
                StepResult::Done => break,
                StepResult::More => {}
                // Another process holds a lock the step needs for a moment: wait, retry.
                StepResult::Busy | StepResult::Locked => thread::sleep(Duration::from_millis(5)),
                _ => thread::sleep(Duration::from_millis(5)),
            }
        }
    }
    src.execute_batch("COMMIT")?;
    drop(src);
    let (messages, test_messages) = dst.query_row(
        "SELECT count(*) - coalesce(sum(is_test), 0), coalesce(sum(is_test), 0) FROM messages",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    dst.close().map_err(|(_, e)| e)?;
    Ok(BackupSummary {
        messages,
        test_messages,
    })
}
