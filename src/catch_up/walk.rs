//! One walk over the inbox: the conversations by activity, each one's messages newest
//! first, within a window of time; what it stored, matched and skipped. Also the
//! `catch-up` command's history import, which is a walk with its progress kept.

use std::io::Write as _;

use log::warn;

use super::access::{access, counted, Access};
use super::status::{describe, problem, read_status};
use crate::config::InboxConfig;
use crate::inbox::{Conversation, Inbox, InboxError, InboxMessage};
use crate::metrics::Metrics;
use crate::payload::{Direction, NewMessage};
use crate::store::{CatchUpRules, InboxRow, Store};
use crate::time::now_ms;

/// What the inbox's own app asks for.
const CONVERSATIONS_PER_PAGE: usize = 30;
const MESSAGES_PER_PAGE: usize = 20;
/// Bounds on one walk, against an inbox that never says "no more".
const MAX_CONVERSATION_PAGES: usize = 10_000;
const MAX_MESSAGE_PAGES: usize = 5_000;

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
