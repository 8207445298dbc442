//! What became of a request that delivered no message, as values: the refusals (turned
//! away) and the flags (kept, but no message read). Each variant owns, in exhaustive
//! matches, its stored code, its answer and counter, whether it is a sign of a caller set up
//! wrong, and its catalogue keys, so every layer reads the same facts from one place.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A request turned away before it was stored. Several variants share a stored code: the
/// code names the fault a user has to fix, the variant also how it was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `X-Webhook-Secret` header and no `?secret=`.
    MissingSecret,
    /// A secret that is not the webhook secret.
    BadSecret,
    /// Meta's verification handshake with a verify token that is not the webhook secret.
    BadVerifyToken,
    /// A POST to a path the relay does not serve.
    WrongPath,
    /// A POST to a path the relay serves with other methods.
    WrongMethod,
    /// `WrongPath` without the webhook secret or a body like Chatrace's: an internet
    /// scanner (`POST /wp-login.php`), counted but no sign of a setup to fix.
    StrayPath,
    /// `WrongMethod` from a stranger, likewise.
    StrayMethod,
    /// A body no message can be read from at all; the parser's complaint is the detail.
    Malformed,
    /// A body over `--max-body`.
    TooLarge,
    /// A request line and headers over the server's limit.
    HeadTooLarge,
    /// A body shorter than its declared length: the connection ended first.
    Incomplete,
    /// A body that did not arrive within the client timeout.
    Overdue,
    /// A body whose end a proxy in front and the server could see in different places.
    BadFraming,
}

impl Refusal {
    /// Every variant, for the checks that must cover them all.
    pub const ALL: [Refusal; 13] = [
        Refusal::MissingSecret,
        Refusal::BadSecret,
        Refusal::BadVerifyToken,
        Refusal::WrongPath,
        Refusal::WrongMethod,
        Refusal::StrayPath,
        Refusal::StrayMethod,
        Refusal::Malformed,
        Refusal::TooLarge,
        Refusal::HeadTooLarge,
        Refusal::Incomplete,
        Refusal::Overdue,
        Refusal::BadFraming,
    ];

