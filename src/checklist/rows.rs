//! Turning facts into the checklist's rows: each row's state, its prose in English and
//! Russian, and how its values read. No I/O: the facts and the time come in as arguments.

use super::facts::Facts;
use super::Check;
use crate::i18n::Lang;

mod first_message;
mod forwarding;
mod inbox;
mod public_url;
mod server;
mod token;
mod webhook;

pub use forwarding::replay_offered;

/// The rows in the order the page shows them: the relay itself, its public address, the
/// Chatrace token, the webhook, the first message, and forwarding when it is configured.
pub fn rows(facts: &Facts, lang: Lang, now_ms: i64) -> Vec<Check> {
    let mut rows = vec![
        server::row(&facts.server, lang, now_ms),
        public_url::row(&facts.public_url, lang),
        token::row(&facts.token, lang, now_ms),
        webhook::row(&facts.webhook, lang, now_ms),
        first_message::row(&facts.first_message, lang, now_ms),
    ];
    rows.extend(
        facts
            .forwarding
            .as_deref()
            .map(|targets| forwarding::row(targets, lang, now_ms)),
    );
    rows.push(inbox::row(&facts.inbox, lang, now_ms));
    rows
}

/// The same readable form the rest of the page uses: "25 Nov 2026, 14:05 UTC (5 min ago)".
fn when_text(ms: i64, now_ms: i64, lang: Lang) -> String {
    format!("{} ({})", lang.datetime(ms), lang.ago(now_ms, ms))
}

/// The two largest units of a duration: `2 h 5 min`, `45 s`.
fn duration_text(ms: i64, lang: Lang) -> String {
    let s = ms.max(0) / 1000;
    let units = [
        (86_400, lang.t("rows_d")),
        (3_600, lang.t("rows_h")),
        (60, lang.t("rows_min")),
        (1, lang.t("rows_s")),
    ];
    let parts: Vec<String> = units
        .iter()
        .scan(s, |left, (size, name)| {
            let n = *left / size;
            *left %= size;
            Some((n, name))
        })
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| format!("{n} {name}"))
        .collect();
    if parts.is_empty() {
        format!("0 {}", lang.t("rows_s"))
    } else {
        parts.join(" ")
    }
}

fn bytes_text(n: u64, lang: Lang) -> String {
    let units = [
        (1u64 << 30, lang.t("rows_gib")),
        (1 << 20, lang.t("rows_mib")),
        (1 << 10, lang.t("rows_kib")),
    ];
    for (size, name) in units {
        if n >= size {
            let value = format!("{:.1}", n as f64 / size as f64);
            let value = if lang == Lang::Ru {
                value.replace('.', ",")
            } else {
                value
            };
            return format!("{value} {name}");
        }
    }
    format!("{n} {}", lang.t("rows_b"))
}

/// Facts for the rows' tests, each a plain case the tests then bend into the one they need.
#[cfg(test)]
mod fixtures {
    use std::net::SocketAddr;

    use crate::chatrace::TokenCheck;
    use crate::checklist::facts::{
        DiskSpace, FirstMessageFacts, PublicUrlFacts, ServerFacts, TokenFacts, WebhookFacts,
    };
    use crate::checklist::{Check, Fact, FactKind};
    use crate::probe::ProbeOutcome;
    use crate::store::TargetStatus;

    /// 2026-11-30 12:00 UTC.
    pub const NOW: i64 = 1_796_040_000_000;
    pub const MINUTE: i64 = 60_000;
    pub const GIB: u64 = 1 << 30;
    pub const MIB: u64 = 1 << 20;

    pub fn addr() -> SocketAddr {
        "127.0.0.1:3000".parse().unwrap()
    }

    pub fn server() -> ServerFacts {
        ServerFacts {
            started_at_ms: NOW - 7_500_000,
            db_path: "/var/lib/relay/relay.db".into(),
            journal_mode: "wal".into(),
            synchronous: 2,
            db_bytes: 3 * MIB,
            wal_bytes: 512,
            max_db_bytes: None,
            keep_raw_ms: None,
            keep_messages_ms: None,
            disk: Some(DiskSpace {
                free: 50 * GIB,
                total: 100 * GIB,
            }),
            media_cap: None,
            media: Default::default(),
        }
    }

    pub fn public_url() -> PublicUrlFacts {
        PublicUrlFacts {
            url: Some("https://relay.example".into()),
            addr: addr(),
            probe: Some(ProbeOutcome::Ours),
        }
    }

