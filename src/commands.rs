//! The subcommands other than the server itself: stats, export, admin-token, send-test,
//! check-token, replay, backup, catch-up, inbox-login.

use std::io::{self, Write};
use std::process::ExitCode;

use crate::cli::{
    AdminTokenArgs, BackupArgs, CatchUpArgs, CheckTokenArgs, Cli, Command, ExportArgs, InboxFlags,
    InboxLoginArgs, ReplayArgs, SendTestArgs, StatsArgs,
};
use crate::config::{
    api_timeout, api_url, db_path, given_secret, secret, Config, InboxConfig, SecretSource,
    ADMIN_TOKEN_CREDENTIAL, ADMIN_TOKEN_VAR,
};
use crate::error::{Error, Result};
use crate::store::{Message, Store};
use crate::time::format_rfc3339;

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let config = Config::from_args(args).map_err(Error::Config)?;
            crate::app::serve(config).map(|()| ExitCode::SUCCESS)
        }
        Command::Stats(args) => stats(args),
        Command::Export(args) => export(args),
        Command::AdminToken(args) => admin_token(args),
        Command::SendTest(args) => send_test(args),
        Command::CheckToken(args) => check_token(args),
        Command::Replay(args) => replay(args),
        Command::Backup(args) => backup(args),
        Command::CatchUp(args) => catch_up(args),
        Command::InboxLogin(args) => inbox_login(args),
    }
}

