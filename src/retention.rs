//! Retention: a background thread, on its own connection, that deletes raw requests older
//! than `--keep-raw` and messages older than `--keep-messages`, in small batches with
//! pauses between them, so webhooks keep their latency while a big backlog is deleted.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use log::{error, info};

use crate::error::Result;
use crate::store::Store;

/// Rows per batch: each batch is one short write transaction.
const BATCH: u32 = 100;
/// At least this long between batches, and at least twice what the last batch took: the
/// pruner holds the write lock for at most about a third of the time.
const MIN_PAUSE: Duration = Duration::from_millis(10);
/// Contacts per delete statement (they are few and small).
const CONTACT_BATCH: u32 = 500;

/// How long things are kept; None keeps them for ever (the default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub keep_raw: Option<Duration>,
    pub keep_messages: Option<Duration>,
}

/// What one pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassTotals {
    pub messages: usize,
    pub raw_requests: usize,
    pub contacts: usize,
}

impl Retention {
    /// Starts the retention thread, unless everything is kept.
    pub fn start(self, db: &Path) -> Result<()> {
        let Some(shortest) = [self.keep_raw, self.keep_messages]
            .into_iter()
            .flatten()
            .min()
        else {
            return Ok(());
        };
        let store = Store::connect(db)?;
        store.relax_retention_durability()?;
        // Often enough that nothing outlives its age by much more than a quarter of it.
        let interval = (shortest / 4).clamp(Duration::from_millis(500), Duration::from_secs(60));
        thread::Builder::new()
            .name("retention".into())
            .spawn(move || {
                let mut store = store;
                loop {
                    match self.pass(&mut store, crate::time::now_ms()) {
                        Ok(t) if t != PassTotals::default() => info!(
                            "retention: deleted {} messages, {} raw requests, {} contacts",
                            t.messages, t.raw_requests, t.contacts
                        ),
                        Ok(_) => {}
                        Err(e) => error!("retention: {e}; trying again later"),
                    }
                    thread::sleep(interval);
                }
            })?;
        Ok(())
    }

    /// Deletes everything past its age at `now_ms`, a batch at a time.
    pub fn pass(&self, store: &mut Store, now_ms: i64) -> Result<PassTotals> {
        let cut = |keep: Option<Duration>| {
            keep.map(|d| now_ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
        };
        let messages_cut = cut(self.keep_messages);
        // A message's raw record goes when the message does, if not before.
        let raw_cut = match (cut(self.keep_raw), messages_cut) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let mut totals = PassTotals::default();
        if let Some(before) = messages_cut {
            totals.messages = batches(|after| store.prune_messages(before, after, BATCH))?;
            loop {
                let n = store.prune_contacts(before, CONTACT_BATCH)?;
                totals.contacts += n;
                if n < CONTACT_BATCH as usize {
                    break;
                }
                thread::sleep(MIN_PAUSE);
            }
        }
        if let Some(before) = raw_cut {
            totals.raw_requests = batches(|after| store.prune_raw_requests(before, after, BATCH))?;
        }
        Ok(totals)
    }
}

/// Runs batches until one says the pass is done, pausing between them; returns the rows
/// deleted.
fn batches(mut batch: impl FnMut(i64) -> Result<crate::store::Pruned>) -> Result<usize> {
    let mut after = 0;
    let mut deleted = 0;
    loop {
        let started = Instant::now();
        let pruned = batch(after)?;
        deleted += pruned.deleted;
        let Some(next) = pruned.next_after else {
            return Ok(deleted);
        };
        after = next;
        thread::sleep(MIN_PAUSE.max(started.elapsed() * 2));
    }
}
