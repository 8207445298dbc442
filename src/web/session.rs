//! Browser sign-in for the setup page: sessions with their CSRF tokens and one-shot flash
//! messages, the throttle on wrong admin tokens (sign-ins and Bearer), cookies, and the
//! same-origin check for forms.
//!
//! Sessions are kept in the database, so the restart the README asks for after a settings
//! change signs nobody out; a changed admin token ends them all (`end_stale`). The
//! throttle stays in memory: a restart forgives a few failed guesses, nothing more.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::error::Result;
use crate::http::Request;
use crate::secret::{constant_time_eq, digest, random_hex};
use crate::store::Store;

/// The session cookie's name.
pub const COOKIE: &str = "relay_session";
/// The login form's double-submit cookie: there is no session yet to hold its CSRF token.
pub const LOGIN_COOKIE: &str = "relay_login";

/// 32 random bytes: session ids and CSRF tokens cannot be guessed.
const TOKEN_BYTES: usize = 32;
/// A session unused this long is gone.
const IDLE_MS: i64 = 12 * 3_600_000;
/// Even a session in constant use is renewed by signing in again after this.
const MAX_AGE_MS: i64 = 7 * 24 * 3_600_000;
/// How stale a session's last-seen time may get before a page view writes it again: a
/// write per page view would compete with the webhooks for the database for nothing.
const TOUCH_EVERY_MS: i64 = 60_000;
/// More sessions than this means someone is signing in in a loop; the oldest go first.
const MAX_SESSIONS: usize = 256;
/// Failed sign-ins allowed per client within `FAILURE_WINDOW_MS`.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW_MS: i64 = 15 * 60_000;
/// Bounds the throttle's memory when many addresses fail.
const MAX_TRACKED_CLIENTS: usize = 10_000;
/// Failed sign-ins allowed from everyone together within `GLOBAL_WINDOW_MS`. A client's
/// address can be rotated (behind a proxy it comes from X-Forwarded-For), so a limit per
/// address alone stops nobody who wants to guess; the shared one does, and a short window
/// keeps the real admin out for a minute at most.
const MAX_GLOBAL_FAILURES: u32 = 30;
const GLOBAL_WINDOW_MS: i64 = 60_000;

/// A signed-in browser, as a request handler sees it.
pub struct Current {
    pub id: String,
    pub csrf: String,
}

/// The failed-login throttle; the sessions themselves are in the database.
#[derive(Default)]
pub struct Sessions {
    /// Per client: failures and when the first of them happened.
    failures: Mutex<HashMap<String, (u32, i64)>>,
    /// Everyone's failures and when the first of them happened.
    all_failures: Mutex<(u32, i64)>,
}

