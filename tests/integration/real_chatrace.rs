//! What a real Chatrace account sends and answers: repeated short replies, photos, names
//! from the contacts API, and the guard rails around them.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake::{Action, Fake};
use crate::fake_chatrace::relay_with_chatrace;
use crate::pages::Browser;
use crate::setup::{fact, row};
use crate::util::*;

/// What a Chatrace External Request with the page's template sends for one message: no
/// message id, no message time.
fn chatrace_body(user_id: &str, text: &str) -> String {
    serde_json::json!({
        "user_id": user_id,
        "first_name": "",
        "last_name": "",
        "ig_user_name": "",
        "text": text,
        "type": "text",
        "channel": "instagram",
    })
    .to_string()
}

fn messages(relay: &Relay) -> Vec<Value> {
    relay.get_admin("/api/messages").json()["messages"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn ok_twice_three_seconds_apart_is_two_messages() {
    let relay = Relay::start("ok-twice");
    let body = chatrace_body("6011829374650021", "ok");
    let first = relay.post_webhook("application/json", body.as_bytes());
    assert_eq!(first.json()["stored"], 1, "{}", first.text());
    std::thread::sleep(Duration::from_secs(3));
    let second = relay.post_webhook("application/json", body.as_bytes());
    assert_eq!(second.json()["stored"], 1, "{}", second.text());
    let texts: Vec<Value> = messages(&relay).iter().map(|m| m["text"].clone()).collect();
    assert_eq!(texts, ["ok", "ok"]);
    assert_eq!(relay.stats()["total_messages"], 2);
}

#[test]
fn the_same_request_twice_at_once_is_one_message_and_a_visible_merge() {
    let relay = Relay::start("twice-at-once");
    let body = chatrace_body("6011829374650021", "Сколько стоит?");
    let first = relay.post_webhook("application/json", body.as_bytes());
    let again = relay.post_webhook("application/json", body.as_bytes());
    assert_eq!(first.json()["stored"], 1);
    assert_eq!(again.json()["stored"], 0);
    assert_eq!(again.json()["duplicates"], 1);
    let id = first.json()["ids"][0].as_i64().unwrap();
    assert_eq!(messages(&relay).len(), 1);
    assert_eq!(relay.stats()["duplicates"], 1);

    let (mut browser, _) = Browser::signed_in(&relay);
    let page = browser.get("/", &[]).text();
    let merged = &page[page.find(r#"id="merged""#).expect("a merged section")..];
    let merged = &merged[..merged.find("</section>").unwrap()];
    assert!(merged.contains(&format!("#{id}")), "{merged}");
    assert!(merged.contains("Сколько стоит?"), "{merged}");
}

#[test]
fn the_dedup_window_is_a_setting_and_zero_turns_it_off() {
    let relay = Relay::start_args("window-off", &["--dedup-window", "0"]);
    let body = chatrace_body("6011829374650021", "+");
    for _ in 0..2 {
        let reply = relay.post_webhook("application/json", body.as_bytes());
        assert_eq!(reply.json()["stored"], 1, "{}", reply.text());
    }
    let bad = std::process::Command::new(binary())
        .args(["serve", "--dedup-window", "soon"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--dedup-window"));
}

#[test]
fn a_photo_is_an_image_attachment_linked_never_loaded_from_instagram() {
    let relay = Relay::start("photo");
    let reply = relay.post_webhook("application/json", &fixture("chatrace-media.json"));
    assert_eq!(reply.json()["stored"], 1, "{}", reply.text());
    let m = &messages(&relay)[0];
    assert_eq!(m["text"], Value::Null);
    assert_eq!(m["attachments"][0]["type"], "image");
    assert_eq!(m["attachments"][0]["kept"], false);
    let url = m["attachments"][0]["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("https://lookaside.fbsbx.com/"));

    // Not kept (keeping is off here): a link to the original, and no image from
    // Instagram's host, which the page's policy would not load anyway.
    let (mut browser, _) = Browser::signed_in(&relay);
    let page = browser.get("/", &[]);
    let html = page.text();
    let escaped = url.replace('&', "&amp;").replace('/', "&#x2f;");
    assert!(html.contains(&format!(r#"<a href="{escaped}""#)), "{html}");
    assert!(!html.contains("<img"), "{html}");
    let csp = page.header("Content-Security-Policy").unwrap();
    assert!(csp.contains("img-src 'self';"), "{csp}");
    assert!(csp.contains("media-src 'self';"), "{csp}");
    assert!(!csp.contains("https:"), "nothing from other hosts: {csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "never inline script: {csp}");
}

/// A fake Chatrace whose contacts API knows Мария, answering after `delay`.
fn chatrace_with_contacts(delay: Duration) -> Fake {
    Fake::start(move |request| {
        if request.url.starts_with("/contacts/5718243390127745") {
            std::thread::sleep(delay);
            Action::json(
                200,
                r#"{"id":"5718243390127745","page_id":"1049","first_name":"Мария",
                    "last_name":"Иванова","channel":10,
                    "profile_pic":"https://cdn.example/maria.jpg"}"#,
            )
        } else if request.url.starts_with("/contacts/") {
            Action::json(404, r#"{"error":"Contact not found"}"#)
        } else {
            Action::json(200, r#"{"page_id":"1049","name":"Cozy Shop"}"#)
        }
    })
}

#[test]
fn names_come_from_chatrace_once_per_contact_without_delaying_the_answer() {
    let chatrace = chatrace_with_contacts(Duration::from_secs(2));
    let relay = relay_with_chatrace("names", &chatrace);
    for text in ["Добрый день", "Есть размер M?"] {
        let started = Instant::now();
        let reply = relay.post_webhook(
            "application/json",
            chatrace_body("5718243390127745", text).as_bytes(),
        );
        assert_eq!(reply.json()["stored"], 1, "{}", reply.text());
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "the lookup held up the webhook's answer: {:?}",
            started.elapsed()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let named = loop {
        let all = messages(&relay);
        if all.iter().all(|m| m["contact_name"] == "Мария Иванова") {
            break all;
        }
        assert!(Instant::now() < deadline, "no name arrived: {all:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(named.len(), 2);
    let lookups: Vec<_> = chatrace
        .requests()
        .into_iter()
        .filter(|r| r.url.starts_with("/contacts/"))
        .collect();
    assert_eq!(lookups.len(), 1, "one lookup per contact");
    assert_eq!(lookups[0].url, "/contacts/5718243390127745");
    assert_eq!(
        lookups[0].header("X-ACCESS-TOKEN"),
        Some(crate::fake_chatrace::TOKEN)
    );
    let (pic, channel): (String, String) = relay
        .db()
        .query_row(
            "SELECT profile_pic, channel FROM contacts WHERE contact_id = '5718243390127745'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(pic, "https://cdn.example/maria.jpg");
    assert_eq!(channel, "instagram");
}

#[test]
fn a_contact_chatrace_does_not_know_is_counted_not_retried_at_once() {
    let chatrace = chatrace_with_contacts(Duration::ZERO);
    let relay = relay_with_chatrace("names-unknown", &chatrace);
    for text in ["a", "b"] {
        let body = chatrace_body("1111", text);
        relay.post_webhook("application/json", body.as_bytes());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while relay.count("SELECT count(*) FROM contacts WHERE looked_up_at IS NOT NULL") == 0 {
        assert!(Instant::now() < deadline, "no lookup happened");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let asked = chatrace
        .requests()
        .iter()
        .filter(|r| r.url.starts_with("/contacts/"))
        .count();
    assert_eq!(asked, 1, "a failed lookup waits a day");
    let metrics = relay.get_admin("/metrics").text();
    assert!(
        metrics.contains(r#"chatrace_relay_contact_lookups_total{outcome="failed"} 1"#),
        "{metrics}"
    );
    assert!(messages(&relay).iter().all(|m| m["contact_name"].is_null()));
}

#[test]
fn an_empty_body_declared_json_is_400_with_the_reason() {
    let relay = Relay::start("empty-json");
    let reply = relay.post_webhook("application/json", b"");
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.json()["error"].as_str().unwrap().contains("empty"));
    relay.wait_count(
        "SELECT count(*) FROM rejected WHERE reason = 'malformed'",
        1,
    );
    // Undeclared, an empty request is kept and shown as one without a message, and the
    // page still renders.
    let reply = relay.post_webhook("text/plain", b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (mut browser, _) = Browser::signed_in(&relay);
    assert_eq!(browser.get("/", &[]).status, 200);
}

#[test]
fn the_sign_in_page_names_the_command_for_this_database() {
    let relay = Relay::start("login-hint");
    let page = relay.request("GET", "/login", &[], b"").text();
    let full = std::fs::canonicalize(&relay.db).unwrap();
    let command = format!(
        "sudo chatrace-relay admin-token --db {}",
        full.display().to_string().replace('/', "&#x2f;")
    );
    assert!(page.contains(&command), "{page}");
}

/// The page's own body template, filled the way Chatrace fills an External Request: its
/// documented fields get values (optional ones may be empty), a field this account does
/// not know stays literal. The message is stored and the rows turn green.
#[test]
fn the_pasted_template_filled_by_chatrace_stores_the_message_and_turns_green() {
    let relay = Relay::start("template-e2e");
    let template = fact(&row(&relay, "webhook_configured"), "Body");
    let filled = template
        .replace("{{user_id}}", "5718243390127745")
        .replace("{{first_name}}", "Мария")
        .replace("{{last_name}}", "")
        // An account that does not know this field sends it literally.
        .replace("{{last_input}}", "Добрый день! Есть ли размер M?")
        .replace("{{last_input_type}}", "text")
        .replace("{{user_channel}}", "instagram");
    assert!(filled.contains("{{ig_user_name}}"));
    let reply = relay.post_webhook("application/json", filled.as_bytes());
    assert_eq!(reply.json()["stored"], 1, "{}", reply.text());
    assert!(reply.json().get("warning").is_none(), "{}", reply.text());
    let m = &messages(&relay)[0];
    assert_eq!(m["contact_id"], "5718243390127745");
    assert_eq!(m["contact_name"], "Мария");
    assert_eq!(m["username"], Value::Null);
    assert_eq!(m["text"], "Добрый день! Есть ли размер M?");
    for key in ["webhook_configured", "first_message"] {
        let row = row(&relay, key);
        assert_eq!(row["status"], "ok", "{row:#}");
    }
}

/// A body keyed by Chatrace's own system field names, as a flow written from its docs has
/// it, loses nothing: `user_channel` used to be dropped.
#[test]
fn a_body_keyed_by_chatrace_field_names_keeps_every_field() {
    let relay = Relay::start("system-field-names");
    let body = serde_json::json!({
        "user_id": "5718243390127745",
        "first_name": "Мария",
        "last_name": "Иванова",
        "ig_user_name": "maria.i",
        "last_input": "Есть ли размер M?",
        "last_input_type": "text",
        "user_channel": "10",
    });
    let reply = relay.post_webhook("application/json", body.to_string().as_bytes());
    assert_eq!(reply.json()["stored"], 1, "{}", reply.text());
    let m = &messages(&relay)[0];
    assert_eq!(m["contact_id"], "5718243390127745");
    assert_eq!(m["contact_name"], "Мария Иванова");
    assert_eq!(m["username"], "maria.i");
    assert_eq!(m["text"], "Есть ли размер M?");
    assert_eq!(m["channel"], "instagram", "{m:#}");
}
