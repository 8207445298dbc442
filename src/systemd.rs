//! What the relay tells systemd and what systemd tells it: readiness and stopping through
//! `$NOTIFY_SOCKET` (the unit's `Type=notify`), and whether a standard stream is the
//! journal's (`$JOURNAL_STREAM`), where log lines carry a priority and no time of their own.

use std::ffi::OsStr;
use std::io;
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Tells the service manager a new state (`READY=1`, `STOPPING=1`, `STATUS=...` lines), as
/// sd_notify(3) does: one datagram to the socket named by `$NOTIFY_SOCKET`. Without it (not
/// started by systemd, or `Type=simple`) this does nothing. A failure is logged, never fatal:
/// the relay serves the same either way.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&socket, state) {
        log::warn!(
            "telling systemd {:?} through NOTIFY_SOCKET failed: {e}",
            state.lines().next().unwrap_or_default()
        );
    }
}

fn send(socket: &OsStr, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    // systemd names either a path or, with a leading '@', an abstract socket address.
    let addr = match socket.as_bytes() {
        [b'@', name @ ..] => SocketAddr::from_abstract_name(name)?,
        [b'/', ..] => SocketAddr::from_pathname(socket)?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "neither a path nor an abstract address",
            ))
        }
    };
    let sent = sock.send_to_addr(state.as_bytes(), &addr)?;
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the datagram went out short",
        ));
    }
    Ok(())
}

/// Whether `stream` is connected to the journal: systemd sets `JOURNAL_STREAM` to the
/// `device:inode` of the stream it connects. Comparing them (not only checking that the
/// variable is set) keeps a command run from a service's shell, with its output in a
/// terminal or a file, on the usual format.
pub fn is_journal(stream: impl AsFd) -> bool {
    let Some((dev, ino)) = std::env::var("JOURNAL_STREAM").ok().and_then(|v| {
        let (dev, ino) = v.split_once(':')?;
        Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?))
    }) else {
        return false;
    };
    let Ok(fd) = stream.as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// The syslog priority journald reads from a `<N>` prefix on a line.
pub fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_and_an_abstract_name_both_reach_their_socket() {
        let dir = std::env::temp_dir().join(format!("relay-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let by_path = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0; 64];
        let n = by_path.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("relay-notify-test-{}", std::process::id());
        let abs = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        send(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let n = abs.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_relative_name_is_refused() {
        assert!(send(OsStr::new("notify"), "READY=1").is_err());
    }
}
