//! The inbox row (optional): catch-up from Chatrace's inbox, which sees every message, also
//! those no flow sent. Not connected: what it adds and how to connect. Connected: as whom,
//! for which account, the last and next run, what it caught up, when the token expires.

use super::when_text;
use crate::catch_up::{Problem, TokenSource};
use crate::checklist::facts::InboxFacts;
use crate::checklist::{Action, Check, Fact, FactKind, Status};
use crate::i18n::Lang;

/// A token that expires within this long is flagged, so there is time to sign in again.
const EXPIRY_WARNING_MS: i64 = 14 * 86_400_000;

pub fn row(f: &InboxFacts, lang: Lang, now_ms: i64) -> Check {
    let check = |status, title: &str, detail: String, facts, actions| Check {
        key: "inbox",
        status,
        title: title.to_string(),
        detail,
        facts,
        actions,
    };
    if f.every_ms.is_none() {
        return check(
            Status::Todo,
            lang.t("inbox_catch_up_inbox_off"),
            lang.t("inbox_optional_catch_up_every").into(),
            Vec::new(),
            Vec::new(),
        );
    }
    let sign_in = sign_in_actions(f);
    let mut facts = code_facts(f, now_ms, lang);
    let problem = f.status.problem.as_ref();
    let connected = f.token_from_setting || f.signed_in || f.api_token_only;
    if !connected || problem == Some(&Problem::NoToken) {
        return check(
            Status::Todo,
            lang.t("inbox_optional_catch_up_every_2"),
            what_it_adds(lang),
            facts,
            sign_in,
        );
    }
    if let Some(problem) = problem {
        let (status, title, detail) = problem_words(problem, f, lang);
        if matches!(problem, Problem::ChooseAccount) {
            for (id, name) in &f.status.accounts {
                facts.push(Fact::new(
                    lang.t("inbox_account"),
                    format!("{} ({id})", name.as_deref().unwrap_or("—")),
                    FactKind::Text,
                ));
            }
        }
        if let Problem::NotAnInbox(what) | Problem::Failed(what) = problem {
            facts.push(Fact::new(
                lang.t("inbox_inbox_address"),
                f.url.clone(),
                FactKind::Code,
            ));
            facts.push(Fact::new(
                lang.t("inbox_what_answered"),
                what.clone(),
                FactKind::Excerpt,
            ));
        }
        facts.extend(run_facts(f, now_ms, lang));
        let actions = match problem {
            Problem::ChooseAccount => vec![Action::InboxChooseAccount],
            Problem::SignedOut | Problem::ApiTokenRefused => sign_in,
            _ if f.signed_in => vec![Action::InboxSignOut],
            _ => Vec::new(),
        };
        return check(status, title, detail, facts, actions);
    }
    if f.status.last_run_ms.is_none() {
        return check(
            Status::Todo,
            lang.t("inbox_inbox_connected_first_catch"),
            lang.t("inbox_first_run_looks_back").into(),
            facts,
            Vec::new(),
        );
    }
    let mut status = Status::Ok;
    let mut detail = lang.t("inbox_every_message_chatrace_s").to_string();
    if let Some(expires) = f.status.token_expires_ms {
        if expires <= now_ms {
            status = Status::Fail;
            detail = lang.t("inbox_inbox_token_has_expired").into();
        } else if expires - now_ms <= EXPIRY_WARNING_MS {
            status = Status::Warn;
            detail = format!(
                "{} {}.",
                lang.t("inbox_inbox_token_expires"),
                lang.datetime(expires)
            );
        }
    }
    facts.extend(run_facts(f, now_ms, lang));
    let mut actions = vec![Action::InboxHistory];
    if status != Status::Ok && !f.token_from_setting {
        actions.extend(sign_in);
    }
    if f.signed_in {
        actions.push(Action::InboxSignOut);
    }
    check(
        status,
        lang.t("inbox_catching_up_chatrace_s"),
        detail,
        facts,
        actions,
    )
}

fn what_it_adds(lang: Lang) -> String {
    lang.t("inbox_flow_s_external_request").into()
}

