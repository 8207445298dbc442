//! The handlers: everything that turns a request into calls on the services below and
//! renders the answer. The route table checks who may call and picks the handler; the
//! handlers are grouped by feature, and the page's view models live in `views`. The
//! transport they run on is `http`.

mod actions;
mod api;
mod assets;
mod big_bodies;
mod contacts;
mod dashboard;
mod export;
mod long_poll;
mod media;
mod messages;
mod routes;
mod search;
mod session;
mod sign_in;
mod state;
mod thread;
mod views;
mod webhook;

pub use long_poll::WaitSlots;
pub use session::Sessions;
pub use state::{Context, State};
