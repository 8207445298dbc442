//! The webhook row: the values to paste into Chatrace's External Request, and what the
//! requests that arrived say about how they were pasted.

use super::when_text;
use crate::checklist::facts::WebhookFacts;
use crate::checklist::{Check, Fact, FactKind, Status, EXCERPT_CHARS};
use crate::i18n::Lang;
use crate::outcome::{Flag, Refusal, Trouble, UnknownCode};
use crate::store::{Problem, ProblemBody};

pub fn row(f: &WebhookFacts, lang: Lang, now_ms: i64) -> Check {
    let mut facts = paste_values(f, lang);
    if let Some(arrival) = &f.last_arrival {
        facts.push(Fact::new(
            lang.pick("Last request", "Последний запрос"),
            format!(
                "{}, {} {}",
                when_text(arrival.received_at_ms, now_ms, lang),
                lang.pick("from", "с адреса"),
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
            lang.pick(
                "Requests arrive, but something is wrong",
                "Запросы приходят, но что-то не так",
            ),
            problem_advice(latest, lang),
        ),
        (None, Some(_)) => (
            Status::Ok,
            lang.pick("Chatrace reaches the relay", "Chatrace достучался до relay"),
            lang.pick(
                "Requests with the right secret arrive. The values below stay here for reference.",
                "Запросы с правильным секретом приходят. Значения ниже остаются здесь для справки.",
            )
            .to_string(),
        ),
        (None, None) => (
            Status::Todo,
            lang.pick(
                "Add the External Request in Chatrace",
                "Добавьте External Request в Chatrace",
            ),
            lang.pick(
                "In a Chatrace flow that runs on every incoming Instagram message (a default reply or a catch-all rule), add an External Request action with exactly these values. The body is written with Chatrace's own system fields ({{user_id}}, {{last_input}}…): paste it as it is. This row turns green when the first request arrives.",
                "В сценарии Chatrace, который запускается на каждое входящее сообщение Instagram (ответ по умолчанию или правило «на всё»), добавьте действие External Request ровно с этими значениями. Тело написано системными полями самого Chatrace ({{user_id}}, {{last_input}}…): вставьте его как есть. Строка станет зелёной, когда придёт первый запрос.",
            )
            .to_string(),
        ),
    };
    Check {
        key: "webhook_configured",
        status,
        title: title.into(),
        detail,
        facts,
        actions: Vec::new(),
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
                lang.pick("Note", "Примечание"),
                lang.pick(
                    "This is the local address: Chatrace cannot reach it. Set the public address first; the URL here follows it.",
                    "Это локальный адрес: Chatrace до него не достучится. Сначала задайте публичный адрес, и URL здесь сменится на него.",
                ),
                FactKind::Text,
            ));
        }
    }
    facts.extend([
        Fact::new(lang.pick("Method", "Метод"), "POST", FactKind::Code),
        Fact::new(
            lang.pick("Header name", "Имя заголовка"),
            "X-Webhook-Secret",
            FactKind::Code,
        ),
        Fact::new(
            lang.pick("Header value", "Значение заголовка"),
            f.secret.clone(),
            FactKind::Secret,
        ),
        Fact::new("Content-Type", "application/json", FactKind::Code),
        Fact::new(
            lang.pick("Body", "Тело запроса"),
            body_template(),
            FactKind::Code,
        ),
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
                lang.pick("from", "с адреса"),
                problem.remote_addr.as_deref().unwrap_or("?")
            ),
            FactKind::Text,
        ),
        Fact::new(lang.pick("Excerpt", "Фрагмент"), excerpt, FactKind::Excerpt),
    ]
}

/// What went wrong, in the reader's language where the relay knows the words; otherwise the
/// stored detail, which names the specific path or parser error.
fn problem_detail(problem: &Problem, lang: Lang) -> String {
    match &problem.trouble {
        Ok(Trouble::Refused(Refusal::BadSecret | Refusal::BadVerifyToken)) => lang
            .pick(
                "the secret did not match: copy it again from the header value above",
                "секрет не совпал: скопируйте его заново из значения заголовка выше",
            )
            .to_string(),
        Ok(Trouble::Refused(Refusal::MissingSecret)) => lang
            .pick(
                "no X-Webhook-Secret header (and no ?secret= in the URL)",
                "нет заголовка X-Webhook-Secret (и нет ?secret= в адресе)",
            )
            .to_string(),
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
        Some(Refusal::BadSecret | Refusal::BadVerifyToken | Refusal::MissingSecret) => lang.pick(
            "A request came without the right secret. Copy the header name X-Webhook-Secret and its value exactly as shown below into the External Request's headers.",
            "Пришёл запрос без правильного секрета. Скопируйте имя заголовка X-Webhook-Secret и его значение в заголовки External Request точно как показано ниже.",
        ),
        Some(Refusal::WrongPath | Refusal::WrongMethod) => lang.pick(
            "A request came to a wrong path. The URL in the External Request must end with /instagram/webhook; copy it from below.",
            "Запрос пришёл не по тому пути. URL в External Request должен заканчиваться на /instagram/webhook; скопируйте его ниже.",
        ),
        Some(Refusal::Malformed) => lang.pick(
            "A request body could not be read. Check the template's quotes and commas, and set Content-Type to application/json.",
            "Тело запроса не удалось прочитать. Проверьте кавычки и запятые в шаблоне и укажите Content-Type application/json.",
        ),
        // Not a sign of a misconfigured caller: never listed as a problem.
        Some(
            Refusal::TooLarge
            | Refusal::HeadTooLarge
            | Refusal::Incomplete
            | Refusal::Overdue
            | Refusal::BadFraming,
        )
        | None => lang.pick(
            "A request arrived, but the relay found no message in it. Use the body template below: it needs at least user_id and text.",
            "Запрос пришёл, но relay не нашёл в нём сообщения. Используйте шаблон тела ниже: нужны как минимум user_id и text.",
        ),
    };
    advice.to_string()
}

/// Names each unfilled field the relay needs and the exact Chatrace variable to put there.
fn unfilled_advice(fields: &[String], lang: Lang) -> String {
    let fixes: Vec<String> = fields
        .iter()
        .filter_map(|field| Some(format!("\"{field}\" → {}", variable_for(field)?)))
        .collect();
    let lead = lang.pick(
        "Chatrace sent a variable name instead of a value: it has no such variable, so the request carries no message. Put Chatrace's own variable there:",
        "Chatrace прислал имя переменной вместо значения: такой переменной у него нет, поэтому в запросе нет сообщения. Поставьте туда переменную самого Chatrace:",
    );
    let tail = lang.pick(
        "Or paste the body below as it is.",
        "Или вставьте тело ниже как есть.",
    );
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
