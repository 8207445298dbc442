//! The webhook row: the values to paste into Chatrace's External Request, and what the
//! requests that arrived say about how they were pasted.

use super::when_text;
use crate::checklist::facts::WebhookFacts;
use crate::checklist::{Action, Check, Fact, FactKind, Status, EXCERPT_CHARS};
use crate::i18n::Lang;
use crate::outcome::{Flag, Refusal, Trouble, UnknownCode};
use crate::store::{Problem, ProblemBody};

pub fn row(f: &WebhookFacts, lang: Lang, now_ms: i64) -> Check {
    let mut facts = paste_values(f, lang);
    if let Some(arrival) = &f.last_arrival {
        facts.push(Fact::new(
            lang.t("webhook_last_request"),
            format!(
                "{}, {} {}",
                when_text(arrival.received_at_ms, now_ms, lang),
                lang.t("webhook_from"),
                arrival.remote_addr.as_deref().unwrap_or("?")
            ),
            FactKind::Text,
        ));
    }
    for problem in &f.problems {
        facts.extend(problem_facts(problem, now_ms, lang));
    }
    let (status, title, detail) = match (f.problems.first(), &f.last_arrival) {
        (Some(latest), _) => (
            Status::Warn,
            lang.t("webhook_requests_arrive_but_something"),
            problem_advice(latest, lang),
        ),
        (None, Some(_)) => (
            Status::Ok,
            lang.t("webhook_chatrace_reaches_relay"),
            lang.t("webhook_requests_with_right_secret").to_string(),
        ),
        (None, None) => (
            Status::Todo,
            lang.t("webhook_add_external_request_chatrace"),
            lang.t("webhook_chatrace_flow_runs_every").to_string(),
        ),
    };
    Check {
        key: "webhook_configured",
        status,
        title: title.into(),
        detail,
        facts,
        // A stray request (an old flow, someone guessing) may be followed by no good one
        // for a while: the user can say it is understood instead of living with amber.
        actions: if f.problems.is_empty() {
            Vec::new()
        } else {
            vec![Action::DismissProblems]
        },
    }
}

/// The values to paste into Chatrace's External Request.
fn paste_values(f: &WebhookFacts, lang: Lang) -> Vec<Fact> {
    let mut facts = Vec::new();
    match &f.public_url {
        Some(url) => facts.push(Fact::new("URL", url.clone(), FactKind::Code)),
        None => {
            facts.push(Fact::new("URL", f.local_url.clone(), FactKind::Code));
            facts.push(Fact::new(
                lang.t("webhook_note"),
                lang.t("webhook_local_address_chatrace_cannot"),
                FactKind::Text,
            ));
        }
    }
    facts.extend([
        Fact::new(lang.t("webhook_method"), "POST", FactKind::Code),
        Fact::new(
            lang.t("webhook_header_name"),
            "X-Webhook-Secret",
            FactKind::Code,
        ),
        Fact::new(
            lang.t("webhook_header_value"),
            f.secret.clone(),
            FactKind::Secret,
        ),
        Fact::new("Content-Type", "application/json", FactKind::Code),
        Fact::new(lang.t("webhook_body"), body_template(), FactKind::Code),
    ]);
    facts
}

/// The JSON body for Chatrace, pasted as it is: every value is one of Chatrace's own system
/// fields, and every key one the relay reads. There is no message id or message time among
/// Chatrace's fields. The README shows the same body (a test keeps them equal).
fn body_template() -> String {
    [
        "{",
        r#"  "user_id": "{{user_id}}","#,
        r#"  "first_name": "{{first_name}}","#,
        r#"  "last_name": "{{last_name}}","#,
        r#"  "ig_user_name": "{{ig_user_name}}","#,
        r#"  "text": "{{last_input}}","#,
        r#"  "type": "{{last_input_type}}","#,
        r#"  "channel": "{{user_channel}}""#,
        "}",
    ]
    .join("\n")
}

/// The Chatrace variable for a field that arrived unfilled, when the relay needs it: the
/// contact's id, or what the person wrote. Other fields are optional and never flagged.
fn variable_for(field: &str) -> Option<&'static str> {
    if crate::payload::CONTACT_ID.contains(&field) {
        Some("{{user_id}}")
    } else if crate::payload::TEXT.contains(&field) {
        Some("{{last_input}}")
    } else {
        None
    }
}

