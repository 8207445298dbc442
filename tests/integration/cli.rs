//! The subcommands and the zero-config start.

use std::process::Command;

use crate::util::*;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary())
        .args(args)
        .env_remove("CHATRACE_RELAY_WEBHOOK_SECRET")
        .env_remove("CHATRACE_RELAY_ADMIN_TOKEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn zero_config_generates_secrets_once_and_keeps_them() {
    let mut relay = Relay::start_with("zero-config", &[], &[]);
    let db = relay.db.to_str().unwrap().to_string();
    let (ok, token, _) = run(&["admin-token", "--db", &db]);
    assert!(ok);
    let token = token.trim().to_string();
    assert!(token.len() >= 32, "at least 128 bits: {token}");
    let stats = relay.request(
        "GET",
        "/instagram/stats",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(stats.status, 200);
    let secret: String = relay
        .db()
        .query_row(
            "SELECT value FROM settings WHERE key = 'webhook_secret'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(secret.len() >= 32);
    assert_ne!(secret, token);
    assert!(
        !relay.log().contains(&token),
        "the admin token reached the log"
    );
    assert!(
        !relay.log().contains(&secret),
        "the webhook secret reached the log"
    );

    relay.restart();
    let (_, token_again, _) = run(&["admin-token", "--db", &db]);
    assert_eq!(token_again.trim(), token, "the same token after a restart");
}

#[test]
fn send_test_posts_a_sample_and_reports_the_answer() {
    let relay = Relay::start("send-test");
    let url = relay.url("/instagram/webhook");
    let (ok, out, err) = run(&["send-test", "--url", &url, "--secret", SECRET]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("HTTP 200"), "{out}");
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE is_test = 1"),
        1
    );
    let (ok, out, _) = run(&["send-test", "--url", &url, "--secret", "wrong"]);
    assert!(!ok);
    assert!(out.contains("HTTP 401"), "{out}");
}

#[test]
fn stats_and_export_read_the_database() {
    let relay = Relay::start("export");
    relay.post_webhook(
        "application/json",
        &fixture("chatrace-external-request.json"),
    );
    relay.post_webhook(
        "application/json",
        br#"{"contact_id":"2","text":"=cmd|' /C calc'!A0, \"quoted\"","message_id":"e2"}"#,
    );
    let db = relay.db.to_str().unwrap().to_string();

    let (ok, out, _) = run(&["stats", "--db", &db]);
    assert!(ok);
    assert!(
        out.contains("messages, total") && out.contains(" 2"),
        "{out}"
    );
    let (ok, out, _) = run(&["stats", "--db", &db, "--json"]);
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["total_messages"], 2);

    let (ok, out, _) = run(&["export", "--db", &db]);
    assert!(ok);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["text"], "Здравствуйте, сколько стоит доставка?");

    let (ok, out, _) = run(&["export", "--db", &db, "--format", "csv"]);
    assert!(ok);
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 3);
    assert!(rows[0].starts_with("id,received_at"));
    // Where each message came from, as in the JSON; new columns go at the end.
    assert!(
        rows[0].ends_with(",external_id,source,sender"),
        "{}",
        rows[0]
    );
    assert!(rows[1].ends_with(",webhook,"), "{}", rows[1]);
    assert!(
        rows[2].contains("\"'=cmd|' /C calc'!A0, \"\"quoted\"\"\""),
        "{}",
        rows[2]
    );

    let (ok, out, _) = run(&["export", "--db", &db, "--since", "2999-01-01T00:00:00Z"]);
    assert!(ok);
    assert!(out.is_empty());
    let missing = relay.dir.join("typo.db");
    let (ok, _, err) = run(&["stats", "--db", missing.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("no database"), "{err}");
    assert!(
        !missing.exists(),
        "a mistyped path must not create a database"
    );
    let (ok, _, err) = run(&["export", "--db", &db, "--since", "yesterday"]);
    assert!(!ok);
    assert!(err.contains("RFC 3339"), "{err}");
}

