//! Throughput benchmark: webhooks per second and p50/p99/max latency for ~1 KB Chatrace
//! JSON bodies through the relay's full path (HTTP, parse, normalise, dedup, raw request +
//! message committed with synchronous=FULL), at 1, 8, 32 and 128 concurrent keep-alive
//! connections and with one request per connection (how a proxy without upstream
//! keep-alive talks to the relay). Two limits are measured in the same run with the same
//! load generator: a no-op tiny_http server (4 workers) answering the same requests, and
//! raw SQLite inserts of 1 KB rows (WAL, synchronous=FULL), one transaction per row and 64
//! rows per transaction. It prints the table, the ratios and PASS/MISS against the targets.
//!
//! Run: `cargo bench --bench throughput` (about 2 minutes). Environment:
//! - `BENCH_SECS` measured seconds per level (default 5; each level also warms up 1 s),
//! - `BENCH_WORKERS` passes `--workers N` to the relay (default: the relay's own default),
//! - `BENCH_RELAY_LOG` the relay's `RUST_LOG` (default `warn`: one info line per webhook
//!   would otherwise be measured too),
//! - `BENCH_CONNS` only the levels with these connection counts, e.g. `32` or `8,32`, for
//!   quick comparisons (the targets are judged only when 32 is included),
//! - `BENCH_KEEP_MEDIA` (e.g. `1GB`, or `0`) gives the relay that `--keep-media`, and one
//!   connection in eight sends a photo with each message, a distinct 40 KB file served by
//!   a CDN on loopback (`CHATRACE_RELAY_MEDIA_ALLOW_PRIVATE=1`); run it with `0` and with a
//!   size, alternating, to see what keeping media costs the webhooks.
//!
//! `BENCH_READS` and `BENCH_PRUNE` (`reads.rs`), `BENCH_CATCH_UP` (`catch_up.rs`) and
//! `BENCH_CONVERSATIONS` (`conversations.rs`) run their own measurements instead of the
//! levels.
//!
//! The load generator (`load.rs`) runs one thread per core over nonblocking
//! sockets, like `wrk`. Keep-alive connections are opened one after another, each waiting
//! for its first answer, because tiny_http 0.12 can leave a connection from a burst of new
//! ones unread for as long as the others stay open. Any request without a good answer within
//! `REPLY_TIMEOUT` counts as a failure and is printed; nothing is dropped silently.

mod catch_up;
mod conversations;
mod load;
mod reads;
// The integration tests' helpers: the benchmark starts the relay exactly as they do, and
// plays Chatrace's inbox with their fake.
#[allow(dead_code)]
#[path = "../../tests/integration/fake.rs"]
mod fake;
#[allow(dead_code)]
#[path = "../../tests/integration/fake_inbox.rs"]
mod fake_inbox;
#[allow(dead_code)]
#[path = "../../tests/integration/util.rs"]
mod util;

use util::{Relay, KNOWN_SECRETS, SECRET};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const BODY_BYTES: usize = 1024;
/// A request with no answer after this long is a failure (a starved or dead connection).
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
const WARM_UP: Duration = Duration::from_secs(1);
const KEEP_ALIVE_LEVELS: [usize; 4] = [1, 8, 32, 128];
const CONN_PER_REQUEST_LEVELS: [usize; 2] = [8, 32];
/// The level the targets are stated for.
const TARGET_CONNS: usize = 32;
const NOOP_WORKERS: usize = 4;
const RAW_BATCH: usize = 64;
/// Failure notes printed per level; the count is always complete.
const NOTES_SHOWN: usize = 5;
/// With `BENCH_KEEP_MEDIA`: every this many connections sends photos, of this size.
const PHOTO_EVERY: usize = 8;
const PHOTO_BYTES: usize = 40 * 1024;
/// The loopback CDN's address, once started.
static CDN: OnceLock<String> = OnceLock::new();

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    KeepAlive,
    ConnPerRequest,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::KeepAlive => "keep-alive",
            Mode::ConnPerRequest => "conn/request",
        }
    }

    /// For directory names and message_ids.
    fn slug(self) -> &'static str {
        match self {
            Mode::KeepAlive => "keep-alive",
            Mode::ConnPerRequest => "per-request",
        }
    }
}

