//! Webhooks while catch-up from Chatrace's inbox runs, and what matching costs on a big
//! database. Run with `BENCH_CATCH_UP=1000` (the number of changed conversations).
//!
//! First, the webhook load at c=32 keep-alive against a relay whose catch-up walks a fake
//! inbox (the integration tests' `FakeInbox`, in this process) of that many conversations
//! with 20 new incoming messages each, a few minutes old; alternated with the same relay,
//! inbox and load with catch-up off (`CHATRACE_RELAY_CATCH_UP_EVERY=0`), `PAIRS` times. The
//! relay paces its inbox calls at `BENCH_CATCH_UP_RATE` a minute (default 60000, so the
//! run is as dense as the store allows) and catches up every second. `BENCH_PAIRS` sets
//! the number of pairs (default 3).
//!
//! Then, with `BENCH_CATCH_UP_DB` messages (default 1000000; 0 skips it) generated without
//! message ids, so all of them sit in the `messages_weak` index: the query plans of the two
//! matching queries, a `catch-up` of 1,000 messages (half of them matched to webhooks
//! posted before it) into that database and into an empty one, alternated, and the matching
//! queries timed alone on both.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{params, OptionalExtension};

use crate::fake_inbox::{relay_with_inbox, FakeInbox};
use crate::reads::{generate, weak_key, CONTACTS, TEXT};
use crate::util::{binary, temp_dir, Relay, KNOWN_SECRETS};
use crate::{run_load, Level, Mode, Settings, TARGET_CONNS};

const MINUTE_MS: i64 = 60_000;
const MESSAGES_PER_CONVERSATION: usize = 20;
/// Pairs of runs, each without catch-up and then with it, unless `BENCH_PAIRS` says.
const PAIRS: usize = 3;
/// How often the caught-up count is read during a run.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// The timed catch-up: this many conversations of 20 messages, every other one of which
/// a webhook brought first; repeated this many times on each database.
const TIMED_CONVERSATIONS: usize = 50;
const TIMED_REPEATS: usize = 3;

/// The catch-up side's match, as `store_row` in src/store/inbox.rs has it (that module's
/// test checks the plan of its own text).
const MATCH_SQL: &str = "SELECT id FROM messages INDEXED BY messages_weak
     WHERE weak_key = ?1 AND dedup_key IS NULL AND is_test = 0
       AND received_at BETWEEN ?2 AND ?3
     ORDER BY received_at, id LIMIT 1";
/// The webhook side's claim, as `claim_caught_up` in src/store/ingest.rs has it.
const CLAIM_SQL: &str = "SELECT id FROM messages INDEXED BY messages_weak
     WHERE weak_key = ?1 AND raw_request_id IS NULL AND source = 'inbox'
       AND received_at BETWEEN ?2 AND ?3
     ORDER BY received_at, id LIMIT 1";

pub fn bench_catch_up(settings: &Settings, conversations: usize) {
    let rate = std::env::var("BENCH_CATCH_UP_RATE").unwrap_or_else(|_| "60000".into());
    println!(
        "webhooks at c={TARGET_CONNS} keep-alive while catch-up walks {conversations} changed \
         conversations of {MESSAGES_PER_CONVERSATION} messages (inbox calls paced at {rate}/min), \
         alternated with the same load without catch-up; {} s warm-up + {:.1} s measured",
        crate::WARM_UP.as_secs(),
        settings.measure.as_secs_f64()
    );
    println!("before: {}", crate::conditions());
    let inbox = FakeInbox::start();
    let oldest = crate::now_ms() - 10 * MINUTE_MS;
    fill(&inbox, 0..conversations, oldest, |c, k| {
        format!("Здравствуйте! Есть размер M? Вопрос {k} из разговора {c}")
    });
    let pairs = std::env::var("BENCH_PAIRS")
        .ok()
        .map_or(PAIRS, |n| n.trim().parse().expect("BENCH_PAIRS: a number"));
    let mut runs = Vec::new();
    for pair in 0..pairs {
        for with in [false, true] {
            let run = load_run(settings, &inbox, with, &rate, pair);
            println!("{}", run.line(conversations * MESSAGES_PER_CONVERSATION));
            runs.push(run);
        }
    }
    println!("after:  {}", crate::conditions());
    println!("\n| run | req/s | p50 ms | p99 ms | max ms | failures | caught up in the window | inbox calls in the window |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for run in &runs {
        println!("{}", run.row());
    }

    let big = std::env::var("BENCH_CATCH_UP_DB")
        .ok()
        .map_or(1_000_000, |n| {
            n.trim().parse().expect("BENCH_CATCH_UP_DB: a number")
        });
    if big > 0 {
        matching_at_scale(big);
    }
}

