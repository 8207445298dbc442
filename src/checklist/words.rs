//! The checklist's words that other parts also show: verdicts on a Chatrace token and
//! failures to reach a URL, in the reader's language.

use crate::chatrace::{Account, TokenCheck, TokenProblem};
use crate::i18n::Lang;
use crate::outbound::Failure;

/// One line saying what a token check found.
pub fn token_verdict(check: &TokenCheck, lang: Lang) -> String {
    match check {
        TokenCheck::Missing => lang
            .pick(
                "No Chatrace API token is set.",
                "Токен API Chatrace не задан.",
            )
            .into(),
        TokenCheck::Valid { account } => match account_text(account, lang) {
            Some(named) => format!(
                "{} {named}.",
                lang.pick(
                    "Chatrace accepted the token: account",
                    "Chatrace принял токен: аккаунт"
                )
            ),
            None => lang
                .pick("Chatrace accepted the token.", "Chatrace принял токен.")
                .into(),
        },
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
            describe_failure(failure, lang)
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

/// "“Cozy Shop” (page id 1049)", or as much of it as Chatrace named.
pub fn account_text(account: &Account, lang: Lang) -> Option<String> {
    let page = account
        .page_id
        .as_ref()
        .map(|id| format!("{} {id}", lang.pick("page id", "id страницы")));
    match (&account.name, page) {
        (Some(name), Some(page)) => Some(format!("«{name}» ({page})")),
        (Some(name), None) => Some(format!("«{name}»")),
        (None, Some(page)) => Some(page),
        (None, None) => None,
    }
}

/// What to do about a token check's verdict.
pub fn token_advice(check: &TokenCheck, lang: Lang) -> &'static str {
    match check {
            TokenCheck::Missing => lang.pick(
                "Put the API token from your Chatrace account settings in the environment variable CHATRACE_TOKEN (or the systemd credential chatrace_token) and restart the relay. Webhooks are received without it; it is needed only to call the Chatrace API.",
                "Положите токен API из настроек аккаунта Chatrace в переменную окружения CHATRACE_TOKEN (или в systemd credential chatrace_token) и перезапустите relay. Вебхуки принимаются и без него; он нужен только для обращений к API Chatrace.",
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

/// Why a token does not look like Chatrace's, as a hint beside Chatrace's answer.
pub fn token_shape_hint(problem: &TokenProblem, lang: Lang) -> String {
    match problem {
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

/// A failure to reach a URL, in the reader's language.
pub fn describe_failure(failure: &Failure, lang: Lang) -> String {
    match failure {
        Failure::Dns(e) => format!(
            "{} ({e})",
            lang.pick("host name not found", "имя хоста не найдено")
        ),
        Failure::Refused(e) => format!(
            "{} ({e})",
            lang.pick("connection refused", "в соединении отказано")
        ),
        Failure::Tls(e) => format!("{} ({e})", lang.pick("TLS failed", "ошибка TLS")),
        Failure::Timeout => lang.pick("timed out", "время ожидания истекло").into(),
        Failure::Other(e) => format!("{} ({e})", lang.pick("request failed", "запрос не удался")),
    }
}
