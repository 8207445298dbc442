//! The HTTP server, the only user of tiny_http: a fixed pool of worker threads, request
//! bodies read under a size limit and a deadline (by a thread of their own when they still
//! have to come off the socket, so a slow client never holds a worker), the connection
//! defences, and a graceful stop. It knows no routes: each worker hands every request to
//! its `Handler`.

use std::io::Read;
use std::net::{Shutdown, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};

use crate::error::{Error, Result};
use crate::outcome::Refusal;
use crate::text::log_safe;

use super::defences::{close_quiet, drop_dead_clients, listener_closed, shut_down};
use super::request::{Handled, Request, Responder, Response};

/// Declared bodies above this are not drained when refused: tiny_http would allocate the
/// whole remainder in one buffer when the request is dropped, and a forged Content-Length of
/// terabytes aborts the process. Such connections are abandoned instead (see `refuse_huge`).
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// The request line and headers together may not exceed this: they are kept with every
/// stored request, and tiny_http itself sets no limit.
const MAX_HEAD: usize = 64 * 1024;

/// How often an idle worker looks whether a stop was asked for.
const STOP_POLL: Duration = Duration::from_millis(250);
/// How often an idle worker looks for a body a reader thread has finished reading.
const READY_POLL: Duration = Duration::from_millis(20);
/// Bodies read at once by reader threads; past this a request is answered 503 at once.
const MAX_READERS: usize = 512;
/// A reader thread only reads into a buffer: a small stack is plenty.
const READER_STACK: usize = 64 * 1024;
/// How long workers keep answering queued requests after a stop was asked for.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How often the listening socket is checked for being still open (see `listener_closed`).
const LISTENER_CHECK: Duration = Duration::from_secs(5);
/// How often connections are looked over for clients gone quiet (see `close_quiet`).
const QUIET_CHECK: Duration = Duration::from_secs(1);

/// Sent with every answer, pages and API alike: no script runs but the relay's own file
/// (the copy buttons; never inline, so nothing stored can inject one), nothing but images
/// loads from elsewhere (previews of photos people sent, over https only), and nothing
/// may be framed or sniffed into another content type.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; form-action 'self'; \
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
    /// or cut short); `detail` says what was wrong with it.
    fn refused(&mut self, request: &Request, refusal: Refusal, detail: String);
}

/// The limits the server enforces on every connection.
#[derive(Clone, Copy)]
pub struct Limits {
    pub max_body: usize,
    /// How long a client may stay silent, and how long one request's body may take.
    pub client_timeout: Duration,
}

/// What every worker shares: the limits, the port connections arrive on, and the bodies
/// being read right now with their deadlines.
struct Shared {
    limits: Limits,
    port: u16,
    reading: Mutex<Vec<Reading>>,
    /// Requests whose body a reader thread has read, for the next free worker.
    ready_tx: mpsc::Sender<ReadBody>,
    ready_rx: Mutex<mpsc::Receiver<ReadBody>>,
    readers: std::sync::atomic::AtomicUsize,
}

/// A request with its body read off the socket by a reader thread.
struct ReadBody {
    raw: tiny_http::Request,
    body: Vec<u8>,
    read: std::io::Result<usize>,
    overdue: bool,
}

/// A request body a reader thread is reading. A client that sends it slowly, a byte now and
/// then, is never quiet long enough for `close_quiet`; the deadline ends it all the same.
struct Reading {
    peer: SocketAddr,
    deadline: Instant,
    overdue: bool,
}

impl Shared {
    fn start_reading(&self, peer: Option<SocketAddr>) {
        if let Some(peer) = peer {
            let deadline = Instant::now() + self.limits.client_timeout;
            lock(&self.reading).push(Reading {
                peer,
                deadline,
                overdue: false,
            });
        }
    }

    /// Whether the body's deadline passed while it was read.
    fn done_reading(&self, peer: Option<SocketAddr>) -> bool {
        let mut reading = lock(&self.reading);
        match reading.iter().position(|r| Some(r.peer) == peer) {
            Some(i) => reading.swap_remove(i).overdue,
            None => false,
        }
    }

    /// A request whose body a reader thread has finished, if any.
    fn take_ready(&self) -> Option<ReadBody> {
        lock(&self.ready_rx).try_recv().ok()
    }

    /// Stops reading the bodies past their deadline: the blocked read then ends.
    fn cut_off_overdue(&self) -> usize {
        let now = Instant::now();
        let overdue: Vec<SocketAddr> = lock(&self.reading)
            .iter_mut()
            .filter(|r| !r.overdue && r.deadline <= now)
            .map(|r| {
                r.overdue = true;
                r.peer
            })
            .collect();
        // One look over the descriptors for all of them, and without holding the list,
        // which readers starting or finishing a body need meanwhile.
        shut_down(self.port, &overdue, Shutdown::Read)
    }
}