/// Adds `MESSAGES_PER_CONVERSATION` incoming messages to each conversation in `range`, a
/// second apart, the conversations a quarter of a second apart from `oldest_ms` on (the
/// first in `range` at `oldest_ms`).
fn fill(
    inbox: &FakeInbox,
    range: std::ops::Range<usize>,
    oldest_ms: i64,
    text: impl Fn(usize, usize) -> String,
) {
    let first = range.start;
    for c in range {
        let mut conversation = inbox.conversation(&contact(c), &format!("Гость {c}"));
        for k in 0..MESSAGES_PER_CONVERSATION {
            let at = oldest_ms + (c - first) as i64 * 250 + k as i64 * 1000;
            conversation = conversation.message_in(&text(c, k), at as u64);
        }
    }
}

/// The contacts the big database has history for, so the timed catch-up meets them.
fn contact(c: usize) -> String {
    format!("674221893{:07}", c as i64 % CONTACTS)
}

struct Run {
    with: bool,
    pair: usize,
    level: Level,
    /// Caught up during the measured window, and in all.
    in_window: i64,
    total: i64,
    /// Inbox calls inside the window, and the first and last call relative to its start.
    calls_in_window: usize,
    span: Option<(f64, f64)>,
    /// Webhook messages stored vs. 200 answers, when they disagree.
    mismatch: Option<(i64, usize)>,
}

fn load_run(settings: &Settings, inbox: &FakeInbox, with: bool, rate: &str, pair: usize) -> Run {
    let every = if with { "1s" } else { "0" };
    let mut env = vec![
        ("RUST_LOG", settings.relay_log.as_str()),
        ("CHATRACE_RELAY_CHATRACE_RATE", rate),
        ("CHATRACE_RELAY_CATCH_UP_EVERY", every),
    ];
    if let Some(workers) = &settings.workers {
        env.push(("CHATRACE_RELAY_WORKERS", workers.as_str()));
    }
    let calls_before = inbox.count_all();
    let name = format!("bench-catch-up-{}-{pair}", if with { "on" } else { "off" });
    let relay = relay_with_inbox(&name, inbox, &env);
    let sampler = Sampler::start(&relay.db);
    let addr = relay.addr.parse().expect("the relay's address");
    let level = run_load(
        addr,
        "full",
        Mode::KeepAlive,
        TARGET_CONNS,
        settings.measure,
    );
    let samples = sampler.stop();
    let end = level.started + Duration::from_secs_f64(level.secs);
    let caught = |at: Instant| {
        let before = samples.iter().take_while(|(t, _)| *t <= at);
        before.last().map_or(0, |(_, n)| *n)
    };
    let calls: Vec<Instant> = inbox.arrivals().into_iter().skip(calls_before).collect();
    let relative = |t: &Instant| {
        if *t >= level.started {
            t.duration_since(level.started).as_secs_f64()
        } else {
            -level.started.duration_since(*t).as_secs_f64()
        }
    };
    let stored = relay.count("SELECT count(*) FROM messages WHERE source = 'webhook'");
    let answered = level.requests_answered();
    let run = Run {
        with,
        pair,
        in_window: caught(end) - caught(level.started),
        total: samples.last().map_or(0, |(_, n)| *n),
        calls_in_window: calls
            .iter()
            .filter(|t| **t >= level.started && **t <= end)
            .count(),
        span: calls
            .first()
            .zip(calls.last())
            .map(|(a, b)| (relative(a), relative(b))),
        mismatch: (stored != answered as i64).then_some((stored, answered)),
        level,
    };
    let dir = relay.dir.clone();
    drop(relay);
    let _ = std::fs::remove_dir_all(&dir);
    run
}

impl Run {
    fn name(&self) -> String {
        let what = if self.with { "catch-up" } else { "no catch-up" };
        format!("{what}, #{}", self.pair + 1)
    }

    fn max_ms(&self) -> f64 {
        self.level
            .latencies
            .last()
            .map_or(f64::NAN, |&m| f64::from(m) / 1000.0)
    }

