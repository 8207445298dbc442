//! The webhook endpoint: parsing, storing, and the answer Chatrace reads; Meta's handshake;
//! and the log of requests turned away, which is how a user learns that Chatrace calls but
//! is misconfigured.

use log::{info, warn};
use serde_json::json;

use crate::error::Result;
use crate::outcome::{Flag, Refusal};
use crate::payload;
use crate::sample::TEST_HEADER;
use crate::secret::constant_time_eq;
use crate::store::{IngestOutcome, IngestRequest, Rejection};
use crate::text::{decode_component, form_field, log_safe, parse_form, request_excerpt};
use crate::time::now_ms;

use super::state::Context;
use crate::http::{Handled, Request, Response};

/// Headers whose values are secrets and are never stored or shown.
const SECRET_HEADERS: &[&str] = &[
    "x-webhook-secret",
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-access-token",
];
/// Query parameters that carry secrets.
const SECRET_PARAMS: &[&str] = &["secret", "hub.verify_token"];

/// How many characters of a bad request are kept to show the user.
const EXCERPT_CHARS: usize = 300;

/// The secret the caller presented: the header, else `?secret=`.
pub fn presented_secret(req: &Request) -> Option<String> {
    req.header("X-Webhook-Secret")
        .map(str::to_string)
        .or_else(|| req.query_param("secret"))
}

/// Whether a GET carries fields other than the secret (a Chatrace request in the query).
pub fn has_fields(req: &Request) -> bool {
    parse_form(&req.query).iter().any(|(k, _)| k != "secret")
}

/// A GET that is Meta's verification handshake or the relay's own self-probe.
pub fn handshake(req: &Request) -> bool {
    let params = parse_form(&req.query);
    form_field(&params, crate::probe::PARAM).is_some() || form_field(&params, "hub.mode").is_some()
}

/// The answer to `handshake`: the self-probe's nonce, or Meta's challenge when its verify
/// token is the webhook secret (the handshake's own proof).
pub fn verify(cx: &mut Context, req: &Request) -> Result<Response> {
    let params = parse_form(&req.query);
    let param = |name: &str| form_field(&params, name);
    if let Some(nonce) = param(crate::probe::PARAM) {
        return Ok(Response::text(200, &cx.state.probe.answer(nonce)));
    }
    let token = param("hub.verify_token").unwrap_or("");
    if param("hub.mode") == Some("subscribe")
        && constant_time_eq(token.as_bytes(), cx.state.webhook_secret.as_bytes())
    {
        return Ok(Response::text(200, param("hub.challenge").unwrap_or("")));
    }
    let refusal = Refusal::BadVerifyToken;
    log_rejection(
        cx,
        req,
        refusal,
        "Meta verification with a wrong verify token".into(),
    );
    Ok(Response::text(
        refusal.status(),
        "verify token does not match the relay's webhook secret",
    ))
}

/// A person opening the webhook URL in a browser.
pub fn endpoint_up(_cx: &mut Context, _req: &Request) -> Result<Response> {
    Ok(Response::text(200, "chatrace-relay webhook endpoint is up. Chatrace should POST here with the header X-Webhook-Secret.\n"))
}

/// The same, with the right secret.
pub fn secret_right(_cx: &mut Context, _req: &Request) -> Result<Response> {
    Ok(Response::text(200, "chatrace-relay webhook endpoint is up and the secret is right. Chatrace should POST here.\n"))
}

/// A POST the relay does not take there: `WrongPath`, or `WrongMethod` on a known path.
/// Advice for the setup page only when it is Chatrace's: it carries the right secret, or a
/// body the webhook would read a message from. Anything else is an internet scanner
/// (`POST /wp-login.php`): counted as a stray, which would otherwise keep the checklist
/// yellow for ever.
pub fn log_wrong_path(cx: &Context, req: &Request, refusal: Refusal) {
    let secret_right = presented_secret(req)
        .is_some_and(|p| constant_time_eq(p.as_bytes(), cx.state.webhook_secret.as_bytes()));
    let chatrace_like = || {
        payload::parse(&payload::Request {
            content_type: req.header("Content-Type"),
            body: &req.body,
            query: &req.query,
        })
        .is_ok_and(|p| {
            !p.messages.is_empty() || matches!(p.flag, Some(Flag::UnfilledPlaceholders(_)))
        })
    };
    let refusal = if secret_right || chatrace_like() {
        refusal
    } else {
        refusal.by_a_stranger()
    };
    log_rejection(
        cx,
        req,
        refusal,
        format!(
            "POST to {}; the webhook path is {}",
            req.path,
            crate::paths::WEBHOOK
        ),
    );
}

/// A 401 for a webhook without the right secret, logged for the setup page.
pub fn refuse(cx: &Context, req: &Request, refusal: Refusal, message: &str) -> Response {
    log_rejection(cx, req, refusal, message.to_string());
    Response::error(refusal.status(), message)
}

