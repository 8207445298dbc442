//! Webhook bodies to messages: Chatrace External Request (JSON, form, query) and Meta's Instagram webhook; pure, no I/O.
//!
//! Chatrace has no fixed payload schema (the flow author names the fields), so flat bodies
//! are read through tables of the field names seen in real receivers. Every input is
//! untrusted: nothing here may panic, whatever the bytes.
//!
//! Here: telling the body's kind and collecting what its objects yield; `fields` reads flat
//! objects, `meta` Meta's format, and `message` holds the message type and its dedup keys.

mod fields;
mod message;
mod meta;

use serde_json::{Map, Value};

pub use crate::outcome::Flag;
use crate::text::parse_form;
use crate::time;
use fields::{flat_message, MAX_SENT_AT_MS, MS_THRESHOLD};
pub use fields::{CONTACT_ID, TEXT};
pub use message::{dedup_hash, Attachment, Direction, NewMessage};
use meta::from_meta;

pub struct Request<'a> {
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    /// The raw query string without '?', e.g. "secret=abc&contact_id=1".
    pub query: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub messages: Vec<NewMessage>,
    pub flag: Option<Flag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// Malformed only for bodies that cannot be read at all (bad JSON, non-UTF-8 JSON, a JSON
/// scalar); anything readable but unexpected is Ok with a flag, so it is kept and shown.
pub fn parse(req: &Request) -> Result<Parsed, Malformed> {
    let kind = body_kind(req.content_type, req.body);
    if req.body.trim_ascii().is_empty() {
        let fields = form_object(req.query, true);
        // A GET that carries its fields in the query may still name JSON as its type (a
        // header copied along); only with nothing anywhere is the declared JSON missing.
        if fields.is_empty() && declared_json(req.content_type) {
            return Err(Malformed(
                "the body is empty, but its Content-Type says JSON: put the JSON template in the request's body".into(),
            ));
        }
        return Ok(from_fields(&fields, "empty body and no query parameters"));
    }
    match kind {
        Some(BodyKind::Json) => parse_json(req.body),
        Some(BodyKind::Form) => {
            // Flow authors paste the JSON template and leave the content type at a form
            // default: a body that is JSON is read as JSON, whatever it is called.
            if starts_like_json(req.body) {
                if let Ok(parsed) = parse_json(req.body) {
                    return Ok(parsed);
                }
            }
            let fields = form_object(&String::from_utf8_lossy(req.body), false);
            Ok(from_fields(&fields, "form body without fields"))
        }
        None => Ok(no_message("body is neither JSON nor form-encoded")),
    }
}

fn declared_json(content_type: Option<&str>) -> bool {
    let media = media_type(content_type);
    media == "application/json" || media.ends_with("+json")
}

