//! Forwarding: one delivery thread per `--forward-url` drains the durable outbox, POSTing
//! each message signed the Standard Webhooks way, retrying on the schedule. Also the replay
//! and status functions the page, the API and the CLI call.
//!
//! Nothing is marked "in flight": a row stays pending until its outcome is recorded, so a
//! crash mid-attempt leaves it to be sent again after restart (at-least-once).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::media_link;
use crate::metrics::{ForwardOutcome, Metrics};
use crate::outbound::{self, Failure};
use crate::signature::SigningKey;
use crate::store::{Attempt, AttemptResult, DueDelivery, Message, Store, KEPT_KINDS};
use crate::time::now_ms;
use crate::writer::NewestMessage;

mod replay;

pub use replay::{replay, requeue_from, target_status};

/// Due rows fetched per query; small, so a replay or a new message is not stuck behind a
/// long backlog for long.
const BATCH: u32 = 100;
/// Outcomes are written in batches (one fsync each) but at least this often, so a slow
/// target's progress is never held only in memory for long.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Longest sleep with nothing due: also how soon a `replay` run from the command line (a
/// different process, which cannot ring the doorbell) is noticed.
const IDLE_RECHECK: Duration = Duration::from_secs(2);
/// Pause after the database refused a read or write, instead of spinning on it.
const DB_BACKOFF: Duration = Duration::from_secs(1);
/// A Retry-After beyond this is taken as this: a target must not park a message for weeks.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Characters of a refusing target's body kept in the delivery's last error.
const ERROR_BODY_CHARS: usize = 120;

/// Wakes the delivery threads: new messages arrived or deliveries were re-queued.
#[derive(Default)]
pub struct Doorbell {
    rung: Mutex<u64>,
    cv: Condvar,
}

impl Doorbell {
    pub fn ring(&self) {
        let mut rung = self.rung.lock().unwrap_or_else(|p| p.into_inner());
        *rung = rung.wrapping_add(1);
        self.cv.notify_all();
    }

    fn seen(&self) -> u64 {
        *self.rung.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps up to `timeout` unless the bell rang since `seen` was read.
    fn wait(&self, seen: u64, timeout: Duration) {
        let guard = self.rung.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .cv
            .wait_timeout_while(guard, timeout, |rung| *rung == seen);
    }
}

/// Everything a delivery thread needs, checked before the server starts.
pub struct Forwarder {
    db: PathBuf,
    targets: Vec<String>,
    key: Option<SigningKey>,
    schedule: Vec<Duration>,
    timeout: Duration,
    /// Random per database, so `webhook-id`s from a fresh database never collide with ids a
    /// downstream already saw (and dropped as duplicates) from an earlier one.
    namespace: String,
    /// When attachments are kept: the key of the signed links forwarded messages carry to
    /// their files, and the relay's public URL they start with ("" when unknown: a path).
    media_links: Option<(String, String)>,
}

impl Forwarder {
    /// Validates the forwarding settings; `None` when no forward URL is set.
    pub fn prepare(config: &Config, store: &mut Store) -> Result<Option<Forwarder>> {
        let key = config
            .forward_secret
            .as_deref()
            .map(SigningKey::parse)
            .transpose()
            .map_err(|e| Error::Config(format!("--forward-secret {e}")))?;
        // What `replay --since` from the command line queues for.
        store.set_setting(
            crate::store::FORWARD_TARGETS,
            &config.forward_urls.join("\n"),
        )?;
        if config.forward_urls.is_empty() {
            if key.is_some() {
                warn!("--forward-secret is set but no --forward-url: nothing is forwarded");
            }
            return Ok(None);
        }
        let namespace =
            store.ensure_setting("delivery_namespace", || crate::secret::random_hex(4))?;
        let media_links = match config.keep_media {
            Some(_) => Some((
                store.resolve_secret(None, "media_link_key")?,
                config.public_url.clone().unwrap_or_default(),
            )),
            None => None,
        };
        Ok(Some(Forwarder {
            db: config.db.clone(),
            targets: config.forward_urls.clone(),
            key,
            schedule: config.retry_schedule.clone(),
            timeout: config.forward_timeout,
            namespace,
            media_links,
        }))
    }

