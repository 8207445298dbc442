//! The dashboard: the checklist as cards of facts and buttons, the stats, and the tables of
//! problem requests and failed deliveries, each row already in the reader's language.

use serde::Serialize;

use super::chart::Chart;
use super::messages::MessageRow;
use super::Frame;
use crate::checklist::{Action, Check, Fact, FactKind, Status};
use crate::i18n::Lang;
use crate::outcome::{Flag, UnknownCode};
use crate::paths;
use crate::reply;
use crate::store::{Contact, FailedDelivery, FlaggedRequest, MergedRequest, RejectedRequest};
use crate::text::{web_url, without_direction_controls};

#[derive(Serialize)]
pub struct Dashboard {
    #[serde(flatten)]
    pub frame: Frame,
    pub flash: Option<String>,
    pub checks: Vec<CheckView>,
    pub cards: Vec<Card>,
    pub forwarding: Vec<Card>,
    pub chart_wide: Chart,
    pub chart_narrow: Chart,
    pub messages: Vec<MessageRow>,
    pub more_messages: bool,
    pub flagged: Vec<FlaggedRow>,
    pub merged: Vec<MergedRow>,
    pub rejected: Vec<RejectedRow>,
    pub failed: Vec<FailedRow>,
    pub reply: ReplyBox,
}

/// The reply form: disabled, with a hint, until a Chatrace token is configured.
#[derive(Serialize)]
pub struct ReplyBox {
    pub enabled: bool,
    pub contacts: Vec<ContactOption>,
    pub max_chars: usize,
}

impl ReplyBox {
    /// `contacts` is empty when replying is not `enabled`.
    pub fn new(enabled: bool, contacts: Vec<Contact>) -> ReplyBox {
        ReplyBox {
            enabled,
            contacts: contacts.into_iter().map(ContactOption::new).collect(),
            max_chars: reply::MAX_TEXT_CHARS,
        }
    }
}

#[derive(Serialize)]
pub struct ContactOption {
    pub id: String,
    /// "Name (@username) · id", or as much of it as is known.
    pub label: String,
}

impl ContactOption {
    pub fn new(c: Contact) -> ContactOption {
        let known = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        let who = match (known(c.name), known(c.username)) {
            (Some(name), Some(user)) => format!("{name} (@{user}) · "),
            (Some(name), None) => format!("{name} · "),
            (None, Some(user)) => format!("@{user} · "),
            (None, None) => String::new(),
        };
        // An option's text cannot be isolated from the text around it by markup.
        ContactOption {
            label: without_direction_controls(&format!("{who}{}", c.contact_id)),
            id: c.contact_id,
        }
    }
}

#[derive(Serialize)]
pub struct Card {
    pub key: &'static str,
    pub label: String,
    pub value: String,
    pub note: Option<String>,
}

#[derive(Serialize)]
pub struct CheckView {
    pub key: &'static str,
    pub status: Status,
    pub status_label: &'static str,
    pub title: String,
    pub detail: String,
    pub facts: Vec<FactView>,
    pub actions: Vec<ActionView>,
}

impl CheckView {
    pub fn new(c: Check, lang: Lang) -> CheckView {
        let status_key = match c.status {
            Status::Ok => "status_ok",
            Status::Todo => "status_todo",
            Status::Warn => "status_warn",
            Status::Fail => "status_fail",
        };
        CheckView {
            key: c.key,
            status: c.status,
            status_label: lang.t(status_key),
            title: c.title,
            detail: c.detail,
            facts: c.facts.into_iter().map(FactView::new).collect(),
            actions: c
                .actions
                .into_iter()
                .map(|a| ActionView::new(a, lang))
                .collect(),
        }
    }
}

#[derive(Serialize)]
pub struct FactView {
    pub label: String,
    pub value: String,
    pub kind: FactKind,
    /// Set only for Link facts whose value is an http(s) URL.
    pub href: Option<String>,
    /// Long or multi-line code goes in a block, short code inline.
    pub block: bool,
}

impl FactView {
    pub fn new(f: Fact) -> FactView {
        FactView {
            href: (f.kind == FactKind::Link)
                .then(|| web_url(&f.value))
                .flatten(),
            block: f.value.contains('\n') || f.value.chars().count() > 60,
            label: f.label,
            value: f.value,
            kind: f.kind,
        }
    }
}

#[derive(Serialize)]
pub struct ActionView {
    pub name: &'static str,
    pub label: String,
    /// The one field the button's form carries, if any.
    pub input: Option<InputView>,
}

