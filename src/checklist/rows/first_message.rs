//! The first message row: setup is done once a real message has arrived.

use super::when_text;
use crate::checklist::facts::FirstMessageFacts;
use crate::checklist::{Action, Check, Fact, FactKind, Status};
use crate::i18n::Lang;

pub fn row(f: &FirstMessageFacts, lang: Lang, now_ms: i64) -> Check {
    let m = match f {
        FirstMessageFacts::Received(m) => m,
        FirstMessageFacts::Waiting { test_messages } => {
            let mut facts = Vec::new();
            if *test_messages > 0 {
                facts.push(Fact::new(
                    lang.t("first_message_test_messages_stored"),
                    test_messages.to_string(),
                    FactKind::Text,
                ));
            }
            return Check {
                key: "first_message",
                status: Status::Todo,
                title: lang
                    .t("first_message_waiting_first_instagram_message")
                    .into(),
                detail: lang.t("first_message_send_direct_message_your").into(),
                facts,
                actions: vec![Action::SendTest],
            };
        }
    };
    let who = [
        m.contact_name.clone(),
        m.username
            .as_ref()
            .map(|u| format!("@{}", u.trim_start_matches('@'))),
        Some(m.contact_id.clone()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    let channel = m.channel.clone().unwrap_or_else(|| "?".into());
    let instagram = channel.eq_ignore_ascii_case("instagram");
    let detail = if instagram {
        lang.t("first_message_messages_arrive_stored_setup")
            .to_string()
    } else {
        format!(
            "{} \"{channel}\". {}",
            lang.t("first_message_messages_arrive_but_first"),
            lang.t("first_message_if_you_expect_instagram")
        )
    };
    Check {
        key: "first_message",
        status: Status::Ok,
        title: lang.t("first_message_first_message_received").into(),
        detail,
        facts: vec![
            Fact::new(lang.t("first_message_from"), who, FactKind::Text),
            Fact::new(lang.t("first_message_channel"), channel, FactKind::Text),
            Fact::new(
                lang.t("first_message_received"),
                when_text(m.received_at_ms, now_ms, lang),
                FactKind::Text,
            ),
        ],
        actions: vec![Action::SendTest],
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::store::FirstMessage;

    fn received(channel: Option<&str>) -> FirstMessageFacts {
        FirstMessageFacts::Received(FirstMessage {
            received_at_ms: NOW - 3 * MINUTE,
            channel: channel.map(str::to_string),
            contact_id: "c-4711".into(),
            contact_name: Some("Ann Lee".into()),
            username: Some("@ann.lee".into()),
        })
    }

    #[test]
    fn while_waiting_the_row_offers_a_test_and_counts_the_tests_sent() {
        let en = row(&waiting(), Lang::En, NOW);
        assert_eq!(en.status, Status::Todo);
        assert_eq!(en.title, "Waiting for the first Instagram message");
        assert!(en.detail.contains("Send a direct message"), "{}", en.detail);
        assert!(en.facts.is_empty(), "no test sent, nothing to count");
        assert_eq!(en.actions, [Action::SendTest]);

        let tested = FirstMessageFacts::Waiting { test_messages: 2 };
        let en = row(&tested, Lang::En, NOW);
        assert_eq!(en.status, Status::Todo, "test messages do not finish setup");
        assert_eq!(shown(&en, "Test messages stored", FactKind::Text), "2");
        let ru = row(&tested, Lang::Ru, NOW);
        assert_eq!(ru.title, "Ждём первое сообщение из Instagram");
        assert_eq!(
            shown(&ru, "Тестовых сообщений сохранено", FactKind::Text),
            "2"
        );
    }

    #[test]
    fn an_instagram_message_finishes_setup() {
        let en = row(&received(Some("Instagram")), Lang::En, NOW);
        assert_eq!(en.status, Status::Ok);
        assert_eq!(en.title, "First message received");
        assert_eq!(en.detail, "Messages arrive and are stored. Setup is done.");
        assert_eq!(
            shown(&en, "From", FactKind::Text),
            "Ann Lee, @ann.lee, c-4711"
        );
        assert_eq!(shown(&en, "Channel", FactKind::Text), "Instagram");
        assert!(shown(&en, "Received", FactKind::Text).ends_with("(3 min ago)"));
        assert_eq!(en.actions, [Action::SendTest]);
        let ru = row(&received(Some("instagram")), Lang::Ru, NOW);
        assert_eq!(
            ru.detail,
            "Сообщения приходят и сохраняются. Настройка завершена."
        );
    }

    #[test]
    fn a_message_from_another_channel_is_received_but_questioned() {
        for (channel, shown_as) in [(Some("facebook"), "facebook"), (None, "?")] {
            let en = row(&received(channel), Lang::En, NOW);
            assert_eq!(en.status, Status::Ok);
            assert!(
                en.detail
                    .contains(&format!("first came on the channel \"{shown_as}\"")),
                "{}",
                en.detail
            );
            assert!(en.detail.contains("sends channel \"instagram\""));
            assert_eq!(shown(&en, "Channel", FactKind::Text), shown_as);
            let ru = row(&received(channel), Lang::Ru, NOW);
            assert!(ru
                .detail
                .contains(&format!("пришло по каналу \"{shown_as}\"")));
        }
    }
}
