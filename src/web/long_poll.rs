//! Long polls: how many `/api/messages?wait=` requests may hold a worker at once.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the workers held by long-polls. A quarter of the workers at most, and never the
/// last one, so waiting readers cannot starve the webhook.
pub struct WaitSlots {
    in_use: AtomicUsize,
    max: usize,
}

impl WaitSlots {
    pub fn for_workers(workers: usize) -> WaitSlots {
        let max = if workers < 2 { 0 } else { (workers / 4).max(1) };
        WaitSlots {
            in_use: AtomicUsize::new(0),
            max,
        }
    }

    pub fn take(&self) -> Option<WaitSlot<'_>> {
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| WaitSlot(&self.in_use))
    }
}

/// A taken slot; given back when the request ends, however it ends.
pub struct WaitSlot<'a>(&'a AtomicUsize);

impl Drop for WaitSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
