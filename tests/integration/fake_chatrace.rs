//! A scripted HTTP server for tests: tiny_http on port 0 in a thread, recording every request.
//! It plays the Chatrace API (which reads only `X-ACCESS-TOKEN`) or a foreign server that
//! sits where the relay's public URL points.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How the server answers every request.
#[derive(Clone)]
pub enum Answer {
    /// Chatrace with a valid token: 200 and a tag list for exactly this `X-ACCESS-TOKEN`,
    /// 401 "No valid API key provided" for anything else.
    Tags(String),
    /// Chatrace refusing every token.
    Unauthorized,
    /// Chatrace's failure reported as HTTP 200.
    ErrorInBody,
    /// Answers only after this long.
    Hang(Duration),
    /// Any other server: this status and body.
    Fixed(u16, &'static str),
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct FakeServer {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    server: Arc<tiny_http::Server>,
    seen: Arc<Mutex<Vec<Seen>>>,
    thread: Option<JoinHandle<()>>,
}

const UNAUTHORIZED: &str = r#"{"error":"No valid API key provided"}"#;

impl FakeServer {
    pub fn start(answer: Answer) -> FakeServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let server = Arc::clone(&server);
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    seen.lock().unwrap().push(Seen {
                        url: request.url().to_string(),
                        headers: request
                            .headers()
                            .iter()
                            .map(|h| (h.field.to_string(), h.value.to_string()))
                            .collect(),
                    });
                    respond(&answer, request);
                }
            })
        };
        FakeServer {
            url: format!("http://127.0.0.1:{port}"),
            server,
            seen,
            thread: Some(thread),
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn respond(answer: &Answer, request: tiny_http::Request) {
    let token = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("X-ACCESS-TOKEN"))
        .map(|h| h.value.to_string());
    let (status, body) = match answer {
        Answer::Tags(valid) if token.as_deref() == Some(valid) => {
            (200, r#"[{"id":1,"name":"lead"},{"id":2,"name":"vip"}]"#)
        }
        Answer::Tags(_) | Answer::Unauthorized => (401, UNAUTHORIZED),
        Answer::ErrorInBody => (
            200,
            r#"{"error":{"code":403,"message":"API access is not part of your plan"}}"#,
        ),
        Answer::Hang(delay) => {
            // Answer from another thread so the server keeps taking requests meanwhile.
            let delay = *delay;
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let _ = request.respond(tiny_http::Response::from_string("[]"));
            });
            return;
        }
        Answer::Fixed(status, body) => (*status, *body),
    };
    let _ = request.respond(tiny_http::Response::from_string(body).with_status_code(status));
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
