//! Settings for a run: flags beat environment variables, which beat values stored in the
//! database (secrets only). Also the parsers for the few value formats the flags take.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::ServeArgs;
use crate::zone::Zone;

mod inbox;

pub use inbox::InboxConfig;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
pub const DEFAULT_DB: &str = "chatrace-relay.db";
pub const DEFAULT_API_URL: &str = "https://api.chatrace.com";
pub const DEFAULT_RETRY_SCHEDULE: &str = "5s,30s,2m,10m,30m,1h,2h,6h,12h";
pub const DEFAULT_MAX_BODY: usize = 256 * 1024;
/// Chatrace is far away and sometimes slow; tests shorten this with CHATRACE_API_TIMEOUT_MS.
pub const DEFAULT_API_TIMEOUT_MS: u64 = 8000;
pub const DEFAULT_FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may stall (send nothing, leave the relay's answer untaken, ignore
/// keepalive probes) before its connection is closed: see `web::bind` and `close_quiet` in
/// the server's defences. Long for any live client, even on a poor mobile link; short
/// enough that a stuck one frees its threads quickly.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
/// Long enough to catch a flow that fires twice for one message, short enough that a person
/// writing "ok" twice keeps both.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(2);
pub const DEFAULT_CATCH_UP_EVERY: Duration = Duration::from_secs(60);
/// Chatrace's own web app, where its inbox API answers (white-labels: their own domain).
pub const DEFAULT_INBOX_URL: &str = "https://chatrace.com/php/user";
/// Calls a minute to Chatrace, both APIs together: well under the ~100 it reportedly allows.
pub const DEFAULT_CHATRACE_RATE: u32 = 60;
/// Media kept in all, and the largest file kept: a year of a small shop's photos, and
/// any photo or short video Instagram delivers.
pub const DEFAULT_KEEP_MEDIA: u64 = 1_000_000_000;
pub const DEFAULT_MAX_MEDIA: u64 = 25_000_000;
/// How long one attachment download may take, redirects included.
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything `serve` needs, resolved once at start.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub db: PathBuf,
    pub public_url: Option<String>,
    pub forward_urls: Vec<String>,
    pub forward_secret: Option<String>,
    pub retry_schedule: Vec<Duration>,
    /// How long one forwarding attempt may take before it counts as failed.
    pub forward_timeout: Duration,
    /// How long a client may stall before its connection is closed.
    pub client_timeout: Duration,
    /// How long an identical request without an id or a sender time counts as a repeat;
    /// zero: never.
    pub dedup_window: Duration,
    pub workers: usize,
    pub max_body: usize,
    pub max_db_bytes: Option<u64>,
    /// Raw request records older than this are deleted (messages stay); None: kept for ever.
    pub keep_raw: Option<Duration>,
    /// Messages older than this are deleted, with their raw records and finished
    /// deliveries (daily counts stay); None: kept for ever.
    pub keep_messages: Option<Duration>,
    /// Secrets given from outside (environment or systemd credentials). When absent, the
    /// values stored in the database are used, and generated on first start.
    pub webhook_secret: Option<String>,
    pub admin_token: Option<Given>,
    pub chatrace_token: Option<String>,
    pub chatrace_api_url: String,
    pub chatrace_api_timeout: Duration,
    pub inbox: InboxConfig,
    /// How often catch-up from the inbox runs; None: never.
    pub catch_up_every: Option<Duration>,
    /// Bytes of attachment files kept in all; None: none kept.
    pub keep_media: Option<u64>,
    /// The largest attachment file kept.
    pub max_media: u64,
    /// Tests and local networks: media may come from loopback, private addresses and
    /// plain http [env CHATRACE_RELAY_MEDIA_ALLOW_PRIVATE=1].
    pub media_allow_private: bool,
    /// Where a day begins, for "today", the chart and the page's date filters.
    pub time_zone: Zone,
}

