//! The load generator: one thread per core, each driving its share of the connections with
//! nonblocking sockets and poll(2), the way `wrk` does. One blocking thread per connection
//! would spend the cores the servers need on context switches: at c=32 it used about half
//! a core of the two, most of it switching between its 32 threads.
//!
//! Keep-alive connections are opened one after another, each once the previous one has
//! had its first answer, because tiny_http 0.12 can leave a connection from a burst of new
//! ones unread for as long as the others stay open. Any request without a good answer
//! within `REPLY_TIMEOUT` counts as a failure and is noted; nothing is dropped silently.
//! When the measurement stops, requests in flight are still read to the end, so that every
//! message the relay stored is matched by an answer counted here.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{body, request, Body, Mode, NOTES_SHOWN, REPLY_TIMEOUT};

/// Shared by the generator threads: when to record and stop, whose turn it is to open.
pub struct Phase {
    pub recording: AtomicBool,
    pub stop: AtomicBool,
    /// The connection allowed to open next; connections open strictly in order.
    pub next_to_open: AtomicUsize,
}

/// What one generator thread saw.
#[derive(Default)]
pub struct Tally {
    /// Microseconds, for requests sent and answered inside the measured window.
    pub latencies: Vec<u32>,
    /// Every 200 `"ok":true`, warm-up included: each stored exactly one message.
    pub answered: usize,
    pub failures: usize,
    pub notes: Vec<String>,
}

/// Drives connections `c` with `c % threads == index` until `phase.stop`, then reads the
/// answers still in flight.
pub fn drive(
    addr: SocketAddr,
    mode: Mode,
    conns: usize,
    prefix: &str,
    (index, threads): (usize, usize),
    phase: &Phase,
) -> Tally {
    let mut tally = Tally::default();
    let mut mine: Vec<Conn> = (index..conns)
        .step_by(threads)
        .map(|c| Conn::new(c, body(c)))
        .collect();
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(mine.len());
    // Which connection each entry of `fds` belongs to.
    let mut polled: Vec<usize> = Vec::with_capacity(mine.len());
    loop {
        let stopping = phase.stop.load(Ordering::Relaxed);
        let now = Instant::now();
        for conn in &mut mine {
            if conn.in_flight.is_some_and(|r| now - r.sent > REPLY_TIMEOUT) {
                let why = format!("no answer within {} s", REPLY_TIMEOUT.as_secs());
                conn.fail(why, &mut tally, phase, now);
            }
            let may_open = conn.opened || phase.next_to_open.load(Ordering::Acquire) == conn.c;
            let idle = conn.in_flight.is_none() && !conn.awaiting_close;
            if !stopping && may_open && idle && now >= conn.retry_at {
                if let Err(e) = conn.send_next(addr, mode, prefix, phase) {
                    conn.fail(e, &mut tally, phase, now);
                }
            }
        }
        if stopping && mine.iter().all(|c| c.in_flight.is_none()) {
            return tally;
        }
        fds.clear();
        polled.clear();
        for (i, conn) in mine.iter().enumerate() {
            if let Some(entry) = conn.poll_entry() {
                fds.push(entry);
                polled.push(i);
            }
        }
        // A short timeout: connections waiting for their turn to open, retries after a
        // failure and the stop flag are checked between polls.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 2) };
        if ready <= 0 {
            continue;
        }
        for (fd, &i) in fds.iter().zip(&polled) {
            if fd.revents == 0 {
                continue;
            }
            let conn = &mut mine[i];
            if let Err(e) = conn.progress(mode, phase, &mut tally) {
                conn.fail(e, &mut tally, phase, Instant::now());
            }
        }
    }
}

/// One client connection (or, with one request per connection, a series of them).
struct Conn {
    c: usize,
    template: Body,
    stream: Option<TcpStream>,
    /// A nonblocking connect has not completed yet.
    connecting: bool,
    /// The request being sent, and how much of it went out.
    out: Vec<u8>,
    sent: usize,
    input: Vec<u8>,
    in_flight: Option<InFlight>,
    /// The answer has been read; waiting for the server to close (one request per connection).
    awaiting_close: bool,
    /// Had its first exchange (answered or failed): the next connection may open.
    opened: bool,
    requests: usize,
    retry_at: Instant,
}

#[derive(Clone, Copy)]
struct InFlight {
    sent: Instant,
    /// Sent inside the measured window.
    recorded: bool,
}

impl Conn {
    fn new(c: usize, template: Body) -> Conn {
        Conn {
            c,
            template,
            stream: None,
            connecting: false,
            out: Vec::new(),
            sent: 0,
            input: Vec::with_capacity(1024),
            in_flight: None,
            awaiting_close: false,
            opened: false,
            requests: 0,
            retry_at: Instant::now(),
        }
    }

