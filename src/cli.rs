//! The command line: argh definitions only. Defaults and environment variables are resolved in
//! `config`, because argh cannot read the environment.

use argh::FromArgs;

/// Receives Chatrace webhooks with Instagram direct messages, stores them durably and relays
/// them to your app.
#[derive(FromArgs, Debug)]
pub struct Cli {
    /// print the name and version, then exit
    #[argh(switch, short = 'V')]
    pub version: bool,
    #[argh(subcommand)]
    pub command: Command,
}

/// Parsed once at start, so the size of the serve variant costs nothing; argh cannot box it.
#[allow(clippy::large_enum_variant)]
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Serve(ServeArgs),
    CheckToken(CheckTokenArgs),
    SendTest(SendTestArgs),
    Stats(StatsArgs),
    Export(ExportArgs),
    AdminToken(AdminTokenArgs),
    Replay(ReplayArgs),
    Backup(BackupArgs),
    CatchUp(CatchUpArgs),
    InboxLogin(InboxLoginArgs),
}

/// Run the relay server (webhook receiver, API and setup page).
#[derive(FromArgs, Debug, Default)]
#[argh(subcommand, name = "serve")]
pub struct ServeArgs {
    /// address to listen on [env CHATRACE_RELAY_LISTEN, default 127.0.0.1:3000]
    #[argh(option)]
    pub listen: Option<String>,
    /// SQLite database file [env CHATRACE_RELAY_DB, default chatrace-relay.db]
    #[argh(option)]
    pub db: Option<String>,
    /// the https URL this relay is reached at from the internet [env CHATRACE_RELAY_PUBLIC_URL]
    #[argh(option)]
    pub public_url: Option<String>,
    /// URL to push each new message to; repeat for several [env CHATRACE_RELAY_FORWARD_URL,
    /// comma-separated]
    #[argh(option)]
    pub forward_url: Vec<String>,
    /// standard Webhooks signing secret, whsec_ + base64 [env CHATRACE_RELAY_FORWARD_SECRET]
    #[argh(option)]
    pub forward_secret: Option<String>,
    /// delays between forwarding attempts [env CHATRACE_RELAY_RETRY_SCHEDULE, default
    /// 5s,30s,2m,10m,30m,1h,2h,6h,12h]
    #[argh(option)]
    pub retry_schedule: Option<String>,
    /// how long one forwarding attempt may take, e.g. 10s or 500ms
    /// [env CHATRACE_RELAY_FORWARD_TIMEOUT, default 10s]
    #[argh(option)]
    pub forward_timeout: Option<String>,
    /// close a connection whose client sends nothing, stops reading our answers or stops
    /// answering keepalive probes for this long [env CHATRACE_RELAY_CLIENT_TIMEOUT,
    /// default 20s]
    #[argh(option)]
    pub client_timeout: Option<String>,
    /// merge an identical request (same contact, text and attachments, no message id or
    /// sender time) arriving again within this long, e.g. 2s; 0 never merges
    /// [env CHATRACE_RELAY_DEDUP_WINDOW, default 2s]
    #[argh(option)]
    pub dedup_window: Option<String>,
    /// number of request worker threads [env CHATRACE_RELAY_WORKERS, default 16 per core, 16..64]
    #[argh(option)]
    pub workers: Option<usize>,
    /// largest accepted request body in bytes [env CHATRACE_RELAY_MAX_BODY, default 262144]
    #[argh(option)]
    pub max_body: Option<usize>,
    /// refuse new webhooks (503) once the database file reaches this many MiB, so a full disk
    /// never surprises you [env CHATRACE_RELAY_MAX_DB_MB, default unlimited]
    #[argh(option)]
    pub max_db_mb: Option<u64>,
    /// delete raw request records (bodies, headers) older than this, e.g. 30d; their
    /// messages stay [env CHATRACE_RELAY_KEEP_RAW, default keep for ever]
    #[argh(option)]
    pub keep_raw: Option<String>,
    /// delete messages older than this, e.g. 365d, with their raw records and finished
    /// deliveries; the daily counts stay [env CHATRACE_RELAY_KEEP_MESSAGES, default keep
    /// for ever]
    #[argh(option)]
    pub keep_messages: Option<String>,
    /// keep attachments' files in the database, up to this much in all, e.g. 2GB; the
    /// oldest are evicted beyond it; 0 keeps none [env CHATRACE_RELAY_KEEP_MEDIA, default 1GB]
    #[argh(option)]
    pub keep_media: Option<String>,
    /// largest attachment file kept, e.g. 25MB [env CHATRACE_RELAY_MAX_MEDIA, default 25MB]
    #[argh(option)]
    pub max_media: Option<String>,
    /// catch up from Chatrace's inbox this often, e.g. 1m; 0 turns catch-up off
    /// [env CHATRACE_RELAY_CATCH_UP_EVERY, default 1m]
    #[argh(option)]
    pub catch_up_every: Option<String>,
    /// address of Chatrace's inbox API, {app}/php/user; white-labels use their own app
    /// domain [env CHATRACE_INBOX_URL, default https://chatrace.com/php/user]
    #[argh(option)]
    pub inbox_url: Option<String>,
    /// the Chatrace account (page id) to catch up [env CHATRACE_ACCOUNT_ID, default: the
    /// login's only account, else the one CHATRACE_TOKEN belongs to]
    #[argh(option)]
    pub account_id: Option<String>,
    /// catch up incoming messages only, leaving out what the bot and the team sent
    /// [env CHATRACE_RELAY_INCOMING_ONLY=1]
    #[argh(switch)]
    pub incoming_only: bool,
    /// calls a minute to Chatrace, its API and inbox together
    /// [env CHATRACE_RELAY_CHATRACE_RATE, default 60]
    #[argh(option)]
    pub chatrace_rate: Option<u32>,
    /// the time zone where days begin for "today", the chart and date filters, an IANA
    /// name such as Europe/Moscow [env CHATRACE_RELAY_TIME_ZONE, default UTC]
    #[argh(option)]
    pub time_zone: Option<String>,
}

