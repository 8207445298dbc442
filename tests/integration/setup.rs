//! The setup checklist through `/api/setup`: every row's states, the self-probe, the
//! Chatrace token check against a fake Chatrace API, the buttons, and `check-token`.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::fake_chatrace::{self, Answer};
use crate::util::*;

const TOKEN: &str = "1234567.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";

fn checklist(relay: &Relay) -> Vec<Value> {
    let reply = relay.get_admin("/api/setup");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json().as_array().unwrap().clone()
}

pub(crate) fn row(relay: &Relay, key: &str) -> Value {
    checklist(relay)
        .into_iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row {key}"))
}

/// The value of the first fact whose label contains `label`.
pub(crate) fn fact(row: &Value, label: &str) -> String {
    row["facts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["label"].as_str().unwrap().contains(label))
        .map(|f| f["value"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no fact {label:?} in {row:#}"))
}

fn fact_of_kind(row: &Value, kind: &str) -> Vec<String> {
    row["facts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["kind"] == kind)
        .map(|f| f["value"].as_str().unwrap().to_string())
        .collect()
}

fn action(relay: &Relay, name: &str) -> Reply {
    relay.request(
        "POST",
        &format!("/api/setup/{name}"),
        &[("Authorization", &format!("Bearer {ADMIN}"))],
        b"",
    )
}

/// A relay whose Chatrace token is checked against `api`, with a short API timeout.
fn relay_with_token(name: &str, token: &str, api: &str) -> Relay {
    let mut env = KNOWN_SECRETS.to_vec();
    env.extend([
        ("CHATRACE_TOKEN", token),
        ("CHATRACE_API_URL", api),
        ("CHATRACE_API_TIMEOUT_MS", "700"),
    ]);
    Relay::start_with(name, &[], &env)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_fresh_relay_lists_every_row_in_order() {
    let relay = Relay::start("setup-fresh");
    assert_eq!(relay.request("GET", "/api/setup", &[], b"").status, 401);
    let rows = checklist(&relay);
    let keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "server",
            "public_url",
            "chatrace_token",
            "webhook_configured",
            "first_message",
            "inbox"
        ]
    );
    // Optional and not connected: a step to do, never a warning.
    assert_eq!(rows[5]["status"], "todo");
    let server = &rows[0];
    // A nearly full disk on the test machine is the only reason for a warning here.
    match server["status"].as_str().unwrap() {
        "ok" => {}
        "warn" => assert!(server["detail"].as_str().unwrap().contains("disk")),
        other => panic!("server row {other}: {server:#}"),
    }
    assert!(fact(server, "Durability").contains("journal_mode=wal, synchronous=2"));
    assert!(fact(server, "Free disk space").contains('%'));
    assert!(fact(server, "Database size").contains("WAL"));
    assert_eq!(rows[1]["status"], "todo");
    assert!(rows[1]["detail"].as_str().unwrap().contains("--public-url"));
    assert_eq!(rows[2]["status"], "todo");
    assert!(rows[2]["detail"]
        .as_str()
        .unwrap()
        .contains("CHATRACE_TOKEN"));
    assert!(rows[2]["actions"].is_null(), "no re-check without a token");
    for row in &rows {
        for field in ["title", "detail"] {
            assert!(!row[field].as_str().unwrap().is_empty(), "{row:#}");
        }
    }
}

#[test]
fn russian_is_chosen_by_query_or_accept_language() {
    let relay = Relay::start("setup-ru");
    let by_query = relay.get_admin("/api/setup?lang=ru").json();
    assert_eq!(by_query[0]["title"], "Relay работает");
    assert_eq!(by_query[1]["title"], "Задайте публичный адрес");
    let by_header = relay
        .request(
            "GET",
            "/api/setup",
            &[
                ("Authorization", &format!("Bearer {ADMIN}")),
                ("Accept-Language", "ru-RU,ru;q=0.9,en;q=0.5"),
            ],
            b"",
        )
        .json();
    assert_eq!(by_header[2]["title"], "Добавьте токен API Chatrace");
    assert_eq!(fact(&by_header[3], "Метод"), "POST");
}

#[test]
fn a_valid_token_is_sent_only_as_x_access_token_and_cached() {
    let chatrace = fake_chatrace::start(Answer::Account(TOKEN.into()));
    let relay = relay_with_token("token-valid", &format!("  {TOKEN}\n"), &chatrace.url(""));
    let token = row(&relay, "chatrace_token");
    assert_eq!(token["status"], "ok", "{token:#}");
    assert!(fact(&token, "Result").contains("account «Cozy Shop» (page id 104912345678)"));
    assert_eq!(
        fact(&token, "Account"),
        "«Cozy Shop» (page id 104912345678)"
    );
    assert_eq!(
        fact(&token, "Account settings (if 1234567"),
        "https://chatrace.com/en/settings?acc=1234567"
    );
    assert_eq!(token["actions"], serde_json::json!(["recheck_token"]));

    let seen = chatrace.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].url, "/accounts/me");
    assert_eq!(seen[0].header("X-ACCESS-TOKEN"), Some(TOKEN));
    assert_eq!(seen[0].header("Accept"), Some("application/json"));
    for other in ["Authorization", "X-API-Key", "api-key", "token"] {
        assert!(seen[0].header(other).is_none(), "{other} was sent");
    }

    row(&relay, "chatrace_token");
    assert_eq!(chatrace.requests().len(), 1, "the verdict is cached");
    let cached: String = relay
        .db()
        .query_row(
            "SELECT value FROM settings WHERE key = 'chatrace_token_check'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!cached.contains(TOKEN), "the token itself is never stored");

    let reply = action(&relay, "recheck_token");
    assert_eq!(reply.status, 200);
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("accepted the token"));
    assert_eq!(
        chatrace.requests().len(),
        2,
        "the button asks Chatrace again"
    );
    assert!(!relay.log().contains(TOKEN), "the token is never logged");
}

#[test]
fn a_rejected_token_explains_the_x_access_token_header() {
    let chatrace = fake_chatrace::start(Answer::Unauthorized);
    let relay = relay_with_token("token-rejected", TOKEN, &chatrace.url(""));
    let token = row(&relay, "chatrace_token");
    assert_eq!(token["status"], "fail");
    assert!(fact(&token, "Result").contains("401"));
    assert!(fact(&token, "Result").contains("No valid API key provided"));
    let detail = token["detail"].as_str().unwrap();
    assert!(detail.contains("X-ACCESS-TOKEN"), "{detail}");
    assert!(detail.contains("Bearer"), "{detail}");
}

#[test]
fn an_error_in_a_200_answer_is_a_failure() {
    let chatrace = fake_chatrace::start(Answer::ErrorInBody);
    let relay = relay_with_token("token-error-200", TOKEN, &chatrace.url(""));
    let token = row(&relay, "chatrace_token");
    assert_eq!(token["status"], "fail");
    assert!(fact(&token, "Result").contains("not part of your plan"));
}

#[test]
fn a_hanging_api_is_reported_unreachable_after_the_timeout() {
    let chatrace = fake_chatrace::start(Answer::Hang(Duration::from_secs(5)));
    let relay = relay_with_token("token-hang", TOKEN, &chatrace.url(""));
    let started = std::time::Instant::now();
    let token = row(&relay, "chatrace_token");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(token["status"], "warn");
    assert!(fact(&token, "Result").contains("timed out"), "{token:#}");
    assert!(token["detail"]
        .as_str()
        .unwrap()
        .contains("CHATRACE_API_URL"));
}

/// The shape of a token is a hint, never a reason not to ask: white-label installs issue
/// tokens of other shapes, and Chatrace's answer decides.
#[test]
fn a_token_of_another_shape_is_asked_about_and_accepted() {
    let white_label = "wl_7f3a9c2e-5b1d-4e8f-a6c0-93d2e1b4f7a8";
    let chatrace = fake_chatrace::start(Answer::Account(white_label.into()));
    let relay = relay_with_token("token-white-label", white_label, &chatrace.url(""));
    let token = row(&relay, "chatrace_token");
    assert_eq!(token["status"], "ok", "{token:#}");
    assert!(fact(&token, "Token shape").contains("no dot"));
    assert_eq!(
        chatrace.requests()[0].header("X-ACCESS-TOKEN"),
        Some(white_label)
    );
}

/// A token pasted with "Bearer " in front: Chatrace refuses it, and the row says, in both
/// languages, that only the whole token in X-ACCESS-TOKEN works.
#[test]
fn a_refused_token_explains_x_access_token_in_both_languages() {
    let chatrace = fake_chatrace::start(Answer::Account(TOKEN.into()));
    let relay = relay_with_token(
        "token-bearer",
        &format!("Bearer {TOKEN}"),
        &chatrace.url(""),
    );
    let token = row(&relay, "chatrace_token");
    assert_eq!(token["status"], "fail");
    assert!(fact(&token, "Result").contains("401"));
    assert!(fact(&token, "Token shape").contains("Bearer"));
    let detail = token["detail"].as_str().unwrap();
    for words in [
        "X-ACCESS-TOKEN",
        "Authorization: Bearer",
        "api-key",
        "?token=",
    ] {
        assert!(detail.contains(words), "{words}: {detail}");
    }
    let ru = relay.request(
        "GET",
        "/api/setup?lang=ru",
        &[("Authorization", &format!("Bearer {ADMIN}"))],
        b"",
    );
    let rows: serde_json::Value = ru.json();
    let token_ru = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "chatrace_token")
        .unwrap();
    let detail = token_ru["detail"].as_str().unwrap();
    assert!(
        detail.contains("X-ACCESS-TOKEN") && detail.contains("читает только"),
        "{detail}"
    );
}

#[test]
fn check_token_command_exits_by_verdict() {
    let run = |api: &str| {
        let out = Command::new(binary())
            .args(["check-token", "--api-url", api])
            .env("CHATRACE_TOKEN", TOKEN)
            .env_remove("CREDENTIALS_DIRECTORY")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let valid = fake_chatrace::start(Answer::Account(TOKEN.into()));
    let (code, out) = run(&valid.url(""));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("accepted the token"), "{out}");
    assert!(
        out.contains("Cozy Shop") && out.contains("104912345678"),
        "{out}"
    );
    let rejected = fake_chatrace::start(Answer::Unauthorized);
    let (code, out) = run(&rejected.url(""));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("X-ACCESS-TOKEN"), "{out}");
    assert!(!out.contains(TOKEN), "the token is never printed");
}

