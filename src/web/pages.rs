//! The HTML pages: sign-in, the dashboard (checklist, stats, recent messages, problem
//! requests, failed deliveries, the reply box), the message list, the checklist's buttons,
//! retrying deliveries, replying, and the language switch. Handlers turn store rows into
//! plain view structs; `views` renders them.

use log::{error, info, warn};
use serde::Serialize;

use crate::checklist::{self, Action, Check, Fact, FactKind, Status};
use crate::error::Result;
use crate::i18n::Lang;
use crate::outcome::{Flag, UnknownCode};
use crate::payload::Direction;
use crate::secret::constant_time_eq;
use crate::store::{
    Contact, FailedDelivery, FlaggedRequest, MergedRequest, Message, RejectedRequest, Requeue,
};
use crate::text::{form_field, percent_encode};
use crate::time::{now_ms, parse_rfc3339};
use crate::{forward, reply};

use super::chart::{chart, Chart, NARROW, WIDE};
use super::request::{Request, Response, LANG_COOKIE};
use super::session::{self, Current, COOKIE, LOGIN_COOKIE};
use super::state::Context;
use super::views;

/// Messages on the dashboard; the message page shows more per page.
const DASHBOARD_MESSAGES: u32 = 10;
const PAGE_MESSAGES: u32 = 50;
const PROBLEM_ROWS: u32 = 20;
const FAILED_ROWS: u32 = 20;
/// Contacts the reply box offers; older ones can still be typed in by id.
const REPLY_CONTACTS: u32 = 50;
const EXCERPT_CHARS: usize = 300;
/// The language cookie lasts a year: it is a preference, not a secret.
const LANG_MAX_AGE_S: i64 = 365 * 86_400;
const LOGIN_MAX_AGE_S: i64 = 3600;
/// `POST /setup/<action>` runs one of the checklist's buttons.
pub const SETUP_ACTION_PREFIX: &str = "/setup/";

/// What the frame around every page needs: the header's links and forms.
#[derive(Serialize)]
struct Frame {
    signed_in: bool,
    /// The session's CSRF token for the header's sign-out form and the page's forms.
    csrf: String,
    /// Which navigation link is the current page.
    page: &'static str,
    /// The current path and query, percent-encoded, for the language links to come back to.
    back: String,
}

impl Frame {
    fn new(req: &Request, current: Option<&Current>, page: &'static str) -> Frame {
        let here = if req.query.is_empty() {
            req.path.clone()
        } else {
            format!("{}?{}", req.path, req.query)
        };
        Frame {
            signed_in: current.is_some(),
            csrf: current.map(|c| c.csrf.clone()).unwrap_or_default(),
            page,
            back: percent_encode(&here),
        }
    }
}

/// An HTML answer. Pages show secrets and messages, so no cache may keep them.
fn html(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![
            ("Content-Type", "text/html; charset=utf-8".into()),
            ("Cache-Control", "no-store".into()),
        ],
        body: body.into_bytes(),
    }
}

pub fn see_other(location: &str) -> Response {
    Response {
        status: 303,
        headers: vec![
            ("Location", location.to_string()),
            ("Cache-Control", "no-store".into()),
        ],
        body: Vec::new(),
    }
}

#[derive(Serialize)]
struct Refused {
    #[serde(flatten)]
    frame: Frame,
    message: &'static str,
}

/// 403 for a form that failed the CSRF or origin check.
pub fn refused(req: &Request, current: Option<&Current>) -> Result<Response> {
    let lang = req.lang();
    let page = Refused {
        frame: Frame::new(req, current, ""),
        message: lang.t("refused_csrf"),
    };
    Ok(html(403, views::render("refused.html", lang, &page)?))
}

#[derive(Serialize)]
struct Login {
    #[serde(flatten)]
    frame: Frame,
    login_csrf: String,
    error: Option<&'static str>,
    /// The command that prints the token of this very relay: its database, by full path.
    token_command: String,
}

/// `sudo chatrace-relay admin-token --db /var/lib/chatrace-relay/chatrace-relay.db` for the
/// unit: run elsewhere without the path, the command would find no database.
fn token_command(cx: &Context) -> String {
    let db = &cx.state.config.db;
    let full = std::fs::canonicalize(db).unwrap_or_else(|_| db.clone());
    let path = full.display().to_string();
    let quoted = if path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        path
    } else {
        format!("'{}'", path.replace('\'', r"'\''"))
    };
    format!("sudo chatrace-relay admin-token --db {quoted}")
}

