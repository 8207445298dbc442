//! A request from tiny_http to its handler: refused at once when its framing or head is
//! wrong or its declared body too big; otherwise its body is read (by a reader thread when
//! it still has to come off the socket, under the body deadline) and checked, and the
//! request handed to the handler and answered.

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;

use log::{error, warn};

use crate::outcome::Refusal;
use crate::text::log_safe;

use super::request::{Handled, Responder, Response};
use super::server::{Handler, ReadBody, Shared};
use super::wire::{convert, refuse_huge, respond, respond_and_close, DRAIN_LIMIT};

/// The request line and headers together may not exceed this: they are kept with every
/// stored request, and tiny_http itself sets no limit.
const MAX_HEAD: usize = 64 * 1024;
/// Bodies read at once by reader threads; past this a request is answered 503 at once.
const MAX_READERS: usize = 512;
/// A reader thread only reads into a buffer: a small stack is plenty.
const READER_STACK: usize = 64 * 1024;

/// A request as tiny_http hands it over: refused at once when its framing or size is
/// wrong; otherwise its body is read, here when tiny_http already holds it, else by a
/// reader thread, so a client sending its body slowly never holds a worker.
pub(super) fn accept<H: Handler>(
    handler: &mut H,
    shared: &Arc<Shared>,
    mut raw: tiny_http::Request,
) {
    let port = shared.port;
    shared.served(raw.remote_addr().copied());
    if let Some(problem) = framing_problem(&raw) {
        // Where a proxy in front and tiny_http could disagree on where this body ends, what
        // tiny_http would read next may be a request hidden in it: nothing more is read.
        let refusal = Refusal::BadFraming;
        handler.refused(&convert(&raw, Vec::new()), refusal, problem.to_string());
        respond_and_close(raw, Response::error(refusal.status(), problem), port);
        return;
    }
    let head = raw.url().len()
        + raw
            .headers()
            .iter()
            .map(|h| h.field.as_str().as_str().len() + h.value.as_str().len() + 4)
            .sum::<usize>();
    if head > MAX_HEAD {
        let detail = format!("request line and headers larger than {MAX_HEAD} bytes");
        let refusal = Refusal::HeadTooLarge;
        handler.refused(&convert(&raw, Vec::new()), refusal, detail.clone());
        respond_and_close(raw, Response::error(refusal.status(), &detail), port);
        return;
    }
    let max_body = shared.limits.max_body;
    let declared = raw.body_length().unwrap_or(0);
    if declared > max_body {
        let response = too_large(handler, &raw, max_body);
        if declared > DRAIN_LIMIT {
            refuse_huge(raw, response);
        } else {
            respond(raw, response);
        }
        return;
    }
    if body_in_memory(&raw) {
        let mut body = Vec::new();
        let read = raw.as_reader().read_to_end(&mut body);
        finish(
            handler,
            shared,
            ReadBody {
                raw,
                body,
                read,
                overdue: false,
            },
        );
        return;
    }
    use std::sync::atomic::Ordering;
    if shared.readers.fetch_add(1, Ordering::AcqRel) >= MAX_READERS {
        shared.readers.fetch_sub(1, Ordering::AcqRel);
        warn!("{MAX_READERS} request bodies are being read already; answered 503");
        respond_and_close(
            raw,
            Response::unavailable("too many requests are sending their body; try again later"),
            port,
        );
        return;
    }
    let reader_shared = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("body-reader".into())
        .stack_size(READER_STACK)
        .spawn(move || {
            let done = read_body(&reader_shared, raw);
            let _ = reader_shared.ready_tx.send(done);
            reader_shared.readers.fetch_sub(1, Ordering::AcqRel);
        });
    if let Err(e) = spawned {
        // The request went with the closure and is answered 500 as it drops.
        shared.readers.fetch_sub(1, Ordering::AcqRel);
        error!("could not start a thread to read a request body: {e}");
    }
}

/// Whether tiny_http already read the body into memory: it does for a Content-Length of
/// at most 1 KiB (and none), unless the client waits for `100 Continue` or upgrades.
fn body_in_memory(raw: &tiny_http::Request) -> bool {
    let connection = header_values(raw, "Connection")
        .join(",")
        .to_ascii_lowercase();
    raw.body_length().is_none_or(|n| n <= 1024)
        && header_values(raw, "Transfer-Encoding").is_empty()
        && header_values(raw, "Expect").is_empty()
        && !connection.contains("upgrade")
}

