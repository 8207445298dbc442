//! The JSON API for the team's own software: stats, the catch-up cursor (with long-poll),
//! health, and the setup checklist with its buttons for scripts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::error::Result;
use crate::http::{Request, Response, Worker};
use crate::i18n::Lang;
use crate::secret::constant_time_eq;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// `POST /api/setup/<action>` runs a checklist button, e.g. `/api/setup/recheck_token`.
pub const SETUP_ACTION_PREFIX: &str = "/api/setup/";
/// Longest `wait=` a cursor request may ask for, in seconds; more is refused with 400, so a
/// client learns the limit instead of silently waiting less than it asked.
pub const MAX_WAIT_SECS: u64 = 30;
/// A waiting request re-reads the cursor this often even without a signal: replies sent
/// from the page are stored outside the writer and do not ring it.
const WAIT_RECHECK: Duration = Duration::from_secs(1);

/// Counts the workers held by long-polls. A quarter of the workers at most, and never the
/// last one, so waiting readers cannot starve the webhook.
pub struct WaitSlots {
    in_use: AtomicUsize,
    max: usize,
}

impl WaitSlots {
    pub fn for_workers(workers: usize) -> WaitSlots {
        let max = if workers < 2 { 0 } else { (workers / 4).max(1) };
        WaitSlots {
            in_use: AtomicUsize::new(0),
            max,
        }
    }

    fn take(&self) -> Option<WaitSlot<'_>> {
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| WaitSlot(&self.in_use))
    }
}

/// A taken slot; given back when the request ends, however it ends.
struct WaitSlot<'a>(&'a AtomicUsize);

impl Drop for WaitSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The admin token as `Authorization: Bearer <token>`.
pub fn bearer_ok(w: &Worker, req: &Request) -> bool {
    req.header("Authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.trim().as_bytes(), w.app.admin_token.as_bytes()))
}

pub fn unauthorized() -> Response {
    Response::error(
        401,
        "send the admin token as Authorization: Bearer <token> (see `chatrace-relay admin-token`)",
    )
    .with_header("WWW-Authenticate", "Bearer")
}

/// `GET /instagram/stats`.
pub fn stats(w: &mut Worker, req: &Request) -> Result<Response> {
    if !bearer_ok(w, req) {
        return Ok(unauthorized());
    }
    Ok(Response::json(200, &w.store.stats(crate::time::now_ms())?))
}

/// `GET /api/messages?after=ID&limit=N&wait=S`: oldest first; `next_after` is the id to pass
/// next. With `wait`, an empty answer is held up to S seconds until a newer message exists;
/// when too many requests already wait, it answers at once with `Retry-After: 1`.
pub fn messages(w: &mut Worker, req: &Request) -> Result<Response> {
    if !bearer_ok(w, req) {
        return Ok(unauthorized());
    }
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
    let newest = Arc::clone(w.app.writer.newest());
    // Read before querying, so a message committed in between ends the wait at once.
    let mut seen = newest.get();
    let mut messages = w.store.messages_after(after, limit)?;
    let mut busy = false;
    if messages.is_empty() && !wait.is_zero() {
        match w.app.long_polls.take() {
            Some(_slot) => {
                let deadline = Instant::now() + wait;
                while messages.is_empty() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    newest.wait_beyond(seen, left.min(WAIT_RECHECK));
                    seen = newest.get();
                    messages = w.store.messages_after(after, limit)?;
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

/// `GET /healthz`: 200 only when a write can be committed right now.
pub fn healthz(w: &mut Worker) -> Response {
    match w.app.writer.probe() {
        Ok(()) => Response::json(200, &json!({ "status": "ok" })),
        Err(e) => Response::json(503, &json!({ "status": "error", "error": e.to_string() }))
            .with_header("Retry-After", "5"),
    }
}

/// `GET /api/setup`: the same checklist the page shows, as JSON.
pub fn setup(w: &mut Worker, req: &Request) -> Result<Response> {
    if !bearer_ok(w, req) {
        return Ok(unauthorized());
    }
    let lang = request_lang(req);
    Ok(Response::json(200, &crate::setup::checklist(w, lang)?))
}

/// `POST /api/setup/<action>`: runs a checklist button; `{"ok":true,"action":..,"message":..}`.
pub fn setup_action(w: &mut Worker, req: &Request) -> Result<Response> {
    if !bearer_ok(w, req) {
        return Ok(unauthorized());
    }
    let name = req.path.strip_prefix(SETUP_ACTION_PREFIX).unwrap_or("");
    let Some(action) = crate::setup::Action::from_name(name) else {
        return Ok(Response::error(
            404,
            "unknown setup action; use recheck_token, send_test or replay_failed",
        ));
    };
    let message = crate::setup::run_action(w, action, request_lang(req))?;
    Ok(Response::json(
        200,
        &json!({ "ok": true, "action": action.name(), "message": message }),
    ))
}

/// `?lang=ru` first, then Accept-Language, then English.
fn request_lang(req: &Request) -> Lang {
    req.query_param("lang")
        .and_then(|code| Lang::from_code(&code))
        .unwrap_or_else(|| Lang::from_accept_language(req.header("Accept-Language").unwrap_or("")))
}
