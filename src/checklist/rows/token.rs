//! The Chatrace token row: is a token set, and what Chatrace last said about it.

use super::when_text;
use crate::chatrace::{self, TokenCheck};
use crate::checklist::facts::TokenFacts;
use crate::checklist::words::{account_text, token_shape_hint};
use crate::checklist::{token_advice, token_verdict};
use crate::checklist::{Action, Check, Fact, FactKind, Status};
use crate::i18n::Lang;

pub fn row(f: &TokenFacts, lang: Lang, now_ms: i64) -> Check {
    let check = &f.check;
    let status = match check {
        TokenCheck::Missing => Status::Todo,
        TokenCheck::Valid { .. } => Status::Ok,
        TokenCheck::Unreachable(_) | TokenCheck::UnexpectedAnswer(..) => Status::Warn,
        _ => Status::Fail,
    };
    let mut facts = vec![Fact::new(
        lang.t("token_chatrace_api"),
        f.api_url.clone(),
        FactKind::Code,
    )];
    if *check != TokenCheck::Missing {
        facts.push(Fact::new(
            lang.t("token_result"),
            token_verdict(check, lang),
            FactKind::Text,
        ));
    }
    if let TokenCheck::Valid { account } = check {
        if let Some(named) = account_text(account, lang) {
            facts.push(Fact::new(lang.t("token_account"), named, FactKind::Text));
        }
    }
    if let Some(problem) = &f.shape {
        // A hint only: white-label installs issue tokens of other shapes.
        facts.push(Fact::new(
            lang.t("token_token_shape"),
            format!(
                "{} {}",
                lang.t("token_unlike_usual_digits_letters"),
                token_shape_hint(problem, lang)
            ),
            FactKind::Text,
        ));
    }
    if let Some(at) = f.checked_at_ms {
        facts.push(Fact::new(
            lang.t("token_checked"),
            when_text(at, now_ms, lang),
            FactKind::Text,
        ));
    }
    if let Some(account) = &f.account {
        facts.push(Fact::new(
            &format!(
                "{} {account} {}",
                lang.t("token_account_settings_if"),
                lang.t("token_your_account_id")
            ),
            chatrace::settings_link(account),
            FactKind::Link,
        ));
    }
    let actions = if *check == TokenCheck::Missing {
        Vec::new()
    } else {
        vec![Action::RecheckToken]
    };
    Check {
        key: "chatrace_token",
        status,
        title: match status {
            Status::Ok => lang.t("token_chatrace_token_works"),
            Status::Todo => lang.t("token_add_chatrace_api_token"),
            _ => lang.t("token_chatrace_token_not_accepted"),
        }
        .into(),
        detail: if status == Status::Ok {
            token_verdict(check, lang)
        } else {
            token_advice(check, lang).to_string()
        },
        facts,
        actions,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::chatrace::TokenProblem;
    use crate::outbound::Failure;

    /// A token Chatrace was asked about five minutes ago.
    fn checked(check: TokenCheck) -> TokenFacts {
        TokenFacts { check, ..token() }
    }

    /// A token the relay did not send anywhere.
    fn unasked(check: TokenCheck, account: Option<&str>) -> TokenFacts {
        TokenFacts {
            check,
            checked_at_ms: None,
            account: account.map(str::to_string),
            ..token()
        }
    }

    #[test]
    fn without_a_token_the_row_says_where_to_put_one() {
        let facts = unasked(TokenCheck::Missing, None);
        let en = row(&facts, Lang::En, NOW);
        assert_eq!(en.status, Status::Todo);
        assert_eq!(en.title, "Add a Chatrace API token");
        assert!(en.detail.contains("CHATRACE_TOKEN"), "{}", en.detail);
        assert_eq!(
            shown(&en, "Chatrace API", FactKind::Code),
            "https://api.chatrace.com"
        );
        assert_eq!(en.facts.len(), 1, "no verdict, time or link: {en:#?}");
        assert!(en.actions.is_empty(), "nothing to check again");
        let ru = row(&facts, Lang::Ru, NOW);
        assert_eq!(ru.title, "Добавьте токен API Chatrace");
        assert!(ru.detail.contains("CHATRACE_TOKEN"));
    }

    #[test]
    fn an_accepted_token_is_ok_with_its_verdict_time_and_account_link() {
        let en = row(&token(), Lang::En, NOW);
        assert_eq!(en.status, Status::Ok);
        assert_eq!(en.title, "Chatrace token works");
        assert_eq!(
            en.detail,
            "Chatrace accepted the token: account «Cozy Shop» (page id 1049)."
        );
        assert_eq!(
            shown(&en, "Account", FactKind::Text),
            "«Cozy Shop» (page id 1049)"
        );
        assert!(!has_fact(&en, "Token shape"), "a usual token needs no hint");
        assert_eq!(shown(&en, "Result", FactKind::Text), en.detail);
        assert!(shown(&en, "Checked", FactKind::Text).ends_with("(5 min ago)"));
        let link = fact(&en, "Account settings");
        assert_eq!(
            link.label,
            "Account settings (if 1234567 is your account id)"
        );
        assert_eq!(link.value, "https://chatrace.com/en/settings?acc=1234567");
        assert_eq!(link.kind, FactKind::Link);
        assert_eq!(en.actions, [Action::RecheckToken]);

        let ru = row(&token(), Lang::Ru, NOW);
        assert_eq!(ru.title, "Токен Chatrace работает");
        assert!(ru
            .detail
            .contains("Chatrace принял токен: аккаунт «Cozy Shop» (id страницы 1049)"));
        assert_eq!(
            fact(&ru, "Настройки аккаунта").label,
            "Настройки аккаунта (если 1234567 — номер вашего аккаунта)"
        );
        assert!(shown(&ru, "Проверено", FactKind::Text).ends_with("(5 мин назад)"));

        let no_account = TokenFacts {
            account: None,
            ..token()
        };
        assert!(!has_fact(
            &row(&no_account, Lang::En, NOW),
            "Account settings"
        ));
    }

    #[test]
    fn a_token_chatrace_refuses_fails_with_advice() {
        let cases = [
            (
                checked(TokenCheck::Rejected {
                    status: 401,
                    message: "No valid API key provided".into(),
                }),
                "rejected the token: HTTP 401: \"No valid API key provided\"",
                "X-ACCESS-TOKEN",
                "X-ACCESS-TOKEN",
            ),
            (
                checked(TokenCheck::ErrorInBody {
                    code: "403".into(),
                    message: "plan expired".into(),
                }),
                "but with an error: [403] plan expired",
                "read its message above",
                "прочтите его сообщение выше",
            ),
        ];
        for (facts, verdict, advice_en, advice_ru) in cases {
            let en = row(&facts, Lang::En, NOW);
            assert_eq!(en.status, Status::Fail, "{:?}", facts.check);
            assert_eq!(en.title, "Chatrace token is not accepted");
            assert!(shown(&en, "Result", FactKind::Text).contains(verdict));
            assert!(en.detail.contains(advice_en), "{}", en.detail);
            assert_eq!(en.actions, [Action::RecheckToken]);
            assert_eq!(has_fact(&en, "Checked"), facts.checked_at_ms.is_some());
            let ru = row(&facts, Lang::Ru, NOW);
            assert_eq!(ru.title, "Токен Chatrace не принят");
            assert!(ru.detail.contains(advice_ru), "{}", ru.detail);
        }
    }

    /// White-label tokens look different: the shape is shown beside Chatrace's answer, and
    /// the answer decides.
    #[test]
    fn a_token_of_another_shape_is_asked_about_and_its_shape_is_only_a_hint() {
        let accepted = TokenFacts {
            shape: Some(TokenProblem::NoDot),
            account: None,
            ..token()
        };
        let en = row(&accepted, Lang::En, NOW);
        assert_eq!(en.status, Status::Ok);
        assert!(shown(&en, "Token shape", FactKind::Text).contains("there is no dot"));
        let rejected = TokenFacts {
            shape: Some(TokenProblem::BearerPrefix),
            ..checked(TokenCheck::Rejected {
                status: 401,
                message: "No valid API key provided".into(),
            })
        };
        let ru = row(&rejected, Lang::Ru, NOW);
        assert_eq!(ru.status, Status::Fail);
        assert!(shown(&ru, "Вид токена", FactKind::Text).contains("Bearer"));
        assert!(ru.detail.contains("X-ACCESS-TOKEN"));
        assert!(ru.detail.contains("Authorization: Bearer"));
    }

    #[test]
    fn when_chatrace_cannot_be_asked_the_token_is_only_a_warning() {
        let cases = [
            (
                TokenCheck::Unreachable(Failure::Timeout),
                "could not be reached: timed out",
                "outgoing HTTPS",
                "исходящий HTTPS",
            ),
            (
                TokenCheck::UnexpectedAnswer(502, "<html>Bad gateway".into()),
                "unexpected answer: HTTP 502: <html>Bad gateway",
                "Something other than the Chatrace API answered",
                "Ответил не API Chatrace",
            ),
        ];
        for (check, verdict, advice_en, advice_ru) in cases {
            let facts = checked(check);
            let en = row(&facts, Lang::En, NOW);
            assert_eq!(en.status, Status::Warn, "{:?}", facts.check);
            assert!(shown(&en, "Result", FactKind::Text).contains(verdict));
            assert!(en.detail.contains(advice_en), "{}", en.detail);
            assert!(en.detail.contains("CHATRACE_API_URL"));
            assert_eq!(en.actions, [Action::RecheckToken]);
            assert!(row(&facts, Lang::Ru, NOW).detail.contains(advice_ru));
        }
    }
}
