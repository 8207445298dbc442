//! The JSON API for the team's own software and scripts: stats, the catch-up cursor (with
//! long-poll), health, the setup checklist and its buttons, delivery status and replay,
//! replies through Chatrace, and Prometheus metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::checklist::{self, Action};
use crate::error::Result;
use crate::http::{Request, Response};
use crate::{forward, reply};

use super::state::Context;
use crate::text::form_field;

/// Below this much free disk, webhooks cannot be stored reliably (each may need a few
/// hundred KiB of write-ahead log): the relay reports itself unhealthy.
const MIN_FREE_BYTES: u64 = 1024 * 1024;
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// `POST /api/setup/<action>` runs a checklist button, e.g. `/api/setup/recheck_token`.
/// Longest `wait=` a cursor request may ask for, in seconds; more is refused with 400, so a
/// client learns the limit instead of silently waiting less than it asked.
pub const MAX_WAIT_SECS: u64 = 30;
/// A waiting request re-reads the cursor this often even without a signal: replies sent
/// from the page are stored outside the writer and do not ring it.
const WAIT_RECHECK: Duration = Duration::from_secs(1);

/// `GET /instagram/stats`.
pub fn stats(cx: &mut Context, _req: &Request) -> Result<Response> {
    Ok(Response::json(
        200,
        &cx.store
            .stats(crate::time::now_ms(), &cx.state.config.time_zone)?,
    ))
}

/// `GET /api/messages?after=ID&limit=N&wait=S`: oldest first; `next_after` is the id to pass
/// next. With `wait`, an empty answer is held up to S seconds until a newer message exists;
/// when too many requests already wait, it answers at once with `Retry-After: 1`.
pub fn messages(cx: &mut Context, req: &Request) -> Result<Response> {
    let after = match number_param(req, "after", 0i64) {
        Ok(n) if n >= 0 => n,
        _ => {
            return Ok(Response::error(
                400,
                "after must be a message id (0 or more)",
            ))
        }
    };
    let limit = match number_param(req, "limit", DEFAULT_LIMIT) {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
        _ => {
            return Ok(Response::error(
                400,
                &format!("limit must be between 1 and {MAX_LIMIT}"),
            ))
        }
    };
    let wait = match number_param(req, "wait", 0u64) {
        Ok(n) if n <= MAX_WAIT_SECS => Duration::from_secs(n),
        _ => {
            return Ok(Response::error(
                400,
                &format!("wait must be between 0 and {MAX_WAIT_SECS} seconds"),
            ))
        }
    };
    let newest = Arc::clone(cx.state.writer.newest());
    // Read before querying, so a message committed in between ends the wait at once.
    let mut seen = newest.get();
    let mut messages = cx.store.messages_after(after, limit)?;
    let mut busy = false;
    if messages.is_empty() && !wait.is_zero() {
        match cx.state.long_polls.take() {
            Some(_slot) => {
                let deadline = Instant::now() + wait;
                while messages.is_empty() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    newest.wait_beyond(seen, left.min(WAIT_RECHECK));
                    seen = newest.get();
                    messages = cx.store.messages_after(after, limit)?;
                }
            }
            None => busy = true,
        }
    }
    let next_after = messages.last().map_or(after, |m| m.id);
    let response = Response::json(
        200,
        &json!({ "messages": messages, "next_after": next_after }),
    );
    Ok(if busy {
        response.with_header("Retry-After", "1")
    } else {
        response
    })
}

fn number_param<T: std::str::FromStr>(
    req: &Request,
    name: &str,
    default: T,
) -> std::result::Result<T, ()> {
    match req.query_param(name) {
        None => Ok(default),
        Some(v) if v.is_empty() => Ok(default),
        Some(v) => v.parse().map_err(|_| ()),
    }
}

/// `GET /healthz`: 200 only when a write can be committed right now and the disk holding
/// the database has room for more than that one small write.
pub fn healthz(cx: &mut Context, _req: &Request) -> Result<Response> {
    let unhealthy = |error: String| {
        Response::json(503, &json!({ "status": "error", "error": error }))
            .with_header("Retry-After", "5")
    };
    if let Err(e) = cx.state.writer.health_check() {
        return Ok(unhealthy(e.to_string()));
    }
    // A tiny write can still fit where a webhook no longer does.
    let room = crate::store::disk_space(&cx.state.config.db).map(|(free, _)| free);
    if let Some(free) = room.filter(|free| *free < MIN_FREE_BYTES) {
        return Ok(unhealthy(format!(
            "the disk holding the database is full ({free} bytes free)"
        )));
    }
    Ok(Response::json(200, &json!({ "status": "ok" })))
}

