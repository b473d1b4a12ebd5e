//! The built-in simulated market: a deterministic, seeded generator of
//! trades and quotes in Binance combined-stream wire format.
//!
//! Per symbol: a random walk in whole ticks of the instrument's price
//! precision, with volatility bursts (a regime that jumps up with small
//! probability and decays back), volume clusters (trade sizes log-normal,
//! scaled by the same activity regime), a 1–3 tick spread, and sequential
//! trade ids and book update ids. Arrival times are Poisson at the
//! configured rate on a virtual clock starting at `start_ns`; the same seed
//! and start give the same frames byte for byte.
//!
//! Frames are the JSON a Binance stream would send
//! (`{"stream":"btcusdt@trade","data":{"e":"trade",...}}` and
//! `...@bookTicker`), so they take the same decode path as a live feed.

use std::io::Write as _;

use super::{FrameSource, SourcePoll};
use crate::clock::Clock;
use crate::config::SimConfig;
use crate::decimal::{POW10, format_scaled, parse_scaled};
use crate::instruments::InstrumentRegistry;

/// SplitMix64: small, fast, deterministic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    #[inline]
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-300);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    /// Index below `n` (n > 0).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

#[derive(Debug, Clone)]
struct SymState {
    lower: String,
    upper: String,
    price_precision: u8,
    size_precision: u8,
    /// Mid price in price units (ticks).
    px: i64,
    /// Activity/volatility regime multiplier, ≥ 1.
    regime: f64,
    trade_id: u64,
    /// Typical trade size in size units.
    base_size: f64,
}

/// Deterministic simulated market source.
#[derive(Debug)]
pub struct SimSource {
    rng: Rng,
    syms: Vec<SymState>,
    cfg: SimConfig,
    /// Virtual event time of the next message.
    next_event_ns: i64,
    /// Wall (engine clock) time corresponding to virtual `start`.
    wall_start_ns: Option<i64>,
    start_ns: i64,
    emitted: u64,
    update_id: u64,
}

impl SimSource {
    /// A simulator for every instrument of `venue` in `registry`.
    /// `sim_prices` gives starting prices by instrument key (default 100).
    pub fn new(
        registry: &InstrumentRegistry,
        venue: &str,
        sim_prices: &[(String, String)],
        cfg: SimConfig,
    ) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let syms = registry
            .of_venue(venue)
            .map(|i| {
                let start = sim_prices
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&i.key))
                    .and_then(|(_, p)| parse_scaled(p, i.price_precision).ok())
                    .unwrap_or(100 * POW10[usize::from(i.price_precision)]);
                // Typical trade ≈ 1000 currency units of notional.
                let px_f = start as f64 / POW10[usize::from(i.price_precision)] as f64;
                let base_units = (1000.0 / px_f).max(1e-12);
                let base_size = (base_units * POW10[usize::from(i.size_precision)] as f64).max(1.0);
                SymState {
                    lower: i.symbol.to_ascii_lowercase(),
                    upper: i.symbol.clone(),
                    price_precision: i.price_precision,
                    size_precision: i.size_precision,
                    px: start.max(10),
                    regime: 1.0 + rng.f64(),
                    trade_id: 1_000_000 + rng.below(1_000_000) as u64,
                    base_size,
                }
            })
            .collect();
        Self {
            rng,
            syms,
            start_ns: cfg.start_ns,
            next_event_ns: cfg.start_ns,
            cfg,
            wall_start_ns: None,
            emitted: 0,
            update_id: 1,
        }
    }

    /// Messages emitted so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Writes the next frame into `buf` with event time `ts_ns`, advancing
    /// the market. Exposed for tests and benches that want raw frames.
    pub fn generate(&mut self, buf: &mut Vec<u8>, ts_ns: i64) {
        if self.syms.is_empty() {
            return;
        }
        let k = self.rng.below(self.syms.len());
        let is_trade = self.rng.f64() < self.cfg.trade_ratio;
        let z = self.rng.normal();
        let jump = self.rng.f64();
        let size_noise = self.rng.normal();
        let spread_ticks = 1 + self.rng.below(3) as i64;
        let s = &mut self.syms[k];
        // Volatility regime: rare bursts, exponential decay towards 1.
        if jump < 0.0005 {
            s.regime = (s.regime * 4.0).min(20.0);
        }
        s.regime = 1.0 + (s.regime - 1.0) * 0.999;
        // Price step in ticks: ~ 1 bp of price per message at regime 1,
        // at least a fraction of a tick.
        let tick_bps = (s.px as f64 * 1e-5).max(0.3);
        let step = (z * tick_bps * s.regime.sqrt()).round() as i64;
        s.px = (s.px + step).max(10);
        let ms = ts_ns / 1_000_000;
        if is_trade {
            s.trade_id += 1;
            let q = (s.base_size * (0.8 * size_noise).exp() * s.regime)
                .round()
                .max(1.0) as i64;
            let maker = z < 0.0;
            let _ = write!(
                buf,
                r#"{{"stream":"{}@trade","data":{{"e":"trade","E":{ms},"s":"{}","t":{},"p":"{}","q":"{}","T":{ms},"m":{maker},"M":true}}}}"#,
                s.lower,
                s.upper,
                s.trade_id,
                format_scaled(s.px, s.price_precision),
                format_scaled(q, s.size_precision),
            );
        } else {
            self.update_id += 1;
            let bid = s.px - spread_ticks / 2;
            let ask = bid + spread_ticks;
            let bq = (s.base_size * 3.0 * (0.7 * size_noise).exp())
                .round()
                .max(1.0) as i64;
            let aq = (s.base_size * 3.0 * (-0.7 * size_noise).exp())
                .round()
                .max(1.0) as i64;
            let _ = write!(
                buf,
                r#"{{"stream":"{}@bookTicker","data":{{"u":{},"s":"{}","b":"{}","B":"{}","a":"{}","A":"{}"}}}}"#,
                s.lower,
                self.update_id,
                s.upper,
                format_scaled(bid, s.price_precision),
                format_scaled(bq, s.size_precision),
                format_scaled(ask, s.price_precision),
                format_scaled(aq, s.size_precision),
            );
        }
        self.emitted += 1;
    }

    fn advance_time(&mut self) {
        let gap = if self.cfg.rate > 0.0 {
            // Poisson arrivals: exponential gaps with mean 1/rate.
            let u = self.rng.f64().max(1e-12);
            (-u.ln() / self.cfg.rate * 1e9) as i64
        } else {
            1_000
        };
        self.next_event_ns += gap.max(1);
    }
}

