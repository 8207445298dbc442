//! Life under systemd, through the binary: readiness and stopping told to `$NOTIFY_SOCKET`
//! (`Type=notify`), log lines for the journal when `$JOURNAL_STREAM` names the output,
//! `admin-token` when the service's token comes from a credential, and the database path
//! the sign-in page names when the state directory is a symlink, as systemd's
//! `/var/lib/chatrace-relay` is. The whole package under a real systemd is
//! `scripts/check-systemd.sh`.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// A relay started by `serve`; killed when dropped, so a failing test leaves none behind.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `serve` on port 0 with these extra environment variables, its stdout and stderr both
/// appended to `log` (the way systemd connects both to the journal).
fn serve(dir: &Path, log: &Path, env: &[(&str, &str)]) -> Serving {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = Command::new(binary());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join("relay.db"))
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("CHATRACE_TOKEN")
        .env_remove("CHATRACE_RELAY_PUBLIC_URL")
        .env_remove("CHATRACE_RELAY_FORWARD_URL")
        .envs(KNOWN_SECRETS)
        .env("CHATRACE_RELAY_CATCH_UP_EVERY", "0")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out));
    cmd.envs(env.iter().copied());
    Serving(cmd.spawn().unwrap())
}

/// The address from the `listening on` line, once `log` has it.
fn address(log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split("listening on http://").nth(1) {
            return rest.lines().next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no listening line:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn terminate(Serving(child): &mut Serving) {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit 15 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn receive(socket: &UnixDatagram) -> String {
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0; 512];
    let n = socket.recv(&mut buf).expect("a datagram from the relay");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// `Type=notify`: systemd counts a start as done at `READY=1`, so `systemctl restart` and
/// the package's start return only once the relay answers. READY comes once the socket
/// listens (a request right then is answered), STOPPING when SIGTERM begins the stop.
fn tells_ready_and_stopping(name: &str, notify_socket: &str, socket: &UnixDatagram) {
    let dir = temp_dir(name);
    let log = dir.join("relay.log");
    let mut child = serve(&dir, &log, &[("NOTIFY_SOCKET", notify_socket)]);
    let ready = receive(socket);
    assert!(
        ready.lines().any(|l| l == "READY=1"),
        "{ready:?}; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let addr = address(&log);
    assert!(
        ready.contains(&format!("STATUS=listening on http://{addr}")),
        "{ready:?}"
    );
    let health = send_raw(
        &addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(health.status, 200, "answered right after READY=1");
    terminate(&mut child);
    assert_eq!(receive(socket), "STOPPING=1");
}

#[test]
fn ready_and_stopping_reach_a_notify_socket_path() {
    let dir = temp_dir("notify-path");
    let path = dir.join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    tells_ready_and_stopping("notify-path-relay", path.to_str().unwrap(), &socket);
}

#[test]
fn ready_and_stopping_reach_an_abstract_notify_socket() {
    let name = format!("chatrace-relay-test-notify-{}", std::process::id());
    let socket =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    tells_ready_and_stopping("notify-abstract", &format!("@{name}"), &socket);
}

/// journald stamps lines itself and reads `<N>` as the priority; the same relay with its
/// output elsewhere (JOURNAL_STREAM naming another file) keeps the timestamped format.
#[test]
fn journal_lines_have_a_priority_and_no_timestamp_of_their_own() {
    let dir = temp_dir("journal-stream");
    let log = dir.join("journal.log");
    std::fs::write(&log, "").unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    // A notify socket that does not exist: its warning shows the warn priority.
    let missing = dir.join("no-such-socket");
    let mut child = serve(
        &dir,
        &log,
        &[
            ("JOURNAL_STREAM", &stream),
            ("NOTIFY_SOCKET", missing.to_str().unwrap()),
        ],
    );
    address(&log);
    terminate(&mut child);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("<6>listening on http://")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("<6>setup page: ")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("<4>telling systemd \"READY=1\"")),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "<6>stopped"), "{text}");
    for line in text.lines() {
        assert!(
            line.starts_with('<') && line.as_bytes().get(2) == Some(&b'>'),
            "a line without a priority: {line:?}"
        );
        assert!(
            !line.contains(" INFO") && !line.contains("[20"),
            "a level word or a timestamp: {line:?}"
        );
    }

    let other = dir.join("elsewhere.log");
    let mut child = serve(&dir, &other, &[("JOURNAL_STREAM", &stream)]);
    address(&other);
    terminate(&mut child);
    let text = std::fs::read_to_string(&other).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("listening on http://")),
        "{text}"
    );
    assert!(text.contains(" INFO "), "the usual format: {text}");
    assert!(!text.contains("<6>"), "{text}");
}

