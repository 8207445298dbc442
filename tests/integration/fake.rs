//! A scripted HTTP server on port 0 that stands in for a downstream app or the Chatrace API:
//! a closure decides each answer (or to hang), and every request is recorded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Handler threads: several, so a request told to hang does not hold up the next one.
const THREADS: usize = 8;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path with the query string.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
    /// 0 for the first request the fake received, 1 for the next...
    pub index: usize,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// What the fake does with a request.
pub enum Action {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Sleeps this long before answering 200, to outlast the client's timeout.
    Hang(Duration),
    /// A file that is no text (a picture, for a fake CDN).
    Bytes { content_type: String, body: Vec<u8> },
}

impl Action {
    pub fn status(status: u16) -> Action {
        Action::Respond {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn json(status: u16, body: &str) -> Action {
        Action::Respond {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Action {
        if let Action::Respond { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }
}

type Handler = dyn Fn(&Recorded) -> Action + Send + Sync;

pub struct Fake {
    server: Arc<tiny_http::Server>,
    addr: String,
    log: Arc<(Mutex<Vec<Recorded>>, Condvar)>,
    stopping: Arc<AtomicBool>,
}

impl Fake {
    /// Starts the fake; `handler` sees each request (already recorded) and picks the answer.
    pub fn start(handler: impl Fn(&Recorded) -> Action + Send + Sync + 'static) -> Fake {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let addr = server.server_addr().to_ip().unwrap().to_string();
        let log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        for _ in 0..THREADS {
            let (server, log, stopping, handler) = (
                Arc::clone(&server),
                Arc::clone(&log),
                Arc::clone(&stopping),
                Arc::clone(&handler),
            );
            thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    serve(request, &log, handler.as_ref());
                }
            });
        }
        Fake {
            server,
            addr,
            log,
            stopping,
        }
    }

    /// Answers every request with this status and no body.
    pub fn always(status: u16) -> Fake {
        Fake::start(move |_| Action::status(status))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.0.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived; panics after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        let mut log = self.log.0.lock().unwrap();
        while log.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "fake got {} request(s), expected {n}",
                log.len()
            );
            log = self.log.1.wait_timeout(log, left).unwrap().0;
        }
        log.clone()
    }
}

fn serve(
    mut request: tiny_http::Request,
    log: &(Mutex<Vec<Recorded>>, Condvar),
    handler: &Handler,
) {
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    let recorded = {
        let mut entries = log.0.lock().unwrap();
        let recorded = Recorded {
            method: request.method().as_str().to_string(),
            url: request.url().to_string(),
            headers: request
                .headers()
                .iter()
                .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
                .collect(),
            body,
            at: Instant::now(),
            index: entries.len(),
        };
        entries.push(recorded.clone());
        log.1.notify_all();
        recorded
    };
    let (status, headers, body) = match handler(&recorded) {
        Action::Respond {
            status,
            headers,
            body,
        } => (status, headers, body.into_bytes()),
        Action::Hang(time) => {
            thread::sleep(time);
            (200, Vec::new(), Vec::new())
        }
        Action::Bytes { content_type, body } => {
            (200, vec![("Content-Type".to_string(), content_type)], body)
        }
    };
    let mut response = tiny_http::Response::from_data(body).with_status_code(status);
    for (n, v) in headers {
        response.add_header(tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()).unwrap());
    }
    // The client may have given up (timeout): nothing to do about a failed write.
    let _ = request.respond(response);
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in 0..THREADS {
            self.server.unblock();
        }
    }
}
