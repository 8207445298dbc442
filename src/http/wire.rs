//! Between tiny_http's types and the plain ones: a request converted (with the client named
//! by a proxy on the same machine), every answer sent with the security headers, and the
//! ways to end a connection that must not be read any further.

use std::net::{Shutdown, SocketAddr};

use log::{info, warn};

use super::defences::shut_down;
use super::request::{Request, Response};

/// Declared bodies above this are not drained when refused: tiny_http would allocate the
/// whole remainder in one buffer when the request is dropped, and a forged Content-Length of
/// terabytes aborts the process. Such connections are abandoned instead (see `refuse_huge`).
pub(super) const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Sent with every answer, pages and API alike: no script runs but the relay's own file
/// (the copy buttons; never inline, so nothing stored can inject one), nothing loads from
/// another host (photos, videos and voice notes people sent are shown from the relay's own
/// copies), and nothing may be framed or sniffed into another content type.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
];

/// Answers, then ends the connection without tiny_http reading any further: the rest of
/// the connection is handed over and never given back, and the socket is shut down. This
/// parks the connection's tiny_http thread for good, a cost paid only for broken or
/// hostile requests (a reverse proxy in front never sends them).
pub(super) fn respond_and_close(raw: tiny_http::Request, response: Response, port: u16) {
    let peer = raw.remote_addr().copied();
    let stream = raw.upgrade("close", to_tiny(secured(response)));
    if let Some(peer) = peer {
        shut_down(port, &[peer], Shutdown::Both);
    }
    std::mem::forget(stream);
}

/// Answers a request whose declared body is too big to drain, then leaks the connection's
/// reader: dropping it would make tiny_http allocate the whole declared length at once.
/// The cost is one parked tiny_http thread per such request; a reverse proxy with a body
/// limit (see README) keeps them from ever arriving.
pub(super) fn refuse_huge(raw: tiny_http::Request, response: Response) {
    warn!("refused a body declared larger than {DRAIN_LIMIT} bytes; connection abandoned");
    let stream = raw.upgrade("close", to_tiny(secured(response)));
    std::mem::forget(stream);
}

pub(super) fn convert(raw: &tiny_http::Request, body: Vec<u8>) -> Request {
    let (path, query) = match raw.url().split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (raw.url().to_string(), String::new()),
    };
    let headers: Vec<(String, String)> = raw
        .headers()
        .iter()
        .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
        .collect();
    let client = client_address(raw.remote_addr(), &headers);
    Request {
        method: raw.method().as_str().to_ascii_uppercase(),
        path,
        query,
        headers,
        body,
        client,
    }
}

/// Behind a reverse proxy on the same machine every peer is 127.0.0.1; the proxy's
/// X-Forwarded-For names the real client. From any other peer the header is not trusted.
fn client_address(peer: Option<&SocketAddr>, headers: &[(String, String)]) -> Option<String> {
    let peer = peer?;
    if peer.ip().is_loopback() {
        let forwarded = crate::text::header(headers, "X-Forwarded-For")
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let Some(client) = forwarded {
            // Shown on the page and logged: no room for control characters.
            return Some(
                client
                    .chars()
                    .take(64)
                    .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
                    .collect(),
            );
        }
    }
    Some(peer.ip().to_string())
}

fn to_tiny(response: Response) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut out = tiny_http::Response::from_data(response.body).with_status_code(response.status);
    for (name, value) in response.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            out.add_header(header);
        }
    }
    out
}

fn secured(mut response: Response) -> Response {
    for (name, value) in SECURITY_HEADERS {
        response.headers.push((name, (*value).to_string()));
    }
    response
}

pub(super) fn respond(raw: tiny_http::Request, response: Response) {
    if let Err(e) = raw.respond(to_tiny(secured(response))) {
        info!("could not send a response: {e}");
    }
}
