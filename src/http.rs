//! The HTTP server: tiny_http, a fixed pool of worker threads each owning a database
//! connection, request bodies read under a size limit, and the routing table.

use std::io::Read;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use serde::Serialize;

use crate::app::App;
use crate::error::{Error, Result};
use crate::store::{IngestOutcome, IngestRequest, Store};
use crate::{api, pages, relay_api, webhook};

/// Declared bodies above this are not drained when refused: tiny_http would allocate the
/// whole remainder in one buffer when the request is dropped, and a forged Content-Length of
/// terabytes aborts the process. Such connections are abandoned instead (see `refuse_huge`).
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// A request with its body read, free of tiny_http types so handlers stay plain functions.
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
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::payload::parse_form(&self.query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
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

    pub fn text(status: u16, text: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// What a handler gives back: an answer now, or a webhook to store whose answer is built
/// and sent only after its batch is committed (or has failed).
pub enum Reply {
    Now(Response),
    AfterCommit(AfterCommit),
}

/// A webhook handed to the writer. The worker does not wait for it: `answer` runs on a
/// responder thread with the outcome, and its response goes to the waiting client.
pub struct AfterCommit {
    pub ingest: Box<IngestRequest>,
    pub answer: Box<dyn FnOnce(Result<IngestOutcome>) -> Response + Send>,
}

/// One worker thread's context: the shared app and this thread's own connection.
pub struct Worker {
    pub app: Arc<App>,
    pub store: Store,
}

/// The routing table. Only the webhook may answer after COMMIT; everything else is
/// answered by the worker, in `route_now`.
fn route(w: &mut Worker, req: &Request) -> Result<Reply> {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/instagram/webhook") => Ok(webhook::receive(w, req)),
        ("GET" | "HEAD", "/instagram/webhook") => Ok(webhook::receive_get(w, req)),
        _ => route_now(w, req).map(Reply::Now),
    }
}

fn route_now(w: &mut Worker, req: &Request) -> Result<Response> {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/instagram/stats") => api::stats(w, req),
        ("GET", "/api/messages") => api::messages(w, req),
        ("GET" | "HEAD", "/healthz") => Ok(api::healthz(w)),
        ("GET", "/api/setup") => api::setup(w, req),
        ("POST", path) if path.starts_with(api::SETUP_ACTION_PREFIX) => api::setup_action(w, req),
        ("GET", "/api/deliveries") => relay_api::deliveries(w, req),
        ("POST", "/api/deliveries/replay") => relay_api::replay(w, req),
        ("POST", "/api/messages/reply") => relay_api::send_reply(w, req),
        ("GET", "/metrics") => relay_api::metrics(w, req),
        ("GET" | "HEAD", "/") => pages::dashboard(w, req),
        ("GET" | "HEAD", "/messages") => pages::messages(w, req),
        ("GET" | "HEAD", "/login") => pages::login_form(w, req),
        ("POST", "/login") => pages::login(w, req),
        ("POST", "/logout") => pages::logout(w, req),
        ("POST", path) if path.starts_with("/setup/") => pages::setup_action(w, req),
        ("POST", "/deliveries/replay") => pages::replay_delivery(w, req),
        ("POST", "/reply") => pages::send_reply(w, req),
        ("GET" | "HEAD", "/lang") => Ok(pages::switch_lang(w, req)),
        ("GET" | "HEAD", "/static/style.css") => Ok(pages::stylesheet()),
        (
            _,
            "/instagram/webhook"
            | "/instagram/stats"
            | "/api/messages"
            | "/healthz"
            | "/api/setup"
            | "/api/deliveries"
            | "/api/deliveries/replay"
            | "/api/messages/reply"
            | "/metrics",
        ) => Ok(Response::error(405, "method not allowed").with_header("Allow", allowed(req))),
        _ => Ok(webhook::not_found(w, req)),
    }
}

fn allowed(req: &Request) -> &'static str {
    match req.path.as_str() {
        "/instagram/webhook" => "GET, HEAD, POST",
        "/api/deliveries/replay" | "/api/messages/reply" => "POST",
        _ => "GET, HEAD",
    }
}

