//! Catch-up from Chatrace's inbox, against a fake inbox that answers in the real API's
//! shapes: messages no webhook brought are stored and forwarded once, messages a webhook
//! brought are matched one to one, history is imported within the rate and resumes after
//! a kill, and a broken inbox changes nothing else.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fake::{Action, Fake};
use crate::fake_inbox::{now_ms, relay_with_inbox, FakeInbox, Mode, Op};
use crate::pages::Browser;
use crate::util::*;

/// Catch-up every second, so a test sees several runs.
const FAST: (&str, &str) = ("CHATRACE_RELAY_CATCH_UP_EVERY", "1s");
const MINUTE_MS: u64 = 60_000;

fn messages(relay: &Relay) -> Vec<serde_json::Value> {
    relay.get_admin("/api/messages?limit=1000").json()["messages"]
        .as_array()
        .unwrap()
        .clone()
}

fn inbox_row(relay: &Relay) -> serde_json::Value {
    let rows = relay.get_admin("/api/setup").json();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "inbox")
        .expect("an inbox row")
        .clone()
}

/// Waits until the inbox row has this status and its words contain `words`.
fn wait_row(relay: &Relay, status: &str, words: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let row = inbox_row(relay);
        if row["status"] == status && row.to_string().contains(words) {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "row never {status} with {words:?}: {row:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A relay that catches up from `inbox` and calls `chatrace` as its API, with a token.
fn relay_with_api(name: &str, inbox: &FakeInbox, chatrace: &Fake) -> Relay {
    let api = chatrace.url("");
    relay_with_inbox(
        name,
        inbox,
        &[
            FAST,
            ("CHATRACE_TOKEN", crate::fake_chatrace::TOKEN),
            ("CHATRACE_API_URL", api.as_str()),
        ],
    )
}

fn reply(relay: &Relay, body: &str) -> Reply {
    relay.request(
        "POST",
        "/api/messages/reply",
        &[
            ("Authorization", &format!("Bearer {ADMIN}")),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

fn post_json(relay: &Relay, body: &str) -> Reply {
    relay.post_webhook("application/json", body.as_bytes())
}

#[test]
fn messages_written_during_live_chat_are_stored_and_forwarded_once() {
    let app = Fake::always(200);
    let inbox = FakeInbox::start();
    let t = now_ms() - 5 * MINUTE_MS;
    inbox
        .conversation("5718243390127745", "Мария Иванова")
        .live_chat(true)
        .profile_pic("https://cdn.example/maria.jpg")
        .message_in("Здравствуйте! Есть доставка в Казань?", t)
        .typing(t + 1_000)
        .message_out_agent("Да, доставляем за 2 дня.", t + 60_000, 1987654321012345)
        .message_in("Отлично, беру", t + 120_000)
        .attachment_in("image", "https://cdn.example/photo.jpg", t + 130_000);
    let hook = app.url("/hook");
    let relay = relay_with_inbox(
        "inbox-live-chat",
        &inbox,
        &[FAST, ("CHATRACE_RELAY_FORWARD_URL", hook.as_str())],
    );
    relay.wait_count("SELECT count(*) FROM messages", 4);
    // Several more runs: nothing is stored or forwarded twice.
    let runs = inbox.count(Op::Conversations);
    let deadline = Instant::now() + Duration::from_secs(10);
    while inbox.count(Op::Conversations) < runs + 2 {
        assert!(Instant::now() < deadline, "catch-up stopped running");
        std::thread::sleep(Duration::from_millis(100));
    }
    app.wait_for(4, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(relay.count("SELECT count(*) FROM messages"), 4);
    assert_eq!(app.requests().len(), 4, "each message forwarded once");

    let all = messages(&relay);
    assert!(all.iter().all(|m| m["source"] == "inbox"), "{all:#?}");
    let first = &all[0];
    assert_eq!(first["text"], "Здравствуйте! Есть доставка в Казань?");
    assert_eq!(first["direction"], "in");
    assert_eq!(first["channel"], "instagram");
    assert_eq!(first["contact_name"], "Мария Иванова");
    assert_eq!(first["sent_at"], first["received_at"]);
    let out = &all[1];
    assert_eq!(
        (&out["direction"], &out["sender"], &out["sender_id"]),
        (
            &serde_json::json!("out"),
            &serde_json::json!("agent"),
            &serde_json::json!("1987654321012345")
        )
    );
    assert_eq!(all[3]["attachments"][0]["type"], "image");
    // The conversation's name saved a lookup; the caught-up counts are in the stats.
    let stats = relay.stats();
    assert_eq!(
        (
            stats["caught_up"].as_i64(),
            stats["caught_up_last_24h"].as_i64()
        ),
        (Some(4), Some(4))
    );
    let row = wait_row(&relay, "ok", "4 during live chat");
    assert!(row.to_string().contains("Aurora Shop"), "{row:#}");
    let metrics = relay.get_admin("/metrics").text();
    assert!(
        metrics.contains("chatrace_relay_caught_up_messages_total 4"),
        "{metrics}"
    );
    assert!(metrics.contains(r#"chatrace_relay_inbox_calls_total{outcome="ok"}"#));

    // What the inbox was asked, and how.
    let asked = inbox.requests();
    let call = asked.iter().find(|r| Op::of(r) == Op::Messages).unwrap();
    assert_eq!(call.header("User-Agent"), Some("mobile-app"));
    assert_eq!(call.header("Content-Type"), Some("application/json"));
    assert_eq!(
        call.header("X-ACCESS-TOKEN"),
        Some(inbox.valid_token().as_str())
    );
}

#[test]
fn equal_texts_match_webhooks_one_to_one() {
    let inbox = FakeInbox::start();
    let relay = relay_with_inbox(
        "inbox-matching",
        &inbox,
        &[("CHATRACE_RELAY_DEDUP_WINDOW", "0"), FAST],
    );
    // Two "ok" by webhook from one contact, two "ok" in the inbox: two messages.
    for _ in 0..2 {
        assert_eq!(
            post_json(&relay, r#"{"user_id":"111","text":"ok"}"#).status,
            200
        );
    }
    // Two "ok" in the inbox, one by webhook, from another contact: two messages.
    assert_eq!(
        post_json(&relay, r#"{"user_id":"222","text":"ok"}"#).status,
        200
    );
    let t = now_ms() - 2 * MINUTE_MS;
    inbox
        .conversation("111", "A")
        .message_in("ok", t)
        .message_in("ok", t + 1_000);
    inbox
        .conversation("222", "B")
        .message_in("ok", t)
        .message_in("ok", t + 1_000);
    relay.wait_count(
        "SELECT count(*) FROM messages WHERE external_id LIKE 'inbox:%'",
        4,
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE contact_id = '111'"),
        2
    );
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE contact_id = '222'"),
        2
    );
    assert_eq!(
        relay.count(
            "SELECT count(*) FROM messages WHERE source = 'webhook' AND external_id LIKE 'inbox:%'"
        ),
        3,
        "every webhook message carries its inbox id"
    );
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE source = 'inbox'"),
        1
    );
    let distinct = relay.count("SELECT count(DISTINCT external_id) FROM messages");
    assert_eq!(distinct, 4);
    assert_eq!(relay.stats()["caught_up"], 1);
}

#[test]
fn messages_sent_while_the_relay_was_down_arrive_after_the_restart() {
    let inbox = FakeInbox::start();
    let mut relay = relay_with_inbox("inbox-restart", &inbox, &[FAST]);
    let t = now_ms() - 2 * MINUTE_MS;
    inbox.conversation("333", "C").message_in("before", t);
    relay.wait_count("SELECT count(*) FROM messages", 1);
    relay.kill();
    let down = now_ms() - 90_000;
    inbox
        .conversation("333", "C")
        .message_in("while down 1", down)
        .message_in("while down 2", down + 1);
    inbox
        .conversation("444", "D")
        .message_in("while down 3", down + 2);
    relay.restart();
    relay.wait_count("SELECT count(*) FROM messages", 4);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(relay.count("SELECT count(*) FROM messages"), 4);
}

#[test]
fn a_reply_sent_through_the_relay_is_one_outgoing_message() {
    let chatrace = Fake::start(|_| Action::json(200, r#"{"success":true}"#));
    let inbox = FakeInbox::start();
    let relay = relay_with_api("inbox-reply", &inbox, &chatrace);
    let answer = reply(&relay, r#"{"contact_id":"555","text":"Спасибо за заказ"}"#);
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Chatrace's inbox shows the reply (sent by the API, so no team member).
    inbox
        .conversation("555", "E")
        .message_out_bot("Спасибо за заказ", now_ms() - 61_000);
    relay.wait_count(
        "SELECT count(*) FROM messages WHERE external_id LIKE 'inbox:%'",
        1,
    );
    std::thread::sleep(Duration::from_millis(1500));
    let all = messages(&relay);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(
        (&all[0]["source"], &all[0]["direction"]),
        (&serde_json::json!("relay"), &serde_json::json!("out"))
    );
}

#[test]
fn incoming_only_leaves_outgoing_messages_out() {
    let inbox = FakeInbox::start();
    let t = now_ms() - 3 * MINUTE_MS;
    inbox
        .conversation("666", "F")
        .message_in("hi", t)
        .message_out_bot("hello from the bot", t + 1_000);
    let relay = relay_with_inbox(
        "inbox-incoming-only",
        &inbox,
        &[FAST, ("CHATRACE_RELAY_INCOMING_ONLY", "1")],
    );
    relay.wait_count("SELECT count(*) FROM messages", 1);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE direction = 'out'"),
        0
    );
}

#[test]
fn an_expired_token_fails_the_row_and_webhooks_go_on() {
    let inbox = FakeInbox::start();
    let expired = inbox.token_expiring_at(now_ms() / 1000 - 3600);
    let relay = relay_with_inbox(
        "inbox-expired",
        &inbox,
        &[FAST, ("CHATRACE_INBOX_TOKEN", expired.as_str())],
    );
    let row = wait_row(&relay, "fail", "Sign in again");
    assert!(row.to_string().contains("Signed out"), "{row:#}");
    assert_eq!(
        post_json(&relay, r#"{"user_id":"1","text":"still here"}"#).status,
        200
    );
    assert_eq!(relay.count("SELECT count(*) FROM messages"), 1);
    let metrics = relay.get_admin("/metrics").text();
    assert!(metrics.contains(r#"chatrace_relay_inbox_calls_total{outcome="not_signed_in"}"#));
}

#[test]
fn signing_in_by_emailed_code_from_the_page() {
    let inbox = FakeInbox::start();
    let t = now_ms() - 5 * MINUTE_MS;
    inbox.conversation("777", "G").message_in("hello", t);
    let url = inbox.url();
    let relay = Relay::start_with(
        "inbox-login-page",
        &[],
        &[
            ("CHATRACE_RELAY_WEBHOOK_SECRET", SECRET),
            ("CHATRACE_RELAY_ADMIN_TOKEN", ADMIN),
            ("CHATRACE_INBOX_URL", url.as_str()),
            FAST,
        ],
    );
    let row = inbox_row(&relay);
    assert_eq!(row["status"], "todo");
    assert!(row["detail"].as_str().unwrap().contains("team member"));

    let (mut b, csrf) = Browser::signed_in(&relay);
    let page = b.get("/", &[]).text();
    assert!(
        page.contains(r#"action="/setup/inbox_send_code""#),
        "the form is shown"
    );
    // A forged request without the CSRF token does nothing.
    let forged = b.post("/setup/inbox_send_code", "value=irina%40shop.example");
    assert_eq!(forged.status, 403);
    assert!(inbox.emails().is_empty());

    let sent = b.post(
        "/setup/inbox_send_code",
        &format!("csrf={csrf}&value=irina%40shop.example"),
    );
    assert_eq!(sent.status, 303);
    assert_eq!(inbox.emails(), ["irina@shop.example"]);
    let page = b.get("/", &[]).text();
    assert!(page.contains("irina@shop.example"));
    assert!(page.contains(r#"action="/setup/inbox_check_code""#));

    // A wrong code says so and stores nothing.
    b.post(
        "/setup/inbox_check_code",
        &format!("csrf={csrf}&value=111111"),
    );
    let page = b.get("/", &[]).text();
    assert!(page.contains("Chatrace refused the code"), "{page}");
    assert_eq!(
        relay.count("SELECT count(*) FROM settings WHERE key = 'inbox_token'"),
        0
    );

    b.post(
        "/setup/inbox_check_code",
        &format!("csrf={csrf}&value={}", crate::fake_inbox::DEFAULT_CODE),
    );
    relay.wait_count("SELECT count(*) FROM messages", 1);
    wait_row(&relay, "ok", "Aurora Shop");
    // The token is kept, never shown or logged.
    let token: String = relay
        .db()
        .query_row(
            "SELECT value FROM settings WHERE key = 'inbox_token'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let page = b.get("/", &[]).text();
    assert!(!page.contains(&token));
    assert!(!relay.log().contains(&token));
    assert!(!relay.log().contains("irina@shop.example"));
}

#[test]
fn inbox_login_from_a_terminal_reads_the_code_from_standard_input() {
    let inbox = FakeInbox::start();
    let relay = relay_with_inbox(
        "inbox-login-cli",
        &inbox,
        &[("CHATRACE_RELAY_CATCH_UP_EVERY", "0")],
    );
    let login = |code: &str| {
        let mut child = Command::new(binary())
            .args(["inbox-login", "irina@shop.example", "--db"])
            .arg(&relay.db)
            .env("CHATRACE_INBOX_URL", inbox.url())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{code}").unwrap();
        child.wait_with_output().unwrap()
    };
    let wrong = login("000000");
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("refused"));
    let right = login(crate::fake_inbox::DEFAULT_CODE);
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    let out = String::from_utf8_lossy(&right.stdout);
    assert!(out.contains("Aurora Shop (1145545)"), "{out}");
    assert_eq!(
        relay.count("SELECT count(*) FROM settings WHERE key = 'inbox_token'"),
        1
    );
}

#[test]
fn history_imports_within_the_rate_and_resumes_after_a_kill() {
    let inbox = FakeInbox::start();
    let relay = relay_with_inbox(
        "inbox-history",
        &inbox,
        &[("CHATRACE_RELAY_CATCH_UP_EVERY", "0")],
    );
    let start = now_ms() - 30 * 24 * 60 * MINUTE_MS;
    for c in 0..50u64 {
        let mut conversation = inbox.conversation(&format!("9{c:04}"), &format!("Contact {c}"));
        for m in 0..40u64 {
            conversation = conversation.message_in(
                &format!("message {m} of {c}"),
                start + c * 100_000 + m * 1_000,
            );
        }
    }
    let catch_up = || {
        Command::new(binary())
            .args([
                "catch-up",
                "--since",
                "2026-01-01",
                "--chatrace-rate",
                "600",
                "--db",
            ])
            .arg(&relay.db)
            .env("CHATRACE_INBOX_URL", inbox.url())
            .env("CHATRACE_INBOX_TOKEN", inbox.valid_token())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = catch_up();
    inbox.wait_for(60, Duration::from_secs(30));
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let first_run = inbox.requests().len();
    let partial = relay.count("SELECT count(*) FROM messages");
    assert!(partial > 0 && partial < 2000, "killed midway: {partial}");

    let done = catch_up().wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(relay.count("SELECT count(*) FROM messages"), 2000);
    assert_eq!(
        relay.count("SELECT count(DISTINCT external_id) FROM messages"),
        2000
    );
    // Within the pace: 600 a minute is one every 100 ms.
    assert!(inbox.max_in_any_minute() <= 600);
    // Each process keeps its own pace, measured within the second one: calls start 100 ms
    // apart and arrive with the machine's jitter, so any 21 in a row span at least 1.8 s.
    let arrivals = inbox.arrivals();
    let tightest = arrivals[first_run..]
        .windows(21)
        .map(|w| w[20] - w[0])
        .min()
        .unwrap();
    assert!(tightest >= Duration::from_millis(1800), "{tightest:?}");
    // History is not pushed to the app unless asked, but the cursor has it.
    assert_eq!(relay.count("SELECT count(*) FROM deliveries"), 0);
    // The second run skipped the conversations the first had finished: one whole walk
    // is 154 requests (who am I, 3 pages of conversations, 3 pages of each conversation).
    let asked = inbox.requests().len();
    assert!(
        asked <= 154 + 20,
        "resumed, not restarted: {asked} requests"
    );
}

#[test]
fn a_429_pauses_every_call_to_chatrace() {
    let inbox = FakeInbox::start();
    let chatrace = Fake::start(|_| Action::json(200, r#"{"success":true}"#));
    inbox.rate_limit_next(1, 60);
    let relay = relay_with_api("inbox-429", &inbox, &chatrace);
    inbox.wait_for(1, Duration::from_secs(5));
    // A contact without a name would be looked up at once, were it not for the pause.
    assert_eq!(
        post_json(&relay, r#"{"user_id":"888","text":"hi"}"#).status,
        200
    );
    // A reply, which a person waits for, is refused at once instead of hanging.
    let refused = reply(&relay, r#"{"contact_id":"888","text":"hello"}"#);
    assert_ne!(refused.status, 200);
    assert!(refused.text().contains("rate limit"), "{}", refused.text());
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        inbox.requests().len(),
        1,
        "the inbox was asked again during the pause"
    );
    assert!(
        chatrace.requests().is_empty(),
        "the API was called during the pause"
    );
    // Webhooks are never held up.
    assert_eq!(
        post_json(&relay, r#"{"user_id":"888","text":"again"}"#).status,
        200
    );
}

#[test]
fn a_broken_inbox_is_reported_and_changes_nothing_else() {
    for (mode, words) in [
        (Mode::Null, "does not answer like"),
        (Mode::Html, "does not answer like"),
        (Mode::Numbers, "Catching up"),
        (Mode::MessageNotJson, "Catching up"),
        (Mode::MessageMissing, "Catching up"),
    ] {
        let inbox = FakeInbox::start();
        inbox
            .conversation("999", "H")
            .message_in("odd", now_ms() - 5 * MINUTE_MS);
        inbox.set_mode(mode);
        let mut relay = relay_with_inbox("inbox-broken", &inbox, &[FAST]);
        let row = wait_row(
            &relay,
            if words == "Catching up" { "ok" } else { "fail" },
            words,
        );
        assert!(!row.to_string().is_empty());
        assert_eq!(
            post_json(&relay, r#"{"user_id":"1","text":"fine"}"#).status,
            200
        );
        assert!(relay.try_wait().is_none(), "{mode:?}: the relay died");
        assert!(
            !relay.log().contains("panicked"),
            "{mode:?}: {}",
            relay.log()
        );
    }
}

#[test]
fn the_api_token_is_tried_once_and_the_row_says_whether_the_inbox_took_it() {
    let inbox = FakeInbox::start();
    let url = inbox.url();
    // Only the account's API token, which this inbox does not accept.
    let relay = Relay::start_with(
        "inbox-api-token",
        &[],
        &[
            ("CHATRACE_RELAY_WEBHOOK_SECRET", SECRET),
            ("CHATRACE_RELAY_ADMIN_TOKEN", ADMIN),
            ("CHATRACE_TOKEN", crate::fake_chatrace::TOKEN),
            ("CHATRACE_API_URL", "http://127.0.0.1:9"),
            ("CHATRACE_INBOX_URL", url.as_str()),
            FAST,
        ],
    );
    let row = wait_row(&relay, "todo", "did not accept the API token");
    assert!(
        row["actions"].to_string().contains("inbox_send_code"),
        "{row:#}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(inbox.count_all(), 1, "tried once, not on every run");
    assert_eq!(
        inbox.requests()[0].header("X-ACCESS-TOKEN"),
        Some(crate::fake_chatrace::TOKEN)
    );
}

#[test]
fn a_login_with_several_accounts_asks_which_one() {
    let inbox = FakeInbox::start();
    inbox.set_pages(&[("1145545", "Aurora Shop"), ("2200000", "Aurora Outlet")]);
    let relay = relay_with_inbox("inbox-accounts", &inbox, &[FAST]);
    let row = wait_row(&relay, "warn", "Aurora Outlet (2200000)");
    assert!(row["actions"].to_string().contains("inbox_choose_account"));
    let (mut b, csrf) = Browser::signed_in(&relay);
    // Only a listed account is taken.
    b.post(
        "/setup/inbox_choose_account",
        &format!("csrf={csrf}&value=999"),
    );
    assert_eq!(inbox_row(&relay)["status"], "warn");
    b.post(
        "/setup/inbox_choose_account",
        &format!("csrf={csrf}&value=2200000"),
    );
    wait_row(&relay, "ok", "«Aurora Outlet» (2200000)");
}
