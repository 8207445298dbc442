//! Prometheus metrics: in-process counters for what happened since start (forward attempts,
//! replies, webhook ack latency) plus totals read from the database at scrape time.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::Result;
use crate::store::Store;

/// Upper bounds (seconds) of the ack latency buckets: an fsync is a few milliseconds, so the
/// interesting range is 1 ms to a few seconds.
const ACK_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// How a forward attempt ended, as counted in `chatrace_relay_forward_attempts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardOutcome {
    Delivered,
    /// A non-2xx answer other than 410.
    HttpError,
    /// 410: the target asked us to stop.
    Gone,
    Timeout,
    /// DNS, refused connection, TLS and the like.
    Network,
}

impl ForwardOutcome {
    const ALL: [ForwardOutcome; 5] = [
        ForwardOutcome::Delivered,
        ForwardOutcome::HttpError,
        ForwardOutcome::Gone,
        ForwardOutcome::Timeout,
        ForwardOutcome::Network,
    ];

    fn label(self) -> &'static str {
        match self {
            ForwardOutcome::Delivered => "delivered",
            ForwardOutcome::HttpError => "http_error",
            ForwardOutcome::Gone => "gone",
            ForwardOutcome::Timeout => "timeout",
            ForwardOutcome::Network => "network_error",
        }
    }
}

/// Counters shared by the workers and the delivery threads; lock-free so counting never
/// slows a webhook down.
#[derive(Default)]
pub struct Metrics {
    forward: [AtomicU64; 5],
    replies_sent: AtomicU64,
    replies_failed: AtomicU64,
    lookups_found: AtomicU64,
    lookups_failed: AtomicU64,
    /// Inbox calls by outcome, in the order of `INBOX_OUTCOMES`.
    inbox_calls: [AtomicU64; INBOX_OUTCOMES.len()],
    /// When the last catch-up run that went through started (ms; 0: none yet).
    catch_up_last_ms: AtomicU64,
    media_fetches: [AtomicU64; MEDIA_OUTCOMES.len()],
    media_bytes_fetched: AtomicU64,
    ack_buckets: [AtomicU64; ACK_BUCKETS.len()],
    ack_count: AtomicU64,
    ack_sum_micros: AtomicU64,
}

