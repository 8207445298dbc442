//! Search through the API and the page: what it finds and filters, that every query is
//! answered, that found text stays text, and that the index holds exactly the messages
//! after ingest, retention and the upgrade of an older database.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::conversations::webhook;
use crate::pages::Browser;
use crate::util::*;

fn search(relay: &Relay, query: &str) -> Reply {
    relay.get_admin(&format!("/api/messages?{query}"))
}

/// The texts found, newest first.
fn texts(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap_or("").to_string())
        .collect()
}

fn q(text: &str) -> String {
    format!("q={}", chatrace_relay::text::percent_encode(text))
}

fn fill(relay: &Relay) {
    let now = chatrace_relay::time::now_ms();
    let iso = chatrace_relay::time::format_rfc3339;
    for (id, name, user, text, channel, at) in [
        (
            "201",
            "Анна Петрова",
            "anna.p",
            "Здравствуйте, сколько стоит ДОСТАВКА?",
            "instagram",
            now - 3 * 86_400_000,
        ),
        (
            "202",
            "Boris",
            "boris_b",
            "Un café noir, s'il vous plaît",
            "instagram",
            now - 2 * 86_400_000,
        ),
        (
            "201",
            "Анна Петрова",
            "anna.p",
            "А доставка в Казань есть?",
            "instagram",
            now - 86_400_000,
        ),
        (
            "203",
            "Vera",
            "vera",
            "Доставочка будет завтра",
            "facebook",
            now,
        ),
    ] {
        webhook(
            relay,
            serde_json::json!({"user_id": id, "first_name": name, "ig_user_name": user,
                               "text": text, "channel": channel, "timestamp": iso(at)}),
        );
    }
}

