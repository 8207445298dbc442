//! The stop signal. SIGTERM (`systemctl stop`, every restart) and SIGINT (Ctrl-C) ask the
//! relay to answer what it already accepted and exit, rather than dying with webhooks in
//! flight that Chatrace may never send again. A second signal exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe work here: an atomic swap, and _exit on the second signal.
    if REQUESTED.swap(true, Ordering::SeqCst) {
        unsafe { libc::_exit(1) };
    }
}

/// Installs the handlers; called once by `serve`.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only touches an atomic and calls _exit, both allowed in a
    // signal handler.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