fn media_type(content_type: Option<&str>) -> String {
    content_type
        .and_then(|ct| ct.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn starts_like_json(body: &[u8]) -> bool {
    matches!(body.trim_ascii_start().first(), Some(b'{' | b'['))
}

enum BodyKind {
    Json,
    Form,
}

/// The declared type wins; without a useful one, the first bytes decide, because flow
/// authors often leave Chatrace's content type at a default.
fn body_kind(content_type: Option<&str>, body: &[u8]) -> Option<BodyKind> {
    if declared_json(content_type) {
        return Some(BodyKind::Json);
    }
    if media_type(content_type) == "application/x-www-form-urlencoded" {
        return Some(BodyKind::Form);
    }
    if starts_like_json(body) {
        Some(BodyKind::Json)
    } else if body.contains(&b'=') {
        Some(BodyKind::Form)
    } else {
        None
    }
}

fn parse_json(body: &[u8]) -> Result<Parsed, Malformed> {
    let text = std::str::from_utf8(body)
        .map_err(|e| Malformed(format!("JSON body is not valid UTF-8: {e}")))?;
    let value: Value = serde_json::from_str(text).map_err(|e| json_error(&e))?;
    from_json(&value).ok_or_else(|| Malformed("expected a JSON object or array".into()))
}

/// serde_json puts the position at the end; a reader scanning a log wants it first.
fn json_error(e: &serde_json::Error) -> Malformed {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let what = full.strip_suffix(&position).unwrap_or(&full);
    Malformed(format!("invalid JSON{position}: {what}"))
}

/// None for a scalar: there is no shape to look into.
fn from_json(value: &Value) -> Option<Parsed> {
    match value {
        Value::Array(items) => Some(collect(
            items.iter().filter_map(Value::as_object).map(flat_message),
            "the JSON array holds no objects",
        )),
        Value::Object(obj) if is_meta(obj) => Some(from_meta(obj)),
        Value::Object(obj) => match data_wrapper(obj) {
            Some(inner) => from_json(inner),
            None => Some(from_fields(obj, "empty JSON object")),
        },
        _ => None,
    }
}

fn is_meta(obj: &Map<String, Value>) -> bool {
    obj.contains_key("object") && obj.get("entry").is_some_and(Value::is_array)
}

/// `{"data": ...}` is unwrapped only when the outer object carries no message fields of its
/// own, so a flat body that happens to have a `data` field is still read as flat.
fn data_wrapper(obj: &Map<String, Value>) -> Option<&Value> {
    let own_fields = CONTACT_ID
        .iter()
        .chain(TEXT)
        .any(|name| lookup(obj, name).is_some());
    obj.get("data")
        .filter(|data| !own_fields && (data.is_object() || data.is_array()))
}

fn from_fields(obj: &Map<String, Value>, empty_reason: &str) -> Parsed {
    if obj.is_empty() {
        return no_message(empty_reason);
    }
    collect(std::iter::once(flat_message(obj)), empty_reason)
}

fn no_message(reason: &str) -> Parsed {
    Parsed {
        messages: Vec::new(),
        flag: Some(Flag::NoMessage(reason.into())),
    }
}

/// What one object or event yielded: a message or why not, and the fields the message
/// needs (contact id, text) that held unfilled placeholders. Optional fields (names,
/// username, channel, type...) that a Chatrace account does not know arrive literally, and
/// are simply left out: they are no misconfiguration once the message itself is there.
struct Outcome {
    message: Result<NewMessage, String>,
    unfilled: Vec<String>,
}

/// Placeholders outrank "no message": they name the fix the user has to make in the flow.
fn collect(outcomes: impl Iterator<Item = Outcome>, empty_reason: &str) -> Parsed {
    let mut messages = Vec::new();
    let mut unfilled: Vec<String> = Vec::new();
    let mut first_failure = None;
    for outcome in outcomes {
        for field in outcome.unfilled {
            if !unfilled.contains(&field) {
                unfilled.push(field);
            }
        }
        match outcome.message {
            Ok(message) => messages.push(message),
            Err(reason) => {
                first_failure.get_or_insert(reason);
            }
        }
    }
    let flag = if !unfilled.is_empty() {
        Some(Flag::UnfilledPlaceholders(unfilled))
    } else if messages.is_empty() {
        Some(Flag::NoMessage(
            first_failure.unwrap_or_else(|| empty_reason.into()),
        ))
    } else {
        None
    };
    Parsed { messages, flag }
}

fn form_object(s: &str, from_query: bool) -> Map<String, Value> {
    let mut obj = Map::new();
    for (key, value) in parse_form(s) {
        // The secret authenticates the request and hub.* is Meta's handshake: never data.
        if from_query && (key == "secret" || key.starts_with("hub.")) {
            continue;
        }
        obj.entry(key).or_insert(Value::String(value));
    }
    obj
}

/// `[{type, url}]` or Meta's `[{type, payload: {url}}]`; entries without a URL carry nothing
/// we can keep.
fn attachment_list(value: Option<&Value>) -> Vec<Attachment> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let url = item
                .get("url")
                .or_else(|| item.get("payload")?.get("url"))
                .and_then(string)
                .filter(|url| !is_placeholder(url))?;
            let kind = item.get("type").and_then(string);
            Some(Attachment {
                kind: kind.unwrap_or_else(|| "file".into()),
                url,
            })
        })
        .collect()
}

/// Unix seconds or milliseconds (told apart by size), or an RFC 3339 string. f64 is exact
/// for every plausible millisecond value (< 2^53), and lets fractional seconds through.
fn parse_sent_at(raw: &str) -> Option<i64> {
    let Ok(number) = raw.parse::<f64>() else {
        return time::parse_rfc3339(raw);
    };
    let ms = if number >= MS_THRESHOLD {
        number
    } else {
        number * 1000.0
    };
    // NaN, infinities, negatives and far-future values all fail this range check.
    (0.0..=MAX_SENT_AT_MS)
        .contains(&ms)
        .then(|| ms.round() as i64)
}

/// A path like `message.text`: a literal key first (form fields have dots in their names),
/// then nested objects.
fn lookup<'a>(obj: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = obj.get(path) {
        return Some(value);
    }
    let (head, rest) = path.split_once('.')?;
    rest.split('.')
        .try_fold(obj.get(head)?, |value, key| value.get(key))
}

/// A trimmed, non-empty string value.
fn string(value: &Value) -> Option<String> {
    value
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A string or a number; numbers keep their exact decimal form as sent (serde_json's
/// `arbitrary_precision`: never through f64), since ids exceed 2^53 and two ids that differ
/// only in their last digits are two messages.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        _ => string(value),
    }
}