/// The inbox settings, as `serve`, `catch-up` and `inbox-login` take them (argh cannot
/// share fields between subcommands).
#[derive(Debug, Clone, Default)]
pub struct InboxFlags {
    pub inbox_url: Option<String>,
    pub account_id: Option<String>,
    pub incoming_only: bool,
    pub chatrace_rate: Option<u32>,
}

impl ServeArgs {
    pub fn inbox_flags(&self) -> InboxFlags {
        InboxFlags {
            inbox_url: self.inbox_url.clone(),
            account_id: self.account_id.clone(),
            incoming_only: self.incoming_only,
            chatrace_rate: self.chatrace_rate,
        }
    }
}

/// Import messages from Chatrace's inbox since a date: history the relay never saw.
/// Resumable: run it again after an interruption. Works while a server runs.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "catch-up")]
pub struct CatchUpArgs {
    /// SQLite database file [env CHATRACE_RELAY_DB, default chatrace-relay.db]
    #[argh(option)]
    pub db: Option<String>,
    /// import messages from this date (2026-10-01) or RFC 3339 time on
    #[argh(option)]
    pub since: String,
    /// only this contact's conversation (the contact id, {{user_id}})
    #[argh(option)]
    pub contact: Option<String>,
    /// also push the imported messages to the forward URLs (default: the cursor only)
    #[argh(switch)]
    pub forward: bool,
    /// address of Chatrace's inbox API [env CHATRACE_INBOX_URL]
    #[argh(option)]
    pub inbox_url: Option<String>,
    /// the Chatrace account (page id) [env CHATRACE_ACCOUNT_ID]
    #[argh(option)]
    pub account_id: Option<String>,
    /// incoming messages only [env CHATRACE_RELAY_INCOMING_ONLY=1]
    #[argh(switch)]
    pub incoming_only: bool,
    /// calls a minute to Chatrace [env CHATRACE_RELAY_CHATRACE_RATE, default 60]
    #[argh(option)]
    pub chatrace_rate: Option<u32>,
}

impl CatchUpArgs {
    pub fn inbox_flags(&self) -> InboxFlags {
        InboxFlags {
            inbox_url: self.inbox_url.clone(),
            account_id: self.account_id.clone(),
            incoming_only: self.incoming_only,
            chatrace_rate: self.chatrace_rate,
        }
    }
}