struct Settings {
    measure: Duration,
    workers: Option<String>,
    relay_log: String,
    /// `BENCH_KEEP_MEDIA`: the relay's `--keep-media`, and photos in the bodies.
    keep_media: Option<String>,
    /// Connection counts to run; None runs every level.
    conns: Option<Vec<usize>>,
    tmp: PathBuf,
}

/// One level's measurement.
struct Level {
    target: &'static str,
    mode: Mode,
    conns: usize,
    requests: usize,
    /// When the measured window opened, and its length.
    started: Instant,
    secs: f64,
    /// Sorted, microseconds.
    latencies: Vec<u32>,
    failures: usize,
    notes: Vec<String>,
    /// The relay's peak RSS (VmHWM, KiB) and thread count at the end of the level.
    relay: Option<(u64, u64)>,
    /// 200 answers during warm-up and opening, which also stored a message each.
    answered_outside_window: usize,
    /// Messages in the database vs. 200 answers, when they disagree.
    mismatch: Option<(i64, usize)>,
}

impl Level {
    fn requests_answered(&self) -> usize {
        self.requests + self.answered_outside_window
    }

    fn rate(&self) -> f64 {
        self.requests as f64 / self.secs
    }

    fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank =
            ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len());
        f64::from(self.latencies[rank - 1]) / 1000.0
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn sizes(var: &str) -> Option<Vec<i64>> {
    std::env::var(var).ok().map(|list| {
        list.split(',')
            .map(|n| n.trim().parse().expect("a list of message counts"))
            .collect()
    })
}

fn main() {
    let settings = Settings::from_env();
    if let Some(sizes) = sizes("BENCH_READS") {
        for n in sizes {
            reads::bench_reads(n);
        }
        return;
    }
    if let Some(sizes) = sizes("BENCH_PRUNE") {
        for n in sizes {
            bench_prune(&settings, n);
        }
        return;
    }
    if let Some(sizes) = sizes("BENCH_CONVERSATIONS") {
        for n in sizes {
            conversations::bench_conversations(&settings, n);
        }
        return;
    }
    if let Some(sizes) = sizes("BENCH_CATCH_UP") {
        for n in sizes {
            catch_up::bench_catch_up(&settings, n.max(1) as usize);
        }
        return;
    }
    println!("chatrace-relay throughput benchmark");
    println!(
        "{} cores, load generator + server + SQLite on the same cores over loopback; \
         {} s warm-up + {} s measured per level; ~{BODY_BYTES} B JSON bodies, unique message_id each",
        thread::available_parallelism().map_or(0, |n| n.get()),
        WARM_UP.as_secs(),
        settings.measure.as_secs_f64()
    );
    println!(
        "relay: {}, RUST_LOG={}; database in {}",
        settings
            .workers
            .as_ref()
            .map_or("default workers".to_string(), |w| format!("--workers {w}")),
        settings.relay_log,
        settings.tmp.display()
    );

    if let Some(keep) = &settings.keep_media {
        start_cdn();
        println!(
            "media: --keep-media {keep}; 1 connection in {PHOTO_EVERY} sends a distinct \
             {} KB photo with every message, from a CDN on loopback",
            PHOTO_BYTES / 1024
        );
    }
    println!("before: {}", conditions());
    // The disk is shared with whatever else runs on the machine, so the raw commit rate is
    // taken before and after the HTTP levels; the ratio uses the higher (stricter) one.
    let raw_secs = settings.measure.min(Duration::from_secs(3));
    let raw_before = raw_sqlite(&settings.tmp, raw_secs);
    let mut levels = Vec::new();
    for (mode, conns) in plan(&settings) {
        levels.push(bench_relay(&settings, mode, conns));
        progress(levels.last());
    }
    let noop = start_noop();
    for (mode, conns) in plan(&settings) {
        levels.push(run_load(noop, "no-op", mode, conns, settings.measure));
        progress(levels.last());
    }
    let raw_after = raw_sqlite(&settings.tmp, raw_secs);

    report(&levels, [raw_before, raw_after]);
    println!("after:  {}", conditions());
}

