//! Crash safety: the relay is SIGKILLed and restarted several times while clients send
//! webhooks; every request that was answered 2xx must be in the database afterwards, once,
//! and the database must pass `PRAGMA integrity_check`.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::*;

const CLIENTS: usize = 8;
const KILLS: usize = 5;
/// Load keeps running after the last kill until this many requests were attempted, so the
/// run covers "a few thousand" webhooks even on a fast machine.
const MIN_ATTEMPTS: usize = 3000;
/// Upper bound on the load phase, so a slow CI machine still finishes in reasonable time.
const LOAD_DEADLINE: Duration = Duration::from_secs(20);
/// A live relay answers in milliseconds. A reply that takes longer is tiny_http's
/// keep-alive starvation (a new connection queued behind busy ones) or a dead peer: the
/// client gives up on that connection, counts it and opens another.
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// What the clients share with the test: where the relay currently listens (the port
/// changes on every restart), when to stop, and how much was attempted so far.
struct Shared {
    addr: Mutex<String>,
    stop: AtomicBool,
    attempted: AtomicUsize,
}

#[derive(Default)]
struct ClientLog {
    /// message_ids answered 200 `"ok":true`: these must survive.
    acked: Vec<String>,
    attempted: usize,
    /// Connection broke or timed out mid-request (the request may or may not be stored).
    broken: usize,
    /// Of `broken`, how many were timeouts rather than resets.
    stalled: usize,
    /// Answers other than 200 (503 while the writer cannot store is legitimate).
    refused: usize,
    /// 200s that did not look like a fresh store of exactly one message.
    anomalies: Vec<String>,
}

#[test]
fn acknowledged_webhooks_survive_sigkill() {
    let mut relay = Relay::start("crash");
    let shared = Arc::new(Shared {
        addr: Mutex::new(relay.addr.clone()),
        stop: AtomicBool::new(false),
        attempted: AtomicUsize::new(0),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || client(t, &shared))
        })
        .collect();

    // Kill at irregular moments so the kill lands at different points of the write path
    // (mid-batch, mid-fsync, between answers). The seed is printed to replay a failure.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = seed;
    let started = Instant::now();
    for _ in 0..KILLS {
        thread::sleep(Duration::from_millis(100 + next(&mut rng) % 301));
        relay.restart();
        *shared.addr.lock().unwrap() = relay.addr.clone();
    }
    while shared.attempted.load(Ordering::Relaxed) < MIN_ATTEMPTS
        && started.elapsed() < LOAD_DEADLINE
    {
        thread::sleep(Duration::from_millis(20));
    }
    shared.stop.store(true, Ordering::Relaxed);
    let logs: Vec<ClientLog> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    // One more kill with no load running: the checks below see the files exactly as a crash
    // leaves them, and opening them here runs SQLite's own WAL recovery.
    relay.kill();

    let acked: Vec<&String> = logs.iter().flat_map(|l| &l.acked).collect();
    let attempted: usize = logs.iter().map(|l| l.attempted).sum();
    let broken: usize = logs.iter().map(|l| l.broken).sum();
    let stalled: usize = logs.iter().map(|l| l.stalled).sum();
    let refused: usize = logs.iter().map(|l| l.refused).sum();
    println!(
        "crash test: {} acked / {attempted} attempted, {KILLS} kills under load, \
         {broken} broken connections ({stalled} timed out), {refused} non-200, seed {seed}",
        acked.len()
    );
    let anomalies: Vec<&String> = logs.iter().flat_map(|l| &l.anomalies).collect();
    assert!(
        anomalies.is_empty(),
        "unexpected 200 answers: {anomalies:?}"
    );
    assert!(
        acked.len() >= 1000,
        "too little load got through to test anything: {} acked; log:\n{}",
        acked.len(),
        relay.log()
    );

    let db = relay.db();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let mut stored: HashMap<String, i64> = HashMap::new();
    let mut rows = db
        .prepare("SELECT external_id FROM messages WHERE external_id LIKE 'crash-%'")
        .unwrap();
    for id in rows.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        *stored.entry(id.unwrap()).or_default() += 1;
    }
    let duplicated: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "stored twice: {duplicated:?}");
    let missing: Vec<&String> = acked
        .iter()
        .copied()
        .filter(|id| !stored.contains_key(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged webhooks lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let acked_set: HashSet<&String> = acked.iter().copied().collect();
    assert_eq!(acked_set.len(), acked.len(), "a message_id was acked twice");
    drop(rows);
    drop(db);

    relay.restart();
    let reply = relay.post_webhook(
        "application/json",
        br#"{"contact_id":"after-crash","text":"still here","message_id":"after-crash-1"}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["stored"], 1);
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE external_id LIKE 'crash-%'"),
        stored.len() as i64
    );
}

/// One keep-alive client: sends webhooks with unique message_ids until told to stop,
/// reconnecting (to wherever the relay now listens) whenever the connection breaks.
fn client(t: usize, shared: &Shared) -> ClientLog {
    let mut log = ClientLog::default();
    let mut conn: Option<BufReader<TcpStream>> = None;
    let mut n = 0usize;
    while !shared.stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            conn = connect(t, shared);
        }
        let Some(reader) = conn.as_mut() else {
            break; // stopped while waiting for the relay
        };
        let id = format!("crash-{t}-{n}");
        n += 1;
        log.attempted += 1;
        shared.attempted.fetch_add(1, Ordering::Relaxed);
        match exchange(reader, t, &id) {
            Ok(reply) if reply.status == 200 => {
                let answer: serde_json::Value =
                    serde_json::from_slice(&reply.body).unwrap_or_else(|_| serde_json::json!({}));
                if answer["ok"] == true && answer["stored"] == 1 {
                    log.acked.push(id);
                } else {
                    log.anomalies.push(format!("{id}: {}", reply.text()));
                }
            }
            Ok(_) => log.refused += 1,
            Err(e) => {
                log.broken += 1;
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) {
                    log.stalled += 1;
                }
                conn = None;
            }
        }
    }
    log
}

fn exchange(reader: &mut BufReader<TcpStream>, t: usize, id: &str) -> io::Result<Reply> {
    let body = format!(r#"{{"contact_id":"crash-{t}","text":"load {id}","message_id":"{id}"}}"#);
    let request = format!(
        "POST /instagram/webhook HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n\
         X-Webhook-Secret: {SECRET}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    reader.get_mut().write_all(request.as_bytes())?;
    try_read_reply(reader)
}

/// Connects to the relay's current address, waiting out a restart; None once stopped.
fn connect(t: usize, shared: &Shared) -> Option<BufReader<TcpStream>> {
    // All clients lose their connections at the same kill; spreading the reconnects a little
    // keeps them from arriving as one burst, which tiny_http's pool handles worst.
    thread::sleep(Duration::from_millis(2 * t as u64));
    while !shared.stop.load(Ordering::Relaxed) {
        let addr: SocketAddr = shared.addr.lock().unwrap().parse().unwrap();
        if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
            stream.set_nodelay(true).unwrap();
            return Some(BufReader::new(stream));
        }
        thread::sleep(Duration::from_millis(5));
    }
    None
}

/// xorshift64: enough randomness for kill timing without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
