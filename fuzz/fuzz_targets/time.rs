//! RFC 3339 parsing of any text and formatting of any i64:
//! - neither ever panics (overflow checks are on in fuzz builds);
//! - a parsed instant within years 0000..9999 formats to text that parses back to it
//!   (beyond that range, to the clamped value);
//! - any i64 formats (clamped to that range) to text that parses back to the clamped value,
//!   and `date_string` is that text's date part.
#![no_main]

use chatrace_relay::time::{date_string, format_rfc3339, parse_rfc3339};
use libfuzzer_sys::fuzz_target;

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z, as in src/time.rs (private there).
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;

fn round_trip(ms: i64) {
    let text = format_rfc3339(ms);
    let clamped = ms.clamp(MIN_MS, MAX_MS);
    assert_eq!(
        parse_rfc3339(&text),
        Some(clamped),
        "{ms} formatted as {text:?}"
    );
    assert_eq!(date_string(ms), text[..10], "date of {ms}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        // Only an offset or a leap second can take a valid text past the range; those
        // round-trip to the clamped value like any other i64.
        if let Some(ms) = parse_rfc3339(s) {
            round_trip(ms);
        }
    }
    if let Some(first) = data.first_chunk::<8>() {
        round_trip(i64::from_le_bytes(*first));
    }
});
