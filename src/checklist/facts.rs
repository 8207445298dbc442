//! Gathering the checklist's facts: every database read, file size, disk figure and network
//! check the rows are decided from, so that deciding them is plain computation on `Facts`.

use std::net::SocketAddr;

use log::warn;
use serde::{Deserialize, Serialize};

use super::Relay;
use crate::chatrace::{self, TokenCheck, TokenProblem};
use crate::config::Config;
use crate::error::Result;
use crate::outbound::Failure;
use crate::probe::{ProbeOutcome, SelfProbe};
use crate::store::{Arrival, FirstMessage, Problem, TargetStatus};
use crate::time::now_ms;

/// Settings key of the cached token verdict (never the token itself).
const TOKEN_CHECK_KEY: &str = "chatrace_token_check";
/// A valid token is re-checked by itself after this long; other verdicts sooner, so a fix
/// on Chatrace's side shows up without pressing the button.
const TOKEN_VALID_FOR_MS: i64 = 3_600_000;
const TOKEN_OTHER_FOR_MS: i64 = 300_000;
/// How many misconfigured requests the webhook row shows.
const PROBLEMS_SHOWN: u32 = 3;

/// Everything one showing of the checklist is decided from, one part per row.
#[derive(Debug, Clone)]
pub struct Facts {
    pub server: ServerFacts,
    pub public_url: PublicUrlFacts,
    pub token: TokenFacts,
    pub webhook: WebhookFacts,
    pub first_message: FirstMessageFacts,
    /// Every target with its counts; `None` without --forward-url, when there is no row.
    pub forwarding: Option<Vec<TargetStatus>>,
    pub inbox: InboxFacts,
}

/// Catch-up from Chatrace's inbox: its settings, its last run, its counts.
#[derive(Debug, Clone, Default)]
pub struct InboxFacts {
    /// `--catch-up-every`; `None` when catch-up is off.
    pub every_ms: Option<i64>,
    pub url: String,
    /// A user token given in the environment or a credential.
    pub token_from_setting: bool,
    /// A user token from a sign-in is kept in the database.
    pub signed_in: bool,
    /// Only the account's API token is there to try.
    pub api_token_only: bool,
    /// A code was asked for: to which address, and when.
    pub code_sent_to: Option<(String, i64)>,
    pub status: crate::catch_up::Status,
    pub counts: crate::store::InboxCounts,
}

#[derive(Debug, Clone)]
pub struct ServerFacts {
    pub started_at_ms: i64,
    pub db_path: String,
    pub journal_mode: String,
    pub synchronous: i64,
    pub db_bytes: u64,
    pub wal_bytes: u64,
    pub max_db_bytes: Option<u64>,
    /// `--keep-raw` and `--keep-messages`, in milliseconds; `None`: kept for ever.
    pub keep_raw_ms: Option<i64>,
    pub keep_messages_ms: Option<i64>,
    /// `None` where the platform cannot tell.
    pub disk: Option<DiskSpace>,
    /// `--keep-media` in bytes (`None`: off) and what is kept and was not.
    pub media_cap: Option<u64>,
    pub media: crate::store::MediaTotals,
}

#[derive(Debug, Clone, Copy)]
pub struct DiskSpace {
    pub free: u64,
    pub total: u64,
}

#[derive(Debug, Clone)]
pub struct PublicUrlFacts {
    /// --public-url as given.
    pub url: Option<String>,
    /// The address actually bound, which the advice names.
    pub addr: SocketAddr,
    /// What the self-probe met; `None` without a URL, or with one worker, which cannot
    /// answer its own probe.
    pub probe: Option<ProbeOutcome>,
}

#[derive(Debug, Clone)]
pub struct TokenFacts {
    pub api_url: String,
    pub check: TokenCheck,
    /// When Chatrace was asked; `None` when it was not (no token).
    pub checked_at_ms: Option<i64>,
    /// The digits a token starts with, often its account: for a link to the settings.
    pub account: Option<String>,
    /// How the token differs from the usual `<digits>.<letters and digits>`: a hint.
    pub shape: Option<TokenProblem>,
}

#[derive(Debug, Clone)]
pub struct WebhookFacts {
    /// What to paste into Chatrace; `None` until the public address is set.
    pub public_url: Option<String>,
    /// Where the relay itself listens, shown until then.
    pub local_url: String,
    pub secret: String,
    /// The newest accepted request that was not a test.
    pub last_arrival: Option<Arrival>,
    /// The newest unusable requests since the last good one, newest first.
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone)]
pub enum FirstMessageFacts {
    Received(FirstMessage),
    /// No real message yet; how many test messages were stored meanwhile.
    Waiting {
        test_messages: i64,
    },
}