/// `GET /login`.
pub fn login_form(cx: &mut Context, req: &Request) -> Result<Response> {
    if cx.state.sessions.current(req, now_ms()).is_some() {
        return Ok(see_other("/"));
    }
    // Reusing a token the browser already holds keeps a second open tab's form valid.
    let token = match req.cookie(LOGIN_COOKIE) {
        Some(t) if session::looks_like_token(&t) => t,
        _ => session::new_token()?,
    };
    let page = Login {
        frame: Frame::new(req, None, "login"),
        login_csrf: token.clone(),
        error: None,
        token_command: token_command(cx),
    };
    Ok(
        html(200, views::render("login.html", req.lang(), &page)?).with_header(
            "Set-Cookie",
            session::set_cookie(
                LOGIN_COOKIE,
                &token,
                cx.secure_cookies(),
                Some(LOGIN_MAX_AGE_S),
            ),
        ),
    )
}

/// `POST /login`: the admin token from the form starts a session. The route table has
/// already checked the form's CSRF token and origin.
pub fn login(cx: &mut Context, req: &Request) -> Result<Response> {
    let lang = req.lang();
    let form = req.form();
    let expected = req.cookie(LOGIN_COOKIE).unwrap_or_default();
    let client = req.client.clone().unwrap_or_else(|| "-".into());
    let now = now_ms();
    let again = |status: u16, error: &'static str| -> Result<Response> {
        let page = Login {
            frame: Frame::new(req, None, "login"),
            login_csrf: expected.clone(),
            error: Some(error),
            token_command: token_command(cx),
        };
        Ok(html(status, views::render("login.html", lang, &page)?))
    };
    let sessions = &cx.state.sessions;
    if !sessions.login_allowed(&client, now) {
        return again(429, lang.t("login_throttled"));
    }
    // A pasted token may bring a line break or a space along; nothing else is forgiven.
    let token = form_field(&form, "token")
        .unwrap_or("")
        .trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    if !constant_time_eq(token.as_bytes(), cx.state.admin_token.as_bytes()) {
        sessions.login_failed(&client, now);
        warn!("failed sign-in to the setup page from {client}");
        return again(401, lang.t("login_wrong"));
    }
    sessions.login_succeeded(&client);
    let current = sessions.create(now)?;
    info!("signed in to the setup page from {client}");
    let secure = cx.secure_cookies();
    Ok(see_other("/")
        .with_header(
            "Set-Cookie",
            session::set_cookie(COOKIE, &current.id, secure, None),
        )
        .with_header(
            "Set-Cookie",
            session::set_cookie(LOGIN_COOKIE, "", secure, Some(0)),
        ))
}

/// `POST /logout`.
pub fn logout(cx: &mut Context, _req: &Request, current: &Current) -> Result<Response> {
    cx.state.sessions.remove(&current.id);
    Ok(see_other("/login").with_header(
        "Set-Cookie",
        session::set_cookie(COOKIE, "", cx.secure_cookies(), Some(0)),
    ))
}

/// `POST /setup/<action>`: runs one of the checklist's buttons, then goes back to the
/// dashboard, which shows the outcome once.
pub fn setup_action(cx: &mut Context, req: &Request, current: &Current) -> Result<Response> {
    let lang = req.lang();
    let name = req.path.strip_prefix(SETUP_ACTION_PREFIX).unwrap_or("");
    // A stale or forged name does nothing; a button the checklist does not show right
    // now is refused by the action itself.
    let message = match Action::from_name(name) {
        Some(action) => match checklist::run_action(&cx.relay(), action, lang) {
            Ok(sentence) => sentence,
            Err(e) => {
                error!("setup action {name} failed: {e}");
                lang.t("action_failed").to_string()
            }
        },
        None => lang.t("unknown_action").to_string(),
    };
    cx.state.sessions.set_flash(&current.id, message);
    Ok(see_other("/#setup"))
}

/// `POST /deliveries/replay` with `id`: retries one failed delivery now, then shows the
/// dashboard with the outcome.
pub fn replay_delivery(cx: &mut Context, req: &Request, current: &Current) -> Result<Response> {
    let lang = req.lang();
    let form = req.form();
    let id = form_field(&form, "id").and_then(|v| v.trim().parse::<i64>().ok());
    let replayed = id.map(|id| {
        let n = forward::replay(&cx.store, &cx.state.forward_bell, Requeue::One(id));
        (id, n)
    });
    let message = match replayed {
        Some((id, Ok(n))) if n > 0 => lang.t("retry_queued").replace("{id}", &id.to_string()),
        Some((_, Ok(_))) | None => lang.t("retry_missing").to_string(),
        Some((id, Err(e))) => {
            error!("retrying delivery {id} failed: {e}");
            lang.t("action_failed").to_string()
        }
    };
    cx.state.sessions.set_flash(&current.id, message);
    Ok(see_other("/#flash"))
}