    /// The code stored with the rejection, logged, and the `reason` label of the metric.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::MissingSecret => "missing_secret",
            Refusal::BadSecret | Refusal::BadVerifyToken => "bad_secret",
            Refusal::WrongPath | Refusal::WrongMethod => "wrong_path",
            Refusal::StrayPath | Refusal::StrayMethod => "stray_path",
            Refusal::Malformed => "malformed",
            Refusal::TooLarge | Refusal::HeadTooLarge => "too_large",
            Refusal::Incomplete | Refusal::Overdue => "incomplete",
            Refusal::BadFraming => "bad_framing",
        }
    }

    /// The HTTP status the request is answered with.
    pub fn status(self) -> u16 {
        match self {
            Refusal::MissingSecret | Refusal::BadSecret => 401,
            Refusal::BadVerifyToken => 403,
            Refusal::WrongPath | Refusal::StrayPath => 404,
            Refusal::WrongMethod | Refusal::StrayMethod => 405,
            Refusal::Malformed | Refusal::Incomplete | Refusal::BadFraming => 400,
            Refusal::TooLarge => 413,
            Refusal::HeadTooLarge => 431,
            Refusal::Overdue => 408,
        }
    }

    /// The counter the store adds one to: one per stored code, so it follows the code.
    pub fn counter(self) -> String {
        format!("rejected:{}", self.code())
    }

    /// Whether it means "Chatrace (or someone) is calling, but the External Request is set
    /// up wrong": what the checklist's webhook row warns about. Size and connection faults
    /// are the network's or a client's, not the setup's.
    pub fn misconfigured(self) -> bool {
        match self {
            Refusal::MissingSecret
            | Refusal::BadSecret
            | Refusal::BadVerifyToken
            | Refusal::WrongPath
            | Refusal::WrongMethod
            | Refusal::Malformed => true,
            Refusal::StrayPath
            | Refusal::StrayMethod
            | Refusal::TooLarge
            | Refusal::HeadTooLarge
            | Refusal::Incomplete
            | Refusal::Overdue
            | Refusal::BadFraming => false,
        }
    }

    /// The catalogue keys of its name and of what to do about it.
    pub fn words(self) -> (&'static str, &'static str) {
        match self {
            Refusal::MissingSecret => ("reason_missing_secret", "hint_missing_secret"),
            Refusal::BadSecret | Refusal::BadVerifyToken => {
                ("reason_bad_secret", "hint_bad_secret")
            }
            Refusal::WrongPath | Refusal::WrongMethod => ("reason_wrong_path", "hint_wrong_path"),
            Refusal::StrayPath | Refusal::StrayMethod => ("reason_stray_path", "hint_stray_path"),
            Refusal::Malformed => ("reason_malformed", "hint_malformed"),
            Refusal::TooLarge | Refusal::HeadTooLarge => ("reason_too_large", "hint_too_large"),
            Refusal::Incomplete | Refusal::Overdue => ("reason_incomplete", "hint_incomplete"),
            Refusal::BadFraming => ("reason_bad_framing", "hint_bad_framing"),
        }
    }

    /// Whether the stored detail says more than the words: the parser's complaint does;
    /// elsewhere the hint says it in the reader's language.
    pub fn detail_adds(self) -> bool {
        match self {
            Refusal::Malformed => true,
            Refusal::MissingSecret
            | Refusal::BadSecret
            | Refusal::BadVerifyToken
            | Refusal::WrongPath
            | Refusal::WrongMethod
            | Refusal::StrayPath
            | Refusal::StrayMethod
            | Refusal::TooLarge
            | Refusal::HeadTooLarge
            | Refusal::Incomplete
            | Refusal::Overdue
            | Refusal::BadFraming => false,
        }
    }

    /// A wrong path or method from someone who is not Chatrace: no secret (or a wrong
    /// one) and no body like Chatrace's.
    pub fn by_a_stranger(self) -> Refusal {
        match self {
            Refusal::WrongPath => Refusal::StrayPath,
            Refusal::WrongMethod => Refusal::StrayMethod,
            other => other,
        }
    }

    /// The stored codes that mean a misconfigured caller, quoted for an SQL `IN (...)`.
    pub fn misconfigured_codes_sql() -> String {
        let mut codes: Vec<&str> = Refusal::ALL
            .into_iter()
            .filter(|r| r.misconfigured())
            .map(Refusal::code)
            .collect();
        codes.dedup();
        codes
            .iter()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A stored code this version does not know (written by another version or by hand): kept
/// as it is, and shown as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCode(pub String);

/// A stored code read back: the first variant with that code.
impl FromStr for Refusal {
    type Err = UnknownCode;

    fn from_str(code: &str) -> Result<Refusal, UnknownCode> {
        Refusal::ALL
            .into_iter()
            .find(|r| r.code() == code)
            .ok_or_else(|| UnknownCode(code.to_string()))
    }
}

/// Why a request that was kept produced no message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flag {
    /// Template variables were not filled in; the names of the fields that held them.
    UnfilledPlaceholders(Vec<String>),
    /// A well-formed body holding no message we can read; says what was missing.
    NoMessage(String),
}

/// A flag's detail as stored next to its code: the fields, or the parser's words.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredDetail {
    Fields(Vec<String>),
    Reason(String),
}

/// How versions before the structured detail wrote it, in prose.
const OLD_UNFILLED_PREFIX: &str = "variables not filled in: ";
const OLD_NO_MESSAGE_PREFIX: &str = "no message found: ";