    /// Starts one delivery thread per target, and one that turns new messages into rings.
    pub fn start(
        self,
        newest: Arc<NewestMessage>,
        bell: Arc<Doorbell>,
        metrics: Arc<Metrics>,
    ) -> Result<()> {
        let watcher_bell = Arc::clone(&bell);
        thread::Builder::new()
            .name("forward-watch".into())
            .spawn(move || loop {
                let seen = newest.get();
                if newest.wait_beyond(seen, Duration::from_secs(60)) > seen {
                    watcher_bell.ring();
                }
            })?;
        let shared = Arc::new(self);
        for (n, target) in shared.targets.iter().enumerate() {
            let store = Store::connect(&shared.db)?;
            store.relax_outcome_durability()?;
            let mut delivery = Delivery {
                store,
                target: target.clone(),
                shown: display_url(target),
                forwarder: Arc::clone(&shared),
                bell: Arc::clone(&bell),
                metrics: Arc::clone(&metrics),
                rng: Jitter::seeded(n as u64),
                client: outbound::Client::new(shared.timeout),
            };
            thread::Builder::new()
                .name(format!("forward-{n}"))
                .spawn(move || delivery.run())?;
        }
        info!(
            "forwarding to {} target(s){}",
            shared.targets.len(),
            if shared.key.is_some() {
                ", signed"
            } else {
                ", unsigned (no --forward-secret)"
            }
        );
        Ok(())
    }
}

/// One target's delivery thread.
struct Delivery {
    store: Store,
    target: String,
    /// The target without its query string, for logs (a query may hold a token).
    shown: String,
    forwarder: Arc<Forwarder>,
    bell: Arc<Doorbell>,
    metrics: Arc<Metrics>,
    rng: Jitter,
    client: outbound::Client,
}

impl Delivery {
    fn run(&mut self) {
        loop {
            // Read before querying: a ring between the query and the wait is not lost.
            let seen = self.bell.seen();
            let now = now_ms();
            match self.store.due_deliveries(&self.target, now, BATCH) {
                Ok(due) if due.is_empty() => {
                    let next = self.store.next_delivery_due(&self.target).ok().flatten();
                    let wait = next.map_or(IDLE_RECHECK, |at| {
                        Duration::from_millis(u64::try_from(at - now).unwrap_or(0))
                            .min(IDLE_RECHECK)
                    });
                    self.bell.wait(seen, wait);
                }
                Ok(due) => self.deliver(due),
                Err(e) => {
                    warn!(
                        "forwarding to {}: reading the outbox failed: {e}",
                        self.shown
                    );
                    thread::sleep(DB_BACKOFF);
                }
            }
        }
    }

    fn deliver(&mut self, due: Vec<DueDelivery>) {
        let mut done = Vec::with_capacity(due.len());
        let mut last_flush = Instant::now();
        for delivery in &due {
            done.push(self.attempt(delivery));
            if last_flush.elapsed() >= FLUSH_EVERY {
                self.record(&mut done);
                last_flush = Instant::now();
            }
        }
        self.record(&mut done);
    }

    fn record(&mut self, done: &mut Vec<Attempt>) {
        if let Err(e) = self.store.record_attempts(done) {
            // The rows stay pending and are sent again: at-least-once, never lost.
            warn!(
                "forwarding to {}: recording {} outcome(s) failed: {e}",
                self.shown,
                done.len()
            );
            thread::sleep(DB_BACKOFF);
        }
        done.clear();
    }