    fn send_next(
        &mut self,
        addr: SocketAddr,
        mode: Mode,
        prefix: &str,
        phase: &Phase,
    ) -> Result<(), String> {
        if self.stream.is_none() {
            self.stream = Some(connect(addr).map_err(|e| format!("connect: {e}"))?);
            self.connecting = true;
        }
        self.requests += 1;
        let message_id = format!("{prefix}-{}-{}", self.c, self.requests);
        self.out = request(&self.template, &message_id, mode);
        self.sent = 0;
        self.input.clear();
        self.in_flight = Some(InFlight {
            sent: Instant::now(),
            recorded: phase.recording.load(Ordering::Relaxed),
        });
        if !self.connecting {
            self.write_out()?;
        }
        Ok(())
    }

    fn poll_entry(&self) -> Option<libc::pollfd> {
        let stream = self.stream.as_ref()?;
        let events = if self.connecting || self.sent < self.out.len() {
            libc::POLLOUT
        } else {
            libc::POLLIN
        };
        Some(libc::pollfd {
            fd: stream.as_raw_fd(),
            events,
            revents: 0,
        })
    }

    /// Moves the exchange on after poll said the socket is ready.
    fn progress(&mut self, mode: Mode, phase: &Phase, tally: &mut Tally) -> Result<(), String> {
        let stream = self.stream.as_mut().expect("polled");
        if self.connecting {
            if let Some(e) = stream.take_error().map_err(|e| format!("connect: {e}"))? {
                return Err(format!("connect: {e}"));
            }
            self.connecting = false;
        }
        if self.sent < self.out.len() {
            return self.write_out();
        }
        let mut buf = [0u8; 4096];
        let mut closed = false;
        loop {
            match self.stream.as_mut().expect("polled").read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading the answer: {e}")),
            }
        }
        if let Some(in_flight) = self.in_flight {
            let Some(answer) = parse_response(&self.input) else {
                if closed {
                    return Err("reading the answer: connection closed".into());
                }
                return Ok(()); // not complete yet
            };
            let body = &self.input[answer.body];
            if answer.status != 200 || !body.windows(9).any(|w| w == b"\"ok\":true") {
                let excerpt = String::from_utf8_lossy(&body[..body.len().min(120)]);
                return Err(format!("answer {}: {excerpt}", answer.status));
            }
            self.in_flight = None;
            tally.answered += 1;
            if in_flight.recorded && !phase.stop.load(Ordering::Relaxed) {
                tally
                    .latencies
                    .push(in_flight.sent.elapsed().as_micros() as u32);
            }
            self.first_exchange_done(phase);
            // With one request per connection, wait for the server's close before the
            // next connect, so the server side holds TIME_WAIT and the load generator does
            // not run out of ephemeral ports.
            self.awaiting_close = mode == Mode::ConnPerRequest || answer.close;
        }
        if closed {
            // After a complete answer, a close just ends the connection; the next request
            // opens a new one.
            self.stream = None;
            self.awaiting_close = false;
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<(), String> {
        let stream = self.stream.as_mut().expect("connected");
        while self.sent < self.out.len() {
            match stream.write(&self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("send: {e}")),
            }
        }
        Ok(())
    }

    fn fail(&mut self, why: String, tally: &mut Tally, phase: &Phase, now: Instant) {
        tally.failures += 1;
        if tally.notes.len() < NOTES_SHOWN {
            tally.notes.push(format!(
                "connection {}, request {}: {why}",
                self.c, self.requests
            ));
        }
        self.stream = None;
        self.connecting = false;
        self.awaiting_close = false;
        self.in_flight = None;
        // A refused connect would otherwise spin and starve the other connections.
        self.retry_at = now + Duration::from_millis(10);
        self.first_exchange_done(phase);
    }

    fn first_exchange_done(&mut self, phase: &Phase) {
        if !self.opened {
            self.opened = true;
            phase.next_to_open.store(self.c + 1, Ordering::Release);
        }
    }
}

struct Answer {
    status: u16,
    close: bool,
    /// Where the body is in the input.
    body: std::ops::Range<usize>,
}

/// One complete response with a Content-Length body, or None while more bytes are needed.
fn parse_response(input: &[u8]) -> Option<Answer> {
    let head_end = input.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&input[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()?
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (mut length, mut close) = (0, false);
    for (name, value) in lines.filter_map(|l| l.split_once(':')) {
        let value = value.trim();
        if name.eq_ignore_ascii_case("Content-Length") {
            length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("Connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let body = head_end..head_end + length;
    (input.len() >= body.end).then_some(Answer {
        status,
        close,
        body,
    })
}

/// Starts a nonblocking TCP connect (std has none): the socket reports in poll when done.
fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let SocketAddr::V4(v4) = addr else {
        return Err(std::io::Error::other("the servers listen on IPv4 loopback"));
    };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: a fresh socket is owned by the TcpStream at once, which closes it on every
    // path; connect reads `sin` only for the duration of the call.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let rc = libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
        }
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// How many generator threads: one per core, at most one per connection.
pub fn threads(conns: usize) -> usize {
    thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(conns)
        .max(1)
}
