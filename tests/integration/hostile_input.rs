//! Hostile and unlucky inputs found by probing a running relay: odd stored rows, a deleted
//! database, huge numbers, forged log lines, loose secrets, ambiguous framing, oversized
//! heads, and bodies that trickle in.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::pages::Browser;
use crate::util::*;

/// Every page and API a signed-in person or a script can open answers 200.
fn every_page_answers(relay: &Relay) {
    let (mut browser, _) = Browser::signed_in(relay);
    for path in ["/", "/messages", "/messages?page=2"] {
        let page = browser.get(path, &[]);
        assert_eq!(page.status, 200, "{path}: {}", page.text());
    }
    for path in [
        "/api/messages",
        "/instagram/stats",
        "/api/setup",
        "/api/deliveries",
        "/metrics",
    ] {
        let reply = relay.get_admin(path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }
}

#[test]
fn no_stored_row_however_odd_breaks_a_page() {
    let relay = Relay::start("odd-rows");
    // The two reported: a webhook with an empty body, and a GET whose fields hold no
    // message.
    let reply = relay.post_webhook("text/plain", b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let get = relay.request(
        "GET",
        &format!("/instagram/webhook?secret={SECRET}&foo=bar"),
        &[],
        b"",
    );
    assert_eq!(get.status, 200, "{}", get.text());
    every_page_answers(&relay);

    // Rows no webhook makes today, as an older version or a hand edit could leave them.
    let huge = "я".repeat(200_000);
    let db = relay.db();
    db.execute_batch(
        "INSERT INTO raw_requests (received_at, method, path, query, headers, body, flag,
                                   flag_detail, stored)
         VALUES (0, '', '', '', '', x'', 'no_message', NULL, 0),
                (1, 'POST', '/instagram/webhook', '', '[]', x'00ff', 'weird', '', 0);
         INSERT INTO rejected (received_at, reason, detail, method, path, excerpt)
         VALUES (2, 'mystery', '', '', '', '');
         INSERT INTO messages (raw_request_id, received_at, direction, contact_id, text,
                               attachments)
         VALUES (NULL, -1, 'in', '', NULL, 'not json'),
                (NULL, 253402300799999, 'out', 'c', '', '[{\"type\":\"image\"}]');
         INSERT INTO contacts (contact_id, contact_name, first_seen, last_seen, messages)
         VALUES ('', '', 0, 0, 0);",
    )
    .unwrap();
    db.execute(
        "INSERT INTO messages (received_at, direction, contact_id, contact_name, text)
         VALUES (3, 'in', ?1, ?1, ?1)",
        [&huge],
    )
    .unwrap();
    every_page_answers(&relay);
    let export = std::process::Command::new(binary())
        .args(["export", "--db", relay.db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
}

/// With its database gone, the relay must not acknowledge anything: it answers 503, says it
/// is unhealthy, and exits non-zero so that systemd restarts it and the failure is loud.
#[test]
fn a_deleted_database_is_never_acknowledged_into() {
    let dir = temp_dir("db-deleted");
    let mut relay = Relay::start_in(dir.clone(), &[], &KNOWN_SECRETS);
    let ok = relay.post_webhook("application/json", br#"{"contact_id":"1","text":"before"}"#);
    assert_eq!(ok.status, 200);
    std::fs::remove_dir_all(&dir).unwrap();
    let after = relay.post_webhook("application/json", br#"{"contact_id":"1","text":"after"}"#);
    assert_eq!(after.status, 503, "{}", after.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = relay.try_wait() {
            assert!(!status.success(), "it must exit non-zero: {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the relay lived on with its database gone"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn big_numeric_ids_keep_every_digit_through_the_relay() {
    let relay = Relay::start("big-ids");
    for last in ["1", "2"] {
        let body = format!(
            r#"{{"contact_id":"1","text":"same","message_id":12345678901234567890{last}}}"#
        );
        let reply = relay.post_webhook("application/json", body.as_bytes());
        assert_eq!(reply.json()["stored"], 1, "{}", reply.text());
    }
    let ids: Vec<String> = relay.get_admin("/api/messages").json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["external_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["123456789012345678901", "123456789012345678902"]);
}

/// Ten thousand messages from one contact in one request, none with an id: every one is
/// stored, and a small webhook sent meanwhile is still answered.
#[test]
fn many_messages_without_ids_from_one_contact_are_all_stored() {
    let relay = Relay::start_args("many-weak", &["--max-body", "2000000"]);
    let batch: Vec<serde_json::Value> = (0..10_000)
        .map(|i| serde_json::json!({"contact_id": "42", "text": format!("m{}", i % 100)}))
        .collect();
    let body = serde_json::to_vec(&batch).unwrap();
    let big = {
        let addr = relay.addr.clone();
        thread::spawn(move || {
            let head = format!(
                "POST /instagram/webhook HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {SECRET}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(&body);
            send_raw(&addr, &bytes)
        })
    };
    let small = relay.post_webhook("application/json", br#"{"contact_id":"7","text":"hi"}"#);
    assert_eq!(small.status, 200);
    let big = big.join().unwrap();
    assert_eq!(big.json()["stored"], 10_000, "{}", big.text());
}

/// A raw CR or LF in what a log line quotes would start a line of the sender's choosing.
#[test]
fn log_lines_cannot_be_forged() {
    let relay = Relay::start("log-forging");
    // A request line is split at spaces, so the forged line in the path has none.
    let forged = "FORGED-LINE";
    let raw = format!(
        "POST /nowhere\r{forged}\n{forged} HTTP/1.1\r\nHost: x\r\n\
         X-Forwarded-For: 1.2.3.4\r{forged} webhook stored=1\r\nContent-Length: 0\r\n\r\n"
    );
    let _ = send_raw(&relay.addr, raw.as_bytes());
    relay.wait_count("SELECT count(*) FROM rejected", 1);
    for line in relay.log().lines() {
        assert!(!line.starts_with(forged), "a forged line: {line:?}");
        assert!(!line.contains('\r'), "a raw CR in the log: {line:?}");
    }
}

#[test]
fn only_the_exact_secret_is_accepted() {
    let relay = Relay::start("exact-secret");
    for presented in [
        format!("{SECRET}\u{3000}"),
        format!("\u{85}{SECRET}"),
        format!("{SECRET}\t"),
        SECRET[..SECRET.len() - 1].to_string(),
    ] {
        let query = format!("/instagram/webhook?secret={}", percent(&presented));
        let reply = relay.request(
            "POST",
            &query,
            &[("Content-Type", "application/json")],
            br#"{"contact_id":"1","text":"x"}"#,
        );
        assert_eq!(reply.status, 401, "{presented:?} was accepted");
    }
    let bearer = relay.request(
        "GET",
        "/instagram/stats",
        &[("Authorization", &format!("Bearer  {ADMIN}"))],
        b"",
    );
    assert_eq!(bearer.status, 401);
    // A secret parameter spelled with escapes is still a secret: never stored in clear.
    let reply = relay.request(
        "POST",
        &format!("/instagram/webhook?secre%74={SECRET}&x=1"),
        &[("Content-Type", "application/json")],
        br#"{"contact_id":"1","text":"x"}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let query: String = relay
        .db()
        .query_row("SELECT query FROM raw_requests", [], |r| r.get(0))
        .unwrap();
    assert!(!query.contains(SECRET), "{query}");
}

fn percent(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Sends `raw` and returns the first answer and whether the server then closed the
/// connection (instead of reading what followed).
fn answer_and_close(addr: &str, raw: &[u8]) -> (Reply, bool) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut reader = BufReader::new(stream);
    let reply = read_reply(&mut reader);
    let mut rest = Vec::new();
    let closed = reader.read_to_end(&mut rest).is_ok() && rest.is_empty();
    (reply, closed)
}

#[test]
fn ambiguous_framing_is_refused_and_ends_the_connection() {
    let relay = Relay::start("framing");
    let smuggled = format!(
        "POST /instagram/webhook HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {SECRET}\r\n\
         Content-Type: application/json\r\nContent-Length: 36\r\n\r\n\
         {{\"contact_id\":\"9\",\"text\":\"hidden\"}}"
    );
    let chunked_then = |extra_headers: &str| {
        format!(
            "POST /instagram/webhook HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {SECRET}\r\n\
             Content-Type: application/json\r\n{extra_headers}\r\n0\r\n\r\n{smuggled}"
        )
    };
    for (name, raw) in [
        (
            "CL and TE",
            chunked_then("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
        ),
        (
            "TE gzip",
            chunked_then("Transfer-Encoding: gzip, chunked\r\n"),
        ),
        (
            "TE twice",
            chunked_then("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
        ),
        ("CL garbage", chunked_then("Content-Length: 5x\r\n")),
        (
            "broken chunks",
            format!(
                "POST /instagram/webhook HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {SECRET}\r\n\
                 Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n{smuggled}"
            ),
        ),
    ] {
        let (reply, closed) = answer_and_close(&relay.addr, raw.as_bytes());
        assert_eq!(reply.status, 400, "{name}: {}", reply.text());
        assert!(closed, "{name}: the connection stayed open");
    }
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE text = 'hidden'"),
        0,
        "a request hidden in a body ran"
    );
    relay.wait_count(
        "SELECT count(*) FROM rejected WHERE reason = 'bad_framing'",
        4,
    );
}

#[test]
fn a_huge_query_or_header_is_refused_and_not_stored() {
    let relay = Relay::start("huge-head");
    let query = "a".repeat(5 * 1024 * 1024);
    let raw = format!(
        "GET /instagram/webhook?secret={SECRET}&text={query}&contact_id=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    let (reply, _) = answer_and_close(&relay.addr, raw.as_bytes());
    assert_eq!(reply.status, 431, "{}", reply.text());
    let header = "b".repeat(100 * 1024);
    let raw = format!(
        "POST /instagram/webhook HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {SECRET}\r\n\
         X-Filler: {header}\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let (reply, _) = answer_and_close(&relay.addr, raw.as_bytes());
    assert_eq!(reply.status, 431);
    assert_eq!(relay.count("SELECT count(*) FROM raw_requests"), 0);
}

#[test]
fn a_non_ascii_language_return_path_goes_home() {
    let relay = Relay::start("lang-back");
    let reply = relay.request("GET", "/lang?to=ru&back=/%C3%A9", &[], b"");
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("Location"), Some("/"));
}

/// Clients that send a body a byte at a time are never quiet for long. Ten times as many
/// as there are workers: a webhook is still answered at once, because a body still coming
/// off the socket is read by a thread of its own, and every trickle is cut off at its
/// deadline.
#[test]
fn trickling_bodies_cannot_hold_the_workers() {
    let relay = Relay::start_args("trickle", &["--client-timeout", "4s", "--workers", "4"]);
    let head = format!(
        "POST /instagram/webhook HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {SECRET}\r\n\
         Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tricklers: Vec<_> = (0..40)
        .map(|_| {
            // One after another: a burst of new connections can leave some with no
            // tiny_http thread until another closes (a known tiny_http limit, README).
            thread::sleep(Duration::from_millis(20));
            let mut stream = TcpStream::connect(&relay.addr).unwrap();
            stream.write_all(head.as_bytes()).unwrap();
            let stop = std::sync::Arc::clone(&stop);
            thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if stream.write_all(b" ").is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(500));
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let reply = relay.post_webhook(
        "application/json",
        br#"{"contact_id":"1","text":"through"}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    // Well before the first trickle reaches its deadline and frees anything.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered only after {:?}",
        started.elapsed()
    );
    relay.wait_count(
        "SELECT count(*) FROM rejected WHERE reason = 'incomplete' AND detail LIKE '%took longer%'",
        40,
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tricklers {
        let _ = t.join();
    }
}
