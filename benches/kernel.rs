//! Kernel cost per trade tick, side by side with a baseline built on the
//! `ta` crate computing the same indicator set.
//!
//! Both sides see the same deterministic stream of trades (4 instruments,
//! one trade every 0.5 ms of event time on average, so 1 m / 5 m / 15 m
//! bars roll regularly) and do per trade:
//!
//! * bars (OHLCV, VWAP, buy/sell volume, trades) on 1 m, 5 m, 15 m windows;
//! * on every bar close: SMA 20/50/200, EMA 12/26, RSI 14, MACD 12/26/9,
//!   Bollinger 20/2, average volume 20, session VWAP;
//! * provisional values once per second of event time per instrument and
//!   window (tickwire: `peek`; `ta` has no peek, so it clones each
//!   indicator and feeds the clone — which also allocates).
//!
//! `tickwire/full` additionally runs the anomaly rules and the market
//! overview (movers, sectors) and forwards every tick as an event;
//! `tickwire/indicators_only` turns those rules off for a like-for-like
//! comparison. `harness/generator` is the cost of producing the next trade
//! (generated in batches of 1024, read like a ring), included in every
//! other `kernel_per_trade` figure.
//!
//! Run: `cargo bench --bench kernel` (figures in BENCHMARKS.md).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ta::Next;
use ta::indicators::{
    BollingerBands as TaBb, ExponentialMovingAverage as TaEma,
    MovingAverageConvergenceDivergence as TaMacd, RelativeStrengthIndex as TaRsi,
    SimpleMovingAverage as TaSma,
};

use tickwire::event::Event;
use tickwire::instruments::{InstrumentId, InstrumentRegistry};
use tickwire::kernel::indicators::{BollingerBands, Ema, Macd, Rsi, Sma};
use tickwire::kernel::{IndicatorKernel, KernelSetup};
use tickwire::tick::{Side, Tick};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_723_161_240 * S;
const INSTRUMENTS: usize = 4;
const WINDOWS: [i64; 3] = [60 * S, 300 * S, 900 * S];

/// Ticks as a consumer finds them in a ring: generated a batch ahead, so
/// the kernel reads memory written long before (as after an SPSC pop), not
/// stores still in flight.
struct Feed {
    source: Gen,
    buf: Vec<Tick>,
    pos: usize,
}

impl Feed {
    fn new() -> Self {
        Self {
            source: Gen::new(),
            buf: vec![Tick::default(); 1024],
            pos: 1024,
        }
    }

    #[inline]
    fn next(&mut self) -> &Tick {
        if self.pos == self.buf.len() {
            for t in self.buf.iter_mut() {
                *t = self.source.next();
            }
            self.pos = 0;
        }
        self.pos += 1;
        &self.buf[self.pos - 1]
    }
}

/// Deterministic trade stream: per-instrument random walks in cents.
struct Gen {
    x: u64,
    ts: i64,
    px: [i64; INSTRUMENTS],
    n: u64,
}

impl Gen {
    fn new() -> Self {
        Self {
            x: 0x9E37_79B9_7F4A_7C15,
            ts: T0,
            px: [6_183_763, 265_017, 14_512, 500_000],
            n: 0,
        }
    }

    #[inline]
    fn next(&mut self) -> Tick {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        let r = self.x;
        self.ts += (r % 1_000_000) as i64;
        let i = (r >> 20) as usize % INSTRUMENTS;
        self.px[i] = (self.px[i] + ((r >> 24) % 5) as i64 - 2).max(100);
        self.n += 1;
        let side = if r & 1 == 0 { Side::Buy } else { Side::Sell };
        Tick::trade(
            InstrumentId(i as u32),
            self.ts,
            self.ts,
            self.px[i],
            1 + ((r >> 32) % 5_000) as i64,
            side,
            self.n,
        )
    }
}

fn registry() -> InstrumentRegistry {
    let mut r = InstrumentRegistry::new();
    for (n, s) in [
        ("SIM:BTCUSDT", "crypto"),
        ("SIM:ETHUSDT", "crypto"),
        ("SIM:SOLUSDT", "crypto"),
        ("SIM:AAPL", "tech"),
    ] {
        r.add(n, 2, 5, Some(s.into())).unwrap();
    }
    r
}

// ---------------------------------------------------------------- baseline

/// The same indicator set on the `ta` crate.
#[derive(Clone)]
struct TaSet {
    sma: [TaSma; 3],
    ema: [TaEma; 2],
    rsi: TaRsi,
    macd: TaMacd,
    bb: TaBb,
    vol: TaSma,
}

