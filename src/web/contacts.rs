//! `GET /contacts`: everyone who wrote, most recent activity first, a page at a time.

use crate::error::Result;
use crate::http::{Request, Response};
use crate::store::Before;
use crate::time::now_ms;

use super::session::Current;
use super::state::Context;
use super::views::conversations::{ContactView, ContactsPage};
use super::views::{self, Frame};

const PAGE_CONTACTS: u32 = 50;

/// `GET /contacts?before_at=MS&before=ID`: keyset pages over the contacts' latest
/// activity, so a page far down costs the same as the first.
pub fn contacts(cx: &mut Context, req: &Request, current: &Current) -> Result<Response> {
    let now = now_ms();
    let lang = req.lang();
    let before = match (
        req.query_param("before_at")
            .and_then(|v| v.trim().parse::<i64>().ok()),
        req.query_param("before"),
    ) {
        (Some(at_ms), Some(key)) => Some(Before { at_ms, key }),
        _ => None,
    };
    let (contacts, more) = cx.store.contacts_page(before.as_ref(), PAGE_CONTACTS)?;
    let older = contacts.last().filter(|_| more).map(|c| {
        format!(
            "before_at={}&before={}",
            c.last_at_ms,
            crate::text::percent_encode(&c.contact_id)
        )
    });
    let page = ContactsPage {
        frame: Frame::new(req, Some(current), "contacts"),
        contacts: contacts
            .into_iter()
            .map(|c| ContactView::new(c, lang, now))
            .collect(),
        older,
        first_page: before.is_none(),
    };
    Ok(Response::html(
        200,
        views::render("contacts.html", lang, &page)?,
    ))
}
