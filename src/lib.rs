//! chatrace-relay: receives Chatrace webhooks carrying Instagram direct messages, stores them
//! durably in one SQLite file, and relays them to the team's own software.

pub mod api;
pub mod app;
pub mod chart;
pub mod chatrace;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod forward;
pub mod http;
pub mod i18n;
pub mod metrics;
pub mod outbound;
pub mod pages;
pub mod payload;
pub mod probe;
pub mod quiet;
pub mod relay_api;
pub mod reply;
pub mod secret;
pub mod session;
pub mod setup;
pub mod shutdown;
pub mod signature;
pub mod store;
pub mod time;
pub mod views;
pub mod webhook;
pub mod writer;
