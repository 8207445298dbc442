//! The README's reverse-proxy snippets, run: Debian's nginx and Caddy start with the
//! snippets exactly as README.md has them, read from it at test time, with only TLS swapped
//! for plain http on a free loopback port and the upstream pointed at a test relay. Through
//! each proxy: a webhook passes, a body over the proxy's limit is refused and nothing of it
//! is stored, 32 keep-alive clients in a burst are all answered, and a 25 s long poll comes
//! back. Skipped with a notice when nginx or caddy is missing (packages nginx-light and
//! caddy, installed by .ci/proxy-setup.sh), except in CI (env `CI` set), where that fails.

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::util::*;

/// The proxies' body limit is 256k (nginx: 262,144 bytes; Caddy: 256 KB = 256,000 bytes).
/// The relay behind them gets a larger one, so what refuses the big body is the proxy.
const RELAY_MAX_BODY: &str = "1048576";
const UNDER_LIMIT: usize = 200_000;
const OVER_LIMIT: usize = 300_000;
const CLIENTS: usize = 32;
const REQUESTS_PER_CLIENT: usize = 5;

/// The text of the README's fenced block in `lang`, without the list item's indentation.
fn readme_snippet(lang: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let fence = format!("```{lang}\n");
    let mut blocks = readme.match_indices(&fence).map(|(at, _)| {
        let line_start = readme[..at].rfind('\n').map_or(0, |n| n + 1);
        let indent = at - line_start;
        let body = &readme[at + fence.len()..];
        let end = body.find("```").expect("closing fence");
        body[..end]
            .lines()
            .map(|l| l.get(indent..).unwrap_or(l.trim_start()))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let block = blocks
        .next()
        .unwrap_or_else(|| panic!("README.md has no ```{lang} block"));
    assert!(
        blocks.next().is_none(),
        "README.md has more than one ```{lang} block; the test would not know which to run"
    );
    block
}

/// Replaces `from` once; the README must still contain it, or the test would quietly run
/// something other than what it says.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the README snippet should contain {from:?} once:\n{text}"
    );
    text.replacen(from, to, 1)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nginx_config(dir: &Path, port: u16, upstream: &str) -> String {
    let mut server = readme_snippet("nginx");
    server = swap(
        &server,
        "listen 443 ssl;",
        &format!("listen 127.0.0.1:{port};"),
    );
    for line in ["ssl_certificate ", "ssl_certificate_key "] {
        let found = server
            .lines()
            .find(|l| l.trim_start().starts_with(line))
            .unwrap_or_else(|| panic!("the nginx snippet has no {line:?} line"))
            .to_string();
        server = swap(&server, &format!("{found}\n"), "");
    }
    server = swap(
        &server,
        "proxy_pass http://127.0.0.1:3000;",
        &format!("proxy_pass http://{upstream};"),
    );
    let d = dir.display();
    // One process as the test's own user (no master/worker split, so no user switch), and
    // every file under the test's directory.
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\nevents {{ worker_connections 1024; }}\n\
         http {{\n    access_log {d}/access.log;\n    client_body_temp_path {d}/body;\n\
         proxy_temp_path {d}/proxy;\n\n{server}\n}}\n"
    )
}

fn caddy_config(port: u16, upstream: &str) -> String {
    let mut config = readme_snippet("caddy");
    assert!(config.starts_with("{\n"), "global options first:\n{config}");
    // No admin endpoint (two test runs would fight over :2019), no certificates.
    config = config.replacen("{\n", "{\n    admin off\n    auto_https off\n", 1);
    config = swap(
        &config,
        "relay.example.com {",
        &format!("http://127.0.0.1:{port} {{"),
    );
    swap(
        &config,
        "reverse_proxy 127.0.0.1:3000 {",
        &format!("reverse_proxy {upstream} {{"),
    )
}