#[test]
fn the_probe_recognises_the_relay_itself() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let public = format!("http://127.0.0.1:{port}");
    let relay = Relay::start_args(
        "probe-self",
        &["--listen", &listen, "--public-url", &public],
    );
    let row = row(&relay, "public_url");
    // Plain http on loopback cannot serve Chatrace, but the probe did find this relay.
    assert_eq!(row["status"], "warn", "{row:#}");
    assert!(fact(&row, "Self-check").contains("this relay answered"));
    let detail = row["detail"].as_str().unwrap();
    assert!(detail.contains("https"), "{detail}");
    assert!(detail.contains(&format!("ngrok http {port}")), "{detail}");
    // Someone else's nonce gets no proof.
    let reply = relay.request("GET", "/instagram/webhook?relay_probe=guess", &[], b"");
    assert_eq!(reply.text().trim(), "chatrace-relay probe");
    let webhook = self::row(&relay, "webhook_configured");
    assert_eq!(fact(&webhook, "URL"), format!("{public}/instagram/webhook"));
}

#[test]
fn the_probe_names_a_refused_connection() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let relay = Relay::start_args("probe-closed", &["--public-url", &closed]);
    let row = row(&relay, "public_url");
    assert_eq!(row["status"], "fail", "{row:#}");
    assert!(fact(&row, "Self-check").contains("connection refused"));
    assert!(row["detail"].as_str().unwrap().contains("firewall"));
}

