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

use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use log::{debug, info, warn};
use serde::{Deserialize, Serialize};

use crate::config::InboxConfig;
use crate::error::Result;
use crate::forward::Doorbell;
use crate::inbox::{Conversation, Inbox, InboxError, InboxMessage};
use crate::metrics::Metrics;
use crate::payload::{Direction, NewMessage};
use crate::store::{CatchUpRules, InboxRow, Store};
use crate::time::now_ms;
use crate::writer::NewestMessage;

/// The first run, with nothing caught up before, looks back this far; older history is the
/// `catch-up` command's.
const FIRST_LOOK_BACK_MS: i64 = 24 * 3_600_000;
/// Each run starts this long before the previous one ended, so a message whose time the
/// inbox gives a little late is still seen.
const SAFETY_MARGIN_MS: i64 = 2 * 60_000;
/// Messages younger than this are left to the next run: their webhook may be on its way.
const SETTLE_MS: i64 = 60_000;
/// What the inbox's own app asks for.
const CONVERSATIONS_PER_PAGE: usize = 30;
const MESSAGES_PER_PAGE: usize = 20;
/// Bounds on one walk, against an inbox that never says "no more".
const MAX_CONVERSATION_PAGES: usize = 10_000;
const MAX_MESSAGE_PAGES: usize = 5_000;
/// After a failed run, the next one waits at least this long.
const RETRY_FAILED: Duration = Duration::from_secs(60);

/// Settings keys of the inbox's state.
pub const TOKEN_KEY: &str = "inbox_token";
pub const ACCOUNT_KEY: &str = "inbox_account";
pub const STATUS_KEY: &str = "inbox_status";
pub const LOGIN_KEY: &str = "inbox_login";
const WATERMARK_KEY: &str = "inbox_watermark";
/// The verdict on the account's API token as an inbox token, tied to it by fingerprint, so
/// it is tried once, not on every run.
const API_TOKEN_KEY: &str = "inbox_api_token";

/// A code login under way: the address the code went to, Chatrace's request id for it,
/// and when it was asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub email: String,
    pub rid: String,
    pub at_ms: i64,
}

/// Where the user token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// `CHATRACE_INBOX_TOKEN` or the credential `chatrace_inbox_token`.
    Setting,
    /// The code login on the page or `inbox-login`.
    Login,
    /// The account's API token (`CHATRACE_TOKEN`), tried because nothing else was given.
    ApiToken,
}

/// What the last run found, kept in the settings for the page and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub token_source: Option<TokenSource>,
    /// The token's expiry (ms), read from the JWT.
    pub token_expires_ms: Option<i64>,
    pub member_name: Option<String>,
    pub member_id: Option<String>,
    pub account_id: Option<String>,
    pub account_name: Option<String>,
    /// Accounts to choose from when the login manages several and none is set.
    pub accounts: Vec<(String, Option<String>)>,
    pub last_run_ms: Option<i64>,
    pub next_run_ms: Option<i64>,
    /// None when the last run went through.
    pub problem: Option<Problem>,
    /// The last run's figures.
    pub new: usize,
    pub matched: usize,
    pub conversations: usize,
    pub unreadable: usize,
    /// A history import the page asked for: its start, while it runs or last ran.
    pub history_since_ms: Option<i64>,
    pub history_done: bool,
}

/// Why catch-up could not run, in a form the checklist words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Problem {
    /// No user token, and no API token to try.
    NoToken,
    /// The account's API token was tried and the inbox refused it.
    ApiTokenRefused,
    /// `{"status":"ERROR","code":1}`: the token expired or was revoked.
    SignedOut,
    /// The login manages several accounts and none is chosen.
    ChooseAccount,
    /// The address does not answer like Chatrace's inbox (a white-label's own domain?).
    NotAnInbox(String),
    /// Anything else, in words (unreachable, refused, an odd answer).
    Failed(String),
}

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

/// The token and account a run uses, once resolved.
pub struct Access {
    pub token: String,
    pub account_id: String,
}

