//! The HTML pages over plain HTTP: sign-in, cookies, CSRF and origin checks, escaping,
//! security headers, languages, pagination.

use crate::util::*;

/// A browser's view of the relay: the cookies it holds.
pub(crate) struct Browser<'a> {
    relay: &'a Relay,
    cookies: Vec<(String, String)>,
}

impl<'a> Browser<'a> {
    fn new(relay: &'a Relay) -> Browser<'a> {
        Browser {
            relay,
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps the cookies a reply sets, dropping those it expires.
    fn remember(&mut self, reply: &Reply) {
        for (name, value) in &reply.headers {
            if !name.eq_ignore_ascii_case("Set-Cookie") {
                continue;
            }
            let pair = value.split(';').next().unwrap_or("");
            let (n, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != n);
            if !value.contains("Max-Age=0") {
                self.cookies.push((n.to_string(), v.to_string()));
            }
        }
    }

    pub(crate) fn get(&mut self, path: &str, extra: &[(&str, &str)]) -> Reply {
        let cookie = self.cookie_header();
        let mut headers = vec![("Cookie", cookie.as_str())];
        headers.extend_from_slice(extra);
        let reply = self.relay.request("GET", path, &headers, b"");
        self.remember(&reply);
        reply
    }

    /// A form post the way a browser on the relay's own page sends it.
    pub(crate) fn post(&mut self, path: &str, form: &str) -> Reply {
        let origin = self.relay.url("");
        self.post_from(path, form, &origin)
    }

    pub(crate) fn post_from(&mut self, path: &str, form: &str, origin: &str) -> Reply {
        let cookie = self.cookie_header();
        let reply = self.relay.request(
            "POST",
            path,
            &[
                ("Cookie", &cookie),
                ("Origin", origin),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            form.as_bytes(),
        );
        self.remember(&reply);
        reply
    }

    fn sign_in(&mut self, token: &str) -> Reply {
        let form = self.get("/login", &[]);
        assert_eq!(form.status, 200, "{}", form.text());
        let csrf = csrf_of(&form.text());
        self.post("/login", &format!("csrf={csrf}&token={token}"))
    }

    /// Signs in and returns the page's CSRF token.
    pub(crate) fn signed_in(relay: &'a Relay) -> (Browser<'a>, String) {
        let mut b = Browser::new(relay);
        let reply = b.sign_in(ADMIN);
        assert_eq!(reply.status, 303, "{}", reply.text());
        let page = b.get("/", &[]);
        assert_eq!(page.status, 200);
        let csrf = csrf_of(&page.text());
        (b, csrf)
    }
}

pub(crate) fn csrf_of(html: &str) -> String {
    let start = html
        .find(r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("no csrf field in {html}"))
        + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().unwrap().to_string()
}

fn set_cookies(reply: &Reply) -> Vec<&str> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Set-Cookie"))
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn signing_in_needs_the_admin_token_and_sets_a_strict_cookie() {
    let relay = Relay::start("pages-login");
    let start = relay.request("GET", "/", &[], b"");
    assert_eq!(start.status, 303);
    assert_eq!(start.header("Location"), Some("/login"));
    assert_eq!(relay.request("GET", "/messages", &[], b"").status, 303);

    let mut b = Browser::new(&relay);
    let wrong = b.sign_in("not-the-token");
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("That token is not right"));
    assert!(wrong.text().contains(r#"action="/login""#));
    assert!(!b.cookies.iter().any(|(n, _)| n == "relay_session"));

    let right = b.sign_in(ADMIN);
    assert_eq!(right.status, 303);
    assert_eq!(right.header("Location"), Some("/"));
    let session = set_cookies(&right)
        .into_iter()
        .find(|c| c.starts_with("relay_session="))
        .expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(flag), "{session}");
    }
    assert!(!session.contains("Secure"), "plain http relay: {session}");
    assert_eq!(b.get("/", &[]).status, 200);
    assert_eq!(b.get("/login", &[]).status, 303, "already signed in");
    assert!(!relay.log().contains(ADMIN), "the token is never logged");
}

#[test]
fn cookies_are_secure_behind_https() {
    let relay = Relay::start_args("pages-secure", &["--public-url", "https://relay.example"]);
    let mut b = Browser::new(&relay);
    let reply = b.sign_in(ADMIN);
    assert_eq!(reply.status, 303);
    for cookie in set_cookies(&reply) {
        assert!(cookie.contains("; Secure"), "{cookie}");
    }
    // A form from the public origin is accepted too: the proxy forwards to 127.0.0.1.
    let page = b.get("/", &[]);
    let csrf = csrf_of(&page.text());
    let out = b.post_from("/logout", &format!("csrf={csrf}"), "https://relay.example");
    assert_eq!(out.status, 303);
}

#[test]
fn the_login_form_is_csrf_protected_and_throttled() {
    let relay = Relay::start("pages-login-csrf");
    // No login cookie: the form did not come from this relay.
    let forged = relay.request(
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("csrf=x&token={ADMIN}").as_bytes(),
    );
    assert_eq!(forged.status, 403);
    assert!(set_cookies(&forged).is_empty());

    let mut b = Browser::new(&relay);
    let form = b.get("/login", &[]);
    let csrf = csrf_of(&form.text());
    let foreign = b.post_from(
        "/login",
        &format!("csrf={csrf}&token={ADMIN}"),
        "https://evil.example",
    );
    assert_eq!(foreign.status, 403);

    for _ in 0..10 {
        assert_eq!(
            b.post("/login", &format!("csrf={csrf}&token=guess")).status,
            401
        );
    }
    let locked = b.post("/login", &format!("csrf={csrf}&token={ADMIN}"));
    assert_eq!(locked.status, 429, "{}", locked.text());
    assert!(locked.text().contains("Too many failed attempts"));
}

#[test]
fn dashboard_shows_checklist_stats_and_messages() {
    let relay = Relay::start("pages-dashboard");
    relay.post_webhook(
        "application/json",
        &fixture("chatrace-external-request.json"),
    );
    relay.post_webhook(
        "application/json",
        &fixture("meta-echo-and-attachment.json"),
    );
    relay.post_webhook("application/json", &fixture("unfilled-placeholders.json"));
    relay.request(
        "POST",
        "/instagram/webhook",
        &[("X-Webhook-Secret", "wrong")],
        b"{}",
    );
    relay.wait_count("SELECT count(*) FROM rejected", 1);

    let (mut b, _) = Browser::signed_in(&relay);
    let page = b.get("/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text();
    for needle in [
        r#"<html lang="en">"#,
        r#"data-key="server""#,
        r#"data-key="public_url""#,
        r#"data-stat="total""#,
        r#"data-stat="rejected""#,
        "Здравствуйте, сколько стоит доставка?",
        "Anna Petrova",
        "@anna.p",
        // minijinja escapes '/' too; the browser reads it back as the same URL.
        r#"<a href="https:&#x2f;&#x2f;cdn.example.com&#x2f;ig&#x2f;asset-1.jpg" rel="noopener noreferrer""#,
        r#"data-flag="unfilled_placeholders""#,
        r#"data-reason="bad_secret""#,
        "<svg",
        "Messages per day, last 30 days (UTC)",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
    let total = html
        .split(r#"data-stat="total""#)
        .nth(1)
        .and_then(|s| s.split(r#"<div class="stat-value">"#).nth(1))
        .and_then(|s| s.split('<').next())
        .unwrap();
    assert_eq!(total, "3");
}

#[test]
fn message_text_is_escaped_everywhere() {
    let relay = Relay::start("pages-xss");
    let body = serde_json::json!({
        "contact_id": "x1",
        "first_name": "<script>window.__xss=1</script>",
        "username": "\"><svg onload=alert(1)>",
        "text": "<img src=x onerror=\"window.__xss=1\"> 🎉",
        "message_id": "xss-1",
        "attachment_url": "javascript:alert(1)",
    });
    relay.post_webhook("application/json", body.to_string().as_bytes());
    relay.post_webhook(
        "application/json",
        br#"{"contact_id":"{{contact_id}}","text":"<script>alert(2)</script>"}"#,
    );
    relay.request(
        "POST",
        "/instagram/webhook",
        &[("X-Webhook-Secret", "wrong")],
        b"<script>alert(3)</script>",
    );
    relay.wait_count("SELECT count(*) FROM rejected", 1);

    let (mut b, _) = Browser::signed_in(&relay);
    for path in ["/", "/messages"] {
        let html = without_own_script(&b.get(path, &[]).text());
        assert!(html.contains("&lt;script&gt;window.__xss=1&lt;"), "{path}");
        assert!(html.contains("&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt; 🎉"));
        assert!(html.contains("&quot;&gt;&lt;svg onload=alert(1)&gt;"));
        for raw in [
            "<script",
            "<img",
            "onerror=\"",
            "<svg onload",
            "href=\"javascript:",
        ] {
            assert!(!html.contains(raw), "{path} contains {raw}");
        }
        assert!(html.contains("javascript:alert(1)"), "shown as text");
    }
    let html = b.get("/", &[]).text();
    assert!(html.contains("&lt;script&gt;alert(2)"));
    assert!(html.contains("&lt;script&gt;alert(3)"));
}

#[test]
fn forms_need_the_csrf_token_and_this_origin() {
    let relay = Relay::start("pages-csrf");
    let (mut b, csrf) = Browser::signed_in(&relay);

    assert_eq!(b.post("/logout", "").status, 403);
    assert_eq!(b.post("/logout", "csrf=0000").status, 403);
    assert_eq!(b.post("/setup/send_test", "").status, 403);
    let foreign = b.post_from("/logout", &format!("csrf={csrf}"), "https://evil.example");
    assert_eq!(foreign.status, 403);
    assert_eq!(
        b.post_from("/logout", &format!("csrf={csrf}"), "null")
            .status,
        403
    );
    assert_eq!(b.get("/", &[]).status, 200, "still signed in");

    // Signed out, a form post goes to the sign-in page instead of doing anything.
    let mut stranger = Browser::new(&relay);
    let reply = stranger.post("/setup/send_test", &format!("csrf={csrf}"));
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("Location"), Some("/login"));
}

#[test]
fn setup_buttons_report_back_once() {
    let relay = Relay::start("pages-action");
    let (mut b, csrf) = Browser::signed_in(&relay);
    let reply = b.post("/setup/no_such_action", &format!("csrf={csrf}"));
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("Location"), Some("/#setup"));
    let first = b.get("/", &[]).text();
    assert!(first.contains(r#"id="flash""#));
    assert!(first.contains("This action is not available right now."));
    assert!(!b.get("/", &[]).text().contains(r#"id="flash""#));
}

#[test]
fn signing_out_ends_the_session() {
    let relay = Relay::start("pages-logout");
    let (mut b, csrf) = Browser::signed_in(&relay);
    let old = b.cookie_header();
    let out = b.post("/logout", &format!("csrf={csrf}"));
    assert_eq!(out.status, 303);
    assert_eq!(out.header("Location"), Some("/login"));
    let replay = relay.request("GET", "/", &[("Cookie", &old)], b"");
    assert_eq!(replay.status, 303, "the old cookie no longer works");
}

/// The README asks for a restart after every settings change: it signs nobody out, the
/// page's CSRF token still works, a one-shot message still shows once, and signing out
/// still ends the session. A new admin token does sign everyone out.
#[test]
fn a_restart_keeps_sessions_and_a_new_admin_token_ends_them() {
    let mut relay = Relay::start("pages-restart");
    let (cookies, csrf) = {
        let (b, csrf) = Browser::signed_in(&relay);
        (b.cookies.clone(), csrf)
    };
    relay.restart();
    let mut b = Browser {
        relay: &relay,
        cookies: cookies.clone(),
    };
    assert_eq!(
        b.get("/", &[]).status,
        200,
        "still signed in after a restart"
    );
    assert_eq!(b.post("/setup/send_test", "csrf=0000").status, 403);
    let reply = b.post("/setup/send_test", &format!("csrf={csrf}"));
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("Location"), Some("/#setup"));
    let page = b.get("/", &[]).text();
    assert!(
        page.contains(r#"id="flash""#) && page.contains("HTTP 200"),
        "{page}"
    );
    assert!(!b.get("/", &[]).text().contains(r#"id="flash""#));
    let stored: i64 = relay
        .db()
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 1);
    let digests: String = relay
        .db()
        .query_row("SELECT group_concat(id_digest) FROM sessions", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        !cookies.iter().any(|(_, v)| digests.contains(v.as_str())),
        "the database holds no usable cookie"
    );
    drop(b);

    let (fresh, _) = {
        let (b, csrf) = Browser::signed_in(&relay);
        (b.cookies.clone(), csrf)
    };
    let dir = relay.dir.clone();
    drop(relay);
    let other = [
        ("CHATRACE_RELAY_WEBHOOK_SECRET", SECRET),
        (
            "CHATRACE_RELAY_ADMIN_TOKEN",
            "another-admin-token-0123456789abcdef",
        ),
    ];
    let relay = Relay::start_in(dir, &[], &other);
    for jar in [&cookies, &fresh] {
        let b = Browser {
            relay: &relay,
            cookies: jar.clone(),
        };
        let reply = relay.request("GET", "/", &[("Cookie", &b.cookie_header())], b"");
        assert_eq!(reply.status, 303, "a new admin token signs everyone out");
    }
}

#[test]
fn every_answer_carries_the_security_headers() {
    let relay = Relay::start("pages-headers");
    let (mut b, _) = Browser::signed_in(&relay);
    let dashboard = b.get("/", &[]);
    let login = relay.request("GET", "/login", &[], b"");
    let health = relay.request("GET", "/healthz", &[], b"");
    for reply in [&dashboard, &login, &health] {
        let csp = reply.header("Content-Security-Policy").unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(reply.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(reply.header("X-Frame-Options"), Some("DENY"));
    }
    assert_eq!(dashboard.header("Cache-Control"), Some("no-store"));
    let html = dashboard.text();
    assert!(
        !without_own_script(&html).contains("<script"),
        "no script but the relay's own file"
    );
    let script = relay.request("GET", "/static/copy.js", &[], b"");
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("Content-Type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(!html.contains("style="), "the CSP allows no inline styles");
    let css = relay.request("GET", "/static/style.css", &[], b"");
    assert_eq!(css.status, 200);
    assert_eq!(css.header("Content-Type"), Some("text/css; charset=utf-8"));
}

#[test]
fn russian_from_the_browser_or_the_switch() {
    let relay = Relay::start("pages-lang");
    let login = relay.request(
        "GET",
        "/login",
        &[("Accept-Language", "ru-RU,ru;q=0.9")],
        b"",
    );
    let html = login.text();
    assert!(html.contains(r#"<html lang="ru">"#));
    assert!(html.contains("Вход в relay"));

    let (mut b, _) = Browser::signed_in(&relay);
    assert!(b.get("/", &[]).text().contains(r#"<html lang="en">"#));
    let switch = b.get("/lang?to=ru&back=%2Fmessages%3Fpage%3D2", &[]);
    assert_eq!(switch.status, 303);
    assert_eq!(switch.header("Location"), Some("/messages?page=2"));
    let html = b.get("/", &[("Accept-Language", "en")]).text();
    assert!(
        html.contains(r#"<html lang="ru">"#),
        "the choice beats the browser"
    );
    assert!(html.contains("Настройка"));
    assert!(html.contains("Статистика"));
    assert!(!html.contains("Setup checklist"));

    for evil in ["//evil.example", "https://evil.example", "/\\evil.example"] {
        let reply = b.get(
            &format!("/lang?to=en&back={}", evil.replace('/', "%2F")),
            &[],
        );
        assert_eq!(reply.header("Location"), Some("/"), "{evil}");
    }
}

#[test]
fn the_message_list_pages_newest_first() {
    let relay = Relay::start("pages-paging");
    let messaging: Vec<_> = (1..=60)
        .map(|i| {
            serde_json::json!({
                "sender": {"id": "contact-1"},
                "recipient": {"id": "page"},
                "timestamp": 1_763_028_000_000i64 + i * 1000,
                "message": {"mid": format!("mid-{i}"), "text": format!("message number {i}.")},
            })
        })
        .collect();
    let body = serde_json::json!({
        "object": "instagram",
        "entry": [{"id": "page", "time": 1_763_028_000_000i64, "messaging": messaging}],
    });
    let reply = relay.post_webhook("application/json", body.to_string().as_bytes());
    assert_eq!(reply.json()["stored"], 60);

    let (mut b, _) = Browser::signed_in(&relay);
    let first = b.get("/messages", &[]).text();
    assert_eq!(first.matches(r#"<tr id="message-"#).count(), 50);
    assert!(first.contains("message number 60."));
    assert!(first.find("message number 60.") < first.find("message number 59."));
    assert!(!first.contains("message number 10."));
    // Pages are keyed by message id, not by an offset: any page costs the same.
    assert!(first.contains(r#"href="/messages?before=11&amp;page=2""#));
    assert!(!first.contains(r#"rel="prev""#));

    let second = b.get("/messages?before=11&page=2", &[]).text();
    assert_eq!(second.matches(r#"<tr id="message-"#).count(), 10);
    assert!(second.contains("message number 1."));
    assert!(second.contains(r#"href="/messages?after=10&amp;page=1""#));
    assert!(!second.contains(r#"rel="next""#));

    let back = b.get("/messages?after=10&page=1", &[]).text();
    assert_eq!(back.matches(r#"<tr id="message-"#).count(), 50);
    assert!(back.contains("message number 60."));
    assert!(!back.contains(r#"rel="prev""#));

    for odd in ["0", "-1", "abc", "99999999999"] {
        for key in ["page", "before", "after"] {
            assert_eq!(b.get(&format!("/messages?{key}={odd}"), &[]).status, 200);
        }
    }
    let dashboard = b.get("/", &[]).text();
    assert_eq!(dashboard.matches(r#"<tr id="message-"#).count(), 10);
}

/// A page without the script tags it may have: the relay's own copy buttons and local
/// times, loaded from its own files (never inline).
fn without_own_script(html: &str) -> String {
    let mut html = html.to_string();
    for tag in [
        r#"<script src="/static/copy.js?v="#,
        r#"<script src="/static/local-time.js?v="#,
    ] {
        let start = html.find(tag).expect("the relay's own script tag");
        let end = start + html[start..].find("</script>").unwrap() + "</script>".len();
        html = format!("{}{}", &html[..start], &html[end..]);
    }
    html
}
