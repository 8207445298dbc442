//! Shared helpers: start a relay process, speak raw HTTP to it, find fixtures.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub const SECRET: &str = "test-webhook-secret-0123456789abcdef";
pub const ADMIN: &str = "test-admin-token-0123456789abcdef";

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_chatrace-relay")
}

/// A fresh, empty directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The example bodies, from the repository's copy of the shared fixtures
/// (`fixtures.rs` checks the copy against `../shared/fixtures`).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A running relay process; killed when dropped.
pub struct Relay {
    child: Option<Child>,
    pub addr: String,
    pub dir: PathBuf,
    pub db: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// The environment that gives a relay the secrets above.
pub const KNOWN_SECRETS: [(&str, &str); 2] = [
    ("CHATRACE_RELAY_WEBHOOK_SECRET", SECRET),
    ("CHATRACE_RELAY_ADMIN_TOKEN", ADMIN),
];

impl Relay {
    /// A relay with known secrets, so tests can authenticate.
    pub fn start(name: &str) -> Relay {
        Relay::start_args(name, &[])
    }

    /// A relay with known secrets and these command-line arguments.
    pub fn start_args(name: &str, args: &[&str]) -> Relay {
        Relay::start_with(name, args, &KNOWN_SECRETS)
    }

    pub fn start_with(name: &str, args: &[&str], env: &[(&str, &str)]) -> Relay {
        Relay::start_in(temp_dir(name), args, env)
    }

    /// A relay whose database lives in `dir`, a directory the test prepared.
    pub fn start_in(dir: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Relay {
        let db = dir.join("relay.db");
        let mut relay = Relay {
            child: None,
            addr: String::new(),
            dir,
            db,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        relay.spawn();
        relay
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("relay.log"))
            .unwrap();
        let mut cmd = Command::new(binary());
        cmd.arg("serve");
        // A test that must know the port before start (to name it in --public-url) picks it.
        if !self.args.iter().any(|a| a == "--listen") {
            cmd.arg("--listen").arg("127.0.0.1:0");
        }
        cmd.arg("--db")
            .arg(&self.db)
            .args(&self.args)
            .env_remove("CHATRACE_RELAY_WEBHOOK_SECRET")
            .env_remove("CHATRACE_RELAY_ADMIN_TOKEN")
            .env_remove("CHATRACE_TOKEN")
            .env_remove("CHATRACE_API_URL")
            .env_remove("CHATRACE_RELAY_PUBLIC_URL")
            .env_remove("CHATRACE_RELAY_FORWARD_URL")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("CHATRACE_RELAY_WORKERS")
            .env_remove("CHATRACE_INBOX_TOKEN")
            .env_remove("CHATRACE_ACCOUNT_ID")
            .env_remove("CHATRACE_RELAY_CATCH_UP_EVERY")
            .env_remove("CHATRACE_RELAY_CHATRACE_RATE")
            .env_remove("CHATRACE_RELAY_INCOMING_ONLY")
            // Run under a service manager, a test relay must not tell it anything.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env_remove("CHATRACE_RELAY_MAX_MEDIA")
            .env_remove("CHATRACE_RELAY_MEDIA_ALLOW_PRIVATE")
            // Attachments are not kept unless a test asks: no test may fetch a real CDN's
            // link (the media tests name their fake CDN on loopback).
            .env("CHATRACE_RELAY_KEEP_MEDIA", "0")
            // Tests reach nothing outside this machine: a relay given an API token would
            // try it on Chatrace's real inbox. Port 9 refuses at once; tests of the inbox
            // name their fake.
            .env("CHATRACE_INBOX_URL", "http://127.0.0.1:9/php/user")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start chatrace-relay");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        self.addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}; log:\n{}", self.log()))
            .to_string();
        self.child = Some(child);
    }

    /// Kills the process the hard way (SIGKILL) and starts it again on the same database.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The exit status, once the process has ended by itself.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().unwrap()
    }

    /// Stops the process the way systemd does (SIGTERM) and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("relay is running");
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "the relay did not stop within 15 s of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The relay's process id, while it runs (the benchmark reads its memory use).
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("relay is running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("relay.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn post_webhook(&self, content_type: &str, body: &[u8]) -> Reply {
        self.request(
            "POST",
            "/instagram/webhook",
            &[("Content-Type", content_type), ("X-Webhook-Secret", SECRET)],
            body,
        )
    }

    pub fn get_admin(&self, path: &str) -> Reply {
        self.request(
            "GET",
            path,
            &[("Authorization", &format!("Bearer {ADMIN}"))],
            b"",
        )
    }

    pub fn stats(&self) -> serde_json::Value {
        let reply = self.get_admin("/instagram/stats");
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(body);
        send_raw(&self.addr, &bytes)
    }

    /// Opens the database directly, as an operator with sqlite3 would.
    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    /// Rejections are logged without making the refused client wait, so they land a moment
    /// after the answer: poll for them the way a person refreshing the page would.
    pub fn wait_count(&self, sql: &str, expected: i64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let n = self.count(sql);
            if n == expected {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{sql}: {n}, expected {expected}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends raw bytes on a new connection and reads one response.
pub fn send_raw(addr: &str, bytes: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    read_reply(&mut BufReader::new(stream))
}

/// Reads one HTTP/1.1 response (Content-Length or chunked) from a connection.
pub fn read_reply(reader: &mut impl BufRead) -> Reply {
    try_read_reply(reader).unwrap_or_else(|e| panic!("reading a reply: {e}"))
}

/// `read_reply` for connections that may break mid-reply (a killed server): the failure is
/// a value, so a load client can count it and reconnect.
pub fn try_read_reply(reader: &mut impl BufRead) -> io::Result<Reply> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = find("Content-Length") {
        let len: usize = len
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    } else if find("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16)
                .map_err(|_| invalid(format!("bad chunk size {size:?}")))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        // Body until the server closes; a reset at the end still leaves what arrived.
        let _ = reader.read_to_end(&mut body);
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}
