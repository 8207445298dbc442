//! The HTTP server: the listener, a fixed pool of worker threads taking requests from
//! tiny_http (`intake` reads and checks each one), the sweeps of the connection defences,
//! and a graceful stop. It knows no routes: each worker hands every request to its
//! `Handler`.

use std::collections::HashSet;
use std::net::{Shutdown, SocketAddr};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info};

use crate::error::{Error, Result};
use crate::outcome::Refusal;

use super::defences::{
    close_quiet, connections, drop_dead_clients, listener_closed, shut_down, stranded, wake_pool,
};
use super::intake::{accept, finish};
use super::request::{Handled, Request};

/// How often an idle worker looks whether a stop was asked for.
const STOP_POLL: Duration = Duration::from_millis(250);
/// How often an idle worker looks for a body a reader thread has finished reading.
const READY_POLL: Duration = Duration::from_millis(20);
/// How long workers keep answering queued requests after a stop was asked for.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How often the listening socket is checked for being still open (see `listener_closed`).
const LISTENER_CHECK: Duration = Duration::from_secs(5);
/// How often connections are looked over for clients gone quiet (see `close_quiet`).
const QUIET_CHECK: Duration = Duration::from_secs(1);
/// How often connections are looked over for ones tiny_http's pool left unread (see
/// `stranded`): with its 200 ms, such a connection waits half a second at most.
const STRANDED_CHECK: Duration = Duration::from_millis(250);
/// Wakeups per check at most: a check finding more stranded connections than this (a
/// flood) leaves the rest to the next one.
const MAX_WAKES: usize = 64;

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
pub(super) struct Shared {
    pub(super) limits: Limits,
    pub(super) port: u16,
    reading: Mutex<Vec<Reading>>,
    /// Requests whose body a reader thread has read, for the next free worker.
    pub(super) ready_tx: mpsc::Sender<ReadBody>,
    ready_rx: Mutex<mpsc::Receiver<ReadBody>>,
    pub(super) readers: std::sync::atomic::AtomicUsize,
    /// Peers of the open connections a request came from: each has a tiny_http thread.
    served: Mutex<HashSet<SocketAddr>>,
}

/// A request with its body read off the socket by a reader thread.
pub(super) struct ReadBody {
    pub(super) raw: tiny_http::Request,
    pub(super) body: Vec<u8>,
    pub(super) read: std::io::Result<usize>,
    pub(super) overdue: bool,
}

/// A request body a reader thread is reading. A client that sends it slowly, a byte now and
/// then, is never quiet long enough for `close_quiet`; the deadline ends it all the same.
struct Reading {
    peer: SocketAddr,
    deadline: Instant,
    overdue: bool,
}

impl Shared {
    pub(super) fn start_reading(&self, peer: Option<SocketAddr>) {
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
    pub(super) fn done_reading(&self, peer: Option<SocketAddr>) -> bool {
        let mut reading = lock(&self.reading);
        match reading.iter().position(|r| Some(r.peer) == peer) {
            Some(i) => reading.swap_remove(i).overdue,
            None => false,
        }
    }

    /// Notes that a request came from this connection, so tiny_http gave it a thread.
    pub(super) fn served(&self, peer: Option<SocketAddr>) {
        if let Some(peer) = peer {
            lock(&self.served).insert(peer);
        }
    }

    /// How many connections tiny_http's pool has left unread (see `stranded`); forgets
    /// the peers of connections that have closed.
    fn stranded(&self) -> usize {
        let open = connections(self.port);
        let mut served = lock(&self.served);
        served.retain(|p| open.iter().any(|c| c.peer == *p));
        stranded(&open, &served)
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
        served: Mutex::new(HashSet::new()),
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
    let mut stranded_check = Every::new(STRANDED_CHECK);
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
        if stranded_check.due() {
            let left = shared.stranded();
            if left > 0 {
                let woken = wake_pool(addr, left.min(MAX_WAKES));
                info!(
                    "{left} connection(s) left unread by tiny_http's pool; woke it {woken} time(s)"
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
