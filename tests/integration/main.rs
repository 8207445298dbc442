//! Integration tests: every test starts the real `chatrace-relay` binary on port 0 with its
//! own database and talks to it over TCP, the way Chatrace and users do.

mod util;

mod browser;
mod cli;
mod pages;
mod read_api;
mod webhook;