/// Parses a webhook and hands it to the writer; the answer is built after COMMIT.
pub fn receive(cx: &mut Context, req: &Request) -> Handled {
    // Held until the messages are committed and answered: the memory of a big body lasts
    // that long.
    let Some(permit) = cx.state.big_bodies.enter(req.body.len()) else {
        warn!(
            "too many big webhook bodies at once; answered 503 (size={})",
            req.body.len()
        );
        return Handled::Now(Response::unavailable(
            "too many large requests at once; try again later",
        ));
    };
    let content_type = req.header("Content-Type");
    let parsed = payload::parse(&payload::Request {
        content_type,
        body: &req.body,
        query: &req.query,
    });
    let parsed = match parsed {
        Ok(p) => p,
        Err(payload::Malformed(reason)) => {
            let refusal = Refusal::Malformed;
            log_rejection(cx, req, refusal, reason.clone());
            return Handled::Now(Response::error(
                refusal.status(),
                &format!("malformed body: {reason}"),
            ));
        }
    };
    let size = req.body.len();
    let flag = parsed.flag.clone();
    let ingest = IngestRequest {
        received_at_ms: now_ms(),
        method: req.method.clone(),
        path: req.path.clone(),
        query: redact_query(&req.query),
        remote_addr: req.client.clone(),
        content_type: content_type.map(str::to_string),
        headers: redact_headers(&req.headers),
        body: req.body.clone(),
        messages: parsed.messages,
        flag: parsed.flag,
        is_test: req.header(TEST_HEADER).is_some(),
    };
    let client = req.client.clone();
    let writer = cx.state.writer.clone();
    Handled::Later(Box::new(move |responder| {
        writer.ingest(
            ingest,
            Box::new(move |result| {
                responder.answer(|| response_for(result, size, client.as_deref(), flag.as_ref()));
                drop(permit);
            }),
        );
    }))
}

/// The answer to a webhook once its batch has committed or failed.
fn response_for(
    result: Result<IngestOutcome>,
    size: usize,
    client: Option<&str>,
    flag: Option<&payload::Flag>,
) -> Response {
    match result {
        Ok(outcome) => {
            info!(
                "webhook stored={} duplicates={} size={size} from={}{}",
                outcome.stored_ids.len(),
                outcome.duplicates,
                client.unwrap_or("-"),
                flag.as_ref()
                    .map(|f| format!(" flag={}", f.code()))
                    .unwrap_or_default(),
            );
            let mut answer = json!({
                "ok": true,
                "stored": outcome.stored_ids.len(),
                "duplicates": outcome.duplicates,
                "ids": outcome.stored_ids,
                "request_id": outcome.request_id,
            });
            if let Some(flag) = flag {
                answer["warning"] = json!(flag.code());
                answer["detail"] = json!(flag.describe());
            }
            Response::json(200, &answer)
        }
        Err(e) => {
            warn!("webhook not stored ({e}); answered 503");
            Response::unavailable("could not store the request; try again later")
        }
    }
}

pub fn log_rejection(cx: &Context, req: &Request, refusal: Refusal, detail: String) {
    info!(
        "webhook rejected reason={} method={} path={} size={} from={}",
        refusal.code(),
        log_safe(&req.method),
        log_safe(&req.path),
        req.body.len(),
        req.client.as_deref().unwrap_or("-")
    );
    let shown = request_excerpt(&req.body, &redact_query(&req.query), EXCERPT_CHARS);
    cx.state.writer.reject(Rejection {
        received_at_ms: now_ms(),
        refusal,
        detail,
        method: req.method.clone(),
        path: req.path.clone(),
        remote_addr: req.client.clone(),
        excerpt: shown,
    });
}

fn redact_headers(headers: &[(String, String)]) -> String {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| {
            if SECRET_HEADERS.contains(&n.to_ascii_lowercase().as_str()) {
                (n.as_str(), "[redacted]")
            } else {
                (n.as_str(), v.as_str())
            }
        })
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

fn redact_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    query
        .split('&')
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            // Judged by the decoded name: `secre%74=` is `secret=` to every parser.
            if SECRET_PARAMS.contains(&decode_component(name).as_str()) {
                format!("{name}=[redacted]")
            } else {
                pair.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_storage() {
        assert_eq!(
            redact_query("secret=abc&contact_id=1&hub.verify_token=x"),
            "secret=[redacted]&contact_id=1&hub.verify_token=[redacted]"
        );
        assert_eq!(
            redact_query("secre%74=abc&hub%2Everify_token=x&sec+ret=1"),
            "secre%74=[redacted]&hub%2Everify_token=[redacted]&sec+ret=1"
        );
        let headers = vec![
            ("X-Webhook-Secret".to_string(), "abc".to_string()),
            ("Content-Type".to_string(), "application/json".to_string()),
        ];
        let stored = redact_headers(&headers);
        assert!(!stored.contains("abc"));
        assert!(stored.contains("application/json"));
    }
}
