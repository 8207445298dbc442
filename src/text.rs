//! Text helpers with no knowledge of the rest of the relay: form and percent coding,
//! lookups in header and form lists, excerpts safe to show or log, and which values are web
//! URLs.

use std::fmt::Write as _;

/// application/x-www-form-urlencoded (also used for query strings): split on '&', first '=',
/// '+' is space, %XX percent-decoding to bytes then UTF-8 (lossy is fine, never panic on bad %).
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(key), decode_component(value))
        })
        .collect()
}

/// For building URLs: everything but RFC 3986's unreserved characters is escaped.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// At most `max_chars` characters of the body as text (lossy UTF-8), whitespace runs collapsed
/// to one space, with "…" appended when cut. Used for logs of rejected requests.
/// Control characters become U+FFFD so a hostile body cannot forge log lines or terminal
/// escapes.
pub fn excerpt(body: &[u8], max_chars: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut chars = text
        .split_whitespace()
        .flat_map(|word| std::iter::once(' ').chain(word.chars()))
        .skip(1)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c });
    let mut out: String = chars.by_ref().take(max_chars).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// One form or query component, percent- and plus-decoded.
pub fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = match (b, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => hex(hi).zip(hex(lo)).map(|(h, l)| (h << 4) | l),
            _ => None,
        };
        match (escaped, b) {
            (Some(decoded), _) => {
                out.push(decoded);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// What a request carried, for people: the start of its body, or of its query string for a
/// GET that had no body.
pub fn request_excerpt(body: &[u8], query: &str, chars: usize) -> String {
    let shown = excerpt(body, chars);
    if shown.is_empty() && !query.is_empty() {
        format!("?{}", excerpt(query.as_bytes(), chars))
    } else {
        shown
    }
}

/// The text without the characters that set the direction of the text after them
/// (embeddings, overrides, isolates and marks). For names, where they only serve to make
/// one person's name or id look like another's, and for places no markup can isolate,
/// such as an `<option>`.
pub fn without_direction_controls(text: &str) -> String {
    text.chars()
        .filter(|c| {
            !matches!(
                c,
                '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
            )
        })
        .collect()
}

/// Text from a request as a log line may quote it: control characters (a CR or LF would
/// start a forged line, ESC would drive the terminal) are written as escapes, so one log
/// line stays one line.
pub fn log_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(text.chars().flat_map(char::escape_default).collect())
}

/// The value of a header, by case-insensitive name; the first when repeated.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The value of a decoded form field (or query parameter); the first when repeated.
pub fn form_field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether a value is an http(s) URL to link or fetch as it is: the scheme in any case, and
/// no whitespace or control character anywhere. Anything else (javascript:, data:...) is
/// text, never a link or an attachment.
pub fn is_web_url(value: &str) -> bool {
    let lower = value.get(..8).unwrap_or(value).to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && !value.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// The value, trimmed, when it is a web URL.
pub fn web_url(value: &str) -> Option<String> {
    let v = value.trim();
    is_web_url(v).then(|| v.to_string())
}

/// A `Retry-After` value in delta-seconds, the form APIs and webhook receivers use; the
/// rare HTTP-date form reads as absent, and each caller falls back to its own default.
pub fn retry_after(value: &str) -> Option<std::time::Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(std::time::Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds() {
        use std::time::Duration;
        assert_eq!(retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn only_web_urls_become_links() {
        assert_eq!(
            web_url(" https://cdn.example.com/a.jpg ").as_deref(),
            Some("https://cdn.example.com/a.jpg")
        );
        assert_eq!(
            web_url("HTTP://x.example/").as_deref(),
            Some("HTTP://x.example/")
        );
        for bad in [
            "javascript:alert(1)",
            " JavaScript:alert(1)",
            "data:text/html,<script>",
            "//evil.example",
            "https://x.example/a b",
            "http\u{0}://x",
            "",
            "héllo",
        ] {
            assert_eq!(web_url(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn direction_controls_are_removed_and_nothing_else() {
        assert_eq!(
            without_direction_controls(
                "Anna\u{2067} \u{2069}\u{202E}report\u{202E}gnp.exe \u{200F}\u{061C}שלום"
            ),
            "Anna reportgnp.exe שלום"
        );
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            parse_form("a=1&b=x+y&&c&d=%D0%9F&e=1=2"),
            [
                ("a", "1"),
                ("b", "x y"),
                ("c", ""),
                ("d", "П"),
                ("e", "1=2")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(parse_form(""), []);
        assert_eq!(parse_form("%"), [("%".to_string(), String::new())]);
        let bad = parse_form("a=%zz%4&b=%e2%82&c=%2b&d=100%");
        assert_eq!(bad[0].1, "%zz%4");
        assert_eq!(bad[1].1, "\u{FFFD}");
        assert_eq!(bad[2].1, "+");
        assert_eq!(bad[3].1, "100%");
    }

    #[test]
    fn percent_encoding_round_trips() {
        assert_eq!(percent_encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        for s in ["", "Привет 👋 &=+%", "{{contact_id}}"] {
            assert_eq!(parse_form(&format!("k={}", percent_encode(s)))[0].1, s);
        }
    }

    #[test]
    fn excerpts() {
        assert_eq!(excerpt(b"  a \n\t b  ", 10), "a b");
        assert_eq!(excerpt(b"abcdef", 3), "abc…");
        assert_eq!(excerpt(b"abc", 3), "abc");
        assert_eq!(excerpt(b"", 3), "");
        assert_eq!(excerpt(b"abc", 0), "…");
        assert_eq!(excerpt("Привет мир".as_bytes(), 6), "Привет…");
        let truncated = &"Привет".as_bytes()[..3];
        assert_eq!(excerpt(truncated, 10), "П\u{FFFD}");
        assert_eq!(excerpt(b"a\x1b[31mb\x00c", 10), "a\u{FFFD}[31mb\u{FFFD}c");
    }

    #[test]
    fn log_lines_cannot_be_forged() {
        assert_eq!(log_safe("/instagram/webhook"), "/instagram/webhook");
        assert_eq!(log_safe("/x\r\n[INFO ] forged"), "/x\\r\\n[INFO ] forged");
        assert_eq!(log_safe("a\u{1b}[31mb\u{85}"), "a\\u{1b}[31mb\\u{85}");
        assert_eq!(log_safe("Привет"), "Привет");
    }

    #[test]
    fn lookups_take_the_first_match() {
        let pairs = [("Content-Type", "a"), ("content-type", "b"), ("x", "1")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(header(&pairs, "CONTENT-TYPE"), Some("a"));
        assert_eq!(form_field(&pairs, "content-type"), Some("b"));
        assert_eq!(form_field(&pairs, "y"), None);
    }
}
