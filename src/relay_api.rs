//! The admin JSON endpoints for relaying onward: delivery status and replay, replies through
//! Chatrace, and Prometheus metrics. All need the admin token as a Bearer header, which a
//! browser never sends on its own, so they are safe from cross-site requests.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{bearer_ok, unauthorized};
use crate::error::Result;
use crate::forward;
use crate::http::{Request, Response, Worker};
use crate::reply;

/// `GET /api/deliveries`: per-target pending, delivered, failed, oldest pending, last error.
pub fn deliveries(w: &mut Worker, req: &Request) -> Result<Response> {
    if !bearer_ok(w, req) {
        return Ok(unauthorized());
    }
    let targets = forward::target_status(&w.app, &w.store)?;
    Ok(Response::json(200, &json!({ "targets": targets })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    id: Option<i64>,
    #[serde(default)]
    failed: bool,
    since: Option<String>,
}

/// `POST /api/deliveries/replay` with `{"id":N}`, `{"failed":true,"since":"RFC3339"?}` or
/// `{"since":"RFC3339"}`: re-queues and answers how many.
pub fn replay(w: &mut Worker, req: &Request) -> Result<Response> {
    if !bearer_ok(w, req) {
        return Ok(unauthorized());
    }
    let body: ReplayBody = match serde_json::from_slice(&req.body) {
        Ok(b) => b,
        Err(e) => return Ok(Response::error(400, &format!("body: {e}"))),
    };
    let which = match forward::requeue_from(body.id, body.failed, body.since.as_deref()) {
        Ok(which) => which,
        Err(reason) => return Ok(Response::error(400, &reason)),
    };
    let requeued = forward::replay(&w.app, &w.store, which)?;
    if let (Some(id), 0) = (body.id, requeued) {
        return Ok(Response::error(404, &format!("no delivery with id {id}")));
    }
    Ok(Response::json(
        200,
        &json!({ "ok": true, "requeued": requeued }),
    ))
}

/// `POST /api/messages/reply` with `{"contact_id","text"}`.
pub fn send_reply(w: &mut Worker, req: &Request) -> Result<Response> {
    if !bearer_ok(w, req) {
        return Ok(unauthorized());
    }
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
    Ok(match reply::send(&w.app, &w.store, &contact_id, text) {
        Ok(sent) => Response::json(200, &json!({ "ok": true, "id": sent.message_id })),
        Err(e) => {
            let mut answer = json!({ "ok": false, "error": e.to_string() });
            if let reply::ReplyError::Chatrace { status, message } = &e {
                answer["chatrace_status"] = json!(status);
                answer["chatrace_error"] = json!(message);
            }
            Response::json(e.http_status(), &answer)
        }
    })
}

/// `GET /metrics` in Prometheus text format.
pub fn metrics(w: &mut Worker, req: &Request) -> Result<Response> {
    if !bearer_ok(w, req) {
        return Ok(unauthorized());
    }
    let text = w
        .app
        .metrics
        .render(&w.store, &w.app.config.db, crate::time::now_ms())?;
    Ok(Response {
        status: 200,
        headers: vec![(
            "Content-Type",
            "text/plain; version=0.0.4; charset=utf-8".into(),
        )],
        body: text.into_bytes(),
    })
}
