//! Connection resilience: reconnect [`Backoff`], [`CircuitBreaker`] and the
//! stale-feed [`Watchdog`].
//!
//! All three are plain state machines driven by the caller's clock (`now_ns`
//! arguments, engine clock nanoseconds): nothing here sleeps, spawns or reads
//! the time itself, so unit tests drive them with an injected clock and the
//! WebSocket source ([`super::ws`]) drives them from its event loop.

use std::time::Duration;

use super::sim::Rng;

/// Exponential backoff with full jitter and a cap.
///
/// Attempt `n` (0-based, counted since the last [`reset`](Self::reset))
/// waits a uniformly random delay in `[0, min(cap, initial · 2^n)]` ("full
/// jitter": reconnecting clients spread out instead of stampeding). The
/// random stream is seeded, so a given seed gives the same delays.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial_ns: u64,
    cap_ns: u64,
    attempt: u32,
    rng: Rng,
}

impl Backoff {
    /// A backoff starting at `initial` (the ceiling of attempt 0), capped at
    /// `cap`. A zero `initial` is treated as 1 ms; a cap below `initial` is
    /// raised to `initial`.
    pub fn new(initial: Duration, cap: Duration, seed: u64) -> Self {
        let initial_ns = (initial.as_nanos() as u64).max(1_000_000);
        let cap_ns = (cap.as_nanos() as u64).max(initial_ns);
        Self {
            initial_ns,
            cap_ns,
            attempt: 0,
            rng: Rng::new(seed),
        }
    }

    /// The upper bound of attempt `n`'s delay: `min(cap, initial · 2^n)`.
    pub fn ceiling(&self, n: u32) -> Duration {
        let shift = n.min(63);
        let v = self
            .initial_ns
            .saturating_mul(1u64 << shift)
            .min(self.cap_ns);
        Duration::from_nanos(v)
    }

    /// The next delay (uniform in `[0, ceiling(attempt)]`); advances the
    /// attempt counter.
    pub fn next_delay(&mut self) -> Duration {
        let ceil = self.ceiling(self.attempt).as_nanos() as u64;
        self.attempt = self.attempt.saturating_add(1);
        // u64 % (ceil + 1) has a negligible modulo bias for these ranges.
        Duration::from_nanos(self.rng.next_u64() % (ceil.saturating_add(1)))
    }

    /// Attempts made since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Back to attempt 0 (after a healthy connection).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// State of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Attempts allowed; counting consecutive failures.
    Closed,
    /// No attempts until `until_ns` (engine clock).
    Open {
        /// When the breaker becomes half-open.
        until_ns: i64,
    },
    /// One trial attempt allowed; its outcome closes or re-opens the breaker.
    HalfOpen,
}

/// Closed → open after `threshold` consecutive failures; stays open for
/// `open_for`; then half-open: one trial attempt, whose success closes the
/// breaker and whose failure opens it again for another `open_for`.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    open_ns: i64,
    failures: u32,
    state: BreakerState,
    trial_in_flight: bool,
}