/// Sent with every answer, pages and API alike: nothing the relay serves may run script,
/// load from elsewhere, be framed, or be sniffed into another content type.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
];

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

/// tiny_http sets no timeouts, and answers a connection's pipelined requests strictly in
/// order: one client that sends many requests and never reads the answers leaves every
/// worker waiting to write, and one that vanishes without closing holds its thread forever.
/// Linux copies these options from the listening socket to each accepted connection, so
/// the kernel itself aborts a connection once the client has taken none of our data for
/// `timeout` (TCP_USER_TIMEOUT, zero-window probes included) or stops answering keepalive
/// probes; the blocked write then fails and its worker is free again. Clients that send
/// nothing are `quiet`'s job.
fn drop_dead_clients(listener: &std::net::TcpListener, timeout: Duration) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let secs = libc::c_int::try_from(timeout.as_secs().max(1)).unwrap_or(libc::c_int::MAX);
    let millis = libc::c_int::try_from(timeout.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
    let options = [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (secs / 3).max(1)),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3),
        (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, millis),
    ];
    for (level, option, value) in options {
        // SAFETY: a valid socket, and an int that outlives the call, with its exact size.
        let done = unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                level,
                option,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if done != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// How often an idle worker looks whether a stop was asked for.
const STOP_POLL: Duration = Duration::from_millis(250);
/// How long workers keep answering queued requests after a stop was asked for.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// After the last commit, the responders' time to write the final answers.
const LAST_ANSWERS: Duration = Duration::from_millis(300);

/// How often the listening socket is checked for being still open (see `listener_closed`).
const LISTENER_CHECK: Duration = Duration::from_secs(5);
/// How often connections are looked over for clients gone quiet (see `quiet`).
const QUIET_CHECK: Duration = Duration::from_secs(1);

/// Runs the worker pool. Returns Ok after a stop signal, once every request already
/// accepted has been answered and every acknowledged write committed; returns the failure
/// if tiny_http's accept thread dies, so the process exits non-zero and systemd restarts it.
pub fn run(server: tiny_http::Server, app: Arc<App>, stores: Vec<Store>) -> Result<()> {
    let server = Arc::new(server);
    let (fatal_tx, fatal_rx) = mpsc::channel::<String>();
    let mut workers = Vec::with_capacity(stores.len());
    for (n, store) in stores.into_iter().enumerate() {
        let mut worker = Worker {
            app: Arc::clone(&app),
            store,
        };
        let server = Arc::clone(&server);
        let fatal = fatal_tx.clone();
        workers.push(
            thread::Builder::new()
                .name(format!("worker-{n}"))
                .spawn(move || serve_requests(&server, &mut worker, &fatal))?,
        );
    }
    drop(fatal_tx);
    let mut listener_check = Every::new(LISTENER_CHECK);
    let mut quiet_check = Every::new(QUIET_CHECK);
    loop {
        if listener_check.due() && listener_closed(app.addr) {
            return Err(Error::Server(
                "the listening socket has closed: tiny_http's accept thread stopped, \
                 most likely because no thread could be started for a new connection \
                 (too many open connections for the thread limit)"
                    .into(),
            ));
        }
        if quiet_check.due() {
            let closed = crate::quiet::close_quiet(app.addr.port(), app.config.client_timeout);
            if closed > 0 {
                debug!(
                    "closed {closed} connection(s) quiet for {:?}",
                    app.config.client_timeout
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
    // The writer takes jobs in order, so once this probe is through, every webhook handed
    // over before it is committed and its answer is with the responders.
    if let Err(e) = app.writer.probe() {
        warn!("last commit before stopping failed: {e}");
    }
    thread::sleep(LAST_ANSWERS);
    info!("stopped");
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

/// tiny_http starts a thread per connection and its accept thread panics when it cannot:
/// then nothing is accepted any more, no error reaches `recv`, and the process would live
/// on deaf. The listening socket belongs to that thread and closes with it, so a refused
/// connection to our own address is the sign. The check's own connection closes at once.
fn listener_closed(addr: SocketAddr) -> bool {
    let mut own = addr;
    if own.ip().is_unspecified() {
        own.set_ip(match own.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    match std::net::TcpStream::connect_timeout(&own, Duration::from_secs(2)) {
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        Ok(_) => false,
    }
}

fn serve_requests(server: &tiny_http::Server, worker: &mut Worker, fatal: &mpsc::Sender<String>) {
    while !crate::shutdown::requested() {
        match server.recv_timeout(STOP_POLL) {
            Ok(Some(request)) => handle(worker, request),
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
            Ok(Some(request)) => handle(worker, request),
            _ => return,
        }
    }
}

fn handle(worker: &mut Worker, mut raw: tiny_http::Request) {
    let max_body = worker.app.config.max_body;
    let declared = raw.body_length().unwrap_or(0);
    if declared > max_body {
        let response = too_large(worker, &raw, max_body);
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
        let response = too_large(worker, &raw, max_body);
        respond(raw, response);
        return;
    }
    if raw.body_length().is_some_and(|length| body.len() < length) {
        // tiny_http ends a body at the connection's end without saying it came short, and
        // a cut-off form body still parses: stored, it would be the truncated message, and
        // Chatrace's full retry would then be dropped as its duplicate.
        let response = incomplete(worker, &raw, body.len(), declared);
        respond(raw, response);
        return;
    }
    let request = convert(&raw, body);
    let reply = match catch_unwind(AssertUnwindSafe(|| route(worker, &request))) {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => {
            error!("{} {}: {e}", request.method, request.path);
            Reply::Now(internal_error())
        }
        Err(_) => {
            error!("{} {}: handler panicked", request.method, request.path);
            Reply::Now(internal_error())
        }
    };
    match reply {
        Reply::Now(response) => respond(raw, response),
        Reply::AfterCommit(AfterCommit { ingest, answer }) => {
            // The worker goes back to `recv` at once; the writer's responders answer.
            let pending = Pending(Some(raw));
            let done = move |result| pending.answer(answer, result);
            worker.app.writer.ingest(*ingest, Box::new(done));
        }
    }
}

fn internal_error() -> Response {
    Response::error(500, "internal error; see the relay's log")
}

/// A client waiting for its webhook's commit. Whatever happens to it, the client gets an
/// answer: dropped unanswered (the writer lost the job or panicked), it answers 503.
struct Pending(Option<tiny_http::Request>);

impl Pending {
    fn answer(
        mut self,
        answer: Box<dyn FnOnce(Result<IngestOutcome>) -> Response + Send>,
        result: Result<IngestOutcome>,
    ) {
        let response = catch_unwind(AssertUnwindSafe(|| answer(result))).unwrap_or_else(|_| {
            error!("/instagram/webhook: building the answer panicked");
            internal_error()
        });
        if let Some(raw) = self.0.take() {
            respond(raw, response);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(raw) = self.0.take() {
            warn!("webhook dropped before its commit was known; answered 503");
            respond(raw, webhook::not_stored());
        }
    }
}

fn too_large(worker: &Worker, raw: &tiny_http::Request, max_body: usize) -> Response {
    let request = convert(raw, Vec::new());
    webhook::log_rejection(
        worker,
        &request,
        "too_large",
        format!("body larger than {max_body} bytes"),
    );
    Response::error(413, &format!("body larger than {max_body} bytes"))
        .with_header("Connection", "close")
}

fn incomplete(worker: &Worker, raw: &tiny_http::Request, got: usize, declared: usize) -> Response {
    let detail = format!("the body ended after {got} of its {declared} declared bytes");
    webhook::log_rejection(
        worker,
        &convert(raw, Vec::new()),
        "incomplete",
        detail.clone(),
    );
    Response::error(400, &detail).with_header("Connection", "close")
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
        let forwarded = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("X-Forwarded-For"))
            .and_then(|(_, v)| v.split(',').next())
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
