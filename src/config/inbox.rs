//! The settings of the catch-up from Chatrace's inbox, which `serve`, `catch-up` and
//! `inbox-login` read alike: flags, then environment, then defaults.

use std::time::Duration;

use super::{
    api_timeout, api_url, check_http_url, env, env_parse, secret, DEFAULT_CHATRACE_RATE,
    DEFAULT_INBOX_URL,
};
use crate::cli::InboxFlags;

/// Where Chatrace's inbox is and how it is read: shared by `serve`, `catch-up` and
/// `inbox-login`, which read the same flags and environment.
#[derive(Debug, Clone)]
pub struct InboxConfig {
    /// `{app}/php/user`.
    pub url: String,
    /// The account (page id) to read; None: the login's only account, else the API token's.
    pub account_id: Option<String>,
    /// A team member's user token given from outside (environment or credential).
    pub token: Option<String>,
    /// The account's API token, tried when no user token exists.
    pub api_token: Option<String>,
    pub api_url: String,
    pub api_timeout: Duration,
    /// Outgoing messages are left out.
    pub incoming_only: bool,
    /// Calls a minute to Chatrace, both APIs together.
    pub rate: u32,
}

impl InboxConfig {
    pub fn from_flags(flags: InboxFlags) -> Result<InboxConfig, String> {
        let url = flags
            .inbox_url
            .or_else(|| env("CHATRACE_INBOX_URL"))
            .unwrap_or_else(|| DEFAULT_INBOX_URL.to_string());
        check_http_url(&url).map_err(|e| format!("--inbox-url {url}: {e}"))?;
        let rate = match flags
            .chatrace_rate
            .or(env_parse("CHATRACE_RELAY_CHATRACE_RATE")?)
        {
            Some(0) => return Err("--chatrace-rate must be at least 1".into()),
            Some(n) => n,
            None => DEFAULT_CHATRACE_RATE,
        };
        Ok(InboxConfig {
            url,
            account_id: flags.account_id.or_else(|| env("CHATRACE_ACCOUNT_ID")),
            token: secret("CHATRACE_INBOX_TOKEN", "chatrace_inbox_token"),
            api_token: secret("CHATRACE_TOKEN", "chatrace_token"),
            api_url: api_url(None),
            api_timeout: api_timeout()?,
            incoming_only: flags.incoming_only
                || env("CHATRACE_RELAY_INCOMING_ONLY").is_some_and(|v| v == "1" || v == "true"),
            rate,
        })
    }
}
