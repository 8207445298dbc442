//! `GET /messages`: every message, newest first, a page at a time.

use crate::error::Result;
use crate::http::{Request, Response};
use crate::time::now_ms;

use super::session::Current;
use super::state::Context;
use super::views::messages::{MessageRow, MessagesPage};
use super::views::{self, Frame};

const PAGE_MESSAGES: u32 = 50;

/// `GET /messages`: every message, newest first. Pages are keyed by message id
/// (`?before=ID` for older, `?after=ID` for newer), so a page far back costs the same as
/// the first; `page=N` only numbers the page in its label.
pub fn messages(cx: &mut Context, req: &Request, current: &Current) -> Result<Response> {
    let now = now_ms();
    let lang = req.lang();
    let id_param = |name: &str| {
        req.query_param(name)
            .and_then(|p| p.trim().parse::<i64>().ok())
            .filter(|&id| id >= 0)
    };
    let mut page = req
        .query_param("page")
        .and_then(|p| p.trim().parse::<u32>().ok())
        .filter(|&p| p >= 1)
        .unwrap_or(1);
    let (messages, newer_exist, older_exist) = match (id_param("before"), id_param("after")) {
        (Some(before), _) => {
            let (messages, more) = cx.store.recent_messages(Some(before), PAGE_MESSAGES)?;
            (messages, true, more)
        }
        (None, Some(after)) => {
            let (messages, more) = cx.store.newer_messages(after, PAGE_MESSAGES)?;
            if messages.is_empty() {
                // Nothing newer: show the newest page instead of an empty one.
                let (messages, more) = cx.store.recent_messages(None, PAGE_MESSAGES)?;
                page = 1;
                (messages, false, more)
            } else {
                (messages, more, true)
            }
        }
        (None, None) => {
            page = 1;
            let (messages, more) = cx.store.recent_messages(None, PAGE_MESSAGES)?;
            (messages, false, more)
        }
    };
    if !newer_exist {
        page = 1;
    }
    let first = messages.first().map(|m| m.id);
    let last = messages.last().map(|m| m.id);
    let view = MessagesPage {
        frame: Frame::new(req, Some(current), "messages"),
        messages: messages
            .into_iter()
            .map(|m| MessageRow::new(m, lang, now))
            .collect(),
        page_label: lang.t("page_n").replace("{n}", &page.to_string()),
        newer: first
            .filter(|_| newer_exist)
            .map(|id| format!("after={id}&page={}", page.saturating_sub(1).max(1))),
        older: last
            .filter(|_| older_exist)
            .map(|id| format!("before={id}&page={}", page.saturating_add(1))),
    };
    Ok(Response::html(
        200,
        views::render("messages.html", lang, &view)?,
    ))
}
