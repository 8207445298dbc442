//! chatrace-relay: receives Chatrace webhooks carrying Instagram direct messages, stores them
//! durably in one SQLite file, and relays them to the team's own software.

pub mod api;
pub mod app;
pub mod chart;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod http;
pub mod i18n;
pub mod outbound;
pub mod pages;
pub mod payload;
pub mod secret;
pub mod session;
pub mod setup;
pub mod store;
pub mod time;
pub mod views;
pub mod webhook;
pub mod writer;
