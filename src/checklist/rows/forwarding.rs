//! The forwarding row: do messages reach the team's app at every --forward-url.

use super::when_text;
use crate::checklist::{Action, Check, Fact, FactKind, Status};
use crate::i18n::Lang;
use crate::store::TargetStatus;

/// A delivery pending longer than this means the target has been failing for a while.
const STUCK_PENDING_MS: i64 = 10 * 60_000;

/// Replaying is only offered once the endpoint may have been fixed: when something failed
/// for good at a configured target. Pending deliveries are retried on schedule anyway.
pub fn replay_offered(targets: &[TargetStatus]) -> bool {
    targets.iter().any(|t| t.configured && t.failed > 0)
}

pub fn row(targets: &[TargetStatus], lang: Lang, now_ms: i64) -> Check {
    let mut status = Status::Ok;
    let mut facts = Vec::new();
    for t in targets.iter().filter(|t| t.configured) {
        status = status.max(target_status(t));
        facts.extend(target_facts(t, now_ms, lang));
    }
    let (title, detail) = match status {
        Status::Ok => (
            lang.t("forwarding_messages_reach_your_app"),
            lang.t("forwarding_every_message_pushed_forward"),
        ),
        Status::Todo => (
            lang.t("forwarding_nothing_forwarded_yet"),
            lang.t("forwarding_messages_pushed_your_app"),
        ),
        Status::Warn => (
            lang.t("forwarding_forwarding_behind"),
            lang.t("forwarding_deliveries_waiting_or_failing"),
        ),
        Status::Fail => (
            lang.t("forwarding_some_messages_were_not"),
            lang.t("forwarding_some_deliveries_failed_after"),
        ),
    };
    Check {
        key: "forwarding",
        status,
        title: title.into(),
        detail: detail.into(),
        facts,
        actions: if replay_offered(targets) {
            vec![Action::ReplayFailed]
        } else {
            Vec::new()
        },
    }
}

fn target_status(t: &TargetStatus) -> Status {
    let stuck = t
        .oldest_pending_age_seconds
        .is_some_and(|age| age * 1000 > STUCK_PENDING_MS);
    if t.failed > 0 {
        Status::Fail
    } else if stuck || (t.pending > 0 && t.last_error.is_some()) {
        Status::Warn
    } else if t.delivered > 0 {
        Status::Ok
    } else {
        Status::Todo
    }
}

