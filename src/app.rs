//! Wiring: resolve secrets, open the database, start the writer, the delivery threads and
//! the HTTP workers, and stop them in order. Nothing imports this module.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use log::{info, warn};

use crate::catch_up::{Background, Trigger};
use crate::config::{Config, SecretSource};
use crate::error::Result;
use crate::forward::{Doorbell, Forwarder};
use crate::http::Limits;
use crate::lookup::Lookups;
use crate::metrics::Metrics;
use crate::probe::SelfProbe;
use crate::store::{IngestRules, Store};
use crate::web::{Context, Sessions, State, WaitSlots};
use crate::writer::Writer;

/// After the last commit, the responders' time to write the final answers.
const LAST_ANSWERS: Duration = Duration::from_millis(300);

/// Runs `serve` until a stop signal (Ok) or until the server fails.
pub fn serve(config: Config) -> Result<()> {
    crate::memory::tune();
    let mut store = Store::open(&config.db)?;
    let webhook_secret = store.resolve_secret(config.webhook_secret.clone(), "webhook_secret")?;
    let admin_token = store.resolve_secret(
        config.admin_token.as_ref().map(|given| given.value.clone()),
        "admin_token",
    )?;
    let admin_token_source = config
        .admin_token
        .as_ref()
        .map_or(SecretSource::Database, |given| given.source);
    store.set_setting(SecretSource::ADMIN_TOKEN_KEY, admin_token_source.as_str())?;
    let media_key = store.resolve_secret(None, "media_link_key")?;
    let forwarder = Forwarder::prepare(&config, &mut store)?;
    let ended = store.end_deliveries_elsewhere(&config.forward_urls, crate::time::now_ms())?;
    if ended > 0 {
        warn!("ended {ended} pending deliveries to targets that are no longer a --forward-url");
    }
    if Sessions::end_stale(&store, &admin_token)? > 0 {
        info!("the admin token changed: the setup page's sessions were ended");
    }
    drop(store);

    let writer_store = Store::connect(&config.db)?;
    if let Some(max) = config.max_db_bytes {
        writer_store.limit_size(max)?;
    }
    let rules = IngestRules {
        forward_targets: config.forward_urls.clone(),
        dedup_window_ms: i64::try_from(config.dedup_window.as_millis()).unwrap_or(i64::MAX),
    };
    let writer = Writer::start(writer_store, rules)?;
    crate::retention::Retention {
        keep_raw: config.keep_raw,
        keep_messages: config.keep_messages,
    }
    .start(&config.db)?;
    let metrics = Arc::new(Metrics::default());
    let forward_bell = Arc::new(Doorbell::default());
    crate::chatrace::PACE.set_rate(config.inbox.rate);
    let catch_up = Arc::new(Trigger::default());
    if let Some(forwarder) = forwarder {
        forwarder.start(
            Arc::clone(writer.newest()),
            Arc::clone(&forward_bell),
            Arc::clone(&metrics),
        )?;
    }

    if let Some(cap) = config.keep_media {
        crate::media_keeper::Keeper {
            cap,
            rules: crate::fetch_media::Rules {
                max_bytes: config.max_media,
                timeout: crate::config::MEDIA_TIMEOUT,
                allow_private: config.media_allow_private,
            },
            max_db_bytes: config.max_db_bytes,
        }
        .start(
            &config.db,
            Arc::clone(writer.newest()),
            Arc::clone(&metrics),
        )?;
    }

    if let Some(token) = &config.chatrace_token {
        let lookups = Lookups {
            api_url: config.chatrace_api_url.clone(),
            token: token.clone(),
        };
        lookups.start(
            &config.db,
            Arc::clone(writer.newest()),
            Arc::clone(&metrics),
        )?;
    }

    if let Some(every) = config.catch_up_every {
        Background {
            config: config.inbox.clone(),
            forward_targets: config.forward_urls.clone(),
            every,
        }
        .start(
            &config.db,
            Arc::clone(&catch_up),
            Arc::clone(writer.newest()),
            Arc::clone(&forward_bell),
            Arc::clone(&metrics),
        )?;
    }

    let worker_stores = (0..config.workers)
        .map(|_| Store::connect(&config.db))
        .collect::<Result<Vec<_>>>()?;
    let (server, addr) = crate::http::bind(&config.listen, config.client_timeout)?;
    crate::shutdown::install();
    let limits = Limits {
        max_body: config.max_body,
        client_timeout: config.client_timeout,
    };
    let state = Arc::new(State {
        long_polls: WaitSlots::for_workers(config.workers),
        config,
        webhook_secret,
        admin_token,
        media_key,
        writer,
        started_at_ms: crate::time::now_ms(),
        addr,
        probe: SelfProbe::new()?,
        metrics,
        forward_bell,
        catch_up,
        sessions: Sessions::default(),
        big_bodies: Arc::default(),
    });
    // Connections made from here on wait in the listening socket's queue until a worker
    // takes them, so the relay is ready for systemd (`Type=notify`) as of now.
    let mut stdout = std::io::stdout();
    let priority = if crate::systemd::is_journal(&stdout) {
        "<6>"
    } else {
        ""
    };
    let _ = writeln!(stdout, "{priority}listening on http://{addr}");
    let _ = stdout.flush();
    crate::systemd::notify(&format!("READY=1\nSTATUS=listening on http://{addr}"));
    info!(
        "setup page: {}/ (sign in with the admin token {})",
        state
            .config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}")),
        admin_token_source.admin_token_origin(&state.config.db)
    );
    let contexts = worker_stores
        .into_iter()
        .map(|store| Context {
            state: Arc::clone(&state),
            store,
        })
        .collect();
    let writer = state.writer.clone();
    let served = crate::http::run(server, addr, limits, contexts, move || writer.fatal());
    crate::systemd::notify("STOPPING=1");
    served?;
    // The writer takes jobs in order, so once this health check is through, every webhook
    // handed over before it is committed and its answer is with the responders.
    if let Err(e) = state.writer.health_check() {
        warn!("last commit before stopping failed: {e}");
    }
    std::thread::sleep(LAST_ANSWERS);
    info!("stopped");
    Ok(())
}
