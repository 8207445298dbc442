//! GET /metrics: valid Prometheus text, and the figures it reports.

use std::collections::{BTreeMap, BTreeSet};

use crate::util::*;

/// Parses the text format line by line the way a scraper would, failing on anything
/// malformed; returns each sample (name with labels) and its value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has a text");
            assert!(!help.is_empty());
            assert!(helped.insert(name.to_string()), "HELP twice for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(helped.contains(name), "TYPE before HELP for {name}");
            assert!(typed.insert(name.to_string(), kind.to_string()).is_none());
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name {name}"
        );
        assert!(name.starts_with("chatrace_relay_"), "{name}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
                for pair in labels[1..labels.len() - 1].split(',') {
                    let (k, v) = pair.split_once('=').expect("label has =");
                    assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                    assert!(
                        v.starts_with('"') && v.ends_with('"') && v.len() >= 2,
                        "{line}"
                    );
                }
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "sample {name} without TYPE");
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    samples
}

#[test]
fn metrics_are_valid_prometheus_text_with_the_figures() {
    let relay = Relay::start("metrics");
    assert_eq!(relay.request("GET", "/metrics", &[], b"").status, 401);
    let body = br#"{"contact_id":"c1","text":"hi","message_id":"x1"}"#;
    relay.post_webhook("application/json", body);
    relay.post_webhook("application/json", body);
    relay.request(
        "POST",
        "/instagram/webhook",
        &[("X-Webhook-Secret", "wrong")],
        body,
    );
    relay.wait_count("SELECT count(*) FROM rejected", 1);

    let reply = relay.get_admin("/metrics");
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = parse(&reply.text());
    let get = |k: &str| {
        *m.get(k)
            .unwrap_or_else(|| panic!("no {k} in\n{}", reply.text()))
    };
    assert_eq!(get("chatrace_relay_webhooks_received_total"), 2.0);
    assert_eq!(
        get("chatrace_relay_webhooks_rejected_total{reason=\"bad_secret\"}"),
        1.0
    );
    assert_eq!(
        get("chatrace_relay_messages_stored_total{direction=\"in\"}"),
        1.0
    );
    assert_eq!(
        get("chatrace_relay_messages_stored_total{direction=\"out\"}"),
        0.0
    );
    assert_eq!(get("chatrace_relay_duplicates_total"), 1.0);
    assert_eq!(
        get("chatrace_relay_forward_attempts_total{outcome=\"delivered\"}"),
        0.0
    );
    assert_eq!(get("chatrace_relay_outbox_pending"), 0.0);
    assert_eq!(get("chatrace_relay_outbox_oldest_pending_age_seconds"), 0.0);
    assert!(get("chatrace_relay_database_size_bytes") > 4096.0);
    assert_eq!(get("chatrace_relay_webhook_ack_seconds_count"), 3.0);
    assert_eq!(
        get("chatrace_relay_webhook_ack_seconds_bucket{le=\"+Inf\"}"),
        3.0
    );
    assert!(get("chatrace_relay_webhook_ack_seconds_sum") > 0.0);
    let buckets: Vec<f64> = m
        .iter()
        .filter(|(k, _)| k.starts_with("chatrace_relay_webhook_ack_seconds_bucket"))
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(buckets.len(), 12);
}

#[test]
fn forwarding_shows_in_the_metrics() {
    let relay = Relay::start_with(
        "metrics-forward",
        // Nothing listens on port 9 (discard): every attempt is a connection error.
        &[
            "--forward-url",
            "http://127.0.0.1:9/hook",
            "--retry-schedule",
            "1h",
        ],
        &KNOWN_SECRETS,
    );
    relay.post_webhook(
        "application/json",
        br#"{"contact_id":"c1","text":"hi","message_id":"x1"}"#,
    );
    relay.wait_count("SELECT count(*) FROM deliveries WHERE attempts = 1", 1);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let m = parse(&relay.get_admin("/metrics").text());
    assert_eq!(
        m["chatrace_relay_forward_attempts_total{outcome=\"network_error\"}"],
        1.0
    );
    assert_eq!(m["chatrace_relay_outbox_pending"], 1.0);
    assert!(m["chatrace_relay_outbox_oldest_pending_age_seconds"] >= 1.0);
}
