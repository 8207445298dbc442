//! What request handlers work with: the state every worker shares, and one worker's own
//! database connection beside it.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::checklist::Relay;
use crate::config::Config;
use crate::forward::Doorbell;
use crate::metrics::Metrics;
use crate::probe::SelfProbe;
use crate::store::Store;
use crate::writer::Writer;

use super::big_bodies::BigBodies;
use super::long_poll::WaitSlots;
use super::session::Sessions;

/// Shared by every worker thread for the life of the server.
pub struct State {
    pub config: Config,
    pub webhook_secret: String,
    pub admin_token: String,
    /// Signs the links to kept attachments that forwarded messages carry.
    pub media_key: String,
    pub writer: Writer,
    pub started_at_ms: i64,
    /// The address actually bound (the real port when started on port 0).
    pub addr: SocketAddr,
    /// Nonces and the cached result of the public URL self-probe.
    pub probe: SelfProbe,
    pub metrics: Arc<Metrics>,
    /// Rung after a replay so the delivery threads look at the outbox at once.
    pub forward_bell: Arc<Doorbell>,
    /// Wakes the inbox catch-up: after a sign-in, or for the page's history import.
    pub catch_up: Arc<crate::catch_up::Trigger>,
    /// Bounds how many `/api/messages?wait=` requests may hold a worker at once.
    pub long_polls: WaitSlots,
    /// Browsers signed in to the setup page.
    pub sessions: Sessions,
    /// Bounds how many big webhook bodies are parsed and stored at once.
    pub big_bodies: Arc<BigBodies>,
}

/// One worker thread's view: the shared state and the worker's own connection.
pub struct Context {
    pub state: Arc<State>,
    pub store: Store,
}

impl Context {
    /// What the checklist looks at, from this worker.
    pub fn relay(&self) -> Relay<'_> {
        Relay {
            config: &self.state.config,
            webhook_secret: &self.state.webhook_secret,
            addr: self.state.addr,
            started_at_ms: self.state.started_at_ms,
            probe: &self.state.probe,
            forward_bell: &self.state.forward_bell,
            catch_up: &self.state.catch_up,
            store: &self.store,
        }
    }

    /// Where replies go.
    pub fn chatrace(&self) -> crate::reply::Chatrace<'_> {
        crate::reply::Chatrace {
            api_url: &self.state.config.chatrace_api_url,
            token: self.state.config.chatrace_token.as_deref(),
        }
    }

    /// Cookies get `Secure` when the relay is published over https.
    pub fn secure_cookies(&self) -> bool {
        self.state
            .config
            .public_url
            .as_deref()
            .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"))
    }
}