#[derive(Serialize)]
pub struct InputView {
    pub kind: &'static str,
    pub label: &'static str,
    pub autocomplete: &'static str,
}

impl ActionView {
    pub fn new(a: Action, lang: Lang) -> ActionView {
        ActionView {
            name: a.name(),
            label: lang.t(a.label_key()).to_string(),
            input: a.input().map(|i| InputView {
                kind: i.kind,
                label: lang.t(i.label),
                autocomplete: i.autocomplete,
            }),
        }
    }
}

#[derive(Serialize)]
pub struct FlaggedRow {
    pub time: String,
    pub flag: String,
    pub label: String,
    /// For unfilled variables: the fields that held them.
    pub fields: Option<String>,
    /// The parser's own words for anything else.
    pub detail: Option<String>,
    pub request: String,
    pub excerpt: String,
    pub test: bool,
}

impl FlaggedRow {
    pub fn new(f: FlaggedRequest, lang: Lang) -> FlaggedRow {
        let (code, label, fields, detail) = match f.flag {
            Ok(flag) => {
                let (fields, detail) = match &flag {
                    Flag::UnfilledPlaceholders(fields) => (Some(fields.join(", ")), None),
                    Flag::NoMessage(reason) => (None, Some(reason.clone())),
                };
                let label = lang.t(flag.label_key()).to_string();
                (flag.code().to_string(), label, fields, detail)
            }
            // A flag of another version: its code is all there is to name it.
            Err(UnknownCode(code)) => (code.clone(), code, None, None),
        };
        FlaggedRow {
            time: lang.datetime(f.received_at_ms),
            label,
            flag: code,
            fields,
            detail: detail.filter(|d| !d.is_empty()),
            request: match f.content_type {
                Some(ct) => format!("{} · {ct}", f.method),
                None => f.method,
            },
            excerpt: f.excerpt,
            test: f.test,
        }
    }
}

#[derive(Serialize)]
pub struct MergedRow {
    pub time: String,
    pub excerpt: String,
    /// The stored message it was taken for.
    pub message_id: Option<i64>,
    /// That message's contact's thread.
    pub thread_href: Option<String>,
    pub test: bool,
}

impl MergedRow {
    pub fn new(m: MergedRequest, lang: Lang) -> MergedRow {
        MergedRow {
            time: lang.datetime(m.received_at_ms),
            excerpt: m.excerpt,
            message_id: m.message_id,
            thread_href: m
                .contact_id
                .as_deref()
                .map(super::conversations::thread_href),
            test: m.test,
        }
    }
}

#[derive(Serialize)]
pub struct RejectedRow {
    pub time: String,
    pub reason: String,
    pub label: String,
    pub hint: Option<String>,
    pub detail: Option<String>,
    pub request: String,
    pub client: Option<String>,
    pub excerpt: String,
}

impl RejectedRow {
    pub fn new(r: RejectedRequest, lang: Lang) -> RejectedRow {
        let (reason, label, hint, detail) = match r.refusal {
            Ok(refusal) => {
                let (label, hint) = refusal.words();
                (
                    refusal.code().to_string(),
                    lang.t(label).to_string(),
                    Some(lang.t(hint).replace("{path}", paths::WEBHOOK)),
                    refusal.detail_adds().then_some(r.detail),
                )
            }
            // A reason of another version: its code and the stored detail are all there is.
            Err(UnknownCode(code)) => (code.clone(), code, None, Some(r.detail)),
        };
        RejectedRow {
            time: lang.datetime(r.received_at_ms),
            reason,
            label,
            hint,
            detail,
            request: format!("{} {}", r.method, r.path),
            client: r.remote_addr,
            excerpt: r.excerpt,
        }
    }
}

#[derive(Serialize)]
pub struct FailedRow {
    pub id: i64,
    pub time: String,
    pub target: String,
    pub contact_id: String,
    pub external_id: Option<String>,
    pub attempts: i64,
    /// "HTTP 500", when the target answered at all.
    pub status: Option<String>,
    pub error: Option<String>,
}

