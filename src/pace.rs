//! One pace for a process's calls to one API: calls are spaced evenly under a rate, and a
//! pause asked for by the far side (HTTP 429, `Retry-After`) holds every caller back. A
//! caller reserves its slot and sleeps outside the lock, so callers queue in order and
//! nobody holds the lock while waiting.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Pace {
    state: Mutex<State>,
}

struct State {
    gap: Duration,
    /// The earliest start of the next call.
    next: Option<Instant>,
    /// Until when the far side asked us to stay away.
    paused_until: Option<Instant>,
}

/// How long a call would have had to wait: returned instead of waiting when the caller
/// cannot wait that long (a person clicking a button).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong(pub Duration);

impl Pace {
    pub const fn new(gap: Duration) -> Pace {
        Pace {
            state: Mutex::new(State {
                gap,
                next: None,
                paused_until: None,
            }),
        }
    }

    /// At most `per_minute` calls a minute from now on (at least one).
    pub fn set_rate(&self, per_minute: u32) {
        let gap = Duration::from_secs(60) / per_minute.max(1);
        self.lock().gap = gap;
    }

    /// Waits for this call's turn. With `max_wait`, a turn further off than that is not
    /// taken: nothing is reserved and the wait it would have been is returned.
    pub fn wait_turn(&self, max_wait: Option<Duration>) -> Result<(), TooLong> {
        let now = Instant::now();
        let start = {
            let mut state = self.lock();
            let start = [Some(now), state.next, state.paused_until]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(now);
            if max_wait.is_some_and(|max| start - now > max) {
                return Err(TooLong(start - now));
            }
            state.next = Some(start + state.gap);
            start
        };
        std::thread::sleep(start.saturating_duration_since(Instant::now()));
        Ok(())
    }

    /// The far side asked for a pause: no call starts before `for_` from now.
    pub fn pause(&self, for_: Duration) {
        let until = Instant::now() + for_;
        let mut state = self.lock();
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain numbers behind: still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `Retry-After` (read by `text::retry_after`), bounded to an hour so a hostile answer
/// cannot stop the relay's calls for days.
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(crate::text::retry_after)
        .map(|wait| wait.min(Duration::from_secs(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_spaced_and_a_pause_holds_everyone() {
        let pace = Pace::new(Duration::from_millis(50));
        let t = Instant::now();
        for _ in 0..3 {
            pace.wait_turn(None).unwrap();
        }
        assert!(t.elapsed() >= Duration::from_millis(100));
        pace.pause(Duration::from_secs(30));
        let Err(TooLong(wait)) = pace.wait_turn(Some(Duration::from_secs(5))) else {
            panic!("a call went ahead during the pause");
        };
        assert!(wait > Duration::from_secs(29));
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_bounded() {
        assert_eq!(retry_after(Some("60")), Some(Duration::from_secs(60)));
        assert_eq!(
            retry_after(Some("99999999")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(None), None);
    }
}
