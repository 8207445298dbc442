//! Time zones: `--time-zone` decides where "today" and the chart's days begin, for the
//! page, the stats API and the `stats` command; the page's script shows times in the
//! viewer's own zone and the server writes UTC under it.

use std::process::Command;

use crate::conversations::webhook;
use crate::pages::Browser;
use crate::util::*;

/// UTC+14 all year: its date is ahead of UTC's for 14 hours of every day.
const KIRITIMATI: &str = "Pacific/Kiritimati";
const KIRITIMATI_OFFSET_MS: i64 = 14 * 3_600_000;

#[test]
fn today_and_the_days_begin_in_the_configured_zone() {
    let relay = Relay::start_args("zone-stats", &["--time-zone", KIRITIMATI]);
    webhook(&relay, serde_json::json!({"user_id": "1", "text": "hi"}));
    let local_today =
        chatrace_relay::time::date_string(chatrace_relay::time::now_ms() + KIRITIMATI_OFFSET_MS);
    let stats = relay.stats();
    let by_day = stats["by_day"].as_array().unwrap();
    assert_eq!(by_day.len(), 30);
    assert_eq!(by_day[29]["date"], local_today.as_str());
    assert_eq!(by_day[29]["count"], 1);
    assert_eq!(stats["messages_today"], 1);

    let (mut browser, _) = Browser::signed_in(&relay);
    let page = browser.get("/", &[]).text();
    assert!(
        page.contains("Today (Pacific&#x2f;Kiritimati)"),
        "the card names the zone"
    );
    assert!(
        page.contains(r#"<time datetime=""#),
        "times carry their instant"
    );
    assert!(page.contains(r#"id="time-note""#) && page.contains("Times are in UTC."));
    let script = browser.get("/static/local-time.js", &[]);
    assert_eq!(script.status, 200);
    assert!(script
        .header("Content-Type")
        .unwrap()
        .starts_with("text/javascript"));

    // The `stats` command, given the same zone, agrees.
    let db = relay.db.clone();
    let out = Command::new(binary())
        .args(["stats", "--json", "--time-zone", KIRITIMATI, "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["by_day"][29]["date"], local_today.as_str());
}

#[test]
fn an_unknown_zone_is_refused_at_start() {
    let dir = temp_dir("zone-unknown");
    let out = Command::new(binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--time-zone",
            "Mars/Olympus",
            "--db",
        ])
        .arg(dir.join("relay.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--time-zone") && stderr.contains("IANA"),
        "{stderr}"
    );
}
