//! Closes connections on which the client has sent nothing for the client timeout.
//! tiny_http has no read timeouts: a connection that goes quiet holds its tiny_http thread
//! for as long as the client keeps it open, and one that goes quiet in the middle of a
//! request body (tiny_http leaves bodies over 1 KB to the worker) holds a worker too, so a
//! few dozen such clients would hold them all. Read timeouts cannot be inherited from the
//! listening socket (there they would also end tiny_http's `accept`), so a sweep asks the
//! kernel when each connection last received data and shuts down the reading side of the
//! quiet ones. The blocked read then ends: tiny_http lets an idle connection go, and a
//! worker reading a body sees it come up short and answers 400. Only reading is shut down,
//! so an answer still being prepared, such as a long poll's, is delivered.

use std::mem::ManuallyDrop;
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::Duration;

/// Shuts down reading on every connection to `local_port` that has received no data for
/// `quiet_for`; returns how many. tiny_http does not hand out its sockets, so they are found
/// among the process's open descriptors.
pub fn close_quiet(local_port: u16, quiet_for: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let limit = u32::try_from(quiet_for.as_millis()).unwrap_or(u32::MAX);
    let mut closed = 0;
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor is only looked at and shut down, never closed (ManuallyDrop);
        // one that is not a socket fails the address queries.
        let socket = ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(fd) });
        let accepted =
            socket.local_addr().is_ok_and(|a| a.port() == local_port) && socket.peer_addr().is_ok();
        if accepted && quiet_millis(&socket).is_some_and(|ms| ms >= limit) {
            closed += usize::from(socket.shutdown(Shutdown::Read).is_ok());
        }
    }
    closed
}

/// Milliseconds since the connection last received data (or was opened, if it never did).
fn quiet_millis(socket: &TcpStream) -> Option<u32> {
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