impl Metrics {
    pub fn forward_attempt(&self, outcome: ForwardOutcome) {
        let i = ForwardOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.forward[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn reply(&self, sent: bool) {
        let counter = if sent {
            &self.replies_sent
        } else {
            &self.replies_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A contact lookup through the Chatrace API: answered, or not.
    pub fn lookup(&self, answered: bool) {
        let counter = if answered {
            &self.lookups_found
        } else {
            &self.lookups_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// One call to Chatrace's inbox, by outcome (`ok` or an `InboxError` code).
    pub fn inbox_call(&self, outcome: &str) {
        let i = INBOX_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.inbox_calls[i].fetch_add(1, Ordering::Relaxed);
    }

    /// One attachment download, by outcome (`kept`, `retry`, `expired`, `refused`), and
    /// the bytes it kept.
    pub fn media_fetch(&self, outcome: &str, bytes: u64) {
        let i = MEDIA_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.media_fetches[i].fetch_add(1, Ordering::Relaxed);
        self.media_bytes_fetched.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A catch-up run that went through, started at `started_ms`.
    pub fn catch_up_ran(&self, started_ms: i64) {
        self.catch_up_last_ms
            .store(u64::try_from(started_ms).unwrap_or(0), Ordering::Relaxed);
    }

    /// Records how long a webhook took from its body being read to its answer being ready.
    pub fn webhook_acked(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        // Buckets are stored per range and summed at render time: one increment per call.
        if let Some(i) = ACK_BUCKETS.iter().position(|le| secs <= *le) {
            self.ack_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.ack_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.ack_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The whole exposition, in Prometheus text format 0.0.4.
    pub fn render(&self, store: &Store, db: &Path, now_ms: i64) -> Result<String> {
        let mut out = Exposition::default();

        out.family(
            "webhooks_received_total",
            "counter",
            "Webhook requests accepted and stored (test requests excluded).",
        );
        out.sample(
            "webhooks_received_total",
            &[],
            store.counter("webhooks_received")?,
        );
        out.family(
            "webhooks_rejected_total",
            "counter",
            "Webhook requests turned away, by reason.",
        );
        for (reason, n) in store.rejected_by_reason()? {
            out.sample("webhooks_rejected_total", &[("reason", &reason)], n);
        }
        out.family(
            "messages_stored_total",
            "counter",
            "Messages stored, by direction (in: received, out: sent replies).",
        );
        let by_direction = store.messages_by_direction()?;
        for direction in ["in", "out"] {
            let n = by_direction
                .iter()
                .find(|(d, _)| d == direction)
                .map_or(0, |(_, n)| *n);
            out.sample("messages_stored_total", &[("direction", direction)], n);
        }
        out.family(
            "duplicates_total",
            "counter",
            "Messages received again and ignored as duplicates.",
        );
        out.sample("duplicates_total", &[], store.counter("duplicates")?);

        out.family(
            "forward_attempts_total",
            "counter",
            "Forwarding attempts since the relay started, by outcome.",
        );
        for (outcome, n) in ForwardOutcome::ALL.iter().zip(&self.forward) {
            out.sample(
                "forward_attempts_total",
                &[("outcome", outcome.label())],
                n.load(Ordering::Relaxed),
            );
        }
        let targets = store.target_status(now_ms)?;
        out.family(
            "outbox_pending",
            "gauge",
            "Deliveries waiting to be forwarded, over all targets.",
        );
        out.sample(
            "outbox_pending",
            &[],
            targets.iter().map(|t| t.pending).sum::<i64>(),
        );
        out.family(
            "outbox_failed",
            "gauge",
            "Deliveries that ran out of retries or were refused with 410 (replay them).",
        );
        out.sample(
            "outbox_failed",
            &[],
            targets.iter().map(|t| t.failed).sum::<i64>(),
        );
        out.family(
            "outbox_oldest_pending_age_seconds",
            "gauge",
            "Age of the oldest delivery still waiting; 0 when none waits.",
        );
        out.sample(
            "outbox_oldest_pending_age_seconds",
            &[],
            targets
                .iter()
                .filter_map(|t| t.oldest_pending_age_seconds)
                .max()
                .unwrap_or(0),
        );

        out.outcomes(
            "replies_total",
            "Replies sent through the Chatrace API since the relay started, by outcome.",
            &[
                ("sent", &self.replies_sent),
                ("failed", &self.replies_failed),
            ],
        );
        out.outcomes(
            "contact_lookups_total",
            "Contact name lookups through the Chatrace API since the relay started, by outcome.",
            &[
                ("answered", &self.lookups_found),
                ("failed", &self.lookups_failed),
            ],
        );

        let inbox: Vec<(&str, &AtomicU64)> = INBOX_OUTCOMES
            .iter()
            .copied()
            .zip(self.inbox_calls.iter())
            .collect();
        out.outcomes(
            "inbox_calls_total",
            "Calls to Chatrace's inbox since the relay started, by outcome.",
            &inbox,
        );
        out.family(
            "caught_up_messages_total",
            "counter",
            "Messages stored from Chatrace's inbox that no webhook brought (all time).",
        );
        out.sample(
            "caught_up_messages_total",
            &[],
            store.counter("caught_up")?.max(0) as u64,
        );
        out.family(
            "catch_up_last_run_timestamp_seconds",
            "gauge",
            "Start of the last catch-up run that went through (unix seconds; 0: none yet).",
        );
        out.sample(
            "catch_up_last_run_timestamp_seconds",
            &[],
            self.catch_up_last_ms.load(Ordering::Relaxed) / 1000,
        );

        let media: Vec<(&str, &AtomicU64)> = MEDIA_OUTCOMES
            .iter()
            .copied()
            .zip(self.media_fetches.iter())
            .collect();
        out.outcomes(
            "media_fetches_total",
            "Attachment downloads since the relay started, by outcome (retry: failed, to be tried again).",
            &media,
        );
        out.family(
            "media_fetched_bytes_total",
            "counter",
            "Bytes of attachments downloaded and kept since the relay started.",
        );
        out.sample(
            "media_fetched_bytes_total",
            &[],
            self.media_bytes_fetched.load(Ordering::Relaxed),
        );
        let media = store.media_totals()?;
        out.family(
            "media_kept_bytes",
            "gauge",
            "Bytes of the attachments kept in the database now (under --keep-media).",
        );
        out.sample("media_kept_bytes", &[], media.bytes.max(0) as u64);
        out.family(
            "media_kept_files",
            "gauge",
            "Distinct attachment files kept in the database now.",
        );
        out.sample("media_kept_files", &[], media.files.max(0) as u64);

        out.family(
            "database_size_bytes",
            "gauge",
            "Size of the SQLite database file plus its write-ahead log.",
        );
        out.sample("database_size_bytes", &[], {
            let (db, wal) = crate::store::file_sizes(db);
            db + wal
        });

        self.render_ack(&mut out);
        Ok(out.text)
    }

    fn render_ack(&self, out: &mut Exposition) {
        let name = "webhook_ack_seconds";
        out.family(
            name,
            "histogram",
            "Time from a webhook's body being read to its answer (stored and committed).",
        );
        let mut cumulative = 0;
        for (le, n) in ACK_BUCKETS.iter().zip(&self.ack_buckets) {
            cumulative += n.load(Ordering::Relaxed);
            out.sample(
                "webhook_ack_seconds_bucket",
                &[("le", &le.to_string())],
                cumulative,
            );
        }
        let count = self.ack_count.load(Ordering::Relaxed);
        out.sample("webhook_ack_seconds_bucket", &[("le", "+Inf")], count);
        let sum = self.ack_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out.text, "chatrace_relay_webhook_ack_seconds_sum {sum}");
        out.sample("webhook_ack_seconds_count", &[], count);
    }
}

/// Outcomes of an inbox call: `ok`, then `InboxError::code`s.
const INBOX_OUTCOMES: [&str; 7] = [
    "ok",
    "not_signed_in",
    "refused",
    "not_an_inbox",
    "rate_limited",
    "unreachable",
    "odd_answer",
];

/// Outcomes of an attachment download.
const MEDIA_OUTCOMES: [&str; 4] = ["kept", "retry", "expired", "refused"];

/// Text format writer; every name gets the `chatrace_relay_` prefix.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP chatrace_relay_{name} {help}");
        let _ = writeln!(self.text, "# TYPE chatrace_relay_{name} {kind}");
    }

    /// A counter family with one sample per outcome.
    fn outcomes(&mut self, name: &str, help: &str, counts: &[(&str, &AtomicU64)]) {
        self.family(name, "counter", help);
        for (outcome, count) in counts {
            self.sample(name, &[("outcome", outcome)], count.load(Ordering::Relaxed));
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.text, "chatrace_relay_{name}");
        if !labels.is_empty() {
            let pairs: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.text, "{{{}}}", pairs.join(","));
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// Label values may hold any text; the format reserves backslash, quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_histogram_is_cumulative_and_ends_with_count() {
        let m = Metrics::default();
        m.webhook_acked(Duration::from_micros(500));
        m.webhook_acked(Duration::from_millis(3));
        m.webhook_acked(Duration::from_secs(10));
        let mut out = Exposition::default();
        m.render_ack(&mut out);
        let text = out.text;
        assert!(text.contains("chatrace_relay_webhook_ack_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(text.contains("chatrace_relay_webhook_ack_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("chatrace_relay_webhook_ack_seconds_bucket{le=\"2.5\"} 2\n"));
        assert!(text.contains("chatrace_relay_webhook_ack_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("chatrace_relay_webhook_ack_seconds_count 3\n"));
        assert!(text.contains("chatrace_relay_webhook_ack_seconds_sum 10.0035\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
