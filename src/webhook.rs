//! The webhook endpoint: secret check, parsing, storing, and the answer Chatrace reads.

use std::sync::Arc;
use std::time::Instant;

use log::{info, warn};
use serde_json::json;

use crate::error::Result;
use crate::http::{AfterCommit, Reply, Request, Response, Worker};
use crate::payload;
use crate::secret::constant_time_eq;
use crate::store::{IngestOutcome, IngestRequest, Rejection};
use crate::time::now_ms;

/// Header a sender uses to mark a request as a test: stored and shown, never counted.
pub const TEST_HEADER: &str = "X-Relay-Test";

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

enum SecretCheck {
    Valid,
    Missing,
    Wrong,
}

fn check_secret(w: &Worker, req: &Request) -> SecretCheck {
    let presented = req
        .header("X-Webhook-Secret")
        .map(str::to_string)
        .or_else(|| req.query_param("secret"));
    match presented {
        None => SecretCheck::Missing,
        Some(p) if constant_time_eq(p.trim().as_bytes(), w.app.webhook_secret.as_bytes()) => {
            SecretCheck::Valid
        }
        Some(_) => SecretCheck::Wrong,
    }
}

/// `POST /instagram/webhook`. The ack latency is measured up to the answer, which for a
/// stored webhook is built after COMMIT.
pub fn receive(w: &mut Worker, req: &Request) -> Reply {
    let started = Instant::now();
    match receive_post(w, req) {
        Reply::Now(response) => {
            w.app.metrics.webhook_acked(started.elapsed());
            Reply::Now(response)
        }
        Reply::AfterCommit(mut deferred) => {
            let metrics = Arc::clone(&w.app.metrics);
            let answer = deferred.answer;
            deferred.answer = Box::new(move |result| {
                let response = answer(result);
                metrics.webhook_acked(started.elapsed());
                response
            });
            Reply::AfterCommit(deferred)
        }
    }
}

fn receive_post(w: &mut Worker, req: &Request) -> Reply {
    match check_secret(w, req) {
        SecretCheck::Valid => store(w, req),
        SecretCheck::Missing => Reply::Now(unauthorized(
            w,
            req,
            "missing_secret",
            "no secret: send the header X-Webhook-Secret (or ?secret= in the URL)",
        )),
        SecretCheck::Wrong => Reply::Now(unauthorized(
            w,
            req,
            "bad_secret",
            "wrong secret: copy it again from the relay's setup page",
        )),
    }
}

/// `GET /instagram/webhook`: Meta's verification handshake, a Chatrace request that carries
/// its fields in the query string, or a person checking that the endpoint is up.
pub fn receive_get(w: &mut Worker, req: &Request) -> Reply {
    let params = payload::parse_form(&req.query);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(nonce) = param(crate::probe::PARAM) {
        return Reply::Now(Response::text(200, &w.app.probe.answer(nonce)));
    }
    if let Some(mode) = param("hub.mode") {
        let token = param("hub.verify_token").unwrap_or("");
        return Reply::Now(
            if mode == "subscribe"
                && constant_time_eq(token.as_bytes(), w.app.webhook_secret.as_bytes())
            {
                Response::text(200, param("hub.challenge").unwrap_or(""))
            } else {
                log_rejection(
                    w,
                    req,
                    "bad_secret",
                    "Meta verification with a wrong verify token".into(),
                );
                Response::text(
                    403,
                    "verify token does not match the relay's webhook secret",
                )
            },
        );
    }
    let has_fields = params.iter().any(|(k, _)| k != "secret");
    Reply::Now(match check_secret(w, req) {
        SecretCheck::Valid if has_fields => return store(w, req),
        SecretCheck::Valid => Response::text(200, "chatrace-relay webhook endpoint is up and the secret is right. Chatrace should POST here.\n"),
        SecretCheck::Missing if !has_fields => Response::text(200, "chatrace-relay webhook endpoint is up. Chatrace should POST here with the header X-Webhook-Secret.\n"),
        SecretCheck::Missing => unauthorized(w, req, "missing_secret", "no secret: send the header X-Webhook-Secret (or ?secret= in the URL)"),
        SecretCheck::Wrong => unauthorized(w, req, "bad_secret", "wrong secret: copy it again from the relay's setup page"),
    })
}

/// Any unknown path. A POST there is logged: it is how a user learns that Chatrace calls the
/// relay with a wrong URL. Other methods are mostly scanners and are not worth a row.
pub fn not_found(w: &mut Worker, req: &Request) -> Response {
    if req.method == "POST" {
        log_rejection(
            w,
            req,
            "wrong_path",
            format!(
                "POST to {}; the webhook path is /instagram/webhook",
                req.path
            ),
        );
    }
    Response::error(404, "not found")
}

fn unauthorized(w: &Worker, req: &Request, reason: &'static str, message: &str) -> Response {
    log_rejection(w, req, reason, message.to_string());
    Response::error(401, message)
}

/// The answer to a webhook that was not committed: Chatrace retries it later.
pub fn not_stored() -> Response {
    Response::error(503, "could not store the request; try again later")
        .with_header("Retry-After", "5")
}

/// Parses a webhook and hands it to the writer; the answer is built after COMMIT.
fn store(w: &mut Worker, req: &Request) -> Reply {
    let content_type = req.header("Content-Type");
    let parsed = payload::parse(&payload::Request {
        content_type,
        body: &req.body,
        query: &req.query,
    });
    let parsed = match parsed {
        Ok(p) => p,
        Err(payload::Malformed(reason)) => {
            log_rejection(w, req, "malformed", reason.clone());
            return Reply::Now(Response::error(400, &format!("malformed body: {reason}")));
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
    Reply::AfterCommit(AfterCommit {
        ingest: Box::new(ingest),
        answer: Box::new(move |result| answer(result, size, client.as_deref(), flag.as_ref())),
    })
}

/// The answer to a webhook once its batch has committed or failed.
fn answer(
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
            not_stored()
        }
    }
}

pub fn log_rejection(w: &Worker, req: &Request, reason: &'static str, detail: String) {
    info!(
        "webhook rejected reason={reason} method={} path={} size={} from={}",
        req.method,
        req.path,
        req.body.len(),
        req.client.as_deref().unwrap_or("-")
    );
    let query = redact_query(&req.query);
    let mut excerpt = payload::excerpt(&req.body, EXCERPT_CHARS);
    if excerpt.is_empty() && !query.is_empty() {
        excerpt = format!("?{}", payload::excerpt(query.as_bytes(), EXCERPT_CHARS));
    }
    w.app.writer.reject(Rejection {
        received_at_ms: now_ms(),
        reason,
        detail,
        method: req.method.clone(),
        path: req.path.clone(),
        remote_addr: req.client.clone(),
        excerpt,
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
            if SECRET_PARAMS.contains(&name) {
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
        let headers = vec![
            ("X-Webhook-Secret".to_string(), "abc".to_string()),
            ("Content-Type".to_string(), "application/json".to_string()),
        ];
        let stored = redact_headers(&headers);
        assert!(!stored.contains("abc"));
        assert!(stored.contains("application/json"));
    }
}
