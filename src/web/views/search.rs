//! The search page: the form with its filters, and each found message with its matches
//! marked and a link to its place in the thread.

use serde::Serialize;

use super::conversations::thread_href;
use super::messages::MessageRow;
use super::Frame;
use crate::i18n::Lang;
use crate::search::{Query, Segment};
use crate::store::Message;

/// Characters of a found text shown around its first match.
const SHOWN_CHARS: usize = 240;

#[derive(Serialize)]
pub struct SearchPage {
    #[serde(flatten)]
    pub frame: Frame,
    pub form: SearchForm,
    /// Whether a query was given (else the page shows the form only).
    pub searched: bool,
    pub results: Vec<SearchResult>,
    /// Query strings: the next page of older results, the downloads of this search.
    pub older: Option<String>,
    pub export: String,
    /// Why the filters were refused, when they were.
    pub problem: Option<String>,
}

/// The form as it was filled, to show it again.
#[derive(Serialize, Default)]
pub struct SearchForm {
    pub q: String,
    pub contact: String,
    pub direction: String,
    pub channel: String,
    pub from: String,
    pub to: String,
}

#[derive(Serialize)]
pub struct SearchResult {
    #[serde(flatten)]
    pub row: MessageRow,
    /// The text around its first match, in pieces; the matches are marked.
    pub segments: Vec<Segment>,
    /// The thread, opened at this message.
    pub in_thread: String,
}

impl SearchResult {
    pub fn new(m: Message, query: &Query, lang: Lang, now: i64) -> SearchResult {
        let at = m.sent_at_ms.unwrap_or(m.received_at_ms);
        // The thread page ending with this message (keyset pages end before a bound).
        let in_thread = format!(
            "{}?before_at={at}&before={}#message-{}",
            thread_href(&m.contact_id),
            m.id.saturating_add(1),
            m.id
        );
        let segments = m
            .text
            .as_deref()
            .map(|t| query.highlight(t, SHOWN_CHARS))
            .unwrap_or_default();
        let mut row = MessageRow::new(m, lang, now);
        row.time = lang.datetime(at);
        row.iso = crate::time::format_rfc3339(at);
        row.ago = lang.ago(now, at);
        SearchResult {
            row,
            segments,
            in_thread,
        }
    }
}