fn problem_facts(problem: &Problem, now_ms: i64, lang: Lang) -> [Fact; 2] {
    let excerpt = match &problem.body {
        ProblemBody::Excerpt(text) => text.clone(),
        ProblemBody::Raw(body) => crate::text::excerpt(body, EXCERPT_CHARS),
    };
    [
        Fact::new(
            &format!(
                "{}, {}",
                problem_name(problem, lang),
                when_text(problem.received_at_ms, now_ms, lang)
            ),
            format!(
                "{} ({} {})",
                problem_detail(problem, lang),
                lang.t("webhook_from"),
                problem.remote_addr.as_deref().unwrap_or("?")
            ),
            FactKind::Text,
        ),
        Fact::new(lang.t("webhook_excerpt"), excerpt, FactKind::Excerpt),
    ]
}

/// What went wrong, in the reader's language where the relay knows the words; otherwise the
/// stored detail, which names the specific path or parser error.
fn problem_detail(problem: &Problem, lang: Lang) -> String {
    match &problem.trouble {
        Ok(Trouble::Refused(Refusal::BadSecret | Refusal::BadVerifyToken)) => {
            lang.t("webhook_secret_did_not_match").to_string()
        }
        Ok(Trouble::Refused(Refusal::MissingSecret)) => {
            lang.t("webhook_no_x_webhook_secret").to_string()
        }
        Ok(Trouble::Flagged(flag)) => flag.describe(),
        Ok(Trouble::Refused(_)) | Err(_) => problem.detail.clone(),
    }
}

/// The name the page's tables give it too; a code of another version as it is.
fn problem_name(problem: &Problem, lang: Lang) -> String {
    match &problem.trouble {
        Ok(Trouble::Refused(refusal)) => lang.t(refusal.words().0).to_string(),
        Ok(Trouble::Flagged(flag)) => lang.t(flag.label_key()).to_string(),
        Err(UnknownCode(code)) => code.clone(),
    }
}

fn problem_advice(problem: &Problem, lang: Lang) -> String {
    let refused = match &problem.trouble {
        Ok(Trouble::Refused(refusal)) => Some(*refusal),
        Ok(Trouble::Flagged(Flag::UnfilledPlaceholders(fields))) => {
            return unfilled_advice(fields, lang)
        }
        Ok(Trouble::Flagged(Flag::NoMessage(_))) | Err(_) => None,
    };
    let advice = match refused {
        Some(Refusal::BadSecret | Refusal::BadVerifyToken | Refusal::MissingSecret) => {
            lang.t("webhook_request_came_without_right")
        }
        Some(Refusal::WrongPath | Refusal::WrongMethod) => {
            lang.t("webhook_request_came_wrong_path")
        }
        Some(Refusal::Malformed) => lang.t("webhook_request_body_could_not"),
        // Not a sign of a misconfigured caller: never listed as a problem.
        Some(
            Refusal::StrayPath
            | Refusal::StrayMethod
            | Refusal::TooLarge
            | Refusal::HeadTooLarge
            | Refusal::Incomplete
            | Refusal::Overdue
            | Refusal::BadFraming,
        )
        | None => lang.t("webhook_request_arrived_but_relay"),
    };
    advice.to_string()
}

