//! Chatrace's inbox API (`POST {app}/php/user`, the API of Chatrace's own web and mobile
//! apps): the only place that lists every conversation and message, also those no flow sent
//! (a person had the conversation, or the relay was down). Every call, and the one reader of
//! its answers; no prose, no storage.
//!
//! Its answers are read leniently: every value is a string in the real answers, but a
//! number is taken too; a message is a JSON array inside a string; a row that is no message
//! (typing) is skipped, and a row that cannot be read is reported, never a panic.

use std::time::Duration;

use serde_json::{json, Value};

use crate::chatrace;
use crate::contact::channel_name;
use crate::outbound::{self, Failure};
use crate::payload::{Attachment, Direction};

/// Longest wait for one answer.
const TIMEOUT: Duration = Duration::from_secs(20);
/// Largest answer read: a page of 20 messages whose texts are escaped twice stays far below.
const MAX_ANSWER: u64 = 4 * 1024 * 1024;
/// How much of an answer that is no inbox's is kept to show.
const EXCERPT_CHARS: usize = 120;

/// Where the inbox is and who signs in: a team member's user token (or, untried, the
/// account's API token).
#[derive(Debug, Clone, Copy)]
pub struct Inbox<'a> {
    pub url: &'a str,
    pub token: &'a str,
}

/// Why an inbox call brought nothing back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxError {
    /// `{"status":"ERROR","code":1}`: the token is expired, revoked or not a user token.
    NotSignedIn,
    /// `"status":"ERROR"` with Chatrace's own words (a wrong code, say).
    Refused(String),
    /// The address answers, but not like Chatrace's inbox: `null`, HTML, a 404; the
    /// status and an excerpt.
    NotAnInbox(u16, String),
    /// HTTP 429: every call to Chatrace now waits.
    RateLimited,
    Unreachable(Failure),
    /// JSON in an unexpected shape: what was missing.
    Odd(String),
}

impl std::fmt::Display for InboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InboxError::NotSignedIn => write!(f, "not signed in (status ERROR, code 1)"),
            InboxError::Refused(message) => write!(f, "refused: {message}"),
            InboxError::NotAnInbox(status, excerpt) => {
                write!(f, "HTTP {status}, not an inbox answer: {excerpt}")
            }
            InboxError::RateLimited => write!(f, "Chatrace's rate limit (HTTP 429)"),
            InboxError::Unreachable(failure) => write!(f, "{failure}"),
            InboxError::Odd(what) => write!(f, "unexpected answer: {what}"),
        }
    }
}

impl InboxError {
    /// The outcome's name in metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            InboxError::NotSignedIn => "not_signed_in",
            InboxError::Refused(_) => "refused",
            InboxError::NotAnInbox(..) => "not_an_inbox",
            InboxError::RateLimited => "rate_limited",
            InboxError::Unreachable(_) => "unreachable",
            InboxError::Odd(_) => "odd_answer",
        }
    }
}

/// The team member a user token belongs to, and the accounts (pages) it manages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Member {
    pub id: Option<String>,
    pub name: Option<String>,
    pub pages: Vec<Page>,
    /// The account the member's app last had open.
    pub current: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub id: String,
    pub name: Option<String>,
}

/// One conversation of the inbox list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// `ms_id`: the contact's id, the same as `{{user_id}}`.
    pub contact_id: String,
    pub full_name: Option<String>,
    pub channel: Option<String>,
    pub profile_pic: Option<String>,
    /// A person has the conversation: flows are paused, so no External Request runs.
    pub live_chat: bool,
    /// The latest of its activity times, in ms (`last_active` is in seconds, the others ms).
    pub active_ms: i64,
}

/// Who wrote an outgoing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    Bot,
    /// A team member, by id.
    Agent(String),
    /// Sent from Instagram's own app (`from` -2).
    InstagramApp,
    /// Sent from Facebook's inbox (`from` -1).
    FacebookInbox,
}