/// A proxy process; killed when dropped.
struct Proxy {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Proxy {
    fn start(mut cmd: Command, port: u16, log: PathBuf) -> Proxy {
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start the proxy");
        let mut proxy = Proxy {
            child,
            addr: format!("127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&proxy.addr).is_err() {
            if let Some(status) = proxy.child.try_wait().unwrap() {
                panic!("the proxy exited ({status}):\n{}", proxy.log());
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not listen:\n{}",
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream
            .write_all(&raw_request(method, path, &self.addr, headers, body, true))
            .unwrap();
        read_reply(&mut BufReader::new(stream))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn raw_request(
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    if close {
        raw.push_str("Connection: close\r\n");
    }
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

const WEBHOOK_HEADERS: [(&str, &str); 2] = [
    ("Content-Type", "application/json"),
    ("X-Webhook-Secret", SECRET),
];

/// A webhook body of exactly `size` bytes whose text carries `marker`.
fn padded_webhook(marker: &str, size: usize) -> Vec<u8> {
    let head = format!(r#"{{"contact_id":"big","message_id":"{marker}","text":"{marker} "#);
    let tail = r#""}"#;
    let mut body = head.into_bytes();
    body.resize(size - tail.len(), b'x');
    body.extend_from_slice(tail.as_bytes());
    body
}

/// What the README promises of its proxy snippets, checked through `proxy`.
fn check_through(proxy: &Proxy, relay: &Relay, over_limit_answers: &[u16]) {
    let barrier = Barrier::new(CLIENTS);
    std::thread::scope(|s| {
        // Started first, so it waits while the rest runs: nothing newer than this cursor
        // arrives, so it must be held the whole 25 s and still be answered.
        let long_poll = s.spawn(|| {
            let started = Instant::now();
            let reply = proxy.request(
                "GET",
                "/api/messages?after=999999999&wait=25",
                &[("Authorization", &format!("Bearer {ADMIN}"))],
                b"",
            );
            (reply, started.elapsed())
        });

        // A webhook passes, and the relay sees the caller through X-Forwarded-For or as
        // the proxy on loopback.
        let reply = proxy.request(
            "POST",
            "/instagram/webhook",
            &WEBHOOK_HEADERS,
            &fixture("chatrace-external-request.json"),
        );
        assert_eq!(reply.status, 200, "{}\n{}", reply.text(), proxy.log());
        assert_eq!(reply.json()["stored"], 1, "{}", reply.text());

        // Under the proxy's limit: passes whole.
        let under = padded_webhook("under-the-limit", UNDER_LIMIT);
        let reply = proxy.request("POST", "/instagram/webhook", &WEBHOOK_HEADERS, &under);
        assert_eq!(reply.status, 200, "{}", reply.text());
        let stored: Vec<u8> = relay
            .db()
            .query_row(
                "SELECT body FROM raw_requests ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(stored == under, "the body arrived whole");

        // Over the proxy's limit: refused, and nothing of it is stored.
        let raw_before = relay.count("SELECT count(*) FROM raw_requests");
        let over = padded_webhook("over-the-limit", OVER_LIMIT);
        let status = send_tolerant(
            &proxy.addr,
            &raw_request(
                "POST",
                "/instagram/webhook",
                &proxy.addr,
                &WEBHOOK_HEADERS,
                &over,
                true,
            ),
        );
        assert!(
            over_limit_answers.contains(&status),
            "a {OVER_LIMIT}-byte body: {status}, expected one of {over_limit_answers:?}\n{}",
            proxy.log()
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            relay.count("SELECT count(*) FROM raw_requests"),
            raw_before,
            "nothing of the refused body may be stored"
        );
        assert_eq!(
            relay.count("SELECT count(*) FROM messages WHERE external_id = 'over-the-limit'"),
            0
        );

        // 32 keep-alive clients at once, a few webhooks each: every one answered and stored.
        let messages_before = relay.count("SELECT count(*) FROM messages");
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let barrier = &barrier;
                s.spawn(move || {
                    let stream = TcpStream::connect(&proxy.addr).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(30)))
                        .unwrap();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    barrier.wait();
                    (0..REQUESTS_PER_CLIENT)
                        .map(|r| {
                            let body = format!(
                                r#"{{"contact_id":"c{c}","text":"burst {c}.{r}","message_id":"burst-{c}-{r}"}}"#
                            );
                            writer
                                .write_all(&raw_request(
                                    "POST",
                                    "/instagram/webhook",
                                    &proxy.addr,
                                    &WEBHOOK_HEADERS,
                                    body.as_bytes(),
                                    false,
                                ))
                                .unwrap();
                            try_read_reply(&mut reader).map_or(0, |reply| reply.status)
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        let statuses: Vec<u16> = clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        let answered = statuses.iter().filter(|&&s| s == 200).count();
        assert_eq!(
            answered,
            CLIENTS * REQUESTS_PER_CLIENT,
            "statuses (0 = no answer): {statuses:?}\n{}",
            proxy.log()
        );
        assert_eq!(
            relay.count("SELECT count(*) FROM messages") - messages_before,
            (CLIENTS * REQUESTS_PER_CLIENT) as i64
        );

        let (reply, took) = long_poll.join().unwrap();
        assert_eq!(reply.status, 200, "{}\n{}", reply.text(), proxy.log());
        assert_eq!(reply.json()["messages"], serde_json::json!([]));
        assert!(
            took >= Duration::from_secs(24),
            "the long poll came back after {took:?}, before its 25 s"
        );
    });
}

/// Sends a request whose body the server may refuse before it has all of it: a write error
/// is expected then, and the answer is read anyway. Returns the status, or 0 for none.
fn send_tolerant(addr: &str, bytes: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let _ = stream.write_all(bytes);
    try_read_reply(&mut BufReader::new(stream)).map_or(0, |reply| reply.status)
}

/// The path of a proxy binary, or why the test cannot run.
fn find(var: &str, default: &str, package: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.into()));
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing (Debian package {package}; run .ci/proxy-setup.sh)",
            path.display()
        ))
    }
}

fn skip(test: &str, what: String) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} cannot run in CI: {what}"
    );
    eprintln!("SKIPPED {test}: {what}");
}

fn relay_behind_proxy(name: &str) -> Relay {
    Relay::start_args(name, &["--max-body", RELAY_MAX_BODY])
}

#[test]
fn nginx_snippet_from_the_readme_fronts_the_relay() {
    let nginx = match find("NGINX", "/usr/sbin/nginx", "nginx-light") {
        Ok(path) => path,
        Err(what) => return skip("nginx_snippet_from_the_readme_fronts_the_relay", what),
    };
    let relay = relay_behind_proxy("proxy-nginx");
    let dir = relay.dir.join("nginx");
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let config = dir.join("nginx.conf");
    std::fs::write(&config, nginx_config(&dir, port, &relay.addr)).unwrap();
    let mut cmd = Command::new(nginx);
    cmd.arg("-e")
        .arg(dir.join("error.log"))
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&config);
    let proxy = Proxy::start(cmd, port, dir.join("nginx.out"));
    // nginx reads the whole body first and answers 413 itself.
    check_through(&proxy, &relay, &[413]);
}

#[test]
fn caddy_snippet_from_the_readme_fronts_the_relay() {
    let caddy = match find("CADDY", "/usr/bin/caddy", "caddy") {
        Ok(path) => path,
        Err(what) => return skip("caddy_snippet_from_the_readme_fronts_the_relay", what),
    };
    let relay = relay_behind_proxy("proxy-caddy");
    let dir = relay.dir.join("caddy");
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let config = dir.join("Caddyfile");
    std::fs::write(&config, caddy_config(port, &relay.addr)).unwrap();
    let mut cmd = Command::new(caddy);
    cmd.arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--adapter")
        .arg("caddyfile")
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", &dir)
        .env("XDG_CONFIG_HOME", &dir);
    let proxy = Proxy::start(cmd, port, dir.join("caddy.log"));
    // Caddy streams the body to the relay and cuts it at its limit: it answers 413, or 502
    // when the cut breaks the upstream request; the relay sees a body cut short.
    check_through(&proxy, &relay, &[413, 502]);
}