#[test]
fn the_probe_tells_a_foreign_server_from_the_relay() {
    let foreign = fake_chatrace::start(Answer::Fixed(200, "<html>Welcome to nginx!</html>"));
    let relay = Relay::start_args("probe-foreign", &["--public-url", &foreign.url("")]);
    let row = row(&relay, "public_url");
    assert_eq!(row["status"], "fail", "{row:#}");
    let seen = fact(&row, "Self-check");
    assert!(seen.contains("something else"), "{seen}");
    assert!(seen.contains("Welcome to nginx"), "{seen}");
    assert!(foreign.requests()[0]
        .url
        .starts_with("/instagram/webhook?relay_probe="));
}

#[test]
fn paste_values_then_first_request_and_message_turn_rows_green() {
    let relay = Relay::start("setup-arrival");
    let webhook = row(&relay, "webhook_configured");
    assert_eq!(webhook["status"], "todo");
    assert!(fact(&webhook, "URL").ends_with("/instagram/webhook"));
    assert_eq!(fact(&webhook, "Method"), "POST");
    assert_eq!(fact(&webhook, "Header name"), "X-Webhook-Secret");
    assert_eq!(fact_of_kind(&webhook, "secret"), [SECRET]);
    let body: Value = serde_json::from_str(&fact(&webhook, "Body")).unwrap();
    assert_eq!(body["user_id"], "{{user_id}}");
    assert_eq!(body["text"], "{{last_input}}");
    assert!(webhook["detail"]
        .as_str()
        .unwrap()
        .contains("paste it as it is"));
    let first = row(&relay, "first_message");
    assert_eq!(first["status"], "todo");
    assert_eq!(first["actions"], serde_json::json!(["send_test"]));

    let reply = relay.post_webhook(
        "application/json",
        &fixture("chatrace-external-request.json"),
    );
    assert_eq!(reply.status, 200);
    let webhook = row(&relay, "webhook_configured");
    assert_eq!(webhook["status"], "ok", "{webhook:#}");
    assert!(fact(&webhook, "Last request").contains("127.0.0.1"));
    let first = row(&relay, "first_message");
    assert_eq!(first["status"], "ok");
    let from = fact(&first, "From");
    assert!(from.contains("@anna.p"), "{from}");
    assert!(from.contains("6742218934563412"), "{from}");
    assert_eq!(fact(&first, "Channel"), "instagram");
}

