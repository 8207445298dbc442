//! GET /api/messages?wait=S: held until a newer message exists, bounded so waiting readers
//! cannot starve the webhook.

use std::time::{Duration, Instant};

use crate::util::*;

fn poll(relay: &Relay, query: &str) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = relay.get_admin(&format!("/api/messages?{query}"));
    (reply, started.elapsed())
}

#[test]
fn a_waiting_cursor_returns_as_soon_as_a_message_arrives() {
    let relay = Relay::start("poll-arrive");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| poll(&relay, "after=0&wait=10"));
        std::thread::sleep(Duration::from_millis(300));
        relay.post_webhook(
            "application/json",
            br#"{"contact_id":"c","text":"hi","message_id":"1"}"#,
        );
        let (reply, took) = waiter.join().unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["messages"][0]["text"], "hi");
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(3),
            "{took:?}"
        );
    });
    // Nothing newer than the cursor: the wait runs out and the cursor stays.
    let (reply, took) = poll(&relay, "after=1&wait=1");
    assert_eq!(reply.json()["messages"].as_array().unwrap().len(), 0);
    assert_eq!(reply.json()["next_after"], 1);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // Something already there: no waiting at all.
    let (reply, took) = poll(&relay, "after=0&wait=10");
    assert_eq!(reply.json()["messages"].as_array().unwrap().len(), 1);
    assert!(took < Duration::from_secs(1));
    assert_eq!(poll(&relay, "wait=31").0.status, 400);
    assert_eq!(poll(&relay, "wait=-1").0.status, 400);
}

#[test]
fn waiting_readers_are_bounded_and_the_webhook_still_flows() {
    // Four workers: one may wait, the rest stay free for webhooks.
    let relay = Relay::start_args("poll-bound", &["--workers", "4"]);
    std::thread::scope(|s| {
        let first = s.spawn(|| poll(&relay, "after=0&wait=5"));
        std::thread::sleep(Duration::from_millis(300));
        let (second, took) = poll(&relay, "after=0&wait=5");
        assert!(
            took < Duration::from_secs(1),
            "over the bound it answers at once: {took:?}"
        );
        assert_eq!(second.header("Retry-After"), Some("1"));
        assert_eq!(second.json()["messages"].as_array().unwrap().len(), 0);

        let started = Instant::now();
        let stored = relay.post_webhook(
            "application/json",
            br#"{"contact_id":"c","text":"hi","message_id":"1"}"#,
        );
        assert_eq!(stored.status, 200);
        assert!(started.elapsed() < Duration::from_secs(1));
        let (reply, took) = first.join().unwrap();
        assert_eq!(reply.json()["messages"].as_array().unwrap().len(), 1);
        assert!(took < Duration::from_secs(3));
    });
}
