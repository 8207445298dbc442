//! Conversations at scale (`BENCH_CONVERSATIONS=1000000`): a database of N messages with
//! varied texts over 30 days, plus one contact with a 1,000-message thread. Times the
//! contact list, that thread, search (a rare word, the commonest word, a prefix, a
//! filtered search), reports the search index's share of the file, and measures webhooks
//! at c=32 with the index and with its triggers dropped, alternated.

use std::net::SocketAddr;

use rusqlite::params;

use crate::reads::{generate_with, sign_in, time};
use crate::util::{temp_dir, Relay, ADMIN, KNOWN_SECRETS};
use crate::{run_load, Mode, Settings, TARGET_CONNS};

const THREAD: &str = "6742218930999999";
const THREAD_MESSAGES: i64 = 1_000;
const SYLLABLES: [&str; 18] = [
    "ка", "ло", "ми", "до", "ста", "вка", "пре", "сто", "ри", "на", "ве", "за", "ко", "ли", "бо",
    "ру", "се", "ты",
];
const VOCABULARY: usize = 20_000;

/// The k-th word of the vocabulary: 2 to 4 syllables, every tenth one Latin.
fn word(k: usize) -> String {
    let mut out = String::new();
    let mut rest = k + SYLLABLES.len();
    while rest > 0 {
        out.push_str(SYLLABLES[rest % SYLLABLES.len()]);
        rest /= SYLLABLES.len();
    }
    if k % 10 == 9 {
        format!("w{k}x")
    } else {
        out
    }
}

