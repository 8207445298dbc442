//! The setup checklist: what stands between a fresh install and the first Instagram message,
//! computed from facts each time it is shown. The page renders it, `/api/setup` serves it.

use serde::Serialize;

use crate::error::Result;
use crate::http::Worker;
use crate::i18n::Lang;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Todo,
    Warn,
    Fail,
}

/// One row of the checklist. `title` and `detail` are in the asked language; `facts` are
/// what was seen and the values to paste; `actions` are the buttons the row offers.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub key: &'static str,
    pub status: Status,
    pub title: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<Fact>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fact {
    pub label: String,
    pub value: String,
    pub kind: FactKind,
}

/// How the page shows a fact's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FactKind {
    /// Plain text.
    Text,
    /// Something to copy and paste exactly (URL, header name, JSON template).
    Code,
    /// A secret: hidden until the user asks to reveal it.
    Secret,
    /// A link to open.
    Link,
    /// An excerpt of a request someone sent, shown verbatim and escaped.
    Excerpt,
}

/// A button a row offers; the page posts it to `/setup/<name>` with a CSRF token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    RecheckToken,
    SendTest,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::RecheckToken => "recheck_token",
            Action::SendTest => "send_test",
        }
    }
}

impl Fact {
    pub fn new(label: &str, value: impl Into<String>, kind: FactKind) -> Fact {
        Fact {
            label: label.to_string(),
            value: value.into(),
            kind,
        }
    }
}

/// The checklist, in the order of DESIGN.md.
pub fn checklist(w: &mut Worker, lang: Lang) -> Result<Vec<Check>> {
    let mut rows = vec![server(w, lang)?];
    rows.push(public_url(w, lang));
    Ok(rows)
}

fn server(w: &mut Worker, lang: Lang) -> Result<Check> {
    let (journal, sync) = w.store.durability()?;
    let durable = journal.eq_ignore_ascii_case("wal") && sync == 2;
    let uptime_s = (crate::time::now_ms() - w.app.started_at_ms) / 1000;
    Ok(Check {
        key: "server",
        status: if durable { Status::Ok } else { Status::Fail },
        title: lang.pick("Relay is running", "Relay работает").into(),
        detail: if durable {
            lang.pick(
                "Every acknowledged webhook is on disk before the answer goes out.",
                "Каждый принятый вебхук записан на диск до того, как уходит ответ.",
            )
        } else {
            lang.pick(
                "The database is not in WAL mode with synchronous=FULL.",
                "База данных не в режиме WAL с synchronous=FULL.",
            )
        }
        .into(),
        facts: vec![
            Fact::new(
                lang.pick("Version", "Версия"),
                env!("CARGO_PKG_VERSION"),
                FactKind::Text,
            ),
            Fact::new(
                lang.pick("Uptime", "Работает"),
                format!("{uptime_s} s"),
                FactKind::Text,
            ),
            Fact::new(
                lang.pick("Database", "База данных"),
                w.app.config.db.display().to_string(),
                FactKind::Code,
            ),
            Fact::new(
                lang.pick("Durability", "Надёжность"),
                format!("journal_mode={journal}, synchronous={sync}"),
                FactKind::Text,
            ),
        ],
        actions: Vec::new(),
    })
}

fn public_url(w: &Worker, lang: Lang) -> Check {
    match &w.app.config.public_url {
        Some(url) => Check {
            key: "public_url",
            status: Status::Ok,
            title: lang.pick("Public address is set", "Публичный адрес задан").into(),
            detail: String::new(),
            facts: vec![Fact::new("URL", url.clone(), FactKind::Code)],
            actions: Vec::new(),
        },
        None => Check {
            key: "public_url",
            status: Status::Todo,
            title: lang.pick("Set the public address", "Задайте публичный адрес").into(),
            detail: lang
                .pick(
                    "Start the relay with --public-url https://your.domain so Chatrace can reach it.",
                    "Запустите relay с --public-url https://ваш.домен, чтобы Chatrace мог до него достучаться.",
                )
                .into(),
            facts: Vec::new(),
            actions: Vec::new(),
        },
    }
}

/// Runs a row's button; returns a sentence for the user, shown above the checklist.
pub fn run_action(w: &mut Worker, action: Action, lang: Lang) -> Result<String> {
    match action {
        Action::SendTest => Ok(send_test(w, lang)),
        Action::RecheckToken => Ok(lang
            .pick(
                "The token check is not built yet.",
                "Проверка токена ещё не готова.",
            )
            .into()),
    }
}

/// Posts the sample webhook to this relay's own endpoint, the way Chatrace would.
fn send_test(w: &Worker, lang: Lang) -> String {
    let url = format!("http://{}/instagram/webhook", w.app.addr);
    let body = crate::commands::sample_body();
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Webhook-Secret", w.app.webhook_secret.as_str()),
        (crate::webhook::TEST_HEADER, "1"),
    ];
    let timeout = std::time::Duration::from_secs(10);
    match crate::outbound::post(&url, &headers, body.as_bytes(), timeout) {
        Ok(reply) if (200..300).contains(&reply.status) => lang
            .pick(
                "Test webhook stored: the relay answered 200.",
                "Тестовый вебхук сохранён: relay ответил 200.",
            )
            .into(),
        Ok(reply) => format!("HTTP {}: {}", reply.status, reply.body.trim()),
        Err(failure) => failure.to_string(),
    }
}
