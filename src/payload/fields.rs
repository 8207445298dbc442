//! Flat bodies (Chatrace's External Request, forms, query strings): the field names tried
//! for each part of a message, and reading one message from an object of them. Every
//! Chatrace system field the message has a place for is read under its own name too, so a
//! body keyed by those names (`"user_channel": "{{user_channel}}"`) loses nothing.

use serde_json::{Map, Value};

use super::message::{Attachment, Direction, NewMessage};
use super::{attachment_list, is_placeholder, lookup, parse_sent_at, scalar, string, Outcome};
use crate::contact::channel_name;
use crate::text::is_web_url;

/// Field names tried in order; a dotted name is a path into nested objects (or a literal
/// key with a dot, as form fields have). The two a message needs are public: the checklist
/// names the Chatrace variable for each when it arrives unfilled.
pub const CONTACT_ID: &[&str] = &[
    "contact_id",
    "user_id",
    "userId",
    "senderId",
    "sender_id",
    "ms_id",
    "from.id",
    "sender.id",
    "user.id",
];
pub const TEXT: &[&str] = &[
    "text",
    "message",
    "last_input",
    "last_text",
    "content",
    "body",
    "message.text",
];
/// `id` is tried last and separately: flows often put the contact id there.
const EXTERNAL_ID: &[&str] = &[
    "message_id",
    "messageId",
    "mid",
    "message.mid",
    "message.id",
];
const FULL_NAME: &[&str] = &[
    "name",
    "full_name",
    "from.name",
    "sender.name",
    "user.name",
    "user.full_name",
];
/// Chatrace's system field is `{{ig_user_name}}`; one copy of its docs says `{{username}}`.
const USERNAME: &[&str] = &[
    "username",
    "ig_user_name",
    "ig_username",
    "from.username",
    "sender.username",
    "user.username",
];
const PROFILE_PIC: &[&str] = &[
    "profile_pic",
    "from.profile_pic",
    "sender.profile_pic",
    "user.profile_pic",
];
/// What the message is: Chatrace's `{{last_input_type}}` says `text`, or a kind of media
/// whose URL `{{last_input}}` then holds.
const INPUT_TYPE: &[&str] = &["type", "last_input_type", "message_type", "message.type"];
const MEDIA_TYPES: &[&str] = &["image", "video", "audio", "file", "voice"];
/// `{{user_channel}}` is Chatrace's name for it: a number (`10` is Instagram) or a name.
const CHANNEL: &[&str] = &["channel", "user_channel"];
const SENT_AT: &[&str] = &["timestamp", "time", "created_at", "sent_at"];
/// Single-URL fields and the attachment type they imply.
const URL_FIELDS: &[(&str, &str)] = &[
    ("attachment_url", "file"),
    ("image_url", "image"),
    ("url", "file"),
];
/// Numbers at or above this are milliseconds; below, seconds (until the year 5138).
pub(super) const MS_THRESHOLD: f64 = 100_000_000_000.0;
/// 9999-12-31T23:59:59.999Z: later "timestamps" are garbage, not times.
pub(super) const MAX_SENT_AT_MS: f64 = 253_402_300_799_999.0;

/// How a field's value is read and when it counts as an unfilled template variable.
#[derive(Clone, Copy)]
enum Kind {
    /// Strings only; unfilled when the whole value is `{{...}}`.
    Text,
    /// Strings or numbers (a number keeps its exact digits); unfilled when the whole value
    /// is `{{...}}`.
    Scalar,
    /// Like Scalar, but any `{{` is unfilled: a half-templated id would mix up contacts.
    Contact,
}

/// Reads the fields of one flat object, remembering which held unfilled placeholders.
struct Reader<'a> {
    obj: &'a Map<String, Value>,
    unfilled: Vec<String>,
}

impl Reader<'_> {
    /// The first alias holding a usable value. A placeholder is skipped (and remembered)
    /// rather than ending the search, so a half-filled flow still yields what it did fill.
    fn pick(&mut self, aliases: &[&str], kind: Kind) -> Option<String> {
        for &name in aliases {
            let value = lookup(self.obj, name).and_then(|v| match kind {
                Kind::Text => string(v),
                Kind::Scalar | Kind::Contact => scalar(v),
            });
            let Some(value) = value else { continue };
            let unfilled = match kind {
                Kind::Contact => value.contains("{{"),
                Kind::Text | Kind::Scalar => is_placeholder(&value),
            };
            if !unfilled {
                return Some(value);
            }
            self.unfilled.push(name.to_string());
        }
        None
    }

    fn contact_name(&mut self) -> Option<String> {
        let parts: Vec<String> = ["first_name", "last_name"]
            .into_iter()
            .filter_map(|name| self.pick(&[name], Kind::Text))
            .collect();
        if parts.is_empty() {
            self.pick(FULL_NAME, Kind::Text)
        } else {
            Some(parts.join(" "))
        }
    }

    fn attachments(&mut self) -> Vec<Attachment> {
        let mut list = attachment_list(self.obj.get("attachments"));
        for &(name, kind) in URL_FIELDS {
            if let Some(url) = self.pick(&[name], Kind::Text) {
                if !list.iter().any(|a| a.url == url) {
                    list.push(Attachment {
                        kind: kind.into(),
                        url,
                    });
                }
            }
        }
        list
    }
}

