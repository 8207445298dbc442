//! Any bytes, any content type, any query string: `payload::parse` must answer without
//! panicking, give the same answer twice, and every message it returns must be usable.
//!
//! Input layout: the first byte picks the content type (see `CONTENT_TYPES`; the last
//! choice takes the content type itself from the input, up to the first 0x00 byte). The
//! rest is `query 0x00 body`; without a 0x00 byte it is all body and the query is empty.
#![no_main]

use chatrace_relay::payload::{self, Flag, Malformed, Parsed, Request};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    Some("application/json; charset=utf-8"),
    Some("Application/X-WWW-Form-Urlencoded ; charset=UTF-8"),
    Some("application/vnd.api+json"),
];

/// What `time::parse_rfc3339` can return: years 0000..9999 widened by a day for the
/// ±23:59 offsets and the leap second; numeric timestamps are narrower still.
const MIN_SENT_AT_MS: i64 = -62_167_219_200_000 - 86_400_000;
const MAX_SENT_AT_MS: i64 = 253_402_300_799_999 + 86_400_000;

fn split_at_nul(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
    match bytes.iter().position(|&b| b == 0) {
        Some(at) => (&bytes[..at], Some(&bytes[at + 1..])),
        None => (bytes, None),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let choice = usize::from(selector) % (CONTENT_TYPES.len() + 1);
    let (garbage_type, rest) = if choice == CONTENT_TYPES.len() {
        let (ct, after) = split_at_nul(rest);
        (
            Some(String::from_utf8_lossy(ct).into_owned()),
            after.unwrap_or(&[]),
        )
    } else {
        (None, rest)
    };
    let content_type = match &garbage_type {
        Some(ct) => Some(ct.as_str()),
        None => CONTENT_TYPES[choice],
    };
    let (query, body) = match split_at_nul(rest) {
        (query, Some(body)) => (String::from_utf8_lossy(query).into_owned(), body),
        (body, None) => (String::new(), body),
    };
    let req = Request {
        content_type,
        body,
        query: &query,
    };

    let first = payload::parse(&req);
    assert_eq!(first, payload::parse(&req), "parsing is not deterministic");
    match first {
        Ok(parsed) => check(&parsed),
        Err(Malformed(reason)) => assert!(!reason.is_empty(), "a Malformed without a reason"),
    }
});

fn check(parsed: &Parsed) {
    if parsed.messages.is_empty() {
        assert!(parsed.flag.is_some(), "no messages and no flag saying why");
    }
    if let Some(flag) = &parsed.flag {
        assert!(!flag.code().is_empty() && !flag.describe().is_empty());
        if let Flag::UnfilledPlaceholders(fields) = flag {
            assert!(
                !fields.is_empty(),
                "an unfilled-placeholder flag naming no field"
            );
        }
    }
    for m in &parsed.messages {
        assert!(!m.contact_id.is_empty(), "empty contact_id: {m:?}");
        assert!(
            m.text.is_some() || !m.attachments.is_empty(),
            "a message with neither text nor attachment: {m:?}"
        );
        assert!(m.text.as_deref() != Some(""), "Some(\"\") as text: {m:?}");
        for a in &m.attachments {
            assert!(
                !a.url.is_empty() && !a.kind.is_empty(),
                "empty attachment: {m:?}"
            );
        }
        if let Some(ms) = m.sent_at_ms {
            assert!(
                (MIN_SENT_AT_MS..=MAX_SENT_AT_MS).contains(&ms),
                "sent_at_ms {ms} out of range: {m:?}"
            );
        }
        if let Some(key) = m.dedup_key() {
            assert!(
                key.starts_with("x:") || key.starts_with("t:"),
                "dedup key {key:?}"
            );
        }
        let _ = m.weak_key();
    }
}