impl FailedRow {
    pub fn new(d: FailedDelivery, lang: Lang) -> FailedRow {
        let status = d.last_status.map(|s| format!("HTTP {s}"));
        FailedRow {
            id: d.id,
            time: lang.datetime(d.last_attempt_at),
            target: d.target,
            contact_id: d.contact_id,
            external_id: d.external_id,
            attempts: d.attempts,
            // A bare "HTTP 500" says nothing the status does not already say.
            error: d.last_error.filter(|e| Some(e) != status.as_ref()),
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Request;
    use crate::web::session::Current;
    use crate::web::views::chart::{chart, NARROW, WIDE};
    use crate::web::views::render;

    /// The checklist is rendered generically: every fact kind, as the other rows will use
    /// them, including a hostile Link.
    #[test]
    fn every_fact_kind_renders_safely() {
        let check = Check {
            key: "webhook_configured",
            status: Status::Warn,
            title: "Paste <this>".into(),
            detail: "detail & more".into(),
            facts: vec![
                Fact::new("Secret", "s3cr3t-value", FactKind::Secret),
                Fact::new(
                    "URL",
                    "https://relay.example/instagram/webhook",
                    FactKind::Code,
                ),
                Fact::new("Body", "{\n  \"text\": \"{{text}}\"\n}", FactKind::Code),
                Fact::new("Docs", "https://example.com/a?b=1&c=2", FactKind::Link),
                Fact::new("Bad", "javascript:alert(1)", FactKind::Link),
                Fact::new("Seen", "<script>alert(1)</script>", FactKind::Excerpt),
            ],
            actions: vec![Action::SendTest],
        };
        let req = Request {
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
            client: None,
        };
        let current = Current {
            id: "id".into(),
            csrf: "tok".into(),
        };
        let days: Vec<_> = (0..30)
            .map(|i| crate::store::ByDay {
                date: format!("2026-11-{:02}", i + 1),
                count: i,
            })
            .collect();
        let page = Dashboard {
            frame: Frame::new(&req, Some(&current), "dashboard"),
            flash: Some("<b>done</b>".into()),
            checks: vec![CheckView::new(check, Lang::Ru)],
            cards: Vec::new(),
            forwarding: Vec::new(),
            chart_wide: chart(&days, Lang::Ru, WIDE),
            chart_narrow: chart(&days, Lang::Ru, NARROW),
            messages: Vec::new(),
            more_messages: false,
            flagged: Vec::new(),
            merged: Vec::new(),
            rejected: Vec::new(),
            failed: Vec::new(),
            reply: ReplyBox {
                enabled: false,
                contacts: Vec::new(),
                max_chars: reply::MAX_TEXT_CHARS,
            },
        };
        let html = render("dashboard.html", Lang::Ru, &page).unwrap();
        assert!(html.contains("Paste &lt;this&gt;"));
        assert!(html.contains("&lt;b&gt;done&lt;&#x2f;b&gt;"));
        assert!(html.contains(r#"<span class="badge badge-warn">"#));
        assert!(html.contains("Внимание"));
        assert!(html.contains(
            r#"<details class="secret"><summary>Показать</summary><code class="select-all""#
        ));
        assert!(html.contains(r#"<pre class="code select-all""#));
        assert!(html.contains(
            r#"<a href="https:&#x2f;&#x2f;example.com&#x2f;a?b=1&amp;c=2" rel="noopener noreferrer""#
        ));
        assert!(!html.contains(r#"href="javascript"#));
        assert!(html.contains("<dd><bdi>javascript:alert(1)</bdi></dd>"));
        assert!(html.contains(r#"<pre class="excerpt"><bdi>&lt;script&gt;"#));
        assert!(html.contains(r#"<form method="post" action="/setup/send_test">"#));
        assert!(html.contains(r#"<input type="hidden" name="csrf" value="tok">"#));
        assert!(html.contains("Отправить тестовый вебхук"));
        // The relay's own scripts are the only ones: the copy buttons and local times.
        assert_eq!(html.matches("<script").count(), 2);
        assert!(html.contains(r#"<script src="/static/copy.js?v="#));
        assert!(html.contains(r#"<script src="/static/local-time.js?v="#));
        assert!(html.contains(r#"data-copy="s3cr3t-value""#));
    }

    /// A refusal or flag without words would show its raw key on the page.
    #[test]
    fn every_refusal_and_flag_has_its_words_in_the_catalogue() {
        let known: Vec<&str> = Lang::En.catalogue().map(|(k, _)| k).collect();
        for refusal in crate::outcome::Refusal::ALL {
            let (label, hint) = refusal.words();
            assert!(known.contains(&label), "{refusal:?}: no {label}");
            assert!(known.contains(&hint), "{refusal:?}: no {hint}");
        }
        for flag in [
            Flag::UnfilledPlaceholders(Vec::new()),
            Flag::NoMessage(String::new()),
        ] {
            assert!(known.contains(&flag.label_key()), "{flag:?}");
        }
    }
}