/// Sign in to Chatrace's inbox with a team member's email: Chatrace mails a code, you type
/// it, and the relay keeps the token in its database.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "inbox-login")]
pub struct InboxLoginArgs {
    /// the team member's email address
    #[argh(positional)]
    pub email: String,
    /// SQLite database file [env CHATRACE_RELAY_DB, default chatrace-relay.db]
    #[argh(option)]
    pub db: Option<String>,
    /// address of Chatrace's inbox API [env CHATRACE_INBOX_URL]
    #[argh(option)]
    pub inbox_url: Option<String>,
}

/// Check the Chatrace API token (from CHATRACE_TOKEN or the systemd credential
/// chatrace_token) against the Chatrace API; exits 0 when it is accepted.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check-token")]
pub struct CheckTokenArgs {
    /// chatrace API base URL [env CHATRACE_API_URL, default https://api.chatrace.com]
    #[argh(option)]
    pub api_url: Option<String>,
}

/// Post a realistic sample webhook to a running relay and report what came back.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "send-test")]
pub struct SendTestArgs {
    /// webhook URL [default http://127.0.0.1:3000/instagram/webhook]
    #[argh(option)]
    pub url: Option<String>,
    /// webhook secret [env CHATRACE_RELAY_WEBHOOK_SECRET; otherwise read from --db]
    #[argh(option)]
    pub secret: Option<String>,
    /// database to read the webhook secret from when none is given [default chatrace-relay.db]
    #[argh(option)]
    pub db: Option<String>,
}

/// Print the same figures as /instagram/stats, for a terminal.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "stats")]
pub struct StatsArgs {
    /// SQLite database file [env CHATRACE_RELAY_DB, default chatrace-relay.db]
    #[argh(option)]
    pub db: Option<String>,
    /// print JSON instead of a table
    #[argh(switch)]
    pub json: bool,
    /// the time zone where "today" and the days begin, an IANA name
    /// [env CHATRACE_RELAY_TIME_ZONE, default UTC]
    #[argh(option)]
    pub time_zone: Option<String>,
}

/// Write stored messages to stdout as JSON lines or CSV.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "export")]
pub struct ExportArgs {
    /// SQLite database file [env CHATRACE_RELAY_DB, default chatrace-relay.db]
    #[argh(option)]
    pub db: Option<String>,
    /// jsonl or csv [default jsonl]
    #[argh(option, default = "String::from(\"jsonl\")")]
    pub format: String,
    /// only messages received at or after this RFC 3339 time
    #[argh(option)]
    pub since: Option<String>,
    /// only this contact's conversation, in time order (sent time when known)
    #[argh(option)]
    pub contact: Option<String>,
    /// only messages whose text, contact name or username hold every word (the last one
    /// also as the start of a word), newest first, as the page's search finds them
    #[argh(option)]
    pub query: Option<String>,
}

/// Print the admin token for the setup page and API, from an existing database.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "admin-token")]
pub struct AdminTokenArgs {
    /// SQLite database file [env CHATRACE_RELAY_DB, default chatrace-relay.db]
    #[argh(option)]
    pub db: Option<String>,
}

/// Re-queue forwarding deliveries: one by id, the failed ones, or every message since a time
/// to every target that has not had it. A running relay sends them within a few seconds.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "replay")]
pub struct ReplayArgs {
    /// SQLite database file [env CHATRACE_RELAY_DB, default chatrace-relay.db]
    #[argh(option)]
    pub db: Option<String>,
    /// re-queue every failed delivery (with --since: only those created since then)
    #[argh(switch)]
    pub failed: bool,
    /// RFC 3339 time; alone it queues every message received since then for every target
    /// of the relay that has not had it delivered, also messages stored before the target
    /// was set
    #[argh(option)]
    pub since: Option<String>,
    /// with --since: send messages already delivered again too
    #[argh(switch)]
    pub resend_delivered: bool,
    /// re-queue the one delivery with this id
    #[argh(option)]
    pub id: Option<i64>,
}

/// Write a consistent copy of the database to DEST, also while a relay is writing to it;
/// prints the copy's size and message count. Never overwrites: DEST must not exist.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "backup")]
pub struct BackupArgs {
    /// SQLite database file [env CHATRACE_RELAY_DB, default chatrace-relay.db]
    #[argh(option)]
    pub db: Option<String>,
    /// where to write the copy (a new file)
    #[argh(positional)]
    pub dest: String,
}
