//! `GET /contacts/{id}`: one contact's messages in and out, in time order, with the reply
//! box under them; `GET /contacts/{id}/export` gives the whole thread as a file.

use crate::error::Result;
use crate::http::{Request, Response};
use crate::paths;
use crate::store::Before;
use crate::text::decode_component;
use crate::time::now_ms;

use super::export::{self, Format};
use super::session::Current;
use super::state::Context;
use super::views::conversations::{ThreadContact, ThreadMessage, ThreadPage, ThreadReply};
use super::views::{self, Frame};

/// Messages per page of a thread; earlier ones are a link away.
const PAGE_MESSAGES: u32 = 200;

const EXPORT_SUFFIX: &str = "/export";

/// The contact id of a thread's path, and whether the export was asked for. The id is
/// percent-encoded in the path, so a `/` in it never reads as the export.
fn contact_of(req: &Request) -> Option<(String, bool)> {
    let rest = req.path.strip_prefix(paths::CONTACT_PREFIX)?;
    let (raw, export) = match rest.strip_suffix(EXPORT_SUFFIX) {
        Some(raw) => (raw, true),
        None => (rest, false),
    };
    let id = decode_component(raw);
    (!id.trim().is_empty() && !raw.contains('/')).then_some((id, export))
}

/// For the route table: the thread's export.
pub fn is_export(req: &Request) -> bool {
    contact_of(req).is_some_and(|(_, export)| export)
}

/// `GET /contacts/{id}?before_at=MS&before=ID`.
pub fn thread(cx: &mut Context, req: &Request, current: &Current) -> Result<Response> {
    let Some((contact_id, false)) = contact_of(req) else {
        return Ok(Response::error(404, "not found"));
    };
    let now = now_ms();
    let lang = req.lang();
    let before = match (
        req.query_param("before_at")
            .and_then(|v| v.trim().parse::<i64>().ok()),
        req.query_param("before")
            .and_then(|v| v.trim().parse::<i64>().ok()),
    ) {
        (Some(at_ms), Some(key)) => Some(Before { at_ms, key }),
        _ => None,
    };
    let summary = cx.store.contact_summary(&contact_id)?;
    let (messages, earlier) = cx
        .store
        .thread(&contact_id, before.as_ref(), PAGE_MESSAGES)?;
    if summary.is_none() && messages.is_empty() {
        return Ok(Response::error(404, "no such contact"));
    }
    let earlier = messages.first().filter(|_| earlier).map(|m| {
        format!(
            "before_at={}&before={}",
            m.sent_at_ms.unwrap_or(m.received_at_ms),
            m.id
        )
    });
    let last_in = cx.store.last_incoming_at(&contact_id)?;
    let page = ThreadPage {
        frame: Frame::new(req, Some(current), "contacts"),
        flash: cx.state.sessions.take_flash(&cx.store, &current.id)?,
        contact: ThreadContact::new(&contact_id, summary),
        messages: messages
            .into_iter()
            .map(|m| ThreadMessage::new(m, lang, now))
            .collect(),
        earlier,
        newest: before.is_none(),
        reply: ThreadReply::new(cx.state.config.chatrace_token.is_some(), last_in, lang, now),
    };
    Ok(Response::html(
        200,
        views::render("thread.html", lang, &page)?,
    ))
}

/// `GET /contacts/{id}/export?format=csv|jsonl`: the whole thread, oldest first.
pub fn export(cx: &mut Context, req: &Request, _current: &Current) -> Result<Response> {
    let Some((contact_id, true)) = contact_of(req) else {
        return Ok(Response::error(404, "not found"));
    };
    let Some(format) = Format::from_query(req) else {
        return Ok(Response::error(400, "format must be csv or jsonl"));
    };
    let mut file = export::File::new(format)?;
    cx.store.for_each_in_thread(&contact_id, |m| file.add(&m))?;
    Ok(file.into_response(&format!("thread-{}", export::file_safe(&contact_id))))
}