/// `POST /reply` with `contact` (the list) or `contact_id` (typed) and `text`: sends it
/// through Chatrace and shows the outcome; Chatrace's refusal is shown in its own words.
pub fn send_reply(cx: &mut Context, req: &Request, current: &Current) -> Result<Response> {
    let lang = req.lang();
    let form = req.form();
    let given = |name| {
        form_field(&form, name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    // A typed id wins: it is the way to reach someone the list does not offer.
    let contact = given("contact_id").or_else(|| given("contact"));
    // Browsers send a textarea's line breaks as CRLF; Instagram wants plain newlines.
    let text = form_field(&form, "text")
        .unwrap_or("")
        .replace("\r\n", "\n");
    let message = match contact {
        None => lang.t("reply_no_contact").to_string(),
        Some(contact) => {
            match reply::send(&cx.chatrace(), &cx.store, &cx.state.metrics, contact, &text) {
                Ok(_) => lang.t("reply_sent").to_string(),
                Err(e) => format!("{} {e}", lang.t("reply_failed")),
            }
        }
    };
    cx.state.sessions.set_flash(&current.id, message);
    Ok(see_other("/#flash"))
}

/// `GET /lang?to=ru&back=/messages`: remembers the choice and returns to the page. A link,
/// so it works without script; `back` must be a path on this site (no open redirect).
pub fn switch_lang(cx: &mut Context, req: &Request) -> Result<Response> {
    let back = req
        .query_param("back")
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        // A Location header carries ASCII only; anything else falls back to the start page.
        .filter(|b| b.bytes().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "/".into());
    let mut answer = see_other(&back);
    if let Some(lang) = req.query_param("to").and_then(|c| Lang::from_code(&c)) {
        let mut cookie = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age={LANG_MAX_AGE_S}; SameSite=Lax",
            lang.code()
        );
        if cx.secure_cookies() {
            cookie.push_str("; Secure");
        }
        answer = answer.with_header("Set-Cookie", cookie);
    }
    Ok(answer)
}

/// `GET /static/copy.js`: the copy buttons.
pub fn script(_cx: &mut Context, _req: &Request) -> Result<Response> {
    Ok(Response {
        status: 200,
        headers: vec![
            ("Content-Type", "text/javascript; charset=utf-8".into()),
            // The link carries the version, so a new release is fetched anew.
            ("Cache-Control", "public, max-age=86400".into()),
        ],
        body: views::SCRIPT.as_bytes().to_vec(),
    })
}

/// `GET /static/style.css`.
pub fn stylesheet(_cx: &mut Context, _req: &Request) -> Result<Response> {
    Ok(Response {
        status: 200,
        headers: vec![
            ("Content-Type", "text/css; charset=utf-8".into()),
            // The link carries the version, so a new release is fetched anew.
            ("Cache-Control", "public, max-age=86400".into()),
        ],
        body: views::STYLESHEET.as_bytes().to_vec(),
    })
}

#[derive(Serialize)]
struct Dashboard {
    #[serde(flatten)]
    frame: Frame,
    flash: Option<String>,
    checks: Vec<CheckView>,
    cards: Vec<Card>,
    forwarding: Vec<Card>,
    chart_wide: Chart,
    chart_narrow: Chart,
    messages: Vec<MessageRow>,
    more_messages: bool,
    flagged: Vec<FlaggedRow>,
    merged: Vec<MergedRow>,
    rejected: Vec<RejectedRow>,
    failed: Vec<FailedRow>,
    reply: ReplyBox,
}

/// The reply form: disabled, with a hint, until a Chatrace token is configured.
#[derive(Serialize)]
struct ReplyBox {
    enabled: bool,
    contacts: Vec<ContactOption>,
    max_chars: usize,
}

impl ReplyBox {
    fn new(cx: &Context) -> Result<ReplyBox> {
        let enabled = cx.state.config.chatrace_token.is_some();
        let contacts = if enabled {
            cx.store.recent_contacts(REPLY_CONTACTS)?
        } else {
            Vec::new()
        };
        Ok(ReplyBox {
            enabled,
            contacts: contacts.into_iter().map(ContactOption::new).collect(),
            max_chars: reply::MAX_TEXT_CHARS,
        })
    }
}

#[derive(Serialize)]
struct ContactOption {
    id: String,
    /// "Name (@username) · id", or as much of it as is known.
    label: String,
}

impl ContactOption {
    fn new(c: Contact) -> ContactOption {
        let known = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        let who = match (known(c.name), known(c.username)) {
            (Some(name), Some(user)) => format!("{name} (@{user}) · "),
            (Some(name), None) => format!("{name} · "),
            (None, Some(user)) => format!("@{user} · "),
            (None, None) => String::new(),
        };
        ContactOption {
            label: format!("{who}{}", c.contact_id),
            id: c.contact_id,
        }
    }
}

/// The failed deliveries listed for retrying, only while forwarding is configured: without
/// a target nothing would send them.
fn failed_rows(cx: &Context, lang: Lang) -> Result<Vec<FailedRow>> {
    if cx.state.config.forward_urls.is_empty() {
        return Ok(Vec::new());
    }
    Ok(cx
        .store
        .recent_failed_deliveries(FAILED_ROWS)?
        .into_iter()
        .map(|d| FailedRow::new(d, lang))
        .collect())
}

/// `GET /`.
pub fn dashboard(cx: &mut Context, req: &Request, current: &Current) -> Result<Response> {
    let now = now_ms();
    let lang = req.lang();
    let checks = checklist::checklist(&cx.relay(), lang)?
        .into_iter()
        .map(|c| CheckView::new(c, lang))
        .collect();
    let stats = cx.store.stats(now)?;
    let card = |key: &'static str, label: &str, value: i64| Card {
        key,
        label: lang.t(label).to_string(),
        value: value.to_string(),
        note: None,
    };
    let last = stats.last_message_at.as_deref().and_then(parse_rfc3339);
    let cards = vec![
        card("total", "stat_total", stats.total_messages),
        card("today", "stat_today", stats.messages_today),
        card("last_24h", "stat_24h", stats.messages_last_24h),
        card("contacts", "stat_contacts", stats.unique_contacts),
        Card {
            key: "last_message",
            label: lang.t("stat_last").to_string(),
            value: last.map_or_else(|| lang.t("never").to_string(), |ms| lang.datetime(ms)),
            note: last.map(|ms| lang.ago(now, ms)),
        },
        card("received", "stat_received", stats.webhooks_received),
        card("duplicates", "stat_duplicates", stats.duplicates),
        card("rejected", "stat_rejected", stats.webhooks_rejected),
    ];
    let f = &stats.forwarding;
    let forwarding =
        if cx.state.config.forward_urls.is_empty() && f.pending + f.delivered + f.failed == 0 {
            Vec::new()
        } else {
            vec![
                card("fwd_pending", "fwd_pending", f.pending),
                card("fwd_delivered", "fwd_delivered", f.delivered),
                card("fwd_failed", "fwd_failed", f.failed),
            ]
        };
    let (messages, more_messages) = cx.store.recent_messages(None, DASHBOARD_MESSAGES)?;
    let flagged = cx.store.recent_flagged(PROBLEM_ROWS, EXCERPT_CHARS)?;
    let rejected = cx.store.recent_rejected(PROBLEM_ROWS)?;
    let merged = cx.store.recent_merged(PROBLEM_ROWS, EXCERPT_CHARS)?;
    let page = Dashboard {
        frame: Frame::new(req, Some(current), "dashboard"),
        flash: cx.state.sessions.take_flash(&current.id),
        checks,
        cards,
        forwarding,
        chart_wide: chart(&stats.by_day, lang, WIDE),
        chart_narrow: chart(&stats.by_day, lang, NARROW),
        messages: messages
            .into_iter()
            .map(|m| MessageRow::new(m, lang, now))
            .collect(),
        more_messages,
        flagged: flagged
            .into_iter()
            .map(|f| FlaggedRow::new(f, lang))
            .collect(),
        merged: merged
            .into_iter()
            .map(|m| MergedRow::new(m, lang))
            .collect(),
        rejected: rejected
            .into_iter()
            .map(|r| RejectedRow::new(r, lang))
            .collect(),
        failed: failed_rows(cx, lang)?,
        reply: ReplyBox::new(cx)?,
    };
    Ok(html(200, views::render("dashboard.html", lang, &page)?))
}

