//! The dashboard's buttons that act on the outbox and on Chatrace: retrying one failed
//! delivery, replaying all of them, and the reply box. Each is a form post that must carry
//! the session's CSRF token and come from the relay's own origin.

use std::time::{Duration, Instant};

use crate::fake::{Action, Fake, Recorded};
use crate::fake_chatrace::relay_with_chatrace;
use crate::pages::Browser;
use crate::util::*;

/// Waits until the JSON API reports `n` failed deliveries to the one target.
fn wait_failed(relay: &Relay, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let targets = relay.get_admin("/api/deliveries").json()["targets"].clone();
        if targets[0]["failed"].as_i64() == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} failed: {targets}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn flash(b: &mut Browser, reply: &Reply) -> String {
    assert_eq!(reply.status, 303, "{}", reply.text());
    assert!(reply
        .header("Location")
        .is_some_and(|l| l.starts_with("/#")));
    let page = b.get("/", &[]).text();
    let start = page.find(r#"id="flash">"#).expect("a flash message") + r#"id="flash">"#.len();
    page[start..].split("</p>").next().unwrap().to_string()
}

#[test]
fn failed_deliveries_are_listed_and_retried_one_or_all() {
    let fake = Fake::always(500);
    let target = fake.url("/hook");
    let relay = Relay::start_args(
        "page-retry",
        &["--forward-url", &target, "--retry-schedule", "50ms"],
    );
    let body = br#"{"contact_id":"c-4711","text":"hello","message_id":"mid-42"}"#;
    assert_eq!(relay.post_webhook("application/json", body).status, 200);
    wait_failed(&relay, 1);
    let id = relay.count("SELECT id FROM deliveries");

    let (mut b, csrf) = Browser::signed_in(&relay);
    let page = b.get("/", &[]).text();
    let row = &page[page
        .find(r#"<section class="section" id="failed""#)
        .expect("listed")..];
    let row = &row[row.find(&format!(r#"data-delivery="{id}""#)).unwrap()..];
    for shown in [
        "c-4711",
        "mid-42",
        "HTTP 500",
        r#"action="/deliveries/replay""#,
    ] {
        assert!(row.contains(shown), "{shown} missing from {row}");
    }
    assert!(row.contains(&format!(r#"name="id" value="{id}""#)));
    assert!(page.contains(r#"action="/setup/replay_failed""#));

    // Neither button works without the token or from another site.
    let seen = fake.requests().len();
    assert_eq!(
        b.post("/deliveries/replay", &format!("id={id}")).status,
        403
    );
    assert_eq!(b.post("/setup/replay_failed", "").status, 403);
    let foreign = b.post_from(
        "/deliveries/replay",
        &format!("csrf={csrf}&id={id}"),
        "https://evil.example",
    );
    assert_eq!(foreign.status, 403);
    assert_eq!(
        relay.count("SELECT count(*) FROM deliveries WHERE state = 'failed'"),
        1
    );

    let retried = b.post("/deliveries/replay", &format!("csrf={csrf}&id={id}"));
    assert_eq!(
        flash(&mut b, &retried),
        format!("Delivery {id} is queued again.")
    );
    let seen = fake.wait_for(seen + 1, Duration::from_secs(5)).len();
    wait_failed(&relay, 1);

    let all = b.post("/setup/replay_failed", &format!("csrf={csrf}"));
    assert_eq!(flash(&mut b, &all), "Deliveries queued again: 1");
    fake.wait_for(seen + 1, Duration::from_secs(5));

    let missing = b.post("/deliveries/replay", &format!("csrf={csrf}&id=999999"));
    assert_eq!(flash(&mut b, &missing), "There is no such delivery.");
}

/// The messages sent through the fake Chatrace; the checklist's token checks left out. The
/// page answers only after Chatrace did, so every send is already recorded.
fn sends(chatrace: &Fake) -> Vec<Recorded> {
    chatrace
        .requests()
        .into_iter()
        .filter(|r| r.url.ends_with("/send/text"))
        .collect()
}

#[test]
fn the_reply_box_sends_through_chatrace_and_stores_the_reply() {
    let chatrace = Fake::start(|_| Action::json(200, r#"{"success":true}"#));
    let relay = relay_with_chatrace("page-reply", &chatrace);
    let body = br#"{"contact_id":"c-77","name":"Anna","username":"anna.k","text":"hi"}"#;
    assert_eq!(relay.post_webhook("application/json", body).status, 200);

    let (mut b, csrf) = Browser::signed_in(&relay);
    let page = b.get("/", &[]).text();
    let option = page
        .find(r#"<option value="c-77">"#)
        .map(|at| &page[at..at + 80]);
    assert!(
        option.is_some_and(|o| o.contains("Anna (@anna.k) · c-77")),
        "{option:?}"
    );
    assert!(!page.contains("reply-no-token"));

    assert_eq!(b.post("/reply", "contact=c-77&text=hello").status, 403);
    assert!(sends(&chatrace).is_empty());

    let sent = b.post(
        "/reply",
        &format!("csrf={csrf}&contact=c-77&contact_id=&text=Line+one%0D%0ALine+two"),
    );
    assert_eq!(flash(&mut b, &sent), "Sent.");
    let call = &sends(&chatrace)[0];
    assert_eq!(call.url, "/contacts/c-77/send/text");
    assert_eq!(call.json()["text"], "Line one\nLine two");
    let messages = relay.get_admin("/api/messages").json()["messages"].clone();
    let out = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["direction"] == "out")
        .expect("the reply is stored");
    assert_eq!(out["contact_id"], "c-77");
    assert_eq!(out["text"], "Line one\nLine two");

    // A typed id reaches someone the list does not offer.
    let typed = b.post(
        "/reply",
        &format!("csrf={csrf}&contact=c-77&contact_id=c-99&text=hey"),
    );
    assert_eq!(flash(&mut b, &typed), "Sent.");
    assert_eq!(sends(&chatrace)[1].url, "/contacts/c-99/send/text");

    let nobody = b.post("/reply", &format!("csrf={csrf}&contact=&text=hey"));
    assert_eq!(
        flash(&mut b, &nobody),
        "Choose a contact or type a contact id."
    );
}

#[test]
fn the_reply_box_shows_chatrace_refusals_verbatim() {
    let chatrace = Fake::start(|_| {
        Action::json(
            200,
            r#"{"error":{"code":100,"message":"Outside of 24h window <b>"}}"#,
        )
    });
    let relay = relay_with_chatrace("page-reply-refused", &chatrace);
    let (mut b, csrf) = Browser::signed_in(&relay);
    let refused = b.post("/reply", &format!("csrf={csrf}&contact_id=c-1&text=late"));
    let shown = flash(&mut b, &refused);
    assert!(
        shown.contains("Outside of 24h window &lt;b&gt;"),
        "verbatim and escaped: {shown}"
    );
    assert!(shown.starts_with("Not sent:"), "{shown}");
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE direction = 'out'"),
        0
    );
}

#[test]
fn without_a_chatrace_token_the_reply_box_is_disabled_with_a_hint() {
    let relay = Relay::start("page-reply-no-token");
    let (mut b, _) = Browser::signed_in(&relay);
    let page = b.get("/", &[("Accept-Language", "ru")]).text();
    assert!(page.contains(r#"<fieldset disabled>"#));
    assert!(page.contains("задайте CHATRACE_TOKEN"));
    assert!(!page.contains(r#"id="failed""#), "no forwarding, no list");
    let en = b.get("/", &[("Accept-Language", "en")]).text();
    assert!(en.contains("set CHATRACE_TOKEN and restart the relay"));
}
