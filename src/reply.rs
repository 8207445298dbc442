//! Replies: sends a text to a contact through the Chatrace API and stores it as an outgoing
//! message, so the conversation is complete in the relay.

use std::fmt;

use log::{info, warn};

use crate::chatrace::{self, SendFailure};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::time::now_ms;

/// Meta refuses Instagram message texts of 1000 characters or more.
pub const MAX_TEXT_CHARS: usize = 999;

/// A reply that went out and was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The stored outgoing message's id (direction `out`).
    pub message_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// No Chatrace API token is configured.
    NoToken,
    /// The contact id or text cannot be sent; the reason in words.
    Invalid(String),
    /// Chatrace refused: an HTTP error, or a 200 whose body says `error` or
    /// `"success":false`. `message` is Chatrace's own words.
    Chatrace { status: u16, message: String },
    /// Chatrace could not be reached (DNS, TLS, timeout...).
    Unreachable(String),
    /// Chatrace accepted the message but storing the copy failed.
    SentNotStored(String),
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::NoToken => write!(
                f,
                "no Chatrace API token: set CHATRACE_TOKEN (or the chatrace_token credential) \
                 and restart the relay"
            ),
            ReplyError::Invalid(reason) => write!(f, "{reason}"),
            ReplyError::Chatrace { message, .. } => write!(f, "Chatrace: {message}"),
            ReplyError::Unreachable(reason) => write!(f, "could not reach Chatrace: {reason}"),
            ReplyError::SentNotStored(reason) => {
                write!(f, "sent, but the copy could not be stored: {reason}")
            }
        }
    }
}

impl std::error::Error for ReplyError {}

impl ReplyError {
    /// The status the JSON API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            ReplyError::Invalid(_) => 400,
            ReplyError::NoToken => 503,
            ReplyError::Chatrace { .. } => 502,
            ReplyError::Unreachable(_) => 504,
            ReplyError::SentNotStored(_) => 500,
        }
    }
}

/// Where replies go: the Chatrace API and the token, when one is configured.
pub struct Chatrace<'a> {
    pub api_url: &'a str,
    pub token: Option<&'a str>,
}

/// Sends `text` to `contact_id` on Instagram through Chatrace and stores it as direction
/// `out`. On failure nothing is stored and the error carries Chatrace's message verbatim.
pub fn send(
    chatrace: &Chatrace,
    store: &Store,
    metrics: &Metrics,
    contact_id: &str,
    text: &str,
) -> Result<Sent, ReplyError> {
    let result = deliver(chatrace, store, contact_id, text);
    if !matches!(result, Err(ReplyError::Invalid(_))) {
        metrics.reply(result.is_ok());
    }
    result
}

fn deliver(
    chatrace: &Chatrace,
    store: &Store,
    contact_id: &str,
    text: &str,
) -> Result<Sent, ReplyError> {
    check(contact_id, text)?;
    let token = chatrace.token.ok_or(ReplyError::NoToken)?;
    match chatrace::send_text(chatrace.api_url, token, contact_id, text) {
        Ok(()) => {}
        Err(SendFailure::Unreachable(f)) => return Err(ReplyError::Unreachable(f.to_string())),
        Err(SendFailure::Refused { status, message }) => {
            warn!("reply to contact {contact_id} refused by Chatrace (HTTP {status})");
            return Err(ReplyError::Chatrace { status, message });
        }
    }
    let message_id = store
        .insert_sent_message(contact_id, crate::contact::INSTAGRAM, text, now_ms())
        .map_err(|e| ReplyError::SentNotStored(e.to_string()))?;
    info!("reply sent to contact {contact_id} (message {message_id})");
    Ok(Sent { message_id })
}

/// The contact id goes into the URL path, so only characters Chatrace ids use are let
/// through; the text must fit Instagram's limit.
fn check(contact_id: &str, text: &str) -> Result<(), ReplyError> {
    let id_ok = !contact_id.is_empty()
        && contact_id.len() <= 64
        && contact_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !id_ok {
        return Err(ReplyError::Invalid(
            "contact_id must be the Chatrace contact id (letters, digits, _ or -)".into(),
        ));
    }
    if text.trim().is_empty() {
        return Err(ReplyError::Invalid("text is empty".into()));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(ReplyError::Invalid(format!(
            "text has {chars} characters; Instagram takes at most {MAX_TEXT_CHARS}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_ids_cannot_escape_the_path() {
        assert!(check("6742218934563412", "hi").is_ok());
        assert!(check("../accounts", "hi").is_err());
        assert!(check("1?x=1", "hi").is_err());
        assert!(check("", "hi").is_err());
        assert!(check("1", "   ").is_err());
        assert!(check("1", &"я".repeat(MAX_TEXT_CHARS)).is_ok());
        assert!(check("1", &"я".repeat(MAX_TEXT_CHARS + 1)).is_err());
    }
}
