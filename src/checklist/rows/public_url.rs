//! The public address row: is --public-url set, does it reach this very relay, and can
//! Chatrace use it at all.

use std::net::SocketAddr;

use crate::checklist::describe_failure;
use crate::checklist::facts::PublicUrlFacts;
use crate::checklist::{Check, Fact, FactKind, Status};
use crate::i18n::Lang;
use crate::outbound::Failure;
use crate::probe::{ProbeOutcome, UrlConcern};

pub fn row(f: &PublicUrlFacts, lang: Lang) -> Check {
    let Some(url) = &f.url else {
        return Check {
            key: "public_url",
            status: Status::Todo,
            title: lang.t("public_url_set_public_address").into(),
            detail: lang
                .t("public_url_chatrace_calls_relay_from")
                .replace("PORT", &f.addr.port().to_string())
                .replace("ПОРТ", &f.addr.port().to_string()),
            facts: Vec::new(),
            actions: Vec::new(),
        };
    };
    let concerns = crate::probe::url_concerns(url);
    let mut facts = vec![Fact::new("URL", url.clone(), FactKind::Code)];
    let mut sentences = Vec::new();
    let status = match &f.probe {
        None => {
            sentences.push(lang.t("public_url_relay_runs_with_one").to_string());
            Status::Warn
        }
        Some(outcome) => {
            facts.push(Fact::new(
                lang.t("public_url_self_check"),
                probe_text(outcome, lang),
                FactKind::Text,
            ));
            if *outcome == ProbeOutcome::Ours {
                Status::Ok
            } else {
                sentences.push(probe_fix(outcome, f.addr, lang));
                Status::Fail
            }
        }
    };
    sentences.extend(concerns.iter().map(|c| concern_text(*c, f.addr, lang)));
    let status = if concerns.is_empty() {
        status
    } else {
        status.max(Status::Warn)
    };
    if status == Status::Fail {
        sentences.push(lang.t("public_url_check_runs_from_server").to_string());
    }
    if sentences.is_empty() {
        sentences.push(lang.t("public_url_relay_reached_itself_at").to_string());
    }
    Check {
        key: "public_url",
        status,
        title: match status {
            Status::Ok => lang.t("public_url_public_address_works"),
            _ => lang.t("public_url_public_address_needs_attention"),
        }
        .into(),
        detail: sentences.join(" "),
        facts,
        actions: Vec::new(),
    }
}

fn probe_text(outcome: &ProbeOutcome, lang: Lang) -> String {
    match outcome {
        ProbeOutcome::Ours => lang.t("public_url_relay_answered_recognised_own").into(),
        ProbeOutcome::OtherRelay => lang.t("public_url_another_chatrace_relay_answered").into(),
        ProbeOutcome::Foreign { status, excerpt } => format!(
            "{} HTTP {status}: {excerpt}",
            lang.t("public_url_answered_by_something_else")
        ),
        ProbeOutcome::Unreachable(failure) => describe_failure(failure, lang),
    }
}

fn probe_fix(outcome: &ProbeOutcome, addr: SocketAddr, lang: Lang) -> String {
    let text = match outcome {
        ProbeOutcome::Ours => "",
        ProbeOutcome::OtherRelay => lang.t("public_url_address_leads_different_chatrace"),
        ProbeOutcome::Foreign { .. } => lang.t("public_url_something_else_answers_at"),
        ProbeOutcome::Unreachable(Failure::Dns(_)) => lang.t("public_url_host_name_does_not"),
        ProbeOutcome::Unreachable(Failure::Refused(_)) => {
            lang.t("public_url_nothing_accepts_connections_there")
        }
        ProbeOutcome::Unreachable(Failure::Tls(_)) => lang.t("public_url_https_does_not_work"),
        ProbeOutcome::Unreachable(Failure::Timeout) => lang.t("public_url_no_answer_time_firewall"),
        ProbeOutcome::Unreachable(Failure::Other(_)) => {
            lang.t("public_url_request_failed_check_address")
        }
    };
    text.replace("ADDR", &addr.to_string())
}

