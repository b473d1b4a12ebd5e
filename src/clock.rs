//! The engine clock: monotonic, expressed in nanoseconds since the Unix epoch.
//!
//! At start the clock reads the wall clock once and an [`Instant`] once;
//! afterwards `now_ns` is `wall_at_start + elapsed_monotonic`. So receive
//! times never go backwards (an NTP step does not disturb latency figures)
//! and they still read as Unix-epoch nanoseconds in every output, as
//! EVENTS.md asks for `ts_recv`. Cost: one `Instant::elapsed` (≈ 30 ns here).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A copyable handle to the process clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor: Instant,
    anchor_wall_ns: i64,
}

impl Clock {
    /// Anchors a new clock at the current wall-clock time.
    pub fn new() -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        Self {
            anchor: Instant::now(),
            anchor_wall_ns: wall,
        }
    }

    /// Now, in ns since the Unix epoch, on the monotonic clock.
    #[inline]
    pub fn now_ns(&self) -> i64 {
        self.anchor_wall_ns + self.anchor.elapsed().as_nanos() as i64
    }

    /// The wall-clock reading taken at anchor time.
    pub fn anchor_wall_ns(&self) -> i64 {
        self.anchor_wall_ns
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Current wall-clock time in ns since the Unix epoch (not monotonic).
pub fn wall_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_near_wall() {
        let c = Clock::new();
        let a = c.now_ns();
        let b = c.now_ns();
        assert!(b >= a);
        assert!((a - wall_now_ns()).abs() < 1_000_000_000);
    }
}