/// Finds the token (setting, then login, then the API token tried once) and the account
/// (setting, then the page's choice, then the login's only account, then the API token's).
pub fn access(
    store: &Store,
    config: &InboxConfig,
    metrics: Option<&Metrics>,
    status: &mut Status,
) -> std::result::Result<Access, Problem> {
    let stored = store.setting(TOKEN_KEY).ok().flatten();
    let (token, source) = match (&config.token, stored, &config.api_token) {
        (Some(t), _, _) => (t.clone(), TokenSource::Setting),
        (None, Some(t), _) => (t, TokenSource::Login),
        (None, None, Some(t)) => (t.clone(), TokenSource::ApiToken),
        (None, None, None) => return Err(Problem::NoToken),
    };
    status.token_source = Some(source);
    status.token_expires_ms = crate::inbox::token_expiry_ms(&token);
    let fingerprint = crate::chatrace::fingerprint(&config.url, &token);
    if source == TokenSource::ApiToken
        && store.setting(API_TOKEN_KEY).ok().flatten().as_deref() == Some(&*fingerprint)
    {
        return Err(Problem::ApiTokenRefused);
    }
    let inbox = Inbox {
        url: &config.url,
        token: &token,
    };
    let member = counted(metrics, inbox.member()).map_err(|e| match e {
        InboxError::NotSignedIn if source == TokenSource::ApiToken => {
            let _ = store.set_setting(API_TOKEN_KEY, &fingerprint);
            Problem::ApiTokenRefused
        }
        e => problem(e),
    })?;
    status.member_name = member.name.clone();
    status.member_id = member.id.clone();
    status.accounts = member
        .pages
        .iter()
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect();
    let chosen = config
        .account_id
        .clone()
        .or_else(|| store.setting(ACCOUNT_KEY).ok().flatten())
        .or_else(|| match member.pages.as_slice() {
            [only] => Some(only.id.clone()),
            _ => None,
        })
        .or_else(|| api_token_account(config));
    let Some(account_id) = chosen else {
        return Err(Problem::ChooseAccount);
    };
    let account_name = member
        .pages
        .iter()
        .find(|p| p.id == account_id)
        .and_then(|p| p.name.clone());
    status.account_id = Some(account_id.clone());
    status.account_name = account_name;
    Ok(Access { token, account_id })
}

/// The page id the account's API token names (`GET /accounts/me`), when there is one.
fn api_token_account(config: &InboxConfig) -> Option<String> {
    let token = config.api_token.as_deref()?;
    match crate::chatrace::check_token(&config.api_url, Some(token), config.api_timeout) {
        crate::chatrace::TokenCheck::Valid { account } => account.page_id,
        _ => None,
    }
}

fn problem(e: InboxError) -> Problem {
    match e {
        InboxError::NotSignedIn => Problem::SignedOut,
        InboxError::NotAnInbox(status, excerpt) => {
            Problem::NotAnInbox(format!("HTTP {status}: {excerpt}"))
        }
        other => Problem::Failed(other.to_string()),
    }
}

/// Counts an inbox call's outcome in the metrics.
fn counted<T>(
    metrics: Option<&Metrics>,
    result: std::result::Result<T, InboxError>,
) -> std::result::Result<T, InboxError> {
    if let Some(metrics) = metrics {
        metrics.inbox_call(result.as_ref().err().map_or("ok", InboxError::code));
    }
    result
}

/// What one walk is asked to do.
pub struct Walk<'a> {
    pub access: &'a Access,
    pub url: &'a str,
    /// Messages at or after this time...
    pub since_ms: i64,
    /// ...and at or before this one.
    pub until_ms: i64,
    /// Only this contact's conversation.
    pub contact: Option<&'a str>,
    /// A history import's name, to skip conversations it finished before an interruption.
    pub job: Option<&'a str>,
    pub incoming_only: bool,
    pub rules: &'a CatchUpRules,
    pub metrics: Option<&'a Metrics>,
}

/// What a walk did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub conversations: usize,
    pub new_ids: Vec<i64>,
    pub matched: usize,
    pub known: usize,
    pub not_messages: usize,
    pub unreadable: usize,
    /// Outgoing messages left out by `--incoming-only`.
    pub left_out: usize,
}

