//! Starting the relay: resolve secrets, open the database, start the writer and the HTTP
//! workers. `App` is the state every worker shares.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use log::info;

use crate::api::WaitSlots;
use crate::config::Config;
use crate::error::Result;
use crate::forward::{Doorbell, Forwarder};
use crate::metrics::Metrics;
use crate::probe::SelfProbe;
use crate::secret::random_hex;
use crate::session::Sessions;
use crate::store::Store;
use crate::writer::Writer;

/// Secrets are 24 random bytes: 192 bits, hex-encoded.
pub const SECRET_BYTES: usize = 24;

pub struct App {
    pub config: Config,
    pub webhook_secret: String,
    pub admin_token: String,
    pub writer: Writer,
    pub started_at_ms: i64,
    /// The address actually bound (the real port when started on port 0).
    pub addr: SocketAddr,
    /// Nonces and the cached result of the public URL self-probe.
    pub probe: SelfProbe,
    pub metrics: Arc<Metrics>,
    /// Rung after a replay so the delivery threads look at the outbox at once.
    pub forward_bell: Arc<Doorbell>,
    /// Bounds how many `/api/messages?wait=` requests may hold a worker at once.
    pub long_polls: WaitSlots,
    /// Browsers signed in to the setup page.
    pub sessions: Sessions,
}

/// Runs `serve` until the server fails.
pub fn serve(config: Config) -> Result<()> {
    let mut store = Store::open(&config.db)?;
    let webhook_secret =
        resolve_secret(&mut store, config.webhook_secret.clone(), "webhook_secret")?;
    let admin_token = resolve_secret(&mut store, config.admin_token.clone(), "admin_token")?;
    let forwarder = Forwarder::prepare(&config, &mut store)?;
    drop(store);

    let writer_store = Store::connect(&config.db)?;
    if let Some(max) = config.max_db_bytes {
        writer_store.limit_size(max)?;
    }
    let writer = Writer::start(writer_store, config.forward_urls.clone())?;
    let metrics = Arc::new(Metrics::default());
    let forward_bell = Arc::new(Doorbell::default());
    if let Some(forwarder) = forwarder {
        forwarder.start(
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
    let long_polls = WaitSlots::for_workers(config.workers);
    let app = Arc::new(App {
        config,
        webhook_secret,
        admin_token,
        writer,
        started_at_ms: crate::time::now_ms(),
        addr,
        probe: SelfProbe::new()?,
        metrics,
        forward_bell,
        long_polls,
        sessions: Sessions::default(),
    });
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on http://{addr}");
    let _ = stdout.flush();
    info!(
        "setup page: {}/ (sign in with the token from `chatrace-relay admin-token --db {}`)",
        app.config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}")),
        app.config.db.display()
    );
    crate::http::run(server, app, worker_stores)
}

/// A secret given from outside wins; otherwise the stored one, generated on first start.
pub fn resolve_secret(store: &mut Store, given: Option<String>, key: &str) -> Result<String> {
    match given {
        Some(secret) => Ok(secret),
        None => store.ensure_setting(key, || random_hex(SECRET_BYTES)),
    }
}
