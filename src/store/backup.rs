//! Online backup: a consistent copy of a database another process may be writing, made
//! with SQLite's backup API from inside one read transaction, into a private file that
//! nobody else can have planted, and only then given its name.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// Pages copied per step. The copy reads from one snapshot, so the step size does not
/// change what a writer waits for (in WAL mode readers never hold writers up); it only
/// bounds the memory and time of each call.
const PAGES_PER_STEP: std::os::raw::c_int = 1024;
/// The copy holds the webhook secret and the admin token: owner only, whatever the umask.
const MODE: u32 = 0o600;

/// What was copied, counted the way the stats count: test messages apart.
#[derive(Debug, Clone, Copy)]
pub struct BackupSummary {
    pub messages: i64,
    pub test_messages: i64,
}

/// Copies the database at `source` to `dest`, which must not exist. The copy is written
/// to a new file beside `dest` with a random name, created exclusively (never a file or a
/// link someone planted there), mode 0600; it is flushed, then linked to `dest`, which
/// fails rather than replace anything. Whoever can write to `dest`'s folder can neither
/// read the copy nor slip their own file in as `dest`.
pub fn backup(source: &Path, dest: &Path) -> Result<BackupSummary> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .ok_or_else(|| Error::Config(format!("{}: not a file name", dest.display())))?;
    let (partial, file) = create_private(&dir, name)?;
    let result = copy(source, &partial).and_then(|summary| {
        file.sync_all()?;
        publish(&partial, &file, dest)?;
        File::open(&dir)?.sync_all()?;
        Ok(summary)
    });
    // Unlinking never follows a link; if the name was swapped meanwhile, what goes is the
    // swapped-in entry, and the copy's own inode goes with the last handle.
    let _ = fs::remove_file(&partial);
    result
}

/// A new, empty file `NAME.partial-RANDOM` in `dir`: created by this call (O_CREAT|O_EXCL,
/// which also refuses a symbolic link at that name) and never through a link.
fn create_private(dir: &Path, name: &std::ffi::OsStr) -> Result<(PathBuf, File)> {
    let mut partial = name.to_owned();
    partial.push(format!(
        ".partial-{}",
        crate::secret::random_hex(crate::secret::SECRET_BYTES / 2)?
    ));
    let path = dir.join(partial);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    // The umask can only have taken bits away; an unusual one (0277) would leave the file
    // unwritable for SQLite.
    file.set_permissions(fs::Permissions::from_mode(MODE))?;
    Ok((path, file))
}

/// The whole copy is taken from one read transaction held on the source, so it is the
/// database exactly as it was when the copy began: every webhook acknowledged before that
/// is in it, and the relay's writes meanwhile neither restart the copy nor wait for it.
fn copy(source: &Path, partial: &Path) -> Result<BackupSummary> {
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
    // The file just created, never a link; no create flag, so SQLite cannot make another.
    let mut dst = Connection::open_with_flags(
        partial,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // No journal file beside the copy: its name would be predictable, and a copy that
    // fails half-way is thrown away anyway. The copy is never opened again here, so no
    // `-wal` or `-shm` file is made for it either.
    dst.pragma_update(None, "journal_mode", "MEMORY")?;
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

/// Links the copy to `dest` (a hard link fails if `dest` appeared meanwhile: nothing is
/// ever replaced), then checks that `dest` is the very file created above. SQLite opens the
/// copy by name, so a name swapped in between would have taken the copy's place.
fn publish(partial: &Path, file: &File, dest: &Path) -> Result<()> {
    fs::hard_link(partial, dest)?;
    let ours = file.metadata()?;
    let linked = fs::symlink_metadata(dest)?;
    if (linked.dev(), linked.ino()) != (ours.dev(), ours.ino()) {
        let _ = fs::remove_file(dest);
        return Err(Error::Config(format!(
            "the temporary copy beside {} was replaced by another file while the backup ran; \
             nothing was kept: back up into a folder only you can write to",
            dest.display()
        )));
    }
    Ok(())
}