#[test]
fn a_wrong_secret_shows_an_excerpt_but_no_secret() {
    let relay = Relay::start("setup-wrong-secret");
    let wrong = "not-the-secret-5f3a";
    let reply = relay.request(
        "POST",
        "/instagram/webhook",
        &[("X-Webhook-Secret", wrong)],
        br#"{"contact_id":"77","text":"marker-text-1"}"#,
    );
    assert_eq!(reply.status, 401);
    relay.wait_count("SELECT count(*) FROM rejected", 1);
    let reply = relay.get_admin("/api/setup");
    assert!(!reply.text().contains(wrong));
    let webhook = row(&relay, "webhook_configured");
    assert_eq!(webhook["status"], "warn", "{webhook:#}");
    assert!(webhook["detail"]
        .as_str()
        .unwrap()
        .contains("X-Webhook-Secret"));
    assert!(fact(&webhook, "Wrong secret").contains("did not match"));
    assert!(fact_of_kind(&webhook, "excerpt")[0].contains("marker-text-1"));
    let russian = relay.get_admin("/api/setup?lang=ru").json();
    let webhook_ru = russian
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "webhook_configured")
        .unwrap()
        .clone();
    assert!(
        fact(&webhook_ru, "Неверный секрет").contains("секрет не совпал"),
        "{webhook_ru:#}"
    );
}

#[test]
fn unfilled_variables_warn_until_a_good_request_arrives() {
    let relay = Relay::start("setup-unfilled");
    relay.post_webhook("application/json", &fixture("unfilled-placeholders.json"));
    let webhook = row(&relay, "webhook_configured");
    assert_eq!(webhook["status"], "warn", "{webhook:#}");
    // It names the field and the Chatrace variable to put there.
    assert!(webhook["detail"]
        .as_str()
        .unwrap()
        .contains("\"contact_id\" → {{user_id}}"));
    assert!(fact_of_kind(&webhook, "excerpt")[0].contains("{{contact_id}}"));
    relay.post_webhook(
        "application/json",
        &fixture("chatrace-external-request.json"),
    );
    assert_eq!(row(&relay, "webhook_configured")["status"], "ok");
}

