//! Telemetry: per-stage HdrHistograms and lock-free counters.
//!
//! Each stage thread records into its **own** [`StageRecorder`] (a
//! preallocated HdrHistogram with fixed bounds: recording never allocates,
//! never locks). At most every [`PUBLISH_EVERY`] records, or when the thread
//! goes idle, the recorder merges its local histogram into the shared
//! [`StageStats`] with a `try_lock` — outside per-message processing and
//! never blocking: if the reporter holds the lock, the merge is retried later.
//! Readers (stats log, `/metrics`, bench harness) take interval snapshots.
//!
//! Counters are relaxed `AtomicU64`s grouped per writing thread and padded
//! to cache lines so two threads never write the same line.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;

/// Highest latency recorded without saturation: 60 s in ns.
pub const MAX_LATENCY_NS: u64 = 60_000_000_000;
/// Significant decimal digits kept by every histogram.
pub const SIG_FIGS: u8 = 3;
/// Local records between merges into the shared histogram.
pub const PUBLISH_EVERY: u32 = 4096;

/// A new latency histogram with the engine's fixed bounds (1 ns .. 60 s).
///
/// # Panics
/// Never: the bounds are constants that hdrhistogram accepts.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, SIG_FIGS).expect("constant bounds are valid")
}

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }
    /// Current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge holding the latest (or max) value.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets the value.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Shared, mergeable latency statistics of one stage.
///
/// Holds two histograms fed by the same merges: an *interval* one that the
/// stats logger takes and resets ([`StageStats::take_interval`]), and a
/// *cumulative* one since start that readers such as `/metrics` look at
/// without disturbing the logger ([`StageStats::with_cumulative`]).
#[derive(Debug)]
pub struct StageStats {
    /// Stage name (`decode`, `kernel`, `signal`, `fanout`, `e2e`, `deliver`).
    pub name: &'static str,
    hists: Mutex<StageHists>,
}

#[derive(Debug)]
struct StageHists {
    interval: Histogram<u64>,
    cumulative: Histogram<u64>,
}

impl StageHists {
    /// Same bounds on every side, so `add` cannot fail or allocate.
    fn merge(&mut self, local: &Histogram<u64>) {
        let _ = self.interval.add(local);
        let _ = self.cumulative.add(local);
    }
}

impl StageStats {
    /// Empty statistics for a stage called `name`.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            hists: Mutex::new(StageHists {
                interval: new_histogram(),
                cumulative: new_histogram(),
            }),
        }
    }

    /// Takes the histogram accumulated since the previous call and resets it.
    pub fn take_interval(&self) -> Histogram<u64> {
        let mut fresh = new_histogram();
        if let Ok(mut h) = self.hists.lock() {
            std::mem::swap(&mut h.interval, &mut fresh);
        }
        fresh
    }

    /// Runs `f` on the cumulative histogram (everything published since
    /// start) under the lock. Recorders never wait for it (they retry their
    /// merge later), so keep `f` short: read percentiles, or clone.
    pub fn with_cumulative<R>(&self, f: impl FnOnce(&Histogram<u64>) -> R) -> R {
        match self.hists.lock() {
            Ok(h) => f(&h.cumulative),
            Err(p) => f(&p.into_inner().cumulative),
        }
    }
}

/// Per-thread recorder for one stage. Not `Sync`: one per thread.
#[derive(Debug)]
pub struct StageRecorder {
    local: Histogram<u64>,
    pending: u32,
    shared: Arc<StageStats>,
}

impl StageRecorder {
    /// A recorder that publishes into `shared`.
    pub fn new(shared: Arc<StageStats>) -> Self {
        Self {
            local: new_histogram(),
            pending: 0,
            shared,
        }
    }

    /// Records one latency in ns (clamped to 1 ns .. 60 s). No allocation.
    #[inline]
    pub fn record(&mut self, ns: i64) {
        let v = (ns.max(1) as u64).min(MAX_LATENCY_NS);
        self.local.saturating_record(v);
        self.pending += 1;
        if self.pending >= PUBLISH_EVERY {
            self.publish();
        }
    }

    /// Merges local samples into the shared histogram if the lock is free.
    /// Called automatically every [`PUBLISH_EVERY`] records and by idle
    /// threads. Never blocks.
    #[inline(never)]
    pub fn publish(&mut self) {
        if self.pending == 0 {
            return;
        }
        if let Ok(mut h) = self.shared.hists.try_lock() {
            h.merge(&self.local);
            self.local.reset();
            self.pending = 0;
        }
    }

