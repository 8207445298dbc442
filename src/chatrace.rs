//! The Chatrace API: every call the relay makes (checking an access token, sending a text)
//! and the one parser of Chatrace's error answers. No prose: the checklist words the
//! verdicts. The token itself is never logged nor stored by this module.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contact::{channel_name, ContactInfo, INSTAGRAM};
use crate::outbound::{self, Failure};

/// Keys of the account part and the secret part are checked loosely on length: Chatrace
/// does not document them, only the `<digits>.<letters and digits>` shape is known.
const MIN_KEY_CHARS: usize = 16;
const MAX_KEY_CHARS: usize = 128;
/// How much of an unexpected answer is kept to show.
const EXCERPT_CHARS: usize = 200;
/// Characters of a refused send's error kept: verbatim, but bounded.
const MAX_ERROR_CHARS: usize = 500;

/// What a token check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenCheck {
    Missing,
    /// Chatrace accepted the token; the account it belongs to.
    Valid {
        account: Account,
    },
    /// 401/403, with Chatrace's own words.
    Rejected {
        status: u16,
        message: String,
    },
    /// HTTP 200 whose body says it failed (`{"error":..}` or `"success":false`).
    ErrorInBody {
        code: String,
        message: String,
    },
    Unreachable(Failure),
    UnexpectedAnswer(u16, String),
}

/// The account a token belongs to, as `GET /accounts/me` names it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Account {
    pub name: Option<String>,
    pub page_id: Option<String>,
}

/// Why a token does not look like the ones Chatrace issues: a hint shown beside Chatrace's
/// answer, never a reason not to ask (white-label tokens look different).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenProblem {
    /// Pasted with `Bearer ` in front, as for other APIs.
    BearerPrefix,
    NoDot,
    AccountNotDigits,
    KeyCharacter(char),
    KeyLength(usize),
}

/// Checks a token with `GET {api_url}/accounts/me`, the cheapest call, which also names the
/// account; the token goes whole in `X-ACCESS-TOKEN`, the only header Chatrace reads.
pub fn check_token(api_url: &str, token: Option<&str>, timeout: Duration) -> TokenCheck {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return TokenCheck::Missing;
    };
    let url = format!("{}/accounts/me", api_url.trim_end_matches('/'));
    let headers = [("X-ACCESS-TOKEN", token), ("Accept", "application/json")];
    match outbound::get(&url, &headers, timeout) {
        Ok(reply) => judge(reply.status, &reply.body),
        Err(failure) => TokenCheck::Unreachable(failure),
    }
}

/// Why a contact lookup found nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupFailure {
    /// 404: Chatrace has no such contact (a test contact, or another platform's id).
    NotFound,
    /// Any other answer that is not the contact: Chatrace's own words.
    Refused {
        status: u16,
        message: String,
    },
    Unreachable(Failure),
}

impl std::fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupFailure::NotFound => write!(f, "no such contact in Chatrace (404)"),
            LookupFailure::Refused { status, message } => write!(f, "HTTP {status}: {message}"),
            LookupFailure::Unreachable(failure) => write!(f, "{failure}"),
        }
    }
}

/// `GET /contacts/{contact_id}`. The caller checks that the id is safe in a URL path.
pub fn contact(
    api_url: &str,
    token: &str,
    contact_id: &str,
    timeout: Duration,
) -> Result<ContactInfo, LookupFailure> {
    let url = format!("{}/contacts/{contact_id}", api_url.trim_end_matches('/'));
    let headers = [("X-ACCESS-TOKEN", token), ("Accept", "application/json")];
    let answer = outbound::get(&url, &headers, timeout).map_err(LookupFailure::Unreachable)?;
    read_contact(answer.status, &answer.body)
}

