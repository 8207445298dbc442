//! The HTTP server, the only user of tiny_http: a fixed pool of worker threads, request
//! bodies read under a size limit, the connection defences, and a graceful stop. It knows
//! no routes: each worker hands every request to its `Handler`.

use std::io::Read;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};

use crate::error::{Error, Result};

use super::defences::{close_quiet, drop_dead_clients, listener_closed};
use super::request::{Handled, Request, Responder, Response};

/// Declared bodies above this are not drained when refused: tiny_http would allocate the
/// whole remainder in one buffer when the request is dropped, and a forged Content-Length of
/// terabytes aborts the process. Such connections are abandoned instead (see `refuse_huge`).
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// How often an idle worker looks whether a stop was asked for.
const STOP_POLL: Duration = Duration::from_millis(250);
/// How long workers keep answering queued requests after a stop was asked for.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How often the listening socket is checked for being still open (see `listener_closed`).
const LISTENER_CHECK: Duration = Duration::from_secs(5);
/// How often connections are looked over for clients gone quiet (see `close_quiet`).
const QUIET_CHECK: Duration = Duration::from_secs(1);

/// Sent with every answer, pages and API alike: nothing the relay serves may run script,
/// load anything but images from elsewhere (previews of photos people sent, over https
/// only), be framed, or be sniffed into another content type.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data: https:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
];

/// What a worker thread does with the requests it reads.
pub trait Handler: Send + 'static {
    fn handle(&mut self, request: &Request) -> Result<Handled>;
    /// A request the server itself turned away before any handler saw it (a body too large
    /// or cut short); `reason` is a short code, `detail` the words.
    fn refused(&mut self, request: &Request, reason: &'static str, detail: String);
}

/// The limits the server enforces on every connection.
#[derive(Clone, Copy)]
pub struct Limits {
    pub max_body: usize,
    pub client_timeout: Duration,
}

/// Binds the listener; `listening on http://ADDR` is printed once connections are accepted.
pub fn bind(listen: &str, client_timeout: Duration) -> Result<(tiny_http::Server, SocketAddr)> {
    let cannot =
        |e: &dyn std::fmt::Display| Error::Server(format!("cannot listen on {listen}: {e}"));
    let listener = std::net::TcpListener::bind(listen).map_err(|e| cannot(&e))?;
    drop_dead_clients(&listener, client_timeout).map_err(|e| cannot(&e))?;
    let addr = listener.local_addr().map_err(|e| cannot(&e))?;
    let server = tiny_http::Server::from_listener(listener, None).map_err(|e| cannot(&e))?;
    Ok((server, addr))
}

/// Runs one worker thread per handler. Returns Ok after a stop signal, once every request
/// already accepted has been handled (deferred answers may still be on their way); returns
/// the failure if tiny_http's accept thread dies, so the process exits non-zero and systemd
/// restarts it.
pub fn run<H: Handler>(
    server: tiny_http::Server,
    addr: SocketAddr,
    limits: Limits,
    handlers: Vec<H>,
) -> Result<()> {
    let server = Arc::new(server);
    let (fatal_tx, fatal_rx) = mpsc::channel::<String>();
    let mut workers = Vec::with_capacity(handlers.len());
    for (n, mut handler) in handlers.into_iter().enumerate() {
        let server = Arc::clone(&server);
        let fatal = fatal_tx.clone();
        workers.push(
            thread::Builder::new()
                .name(format!("worker-{n}"))
                .spawn(move || serve_requests(&server, &mut handler, limits, &fatal))?,
        );
    }
    drop(fatal_tx);
    let mut listener_check = Every::new(LISTENER_CHECK);
    let mut quiet_check = Every::new(QUIET_CHECK);
    loop {
        if listener_check.due() && listener_closed(addr) {
            return Err(Error::Server(
                "the listening socket has closed: tiny_http's accept thread stopped, \
                 most likely because no thread could be started for a new connection \
                 (too many open connections for the thread limit)"
                    .into(),
            ));
        }
        if quiet_check.due() {
            let closed = close_quiet(addr.port(), limits.client_timeout);
            if closed > 0 {
                debug!(
                    "closed {closed} connection(s) quiet for {:?}",
                    limits.client_timeout
                );
            }
        }
        match fatal_rx.recv_timeout(STOP_POLL) {
            Ok(reason) => return Err(Error::Server(reason)),
            Err(_) if crate::shutdown::requested() => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::Server("every worker thread stopped".into()))
            }
        }
    }
    info!("stopping: answering the requests already accepted");
    for worker in workers {
        let _ = worker.join();
    }
    // The last handle: dropping it closes the listening socket.
    drop(server);
    Ok(())
}

/// A check the serve loop, which comes by every `STOP_POLL`, makes once per `period`.
struct Every {
    period: Duration,
    last: Instant,
}

