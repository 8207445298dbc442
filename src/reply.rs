//! Replies: sends a text to a contact through the Chatrace API and stores it as an outgoing
//! message, so the conversation is complete in the relay.

use std::fmt;
use std::time::Duration;

use log::{info, warn};
use serde_json::Value;

use crate::app::App;
use crate::outbound;
use crate::store::Store;
use crate::time::now_ms;

/// Chatrace answers in well under a second; a person clicking "send" should not wait longer.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Meta refuses Instagram message texts of 1000 characters or more.
pub const MAX_TEXT_CHARS: usize = 999;
/// Chatrace's channel name for Instagram in the send API.
const CHANNEL: &str = "instagram";
/// Characters of a Chatrace error kept: verbatim, but bounded.
const MAX_ERROR_CHARS: usize = 500;

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

/// Sends `text` to `contact_id` on Instagram through Chatrace and stores it as direction
/// `out`. On failure nothing is stored and the error carries Chatrace's message verbatim.
pub fn send(app: &App, store: &Store, contact_id: &str, text: &str) -> Result<Sent, ReplyError> {
    let result = deliver(app, store, contact_id, text);
    if !matches!(result, Err(ReplyError::Invalid(_))) {
        app.metrics.reply(result.is_ok());
    }
    result
}

fn deliver(app: &App, store: &Store, contact_id: &str, text: &str) -> Result<Sent, ReplyError> {
    check(contact_id, text)?;
    let token = app
        .config
        .chatrace_token
        .as_deref()
        .ok_or(ReplyError::NoToken)?;
    let url = format!(
        "{}/contacts/{contact_id}/send/text",
        app.config.chatrace_api_url
    );
    let body = serde_json::json!({ "text": text, "channel": CHANNEL }).to_string();
    let headers = [
        ("X-ACCESS-TOKEN", token),
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
    ];
    let reply = outbound::post(&url, &headers, body.as_bytes(), TIMEOUT)
        .map_err(|f| ReplyError::Unreachable(f.to_string()))?;
    if let Some(message) = refusal(reply.status, &reply.body) {
        warn!(
            "reply to contact {contact_id} refused by Chatrace (HTTP {})",
            reply.status
        );
        return Err(ReplyError::Chatrace {
            status: reply.status,
            message,
        });
    }
    let message_id = store
        .insert_sent_message(contact_id, CHANNEL, text, now_ms())
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

/// Chatrace's complaint, when its answer is one: a non-2xx, or a 2xx whose body has an
/// `error` or `"success":false`, or is not the JSON object a send answers with.
fn refusal(status: u16, body: &str) -> Option<String> {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let said = json.as_ref().and_then(error_message);
    let ok_shape = json.as_ref().is_some_and(|v| {
        v.is_object() && v.get("error").is_none() && v.get("success") != Some(&Value::Bool(false))
    });
    if (200..300).contains(&status) && ok_shape {
        return None;
    }
    let message = said.unwrap_or_else(|| {
        let text = body.trim();
        if text.is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            text.to_string()
        }
    });
    Some(message.chars().take(MAX_ERROR_CHARS).collect())
}

/// The message inside Chatrace's error shapes: `{"error":{"message":..}}`,
/// `{"error":".."}`, `{"success":false,"message":..}`.
fn error_message(v: &Value) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    match v.get("error") {
        Some(Value::Object(e)) => e
            .get("message")
            .and_then(text)
            .or_else(|| Some(Value::Object(e.clone()).to_string())),
        Some(e) => text(e),
        None => v.get("message").and_then(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatrace_errors_are_found_in_every_shape() {
        assert_eq!(refusal(200, r#"{"success":true}"#), None);
        assert_eq!(
            refusal(
                200,
                r#"{"error":{"code":100,"message":"(#551) This person isn't available right now."}}"#
            )
            .as_deref(),
            Some("(#551) This person isn't available right now.")
        );
        assert_eq!(
            refusal(200, r#"{"success":false,"message":"Contact not found"}"#).as_deref(),
            Some("Contact not found")
        );
        assert_eq!(
            refusal(200, r#"{"error":"Outside of 24h window"}"#).as_deref(),
            Some("Outside of 24h window")
        );
        assert_eq!(
            refusal(401, "No valid API key provided").as_deref(),
            Some("No valid API key provided")
        );
        assert_eq!(
            refusal(200, "<html>proxy</html>").as_deref(),
            Some("<html>proxy</html>")
        );
        assert_eq!(
            refusal(500, "").as_deref(),
            Some("HTTP 500 with an empty body")
        );
    }

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