#[test]
fn send_test_stores_a_test_message_that_does_not_count() {
    let relay = Relay::start("setup-send-test");
    assert_eq!(action(&relay, "drop_tables").status, 404);
    let unauthorized = relay.request("POST", "/api/setup/send_test", &[], b"");
    assert_eq!(unauthorized.status, 401);
    let reply = action(&relay, "send_test");
    assert_eq!(reply.status, 200);
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("HTTP 200"), "{message}");
    assert!(message.contains("test message"), "{message}");
    let first = row(&relay, "first_message");
    assert_eq!(first["status"], "todo");
    assert_eq!(fact(&first, "Test messages stored"), "1");
    assert_eq!(row(&relay, "webhook_configured")["status"], "todo");
    assert_eq!(relay.stats()["total_messages"], 0);
    let ru = relay.request(
        "POST",
        "/api/setup/send_test?lang=ru",
        &[("Authorization", &format!("Bearer {ADMIN}"))],
        b"",
    );
    assert!(ru.json()["message"].as_str().unwrap().contains("тестовое"));
}

/// The test webhook's message is passed on to the team's app, marked `"test": true`; the
/// row offering the button and the banner after it both say so.
#[test]
fn the_test_message_reaches_the_app_marked_as_a_test_and_the_page_says_so() {
    let app = crate::fake::Fake::always(200);
    let relay = Relay::start_args(
        "setup-send-test-forward",
        &["--forward-url", &app.url("/hook")],
    );
    let said = "\"test\": true";
    assert!(
        row(&relay, "first_message")["detail"]
            .as_str()
            .unwrap()
            .contains(said),
        "the row says so before the button is pressed"
    );
    let message = action(&relay, "send_test").json()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains(said), "{message}");
    let pushed = app.wait_for(1, Duration::from_secs(10))[0].json();
    assert_eq!(pushed["test"], true, "{pushed:#}");
}

/// When the public address fails, the banner gives each try its own line and sentence,
/// then says what that means: the relay works, the way to it does not.
#[test]
fn a_failed_public_try_and_the_local_one_are_two_results() {
    let relay = Relay::start_args(
        "setup-send-test-two",
        &["--public-url", "http://127.0.0.1:9"],
    );
    let message = action(&relay, "send_test").json()["message"]
        .as_str()
        .unwrap()
        .to_string();
    let lines: Vec<&str> = message.lines().collect();
    assert!(lines.len() >= 3, "{message}");
    assert!(
        lines[0].contains("http://127.0.0.1:9/instagram/webhook"),
        "{message}"
    );
    assert!(!lines[0].contains("HTTP 200"), "{message}");
    assert!(
        lines[1].contains(&relay.addr) && lines[1].contains("HTTP 200"),
        "{message}"
    );
    assert!(lines[2].contains("public address"), "{message}");
    assert!(lines.iter().all(|l| l.ends_with('.')), "{message}");
}

