//! The Chatrace API as the relay uses it: checking an access token with `GET /accounts/tags`
//! and explaining the verdict. The token itself is never logged nor stored by this module.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::i18n::Lang;
use crate::outbound::{self, Failure};

/// Keys of the account part and the secret part are checked loosely on length: Chatrace
/// does not document them, only the `<digits>.<letters and digits>` shape is known.
const MIN_KEY_CHARS: usize = 16;
const MAX_KEY_CHARS: usize = 128;
/// How much of an unexpected answer is kept to show.
const EXCERPT_CHARS: usize = 200;

/// What a token check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenCheck {
    Missing,
    Malformed(TokenProblem),
    /// Chatrace accepted the token; how many tags the account has.
    Valid {
        tags: usize,
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

/// Why a token cannot be right, found without asking Chatrace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenProblem {
    /// Pasted with `Bearer ` in front, as for other APIs.
    BearerPrefix,
    NoDot,
    AccountNotDigits,
    KeyCharacter(char),
    KeyLength(usize),
}

/// Checks a token against `{api_url}/accounts/tags` the only way Chatrace reads it.
pub fn check_token(api_url: &str, token: Option<&str>, timeout: Duration) -> TokenCheck {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return TokenCheck::Missing;
    };
    if let Err(problem) = check_shape(token) {
        return TokenCheck::Malformed(problem);
    }
    let url = format!("{}/accounts/tags", api_url.trim_end_matches('/'));
    let headers = [("X-ACCESS-TOKEN", token), ("Accept", "application/json")];
    match outbound::get(&url, &headers, timeout) {
        Ok(reply) => judge(reply.status, &reply.body),
        Err(failure) => TokenCheck::Unreachable(failure),
    }
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
/// is dropped when either changes without keeping the token itself. 64-bit FNV-1a: the token
/// has far more entropy than the tag, so the tag cannot be turned back into it.
pub fn fingerprint(api_url: &str, token: &str) -> String {
    let hash = api_url
        .bytes()
        .chain(std::iter::once(b'\n'))
        .chain(token.trim().bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{hash:016x}")
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
                .unwrap_or_else(|| excerpt(body)),
        },
        _ => TokenCheck::UnexpectedAnswer(status, excerpt(body)),
    }
}

/// Chatrace reports some failures as HTTP 200, so the body decides.
fn judge_ok_body(value: &Value, body: &str) -> TokenCheck {
    if let Some(tags) = value.as_array().or_else(|| value["data"].as_array()) {
        return TokenCheck::Valid { tags: tags.len() };
    }
    if !value["error"].is_null() || value["success"] == Value::Bool(false) {
        let code = match &value["error"]["code"] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return TokenCheck::ErrorInBody {
            code,
            message: error_message(value).unwrap_or_else(|| excerpt(body)),
        };
    }
    TokenCheck::UnexpectedAnswer(200, excerpt(body))
}

/// The human part of an error body: `{"error":"..."}`, `{"error":{"message":".."}}` or
/// `{"message":".."}`.
fn error_message(value: &Value) -> Option<String> {
    let error = &value["error"];
    error
        .as_str()
        .or_else(|| error["message"].as_str())
        .or_else(|| value["message"].as_str())
        .map(|s| crate::payload::excerpt(s.as_bytes(), EXCERPT_CHARS))
}

fn excerpt(body: &str) -> String {
    crate::payload::excerpt(body.as_bytes(), EXCERPT_CHARS)
}

impl TokenCheck {
    pub fn is_valid(&self) -> bool {
        matches!(self, TokenCheck::Valid { .. })
    }

    /// One line saying what was found.
    pub fn verdict(&self, lang: Lang) -> String {
        match self {
            TokenCheck::Missing => lang
                .pick(
                    "No Chatrace API token is set.",
                    "Токен API Chatrace не задан.",
                )
                .into(),
            TokenCheck::Malformed(problem) => format!(
                "{} {}",
                lang.pick(
                    "The token does not look like a Chatrace token:",
                    "Токен не похож на токен Chatrace:"
                ),
                problem.describe(lang)
            ),
            TokenCheck::Valid { tags } => format!(
                "{} ({tags} {}).",
                lang.pick("Chatrace accepted the token", "Chatrace принял токен"),
                lang.pick("tags in the account", "тегов в аккаунте")
            ),
            TokenCheck::Rejected { status, message } => format!(
                "{} HTTP {status}: \"{message}\".",
                lang.pick("Chatrace rejected the token:", "Chatrace отклонил токен:")
            ),
            TokenCheck::ErrorInBody { code, message } => format!(
                "{} {}{message}",
                lang.pick(
                    "Chatrace answered HTTP 200 but with an error:",
                    "Chatrace ответил HTTP 200, но с ошибкой:"
                ),
                if code.is_empty() {
                    String::new()
                } else {
                    format!("[{code}] ")
                }
            ),
            TokenCheck::Unreachable(failure) => format!(
                "{} {}",
                lang.pick(
                    "The Chatrace API could not be reached:",
                    "Не удалось связаться с API Chatrace:"
                ),
                crate::setup::describe_failure(failure, lang)
            ),
            TokenCheck::UnexpectedAnswer(status, excerpt) => format!(
                "{} HTTP {status}: {excerpt}",
                lang.pick(
                    "The Chatrace API gave an unexpected answer:",
                    "API Chatrace ответил неожиданно:"
                )
            ),
        }
    }