    /// Publishes, waiting for the lock (shutdown path only).
    pub fn publish_blocking(&mut self) {
        if self.pending == 0 {
            return;
        }
        if let Ok(mut h) = self.shared.hists.lock() {
            h.merge(&self.local);
            self.local.reset();
            self.pending = 0;
        }
    }
}

/// Feed-thread counters.
#[derive(Debug, Default)]
pub struct FeedCounters {
    /// Frames read from sources.
    pub frames: Counter,
    /// Ticks decoded and pushed (including gap and feed-status ticks).
    pub ticks: Counter,
    /// Frames that failed to decode (malformed JSON, missing fields).
    pub decode_errors: Counter,
    /// Prices or sizes that did not fit the instrument precision/range.
    pub decimal_errors: Counter,
    /// Ticks for symbols not in the registry.
    pub unknown_symbols: Counter,
    /// Control messages (acks, pings, heartbeats, unsupported streams).
    pub control: Counter,
    /// Sequence gaps detected by adapters (each also emitted as a gap tick).
    pub gaps: Counter,
    /// Times the tick ring was full.
    pub ring_full: Counter,
    /// Ticks dropped on a full ring (drop policy only).
    pub drops: Counter,
    /// Ticks appended to the journal.
    pub journal_records: Counter,
    /// Journal append failures (each logged; see `journal.on_error`).
    pub journal_errors: Counter,
    /// Frames that decoded as market data (`frames` = `data_frames` +
    /// `control` + `decode_errors` + `decimal_errors`).
    pub data_frames: Counter,
    /// Connections re-established after a drop, stale feed or rotation.
    pub reconnects: Counter,
    /// Stale-feed watchdog firings (each forces a reconnect).
    pub stale: Counter,
    /// Times a feed's circuit breaker opened.
    pub circuit_open: Counter,
}

/// Kernel-thread counters.
#[derive(Debug, Default)]
pub struct KernelCounters {
    /// Ticks consumed.
    pub ticks: Counter,
    /// Events produced.
    pub events: Counter,
    /// Bars finalized.
    pub bars: Counter,
    /// Times an output ring was full.
    pub ring_full: Counter,
    /// Events dropped (drop policy).
    pub drops: Counter,
    /// Max occupancy of the input ring seen in the last interval.
    pub in_ring_max: Gauge,
}

/// Signal-thread counters.
#[derive(Debug, Default)]
pub struct SignalCounters {
    /// Events consumed.
    pub events: Counter,
    /// Events produced.
    pub out: Counter,
    /// Times the output ring was full.
    pub ring_full: Counter,
    /// Events dropped (drop policy).
    pub drops: Counter,
    /// Max occupancy of the input ring seen in the last interval.
    pub in_ring_max: Gauge,
}

/// Fan-out-thread counters.
#[derive(Debug, Default)]
pub struct FanoutCounters {
    /// Events consumed from the kernel ring.
    pub market_events: Counter,
    /// Events consumed from the signal ring.
    pub signal_events: Counter,
    /// Max occupancy of the kernel→fan-out ring in the last interval.
    pub in_ring_max: Gauge,
}

/// Everything the engine measures, shared by all threads.
#[derive(Debug)]
pub struct Telemetry {
    /// Feed counters (written by the feed thread only).
    pub feed: CachePadded<FeedCounters>,
    /// Kernel counters.
    pub kernel: CachePadded<KernelCounters>,
    /// Signal counters.
    pub signal: CachePadded<SignalCounters>,
    /// Fan-out counters.
    pub fanout: CachePadded<FanoutCounters>,
    /// Ticks per instrument id (feed thread).
    pub per_instrument: Box<[Counter]>,
    /// Decode time per frame.
    pub decode: Arc<StageStats>,
    /// Journal append time per frame (all ticks of the frame + commit).
    pub journal: Arc<StageStats>,
    /// Kernel time per tick.
    pub kernel_lat: Arc<StageStats>,
    /// Signal stage time per event.
    pub signal_lat: Arc<StageStats>,
    /// Fan-out time per event.
    pub fanout_lat: Arc<StageStats>,
    /// Receive → fan-out latency.
    pub e2e: Arc<StageStats>,
    /// CPU time used by each pipeline thread (feed, kernel, signal,
    /// fan-out), ns; set when the thread ends.
    pub thread_cpu_ns: [Gauge; 4],
    /// Receive → handed to a subscriber's socket (one sample per message
    /// per subscriber; recorded by the fan-out server).
    pub deliver: Arc<StageStats>,
}

