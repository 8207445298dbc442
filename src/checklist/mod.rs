//! The setup checklist: what stands between a fresh install and the first Instagram message,
//! computed from facts each time it is shown. The page renders it, `/api/setup` serves it.

use std::net::SocketAddr;

use serde::Serialize;

use crate::config::Config;
use crate::error::Result;
use crate::forward::Doorbell;
use crate::i18n::Lang;
use crate::probe::SelfProbe;
use crate::store::Store;
use crate::time::now_ms;

mod actions;
mod facts;
mod inbox_actions;
mod rows;
mod words;

pub use actions::run_action;
pub use words::{describe_failure, token_advice, token_shape_hint, token_verdict};

/// What the checklist looks at: the running relay's settings and state, and a database
/// connection of the caller's.
pub struct Relay<'a> {
    pub config: &'a Config,
    pub webhook_secret: &'a str,
    /// The address actually bound.
    pub addr: SocketAddr,
    pub started_at_ms: i64,
    pub probe: &'a SelfProbe,
    /// Rung after a replay, so the delivery threads look at the outbox at once.
    pub forward_bell: &'a Doorbell,
    /// Wakes the inbox catch-up.
    pub catch_up: &'a crate::catch_up::Trigger,
    pub store: &'a Store,
}

/// Ordered from good to bad, so the worst of several is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Todo,
    Warn,
    Fail,
}

/// One row of the checklist. `title` and `detail` are in the asked language; `facts` are
/// what was seen and the values to paste; `actions` are the buttons the row offers.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub key: &'static str,
    pub status: Status,
    pub title: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<Fact>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fact {
    pub label: String,
    pub value: String,
    pub kind: FactKind,
}

/// How the page shows a fact's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FactKind {
    /// Plain text.
    Text,
    /// Something to copy and paste exactly (URL, header name, JSON template).
    Code,
    /// A secret: hidden until the user asks to reveal it.
    Secret,
    /// A link to open.
    Link,
    /// An excerpt of a request someone sent, shown verbatim and escaped.
    Excerpt,
}

/// A button a row offers; the page posts it to `/setup/<name>` with a CSRF token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    RecheckToken,
    SendTest,
    /// Puts every failed delivery back in the queue.
    ReplayFailed,
    /// Marks the webhook row's problems as seen: they stop keeping it amber.
    DismissProblems,
    /// Asks Chatrace to mail a sign-in code to the address typed (input `value`).
    InboxSendCode,
    /// Signs in to the inbox with the code typed.
    InboxCheckCode,
    /// Chooses the account (page id) to catch up.
    InboxChooseAccount,
    /// Imports the last 7 days from the inbox, in the background.
    InboxHistory,
    /// Forgets the inbox token kept in the database.
    InboxSignOut,
}

/// The one field a button's form carries, posted as `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Input {
    /// The HTML input type.
    pub kind: &'static str,
    /// Catalogue key of its label.
    pub label: &'static str,
    pub autocomplete: &'static str,
}

const ALL_ACTIONS: [Action; 9] = [
    Action::RecheckToken,
    Action::SendTest,
    Action::ReplayFailed,
    Action::DismissProblems,
    Action::InboxSendCode,
    Action::InboxCheckCode,
    Action::InboxChooseAccount,
    Action::InboxHistory,
    Action::InboxSignOut,
];

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::RecheckToken => "recheck_token",
            Action::SendTest => "send_test",
            Action::ReplayFailed => "replay_failed",
            Action::DismissProblems => "dismiss_problems",
            Action::InboxSendCode => "inbox_send_code",
            Action::InboxCheckCode => "inbox_check_code",
            Action::InboxChooseAccount => "inbox_choose_account",
            Action::InboxHistory => "inbox_history",
            Action::InboxSignOut => "inbox_sign_out",
        }
    }

    /// The catalogue key of its button's label.
    pub fn label_key(self) -> &'static str {
        match self {
            Action::RecheckToken => "action_recheck_token",
            Action::SendTest => "action_send_test",
            Action::ReplayFailed => "action_replay_failed",
            Action::DismissProblems => "action_dismiss_problems",
            Action::InboxSendCode => "action_inbox_send_code",
            Action::InboxCheckCode => "action_inbox_check_code",
            Action::InboxChooseAccount => "action_inbox_choose_account",
            Action::InboxHistory => "action_inbox_history",
            Action::InboxSignOut => "action_inbox_sign_out",
        }
    }

    /// The action named in a URL (`/setup/<name>`, `/api/setup/<name>`).
    pub fn from_name(name: &str) -> Option<Action> {
        ALL_ACTIONS.into_iter().find(|a| a.name() == name)
    }

    /// The field the button's form asks for, if any.
    pub fn input(self) -> Option<Input> {
        let input = |kind, label, autocomplete| {
            Some(Input {
                kind,
                label,
                autocomplete,
            })
        };
        match self {
            Action::InboxSendCode => input("email", "input_inbox_email", "email"),
            Action::InboxCheckCode => input("text", "input_inbox_code", "one-time-code"),
            Action::InboxChooseAccount => input("text", "input_inbox_account", "off"),
            _ => None,
        }
    }
}

impl Fact {
    pub fn new(label: &str, value: impl Into<String>, kind: FactKind) -> Fact {
        Fact {
            label: label.to_string(),
            value: value.into(),
            kind,
        }
    }
}

/// How much of a request or an answer the checklist quotes.
const EXCERPT_CHARS: usize = 300;

/// The checklist, in the order the page shows it: the facts as they are now, then the rows.
pub fn checklist(r: &Relay, lang: Lang) -> Result<Vec<Check>> {
    let facts = facts::gather(r)?;
    Ok(rows::rows(&facts, lang, now_ms()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_by_name() {
        for action in ALL_ACTIONS {
            assert_eq!(Action::from_name(action.name()), Some(action));
        }
        assert_eq!(Action::from_name("drop_tables"), None);
    }
}