    fn attempt(&mut self, delivery: &DueDelivery) -> Attempt {
        let f = &self.forwarder;
        let id = webhook_id(&f.namespace, delivery.message.id);
        // One reading of the clock: the header and the signed content must agree.
        let unix_secs = now_ms() / 1000;
        let body = match &f.media_links {
            Some((key, base)) => {
                payload(&with_media_links(&delivery.message, key, base, unix_secs))
            }
            None => payload(&delivery.message),
        };
        let timestamp = unix_secs.to_string();
        let signature = f.key.as_ref().map(|k| k.sign(&id, unix_secs, &body));
        let mut headers = vec![
            ("Content-Type", "application/json"),
            ("webhook-id", id.as_str()),
            ("webhook-timestamp", timestamp.as_str()),
        ];
        if let Some(sig) = &signature {
            headers.push(("webhook-signature", sig.as_str()));
        }
        let reply = self.client.post(&self.target, &headers, &body);
        let number = delivery.attempts + 1;
        let (outcome, status, error, retry_after) = match &reply {
            Ok(r) if (200..300).contains(&r.status) => {
                (ForwardOutcome::Delivered, Some(r.status), None, None)
            }
            Ok(r) if r.status == 410 => (
                ForwardOutcome::Gone,
                Some(410),
                Some("410 Gone: target asked to stop".to_string()),
                None,
            ),
            Ok(r) => (
                ForwardOutcome::HttpError,
                Some(r.status),
                Some(refusal(r)),
                // An HTTP-date falls back to the schedule.
                r.header("Retry-After").and_then(crate::text::retry_after),
            ),
            Err(Failure::Timeout) => (
                ForwardOutcome::Timeout,
                None,
                Some(format!("timed out after {:?}", f.timeout)),
                None,
            ),
            Err(failure) => (
                ForwardOutcome::Network,
                None,
                Some(failure.to_string()),
                None,
            ),
        };
        self.metrics.forward_attempt(outcome);
        let at_ms = now_ms();
        let result = match error {
            None => AttemptResult::Delivered {
                status: status.unwrap_or(200),
            },
            Some(error) if outcome == ForwardOutcome::Gone => {
                warn!(
                    "forwarding to {}: 410 Gone, message {} dropped for this target",
                    self.shown, delivery.message.id
                );
                AttemptResult::Failed { status, error }
            }
            Some(error) => match self.next_attempt(number, retry_after) {
                Some(delay) => AttemptResult::Retry {
                    status,
                    error,
                    next_attempt_at: at_ms
                        + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
                },
                None => {
                    warn!(
                        "forwarding to {}: message {} failed after {number} attempts ({error})",
                        self.shown, delivery.message.id
                    );
                    AttemptResult::Failed { status, error }
                }
            },
        };
        debug!(
            "forward message={} target={} attempt={number} outcome={:?}",
            delivery.message.id, self.shown, outcome
        );
        Attempt {
            delivery_id: delivery.id,
            at_ms,
            number,
            result,
        }
    }

    /// The delay before attempt `failed + 1`, or None when the schedule is used up. Jitter
    /// keeps a backlog that failed together from retrying in lockstep.
    fn next_attempt(&mut self, failed: i64, retry_after: Option<Duration>) -> Option<Duration> {
        let step = usize::try_from(failed - 1).ok()?;
        let base = *self.forwarder.schedule.get(step)?;
        let delay = base.mul_f64(self.rng.factor());
        Some(retry_after.map_or(delay, |ra| delay.max(ra.min(MAX_RETRY_AFTER))))
    }
}

/// Stable across retries, replays and targets: the downstream dedups on it.
fn webhook_id(namespace: &str, message_id: i64) -> String {
    format!("msg_{namespace}_{message_id}")
}

/// What is POSTed: the message as the cursor API shows it, plus the event type.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    message: &'a Message,
}

fn payload(message: &Message) -> Vec<u8> {
    serde_json::to_vec(&Payload {
        kind: "message.received",
        message,
    })
    .unwrap_or_else(|_| b"{}".to_vec())
}

/// The message with a signed link to each attachment the relay keeps (or will keep: the
/// file is usually fetched after the message is forwarded), so the app can fetch it
/// without the admin token for a week.
fn with_media_links(message: &Message, key: &str, base: &str, now_s: i64) -> Message {
    let mut message = message.clone();
    for (position, a) in message.attachments.iter_mut().enumerate() {
        if KEPT_KINDS.contains(&a.kind.as_str()) && crate::text::web_url(&a.url).is_some() {
            let link =
                media_link::signed(key, message.id, position, now_s + media_link::VALID_FOR_S);
            a.media_url = Some(format!("{base}{link}"));
        }
    }
    message
}

