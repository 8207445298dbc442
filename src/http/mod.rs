//! The transport: everything that touches tiny_http and the socket, and nothing that knows
//! a route. The server takes requests off the connections under the defences tiny_http
//! lacks, turns them into the plain `Request` and `Response` types, and hands each to a
//! `Handler` (the route table in `web`).

mod defences;
mod intake;
mod request;
mod server;
mod wire;

pub use request::{cookie, Cookie, Handled, Request, Response, LANG_COOKIE};
pub use server::{bind, run, Handler, Limits};