    /// What to do about it.
    pub fn advice(&self, lang: Lang) -> &'static str {
        match self {
            TokenCheck::Missing => lang.pick(
                "Put the API token from your Chatrace account settings in the environment variable CHATRACE_TOKEN (or the systemd credential chatrace_token) and restart the relay. Webhooks are received without it; it is needed only to call the Chatrace API.",
                "Положите токен API из настроек аккаунта Chatrace в переменную окружения CHATRACE_TOKEN (или в systemd credential chatrace_token) и перезапустите relay. Вебхуки принимаются и без него; он нужен только для обращений к API Chatrace.",
            ),
            TokenCheck::Malformed(_) => lang.pick(
                "Copy the whole token again from the Chatrace settings: digits, a dot, then letters and digits, without quotes, spaces or \"Bearer\".",
                "Скопируйте токен целиком ещё раз из настроек Chatrace: цифры, точка, затем буквы и цифры, без кавычек, пробелов и слова «Bearer».",
            ),
            TokenCheck::Valid { .. } => lang.pick(
                "Nothing to do.",
                "Ничего делать не нужно.",
            ),
            TokenCheck::Rejected { .. } => lang.pick(
                "Chatrace reads only the X-ACCESS-TOKEN header with the whole token (digits, dot and the rest); Authorization: Bearer, X-API-Key, api-key or ?token= are ignored and always give 401 \"No valid API key provided\". The relay sends X-ACCESS-TOKEN, so this token is wrong or revoked: copy it again from the Chatrace settings.",
                "Chatrace читает только заголовок X-ACCESS-TOKEN с токеном целиком (цифры, точка и остальное); Authorization: Bearer, X-API-Key, api-key и ?token= игнорируются и всегда дают 401 «No valid API key provided». Relay отправляет X-ACCESS-TOKEN, значит этот токен неверный или отозван: скопируйте его заново из настроек Chatrace.",
            ),
            TokenCheck::ErrorInBody { .. } => lang.pick(
                "Chatrace knows the request but refused it; read its message above. If it is about the plan or permissions, check the account in Chatrace.",
                "Chatrace понял запрос, но отказал; прочтите его сообщение выше. Если речь о тарифе или правах, проверьте аккаунт в Chatrace.",
            ),
            TokenCheck::Unreachable(_) => lang.pick(
                "Check that this server can reach the Chatrace API (DNS, firewall, outgoing HTTPS) and that CHATRACE_API_URL is right, then check again.",
                "Проверьте, что сервер может достучаться до API Chatrace (DNS, файрвол, исходящий HTTPS) и что CHATRACE_API_URL указан верно, затем проверьте снова.",
            ),
            TokenCheck::UnexpectedAnswer(..) => lang.pick(
                "Something other than the Chatrace API answered: check CHATRACE_API_URL (default https://api.chatrace.com; white-label installs have their own host).",
                "Ответил не API Chatrace: проверьте CHATRACE_API_URL (по умолчанию https://api.chatrace.com; у white-label установок свой адрес).",
            ),
        }
    }
}

impl TokenProblem {
    pub fn describe(&self, lang: Lang) -> String {
        match self {
            TokenProblem::BearerPrefix => lang
                .pick(
                    "it starts with \"Bearer \"; give the token alone.",
                    "он начинается с «Bearer »; укажите только сам токен.",
                )
                .into(),
            TokenProblem::NoDot => lang
                .pick(
                    "there is no dot; a token is <digits>.<letters and digits>.",
                    "в нём нет точки; токен выглядит как <цифры>.<буквы и цифры>.",
                )
                .into(),
            TokenProblem::AccountNotDigits => lang
                .pick(
                    "the part before the dot is not all digits.",
                    "часть до точки состоит не только из цифр.",
                )
                .into(),
            TokenProblem::KeyCharacter(c) => format!(
                "{} {c:?}.",
                lang.pick(
                    "the part after the dot holds a character other than letters and digits:",
                    "в части после точки есть символ, кроме букв и цифр:"
                )
            ),
            TokenProblem::KeyLength(n) => format!(
                "{} {n}.",
                lang.pick(
                    "the part after the dot has an unlikely length:",
                    "у части после точки странная длина:"
                )
            ),
        }
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
            judge(200, r#"[{"id":1,"name":"a"},{"id":2,"name":"b"}]"#),
            TokenCheck::Valid { tags: 2 }
        );
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
}
