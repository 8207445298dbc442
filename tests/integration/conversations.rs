//! Conversations on the page: the contact list by latest activity, a contact's thread in
//! time order with the reply box and Instagram's 24-hour window, and the links to threads.

use crate::fake::{Action, Fake};
use crate::fake_chatrace::relay_with_chatrace;
use crate::pages::Browser;
use crate::util::*;

pub(crate) fn webhook(relay: &Relay, body: serde_json::Value) {
    let reply = relay.post_webhook("application/json", body.to_string().as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// The ids of the contact rows, in the page's order.
fn listed(html: &str) -> Vec<String> {
    html.split("data-contact=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

fn row<'h>(html: &'h str, contact: &str) -> &'h str {
    let start = html
        .find(&format!("data-contact=\"{contact}\""))
        .unwrap_or_else(|| panic!("no row for {contact}"));
    let rest = &html[start..];
    &rest[..rest.find("</li>").unwrap()]
}

#[test]
fn contacts_come_by_latest_activity_and_say_who_waits_for_an_answer() {
    let chatrace = Fake::start(|_| Action::json(200, r#"{"success":true}"#));
    let relay = relay_with_chatrace("conv-contacts", &chatrace);
    for (id, name, text) in [
        ("1001", "Anna", "first"),
        ("1002", "Boris <b>", "hello"),
        ("1003", "Vera", "привет"),
        ("1001", "Anna", "second from Anna"),
    ] {
        webhook(
            &relay,
            serde_json::json!({"user_id": id, "first_name": name, "ig_user_name": format!("u{id}"),
                               "text": text, "channel": "instagram"}),
        );
    }
    let (mut browser, csrf) = Browser::signed_in(&relay);
    let page = browser.get("/contacts", &[]).text();
    assert_eq!(listed(&page), ["1001", "1003", "1002"]);
    let anna = row(&page, "1001");
    assert!(anna.contains("second from Anna"), "{anna}");
    assert!(anna.contains("Messages: 2"), "{anna}");
    assert!(anna.contains("data-unanswered"), "{anna}");
    assert!(
        anna.contains(r#"href="&#x2f;contacts&#x2f;1001""#),
        "{anna}"
    );
    assert!(
        row(&page, "1002").contains("Boris &lt;b&gt;"),
        "names are escaped"
    );

    // A reply from Boris's thread goes back there, and Boris no longer waits.
    let sent = browser.post(
        "/reply",
        &format!("csrf={csrf}&contact_id=1002&back=%2Fcontacts%2F1002&text=Hi%20Boris"),
    );
    assert_eq!(sent.status, 303, "{}", sent.text());
    assert_eq!(sent.header("Location"), Some("/contacts/1002#flash"));
    let page = browser.get("/contacts", &[]).text();
    assert_eq!(listed(&page), ["1002", "1001", "1003"]);
    let boris = row(&page, "1002");
    assert!(!boris.contains("data-unanswered"), "{boris}");
    assert!(
        boris.contains("You:") && boris.contains("Hi Boris"),
        "{boris}"
    );
    let thread = browser.get("/contacts/1002", &[]).text();
    assert!(
        thread.contains("id=\"flash\">Sent."),
        "the outcome shows under the thread"
    );

    // A back field that points anywhere else goes to the dashboard.
    let away = browser.post(
        "/reply",
        &format!("csrf={csrf}&contact_id=1002&back=%2F%2Fevil.example&text=x"),
    );
    assert_eq!(away.header("Location"), Some("/#flash"));
}

#[test]
fn contacts_page_by_keyset_and_every_contact_appears_once() {
    let relay = Relay::start("conv-contacts-pages");
    for i in 0..120 {
        webhook(
            &relay,
            serde_json::json!({"user_id": format!("{}", 5000 + i), "text": format!("m{i}")}),
        );
    }
    let (mut browser, _) = Browser::signed_in(&relay);
    let mut seen = Vec::new();
    let mut path = "/contacts".to_string();
    loop {
        let page = browser.get(&path, &[]).text();
        seen.extend(listed(&page));
        match page.split("rel=\"next\" href=\"").nth(1) {
            Some(rest) => path = rest.split('"').next().unwrap().replace("&amp;", "&"),
            None => break,
        }
    }
    let expected: Vec<String> = (0..120).rev().map(|i| format!("{}", 5000 + i)).collect();
    assert_eq!(seen, expected);
}

#[test]
fn a_thread_shows_both_sides_in_time_order_with_their_sources() {
    let chatrace = Fake::start(|_| Action::json(200, r#"{"success":true}"#));
    let relay = relay_with_chatrace("conv-thread", &chatrace);
    let now = chatrace_relay::time::now_ms();
    let iso = |ms: i64| chatrace_relay::time::format_rfc3339(ms);
    // Arrives last but was written first: the sender's time orders the thread.
    webhook(
        &relay,
        serde_json::json!({"user_id": "77", "first_name": "Lena", "text": "second", "timestamp": iso(now - 60_000)}),
    );
    webhook(
        &relay,
        serde_json::json!({"user_id": "77", "text": "first <script>alert(1)</script>", "timestamp": iso(now - 120_000)}),
    );
    let (mut browser, csrf) = Browser::signed_in(&relay);
    browser.post(
        "/reply",
        &format!("csrf={csrf}&contact_id=77&back=%2Fcontacts%2F77&text=third"),
    );
    let thread = browser.get("/contacts/77", &[]).text();
    let at = |needle: &str| {
        thread
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing"))
    };
    assert!(at("first &lt;script&gt;") < at(">second<"));
    assert!(at(">second<") < at(">third<"));
    assert!(!thread.contains("<script>alert"), "texts are escaped");
    assert!(thread.contains(r#"data-source="webhook""#));
    assert!(thread.contains(r#"data-source="relay""#));
    assert!(thread.contains("sent by the relay"));
    // The contact wrote a minute ago: the window is open, with the time left.
    assert!(thread.contains("23 h 59 min left to reply"), "{thread}");
    assert!(!thread.contains("<fieldset disabled>"));
    assert!(thread.contains(r#"name="contact_id" value="77""#));

    // Every message row links to its thread.
    let list = browser.get("/messages", &[]).text();
    assert!(list.contains(r#"href="&#x2f;contacts&#x2f;77" data-thread-link"#));

    // The whole thread downloads in the same order.
    let csv = browser.get("/contacts/77/export?format=csv", &[]);
    assert_eq!(csv.status, 200);
    assert!(csv
        .header("Content-Disposition")
        .unwrap()
        .contains("thread-77.csv"));
    let lines: Vec<String> = csv.text().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[1].contains("first <script>") && lines[3].contains("third"));
    let jsonl = browser.get("/contacts/77/export?format=jsonl", &[]).text();
    let texts: Vec<String> = jsonl
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        texts,
        ["first <script>alert(1)</script>", "second", "third"]
    );
    assert_eq!(
        browser.get("/contacts/77/export?format=xml", &[]).status,
        400
    );
    assert_eq!(browser.get("/contacts/nobody", &[]).status, 404);
}

#[test]
fn outside_the_window_sending_is_off_and_says_why() {
    let chatrace = Fake::start(|_| Action::json(200, r#"{"success":true}"#));
    let relay = relay_with_chatrace("conv-window", &chatrace);
    let day_ago = chatrace_relay::time::now_ms() - 30 * 3_600_000;
    webhook(
        &relay,
        serde_json::json!({"user_id": "88", "text": "old", "timestamp": chatrace_relay::time::format_rfc3339(day_ago)}),
    );
    let (mut browser, _) = Browser::signed_in(&relay);
    let thread = browser.get("/contacts/88", &[]).text();
    assert!(thread.contains("<fieldset disabled>"));
    assert!(thread.contains("within 24 hours"), "{thread}");
    browser.get("/lang?to=ru&back=%2Fcontacts%2F88", &[]);
    let ru = browser.get("/contacts/88", &[]).text();
    assert!(ru.contains("в течение 24 часов"), "{ru}");
}
