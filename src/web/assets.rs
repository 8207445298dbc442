//! The static files the pages load, compiled into the binary.

use crate::error::Result;
use crate::http::{Request, Response};

use super::state::Context;
use super::views::{SCRIPT, STYLESHEET, TIME_SCRIPT};

/// `GET /static/copy.js`: the copy buttons.
pub fn script(_cx: &mut Context, _req: &Request) -> Result<Response> {
    Ok(Response::asset("text/javascript; charset=utf-8", SCRIPT))
}

/// `GET /static/local-time.js`: the page's times in the viewer's own zone.
pub fn time_script(_cx: &mut Context, _req: &Request) -> Result<Response> {
    Ok(Response::asset(
        "text/javascript; charset=utf-8",
        TIME_SCRIPT,
    ))
}

/// `GET /static/style.css`.
pub fn stylesheet(_cx: &mut Context, _req: &Request) -> Result<Response> {
    Ok(Response::asset("text/css; charset=utf-8", STYLESHEET))
}