fn problem_words(problem: &Problem, f: &InboxFacts, lang: Lang) -> (Status, &'static str, String) {
    match problem {
        Problem::NoToken => (Status::Todo, "", String::new()),
        Problem::ApiTokenRefused => (
            Status::Todo,
            lang.t("inbox_inbox_did_not_accept"),
            lang.t("inbox_relay_tried_account_s").into(),
        ),
        Problem::SignedOut => (
            Status::Fail,
            lang.t("inbox_signed_out_chatrace_s"),
            lang.t("inbox_inbox_answered_not_signed").into(),
        ),
        Problem::ChooseAccount => (
            Status::Warn,
            lang.t("inbox_choose_account_catch_up"),
            lang.t("inbox_login_manages_several_chatrace").into(),
        ),
        Problem::NotAnInbox(_) => (
            Status::Fail,
            lang.t("inbox_inbox_address_does_not"),
            format!("{} {}", lang.t("inbox_white_label_chatrace_set"), f.url),
        ),
        Problem::Failed(_) => (
            Status::Warn,
            lang.t("inbox_last_catch_up_failed"),
            lang.t("inbox_tried_again_next_run").into(),
        ),
    }
}

/// The sign-in form: the email first, the code once one was sent.
fn sign_in_actions(f: &InboxFacts) -> Vec<Action> {
    if f.token_from_setting {
        return Vec::new();
    }
    let mut actions = Vec::new();
    if f.code_sent_to.is_some() {
        actions.push(Action::InboxCheckCode);
    }
    actions.push(Action::InboxSendCode);
    actions
}

fn code_facts(f: &InboxFacts, now_ms: i64, lang: Lang) -> Vec<Fact> {
    match &f.code_sent_to {
        Some((email, at)) => vec![Fact::new(
            lang.t("inbox_code_sent"),
            format!("{email}, {}", when_text(*at, now_ms, lang)),
            FactKind::Text,
        )],
        None => Vec::new(),
    }
}