impl Flag {
    /// The code stored with the request and sent as the webhook answer's `warning`.
    pub fn code(&self) -> &'static str {
        match self {
            Flag::UnfilledPlaceholders(_) => "unfilled_placeholders",
            Flag::NoMessage(_) => "no_message",
        }
    }

    /// The webhook answer's `detail`, in English for the caller's developer.
    pub fn describe(&self) -> String {
        match self {
            Flag::UnfilledPlaceholders(fields) => {
                format!("{OLD_UNFILLED_PREFIX}{}", fields.join(", "))
            }
            Flag::NoMessage(reason) => format!("{OLD_NO_MESSAGE_PREFIX}{reason}"),
        }
    }

    /// The catalogue key of its name.
    pub fn label_key(&self) -> &'static str {
        match self {
            Flag::UnfilledPlaceholders(_) => "flag_unfilled_placeholders",
            Flag::NoMessage(_) => "flag_no_message",
        }
    }

    /// The detail stored next to the code: structured, so nothing is parsed back from prose.
    pub fn stored_detail(&self) -> String {
        let detail = match self {
            Flag::UnfilledPlaceholders(fields) => StoredDetail::Fields(fields.clone()),
            Flag::NoMessage(reason) => StoredDetail::Reason(reason.clone()),
        };
        serde_json::to_string(&detail).unwrap_or_default()
    }

    /// A stored code and detail read back. Rows of older versions hold the detail as prose;
    /// they are read by its fixed prefix.
    pub fn from_stored(code: &str, detail: &str) -> Result<Flag, UnknownCode> {
        let structured = serde_json::from_str::<StoredDetail>(detail).ok();
        match (code, structured) {
            ("unfilled_placeholders", Some(StoredDetail::Fields(fields))) => {
                Ok(Flag::UnfilledPlaceholders(fields))
            }
            ("unfilled_placeholders", _) => {
                let list = detail.strip_prefix(OLD_UNFILLED_PREFIX).unwrap_or(detail);
                Ok(Flag::UnfilledPlaceholders(
                    list.split(", ")
                        .filter(|f| !f.is_empty())
                        .map(str::to_string)
                        .collect(),
                ))
            }
            ("no_message", Some(StoredDetail::Reason(reason))) => Ok(Flag::NoMessage(reason)),
            ("no_message", _) => Ok(Flag::NoMessage(
                detail
                    .strip_prefix(OLD_NO_MESSAGE_PREFIX)
                    .unwrap_or(detail)
                    .to_string(),
            )),
            (other, _) => Err(UnknownCode(other.to_string())),
        }
    }
}

/// A sign that a caller is set up wrong: a refusal that says so, or a kept request flagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    Refused(Refusal),
    Flagged(Flag),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_reads_back_as_one_with_the_same_facts() {
        for refusal in Refusal::ALL {
            let back: Refusal = refusal.code().parse().unwrap();
            assert_eq!(back.code(), refusal.code());
            assert_eq!(back.counter(), refusal.counter());
            assert_eq!(back.counter(), format!("rejected:{}", refusal.code()));
            assert_eq!(back.misconfigured(), refusal.misconfigured(), "{refusal:?}");
            assert_eq!(back.words(), refusal.words());
            assert_eq!(back.detail_adds(), refusal.detail_adds());
        }
        assert_eq!(
            "mystery".parse::<Refusal>(),
            Err(UnknownCode("mystery".into()))
        );
        assert_eq!(
            Refusal::misconfigured_codes_sql(),
            "'missing_secret', 'bad_secret', 'wrong_path', 'malformed'"
        );
    }

    #[test]
    fn flags_read_back_from_structured_and_from_old_rows() {
        for flag in [
            Flag::UnfilledPlaceholders(vec!["contact_id".into(), "text".into()]),
            Flag::NoMessage("no contact id: a, b".into()),
        ] {
            assert_eq!(
                Flag::from_stored(flag.code(), &flag.stored_detail()),
                Ok(flag.clone())
            );
            // Older versions stored the description.
            assert_eq!(Flag::from_stored(flag.code(), &flag.describe()), Ok(flag));
        }
        assert_eq!(
            Flag::from_stored("no_message", ""),
            Ok(Flag::NoMessage(String::new()))
        );
        assert_eq!(
            Flag::from_stored("weird", ""),
            Err(UnknownCode("weird".into()))
        );
    }
}
