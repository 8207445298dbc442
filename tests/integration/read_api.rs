//! The read side: stats, the catch-up cursor, health, authentication.

use crate::util::*;

#[test]
fn stats_count_messages_contacts_and_days() {
    let relay = Relay::start("stats");
    let before = relay.stats();
    for field in [
        "total_messages",
        "messages_today",
        "messages_last_24h",
        "unique_contacts",
        "webhooks_received",
        "webhooks_rejected",
        "duplicates",
    ] {
        assert_eq!(before[field], 0, "{field}");
    }
    assert!(before["last_message_at"].is_null());
    assert_eq!(before["by_day"].as_array().unwrap().len(), 30);
    assert_eq!(before["forwarding"]["pending"], 0);

    relay.post_webhook(
        "application/json",
        &fixture("chatrace-external-request.json"),
    );
    relay.post_webhook(
        "application/json",
        &fixture("chatrace-external-request.json"),
    );
    relay.post_webhook(
        "application/json",
        br#"{"contact_id":"other","text":"hi","message_id":"s2"}"#,
    );
    relay.request("POST", "/instagram/webhook", &[], b"{}");
    relay.wait_count("SELECT count(*) FROM rejected", 1);

    let after = relay.stats();
    assert_eq!(after["total_messages"], 2);
    assert_eq!(after["messages_today"], 2);
    assert_eq!(after["messages_last_24h"], 2);
    assert_eq!(after["unique_contacts"], 2);
    assert_eq!(after["webhooks_received"], 3);
    assert_eq!(after["webhooks_rejected"], 1);
    assert_eq!(after["duplicates"], 1);
    assert!(after["last_message_at"].as_str().unwrap().ends_with('Z'));
    let today = after["by_day"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(today["count"], 2);
    assert_eq!(
        today["date"].as_str().unwrap(),
        &after["last_message_at"].as_str().unwrap()[..10]
    );
}

#[test]
fn test_messages_are_stored_but_not_counted() {
    let relay = Relay::start("test-marked");
    let reply = relay.request(
        "POST",
        "/instagram/webhook",
        &[("X-Webhook-Secret", SECRET), ("X-Relay-Test", "1")],
        br#"{"contact_id":"t","text":"test","message_id":"t1"}"#,
    );
    assert_eq!(reply.status, 200);
    let stats = relay.stats();
    assert_eq!(stats["total_messages"], 0);
    assert_eq!(stats["webhooks_received"], 0);
    let listed = relay.get_admin("/api/messages").json();
    assert_eq!(listed["messages"][0]["test"], true);
}

#[test]
fn admin_endpoints_need_the_bearer_token() {
    let relay = Relay::start("auth");
    for path in ["/instagram/stats", "/api/messages"] {
        assert_eq!(relay.request("GET", path, &[], b"").status, 401, "{path}");
        let wrong = relay.request("GET", path, &[("Authorization", "Bearer nope")], b"");
        assert_eq!(wrong.status, 401, "{path}");
        let secret_is_not_admin = relay.request(
            "GET",
            path,
            &[("Authorization", &format!("Bearer {SECRET}"))],
            b"",
        );
        assert_eq!(secret_is_not_admin.status, 401, "{path}");
    }
}

#[test]
fn cursor_pages_through_messages_oldest_first() {
    let relay = Relay::start("cursor");
    for i in 0..25 {
        let body = format!(
            r#"{{"contact_id":"c{}","text":"message {i}","message_id":"m{i}"}}"#,
            i % 3
        );
        assert_eq!(
            relay
                .post_webhook("application/json", body.as_bytes())
                .status,
            200
        );
    }
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = relay
            .get_admin(&format!("/api/messages?after={after}&limit=10"))
            .json();
        let batch = page["messages"].as_array().unwrap();
        if batch.is_empty() {
            assert_eq!(page["next_after"], after, "an empty page keeps the cursor");
            break;
        }
        assert!(batch.len() <= 10);
        for m in batch {
            let id = m["id"].as_i64().unwrap();
            assert!(id > after, "ids strictly increase");
            after = id;
            seen.push(m["text"].as_str().unwrap().to_string());
        }
        assert_eq!(page["next_after"], after);
    }
    let expected: Vec<String> = (0..25).map(|i| format!("message {i}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(relay.get_admin("/api/messages?limit=0").status, 400);
    assert_eq!(relay.get_admin("/api/messages?after=abc").status, 400);
}

#[test]
fn healthz_is_open_and_answers_ok() {
    let relay = Relay::start("health");
    let reply = relay.request("GET", "/healthz", &[], b"");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "ok");
}

#[test]
fn durability_settings_are_in_force() {
    let relay = Relay::start("durability");
    relay.post_webhook("application/json", &fixture("flat-legacy.json"));
    let mode: String = relay
        .db()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}