    fn line(&self, messages: usize) -> String {
        let l = &self.level;
        let mut line = format!(
            "{}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} failures; \
             {} of {messages} messages caught up during the {:.1} s measured ({} in all), \
             {} inbox calls in it",
            self.name(),
            l.rate(),
            l.percentile_ms(0.5),
            l.percentile_ms(0.99),
            self.max_ms(),
            l.failures,
            self.in_window,
            l.secs,
            self.total,
            self.calls_in_window
        );
        if let Some((first, last)) = self.span {
            line.push_str(&format!(
                "; inbox calls from {first:+.1} s to {last:+.1} s of the window"
            ));
        }
        if let Some((stored, answered)) = self.mismatch {
            line.push_str(&format!(
                "; MISMATCH {stored} webhook messages stored for {answered} answers of 200"
            ));
        }
        for note in l.notes.iter().take(crate::NOTES_SHOWN) {
            line.push_str(&format!("\n    {note}"));
        }
        line
    }

    fn row(&self) -> String {
        let l = &self.level;
        let caught = if self.with {
            self.in_window.to_string()
        } else {
            "—".into()
        };
        format!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.1} | {} | {caught} | {} |",
            self.name(),
            l.rate(),
            l.percentile_ms(0.5),
            l.percentile_ms(0.99),
            self.max_ms(),
            l.failures,
            self.calls_in_window
        )
    }
}

/// Reads the `caught_up` counter every `SAMPLE_EVERY` from its own connection, as an
/// operator's sqlite3 would; in runs without catch-up too, so both pay for it.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Vec<(Instant, i64)>>,
}

impl Sampler {
    fn start(db: &Path) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let conn = rusqlite::Connection::open(db).expect("open the relay's database");
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                let n: i64 = conn
                    .query_row(
                        "SELECT coalesce(max(value), 0) FROM counters WHERE name = 'caught_up'",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap_or(-1);
                samples.push((Instant::now(), n));
                thread::sleep(SAMPLE_EVERY);
            }
            samples
        });
        Sampler { stop, thread }
    }

    fn stop(self) -> Vec<(Instant, i64)> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("sampler thread panicked")
    }
}