impl Every {
    fn new(period: Duration) -> Every {
        Every {
            period,
            last: Instant::now(),
        }
    }

    fn due(&mut self) -> bool {
        let due = self.last.elapsed() >= self.period;
        if due {
            self.last = Instant::now();
        }
        due
    }
}

fn serve_requests<H: Handler>(
    server: &tiny_http::Server,
    handler: &mut H,
    limits: Limits,
    fatal: &mpsc::Sender<String>,
) {
    while !crate::shutdown::requested() {
        match server.recv_timeout(STOP_POLL) {
            Ok(Some(request)) => handle(handler, limits, request),
            Ok(None) => {}
            Err(e) => {
                let _ = fatal.send(format!("accepting connections failed: {e}"));
                return;
            }
        }
    }
    // Answer what tiny_http has already queued. The listener stays open until the server
    // is dropped, so under load the queue never runs dry: the drain is bounded in time, and
    // whatever is still queued afterwards gets tiny_http's 500 when the server is dropped,
    // never an acknowledgement.
    let deadline = Instant::now() + DRAIN_TIME;
    while Instant::now() < deadline {
        match server.try_recv() {
            Ok(Some(request)) => handle(handler, limits, request),
            _ => return,
        }
    }
}

fn handle<H: Handler>(handler: &mut H, limits: Limits, mut raw: tiny_http::Request) {
    let max_body = limits.max_body;
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
    let mut body = Vec::new();
    let read = raw
        .as_reader()
        .take(max_body as u64 + 1)
        .read_to_end(&mut body);
    if let Err(e) = read {
        // The client went away or sent a broken chunked body: nobody is left to answer.
        warn!("reading a request body failed: {e}");
        respond(raw, Response::error(400, "could not read the request body"));
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
        handler.refused(&convert(&raw, Vec::new()), "incomplete", detail.clone());
        respond(
            raw,
            Response::error(400, &detail).with_header("Connection", "close"),
        );
        return;
    }
    let request = convert(&raw, body);
    let handled = match catch_unwind(AssertUnwindSafe(|| handler.handle(&request))) {
        Ok(Ok(handled)) => handled,
        Ok(Err(e)) => {
            error!("{} {}: {e}", request.method, request.path);
            Handled::Now(Response::internal_error())
        }
        Err(_) => {
            error!("{} {}: handler panicked", request.method, request.path);
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

fn too_large<H: Handler>(handler: &mut H, raw: &tiny_http::Request, max_body: usize) -> Response {
    let detail = format!("body larger than {max_body} bytes");
    handler.refused(&convert(raw, Vec::new()), "too_large", detail.clone());
    Response::error(413, &detail).with_header("Connection", "close")
}

/// Answers a request whose declared body is too big to drain, then leaks the connection's
/// reader: dropping it would make tiny_http allocate the whole declared length at once.
/// The cost is one parked tiny_http thread per such request; a reverse proxy with a body
/// limit (see README) keeps them from ever arriving.
fn refuse_huge(raw: tiny_http::Request, response: Response) {
    warn!("refused a body declared larger than {DRAIN_LIMIT} bytes; connection abandoned");
    let stream = raw.upgrade("close", to_tiny(response));
    std::mem::forget(stream);
}

fn convert(raw: &tiny_http::Request, body: Vec<u8>) -> Request {
    let (path, query) = match raw.url().split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (raw.url().to_string(), String::new()),
    };
    let headers: Vec<(String, String)> = raw
        .headers()
        .iter()
        .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
        .collect();
    let client = client_address(raw.remote_addr(), &headers);
    Request {
        method: raw.method().as_str().to_ascii_uppercase(),
        path,
        query,
        headers,
        body,
        client,
    }
}

/// Behind a reverse proxy on the same machine every peer is 127.0.0.1; the proxy's
/// X-Forwarded-For names the real client. From any other peer the header is not trusted.
fn client_address(peer: Option<&SocketAddr>, headers: &[(String, String)]) -> Option<String> {
    let peer = peer?;
    if peer.ip().is_loopback() {
        let forwarded = crate::text::header(headers, "X-Forwarded-For")
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let Some(client) = forwarded {
            return Some(client.chars().take(64).collect());
        }
    }
    Some(peer.ip().to_string())
}

fn to_tiny(response: Response) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut out = tiny_http::Response::from_data(response.body).with_status_code(response.status);
    for (name, value) in response.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            out.add_header(header);
        }
    }
    out
}

fn respond(raw: tiny_http::Request, mut response: Response) {
    for (name, value) in SECURITY_HEADERS {
        response.headers.push((name, (*value).to_string()));
    }
    if let Err(e) = raw.respond(to_tiny(response)) {
        info!("could not send a response: {e}");
    }
}
