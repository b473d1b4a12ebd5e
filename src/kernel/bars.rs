//! OHLCV + VWAP bars over event-time windows aligned to UTC boundaries.
//!
//! A window of length `w` covers `[k·w, (k+1)·w)` ns since the Unix epoch,
//! so 1-minute bars start on the minute, 1-hour bars on the hour (UTC).
//! A bar becomes final when a trade of a later window arrives (or a
//! watermark passes its end); empty windows produce no bar. A trade whose
//! time falls in an already-finalized window, or in a window the caller's
//! watermark has already passed, is "late": counted, not applied.
//!
//! VWAP is accumulated exactly (`Σ price·size` in `i128` of scaled units)
//! and divided once, so it is as precise as an `f64` can hold.

use crate::decimal::POW10;
use crate::event::Bar;
use crate::instruments::InstrumentId;
use crate::tick::{Side, Tick};

/// What a trade did to a builder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TradeOutcome {
    /// Added to the open bar.
    Applied,
    /// No bar was open: opened one with this trade.
    Opened,
    /// Closed the previous bar (returned, final) and opened a new one.
    Rolled(Bar),
    /// Older than the open bar: not applied.
    Late,
}

/// Builds bars for one instrument and one window.
#[derive(Debug, Clone)]
pub struct BarBuilder {
    bar: Bar,
    open: bool,
    /// End of the open bar (exclusive), cached for the fast path.
    end_ns: i64,
    /// End of the last finalized bar: trades before it are late.
    closed_until_ns: i64,
    pv: i128,
    price_scale: f64,
}

impl BarBuilder {
    /// A builder with no open bar.
    pub fn new(
        instrument: InstrumentId,
        window_idx: u8,
        window_ns: i64,
        price_precision: u8,
    ) -> Self {
        Self {
            bar: Bar {
                instrument,
                window_idx,
                window_ns,
                ..Bar::default()
            },
            open: false,
            end_ns: i64::MIN,
            closed_until_ns: i64::MIN,
            pv: 0,
            price_scale: POW10[usize::from(price_precision.min(18))] as f64,
        }
    }

    /// Window start containing `ts_ns` (floor, also for negative times).
    #[inline]
    pub fn window_start(&self, ts_ns: i64) -> i64 {
        ts_ns.div_euclid(self.bar.window_ns) * self.bar.window_ns
    }

    /// Applies one trade tick. `watermark_ns` is the caller's event-time
    /// watermark: a trade whose window ended at or before it is late (pass
    /// `i64::MIN` for none).
    #[inline(always)]
    pub fn on_trade(&mut self, t: &Tick, watermark_ns: i64) -> TradeOutcome {
        let ts = t.ts_event_ns;
        if self.open && ts >= self.bar.start_ns && ts < self.end_ns {
            self.add(t);
            return TradeOutcome::Applied;
        }
        self.on_trade_new_window(t, watermark_ns)
    }

    /// The trade is outside the open bar (or none is open): late, roll, or
    /// open a bar.
    #[inline(never)]
    fn on_trade_new_window(&mut self, t: &Tick, watermark_ns: i64) -> TradeOutcome {
        let ts = t.ts_event_ns;
        let start = self.window_start(ts);
        if start < self.closed_until_ns
            || start.saturating_add(self.bar.window_ns) <= watermark_ns
            || (self.open && start < self.bar.start_ns)
        {
            return TradeOutcome::Late;
        }
        if self.open {
            let fin = self.finish();
            self.begin(start, t);
            TradeOutcome::Rolled(fin)
        } else {
            self.begin(start, t);
            TradeOutcome::Opened
        }
    }

    fn begin(&mut self, start: i64, t: &Tick) {
        self.open = true;
        self.pv = 0;
        self.end_ns = start.saturating_add(self.bar.window_ns);
        let b = &mut self.bar;
        b.start_ns = start;
        b.is_final = false;
        b.open = t.price;
        b.high = t.price;
        b.low = t.price;
        b.close = t.price;
        b.volume = 0;
        b.buy_volume = 0;
        b.sell_volume = 0;
        b.trades = 0;
        b.vwap = 0.0;
        self.add(t);
    }

    #[inline(always)]
    fn add(&mut self, t: &Tick) {
        let b = &mut self.bar;
        b.high = b.high.max(t.price);
        b.low = b.low.min(t.price);
        b.close = t.price;
        b.volume = b.volume.saturating_add(t.size);
        match t.side() {
            Side::Buy => b.buy_volume = b.buy_volume.saturating_add(t.size),
            Side::Sell => b.sell_volume = b.sell_volume.saturating_add(t.size),
            Side::None => {}
        }
        b.trades = b.trades.saturating_add(1);
        self.pv += i128::from(t.price) * i128::from(t.size);
    }