impl TaSet {
    fn new() -> Self {
        Self {
            sma: [
                TaSma::new(20).unwrap(),
                TaSma::new(50).unwrap(),
                TaSma::new(200).unwrap(),
            ],
            ema: [TaEma::new(12).unwrap(), TaEma::new(26).unwrap()],
            rsi: TaRsi::new(14).unwrap(),
            macd: TaMacd::new(12, 26, 9).unwrap(),
            bb: TaBb::new(20, 2.0).unwrap(),
            vol: TaSma::new(20).unwrap(),
        }
    }

    #[inline]
    fn next(&mut self, close: f64, volume: f64) -> [f64; 14] {
        let m = self.macd.next(close);
        let b = self.bb.next(close);
        [
            self.sma[0].next(close),
            self.sma[1].next(close),
            self.sma[2].next(close),
            self.ema[0].next(close),
            self.ema[1].next(close),
            self.rsi.next(close),
            m.macd,
            m.signal,
            m.histogram,
            b.upper,
            b.average,
            b.lower,
            self.vol.next(volume),
            0.0,
        ]
    }
}

#[derive(Clone, Copy, Default)]
#[allow(dead_code)]
struct TaBar {
    start: i64,
    open: i64,
    high: i64,
    low: i64,
    close: i64,
    volume: i64,
    buy: i64,
    sell: i64,
    trades: u32,
    pv: i128,
    is_open: bool,
}

/// What the baseline emits (so its work is not optimized away).
#[derive(Clone, Copy)]
#[allow(dead_code)]
enum TaOut {
    Tick(Tick),
    Bar(TaBar, f64),
    Values([f64; 14]),
}

struct Baseline {
    bars: Vec<[TaBar; 3]>,
    sets: Vec<[TaSet; 3]>,
    next_prov: Vec<[i64; 3]>,
    session: Vec<(i128, i64)>,
}

impl Baseline {
    fn new() -> Self {
        Self {
            bars: vec![[TaBar::default(); 3]; INSTRUMENTS],
            sets: (0..INSTRUMENTS)
                .map(|_| [TaSet::new(), TaSet::new(), TaSet::new()])
                .collect(),
            next_prov: vec![[i64::MIN; 3]; INSTRUMENTS],
            session: vec![(0, 0); INSTRUMENTS],
        }
    }

    #[inline]
    fn step(&mut self, t: &Tick, out: &mut Vec<TaOut>) {
        out.push(TaOut::Tick(*t));
        let i = t.instrument.0 as usize;
        let ts = t.ts_event_ns;
        for (w, wns) in WINDOWS.iter().enumerate() {
            let start = ts.div_euclid(*wns) * wns;
            let b = &mut self.bars[i][w];
            if b.is_open && start != b.start {
                let vwap = (b.pv as f64 / b.volume as f64) / 100.0;
                out.push(TaOut::Bar(*b, vwap));
                let mut v = self.sets[i][w].next(b.close as f64 / 100.0, b.volume as f64 / 1e5);
                let (pv, vol) = self.session[i];
                v[13] = (pv as f64 / vol as f64) / 100.0;
                out.push(TaOut::Values(v));
                b.is_open = false;
            }
            if !b.is_open {
                *b = TaBar {
                    start,
                    open: t.price,
                    high: t.price,
                    low: t.price,
                    is_open: true,
                    ..TaBar::default()
                };
            }
            b.high = b.high.max(t.price);
            b.low = b.low.min(t.price);
            b.close = t.price;
            b.volume += t.size;
            match t.side() {
                Side::Buy => b.buy += t.size,
                Side::Sell => b.sell += t.size,
                Side::None => {}
            }
            b.trades += 1;
            b.pv += i128::from(t.price) * i128::from(t.size);
        }
        let s = &mut self.session[i];
        s.0 += i128::from(t.price) * i128::from(t.size);
        s.1 += t.size;
        for w in 0..WINDOWS.len() {
            if ts >= self.next_prov[i][w] {
                self.next_prov[i][w] = ts + S;
                let b = self.bars[i][w];
                let vwap = (b.pv as f64 / b.volume as f64) / 100.0;
                out.push(TaOut::Bar(b, vwap));
                // No peek in `ta`: feed a clone.
                let mut c = self.sets[i][w].clone();
                out.push(TaOut::Values(
                    c.next(b.close as f64 / 100.0, b.volume as f64 / 1e5),
                ));
            }
        }
    }
}

// ---------------------------------------------------------------- benches