/// `admin-token`: the token the service signs in with, from where the service took it when
/// it last started (recorded in the database): the database's own, or the same environment
/// variable or credential, when this command has it too. Where it has not (a shell has no
/// `$CREDENTIALS_DIRECTORY`), it says where the token is and exits 1, rather than print the
/// database's token, which the service refuses.
fn admin_token(args: AdminTokenArgs) -> Result<ExitCode> {
    // Never a fresh database: its new token would sign nothing in. `serve` creates the
    // database and the token on its first start.
    let db = db_path(args.db.clone());
    let mut store = open_existing(args.db)?;
    let given = given_secret(ADMIN_TOKEN_VAR, ADMIN_TOKEN_CREDENTIAL);
    let served = store
        .setting(SecretSource::ADMIN_TOKEN_KEY)?
        .and_then(|s| SecretSource::parse(&s));
    let token = match (served, given) {
        // Before a `serve` that records its source: as the service would resolve it now.
        (None, given) => store.resolve_secret(given.map(|g| g.value), "admin_token")?,
        (Some(SecretSource::Database), _) => store.resolve_secret(None, "admin_token")?,
        (Some(source), Some(given)) if given.source == source => given.value,
        (Some(source), _) => {
            eprintln!(
                "admin-token: the relay signs in with the admin token {}, not with the one \
                 in {}; this command has no access to that source here",
                source.admin_token_origin(&db),
                db.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// `catch-up --since DATE`: history from Chatrace's inbox, resumable.
fn catch_up(args: CatchUpArgs) -> Result<ExitCode> {
    let config = InboxConfig::from_flags(args.inbox_flags()).map_err(Error::Config)?;
    crate::chatrace::PACE.set_rate(config.rate);
    let since = args.since.trim();
    let since_ms = crate::time::parse_rfc3339(since)
        .or_else(|| crate::time::parse_rfc3339(&format!("{since}T00:00:00Z")))
        .ok_or_else(|| {
            Error::Config(format!(
                "--since {since:?}: give a date like 2026-10-01 or an RFC 3339 time"
            ))
        })?;
    let targets = if args.forward {
        crate::config::forward_urls_from_env()
    } else {
        Vec::new()
    };
    if args.forward && targets.is_empty() {
        return Err(Error::Config(
            "--forward needs CHATRACE_RELAY_FORWARD_URL, as the server has it".into(),
        ));
    }
    let mut store = open_existing(args.db)?;
    match crate::catch_up::history(
        &mut store,
        &config,
        since_ms,
        args.contact.as_deref(),
        targets,
    ) {
        Ok(report) => {
            println!(
                "caught up {} conversations: {} new messages, {} matched to webhook messages, \
                 {} already there",
                report.conversations,
                report.new_ids.len(),
                report.matched,
                report.known
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            eprintln!("catch-up: {why}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `inbox-login EMAIL`: Chatrace mails a code; it is read from the terminal (or standard
/// input), and the token it buys is kept in the database, never printed.
fn inbox_login(args: InboxLoginArgs) -> Result<ExitCode> {
    let config = InboxConfig::from_flags(InboxFlags {
        inbox_url: args.inbox_url,
        ..InboxFlags::default()
    })
    .map_err(Error::Config)?;
    let store = open_existing(args.db)?;
    let email = args.email.trim();
    let rid = match crate::inbox::Inbox::send_code(&config.url, email) {
        Ok(rid) => rid,
        Err(e) => {
            eprintln!("inbox-login: asking Chatrace for a code failed: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    eprint!("Chatrace sent a code to {email}. Code: ");
    let _ = io::stderr().flush();
    let mut code = String::new();
    io::stdin().read_line(&mut code)?;
    let code = code.trim();
    if code.is_empty() {
        eprintln!("inbox-login: no code given");
        return Ok(ExitCode::FAILURE);
    }
    match crate::inbox::Inbox::check_code(&config.url, &rid, code) {
        Ok(token) => {
            store.set_setting(crate::catch_up::TOKEN_KEY, &token)?;
            let member = crate::inbox::Inbox {
                url: &config.url,
                token: &token,
            }
            .member();
            match member {
                Ok(member) => println!(
                    "signed in as {}; accounts: {}",
                    member.name.as_deref().unwrap_or("(no name)"),
                    member
                        .pages
                        .iter()
                        .map(|p| format!("{} ({})", p.name.as_deref().unwrap_or("?"), p.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Err(e) => println!("signed in; asking who this is failed: {e}"),
            }
            println!("the token is kept in the database; a running relay uses it on its next run");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("inbox-login: Chatrace refused the code: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `backup [--db DB] DEST`: a consistent copy, written beside DEST under a private
/// temporary name, flushed to disk, then given its name (see `store::backup`). DEST is
/// never overwritten: an existing file there may be the only good backup, and a path mixed
/// up with the live database must not destroy it.
fn backup(args: BackupArgs) -> Result<ExitCode> {
    let source = existing_db(args.db, "pass --db (or set CHATRACE_RELAY_DB)")?;
    let dest = std::path::Path::new(&args.dest);
    if dest.symlink_metadata().is_ok() {
        return Err(Error::Config(format!(
            "{} already exists; the backup never overwrites a file: remove it or choose \
             another name (e.g. one with the date in it)",
            dest.display()
        )));
    }
    let started = std::time::Instant::now();
    let summary = crate::store::backup(&source, dest)?;
    let bytes = std::fs::metadata(dest)?.len();
    // Counted as `stats` counts, so the two agree on a database without retention.
    let tests = match summary.test_messages {
        0 => String::new(),
        n => format!(" (and {n} test messages, which stats never count)"),
    };
    println!(
        "backed up {} to {}: {} bytes ({:.1} MiB), {} messages{tests}, in {:.1} s",
        source.display(),
        dest.display(),
        bytes,
        bytes as f64 / (1024.0 * 1024.0),
        summary.messages,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens a database that must already exist: a mistyped path should say so, not quietly
/// create an empty database and report zeros.
fn open_existing(flag: Option<String>) -> Result<Store> {
    let path = existing_db(
        flag,
        "pass the --db of the running relay (or set CHATRACE_RELAY_DB); \
         `chatrace-relay serve` creates the database on its first start",
    )?;
    Store::open(&path)
}

/// The database path, when a database is there. An empty file is none: SQLite would take
/// it for an empty database and fill it with a fresh schema (and a token that signs
/// nothing in).
fn existing_db(flag: Option<String>, hint: &str) -> Result<std::path::PathBuf> {
    let path = db_path(flag);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.len() > 0 => Ok(path),
        Ok(_) => Err(Error::Config(format!(
            "{} is empty, not a database of the relay: {hint}",
            path.display()
        ))),
        Err(_) => Err(Error::Config(format!(
            "no database at {}: {hint}",
            path.display()
        ))),
    }
}

fn replay(args: ReplayArgs) -> Result<ExitCode> {
    let which = crate::forward::requeue_from(
        args.id,
        args.failed,
        args.since.as_deref(),
        args.resend_delivered,
    )
    .map_err(|e| {
        Error::Config(format!(
            "replay: {e} (--id N, --failed, --since RFC3339 [--resend-delivered])"
        ))
    })?;
    let store = open_existing(args.db)?;
    // The targets as `serve` would have them: its environment, else what the relay last
    // started with.
    let mut targets = crate::config::forward_urls_from_env();
    if targets.is_empty() {
        targets = store
            .setting(crate::store::FORWARD_TARGETS)?
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
    }
    if matches!(which, crate::store::Requeue::Since { .. }) {
        if targets.is_empty() {
            return Err(Error::Config(
                "replay --since: no forwarding target: start the relay with --forward-url \
                 (or set CHATRACE_RELAY_FORWARD_URL) first"
                    .into(),
            ));
        }
        for target in &targets {
            println!("target {}", crate::forward::display_url(target));
        }
    }
    let n = store.requeue(which, &targets, crate::time::now_ms())?;
    println!("re-queued {n} deliver{}", if n == 1 { "y" } else { "ies" });
    if n > 0 {
        println!("a running relay sends them within a few seconds");
    }
    Ok(if n == 0 && args.id.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn stats(args: StatsArgs) -> Result<ExitCode> {
    let zone = crate::config::time_zone(args.time_zone).map_err(Error::Config)?;
    let store = open_existing(args.db)?;
    let s = store.stats(crate::time::now_ms(), &zone)?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &s).map_err(io::Error::from)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let none = || "never".to_string();
    let today = format!("messages today ({})", zone.name());
    let rows = [
        ("messages, total", s.total_messages.to_string()),
        (today.as_str(), s.messages_today.to_string()),
        ("messages, last 24 h", s.messages_last_24h.to_string()),
        ("unique contacts", s.unique_contacts.to_string()),
        (
            "last message at",
            s.last_message_at_ms
                .map(format_rfc3339)
                .unwrap_or_else(none),
        ),
        ("webhooks received", s.webhooks_received.to_string()),
        ("webhooks rejected", s.webhooks_rejected.to_string()),
        ("duplicates ignored", s.duplicates.to_string()),
        ("forwarding pending", s.forwarding.pending.to_string()),
        ("forwarding delivered", s.forwarding.delivered.to_string()),
        ("forwarding failed", s.forwarding.failed.to_string()),
        ("forwarding ended", s.forwarding.ended.to_string()),
    ];
    for (name, value) in rows {
        writeln!(out, "{name:<22} {value}")?;
    }
    writeln!(out, "\nlast 30 days:")?;
    let peak = s.by_day.iter().map(|d| d.count).max().unwrap_or(0).max(1);
    for day in &s.by_day {
        let bar = "#".repeat(((day.count * 40) / peak) as usize);
        writeln!(out, "  {} {:>6} {bar}", day.date, day.count)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn export(args: ExportArgs) -> Result<ExitCode> {
    let since = match &args.since {
        None => i64::MIN,
        Some(text) => crate::time::parse_rfc3339(text).ok_or_else(|| {
            Error::Config(format!(
                "--since {text:?} is not an RFC 3339 time, e.g. 2026-11-01T00:00:00Z"
            ))
        })?,
    };
    let format = crate::export::Format::from_name(&args.format)
        .ok_or_else(|| Error::Config(format!("--format {:?}: use jsonl or csv", args.format)))?;
    let store = open_existing(args.db)?;
    let mut out = crate::export::Writer::new(format, io::BufWriter::new(io::stdout().lock()))?;
    let mut each = |m: Message| -> Result<()> {
        if m.received_at_ms >= since {
            out.write(&m)?;
        }
        Ok(())
    };
    match (&args.query, &args.contact) {
        // What the page's search finds, newest first; with --contact, in that conversation.
        (Some(query), contact) => {
            let found = crate::store::Found {
                fts_match: crate::search::Query::parse(query)
                    .fts_match()
                    .ok_or_else(|| Error::Config("--query has no word to look for".into()))?,
                contact_id: contact.clone(),
                ..Default::default()
            };
            store.each_found(&found, None, i64::MAX, &mut each)?;
        }
        // One conversation, in the thread's time order.
        (None, Some(contact)) => store.for_each_in_thread(contact, &mut each)?,
        (None, None) => store.for_each_message_since(since, &mut each)?,
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

fn send_test(args: SendTestArgs) -> Result<ExitCode> {
    let url = args
        .url
        .unwrap_or_else(|| format!("http://127.0.0.1:3000{}", crate::paths::WEBHOOK));
    let secret = match args
        .secret
        .or_else(|| secret("CHATRACE_RELAY_WEBHOOK_SECRET", "webhook_secret"))
    {
        Some(s) => s,
        None => open_existing(args.db)?
            .setting("webhook_secret")?
            .ok_or_else(|| {
                Error::Config(
                    "no webhook secret: pass --secret or --db of the running relay".into(),
                )
            })?,
    };
    println!("POST {url}");
    match crate::sample::post(&url, &secret) {
        Ok(reply) => {
            println!("HTTP {}\n{}", reply.status, reply.body.trim_end());
            if (200..300).contains(&reply.status) {
                println!("ok: the relay stored the test message (marked as a test, not counted in stats)");
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::FAILURE)
            }
        }
        Err(failure) => {
            println!("failed: {failure}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The token check of the setup page, for a terminal. The token is never printed.
fn check_token(args: CheckTokenArgs) -> Result<ExitCode> {
    let lang = crate::i18n::Lang::En;
    let api = api_url(args.api_url);
    let timeout = api_timeout().map_err(Error::Config)?;
    let token = secret("CHATRACE_TOKEN", "chatrace_token");
    println!("GET {api}/accounts/me with X-ACCESS-TOKEN");
    let check = crate::chatrace::check_token(&api, token.as_deref(), timeout);
    println!("{}", crate::checklist::token_verdict(&check, lang));
    if let Some(problem) = token
        .as_deref()
        .and_then(|t| crate::chatrace::check_shape(t).err())
    {
        println!(
            "note: the token is unlike the usual <digits>.<letters and digits>: {} \
             (white-label tokens can look different; Chatrace's answer above decides)",
            crate::checklist::token_shape_hint(&problem, lang)
        );
    }
    if !check.is_valid() {
        println!("{}", crate::checklist::token_advice(&check, lang));
    }
    if let Some(account) = token.as_deref().and_then(crate::chatrace::account_digits) {
        println!(
            "account settings (if {account} is your account id): {}",
            crate::chatrace::settings_link(account)
        );
    }
    Ok(if check.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
