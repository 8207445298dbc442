//! Replays and status: which deliveries a replay means, queuing them again, and each
//! target's counts and last error, for the CLI, the API and the page.

use super::Doorbell;
use crate::error::Result;
use crate::store::{Requeue, Store, TargetStatus};
use crate::time::now_ms;

/// Which deliveries a replay request means, from the fields the CLI and the API share:
/// an id alone; `failed` with an optional `since`; or `since` alone (everything since then,
/// delivered included).
pub fn requeue_from(
    id: Option<i64>,
    failed: bool,
    since: Option<&str>,
    delivered_too: bool,
) -> std::result::Result<Requeue, String> {
    let since_ms = since
        .map(|text| {
            crate::time::parse_rfc3339(text).ok_or_else(|| {
                format!("since {text:?} is not an RFC 3339 time, e.g. 2026-11-01T00:00:00Z")
            })
        })
        .transpose()?;
    if delivered_too && (failed || since_ms.is_none()) {
        return Err("sending delivered messages again goes with a time alone".into());
    }
    match (id, failed, since_ms) {
        (Some(id), false, None) => Ok(Requeue::One(id)),
        (Some(_), _, _) => Err("an id replays one delivery; leave out failed and since".into()),
        (None, true, since) => Ok(Requeue::Failed {
            since_ms: since.unwrap_or(i64::MIN),
        }),
        (None, false, Some(since_ms)) => Ok(Requeue::Since {
            since_ms,
            delivered_too,
        }),
        (None, false, None) => Err(
            "say which deliveries: one id, failed (optionally since a time), or since a time"
                .into(),
        ),
    }
}

/// Re-queues deliveries (see `Requeue`) to the configured `targets` and wakes the
/// delivery threads; returns how many.
pub fn replay(store: &Store, bell: &Doorbell, which: Requeue, targets: &[String]) -> Result<usize> {
    let n = store.requeue(which, targets, now_ms())?;
    if n > 0 {
        bell.ring();
    }
    Ok(n)
}

/// Per-target counts and last error: every configured target (also before its first
/// delivery), then any target that has deliveries but is no longer configured.
pub fn target_status(store: &Store, configured: &[String]) -> Result<Vec<TargetStatus>> {
    let mut known = store.target_status(now_ms())?;
    let mut out = Vec::with_capacity(known.len().max(configured.len()));
    for url in configured {
        match known.iter().position(|t| &t.target == url) {
            Some(i) => out.push(known.remove(i)),
            None => out.push(TargetStatus::empty(url)),
        }
    }
    for mut old in known {
        old.configured = false;
        out.push(old);
    }
    Ok(out)
}