#[derive(Serialize)]
struct MessagesPage {
    #[serde(flatten)]
    frame: Frame,
    messages: Vec<MessageRow>,
    page_label: String,
    /// Query strings of the links to the newer and the older page.
    newer: Option<String>,
    older: Option<String>,
}

/// `GET /messages`: every message, newest first. Pages are keyed by message id
/// (`?before=ID` for older, `?after=ID` for newer), so a page far back costs the same as
/// the first; `page=N` only numbers the page in its label.
pub fn messages(cx: &mut Context, req: &Request, current: &Current) -> Result<Response> {
    let now = now_ms();
    let lang = req.lang();
    let id_param = |name: &str| {
        req.query_param(name)
            .and_then(|p| p.trim().parse::<i64>().ok())
            .filter(|&id| id >= 0)
    };
    let mut page = req
        .query_param("page")
        .and_then(|p| p.trim().parse::<u32>().ok())
        .filter(|&p| p >= 1)
        .unwrap_or(1);
    let (messages, newer_exist, older_exist) = match (id_param("before"), id_param("after")) {
        (Some(before), _) => {
            let (messages, more) = cx.store.recent_messages(Some(before), PAGE_MESSAGES)?;
            (messages, true, more)
        }
        (None, Some(after)) => {
            let (messages, more) = cx.store.newer_messages(after, PAGE_MESSAGES)?;
            if messages.is_empty() {
                // Nothing newer: show the newest page instead of an empty one.
                let (messages, more) = cx.store.recent_messages(None, PAGE_MESSAGES)?;
                page = 1;
                (messages, false, more)
            } else {
                (messages, more, true)
            }
        }
        (None, None) => {
            page = 1;
            let (messages, more) = cx.store.recent_messages(None, PAGE_MESSAGES)?;
            (messages, false, more)
        }
    };
    if !newer_exist {
        page = 1;
    }
    let first = messages.first().map(|m| m.id);
    let last = messages.last().map(|m| m.id);
    let view = MessagesPage {
        frame: Frame::new(req, Some(current), "messages"),
        messages: messages
            .into_iter()
            .map(|m| MessageRow::new(m, lang, now))
            .collect(),
        page_label: lang.t("page_n").replace("{n}", &page.to_string()),
        newer: first
            .filter(|_| newer_exist)
            .map(|id| format!("after={id}&page={}", page.saturating_sub(1).max(1))),
        older: last
            .filter(|_| older_exist)
            .map(|id| format!("before={id}&page={}", page.saturating_add(1))),
    };
    Ok(html(200, views::render("messages.html", lang, &view)?))
}

