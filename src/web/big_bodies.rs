//! The memory that big webhook bodies may take at once. Parsing a body and storing its
//! messages takes about 40 times the body's size while it lasts (a Meta body of 256 KiB
//! holds over 4,000 events: 11 MB), so 64 workers each on such a body would take
//! hundreds of MB: over the unit's memory cap. Big bodies are therefore worked on only up to a budget of body bytes
//! at a time, from parsing until their messages are committed, and the memory a burst took
//! is handed back to the system when the last of them is done (see `memory`).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Bodies up to this size pass without waiting: Chatrace's are about 1 KB, and their
/// parsing takes little.
const SMALL: usize = 16 * 1024;
/// Body bytes in work at once: four bodies of the default `--max-body`.
const BUDGET: usize = 1024 * 1024;
/// How long a big body waits for its turn before it is answered 503 (its sender retries).
const WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct BigBodies {
    /// Bytes of the big bodies in work now.
    in_work: Mutex<usize>,
    freed: Condvar,
}

/// A big body's place in the budget, given back when it is dropped: once its messages are
/// committed and answered.
pub struct Permit {
    gate: Option<(Arc<BigBodies>, usize)>,
}

fn lock(m: &Mutex<usize>) -> MutexGuard<'_, usize> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl BigBodies {
    /// Waits until a body of `size` bytes fits in the budget (a small one at once; one
    /// bigger than the whole budget when nothing else is in work). None when its turn did
    /// not come within `WAIT`.
    pub fn enter(self: &Arc<Self>, size: usize) -> Option<Permit> {
        if size <= SMALL {
            return Some(Permit { gate: None });
        }
        let cost = size.min(BUDGET);
        let deadline = Instant::now() + WAIT;
        let mut in_work = lock(&self.in_work);
        while *in_work + cost > BUDGET {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            in_work = self
                .freed
                .wait_timeout(in_work, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *in_work += cost;
        Some(Permit {
            gate: Some((Arc::clone(self), cost)),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some((gate, cost)) = self.gate.take() else {
            return;
        };
        let idle = {
            let mut in_work = lock(&gate.in_work);
            *in_work -= cost;
            *in_work == 0
        };
        gate.freed.notify_all();
        if idle {
            crate::memory::give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_bodies_share_the_budget_and_small_ones_pass() {
        let gate = Arc::new(BigBodies::default());
        let a = gate.enter(BUDGET / 2).unwrap();
        let b = gate.enter(BUDGET / 2).unwrap();
        let small = gate.enter(SMALL).unwrap();
        assert_eq!(*lock(&gate.in_work), BUDGET);
        let waiter = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || gate.enter(10 * BUDGET).map(|_| ()))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "waits while the budget is taken");
        drop((a, b, small));
        assert!(
            waiter.join().unwrap().is_some(),
            "one bigger than all goes alone"
        );
        assert_eq!(*lock(&gate.in_work), 0);
    }
}