impl Config {
    pub fn from_args(args: ServeArgs) -> Result<Config, String> {
        let inbox = InboxConfig::from_flags(args.inbox_flags())?;
        let forward_urls = if args.forward_url.is_empty() {
            forward_urls_from_env()
        } else {
            args.forward_url
        };
        for url in &forward_urls {
            check_http_url(url).map_err(|e| format!("--forward-url {url}: {e}"))?;
        }
        let public_url = args
            .public_url
            .or_else(|| env("CHATRACE_RELAY_PUBLIC_URL"))
            .map(|u| u.trim_end_matches('/').to_string());
        if let Some(url) = &public_url {
            check_http_url(url).map_err(|e| format!("--public-url {url}: {e}"))?;
        }
        let retry_schedule = args
            .retry_schedule
            .or_else(|| env("CHATRACE_RELAY_RETRY_SCHEDULE"))
            .unwrap_or_else(|| DEFAULT_RETRY_SCHEDULE.to_string());
        let retry_schedule =
            parse_schedule(&retry_schedule).map_err(|e| format!("--retry-schedule: {e}"))?;
        let forward_timeout = positive_duration(
            args.forward_timeout
                .or_else(|| env("CHATRACE_RELAY_FORWARD_TIMEOUT")),
            "--forward-timeout",
            DEFAULT_FORWARD_TIMEOUT,
        )?;
        let client_timeout = positive_duration(
            args.client_timeout
                .or_else(|| env("CHATRACE_RELAY_CLIENT_TIMEOUT")),
            "--client-timeout",
            DEFAULT_CLIENT_TIMEOUT,
        )?;
        let dedup_window = match args
            .dedup_window
            .or_else(|| env("CHATRACE_RELAY_DEDUP_WINDOW"))
        {
            None => DEFAULT_DEDUP_WINDOW,
            Some(text) if text.trim() == "0" => Duration::ZERO,
            Some(text) => {
                parse_duration(text.trim()).map_err(|e| format!("--dedup-window: {e}"))?
            }
        };
        let workers = match args.workers.or(env_parse("CHATRACE_RELAY_WORKERS")?) {
            Some(0) => return Err("--workers must be at least 1".into()),
            Some(n) => n,
            None => default_workers(),
        };
        let max_body = args
            .max_body
            .or(env_parse("CHATRACE_RELAY_MAX_BODY")?)
            .unwrap_or(DEFAULT_MAX_BODY);
        let max_db_mb = args.max_db_mb.or(env_parse("CHATRACE_RELAY_MAX_DB_MB")?);
        let keep_raw = optional_duration(
            args.keep_raw.or_else(|| env("CHATRACE_RELAY_KEEP_RAW")),
            "--keep-raw",
        )?;
        let keep_messages = optional_duration(
            args.keep_messages
                .or_else(|| env("CHATRACE_RELAY_KEEP_MESSAGES")),
            "--keep-messages",
        )?;
        let catch_up_every = match args
            .catch_up_every
            .clone()
            .or_else(|| env("CHATRACE_RELAY_CATCH_UP_EVERY"))
        {
            None => Some(DEFAULT_CATCH_UP_EVERY),
            Some(text) if text.trim() == "0" => None,
            Some(text) => {
                Some(parse_duration(text.trim()).map_err(|e| format!("--catch-up-every: {e}"))?)
            }
        };
        let webhook_secret = secret("CHATRACE_RELAY_WEBHOOK_SECRET", "webhook_secret");
        let admin_token = given_secret(ADMIN_TOKEN_VAR, ADMIN_TOKEN_CREDENTIAL);
        let admin_token_value = admin_token.as_ref().map(|given| given.value.clone());
        for (what, given) in [
            (
                "the webhook secret (CHATRACE_RELAY_WEBHOOK_SECRET or the webhook_secret credential)",
                &webhook_secret,
            ),
            (
                "the admin token (CHATRACE_RELAY_ADMIN_TOKEN or the admin_token credential)",
                &admin_token_value,
            ),
        ] {
            if let Some(weakness) = given.as_deref().and_then(crate::secret::weakness) {
                return Err(format!(
                    "{what} is too easy to guess: {weakness}. Generate one with \
                     `head -c 24 /dev/urandom | base64`, or leave it unset and the relay \
                     makes one and keeps it in the database"
                ));
            }
        }
        let keep_media = match args.keep_media.or_else(|| env("CHATRACE_RELAY_KEEP_MEDIA")) {
            None => Some(DEFAULT_KEEP_MEDIA),
            Some(text) => match parse_size(&text).map_err(|e| format!("--keep-media: {e}"))? {
                0 => None,
                n => Some(n),
            },
        };
        let max_media = match args.max_media.or_else(|| env("CHATRACE_RELAY_MAX_MEDIA")) {
            None => DEFAULT_MAX_MEDIA,
            Some(text) => match parse_size(&text).map_err(|e| format!("--max-media: {e}"))? {
                0 => return Err("--max-media must be more than 0".into()),
                n => n,
            },
        };
        let time_zone = time_zone(args.time_zone)?;
        Ok(Config {
            inbox,
            catch_up_every,
            time_zone,
            keep_media,
            max_media,
            media_allow_private: env("CHATRACE_RELAY_MEDIA_ALLOW_PRIVATE")
                .is_some_and(|v| v == "1" || v == "true"),
            listen: args
                .listen
                .or_else(|| env("CHATRACE_RELAY_LISTEN"))
                .unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            db: db_path(args.db),
            public_url,
            forward_urls,
            forward_secret: args
                .forward_secret
                .or_else(|| env("CHATRACE_RELAY_FORWARD_SECRET")),
            retry_schedule,
            forward_timeout,
            client_timeout,
            dedup_window,
            workers,
            max_body,
            max_db_bytes: max_db_mb.map(|mb| mb.saturating_mul(1024 * 1024)),
            keep_raw,
            keep_messages,
            webhook_secret,
            admin_token,
            chatrace_token: secret("CHATRACE_TOKEN", "chatrace_token"),
            chatrace_api_url: api_url(None),
            chatrace_api_timeout: api_timeout()?,
        })
    }