impl Sender {
    pub fn code(&self) -> &'static str {
        match self {
            Sender::Bot => "bot",
            Sender::Agent(_) => "agent",
            Sender::InstagramApp => "instagram_app",
            Sender::FacebookInbox => "facebook_inbox",
        }
    }

    pub fn agent_id(&self) -> Option<&str> {
        match self {
            Sender::Agent(id) => Some(id),
            _ => None,
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxMessage {
    /// Stable and unique in the inbox.
    pub id: String,
    pub channel: Option<String>,
    pub direction: Direction,
    /// Outgoing messages only.
    pub sender: Option<Sender>,
    pub text: Option<String>,
    pub attachments: Vec<Attachment>,
    pub at_ms: i64,
}

/// One page of the conversation list.
#[derive(Debug, Clone, Default)]
pub struct ConversationPage {
    /// Rows the inbox sent: what the next page's offset moves by.
    pub rows: usize,
    /// The rows that name a contact.
    pub conversations: Vec<Conversation>,
}

/// One page of a conversation's messages, newest first.
#[derive(Debug, Clone, Default)]
pub struct MessagePage {
    /// Rows the inbox sent: what the next page's offset moves by.
    pub rows: usize,
    pub messages: Vec<InboxMessage>,
    /// Rows that are no message (typing, an empty element): skipped on purpose.
    pub not_messages: usize,
    /// Rows that could not be read, each with why.
    pub unreadable: Vec<String>,
}

impl Inbox<'_> {
    /// Step 1 of the login by emailed code: Chatrace mails a code; returns the request id
    /// the code is checked against.
    pub fn send_code(url: &str, email: &str) -> Result<String, InboxError> {
        let answer = call(
            url,
            None,
            Some(chatrace::INTERACTIVE_WAIT),
            json!({"op": "login", "op1": "email", "op2": "sendOTP", "data": {"email": email}}),
        )?;
        text(&answer, "rid").ok_or_else(|| InboxError::Odd("no rid in the answer".into()))
    }

    /// Step 2: the code from the email; returns the user token.
    pub fn check_code(url: &str, rid: &str, code: &str) -> Result<String, InboxError> {
        let answer = call(
            url,
            None,
            Some(chatrace::INTERACTIVE_WAIT),
            json!({"op": "login", "op1": "email", "op2": "validateOTP", "rid": rid,
                   "data": {"code": code}}),
        )?;
        text(&answer["data"], "token")
            .ok_or_else(|| InboxError::Odd("no token in the answer".into()))
    }

    /// Who the token belongs to, and the accounts it may read.
    pub fn member(&self) -> Result<Member, InboxError> {
        let answer =
            self.call(json!({"op": "admins", "op1": "get", "account_id": null, "me": true}))?;
        let pages = answer["my_pages"]
            .as_array()
            .map(|pages| {
                pages
                    .iter()
                    .filter_map(|p| {
                        Some(Page {
                            id: text(p, "page_id").or_else(|| text(p, "id"))?,
                            name: text(p, "name"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Member {
            id: text(&answer["me"], "fb_id").or_else(|| text(&answer["me"], "id")),
            name: text(&answer["me"], "name"),
            pages,
            current: text(&answer, "curPage"),
        })
    }

    /// Conversations, most recently active first.
    pub fn conversations(
        &self,
        account: &str,
        offset: usize,
        limit: usize,
    ) -> Result<ConversationPage, InboxError> {
        let answer = self.call(json!({"op": "conversations", "op1": "get",
            "account_id": account, "offset": offset, "limit": limit, "cdts": []}))?;
        let rows = data(&answer)?;
        Ok(ConversationPage {
            rows: rows.len(),
            conversations: rows.iter().filter_map(read_conversation).collect(),
        })
    }

    /// One page of a conversation's messages, newest first.
    pub fn messages(
        &self,
        account: &str,
        contact_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<MessagePage, InboxError> {
        let answer = self.call(json!({"op": "conversations", "op1": "get",
            "account_id": account, "id": contact_id, "offset": offset, "limit": limit}))?;
        let rows = data(&answer)?;
        let mut page = MessagePage {
            rows: rows.len(),
            ..MessagePage::default()
        };
        for row in rows {
            match read_message(row) {
                Ok(Some(message)) => page.messages.push(message),
                Ok(None) => page.not_messages += 1,
                Err(why) => page.unreadable.push(why),
            }
        }
        Ok(page)
    }

    fn call(&self, body: Value) -> Result<Value, InboxError> {
        call(self.url, Some(self.token), None, body)
    }
}

/// One POST, in its turn of Chatrace's pace (for a person waiting, `max_wait` at most);
/// the answer's JSON when it says `OK`.
fn call(
    url: &str,
    token: Option<&str>,
    max_wait: Option<Duration>,
    body: Value,
) -> Result<Value, InboxError> {
    let body = body.to_string();
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        // What Chatrace's own app sends; the inbox API is the app's.
        ("User-Agent", "mobile-app"),
    ];
    if let Some(token) = token {
        headers.push(("X-ACCESS-TOKEN", token));
    }
    let answer = chatrace::paced(max_wait, || {
        outbound::post_large(url, &headers, body.as_bytes(), TIMEOUT, MAX_ANSWER)
    })
    .map_err(InboxError::Unreachable)?;
    if answer.status == 429 {
        return Err(InboxError::RateLimited);
    }
    let excerpt = || crate::text::excerpt(answer.body.as_bytes(), EXCERPT_CHARS);
    let json: Value = match serde_json::from_str(&answer.body) {
        Ok(json @ Value::Object(_)) => json,
        _ => return Err(InboxError::NotAnInbox(answer.status, excerpt())),
    };
    match json.get("status").and_then(Value::as_str) {
        Some(status) if status.eq_ignore_ascii_case("ok") => Ok(json),
        Some(status) if status.eq_ignore_ascii_case("error") => {
            if string(&json["code"]).as_deref() == Some("1") {
                Err(InboxError::NotSignedIn)
            } else {
                let words = text(&json, "message")
                    .or_else(|| chatrace::error_message(&json))
                    .unwrap_or_else(|| json.to_string());
                Err(InboxError::Refused(crate::text::excerpt(
                    words.as_bytes(),
                    EXCERPT_CHARS,
                )))
            }
        }
        _ => Err(InboxError::NotAnInbox(answer.status, excerpt())),
    }
}

fn data(answer: &Value) -> Result<&Vec<Value>, InboxError> {
    match &answer["data"] {
        Value::Array(rows) => Ok(rows),
        Value::Null => Err(InboxError::Odd("no data list".into())),
        _ => Err(InboxError::Odd("data is not a list".into())),
    }
}

/// A string or number as text; empty and null as None.
fn string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    string(value.get(key)?)
}

fn number(value: &Value, key: &str) -> Option<i64> {
    text(value, key)?.parse().ok()
}

/// Inbox times are ms, `last_active` seconds; a ms field that holds seconds is taken too.
fn as_ms(t: i64) -> i64 {
    if t < 100_000_000_000 {
        t.saturating_mul(1000)
    } else {
        t
    }
}

fn read_conversation(row: &Value) -> Option<Conversation> {
    let contact_id = text(row, "ms_id")?;
    let active_ms = ["last_active", "timestamp", "t_last_sent"]
        .into_iter()
        .filter_map(|key| number(row, key))
        .map(as_ms)
        .max()
        .unwrap_or(0);
    Some(Conversation {
        contact_id,
        full_name: text(row, "full_name"),
        channel: text(row, "channel").map(|c| channel_name(&c)),
        profile_pic: text(row, "profile_pic").filter(|u| u.starts_with("https://")),
        live_chat: text(row, "live_chat").as_deref() == Some("1"),
        active_ms,
    })
}

/// A message row; Ok(None) for a row that is no message (typing, nothing to show).
fn read_message(row: &Value) -> Result<Option<InboxMessage>, String> {
    let id = text(row, "id").ok_or("a row without an id")?;
    let at_ms = number(row, "timestamp")
        .map(as_ms)
        .ok_or_else(|| format!("row {id}: no timestamp"))?;
    let direction = match text(row, "dir").as_deref() {
        Some("1") => Direction::In,
        Some("0") => Direction::Out,
        other => return Err(format!("row {id}: direction {other:?}")),
    };
    let elements = match &row["message"] {
        Value::String(inner) => match serde_json::from_str::<Value>(inner) {
            Ok(Value::Array(elements)) => elements,
            Ok(element @ Value::Object(_)) => vec![element],
            _ => return Err(format!("row {id}: message is not a JSON list")),
        },
        Value::Array(elements) => elements.clone(),
        Value::Null => return Err(format!("row {id}: no message")),
        _ => return Err(format!("row {id}: message of an unknown kind")),
    };
    let mut texts = Vec::new();
    let mut attachments = Vec::new();
    let mut from = None;
    for element in &elements {
        if let Some(t) = element.get("text").and_then(Value::as_str) {
            if !t.trim().is_empty() {
                texts.push(t.to_string());
            }
        }
        let attachment = &element["attachment"];
        if let (Some(kind), Some(url)) = (
            text(attachment, "type"),
            text(&attachment["payload"], "url"),
        ) {
            attachments.push(Attachment { kind, url });
        }
        from = from.or_else(|| string(&element["from"]));
    }
    if texts.is_empty() && attachments.is_empty() {
        return Ok(None);
    }
    let sender = (direction == Direction::Out).then(|| match from.as_deref() {
        None | Some("0") => Sender::Bot,
        Some("-1") => Sender::FacebookInbox,
        Some("-2") => Sender::InstagramApp,
        Some(member) => Sender::Agent(member.to_string()),
    });
    Ok(Some(InboxMessage {
        id,
        channel: text(row, "channel").map(|c| channel_name(&c)),
        direction,
        sender,
        text: (!texts.is_empty()).then(|| texts.join("\n")),
        attachments,
        at_ms,
    }))
}

/// When a user token (a JWT) expires, from its `expire` claim (unix seconds). The
/// signature is not checked: the relay only reads the date to warn before it comes.
pub fn token_expiry_ms(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let standard: String = payload
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let bytes = crate::signature::decode(&standard)?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    Some(as_ms(
        number(&claims, "expire").or_else(|| number(&claims, "exp"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(row: &str) -> Result<Option<InboxMessage>, String> {
        read_message(&serde_json::from_str(row).unwrap())
    }

    #[test]
    fn messages_are_read_from_the_string_inside() {
        let m = message(
            r#"{"id":"10000312134418968741145545175465823643337","channel":"10","dir":"1","sentBy":"0",
                "message":"[{\"text\":\"Hello\",\"channel\":10,\"dir\":1}]","timestamp":"1754658236121"}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.id, "10000312134418968741145545175465823643337");
        assert_eq!(
            (m.direction, m.text.as_deref()),
            (Direction::In, Some("Hello"))
        );
        assert_eq!(
            (m.at_ms, m.channel.as_deref(), m.sender),
            (1754658236121, Some("instagram"), None)
        );
    }

    #[test]
    fn outgoing_messages_name_their_sender() {
        let out = |from: &str| {
            message(&format!(
                r#"{{"id":"1","dir":"0","timestamp":"1","message":"[{{\"text\":\"Hi\"{from}}}]"}}"#
            ))
            .unwrap()
            .unwrap()
            .sender
        };
        assert_eq!(out(""), Some(Sender::Bot));
        assert_eq!(
            out(r#",\"from\":1987654321012345"#),
            Some(Sender::Agent("1987654321012345".into()))
        );
        assert_eq!(out(r#",\"from\":-1"#), Some(Sender::FacebookInbox));
        assert_eq!(out(r#",\"from\":\"-2\""#), Some(Sender::InstagramApp));
    }

    #[test]
    fn attachments_typing_and_odd_rows() {
        let photo = message(
            r#"{"id":"4","dir":"1","timestamp":"1796169720789","message":"[{\"attachment\": {\"type\": \"image\", \"payload\": {\"url\": \"https://cdn.example/a.jpg\"}}}]"}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            photo.attachments,
            vec![Attachment {
                kind: "image".into(),
                url: "https://cdn.example/a.jpg".into()
            }]
        );
        assert_eq!(photo.text, None);
        assert_eq!(
            message(
                r#"{"id":"3","dir":"0","timestamp":"1","message":"[{\"type\": \"typing\", \"delay\": 0}]"}"#
            ),
            Ok(None)
        );
        // Numbers where strings are expected are read all the same.
        assert!(message(
            r#"{"id":3,"dir":1,"timestamp":1796169720789,"message":"[{\"text\":\"x\"}]"}"#
        )
        .unwrap()
        .is_some());
        for odd in [
            r#"{"id":"1","dir":"1","timestamp":"1","message":"not json"}"#,
            r#"{"id":"1","dir":"1","timestamp":"1"}"#,
            r#"{"id":"1","dir":"1","message":"[]"}"#,
            r#"{"dir":"1","timestamp":"1","message":"[]"}"#,
            r#"{"id":"1","dir":"7","timestamp":"1","message":"[]"}"#,
        ] {
            assert!(message(odd).is_err(), "{odd}");
        }
    }

    #[test]
    fn conversations_take_their_latest_activity() {
        let c = read_conversation(&serde_json::from_str(
            r#"{"ms_id":"5718243390127745","full_name":"Мария","channel":"10","live_chat":"1",
                "last_active":"1796169720","timestamp":"1796169720789","t_last_sent":"1796169660456",
                "profile_pic":"https://cdn.example/p.jpg"}"#,
        ).unwrap())
        .unwrap();
        assert_eq!(
            (c.active_ms, c.live_chat, c.channel.as_deref()),
            (1796169720789, true, Some("instagram"))
        );
        assert!(read_conversation(&json!({"full_name": "x"})).is_none());
    }

    #[test]
    fn token_expiry_is_read_from_the_jwt() {
        let token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiMTk4NzY1NDMyMSIsImV4cGlyZSI6MTgyNzc0MTYwMCwicHJvdmlkZXIiOiJlbWFpbCJ9.c2lnbmF0dXJl";
        assert_eq!(token_expiry_ms(token), Some(1_827_741_600_000));
        assert_eq!(token_expiry_ms("1234567.abcdef"), None);
    }
}
