//! Proves `IndicatorKernel::step` (and `step_at`, `on_timer`) allocate
//! nothing per tick after warm-up, on a realistic stream: trades and quotes
//! on several instruments, bars rolling on three windows and closing by the
//! watermark, indicators past their lookbacks, provisional updates,
//! anomalies firing and being suppressed, movers/sector/index updates.
//!
//! A counting global allocator counts allocations made on the test's own
//! thread while counting is switched on (other test threads are ignored).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use tickwire::event::{Event, EventBody};
use tickwire::instruments::{InstrumentId, InstrumentRegistry};
use tickwire::kernel::{IndexSpec, IndicatorKernel, KernelSetup};
use tickwire::tick::{Side, Tick, TickKind, feed_status};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    // `try_with`: the thread-local may be gone during thread teardown.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System` upholds the `GlobalAlloc` contract; the counting
// only touches an atomic and a const-initialized thread-local `Cell`, which
// never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same layout the caller gave us; the contract passes on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` was allocated by `System` through this allocator
        // with `layout`, as the caller guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const S: i64 = 1_000_000_000;
const T0: i64 = 1_723_161_240 * S;

/// xorshift64: deterministic, allocation-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The stream: 6 instruments, trades and quotes every ~2 ms of event time
/// (several hours), price random walks with occasional jumps (price
/// spikes), volume bursts (volume spikes), crossed quotes, gaps and stale
/// reports now and then.
fn stream(n: usize) -> Vec<Tick> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut px = [6_183_763i64, 265_017, 14_512, 5_000_000, 120_000, 99_999];
    let mut out = Vec::with_capacity(n);
    let mut ts = T0;
    for i in 0..n {
        let r = rng.next();
        ts += 1 + (r % 4_000_000) as i64;
        let inst = (r >> 8) as usize % px.len();
        let id = InstrumentId(inst as u32);
        let kind = (r >> 16) % 100;
        if kind < 60 {
            let step = ((r >> 24) % 5) as i64 - 2;
            px[inst] = (px[inst] + step * (px[inst] / 10_000).max(1)).max(100);
            let jump = (r >> 40) % 5_000 == 0;
            let price = if jump { px[inst] * 11 / 10 } else { px[inst] };
            let burst = (r >> 33) % 500 == 0;
            let size = 1 + ((r >> 48) % 1_000) as i64 * if burst { 200 } else { 1 };
            let side = if r & 1 == 0 { Side::Buy } else { Side::Sell };
            out.push(Tick::trade(id, ts, ts, price, size, side, i as u64));
        } else if kind < 97 {
            let crossed = (r >> 40) % 2_000 == 0;
            let (bid, ask) = if crossed {
                (px[inst] + 2, px[inst] + 1)
            } else {
                (px[inst] - 1, px[inst] + 1)
            };
            out.push(Tick::quote(id, ts, ts, bid, 5, ask, 7, i as u64));
        } else if kind < 98 {
            out.push(Tick {
                ts_event_ns: ts,
                ts_recv_ns: ts,
                id: i as u64,
                price: i as i64 + 3,
                size: 3,
                instrument: id,
                kind: TickKind::Gap as u8,
                ..Tick::default()
            });
        } else {
            out.push(Tick {
                ts_event_ns: ts,
                ts_recv_ns: ts,
                id: feed_status::STALE,
                instrument: id,
                kind: TickKind::FeedStatus as u8,
                ..Tick::default()
            });
        }
    }
    out
}

#[test]
fn step_allocates_nothing_after_warm_up() {
    let mut reg = InstrumentRegistry::new();
    for (n, sector) in [
        ("SIM:BTCUSDT", "crypto"),
        ("SIM:ETHUSDT", "crypto"),
        ("SIM:SOLUSDT", "crypto"),
        ("SIM:AAPL", "tech"),
        ("SIM:MSFT", "tech"),
        ("SIM:XOM", "energy"),
    ] {
        reg.add(n, 2, 3, Some(sector.into())).unwrap();
    }
    let mut setup = KernelSetup::with_windows(vec![S, 60 * S, 300 * S]);
    setup.provisional_interval_ns = S / 4;
    setup.bar_grace_ns = S / 2;
    for r in [
        &mut setup.rules.price_spike,
        &mut setup.rules.volume_spike,
        &mut setup.rules.rsi,
        &mut setup.rules.latency,
        &mut setup.rules.sequence_gap,
        &mut setup.rules.stale_feed,
        &mut setup.rules.crossed_book,
    ] {
        r.cooldown_ns = 5 * S;
    }
    setup.overview.interval_ns = S / 10;
    setup.overview.indices = vec![IndexSpec {
        name: "MIX".into(),
        constituents: vec![(InstrumentId(0), 0.5, 0), (InstrumentId(3), 0.5, 0)],
    }];
    let mut k = IndicatorKernel::new(&reg, &setup);

    let ticks = stream(3_000_000);
    let warm = 1_000_000;
    // Generous capacity: the most one tick can cause is a bar and snapshot
    // per window per instrument (watermark), plus provisional, anomalies
    // and overview events.
    let mut out: Vec<Event> = Vec::with_capacity(4_096);
    let mut counts = [0u64; 7];
    let tally = |out: &mut Vec<Event>, counts: &mut [u64; 7]| {
        for e in out.drain(..) {
            let i = match e.body {
                EventBody::Tick(_) => 0,
                EventBody::Bar(b) if b.is_final => 1,
                EventBody::Bar(_) => 2,
                EventBody::Indicators(_) => 3,
                EventBody::Anomaly(_) => 4,
                EventBody::Movers(_) => 5,
                EventBody::Sector(_) | EventBody::Index(_) => 6,
                _ => unreachable!("the kernel emits no decision events"),
            };
            counts[i] += 1;
        }
    };
    for t in &ticks[..warm] {
        k.step_at(t, t.ts_recv_ns + 1_000, &mut out);
        tally(&mut out, &mut counts);
    }
    let before = (k.stats(), counts);

    COUNTING.with(|c| c.set(true));
    for (i, t) in ticks[warm..].iter().enumerate() {
        // Every 1000th tick arrives "late" on the clock: latency anomalies.
        let lag = if i % 1_000 == 0 { 200_000_000 } else { 1_000 };
        k.step_at(t, t.ts_recv_ns + lag, &mut out);
        if i % 10_000 == 0 {
            k.on_timer(t.ts_event_ns + 10 * S, &mut out);
        }
        // Draining keeps the capacity: no allocation.
        tally(&mut out, &mut counts);
    }
    COUNTING.with(|c| c.set(false));
    let allocs = ALLOCS.load(Ordering::Relaxed);

    // The measured phase really exercised everything.
    let st = k.stats();
    let (b, c) = before;
    println!(
        "measured phase: {:?}",
        counts.iter().zip(c).map(|(a, b)| a - b).collect::<Vec<_>>()
    );
    println!("stats: {st:?}");
    assert!(st.bars - b.bars > 10_000, "bars rolled");
    assert!(
        st.bars_by_watermark > b.bars_by_watermark,
        "watermark closes"
    );
    assert!(st.indicator_snapshots - b.indicator_snapshots > 10_000);
    assert!(st.provisional_bars - b.provisional_bars > 10_000);
    assert!(st.anomalies - b.anomalies > 100, "anomalies fired");
    assert!(
        st.anomalies_suppressed > b.anomalies_suppressed,
        "cooldowns hit"
    );
    assert!(counts[5] > c[5] && counts[6] > c[6], "overview updates");
    assert_eq!(
        allocs,
        0,
        "allocations in {} steps after warm-up",
        ticks.len() - warm
    );
}
