//! Names from Chatrace: a background thread asks Chatrace's API (`GET /contacts/{id}`) for
//! contacts whose name the relay does not know, and keeps the name, picture and channel it
//! finds. A Chatrace External Request often carries only `{{user_id}}`, so without this the
//! page and the API would show bare ids.
//!
//! Never on a webhook's path: the thread wakes when new messages are committed, asks at
//! most one contact at a time, at most once a day per contact, and in the turns of
//! `chatrace::PACE`, shared with every other call to Chatrace. Only ids Chatrace could know
//! wait for a turn. Failures are logged and counted, never shown as a webhook error; a
//! `429` is no failure of the contact's: its lookup is simply asked again after the pause.

use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use log::{debug, info, warn};

use crate::chatrace::{self, LookupFailure};
use crate::error::Result;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::time::now_ms;
use crate::writer::NewestMessage;

/// A contact whose lookup found no name, or failed, is asked again after this long.
const RETRY_AFTER_MS: i64 = 24 * 3_600_000;
/// Contacts read per round.
const BATCH: u32 = 20;
/// Longest sleep with nothing to do: also how soon contacts whose retry came due are asked.
const IDLE: Duration = Duration::from_secs(300);
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where lookups go.
pub struct Lookups {
    pub api_url: String,
    pub token: String,
}

impl Lookups {
    /// Starts the lookup thread on its own connection.
    pub fn start(self, db: &Path, newest: Arc<NewestMessage>, metrics: Arc<Metrics>) -> Result<()> {
        let store = Store::connect(db)?;
        thread::Builder::new()
            .name("lookup".into())
            .spawn(move || self.run(&store, &newest, &metrics))?;
        info!("contact names: looked up through the Chatrace API");
        Ok(())
    }

    fn run(&self, store: &Store, newest: &NewestMessage, metrics: &Metrics) {
        loop {
            // Read before querying: a message committed in between ends the wait at once.
            let seen = newest.get();
            let due = match store.contacts_to_look_up(now_ms() - RETRY_AFTER_MS, BATCH) {
                Ok(due) => due,
                Err(e) => {
                    warn!("contact lookups: reading contacts failed: {e}");
                    Vec::new()
                }
            };
            if due.is_empty() {
                newest.wait_beyond(seen, IDLE);
                continue;
            }
            for contact_id in due {
                self.look_up(store, metrics, &contact_id);
            }
        }
    }

    fn look_up(&self, store: &Store, metrics: &Metrics, contact_id: &str) {
        let result = if is_chatrace_id(contact_id) {
            chatrace::contact(&self.api_url, &self.token, contact_id, TIMEOUT)
        } else {
            Err(LookupFailure::NotFound)
        };
        let (info, error) = match result {
            Ok(info) => (info, None),
            // Asked again once the pause is over: the contact stays due.
            Err(LookupFailure::RateLimited) => return,
            Err(failure) => {
                if !matches!(failure, LookupFailure::NotFound) {
                    warn!("contact lookup for {contact_id} failed: {failure}");
                }
                (Default::default(), Some(failure.to_string()))
            }
        };
        metrics.lookup(error.is_none());
        debug!(
            "contact lookup {contact_id}: {}",
            if info.name.is_some() {
                "named"
            } else {
                "no name"
            }
        );
        if let Err(e) = store.record_lookup(contact_id, &info, error.as_deref(), now_ms()) {
            warn!("contact lookups: storing the result for {contact_id} failed: {e}");
        }
    }
}

/// Chatrace ids are digits; anything else (a test contact, a typo) goes nowhere near the
/// API, and nothing else can end up in the URL path.
fn is_chatrace_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_digit_ids_reach_the_api() {
        assert!(is_chatrace_id("5718243390127745"));
        for id in ["", "test-contact", "../accounts/me", "1?x=1", "１２"] {
            assert!(!is_chatrace_id(id), "{id}");
        }
    }
}