impl Settings {
    fn from_env() -> Settings {
        let measure = std::env::var("BENCH_SECS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map_or(Duration::from_secs(5), Duration::from_secs_f64);
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("throughput");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).expect("create the benchmark's temp dir");
        Settings {
            measure,
            workers: std::env::var("BENCH_WORKERS").ok(),
            relay_log: std::env::var("BENCH_RELAY_LOG").unwrap_or_else(|_| "warn".into()),
            keep_media: std::env::var("BENCH_KEEP_MEDIA").ok(),
            conns: std::env::var("BENCH_CONNS").ok().map(|list| {
                list.split(',')
                    .map(|c| c.trim().parse().expect("BENCH_CONNS: numbers like 8,32"))
                    .collect()
            }),
            tmp,
        }
    }
}

fn plan(settings: &Settings) -> Vec<(Mode, usize)> {
    let keep_alive = KEEP_ALIVE_LEVELS.iter().map(|&c| (Mode::KeepAlive, c));
    let per_request = CONN_PER_REQUEST_LEVELS
        .iter()
        .map(|&c| (Mode::ConnPerRequest, c));
    keep_alive
        .chain(per_request)
        .filter(|(_, c)| settings.conns.as_ref().is_none_or(|only| only.contains(c)))
        .collect()
}

/// Load average and CPU/IO pressure: the benchmark shares the machine, and these say how
/// much it had to share.
fn conditions() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let loadavg: Vec<String> = read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .map(String::from)
        .collect();
    let pressure = |kind: &str| {
        read(&format!("/proc/pressure/{kind}"))
            .lines()
            .find(|l| l.starts_with("some"))
            .and_then(|l| l.split_whitespace().find(|f| f.starts_with("avg60=")))
            .map_or("n/a".to_string(), |f| format!("{}%", &f[6..]))
    };
    format!(
        "load average {}; pressure (share of the last 60 s some task waited) cpu {}, io {}",
        loadavg.join(" "),
        pressure("cpu"),
        pressure("io")
    )
}

fn progress(level: Option<&Level>) {
    if let Some(l) = level {
        eprintln!(
            "  {} {} c={}: {:.0} req/s, {} failures",
            l.target,
            l.mode.name(),
            l.conns,
            l.rate(),
            l.failures
        );
    }
}

/// A fresh relay process and database per level, so each level's peak RSS is its own and
/// no level inherits another's database size.
fn bench_relay(settings: &Settings, mode: Mode, conns: usize) -> Level {
    let tag = format!("{}-{conns}", mode.slug());
    let mut args = Vec::new();
    if let Some(workers) = &settings.workers {
        args.extend(["--workers", workers.as_str()]);
    }
    let mut env = vec![KNOWN_SECRETS[0], ("RUST_LOG", settings.relay_log.as_str())];
    if let Some(keep) = &settings.keep_media {
        env.push(("CHATRACE_RELAY_KEEP_MEDIA", keep.as_str()));
        env.push(("CHATRACE_RELAY_MEDIA_ALLOW_PRIVATE", "1"));
    }
    // The same way the integration tests start it.
    let relay = Relay::start_with(&format!("bench-{tag}"), &args, &env);
    let addr: SocketAddr = relay.addr.parse().expect("the relay's address");
    let mut level = run_load(addr, "full", mode, conns, settings.measure);
    level.relay = Some(relay_status(relay.pid()));
    let stored = relay.count("SELECT count(*) FROM messages");
    if stored != level.requests_answered() as i64 {
        level.mismatch = Some((stored, level.requests_answered()));
    }
    let dir = relay.dir.clone();
    drop(relay);
    let _ = std::fs::remove_dir_all(&dir);
    level
}

