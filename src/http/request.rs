//! Plain HTTP request and response types, free of tiny_http, so handlers are plain functions
//! and the server alone knows the HTTP library; and the answers every handler builds the
//! same way: JSON, HTML, redirects, static files, cookies.

use std::panic::{catch_unwind, AssertUnwindSafe};

use log::{error, warn};
use serde::Serialize;

use crate::i18n::Lang;
use crate::text::{form_field, header, parse_form};

/// The language cookie's name; set by the page's language switch.
pub const LANG_COOKIE: &str = "lang";

/// A request with its body read.
pub struct Request {
    pub method: String,
    pub path: String,
    /// The raw query string, without '?'.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Who sent it: the peer, or the client named by a reverse proxy on loopback.
    pub client: Option<String>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        form_field(&parse_form(&self.query), name).map(str::to_string)
    }

    /// The body as a submitted HTML form.
    pub fn form(&self) -> Vec<(String, String)> {
        parse_form(&String::from_utf8_lossy(&self.body))
    }

    /// A cookie's value from the request's Cookie header(s).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.trim().to_string())
    }

    /// The reader's language: `?lang=` (scripts), then the page's language switch (a
    /// cookie), then the browser's Accept-Language, then English.
    pub fn lang(&self) -> Lang {
        self.query_param("lang")
            .and_then(|code| Lang::from_code(&code))
            .or_else(|| self.cookie(LANG_COOKIE).and_then(|c| Lang::from_code(&c)))
            .unwrap_or_else(|| {
                Lang::from_accept_language(self.header("Accept-Language").unwrap_or(""))
            })
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &impl Serialize) -> Response {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Response {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body,
        }
    }

    /// `{"ok":false,"error":"..."}`, the shape every JSON error answer has.
    pub fn error(status: u16, message: &str) -> Response {
        Response::json(
            status,
            &serde_json::json!({ "ok": false, "error": message }),
        )
    }

    /// An HTML page. Pages show secrets and messages, so no cache may keep them.
    pub fn html(status: u16, body: String) -> Response {
        Response {
            status,
            headers: vec![
                ("Content-Type", "text/html; charset=utf-8".into()),
                ("Cache-Control", "no-store".into()),
            ],
            body: body.into_bytes(),
        }
    }

    /// 303 to a page of the relay.
    pub fn see_other(location: &str) -> Response {
        Response {
            status: 303,
            headers: vec![
                ("Location", location.to_string()),
                ("Cache-Control", "no-store".into()),
            ],
            body: Vec::new(),
        }
    }

    /// A file compiled into the binary. Pages link it with the version in the query, so a
    /// new release is fetched anew and a day of caching is safe.
    pub fn asset(content_type: &'static str, body: &'static str) -> Response {
        Response {
            status: 200,
            headers: vec![
                ("Content-Type", content_type.into()),
                ("Cache-Control", "public, max-age=86400".into()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn text(status: u16, text: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    pub fn internal_error() -> Response {
        Response::error(500, "internal error; see the relay's log")
    }

    /// The answer to a request whose outcome could not be known: the client may retry.
    pub fn unavailable(message: &str) -> Response {
        Response::error(503, message).with_header("Retry-After", "5")
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// What a cookie is for, which decides who may send and read it.
#[derive(Clone, Copy)]
pub enum Cookie {
    /// Sessions and sign-in tokens: sent only from the relay's own pages, never readable by
    /// script.
    Private,
    /// A preference (the language): also sent when a link from elsewhere opens the page.
    Preference,
}

/// A `Set-Cookie` value for the whole site; `max_age` None lasts the browser session, and
/// `Some(0)` deletes the cookie.
pub fn cookie(name: &str, value: &str, kind: Cookie, secure: bool, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/");
    c.push_str(match kind {
        Cookie::Private => "; HttpOnly; SameSite=Strict",
        Cookie::Preference => "; SameSite=Lax",
    });
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// What a handler gives back: an answer now, or a way to answer later from another thread
/// (a webhook is answered only after its batch is committed).
pub enum Handled {
    Now(Response),
    Later(Box<dyn FnOnce(Responder) + Send>),
}

/// The way back to a client whose answer is sent later. Whatever happens, the client gets
/// an answer: dropped unused (the work was lost or panicked), it answers 503.
pub struct Responder {
    send: Option<Box<dyn FnOnce(Response) + Send>>,
}

impl Responder {
    pub fn new(send: Box<dyn FnOnce(Response) + Send>) -> Responder {
        Responder { send: Some(send) }
    }

    /// The same responder, with `then` run as the answer goes out.
    pub fn after(mut self, then: impl FnOnce() + Send + 'static) -> Responder {
        let send = self.send.take();
        Responder {
            send: send.map(|send| -> Box<dyn FnOnce(Response) + Send> {
                Box::new(move |response| {
                    then();
                    send(response);
                })
            }),
        }
    }

    /// Builds the answer and sends it; a panic while building it sends a 500 instead.
    pub fn answer(mut self, build: impl FnOnce() -> Response) {
        let response = catch_unwind(AssertUnwindSafe(build)).unwrap_or_else(|_| {
            error!("building a deferred answer panicked");
            Response::internal_error()
        });
        if let Some(send) = self.send.take() {
            send(response);
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(send) = self.send.take() {
            warn!("a deferred answer was dropped before it was known; answered 503");
            send(Response::unavailable(
                "could not store the request; try again later",
            ));
        }
    }
}
