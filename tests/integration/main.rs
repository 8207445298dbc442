//! Integration tests: every test starts the real `chatrace-relay` binary on port 0 with its
//! own database and talks to it over TCP, the way Chatrace and users do.

mod fake;
mod fake_chatrace;
mod fake_inbox;
mod util;

mod browser;
mod cli;
mod conversations;
mod crash;
mod fixtures;
mod forward;
mod hostile_client;
mod hostile_input;
mod inbox;
mod local_time;
mod long_poll;
mod media;
mod metrics;
mod page_actions;
mod pages;
mod probing;
mod proxy;
mod read_api;
mod real_chatrace;
mod refusals;
mod reply;
mod search;
mod setup;
mod store;
mod systemd;
mod webhook;
