//! How the allocator holds memory. glibc gives threads their own arenas (up to 8 per core)
//! and raises its trim and mmap thresholds as big blocks come and go, so memory freed after
//! a burst of big webhooks stays resident, spread over dozens of arenas: measured, 64
//! bodies of 256 KiB took the relay from 19 MB to 300 MB, and 250 MB stayed. Fewer arenas
//! and fixed thresholds keep the peak low, and `give_back` returns what a burst freed.

/// Arenas for all threads together: the workers' allocations are short-lived, so sharing
/// costs little time (measured in BENCHMARKS.md), and memory freed by one worker is reused
/// by the next instead of being held in an arena of its own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: i32 = 2;
/// Blocks from this size on are mapped on their own and unmapped when freed (bodies and
/// the big vectors of a parsed body), and free memory above this at the top of an arena
/// goes back to the system at once. Fixed, so glibc does not raise them after a burst.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const THRESHOLD: i32 = 128 * 1024;

/// Sets the allocator up for a long-running server; called once at start, before the
/// threads.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() {
    // SAFETY: mallopt only changes the allocator's parameters; it is called before any
    // other thread exists, and a refused setting leaves the default in force.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD);
    }
}

/// Returns the free pages of every arena to the system, after a burst (about a
/// millisecond).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn give_back() {
    // SAFETY: malloc_trim only walks and releases the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back() {}