impl Walk<'_> {
    /// Walks the inbox; `progress` hears after each conversation. Stops at the first
    /// failed call: what was stored before it stays, and the next run covers the rest.
    pub fn run(
        &self,
        store: &mut Store,
        mut progress: impl FnMut(&Report),
    ) -> std::result::Result<Report, (Report, InboxError)> {
        let mut report = Report::default();
        let inbox = Inbox {
            url: self.url,
            token: &self.access.token,
        };
        if let Some(contact) = self.contact {
            let lone = Conversation {
                contact_id: contact.to_string(),
                full_name: None,
                channel: None,
                profile_pic: None,
                live_chat: false,
                active_ms: self.until_ms,
            };
            return match self.conversation(&inbox, store, &lone, &mut report) {
                Ok(()) => Ok(report),
                Err(e) => Err((report, e)),
            };
        }
        let mut offset = 0;
        for _ in 0..MAX_CONVERSATION_PAGES {
            let page = counted(
                self.metrics,
                inbox.conversations(&self.access.account_id, offset, CONVERSATIONS_PER_PAGE),
            );
            let page = match page {
                Ok(page) => page,
                Err(e) => return Err((report, e)),
            };
            if page.rows == 0 {
                break;
            }
            offset += page.rows;
            let mut older = false;
            for conversation in &page.conversations {
                if conversation.active_ms != 0 && conversation.active_ms < self.since_ms {
                    older = true;
                    continue;
                }
                if let Some(job) = self.job {
                    if store
                        .history_done(job, &conversation.contact_id)
                        .unwrap_or(false)
                    {
                        continue;
                    }
                }
                if let Err(e) = self.conversation(&inbox, store, conversation, &mut report) {
                    return Err((report, e));
                }
                if let Some(job) = self.job {
                    if let Err(e) = store.mark_history_done(job, &conversation.contact_id) {
                        warn!("catch-up: recording progress failed: {e}");
                    }
                }
                progress(&report);
            }
            // Conversations come by activity: once one is older than the window, so are
            // all after it.
            if older {
                break;
            }
        }
        Ok(report)
    }

    fn conversation(
        &self,
        inbox: &Inbox,
        store: &mut Store,
        conversation: &Conversation,
        report: &mut Report,
    ) -> std::result::Result<(), InboxError> {
        report.conversations += 1;
        let mut offset = 0;
        let mut first_of_last_page: Option<String> = None;
        for _ in 0..MAX_MESSAGE_PAGES {
            let page = counted(
                self.metrics,
                inbox.messages(
                    &self.access.account_id,
                    &conversation.contact_id,
                    offset,
                    MESSAGES_PER_PAGE,
                ),
            )?;
            if page.rows == 0 {
                break;
            }
            // An inbox that ignores the offset would send the same page for ever.
            let first = page.messages.first().map(|m| m.id.clone());
            if first.is_some() && first == first_of_last_page {
                return Err(InboxError::Odd(
                    "the same page twice: offset ignored".into(),
                ));
            }
            first_of_last_page = first;
            offset += page.rows;
            report.not_messages += page.not_messages;
            report.unreadable += page.unreadable.len();
            for why in &page.unreadable {
                warn!(
                    "catch-up: a message of contact {} could not be read: {}",
                    crate::text::log_safe(&conversation.contact_id),
                    crate::text::log_safe(why)
                );
            }
            let older = page.messages.iter().any(|m| m.at_ms < self.since_ms);
            let mut rows = Vec::new();
            for m in &page.messages {
                if m.at_ms < self.since_ms || m.at_ms > self.until_ms {
                    continue;
                }
                if self.incoming_only && m.direction == Direction::Out {
                    report.left_out += 1;
                    continue;
                }
                rows.push(row(conversation, m));
            }
            if !rows.is_empty() {
                let stored = store
                    .catch_up(&rows, conversation.live_chat, self.rules, now_ms())
                    .map_err(|e| InboxError::Odd(format!("storing failed: {e}")))?;
                report.new_ids.extend(&stored.new_ids);
                report.matched += stored.matched;
                report.known += stored.known;
            }
            if older {
                break;
            }
        }
        if conversation.full_name.is_some() || conversation.profile_pic.is_some() {
            let _ = store.fill_contact(
                &conversation.contact_id,
                conversation.full_name.as_deref(),
                conversation.profile_pic.as_deref(),
            );
        }
        Ok(())
    }
}