fn setup(full: bool) -> KernelSetup {
    let mut s = KernelSetup::with_windows(WINDOWS.to_vec());
    if !full {
        for r in [
            &mut s.rules.price_spike,
            &mut s.rules.volume_spike,
            &mut s.rules.rsi,
            &mut s.rules.latency,
            &mut s.rules.sequence_gap,
            &mut s.rules.stale_feed,
            &mut s.rules.crossed_book,
        ] {
            r.enabled = false;
        }
        s.overview.top_n = 0;
    }
    s
}

/// Runs 2 M trades first so every indicator is past its lookback.
fn warm_kernel(full: bool) -> (IndicatorKernel, Feed) {
    let reg = registry();
    let mut k = IndicatorKernel::new(&reg, &setup(full));
    let mut g = Feed::new();
    let mut out = Vec::with_capacity(1024);
    for _ in 0..2_000_000 {
        k.step(g.next(), &mut out);
        out.clear();
    }
    (k, g)
}

fn per_trade(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernel_per_trade");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(30);

    group.bench_function("harness/generator", |b| {
        let mut g = Feed::new();
        b.iter(|| black_box(g.next().price));
    });

    for (name, full) in [("tickwire/full", true), ("tickwire/indicators_only", false)] {
        group.bench_function(name, |b| {
            let (mut k, mut g) = warm_kernel(full);
            let mut out: Vec<Event> = Vec::with_capacity(1024);
            b.iter(|| {
                k.step(g.next(), &mut out);
                black_box(out.last());
                out.clear();
            });
        });
    }

    group.bench_function("ta_crate_baseline", |b| {
        let mut base = Baseline::new();
        let mut g = Feed::new();
        let mut out: Vec<TaOut> = Vec::with_capacity(1024);
        for _ in 0..2_000_000 {
            base.step(g.next(), &mut out);
            out.clear();
        }
        b.iter(|| {
            base.step(g.next(), &mut out);
            black_box(out.last());
            out.clear();
        });
    });
    group.finish();
}

/// The indicator math alone: one final close through the whole set, and one
/// provisional value (tickwire `peek` vs `ta` clone + next).
fn per_bar(c: &mut Criterion) {
    let mut group = c.benchmark_group("indicator_set_per_bar");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(30);
    let closes: Vec<f64> = {
        let mut g = Gen::new();
        (0..4096).map(|_| g.next().price as f64 / 100.0).collect()
    };

    struct Ours {
        sma: [Sma; 3],
        ema: [Ema; 2],
        rsi: Rsi,
        macd: Macd,
        bb: BollingerBands,
    }
    let ours = || Ours {
        sma: [Sma::new(20), Sma::new(50), Sma::new(200)],
        ema: [Ema::new(12), Ema::new(26)],
        rsi: Rsi::new(14),
        macd: Macd::new(12, 26, 9),
        bb: BollingerBands::new(20, 2.0, 2.0),
    };
    let mut o = ours();
    let mut t = TaSet::new();
    for x in &closes {
        for s in &mut o.sma {
            s.update(*x);
        }
        t.next(*x, 1.0);
    }
    let mut i = 0;
    group.bench_function("tickwire/update", |b| {
        b.iter(|| {
            let x = closes[i & 4095];
            i += 1;
            let r = (
                o.sma[0].update(x),
                o.sma[1].update(x),
                o.sma[2].update(x),
                o.ema[0].update(x),
                o.ema[1].update(x),
                o.rsi.update(x),
                o.macd.update(x),
                o.bb.update(x),
            );
            black_box(r)
        });
    });
    group.bench_function("ta_crate/next", |b| {
        b.iter(|| {
            let x = closes[i & 4095];
            i += 1;
            black_box(t.next(x, 1.0))
        });
    });
    group.bench_function("tickwire/peek", |b| {
        b.iter(|| {
            let x = closes[i & 4095];
            i += 1;
            let r = (
                o.sma[0].peek(x),
                o.sma[1].peek(x),
                o.sma[2].peek(x),
                o.ema[0].peek(x),
                o.ema[1].peek(x),
                o.rsi.peek(x),
                o.macd.peek(x),
                o.bb.peek(x),
            );
            black_box(r)
        });
    });
    group.bench_function("ta_crate/clone_next", |b| {
        b.iter(|| {
            let x = closes[i & 4095];
            i += 1;
            let mut c = t.clone();
            black_box(c.next(x, 1.0))
        });
    });
    group.finish();
}

criterion_group!(benches, per_trade, per_bar);
criterion_main!(benches);
