//! Catch-up from Chatrace's inbox: every message the relay does not have yet, also those no
//! flow sent (a person had the conversation, the relay was down, another rule caught the
//! message). A background thread runs on start and every `--catch-up-every`; the
//! `catch-up` command and the page's button import older history the same way.
//!
//! A run walks the conversations by activity until one last active before the window, and
//! each conversation's messages newest first until they are older than the window. The
//! window starts where the previous complete run ended, less a safety margin, and ends a
//! minute ago: a message younger than that may still have its webhook on the way, and is
//! left to the next run. Never on a webhook's path: its own connection, short transactions,
//! and every call in the turns of `chatrace::PACE`.

mod access;
mod status;
mod walk;

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use log::{debug, info, warn};

use crate::config::InboxConfig;
use crate::error::Result;
use crate::forward::Doorbell;
use crate::metrics::Metrics;
use crate::store::{CatchUpRules, Store};
use crate::time::now_ms;
use crate::writer::NewestMessage;

pub use status::{
    describe, read_status, write_status, PendingLogin, Problem, Status, TokenSource, ACCOUNT_KEY,
    LOGIN_KEY, TOKEN_KEY,
};
pub use walk::history;

use access::access;
use status::{problem, WATERMARK_KEY};
use walk::Walk;

/// The first run, with nothing caught up before, looks back this far; older history is the
/// `catch-up` command's.
const FIRST_LOOK_BACK_MS: i64 = 24 * 3_600_000;
/// Each run starts this long before the previous one ended, so a message whose time the
/// inbox gives a little late is still seen.
const SAFETY_MARGIN_MS: i64 = 2 * 60_000;
/// Messages younger than this are left to the next run: their webhook may be on its way.
const SETTLE_MS: i64 = 60_000;
/// After a failed run, the next one waits at least this long.
const RETRY_FAILED: Duration = Duration::from_secs(60);

/// Wakes the background thread before its time: after a login, or for the page's history
/// import.
#[derive(Default)]
pub struct Trigger {
    state: Mutex<(u64, Option<i64>)>,
    cv: Condvar,
}

impl Trigger {
    /// Run now; with `history_since_ms`, import from then (without forwarding).
    pub fn pull(&self, history_since_ms: Option<i64>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.wrapping_add(1);
        if history_since_ms.is_some() {
            state.1 = history_since_ms;
        }
        self.cv.notify_all();
    }

    fn seen(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    /// Sleeps until `timeout` or a pull after `seen`; returns a history start if asked.
    fn wait(&self, seen: u64, timeout: Duration) -> Option<i64> {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (mut guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |s| s.0 == seen)
            .unwrap_or_else(|e| e.into_inner());
        guard.1.take()
    }
}

/// The background catch-up: the thread and what it shares with the page.
pub struct Background {
    pub config: InboxConfig,
    pub forward_targets: Vec<String>,
    pub every: Duration,
}

impl Background {
    pub fn start(
        self,
        db: &Path,
        trigger: Arc<Trigger>,
        newest: Arc<NewestMessage>,
        bell: Arc<Doorbell>,
        metrics: Arc<Metrics>,
    ) -> Result<()> {
        let store = Store::connect(db)?;
        info!(
            "catch-up from Chatrace's inbox: every {} s",
            self.every.as_secs()
        );
        std::thread::Builder::new()
            .name("catch-up".into())
            .spawn(move || self.run(store, &trigger, &newest, &bell, &metrics))?;
        Ok(())
    }

    fn run(
        self,
        mut store: Store,
        trigger: &Trigger,
        newest: &NewestMessage,
        bell: &Doorbell,
        metrics: &Metrics,
    ) {
        let mut history: Option<i64> = None;
        loop {
            let seen = trigger.seen();
            let ok = self.once(&mut store, history.take(), newest, bell, metrics);
            let wait = if ok {
                self.every
            } else {
                self.every.max(RETRY_FAILED)
            };
            let mut status = read_status(&store);
            status.next_run_ms = Some(now_ms() + wait.as_millis() as i64);
            write_status(&store, &status);
            history = trigger.wait(seen, wait);
        }
    }

    /// One run; true when it went through.
    fn once(
        &self,
        store: &mut Store,
        history_since: Option<i64>,
        newest: &NewestMessage,
        bell: &Doorbell,
        metrics: &Metrics,
    ) -> bool {
        let started = now_ms();
        let mut status = read_status(store);
        status.last_run_ms = Some(started);
        let access = match access(store, &self.config, Some(metrics), &mut status) {
            Ok(access) => access,
            Err(problem) => {
                if problem != Problem::NoToken {
                    warn!("catch-up: {}", describe(&problem));
                }
                status.problem = Some(problem);
                write_status(store, &status);
                return false;
            }
        };
        let until_ms = started - SETTLE_MS;
        let watermark = store
            .setting(WATERMARK_KEY)
            .ok()
            .flatten()
            .and_then(|w| w.parse::<i64>().ok());
        let since_ms = match (history_since, watermark) {
            (Some(since), _) => since,
            (None, Some(w)) => w - SAFETY_MARGIN_MS,
            (None, None) => started - FIRST_LOOK_BACK_MS,
        };
        let rules = CatchUpRules {
            // History from the page is for the record, not for the app's inbox.
            forward_targets: if history_since.is_some() {
                Vec::new()
            } else {
                self.forward_targets.clone()
            },
        };
        let walk = Walk {
            access: &access,
            url: &self.config.url,
            since_ms,
            until_ms,
            contact: None,
            job: None,
            incoming_only: self.config.incoming_only,
            rules: &rules,
            metrics: Some(metrics),
        };
        let result = walk.run(store, |report| {
            if let Some(id) = report.new_ids.last() {
                newest.publish(*id);
            }
        });
        let (report, error) = match result {
            Ok(report) => (report, None),
            Err((report, e)) => (report, Some(e)),
        };
        if let Some(id) = report.new_ids.iter().max() {
            newest.publish(*id);
            bell.ring();
        }
        status.new = report.new_ids.len();
        status.matched = report.matched;
        status.conversations = report.conversations;
        status.unreadable = report.unreadable;
        if history_since.is_some() {
            status.history_since_ms = history_since;
            status.history_done = error.is_none();
        }
        let ok = error.is_none();
        match error {
            None => {
                status.problem = None;
                // History runs leave the regular window where it was.
                if history_since.is_none() || watermark.is_none() {
                    let _ = store.set_setting(
                        WATERMARK_KEY,
                        &until_ms.max(watermark.unwrap_or(0)).to_string(),
                    );
                }
                metrics.catch_up_ran(started);
            }
            Some(e) => {
                warn!("catch-up stopped: {e}");
                status.problem = Some(problem(e));
            }
        }
        info!(
            "catch-up: {} conversations, {} new messages, {} matched to webhooks",
            report.conversations,
            report.new_ids.len(),
            report.matched
        );
        debug!("catch-up report: {report:?}");
        write_status(store, &status);
        ok
    }
}