/// 6 to 14 words per message, word k drawn about 1/k as often as the first (Zipf-like),
/// so a few words are in most messages and most words in few.
fn text_of(id: i64) -> String {
    let mut state = (id as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let words = 6 + (next() * 9.0) as usize;
    (0..words)
        .map(|_| word(((VOCABULARY as f64).powf(next()) as usize).saturating_sub(1)))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn bench_conversations(settings: &Settings, n: i64) {
    let dir = temp_dir(&format!("conversations-{n}"));
    let now = crate::now_ms();
    generate_with(&dir, n, now, 30, false, &text_of);
    add_thread(&dir, now);
    let relay = Relay::start_in(dir.clone(), &[], &KNOWN_SECRETS);
    let session = sign_in(&relay);
    let bearer = format!("Bearer {ADMIN}");
    let page = |path: &str| {
        let reply = relay.request("GET", path, &[("Cookie", &session.cookies)], b"");
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        reply
    };
    let api = |path: &str| {
        let reply = relay.request("GET", path, &[("Authorization", &bearer)], b"");
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        reply
    };
    let found = |path: &str| api(path).json()["messages"].as_array().unwrap().len();
    let common = crate::util_encode(&word(0));
    let rare = crate::util_encode(&word(VOCABULARY - 3));
    let prefix = crate::util_encode(&word(40)[..4]);
    let middle_contact = relay
        .db()
        .query_row(
            "SELECT last_at, contact_id FROM contacts ORDER BY last_at DESC LIMIT 1 OFFSET 25000",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .unwrap();
    let some_contact = "6742218930000042";
    println!(
        "\nsearch at {n} messages: {} found for the commonest word (page of 100), {} for a rare one, {} for a prefix",
        found(&format!("/api/messages?q={common}&limit=100")),
        found(&format!("/api/messages?q={rare}&limit=100")),
        found(&format!("/api/messages?q={prefix}&limit=100")),
    );
    let rows: Vec<(String, (f64, f64))> = vec![
        (
            "GET /contacts (newest page)".into(),
            time(|| {
                page("/contacts");
            }),
        ),
        (
            "GET /contacts?before_at=..&before=.. (25,000 down)".into(),
            time(|| {
                page(&format!(
                    "/contacts?before_at={}&before={}",
                    middle_contact.0, middle_contact.1
                ));
            }),
        ),
        (
            format!("GET /contacts/{{id}} ({THREAD_MESSAGES}-message thread, newest 200)"),
            time(|| {
                page(&format!("/contacts/{THREAD}"));
            }),
        ),
        (
            format!("GET /contacts/{{id}}/export?format=csv ({THREAD_MESSAGES} messages)"),
            time(|| {
                page(&format!("/contacts/{THREAD}/export?format=csv"));
            }),
        ),
        (
            "GET /search?q=<commonest word>".into(),
            time(|| {
                page(&format!("/search?q={common}"));
            }),
        ),
        (
            "GET /search?q=<rare word>".into(),
            time(|| {
                page(&format!("/search?q={rare}"));
            }),
        ),
        (
            "GET /search?q=<4-letter prefix>".into(),
            time(|| {
                page(&format!("/search?q={prefix}"));
            }),
        ),
        (
            "GET /api/messages?q=<commonest>&limit=100".into(),
            time(|| {
                api(&format!("/api/messages?q={common}&limit=100"));
            }),
        ),
        (
            "GET /api/messages?q=<commonest>&contact=<one of 50,000>".into(),
            time(|| {
                api(&format!("/api/messages?q={common}&contact={some_contact}"));
            }),
        ),
        (
            "GET /api/messages?q=<two common words>".into(),
            time(|| {
                api(&format!(
                    "/api/messages?q={common}%20{}",
                    crate::util_encode(&word(1))
                ));
            }),
        ),
    ];
    println!("conversation reads at {n} messages (median / max of warm runs, ms):");
    for (what, (median, max)) in rows {
        println!("  {what:<62} {median:>8.2} {max:>8.2}");
    }
    drop(relay);
    let conn = rusqlite::Connection::open(dir.join("relay.db")).unwrap();
    let total: i64 = conn
        .query_row(
            "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let index: i64 = conn
        .query_row(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'message_search%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let texts: i64 = conn
        .query_row(
            "SELECT sum(length(CAST(text AS BLOB))) FROM messages",
            [],
            |r| r.get(0),
        )
        .unwrap();
    println!(
        "database: {:.0} MB with the search index, {:.0} MB without it; the index is {:.0} MB \
         ({:.0} bytes per message; the texts themselves are {:.0} MB)",
        total as f64 / 1e6,
        (total - index) as f64 / 1e6,
        index as f64 / 1e6,
        index as f64 / (n + THREAD_MESSAGES) as f64,
        texts as f64 / 1e6
    );
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);

    println!("webhooks at c={TARGET_CONNS}, alternated (req/s, p50 ms, p99 ms):");
    for round in 0..2 {
        for without in [false, true] {
            let (rate, p50, p99) = ingest(settings, without, round);
            println!(
                "  {:<28} {rate:>8.0} {p50:>6.2} {p99:>6.2}",
                if without {
                    "without the search index"
                } else {
                    "with the search index"
                }
            );
        }
    }
}

/// One contact with a long conversation, both directions, written through the triggers.
fn add_thread(dir: &std::path::Path, now: i64) {
    let mut conn = rusqlite::Connection::open(dir.join("relay.db")).unwrap();
    let tx = conn.transaction().unwrap();
    for i in 0..THREAD_MESSAGES {
        tx.execute(
            "INSERT INTO messages (received_at, channel, direction, contact_id, text, attachments, source)
             VALUES (?1, 'instagram', ?2, ?3, ?4, '[]', ?5)",
            params![
                now - (THREAD_MESSAGES - i) * 60_000,
                if i % 2 == 0 { "in" } else { "out" },
                THREAD,
                text_of(10_000_000 + i),
                if i % 2 == 0 { "webhook" } else { "relay" },
            ],
        )
        .unwrap();
    }
    tx.execute(
        "INSERT INTO contacts (contact_id, contact_name, first_seen, last_seen, messages)
         VALUES (?1, 'Long Thread', ?2, ?2, ?3)",
        params![THREAD, now, THREAD_MESSAGES],
    )
    .unwrap();
    tx.commit().unwrap();
}

/// Webhooks at c=32 into a fresh relay, with the search triggers dropped when `without`.
fn ingest(settings: &Settings, without: bool, round: usize) -> (f64, f64, f64) {
    let env = [KNOWN_SECRETS[0], ("RUST_LOG", settings.relay_log.as_str())];
    let mut relay = Relay::start_with(
        &format!(
            "conv-ingest-{}-{round}",
            if without { "without" } else { "with" }
        ),
        &[],
        &env,
    );
    if without {
        relay.terminate();
        relay
            .db()
            .execute_batch(
                "DROP TRIGGER messages_search_insert; DROP TRIGGER messages_search_update;
                 DROP TRIGGER messages_search_delete; DROP TRIGGER contacts_search_update;",
            )
            .unwrap();
        relay.restart();
    }
    let addr: SocketAddr = relay.addr.parse().unwrap();
    let level = run_load(
        addr,
        "full",
        Mode::KeepAlive,
        TARGET_CONNS,
        settings.measure,
    );
    (
        level.rate(),
        level.percentile_ms(0.5),
        level.percentile_ms(0.99),
    )
}
