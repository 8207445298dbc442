//! Frees workers from clients that stop sending a request body. tiny_http has no read
//! timeouts, and it leaves a body larger than 1 KB for the worker to read: a client that
//! declares such a body and then sends nothing holds that worker for as long as it keeps
//! the connection open, and a few dozen such clients would hold them all. Each worker notes
//! when its body read last made progress; the serve loop shuts down the connection of a
//! read stalled longer than the client timeout, which ends the read, and the request is
//! answered as incomplete.

use std::io::Read;
use std::mem::ManuallyDrop;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use log::warn;

/// One worker's body read in progress: the client, and when its last bytes came.
#[derive(Default)]
pub struct BodyRead(Mutex<Option<(SocketAddr, Instant)>>);

impl BodyRead {
    /// Reads through `reader`, noting the progress, until the returned reader is dropped.
    pub fn watch<R: Read>(&self, client: Option<SocketAddr>, reader: R) -> Watched<'_, R> {
        *self.lock() = client.map(|peer| (peer, Instant::now()));
        Watched { read: self, reader }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(SocketAddr, Instant)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Watched<'a, R> {
    read: &'a BodyRead,
    reader: R,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reader.read(buf)?;
        if n > 0 {
            if let Some((_, progress)) = self.read.lock().as_mut() {
                *progress = Instant::now();
            }
        }
        Ok(n)
    }
}

impl<R> Drop for Watched<'_, R> {
    fn drop(&mut self) {
        *self.read.lock() = None;
    }
}

/// Shuts down the connection of every body read that has made no progress for `timeout`.
pub fn cut_stalled(reads: &[std::sync::Arc<BodyRead>], timeout: Duration, local_port: u16) {
    for read in reads {
        let mut current = read.lock();
        if let Some((peer, progress)) = *current {
            if progress.elapsed() >= timeout && shut_down(peer, local_port) {
                warn!("a request body from {peer} stalled for {timeout:?}; connection closed");
                *current = None;
            }
        }
    }
}

/// Shuts down this process's connection from `peer` to `local_port`. tiny_http does not
/// hand out its sockets, so the socket is found among the process's open descriptors.
fn shut_down(peer: SocketAddr, local_port: u16) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor is only looked at and shut down, never closed (ManuallyDrop);
        // one that is not a socket just fails the address queries.
        let socket = ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(fd) });
        let ours = socket.local_addr().is_ok_and(|a| a.port() == local_port);
        if ours && socket.peer_addr().is_ok_and(|p| p == peer) {
            return socket.shutdown(Shutdown::Both).is_ok();
        }
    }
    false
}