fn is_placeholder(value: &str) -> bool {
    value.starts_with("{{") && value.ends_with("}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXTERNAL_REQUEST: &str =
        include_str!("../../tests/fixtures/chatrace-external-request.json");
    const FLAT_LEGACY: &str = include_str!("../../tests/fixtures/flat-legacy.json");
    const FORM_ENCODED: &str = include_str!("../../tests/fixtures/form-encoded.txt");
    const META_INSTAGRAM: &str = include_str!("../../tests/fixtures/meta-instagram.json");
    const META_ECHO: &str = include_str!("../../tests/fixtures/meta-echo-and-attachment.json");
    const UNFILLED: &str = include_str!("../../tests/fixtures/unfilled-placeholders.json");
    const SYSTEM_FIELDS: &str = include_str!("../../tests/fixtures/chatrace-system-fields.json");
    const MEDIA: &str = include_str!("../../tests/fixtures/chatrace-media.json");
    const EMPTY_OPTIONAL: &str = include_str!("../../tests/fixtures/chatrace-empty-optional.json");
    const ANNA: &str = "6742218934563412";

    fn request<'a>(content_type: Option<&'a str>, body: &'a str, query: &'a str) -> Request<'a> {
        Request {
            content_type,
            body: body.as_bytes(),
            query,
        }
    }

    fn json(body: &str) -> Parsed {
        parse(&request(Some("application/json"), body, "")).expect("well-formed JSON")
    }

    fn only(parsed: Parsed) -> NewMessage {
        assert_eq!(parsed.flag, None);
        assert_eq!(parsed.messages.len(), 1, "{:?}", parsed.messages);
        parsed.messages.into_iter().next().expect("one message")
    }

    fn no_message_reason(parsed: &Parsed) -> &str {
        assert!(parsed.messages.is_empty());
        match &parsed.flag {
            Some(Flag::NoMessage(reason)) => reason,
            other => panic!("expected NoMessage, got {other:?}"),
        }
    }

    fn malformed(content_type: Option<&str>, body: &[u8]) -> String {
        let req = Request {
            content_type,
            body,
            query: "",
        };
        match parse(&req) {
            Err(Malformed(reason)) => reason,
            Ok(parsed) => panic!("expected Malformed, got {parsed:?}"),
        }
    }

    #[test]
    fn fixture_chatrace_external_request() {
        let m = only(json(EXTERNAL_REQUEST));
        assert_eq!(m.contact_id, ANNA);
        assert_eq!(m.contact_name.as_deref(), Some("Anna Petrova"));
        assert_eq!(m.username.as_deref(), Some("anna.p"));
        assert_eq!(m.channel.as_deref(), Some("instagram"));
        assert_eq!(
            m.text.as_deref(),
            Some("Здравствуйте, сколько стоит доставка?")
        );
        assert_eq!(m.sent_at_ms, time::parse_rfc3339("2026-11-13T10:15:02Z"));
        assert_eq!(m.sent_at_ms, Some(1_794_564_902_000));
        assert_eq!(m.direction, Direction::In);
        assert_eq!(m.external_id, None);
        assert!(m.attachments.is_empty());
    }

    #[test]
    fn fixture_flat_legacy() {
        let m = only(json(FLAT_LEGACY));
        assert_eq!(m.contact_id, ANNA);
        assert_eq!(m.external_id.as_deref(), Some("m_AbC123"));
        assert_eq!(m.text.as_deref(), Some("Hi!"));
        assert_eq!(m.username.as_deref(), Some("anna.p"));
        assert_eq!(m.sent_at_ms, Some(1_763_028_902_000));
        assert_eq!(m.dedup_key().as_deref(), Some("x:m_AbC123"));
    }

    #[test]
    fn fixture_form_encoded() {
        let req = request(
            Some("application/x-www-form-urlencoded"),
            FORM_ENCODED,
            "secret=s",
        );
        let m = only(parse(&req).expect("form body"));
        assert_eq!(m.contact_id, ANNA);
        assert_eq!(m.text.as_deref(), Some("Привет"));
        assert_eq!(m.channel.as_deref(), Some("instagram"));
        assert_eq!(m.contact_name.as_deref(), Some("Anna"));
    }

    #[test]
    fn fixture_meta_instagram() {
        let m = only(json(META_INSTAGRAM));
        assert_eq!(m.contact_id, ANNA);
        assert_eq!(
            m.external_id.as_deref(),
            Some("aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx")
        );
        assert_eq!(m.sent_at_ms, Some(1_763_028_902_811));
        assert_eq!(m.text.as_deref(), Some("Hi from Meta"));
        assert_eq!(m.channel.as_deref(), Some("instagram"));
        assert_eq!(m.direction, Direction::In);
    }

    #[test]
    fn fixture_meta_echo_and_attachment() {
        let parsed = json(META_ECHO);
        assert_eq!(parsed.flag, None);
        let [image, echo] = parsed.messages.as_slice() else {
            panic!("expected 2 messages, got {:?}", parsed.messages);
        };
        assert_eq!(image.direction, Direction::In);
        assert_eq!(image.contact_id, ANNA);
        assert_eq!(image.text, None);
        assert_eq!(
            image.attachments,
            vec![Attachment {
                kind: "image".into(),
                url: "https://cdn.example.com/ig/asset-1.jpg".into()
            }]
        );
        assert_eq!(image.external_id.as_deref(), Some("aWdfZAG1fMTIz"));
        assert_eq!(image.sent_at_ms, Some(1_763_028_998_000));
        assert_eq!(echo.direction, Direction::Out);
        assert_eq!(echo.contact_id, ANNA);
        assert_eq!(echo.text.as_deref(), Some("Thanks!"));
        assert_eq!(echo.external_id.as_deref(), Some("aWdfZAG1fNDU2"));
    }

    #[test]
    fn fixture_unfilled_placeholders() {
        let parsed = json(UNFILLED);
        assert!(parsed.messages.is_empty());
        let flag = parsed.flag.expect("flagged");
        assert_eq!(flag, Flag::UnfilledPlaceholders(vec!["contact_id".into()]));
        assert_eq!(flag.code(), "unfilled_placeholders");
        assert_eq!(flag.describe(), "variables not filled in: contact_id");
    }

    #[test]
    fn fixture_chatrace_system_fields() {
        let m = only(json(SYSTEM_FIELDS));
        assert_eq!(m.contact_id, "5718243390127745");
        assert_eq!(m.contact_name.as_deref(), Some("Мария Иванова"));
        assert_eq!(m.username.as_deref(), Some("maria.iv"));
        assert_eq!(m.channel.as_deref(), Some("instagram"));
        assert_eq!(m.text.as_deref(), Some("Добрый день! Есть ли размер M?"));
        assert!(m.attachments.is_empty());
        assert_eq!((m.external_id.as_ref(), m.sent_at_ms), (None, None));
    }

    #[test]
    fn fixture_chatrace_media() {
        let m = only(json(MEDIA));
        assert_eq!(m.text, None);
        assert_eq!(
            m.attachments,
            vec![Attachment {
                kind: "image".into(),
                url: "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17986613249384712&signature=AbzXy2Qe".into()
            }]
        );
    }

    #[test]
    fn fixture_chatrace_empty_optional() {
        let m = only(json(EMPTY_OPTIONAL));
        assert_eq!(m.contact_id, "6011829374650021");
        assert_eq!(m.text.as_deref(), Some("+"));
        assert_eq!(m.contact_name.as_deref(), Some("Oleg"));
        assert_eq!((m.username.as_ref(), m.channel.as_ref()), (None, None));
    }

    #[test]
    fn every_media_type_becomes_an_attachment_and_words_stay_words() {
        for kind in ["image", "video", "audio", "file", "voice", "IMAGE"] {
            let body = format!(
                r#"{{"user_id":"1","text":"https://cdn.example/x","last_input_type":"{kind}"}}"#
            );
            let m = only(json(&body));
            assert_eq!(m.text, None, "{kind}");
            assert_eq!(m.attachments[0].kind, kind.to_ascii_lowercase());
        }
        // A type that says media over a text that is no URL keeps the text: nothing a
        // person wrote is dropped on a guess.
        let m = only(json(r#"{"user_id":"1","text":"hello","type":"image"}"#));
        assert_eq!(m.text.as_deref(), Some("hello"));
        assert!(m.attachments.is_empty());
        let m = only(json(
            r#"{"user_id":"1","text":"https://x.example/","type":"text"}"#,
        ));
        assert_eq!(m.text.as_deref(), Some("https://x.example/"));
    }

    #[test]
    fn nested_sender_and_message_objects_are_read() {
        let m = only(json(
            r#"{"from":{"id":42,"username":"anna.p","name":"Anna P","profile_pic":"https://cdn.example/a.jpg"},
                "message":{"text":"hi","id":"m-7"}}"#,
        ));
        assert_eq!(m.contact_id, "42");
        assert_eq!(m.username.as_deref(), Some("anna.p"));
        assert_eq!(m.contact_name.as_deref(), Some("Anna P"));
        assert_eq!(m.profile_pic.as_deref(), Some("https://cdn.example/a.jpg"));
        assert_eq!(m.text.as_deref(), Some("hi"));
        assert_eq!(m.external_id.as_deref(), Some("m-7"));
        let m = only(json(
            r#"{"user":{"id":"7","full_name":"Oleg K"},"text":"x","profile_pic":"javascript:alert(1)"}"#,
        ));
        assert_eq!(
            (m.contact_id.as_str(), m.contact_name.as_deref()),
            ("7", Some("Oleg K"))
        );
        assert_eq!(m.profile_pic, None, "only web URLs are kept as pictures");
    }

    #[test]
    fn json_sent_as_a_form_or_untyped_is_read_as_json() {
        for ct in [
            Some("application/x-www-form-urlencoded"),
            Some("text/plain"),
            None,
        ] {
            let m = only(parse(&request(ct, SYSTEM_FIELDS, "")).expect("readable"));
            assert_eq!(m.contact_id, "5718243390127745", "{ct:?}");
        }
        // Form text that merely starts with a brace is still a form.
        let m = only(
            parse(&request(
                Some("application/x-www-form-urlencoded"),
                "{x=1&contact_id=5&text=hi",
                "",
            ))
            .expect("form"),
        );
        assert_eq!(m.text.as_deref(), Some("hi"));
    }

    #[test]
    fn an_empty_body_declared_json_is_malformed() {
        for ct in ["application/json", "application/json; charset=utf-8"] {
            let reason = malformed(Some(ct), b"");
            assert!(reason.contains("empty"), "{reason}");
        }
        // With no declared type it is an ordinary request with nothing in it: kept, flagged.
        let parsed = parse(&request(None, "", "")).expect("kept");
        assert!(no_message_reason(&parsed).contains("empty body"));
    }

    #[test]
    fn fixtures_parse_the_same_every_time() {
        for body in [EXTERNAL_REQUEST, FLAT_LEGACY, META_INSTAGRAM, META_ECHO] {
            let (first, second) = (json(body), json(body));
            assert_eq!(first, second);
            for m in &first.messages {
                assert!(m.dedup_key().is_some());
            }
        }
    }

    #[test]
    fn query_only_request_without_body() {
        let req = request(None, "", "contact_id=1&text=hi&secret=s");
        let m = only(parse(&req).expect("query"));
        assert_eq!(
            (m.contact_id.as_str(), m.text.as_deref()),
            ("1", Some("hi"))
        );
        let blank = request(
            Some("application/json"),
            " \r\n ",
            "contact_id=1&text=hi+there",
        );
        let m = only(parse(&blank).expect("whitespace body"));
        assert_eq!(m.text.as_deref(), Some("hi there"));
    }

    #[test]
    fn secret_and_hub_parameters_are_never_fields() {
        let req = request(None, "", "secret=s&hub.mode=subscribe&hub.challenge=1");
        let parsed = parse(&req).expect("query");
        assert_eq!(
            no_message_reason(&parsed),
            "empty body and no query parameters"
        );
        let nothing = parse(&request(None, "", "")).expect("nothing");
        assert_eq!(
            no_message_reason(&nothing),
            "empty body and no query parameters"
        );
    }

    #[test]
    fn query_is_not_merged_into_a_body() {
        let req = request(Some("application/json"), r#"{"text":"hi"}"#, "contact_id=1");
        let parsed = parse(&req).expect("json");
        assert!(no_message_reason(&parsed).starts_with("no contact id field"));
    }

    #[test]
    fn content_type_is_sniffed_when_missing_or_generic() {
        for content_type in [None, Some("text/plain"), Some("application/octet-stream")] {
            let from_json = parse(&request(content_type, r#" {"user_id":"7","text":"a"}"#, ""));
            assert_eq!(only(from_json.expect("sniffed JSON")).contact_id, "7");
            let from_form = parse(&request(content_type, "user_id=8&text=b", ""));
            assert_eq!(only(from_form.expect("sniffed form")).contact_id, "8");
            let neither = parse(&request(content_type, "hello", "")).expect("kept");
            assert_eq!(
                no_message_reason(&neither),
                "body is neither JSON nor form-encoded"
            );
        }
        let vendor = request(
            Some("Application/vnd.chatrace+JSON; charset=utf-8"),
            r#"[{"user_id":"9","text":"c"}]"#,
            "",
        );
        assert_eq!(only(parse(&vendor).expect("+json")).contact_id, "9");
    }

    #[test]
    fn array_body_yields_one_message_per_object() {
        let parsed = json(
            r#"[{"contact_id":"1","text":"a"}, 5, "x", null, {"contact_id":"2","text":"b"}, {"x":1}]"#,
        );
        assert_eq!(parsed.flag, None);
        let contacts: Vec<&str> = parsed
            .messages
            .iter()
            .map(|m| m.contact_id.as_str())
            .collect();
        assert_eq!(contacts, ["1", "2"]);
        assert_eq!(
            no_message_reason(&json("[1, 2]")),
            "the JSON array holds no objects"
        );
        assert_eq!(
            no_message_reason(&json("[]")),
            "the JSON array holds no objects"
        );
    }

    #[test]
    fn data_wrapper_is_unwrapped_only_without_own_fields() {
        let m = only(json(
            r#"{"data":{"contact_id":"1","text":"a"},"event":"x"}"#,
        ));
        assert_eq!(m.contact_id, "1");
        let many =
            json(r#"{"data":[{"contact_id":"1","text":"a"},{"contact_id":"2","text":"b"}]}"#);
        assert_eq!(many.messages.len(), 2);
        let own = only(json(
            r#"{"contact_id":"3","text":"c","data":{"contact_id":"1"}}"#,
        ));
        assert_eq!(own.contact_id, "3");
        let scalar_data = json(r#"{"data":"x"}"#);
        assert!(no_message_reason(&scalar_data).starts_with("no contact id field"));
    }

    #[test]
    fn numeric_ids_keep_every_digit() {
        let m = only(json(
            r#"{"contact_id":17841400000000000123,"text":"a","message_id":9007199254740993}"#,
        ));
        assert_eq!(m.contact_id, "17841400000000000123");
        assert_eq!(m.external_id.as_deref(), Some("9007199254740993"));
    }

    #[test]
    fn timestamps_in_seconds_milliseconds_and_text() {
        let sent_at = |value: &str| {
            let body = format!(r#"{{"contact_id":"1","text":"a","timestamp":{value}}}"#);
            only(json(&body)).sent_at_ms
        };
        assert_eq!(sent_at("1763028902"), Some(1_763_028_902_000));
        assert_eq!(sent_at("1763028902811"), Some(1_763_028_902_811));
        assert_eq!(sent_at("\"1763028902\""), Some(1_763_028_902_000));
        assert_eq!(sent_at("\" 1763028902811 \""), Some(1_763_028_902_811));
        assert_eq!(sent_at("1763028902.811"), Some(1_763_028_902_811));
        assert_eq!(sent_at("99999999999"), Some(99_999_999_999_000));
        assert_eq!(sent_at("100000000000"), Some(100_000_000_000));
        assert_eq!(
            sent_at("\"2025-11-13T12:15:02+02:00\""),
            Some(1_763_028_902_000)
        );
        for garbage in [
            "-5",
            "1e300",
            "18446744073709551616",
            "\"NaN\"",
            "\"inf\"",
            "\"soon\"",
            "true",
            "{}",
        ] {
            assert_eq!(sent_at(garbage), None, "{garbage}");
        }
        let other_alias = json(r#"{"contact_id":"1","text":"a","created_at":"1763028902"}"#);
        assert_eq!(only(other_alias).sent_at_ms, Some(1_763_028_902_000));
    }

    #[test]
    fn id_equal_to_contact_id_is_not_an_external_id() {
        let same = only(json(r#"{"contact_id":"42","id":42,"text":"a"}"#));
        assert_eq!(same.external_id, None);
        let other = only(json(r#"{"contact_id":"42","id":"m1","text":"a"}"#));
        assert_eq!(other.external_id.as_deref(), Some("m1"));
        let preferred = only(json(
            r#"{"contact_id":"42","id":"m1","mid":"m2","text":"a"}"#,
        ));
        assert_eq!(preferred.external_id.as_deref(), Some("m2"));
    }

    #[test]
    fn aliases_follow_the_table_order_and_skip_empty_values() {
        let m = only(json(
            r#"{"contact_id":"  ","user_id":null,"userId":"5","text":"","message":{"text":" hi ","mid":"m9"},"sender":{"username":"@x"}}"#,
        ));
        assert_eq!(m.contact_id, "5");
        assert_eq!(m.text.as_deref(), Some("hi"));
        assert_eq!(m.external_id.as_deref(), Some("m9"));
        assert_eq!(m.username.as_deref(), Some("@x"));
        let nested = only(json(
            r#"{"from":{"id":77},"last_input":"yo","full_name":"A B"}"#,
        ));
        assert_eq!(nested.contact_id, "77");
        assert_eq!(nested.contact_name.as_deref(), Some("A B"));
        let dotted = parse(&request(None, "sender.id=3&message.text=ok", "")).expect("form");
        let m = only(dotted);
        assert_eq!(
            (m.contact_id.as_str(), m.text.as_deref()),
            ("3", Some("ok"))
        );
    }

    #[test]
    fn a_text_of_digits_sent_as_a_number_is_kept_exactly() {
        let m = only(json(r#"{"contact_id":"1","text":5,"message":["a"]}"#));
        assert_eq!(m.text.as_deref(), Some("5"));
        let m = only(json(
            r#"{"user_id":57182433901277451234,"text":12345678901234567890123.50}"#,
        ));
        assert_eq!(m.contact_id, "57182433901277451234");
        assert_eq!(m.text.as_deref(), Some("12345678901234567890123.50"));
        let parsed = json(r#"{"contact_id":"1","text":["a"],"message":{"x":1}}"#);
        assert!(no_message_reason(&parsed).starts_with("no text or attachment"));
    }

    /// Two 21-digit message ids that differ only in their last digit are two messages: f64
    /// would make them one and drop the second as its duplicate.
    #[test]
    fn big_numeric_ids_keep_every_digit() {
        let id = |n: &str| {
            only(json(&format!(
                r#"{{"contact_id":"1","text":"a","message_id":{n}}}"#
            )))
            .external_id
        };
        assert_eq!(
            id("123456789012345678901").as_deref(),
            Some("123456789012345678901")
        );
        assert_ne!(id("123456789012345678901"), id("123456789012345678902"));
    }

    #[test]
    fn channel_codes_and_names() {
        let channel = |value: &str| {
            let body = format!(r#"{{"contact_id":"1","text":"a","channel":{value}}}"#);
            only(json(&body)).channel
        };
        assert_eq!(channel("0").as_deref(), Some("messenger"));
        assert_eq!(channel("9").as_deref(), Some("webchat"));
        assert_eq!(channel("10").as_deref(), Some("instagram"));
        assert_eq!(channel("\"10\"").as_deref(), Some("instagram"));
        assert_eq!(channel("7").as_deref(), Some("7"));
        assert_eq!(channel("\" Instagram \"").as_deref(), Some("instagram"));
        assert_eq!(channel("\"\"").as_deref(), None);
    }

    #[test]
    fn name_parts() {
        let name = |fields: &str| {
            let body = format!(r#"{{"contact_id":"1","text":"a",{fields}}}"#);
            only(json(&body)).contact_name
        };
        assert_eq!(name(r#""last_name":"Petrova""#).as_deref(), Some("Petrova"));
        assert_eq!(
            name(r#""first_name":"Anna","name":"X""#).as_deref(),
            Some("Anna")
        );
        assert_eq!(name(r#""name":"Anna P""#).as_deref(), Some("Anna P"));
        assert_eq!(name(r#""first_name":"","last_name":" ""#), None);
    }

    #[test]
    fn flat_attachments() {
        let m = only(json(
            r#"{"contact_id":"1","attachments":[{"type":"video","url":"https://v"},{"payload":{"url":"https://p"}},{"type":"image"},"junk",{"url":"{{url}}"}],"image_url":"https://i","attachment_url":"https://v"}"#,
        ));
        let expected = [
            ("video", "https://v"),
            ("file", "https://p"),
            ("image", "https://i"),
        ];
        let got: Vec<(&str, &str)> = m
            .attachments
            .iter()
            .map(|a| (a.kind.as_str(), a.url.as_str()))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(m.text, None);
        let url_only = only(json(r#"{"contact_id":"1","url":"https://f"}"#));
        assert_eq!(url_only.attachments[0].kind, "file");
    }

    #[test]
    fn unfilled_side_fields_are_left_out_without_a_flag() {
        let parsed = json(
            r#"{"contact_id":"1","text":"Hello {{first_name}}","first_name":"{{first_name}}","username":"{{username}}","channel":" {{channel}} ","timestamp":"{{timestamp}}","type":"{{last_input_type}}"}"#,
        );
        assert_eq!(parsed.flag, None);
        let [m] = parsed.messages.as_slice() else {
            panic!("expected the message to be kept");
        };
        assert_eq!(m.text.as_deref(), Some("Hello {{first_name}}"));
        assert_eq!((m.contact_name.as_ref(), m.username.as_ref()), (None, None));
        assert_eq!((m.channel.as_ref(), m.sent_at_ms), (None, None));
    }

    #[test]
    fn unfilled_text_or_partial_contact_drops_the_message() {
        let text = json(r#"{"contact_id":"1","text":"{{last_input}}"}"#);
        assert!(text.messages.is_empty());
        assert_eq!(
            text.flag,
            Some(Flag::UnfilledPlaceholders(vec!["text".into()]))
        );
        let contact = json(r#"{"user_id":"id-{{user_id}}","text":"hi"}"#);
        assert!(contact.messages.is_empty());
        assert_eq!(
            contact.flag,
            Some(Flag::UnfilledPlaceholders(vec!["user_id".into()]))
        );
        let form = parse(&request(
            None,
            "contact_id=%7B%7Bcontact_id%7D%7D&text=hi",
            "",
        ))
        .expect("form");
        assert_eq!(
            form.flag,
            Some(Flag::UnfilledPlaceholders(vec!["contact_id".into()]))
        );
    }

    #[test]
    fn a_filled_alias_after_a_placeholder_is_used() {
        let parsed = json(r#"{"contact_id":"{{contact_id}}","user_id":"12","text":"hi"}"#);
        assert_eq!(parsed.messages.len(), 1);
        assert_eq!(parsed.messages[0].contact_id, "12");
        assert_eq!(
            parsed.flag,
            Some(Flag::UnfilledPlaceholders(vec!["contact_id".into()]))
        );
    }

    #[test]
    fn placeholder_flags_are_merged_across_an_array() {
        let parsed = json(
            r#"[{"contact_id":"{{contact_id}}","text":"a"},{"contact_id":"{{contact_id}}","text":"{{text}}"},{"contact_id":"2","text":"b"}]"#,
        );
        assert_eq!(parsed.messages.len(), 1);
        assert_eq!(
            parsed.flag,
            Some(Flag::UnfilledPlaceholders(vec![
                "contact_id".into(),
                "text".into()
            ]))
        );
    }

    #[test]
    fn no_message_reasons() {
        let no_contact = json(r#"{"event":"x","text":"hi"}"#);
        assert_eq!(
            no_message_reason(&no_contact),
            "no contact id field (looked for contact_id, user_id, userId, senderId, sender_id, ms_id, from.id, sender.id, user.id)"
        );
        let no_text = json(r#"{"contact_id":"1"}"#);
        assert!(no_message_reason(&no_text)
            .starts_with("no text or attachment (looked for text, message,"));
        assert_eq!(no_message_reason(&json("{}")), "empty JSON object");
        let flag = no_text.flag.expect("flag");
        assert_eq!(flag.code(), "no_message");
        assert!(flag
            .describe()
            .starts_with("no message found: no text or attachment"));
    }

    #[test]
    fn meta_without_message_events() {
        let parsed = json(
            r#"{"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"read":{"mid":"m"}},{"sender":{"id":"2"},"reaction":{"mid":"m","action":"react"}}]},{"id":"3","changes":[]}]}"#,
        );
        assert_eq!(
            no_message_reason(&parsed),
            "no message events (read/reaction/postback only)"
        );
        let broken = json(
            r#"{"object":"page","entry":[{"messaging":[{"recipient":{"id":"1"},"message":{"text":"x"}},{"sender":{"id":"1"},"message":{}}]}]}"#,
        );
        assert_eq!(
            no_message_reason(&broken),
            "a message event without sender.id"
        );
        let page = json(
            r#"{"object":"page","entry":[{"messaging":[{"sender":{"id":5},"message":{"text":"x"}}]}]}"#,
        );
        let m = only(page);
        assert_eq!(
            (m.channel.as_deref(), m.contact_id.as_str()),
            (Some("messenger"), "5")
        );
        assert_eq!((m.external_id, m.sent_at_ms), (None, None));
    }

    #[test]
    fn malformed_json_reasons() {
        assert_eq!(
            malformed(Some("application/json"), b"{\"a\": }"),
            "invalid JSON at line 1 column 7: expected value"
        );
        assert_eq!(
            malformed(Some("application/json"), b"contact_id=1"),
            "invalid JSON at line 1 column 1: expected value"
        );
        assert!(malformed(None, b"{\"a\":1} x").contains("trailing characters"));
        assert!(malformed(None, b"{\"text\":\"\xff\"}").starts_with("JSON body is not valid UTF-8"));
        for scalar in ["5", "\"text\"", "null", "true"] {
            assert_eq!(
                malformed(Some("application/json"), scalar.as_bytes()),
                "expected a JSON object or array"
            );
        }
    }

    #[test]
    fn hostile_bodies_do_not_panic() {
        let deep = "[".repeat(100_000);
        assert!(malformed(None, deep.as_bytes()).contains("recursion limit"));
        let deep_objects =
            "{\"data\":".repeat(120) + "{\"contact_id\":1,\"text\":\"t\"}" + &"}".repeat(120);
        assert_eq!(only(json(&deep_objects)).contact_id, "1");
        let big_text = "я".repeat(500_000);
        let big = format!(r#"{{"contact_id":"1","text":"{big_text}"}}"#);
        assert!(big.len() > 1_000_000);
        assert_eq!(only(json(&big)).text.map(|t| t.len()), Some(big_text.len()));
        let many = format!(
            "[{}]",
            vec![r#"{"contact_id":"1","text":"a"}"#; 30_000].join(",")
        );
        assert_eq!(json(&many).messages.len(), 30_000);
        let junk: Vec<u8> = (0..1_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        for content_type in [
            None,
            Some("application/json"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let req = Request {
                content_type,
                body: &junk,
                query: "%%%&&==%e2%82",
            };
            let _ = parse(&req);
        }
    }

    #[test]
    fn mutated_fixtures_do_not_panic() {
        let fixtures = [
            EXTERNAL_REQUEST,
            FLAT_LEGACY,
            FORM_ENCODED,
            META_INSTAGRAM,
            META_ECHO,
            UNFILLED,
        ];
        for fixture in fixtures {
            let bytes = fixture.as_bytes();
            for i in 0..bytes.len() {
                let mut mutated = bytes.to_vec();
                for replacement in [b'"', b'{', b'0', 0xff] {
                    mutated[i] = replacement;
                    for content_type in [None, Some("application/json")] {
                        let _ = parse(&Request {
                            content_type,
                            body: &mutated,
                            query: "",
                        });
                        let _ = parse(&Request {
                            content_type,
                            body: &bytes[..i],
                            query: "",
                        });
                    }
                }
            }
        }
    }

    #[test]
    fn duplicate_form_fields_keep_the_first() {
        let m =
            only(parse(&request(None, "contact_id=1&text=first&text=second", "")).expect("form"));
        assert_eq!(m.text.as_deref(), Some("first"));
    }

    #[test]
    fn dedup_keys() {
        let base = NewMessage {
            sent_at_ms: Some(1_763_028_902_000),
            channel: None,
            direction: Direction::In,
            contact_id: ANNA.into(),
            contact_name: None,
            username: None,
            profile_pic: None,
            text: Some("Hi!".into()),
            attachments: Vec::new(),
            external_id: None,
        };
        // FNV-1a 128 of "6742218934563412\01763028902000\0Hi!", computed independently.
        assert_eq!(
            base.dedup_key().as_deref(),
            Some("t:7af4c0301895628750e7a5b8e2e268f0")
        );
        let with_id = NewMessage {
            external_id: Some("m1".into()),
            ..base.clone()
        };
        assert_eq!(with_id.dedup_key().as_deref(), Some("x:m1"));
        let untimed = NewMessage {
            sent_at_ms: None,
            ..base.clone()
        };
        assert_eq!(untimed.dedup_key(), None);
        let other_text = NewMessage {
            text: Some("Hi!!".into()),
            ..base.clone()
        };
        assert_ne!(other_text.dedup_key(), base.dedup_key());
        // The separators keep "12"+"3" and "1"+"23" apart.
        let shifted = NewMessage {
            contact_id: format!("{ANNA}1"),
            sent_at_ms: Some(763_028_902_000),
            ..base.clone()
        };
        assert_ne!(shifted.dedup_key(), base.dedup_key());
    }

    #[test]
    fn directions() {
        for d in [Direction::In, Direction::Out] {
            assert_eq!(serde_json::to_value(d).ok(), Some(Value::from(d.as_str())));
        }
        let attachment = Attachment {
            kind: "image".into(),
            url: "u".into(),
        };
        assert_eq!(
            serde_json::to_string(&attachment).ok().as_deref(),
            Some(r#"{"type":"image","url":"u"}"#)
        );
    }
}