/// A non-2xx answer in words: the status, where a redirect pointed, the start of the body.
fn refusal(reply: &outbound::Answer) -> String {
    let mut text = format!("HTTP {}", reply.status);
    if (300..400).contains(&reply.status) {
        text.push_str(" (redirects are not followed; forward to the final URL)");
        if let Some(location) = reply.header("Location") {
            text.push_str(&format!(" Location: {}", display_url(location)));
        }
    }
    let body: String = reply
        .body
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(ERROR_BODY_CHARS)
        .collect();
    if !body.is_empty() {
        text.push_str(": ");
        text.push_str(&body);
    }
    text
}

/// A URL without its query string or user info, safe to log.
pub fn display_url(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{rest}")
        }
        None => without_query.to_string(),
    }
}

/// xorshift64*: retry jitter needs spread, not secrecy, so no rand crate.
struct Jitter(u64);

impl Jitter {
    fn seeded(salt: u64) -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter((nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    /// A factor in 0.8..1.2.
    fn factor(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        0.8 + 0.4 * (x as f64 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Requeue;

    #[test]
    fn replay_requests_name_one_delivery_failed_ones_or_a_time() {
        assert_eq!(
            requeue_from(Some(3), false, None, false),
            Ok(Requeue::One(3))
        );
        assert_eq!(
            requeue_from(None, true, None, false),
            Ok(Requeue::Failed { since_ms: i64::MIN })
        );
        assert_eq!(
            requeue_from(None, true, Some("1970-01-01T00:00:01Z"), false),
            Ok(Requeue::Failed { since_ms: 1000 })
        );
        for delivered_too in [false, true] {
            assert_eq!(
                requeue_from(None, false, Some("1970-01-01T00:00:02Z"), delivered_too),
                Ok(Requeue::Since {
                    since_ms: 2000,
                    delivered_too
                })
            );
        }
        assert!(requeue_from(None, false, None, false).is_err());
        assert!(requeue_from(Some(1), true, None, false).is_err());
        assert!(requeue_from(None, false, None, true).is_err());
        assert!(requeue_from(None, true, Some("1970-01-01T00:00:02Z"), true).is_err());
        assert!(requeue_from(None, true, Some("yesterday"), false)
            .unwrap_err()
            .contains("RFC 3339"));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let mut j = Jitter::seeded(7);
        let factors: Vec<f64> = (0..10_000).map(|_| j.factor()).collect();
        assert!(factors.iter().all(|f| (0.8..1.2).contains(f)));
        let mean = factors.iter().sum::<f64>() / factors.len() as f64;
        assert!((0.98..1.02).contains(&mean), "{mean}");
    }

    #[test]
    fn logged_urls_lose_query_and_credentials() {
        assert_eq!(
            display_url("https://user:pw@app.example.com/hook?token=abc"),
            "https://app.example.com/hook"
        );
        assert_eq!(display_url("http://x/y#frag"), "http://x/y");
    }

    #[test]
    fn refusals_say_status_redirect_and_body_start() {
        let reply = outbound::Answer {
            status: 302,
            headers: vec![("Location".into(), "https://new.example/x?k=secret".into())],
            body: "moved\n  here".into(),
        };
        assert_eq!(
            refusal(&reply),
            "HTTP 302 (redirects are not followed; forward to the final URL) \
             Location: https://new.example/x: moved here"
        );
    }

    #[test]
    fn payload_is_the_message_with_its_type() {
        let message = Message {
            id: 5,
            received_at_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            sent_at_ms: None,
            channel: Some("instagram".into()),
            direction: crate::payload::Direction::In,
            contact_id: "c1".into(),
            contact_name: None,
            username: None,
            text: Some("hi".into()),
            attachments: Vec::new(),
            external_id: None,
            raw_request_id: Some(9),
            test: false,
            source: "webhook".into(),
            sender: None,
            sender_id: None,
        };
        let value: serde_json::Value = serde_json::from_slice(&payload(&message)).unwrap();
        assert_eq!(value["type"], "message.received");
        assert_eq!(value["id"], 5);
        assert_eq!(value["raw_request_id"], 9);
        assert_eq!(value["text"], "hi");
        assert_eq!(webhook_id("ab12", 5), "msg_ab12_5");
    }
}
