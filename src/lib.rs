//! chatrace-relay: receives Chatrace webhooks carrying Instagram direct messages, stores them
//! durably in one SQLite file, and relays them to the team's own software.

mod app;
mod catch_up;
mod chatrace;
mod checklist;
pub mod cli;
pub mod commands;
mod config;
mod contact;
mod error;
mod export;
mod fetch_media;
mod forward;
mod hash;
mod http;
mod i18n;
mod inbox;
mod lookup;
mod media_keeper;
mod media_link;
mod memory;
mod metrics;
mod outbound;
mod outcome;
mod pace;
mod paths;
pub mod payload;
mod probe;
mod public_ip;
mod reply;
mod retention;
mod sample;
mod search;
mod secret;
mod shutdown;
mod signature;
mod store;
pub mod systemd;
// Public so the fuzz targets in fuzz/ can call them directly.
pub mod text;
pub mod time;
mod web;
mod writer;
mod zone;