/// A poisoned lock only means a worker panicked mid-update; the list stays usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
/// the failure if tiny_http's accept thread dies or `fatal` names one, so the process exits
/// non-zero and systemd restarts it.
pub fn run<H: Handler>(
    server: tiny_http::Server,
    addr: SocketAddr,
    limits: Limits,
    handlers: Vec<H>,
    fatal: impl Fn() -> Option<String>,
) -> Result<()> {
    let server = Arc::new(server);
    let (ready_tx, ready_rx) = mpsc::channel();
    let shared = Arc::new(Shared {
        limits,
        port: addr.port(),
        reading: Mutex::new(Vec::new()),
        ready_tx,
        ready_rx: Mutex::new(ready_rx),
        readers: std::sync::atomic::AtomicUsize::new(0),
    });
    let (fatal_tx, fatal_rx) = mpsc::channel::<String>();
    let mut workers = Vec::with_capacity(handlers.len());
    for (n, mut handler) in handlers.into_iter().enumerate() {
        let server = Arc::clone(&server);
        let shared = Arc::clone(&shared);
        let fatal = fatal_tx.clone();
        workers.push(
            thread::Builder::new()
                .name(format!("worker-{n}"))
                .spawn(move || serve_requests(&server, &mut handler, &shared, &fatal))?,
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
            let cut = shared.cut_off_overdue();
            if closed + cut > 0 {
                debug!(
                    "closed {closed} connection(s) quiet for {:?}, cut off {cut} slow body(ies)",
                    limits.client_timeout
                );
            }
        }
        if let Some(reason) = fatal() {
            // A moment for the answers that say so (503s) to go out.
            thread::sleep(STOP_POLL);
            return Err(Error::Server(reason));
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
    shared: &Arc<Shared>,
    fatal: &mpsc::Sender<String>,
) {
    while !crate::shutdown::requested() {
        if let Some(done) = shared.take_ready() {
            finish(handler, shared, done);
            continue;
        }
        match server.recv_timeout(READY_POLL) {
            Ok(Some(request)) => accept(handler, shared, request),
            Ok(None) => {}
            Err(e) => {
                let _ = fatal.send(format!("accepting connections failed: {e}"));
                return;
            }
        }
    }
    // Answer what tiny_http has already queued and what the readers bring. The listener
    // stays open until the server is dropped, so under load the queue never runs dry: the
    // drain is bounded in time, and whatever is still queued afterwards gets tiny_http's
    // 500 when the server is dropped, never an acknowledgement.
    let deadline = Instant::now() + DRAIN_TIME;
    while Instant::now() < deadline {
        if let Some(done) = shared.take_ready() {
            finish(handler, shared, done);
            continue;
        }
        match server.try_recv() {
            Ok(Some(request)) => accept(handler, shared, request),
            _ if shared.readers.load(std::sync::atomic::Ordering::Acquire) > 0 => {
                thread::sleep(READY_POLL);
            }
            _ => return,
        }
    }
}

/// A request as tiny_http hands it over: refused at once when its framing or size is
/// wrong; otherwise its body is read, here when tiny_http already holds it, else by a
/// reader thread, so a client sending its body slowly never holds a worker.
fn accept<H: Handler>(handler: &mut H, shared: &Arc<Shared>, mut raw: tiny_http::Request) {
    let port = shared.port;
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
fn finish<H: Handler>(handler: &mut H, shared: &Shared, done: ReadBody) {
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

/// Answers, then ends the connection without tiny_http reading any further: the rest of
/// the connection is handed over and never given back, and the socket is shut down. This
/// parks the connection's tiny_http thread for good, a cost paid only for broken or
/// hostile requests (a reverse proxy in front never sends them).
fn respond_and_close(raw: tiny_http::Request, response: Response, port: u16) {
    let peer = raw.remote_addr().copied();
    let stream = raw.upgrade("close", to_tiny(secured(response)));
    if let Some(peer) = peer {
        shut_down(port, &[peer], Shutdown::Both);
    }
    std::mem::forget(stream);
}

fn too_large<H: Handler>(handler: &mut H, raw: &tiny_http::Request, max_body: usize) -> Response {
    let detail = format!("body larger than {max_body} bytes");
    let refusal = Refusal::TooLarge;
    handler.refused(&convert(raw, Vec::new()), refusal, detail.clone());
    Response::error(refusal.status(), &detail).with_header("Connection", "close")
}

/// Answers a request whose declared body is too big to drain, then leaks the connection's
/// reader: dropping it would make tiny_http allocate the whole declared length at once.
/// The cost is one parked tiny_http thread per such request; a reverse proxy with a body
/// limit (see README) keeps them from ever arriving.
fn refuse_huge(raw: tiny_http::Request, response: Response) {
    warn!("refused a body declared larger than {DRAIN_LIMIT} bytes; connection abandoned");
    let stream = raw.upgrade("close", to_tiny(secured(response)));
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
            // Shown on the page and logged: no room for control characters.
            return Some(
                client
                    .chars()
                    .take(64)
                    .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
                    .collect(),
            );
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

fn secured(mut response: Response) -> Response {
    for (name, value) in SECURITY_HEADERS {
        response.headers.push((name, (*value).to_string()));
    }
    response
}

fn respond(raw: tiny_http::Request, response: Response) {
    if let Err(e) = raw.respond(to_tiny(secured(response))) {
        info!("could not send a response: {e}");
    }
}