/// With `LoadCredential=admin_token` the service signs in with the credential's token. Run
/// from a shell (no `$CREDENTIALS_DIRECTORY`), `admin-token` used to print the database's
/// token, which the service refuses; now it says where the token is and exits 1. With the
/// same credential in reach it prints that token; the log names the credential.
#[test]
fn admin_token_names_the_credential_the_service_signs_in_with() {
    let dir = temp_dir("admin-token-credential");
    let credentials = dir.join("credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    let from_credential = "credential-admin-token-0123456789abcdef";
    std::fs::write(
        credentials.join("admin_token"),
        format!("{from_credential}\n"),
    )
    .unwrap();
    let relay = Relay::start_with(
        "admin-token-credential-relay",
        &[],
        &[
            ("CHATRACE_RELAY_WEBHOOK_SECRET", SECRET),
            ("CREDENTIALS_DIRECTORY", credentials.to_str().unwrap()),
        ],
    );
    let signed = |token: &str| {
        relay
            .request(
                "GET",
                "/instagram/stats",
                &[("Authorization", &format!("Bearer {token}"))],
                b"",
            )
            .status
    };
    assert_eq!(signed(from_credential), 200);
    let log = relay.log();
    assert!(
        log.contains(
            "sign in with the admin token in the file of the systemd credential admin_token"
        ),
        "{log}"
    );
    assert!(!log.contains(from_credential), "the token reached the log");

    let db = relay.db.to_str().unwrap();
    let admin_token = |credentials_dir: Option<&Path>| {
        let mut cmd = Command::new(binary());
        cmd.args(["admin-token", "--db", db])
            .env_remove("CHATRACE_RELAY_ADMIN_TOKEN")
            .env_remove("CREDENTIALS_DIRECTORY");
        if let Some(dir) = credentials_dir {
            cmd.env("CREDENTIALS_DIRECTORY", dir);
        }
        cmd.output().unwrap()
    };
    let shell = admin_token(None);
    let (out, err) = (
        String::from_utf8_lossy(&shell.stdout),
        String::from_utf8_lossy(&shell.stderr),
    );
    assert!(!shell.status.success(), "{out}{err}");
    assert_eq!(out, "", "no token the service refuses");
    assert!(err.contains("systemd credential admin_token"), "{err}");
    assert!(err.contains("LoadCredential="), "{err}");

    let same = admin_token(Some(&credentials));
    assert!(same.status.success());
    assert_eq!(
        String::from_utf8_lossy(&same.stdout).trim(),
        from_credential
    );
}

/// The same for the environment: the service's `CHATRACE_RELAY_ADMIN_TOKEN`, from
/// `/etc/default/chatrace-relay`, is not in a shell's environment.
#[test]
fn admin_token_names_the_environment_the_service_signs_in_with() {
    let relay = Relay::start("admin-token-environment");
    let shell = Command::new(binary())
        .args(["admin-token", "--db", relay.db.to_str().unwrap()])
        .env_remove("CHATRACE_RELAY_ADMIN_TOKEN")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&shell.stdout),
        String::from_utf8_lossy(&shell.stderr),
    );
    assert!(!shell.status.success());
    assert_eq!(out, "");
    assert!(err.contains("CHATRACE_RELAY_ADMIN_TOKEN"), "{err}");
    assert!(
        relay
            .log()
            .contains("sign in with the admin token in the service's environment"),
        "{}",
        relay.log()
    );
}

/// systemd keeps a `DynamicUser=` service's state in `/var/lib/private/NAME` and links
/// `/var/lib/NAME` to it; the sign-in page used to name the resolved path, which the
/// README, the package and the log never use. It names the path as the relay was given it.
#[test]
fn the_sign_in_page_names_the_database_by_its_link() {
    let dir = temp_dir("sign-in-db-link");
    let private = dir.join("private").join("relay");
    std::fs::create_dir_all(&private).unwrap();
    let link = dir.join("relay");
    std::os::unix::fs::symlink("private/relay", &link).unwrap();
    let relay = Relay::start_in(link.clone(), &[], &KNOWN_SECRETS);
    let page = relay
        .request("GET", "/login", &[], b"")
        .text()
        .replace("&#x2f;", "/");
    let expected = format!(
        "sudo chatrace-relay admin-token --db {}",
        link.join("relay.db").display()
    );
    assert!(page.contains(&expected), "{expected} in:\n{page}");
    assert!(!page.contains("/private/"), "{page}");
}