/// A poisoned lock only means another request panicked mid-update; the maps stay usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sessions {
    /// Ends every session signed in with another admin token than `admin_token`; at start.
    pub fn end_stale(store: &Store, admin_token: &str) -> Result<usize> {
        store.keep_sessions_of(&digest(admin_token))
    }

    /// A fresh session: a new id every sign-in, so an id planted before sign-in is useless.
    pub fn create(&self, store: &Store, now_ms: i64) -> Result<Current> {
        let current = Current {
            id: random_hex(TOKEN_BYTES)?,
            csrf: random_hex(TOKEN_BYTES)?,
        };
        let limits = (now_ms - IDLE_MS, now_ms - MAX_AGE_MS, MAX_SESSIONS);
        store.insert_session(&digest(&current.id), &current.csrf, now_ms, limits)?;
        Ok(current)
    }

    /// The live session named by the request's cookie, marked as used now.
    pub fn current(&self, store: &Store, req: &Request, now_ms: i64) -> Result<Option<Current>> {
        let Some(id) = req.cookie(COOKIE).filter(|id| looks_like_token(id)) else {
            return Ok(None);
        };
        let key = digest(&id);
        let Some(session) = store.session(&key)? else {
            return Ok(None);
        };
        let alive = now_ms - session.last_seen_at_ms <= IDLE_MS
            && now_ms - session.created_at_ms <= MAX_AGE_MS;
        if !alive {
            store.delete_session(&key)?;
            return Ok(None);
        }
        if now_ms - session.last_seen_at_ms >= TOUCH_EVERY_MS {
            store.touch_session(&key, now_ms)?;
        }
        Ok(Some(Current {
            csrf: session.csrf,
            id,
        }))
    }

    pub fn remove(&self, store: &Store, id: &str) -> Result<()> {
        store.delete_session(&digest(id))
    }

    /// Keeps a sentence to show on the next page this session loads.
    pub fn set_flash(&self, store: &Store, id: &str, message: &str) -> Result<()> {
        store.set_session_flash(&digest(id), message)
    }

    /// The flash sentence, once: reloading the page does not show it again.
    pub fn take_flash(&self, store: &Store, id: &str) -> Result<Option<String>> {
        store.take_session_flash(&digest(id))
    }

    /// False once a client, or everyone together, has presented a wrong admin token too
    /// often recently, at sign-in or as a Bearer token. The token has at least 128 bits, so
    /// this is less about a guess succeeding than about a script hammering the workers
    /// thousands of times a second.
    pub fn login_allowed(&self, client: &str, now_ms: i64) -> bool {
        let (all, since) = *lock(&self.all_failures);
        if all >= MAX_GLOBAL_FAILURES && now_ms - since <= GLOBAL_WINDOW_MS {
            return false;
        }
        match lock(&self.failures).get(client) {
            Some(&(count, since)) => count < MAX_FAILURES || now_ms - since > FAILURE_WINDOW_MS,
            None => true,
        }
    }

    pub fn login_failed(&self, client: &str, now_ms: i64) {
        {
            let mut all = lock(&self.all_failures);
            if now_ms - all.1 > GLOBAL_WINDOW_MS {
                *all = (0, now_ms);
            }
            all.0 += 1;
        }
        let mut failures = lock(&self.failures);
        if failures.len() >= MAX_TRACKED_CLIENTS {
            failures.retain(|_, (_, since)| now_ms - *since <= FAILURE_WINDOW_MS);
            if failures.len() >= MAX_TRACKED_CLIENTS {
                // Too many addresses to remember one by one: the shared limit still holds.
                return;
            }
        }
        let entry = failures.entry(client.to_string()).or_insert((0, now_ms));
        if now_ms - entry.1 > FAILURE_WINDOW_MS {
            *entry = (0, now_ms);
        }
        entry.0 += 1;
    }

    pub fn login_succeeded(&self, client: &str) {
        lock(&self.failures).remove(client);
    }
}

/// A fresh random token for the login form's double-submit cookie.
pub fn new_token() -> std::io::Result<String> {
    random_hex(TOKEN_BYTES)
}