impl CircuitBreaker {
    /// A closed breaker. `threshold` 0 is treated as 1.
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_ns: open_for.as_nanos().min(i64::MAX as u128) as i64,
            failures: 0,
            state: BreakerState::Closed,
            trial_in_flight: false,
        }
    }

    /// Current state at `now_ns` (an open breaker whose time is up reads as
    /// half-open).
    pub fn state(&self, now_ns: i64) -> BreakerState {
        match self.state {
            BreakerState::Open { until_ns } if now_ns >= until_ns => BreakerState::HalfOpen,
            s => s,
        }
    }

    /// Whether an attempt may start now. In half-open state only one trial
    /// is allowed until its outcome is reported.
    pub fn allow(&mut self, now_ns: i64) -> bool {
        match self.state(now_ns) {
            BreakerState::Closed => true,
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen => {
                self.state = BreakerState::HalfOpen;
                if self.trial_in_flight {
                    false
                } else {
                    self.trial_in_flight = true;
                    true
                }
            }
        }
    }

    /// When an open breaker lets the next trial through (`None` unless open).
    pub fn open_until(&self) -> Option<i64> {
        match self.state {
            BreakerState::Open { until_ns } => Some(until_ns),
            _ => None,
        }
    }

    /// An attempt succeeded: close, forget failures.
    pub fn on_success(&mut self) {
        self.failures = 0;
        self.trial_in_flight = false;
        self.state = BreakerState::Closed;
    }

    /// An attempt failed at `now_ns`. Returns `true` when this failure
    /// opened the breaker.
    pub fn on_failure(&mut self, now_ns: i64) -> bool {
        self.trial_in_flight = false;
        self.failures = self.failures.saturating_add(1);
        let open = match self.state(now_ns) {
            BreakerState::Closed => self.failures >= self.threshold,
            BreakerState::HalfOpen => true,
            BreakerState::Open { .. } => false,
        };
        if open {
            self.state = BreakerState::Open {
                until_ns: now_ns.saturating_add(self.open_ns),
            };
        }
        open
    }

    /// Consecutive failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Stale-feed watchdog: no frame within `timeout` → stale (reported once
/// until re-armed or fed).
#[derive(Debug, Clone)]
pub struct Watchdog {
    timeout_ns: i64,
    last_ns: i64,
    armed: bool,
    fired: bool,
}

