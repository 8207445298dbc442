//! The read side at scale: a database of N messages over 30 days is generated with plain
//! SQL (big transactions, synchronous=OFF, for generation only), then a relay started on it
//! answers stats, the dashboard, /metrics, the message list, the cursor, and the CLI's
//! `stats`; each is timed warm (median and max of `READS` runs). Run with
//! `BENCH_READS=1000000,10000000` (sizes to generate; the database is deleted afterwards).
//!
//! With `BENCH_PRUNE=N`, also: N messages 60 days old are generated, the relay is started
//! with `--keep-messages 30d`, and the webhook load at c=32 is measured while retention
//! deletes them.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::params;

use crate::util::{binary, temp_dir, Relay, Reply, ADMIN, KNOWN_SECRETS};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const READS: usize = 21;
pub const CONTACTS: i64 = 50_000;
/// Every generated message's text.
pub const TEXT: &str = "Здравствуйте! Сколько стоит доставка в Казань?";

/// The weak key the relay gives an incoming text message without an id.
pub fn weak_key(contact_id: &str, text: &str) -> [u8; 16] {
    chatrace_relay::payload::NewMessage {
        sent_at_ms: None,
        channel: None,
        direction: chatrace_relay::payload::Direction::In,
        contact_id: contact_id.to_string(),
        contact_name: None,
        username: None,
        profile_pic: None,
        text: Some(text.to_string()),
        attachments: Vec::new(),
        external_id: None,
    }
    .weak_key()
}

/// Creates the schema by starting and stopping the relay, then fills it with `n` messages
/// (one raw request each) spread evenly over the `days` days before `end_ms`, with the
/// rollups the relay would have written for them. With `weak`, the messages came without a
/// `message_id` (a flow that sends none): no dedup key, and each in the `messages_weak`
/// index under its weak key, the index catch-up matches by.
pub fn generate(dir: &Path, n: i64, end_ms: i64, days: i64, weak: bool) {
    generate_with(dir, n, end_ms, days, weak, &|_| TEXT.to_string());
}

/// `generate`, each message's text made by `text` from its id. The search index is filled
/// by the relay's triggers as the rows go in.
pub fn generate_with(
    dir: &Path,
    n: i64,
    end_ms: i64,
    days: i64,
    weak: bool,
    text: &dyn Fn(i64) -> String,
) {
    let mut relay = Relay::start_in(dir.to_path_buf(), &[], &KNOWN_SECRETS);
    relay.terminate();
    let started = Instant::now();
    let mut conn = rusqlite::Connection::open(dir.join("relay.db")).unwrap();
    conn.execute_batch(
        "PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000; PRAGMA foreign_keys = OFF;",
    )
    .unwrap();
    // Indexes are built once at the end (a sort), not row by row.
    let indexes: Vec<String> = conn
        .prepare("SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name IN ('messages', 'raw_requests') AND sql IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for sql in &indexes {
        let name = sql
            .split_whitespace()
            .nth(if sql.contains("UNIQUE") { 3 } else { 2 })
            .unwrap();
        conn.execute_batch(&format!("DROP INDEX {name}")).unwrap();
    }
    let span = days * DAY_MS;
    let first = end_ms - span;
    let body_tail = r#"","channel":"instagram","first_name":"Anna","ig_username":"anna.p","text":"Здравствуйте! Сколько стоит доставка в Казань?"}"#;
    let mut daily = std::collections::BTreeMap::<i64, i64>::new();
    let mut hourly = std::collections::BTreeMap::<i64, i64>::new();
    let mut last_seen = vec![0i64; CONTACTS as usize];
    let chunk = 200_000;
    let mut i = 0;
    while i < n {
        let tx = conn.transaction().unwrap();
        {
            let mut raw = tx
                .prepare(
                    "INSERT INTO raw_requests (id, received_at, method, path, query, remote_addr,
                     content_type, headers, body, stored) VALUES (?1, ?2, 'POST',
                     '/instagram/webhook', '', '127.0.0.1', 'application/json', '{}', ?3, 1)",
                )
                .unwrap();
            let mut msg = tx
                .prepare(
                    "INSERT INTO messages (id, raw_request_id, received_at, channel, direction,
                     contact_id, text, attachments, external_id, dedup_key, weak_key)
                     VALUES (?1, ?1, ?2, 'instagram', 'in', ?3, ?4, '[]', ?5, ?6, ?7)",
                )
                .unwrap();
            for id in i + 1..=(i + chunk).min(n) {
                let at = first + (span * (id - 1)) / n;
                let contact = (id * 7919) % CONTACTS;
                let external = format!("aWdfZAG1faXRlbToxOkl{id:012}");
                let body = if weak {
                    format!(r#"{{"contact_id":"674221893{contact:07}{body_tail}"#)
                } else {
                    format!(
                        r#"{{"contact_id":"674221893{contact:07}","message_id":"{external}{body_tail}"#
                    )
                };
                raw.execute(params![id, at, body.as_bytes()]).unwrap();
                let contact_id = format!("674221893{contact:07}");
                let (external, key, weak_hash) = if weak {
                    (None, None, Some(weak_key(&contact_id, TEXT).to_vec()))
                } else {
                    use sha2::Digest;
                    let d = sha2::Sha256::digest(format!("x:{external}").as_bytes());
                    (Some(external), Some(d[..16].to_vec()), None)
                };
                msg.execute(params![
                    id,
                    at,
                    contact_id,
                    text(id),
                    external,
                    key,
                    weak_hash
                ])
                .unwrap();
                *daily.entry(at.div_euclid(DAY_MS)).or_default() += 1;
                *hourly.entry(at.div_euclid(HOUR_MS)).or_default() += 1;
                last_seen[contact as usize] = at;
            }
        }
        tx.commit().unwrap();
        i = (i + chunk).min(n);
    }
    // Before the contacts: their triggers look up each one's newest message by index.
    for sql in &indexes {
        conn.execute_batch(sql).unwrap();
    }
    let tx = conn.transaction().unwrap();
    for (day, c) in &daily {
        tx.execute(
            "INSERT INTO daily (day, messages) VALUES (?1, ?2)",
            [day, c],
        )
        .unwrap();
    }
    for (hour, c) in &hourly {
        tx.execute(
            "INSERT INTO hourly (hour, messages) VALUES (?1, ?2)",
            [hour, c],
        )
        .unwrap();
    }
    for (c, seen) in last_seen.iter().enumerate().filter(|(_, s)| **s > 0) {
        tx.execute(
            "INSERT INTO contacts (contact_id, first_seen, last_seen, messages) VALUES (?1, ?2, ?2, 1)",
            params![format!("674221893{c:07}"), seen],
        )
        .unwrap();
    }
    tx.execute(
        "INSERT INTO counters (name, value) VALUES ('messages:in', ?1), ('webhooks_received', ?1),
         ('last_message_at', ?2)",
        params![n, first + (span * (n - 1)) / n],
    )
    .unwrap();
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    drop(conn);
    let size = std::fs::metadata(dir.join("relay.db")).unwrap().len();
    println!(
        "generated {n} messages in {:.0} s: {:.0} MB, {:.0} bytes per message with its raw request",
        started.elapsed().as_secs_f64(),
        size as f64 / 1e6,
        size as f64 / n as f64
    );
}