pub(super) fn flat_message(obj: &Map<String, Value>) -> Outcome {
    let mut reader = Reader {
        obj,
        unfilled: Vec::new(),
    };
    let contact_id = reader.pick(CONTACT_ID, Kind::Contact);
    // A text of digits may come as a JSON number; it is still the person's text.
    let mut text = reader.pick(TEXT, Kind::Scalar);
    let required_unfilled = std::mem::take(&mut reader.unfilled);
    let mut attachments = reader.attachments();
    let input_type = reader
        .pick(INPUT_TYPE, Kind::Text)
        .map(|t| t.to_ascii_lowercase());
    if let Some(kind) = input_type.filter(|t| MEDIA_TYPES.contains(&t.as_str())) {
        // `{{last_input}}` of a photo or voice note is the media's URL, not words.
        if let Some(url) = text.take_if(|t| is_web_url(t)) {
            if !attachments.iter().any(|a| a.url == url) {
                attachments.push(Attachment { kind, url });
            }
        }
    }
    let contact_name = reader.contact_name();
    let username = reader.pick(USERNAME, Kind::Scalar);
    let profile_pic = reader
        .pick(PROFILE_PIC, Kind::Text)
        .filter(|u| is_web_url(u));
    let channel = reader.pick(CHANNEL, Kind::Scalar).map(|c| channel_name(&c));
    let external_id = reader.pick(EXTERNAL_ID, Kind::Scalar).or_else(|| {
        // An `id` equal to the contact id would collapse all of a contact's messages into one.
        reader
            .pick(&["id"], Kind::Scalar)
            .filter(|id| Some(id) != contact_id.as_ref())
    });
    let sent_at_ms = reader
        .pick(SENT_AT, Kind::Scalar)
        .and_then(|raw| parse_sent_at(&raw));
    let message = match (contact_id, text.is_some() || !attachments.is_empty()) {
        (None, _) => Err(format!(
            "no contact id field (looked for {})",
            CONTACT_ID.join(", ")
        )),
        (Some(_), false) => Err(format!(
            "no text or attachment (looked for {}, attachments, attachment_url, image_url, url)",
            TEXT.join(", ")
        )),
        (Some(contact_id), true) => Ok(NewMessage {
            sent_at_ms,
            channel,
            direction: Direction::In,
            contact_id,
            contact_name,
            username,
            profile_pic,
            text,
            attachments,
            external_id,
        }),
    };
    Outcome {
        message,
        unfilled: required_unfilled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chatrace's system fields that say something about a message, each sent under its own
    /// name, land in the message's field for it.
    #[test]
    fn every_system_field_is_read_under_its_own_name() {
        let body = serde_json::json!({
            "user_id": "5718243390127745",
            "first_name": "Мария",
            "last_name": "Иванова",
            "ig_user_name": "maria.i",
            "profile_pic": "https://cdn.example/p.jpg",
            "last_input": "https://cdn.example/v.mp4",
            "last_input_type": "video",
            "user_channel": "10",
        });
        let Value::Object(obj) = body else { panic!() };
        let m = flat_message(&obj).message.unwrap();
        assert_eq!(m.contact_id, "5718243390127745");
        assert_eq!(m.contact_name.as_deref(), Some("Мария Иванова"));
        assert_eq!(m.username.as_deref(), Some("maria.i"));
        assert_eq!(m.profile_pic.as_deref(), Some("https://cdn.example/p.jpg"));
        assert_eq!(m.text, None);
        assert_eq!(m.attachments[0].kind, "video");
        assert_eq!(m.channel.as_deref(), Some("instagram"));
        for (field, value) in [("full_name", "Мария И."), ("username", "maria.u")] {
            let mut obj = Map::new();
            obj.insert("user_id".into(), "1".into());
            obj.insert("last_input".into(), "hi".into());
            obj.insert(field.into(), value.into());
            let m = flat_message(&obj).message.unwrap();
            let read = [m.contact_name, m.username];
            assert!(read.iter().any(|r| r.as_deref() == Some(value)), "{field}");
        }
    }
}