fn read_contact(status: u16, body: &str) -> Result<ContactInfo, LookupFailure> {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let refused = |message: Option<String>| LookupFailure::Refused {
        status,
        message: message.unwrap_or_else(|| excerpt(body)),
    };
    if status == 404 {
        return Err(LookupFailure::NotFound);
    }
    let Some(value) = json.filter(|v| v.is_object()) else {
        return Err(refused(None));
    };
    if status != 200 || says_failed(&value) {
        return Err(refused(error_message(&value).map(|m| excerpt(&m))));
    }
    // Some answers wrap the record in `data`.
    let record = value
        .get("data")
        .filter(|d| d.is_object())
        .unwrap_or(&value);
    let text = |key: &str| {
        record
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let parts: Vec<String> = ["first_name", "last_name"]
        .into_iter()
        .filter_map(text)
        .collect();
    let name = if parts.is_empty() {
        text("name").or_else(|| text("full_name"))
    } else {
        Some(parts.join(" "))
    };
    let channel = record.get("channel").and_then(|c| match c {
        Value::Number(n) => Some(channel_name(&n.to_string())),
        Value::String(s) if !s.trim().is_empty() => Some(channel_name(s.trim())),
        _ => None,
    });
    Ok(ContactInfo {
        name,
        profile_pic: text("profile_pic").filter(|u| u.starts_with("https://")),
        channel,
    })
}

/// Chatrace answers a send in well under a second; a person clicking "send" should not
/// wait longer than this.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a send did not go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// An HTTP error, or a 2xx whose body says `error` or `"success":false`, or is not the
    /// JSON object a send answers with; `message` is Chatrace's own words.
    Refused {
        status: u16,
        message: String,
    },
    Unreachable(Failure),
}

/// `POST /contacts/{contact_id}/send/text` on Instagram. The caller checks that the id is
/// safe in a URL path.
pub fn send_text(
    api_url: &str,
    token: &str,
    contact_id: &str,
    text: &str,
) -> Result<(), SendFailure> {
    let url = format!(
        "{}/contacts/{contact_id}/send/text",
        api_url.trim_end_matches('/')
    );
    let body = serde_json::json!({ "text": text, "channel": INSTAGRAM }).to_string();
    let headers = [
        ("X-ACCESS-TOKEN", token),
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
    ];
    let answer = outbound::post(&url, &headers, body.as_bytes(), SEND_TIMEOUT)
        .map_err(SendFailure::Unreachable)?;
    match refusal(answer.status, &answer.body) {
        Some(message) => Err(SendFailure::Refused {
            status: answer.status,
            message,
        }),
        None => Ok(()),
    }
}

/// Chatrace's complaint, when its answer to a send is one.
fn refusal(status: u16, body: &str) -> Option<String> {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let ok_shape = json
        .as_ref()
        .is_some_and(|v| v.is_object() && !says_failed(v));
    if (200..300).contains(&status) && ok_shape {
        return None;
    }
    let message = json.as_ref().and_then(error_message).unwrap_or_else(|| {
        let text = body.trim();
        if text.is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            text.to_string()
        }
    });
    Some(message.chars().take(MAX_ERROR_CHARS).collect())
}

/// `<digits>.<letters and digits>`: strict on the shape, lenient on the length.
pub fn check_shape(token: &str) -> Result<(), TokenProblem> {
    let token = token.trim();
    if token
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
    {
        return Err(TokenProblem::BearerPrefix);
    }
    let (account, key) = token.split_once('.').ok_or(TokenProblem::NoDot)?;
    if account.is_empty() || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenProblem::AccountNotDigits);
    }
    if let Some(c) = key.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(TokenProblem::KeyCharacter(c));
    }
    if !(MIN_KEY_CHARS..=MAX_KEY_CHARS).contains(&key.len()) {
        return Err(TokenProblem::KeyLength(key.len()));
    }
    Ok(())
}

