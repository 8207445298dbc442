//! The checklist's words that other parts also show: verdicts on a Chatrace token and
//! failures to reach a URL, in the reader's language.

use crate::chatrace::{Account, TokenCheck, TokenProblem};
use crate::i18n::Lang;
use crate::outbound::Failure;

/// One line saying what a token check found.
pub fn token_verdict(check: &TokenCheck, lang: Lang) -> String {
    match check {
        TokenCheck::Missing => lang.t("words_no_chatrace_api_token").into(),
        TokenCheck::Valid { account } => match account_text(account, lang) {
            Some(named) => format!(
                "{} {named}.",
                lang.t("words_chatrace_accepted_token_account")
            ),
            None => lang.t("words_chatrace_accepted_token").into(),
        },
        TokenCheck::Rejected { status, message } => format!(
            "{} HTTP {status}: \"{message}\".",
            lang.t("words_chatrace_rejected_token")
        ),
        TokenCheck::ErrorInBody { code, message } => format!(
            "{} {}{message}",
            lang.t("words_chatrace_answered_http_200"),
            if code.is_empty() {
                String::new()
            } else {
                format!("[{code}] ")
            }
        ),
        TokenCheck::Unreachable(failure) => format!(
            "{} {}",
            lang.t("words_chatrace_api_could_not"),
            describe_failure(failure, lang)
        ),
        TokenCheck::UnexpectedAnswer(status, excerpt) => format!(
            "{} HTTP {status}: {excerpt}",
            lang.t("words_chatrace_api_gave_unexpected")
        ),
    }
}

/// "“Cozy Shop” (page id 1049)", or as much of it as Chatrace named.
pub fn account_text(account: &Account, lang: Lang) -> Option<String> {
    let page = account
        .page_id
        .as_ref()
        .map(|id| format!("{} {id}", lang.t("words_page_id")));
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
        TokenCheck::Missing => lang.t("words_put_api_token_from"),
        TokenCheck::Valid { .. } => lang.t("words_nothing_do"),
        TokenCheck::Rejected { .. } => lang.t("words_chatrace_reads_only_x"),
        TokenCheck::ErrorInBody { .. } => lang.t("words_chatrace_knows_request_but"),
        TokenCheck::Unreachable(_) => lang.t("words_check_server_can_reach"),
        TokenCheck::UnexpectedAnswer(..) => lang.t("words_something_other_than_chatrace"),
    }
}

/// Why a token does not look like Chatrace's, as a hint beside Chatrace's answer.
pub fn token_shape_hint(problem: &TokenProblem, lang: Lang) -> String {
    match problem {
        TokenProblem::BearerPrefix => lang.t("words_starts_with_bearer_give").into(),
        TokenProblem::NoDot => lang.t("words_there_no_dot_token").into(),
        TokenProblem::AccountNotDigits => lang.t("words_part_before_dot_not").into(),
        TokenProblem::KeyCharacter(c) => format!("{} {c:?}.", lang.t("words_part_after_dot_holds")),
        TokenProblem::KeyLength(n) => format!("{} {n}.", lang.t("words_part_after_dot_has")),
    }
}

/// A failure to reach a URL, in the reader's language.
pub fn describe_failure(failure: &Failure, lang: Lang) -> String {
    match failure {
        Failure::Dns(e) => format!("{} ({e})", lang.t("words_host_name_not_found")),
        Failure::Refused(e) => format!("{} ({e})", lang.t("words_connection_refused")),
        Failure::Tls(e) => format!("{} ({e})", lang.t("words_tls_failed")),
        Failure::Timeout => lang.t("words_timed_out").into(),
        Failure::Other(e) => format!("{} ({e})", lang.t("words_request_failed")),
    }
}