/// The matching queries' plans on a database of `n` messages, and what catch-up and the
/// queries alone cost there and on an empty one.
fn matching_at_scale(n: i64) {
    let big = temp_dir(&format!("catch-up-{n}"));
    println!("\nmatching at scale: {n} messages without message ids, over 30 days");
    generate(&big, n, crate::now_ms(), 30, true);
    let empty = temp_dir("catch-up-empty");
    Relay::start_in(empty.clone(), &[], &KNOWN_SECRETS).terminate();
    let dbs = [("empty".to_string(), empty), (format!("{n} msgs"), big)];

    let conn = rusqlite::Connection::open(dbs[1].1.join("relay.db")).unwrap();
    let weak: i64 = conn
        .query_row(
            "SELECT count(*) FROM messages INDEXED BY messages_weak WHERE weak_key IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    println!("messages in the messages_weak index: {weak}");
    for (what, sql) in [
        ("catch-up's match (store_row)", MATCH_SQL),
        ("a webhook's claim (claim_caught_up)", CLAIM_SQL),
    ] {
        println!("EXPLAIN QUERY PLAN, {what}:");
        let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let details = plan
            .query_map(params![[0u8; 16].to_vec(), 0, 0], |r| r.get::<_, String>(3))
            .unwrap();
        for detail in details {
            println!("    {}", detail.unwrap());
        }
    }
    drop(conn);

    println!(
        "\ncatch-up of {} messages ({TIMED_CONVERSATIONS} conversations, every other message \
         posted as a webhook without message_id first), `chatrace-relay catch-up`, alternated:",
        TIMED_CONVERSATIONS * MESSAGES_PER_CONVERSATION
    );
    println!("| database | repeat | whole command s | inbox walk s | result |");
    println!("|---|---:|---:|---:|---|");
    // One inbox, so every message has its own inbox id; each repeat's conversations are
    // two minutes newer than the last's, and its catch-up starts at its oldest message, so
    // it walks only its own. All within the ten minutes a webhook may trail the inbox.
    let inbox = FakeInbox::start();
    let start = crate::now_ms() - 9 * MINUTE_MS;
    for repeat in 0..TIMED_REPEATS {
        let first = repeat * TIMED_CONVERSATIONS;
        let oldest = start + repeat as i64 * 2 * MINUTE_MS;
        fill(&inbox, first..first + TIMED_CONVERSATIONS, oldest, text);
        for (label, dir) in &dbs {
            let (whole, walk, result) = timed_catch_up(&inbox, dir, first, oldest);
            println!(
                "| {label} | {} | {whole:.2} | {walk:.2} | {result} |",
                repeat + 1
            );
        }
    }

    println!("\nthe matching queries alone, 1,000 runs each (median / p99 / max µs):");
    for (label, dir) in &dbs {
        time_queries(label, &dir.join("relay.db"));
    }
    for (_, dir) in dbs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The timed catch-up's texts: distinct per message.
fn text(c: usize, k: usize) -> String {
    format!("Добрый день! Вопрос {k} о заказе {c}")
}

/// Posts every other message of the inbox's conversations (from `first` on) as a webhook
/// without message_id, then runs `chatrace-relay catch-up` on the database: the whole
/// command's seconds, the seconds from its first inbox call to its last, its report.
fn timed_catch_up(
    inbox: &FakeInbox,
    dir: &Path,
    first: usize,
    since_ms: i64,
) -> (f64, f64, String) {
    let mut env = KNOWN_SECRETS.to_vec();
    env.extend([("CHATRACE_RELAY_CATCH_UP_EVERY", "0"), ("RUST_LOG", "warn")]);
    let mut relay = Relay::start_in(dir.to_path_buf(), &[], &env);
    for c in first..first + TIMED_CONVERSATIONS {
        for k in (0..MESSAGES_PER_CONVERSATION).step_by(2) {
            let body = serde_json::json!({
                "event": "instagram_message", "channel": "instagram",
                "contact_id": contact(c), "text": text(c, k),
            });
            let reply = relay.post_webhook("application/json", body.to_string().as_bytes());
            assert_eq!(reply.status, 200, "{}", reply.text());
        }
    }
    relay.terminate();
    let calls_before = inbox.count_all();
    let since = chatrace_relay::time::format_rfc3339(since_ms);
    let started = Instant::now();
    let out = Command::new(binary())
        .args(["catch-up", "--since", &since, "--db"])
        .arg(dir.join("relay.db"))
        .env_remove("CHATRACE_TOKEN")
        .env_remove("CHATRACE_ACCOUNT_ID")
        .env_remove("CHATRACE_RELAY_INCOMING_ONLY")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("CHATRACE_INBOX_URL", inbox.url())
        .env("CHATRACE_INBOX_TOKEN", inbox.valid_token())
        .env("CHATRACE_RELAY_CHATRACE_RATE", "60000")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run chatrace-relay catch-up");
    let whole = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success(), "catch-up failed: {stdout}");
    let calls: Vec<Instant> = inbox.arrivals().into_iter().skip(calls_before).collect();
    let walk = match (calls.first(), calls.last()) {
        (Some(a), Some(b)) => b.duration_since(*a).as_secs_f64(),
        _ => f64::NAN,
    };
    (whole, walk, stdout)
}

/// Times the two matching queries on `db`: the timed catch-up's own messages (found, now
/// claimed) and contacts with history of the same text (20 earlier messages each in the
/// big database).
fn time_queries(label: &str, db: &PathBuf) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let now = crate::now_ms();
    let own: Vec<[u8; 16]> = (0..TIMED_CONVERSATIONS)
        .flat_map(|c| {
            (0..MESSAGES_PER_CONVERSATION).map(move |k| weak_key(&contact(c), &text(c, k)))
        })
        .collect();
    let history: Vec<[u8; 16]> = (0..1000)
        .map(|c| weak_key(&contact(c * 37), TEXT))
        .collect();
    for (what, keys) in [
        ("caught-up messages' keys", &own),
        ("keys with history", &history),
    ] {
        for (query, sql) in [("match", MATCH_SQL), ("claim", CLAIM_SQL)] {
            let mut statement = conn.prepare(sql).unwrap();
            let mut micros: Vec<f64> = keys
                .iter()
                .map(|key| {
                    let started = Instant::now();
                    let _: Option<i64> = statement
                        .query_row(
                            params![&key[..], now - 20 * MINUTE_MS, now + MINUTE_MS],
                            |r| r.get(0),
                        )
                        .optional()
                        .unwrap();
                    started.elapsed().as_secs_f64() * 1e6
                })
                .collect();
            micros.sort_by(f64::total_cmp);
            let at = |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)];
            println!(
                "  {label:>8} db, {query}, {what:<24} {:>7.1} {:>7.1} {:>7.1}",
                at(0.5),
                at(0.99),
                micros[micros.len() - 1]
            );
        }
    }
}
