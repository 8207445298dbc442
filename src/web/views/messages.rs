//! The message list and its rows, which the dashboard's recent messages use too.

use serde::Serialize;

use super::Frame;
use crate::i18n::Lang;
use crate::payload::Direction;
use crate::store::{Message, StoredAttachment};
use crate::text::{web_url, without_direction_controls};

/// Attachments shown per message: each image is a preview the admin's browser fetches, and
/// one message may carry thousands; the rest are counted (the API gives them all).
const ATTACHMENTS_SHOWN: usize = 8;

#[derive(Serialize)]
pub struct MessagesPage {
    #[serde(flatten)]
    pub frame: Frame,
    pub messages: Vec<MessageRow>,
    pub page_label: String,
    /// Query strings of the links to the newer and the older page.
    pub newer: Option<String>,
    pub older: Option<String>,
}

#[derive(Serialize)]
pub struct MessageRow {
    pub id: i64,
    pub time: String,
    /// The same time in RFC 3339, for `<time datetime>` (the page's script shows it in
    /// the viewer's own zone).
    pub iso: String,
    pub ago: String,
    pub name: String,
    pub username: Option<String>,
    pub contact_id: String,
    /// The contact's thread.
    pub thread_href: String,
    pub channel: Option<String>,
    pub direction: Direction,
    pub direction_label: &'static str,
    pub text: Option<String>,
    pub attachments: Vec<AttachmentView>,
    /// "and N more" when a message has more attachments than are shown.
    pub more_attachments: Option<String>,
    pub test: bool,
    /// Where the message came from, when not a webhook: caught up from the inbox, or a
    /// reply the relay sent.
    pub source_label: Option<&'static str>,
    /// Who wrote an outgoing message, when known.
    pub sender_label: Option<&'static str>,
}

impl MessageRow {
    pub fn new(m: Message, lang: Lang, now: i64) -> MessageRow {
        MessageRow {
            id: m.id,
            time: lang.datetime(m.received_at_ms),
            iso: crate::time::format_rfc3339(m.received_at_ms),
            ago: lang.ago(now, m.received_at_ms),
            // Direction controls in a name serve only to make it, or the id beside it, read
            // as someone else's.
            name: without_direction_controls(
                &m.contact_name
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| m.contact_id.clone()),
            ),
            username: m
                .username
                .filter(|u| !u.trim().is_empty())
                .map(|u| without_direction_controls(&u)),
            thread_href: super::conversations::thread_href(&m.contact_id),
            contact_id: m.contact_id,
            channel: m.channel,
            direction_label: lang.t(match m.direction {
                Direction::In => "dir_in",
                Direction::Out => "dir_out",
            }),
            direction: m.direction,
            text: m.text.filter(|t| !t.is_empty()),
            more_attachments: (m.attachments.len() > ATTACHMENTS_SHOWN).then(|| {
                lang.t("more_attachments").replace(
                    "{n}",
                    &(m.attachments.len() - ATTACHMENTS_SHOWN).to_string(),
                )
            }),
            attachments: m
                .attachments
                .into_iter()
                .take(ATTACHMENTS_SHOWN)
                .map(|a| AttachmentView::new(a, lang))
                .collect(),
            test: m.test,
            source_label: match m.source.as_str() {
                "inbox" => Some(lang.t("source_inbox")),
                "relay" => Some(lang.t("source_relay")),
                _ => None,
            },
            sender_label: m.sender.as_deref().and_then(|s| match s {
                "bot" => Some(lang.t("sender_bot")),
                "agent" => Some(lang.t("sender_agent")),
                "instagram_app" => Some(lang.t("sender_instagram_app")),
                "facebook_inbox" => Some(lang.t("sender_facebook_inbox")),
                _ => None,
            }),
        }
    }
}

#[derive(Serialize)]
pub struct AttachmentView {
    pub kind: String,
    pub url: String,
    /// The relay's own copy, when kept: previews, players and links come from there, so
    /// the page loads nothing from another host.
    pub media_url: Option<String>,
    /// How a kept file is shown in place: `image`, `video` or `audio`; files are links.
    pub player: Option<&'static str>,
    /// Only http(s) URLs become links; anything else (javascript:, data:...) stays text.
    pub href: Option<String>,
    /// Why the relay has no copy, beside the original link.
    pub note: Option<&'static str>,
}

impl AttachmentView {
    fn new(a: StoredAttachment, lang: Lang) -> AttachmentView {
        AttachmentView {
            player: match a.kind.as_str() {
                "image" => Some("image"),
                "video" => Some("video"),
                "audio" | "voice" => Some("audio"),
                _ => None,
            },
            note: match (a.kept, a.fate.as_deref()) {
                (true, _) | (false, None) => None,
                (false, Some("pending")) => Some(lang.t("media_pending")),
                (false, Some("expired")) => Some(lang.t("media_expired")),
                (false, Some("refused")) => Some(lang.t("media_refused")),
                (false, Some(_)) => Some(lang.t("media_evicted")),
            },
            href: web_url(&a.url),
            media_url: a.media_url,
            kind: a.kind,
            url: a.url,
        }
    }
}
