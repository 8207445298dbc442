//! Meta's own Instagram webhook format: entries of messaging events, echoes included.

use serde_json::{Map, Value};

use super::message::{Direction, NewMessage};
use super::{attachment_list, collect, parse_sent_at, scalar, string, Outcome, Parsed};

pub(super) fn from_meta(obj: &Map<String, Value>) -> Parsed {
    let channel =
        obj.get("object")
            .and_then(string)
            .map(|object| match object.to_lowercase().as_str() {
                "page" => "messenger".to_string(),
                other => other.to_string(),
            });
    let events = obj
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("messaging")?.as_array())
        .flatten()
        .filter_map(|event| Some((event, event.get("message")?.as_object()?)));
    collect(
        events.map(|(event, message)| Outcome {
            message: meta_message(event, message, channel.clone()),
            unfilled: Vec::new(),
        }),
        "no message events (read/reaction/postback only)",
    )
}

/// An echo is the business's own reply, so the contact is the recipient, not the sender.
fn meta_message(
    event: &Value,
    message: &Map<String, Value>,
    channel: Option<String>,
) -> Result<NewMessage, String> {
    let echo = message.get("is_echo").and_then(Value::as_bool) == Some(true);
    let (direction, party) = if echo {
        (Direction::Out, "recipient")
    } else {
        (Direction::In, "sender")
    };
    let contact_id = event
        .get(party)
        .and_then(|p| p.get("id"))
        .and_then(scalar)
        .ok_or_else(|| format!("a message event without {party}.id"))?;
    let text = message.get("text").and_then(string);
    let attachments = attachment_list(message.get("attachments"));
    if text.is_none() && attachments.is_empty() {
        return Err("a message event without text or attachment".into());
    }
    Ok(NewMessage {
        sent_at_ms: event
            .get("timestamp")
            .and_then(scalar)
            .and_then(|raw| parse_sent_at(&raw)),
        channel,
        direction,
        contact_id,
        contact_name: None,
        username: None,
        profile_pic: None,
        text,
        attachments,
        external_id: message.get("mid").and_then(scalar),
    })
}
