//! Clients that do not play along. tiny_http answers a connection's requests strictly in
//! order and sets no timeouts of its own, so these are about the whole relay staying up.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::*;

/// One connection pipelines thousands of requests and never reads an answer. Every worker
/// that takes one of them waits for its turn to write, so without a limit the relay would
/// stop answering anyone; the client timeout ends that connection and frees them.
#[test]
fn a_client_that_never_reads_cannot_stall_the_relay() {
    let relay = Relay::start_args("never-reads", &["--client-timeout", "2s"]);
    let mut hostile = TcpStream::connect(&relay.addr).unwrap();
    hostile
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let flood = b"GET /instagram/webhook HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20_000);
    // The relay stops reading once its workers are stuck, so the flood may never go out
    // whole; the write runs aside and its outcome does not matter.
    let flooding = thread::spawn(move || {
        let _ = hostile.write_all(&flood);
        hostile
    });
    thread::sleep(Duration::from_secs(1));

    assert_answers_within(&relay, Duration::from_secs(15));
    let ok = relay.post_webhook(
        "application/json",
        br#"{"contact_id":"1","text":"still here"}"#,
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    drop(flooding.join().unwrap());
}

/// Many connections held open at once: tiny_http starts a thread for each, and when none can
/// be started its accept thread dies and nothing is accepted any more. The relay must then
/// exit non-zero, so that systemd restarts it, rather than live on deaf.
#[test]
fn running_out_of_threads_ends_the_process_for_a_restart() {
    // The thread limit (RLIMIT_NPROC) does not bind root, so the relay runs as nobody.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to start the relay as another user with a thread limit");
        return;
    }
    // Under /tmp, with a copy of the binary: the checkout may lie below a directory that
    // nobody cannot enter (root's home).
    let dir = std::env::temp_dir().join(format!("chatrace-relay-threads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let relay_binary = dir.join("chatrace-relay");
    std::fs::copy(binary(), &relay_binary).unwrap();
    let log = std::fs::File::create(dir.join("relay.log")).unwrap();
    let mut child = Command::new("prlimit")
        .args(["--nproc=40", "--"])
        .arg(&relay_binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "4", "--db"])
        .arg(dir.join("relay.db"))
        .env("RUST_LOG", "info")
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start the relay under prlimit");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let log = || std::fs::read_to_string(dir.join("relay.log")).unwrap_or_default();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("relay did not start: {line:?}\n{}", log()))
        .to_string();

    // Serving already, so every thread of the relay's own is started: the connections
    // below can only starve tiny_http.
    let health = send_raw(&addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(health.status, 200, "log:\n{}", log());
    // More connections, a few at a time, until the relay gives up.
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
            let _ = child.kill();
            panic!(
                "the relay lived on with {} connections held ({:?}); log:\n{}",
                held.len(),
                status
                    .unwrap_or_default()
                    .lines()
                    .find(|l| l.starts_with("Threads")),
                log()
            );
        }
        if held.len() < 1000 {
            held.extend((0..5).filter_map(|_| TcpStream::connect(&addr).ok()));
        }
        thread::sleep(Duration::from_millis(20));
    };
    drop(held);
    assert!(!status.success(), "exit status {status}");
    assert!(
        log().contains("the listening socket has closed"),
        "log:\n{}",
        log()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Clients that declare a body and then send none of it, more of them than there are
/// workers. tiny_http has no read timeouts, so each would hold the worker reading its body
/// for as long as it keeps the connection open; after the client timeout the relay closes
/// such connections and serves everyone else again.
#[test]
fn clients_that_stop_sending_a_body_cannot_hold_the_workers() {
    let relay = Relay::start_args(
        "stalled-bodies",
        &["--client-timeout", "2s", "--workers", "2"],
    );
    // Over 1 KB, so that tiny_http leaves the body to the worker instead of reading it first.
    let head = "POST /instagram/webhook HTTP/1.1\r\nHost: x\r\n\
                Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"text\":\"";
    let stalled: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut stream = TcpStream::connect(&relay.addr).unwrap();
            stream.write_all(head.as_bytes()).unwrap();
            stream
        })
        .collect();
    thread::sleep(Duration::from_millis(500));

    assert_answers_within(&relay, Duration::from_secs(15));
    // Every one of them was cut off and logged; none was stored.
    relay.wait_count(
        "SELECT count(*) FROM rejected WHERE reason = 'incomplete'",
        4,
    );
    assert_eq!(relay.count("SELECT count(*) FROM raw_requests"), 0);
    drop(stalled);
}