/// An inbox message as the store takes it. Its inbox id is kept with a prefix, so it can
/// never collide with an id another sender chose.
fn row(conversation: &Conversation, m: &InboxMessage) -> InboxRow {
    InboxRow {
        message: NewMessage {
            sent_at_ms: Some(m.at_ms),
            channel: m.channel.clone().or_else(|| conversation.channel.clone()),
            direction: m.direction,
            contact_id: conversation.contact_id.clone(),
            contact_name: None,
            username: None,
            profile_pic: None,
            text: m.text.clone(),
            attachments: m.attachments.clone(),
            external_id: Some(format!("{INBOX_ID_PREFIX}{}", m.id)),
        },
        sender: m.sender.as_ref().map(|s| s.code()),
        sender_id: m
            .sender
            .as_ref()
            .and_then(|s| s.agent_id().map(str::to_string)),
    }
}

/// Prefix of the external id of a message seen in the inbox.
pub const INBOX_ID_PREFIX: &str = "inbox:";

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

pub fn read_status(store: &Store) -> Status {
    store
        .setting(STATUS_KEY)
        .ok()
        .flatten()
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

pub fn write_status(store: &Store, status: &Status) {
    let json = serde_json::to_string(status).unwrap_or_default();
    if let Err(e) = store.set_setting(STATUS_KEY, &json) {
        warn!("catch-up: saving its status failed: {e}");
    }
}

/// A problem in plain English, for logs and the command line (the page words its own).
pub fn describe(problem: &Problem) -> String {
    match problem {
        Problem::NoToken => "no inbox token: sign in on the setup page, run `chatrace-relay inbox-login EMAIL`, or set CHATRACE_INBOX_TOKEN".into(),
        Problem::ApiTokenRefused => "the inbox refused the account's API token (CHATRACE_TOKEN); it needs a team member's login: sign in on the setup page or run `chatrace-relay inbox-login EMAIL`".into(),
        Problem::SignedOut => "the inbox says the token is not signed in (expired or revoked): sign in again".into(),
        Problem::ChooseAccount => "the login manages several accounts: choose one on the setup page or set CHATRACE_ACCOUNT_ID".into(),
        Problem::NotAnInbox(what) => format!("the inbox address does not answer like Chatrace's inbox ({what}); on a white-label, set CHATRACE_INBOX_URL to https://<your app's domain>/php/user"),
        Problem::Failed(what) => what.clone(),
    }
}

/// The `catch-up` command: imports history from `since_ms`, resumable, with progress on
/// standard error. Returns the report, or why it stopped.
pub fn history(
    store: &mut Store,
    config: &InboxConfig,
    since_ms: i64,
    contact: Option<&str>,
    forward_targets: Vec<String>,
) -> std::result::Result<Report, String> {
    let mut status = read_status(store);
    let access = access(store, config, None, &mut status).map_err(|p| describe(&p))?;
    let job = format!("{since_ms}:{}", contact.unwrap_or(""));
    let rules = CatchUpRules { forward_targets };
    let walk = Walk {
        access: &access,
        url: &config.url,
        since_ms,
        until_ms: now_ms(),
        contact,
        job: Some(&job),
        incoming_only: config.incoming_only,
        rules: &rules,
        metrics: None,
    };
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut stderr = std::io::stderr();
    let result = walk.run(store, |r| {
        let line = format!(
            "conversations {:>5}   new messages {:>6}   matched {:>5}   already there {:>6}",
            r.conversations,
            r.new_ids.len(),
            r.matched,
            r.known
        );
        let _ = if on_terminal {
            write!(stderr, "\r{line}")
        } else {
            writeln!(stderr, "{line}")
        };
    });
    if on_terminal {
        let _ = writeln!(stderr);
    }
    match result {
        Ok(report) => {
            let _ = store.forget_history(&job);
            Ok(report)
        }
        Err((report, e)) => Err(format!(
            "stopped after {} conversations ({} new messages kept; run the same command again to resume): {}",
            report.conversations,
            report.new_ids.len(),
            describe(&problem(e))
        )),
    }
}
