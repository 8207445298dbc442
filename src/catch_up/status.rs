//! What catch-up remembers between runs and shows: the settings keys it keeps its state
//! under, a sign-in under way, where the token came from, the last run's figures, and why
//! it could not run.

use log::warn;
use serde::{Deserialize, Serialize};

use crate::inbox::InboxError;
use crate::store::Store;

/// Settings keys of the inbox's state.
pub const TOKEN_KEY: &str = "inbox_token";
pub const ACCOUNT_KEY: &str = "inbox_account";
pub const STATUS_KEY: &str = "inbox_status";
pub const LOGIN_KEY: &str = "inbox_login";
pub(super) const WATERMARK_KEY: &str = "inbox_watermark";
/// The verdict on the account's API token as an inbox token, tied to it by fingerprint, so
/// it is tried once, not on every run.
pub(super) const API_TOKEN_KEY: &str = "inbox_api_token";

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

pub(super) fn problem(e: InboxError) -> Problem {
    match e {
        InboxError::NotSignedIn => Problem::SignedOut,
        InboxError::NotAnInbox(status, excerpt) => {
            Problem::NotAnInbox(format!("HTTP {status}: {excerpt}"))
        }
        other => Problem::Failed(other.to_string()),
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
