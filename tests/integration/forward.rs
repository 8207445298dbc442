//! Forwarding to --forward-url: retries, timeouts, 410, Retry-After, signatures checked
//! independently, replay, a crash in the middle of a backlog, and a downstream outage.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::fake::{Action, Fake, Recorded};
use crate::util::*;

/// The Standard Webhooks spec's example secret (24 bytes).
const FORWARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn forwarding_relay(name: &str, targets: &[String], extra: &[&str]) -> Relay {
    let mut args: Vec<&str> = Vec::new();
    for t in targets {
        args.extend(["--forward-url", t.as_str()]);
    }
    args.extend(extra);
    Relay::start_args(name, &args)
}

fn post_message(relay: &Relay, n: usize) -> i64 {
    let body = format!(
        r#"{{"contact_id":"c{}","text":"hello {n}","message_id":"m{n}"}}"#,
        n % 7
    );
    let reply = relay.post_webhook("application/json", body.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["ids"][0].as_i64().unwrap()
}

/// Checks a Standard Webhooks signature with Python's own hmac, hashlib and base64: an
/// implementation that shares no code with the relay.
fn python_verifies(request: &Recorded) -> bool {
    const SCRIPT: &str = "import sys, hmac, hashlib, base64
secret, msg_id, ts, sigs = sys.argv[1:5]
body = sys.stdin.buffer.read()
key = base64.b64decode(secret[len('whsec_'):])
mac = hmac.new(key, msg_id.encode() + b'.' + ts.encode() + b'.' + body, hashlib.sha256)
expected = 'v1,' + base64.b64encode(mac.digest()).decode()
sys.exit(0 if any(hmac.compare_digest(expected, s) for s in sigs.split(' ')) else 1)";
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(FORWARD_SECRET)
        .arg(request.header("webhook-id").unwrap())
        .arg(request.header("webhook-timestamp").unwrap())
        .arg(request.header("webhook-signature").unwrap())
        .stdin(Stdio::piped())
        .spawn()
        .expect("python3 is needed to check signatures independently");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&request.body)
        .unwrap();
    child.wait().unwrap().success()
}