/// Names each unfilled field the relay needs and the exact Chatrace variable to put there.
fn unfilled_advice(fields: &[String], lang: Lang) -> String {
    let fixes: Vec<String> = fields
        .iter()
        .filter_map(|field| Some(format!("\"{field}\" → {}", variable_for(field)?)))
        .collect();
    let lead = lang.t("webhook_chatrace_sent_variable_name");
    let tail = lang.t("webhook_or_paste_body_below");
    if fixes.is_empty() {
        format!("{} {{{{user_id}}}}, {{{{last_input}}}}. {tail}", lead)
    } else {
        format!("{lead} {}. {tail}", fixes.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::store::Arrival;

    fn arrival(minutes_ago: i64) -> Arrival {
        Arrival {
            received_at_ms: NOW - minutes_ago * MINUTE,
            remote_addr: Some("203.0.113.5".into()),
        }
    }

    /// A problem as the store reads it back from its stored code and detail.
    fn problem(code: &str, detail: &str, body: ProblemBody) -> Problem {
        Problem {
            received_at_ms: NOW - 2 * MINUTE,
            trouble: code
                .parse()
                .map(Trouble::Refused)
                .or_else(|_| Flag::from_stored(code, detail).map(Trouble::Flagged)),
            detail: detail.into(),
            remote_addr: Some("198.51.100.7".into()),
            body,
        }
    }

    #[test]
    fn before_any_request_the_row_lists_exactly_what_to_paste() {
        let en = row(&webhook(), Lang::En, NOW);
        assert_eq!(en.status, Status::Todo);
        assert_eq!(en.title, "Add the External Request in Chatrace");
        assert!(en.detail.contains("paste it as it is"), "{}", en.detail);
        assert_eq!(
            shown(&en, "URL", FactKind::Code),
            "https://relay.example/instagram/webhook"
        );
        assert!(!has_fact(&en, "Note"));
        assert_eq!(shown(&en, "Method", FactKind::Code), "POST");
        assert_eq!(
            shown(&en, "Header name", FactKind::Code),
            "X-Webhook-Secret"
        );
        assert_eq!(shown(&en, "Header value", FactKind::Secret), "s3cret-value");
        assert_eq!(
            shown(&en, "Content-Type", FactKind::Code),
            "application/json"
        );
        assert_eq!(shown(&en, "Body", FactKind::Code), body_template());
        assert!(!has_fact(&en, "Last request"));
        assert!(en.actions.is_empty());

        let ru = row(&webhook(), Lang::Ru, NOW);
        assert_eq!(ru.title, "Добавьте External Request в Chatrace");
        assert_eq!(
            shown(&ru, "Значение заголовка", FactKind::Secret),
            "s3cret-value"
        );
        assert_eq!(shown(&ru, "Тело запроса", FactKind::Code), body_template());
    }

    #[test]
    fn without_a_public_address_the_local_url_comes_with_a_warning_note() {
        let facts = WebhookFacts {
            public_url: None,
            ..webhook()
        };
        let en = row(&facts, Lang::En, NOW);
        assert_eq!(
            shown(&en, "URL", FactKind::Code),
            "http://127.0.0.1:3000/instagram/webhook"
        );
        assert!(shown(&en, "Note", FactKind::Text).contains("Chatrace cannot reach it"));
        let ru = row(&facts, Lang::Ru, NOW);
        assert!(shown(&ru, "Примечание", FactKind::Text).contains("не достучится"));
    }

    #[test]
    fn a_clean_request_turns_the_row_green() {
        let facts = WebhookFacts {
            last_arrival: Some(arrival(5)),
            ..webhook()
        };
        let en = row(&facts, Lang::En, NOW);
        assert_eq!(en.status, Status::Ok);
        assert_eq!(en.title, "Chatrace reaches the relay");
        assert_eq!(
            shown(&en, "Last request", FactKind::Text),
            "30 Nov 2026, 11:55 UTC (5 min ago), from 203.0.113.5"
        );
        assert!(
            has_fact(&en, "Header value"),
            "the values stay for reference"
        );
        let ru = row(&facts, Lang::Ru, NOW);
        assert_eq!(ru.title, "Chatrace достучался до relay");
        assert!(shown(&ru, "Последний запрос", FactKind::Text).ends_with("с адреса 203.0.113.5"));
    }

    #[test]
    fn each_kind_of_bad_request_warns_with_its_own_advice() {
        // (reason, stored detail, label, shown detail, advice EN, advice RU)
        let cases = [
            (
                "bad_secret",
                "secret mismatch",
                "Wrong secret",
                "the secret did not match: copy it again from the header value above",
                "X-Webhook-Secret and its value",
                "X-Webhook-Secret и его значение",
            ),
            (
                "missing_secret",
                "no header",
                "No secret",
                "no X-Webhook-Secret header (and no ?secret= in the URL)",
                "without the right secret",
                "без правильного секрета",
            ),
            (
                "wrong_path",
                "POST /webhook",
                "Wrong path",
                "POST /webhook",
                "must end with /instagram/webhook",
                "должен заканчиваться на /instagram/webhook",
            ),
            (
                "malformed",
                "expected `,` at line 3",
                "Unreadable body",
                "expected `,` at line 3",
                "quotes and commas",
                "кавычки и запятые",
            ),
            (
                "unfilled_placeholders",
                "variables not filled in: contact_id",
                "Variables not filled in",
                "variables not filled in: contact_id",
                "\"contact_id\" → {{user_id}}",
                "\"contact_id\" → {{user_id}}",
            ),
            (
                "no_message",
                "no message found: no contact_id",
                "No message in the body",
                "no message found: no contact_id",
                "found no message",
                "не нашёл в нём сообщения",
            ),
        ];
        for (reason, stored, label, detail, advice_en, advice_ru) in cases {
            let facts = WebhookFacts {
                last_arrival: Some(arrival(30)),
                problems: vec![problem(
                    reason,
                    stored,
                    ProblemBody::Excerpt("{\"text\":\"hi\"}".into()),
                )],
                ..webhook()
            };
            let en = row(&facts, Lang::En, NOW);
            assert_eq!(en.status, Status::Warn, "{reason}");
            assert_eq!(en.title, "Requests arrive, but something is wrong");
            assert!(en.detail.contains(advice_en), "{reason}: {}", en.detail);
            let seen = fact(&en, label);
            assert_eq!(
                seen.label,
                format!("{label}, 30 Nov 2026, 11:58 UTC (2 min ago)")
            );
            assert_eq!(seen.value, format!("{detail} (from 198.51.100.7)"));
            assert_eq!(
                shown(&en, "Excerpt", FactKind::Excerpt),
                "{\"text\":\"hi\"}"
            );
            let ru = row(&facts, Lang::Ru, NOW);
            assert_eq!(ru.title, "Запросы приходят, но что-то не так");
            assert!(ru.detail.contains(advice_ru), "{reason}: {}", ru.detail);
        }
    }

    #[test]
    fn problems_show_the_newest_advice_russian_reasons_and_raw_bodies_cut_short() {
        let raw = format!("{{\"text\":\"{}\"}}", "x".repeat(1000));
        let facts = WebhookFacts {
            problems: vec![
                problem(
                    "missing_secret",
                    "no header",
                    ProblemBody::Raw(raw.into_bytes()),
                ),
                problem(
                    "wrong_path",
                    "POST /old",
                    ProblemBody::Excerpt(String::new()),
                ),
            ],
            ..webhook()
        };
        let ru = row(&facts, Lang::Ru, NOW);
        assert_eq!(ru.status, Status::Warn);
        assert!(
            ru.detail.contains("без правильного секрета"),
            "{}",
            ru.detail
        );
        assert_eq!(
            fact(&ru, "Нет секрета").value,
            "нет заголовка X-Webhook-Secret (и нет ?secret= в адресе) (с адреса 198.51.100.7)"
        );
        assert!(has_fact(&ru, "Неверный путь"));
        assert_eq!(ru.actions, [Action::DismissProblems]);
        let excerpt = shown(&ru, "Фрагмент", FactKind::Excerpt);
        assert!(excerpt.starts_with("{\"text\":\"xxx"), "{excerpt}");
        assert!(excerpt.chars().count() < 400, "{excerpt}");
    }

    /// The body on the page is the body in the README, and pastes into Chatrace as it is:
    /// JSON whose every value is one of Chatrace's documented system fields, under a key
    /// the relay reads.
    #[test]
    fn the_template_is_the_readme_one_and_uses_only_chatrace_fields() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&body_template()),
            "README.md must show exactly:\n{}",
            body_template()
        );
        let template: serde_json::Value = serde_json::from_str(&body_template()).unwrap();
        let documented = [
            "{{user_id}}",
            "{{first_name}}",
            "{{last_name}}",
            "{{ig_user_name}}",
            "{{last_input}}",
            "{{last_input_type}}",
            "{{user_channel}}",
        ];
        for (key, value) in template.as_object().unwrap() {
            let value = value.as_str().unwrap();
            assert!(documented.contains(&value), "{key}: {value}");
        }
        // Filled in the way Chatrace does it, the relay reads one message from it.
        let filled = body_template()
            .replace("{{user_id}}", "5718243390127745")
            .replace("{{first_name}}", "Мария")
            .replace("{{last_name}}", "")
            // {{ig_user_name}} stays literal, as from an account that does not know it.
            .replace("{{last_input}}", "ok")
            .replace("{{last_input_type}}", "text")
            .replace("{{user_channel}}", "instagram");
        let parsed = crate::payload::parse(&crate::payload::Request {
            content_type: Some("application/json"),
            body: filled.as_bytes(),
            query: "",
        })
        .unwrap();
        assert_eq!(parsed.flag, None);
        assert_eq!(parsed.messages[0].contact_id, "5718243390127745");
    }

    #[test]
    fn an_unfilled_id_or_text_names_the_variable_to_pick() {
        let fields = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let advice = unfilled_advice(&fields(&["contact_id", "text"]), Lang::En);
        assert!(advice.contains("\"contact_id\" → {{user_id}}"), "{advice}");
        assert!(advice.contains("\"text\" → {{last_input}}"), "{advice}");
        let ru = unfilled_advice(&fields(&["user_id"]), Lang::Ru);
        assert!(ru.contains("\"user_id\" → {{user_id}}"), "{ru}");
        assert!(ru.contains("вставьте тело ниже как есть"), "{ru}");
        // An older relay's detail without field names still says what to use.
        assert!(unfilled_advice(&[], Lang::En).contains("{{user_id}}, {{last_input}}"));
    }
}