/// Whether a value has the shape of our tokens, so a browser's cookie can be reused.
pub fn looks_like_token(value: &str) -> bool {
    value.len() == TOKEN_BYTES * 2 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a posted CSRF token is the expected one.
pub fn token_matches(posted: Option<&str>, expected: &str) -> bool {
    posted.is_some_and(|p| constant_time_eq(p.as_bytes(), expected.as_bytes()))
}

/// A form post must come from a page of this relay: when the browser names the origin
/// (Origin, else Referer), its host must be the one the request was sent to or the public
/// URL's. Browsers send Origin on every cross-site POST, so its absence means an old client
/// or a script, which the CSRF token still stops.
pub fn same_origin(req: &Request, public_url: Option<&str>) -> bool {
    let named = match (req.header("Origin"), req.header("Referer")) {
        (Some(origin), _) => origin,
        (None, Some(referer)) => referer,
        (None, None) => return true,
    };
    let Some(named) = origin_of(named) else {
        return false; // "null" (sandboxed frames, some redirects) or garbage
    };
    let host_matches = req.header("Host").is_some_and(|host| {
        [format!("http://{host}"), format!("https://{host}")]
            .iter()
            .any(|o| o.eq_ignore_ascii_case(&named))
    });
    host_matches
        || public_url
            .and_then(origin_of)
            .is_some_and(|p| p.eq_ignore_ascii_case(&named))
}

/// `scheme://host[:port]` of a URL, or None when it is not an http(s) URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            path: "/logout".into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
            client: None,
        }
    }

    #[test]
    fn origin_must_be_this_host_or_the_public_url() {
        let host = ("Host", "relay.example:3000");
        assert!(same_origin(&req(&[host]), None));
        assert!(same_origin(
            &req(&[host, ("Origin", "http://relay.example:3000")]),
            None
        ));
        assert!(same_origin(
            &req(&[
                host,
                ("Referer", "https://relay.example:3000/messages?page=2")
            ]),
            None
        ));
        assert!(!same_origin(
            &req(&[host, ("Origin", "https://evil.example")]),
            None
        ));
        assert!(!same_origin(&req(&[host, ("Origin", "null")]), None));
        assert!(!same_origin(
            &req(&[host, ("Origin", "http://relay.example:3000@evil.example")]),
            None
        ));
        let proxied = req(&[
            ("Host", "127.0.0.1:3000"),
            ("Origin", "https://relay.example"),
        ]);
        assert!(same_origin(&proxied, Some("https://relay.example")));
        assert!(!same_origin(&proxied, None));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let r = req(&[("Cookie", "lang=ru; relay_session=abc"), ("cookie", "x=1")]);
        assert_eq!(r.cookie(COOKIE).as_deref(), Some("abc"));
        assert_eq!(r.cookie("x").as_deref(), Some("1"));
        assert_eq!(r.cookie("missing"), None);
    }

    #[test]
    fn sessions_expire_and_flash_shows_once() {
        let store = Store::open(std::path::Path::new(":memory:")).unwrap();
        let sessions = Sessions::default();
        let s = sessions.create(&store, 0).unwrap();
        let r = req(&[("Cookie", &format!("{COOKIE}={}", s.id))]);
        let current = |at| sessions.current(&store, &r, at).unwrap();
        assert_eq!(current(1000).unwrap().csrf, s.csrf);
        sessions.set_flash(&store, &s.id, "done").unwrap();
        assert_eq!(
            sessions.take_flash(&store, &s.id).unwrap().as_deref(),
            Some("done")
        );
        assert_eq!(sessions.take_flash(&store, &s.id).unwrap(), None);
        assert!(current(IDLE_MS - 1).is_some(), "a minute's use counts");
        assert!(
            current(2 * IDLE_MS - 2).is_some(),
            "touched at the last view"
        );
        assert!(current(3 * IDLE_MS).is_none());
        assert!(current(0).is_none(), "expired sessions are removed");
        let again = sessions.create(&store, 0).unwrap();
        let r = req(&[("Cookie", &format!("{COOKIE}={}", again.id))]);
        assert!(sessions
            .current(&store, &r, MAX_AGE_MS + 1)
            .unwrap()
            .is_none());
        let unknown = req(&[("Cookie", &format!("{COOKIE}={}", "ab".repeat(32)))]);
        assert!(sessions.current(&store, &unknown, 0).unwrap().is_none());
        let signed_out = sessions.create(&store, 0).unwrap();
        sessions.remove(&store, &signed_out.id).unwrap();
        let r = req(&[("Cookie", &format!("{COOKIE}={}", signed_out.id))]);
        assert!(sessions.current(&store, &r, 1).unwrap().is_none());
    }

    #[test]
    fn repeated_failures_lock_a_client_out_for_a_while() {
        let sessions = Sessions::default();
        for _ in 0..MAX_FAILURES {
            assert!(sessions.login_allowed("1.2.3.4", 0));
            sessions.login_failed("1.2.3.4", 0);
        }
        assert!(!sessions.login_allowed("1.2.3.4", 1));
        assert!(sessions.login_allowed("5.6.7.8", 1));
        assert!(sessions.login_allowed("1.2.3.4", FAILURE_WINDOW_MS + 1));
    }

    #[test]
    fn rotating_addresses_meets_the_shared_limit_for_a_minute() {
        let sessions = Sessions::default();
        for i in 0..MAX_GLOBAL_FAILURES {
            let client = format!("10.0.{}.{}", i / 256, i % 256);
            assert!(sessions.login_allowed(&client, 1000));
            sessions.login_failed(&client, 1000);
        }
        assert!(
            !sessions.login_allowed("203.0.113.7", 1001),
            "a fresh address too"
        );
        assert!(sessions.login_allowed("203.0.113.7", 1000 + GLOBAL_WINDOW_MS + 1));
    }

    #[test]
    fn a_full_address_table_does_not_open_the_door() {
        let sessions = Sessions::default();
        for i in 0..MAX_TRACKED_CLIENTS + 5 {
            sessions.login_failed(&format!("c{i}"), (i as i64) * GLOBAL_WINDOW_MS);
        }
        let last = (MAX_TRACKED_CLIENTS as i64 + 5) * GLOBAL_WINDOW_MS;
        for _ in 0..MAX_GLOBAL_FAILURES {
            sessions.login_failed("new", last);
        }
        assert!(!sessions.login_allowed("newer", last));
    }
}
