//! The JSON API for the team's own software: stats, the catch-up cursor, health, and the
//! setup checklist with its buttons for scripts.

use serde_json::json;

use crate::error::Result;
use crate::http::{Request, Response, Worker};
use crate::i18n::Lang;
use crate::secret::constant_time_eq;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// `POST /api/setup/<action>` runs a checklist button, e.g. `/api/setup/recheck_token`.
pub const SETUP_ACTION_PREFIX: &str = "/api/setup/";

/// The admin token as `Authorization: Bearer <token>`.
pub fn bearer_ok(w: &Worker, req: &Request) -> bool {
    req.header("Authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.trim().as_bytes(), w.app.admin_token.as_bytes()))
}

fn unauthorized() -> Response {
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

/// `GET /api/messages?after=ID&limit=N`: oldest first; `next_after` is the id to pass next.
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
    let messages = w.store.messages_after(after, limit)?;
    let next_after = messages.last().map_or(after, |m| m.id);
    Ok(Response::json(
        200,
        &json!({ "messages": messages, "next_after": next_after }),
    ))
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
            "unknown setup action; use recheck_token or send_test",
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
