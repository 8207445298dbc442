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
            lang.pick("Catch-up from the inbox is off", "Догрузка из инбокса выключена"),
            lang.pick(
                "Optional. --catch-up-every 0 turns it off; remove it (or set a period such as 1m) to catch up messages no flow sent.",
                "Необязательно. Её выключает --catch-up-every 0; уберите этот параметр (или задайте период, например 1m), чтобы догружать сообщения, которые не отправил ни один сценарий.",
            )
            .into(),
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
            lang.pick(
                "Optional: catch up every message from Chatrace's inbox",
                "Необязательно: догружать все сообщения из инбокса Chatrace",
            ),
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
                    lang.pick("Account", "Аккаунт"),
                    format!("{} ({id})", name.as_deref().unwrap_or("—")),
                    FactKind::Text,
                ));
            }
        }
        if let Problem::NotAnInbox(what) | Problem::Failed(what) = problem {
            facts.push(Fact::new(
                lang.pick("Inbox address", "Адрес инбокса"),
                f.url.clone(),
                FactKind::Code,
            ));
            facts.push(Fact::new(
                lang.pick("What it answered", "Что он ответил"),
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
            lang.pick(
                "Inbox connected: the first catch-up is starting",
                "Инбокс подключён: первая догрузка начинается",
            ),
            lang.pick(
                "The first run looks back 24 hours; reload the page in a minute.",
                "Первый проход смотрит на 24 часа назад; обновите страницу через минуту.",
            )
            .into(),
            facts,
            Vec::new(),
        );
    }
    let mut status = Status::Ok;
    let mut detail = lang
        .pick(
            "Every message in Chatrace's inbox reaches the relay, also those written while a person has the conversation (flows are paused then) and those sent while the relay was down.",
            "Все сообщения из инбокса Chatrace попадают в relay, в том числе написанные, пока диалог ведёт человек (сценарии тогда на паузе), и отправленные, пока relay не работал.",
        )
        .to_string();
    if let Some(expires) = f.status.token_expires_ms {
        if expires <= now_ms {
            status = Status::Fail;
            detail = lang
                .pick(
                    "The inbox token has expired: sign in again.",
                    "Срок токена инбокса истёк: войдите снова.",
                )
                .into();
        } else if expires - now_ms <= EXPIRY_WARNING_MS {
            status = Status::Warn;
            detail = format!(
                "{} {}.",
                lang.pick("The inbox token expires on", "Токен инбокса истекает"),
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
        lang.pick(
            "Catching up from Chatrace's inbox",
            "Догрузка из инбокса Chatrace работает",
        ),
        detail,
        facts,
        actions,
    )
}

fn what_it_adds(lang: Lang) -> String {
    lang.pick(
        "A flow's External Request does not run while a person has the conversation, nor for a message another rule caught, and Chatrace never sends again to a relay that was down. Chatrace's inbox lists every message: sign in with the email of a Chatrace team member and the relay catches up what no webhook brought, once a minute, at about one request a second. On a server without a browser: chatrace-relay inbox-login EMAIL, or set CHATRACE_INBOX_TOKEN.",
        "Внешний запрос сценария не выполняется, пока диалог ведёт человек, и для сообщений, которые перехватило другое правило, а relay, который был недоступен, Chatrace повторно ничего не отправит. Инбокс Chatrace видит все сообщения: войдите с почтой участника команды Chatrace, и relay раз в минуту догрузит то, что не пришло вебхуком (примерно один запрос в секунду). На сервере без браузера: chatrace-relay inbox-login EMAIL или переменная CHATRACE_INBOX_TOKEN.",
    )
    .into()
}

fn problem_words(problem: &Problem, f: &InboxFacts, lang: Lang) -> (Status, &'static str, String) {
    match problem {
        Problem::NoToken => (Status::Todo, "", String::new()),
        Problem::ApiTokenRefused => (
            Status::Todo,
            lang.pick(
                "The inbox did not accept the API token",
                "Инбокс не принял токен API",
            ),
            lang.pick(
                "The relay tried the account's API token (CHATRACE_TOKEN) on the inbox once, and the inbox refused it: it needs a team member's login. Sign in with the email of a Chatrace team member.",
                "Relay один раз попробовал токен API аккаунта (CHATRACE_TOKEN) в инбоксе, и инбокс его не принял: нужен вход участника команды. Войдите с почтой участника команды Chatrace.",
            )
            .into(),
        ),
        Problem::SignedOut => (
            Status::Fail,
            lang.pick("Signed out of Chatrace's inbox", "Вход в инбокс Chatrace утерян"),
            lang.pick(
                "The inbox answered \"not signed in\": the token expired or was revoked. Sign in again; webhooks are stored meanwhile as always.",
                "Инбокс ответил «не выполнен вход»: токен истёк или отозван. Войдите снова; вебхуки тем временем сохраняются как обычно.",
            )
            .into(),
        ),
        Problem::ChooseAccount => (
            Status::Warn,
            lang.pick("Choose the account to catch up", "Выберите аккаунт для догрузки"),
            lang.pick(
                "This login manages several Chatrace accounts. Type the page id of the one whose Instagram messages the relay keeps (or set CHATRACE_ACCOUNT_ID).",
                "Этот вход управляет несколькими аккаунтами Chatrace. Введите page id того, чьи сообщения Instagram хранит relay (или задайте CHATRACE_ACCOUNT_ID).",
            )
            .into(),
        ),
        Problem::NotAnInbox(_) => (
            Status::Fail,
            lang.pick(
                "The inbox address does not answer like Chatrace's inbox",
                "Адрес инбокса отвечает не как инбокс Chatrace",
            ),
            format!(
                "{} {}",
                lang.pick(
                    "On a white-label of Chatrace, set CHATRACE_INBOX_URL (or --inbox-url) to your app's own domain followed by /php/user, e.g. https://app.your-brand.com/php/user, and restart the relay. Now:",
                    "Для white-label-версии Chatrace задайте CHATRACE_INBOX_URL (или --inbox-url): домен вашего приложения и /php/user, например https://app.your-brand.com/php/user, и перезапустите relay. Сейчас:",
                ),
                f.url
            ),
        ),
        Problem::Failed(_) => (
            Status::Warn,
            lang.pick("The last catch-up failed", "Последняя догрузка не удалась"),
            lang.pick(
                "It is tried again on the next run; nothing caught up before is lost. What went wrong is shown below.",
                "Она будет повторена при следующем проходе; уже догруженное не теряется. Что пошло не так, показано ниже.",
            )
            .into(),
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
            lang.pick("Code sent to", "Код отправлен на"),
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
            lang.pick("Connected as", "Подключено как"),
            format!("«{member}» {} {account}", lang.pick("for", "для")),
            FactKind::Text,
        ));
    }
    let source = match s.token_source {
        Some(TokenSource::Setting) => Some(lang.pick(
            "CHATRACE_INBOX_TOKEN (or the credential chatrace_inbox_token)",
            "CHATRACE_INBOX_TOKEN (или credential chatrace_inbox_token)",
        )),
        Some(TokenSource::Login) => {
            Some(lang.pick("a team member's sign-in", "вход участника команды"))
        }
        Some(TokenSource::ApiToken) => Some(lang.pick(
            "the account's API token (CHATRACE_TOKEN), which the inbox accepted",
            "токен API аккаунта (CHATRACE_TOKEN), инбокс его принял",
        )),
        None => None,
    };
    if let Some(source) = source {
        facts.push(Fact::new(
            lang.pick("Token", "Токен"),
            source,
            FactKind::Text,
        ));
    }
    if let Some(expires) = s.token_expires_ms {
        facts.push(Fact::new(
            lang.pick("Token expires", "Токен истекает"),
            lang.datetime(expires),
            FactKind::Text,
        ));
    }
    if let Some(at) = s.last_run_ms {
        facts.push(Fact::new(
            lang.pick("Last run", "Последний проход"),
            format!(
                "{}: {} {}, {} {}",
                when_text(at, now_ms, lang),
                lang.pick("new messages", "новых сообщений"),
                s.new,
                lang.pick("matched to webhooks", "совпало с вебхуками"),
                s.matched
            ),
            FactKind::Text,
        ));
    }
    if let Some(at) = s.next_run_ms.filter(|at| *at > now_ms) {
        facts.push(Fact::new(
            lang.pick("Next run", "Следующий проход"),
            lang.datetime(at),
            FactKind::Text,
        ));
    }
    let c = &f.counts;
    facts.push(Fact::new(
        lang.pick("Caught up, last 30 days", "Догружено за 30 дней"),
        format!(
            "{} {}, {} {}",
            c.last_30d_live_chat,
            lang.pick("during live chat", "во время живого чата"),
            c.last_30d_other,
            lang.pick("other", "прочих"),
        ),
        FactKind::Text,
    ));
    if let Some(since) = s.history_since_ms {
        facts.push(Fact::new(
            lang.pick("History import", "Импорт истории"),
            format!(
                "{} {}: {}",
                lang.pick("from", "с"),
                lang.datetime(since),
                if s.history_done {
                    lang.pick("done", "готово")
                } else {
                    lang.pick(
                        "running or stopped; it resumes on the next run",
                        "идёт или прервался; продолжится при следующем проходе",
                    )
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