#[derive(Serialize)]
struct Card {
    key: &'static str,
    label: String,
    value: String,
    note: Option<String>,
}

#[derive(Serialize)]
struct CheckView {
    key: &'static str,
    status: Status,
    status_label: &'static str,
    title: String,
    detail: String,
    facts: Vec<FactView>,
    actions: Vec<ActionView>,
}

impl CheckView {
    fn new(c: Check, lang: Lang) -> CheckView {
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
struct FactView {
    label: String,
    value: String,
    kind: FactKind,
    /// Set only for Link facts whose value is an http(s) URL.
    href: Option<String>,
    /// Long or multi-line code goes in a block, short code inline.
    block: bool,
}

impl FactView {
    fn new(f: Fact) -> FactView {
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
struct ActionView {
    name: &'static str,
    label: String,
}

impl ActionView {
    fn new(a: Action, lang: Lang) -> ActionView {
        let key = format!("action_{}", a.name());
        ActionView {
            name: a.name(),
            // A new action without a catalogue entry still gets a readable button.
            label: match lang.t(&key) {
                k if k == key => a.name().replace('_', " "),
                label => label.to_string(),
            },
        }
    }
}

#[derive(Serialize)]
struct MessageRow {
    id: i64,
    time: String,
    ago: String,
    name: String,
    username: Option<String>,
    contact_id: String,
    channel: Option<String>,
    direction: Direction,
    direction_label: &'static str,
    text: Option<String>,
    attachments: Vec<AttachmentView>,
    test: bool,
}

impl MessageRow {
    fn new(m: Message, lang: Lang, now: i64) -> MessageRow {
        MessageRow {
            id: m.id,
            time: lang.datetime(m.received_at_ms),
            ago: lang.ago(now, m.received_at_ms),
            name: m
                .contact_name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| m.contact_id.clone()),
            username: m.username.filter(|u| !u.trim().is_empty()),
            contact_id: m.contact_id,
            channel: m.channel,
            direction_label: lang.t(match m.direction {
                Direction::In => "dir_in",
                Direction::Out => "dir_out",
            }),
            direction: m.direction,
            text: m.text.filter(|t| !t.is_empty()),
            attachments: m
                .attachments
                .into_iter()
                .map(|a| AttachmentView {
                    href: web_url(&a.url),
                    preview: web_url(&a.url)
                        .filter(|u| a.kind == "image" && u[..6].eq_ignore_ascii_case("https:")),
                    kind: a.kind,
                    url: a.url,
                })
                .collect(),
            test: m.test,
        }
    }
}

#[derive(Serialize)]
struct AttachmentView {
    kind: String,
    url: String,
    /// Only http(s) URLs become links; anything else (javascript:, data:...) stays text.
    href: Option<String>,
    /// An image's URL to show as a preview: https only, the one scheme the page's
    /// Content-Security-Policy lets images load from.
    preview: Option<String>,
}

#[derive(Serialize)]
struct FlaggedRow {
    time: String,
    flag: String,
    label: String,
    /// For unfilled variables: the fields that held them.
    fields: Option<String>,
    /// The parser's own words for anything else.
    detail: Option<String>,
    request: String,
    excerpt: String,
    test: bool,
}

impl FlaggedRow {
    fn new(f: FlaggedRequest, lang: Lang) -> FlaggedRow {
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
struct MergedRow {
    time: String,
    excerpt: String,
    /// The stored message it was taken for.
    message_id: Option<i64>,
    test: bool,
}

impl MergedRow {
    fn new(m: MergedRequest, lang: Lang) -> MergedRow {
        MergedRow {
            time: lang.datetime(m.received_at_ms),
            excerpt: m.excerpt,
            message_id: m.message_id,
            test: m.test,
        }
    }
}

#[derive(Serialize)]
struct RejectedRow {
    time: String,
    reason: String,
    label: String,
    hint: Option<String>,
    detail: Option<String>,
    request: String,
    client: Option<String>,
    excerpt: String,
}

impl RejectedRow {
    fn new(r: RejectedRequest, lang: Lang) -> RejectedRow {
        let (reason, label, hint, detail) = match r.refusal {
            Ok(refusal) => {
                let (label, hint) = refusal.words();
                (
                    refusal.code().to_string(),
                    lang.t(label).to_string(),
                    Some(lang.t(hint).to_string()),
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
struct FailedRow {
    id: i64,
    time: String,
    target: String,
    contact_id: String,
    external_id: Option<String>,
    attempts: i64,
    /// "HTTP 500", when the target answered at all.
    status: Option<String>,
    error: Option<String>,
}

impl FailedRow {
    fn new(d: FailedDelivery, lang: Lang) -> FailedRow {
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

/// The URL, trimmed, when it is an http(s) URL; None for javascript:, data: and the rest.
fn web_url(value: &str) -> Option<String> {
    let v = value.trim();
    let lower = v.get(..8).unwrap_or(v).to_ascii_lowercase();
    let web = lower.starts_with("http://") || lower.starts_with("https://");
    (web && !v.chars().any(|c| c.is_control() || c.is_whitespace())).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let html = views::render("dashboard.html", Lang::Ru, &page).unwrap();
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
        assert!(html.contains("<dd>javascript:alert(1)</dd>"));
        assert!(html.contains(r#"<pre class="excerpt">&lt;script&gt;"#));
        assert!(html.contains(r#"<form method="post" action="/setup/send_test">"#));
        assert!(html.contains(r#"<input type="hidden" name="csrf" value="tok">"#));
        assert!(html.contains("Отправить тестовый вебхук"));
        // The relay's own copy-button script is the only one.
        assert_eq!(html.matches("<script").count(), 1);
        assert!(html.contains(r#"<script src="/static/copy.js?v="#));
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

    #[test]
    fn only_web_urls_become_links() {
        assert_eq!(
            web_url(" https://cdn.example.com/a.jpg ").as_deref(),
            Some("https://cdn.example.com/a.jpg")
        );
        assert_eq!(
            web_url("HTTP://x.example/").as_deref(),
            Some("HTTP://x.example/")
        );
        for bad in [
            "javascript:alert(1)",
            " JavaScript:alert(1)",
            "data:text/html,<script>",
            "//evil.example",
            "https://x.example/a b",
            "http\u{0}://x",
            "",
            "héllo",
        ] {
            assert_eq!(web_url(bad), None, "{bad:?}");
        }
    }
}
