//! Integration tests: every test starts the real `chatrace-relay` binary on port 0 with its
//! own database and talks to it over TCP, the way Chatrace and users do.

mod util;

mod cli;
mod crash;
mod read_api;
mod webhook;