fn concern_text(concern: UrlConcern, addr: SocketAddr, lang: Lang) -> String {
    match concern {
        UrlConcern::NotHttps => lang
            .t("public_url_chatrace_needs_https_address")
            .to_string(),
        UrlConcern::PrivateHost => lang
            .t("public_url_address_not_reachable_from")
            .replace("PORT", &addr.port().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    const SERVER_SIDE_NOTE: &str = "This check runs from the server itself";

    fn with(url: &str, probe: Option<ProbeOutcome>) -> PublicUrlFacts {
        PublicUrlFacts {
            url: Some(url.into()),
            probe,
            ..public_url()
        }
    }

    #[test]
    fn without_a_public_url_the_row_says_how_to_get_one() {
        let facts = PublicUrlFacts {
            url: None,
            probe: None,
            ..public_url()
        };
        let en = row(&facts, Lang::En);
        assert_eq!(en.status, Status::Todo);
        assert_eq!(en.title, "Set the public address");
        assert!(en.detail.contains("--public-url https://your.domain"));
        assert!(en.detail.contains("`ngrok http 3000`"), "{}", en.detail);
        assert!(en.facts.is_empty() && en.actions.is_empty());
        let ru = row(&facts, Lang::Ru);
        assert_eq!(ru.title, "Задайте публичный адрес");
        assert!(ru.detail.contains("`ngrok http 3000`"), "{}", ru.detail);
    }

    #[test]
    fn an_https_address_that_reaches_this_relay_is_ok() {
        let en = row(&public_url(), Lang::En);
        assert_eq!(en.status, Status::Ok);
        assert_eq!(en.title, "Public address works");
        assert_eq!(shown(&en, "URL", FactKind::Code), "https://relay.example");
        assert!(shown(&en, "Self-check", FactKind::Text).contains("this relay answered"));
        assert_eq!(
            en.detail,
            "The relay reached itself at this address: Chatrace can too."
        );
        let ru = row(&public_url(), Lang::Ru);
        assert_eq!(ru.title, "Публичный адрес работает");
        assert!(shown(&ru, "Самопроверка", FactKind::Text).contains("ответил этот relay"));
    }

    #[test]
    fn every_probe_failure_fails_with_its_own_fix() {
        let cases = [
            (
                ProbeOutcome::OtherRelay,
                "another chatrace-relay answered, not this process",
                "different chatrace-relay",
                "другой chatrace-relay",
            ),
            (
                ProbeOutcome::Foreign {
                    status: 404,
                    excerpt: "Not Found".into(),
                },
                "answered by something else: HTTP 404: Not Found",
                "does not pass /instagram/webhook",
                "не передаёт /instagram/webhook",
            ),
            (
                ProbeOutcome::Unreachable(Failure::Dns("no such host".into())),
                "host name not found (no such host)",
                "create a DNS record",
                "запись A или AAAA",
            ),
            (
                ProbeOutcome::Unreachable(Failure::Refused("port 443".into())),
                "connection refused (port 443)",
                "on ports 443 and 80",
                "на портах 443 и 80",
            ),
            (
                ProbeOutcome::Unreachable(Failure::Tls("expired".into())),
                "TLS failed (expired)",
                "the certificate is missing, expired",
                "сертификата нет",
            ),
            (
                ProbeOutcome::Unreachable(Failure::Timeout),
                "timed out",
                "a firewall probably drops the traffic",
                "файрвол отбрасывает",
            ),
            (
                ProbeOutcome::Unreachable(Failure::Other("reset".into())),
                "request failed (reset)",
                "check the address and the reverse proxy",
                "проверьте адрес и обратный прокси",
            ),
        ];
        for (outcome, seen, fix_en, fix_ru) in cases {
            let facts = with("https://relay.example", Some(outcome.clone()));
            let en = row(&facts, Lang::En);
            assert_eq!(en.status, Status::Fail, "{outcome:?}");
            assert_eq!(en.title, "Public address needs attention");
            assert_eq!(shown(&en, "Self-check", FactKind::Text), seen);
            assert!(en.detail.contains(fix_en), "{outcome:?}: {}", en.detail);
            assert!(en.detail.contains(SERVER_SIDE_NOTE), "{}", en.detail);
            assert!(!en.detail.contains("ADDR"), "{}", en.detail);
            let ru = row(&facts, Lang::Ru);
            assert_eq!(ru.title, "Публичный адрес требует внимания");
            assert!(ru.detail.contains(fix_ru), "{outcome:?}: {}", ru.detail);
            assert!(ru.detail.contains("Проверка идёт с самого сервера"));
        }
        let fix = row(
            &with("https://relay.example", Some(ProbeOutcome::OtherRelay)),
            Lang::En,
        )
        .detail;
        assert!(fix.contains("listening on 127.0.0.1:3000"), "{fix}");
    }

    #[test]
    fn with_one_worker_the_address_cannot_be_checked() {
        let facts = with("https://relay.example", None);
        let en = row(&facts, Lang::En);
        assert_eq!(en.status, Status::Warn);
        assert!(en.detail.contains("--workers 2"), "{}", en.detail);
        assert!(!en.detail.contains(SERVER_SIDE_NOTE));
        assert!(!has_fact(&en, "Self-check"));
        assert!(row(&facts, Lang::Ru).detail.contains("одним обработчиком"));
    }

    #[test]
    fn an_address_chatrace_cannot_use_is_a_warning_even_when_it_answers() {
        let plain = row(
            &with("http://relay.example", Some(ProbeOutcome::Ours)),
            Lang::En,
        );
        assert_eq!(plain.status, Status::Warn);
        assert_eq!(plain.title, "Public address needs attention");
        assert!(plain.detail.contains("Chatrace needs an https:// address"));
        assert!(!plain.detail.contains("reached itself"));

        let private = with("https://localhost:8443", Some(ProbeOutcome::Ours));
        let en = row(&private, Lang::En);
        assert_eq!(en.status, Status::Warn);
        assert!(en.detail.contains("not reachable from the internet"));
        assert!(en.detail.contains("`ngrok http 3000`"), "{}", en.detail);
        let ru = row(&private, Lang::Ru);
        assert!(
            ru.detail.contains("недоступен из интернета"),
            "{}",
            ru.detail
        );

        let failing = with(
            "http://relay.example",
            Some(ProbeOutcome::Unreachable(Failure::Timeout)),
        );
        assert_eq!(
            row(&failing, Lang::En).status,
            Status::Fail,
            "a concern does not soften a failure"
        );
    }
}