/// The digits before the dot, often (not always) the account id.
pub fn account_digits(token: &str) -> Option<&str> {
    let (digits, _) = token.trim().split_once('.')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

pub fn settings_link(account: &str) -> String {
    format!("https://chatrace.com/en/settings?acc={account}")
}

/// A stable, one-way tag of a token (and the API it was checked against), so a cached verdict
/// is dropped when either changes without keeping the token itself. 128-bit FNV-1a: the token
/// has far more entropy than the tag, so the tag cannot be turned back into it.
pub fn fingerprint(api_url: &str, token: &str) -> String {
    let hash = crate::hash::fnv1a_128([api_url.as_bytes(), b"\n", token.trim().as_bytes()]);
    format!("{hash:032x}")
}

fn judge(status: u16, body: &str) -> TokenCheck {
    let json: Option<Value> = serde_json::from_str(body).ok();
    match status {
        200 => match json {
            Some(value) => judge_ok_body(&value, body),
            None => TokenCheck::UnexpectedAnswer(status, excerpt(body)),
        },
        401 | 403 => TokenCheck::Rejected {
            status,
            message: json
                .as_ref()
                .and_then(error_message)
                .map_or_else(|| excerpt(body), |m| excerpt(&m)),
        },
        _ => TokenCheck::UnexpectedAnswer(status, excerpt(body)),
    }
}

/// Chatrace reports some failures as HTTP 200, so the body decides.
fn judge_ok_body(value: &Value, body: &str) -> TokenCheck {
    if says_failed(value) {
        let code = match &value["error"]["code"] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return TokenCheck::ErrorInBody {
            code,
            message: error_message(value).map_or_else(|| excerpt(body), |m| excerpt(&m)),
        };
    }
    // Some answers wrap the record in `data`.
    let record = value.get("data").filter(|d| d.is_object()).unwrap_or(value);
    if !record.is_object() {
        return TokenCheck::UnexpectedAnswer(200, excerpt(body));
    }
    let field = |key: &str| match record.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(excerpt(s.trim())),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    TokenCheck::Valid {
        account: Account {
            name: field("name"),
            page_id: field("page_id"),
        },
    }
}

/// The message inside Chatrace's error shapes: `{"error":{"message":..}}`, `{"error":".."}`,
/// `{"success":false,"message":..}`; an error object without a message is given whole.
/// The one parser for every Chatrace answer.
pub fn error_message(value: &Value) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    match value.get("error") {
        Some(Value::Object(e)) => e
            .get("message")
            .and_then(text)
            .or_else(|| Some(Value::Object(e.clone()).to_string())),
        Some(Value::Null) | None => value.get("message").and_then(text),
        Some(e) => text(e),
    }
}

/// Whether a 200 answer's body says the call failed after all (Chatrace reports some
/// failures that way).
pub fn says_failed(value: &Value) -> bool {
    !value["error"].is_null() || value["success"] == Value::Bool(false)
}

fn excerpt(body: &str) -> String {
    crate::text::excerpt(body.as_bytes(), EXCERPT_CHARS)
}

