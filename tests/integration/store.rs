//! The store over time: upgrading a 0.1.0 database, retention, and the online backup.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::*;

fn message(id: &str, text: &str) -> Vec<u8> {
    serde_json::json!({"contact_id": "6742218934563412", "text": text, "channel": "instagram",
                       "message_id": id})
    .to_string()
    .into_bytes()
}

fn post_ok(relay: &Relay, body: &[u8]) -> serde_json::Value {
    let reply = relay.post_webhook("application/json", body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// Figures recounted with plain SQL from the rows, for comparison with the rollups.
fn recount(conn: &rusqlite::Connection) -> (i64, i64, Vec<(String, String, i64)>) {
    let messages = conn
        .query_row("SELECT count(*) FROM messages WHERE is_test = 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    let contacts = conn
        .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))
        .unwrap();
    let deliveries = conn
        .prepare("SELECT target, state, count(*) FROM deliveries GROUP BY 1, 2 ORDER BY 1, 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    (messages, contacts, deliveries)
}

#[test]
fn a_0_1_0_database_upgrades_with_exact_counts_and_keeps_deduplicating() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upgrade/relay-0.1.0.db");
    let dir = temp_dir("upgrade-0.1.0");
    std::fs::copy(&fixture, dir.join("relay.db")).unwrap();
    let old = rusqlite::Connection::open(dir.join("relay.db")).unwrap();
    assert_eq!(
        old.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        2
    );
    let (messages, contacts, deliveries) = recount(&old);
    let by_day: Vec<(i64, i64)> = old
        .prepare(
            "SELECT received_at / 86400000, count(*) FROM messages WHERE is_test = 0
             GROUP BY 1 ORDER BY 1",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let keyed_text: (String, String) = old
        .query_row(
            "SELECT text, external_id FROM messages WHERE dedup_key LIKE 'x:%' ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(old);
    // What the fixture holds (tests/upgrade/make_fixture.py): nothing may be lost.
    assert_eq!((messages, contacts), (74, 12));
    assert!(by_day.len() >= 4, "the history spans several days");

    let relay = Relay::start_in(dir, &[], &KNOWN_SECRETS);
    assert!(
        relay
            .log()
            .contains("upgrading the database from schema version 2 to 10"),
        "{}",
        relay.log()
    );
    let stats = relay.stats();
    assert_eq!(stats["total_messages"], messages);
    assert_eq!(stats["unique_contacts"], contacts);
    assert_eq!(stats["webhooks_received"], 83);
    assert_eq!(stats["duplicates"], 8);
    assert_eq!(stats["webhooks_rejected"], 2);
    let forwarding = &stats["forwarding"];
    let state = |s: &str| -> i64 { deliveries.iter().filter(|d| d.1 == s).map(|d| d.2).sum() };
    // Started without the fixture's --forward-url, the relay ends what was still pending
    // for it: nothing would ever send it.
    assert_eq!(forwarding["pending"], 0);
    assert_eq!(forwarding["ended"], state("pending"));
    assert_eq!(forwarding["delivered"], state("delivered"));
    assert_eq!(forwarding["failed"], state("failed"));
    assert_eq!(
        (state("pending"), state("delivered"), state("failed")),
        (36, 76, 40)
    );
    let shown: i64 = stats["by_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["count"].as_i64().unwrap())
        .sum();
    assert_eq!(shown, by_day.iter().map(|d| d.1).sum::<i64>());

    // Every text key became a 16-byte hash, and a copy sent again still deduplicates.
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE typeof(dedup_key) = 'text'"),
        0
    );
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE length(dedup_key) != 16"),
        0
    );
    let again = post_ok(&relay, &message(&keyed_text.1, &keyed_text.0));
    assert_eq!(
        (again["stored"].as_i64(), again["duplicates"].as_i64()),
        (Some(0), Some(1))
    );
    let timed = serde_json::json!({"contact_id": "555000000001", "text": "timed message 1",
        "channel": "instagram", "timestamp": "2026-11-11T10:15:01Z"});
    let again = post_ok(&relay, timed.to_string().as_bytes());
    assert_eq!(
        again["duplicates"], 1,
        "a timed message from before the upgrade"
    );
    let stats = relay.stats();
    assert_eq!(stats["total_messages"], messages);
    assert_eq!(stats["duplicates"], 10);
    let (now_messages, now_contacts, now_deliveries) = recount(&relay.db());
    assert_eq!((now_messages, now_contacts), (messages, contacts));
    let rollup: Vec<(String, String, i64)> = relay
        .db()
        .prepare(
            "SELECT target, state, deliveries FROM delivery_counts WHERE deliveries != 0
             ORDER BY 1, 2",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(rollup, now_deliveries);
}

/// A database the relay creates is new, not upgraded: no upgrade lines in its log, and it
/// counts and deduplicates from the first message.
#[test]
fn a_new_database_is_created_without_upgrade_lines() {
    let relay = Relay::start("fresh-database");
    post_ok(&relay, &message("fresh-1", "first"));
    assert_eq!(
        post_ok(&relay, &message("fresh-1", "first"))["duplicates"],
        1
    );
    assert_eq!(relay.stats()["total_messages"], 1);
    let log = relay.log();
    assert!(!log.contains("upgrad"), "{log}");
    assert!(!log.contains("re-key"), "{log}");
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE length(dedup_key) != 16"),
        0
    );
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn keep_messages_deletes_old_messages_but_keeps_their_counts() {
    let relay = Relay::start_args("keep-messages", &["--keep-messages", "3s"]);
    for i in 0..5 {
        post_ok(&relay, &message(&format!("old-{i}"), "old"));
    }
    std::thread::sleep(Duration::from_millis(1500));
    for i in 0..5 {
        post_ok(&relay, &message(&format!("new-{i}"), "new"));
    }
    wait_for("the old messages to go", || {
        relay.count("SELECT count(*) FROM messages WHERE text = 'old'") == 0
    });
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE text = 'new'"),
        5
    );
    assert_eq!(relay.count("SELECT count(*) FROM raw_requests"), 5);
    let stats = relay.stats();
    assert_eq!(stats["total_messages"], 10, "counts outlive the messages");
    let today = stats["by_day"].as_array().unwrap().last().unwrap()["count"].clone();
    assert_eq!(today, 10);
    assert!(
        relay.log().contains("retention: deleted 5 messages"),
        "{}",
        relay.log()
    );
    // A repeat of a deleted message is new again: its key went with it.
    assert_eq!(post_ok(&relay, &message("old-0", "old"))["stored"], 1);
}

#[test]
fn keep_raw_deletes_raw_records_and_keeps_the_messages() {
    let relay = Relay::start_args("keep-raw", &["--keep-raw", "1s"]);
    for i in 0..3 {
        post_ok(&relay, &message(&format!("m-{i}"), "kept"));
    }
    wait_for("the raw records to go", || {
        relay.count("SELECT count(*) FROM raw_requests") == 0
    });
    assert_eq!(relay.count("SELECT count(*) FROM messages"), 3);
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE raw_request_id IS NULL"),
        3
    );
    let listed = relay.get_admin("/api/messages?after=0").json();
    assert_eq!(listed["messages"].as_array().unwrap().len(), 3);
}

#[test]
fn retention_never_removes_a_message_waiting_to_be_forwarded() {
    let relay = Relay::start_args(
        "keep-pending",
        &[
            "--keep-messages",
            "1s",
            "--forward-url",
            "http://127.0.0.1:9/closed",
            "--retry-schedule",
            "1h",
        ],
    );
    for i in 0..3 {
        post_ok(&relay, &message(&format!("p-{i}"), "pending"));
    }
    wait_for("the raw records to go", || {
        relay.count("SELECT count(*) FROM raw_requests") == 0
    });
    assert_eq!(relay.count("SELECT count(*) FROM messages"), 3);
    assert_eq!(
        relay.count("SELECT count(*) FROM deliveries WHERE state = 'pending'"),
        3
    );
}

fn backup(db: &Path, dest: &Path) -> std::process::Output {
    Command::new(binary())
        .args(["backup", "--db"])
        .arg(db)
        .arg(dest)
        .output()
        .unwrap()
}

#[test]
fn backup_under_concurrent_webhooks_is_consistent_and_complete() {
    let relay = Arc::new(Relay::start("backup"));
    let mut acknowledged = Vec::new();
    for i in 0..300 {
        let reply = post_ok(
            &relay,
            &message(&format!("before-{i}"), "before the backup"),
        );
        acknowledged.push(reply["ids"][0].as_i64().unwrap());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (relay, stop) = (Arc::clone(&relay), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    post_ok(&relay, &message(&format!("during-{t}-{n}"), "during"));
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let dest = relay.dir.join("copy.db");
    let out = backup(&relay.db, &dest);
    stop.store(true, Ordering::Relaxed);
    let during: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(during > 0, "webhooks were taken while the backup ran");
    assert!(
        stdout.contains("messages") && stdout.contains("bytes"),
        "{stdout}"
    );

    let copy = rusqlite::Connection::open(&dest).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let copied: i64 = copy
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert!(stdout.contains(&format!("{copied} messages")), "{stdout}");
    for id in &acknowledged {
        let found: i64 = copy
            .query_row("SELECT count(*) FROM messages WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            found, 1,
            "message {id} was acknowledged before the backup began"
        );
    }
    // The copy's rollups agree with its rows.
    let total: i64 = copy
        .query_row(
            "SELECT sum(value) FROM counters WHERE name IN ('messages:in', 'messages:out')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(total, copied);
    drop(copy);

    // Never over an existing file, which stays as it was.
    let before = std::fs::read(&dest).unwrap();
    let again = backup(&relay.db, &dest);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read(&dest).unwrap(), before);
    let missing = backup(&relay.dir.join("nope.db"), &relay.dir.join("copy2.db"));
    assert!(!missing.status.success());
    assert!(!relay.dir.join("copy2.db").exists());
}

/// `backup` counts the messages as `stats` does: the test webhook's message is named
/// apart, never in the count (it used to say 6 where the stats said 5).
#[test]
fn backup_and_stats_count_the_same_messages() {
    let relay = Relay::start("backup-counts");
    for i in 0..5 {
        post_ok(&relay, &message(&format!("real-{i}"), "real"));
    }
    let test = relay.request(
        "POST",
        "/instagram/webhook",
        &[
            ("X-Webhook-Secret", SECRET),
            ("X-Relay-Test", "1"),
            ("Content-Type", "application/json"),
        ],
        &message("test-1", "a test"),
    );
    assert_eq!(test.status, 200, "{}", test.text());
    assert_eq!(relay.stats()["total_messages"], 5);
    let out = backup(&relay.db, &relay.dir.join("copy.db"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(" 5 messages (and 1 test messages"),
        "{stdout}"
    );
}
