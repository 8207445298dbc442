//! Form and query-string decoding of any bytes, and percent-encoding of any text:
//! - `parse_form` never panics and yields one pair per non-empty '&'-separated part;
//! - `parse_form(&format!("k={}", percent_encode(s)))` gives back exactly `("k", s)`;
//! - re-encoding what `parse_form` decoded and decoding again changes nothing.
#![no_main]

use chatrace_relay::text::{parse_form, percent_encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Query strings and bodies reach parse_form through from_utf8_lossy; do the same here,
    // but keep valid UTF-8 input exactly as it is.
    let s = String::from_utf8_lossy(data);

    let pairs = parse_form(&s);
    let parts = s.split('&').filter(|p| !p.is_empty()).count();
    assert_eq!(pairs.len(), parts, "one pair per non-empty part of {s:?}");

    let encoded = percent_encode(&s);
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
        "percent_encode left a reserved byte in {encoded:?}"
    );
    assert_eq!(
        parse_form(&format!("k={encoded}")),
        [("k".to_string(), s.to_string())],
        "the percent-encoding round trip lost {s:?}"
    );

    let reencoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    assert_eq!(
        parse_form(&reencoded.join("&")),
        pairs,
        "decoding is not stable under re-encoding for {s:?}"
    );
});
