//! The signal stage allocates nothing after warm-up while strategies fire,
//! risk checks run, orders are placed and filled and snapshots are emitted:
//! simulated feed → kernel → signal stage, counted by a global allocator
//! wrapper around the signal stage's `step` only.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tickwire::clock::Clock;
use tickwire::engine::build_stages;
use tickwire::event::Event;
use tickwire::feed::FeedStep;
use tickwire::telemetry::{StageRecorder, Telemetry};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so System's guarantees carry over; the counter is a relaxed
// atomic that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded verbatim; the caller upholds alloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout (every
        // allocation goes through `alloc` above).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded verbatim; `ptr`/`layout` come from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn signal_stage_does_not_allocate_after_warm_up() {
    let mut cfg = common::deterministic_config(0);
    for s in &mut cfg.signal.strategies {
        s.window = Some("1s".into());
    }
    cfg.signal.strategies[0].fast = Some(3);
    cfg.signal.strategies[0].slow = Some(8);
    cfg.signal.strategies[1].period = Some(5);
    cfg.signal.strategies[2].period = Some(8);
    cfg.signal.threshold = 0.05;
    cfg.signal.snapshot_interval_secs = 5;
    // Small rings so they wrap during the run.
    cfg.signal.trade_log_capacity = 8;
    cfg.signal.equity_curve_capacity = 8;
    cfg.risk.max_orders_per_window = 3;
    cfg.risk.rate_window_secs = 10;
    let (mut st, reg) = build_stages(&cfg, Clock::new(), Vec::new()).unwrap();
    let tel = Telemetry::new(reg.len());
    let mut rec = StageRecorder::new(tel.decode.clone());
    let mut kout: Vec<Event> = Vec::with_capacity(64);
    let mut sout: Vec<Event> = Vec::with_capacity(64);
    let mut ticks: Vec<tickwire::tick::Tick> = Vec::with_capacity(64);

    let mut run = |n: usize| {
        let mut emitted = 0u64;
        for _ in 0..n {
            match st.feed.step(&tel.feed, &mut rec) {
                FeedStep::Ticks(_) => {
                    ticks.clear();
                    ticks.extend_from_slice(st.feed.ticks());
                }
                other => panic!("unpaced sim never idles: {other:?}"),
            }
            for t in &ticks {
                st.kernel.step(t, &mut kout);
                for ev in kout.drain(..) {
                    COUNTING.store(true, Ordering::Relaxed);
                    st.signal.step(&ev, &mut sout);
                    COUNTING.store(false, Ordering::Relaxed);
                    emitted += sout.len() as u64;
                    sout.clear();
                }
            }
        }
        (emitted, st.signal.stats())
    };
    // Warm-up (not counted: the counter is reset below).
    let (warm, before) = run(30_000);
    assert!(warm > 0);
    ALLOCS.store(0, Ordering::Relaxed);
    let (emitted, after) = run(120_000);
    let allocs = ALLOCS.load(Ordering::Relaxed);
    assert!(emitted > 0);
    assert!(after.signals > before.signals, "signals during the run");
    assert!(after.orders > before.orders, "orders during the run");
    assert!(after.fills > before.fills, "fills during the run");
    assert!(
        after.rejected > before.rejected,
        "rejections during the run"
    );
    assert_eq!(allocs, 0, "{allocs} allocations in the signal stage");

    // Control: the counting allocator really counts.
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let v: Vec<u64> = Vec::with_capacity(17);
    std::hint::black_box(&v);
    COUNTING.store(false, Ordering::Relaxed);
    assert!(ALLOCS.load(Ordering::Relaxed) >= 1);
}
