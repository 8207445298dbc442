//! The contact list and a contact's thread: their rows, and the reply box under a thread
//! with what Instagram's 24-hour window allows.

use serde::Serialize;

use super::messages::MessageRow;
use super::Frame;
use crate::i18n::Lang;
use crate::payload::Direction;
use crate::store::{ContactSummary, Message};
use crate::text::{percent_encode, web_url, without_direction_controls};

/// Characters of the last message a contact row shows.
const EXCERPT_CHARS: usize = 120;

/// Instagram lets a business answer a person for this long after their last message.
pub const REPLY_WINDOW_MS: i64 = 24 * 3_600_000;

/// The path of a contact's thread.
pub fn thread_href(contact_id: &str) -> String {
    format!(
        "{}{}",
        crate::paths::CONTACT_PREFIX,
        percent_encode(contact_id)
    )
}

#[derive(Serialize)]
pub struct ContactsPage {
    #[serde(flatten)]
    pub frame: Frame,
    pub contacts: Vec<ContactView>,
    /// Query string of the next (older) page.
    pub older: Option<String>,
    pub first_page: bool,
}

#[derive(Serialize)]
pub struct ContactView {
    pub href: String,
    pub contact_id: String,
    pub name: String,
    pub username: Option<String>,
    /// The picture, as a link (https only).
    pub picture: Option<String>,
    pub channel: Option<String>,
    pub excerpt: Option<String>,
    /// The last message's attachment kind, when it has no text.
    pub attachment_kind: Option<String>,
    pub last_out: bool,
    pub time: String,
    pub iso: String,
    pub ago: String,
    pub messages: i64,
    /// The last message is the contact's, and nobody has answered it.
    pub unanswered: bool,
}

/// A contact's shown name: the name without direction controls, else the id.
fn shown_name(name: Option<&str>, contact_id: &str) -> String {
    without_direction_controls(name.filter(|n| !n.trim().is_empty()).unwrap_or(contact_id))
}

impl ContactView {
    pub fn new(c: ContactSummary, lang: Lang, now: i64) -> ContactView {
        let last = c.last.as_ref();
        ContactView {
            href: thread_href(&c.contact_id),
            name: shown_name(c.name.as_deref(), &c.contact_id),
            username: c
                .username
                .filter(|u| !u.trim().is_empty())
                .map(|u| without_direction_controls(&u)),
            picture: c.profile_pic.as_deref().and_then(web_url),
            channel: c.channel,
            excerpt: last
                .and_then(|m| m.text.as_deref())
                .filter(|t| !t.trim().is_empty())
                .map(|t| crate::text::excerpt(t.as_bytes(), EXCERPT_CHARS)),
            attachment_kind: last
                .and_then(|m| m.attachments.first())
                .map(|a| a.kind.clone()),
            last_out: last.is_some_and(|m| m.direction == Direction::Out),
            unanswered: last.is_some_and(|m| m.direction == Direction::In),
            time: lang.datetime(c.last_at_ms),
            iso: crate::time::format_rfc3339(c.last_at_ms),
            ago: lang.ago(now, c.last_at_ms),
            messages: c.messages,
            contact_id: c.contact_id,
        }
    }
}

#[derive(Serialize)]
pub struct ThreadPage {
    #[serde(flatten)]
    pub frame: Frame,
    pub flash: Option<String>,
    pub contact: ThreadContact,
    pub messages: Vec<ThreadMessage>,
    /// Query string of the page of earlier messages.
    pub earlier: Option<String>,
    /// Whether this page shows the newest messages (else a link back to them).
    pub newest: bool,
    pub reply: ThreadReply,
}

#[derive(Serialize)]
pub struct ThreadContact {
    pub contact_id: String,
    pub href: String,
    pub name: String,
    pub username: Option<String>,
    pub picture: Option<String>,
    pub channel: Option<String>,
    pub messages: i64,
}

