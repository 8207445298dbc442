//! The web side: everything that speaks HTTP. The server (tiny_http) reads requests and
//! hands them to the route table, which checks who may call and picks the handler; the
//! handlers turn requests into calls on the services below and render the answers.

mod api;
mod big_bodies;
mod chart;
mod defences;
mod long_poll;
mod pages;
mod request;
mod routes;
mod server;
mod session;
mod state;
mod views;
mod webhook;

pub use long_poll::WaitSlots;
pub use server::{bind, run, Limits};
pub use session::Sessions;
pub use state::{Context, State};