impl Watchdog {
    /// A disarmed watchdog; a zero `timeout` disables it for good.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout_ns: timeout.as_nanos().min(i64::MAX as u128) as i64,
            last_ns: 0,
            armed: false,
            fired: false,
        }
    }

    /// Starts watching at `now_ns` (e.g. when a connection opens).
    pub fn arm(&mut self, now_ns: i64) {
        self.armed = self.timeout_ns > 0;
        self.last_ns = now_ns;
        self.fired = false;
    }

    /// Stops watching (connection closed).
    pub fn disarm(&mut self) {
        self.armed = false;
    }

    /// A frame arrived at `now_ns`.
    #[inline]
    pub fn feed(&mut self, now_ns: i64) {
        self.last_ns = now_ns;
        self.fired = false;
    }

    /// `true` exactly once when the feed has been silent for longer than
    /// the timeout.
    pub fn check(&mut self, now_ns: i64) -> bool {
        if !self.armed || self.fired {
            return false;
        }
        if now_ns - self.last_ns > self.timeout_ns {
            self.fired = true;
            return true;
        }
        false
    }

    /// Time of the last frame (or of arming).
    pub fn last_ns(&self) -> i64 {
        self.last_ns
    }

    /// When the watchdog would fire if nothing arrives (`None` if disarmed).
    pub fn deadline(&self) -> Option<i64> {
        (self.armed && !self.fired).then(|| self.last_ns.saturating_add(self.timeout_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    #[test]
    fn backoff_delays_stay_within_bounds() {
        for seed in 0..20 {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), seed);
            for n in 0..40u32 {
                let ceil = Duration::from_millis(100)
                    .saturating_mul(2u32.saturating_pow(n.min(31)))
                    .min(Duration::from_secs(5));
                assert_eq!(b.ceiling(n), ceil, "attempt {n}");
                assert_eq!(b.attempt(), n);
                let d = b.next_delay();
                assert!(d <= ceil, "seed {seed} attempt {n}: {d:?} > {ceil:?}");
            }
            // The cap is reached and never exceeded.
            assert_eq!(b.ceiling(1000), Duration::from_secs(5));
            b.reset();
            assert_eq!(b.attempt(), 0);
            assert!(b.next_delay() <= Duration::from_millis(100));
        }
    }

    #[test]
    fn backoff_is_jittered_and_deterministic() {
        let run = |seed| {
            let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(60), seed);
            (0..12).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        // Full jitter: delays at a fixed attempt spread over the range.
        let mut lo = 0;
        let mut hi = 0;
        for seed in 0..400 {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), seed);
            let d = b.next_delay();
            if d < Duration::from_millis(50) {
                lo += 1;
            } else {
                hi += 1;
            }
        }
        assert!(
            lo > 120 && hi > 120,
            "uniform-ish: {lo} below half, {hi} above"
        );
    }

    #[test]
    fn backoff_degenerate_settings() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO, 1);
        assert_eq!(b.ceiling(0), Duration::from_millis(1));
        assert_eq!(b.ceiling(10), Duration::from_millis(1));
        assert!(b.next_delay() <= Duration::from_millis(1));
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(3600), 1);
        assert_eq!(b.ceiling(200), Duration::from_secs(3600), "no overflow");
    }

    #[test]
    fn breaker_opens_after_threshold_and_half_opens() {
        let mut br = CircuitBreaker::new(3, Duration::from_millis(500));
        let t0 = 1_000 * MS;
        assert_eq!(br.state(t0), BreakerState::Closed);
        assert!(br.allow(t0));
        assert!(!br.on_failure(t0));
        assert!(!br.on_failure(t0 + MS));
        assert_eq!(br.state(t0 + MS), BreakerState::Closed);
        assert!(br.on_failure(t0 + 2 * MS), "third failure opens");
        let until = t0 + 2 * MS + 500 * MS;
        assert_eq!(
            br.state(t0 + 3 * MS),
            BreakerState::Open { until_ns: until }
        );
        assert_eq!(br.open_until(), Some(until));
        assert!(!br.allow(t0 + 3 * MS));
        assert!(!br.allow(until - 1));
        // Time is up: one trial only.
        assert_eq!(br.state(until), BreakerState::HalfOpen);
        assert!(br.allow(until));
        assert!(
            !br.allow(until + 1),
            "second attempt refused while trial runs"
        );
        // Trial fails: open again for a full period.
        assert!(br.on_failure(until + 10 * MS));
        assert_eq!(
            br.state(until + 11 * MS),
            BreakerState::Open {
                until_ns: until + 510 * MS
            }
        );
        // Next trial succeeds: closed, failures forgotten.
        assert!(br.allow(until + 510 * MS));
        br.on_success();
        assert_eq!(br.state(until + 511 * MS), BreakerState::Closed);
        assert_eq!(br.failures(), 0);
        assert!(br.allow(until + 511 * MS));
        assert!(br.allow(until + 511 * MS), "closed allows every attempt");
        // It takes the full threshold again to open.
        assert!(!br.on_failure(until + 600 * MS));
        assert!(!br.on_failure(until + 601 * MS));
        assert!(br.on_failure(until + 602 * MS));
    }

    #[test]
    fn breaker_success_resets_consecutive_count() {
        let mut br = CircuitBreaker::new(2, Duration::from_secs(1));
        assert!(!br.on_failure(0));
        br.on_success();
        assert!(!br.on_failure(1), "not consecutive");
        assert!(br.on_failure(2));
        let b1 = CircuitBreaker::new(0, Duration::from_secs(1));
        let mut b1 = b1;
        assert!(b1.on_failure(0), "threshold 0 behaves as 1");
    }

    #[test]
    fn watchdog_fires_once_per_silence() {
        let mut w = Watchdog::new(Duration::from_millis(100));
        assert!(!w.check(10_000 * MS), "disarmed");
        assert_eq!(w.deadline(), None);
        w.arm(0);
        assert_eq!(w.deadline(), Some(100 * MS));
        assert!(!w.check(50 * MS));
        w.feed(90 * MS);
        assert!(!w.check(150 * MS), "fed at 90 ms");
        assert!(!w.check(190 * MS));
        assert!(w.check(191 * MS), "silent > 100 ms");
        assert!(!w.check(300 * MS), "reported once");
        w.feed(310 * MS);
        assert!(w.check(411 * MS), "fires again after a new silence");
        w.disarm();
        assert!(!w.check(10_000 * MS));
        let mut off = Watchdog::new(Duration::ZERO);
        off.arm(0);
        assert!(!off.check(i64::MAX / 2), "zero timeout disables");
    }
}
