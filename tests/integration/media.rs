//! Kept media: attachments fetched once from a fake CDN on loopback (with
//! `CHATRACE_RELAY_MEDIA_ALLOW_PRIVATE=1`), stored by content hash, served by the relay with
//! their type, length and ranges, evicted at the cap, deleted with their message, carried
//! by a backup; and, without the override, links to this machine never fetched at all.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake::{Action, Fake};
use crate::util::{Relay, ADMIN, KNOWN_SECRETS};

const JPEG: &str = "\u{00ff}JPEG pretend picture bytes 0123456789";

fn media_relay(name: &str, args: &[&str], keep: &str) -> Relay {
    let mut env: Vec<(&str, &str)> = KNOWN_SECRETS.to_vec();
    env.push(("CHATRACE_RELAY_KEEP_MEDIA", keep));
    env.push(("CHATRACE_RELAY_MEDIA_ALLOW_PRIVATE", "1"));
    Relay::start_with(name, args, &env)
}

/// A CDN serving `files` (path, content type, body); anything else is a 404.
fn cdn(files: Vec<(&'static str, &'static str, String)>) -> Fake {
    Fake::start(move |request| {
        let path = request.url.split('?').next().unwrap_or("");
        match files.iter().find(|(p, _, _)| *p == path) {
            Some((_, content_type, body)) => Action::Respond {
                status: 200,
                headers: vec![("Content-Type".into(), content_type.to_string())],
                body: body.clone(),
            },
            None => Action::status(404),
        }
    })
}

/// Sends a photo message from `contact` whose link is `url`.
fn send_photo(relay: &Relay, contact: &str, url: &str) {
    let body = serde_json::json!({ "user_id": contact, "text": url, "type": "image" });
    let reply = relay.post_webhook("application/json", body.to_string().as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["stored"], 1, "{}", reply.text());
}

fn messages(relay: &Relay) -> Vec<Value> {
    let reply = relay.get_admin("/api/messages?after=0&limit=100");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["messages"].as_array().unwrap().clone()
}

fn get_media(relay: &Relay, media_url: &str, headers: &[(&str, &str)]) -> crate::util::Reply {
    let bearer = format!("Bearer {ADMIN}");
    let mut all = vec![("Authorization", bearer.as_str())];
    all.extend_from_slice(headers);
    relay.request("GET", media_url, &all, b"")
}

#[test]
fn a_photo_is_fetched_once_kept_once_and_served_with_its_type_and_length() {
    let fake = cdn(vec![
        ("/a.jpg", "image/jpeg", JPEG.to_string()),
        ("/b.jpg", "image/jpeg; charset=binary", JPEG.to_string()),
    ]);
    let mut relay = media_relay("media-kept", &[], "1MB");
    send_photo(&relay, "1001", &fake.url("/a.jpg?sig=abc&oe=1"));
    send_photo(&relay, "1002", &fake.url("/b.jpg"));
    relay.wait_count("SELECT count(*) FROM media_links WHERE state = 'kept'", 2);

    // The same bytes behind two links: one file.
    assert_eq!(relay.count("SELECT count(*) FROM media"), 1);
    let all = messages(&relay);
    let a = &all[0]["attachments"][0];
    let b = &all[1]["attachments"][0];
    assert_eq!(a["kept"], true, "{a}");
    assert_eq!(a["type"], "image");
    assert!(a["url"].as_str().unwrap().contains("/a.jpg?sig=abc"));
    let media_url = a["media_url"].as_str().unwrap().to_string();
    assert!(
        media_url.starts_with("/media/") && media_url.len() == 7 + 64,
        "{media_url}"
    );
    assert_eq!(b["media_url"], a["media_url"]);

    let reply = get_media(&relay, &media_url, &[]);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("Content-Type"), Some("image/jpeg"));
    assert_eq!(
        reply.header("Content-Length"),
        Some(JPEG.len().to_string().as_str())
    );
    assert_eq!(reply.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(reply.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(reply.body, JPEG.as_bytes());

    let part = get_media(&relay, &media_url, &[("Range", "bytes=2-5")]);
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("Content-Range").unwrap(),
        format!("bytes 2-5/{}", JPEG.len())
    );
    assert_eq!(part.body, &JPEG.as_bytes()[2..6]);
    let outside = get_media(&relay, &media_url, &[("Range", "bytes=9999-")]);
    assert_eq!(outside.status, 416);
    assert_eq!(
        outside.header("Content-Range").unwrap(),
        format!("bytes */{}", JPEG.len())
    );

    // Nobody else: no token, no session.
    assert_eq!(relay.request("GET", &media_url, &[], b"").status, 401);
    assert_eq!(get_media(&relay, "/media/../relay.db", &[]).status, 404);
    assert_eq!(
        get_media(&relay, &format!("/media/{}", "0".repeat(64)), &[]).status,
        404
    );

    // Once: a restart fetches nothing again.
    assert_eq!(fake.requests().len(), 2);
    relay.restart();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(get_media(&relay, &media_url, &[]).status, 200);

    let metrics = relay.get_admin("/metrics").text();
    assert!(
        metrics.contains(&format!("chatrace_relay_media_kept_bytes {}", JPEG.len())),
        "{metrics}"
    );
    assert!(
        metrics.contains("chatrace_relay_media_kept_files 1"),
        "{metrics}"
    );
    let server = crate::setup::row(&relay, "server");
    assert_eq!(
        crate::setup::fact(&server, "Media kept"),
        format!("files: 1, {} B of 976.6 KiB", JPEG.len())
    );
}