fn run_facts(f: &InboxFacts, now_ms: i64, lang: Lang) -> Vec<Fact> {
    let s = &f.status;
    let mut facts = Vec::new();
    if s.member_name.is_some() || s.account_id.is_some() {
        let member = s
            .member_name
            .as_deref()
            .or(s.member_id.as_deref())
            .unwrap_or("—");
        let account = match (&s.account_name, &s.account_id) {
            (Some(name), Some(id)) => format!("«{name}» ({id})"),
            (None, Some(id)) => id.clone(),
            _ => "—".into(),
        };
        facts.push(Fact::new(
            lang.t("inbox_connected_as"),
            format!("«{member}» {} {account}", lang.t("inbox_")),
            FactKind::Text,
        ));
    }
    let source = match s.token_source {
        Some(TokenSource::Setting) => Some(lang.t("inbox_chatrace_inbox_token_credential")),
        Some(TokenSource::Login) => Some(lang.t("inbox_team_member_s_sign")),
        Some(TokenSource::ApiToken) => Some(lang.t("inbox_account_s_api_token")),
        None => None,
    };
    if let Some(source) = source {
        facts.push(Fact::new(lang.t("inbox_token"), source, FactKind::Text));
    }
    if let Some(expires) = s.token_expires_ms {
        facts.push(Fact::new(
            lang.t("inbox_token_expires"),
            lang.datetime(expires),
            FactKind::Text,
        ));
    }
    if let Some(at) = s.last_run_ms {
        facts.push(Fact::new(
            lang.t("inbox_last_run"),
            format!(
                "{}: {} {}, {} {}",
                when_text(at, now_ms, lang),
                lang.t("inbox_new_messages"),
                s.new,
                lang.t("inbox_matched_webhooks"),
                s.matched
            ),
            FactKind::Text,
        ));
    }
    if let Some(at) = s.next_run_ms.filter(|at| *at > now_ms) {
        facts.push(Fact::new(
            lang.t("inbox_next_run"),
            lang.datetime(at),
            FactKind::Text,
        ));
    }
    let c = &f.counts;
    facts.push(Fact::new(
        lang.t("inbox_caught_up_last_30"),
        format!(
            "{} {}, {} {}",
            c.last_30d_live_chat,
            lang.t("inbox_during_live_chat"),
            c.last_30d_other,
            lang.t("inbox_other"),
        ),
        FactKind::Text,
    ));
    if let Some(since) = s.history_since_ms {
        facts.push(Fact::new(
            lang.t("inbox_history_import"),
            format!(
                "{} {}: {}",
                lang.t("inbox__2"),
                lang.datetime(since),
                if s.history_done {
                    lang.t("inbox_done")
                } else {
                    lang.t("inbox_running_stopped_resumes_next")
                }
            ),
            FactKind::Text,
        ));
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catch_up::Status as RunStatus;

    const NOW: i64 = 1_796_169_720_000;

    fn connected() -> InboxFacts {
        InboxFacts {
            every_ms: Some(60_000),
            url: "https://chatrace.com/php/user".into(),
            signed_in: true,
            status: RunStatus {
                token_source: Some(TokenSource::Login),
                token_expires_ms: Some(NOW + 300 * 86_400_000),
                member_name: Some("Ирина Смирнова".into()),
                account_id: Some("1145545".into()),
                account_name: Some("Aurora Shop".into()),
                last_run_ms: Some(NOW - 30_000),
                next_run_ms: Some(NOW + 30_000),
                new: 3,
                ..RunStatus::default()
            },
            counts: crate::store::InboxCounts {
                last_30d_live_chat: 3,
                last_30d_other: 1,
                ..Default::default()
            },
            ..InboxFacts::default()
        }
    }

    fn both(f: &InboxFacts) -> [Check; 2] {
        [row(f, Lang::En, NOW), row(f, Lang::Ru, NOW)]
    }

    fn text(c: &Check) -> String {
        let facts: Vec<String> = c
            .facts
            .iter()
            .map(|f| format!("{} {}", f.label, f.value))
            .collect();
        format!("{} {} {}", c.title, c.detail, facts.join(" "))
    }

    #[test]
    fn not_connected_is_an_optional_step_with_the_sign_in_form() {
        let f = InboxFacts {
            every_ms: Some(60_000),
            ..InboxFacts::default()
        };
        for c in both(&f) {
            assert_eq!((c.key, c.status), ("inbox", Status::Todo));
            assert_eq!(c.actions, vec![Action::InboxSendCode]);
        }
        let [en, ru] = both(&f);
        assert!(
            en.title.contains("Optional") && en.detail.contains("inbox-login"),
            "{}",
            text(&en)
        );
        assert!(ru.title.contains("Необязательно"), "{}", text(&ru));
        let pending = InboxFacts {
            code_sent_to: Some(("irina@shop.example".into(), NOW - 60_000)),
            ..f
        };
        let c = row(&pending, Lang::En, NOW);
        assert_eq!(
            c.actions,
            vec![Action::InboxCheckCode, Action::InboxSendCode]
        );
        assert!(text(&c).contains("irina@shop.example"));
    }

    #[test]
    fn off_says_how_to_turn_it_on() {
        let f = InboxFacts::default();
        for c in both(&f) {
            assert_eq!(c.status, Status::Todo);
            assert!(c.detail.contains("--catch-up-every"));
        }
    }

    #[test]
    fn connected_names_member_account_runs_and_counts() {
        for c in both(&connected()) {
            assert_eq!(c.status, Status::Ok, "{}", text(&c));
            let all = text(&c);
            for part in ["Ирина Смирнова", "«Aurora Shop» (1145545)", "3", "1"] {
                assert!(all.contains(part), "{part} in {all}");
            }
            assert_eq!(c.actions, vec![Action::InboxHistory, Action::InboxSignOut]);
        }
    }

    #[test]
    fn the_token_warns_before_it_expires_and_fails_after() {
        let mut f = connected();
        f.status.token_expires_ms = Some(NOW + 5 * 86_400_000);
        for c in both(&f) {
            assert_eq!(c.status, Status::Warn);
            assert!(c.actions.contains(&Action::InboxSendCode));
        }
        f.status.token_expires_ms = Some(NOW - 1);
        for c in both(&f) {
            assert_eq!(c.status, Status::Fail);
        }
    }

    #[test]
    fn every_problem_has_its_words_and_way_out() {
        let cases = [
            (Problem::SignedOut, Status::Fail, Action::InboxSendCode),
            (
                Problem::ApiTokenRefused,
                Status::Todo,
                Action::InboxSendCode,
            ),
            (
                Problem::ChooseAccount,
                Status::Warn,
                Action::InboxChooseAccount,
            ),
        ];
        for (problem, status, action) in cases {
            let mut f = connected();
            f.status.problem = Some(problem.clone());
            f.status.accounts = vec![("1".into(), Some("A".into())), ("2".into(), None)];
            for c in both(&f) {
                assert_eq!(c.status, status, "{problem:?}");
                assert!(c.actions.contains(&action), "{problem:?}");
                assert!(!c.title.is_empty() && !c.detail.is_empty());
            }
        }
        let mut f = connected();
        f.status.problem = Some(Problem::NotAnInbox("HTTP 200: null".into()));
        for c in both(&f) {
            assert_eq!(c.status, Status::Fail);
            assert!(c.detail.contains("/php/user") && text(&c).contains("null"));
        }
        f.status.problem = Some(Problem::Failed("timed out".into()));
        for c in both(&f) {
            assert_eq!(c.status, Status::Warn);
            assert!(text(&c).contains("timed out"));
        }
    }

    #[test]
    fn a_connection_without_a_run_yet_is_starting() {
        let mut f = connected();
        f.status = RunStatus::default();
        assert_eq!(row(&f, Lang::En, NOW).status, Status::Todo);
    }
}