pub struct Session {
    pub cookies: String,
}

pub fn sign_in(relay: &Relay) -> Session {
    let form = relay.request("GET", "/login", &[], b"");
    let cookies = cookies_of(&form, String::new());
    let html = form.text();
    let start = html.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    let csrf = html[start..].split('"').next().unwrap();
    let reply = relay.request(
        "POST",
        "/login",
        &[
            ("Cookie", &cookies),
            ("Origin", &relay.url("")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={csrf}&token={ADMIN}").as_bytes(),
    );
    assert_eq!(reply.status, 303, "{}", reply.text());
    Session {
        cookies: cookies_of(&reply, cookies),
    }
}

fn cookies_of(reply: &Reply, mut jar: String) -> String {
    for (n, v) in &reply.headers {
        if n.eq_ignore_ascii_case("Set-Cookie") && !v.contains("Max-Age=0") {
            let pair = v.split(';').next().unwrap();
            if !jar.is_empty() {
                jar.push_str("; ");
            }
            jar.push_str(pair);
        }
    }
    jar
}

/// Median and max, in ms, of `READS` timed runs after one warm-up.
pub fn time(mut run: impl FnMut()) -> (f64, f64) {
    run();
    let mut ms: Vec<f64> = (0..READS)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[READS / 2], ms[READS - 1])
}

pub fn bench_reads(n: i64) {
    let dir = temp_dir(&format!("reads-{n}"));
    let now = crate::now_ms();
    generate(&dir, n, now, 30, false);
    let relay = Relay::start_in(dir.clone(), &[], &KNOWN_SECRETS);
    let session = sign_in(&relay);
    let bearer = format!("Bearer {ADMIN}");
    let get = |path: &str| {
        let reply = relay.request("GET", path, &[("Authorization", &bearer)], b"");
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    };
    let page = |path: &str| {
        let reply = relay.request("GET", path, &[("Cookie", &session.cookies)], b"");
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    };
    let middle = n / 2;
    let db = relay.db.to_str().unwrap().to_string();
    let rows: Vec<(&str, (f64, f64))> = vec![
        ("GET /instagram/stats", time(|| get("/instagram/stats"))),
        (
            "GET / (dashboard, no token or public URL)",
            time(|| page("/")),
        ),
        ("GET /metrics", time(|| get("/metrics"))),
        ("GET /messages (newest page)", time(|| page("/messages"))),
        (
            "GET /messages?before=<middle> (a page far back)",
            time(|| page(&format!("/messages?before={middle}&page=2"))),
        ),
        (
            "GET /api/messages?after=<middle>&limit=100",
            time(|| get(&format!("/api/messages?after={middle}&limit=100"))),
        ),
        (
            "chatrace-relay stats (whole process)",
            time(|| {
                let out = std::process::Command::new(binary())
                    .args(["stats", "--db", &db])
                    .output()
                    .unwrap();
                assert!(out.status.success());
            }),
        ),
    ];
    println!("\nreads at {n} messages over 30 days (median / max of {READS} warm runs, ms):");
    for (what, (median, max)) in rows {
        println!("  {what:<50} {median:>8.2} {max:>8.2}");
    }
    drop(relay);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A relay with `--keep-messages 30d` on a database of `n` messages 60 days old.
pub fn prune_relay(n: i64, extra: &[&str]) -> Relay {
    let dir = temp_dir(&format!("prune-{n}"));
    generate(&dir, n, crate::now_ms() - 60 * DAY_MS, 1, false);
    let mut args = vec!["--keep-messages", "30d"];
    args.extend_from_slice(extra);
    let env = [KNOWN_SECRETS[0], ("RUST_LOG", "info")];
    Relay::start_in(dir, &args, &env)
}

pub fn pruned_so_far(relay: &Relay) -> i64 {
    relay.count("SELECT coalesce(max(value), 0) FROM counters WHERE name = 'pruned:messages'")
}

#[allow(dead_code)]
pub const SETTLE: Duration = Duration::from_secs(1);