/// The page shows a kept photo from the relay and the signed-in browser may load it; a
/// photo not kept is a link to the original with the reason.
#[test]
fn the_page_shows_kept_photos_from_the_relay_and_says_why_others_are_not() {
    let fake = cdn(vec![("/p.jpg", "image/jpeg", JPEG.to_string())]);
    let relay = media_relay("media-page", &[], "1MB");
    send_photo(&relay, "9001", &fake.url("/p.jpg"));
    send_photo(&relay, "9002", &fake.url("/gone.jpg"));
    relay.wait_count(
        "SELECT count(*) FROM media_links WHERE state <> 'pending'",
        2,
    );
    let media_url = messages(&relay)[0]["attachments"][0]["media_url"]
        .as_str()
        .unwrap()
        .to_string();

    let (mut browser, _) = crate::pages::Browser::signed_in(&relay);
    let html = browser.get("/", &[]).text();
    let escaped = media_url.replace('/', "&#x2f;");
    assert!(html.contains(&format!(r#"<img src="{escaped}""#)), "{html}");
    assert!(!html.contains(r#"<img src="http"#), "{html}");
    assert!(
        html.contains("the link expired before it could be kept"),
        "{html}"
    );
    let photo = browser.get(&media_url, &[]);
    assert_eq!(photo.status, 200);
    assert_eq!(photo.body, JPEG.as_bytes());
    let ru = browser.get("/?lang=ru", &[]).text();
    assert!(ru.contains("ссылка истекла"), "{ru}");
}

#[test]
fn a_missing_or_expired_link_is_recorded_and_not_kept() {
    let fake = Fake::start(|request| {
        if request.url.starts_with("/expired") {
            Action::Respond {
                status: 403,
                headers: Vec::new(),
                body: "URL signature expired".into(),
            }
        } else {
            Action::status(404)
        }
    });
    let relay = media_relay("media-expired", &[], "1MB");
    send_photo(&relay, "2001", &fake.url("/gone.jpg"));
    send_photo(&relay, "2002", &fake.url("/expired.jpg?oe=1"));
    relay.wait_count(
        "SELECT count(*) FROM media_links WHERE state = 'expired'",
        2,
    );
    assert_eq!(relay.count("SELECT count(*) FROM media"), 0);
    for m in messages(&relay) {
        assert_eq!(m["attachments"][0]["kept"], false, "{m}");
        assert_eq!(m["attachments"][0]["media_url"], Value::Null, "{m}");
    }
    let metrics = relay.get_admin("/metrics").text();
    assert!(
        metrics.contains("chatrace_relay_media_fetches_total{outcome=\"expired\"} 2"),
        "{metrics}"
    );
    // The server row says so.
    let server = crate::setup::row(&relay, "server");
    assert_eq!(
        crate::setup::fact(&server, "Media not kept"),
        "expired before they could be kept: 2, refused: 0, waiting: 0"
    );
    assert!(crate::setup::fact(&server, "Media kept").starts_with("files: 0, "));
    // Recorded once: not fetched again.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn a_file_over_the_cap_or_of_the_wrong_type_is_refused_and_nothing_remains() {
    let fake = cdn(vec![
        ("/big.jpg", "image/jpeg", "x".repeat(5000)),
        ("/page.jpg", "text/html", "<html>sign in</html>".into()),
        ("/small.jpg", "image/jpeg", "y".repeat(900)),
    ]);
    let relay = media_relay("media-cap", &["--max-media", "1000"], "1MB");
    send_photo(&relay, "3001", &fake.url("/big.jpg"));
    send_photo(&relay, "3002", &fake.url("/page.jpg"));
    send_photo(&relay, "3003", &fake.url("/small.jpg"));
    relay.wait_count(
        "SELECT count(*) FROM media_links WHERE state = 'refused'",
        2,
    );
    relay.wait_count("SELECT count(*) FROM media_links WHERE state = 'kept'", 1);
    assert_eq!(relay.count("SELECT count(*) FROM media"), 1);
    assert_eq!(relay.count("SELECT max(size) FROM media"), 900);
    let error: String = relay
        .db()
        .query_row(
            "SELECT error FROM media_links WHERE message_id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(error.contains("cap"), "{error}");
}

#[test]
fn the_oldest_files_are_evicted_at_the_cap() {
    let fake = cdn(vec![
        ("/1.jpg", "image/jpeg", "1".repeat(1000)),
        ("/2.jpg", "image/jpeg", "2".repeat(1000)),
        ("/3.jpg", "image/jpeg", "3".repeat(1000)),
    ]);
    let relay = media_relay("media-evict", &[], "2500");
    for (i, path) in ["/1.jpg", "/2.jpg", "/3.jpg"].iter().enumerate() {
        send_photo(&relay, &format!("400{i}"), &fake.url(path));
        relay.wait_count(
            "SELECT count(*) FROM media_links WHERE state IN ('kept', 'evicted')",
            i as i64 + 1,
        );
    }
    assert_eq!(relay.count("SELECT count(*) FROM media"), 2);
    assert_eq!(relay.count("SELECT sum(size) FROM media"), 2000);
    let all = messages(&relay);
    let kept: Vec<bool> = all
        .iter()
        .map(|m| m["attachments"][0]["kept"].as_bool().unwrap())
        .collect();
    assert_eq!(kept, [false, true, true]);
    let gone = get_media(&relay, "/media/0", &[]);
    assert_eq!(gone.status, 404);
}

#[test]
fn retention_deletes_a_file_with_the_last_message_that_uses_it() {
    let fake = cdn(vec![("/p.jpg", "image/jpeg", JPEG.to_string())]);
    let relay = media_relay("media-retention", &["--keep-messages", "3s"], "1MB");
    send_photo(&relay, "5001", &fake.url("/p.jpg"));
    relay.wait_count("SELECT count(*) FROM media_links WHERE state = 'kept'", 1);
    std::thread::sleep(Duration::from_millis(1500));
    send_photo(&relay, "5002", &fake.url("/p.jpg?again"));
    relay.wait_count("SELECT count(*) FROM media_links WHERE state = 'kept'", 2);

    // The first message goes; its file stays for the second.
    let deadline = Instant::now() + Duration::from_secs(10);
    while relay.count("SELECT count(*) FROM messages") > 1 {
        assert!(Instant::now() < deadline, "retention deleted nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(relay.count("SELECT count(*) FROM media"), 1);
    assert_eq!(relay.count("SELECT count(*) FROM media_links"), 1);
    // Then the second, and the file with it.
    relay.wait_count("SELECT count(*) FROM messages", 0);
    assert_eq!(relay.count("SELECT count(*) FROM media_links"), 0);
    assert_eq!(relay.count("SELECT count(*) FROM media"), 0);
}

#[test]
fn a_backup_carries_the_kept_files_to_a_restored_relay() {
    let fake = cdn(vec![("/p.jpg", "image/jpeg", JPEG.to_string())]);
    let relay = media_relay("media-backup", &[], "1MB");
    send_photo(&relay, "6001", &fake.url("/p.jpg"));
    relay.wait_count("SELECT count(*) FROM media_links WHERE state = 'kept'", 1);
    let media_url = messages(&relay)[0]["attachments"][0]["media_url"]
        .as_str()
        .unwrap()
        .to_string();

    let restored = crate::util::temp_dir("media-restored");
    let out = std::process::Command::new(crate::util::binary())
        .args(["backup", "--db"])
        .arg(&relay.db)
        .arg(restored.join("relay.db"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(relay);
    drop(fake);

    // The CDN is gone, the relay runs on the backup, and the photo is still there.
    let relay = Relay::start_in(restored, &[], &KNOWN_SECRETS);
    let m = &messages(&relay)[0]["attachments"][0];
    assert_eq!(m["kept"], true, "{m}");
    let reply = get_media(&relay, &media_url, &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, JPEG.as_bytes());
}

/// Without the override, links naming this machine in any spelling are refused before a
/// connection is opened: a listener on the port they name sees not one connection.
#[test]
fn links_to_this_machine_are_never_fetched_without_the_override() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    std::thread::spawn(move || loop {
        if listener.accept().is_ok() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(5));
    });

    let mut env: Vec<(&str, &str)> = KNOWN_SECRETS.to_vec();
    env.push(("CHATRACE_RELAY_KEEP_MEDIA", "1MB"));
    let relay = Relay::start_with("media-ssrf", &[], &env);
    let hosts = [
        "127.0.0.1",
        "[::1]",
        "localhost",
        "0.0.0.0",
        "[::ffff:127.0.0.1]",
        "2130706433",
        "127.1",
    ];
    for (i, host) in hosts.iter().enumerate() {
        send_photo(
            &relay,
            &format!("700{i}"),
            &format!("https://{host}:{port}/p.jpg"),
        );
    }
    // Plain http is refused whatever the address.
    send_photo(&relay, "7100", &format!("http://127.0.0.1:{port}/p.jpg"));
    relay.wait_count(
        "SELECT count(*) FROM media_links WHERE state = 'refused'",
        hosts.len() as i64 + 1,
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a connection was opened"
    );
    assert_eq!(relay.count("SELECT count(*) FROM media"), 0);
    let log = relay.log();
    assert!(log.contains("is not a public address"), "{log}");
    assert!(!log.contains("/p.jpg"), "links are not logged: {log}");
}

/// Redirects are followed by the relay itself, each hop checked, at most three.
#[test]
fn redirects_are_followed_hop_by_hop_and_at_most_three() {
    let fake = Fake::start(|request| {
        let path = request.url.clone();
        let hop = |to: &str| Action::status(302).with_header("Location", to);
        match path.as_str() {
            "/r1" => hop("/r2"),
            "/r2" => hop("/photo.jpg"),
            "/photo.jpg" => Action::Respond {
                status: 200,
                headers: vec![("Content-Type".into(), "image/jpeg".into())],
                body: JPEG.into(),
            },
            "/loop" => hop("/loop"),
            _ => Action::status(404),
        }
    });
    let relay = media_relay("media-redirects", &[], "1MB");
    send_photo(&relay, "8001", &fake.url("/r1"));
    relay.wait_count("SELECT count(*) FROM media_links WHERE state = 'kept'", 1);
    send_photo(&relay, "8002", &fake.url("/loop"));
    relay.wait_count(
        "SELECT count(*) FROM media_links WHERE state = 'refused'",
        1,
    );
    // /r1, /r2, /photo.jpg; then /loop four times (the first and three redirects).
    assert_eq!(fake.requests().len(), 3 + 4);
}

/// A forwarded message carries a signed link the app can fetch without the admin token:
/// "not kept yet" (503) until the file is kept, then the file; a changed link is refused.
#[test]
fn a_forwarded_message_links_its_photo_without_the_admin_token() {
    let fake = cdn(vec![("/p.jpg", "image/jpeg", JPEG.to_string())]);
    let app = Fake::always(200);
    let relay = media_relay(
        "media-forward",
        &[
            "--forward-url",
            &app.url("/hook"),
            "--public-url",
            "https://relay.example.com",
        ],
        "1MB",
    );
    send_photo(&relay, "9101", &fake.url("/p.jpg"));
    let delivered = app.wait_for(1, Duration::from_secs(10));
    let attachment = delivered[0].json()["attachments"][0].clone();
    let link = attachment["media_url"].as_str().unwrap().to_string();
    let path = link
        .strip_prefix("https://relay.example.com")
        .unwrap_or_else(|| panic!("{link}"))
        .to_string();
    assert!(path.starts_with("/media/message/1/0?expires="), "{path}");

    // No token, no session: the signature alone, once the file is kept.
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let reply = relay.request("GET", &path, &[], b"");
        if reply.status != 503 {
            break reply;
        }
        assert_eq!(reply.header("Retry-After"), Some("10"));
        assert!(Instant::now() < deadline, "never kept");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("Content-Type"), Some("image/jpeg"));
    assert_eq!(reply.body, JPEG.as_bytes());

    // The signature covers the path and the expiry.
    let (_, query) = path.split_once('?').unwrap();
    for forged in [
        format!("/media/message/2/0?{query}"),
        path.replace("expires=", "expires=9"),
        // The last digit of the signature changed.
        format!(
            "{}{}",
            &path[..path.len() - 1],
            if path.ends_with('0') { '1' } else { '0' }
        ),
        path.split('&').next().unwrap().to_string(),
    ] {
        assert_eq!(
            relay.request("GET", &forged, &[], b"").status,
            401,
            "{forged}"
        );
    }
}