/// A wrong secret turns the webhook row amber until a good request follows it, or until
/// the user marks it as seen with the row's button; a later problem shows again.
#[test]
fn a_webhook_problem_clears_after_a_good_request_or_when_marked_as_seen() {
    let relay = Relay::start("setup-dismiss-problems");
    let wrong = |n: usize| {
        let reply = relay.request(
            "POST",
            "/instagram/webhook",
            &[("X-Webhook-Secret", "a-wrong-secret-0123456789abcdefgh")],
            br#"{"contact_id":"77","text":"stray"}"#,
        );
        assert_eq!(reply.status, 401);
        relay.wait_count("SELECT count(*) FROM rejected", n as i64);
        std::thread::sleep(Duration::from_millis(5));
    };
    let good = || {
        let reply = relay.post_webhook("application/json", br#"{"contact_id":"77","text":"hi"}"#);
        assert_eq!(reply.status, 200);
        std::thread::sleep(Duration::from_millis(5));
    };
    wrong(1);
    let webhook = row(&relay, "webhook_configured");
    assert_eq!(webhook["status"], "warn", "{webhook:#}");
    good();
    assert_eq!(row(&relay, "webhook_configured")["status"], "ok");

    wrong(2);
    let webhook = row(&relay, "webhook_configured");
    assert_eq!(webhook["status"], "warn", "{webhook:#}");
    assert_eq!(webhook["actions"], serde_json::json!(["dismiss_problems"]));
    let reply = action(&relay, "dismiss_problems");
    assert_eq!(reply.status, 200);
    assert!(reply.json()["message"].as_str().unwrap().contains("seen"));
    let webhook = row(&relay, "webhook_configured");
    assert_eq!(webhook["status"], "ok", "{webhook:#}");
    assert!(webhook["actions"].as_array().is_none_or(|a| a.is_empty()));
    let again = action(&relay, "dismiss_problems").json()["message"].clone();
    assert!(again.as_str().unwrap().contains("nothing"), "{again}");
    // Still listed among the rejected requests, and a new problem shows again.
    assert_eq!(relay.count("SELECT count(*) FROM rejected"), 2);
    wrong(3);
    assert_eq!(row(&relay, "webhook_configured")["status"], "warn");
    let ru = relay.request(
        "POST",
        "/api/setup/dismiss_problems?lang=ru",
        &[("Authorization", &format!("Bearer {ADMIN}"))],
        b"",
    );
    assert!(ru.json()["message"]
        .as_str()
        .unwrap()
        .contains("просмотренное"));
}

#[test]
fn forwarding_row_appears_only_with_a_forward_url() {
    let relay = Relay::start_args(
        "setup-forwarding",
        &["--forward-url", "http://127.0.0.1:9/hook"],
    );
    let rows = checklist(&relay);
    // The optional inbox row comes last, right after it.
    assert_eq!(rows.last().unwrap()["key"], "inbox");
    let last = &rows[rows.len() - 2];
    assert_eq!(last["key"], "forwarding");
    assert_eq!(last["status"], "todo", "{last:#}");
    assert!(fact(last, "http://127.0.0.1:9/hook").contains("delivered 0"));
}

/// The row follows real deliveries: green once the app took a message (and then no error
/// shown), red with the app's error once a delivery ran out of retries.
#[test]
fn forwarding_row_turns_ok_on_delivery_and_fail_with_the_last_error() {
    let good = crate::fake::Fake::always(200);
    let bad = crate::fake::Fake::always(500);
    let forward = |url: &str| {
        Relay::start_args(
            "setup-forwarding-live",
            &["--forward-url", url, "--retry-schedule", "50ms"],
        )
    };
    let body = br#"{"contact_id":"f1","text":"forward me","message_id":"fw1"}"#;

    let relay = forward(&good.url("/hook"));
    assert_eq!(relay.post_webhook("application/json", body).status, 200);
    good.wait_for(1, Duration::from_secs(10));
    let row = wait_for_status(&relay, "ok");
    // A good delivery is no error: the row used to say "Last error: HTTP 200".
    let labels: Vec<&str> = row["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["label"].as_str().unwrap())
        .collect();
    assert!(!labels.iter().any(|l| l.contains("error")), "{row:#}");
    assert!(!row.to_string().contains("HTTP 200"), "{row:#}");

    let relay = forward(&bad.url("/hook"));
    assert_eq!(relay.post_webhook("application/json", body).status, 200);
    bad.wait_for(2, Duration::from_secs(10));
    let row = wait_for_status(&relay, "fail");
    let error = fact(&row, "Last error");
    assert!(error.contains("500"), "{row:#}");
}

fn wait_for_status(relay: &Relay, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let row = row(relay, "forwarding");
        if row["status"] == status {
            return row;
        }
        assert!(std::time::Instant::now() < deadline, "{row:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