fn target_facts(t: &TargetStatus, now_ms: i64, lang: Lang) -> Vec<Fact> {
    let mut summary = format!(
        "{} {}, {} {}, {} {}",
        lang.t("forwarding_delivered"),
        t.delivered,
        lang.t("forwarding_pending"),
        t.pending,
        lang.t("forwarding_failed"),
        t.failed
    );
    if let Some(age) = t.oldest_pending_age_seconds {
        let at = now_ms - age * 1000;
        summary.push_str(&format!(
            "; {} {}",
            lang.t("forwarding_oldest_pending_since"),
            when_text(at, now_ms, lang)
        ));
    }
    let mut facts = vec![Fact::new(&t.target, summary, FactKind::Text)];
    // Only an error is shown as one: the newest attempt's status is a 2xx once a delivery
    // went through, and the error text already names the status its attempt got.
    if let Some(error) = &t.last_error {
        facts.push(Fact::new(
            lang.t("forwarding_last_error"),
            error.clone(),
            FactKind::Excerpt,
        ));
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    const APP: &str = "https://app.example/hook";

    /// `n` deliveries, the newest answered 200.
    fn delivered(n: i64) -> TargetStatus {
        TargetStatus {
            delivered: n,
            last_status: Some(200),
            last_attempt_at: Some("2026-11-30T11:58:00Z".into()),
            ..target(APP)
        }
    }

    /// One delivery waiting `minutes`, its last attempt answered 503.
    fn pending(minutes: i64, error: Option<&str>) -> TargetStatus {
        TargetStatus {
            pending: 1,
            oldest_pending_age_seconds: Some(minutes * 60),
            last_error: error.map(str::to_string),
            last_status: error.map(|_| 503),
            last_attempt_at: Some("2026-11-30T11:59:00Z".into()),
            ..delivered(4)
        }
    }

    #[test]
    fn delivered_messages_are_ok_and_nothing_to_replay() {
        let en = row(&[delivered(3)], Lang::En, NOW);
        assert_eq!(en.status, Status::Ok);
        assert_eq!(en.title, "Messages reach your app");
        assert_eq!(
            shown(&en, APP, FactKind::Text),
            "delivered 3, pending 0, failed 0"
        );
        assert!(!has_fact(&en, "Last error"));
        assert!(en.actions.is_empty());
        let ru = row(&[delivered(3)], Lang::Ru, NOW);
        assert_eq!(ru.title, "Сообщения доходят до вашего приложения");
        assert_eq!(
            shown(&ru, APP, FactKind::Text),
            "доставлено 3, в очереди 0, не доставлено 0"
        );
    }

    #[test]
    fn before_the_first_delivery_forwarding_is_to_do() {
        let en = row(&[target(APP)], Lang::En, NOW);
        assert_eq!(en.status, Status::Todo);
        assert_eq!(en.title, "Nothing forwarded yet");
        assert!(en.actions.is_empty());
        assert_eq!(
            row(&[target(APP)], Lang::Ru, NOW).title,
            "Пока ничего не переслано"
        );
    }

    #[test]
    fn a_stuck_or_erroring_queue_is_behind_but_not_replayed() {
        let quiet_but_stuck = pending(11, None);
        let fresh_but_erroring = pending(1, Some("HTTP 503: Service Unavailable"));
        for t in [&quiet_but_stuck, &fresh_but_erroring] {
            let en = row(std::slice::from_ref(t), Lang::En, NOW);
            assert_eq!(en.status, Status::Warn, "{t:?}");
            assert_eq!(en.title, "Forwarding is behind");
            assert!(en.detail.contains("answers 2xx"), "{}", en.detail);
            assert!(en.actions.is_empty(), "retries are on schedule anyway");
            assert!(row(std::slice::from_ref(t), Lang::Ru, NOW)
                .detail
                .contains("будут повторены"));
        }
        let stuck = row(&[quiet_but_stuck], Lang::En, NOW);
        assert_eq!(
            shown(&stuck, APP, FactKind::Text),
            "delivered 4, pending 1, failed 0; oldest pending since 30 Nov 2026, 11:49 UTC (11 min ago)"
        );
        let erroring = row(&[fresh_but_erroring], Lang::En, NOW);
        assert_eq!(
            shown(&erroring, "Last error", FactKind::Excerpt),
            "HTTP 503: Service Unavailable"
        );
        assert_eq!(
            row(&[pending(9, None)], Lang::En, NOW).status,
            Status::Ok,
            "a short wait without an error is normal"
        );
    }

    #[test]
    fn deliveries_that_gave_up_fail_and_offer_a_replay() {
        let gave_up = TargetStatus {
            failed: 2,
            last_error: Some("410 Gone: target asked to stop".into()),
            last_status: Some(410),
            ..delivered(5)
        };
        let targets = [delivered(1), gave_up];
        let en = row(&targets, Lang::En, NOW);
        assert_eq!(en.status, Status::Fail, "the worst target decides");
        assert_eq!(en.title, "Some messages were not forwarded");
        assert!(en.detail.contains("/api/messages"), "{}", en.detail);
        assert_eq!(
            shown(&en, "Last error", FactKind::Excerpt),
            "410 Gone: target asked to stop"
        );
        assert_eq!(en.actions, [Action::ReplayFailed]);
        assert!(replay_offered(&targets));
        let ru = row(&targets, Lang::Ru, NOW);
        assert_eq!(ru.title, "Часть сообщений не переслана");
        assert_eq!(ru.actions, [Action::ReplayFailed]);
    }

    #[test]
    fn a_target_no_longer_configured_neither_shows_nor_offers_a_replay() {
        let old = TargetStatus {
            failed: 7,
            configured: false,
            ..target("https://old.example/hook")
        };
        let targets = [delivered(2), old];
        let en = row(&targets, Lang::En, NOW);
        assert_eq!(en.status, Status::Ok);
        assert!(!has_fact(&en, "https://old.example"));
        assert!(en.actions.is_empty());
        assert!(!replay_offered(&targets));
    }
}