impl ThreadContact {
    pub fn new(contact_id: &str, summary: Option<ContactSummary>) -> ThreadContact {
        let (name, username, picture, channel, messages) = match summary {
            Some(c) => (c.name, c.username, c.profile_pic, c.channel, c.messages),
            None => (None, None, None, None, 0),
        };
        ThreadContact {
            contact_id: contact_id.to_string(),
            href: thread_href(contact_id),
            name: shown_name(name.as_deref(), contact_id),
            username: username
                .filter(|u| !u.trim().is_empty())
                .map(|u| without_direction_controls(&u)),
            picture: picture.as_deref().and_then(web_url),
            channel,
            messages,
        }
    }
}

/// A message in a thread: the list's row, timed by the thread's clock, with where it came
/// from always named.
#[derive(Serialize)]
pub struct ThreadMessage {
    #[serde(flatten)]
    pub row: MessageRow,
    pub source: String,
    pub source_name: &'static str,
}

impl ThreadMessage {
    pub fn new(m: Message, lang: Lang, now: i64) -> ThreadMessage {
        let at = m.sent_at_ms.unwrap_or(m.received_at_ms);
        let source = m.source.clone();
        let mut row = MessageRow::new(m, lang, now);
        row.time = lang.datetime(at);
        row.iso = crate::time::format_rfc3339(at);
        row.ago = lang.ago(now, at);
        ThreadMessage {
            source_name: lang.t(match source.as_str() {
                "inbox" => "source_inbox",
                "relay" => "source_relay",
                _ => "source_webhook",
            }),
            source,
            row,
        }
    }
}

/// The reply box under a thread: whether sending is on, and why not.
#[derive(Serialize)]
pub struct ThreadReply {
    pub enabled: bool,
    /// Why sending is off, when it is.
    pub off_reason: Option<String>,
    /// "5 h 12 min left to reply", within the window.
    pub window_left: Option<String>,
    pub max_chars: usize,
}

impl ThreadReply {
    /// `token`: a Chatrace token is configured; `last_in_ms`: the contact's newest message.
    pub fn new(token: bool, last_in_ms: Option<i64>, lang: Lang, now: i64) -> ThreadReply {
        let left = last_in_ms.map(|at| at + REPLY_WINDOW_MS - now);
        let off_reason = if !token {
            Some(lang.t("reply_no_token").to_string())
        } else {
            match (last_in_ms, left) {
                (None, _) => Some(lang.t("reply_never_wrote").to_string()),
                (Some(at), Some(left)) if left <= 0 => Some(
                    lang.t("reply_window_closed")
                        .replace("{ago}", &lang.ago(now, at)),
                ),
                _ => None,
            }
        };
        let window_left = left.filter(|l| token && *l > 0).map(|l| {
            let minutes = (l + 59_999) / 60_000;
            lang.t("reply_window_left")
                .replace("{h}", &(minutes / 60).to_string())
                .replace("{m}", &(minutes % 60).to_string())
        });
        ThreadReply {
            enabled: off_reason.is_none(),
            off_reason,
            window_left,
            max_chars: crate::reply::MAX_TEXT_CHARS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_closes_a_day_after_the_contacts_last_message() {
        let now = 1_795_615_500_000;
        let open = ThreadReply::new(true, Some(now - 3_600_000), Lang::En, now);
        assert!(open.enabled);
        assert_eq!(
            open.window_left.as_deref(),
            Some("23 h 0 min left to reply")
        );
        let closed = ThreadReply::new(true, Some(now - REPLY_WINDOW_MS - 1), Lang::En, now);
        assert!(!closed.enabled);
        assert!(closed.off_reason.unwrap().contains("24 hours"));
        assert!(!ThreadReply::new(true, None, Lang::Ru, now).enabled);
        assert!(!ThreadReply::new(false, Some(now), Lang::En, now).enabled);
    }

    #[test]
    fn a_thread_link_escapes_the_id() {
        assert_eq!(thread_href("12 3/4"), "/contacts/12%203%2F4");
    }
}