/// Reads every fact. The self-probe waits on the network (and on another worker of this
/// process): it runs beside the database reads and the token check instead of after them.
pub fn gather(r: &Relay) -> Result<Facts> {
    std::thread::scope(|scope| {
        let probe = scope.spawn(|| probe_public_url(r.config, r.probe));
        let server = server(r)?;
        let token = token(r)?;
        let webhook = webhook(r)?;
        let first_message = match r.store.first_message()? {
            Some(m) => FirstMessageFacts::Received(m),
            None => FirstMessageFacts::Waiting {
                test_messages: r.store.test_message_count()?,
            },
        };
        let forwarding = if r.config.forward_urls.is_empty() {
            None
        } else {
            Some(crate::forward::target_status(
                r.store,
                &r.config.forward_urls,
            )?)
        };
        let probe = probe.join().unwrap_or_else(|_| {
            Some(ProbeOutcome::Unreachable(Failure::Other(
                "the probe thread crashed".into(),
            )))
        });
        let inbox = inbox(r)?;
        Ok(Facts {
            inbox,
            server,
            public_url: PublicUrlFacts {
                url: r.config.public_url.clone(),
                addr: r.addr,
                probe,
            },
            token,
            webhook,
            first_message,
            forwarding,
        })
    })
}

fn inbox(r: &Relay) -> Result<InboxFacts> {
    use crate::catch_up::{read_status, LOGIN_KEY, TOKEN_KEY};
    let config = &r.config.inbox;
    let signed_in = r.store.setting(TOKEN_KEY)?.is_some();
    let code_sent_to = r
        .store
        .setting(LOGIN_KEY)?
        .and_then(|json| serde_json::from_str::<crate::catch_up::PendingLogin>(&json).ok())
        .map(|login| (login.email, login.at_ms));
    Ok(InboxFacts {
        every_ms: r.config.catch_up_every.map(millis),
        url: config.url.clone(),
        token_from_setting: config.token.is_some(),
        signed_in,
        api_token_only: config.token.is_none() && !signed_in && config.api_token.is_some(),
        code_sent_to,
        status: read_status(r.store),
        counts: r.store.inbox_counts(now_ms())?,
    })
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The webhook URL on the address the relay listens on.
pub fn local_webhook_url(addr: SocketAddr) -> String {
    format!("http://{addr}{}", crate::paths::WEBHOOK)
}

fn server(r: &Relay) -> Result<ServerFacts> {
    let (journal_mode, synchronous) = r.store.durability()?;
    let (db_bytes, wal_bytes) = crate::store::file_sizes(&r.config.db);
    Ok(ServerFacts {
        started_at_ms: r.started_at_ms,
        db_path: r.config.db.display().to_string(),
        journal_mode,
        synchronous,
        db_bytes,
        wal_bytes,
        max_db_bytes: r.config.max_db_bytes,
        keep_raw_ms: r.config.keep_raw.map(millis),
        keep_messages_ms: r.config.keep_messages.map(millis),
        disk: crate::store::disk_space(&r.config.db).map(|(free, total)| DiskSpace { free, total }),
        media_cap: r.config.keep_media,
        media: r.store.media_totals()?,
    })
}

/// `None` when there is nothing to probe, or the probe cannot be answered.
fn probe_public_url(config: &Config, probe: &SelfProbe) -> Option<ProbeOutcome> {
    // With one worker the probe's own request would wait for the worker that sent it.
    if config.workers < 2 {
        return None;
    }
    let url = config.public_webhook_url()?;
    Some(probe.run(&url))
}

fn token(r: &Relay) -> Result<TokenFacts> {
    let (check, checked_at_ms) = token_check(r, false)?;
    Ok(TokenFacts {
        api_url: r.config.chatrace_api_url.clone(),
        check,
        checked_at_ms,
        account: r
            .config
            .chatrace_token
            .as_deref()
            .and_then(chatrace::account_digits)
            .map(str::to_string),
        shape: r
            .config
            .chatrace_token
            .as_deref()
            .and_then(|t| chatrace::check_shape(t).err()),
    })
}

/// A token verdict as cached in the settings table, tied to the token by its fingerprint.
#[derive(Serialize, Deserialize)]
struct CachedCheck {
    fingerprint: String,
    checked_at_ms: i64,
    outcome: TokenCheck,
}

/// The verdict on the configured token and when Chatrace was asked (`None`: not asked, no
/// token). Asks Chatrace when `force`d or the cache is stale, whatever the token looks like.
pub fn token_check(r: &Relay, force: bool) -> Result<(TokenCheck, Option<i64>)> {
    let config = &r.config;
    let Some(token) = config.chatrace_token.as_deref() else {
        return Ok((TokenCheck::Missing, None));
    };
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

/// Setting: the time (unix ms) of the newest webhook problem the user marked as seen.
pub const PROBLEMS_SEEN_UNTIL: &str = "webhook_problems_seen_until";

fn webhook(r: &Relay) -> Result<WebhookFacts> {
    let last_arrival = r.store.last_arrival(false)?;
    let last_clean = r.store.last_arrival(true)?;
    // A good request settles what came before it; so does marking the problems as seen.
    let since = last_clean
        .as_ref()
        .map_or(i64::MIN, |a| a.received_at_ms)
        .max(problems_seen_until(r)?);
    Ok(WebhookFacts {
        public_url: r.config.public_webhook_url(),
        local_url: local_webhook_url(r.addr),
        secret: r.webhook_secret.to_string(),
        last_arrival,
        problems: r.store.problems_since(since, PROBLEMS_SHOWN)?,
    })
}

/// Up to when the webhook row's problems were marked as seen (`i64::MIN`: never).
pub fn problems_seen_until(r: &Relay) -> Result<i64> {
    Ok(r.store
        .setting(PROBLEMS_SEEN_UNTIL)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MIN))
}
