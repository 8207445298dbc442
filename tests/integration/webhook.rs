//! The webhook endpoint: every fixture, secrets, bad input, HTTP edge cases, storage failure.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::*;

fn messages(relay: &Relay) -> Vec<serde_json::Value> {
    let reply = relay.get_admin("/api/messages?after=0&limit=1000");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["messages"].as_array().unwrap().clone()
}

#[test]
fn chatrace_external_request_is_stored_with_every_field() {
    let relay = Relay::start("fixture-chatrace");
    let reply = relay.post_webhook(
        "application/json",
        &fixture("chatrace-external-request.json"),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = reply.json();
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["stored"], 1);
    assert_eq!(answer["duplicates"], 0);
    assert_eq!(answer["ids"].as_array().unwrap().len(), 1);

    let all = messages(&relay);
    assert_eq!(all.len(), 1);
    let m = &all[0];
    assert_eq!(m["id"], answer["ids"][0]);
    assert_eq!(m["contact_id"], "6742218934563412");
    assert_eq!(m["contact_name"], "Anna Petrova");
    assert_eq!(m["username"], "anna.p");
    assert_eq!(m["channel"], "instagram");
    assert_eq!(m["direction"], "in");
    assert_eq!(m["text"], "Здравствуйте, сколько стоит доставка?");
    assert_eq!(m["sent_at"], "2026-11-13T10:15:02Z");
    assert!(m["received_at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn flat_legacy_body_keeps_external_id_and_unix_seconds() {
    let relay = Relay::start("fixture-flat");
    let reply = relay.post_webhook("application/json", &fixture("flat-legacy.json"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let m = &messages(&relay)[0];
    assert_eq!(m["contact_id"], "6742218934563412");
    assert_eq!(m["external_id"], "m_AbC123");
    assert_eq!(m["text"], "Hi!");
    assert_eq!(m["sent_at"], "2025-11-13T10:15:02Z");
}

#[test]
fn form_encoded_body_is_percent_decoded() {
    let relay = Relay::start("fixture-form");
    let reply = relay.post_webhook(
        "application/x-www-form-urlencoded",
        &fixture("form-encoded.txt"),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let m = &messages(&relay)[0];
    assert_eq!(m["contact_id"], "6742218934563412");
    assert_eq!(m["text"], "Привет");
    assert_eq!(m["channel"], "instagram");
}

#[test]
fn meta_shapes_give_sender_mid_echo_and_attachment() {
    let relay = Relay::start("fixture-meta");
    let reply = relay.post_webhook("application/json", &fixture("meta-instagram.json"));
    assert_eq!(reply.json()["stored"], 1);
    let reply = relay.post_webhook(
        "application/json",
        &fixture("meta-echo-and-attachment.json"),
    );
    assert_eq!(reply.json()["stored"], 2, "{}", reply.text());

    let all = messages(&relay);
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["contact_id"], "6742218934563412");
    assert_eq!(
        all[0]["external_id"],
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx"
    );
    assert_eq!(all[0]["sent_at"], "2025-11-13T10:15:02.811Z");
    assert_eq!(all[0]["text"], "Hi from Meta");

    let image = &all[1];
    assert_eq!(image["direction"], "in");
    assert!(image["text"].is_null());
    assert_eq!(image["attachments"][0]["type"], "image");
    assert_eq!(
        image["attachments"][0]["url"],
        "https://cdn.example.com/ig/asset-1.jpg"
    );

    let echo = &all[2];
    assert_eq!(echo["direction"], "out");
    assert_eq!(echo["contact_id"], "6742218934563412");
    assert_eq!(echo["text"], "Thanks!");
}

#[test]
fn unfilled_placeholders_are_accepted_kept_and_flagged() {
    let relay = Relay::start("fixture-placeholders");
    let body = fixture("unfilled-placeholders.json");
    let reply = relay.post_webhook("application/json", &body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = reply.json();
    assert_eq!(answer["stored"], 0);
    assert_eq!(answer["warning"], "unfilled_placeholders");
    assert!(messages(&relay).is_empty());
    let (flag, raw): (String, Vec<u8>) = relay
        .db()
        .query_row("SELECT flag, body FROM raw_requests", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(flag, "unfilled_placeholders");
    assert_eq!(raw, body, "the raw body is kept byte for byte");
}

#[test]
fn unknown_json_shape_is_kept_and_flagged_as_no_message() {
    let relay = Relay::start("unknown-shape");
    let reply = relay.post_webhook(
        "application/json",
        br#"{"event":"subscribed","flags":[1,2]}"#,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["warning"], "no_message");
    assert_eq!(
        relay.count("SELECT count(*) FROM raw_requests WHERE flag = 'no_message'"),
        1
    );
}

#[test]
fn the_same_body_twice_is_one_message() {
    let relay = Relay::start("duplicates");
    for name in [
        "chatrace-external-request.json",
        "flat-legacy.json",
        "meta-echo-and-attachment.json",
    ] {
        let first = relay
            .post_webhook("application/json", &fixture(name))
            .json();
        let second = relay
            .post_webhook("application/json", &fixture(name))
            .json();
        assert_eq!(second["stored"], 0, "{name}");
        assert_eq!(second["duplicates"], first["stored"], "{name}");
    }
    // Without an id or a sender time: contact + text within minutes is the same message.
    let weak = br#"{"contact_id":"42","text":"same words"}"#;
    assert_eq!(
        relay.post_webhook("application/json", weak).json()["stored"],
        1
    );
    assert_eq!(
        relay.post_webhook("application/json", weak).json()["duplicates"],
        1
    );
    assert_eq!(messages(&relay).len(), 5);
    assert_eq!(relay.stats()["duplicates"], 5);
    assert_eq!(
        relay.count("SELECT count(*) FROM raw_requests"),
        8,
        "every request is kept"
    );
}

#[test]
fn missing_or_wrong_secret_is_401_and_logged_without_the_secret() {
    let relay = Relay::start("secrets");
    let body = fixture("flat-legacy.json");
    let none = relay.request(
        "POST",
        "/instagram/webhook",
        &[("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(none.status, 401);
    assert!(none.text().contains("X-Webhook-Secret"));
    let wrong = relay.request(
        "POST",
        "/instagram/webhook",
        &[("X-Webhook-Secret", "guess-0123456789abcdef0123456789abc")],
        &body,
    );
    assert_eq!(wrong.status, 401);
    let bearer = relay.request(
        "POST",
        "/instagram/webhook",
        &[("Authorization", &format!("Bearer {SECRET}"))],
        &body,
    );
    assert_eq!(
        bearer.status, 401,
        "only X-Webhook-Secret or ?secret= carry the secret"
    );
    let in_query = relay.request(
        "POST",
        &format!("/instagram/webhook?secret={SECRET}"),
        &[("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(in_query.status, 200, "{}", in_query.text());

    assert!(messages(&relay).len() == 1);
    relay.wait_count("SELECT count(*) FROM rejected", 3);
    let reasons: Vec<String> = relay
        .db()
        .prepare("SELECT reason FROM rejected ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(reasons, ["missing_secret", "bad_secret", "missing_secret"]);
    assert_eq!(relay.stats()["webhooks_rejected"], 3);
    let raw_query: String = relay
        .db()
        .query_row("SELECT query FROM raw_requests", [], |r| r.get(0))
        .unwrap();
    assert!(!raw_query.contains(SECRET), "stored query: {raw_query}");
    let headers: String = relay
        .db()
        .query_row("SELECT headers FROM raw_requests", [], |r| r.get(0))
        .unwrap();
    assert!(!headers.contains(SECRET));
    assert!(!relay.log().contains(SECRET), "the secret reached the log");
}

#[test]
fn malformed_json_is_400_with_a_reason() {
    let relay = Relay::start("malformed");
    let reply = relay.post_webhook("application/json", br#"{"contact_id": "1", "text": "#);
    assert_eq!(reply.status, 400);
    let error = reply.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("malformed"), "{error}");
    assert!(error.contains("line 1"), "the reason says where: {error}");
    assert_eq!(relay.count("SELECT count(*) FROM raw_requests"), 0);
    relay.wait_count(
        "SELECT count(*) FROM rejected WHERE reason = 'malformed'",
        1,
    );
}

#[test]
fn body_over_max_body_is_413() {
    let relay = Relay::start_args("too-large", &["--max-body", "1000"]);
    let big = format!(r#"{{"contact_id":"1","text":"{}"}}"#, "x".repeat(2000));
    let reply = relay.post_webhook("application/json", big.as_bytes());
    assert_eq!(reply.status, 413);
    // The same through chunked encoding, where no length is declared up front.
    let chunked = chunked_request(&relay, big.as_bytes());
    assert_eq!(send_raw(&relay.addr, &chunked).status, 413);
    // A forged, absurd Content-Length must not take the process down.
    let forged = format!(
        "POST /instagram/webhook HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {SECRET}\r\nContent-Length: 99999999999999\r\n\r\n{{}}"
    );
    assert_eq!(send_raw(&relay.addr, forged.as_bytes()).status, 413);
    let ok = relay.post_webhook("application/json", br#"{"contact_id":"1","text":"small"}"#);
    assert_eq!(ok.status, 200, "still serving: {}", ok.text());
    relay.wait_count(
        "SELECT count(*) FROM rejected WHERE reason = 'too_large'",
        3,
    );
}

fn chunked_request(relay: &Relay, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST /instagram/webhook HTTP/1.1\r\nHost: {}\r\nX-Webhook-Secret: {SECRET}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        relay.addr
    )
    .into_bytes();
    for piece in body.chunks(100) {
        raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        raw.extend_from_slice(piece);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

#[test]
fn chunked_body_is_read_whole() {
    let relay = Relay::start("chunked");
    let reply = send_raw(
        &relay.addr,
        &chunked_request(&relay, &fixture("chatrace-external-request.json")),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        messages(&relay)[0]["text"],
        "Здравствуйте, сколько стоит доставка?"
    );
}

#[test]
fn keep_alive_connection_serves_many_webhooks() {
    let relay = Relay::start("keep-alive");
    let stream = TcpStream::connect(&relay.addr).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    for i in 0..20 {
        let body = format!(r#"{{"contact_id":"c{i}","text":"hello","message_id":"k{i}"}}"#);
        let raw = format!(
            "POST /instagram/webhook HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {SECRET}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        writer.write_all(raw.as_bytes()).unwrap();
        let reply = read_reply(&mut reader);
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text());
    }
    assert_eq!(messages(&relay).len(), 20);
}

#[test]
fn get_handles_meta_handshake_query_messages_and_a_friendly_probe() {
    let relay = Relay::start("get");
    let ok = relay.request(
        "GET",
        &format!("/instagram/webhook?hub.mode=subscribe&hub.verify_token={SECRET}&hub.challenge=1158201444"),
        &[],
        b"",
    );
    assert_eq!(ok.status, 200);
    assert_eq!(ok.text(), "1158201444");
    let bad = relay.request(
        "GET",
        "/instagram/webhook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1",
        &[],
        b"",
    );
    assert_eq!(bad.status, 403);

    let up = relay.request("GET", "/instagram/webhook", &[], b"");
    assert_eq!(up.status, 200);
    assert!(up.text().contains("up"));

    let query = relay.request(
        "GET",
        &format!(
            "/instagram/webhook?secret={SECRET}&contact_id=77&text=%D0%94%D0%B0+%21&channel=10"
        ),
        &[],
        b"",
    );
    assert_eq!(query.status, 200, "{}", query.text());
    let m = &messages(&relay)[0];
    assert_eq!(m["contact_id"], "77");
    assert_eq!(m["text"], "Да !");
    let no_secret = relay.request("GET", "/instagram/webhook?contact_id=77&text=x", &[], b"");
    assert_eq!(no_secret.status, 401);
}

#[test]
fn wrong_path_is_404_and_logged_for_the_setup_page() {
    let relay = Relay::start("wrong-path");
    let reply = relay.request("POST", "/webhook", &[("X-Webhook-Secret", SECRET)], b"{}");
    assert_eq!(reply.status, 404);
    relay.wait_count("SELECT count(*) FROM rejected", 1);
    let (reason, detail): (String, String) = relay
        .db()
        .query_row("SELECT reason, detail FROM rejected", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(reason, "wrong_path");
    assert!(detail.contains("/instagram/webhook"));
}

/// While another process holds the database's write lock the relay cannot commit: it must
/// answer 503 with Retry-After, acknowledge nothing it did not store, and recover by itself.
#[test]
fn storage_failure_is_503_and_the_relay_recovers() {
    let relay = Relay::start("locked");
    assert_eq!(
        relay
            .post_webhook("application/json", &fixture("flat-legacy.json"))
            .status,
        200
    );

    let lock = relay.db();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let reply = relay.post_webhook(
        "application/json",
        br#"{"contact_id":"9","text":"during the lock","message_id":"L1"}"#,
    );
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(reply.header("Retry-After").is_some());
    let health = relay.request("GET", "/healthz", &[], b"");
    assert_eq!(health.status, 503);
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);

    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE external_id = 'L1'"),
        0
    );
    let again = relay.post_webhook(
        "application/json",
        br#"{"contact_id":"9","text":"during the lock","message_id":"L1"}"#,
    );
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(
        again.json()["stored"],
        1,
        "the refused request was not half-stored"
    );
    assert_eq!(relay.request("GET", "/healthz", &[], b"").status, 200);
}

/// A database that reaches --max-db-mb behaves like a full disk: 503 and nothing half-stored.
#[test]
fn full_database_is_503_never_a_false_ack() {
    let relay = Relay::start_args("full", &["--max-db-mb", "1"]);
    let text = "y".repeat(8000);
    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 0..400 {
        let body = format!(r#"{{"contact_id":"c","text":"{text}","message_id":"f{i}"}}"#);
        let reply = relay.post_webhook("application/json", body.as_bytes());
        match reply.status {
            200 => acked.push(format!("f{i}")),
            503 => refused += 1,
            other => panic!("unexpected {other}: {}", reply.text()),
        }
    }
    assert!(refused > 0, "the 1 MiB cap was never reached");
    assert!(!acked.is_empty());
    assert_each_stored_once(&relay, &acked);
    let stats = relay.get_admin("/instagram/stats");
    assert_eq!(stats.status, 200, "reads still work when full");
}

/// A client that stops mid-body and closes its side. tiny_http hands over what did arrive
/// as if it were the whole body, and a cut-off form body still parses: it must be refused,
/// or the truncated text would be stored and the sender's full retry dropped as a duplicate.
#[test]
fn a_body_cut_short_is_refused_not_stored_truncated() {
    let relay = Relay::start("cut-short");
    let body = format!("contact_id=1&message_id=cut1&text={}", "a".repeat(3000));
    let head = format!(
        "POST /instagram/webhook HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {SECRET}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(&relay.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body.as_bytes()[..2000]).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let reply = read_reply(&mut BufReader::new(stream));
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("ended after"), "{}", reply.text());
    assert_eq!(relay.count("SELECT count(*) FROM messages"), 0);
    relay.wait_count(
        "SELECT count(*) FROM rejected WHERE reason = 'incomplete'",
        1,
    );
    // The whole body, sent again, is stored in full.
    let reply = relay.post_webhook("application/x-www-form-urlencoded", body.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        relay.count("SELECT length(text) FROM messages WHERE external_id = 'cut1'"),
        3000
    );
}

/// The same, with the filesystem itself full rather than the relay's own cap: a small tmpfs
/// holds the database, and a filler file takes all but a little of it. When the filler is
/// deleted, the relay takes webhooks again by itself.
#[test]
fn full_disk_is_503_and_the_relay_recovers_when_space_returns() {
    let disk = match SmallDisk::mount("full-disk", "4m") {
        Some(disk) => disk,
        None => {
            eprintln!("skipped: mounting a tmpfs needs root");
            return;
        }
    };
    let relay = Relay::start_in(disk.0.clone(), &[], &KNOWN_SECRETS);
    let filler = disk.0.join("filler");
    std::fs::write(
        &filler,
        vec![0u8; disk.free_bytes().saturating_sub(400 * 1024)],
    )
    .unwrap();

    let text = "z".repeat(900);
    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 0..2000 {
        let body = format!(r#"{{"contact_id":"c","text":"{text}","message_id":"d{i}"}}"#);
        let reply = relay.post_webhook("application/json", body.as_bytes());
        match reply.status {
            200 => acked.push(format!("d{i}")),
            503 => {
                assert_eq!(reply.header("Retry-After"), Some("5"));
                refused += 1;
                if refused == 5 {
                    break;
                }
            }
            other => panic!("unexpected {other}: {}", reply.text()),
        }
    }
    assert_eq!(refused, 5, "the disk never filled up");
    assert!(!acked.is_empty());
    let health = send_raw(&relay.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        health.status, 503,
        "healthz must say the database takes no writes"
    );

    std::fs::remove_file(&filler).unwrap();
    let reply = relay.post_webhook(
        "application/json",
        br#"{"contact_id":"c","text":"room again","message_id":"after"}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_each_stored_once(&relay, &acked);
    let check: String = relay
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(relay);
}

/// Every acknowledged external id must be in the database exactly once.
fn assert_each_stored_once(relay: &Relay, acked: &[String]) {
    for id in acked {
        let n = relay.count(&format!(
            "SELECT count(*) FROM messages WHERE external_id = '{id}'"
        ));
        assert_eq!(n, 1, "{id} was acknowledged but is not stored");
    }
}

/// A tmpfs of a given size, mounted on a fresh directory and unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(name: &str, size: &str) -> Option<SmallDisk> {
        let dir = temp_dir(name);
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(SmallDisk(dir))
    }

    fn free_bytes(&self) -> usize {
        let output = std::process::Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.0)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
