//! Clients that do not play along. tiny_http answers a connection's requests strictly in
//! order and sets no timeouts of its own, so these are about the whole relay staying up.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::*;

/// One connection pipelines thousands of requests and never reads an answer. Every worker
/// that takes one of them waits for its turn to write, so without a limit the relay would
/// stop answering anyone; the client timeout ends that connection and frees them.
#[test]
fn a_client_that_never_reads_cannot_stall_the_relay() {
    let relay = Relay::start_with(
        "never-reads",
        &["--client-timeout", "2s"],
        &[
            ("CHATRACE_RELAY_WEBHOOK_SECRET", SECRET),
            ("CHATRACE_RELAY_ADMIN_TOKEN", ADMIN),
        ],
    );
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

    let started = Instant::now();
    let mut probe = TcpStream::connect(&relay.addr).unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
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
    let ok = relay.post_webhook(
        "application/json",
        br#"{"contact_id":"1","text":"still here"}"#,
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    drop(flooding.join().unwrap());
}