    /// The URL to paste into Chatrace, when the public address is known.
    pub fn public_webhook_url(&self) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|base| format!("{base}/instagram/webhook"))
    }
}

/// Workers no longer wait for a webhook's commit (the writer's responders answer), so the
/// pool no longer caps the group-commit batch. On 2 cores with 32 connections, 8, 16 and
/// 32 workers all gave 15.5k-18.8k webhooks/s on a busy machine, 32 slightly ahead, and
/// 32 stays under the memory target at 128 connections (see BENCHMARKS.md). Sixteen per
/// core also leaves a quarter of them for long polls and slow page requests.
/// `CHATRACE_RELAY_FORWARD_URL`, comma-separated.
pub fn forward_urls_from_env() -> Vec<String> {
    env("CHATRACE_RELAY_FORWARD_URL")
        .map(|v| split_list(&v))
        .unwrap_or_default()
}

fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 16).clamp(16, 64)
}

pub fn db_path(flag: Option<String>) -> PathBuf {
    PathBuf::from(
        flag.or_else(|| env("CHATRACE_RELAY_DB"))
            .unwrap_or_else(|| DEFAULT_DB.to_string()),
    )
}

pub fn api_url(flag: Option<String>) -> String {
    flag.or_else(|| env("CHATRACE_API_URL"))
        .unwrap_or_else(|| DEFAULT_API_URL.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// How long a call to the Chatrace API may take [env CHATRACE_API_TIMEOUT_MS].
pub fn api_timeout() -> Result<Duration, String> {
    let ms = env_parse("CHATRACE_API_TIMEOUT_MS")?.unwrap_or(DEFAULT_API_TIMEOUT_MS);
    Ok(Duration::from_millis(ms.max(1)))
}

/// A secret from the environment, or else from a systemd credential file
/// (`LoadCredential=` puts them in `$CREDENTIALS_DIRECTORY`).
pub fn secret(var: &str, credential: &str) -> Option<String> {
    given_secret(var, credential).map(|given| given.value)
}

/// `secret`, with where it came from.
pub fn given_secret(var: &str, credential: &str) -> Option<Given> {
    if let Some(value) = env(var) {
        return Some(Given {
            value,
            source: SecretSource::Environment,
        });
    }
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let value = std::fs::read_to_string(Path::new(&dir).join(credential)).ok()?;
    Some(value.trim().to_string())
        .filter(|v| !v.is_empty())
        .map(|value| Given {
            value,
            source: SecretSource::Credential,
        })
}

pub const ADMIN_TOKEN_VAR: &str = "CHATRACE_RELAY_ADMIN_TOKEN";
pub const ADMIN_TOKEN_CREDENTIAL: &str = "admin_token";

/// A secret given from outside the database.
#[derive(Debug, Clone)]
pub struct Given {
    pub value: String,
    pub source: SecretSource,
}

/// Where a secret in force comes from. `serve` records the admin token's in the database,
/// so that `admin-token`, run from a shell without the service's environment and
/// credentials, can say where the token is instead of printing one the service refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    Database,
    Environment,
    Credential,
}

impl SecretSource {
    /// The settings key `serve` records the admin token's source under.
    pub const ADMIN_TOKEN_KEY: &str = "admin_token_source";

    pub fn as_str(self) -> &'static str {
        match self {
            SecretSource::Database => "database",
            SecretSource::Environment => "environment",
            SecretSource::Credential => "credential",
        }
    }

    pub fn parse(stored: &str) -> Option<SecretSource> {
        [
            SecretSource::Database,
            SecretSource::Environment,
            SecretSource::Credential,
        ]
        .into_iter()
        .find(|s| s.as_str() == stored)
    }

    /// Where the admin token is, in words for the log and for `admin-token`.
    pub fn admin_token_origin(self, db: &Path) -> String {
        match self {
            SecretSource::Database => format!(
                "printed by `chatrace-relay admin-token --db {}`",
                db.display()
            ),
            SecretSource::Environment => format!(
                "in the service's environment, {ADMIN_TOKEN_VAR} (an EnvironmentFile= or \
                 Environment= line: `systemctl cat chatrace-relay`)"
            ),
            SecretSource::Credential => format!(
                "in the file of the systemd credential {ADMIN_TOKEN_CREDENTIAL} (the unit's \
                 LoadCredential={ADMIN_TOKEN_CREDENTIAL}:FILE line: `systemctl cat chatrace-relay`)"
            ),
        }
    }
}