/// Connections on which the client sends nothing are closed after the client timeout, as
/// they would otherwise hold one tiny_http thread each for as long as the client likes. A
/// long poll that waits longer than that still gets its answer: only reading is shut down.
#[test]
fn quiet_connections_are_closed_but_a_long_poll_is_answered() {
    let relay = Relay::start_args("quiet", &["--client-timeout", "2s"]);
    let mut long_poll = TcpStream::connect(&relay.addr).unwrap();
    long_poll
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let poll = format!(
        "GET /api/messages?after=0&wait=5 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\r\n"
    );
    long_poll.write_all(poll.as_bytes()).unwrap();
    let started = Instant::now();
    let quiet: Vec<TcpStream> = (0..5)
        .map(|_| {
            let stream = TcpStream::connect(&relay.addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(15)))
                .unwrap();
            stream
        })
        .collect();
    for mut stream in quiet {
        let mut byte = [0u8; 1];
        let read = std::io::Read::read(&mut stream, &mut byte);
        assert!(
            matches!(read, Ok(0)),
            "a quiet connection was not closed: {read:?} after {:?}",
            started.elapsed()
        );
    }
    let answer = try_read_reply(&mut BufReader::new(long_poll));
    assert!(
        matches!(&answer, Ok(reply) if reply.status == 200),
        "long poll: {:?}",
        answer.map(|r| r.status)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "the poll did wait"
    );
}

/// A health check on a new connection must be answered 200 within `limit`.
fn assert_answers_within(relay: &Relay, limit: Duration) {
    let started = Instant::now();
    let mut probe = TcpStream::connect(&relay.addr).unwrap();
    probe.set_read_timeout(Some(limit)).unwrap();
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let answer = try_read_reply(&mut BufReader::new(probe));
    assert!(
        matches!(&answer, Ok(reply) if reply.status == 200),
        "health check after {:?}: {:?}; log:\n{}",
        started.elapsed(),
        answer.map(|r| r.status),
        relay.log()
    );
}

/// Without a proxy in front, a burst of new keep-alive connections: tiny_http's pool could
/// leave some of them unread until another connection ended (or for five seconds). Each
/// round starts a fresh relay, whose pool holds only its few first threads, and opens 32
/// connections at once that each send a request and stay open; all must be answered
/// within 3 s.
#[test]
fn a_burst_of_keep_alive_connections_is_answered_at_once() {
    const CLIENTS: usize = 32;
    for round in 0..4 {
        let relay = Relay::start("keep-alive-burst");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (addr, barrier) = (relay.addr.clone(), std::sync::Arc::clone(&barrier));
                thread::spawn(move || {
                    let mut stream = TcpStream::connect(&addr).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(3)))
                        .unwrap();
                    barrier.wait();
                    let started = Instant::now();
                    stream
                        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                        .unwrap();
                    let mut status = String::new();
                    let answered = BufReader::new(&stream).read_line(&mut status).is_ok()
                        && status.starts_with("HTTP/1.1 200");
                    // Open until every client is done, as keep-alive clients stay.
                    barrier.wait();
                    (answered, started.elapsed())
                })
            })
            .collect();
        let results: Vec<(bool, Duration)> =
            clients.into_iter().map(|c| c.join().unwrap()).collect();
        let unanswered = results.iter().filter(|r| !r.0).count();
        let slowest = results.iter().map(|r| r.1).max().unwrap();
        assert_eq!(
            unanswered, 0,
            "round {round}: {unanswered} of {CLIENTS} not answered within 3 s"
        );
        assert!(
            slowest < Duration::from_secs(3),
            "round {round}: {slowest:?}"
        );
    }
}