/// `systemctl stop` sends SIGTERM: the relay answers what it accepted, commits, and exits 0.
#[test]
fn sigterm_stops_cleanly_after_answering_accepted_webhooks() {
    let mut relay = Relay::start("sigterm");
    let addr = relay.addr.clone();
    let client = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for i in 0..100_000 {
            let body = format!(r#"{{"contact_id":"s","text":"t","message_id":"term-{i}"}}"#);
            let raw = format!(
                "POST /instagram/webhook HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {SECRET}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let Ok(mut stream) = std::net::TcpStream::connect(&addr) else {
                break; // the listener is closed: the relay is stopping
            };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            if std::io::Write::write_all(&mut stream, raw.as_bytes()).is_err() {
                break;
            }
            match try_read_reply(&mut std::io::BufReader::new(stream)) {
                Ok(reply) if reply.status == 200 => acked.push(format!("term-{i}")),
                _ => break,
            }
        }
        acked
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let status = relay.terminate();
    let acked = client.join().unwrap();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        relay.log()
    );
    assert!(relay.log().contains("stopped"), "{}", relay.log());
    assert!(!acked.is_empty());
    let stored: std::collections::HashSet<String> = relay
        .db()
        .prepare("SELECT external_id FROM messages WHERE external_id LIKE 'term-%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for id in &acked {
        assert!(
            stored.contains(id),
            "{id} was acknowledged but is not stored"
        );
    }
}

/// A mistyped or relative --db must not quietly create a new database whose token signs
/// nothing in.
#[test]
fn admin_token_without_a_database_says_so_and_creates_nothing() {
    let dir = temp_dir("admin-token-missing");
    let db = dir.join("nothing-here.db");
    let (ok, out, err) = run(&["admin-token", "--db", db.to_str().unwrap()]);
    assert!(!ok, "exit status must say it failed");
    assert!(out.trim().is_empty(), "no token printed: {out}");
    assert!(err.contains("no database at"), "{err}");
    assert!(err.contains("serve"), "says how to create one: {err}");
    assert!(!db.exists(), "nothing was created");
}

#[test]
fn version_prints_the_name_and_version() {
    let expected = format!("chatrace-relay {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        let (ok, out, err) = run(&[flag]);
        assert!(ok, "{flag}: {err}");
        assert_eq!(out, expected, "{flag}");
    }
    let (ok, out, _) = run(&["--help"]);
    assert!(ok);
    assert!(out.contains("--version"), "--help lists --version:\n{out}");
}

/// This release is 0.2.0, and the README says so where it names the version: its
/// `--version` example and the changelog's entry.
#[test]
fn the_binary_and_the_readme_name_release_0_2_0() {
    let (ok, out, err) = run(&["--version"]);
    assert!(ok, "{err}");
    assert_eq!(out, "chatrace-relay 0.2.0\n");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains("# prints \"chatrace-relay 0.2.0\""));
    assert!(
        readme.contains("\n- 0.2.0:\n"),
        "the changelog has the release"
    );
}

/// Runs the binary with stdout a pipe whose reading end is already closed, as it is for
/// `chatrace-relay ARGS | head -1` once head has its line.
fn run_into_closed_pipe(args: &[&str]) -> (std::process::ExitStatus, String) {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // O_CLOEXEC: a child that another test spawns meanwhile must not inherit a reading end.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    drop(unsafe { OwnedFd::from_raw_fd(fds[0]) });
    let write_end = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    let out = Command::new(binary())
        .args(args)
        .env_remove("CHATRACE_RELAY_WEBHOOK_SECRET")
        .env_remove("CHATRACE_RELAY_ADMIN_TOKEN")
        .env("RUST_BACKTRACE", "1")
        .stdout(std::process::Stdio::from(write_end))
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `chatrace-relay --help | head -1` used to end in a panic and a backtrace hint on stderr
/// (std ignores SIGPIPE, so println! got EPIPE). Printing commands now end the Unix way:
/// silently, by SIGPIPE, like `cat` or `grep`.
#[test]
fn output_piped_into_head_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    // The admin token stays the database's, as `admin-token` below prints it.
    let relay = Relay::start_with(
        "closed-pipe",
        &[],
        &[("CHATRACE_RELAY_WEBHOOK_SECRET", SECRET)],
    );
    let post = relay.post_webhook(
        "application/json",
        &fixture("chatrace-external-request.json"),
    );
    assert_eq!(post.status, 200);
    let db = relay.db.to_str().unwrap().to_string();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["--version"],
        vec!["admin-token", "--db", &db],
        vec!["stats", "--db", &db],
        vec!["export", "--db", &db],
        vec!["export", "--db", &db, "--format", "csv"],
    ] {
        let (status, stderr) = run_into_closed_pipe(&args);
        assert_eq!(stderr, "", "{args:?} wrote to stderr; {status}");
        assert_eq!(
            status.signal(),
            Some(libc::SIGPIPE),
            "{args:?} should end by SIGPIPE like cat; {status}"
        );
    }
}