/// Reads a body off the socket, under the deadline of `Shared::cut_off_overdue`.
fn read_body(shared: &Shared, mut raw: tiny_http::Request) -> ReadBody {
    let peer = raw.remote_addr().copied();
    let mut body = Vec::new();
    shared.start_reading(peer);
    let read = raw
        .as_reader()
        .take(shared.limits.max_body as u64 + 1)
        .read_to_end(&mut body);
    let overdue = shared.done_reading(peer);
    ReadBody {
        raw,
        body,
        read,
        overdue,
    }
}

/// A request whose body has been read: refused when it came too slowly, broken, too big or
/// short, else handed to the handler and answered.
pub(super) fn finish<H: Handler>(handler: &mut H, shared: &Shared, done: ReadBody) {
    let ReadBody {
        raw,
        body,
        read,
        overdue,
    } = done;
    let port = shared.port;
    let max_body = shared.limits.max_body;
    let declared = raw.body_length().unwrap_or(0);
    if overdue {
        let detail = format!(
            "the body took longer than {:?}; {} bytes had arrived",
            shared.limits.client_timeout,
            body.len()
        );
        // Cut short like a body that stopped coming, only by the clock.
        let refusal = Refusal::Overdue;
        handler.refused(&convert(&raw, Vec::new()), refusal, detail.clone());
        respond_and_close(raw, Response::error(refusal.status(), &detail), port);
        return;
    }
    if let Err(e) = read {
        // The client went away or sent a broken chunked body: where the next request
        // would start is unknown, so the connection ends here.
        warn!("reading a request body failed: {e}");
        respond_and_close(
            raw,
            Response::error(400, "could not read the request body"),
            port,
        );
        return;
    }
    if body.len() > max_body {
        let response = too_large(handler, &raw, max_body);
        respond(raw, response);
        return;
    }
    if raw.body_length().is_some_and(|length| body.len() < length) {
        // tiny_http ends a body at the connection's end without saying it came short, and
        // a cut-off form body still parses: stored, it would be the truncated message, and
        // Chatrace's full retry would then be dropped as its duplicate.
        let detail = format!(
            "the body ended after {} of its {declared} declared bytes",
            body.len()
        );
        let refusal = Refusal::Incomplete;
        handler.refused(&convert(&raw, Vec::new()), refusal, detail.clone());
        respond(
            raw,
            Response::error(refusal.status(), &detail).with_header("Connection", "close"),
        );
        return;
    }
    let request = convert(&raw, body);
    let handled = match catch_unwind(AssertUnwindSafe(|| handler.handle(&request))) {
        Ok(Ok(handled)) => handled,
        Ok(Err(e)) => {
            error!(
                "{} {}: {e}",
                log_safe(&request.method),
                log_safe(&request.path)
            );
            Handled::Now(Response::internal_error())
        }
        Err(_) => {
            error!(
                "{} {}: handler panicked",
                log_safe(&request.method),
                log_safe(&request.path)
            );
            Handled::Now(Response::internal_error())
        }
    };
    match handled {
        Handled::Now(response) => respond(raw, response),
        // The worker goes back to `recv` at once; whoever holds the responder answers.
        Handled::Later(finish) => finish(Responder::new(Box::new(move |response| {
            respond(raw, response)
        }))),
    }
}

/// A body whose end a proxy in front could see elsewhere than tiny_http does. tiny_http lets
/// any Transfer-Encoding win over Content-Length and decodes it as chunked, and takes an
/// unreadable Content-Length for no body at all.
fn framing_problem(raw: &tiny_http::Request) -> Option<&'static str> {
    let encodings = header_values(raw, "Transfer-Encoding");
    let lengths = header_values(raw, "Content-Length");
    if !encodings.is_empty() && !lengths.is_empty() {
        return Some("both Content-Length and Transfer-Encoding: send one of them");
    }
    if !encodings.is_empty()
        && (encodings.len() > 1 || !encodings[0].eq_ignore_ascii_case("chunked"))
    {
        return Some("the only Transfer-Encoding accepted is chunked");
    }
    if lengths.len() > 1 {
        return Some("more than one Content-Length");
    }
    if lengths
        .first()
        .is_some_and(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some("Content-Length is not a number");
    }
    None
}

fn header_values<'a>(raw: &'a tiny_http::Request, name: &'static str) -> Vec<&'a str> {
    raw.headers()
        .iter()
        .filter(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
        .collect()
}

fn too_large<H: Handler>(handler: &mut H, raw: &tiny_http::Request, max_body: usize) -> Response {
    let detail = format!("body larger than {max_body} bytes");
    let refusal = Refusal::TooLarge;
    handler.refused(&convert(raw, Vec::new()), refusal, detail.clone());
    Response::error(refusal.status(), &detail).with_header("Connection", "close")
}
