//! The relay's defences around tiny_http, which has no timeouts of its own: the kernel
//! drops clients that stop reading or vanish, a sweep closes connections gone quiet,
//! another wakes tiny_http's pool for connections it left unread, and a check
//! notices when tiny_http's accept thread has died. Linux only: elsewhere the defences
//! are off and the reverse proxy in front must do the work.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

/// A connection to the relay's own address is made at once unless its listener is
/// swamped; then waking the pool can wait for the next check.
const WAKE_TIMEOUT: Duration = Duration::from_millis(200);
/// Data that has waited this long unread on a connection no request came from yet means
/// tiny_http's pool gave the connection no thread (see `stranded`).
const STRANDED_AFTER_MS: u32 = 200;

/// An accepted connection as the kernel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    pub peer: SocketAddr,
    /// Bytes received that nobody has read yet.
    pub unread: usize,
    /// Milliseconds since data last arrived (or since it was opened).
    pub quiet_ms: u32,
}

/// How many connections tiny_http's pool has left unread.
///
/// tiny_http gives each connection one thread of its pool for the connection's whole
/// life, and its pool counts a thread it has just woken for one connection as still idle:
/// when two connections arrive while one thread is idle, both are queued, one wakeup is
/// sent, and the second waits, unread, until some connection ends (or an extra thread's
/// 5-second idle wait runs out). Such a connection has sent its request, which has sat
/// unread for `STRANDED_AFTER_MS`, and no request of it ever reached a worker (`served`
/// holds the peers that sent one).
pub fn stranded(connections: &[Connection], served: &HashSet<SocketAddr>) -> usize {
    connections
        .iter()
        .filter(|c| c.unread > 0 && c.quiet_ms >= STRANDED_AFTER_MS && !served.contains(&c.peer))
        .count()
}

/// Wakes tiny_http's pool once per connection it left unread, with an empty connection
/// to the relay's own address, closed at once. tiny_http queues it like any connection:
/// with a thread idle, that thread is woken and takes the oldest queued connection, the
/// stranded one; with none, a new thread starts on the empty connection, finds it closed,
/// and takes the next queued one. No client's connection is touched. Returns how many
/// connections were made.
/// The first connection that fails ends the round: a listener whose queue is full would
/// make each further try wait out its timeout.
pub fn wake_pool(addr: SocketAddr, times: usize) -> usize {
    let own = own_address(addr);
    (0..times)
        .take_while(|_| std::net::TcpStream::connect_timeout(&own, WAKE_TIMEOUT).is_ok())
        .count()
}

/// The address to reach this listener at: loopback when it listens on every address.
fn own_address(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// Every accepted connection to `local_port`, with what the kernel knows of it.
#[cfg(target_os = "linux")]
pub fn connections(local_port: u16) -> Vec<Connection> {
    let mut found = Vec::new();
    for_each_connection(local_port, |socket| {
        let (Ok(peer), Some(quiet_ms)) = (socket.peer_addr(), quiet_millis(socket)) else {
            return;
        };
        found.push(Connection {
            peer,
            unread: unread_bytes(socket),
            quiet_ms,
        });
    });
    found
}

#[cfg(not(target_os = "linux"))]
pub fn connections(_local_port: u16) -> Vec<Connection> {
    Vec::new()
}

/// Bytes waiting in the socket's receive queue.
#[cfg(target_os = "linux")]
fn unread_bytes(socket: &std::net::TcpStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into the one we own.
    let done = unsafe { libc::ioctl(socket.as_raw_fd(), libc::FIONREAD, &mut n) };
    if done == 0 {
        usize::try_from(n).unwrap_or(0)
    } else {
        0
    }
}

/// tiny_http sets no timeouts, and answers a connection's pipelined requests strictly in
/// order: one client that sends many requests and never reads the answers leaves every
/// worker waiting to write, and one that vanishes without closing holds its thread forever.
/// Linux copies these options from the listening socket to each accepted connection, so
/// the kernel itself aborts a connection once the client has taken none of our data for
/// `timeout` (TCP_USER_TIMEOUT, zero-window probes included) or stops answering keepalive
/// probes; the blocked write then fails and its worker is free again. Clients that send
/// nothing are `close_quiet`'s job.
#[cfg(target_os = "linux")]
pub fn drop_dead_clients(
    listener: &std::net::TcpListener,
    timeout: Duration,
) -> std::io::Result<()> {
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

#[cfg(not(target_os = "linux"))]
pub fn drop_dead_clients(
    _listener: &std::net::TcpListener,
    _timeout: Duration,
) -> std::io::Result<()> {
    Ok(())
}

/// Shuts down reading on every connection to `local_port` that has received no data for
/// `quiet_for`; returns how many.
///
/// tiny_http has no read timeouts: a connection that goes quiet holds its tiny_http thread
/// for as long as the client keeps it open, and one that goes quiet in the middle of a
/// request body (tiny_http leaves bodies over 1 KiB to be read off the socket) holds a
/// reader thread too, and enough such clients would fill the server's cap on them. Read timeouts cannot be inherited from the
/// listening socket (there they would also end tiny_http's `accept`), so this sweep asks the
/// kernel when each connection last received data and shuts down the reading side of the
/// quiet ones. The blocked read then ends: tiny_http lets an idle connection go, and a
/// reader thread's body comes up short, which is answered 400. Only reading is shut down,
/// so an answer still being prepared, such as a long poll's, is delivered.
///
/// tiny_http does not hand out its sockets, so they are found among the process's open
/// descriptors. Another thread may close a descriptor and open something else under the
/// same number at any moment, so each socket is first duplicated: every check and the
/// shutdown then act on the one object the duplicate holds, whatever happens to the number.
#[cfg(target_os = "linux")]
pub fn close_quiet(local_port: u16, quiet_for: Duration) -> usize {
    use std::net::Shutdown;
    let limit = u32::try_from(quiet_for.as_millis()).unwrap_or(u32::MAX);
    let mut closed = 0;
    for_each_connection(local_port, |socket| {
        if quiet_millis(socket).is_some_and(|ms| ms >= limit) {
            closed += usize::from(socket.shutdown(Shutdown::Read).is_ok());
        }
    });
    closed
}

/// Shuts down the connections from `peers`, in one look over the process's descriptors:
/// both ways after a request whose framing was ambiguous (nothing more may be read from
/// it), or only reading when its body took too long (the answer saying so still goes
/// out). Returns how many were found.
#[cfg(target_os = "linux")]
pub fn shut_down(local_port: u16, peers: &[SocketAddr], how: std::net::Shutdown) -> usize {
    let mut found = 0;
    if peers.is_empty() {
        return found;
    }
    for_each_connection(local_port, |socket| {
        if socket.peer_addr().is_ok_and(|p| peers.contains(&p)) {
            found += usize::from(socket.shutdown(how).is_ok());
        }
    });
    found
}

#[cfg(not(target_os = "linux"))]
pub fn shut_down(_local_port: u16, _peers: &[SocketAddr], _how: std::net::Shutdown) -> usize {
    0
}

/// Calls `each` with a duplicate of every accepted connection to `local_port`.
#[cfg(target_os = "linux")]
fn for_each_connection(local_port: u16, mut each: impl FnMut(&std::net::TcpStream)) {
    use std::net::TcpStream;
    use std::os::fd::{BorrowedFd, RawFd};

    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // Only sockets are duplicated: closing any descriptor of a file drops every POSIX
        // lock this process holds on it, and SQLite's locks are such locks.
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: the number is only borrowed for the duplicating call. Were it closed
        // meanwhile, `dup` fails with EBADF; were it reused, the duplicate holds the new
        // object, which the caller then judges on its own.
        let owned = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned();
        let Ok(owned) = owned else { continue };
        if !holds_socket(&owned) {
            // Reused for a file in between: closing the duplicate would drop the file's
            // locks, so it is left open. This takes a race within one sweep, and costs
            // one descriptor when it happens.
            std::mem::forget(owned);
            continue;
        }
        let socket = TcpStream::from(owned);
        let accepted =
            socket.local_addr().is_ok_and(|a| a.port() == local_port) && socket.peer_addr().is_ok();
        if accepted {
            each(&socket);
        }
        // Dropping `socket` closes only the duplicate; the connection stays tiny_http's.
    }
}

#[cfg(not(target_os = "linux"))]
pub fn close_quiet(_local_port: u16, _quiet_for: Duration) -> usize {
    0
}

/// Whether a descriptor refers to a socket.
#[cfg(target_os = "linux")]
fn holds_socket(fd: &std::os::fd::OwnedFd) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: fstat only writes into the zeroed struct we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let done = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
    done == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
}

