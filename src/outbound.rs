//! Outbound HTTP: the one place ureq is used. Every call has explicit timeouts (ureq has
//! none by default) and hands back the status instead of turning 4xx/5xx into errors,
//! because callers must tell "refused" from "unreachable".

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What came back from the far side.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::text::header(&self.headers, name)
    }
}

/// Why nothing came back, sorted so a person can be told what to fix. Serializable because
/// the token check's verdict, which may be one, is cached in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    Dns(String),
    Refused(String),
    Tls(String),
    Timeout,
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Dns(e) => write!(f, "host name not found ({e})"),
            Failure::Refused(e) => write!(f, "connection refused ({e})"),
            Failure::Tls(e) => write!(f, "TLS failed ({e})"),
            Failure::Timeout => write!(f, "timed out"),
            Failure::Other(e) => write!(f, "{e}"),
        }
    }
}

/// Largest response body read; answers we care about are small JSON.
const MAX_REPLY: u64 = 64 * 1024;

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
        .http_status_as_error(false)
        .max_redirects(0)
        // Below the 5 s idle timeout of Node.js servers: a kept-alive connection is dropped by
        // us before the far side closes it under a request.
        .max_idle_age(Duration::from_secs(4))
        .user_agent(concat!("chatrace-relay/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// One request on a fresh connection: for occasional calls (the token check, the
/// self-probe, replies, test webhooks).
pub fn get(url: &str, headers: &[(&str, &str)], timeout: Duration) -> Result<Answer, Failure> {
    Client::new(timeout).get(url, headers)
}

pub fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Answer, Failure> {
    Client::new(timeout).post(url, headers, body)
}

/// A client that keeps connections open between calls: for the delivery threads, which
/// post to the same target again and again and should not pay a TCP and TLS handshake for
/// every message.
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    pub fn new(timeout: Duration) -> Client {
        Client {
            agent: agent(timeout),
        }
    }

    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Answer, Failure> {
        finish(with_headers(self.agent.get(url), headers).call())
    }

    pub fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, Failure> {
        finish(with_headers(self.agent.post(url), headers).send(body))
    }
}

/// A POST whose answer may be bigger than the usual small JSON (a page of an inbox), up to
/// `max_reply` bytes; a bigger or unreadable answer is a failure, never an empty body.
pub fn post_large(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
    max_reply: u64,
) -> Result<Answer, Failure> {
    let result = with_headers(agent(timeout).post(url), headers).send(body);
    match read(result, max_reply)? {
        (answer, None) => Ok(answer),
        (_, Some(e)) => Err(match classify(e) {
            Failure::Timeout => Failure::Timeout,
            _ => Failure::Other(format!(
                "the answer is over {} KiB or not UTF-8 text",
                max_reply / 1024
            )),
        }),
    }
}

fn headers_of(response: &ureq::http::Response<ureq::Body>) -> Vec<(String, String)> {
    response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn with_headers<B>(
    mut req: ureq::RequestBuilder<B>,
    headers: &[(&str, &str)],
) -> ureq::RequestBuilder<B> {
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    req
}

/// A small answer: a body too big or unreadable reads as empty, since the callers judge
/// the status first and the body only as words to show.
fn finish(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Answer, Failure> {
    read(result, MAX_REPLY).map(|(answer, _)| answer)
}

/// The status, headers and up to `limit` bytes of the body; the body's own read error, if
/// any, beside it for the caller to judge.
fn read(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    limit: u64,
) -> Result<(Answer, Option<ureq::Error>), Failure> {
    let mut response = result.map_err(classify)?;
    let headers = headers_of(&response);
    let status = response.status().as_u16();
    let (body, error) = match response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()
    {
        Ok(body) => (body, None),
        Err(e) => (String::new(), Some(e)),
    };
    Ok((
        Answer {
            status,
            headers,
            body,
        },
        error,
    ))
}

fn classify(e: ureq::Error) -> Failure {
    match e {
        ureq::Error::Timeout(_) => Failure::Timeout,
        ureq::Error::HostNotFound => Failure::Dns("no such host".into()),
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => Failure::Refused(io.to_string()),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Failure::Timeout,
            _ if io.to_string().contains("failed to lookup") => Failure::Dns(io.to_string()),
            _ => Failure::Other(io.to_string()),
        },
        ureq::Error::Tls(t) => Failure::Tls(t.to_string()),
        other => {
            let text = other.to_string();
            if text.to_ascii_lowercase().contains("tls") || text.contains("certificate") {
                Failure::Tls(text)
            } else {
                Failure::Other(text)
            }
        }
    }
}