fn env(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn env_parse<T: std::str::FromStr>(var: &str) -> Result<Option<T>, String> {
    env(var)
        .map(|v| v.parse().map_err(|_| format!("{var}: cannot parse {v:?}")))
        .transpose()
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("has no host".into());
    }
    Ok(())
}

/// Parses `5s,30s,2m,1h,1d` into delays.
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    let delays: Vec<Duration> = split_list(text)
        .iter()
        .map(|item| parse_duration(item))
        .collect::<Result<_, _>>()?;
    if delays.is_empty() {
        return Err("needs at least one delay, e.g. 5s,1m,1h".into());
    }
    Ok(delays)
}

/// A duration flag's value (given as e.g. 10s or 500ms), which must be more than zero.
fn positive_duration(
    given: Option<String>,
    flag: &str,
    default: Duration,
) -> Result<Duration, String> {
    match given {
        None => Ok(default),
        Some(text) => match parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err(format!("{flag} must be more than 0")),
            Err(e) => Err(format!("{flag}: {e}")),
        },
    }
}

/// A retention age (e.g. 30d or 12h), more than zero; None when not given.
fn optional_duration(given: Option<String>, flag: &str) -> Result<Option<Duration>, String> {
    given
        .map(|text| positive_duration(Some(text), flag, Duration::ZERO))
        .transpose()
}

/// A size: bytes, or a number with `KB`, `MB`, `GB` (powers of 1000) or `KiB`, `MiB`,
/// `GiB` (powers of 1024), e.g. `2GB`, `25MB`, `0`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => return Err(format!("{text:?}: unknown unit {other:?} (KB, MB, GB)")),
    };
    Ok(n.saturating_mul(factor))
}

fn parse_duration(item: &str) -> Result<Duration, String> {
    let split = item
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{item:?} has no unit (ms, s, m, h or d)"))?;
    let (number, unit) = item.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{item:?} does not start with a number"))?;
    let millis = match unit {
        "ms" => n,
        "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        "d" => n.saturating_mul(86_400_000),
        _ => {
            return Err(format!(
                "{item:?}: unknown unit {unit:?} (ms, s, m, h or d)"
            ))
        }
    };
    Ok(Duration::from_millis(millis))
}

/// `--time-zone` or `CHATRACE_RELAY_TIME_ZONE`, by IANA name; UTC when neither is set.
pub fn time_zone(flag: Option<String>) -> Result<Zone, String> {
    match flag.or_else(|| env("CHATRACE_RELAY_TIME_ZONE")) {
        None => Ok(Zone::utc()),
        Some(name) => Zone::named(&name).map_err(|e| format!("--time-zone: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_parses() {
        let s = parse_schedule(DEFAULT_RETRY_SCHEDULE).unwrap();
        assert_eq!(s.len(), 9);
        assert_eq!(s[0], Duration::from_secs(5));
        assert_eq!(s[2], Duration::from_secs(120));
        assert_eq!(s[8], Duration::from_secs(12 * 3600));
        assert_eq!(
            parse_schedule("250ms, 1d").unwrap(),
            [Duration::from_millis(250), Duration::from_secs(86_400)]
        );
    }

    #[test]
    fn bad_schedules_say_why() {
        assert!(parse_schedule("").unwrap_err().contains("at least one"));
        assert!(parse_schedule("5").unwrap_err().contains("no unit"));
        assert!(parse_schedule("5x").unwrap_err().contains("unknown unit"));
        assert!(parse_schedule("s").unwrap_err().contains("number"));
    }

    #[test]
    fn retention_ages_are_optional_and_positive() {
        assert_eq!(optional_duration(None, "--keep-raw").unwrap(), None);
        assert_eq!(
            optional_duration(Some("30d".into()), "--keep-raw").unwrap(),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert!(optional_duration(Some("0s".into()), "--keep-raw")
            .unwrap_err()
            .contains("more than 0"));
        assert!(optional_duration(Some("30".into()), "--keep-messages")
            .unwrap_err()
            .contains("no unit"));
    }

    #[test]
    fn sizes_read_with_units() {
        assert_eq!(parse_size("2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_size("25MB").unwrap(), 25_000_000);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("512 KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("GB").unwrap_err().contains("number"));
        assert!(parse_size("5TB").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn urls_need_a_scheme_and_host() {
        assert!(check_http_url("https://relay.example.com").is_ok());
        assert!(check_http_url("relay.example.com").is_err());
        assert!(check_http_url("https:///x").is_err());
    }
}