#[test]
fn search_finds_words_names_and_prefixes_and_filters_through_the_api() {
    let relay = Relay::start("search-api");
    fill(&relay);
    // Case folds in Cyrillic; newest first.
    assert_eq!(
        texts(&search(&relay, &q("доставка"))),
        [
            "А доставка в Казань есть?",
            "Здравствуйте, сколько стоит ДОСТАВКА?"
        ]
    );
    // The last word is also a prefix; accents fold in Latin.
    assert_eq!(texts(&search(&relay, &q("ДОСТАВ"))).len(), 3);
    assert_eq!(
        texts(&search(&relay, &q("CAFE"))),
        ["Un café noir, s'il vous plaît"]
    );
    // Names and usernames are searched with the text: every word must match somewhere.
    assert_eq!(
        texts(&search(&relay, &q("петрова казань"))),
        ["А доставка в Казань есть?"]
    );
    assert_eq!(texts(&search(&relay, &q("boris_b"))).len(), 1);
    // Filters.
    assert_eq!(
        texts(&search(&relay, &format!("{}&contact=201", q("достав")))).len(),
        2
    );
    assert_eq!(
        texts(&search(
            &relay,
            &format!("{}&channel=Facebook", q("достав"))
        ))
        .len(),
        1
    );
    assert_eq!(
        texts(&search(&relay, &format!("{}&direction=out", q("достав")))).len(),
        0
    );
    let today = chatrace_relay::time::date_string(chatrace_relay::time::now_ms());
    assert_eq!(
        texts(&search(
            &relay,
            &format!("{}&from={today}&to={today}", q("достав"))
        )),
        ["Доставочка будет завтра"]
    );
    assert_eq!(
        search(&relay, &format!("{}&direction=sideways", q("x"))).status,
        400
    );
    assert_eq!(
        search(&relay, &format!("{}&from=yesterday", q("x"))).status,
        400
    );
    // Pages by id.
    let first = search(&relay, &format!("{}&limit=2", q("достав")));
    let next = first.json()["next_before"].as_i64().expect("a next page");
    let rest = search(&relay, &format!("{}&limit=2&before={next}", q("достав")));
    assert_eq!(texts(&first).len() + texts(&rest).len(), 3);
    assert!(rest.json()["next_before"].is_null());
    // Without the token, nothing.
    assert_eq!(
        relay
            .request("GET", &format!("/api/messages?{}", q("x")), &[], b"")
            .status,
        401
    );
    // The cursor without q is unchanged.
    assert_eq!(
        relay.get_admin("/api/messages?after=0").json()["messages"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn hostile_queries_are_answered_and_found_text_stays_text() {
    let relay = Relay::start("search-hostile");
    webhook(
        &relay,
        serde_json::json!({"user_id": "301", "first_name": "<img src=x onerror=alert(1)>",
                           "text": "<script>alert(1)</script> NEAR \"quoted\" word-with-dash"}),
    );
    let huge = "доставка ".repeat(1200);
    let hostile = [
        "\"",
        "\"\"",
        "*",
        "**",
        "-",
        "-word",
        "NEAR(a b)",
        "NEAR",
        "a OR b",
        "AND",
        "NOT x",
        "(",
        ")",
        "^",
        ":",
        "text:script",
        "{text}: x",
        "'",
        "\\",
        "%",
        "\u{0}",
        "😀",
        "\u{202e}",
        huge.as_str(),
    ];
    for query in hostile {
        let api = search(&relay, &q(query));
        assert_eq!(api.status, 200, "{query:?}: {}", api.text());
    }
    assert_eq!(texts(&search(&relay, &q("script"))).len(), 1);
    assert_eq!(texts(&search(&relay, &q("\"near\""))).len(), 1);
    assert_eq!(texts(&search(&relay, &q("word-with"))).len(), 1);

    let (mut browser, _) = Browser::signed_in(&relay);
    for query in hostile {
        let page = browser.get(&format!("/search?{}", q(query)), &[]);
        assert_eq!(page.status, 200, "{query:?}");
    }
    let page = browser.get(&format!("/search?{}", q("script")), &[]).text();
    assert!(!page.contains("<script>alert"), "the text is escaped");
    assert!(!page.contains("<img src=x"), "the name is escaped");
    assert!(page.contains("&lt;<mark>script</mark>&gt;alert"), "{page}");
    assert!(page.contains(r#"href="&#x2f;contacts&#x2f;301?before_at="#));
    let csv = browser.get(&format!("/search/export?{}&format=csv", q("script")), &[]);
    assert_eq!(csv.status, 200);
    assert_eq!(csv.text().lines().count(), 2);
}

/// Message ids and index rows are the same set, and each message is found by its words.
pub(crate) fn index_matches_messages(conn: &rusqlite::Connection) {
    let ids = |sql: &str| -> Vec<i64> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(
        ids("SELECT rowid FROM message_search ORDER BY rowid"),
        ids("SELECT id FROM messages ORDER BY id")
    );
    let texts: Vec<(i64, String)> = conn
        .prepare("SELECT id, text FROM messages WHERE text IS NOT NULL")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for (id, text) in texts {
        let Some(word) = text
            .split(|c: char| !c.is_alphanumeric())
            .find(|w| !w.is_empty())
        else {
            continue;
        };
        let found: i64 = conn
            .query_row(
                "SELECT count(*) FROM message_search WHERE message_search MATCH ?1 AND rowid = ?2",
                rusqlite::params![format!("\"{word}\""), id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, 1, "message {id} is not found by {word:?}");
    }
    // Each contact's newest message, as the contact list shows it, is the thread's last.
    let wrong: i64 = conn
        .query_row(
            "SELECT count(*) FROM contacts c WHERE c.last_message_id IS NOT (
                 SELECT id FROM messages WHERE contact_id = c.contact_id AND is_test = 0
                 ORDER BY coalesce(sent_at, received_at) DESC, id DESC LIMIT 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(wrong, 0, "contacts whose newest message is wrong");
}

#[test]
fn the_index_holds_exactly_the_messages_after_an_upgrade() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upgrade/relay-0.1.0.db");
    let dir = temp_dir("search-upgrade");
    std::fs::copy(&fixture, dir.join("relay.db")).unwrap();
    let relay = Relay::start_in(dir, &[], &KNOWN_SECRETS);
    assert!(
        relay.log().contains("upgrade: search index built"),
        "{}",
        relay.log()
    );
    index_matches_messages(&relay.db());
    // New messages after the upgrade are indexed with them.
    webhook(
        &relay,
        serde_json::json!({"user_id": "9", "text": "после обновления"}),
    );
    assert_eq!(texts(&search(&relay, &q("обновления"))).len(), 1);
    index_matches_messages(&relay.db());
}

#[test]
fn retention_keeps_the_index_in_step() {
    let relay = Relay::start_args("search-retention", &["--keep-messages", "2s"]);
    for i in 0..30 {
        webhook(
            &relay,
            serde_json::json!({"user_id": format!("{}", 400 + i % 3), "text": format!("старое сообщение {i}")}),
        );
    }
    index_matches_messages(&relay.db());
    let deadline = Instant::now() + Duration::from_secs(30);
    while relay.count("SELECT count(*) FROM messages") > 0 {
        assert!(Instant::now() < deadline, "retention never ran");
        std::thread::sleep(Duration::from_millis(200));
    }
    index_matches_messages(&relay.db());
    assert_eq!(texts(&search(&relay, &q("старое"))).len(), 0);
    webhook(
        &relay,
        serde_json::json!({"user_id": "400", "text": "новое"}),
    );
    assert_eq!(texts(&search(&relay, &q("новое"))).len(), 1);
    index_matches_messages(&relay.db());
}