    fn snapshot(&self, is_final: bool) -> Bar {
        let mut b = self.bar;
        b.is_final = is_final;
        b.vwap = if b.volume > 0 {
            (self.pv as f64 / b.volume as f64) / self.price_scale
        } else {
            b.close as f64 / self.price_scale
        };
        b
    }

    fn finish(&mut self) -> Bar {
        self.open = false;
        self.closed_until_ns = self.end_ns;
        self.snapshot(true)
    }

    /// End (exclusive) of the open bar, if one is open.
    #[inline]
    pub fn open_end(&self) -> Option<i64> {
        self.open.then_some(self.end_ns)
    }

    /// Volume of the open bar so far (0 when none is open).
    #[inline]
    pub fn open_volume(&self) -> i64 {
        if self.open { self.bar.volume } else { 0 }
    }

    /// Start of the open bar, if one is open.
    #[inline]
    pub fn open_start(&self) -> Option<i64> {
        self.open.then_some(self.bar.start_ns)
    }

    /// Finalizes the open bar if its window ended at or before `watermark_ns`.
    pub fn close_if_ended(&mut self, watermark_ns: i64) -> Option<Bar> {
        if self.open && self.end_ns <= watermark_ns {
            Some(self.finish())
        } else {
            None
        }
    }

    /// The forming bar, provisional (`is_final == false`).
    pub fn provisional(&self) -> Option<Bar> {
        self.open.then(|| self.snapshot(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000_000_000;

    fn tr(ts: i64, px: i64, sz: i64, side: Side) -> Tick {
        Tick::trade(InstrumentId(0), ts, 0, px, sz, side, 0)
    }

    #[test]
    fn builds_and_rolls_on_utc_boundaries() {
        let mut b = BarBuilder::new(InstrumentId(0), 0, M, 2);
        let t0 = 1_723_161_240 * 1_000_000_000; // a minute boundary
        assert_eq!(
            b.on_trade(&tr(t0 + 5, 100, 2, Side::Buy), i64::MIN),
            TradeOutcome::Opened
        );
        assert_eq!(
            b.on_trade(&tr(t0 + 10, 110, 1, Side::Sell), i64::MIN),
            TradeOutcome::Applied
        );
        assert_eq!(
            b.on_trade(&tr(t0 + M - 1, 90, 1, Side::Buy), i64::MIN),
            TradeOutcome::Applied
        );
        let p = b.provisional().unwrap();
        assert!(!p.is_final);
        assert_eq!((p.open, p.high, p.low, p.close), (100, 110, 90, 90));
        let TradeOutcome::Rolled(fin) = b.on_trade(&tr(t0 + 3 * M, 95, 4, Side::Sell), i64::MIN)
        else {
            panic!("expected roll")
        };
        assert!(fin.is_final);
        assert_eq!(fin.start_ns, t0);
        assert_eq!(fin.end_ns(), t0 + M);
        assert_eq!((fin.open, fin.high, fin.low, fin.close), (100, 110, 90, 90));
        assert_eq!(
            (fin.volume, fin.buy_volume, fin.sell_volume, fin.trades),
            (4, 3, 1, 3)
        );
        // vwap = (100*2 + 110*1 + 90*1)/4 = 100 (price units at scale 2 → 1.00)
        assert!((fin.vwap - 1.0).abs() < 1e-15);
        // Empty minutes in between produced nothing; new bar starts at t0+3M.
        assert_eq!(b.provisional().unwrap().start_ns, t0 + 3 * M);
        // A trade in the past window is late.
        assert_eq!(
            b.on_trade(&tr(t0 + 5, 1, 1, Side::Buy), i64::MIN),
            TradeOutcome::Late
        );
        assert_eq!(b.close_if_ended(t0 + 4 * M - 1), None);
        assert!(b.close_if_ended(t0 + 4 * M).unwrap().is_final);
        assert_eq!(b.provisional(), None);
        // The window just closed by the watermark stays closed.
        assert_eq!(
            b.on_trade(&tr(t0 + 3 * M + 7, 1, 1, Side::Buy), i64::MIN),
            TradeOutcome::Late
        );
        // A later window opens again; one the watermark passed is late.
        assert_eq!(
            b.on_trade(&tr(t0 + 5 * M, 1, 1, Side::Buy), t0 + 6 * M),
            TradeOutcome::Late
        );
        assert_eq!(
            b.on_trade(&tr(t0 + 5 * M, 1, 1, Side::Buy), t0 + 6 * M - 1),
            TradeOutcome::Opened
        );
        assert_eq!(b.open_end(), Some(t0 + 6 * M));
        assert_eq!(b.open_volume(), 1);
    }

    #[test]
    fn negative_times_floor() {
        let b = BarBuilder::new(InstrumentId(0), 0, M, 2);
        assert_eq!(b.window_start(-1), -M);
        assert_eq!(b.window_start(0), 0);
    }
}