impl FrameSource for SimSource {
    fn poll_frame(&mut self, buf: &mut Vec<u8>, clock: &Clock) -> SourcePoll {
        if self.cfg.messages > 0 && self.emitted >= self.cfg.messages {
            return SourcePoll::Done;
        }
        if self.syms.is_empty() {
            return SourcePoll::Done;
        }
        let now = clock.now_ns();
        let wall_start = *self.wall_start_ns.get_or_insert_with(|| {
            if self.start_ns == 0 {
                self.start_ns = now;
                self.next_event_ns = now;
            }
            now
        });
        let mut recv_ns = now;
        if self.cfg.rate > 0.0 && self.cfg.paced {
            let due = wall_start + (self.next_event_ns - self.start_ns);
            if now < due {
                return SourcePoll::Idle;
            }
            if self.cfg.stamp_scheduled {
                recv_ns = due;
            }
        }
        let ts = self.next_event_ns;
        self.generate(buf, ts);
        self.advance_time();
        SourcePoll::Frame { recv_ns }
    }

    fn name(&self) -> &str {
        "sim"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;

    fn sim(seed: u64) -> SimSource {
        let c = EngineConfig::default();
        let reg = c.registry().unwrap();
        let prices: Vec<_> = c
            .instruments
            .iter()
            .map(|i| (i.symbol.clone(), i.sim_price.clone().unwrap_or_default()))
            .collect();
        SimSource::new(
            &reg,
            "SIM",
            &prices,
            SimConfig {
                seed,
                rate: 0.0,
                paced: true,
                messages: 500,
                trade_ratio: 0.4,
                start_ns: 1_700_000_000_000_000_000,
                stamp_scheduled: false,
            },
        )
    }

    fn frames(mut s: SimSource) -> Vec<String> {
        let clock = Clock::new();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match s.poll_frame(&mut buf, &clock) {
                SourcePoll::Frame { .. } => out.push(String::from_utf8(buf.clone()).unwrap()),
                SourcePoll::Done => break,
                SourcePoll::Idle => unreachable!("rate 0 never idles"),
            }
        }
        out
    }

    #[test]
    fn deterministic_per_seed() {
        let a = frames(sim(1));
        let b = frames(sim(1));
        let c = frames(sim(2));
        assert_eq!(a.len(), 500);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn frames_are_valid_binance_json() {
        let fr = frames(sim(3));
        let mut trades = 0;
        for f in &fr {
            let v: serde_json::Value = serde_json::from_str(f).unwrap();
            let stream = v["stream"].as_str().unwrap();
            if stream.ends_with("@trade") {
                trades += 1;
                assert_eq!(v["data"]["e"], "trade");
                assert!(v["data"]["p"].as_str().unwrap().parse::<f64>().unwrap() > 0.0);
            } else {
                assert!(stream.ends_with("@bookTicker"));
                let b: f64 = v["data"]["b"].as_str().unwrap().parse().unwrap();
                let a: f64 = v["data"]["a"].as_str().unwrap().parse().unwrap();
                assert!(a > b, "never crossed: {f}");
            }
        }
        assert!(trades > 100 && trades < 300, "trade ratio ≈ 0.4: {trades}");
    }

    #[test]
    fn rng_is_uniformish() {
        let mut r = Rng::new(9);
        let mean: f64 = (0..10_000).map(|_| r.f64()).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02);
        let nmean: f64 = (0..10_000).map(|_| r.normal()).sum::<f64>() / 10_000.0;
        assert!(nmean.abs() < 0.05);
    }
}
