//! Proves the hot path allocates nothing after warm-up: feed decode (the
//! simulated Binance frames through the real adapter) → journal append →
//! kernel → signal → rtrb ring pushes and pops, counted by a global
//! allocator wrapper. (The journal's background helper thread allocates when
//! it creates segments; that is off the hot path, so only allocations made
//! on this thread are counted.)

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tickwire::clock::Clock;
use tickwire::engine::build_stages;
use tickwire::event::Event;
use tickwire::feed::FeedStep;
use tickwire::telemetry::{StageRecorder, Telemetry};
use tickwire::tick::Tick;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Set on the measuring thread only (const init: no allocation).
    static THIS_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn counted() -> bool {
    COUNTING.load(Ordering::Relaxed) && THIS_THREAD.try_with(|c| c.get()).unwrap_or(false)
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so System's guarantees carry over; the counter is a relaxed
// atomic that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
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
        if counted() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded verbatim; `ptr`/`layout` come from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn hot_path_does_not_allocate_after_warm_up() {
    THIS_THREAD.with(|c| c.set(true));
    let jdir = tempfile::tempdir().unwrap();
    let mut cfg = common::deterministic_config(0);
    cfg.journal.enabled = true;
    cfg.journal.dir = jdir.path().to_path_buf();
    cfg.journal.events_enabled = false; // the fan-out thread is not part of this test
    cfg.journal.segment_mb = 4; // several roll-overs during the run
    let (mut st, reg) = build_stages(&cfg, Clock::new(), Vec::new()).unwrap();
    let mut journal = st.journal.take().expect("journal enabled");
    let tel = Telemetry::new(reg.len());
    let mut rec = StageRecorder::new(tel.decode.clone());
    let mut kout: Vec<Event> = Vec::with_capacity(64);
    let mut sout: Vec<Event> = Vec::with_capacity(64);
    let (mut tx, mut rx) = rtrb::RingBuffer::<Tick>::new(1024);
    let (mut etx, mut erx) = rtrb::RingBuffer::<Event>::new(1024);

    let mut run = |n: usize| {
        let mut ticks = 0;
        for _ in 0..n {
            match st.feed.step(&tel.feed, &mut rec) {
                FeedStep::Ticks(_) => {
                    for t in st.feed.ticks() {
                        journal.append(t).unwrap();
                        tx.push(*t).unwrap();
                    }
                    journal.commit();
                }
                other => panic!("unpaced sim never idles: {other:?}"),
            }
            while let Ok(t) = rx.pop() {
                ticks += 1;
                st.kernel.step(&t, &mut kout);
                for ev in kout.drain(..) {
                    st.signal.step(&ev, &mut sout);
                    etx.push(ev).unwrap();
                    sout.clear();
                }
            }
            while erx.pop().is_ok() {}
        }
        ticks
    };
    // Warm-up: buffers reach their steady capacity, bars roll, histograms
    // publish at least once.
    assert!(run(20_000) > 0);
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let ticks = run(100_000);
    COUNTING.store(false, Ordering::Relaxed);
    let allocs = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(ticks, 100_000);
    assert!(
        st.kernel.stats().bars > 0,
        "bars rolled during the measured run"
    );
    assert_eq!(
        allocs, 0,
        "{allocs} allocations in 100k hot-path iterations"
    );

    // Control: the counting allocator really counts (so the 0 above means 0).
    // Same test function, so no other test toggles the global flag meanwhile.
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let v: Vec<u64> = Vec::with_capacity(17);
    std::hint::black_box(&v);
    COUNTING.store(false, Ordering::Relaxed);
    assert!(ALLOCS.load(Ordering::Relaxed) >= 1);
}
