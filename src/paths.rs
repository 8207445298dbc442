//! Every path of the relay's HTTP interface, named once. The route table serves them, the
//! handlers redirect to them, and the checklist and the commands show the webhook's.

/// Chatrace's External Request (and Meta's webhook) calls this.
pub const WEBHOOK: &str = "/instagram/webhook";
pub const HEALTH: &str = "/healthz";

// The team's own software, with the admin token.
pub const STATS: &str = "/instagram/stats";
pub const API_MESSAGES: &str = "/api/messages";
pub const API_SETUP: &str = "/api/setup";
/// `POST /api/setup/<action>` runs one of the checklist's buttons.
pub const API_SETUP_ACTION: &str = "/api/setup/";
pub const API_DELIVERIES: &str = "/api/deliveries";
pub const API_REPLAY: &str = "/api/deliveries/replay";
pub const API_REPLY: &str = "/api/messages/reply";
pub const METRICS: &str = "/metrics";
/// `GET /media/<sha-256>`: a kept attachment (the page, Bearer, or a signed link).
pub const MEDIA: &str = "/media/";

// The setup page.
pub const DASHBOARD: &str = "/";
pub const MESSAGES: &str = "/messages";
/// The contacts by their latest activity; `/contacts/{id}` is one contact's thread and
/// `/contacts/{id}/export` its export.
pub const CONTACTS: &str = "/contacts";
pub const CONTACT_PREFIX: &str = "/contacts/";
/// Full-text search over the messages, and the download of what it found.
pub const SEARCH: &str = "/search";
pub const SEARCH_EXPORT: &str = "/search/export";
pub const LOGIN: &str = "/login";
pub const LOGOUT: &str = "/logout";
/// `POST /setup/<action>` runs one of the checklist's buttons.
pub const SETUP_ACTION: &str = "/setup/";
pub const REPLAY: &str = "/deliveries/replay";
pub const REPLY: &str = "/reply";
pub const LANG: &str = "/lang";
pub const STYLESHEET: &str = "/static/style.css";
pub const SCRIPT: &str = "/static/copy.js";
/// Shows the page's times in the viewer's own time zone.
pub const TIME_SCRIPT: &str = "/static/local-time.js";
