//! Keeping attachments: a background thread reads the attachments of newly stored
//! messages and downloads each file once (`fetch_media`), so a photo outlives Instagram's
//! link, which expires within days. Never on a webhook's path: it wakes when messages are
//! committed, fetches one file at a time, retries a failed download a few times, and then
//! records the link as expired before it could be kept.

use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::error::Result;
use crate::fetch_media::{fetch, Failed, Rules};
use crate::metrics::Metrics;
use crate::store::{DueMedia, Store};
use crate::time::now_ms;
use crate::writer::NewestMessage;

/// After a failed download (timeout, connection error, 5xx), the next tries come after
/// these delays; once they are spent the attachment is recorded as expired.
const RETRY_DELAYS_MS: [i64; 3] = [30_000, 120_000, 600_000];
/// On the very first run, messages older than this are not fetched: their links have
/// expired (Instagram's last at most a week).
const LOOK_BACK_MS: i64 = 7 * 86_400_000;
/// Messages read per round, and attachments fetched per round.
const BATCH: u32 = 200;
const FETCHES: u32 = 8;
/// Longest sleep with nothing to do.
const IDLE: Duration = Duration::from_secs(30);
/// After new messages wake the thread, how long it waits for more before reading them.
const GATHER: Duration = Duration::from_millis(250);

/// What is kept and how it is fetched.
pub struct Keeper {
    /// `--keep-media`: the kept files together stay under this many bytes.
    pub cap: u64,
    pub rules: Rules,
    /// `--max-db-mb`: media stop short of it, leaving room for messages.
    pub max_db_bytes: Option<u64>,
}

impl Keeper {
    /// Starts the thread on its own connection.
    pub fn start(self, db: &Path, newest: Arc<NewestMessage>, metrics: Arc<Metrics>) -> Result<()> {
        let mut store = Store::connect(db)?;
        store.relax_media_durability()?;
        if let Some(max) = self.max_db_bytes {
            // A tenth of the cap stays free for webhooks: a kept video must never be the
            // reason a message is refused.
            store.limit_size(max - max / 10)?;
        }
        info!(
            "media: attachments kept in the database, up to {} MB (files up to {} MB){}",
            self.cap / 1_000_000,
            self.rules.max_bytes / 1_000_000,
            if self.rules.allow_private {
                "; private addresses and plain http allowed (CHATRACE_RELAY_MEDIA_ALLOW_PRIVATE)"
            } else {
                ""
            }
        );
        thread::Builder::new()
            .name("media".into())
            .spawn(move || self.run(&mut store, &newest, &metrics))?;
        Ok(())
    }

    fn run(&self, store: &mut Store, newest: &NewestMessage, metrics: &Metrics) {
        loop {
            // Read before querying: a message committed in between ends the wait at once.
            let seen = newest.get();
            loop {
                let now = now_ms();
                match store.queue_media(now - LOOK_BACK_MS, now, BATCH) {
                    Ok(read) if read as u32 >= BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        warn!("media: reading new messages failed: {e}");
                        break;
                    }
                }
            }
            let due = store.due_media(now_ms(), FETCHES).unwrap_or_else(|e| {
                warn!("media: reading the queue failed: {e}");
                Vec::new()
            });
            if due.is_empty() {
                let wait = match store.next_media_due() {
                    Ok(Some(at)) => {
                        Duration::from_millis((at - now_ms()).clamp(100, 30_000) as u64)
                    }
                    _ => IDLE,
                };
                if newest.wait_beyond(seen, wait.min(IDLE)) > seen {
                    // Woken by new messages: let more of them arrive, and read them in one
                    // round, instead of a round (and a write) per webhook under load.
                    thread::sleep(GATHER);
                }
                continue;
            }
            for link in &due {
                let stored_in = self.keep(store, metrics, link);
                // Webhooks come first: after each file, a pause twice as long as its
                // database work took, so the webhook writer is never long behind it.
                thread::sleep(stored_in * 2);
            }
        }
    }

    /// Fetches and records one attachment; returns how long the database work took.
    fn keep(&self, store: &mut Store, metrics: &Metrics, link: &DueMedia) -> Duration {
        let id = link.message_id;
        let result = fetch(&link.url, &link.kind, &self.rules).and_then(|f| {
            if f.bytes.len() as u64 > self.cap {
                Err(Failed::Refused("larger than --keep-media".into()))
            } else {
                Ok(f)
            }
        });
        let started = Instant::now();
        let recorded = match result {
            Ok(file) => {
                let size = file.bytes.len() as u64;
                match store.keep_media(link, &file.content_type, &file.bytes, self.cap, now_ms()) {
                    Ok(kept) => {
                        metrics.media_fetch("kept", size);
                        if let Some((_, evicted)) = kept.filter(|(_, n)| *n > 0) {
                            info!("media: kept a file of message {id}; evicted {evicted} older files to stay under --keep-media");
                        } else {
                            debug!("media: kept a file of message {id} ({size} bytes)");
                        }
                        Ok(())
                    }
                    // A full database: tried again later like a failed download.
                    Err(e) => {
                        warn!("media: storing a file of message {id} failed: {e}");
                        self.failed(store, metrics, link, Failed::Retry(e.to_string()))
                    }
                }
            }
            Err(failure) => self.failed(store, metrics, link, failure),
        };
        if let Err(e) = recorded {
            warn!("media: recording the fetch for message {id} failed: {e}");
        }
        started.elapsed()
    }

    fn failed(
        &self,
        store: &mut Store,
        metrics: &Metrics,
        link: &DueMedia,
        failure: Failed,
    ) -> Result<()> {
        let id = link.message_id;
        let (retry_at, state) = match &failure {
            Failed::Refused(_) => (None, "refused"),
            Failed::Gone(_) => (None, "expired"),
            Failed::Retry(_) => match RETRY_DELAYS_MS.get(link.attempts.max(0) as usize) {
                Some(delay) => (Some(now_ms() + delay), "expired"),
                None => (None, "expired"),
            },
        };
        metrics.media_fetch(
            match (&failure, retry_at) {
                (Failed::Refused(_), _) => "refused",
                (_, Some(_)) => "retry",
                _ => "expired",
            },
            0,
        );
        // The reason, never the link: a signed link is as good as the file.
        info!(
            "media: a file of message {id} was not kept{}: {failure}",
            if retry_at.is_some() {
                " (will try again)"
            } else {
                ""
            }
        );
        store.media_failed(link, &failure.to_string(), retry_at, state)
    }
}
