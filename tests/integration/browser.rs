//! The setup page in a real browser: `tests/browser/dashboard.mjs` (Playwright driving
//! Debian's chromium) signs in, checks what is shown, and saves screenshots under
//! `target/screenshots/`. Skipped with a notice when node, the npm packages or chromium
//! are missing, except in CI (env `CI` set), where that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const TIMEOUT: Duration = Duration::from_secs(180);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// What is missing to run the browser test, if anything.
fn missing() -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("node is not installed".into());
    }
    if !browser_dir().join("node_modules/playwright-core").is_dir() {
        return Some("tests/browser/node_modules is missing (run .ci/browser-setup.sh)".into());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} is missing (run .ci/browser-setup.sh)"));
    }
    None
}

#[test]
fn dashboard_in_a_real_browser() {
    if let Some(what) = missing() {
        assert!(
            std::env::var_os("CI").is_none(),
            "browser test cannot run in CI: {what}"
        );
        eprintln!("SKIPPED dashboard_in_a_real_browser: {what}");
        return;
    }
    // A connected inbox with a conversation a person had: the row and the caught-up
    // messages show as such.
    let inbox = crate::fake_inbox::FakeInbox::start();
    let t = crate::fake_inbox::now_ms() - 10 * 60_000;
    inbox
        .conversation("5718243390127745", "Мария Иванова")
        .live_chat(true)
        .message_in("Можно оплатить картой при получении?", t)
        .message_out_agent(
            "Доставка бесплатная от 3000 ₽.",
            t + 60_000,
            1987654321012345,
        );
    // A CDN on this machine holds the photo; the other attachment's link is dead.
    let photo = std::fs::read(browser_dir().join("photo.png")).expect("photo.png");
    let cdn = crate::fake::Fake::start(move |request| {
        if request.url.starts_with("/photo.png") {
            crate::fake::Action::Bytes {
                content_type: "image/png".into(),
                body: photo.clone(),
            }
        } else {
            crate::fake::Action::status(404)
        }
    });
    let relay = crate::fake_inbox::relay_with_inbox(
        "browser",
        &inbox,
        &[
            ("CHATRACE_RELAY_CATCH_UP_EVERY", "1s"),
            ("CHATRACE_RELAY_KEEP_MEDIA", "1MB"),
            ("CHATRACE_RELAY_MEDIA_ALLOW_PRIVATE", "1"),
        ],
    );
    relay.wait_count("SELECT count(*) FROM messages WHERE source = 'inbox'", 2);
    // The first run ends a few paced calls after its messages are stored.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !relay
        .get_admin("/api/setup")
        .text()
        .contains("Catching up from Chatrace's inbox")
    {
        assert!(Instant::now() < deadline, "the first catch-up never ended");
        std::thread::sleep(Duration::from_millis(200));
    }
    let post = |body: &[u8]| {
        let reply = relay.post_webhook("application/json", body);
        assert_eq!(reply.status, 200, "{}", reply.text());
    };
    // Every link in the fixtures points at the CDN above: no test fetches from elsewhere.
    let on_cdn = |name: &str, from: &str, to: &str| {
        String::from_utf8(fixture(name))
            .unwrap()
            .replace(from, &cdn.url(to))
    };
    post(&fixture("chatrace-external-request.json"));
    post(
        on_cdn(
            "meta-echo-and-attachment.json",
            "https://cdn.example.com/ig/asset-1.jpg",
            "/ig/asset-1.jpg",
        )
        .as_bytes(),
    );
    post(&fixture("unfilled-placeholders.json"));
    post(
        on_cdn(
            "chatrace-media.json",
            "https://lookaside.fbsbx.com/ig_messaging_cdn/",
            "/photo.png",
        )
        .as_bytes(),
    );
    relay.wait_count(
        "SELECT count(*) FROM media_links WHERE state IN ('kept', 'expired')",
        2,
    );
    post(
        serde_json::json!({
            "contact_id": "7001",
            "first_name": "<script>window.__xss=1</script>",
            "username": "\"><img src=x onerror=\"window.__xss=1\">",
            "channel": "instagram",
            "text": "<img src=x onerror=\"window.__xss=1\"> 🎉 <a href=\"javascript:alert(1)\">click</a>",
            "message_id": "xss-1",
            "attachment_url": "javascript:alert(1)",
        })
        .to_string()
        .as_bytes(),
    );
    post(
        serde_json::json!({
            "contact_id": "7002",
            "name": "Мария Иванова",
            "ig_username": "maria.iv",
            "channel": "instagram",
            "text": "Добрый день! Есть ли размер M? 👗✨",
            "message_id": "ru-1",
        })
        .to_string()
        .as_bytes(),
    );
    let test = relay.request(
        "POST",
        "/instagram/webhook",
        &[
            ("Content-Type", "application/json"),
            ("X-Webhook-Secret", SECRET),
            ("X-Relay-Test", "1"),
        ],
        br#"{"contact_id":"test-contact","name":"Test Contact","text":"Test message","message_id":"t-1"}"#,
    );
    assert_eq!(test.status, 200);
    relay.request(
        "POST",
        "/instagram/webhook",
        &[
            ("Content-Type", "application/json"),
            ("X-Webhook-Secret", "wrong-secret"),
        ],
        br#"{"contact_id":"1","text":"<script>alert(1)</script>"}"#,
    );
    relay.wait_count("SELECT count(*) FROM rejected", 1);

    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(Path::new("target"))
        .join("screenshots");
    // The script's output goes to a file, shown when it fails: libtest does not capture a
    // child's output, and a pipe could fill while we wait.
    let output_path = relay.dir.join("browser.log");
    let output = std::fs::File::create(&output_path).expect("browser.log");
    let mut child = Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(browser_dir())
        .env("RELAY_URL", relay.url(""))
        .env("RELAY_ADMIN_TOKEN", ADMIN)
        .env("SCREENSHOT_DIR", &screenshots)
        .stdout(output.try_clone().expect("browser.log"))
        .stderr(output)
        .spawn()
        .expect("start node");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let said = std::fs::read_to_string(&output_path).unwrap_or_default();
            panic!("the browser test took longer than {TIMEOUT:?}:\n{said}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let said = std::fs::read_to_string(&output_path).unwrap_or_default();
    assert!(
        status.success(),
        "dashboard.mjs failed:\n{said}\nrelay log:\n{}",
        relay.log()
    );
    eprintln!("{}", said.trim_end());
    for name in [
        "dashboard-en.png",
        "dashboard-ru.png",
        "dashboard-phone.png",
        "contacts-en.png",
        "thread-en.png",
        "search-en.png",
        "contacts-phone.png",
        "thread-phone.png",
        "search-phone.png",
    ] {
        let png = std::fs::read(screenshots.join(name)).expect(name);
        assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
    }
}