fn delivery_row(relay: &Relay, target: &str) -> (String, i64, Option<i64>, Option<String>) {
    relay
        .db()
        .query_row(
            "SELECT state, attempts, last_status, last_error FROM deliveries WHERE target = ?1",
            [target],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
}

fn post_admin(relay: &Relay, path: &str, body: &str) -> Reply {
    relay.request(
        "POST",
        path,
        &[
            ("Authorization", &format!("Bearer {ADMIN}")),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

#[test]
fn failures_are_retried_with_one_stable_signed_id_until_delivered() {
    let fake = Fake::start(|r| {
        if r.index < 2 {
            Action::status(500)
        } else {
            Action::status(204)
        }
    });
    let target = fake.url("/hook?token=abc");
    let relay = forwarding_relay(
        "fwd-retry",
        std::slice::from_ref(&target),
        &[
            "--forward-secret",
            FORWARD_SECRET,
            "--retry-schedule",
            "100ms,100ms,100ms",
        ],
    );
    let id = post_message(&relay, 1);
    let seen = fake.wait_for(3, Duration::from_secs(10));
    relay.wait_count(
        "SELECT count(*) FROM deliveries WHERE state = 'delivered'",
        1,
    );

    let webhook_id = seen[0].header("webhook-id").unwrap().to_string();
    assert!(webhook_id.starts_with("msg_"), "{webhook_id}");
    for attempt in &seen {
        assert_eq!(attempt.method, "POST");
        assert_eq!(attempt.url, "/hook?token=abc");
        assert_eq!(attempt.header("webhook-id"), Some(webhook_id.as_str()));
        assert!(attempt
            .header("User-Agent")
            .unwrap()
            .starts_with("chatrace-relay/"));
        assert_eq!(attempt.header("Content-Type"), Some("application/json"));
        let ts: i64 = attempt
            .header("webhook-timestamp")
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (ts - std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64)
                .abs()
                < 60
        );
        assert!(python_verifies(attempt), "signature must verify");
        let body = attempt.json();
        assert_eq!(body["type"], "message.received");
        assert_eq!(body["id"], id);
        assert_eq!(body["text"], "hello 1");
        assert_eq!(body["contact_id"], "c1");
        assert_eq!(body["direction"], "in");
        assert!(body["raw_request_id"].as_i64().unwrap() > 0);
        assert_eq!(body["test"], false);
    }
    let mut tampered = seen[0].clone();
    tampered.body.push(b' ');
    assert!(!python_verifies(&tampered), "the check can fail");

    assert_eq!(
        delivery_row(&relay, &target),
        ("delivered".into(), 3, Some(204), Some("HTTP 500".into()))
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fake.requests().len(), 3, "nothing more after delivery");
    let status = relay.get_admin("/api/deliveries").json();
    let t = &status["targets"][0];
    assert_eq!(t["target"], target.as_str());
    assert_eq!(t["delivered"], 1);
    assert_eq!(t["pending"], 0);
    assert_eq!(t["last_status"], 204);
    assert!(t["last_error"].is_null(), "nothing is wrong now: {t}");
}

#[test]
fn a_hanging_target_times_out_without_holding_up_another() {
    let hang = Fake::start(|r| {
        if r.index == 0 {
            Action::Hang(Duration::from_secs(3))
        } else {
            Action::status(200)
        }
    });
    let quick = Fake::always(200);
    let (slow_url, quick_url) = (hang.url("/slow"), quick.url("/quick"));
    let relay = forwarding_relay(
        "fwd-hang",
        &[slow_url.clone(), quick_url.clone()],
        &["--forward-timeout", "300ms", "--retry-schedule", "100ms"],
    );
    let started = Instant::now();
    post_message(&relay, 1);
    quick.wait_for(1, Duration::from_secs(5));
    let quick_took = started.elapsed();
    let tries = hang.wait_for(2, Duration::from_secs(5));
    assert!(
        quick_took < Duration::from_secs(1),
        "the quick target waited {quick_took:?} behind the hanging one"
    );
    let gap = tries[1].at - tries[0].at;
    assert!(
        gap >= Duration::from_millis(300) && gap < Duration::from_millis(2500),
        "second try {gap:?} after the first: timeout is 300ms, not the 3s hang"
    );
    assert_eq!(tries[0].header("webhook-id"), tries[1].header("webhook-id"));
    relay.wait_count(
        "SELECT count(*) FROM deliveries WHERE state = 'delivered'",
        2,
    );
    let (_, attempts, _, error) = delivery_row(&relay, &slow_url);
    assert_eq!(attempts, 2);
    assert!(error.unwrap().contains("timed out"));
    assert!(
        quick.requests()[0].header("webhook-signature").is_none(),
        "no secret, no signature"
    );
}

#[test]
fn gone_stops_at_once_and_a_replay_sends_it_again() {
    let fake = Fake::start(|r| {
        if r.index == 0 {
            Action::status(410)
        } else {
            Action::status(200)
        }
    });
    let target = fake.url("/hook");
    let relay = forwarding_relay(
        "fwd-gone",
        std::slice::from_ref(&target),
        &["--retry-schedule", "50ms,50ms"],
    );
    post_message(&relay, 1);
    relay.wait_count("SELECT count(*) FROM deliveries WHERE state = 'failed'", 1);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(fake.requests().len(), 1, "410 means no retries");
    let (_, attempts, status, error) = delivery_row(&relay, &target);
    assert_eq!((attempts, status), (1, Some(410)));
    assert!(error.unwrap().contains("410 Gone"));
    let t = &relay.get_admin("/api/deliveries").json()["targets"][0];
    assert_eq!(t["failed"], 1);
    assert!(t["last_error"].as_str().unwrap().contains("410"));

    let unauthorized = relay.request("POST", "/api/deliveries/replay", &[], br#"{"failed":true}"#);
    assert_eq!(unauthorized.status, 401);
    assert_eq!(
        post_admin(&relay, "/api/deliveries/replay", "{}").status,
        400
    );
    assert_eq!(
        post_admin(&relay, "/api/deliveries/replay", r#"{"id":999}"#).status,
        404
    );
    let id: i64 = relay
        .db()
        .query_row("SELECT id FROM deliveries", [], |r| r.get(0))
        .unwrap();
    let reply = post_admin(
        &relay,
        "/api/deliveries/replay",
        &format!(r#"{{"id":{id}}}"#),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["requeued"], 1);
    let tries = fake.wait_for(2, Duration::from_secs(2));
    assert_eq!(tries[0].header("webhook-id"), tries[1].header("webhook-id"));
    relay.wait_count(
        "SELECT count(*) FROM deliveries WHERE state = 'delivered'",
        1,
    );
}

#[test]
fn failed_deliveries_are_replayed_from_the_command_line() {
    let up = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&up);
    let fake = Fake::start(move |_| {
        Action::status(if flag.load(Ordering::SeqCst) {
            200
        } else {
            502
        })
    });
    let relay = forwarding_relay("fwd-cli", &[fake.url("/")], &["--retry-schedule", "50ms"]);
    post_message(&relay, 1);
    post_message(&relay, 2);
    relay.wait_count("SELECT count(*) FROM deliveries WHERE state = 'failed'", 2);
    assert_eq!(
        fake.requests().len(),
        4,
        "two attempts each: first plus one retry"
    );
    up.store(true, Ordering::SeqCst);

    let replay = |args: &[&str]| {
        Command::new(binary())
            .arg("replay")
            .arg("--db")
            .arg(&relay.db)
            .args(args)
            .output()
            .unwrap()
    };
    let refused = replay(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--failed"));
    let out = replay(&["--failed", "--since", "2000-01-01T00:00:00Z"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-queued 2 deliveries"));
    // The CLI is another process: the relay notices within its idle recheck.
    relay.wait_count(
        "SELECT count(*) FROM deliveries WHERE state = 'delivered'",
        2,
    );
    let none = replay(&["--failed"]);
    assert!(String::from_utf8_lossy(&none.stdout).contains("re-queued 0 deliveries"));
}

#[test]
fn retry_after_is_honoured() {
    let fake = Fake::start(|r| {
        if r.index == 0 {
            Action::status(503).with_header("Retry-After", "1")
        } else {
            Action::status(200)
        }
    });
    let relay = forwarding_relay(
        "fwd-retry-after",
        &[fake.url("/")],
        &["--retry-schedule", "50ms"],
    );
    post_message(&relay, 1);
    let tries = fake.wait_for(2, Duration::from_secs(5));
    let gap = tries[1].at - tries[0].at;
    assert!(
        gap >= Duration::from_millis(990),
        "retried after {gap:?}, asked 1s"
    );
    assert!(gap < Duration::from_secs(3), "{gap:?}");
    relay.wait_count(
        "SELECT count(*) FROM deliveries WHERE state = 'delivered'",
        1,
    );
}

#[test]
fn a_crash_in_the_middle_of_a_backlog_loses_nothing() {
    const N: usize = 60;
    let db: Arc<OnceLock<PathBuf>> = Arc::new(OnceLock::new());
    let unstored = Arc::new(Mutex::new(Vec::new()));
    let (db_path, violations) = (Arc::clone(&db), Arc::clone(&unstored));
    let fake = Fake::start(move |r| {
        // Nothing may be delivered before it is committed: look it up as it arrives.
        let id = r.json()["id"].as_i64().unwrap();
        if let Some(path) = db_path.get() {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            let found: i64 = conn
                .query_row("SELECT count(*) FROM messages WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .unwrap();
            if found == 0 {
                violations.lock().unwrap().push(id);
            }
        }
        std::thread::sleep(Duration::from_millis(25));
        Action::status(200)
    });
    let mut relay = forwarding_relay(
        "fwd-crash",
        &[fake.url("/")],
        &["--retry-schedule", "100ms"],
    );
    db.set(relay.db.clone()).unwrap();
    let ids: BTreeSet<i64> = (0..N).map(|n| post_message(&relay, n)).collect();
    fake.wait_for(N / 4, Duration::from_secs(10));
    relay.restart();
    assert!(
        (relay.count("SELECT count(*) FROM deliveries WHERE state = 'pending'") as usize) > 0,
        "the crash should leave a backlog"
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut webhook_ids: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    while webhook_ids.len() < N {
        assert!(
            Instant::now() < deadline,
            "delivered {} of {N}",
            webhook_ids.len()
        );
        std::thread::sleep(Duration::from_millis(50));
        webhook_ids.clear();
        for r in fake.requests() {
            let id = r.json()["id"].as_i64().unwrap();
            webhook_ids
                .entry(id)
                .or_default()
                .insert(r.header("webhook-id").unwrap().to_string());
        }
    }
    assert_eq!(webhook_ids.keys().copied().collect::<BTreeSet<_>>(), ids);
    for (id, seen) in &webhook_ids {
        assert_eq!(seen.len(), 1, "message {id} went out under {seen:?}");
    }
    relay.wait_count(
        "SELECT count(*) FROM deliveries WHERE state = 'delivered'",
        N as i64,
    );
    assert!(
        unstored.lock().unwrap().is_empty(),
        "delivered before stored: {:?}",
        unstored.lock().unwrap()
    );
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

/// Posts `n` webhooks from `clients` threads, numbering from `first`; returns latencies.
fn post_many(relay: &Relay, first: usize, n: usize, clients: usize) -> Vec<Duration> {
    let next = AtomicUsize::new(first);
    let latencies = Mutex::new(Vec::with_capacity(n));
    std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= first + n {
                    return;
                }
                let started = Instant::now();
                post_message(relay, i);
                latencies.lock().unwrap().push(started.elapsed());
            });
        }
    });
    latencies.into_inner().unwrap()
}

#[test]
fn an_outage_backlog_drains_without_slowing_the_webhook() {
    const N: usize = 1000;
    let up = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&up);
    let fake = Fake::start(move |_| {
        Action::status(if flag.load(Ordering::SeqCst) {
            200
        } else {
            503
        })
    });
    let relay = forwarding_relay(
        "fwd-outage",
        &[fake.url("/")],
        // Long enough that nothing runs out of retries during the outage.
        &[
            "--retry-schedule",
            "200ms,400ms,800ms,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
        ],
    );
    let mut during_outage = post_many(&relay, 0, N, 4);
    fake.wait_for(1, Duration::from_secs(5)); // it tried, and was refused
    assert_eq!(
        relay.count("SELECT count(*) FROM deliveries WHERE state = 'delivered'"),
        0
    );

    up.store(true, Ordering::SeqCst);
    let delivered = || relay.count("SELECT count(*) FROM deliveries WHERE state = 'delivered'");
    // Keep posting in small bursts while the backlog drains; a cap keeps the test from
    // feeding the backlog faster than a slow machine drains it.
    let mut during_drain = Vec::new();
    let mut next = N;
    while (delivered() as usize) < N / 2 && next < N + 400 {
        during_drain.extend(post_many(&relay, next, 20, 4));
        next += 20;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(during_drain.len() >= 40, "too few samples while draining");
    let deadline = Instant::now() + Duration::from_secs(30);
    while (delivered() as usize) < next {
        assert!(
            Instant::now() < deadline,
            "only {} of {next} delivered",
            delivered()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ids: BTreeSet<i64> = fake
        .requests()
        .iter()
        .filter(|r| r.header("webhook-id").is_some())
        .map(|r| r.json()["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), next, "every message reached the downstream");

    let (outage_p50, outage_p99) = (
        percentile(&mut during_outage, 0.5),
        percentile(&mut during_outage, 0.99),
    );
    let (drain_p50, drain_p99) = (
        percentile(&mut during_drain, 0.5),
        percentile(&mut during_drain, 0.99),
    );
    eprintln!(
        "webhook latency during outage p50 {outage_p50:?} p99 {outage_p99:?}; \
         while draining ({} posts) p50 {drain_p50:?} p99 {drain_p99:?}",
        during_drain.len()
    );
    // The median is the signal: forwarding's writes holding up ingestion would shift the
    // whole distribution. With ~300 posts p99 is the third-slowest one, which a single
    // scheduling stall from a test running alongside can move, so it only guards against
    // stalls far beyond that.
    assert!(
        drain_p50 <= outage_p50 * 2 + Duration::from_millis(2),
        "draining slowed the webhook: p50 {drain_p50:?} vs {outage_p50:?}"
    );
    assert!(
        drain_p99 <= outage_p99 * 3 + Duration::from_millis(100),
        "draining stalled the webhook: p99 {drain_p99:?} vs {outage_p99:?}"
    );
}

#[test]
fn a_bad_forward_secret_stops_the_start_with_a_reason() {
    let dir = temp_dir("fwd-bad-secret");
    let out = Command::new(binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--forward-url",
            "http://127.0.0.1:9/",
        ])
        .args(["--forward-secret", "not-a-whsec-secret", "--db"])
        .arg(dir.join("relay.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--forward-secret") && stderr.contains("whsec_"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-a-whsec-secret"),
        "the secret is never echoed"
    );
}

/// The README's push example is what the app gets for a Chatrace webhook: the same fields,
/// each of the same JSON type; `sent_at` is null, since Chatrace sends no message time.
#[test]
fn the_readme_push_example_is_what_a_chatrace_message_forwards_as() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let push = &readme[readme.find("**Push.**").expect("the Push paragraph")..];
    let start = push.find("```json\n").expect("its example") + "```json\n".len();
    let example: serde_json::Value =
        serde_json::from_str(&push[start..start + push[start..].find("```").unwrap()])
            .expect("the example is JSON");

    let fake = Fake::always(200);
    let relay = forwarding_relay("fwd-readme", &[fake.url("/hook")], &[]);
    let body = serde_json::json!({
        "user_id": "6742218934563412", "first_name": "Anna", "last_name": "Petrova",
        "ig_user_name": "anna.p", "text": "Здравствуйте, сколько стоит доставка?",
        "type": "text", "channel": "instagram",
    });
    assert_eq!(
        relay
            .post_webhook("application/json", body.to_string().as_bytes())
            .status,
        200
    );
    let sent = fake.wait_for(1, Duration::from_secs(10))[0].json();
    let kind = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    };
    let shape = |v: &serde_json::Value| -> BTreeMap<String, &'static str> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), kind(v)))
            .collect()
    };
    assert_eq!(shape(&example), shape(&sent), "{sent:#}");
    assert_eq!(sent["sent_at"], serde_json::Value::Null);
    for key in [
        "type",
        "channel",
        "direction",
        "contact_id",
        "contact_name",
        "username",
    ] {
        assert_eq!(example[key], sent[key], "{key}");
    }
}

/// Forwarding turned on later: `replay --since` sends every message since then that the
/// app has not had, the ones stored before `--forward-url` was set included, and never
/// one it already has, unless asked with `--resend-delivered`.
#[test]
fn replay_since_sends_what_the_app_has_not_had_and_nothing_twice() {
    let dir = temp_dir("fwd-since");
    let before = Relay::start_in(dir.clone(), &[], &KNOWN_SECRETS);
    for n in 1..=3 {
        post_message(&before, n);
    }
    drop(before);
    let fake = Fake::always(200);
    let target = fake.url("/hook");
    let relay = Relay::start_in(dir, &["--forward-url", &target], &KNOWN_SECRETS);
    post_message(&relay, 4);
    fake.wait_for(1, Duration::from_secs(10));
    let replay = |args: &[&str]| {
        let out = Command::new(binary())
            .arg("replay")
            .arg("--db")
            .arg(&relay.db)
            .args(args)
            .env_remove("CHATRACE_RELAY_FORWARD_URL")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = replay(&["--since", "2000-01-01T00:00:00Z"]);
    assert!(out.contains("re-queued 3 deliveries"), "{out}");
    assert!(out.contains(&target), "names the target: {out}");
    let seen = fake.wait_for(4, Duration::from_secs(10));
    // Give a wrongly re-sent message time to show up.
    std::thread::sleep(Duration::from_millis(1500));
    let texts: BTreeSet<String> = fake
        .requests()
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fake.requests().len(), 4, "{seen:?}");
    assert_eq!(texts.len(), 4, "{texts:?}");
    let all_delivered = "SELECT count(*) FROM deliveries WHERE state = 'delivered'";
    relay.wait_count(all_delivered, 4);
    assert!(replay(&["--since", "2000-01-01T00:00:00Z"]).contains("re-queued 0 deliveries"));

    let out = replay(&["--since", "2000-01-01T00:00:00Z", "--resend-delivered"]);
    assert!(out.contains("re-queued 4 deliveries"), "{out}");
    fake.wait_for(8, Duration::from_secs(10));
    relay.wait_count(all_delivered, 4);
    let api = post_admin(
        &relay,
        "/api/deliveries/replay",
        r#"{"since":"2000-01-01T00:00:00Z"}"#,
    );
    assert_eq!(api.json()["requeued"], 0, "{}", api.text());
}