/// Webhook load at c=32 while retention deletes `n` old messages in the background.
fn bench_prune(settings: &Settings, n: i64) {
    let relay = reads::prune_relay(n, &[]);
    let before = reads::pruned_so_far(&relay);
    let addr: SocketAddr = relay.addr.parse().expect("the relay's address");
    let started = Instant::now();
    let level = run_load(
        addr,
        "full",
        Mode::KeepAlive,
        TARGET_CONNS,
        settings.measure,
    );
    let pruned = reads::pruned_so_far(&relay) - before;
    println!(
        "\nwebhooks at c={TARGET_CONNS} while retention deletes {n} messages 60 days old \
         (--keep-messages 30d): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, \
         {} failures; {pruned} messages deleted during the {:.1} s measured (+warm-up)",
        level.rate(),
        level.percentile_ms(0.5),
        level.percentile_ms(0.99),
        level
            .latencies
            .last()
            .map_or(f64::NAN, |&m| f64::from(m) / 1000.0),
        level.failures,
        started.elapsed().as_secs_f64()
    );
    let dir = relay.dir.clone();
    drop(relay);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Peak resident memory (KiB) and thread count of a process, from /proc.
fn relay_status(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("Threads:"))
}

/// The upper limit for any tiny_http server on this machine: parses the same requests,
/// reads the body, answers `{"ok":true}`, stores nothing.
fn start_noop() -> SocketAddr {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind no-op server"));
    let addr = server.server_addr().to_ip().expect("TCP listener");
    for _ in 0..NOOP_WORKERS {
        let server = Arc::clone(&server);
        thread::spawn(move || {
            let json = tiny_http::Header::from_bytes("Content-Type", "application/json")
                .expect("static header");
            while let Ok(mut request) = server.recv() {
                let mut body = Vec::new();
                let _ = request.as_reader().read_to_end(&mut body);
                let response =
                    tiny_http::Response::from_data(&b"{\"ok\":true}"[..]).with_header(json.clone());
                let _ = request.respond(response);
            }
        });
    }
    addr
}

fn run_load(
    addr: SocketAddr,
    target: &'static str,
    mode: Mode,
    conns: usize,
    measure: Duration,
) -> Level {
    let phase = Arc::new(load::Phase {
        recording: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        next_to_open: AtomicUsize::new(0),
    });
    let prefix = format!("{target}-{}-{conns}", mode.slug());
    let threads = load::threads(conns);
    let generators: Vec<_> = (0..threads)
        .map(|index| {
            let phase = Arc::clone(&phase);
            let prefix = prefix.clone();
            thread::spawn(move || load::drive(addr, mode, conns, &prefix, (index, threads), &phase))
        })
        .collect();
    // Each connection opens once the one before it had its first answer or failed, which
    // takes at most REPLY_TIMEOUT each.
    let opening = Instant::now();
    while phase.next_to_open.load(Ordering::Acquire) < conns
        && opening.elapsed() < REPLY_TIMEOUT * 2 * conns as u32
    {
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(WARM_UP);
    phase.recording.store(true, Ordering::SeqCst);
    let started = Instant::now();
    thread::sleep(measure);
    phase.stop.store(true, Ordering::SeqCst);
    let secs = started.elapsed().as_secs_f64();

    let mut level = Level {
        target,
        mode,
        conns,
        requests: 0,
        started,
        secs,
        latencies: Vec::new(),
        failures: 0,
        notes: Vec::new(),
        relay: None,
        mismatch: None,
        answered_outside_window: 0,
    };
    for generator in generators {
        let tally = generator.join().expect("load generator thread panicked");
        level.requests += tally.latencies.len();
        level.answered_outside_window += tally.answered - tally.latencies.len();
        level.latencies.extend(tally.latencies);
        level.failures += tally.failures;
        level.notes.extend(tally.notes);
    }
    level.latencies.sort_unstable();
    level
}

/// A Chatrace External Request body of ~1 KB, split around where the message_id goes.
struct Body {
    head: String,
    tail: String,
    /// A photo's URL up to the message_id, for connections that send photos.
    photo: Option<String>,
}

/// A CDN on loopback answering every path with a distinct 40 KB JPEG-typed file.
fn start_cdn() {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("the CDN's socket"));
    let addr = server.server_addr().to_ip().expect("the CDN's address");
    for _ in 0..2 {
        let server = Arc::clone(&server);
        thread::spawn(move || {
            while let Ok(request) = server.recv() {
                let mut file = request.url().as_bytes().to_vec();
                file.resize(PHOTO_BYTES, b'.');
                let response = tiny_http::Response::from_data(file).with_header(
                    tiny_http::Header::from_bytes("Content-Type", "image/jpeg").expect("header"),
                );
                let _ = request.respond(response);
            }
        });
    }
    let _ = CDN.set(format!("http://{addr}/p/"));
}