/// Milliseconds since the connection last received data (or was opened, if it never did).
#[cfg(target_os = "linux")]
fn quiet_millis(socket: &std::net::TcpStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain data, zeroes are a valid value, and the kernel writes at
    // most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let done = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (done == 0).then_some(info.tcpi_last_data_recv)
}

/// tiny_http starts a thread per connection and its accept thread panics when it cannot:
/// then nothing is accepted any more, no error reaches `recv`, and the process would live
/// on deaf. The listening socket belongs to that thread and closes with it, so a refused
/// connection to our own address is the sign. The check's own connection closes at once.
pub fn listener_closed(addr: SocketAddr) -> bool {
    let own = own_address(addr);
    match std::net::TcpStream::connect_timeout(&own, Duration::from_secs(2)) {
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        Ok(_) => false,
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn seen(port: u16, unread: usize, quiet_ms: u32) -> Connection {
        Connection {
            peer: peer(port),
            unread,
            quiet_ms,
        }
    }

    /// Only a connection whose request has waited unread, and that never sent one a
    /// worker took, counts as left unread by the pool.
    #[test]
    fn stranded_connections_sent_a_request_nobody_read() {
        let served: HashSet<_> = [1, 2].into_iter().map(peer).collect();
        let open = [
            seen(1, 0, 9_000), // served, idle
            seen(2, 300, 900), // served, a body still coming in
            seen(3, 80, 10),   // its request just arrived
            seen(4, 0, 5_000), // connected, sent nothing yet
            seen(5, 80, 300),  // left unread
            seen(6, 120, 900), // left unread
        ];
        assert_eq!(stranded(&open, &served), 2);
        assert_eq!(stranded(&open[..4], &served), 0);
    }

    /// The kernel's view: unread bytes and quiet time of an accepted connection.
    #[test]
    fn connections_show_their_unread_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let found = connections(port);
            let mine = found
                .iter()
                .find(|c| c.peer == client.local_addr().unwrap());
            if mine.is_some_and(|c| c.unread == 18) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{found:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The sweep shuts reading on an accepted connection gone quiet and leaves files alone.
    #[test]
    fn a_quiet_connection_is_shut_and_nothing_else_is_touched() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        let file = tempfile_in_target();
        assert!(close_quiet(port, Duration::ZERO) >= 1);
        let mut buf = [0u8; 1];
        assert_eq!(accepted.read(&mut buf).unwrap(), 0, "reading ends at once");
        assert!(file.metadata().is_ok(), "the file is still open");
    }

    fn tempfile_in_target() -> std::fs::File {
        let path = std::env::temp_dir().join(format!("relay-defences-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        file
    }
}
