//! The setup checklist: what stands between a fresh install and the first Instagram message,
//! computed from facts each time it is shown. The page renders it, `/api/setup` serves it.

use std::path::Path;

use log::warn;
use serde::{Deserialize, Serialize};

use std::net::SocketAddr;

use crate::chatrace::{self, TokenCheck};
use crate::config::Config;
use crate::error::Result;
use crate::forward::Doorbell;
use crate::i18n::Lang;
use crate::outbound::Failure;
use crate::probe::{ProbeOutcome, SelfProbe, UrlConcern};
use crate::store::{Problem, ProblemBody, Store, TargetStatus};
use crate::time::now_ms;

mod words;

pub use words::{describe_failure, token_advice, token_verdict};

/// What the checklist looks at: the running relay's settings and state, and a database
/// connection of the caller's.
pub struct Relay<'a> {
    pub config: &'a Config,
    pub webhook_secret: &'a str,
    /// The address actually bound.
    pub addr: SocketAddr,
    pub started_at_ms: i64,
    pub probe: &'a SelfProbe,
    /// Rung after a replay, so the delivery threads look at the outbox at once.
    pub forward_bell: &'a Doorbell,
    pub store: &'a Store,
}

/// Ordered from good to bad, so the worst of several is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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
    /// Puts every failed delivery back in the queue.
    ReplayFailed,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::RecheckToken => "recheck_token",
            Action::SendTest => "send_test",
            Action::ReplayFailed => "replay_failed",
        }
    }

    /// The action named in a URL (`/setup/<name>`, `/api/setup/<name>`).
    pub fn from_name(name: &str) -> Option<Action> {
        [Action::RecheckToken, Action::SendTest, Action::ReplayFailed]
            .into_iter()
            .find(|a| a.name() == name)
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

/// Settings key of the cached token verdict (never the token itself).
const TOKEN_CHECK_KEY: &str = "chatrace_token_check";
/// A valid token is re-checked by itself after this long; other verdicts sooner, so a fix
/// on Chatrace's side shows up without pressing the button.
const TOKEN_VALID_FOR_MS: i64 = 3_600_000;
const TOKEN_OTHER_FOR_MS: i64 = 300_000;
/// How many misconfigured requests the webhook row shows.
const PROBLEMS_SHOWN: u32 = 3;
const EXCERPT_CHARS: usize = 300;
/// Free disk space below either of these is a warning.
const LOW_DISK_BYTES: u64 = 1024 * 1024 * 1024;
const LOW_DISK_PERCENT: u64 = 5;
/// A delivery pending longer than this means the target has been failing for a while.
const STUCK_PENDING_MS: i64 = 10 * 60_000;
const WEBHOOK_PATH: &str = "/instagram/webhook";

/// The checklist, in the order of DESIGN.md.
pub fn checklist(r: &Relay, lang: Lang) -> Result<Vec<Check>> {
    // The self-probe waits on the network (and on another worker of this process): it runs
    // beside the database reads and the token check instead of after them.
    std::thread::scope(|scope| {
        let probe = scope.spawn(|| probe_public_url(r.config, r.probe));
        let server = server(r, lang)?;
        let token = chatrace_token(r, lang)?;
        let webhook = webhook_configured(r, lang)?;
        let first = first_message(r, lang)?;
        let forwarding = if r.config.forward_urls.is_empty() {
            None
        } else {
            Some(forwarding(r, lang)?)
        };
        let probe = probe.join().unwrap_or_else(|_| {
            Some(ProbeOutcome::Unreachable(Failure::Other(
                "the probe thread crashed".into(),
            )))
        });
        let mut rows = vec![server, public_url(r, probe, lang), token, webhook, first];
        rows.extend(forwarding);
        Ok(rows)
    })
}

/// Runs a row's button; returns a sentence for the user, shown above the checklist.
pub fn run_action(r: &Relay, action: Action, lang: Lang) -> Result<String> {
    match action {
        Action::SendTest => Ok(send_test(r, lang)),
        Action::ReplayFailed => {
            let n = crate::forward::replay(
                r.store,
                r.forward_bell,
                crate::store::Requeue::Failed { since_ms: i64::MIN },
            )?;
            Ok(format!(
                "{}: {n}",
                lang.pick("Deliveries queued again", "Доставок снова в очереди")
            ))
        }
        Action::RecheckToken => {
            let (check, _) = token_check(r, true)?;
            Ok(if check.is_valid() {
                token_verdict(&check, lang)
            } else {
                format!(
                    "{} {}",
                    token_verdict(&check, lang),
                    token_advice(&check, lang)
                )
            })
        }
    }
}

// ----- server -----

fn server(r: &Relay, lang: Lang) -> Result<Check> {
    let (journal, sync) = r.store.durability()?;
    let durable = journal.eq_ignore_ascii_case("wal") && sync == 2;
    let config = &r.config;
    let (db_bytes, wal_bytes) = crate::store::file_sizes(&config.db);
    let disk = disk_space(&config.db);
    let low_disk = disk.is_some_and(|(free, total)| {
        free < LOW_DISK_BYTES || free.saturating_mul(100) < total.saturating_mul(LOW_DISK_PERCENT)
    });
    let near_cap = config
        .max_db_bytes
        .is_some_and(|max| (db_bytes + wal_bytes).saturating_mul(10) > max.saturating_mul(9));
    let mut facts = vec![
        Fact::new(
            lang.pick("Version", "Версия"),
            env!("CARGO_PKG_VERSION"),
            FactKind::Text,
        ),
        Fact::new(
            lang.pick("Uptime", "Работает"),
            duration_text(now_ms() - r.started_at_ms, lang),
            FactKind::Text,
        ),
        Fact::new(
            lang.pick("Database", "База данных"),
            config.db.display().to_string(),
            FactKind::Code,
        ),
        Fact::new(
            lang.pick("Database size", "Размер базы"),
            format!(
                "{} (+ WAL {})",
                bytes_text(db_bytes, lang),
                bytes_text(wal_bytes, lang)
            ),
            FactKind::Text,
        ),
        Fact::new(
            lang.pick("Durability", "Надёжность"),
            format!("journal_mode={journal}, synchronous={sync}"),
            FactKind::Text,
        ),
    ];
    if let Some(max) = config.max_db_bytes {
        facts.push(Fact::new(
            lang.pick("Size limit", "Предел размера"),
            bytes_text(max, lang),
            FactKind::Text,
        ));
    }
    if let Some((free, total)) = disk {
        facts.push(Fact::new(
            lang.pick("Free disk space", "Свободно на диске"),
            format!(
                "{} {} {} ({}%)",
                bytes_text(free, lang),
                lang.pick("of", "из"),
                bytes_text(total, lang),
                free.saturating_mul(100) / total.max(1)
            ),
            FactKind::Text,
        ));
    }
    let (status, detail) = if !durable {
        (Status::Fail, lang.pick(
            "The database is not in WAL mode with synchronous=FULL, so an acknowledged webhook could be lost on power failure. Is the file on a network filesystem? Keep it on a local disk.",
            "База данных не в режиме WAL с synchronous=FULL, поэтому принятый вебхук может пропасть при отключении питания. Файл лежит на сетевой файловой системе? Держите его на локальном диске.",
        ))
    } else if low_disk {
        (Status::Warn, lang.pick(
            "Little free disk space is left: free some space or move the database, or webhooks will be answered 503 once the disk is full. --max-db-mb makes the relay refuse cleanly before that.",
            "Свободного места на диске мало: освободите место или перенесите базу, иначе при заполнении диска вебхуки получат ответ 503. С --max-db-mb relay заранее и аккуратно перестанет принимать запись.",
        ))
    } else if near_cap {
        (Status::Warn, lang.pick(
            "The database is above 90% of --max-db-mb; at the limit new webhooks are answered 503. Raise the limit or export and clear old data.",
            "База заняла больше 90% от --max-db-mb; на пределе новые вебхуки получат ответ 503. Поднимите предел или выгрузите и удалите старые данные.",
        ))
    } else {
        (
            Status::Ok,
            lang.pick(
                "Every acknowledged webhook is on disk before the answer goes out.",
                "Каждый принятый вебхук записан на диск до того, как уходит ответ.",
            ),
        )
    };
    Ok(Check {
        key: "server",
        status,
        title: lang.pick("Relay is running", "Relay работает").into(),
        detail: detail.into(),
        facts,
        actions: Vec::new(),
    })
}

/// Free and total bytes of the filesystem holding `file`, for unprivileged users.
#[cfg(unix)]
fn disk_space(file: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs only writes into the zeroed struct we own; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    // The field types differ between platforms (u32 on some 32-bit ones).
    #[allow(clippy::unnecessary_cast)]
    let (avail, blocks, frsize) = (st.f_bavail as u64, st.f_blocks as u64, st.f_frsize as u64);
    Some((avail.saturating_mul(frsize), blocks.saturating_mul(frsize)))
}

#[cfg(not(unix))]
fn disk_space(_file: &Path) -> Option<(u64, u64)> {
    None
}

// ----- public_url -----

/// `None` when there is nothing to probe, or the probe cannot be answered.
fn probe_public_url(config: &Config, probe: &SelfProbe) -> Option<ProbeOutcome> {
    // With one worker the probe's own request would wait for the worker that sent it.
    if config.workers < 2 {
        return None;
    }
    let url = config.public_webhook_url()?;
    Some(probe.run(&url))
}

fn public_url(r: &Relay, probe: Option<ProbeOutcome>, lang: Lang) -> Check {
    let Some(url) = &r.config.public_url else {
        return Check {
            key: "public_url",
            status: Status::Todo,
            title: lang.pick("Set the public address", "Задайте публичный адрес").into(),
            detail: lang
                .pick(
                    "Chatrace calls the relay from the internet over https. Put Caddy or nginx with a certificate in front of the relay and start it with --public-url https://your.domain (or CHATRACE_RELAY_PUBLIC_URL). For a local try, `ngrok http PORT` gives a temporary https address.",
                    "Chatrace обращается к relay из интернета по https. Поставьте перед relay Caddy или nginx с сертификатом и запустите relay с --public-url https://ваш.домен (или CHATRACE_RELAY_PUBLIC_URL). Для пробы на своём компьютере `ngrok http ПОРТ` даст временный https-адрес.",
                )
                .replace("PORT", &r.addr.port().to_string())
                .replace("ПОРТ", &r.addr.port().to_string()),
            facts: Vec::new(),
            actions: Vec::new(),
        };
    };
    let concerns = crate::probe::url_concerns(url);
    let mut facts = vec![Fact::new("URL", url.clone(), FactKind::Code)];
    let mut sentences = Vec::new();
    let status = match &probe {
        None => {
            sentences.push(lang.pick(
                "The relay runs with one worker, so it cannot answer its own probe; start it with --workers 2 or more to have the address checked.",
                "Relay работает с одним обработчиком и не может ответить на собственную проверку; запустите его с --workers 2 или больше, чтобы адрес проверялся.",
            ).to_string());
            Status::Warn
        }
        Some(outcome) => {
            facts.push(Fact::new(
                lang.pick("Self-check", "Самопроверка"),
                probe_text(outcome, lang),
                FactKind::Text,
            ));
            if *outcome == ProbeOutcome::Ours {
                Status::Ok
            } else {
                sentences.push(probe_fix(outcome, r, lang));
                Status::Fail
            }
        }
    };
    sentences.extend(concerns.iter().map(|c| concern_text(*c, r, lang)));
    let status = if concerns.is_empty() {
        status
    } else {
        status.max(Status::Warn)
    };
    if status == Status::Fail {
        sentences.push(lang.pick(
            "(This check runs from the server itself. If its network cannot reach its own public address, the check fails although Chatrace gets through: then trust the webhook row below.)",
            "(Проверка идёт с самого сервера. Если его сеть не может достучаться до собственного публичного адреса, проверка не пройдёт, хотя Chatrace достучится: тогда верьте строке про вебхук ниже.)",
        ).to_string());
    }
    if sentences.is_empty() {
        sentences.push(
            lang.pick(
                "The relay reached itself at this address: Chatrace can too.",
                "Relay достучался до себя по этому адресу, значит и Chatrace сможет.",
            )
            .to_string(),
        );
    }
    Check {
        key: "public_url",
        status,
        title: match status {
            Status::Ok => lang.pick("Public address works", "Публичный адрес работает"),
            _ => lang.pick(
                "Public address needs attention",
                "Публичный адрес требует внимания",
            ),
        }
        .into(),
        detail: sentences.join(" "),
        facts,
        actions: Vec::new(),
    }
}

fn probe_text(outcome: &ProbeOutcome, lang: Lang) -> String {
    match outcome {
        ProbeOutcome::Ours => lang
            .pick(
                "this relay answered (it recognised its own one-time code)",
                "ответил этот relay (он узнал свой одноразовый код)",
            )
            .into(),
        ProbeOutcome::OtherRelay => lang
            .pick(
                "another chatrace-relay answered, not this process",
                "ответил другой chatrace-relay, а не этот процесс",
            )
            .into(),
        ProbeOutcome::Foreign { status, excerpt } => format!(
            "{} HTTP {status}: {excerpt}",
            lang.pick("answered by something else:", "ответил кто-то другой:")
        ),
        ProbeOutcome::Unreachable(failure) => describe_failure(failure, lang),
    }
}

fn probe_fix(outcome: &ProbeOutcome, r: &Relay, lang: Lang) -> String {
    let text = match outcome {
        ProbeOutcome::Ours => "",
        ProbeOutcome::OtherRelay => lang.pick(
            "The address leads to a different chatrace-relay (an old process or another server). Point the reverse proxy at this one, listening on ADDR.",
            "Адрес ведёт на другой chatrace-relay (старый процесс или другой сервер). Направьте обратный прокси на этот, он слушает ADDR.",
        ),
        ProbeOutcome::Foreign { .. } => lang.pick(
            "Something else answers at this address: the reverse proxy does not pass /instagram/webhook to this relay, listening on ADDR. Check the proxy's upstream and path, and that the address is https if the proxy redirects.",
            "По этому адресу отвечает что-то другое: обратный прокси не передаёт /instagram/webhook этому relay, который слушает ADDR. Проверьте upstream и путь в настройках прокси, а если прокси перенаправляет, укажите адрес с https.",
        ),
        ProbeOutcome::Unreachable(Failure::Dns(_)) => lang.pick(
            "The host name does not resolve: create a DNS record (A or AAAA) for it pointing to this server, or fix the typo in --public-url.",
            "Имя хоста не находится в DNS: создайте для него запись A или AAAA, указывающую на этот сервер, или исправьте опечатку в --public-url.",
        ),
        ProbeOutcome::Unreachable(Failure::Refused(_)) => lang.pick(
            "Nothing accepts connections there: start the reverse proxy (Caddy or nginx) on ports 443 and 80, open them in the firewall, and let it forward to the relay at ADDR.",
            "Там никто не принимает соединения: запустите обратный прокси (Caddy или nginx) на портах 443 и 80, откройте их в файрволе и настройте передачу на relay по адресу ADDR.",
        ),
        ProbeOutcome::Unreachable(Failure::Tls(_)) => lang.pick(
            "HTTPS does not work: the certificate is missing, expired or made for another name. Caddy obtains one by itself; with nginx use certbot.",
            "HTTPS не работает: сертификата нет, он просрочен или выписан на другое имя. Caddy получает сертификат сам; для nginx используйте certbot.",
        ),
        ProbeOutcome::Unreachable(Failure::Timeout) => lang.pick(
            "No answer in time: a firewall probably drops the traffic, or the proxy cannot reach the relay at ADDR.",
            "Ответа не дождались: вероятно, файрвол отбрасывает трафик или прокси не может достучаться до relay по адресу ADDR.",
        ),
        ProbeOutcome::Unreachable(Failure::Other(_)) => lang.pick(
            "The request failed: check the address and the reverse proxy.",
            "Запрос не удался: проверьте адрес и обратный прокси.",
        ),
    };
    text.replace("ADDR", &r.addr.to_string())
}

fn concern_text(concern: UrlConcern, r: &Relay, lang: Lang) -> String {
    match concern {
        UrlConcern::NotHttps => lang.pick(
            "Chatrace needs an https:// address: put Caddy or nginx with a certificate in front of the relay and use https://your.domain as --public-url.",
            "Chatrace нужен адрес https://: поставьте перед relay Caddy или nginx с сертификатом и укажите https://ваш.домен в --public-url.",
        ).to_string(),
        UrlConcern::PrivateHost => lang.pick(
            "This address is not reachable from the internet (localhost or a private network). For a local try run `ngrok http PORT` and use the https address it prints as --public-url.",
            "Этот адрес недоступен из интернета (localhost или частная сеть). Для пробы на своём компьютере запустите `ngrok http PORT` и укажите выданный им https-адрес в --public-url.",
        ).replace("PORT", &r.addr.port().to_string()),
    }
}

// ----- chatrace_token -----

/// A token verdict as cached in the settings table, tied to the token by its fingerprint.
#[derive(Serialize, Deserialize)]
struct CachedCheck {
    fingerprint: String,
    checked_at_ms: i64,
    outcome: TokenCheck,
}

/// The verdict on the configured token and when Chatrace was asked (`None`: not asked,
/// the token is missing or malformed). Asks Chatrace when `force`d or the cache is stale.
fn token_check(r: &Relay, force: bool) -> Result<(TokenCheck, Option<i64>)> {
    let config = &r.config;
    let Some(token) = config.chatrace_token.as_deref() else {
        return Ok((TokenCheck::Missing, None));
    };
    if let Err(problem) = chatrace::check_shape(token) {
        return Ok((TokenCheck::Malformed(problem), None));
    }
    let fingerprint = chatrace::fingerprint(&config.chatrace_api_url, token);
    if !force {
        if let Some(cached) = cached_token_check(r, &fingerprint)? {
            return Ok((cached.outcome, Some(cached.checked_at_ms)));
        }
    }
    let outcome = chatrace::check_token(
        &config.chatrace_api_url,
        Some(token),
        config.chatrace_api_timeout,
    );
    let cached = CachedCheck {
        fingerprint,
        checked_at_ms: now_ms(),
        outcome,
    };
    let stored = serde_json::to_string(&cached)
        .map_err(|e| crate::error::Error::Config(e.to_string()))
        .and_then(|json| r.store.set_setting(TOKEN_CHECK_KEY, &json));
    if let Err(e) = stored {
        // The verdict is still shown; only the next page load asks Chatrace again.
        warn!("could not cache the token check: {e}");
    }
    Ok((cached.outcome, Some(cached.checked_at_ms)))
}

fn cached_token_check(r: &Relay, fingerprint: &str) -> Result<Option<CachedCheck>> {
    let Some(json) = r.store.setting(TOKEN_CHECK_KEY)? else {
        return Ok(None);
    };
    let Ok(cached) = serde_json::from_str::<CachedCheck>(&json) else {
        return Ok(None);
    };
    let max_age = if cached.outcome.is_valid() {
        TOKEN_VALID_FOR_MS
    } else {
        TOKEN_OTHER_FOR_MS
    };
    let fresh = now_ms() - cached.checked_at_ms < max_age;
    Ok((cached.fingerprint == fingerprint && fresh).then_some(cached))
}

fn chatrace_token(r: &Relay, lang: Lang) -> Result<Check> {
    let (check, checked_at) = token_check(r, false)?;
    let config = &r.config;
    let status = match &check {
        TokenCheck::Missing => Status::Todo,
        TokenCheck::Valid { .. } => Status::Ok,
        TokenCheck::Unreachable(_) | TokenCheck::UnexpectedAnswer(..) => Status::Warn,
        _ => Status::Fail,
    };
    let mut facts = vec![Fact::new(
        lang.pick("Chatrace API", "API Chatrace"),
        config.chatrace_api_url.clone(),
        FactKind::Code,
    )];
    if check != TokenCheck::Missing {
        facts.push(Fact::new(
            lang.pick("Result", "Результат"),
            token_verdict(&check, lang),
            FactKind::Text,
        ));
    }
    if let Some(at) = checked_at {
        facts.push(Fact::new(
            lang.pick("Checked", "Проверено"),
            when_text(at, lang),
            FactKind::Text,
        ));
    }
    let account = config
        .chatrace_token
        .as_deref()
        .and_then(chatrace::account_digits);
    if let Some(account) = account {
        facts.push(Fact::new(
            &format!(
                "{} {account} {}",
                lang.pick("Account settings (if", "Настройки аккаунта (если"),
                lang.pick("is your account id)", "— номер вашего аккаунта)")
            ),
            chatrace::settings_link(account),
            FactKind::Link,
        ));
    }
    let actions = if check == TokenCheck::Missing {
        Vec::new()
    } else {
        vec![Action::RecheckToken]
    };
    Ok(Check {
        key: "chatrace_token",
        status,
        title: match status {
            Status::Ok => lang.pick("Chatrace token works", "Токен Chatrace работает"),
            Status::Todo => lang.pick("Add a Chatrace API token", "Добавьте токен API Chatrace"),
            _ => lang.pick("Chatrace token is not accepted", "Токен Chatrace не принят"),
        }
        .into(),
        detail: if status == Status::Ok {
            token_verdict(&check, lang)
        } else {
            token_advice(&check, lang).to_string()
        },
        facts,
        actions,
    })
}

// ----- webhook_configured -----

fn webhook_configured(r: &Relay, lang: Lang) -> Result<Check> {
    let last = r.store.last_arrival(false)?;
    let last_clean = r.store.last_arrival(true)?;
    let since = last_clean.as_ref().map_or(i64::MIN, |a| a.received_at_ms);
    let problems = r.store.problems_since(since, PROBLEMS_SHOWN)?;
    let mut facts = paste_values(r, lang);
    if let Some(arrival) = &last {
        facts.push(Fact::new(
            lang.pick("Last request", "Последний запрос"),
            format!(
                "{}, {} {}",
                when_text(arrival.received_at_ms, lang),
                lang.pick("from", "с адреса"),
                arrival.remote_addr.as_deref().unwrap_or("?")
            ),
            FactKind::Text,
        ));
    }
    for problem in &problems {
        facts.extend(problem_facts(problem, lang));
    }
    let (status, title, detail) = match (problems.first(), &last) {
        (Some(latest), _) => (
            Status::Warn,
            lang.pick(
                "Requests arrive, but something is wrong",
                "Запросы приходят, но что-то не так",
            ),
            problem_advice(&latest.reason, lang),
        ),
        (None, Some(_)) => (
            Status::Ok,
            lang.pick("Chatrace reaches the relay", "Chatrace достучался до relay"),
            lang.pick(
                "Requests with the right secret arrive. The values below stay here for reference.",
                "Запросы с правильным секретом приходят. Значения ниже остаются здесь для справки.",
            ),
        ),
        (None, None) => (
            Status::Todo,
            lang.pick(
                "Add the External Request in Chatrace",
                "Добавьте External Request в Chatrace",
            ),
            lang.pick(
                "In a Chatrace flow that runs on every incoming Instagram message (a default reply or a catch-all rule), add an External Request action with exactly these values. In the body, replace each {{…}} with the matching variable from Chatrace's variable picker. This row turns green when the first request arrives.",
                "В сценарии Chatrace, который запускается на каждое входящее сообщение Instagram (ответ по умолчанию или правило «на всё»), добавьте действие External Request ровно с этими значениями. В теле замените каждое {{…}} на соответствующую переменную из списка переменных Chatrace. Строка станет зелёной, когда придёт первый запрос.",
            ),
        ),
    };
    Ok(Check {
        key: "webhook_configured",
        status,
        title: title.into(),
        detail: detail.into(),
        facts,
        actions: Vec::new(),
    })
}

/// The values to paste into Chatrace's External Request.
fn paste_values(r: &Relay, lang: Lang) -> Vec<Fact> {
    let mut facts = Vec::new();
    match r.config.public_webhook_url() {
        Some(url) => facts.push(Fact::new("URL", url, FactKind::Code)),
        None => {
            facts.push(Fact::new(
                "URL",
                format!("http://{}{WEBHOOK_PATH}", r.addr),
                FactKind::Code,
            ));
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
            r.webhook_secret.to_string(),
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

/// The JSON body for Chatrace, with the fields the relay reads. Chatrace's placeholder
/// syntax is undocumented, so the names are only marks for the user to replace.
pub fn body_template() -> String {
    [
        "{",
        r#"  "contact_id": "{{contact_id}}","#,
        r#"  "first_name": "{{first_name}}","#,
        r#"  "last_name": "{{last_name}}","#,
        r#"  "username": "{{username}}","#,
        r#"  "text": "{{last_input}}","#,
        r#"  "channel": "instagram","#,
        r#"  "timestamp": "{{timestamp}}","#,
        r#"  "message_id": "{{message_id}}""#,
        "}",
    ]
    .join("\n")
}

fn problem_facts(problem: &Problem, lang: Lang) -> [Fact; 2] {
    let excerpt = match &problem.body {
        ProblemBody::Excerpt(text) => text.clone(),
        ProblemBody::Raw(body) => crate::text::excerpt(body, EXCERPT_CHARS),
    };
    [
        Fact::new(
            &format!(
                "{}, {}",
                reason_name(&problem.reason, lang),
                when_text(problem.received_at_ms, lang)
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
    match problem.reason.as_str() {
        "bad_secret" => lang.pick(
            "the secret did not match: copy it again from the header value above",
            "секрет не совпал: скопируйте его заново из значения заголовка выше",
        ),
        "missing_secret" => lang.pick(
            "no X-Webhook-Secret header (and no ?secret= in the URL)",
            "нет заголовка X-Webhook-Secret (и нет ?secret= в адресе)",
        ),
        _ => &problem.detail,
    }
    .to_string()
}

fn reason_name(reason: &str, lang: Lang) -> String {
    let name = match reason {
        "bad_secret" => lang.pick("Wrong secret", "Неверный секрет"),
        "missing_secret" => lang.pick("No secret", "Нет секрета"),
        "wrong_path" => lang.pick("Wrong path", "Неверный путь"),
        "malformed" => lang.pick("Unreadable body", "Нечитаемое тело"),
        "unfilled_placeholders" => {
            lang.pick("Variables not filled in", "Переменные не подставлены")
        }
        "no_message" => lang.pick("No message found", "Сообщение не найдено"),
        other => other,
    };
    name.to_string()
}

fn problem_advice(reason: &str, lang: Lang) -> &'static str {
    match reason {
        "bad_secret" | "missing_secret" => lang.pick(
            "A request came without the right secret. Copy the header name X-Webhook-Secret and its value exactly as shown below into the External Request's headers.",
            "Пришёл запрос без правильного секрета. Скопируйте имя заголовка X-Webhook-Secret и его значение в заголовки External Request точно как показано ниже.",
        ),
        "wrong_path" => lang.pick(
            "A request came to a wrong path. The URL in the External Request must end with /instagram/webhook; copy it from below.",
            "Запрос пришёл не по тому пути. URL в External Request должен заканчиваться на /instagram/webhook; скопируйте его ниже.",
        ),
        "malformed" => lang.pick(
            "A request body could not be read. Check the template's quotes and commas, and set Content-Type to application/json.",
            "Тело запроса не удалось прочитать. Проверьте кавычки и запятые в шаблоне и укажите Content-Type application/json.",
        ),
        "unfilled_placeholders" => lang.pick(
            "Chatrace sent variable names instead of values. Insert each variable with Chatrace's variable picker instead of typing {{…}} by hand, and test the flow with a real message.",
            "Chatrace прислал имена переменных вместо значений. Вставьте каждую переменную через список переменных Chatrace, а не набирайте {{…}} вручную, и проверьте сценарий на настоящем сообщении.",
        ),
        _ => lang.pick(
            "A request arrived, but the relay found no message in it. Use the body template below: it needs at least contact_id and text.",
            "Запрос пришёл, но relay не нашёл в нём сообщения. Используйте шаблон тела ниже: нужны как минимум contact_id и text.",
        ),
    }
}

// ----- first_message -----

fn first_message(r: &Relay, lang: Lang) -> Result<Check> {
    let Some(m) = r.store.first_message()? else {
        let tests = r.store.test_message_count()?;
        let mut facts = Vec::new();
        if tests > 0 {
            facts.push(Fact::new(
                lang.pick("Test messages stored", "Тестовых сообщений сохранено"),
                tests.to_string(),
                FactKind::Text,
            ));
        }
        return Ok(Check {
            key: "first_message",
            status: Status::Todo,
            title: lang
                .pick(
                    "Waiting for the first Instagram message",
                    "Ждём первое сообщение из Instagram",
                )
                .into(),
            detail: lang
                .pick(
                    "Send a direct message to your Instagram account from another account; it appears here within seconds. \"Send a test webhook\" checks the relay's side alone.",
                    "Напишите в директ вашего Instagram-аккаунта с другого аккаунта; сообщение появится здесь через несколько секунд. «Отправить тестовый вебхук» проверяет только сторону relay.",
                )
                .into(),
            facts,
            actions: vec![Action::SendTest],
        });
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
        lang.pick(
            "Messages arrive and are stored. Setup is done.",
            "Сообщения приходят и сохраняются. Настройка завершена.",
        )
        .to_string()
    } else {
        format!(
            "{} \"{channel}\". {}",
            lang.pick(
                "Messages arrive, but the first came on the channel",
                "Сообщения приходят, но первое пришло по каналу"
            ),
            lang.pick(
                "If you expect Instagram messages, check that the flow runs for Instagram and sends channel \"instagram\".",
                "Если вы ждёте сообщения из Instagram, проверьте, что сценарий работает для Instagram и передаёт channel \"instagram\".",
            )
        )
    };
    Ok(Check {
        key: "first_message",
        status: Status::Ok,
        title: lang
            .pick("First message received", "Первое сообщение получено")
            .into(),
        detail,
        facts: vec![
            Fact::new(lang.pick("From", "От кого"), who, FactKind::Text),
            Fact::new(lang.pick("Channel", "Канал"), channel, FactKind::Text),
            Fact::new(
                lang.pick("Received", "Получено"),
                when_text(m.received_at_ms, lang),
                FactKind::Text,
            ),
        ],
        actions: vec![Action::SendTest],
    })
}

/// Posts the sample webhook the way Chatrace would: through the public URL when there is
/// one, which proves the whole path; when that fails, locally too, to tell where it breaks.
fn send_test(r: &Relay, lang: Lang) -> String {
    let local = format!("http://{}{WEBHOOK_PATH}", r.addr);
    let Some(public) = r.config.public_webhook_url() else {
        return format!(
            "{} {}",
            lang.pick(
                "No public address is set, so the test went to the local address.",
                "Публичный адрес не задан, поэтому тест отправлен на локальный адрес."
            ),
            post_sample(r, &local, lang).1
        );
    };
    let (ok, outcome) = post_sample(r, &public, lang);
    if ok {
        return outcome;
    }
    format!("{outcome} {}", post_sample(r, &local, lang).1)
}

/// Whether the relay stored it, and a sentence saying what happened.
fn post_sample(r: &Relay, url: &str, lang: Lang) -> (bool, String) {
    let to = format!("{} {url}:", lang.pick("Sent to", "Отправлено на"));
    match crate::sample::post(url, r.webhook_secret) {
        Ok(reply) if (200..300).contains(&reply.status) => (
            true,
            format!(
                "{to} HTTP {}. {} {}",
                reply.status,
                lang.pick(
                    "The relay stored it as a test message (not counted in stats). Its answer:",
                    "Relay сохранил его как тестовое сообщение (в статистике не учитывается). Его ответ:"
                ),
                crate::text::excerpt(reply.body.as_bytes(), EXCERPT_CHARS)
            ),
        ),
        Ok(reply) => (
            false,
            format!(
                "{to} HTTP {}: {}",
                reply.status,
                crate::text::excerpt(reply.body.as_bytes(), EXCERPT_CHARS)
            ),
        ),
        Err(failure) => (false, format!("{to} {}", describe_failure(&failure, lang))),
    }
}

// ----- forwarding -----

fn forwarding(r: &Relay, lang: Lang) -> Result<Check> {
    let now = now_ms();
    let mut status = Status::Ok;
    let mut facts = Vec::new();
    let mut failed = false;
    for t in crate::forward::target_status(r.store, &r.config.forward_urls)? {
        if t.configured {
            failed |= t.failed > 0;
            status = status.max(target_status(&t));
            facts.extend(target_facts(&t, now, lang));
        }
    }
    let (title, detail) = match status {
        Status::Ok => (
            lang.pick("Messages reach your app", "Сообщения доходят до вашего приложения"),
            lang.pick(
                "Every message is pushed to the forward URL; failed attempts are retried on schedule.",
                "Каждое сообщение отправляется на адрес пересылки; неудачные попытки повторяются по расписанию.",
            ),
        ),
        Status::Todo => (
            lang.pick("Nothing forwarded yet", "Пока ничего не переслано"),
            lang.pick(
                "Messages are pushed to your app as they arrive; none has been yet.",
                "Сообщения отправляются в ваше приложение по мере поступления; пока не было ни одного.",
            ),
        ),
        Status::Warn => (
            lang.pick("Forwarding is behind", "Пересылка отстаёт"),
            lang.pick(
                "Deliveries are waiting or failing for now and will be retried. Check that your app answers 2xx; the last error is shown.",
                "Доставки ждут или пока не удаются и будут повторены. Проверьте, что ваше приложение отвечает 2xx; последняя ошибка показана ниже.",
            ),
        ),
        Status::Fail => (
            lang.pick("Some messages were not forwarded", "Часть сообщений не переслана"),
            lang.pick(
                "Some deliveries failed after every retry. Fix your app's endpoint (the last error is shown); the messages stay in the database and in /api/messages.",
                "Часть доставок не удалась после всех повторов. Исправьте адрес вашего приложения (последняя ошибка показана ниже); сообщения остаются в базе и в /api/messages.",
            ),
        ),
    };
    Ok(Check {
        key: "forwarding",
        status,
        title: title.into(),
        detail: detail.into(),
        facts,
        // Replaying is only offered once the endpoint may have been fixed: when something
        // failed for good. Pending deliveries are retried on schedule anyway.
        actions: if failed {
            vec![Action::ReplayFailed]
        } else {
            Vec::new()
        },
    })
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

fn target_facts(t: &TargetStatus, now: i64, lang: Lang) -> Vec<Fact> {
    let mut summary = format!(
        "{} {}, {} {}, {} {}",
        lang.pick("delivered", "доставлено"),
        t.delivered,
        lang.pick("pending", "в очереди"),
        t.pending,
        lang.pick("failed", "не доставлено"),
        t.failed
    );
    if let Some(age) = t.oldest_pending_age_seconds {
        let at = now - age * 1000;
        summary.push_str(&format!(
            "; {} {}",
            lang.pick("oldest pending since", "старейшая в очереди с"),
            when_text(at, lang)
        ));
    }
    let mut facts = vec![Fact::new(&t.target, summary, FactKind::Text)];
    if t.last_status.is_some() || t.last_error.is_some() {
        let status = t
            .last_status
            .map(|s| format!("HTTP {s} "))
            .unwrap_or_default();
        facts.push(Fact::new(
            lang.pick("Last error", "Последняя ошибка"),
            format!("{status}{}", t.last_error.as_deref().unwrap_or("")),
            FactKind::Excerpt,
        ));
    }
    facts
}

// ----- words -----

/// `2026-11-13T10:15:02Z (5 min ago)`.
/// The same readable form the rest of the page uses: "25 Nov 2026, 14:05 UTC (5 min ago)".
fn when_text(ms: i64, lang: Lang) -> String {
    format!("{} ({})", lang.datetime(ms), lang.ago(now_ms(), ms))
}

/// The two largest units of a duration: `2 h 5 min`, `45 s`.
fn duration_text(ms: i64, lang: Lang) -> String {
    let s = ms.max(0) / 1000;
    let units = [
        (86_400, lang.pick("d", "д")),
        (3_600, lang.pick("h", "ч")),
        (60, lang.pick("min", "мин")),
        (1, lang.pick("s", "с")),
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
        format!("0 {}", lang.pick("s", "с"))
    } else {
        parts.join(" ")
    }
}

fn bytes_text(n: u64, lang: Lang) -> String {
    let units = [
        (1u64 << 30, lang.pick("GiB", "ГБ")),
        (1 << 20, lang.pick("MiB", "МБ")),
        (1 << 10, lang.pick("KiB", "КБ")),
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
    format!("{n} {}", lang.pick("B", "Б"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_naturally() {
        assert_eq!(duration_text(0, Lang::En), "0 s");
        assert_eq!(duration_text(45_000, Lang::En), "45 s");
        assert_eq!(duration_text(7_500_000, Lang::En), "2 h 5 min");
        assert_eq!(duration_text(7_200_000, Lang::Ru), "2 ч");
        assert_eq!(duration_text(90_061_000, Lang::Ru), "1 д 1 ч");
        assert_eq!(bytes_text(512, Lang::En), "512 B");
        assert_eq!(bytes_text(3 << 20, Lang::En), "3.0 MiB");
        assert_eq!(bytes_text(1536 << 20, Lang::Ru), "1,5 ГБ");
    }

    #[test]
    fn actions_round_trip_by_name() {
        for action in [Action::RecheckToken, Action::SendTest, Action::ReplayFailed] {
            assert_eq!(Action::from_name(action.name()), Some(action));
        }
        assert_eq!(Action::from_name("drop_tables"), None);
    }

    #[test]
    fn body_template_is_json_the_relay_reads() {
        let template: serde_json::Value = serde_json::from_str(&body_template()).unwrap();
        assert_eq!(template["channel"], "instagram");
        for field in ["contact_id", "text", "username", "timestamp", "message_id"] {
            assert!(template.get(field).is_some(), "{field}");
        }
    }
}