fn body(c: usize) -> Body {
    let head = format!(
        r#"{{"event":"instagram_message","account_id":"1001234","contact_id":"674221893456{c:04}","channel":"instagram","first_name":"Anna","last_name":"Petrova","ig_username":"anna.p{c}","timestamp":"2026-11-13T10:15:02Z","message_id":""#
    );
    let mut tail = String::from(r#"","text":""#);
    // Mixed Cyrillic and Latin text, like the DMs the relay stores; sized so the whole
    // body, with a typical message_id, is about BODY_BYTES.
    let sentences = [
        "Здравствуйте! Сколько стоит доставка в Казань и можно ли оплатить при получении? ",
        "Hi, is the blue one still available in size M? ",
    ];
    let budget = BODY_BYTES - head.len() - r#""}"#.len() - "full-keep-alive-32-31-100000".len();
    'fill: for sentence in sentences.iter().cycle() {
        for ch in sentence.chars() {
            if tail.len() + ch.len_utf8() > budget {
                break 'fill;
            }
            tail.push(ch);
        }
    }
    tail.push_str(r#""}"#);
    let photo = CDN.get().filter(|_| c % PHOTO_EVERY == 0).cloned();
    Body { head, tail, photo }
}

/// The part after the message_id that attaches a photo named after it.
fn photo_part(prefix: &str, message_id: &str) -> String {
    format!(r#"","attachments":[{{"type":"image","url":"{prefix}{message_id}.jpg"}}],"photo":"1"#)
}

fn request(body: &Body, message_id: &str, mode: Mode) -> Vec<u8> {
    let photo = body
        .photo
        .as_deref()
        .map(|prefix| photo_part(prefix, message_id))
        .unwrap_or_default();
    let length = body.head.len() + message_id.len() + photo.len() + body.tail.len();
    let connection = match mode {
        Mode::KeepAlive => "keep-alive",
        Mode::ConnPerRequest => "close",
    };
    let mut out = format!(
        "POST /instagram/webhook HTTP/1.1\r\nHost: relay.example.com\r\n\
         Content-Type: application/json\r\nX-Webhook-Secret: {SECRET}\r\n\
         User-Agent: chatrace-relay-bench\r\nConnection: {connection}\r\n\
         Content-Length: {length}\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(body.head.as_bytes());
    out.extend_from_slice(message_id.as_bytes());
    out.extend_from_slice(photo.as_bytes());
    out.extend_from_slice(body.tail.as_bytes());
    out
}

/// Raw SQLite on the same disk: commits per second with one 1 KB row per transaction, and
/// rows per second with RAW_BATCH rows per transaction.
fn raw_sqlite(tmp: &Path, secs: Duration) -> (f64, f64) {
    let path = tmp.join("raw.db");
    let conn = rusqlite::Connection::open(&path).expect("open raw.db");
    conn.pragma_update(None, "journal_mode", "WAL")
        .and_then(|()| conn.pragma_update(None, "synchronous", "FULL"))
        .and_then(|()| {
            conn.execute_batch("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        })
        .expect("prepare raw.db");
    let template = body(0);
    let row = format!("{}raw-0{}", template.head, template.tail);
    let row = row.as_str();
    let insert = |count: usize| {
        let tx = conn.unchecked_transaction().expect("begin");
        for _ in 0..count {
            tx.prepare_cached("INSERT INTO rows (body) VALUES (?1)")
                .and_then(|mut s| s.execute([row]))
                .expect("insert");
        }
        tx.commit().expect("commit");
    };
    let rate = |count: usize| {
        let started = Instant::now();
        let mut rows = 0;
        while started.elapsed() < secs {
            insert(count);
            rows += count;
        }
        rows as f64 / started.elapsed().as_secs_f64()
    };
    let commits = rate(1);
    let batched_rows = rate(RAW_BATCH);
    drop(conn);
    let _ = std::fs::remove_file(&path);
    (commits, batched_rows)
}

/// `raw`: (commits/s, batched rows/s) measured before and after the HTTP levels.
fn report(levels: &[Level], raw: [(f64, f64); 2]) {
    println!();
    println!(
        "{:<6} {:<12} {:>5} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7}",
        "server",
        "mode",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "failures",
        "RSS MB",
        "threads"
    );
    for l in levels {
        let (rss, threads) = l
            .relay
            .map_or(("-".to_string(), "-".to_string()), |(kb, t)| {
                (format!("{:.1}", kb as f64 / 1024.0), t.to_string())
            });
        println!(
            "{:<6} {:<12} {:>5} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>7} {:>7}",
            l.target,
            l.mode.name(),
            l.conns,
            l.rate(),
            l.percentile_ms(0.50),
            l.percentile_ms(0.99),
            l.latencies
                .last()
                .map_or(f64::NAN, |&m| f64::from(m) / 1000.0),
            l.failures,
            rss,
            threads
        );
    }
    println!();
    for ((commits, batched_rows), when) in raw.iter().zip(["before", "after"]) {
        println!(
            "raw SQLite {when} the HTTP levels, 1 KB rows, WAL + synchronous=FULL: \
             {commits:.0} commits/s one row per transaction; {batched_rows:.0} rows/s in \
             transactions of {RAW_BATCH}"
        );
    }
    let commits = raw[0].0.max(raw[1].0);

    let failed: Vec<&Level> = levels.iter().filter(|l| l.failures > 0).collect();
    for l in &failed {
        println!(
            "FAILURES {} {} c={}: {} requests without a good answer, e.g.:",
            l.target,
            l.mode.name(),
            l.conns,
            l.failures
        );
        for note in l.notes.iter().take(NOTES_SHOWN) {
            println!("    {note}");
        }
    }
    for l in levels {
        if let Some((stored, answered)) = l.mismatch {
            println!(
                "MISMATCH {} c={}: {stored} messages stored for {answered} answers of 200",
                l.mode.name(),
                l.conns
            );
        }
    }

    let find = |target: &str, mode: Mode| {
        levels
            .iter()
            .find(|l| l.target == target && l.mode == mode && l.conns == TARGET_CONNS)
    };
    let (Some(full), Some(noop)) = (
        find("full", Mode::KeepAlive),
        find("no-op", Mode::KeepAlive),
    ) else {
        return;
    };
    let peak_rss = levels
        .iter()
        .filter_map(|l| l.relay.map(|(kb, _)| kb as f64 / 1024.0))
        .fold(0.0, f64::max);
    println!();
    println!("targets, full path at c={TARGET_CONNS} keep-alive:");
    let verdict = |pass: bool| if pass { "PASS" } else { "MISS" };
    let vs_noop = full.rate() / noop.rate();
    let vs_raw = full.rate() / commits;
    let p99 = full.percentile_ms(0.99);
    println!(
        "  full / no-op server       {vs_noop:>7.2}x   target >= 0.30x   {}",
        verdict(vs_noop >= 0.3)
    );
    println!(
        "  full / raw FULL commits   {vs_raw:>7.2}x   target >= 3x      {}  (higher raw rate: {commits:.0}/s)",
        verdict(vs_raw >= 3.0)
    );
    println!(
        "  p99 latency               {p99:>7.2} ms target < 10 ms    {}",
        verdict(p99 < 10.0)
    );
    println!(
        "  relay peak RSS, any level {peak_rss:>7.1} MB target < 30 MB    {}",
        verdict(peak_rss < 30.0)
    );
    let failures: usize = levels.iter().map(|l| l.failures).sum();
    println!(
        "  failed requests, all runs {failures:>7}    target 0          {}",
        verdict(failures == 0)
    );
    if let (Some(full), Some(noop)) = (
        find("full", Mode::ConnPerRequest),
        find("no-op", Mode::ConnPerRequest),
    ) {
        println!(
            "  (one request per connection at c={TARGET_CONNS}: full / no-op {:.2}x, full / raw commits {:.2}x)",
            full.rate() / noop.rate(),
            full.rate() / commits
        );
    }
}

/// A query-string value, percent-encoded.
fn util_encode(s: &str) -> String {
    chatrace_relay::text::percent_encode(s)
}
