//! `GET /`: the checklist, the stats and the chart, the recent messages, the requests that
//! gave no message, the failed deliveries and the reply box.

use crate::checklist;
use crate::error::Result;
use crate::http::{Request, Response};
use crate::i18n::Lang;
use crate::time::now_ms;

use super::session::Current;
use super::state::Context;
use super::views::chart::{chart, NARROW, WIDE};
use super::views::dashboard::{
    Card, CheckView, Dashboard, FailedRow, FlaggedRow, MergedRow, RejectedRow, ReplyBox,
};
use super::views::messages::MessageRow;
use super::views::{self, Frame};

/// Messages on the dashboard; the message page shows more per page.
const DASHBOARD_MESSAGES: u32 = 10;

const PROBLEM_ROWS: u32 = 20;

const FAILED_ROWS: u32 = 20;

/// Contacts the reply box offers; older ones can still be typed in by id.
const REPLY_CONTACTS: u32 = 50;

const EXCERPT_CHARS: usize = 300;

/// The failed deliveries listed for retrying, only while forwarding is configured: without
/// a target nothing would send them.
fn failed_rows(cx: &Context, lang: Lang) -> Result<Vec<FailedRow>> {
    if cx.state.config.forward_urls.is_empty() {
        return Ok(Vec::new());
    }
    Ok(cx
        .store
        .recent_failed_deliveries(FAILED_ROWS)?
        .into_iter()
        .map(|d| FailedRow::new(d, lang))
        .collect())
}

/// `GET /`.
pub fn dashboard(cx: &mut Context, req: &Request, current: &Current) -> Result<Response> {
    let now = now_ms();
    let lang = req.lang();
    let checks = checklist::checklist(&cx.relay(), lang)?
        .into_iter()
        .map(|c| CheckView::new(c, lang))
        .collect();
    let stats = cx.store.stats(now, &cx.state.config.time_zone)?;
    let card = |key: &'static str, label: &str, value: i64| Card {
        key,
        label: lang.t(label).to_string(),
        value: value.to_string(),
        note: None,
    };
    let last = stats.last_message_at_ms;
    let cards = vec![
        card("total", "stat_total", stats.total_messages),
        Card {
            key: "today",
            label: lang
                .t("stat_today")
                .replace("{zone}", cx.state.config.time_zone.name()),
            value: stats.messages_today.to_string(),
            note: None,
        },
        card("last_24h", "stat_24h", stats.messages_last_24h),
        card("contacts", "stat_contacts", stats.unique_contacts),
        Card {
            key: "last_message",
            label: lang.t("stat_last").to_string(),
            value: last.map_or_else(|| lang.t("never").to_string(), |ms| lang.datetime(ms)),
            note: last.map(|ms| lang.ago(now, ms)),
        },
        card("received", "stat_received", stats.webhooks_received),
        card("duplicates", "stat_duplicates", stats.duplicates),
        card("rejected", "stat_rejected", stats.webhooks_rejected),
        card("caught_up", "stat_caught_up", stats.caught_up),
    ];
    let f = &stats.forwarding;
    let forwarding =
        if cx.state.config.forward_urls.is_empty() && f.pending + f.delivered + f.failed == 0 {
            Vec::new()
        } else {
            vec![
                card("fwd_pending", "fwd_pending", f.pending),
                card("fwd_delivered", "fwd_delivered", f.delivered),
                card("fwd_failed", "fwd_failed", f.failed),
            ]
        };
    let (messages, more_messages) = cx.store.recent_messages(None, DASHBOARD_MESSAGES)?;
    let flagged = cx.store.recent_flagged(PROBLEM_ROWS, EXCERPT_CHARS)?;
    let rejected = cx.store.recent_rejected(PROBLEM_ROWS)?;
    let merged = cx.store.recent_merged(PROBLEM_ROWS, EXCERPT_CHARS)?;
    let page = Dashboard {
        frame: Frame::new(req, Some(current), "dashboard"),
        flash: cx.state.sessions.take_flash(&cx.store, &current.id)?,
        checks,
        cards,
        forwarding,
        chart_wide: chart(&stats.by_day, lang, WIDE),
        chart_narrow: chart(&stats.by_day, lang, NARROW),
        messages: messages
            .into_iter()
            .map(|m| MessageRow::new(m, lang, now))
            .collect(),
        more_messages,
        flagged: flagged
            .into_iter()
            .map(|f| FlaggedRow::new(f, lang))
            .collect(),
        merged: merged
            .into_iter()
            .map(|m| MergedRow::new(m, lang))
            .collect(),
        rejected: rejected
            .into_iter()
            .map(|r| RejectedRow::new(r, lang))
            .collect(),
        failed: failed_rows(cx, lang)?,
        reply: reply_box(cx)?,
    };
    Ok(Response::html(
        200,
        views::render("dashboard.html", lang, &page)?,
    ))
}

/// The reply form, with the recent contacts once a Chatrace token makes replies possible.
fn reply_box(cx: &Context) -> Result<ReplyBox> {
    let enabled = cx.state.config.chatrace_token.is_some();
    let contacts = if enabled {
        cx.store.recent_contacts(REPLY_CONTACTS)?
    } else {
        Vec::new()
    };
    Ok(ReplyBox::new(enabled, contacts))
}