impl TokenCheck {
    pub fn is_valid(&self) -> bool {
        matches!(self, TokenCheck::Valid { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "1234567.abcdefghijABCDEFGHIJ0123456789abcd";

    #[test]
    fn shape_is_strict_but_length_lenient() {
        assert_eq!(check_shape(GOOD), Ok(()));
        assert_eq!(check_shape(&format!("  {GOOD}\n")), Ok(()));
        assert_eq!(check_shape("1.abcdefghij0123456789"), Ok(()));
        assert_eq!(
            check_shape(&format!("Bearer {GOOD}")),
            Err(TokenProblem::BearerPrefix)
        );
        assert_eq!(check_shape("abcdef"), Err(TokenProblem::NoDot));
        assert_eq!(
            check_shape("12a.abcdefghij0123456789"),
            Err(TokenProblem::AccountNotDigits)
        );
        assert_eq!(
            check_shape("12.abcdefghij01234567\"89"),
            Err(TokenProblem::KeyCharacter('"'))
        );
        assert_eq!(check_shape("12.abc"), Err(TokenProblem::KeyLength(3)));
    }

    #[test]
    fn answers_are_judged_by_status_and_body() {
        assert_eq!(
            judge(
                200,
                r#"{"page_id":104912345678901234,"name":"Cozy Shop","active":1,"total_users":52}"#
            ),
            TokenCheck::Valid {
                account: Account {
                    name: Some("Cozy Shop".into()),
                    page_id: Some("104912345678901234".into()),
                }
            }
        );
        assert!(matches!(
            judge(200, r#"[{"id":1,"name":"a"}]"#),
            TokenCheck::UnexpectedAnswer(200, _)
        ));
        assert_eq!(
            judge(401, r#"{"error":"No valid API key provided"}"#),
            TokenCheck::Rejected {
                status: 401,
                message: "No valid API key provided".into()
            }
        );
        assert_eq!(
            judge(200, r#"{"error":{"code":42,"message":"Plan expired"}}"#),
            TokenCheck::ErrorInBody {
                code: "42".into(),
                message: "Plan expired".into()
            }
        );
        assert!(matches!(
            judge(200, r#"{"success":false,"message":"nope"}"#),
            TokenCheck::ErrorInBody { .. }
        ));
        assert!(matches!(
            judge(200, "<html>"),
            TokenCheck::UnexpectedAnswer(200, _)
        ));
        assert!(matches!(
            judge(404, "not here"),
            TokenCheck::UnexpectedAnswer(404, _)
        ));
    }

    #[test]
    fn contact_records_give_name_picture_and_channel() {
        let info = read_contact(
            200,
            r#"{"id":"1","first_name":"Мария","last_name":"Иванова","channel":10,
                "profile_pic":"https://cdn.example/p.jpg"}"#,
        )
        .unwrap();
        assert_eq!(info.name.as_deref(), Some("Мария Иванова"));
        assert_eq!(info.channel.as_deref(), Some("instagram"));
        assert_eq!(
            info.profile_pic.as_deref(),
            Some("https://cdn.example/p.jpg")
        );
        let info = read_contact(200, r#"{"data":{"name":"Oleg","channel":"0"}}"#).unwrap();
        assert_eq!(
            (info.name.as_deref(), info.channel.as_deref()),
            (Some("Oleg"), Some("messenger"))
        );
        assert_eq!(read_contact(404, "{}"), Err(LookupFailure::NotFound));
        assert_eq!(
            read_contact(200, r#"{"error":{"code":5,"message":"Plan expired"}}"#),
            Err(LookupFailure::Refused {
                status: 200,
                message: "Plan expired".into()
            })
        );
        assert!(matches!(
            read_contact(502, "<html>"),
            Err(LookupFailure::Refused { status: 502, .. })
        ));
    }

    #[test]
    fn fingerprint_hides_the_token_and_follows_changes() {
        let a = fingerprint("https://api.chatrace.com", GOOD);
        assert!(!a.contains("1234567"));
        assert_eq!(
            a,
            fingerprint("https://api.chatrace.com", &format!(" {GOOD} "))
        );
        assert_ne!(a, fingerprint("https://other.example", GOOD));
        assert_eq!(account_digits(GOOD), Some("1234567"));
    }

    #[test]
    fn chatrace_errors_are_found_in_every_shape() {
        assert_eq!(refusal(200, r#"{"success":true}"#), None);
        assert_eq!(
            refusal(
                200,
                r#"{"error":{"code":100,"message":"(#551) This person isn't available right now."}}"#
            )
            .as_deref(),
            Some("(#551) This person isn't available right now.")
        );
        assert_eq!(
            refusal(200, r#"{"success":false,"message":"Contact not found"}"#).as_deref(),
            Some("Contact not found")
        );
        assert_eq!(
            refusal(200, r#"{"error":"Outside of 24h window"}"#).as_deref(),
            Some("Outside of 24h window")
        );
        assert_eq!(
            refusal(401, "No valid API key provided").as_deref(),
            Some("No valid API key provided")
        );
        assert_eq!(
            refusal(200, "<html>proxy</html>").as_deref(),
            Some("<html>proxy</html>")
        );
        assert_eq!(
            refusal(500, "").as_deref(),
            Some("HTTP 500 with an empty body")
        );
    }
}
