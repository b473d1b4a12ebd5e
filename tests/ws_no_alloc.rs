//! The WebSocket read path allocates nothing after warm-up: feedsim (other
//! threads, not counted) → WsSource → Binance decode, counted on the test
//! thread only by a global allocator wrapper.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tickwire::clock::Clock;
use tickwire::config::{EngineConfig, InstrumentConfig};
use tickwire::engine::{FeedSecrets, build_feed};
use tickwire::feed::{FeedStage, FeedStep};
use tickwire::feedsim::{FeedSim, FeedSimConfig, Pace, Venue};
use tickwire::telemetry::{StageRecorder, Telemetry};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the bookkeeping is a const-initialized thread-local read and a
// relaxed atomic, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded verbatim; the caller upholds alloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded verbatim; `ptr`/`layout` come from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn ws_read_and_decode_do_not_allocate_after_warm_up() {
    let mut sc = FeedSimConfig::new(Venue::Binance);
    sc.symbols.truncate(2);
    sc.pace = Pace::Max;
    sc.pool = 4_096;
    let sim = FeedSim::start(sc).unwrap();
    let mut cfg = EngineConfig {
        instruments: [("BINANCE:BTCUSDT", 5), ("BINANCE:ETHUSDT", 4)]
            .iter()
            .map(|(s, sp)| InstrumentConfig {
                symbol: (*s).into(),
                price_precision: 2,
                size_precision: *sp,
                sector: None,
                sim_price: None,
            })
            .collect(),
        ..EngineConfig::default()
    };
    cfg.feeds[0].venue = "BINANCE".into();
    cfg.feeds[0].url = sim.url();
    cfg.validate().unwrap();
    let reg = Arc::new(cfg.registry().unwrap());
    let clock = Clock::new();
    let (source, streams) = build_feed(&cfg, &reg, clock, &FeedSecrets::new()).unwrap();
    let mut stage = FeedStage::with_streams(source, streams, clock);
    let tel = Telemetry::new(reg.len());
    let mut rec = StageRecorder::new(tel.decode.clone());
    let mut run = |frames: u64| {
        let start = Instant::now();
        let target = tel.feed.data_frames.get() + frames;
        while tel.feed.data_frames.get() < target {
            assert!(start.elapsed() < Duration::from_secs(20), "feed stalled");
            if stage.step(&tel.feed, &mut rec) == FeedStep::Idle {
                std::thread::yield_now();
            }
        }
    };
    run(50_000);
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    run(100_000);
    COUNTING.with(|c| c.set(false));
    let allocs = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(tel.feed.decode_errors.get(), 0);
    assert_eq!(
        allocs, 0,
        "{allocs} allocations in 100k frames read from a socket"
    );
    // Control: counting works on this thread.
    COUNTING.with(|c| c.set(true));
    std::hint::black_box(Vec::<u64>::with_capacity(3));
    COUNTING.with(|c| c.set(false));
    assert!(ALLOCS.load(Ordering::Relaxed) >= 1);
}