/// `GET /api/setup`: the same checklist the page shows, as JSON.
pub fn setup(cx: &mut Context, req: &Request) -> Result<Response> {
    Ok(Response::json(
        200,
        &checklist::checklist(&cx.relay(), req.lang())?,
    ))
}

/// `POST /api/setup/<action>`: runs a checklist button; `{"ok":true,"action":..,"message":..}`.
pub fn setup_action(cx: &mut Context, req: &Request) -> Result<Response> {
    let name = req
        .path
        .strip_prefix(crate::paths::API_SETUP_ACTION)
        .unwrap_or("");
    let Some(action) = Action::from_name(name) else {
        return Ok(Response::error(
            404,
            "unknown setup action; see the actions the rows of GET /api/setup offer",
        ));
    };
    let form = req.form();
    let message =
        checklist::run_action(&cx.relay(), action, form_field(&form, "value"), req.lang())?;
    Ok(Response::json(
        200,
        &json!({ "ok": true, "action": action.name(), "message": message }),
    ))
}

/// `GET /api/deliveries`: per-target pending, delivered, failed, oldest pending, last error.
pub fn deliveries(cx: &mut Context, _req: &Request) -> Result<Response> {
    let targets = forward::target_status(&cx.store, &cx.state.config.forward_urls)?;
    Ok(Response::json(200, &json!({ "targets": targets })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    id: Option<i64>,
    #[serde(default)]
    failed: bool,
    since: Option<String>,
    #[serde(default)]
    resend_delivered: bool,
}

/// `POST /api/deliveries/replay` with `{"id":N}`, `{"failed":true,"since":"RFC3339"?}` or
/// `{"since":"RFC3339","resend_delivered":false?}`: queues and answers how many.
pub fn replay(cx: &mut Context, req: &Request) -> Result<Response> {
    let body: ReplayBody = match serde_json::from_slice(&req.body) {
        Ok(b) => b,
        Err(e) => return Ok(Response::error(400, &format!("body: {e}"))),
    };
    let which = match forward::requeue_from(
        body.id,
        body.failed,
        body.since.as_deref(),
        body.resend_delivered,
    ) {
        Ok(which) => which,
        Err(reason) => return Ok(Response::error(400, &reason)),
    };
    let targets = &cx.state.config.forward_urls;
    let requeued = forward::replay(&cx.store, &cx.state.forward_bell, which, targets)?;
    if let (Some(id), 0) = (body.id, requeued) {
        return Ok(Response::error(404, &format!("no delivery with id {id}")));
    }
    Ok(Response::json(
        200,
        &json!({ "ok": true, "requeued": requeued }),
    ))
}

/// `POST /api/messages/reply` with `{"contact_id","text"}`.
pub fn send_reply(cx: &mut Context, req: &Request) -> Result<Response> {
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => return Ok(Response::error(400, &format!("body is not JSON: {e}"))),
    };
    // Chatrace ids are digits; a script may well send them as a JSON number.
    let contact_id = match &body["contact_id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Ok(Response::error(400, "contact_id is missing")),
    };
    let Some(text) = body["text"].as_str() else {
        return Ok(Response::error(400, "text is missing"));
    };
    Ok(
        match reply::send(
            &cx.chatrace(),
            &cx.store,
            &cx.state.metrics,
            &contact_id,
            text,
        ) {
            Ok(sent) => Response::json(200, &json!({ "ok": true, "id": sent.message_id })),
            Err(e) => {
                let mut answer = json!({ "ok": false, "error": e.to_string() });
                if let reply::ReplyError::Chatrace { status, message } = &e {
                    answer["chatrace_status"] = json!(status);
                    answer["chatrace_error"] = json!(message);
                }
                Response::json(e.http_status(), &answer)
            }
        },
    )
}

/// `GET /metrics` in Prometheus text format.
pub fn metrics(cx: &mut Context, _req: &Request) -> Result<Response> {
    let text = cx
        .state
        .metrics
        .render(&cx.store, &cx.state.config.db, crate::time::now_ms())?;
    Ok(Response {
        status: 200,
        headers: vec![(
            "Content-Type",
            "text/plain; version=0.0.4; charset=utf-8".into(),
        )],
        body: text.into_bytes(),
    })
}