impl Telemetry {
    /// Telemetry for `n_instruments` instruments.
    pub fn new(n_instruments: usize) -> Self {
        Self {
            feed: CachePadded::new(FeedCounters::default()),
            kernel: CachePadded::new(KernelCounters::default()),
            signal: CachePadded::new(SignalCounters::default()),
            fanout: CachePadded::new(FanoutCounters::default()),
            per_instrument: (0..n_instruments).map(|_| Counter::default()).collect(),
            decode: Arc::new(StageStats::new("decode")),
            journal: Arc::new(StageStats::new("journal")),
            kernel_lat: Arc::new(StageStats::new("kernel")),
            signal_lat: Arc::new(StageStats::new("signal")),
            fanout_lat: Arc::new(StageStats::new("fanout")),
            e2e: Arc::new(StageStats::new("e2e")),
            thread_cpu_ns: Default::default(),
            deliver: Arc::new(StageStats::new("deliver")),
        }
    }

    /// The per-stage latency statistics, in pipeline order, then the
    /// end-to-end ones (`e2e`: receive → fan-out; `deliver`: receive →
    /// subscriber socket).
    pub fn stages(&self) -> [&Arc<StageStats>; 7] {
        [
            &self.decode,
            &self.journal,
            &self.kernel_lat,
            &self.signal_lat,
            &self.fanout_lat,
            &self.e2e,
            &self.deliver,
        ]
    }
}

/// Percentile summary of one histogram, in ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Maximum.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    /// Summarizes a histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// Formats a nanosecond figure with a readable unit (`850ns`, `12.3µs`, `4.1ms`).
pub fn fmt_ns(ns: u64) -> String {
    let mut s = String::new();
    if ns < 1_000 {
        let _ = write!(s, "{ns}ns");
    } else if ns < 1_000_000 {
        let _ = write!(s, "{:.1}µs", ns as f64 / 1e3);
    } else if ns < 1_000_000_000 {
        let _ = write!(s, "{:.1}ms", ns as f64 / 1e6);
    } else {
        let _ = write!(s, "{:.2}s", ns as f64 / 1e9);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_publishes_into_shared() {
        let shared = Arc::new(StageStats::new("t"));
        let mut r = StageRecorder::new(shared.clone());
        for v in 1..=1000 {
            r.record(v * 1000);
        }
        // Below PUBLISH_EVERY nothing is shared yet.
        assert_eq!(shared.take_interval().len(), 0);
        r.publish();
        let h = shared.take_interval();
        assert_eq!(h.len(), 1000);
        let p = Percentiles::of(&h);
        assert!((499_000..=501_000).contains(&p.p50), "{p:?}");
        assert!(p.max >= 1_000_000 && p.max <= 1_001_000, "{p:?}");
        // Interval was reset.
        assert_eq!(shared.take_interval().len(), 0);
        // The cumulative histogram still has everything.
        assert_eq!(shared.with_cumulative(|h| h.len()), 1000);
        for v in 1..=10 {
            r.record(v);
        }
        r.publish();
        assert_eq!(shared.take_interval().len(), 10);
        assert_eq!(shared.with_cumulative(|h| h.len()), 1010);
    }

    #[test]
    fn recorder_clamps_out_of_range() {
        let shared = Arc::new(StageStats::new("t"));
        let mut r = StageRecorder::new(shared.clone());
        r.record(-5);
        r.record(i64::MAX);
        r.publish_blocking();
        let h = shared.take_interval();
        assert_eq!(h.len(), 2);
        assert_eq!(h.min(), 1);
        assert!(h.max() >= MAX_LATENCY_NS);
    }

    #[test]
    fn auto_publish_after_threshold() {
        let shared = Arc::new(StageStats::new("t"));
        let mut r = StageRecorder::new(shared.clone());
        for _ in 0..PUBLISH_EVERY {
            r.record(10);
        }
        assert_eq!(shared.take_interval().len(), u64::from(PUBLISH_EVERY));
    }

    #[test]
    fn formats_units() {
        assert_eq!(fmt_ns(850), "850ns");
        assert_eq!(fmt_ns(12_345), "12.3µs");
        assert_eq!(fmt_ns(4_100_000), "4.1ms");
        assert_eq!(fmt_ns(2_500_000_000), "2.50s");
    }
}