    pub fn token() -> TokenFacts {
        TokenFacts {
            api_url: "https://api.chatrace.com".into(),
            check: TokenCheck::Valid {
                account: crate::chatrace::Account {
                    name: Some("Cozy Shop".into()),
                    page_id: Some("1049".into()),
                },
            },
            checked_at_ms: Some(NOW - 5 * MINUTE),
            account: Some("1234567".into()),
            shape: None,
        }
    }

    pub fn webhook() -> WebhookFacts {
        WebhookFacts {
            public_url: Some("https://relay.example/instagram/webhook".into()),
            local_url: "http://127.0.0.1:3000/instagram/webhook".into(),
            secret: "s3cret-value".into(),
            last_arrival: None,
            problems: Vec::new(),
        }
    }

    pub fn waiting() -> FirstMessageFacts {
        FirstMessageFacts::Waiting { test_messages: 0 }
    }

    pub fn target(url: &str) -> TargetStatus {
        TargetStatus::empty(url)
    }

    /// The fact whose label starts with `label`; a test that names a missing one fails.
    pub fn fact<'a>(check: &'a Check, label: &str) -> &'a Fact {
        check
            .facts
            .iter()
            .find(|f| f.label.starts_with(label))
            .unwrap_or_else(|| panic!("no fact {label:?} in {check:#?}"))
    }

    pub fn has_fact(check: &Check, label: &str) -> bool {
        check.facts.iter().any(|f| f.label.starts_with(label))
    }

    pub fn shown(check: &Check, label: &str, kind: FactKind) -> String {
        let fact = fact(check, label);
        assert_eq!(fact.kind, kind, "{label}");
        fact.value.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::checklist::facts::Facts;
    use crate::checklist::Status;

    fn facts() -> Facts {
        Facts {
            server: server(),
            public_url: public_url(),
            token: token(),
            webhook: webhook(),
            first_message: waiting(),
            forwarding: None,
            inbox: Default::default(),
        }
    }

    #[test]
    fn rows_come_in_setup_order_with_forwarding_only_when_configured_and_the_inbox_last() {
        let keys = |facts: &Facts| -> Vec<&str> {
            rows(facts, Lang::En, NOW).iter().map(|c| c.key).collect()
        };
        let mut facts = facts();
        let first_five = [
            "server",
            "public_url",
            "chatrace_token",
            "webhook_configured",
            "first_message",
        ];
        assert_eq!(keys(&facts)[..5], first_five);
        assert_eq!(keys(&facts)[5..], ["inbox"]);
        facts.forwarding = Some(vec![target("http://app.example/hook")]);
        assert_eq!(keys(&facts)[..5], first_five);
        assert_eq!(keys(&facts)[5..], ["forwarding", "inbox"]);
        let statuses: Vec<Status> = rows(&facts, Lang::En, NOW)
            .iter()
            .map(|c| c.status)
            .collect();
        assert_eq!(
            statuses,
            [
                Status::Ok,
                Status::Ok,
                Status::Ok,
                Status::Todo,
                Status::Todo,
                Status::Todo,
                Status::Todo
            ]
        );
    }

    #[test]
    fn durations_and_sizes_read_naturally() {
        assert_eq!(duration_text(0, Lang::En), "0 s");
        assert_eq!(duration_text(-5_000, Lang::En), "0 s");
        assert_eq!(duration_text(45_000, Lang::En), "45 s");
        assert_eq!(duration_text(7_500_000, Lang::En), "2 h 5 min");
        assert_eq!(duration_text(7_200_000, Lang::Ru), "2 ч");
        assert_eq!(duration_text(90_061_000, Lang::Ru), "1 д 1 ч");
        assert_eq!(bytes_text(512, Lang::En), "512 B");
        assert_eq!(bytes_text(3 << 20, Lang::En), "3.0 MiB");
        assert_eq!(bytes_text(1536 << 20, Lang::Ru), "1,5 ГБ");
    }

    #[test]
    fn times_read_against_the_given_now() {
        assert_eq!(
            when_text(NOW - 5 * MINUTE, NOW, Lang::En),
            "30 Nov 2026, 11:55 UTC (5 min ago)"
        );
        assert_eq!(
            when_text(NOW - 5 * MINUTE, NOW + 55 * MINUTE, Lang::Ru),
            "30 нояб. 2026, 11:55 UTC (1 ч назад)"
        );
    }
}
