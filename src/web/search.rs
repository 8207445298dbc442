//! Search: `GET /search` (the page), `GET /search/export` (what it found, as a file) and
//! `GET /api/messages?q=` (the same for scripts). Every query is answered: its words are
//! quoted FTS5 strings (`crate::search`), so no input is syntax.

use serde_json::json;

use crate::error::Result;
use crate::http::{Request, Response};
use crate::payload::Direction;
use crate::search::Query;
use crate::store::Found;
use crate::text::percent_encode;
use crate::time::now_ms;

use super::export::{self, Format};
use super::session::Current;
use super::state::Context;
use super::views::search::{SearchForm, SearchPage, SearchResult};
use super::views::{self, Frame};

const PAGE_RESULTS: u32 = 50;
const API_DEFAULT_LIMIT: u32 = 100;
const API_MAX_LIMIT: u32 = 1000;
/// A download holds at most this many matches, newest first.
const EXPORT_MAX: i64 = 10_000;
const DAY_MS: i64 = 86_400_000;

/// For the route table: a cursor request that is a search.
pub fn asked(req: &Request) -> bool {
    req.query_param("q").is_some()
}

/// A request's query and filters: what the store looks for, the form to show again, and
/// the query string that asks for the same search. `Err` says which filter is wrong.
struct Asked {
    query: Query,
    found: Found,
    form: SearchForm,
    again: String,
}

fn asked_for(cx: &Context, req: &Request) -> std::result::Result<Asked, String> {
    let param = |name: &str| {
        req.query_param(name)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let form = SearchForm {
        q: param("q"),
        contact: param("contact"),
        direction: param("direction"),
        channel: param("channel"),
        from: param("from"),
        to: param("to"),
    };
    let direction = match form.direction.as_str() {
        "" => None,
        d => Some(
            d.parse::<Direction>()
                .map_err(|_| "direction must be in or out".to_string())?,
        ),
    };
    let time = |name: &str, value: &str, end: bool| -> std::result::Result<Option<i64>, String> {
        if value.is_empty() {
            return Ok(None);
        }
        // A date is a whole day in the relay's time zone; a time is taken as it is.
        if let Some(start) = cx.state.config.time_zone.day_start(value) {
            return Ok(Some(if end { start + DAY_MS } else { start }));
        }
        crate::time::parse_rfc3339(value)
            .map(Some)
            .ok_or_else(|| format!("{name} must be a date (2026-11-25) or an RFC 3339 time"))
    };
    let query = Query::parse(&form.q);
    let found = Found {
        fts_match: query.fts_match().unwrap_or_default(),
        contact_id: Some(form.contact.clone()).filter(|c| !c.is_empty()),
        direction,
        channel: Some(form.channel.clone()).filter(|c| !c.is_empty()),
        from_ms: time("from", &form.from, false)?,
        until_ms: time("to", &form.to, true)?,
    };
    let again = [
        ("q", &form.q),
        ("contact", &form.contact),
        ("direction", &form.direction),
        ("channel", &form.channel),
        ("from", &form.from),
        ("to", &form.to),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}={}", percent_encode(v)))
    .collect::<Vec<_>>()
    .join("&");
    Ok(Asked {
        query,
        found,
        form,
        again,
    })
}

fn before_param(req: &Request) -> Option<i64> {
    req.query_param("before")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|&id| id > 0)
}

/// `GET /search?q=&contact=&direction=&channel=&from=&to=&before=`.
pub fn page(cx: &mut Context, req: &Request, current: &Current) -> Result<Response> {
    let now = now_ms();
    let lang = req.lang();
    let frame = Frame::new(req, Some(current), "search");
    let asked = match asked_for(cx, req) {
        Ok(asked) => asked,
        Err(problem) => {
            let page = SearchPage {
                frame,
                form: SearchForm::default(),
                searched: false,
                results: Vec::new(),
                older: None,
                export: String::new(),
                problem: Some(problem),
            };
            return Ok(Response::html(
                400,
                views::render("search.html", lang, &page)?,
            ));
        }
    };
    let (messages, more) = if asked.query.is_empty() {
        (Vec::new(), false)
    } else {
        cx.store
            .search(&asked.found, before_param(req), PAGE_RESULTS)?
    };
    let older = messages
        .last()
        .filter(|_| more)
        .map(|m| format!("{}&before={}", asked.again, m.id));
    let page = SearchPage {
        frame,
        searched: !asked.form.q.is_empty(),
        results: messages
            .into_iter()
            .map(|m| SearchResult::new(m, &asked.query, lang, now))
            .collect(),
        older,
        export: asked.again,
        form: asked.form,
        problem: None,
    };
    Ok(Response::html(
        200,
        views::render("search.html", lang, &page)?,
    ))
}

/// `GET /search/export?...&format=csv|jsonl`: the search's matches, newest first, at most
/// `EXPORT_MAX` of them.
pub fn export(cx: &mut Context, req: &Request, _current: &Current) -> Result<Response> {
    let Some(format) = Format::from_query(req) else {
        return Ok(Response::error(400, "format must be csv or jsonl"));
    };
    let asked = match asked_for(cx, req) {
        Ok(asked) => asked,
        Err(problem) => return Ok(Response::error(400, &problem)),
    };
    let mut file = export::File::new(format)?;
    if !asked.query.is_empty() {
        cx.store
            .each_found(&asked.found, None, EXPORT_MAX, |m| file.add(&m))?;
    }
    Ok(file.into_response(&format!("search-{}", export::file_safe(&asked.form.q))))
}

/// `GET /api/messages?q=TEXT&contact=&direction=&channel=&from=&to=&before=ID&limit=N`:
/// `{"messages":[..],"next_before":ID}`, newest first; `next_before` is null on the last
/// page.
pub fn api(cx: &mut Context, req: &Request) -> Result<Response> {
    let asked = match asked_for(cx, req) {
        Ok(asked) => asked,
        Err(problem) => return Ok(Response::error(400, &problem)),
    };
    let limit = match req.query_param("limit").filter(|v| !v.is_empty()) {
        None => API_DEFAULT_LIMIT,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if (1..=API_MAX_LIMIT).contains(&n) => n,
            _ => {
                return Ok(Response::error(
                    400,
                    &format!("limit must be between 1 and {API_MAX_LIMIT}"),
                ))
            }
        },
    };
    let (messages, more) = if asked.query.is_empty() {
        (Vec::new(), false)
    } else {
        cx.store.search(&asked.found, before_param(req), limit)?
    };
    let next_before = messages.last().filter(|_| more).map(|m| m.id);
    Ok(Response::json(
        200,
        &json!({ "messages": messages, "next_before": next_before }),
    ))
}
