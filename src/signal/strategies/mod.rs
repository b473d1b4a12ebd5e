//! Built-in strategies: moving-average crossover, RSI mean reversion and
//! Bollinger breakout/reversion. Each signals exactly on the bar where its
//! crossing happens and never elsewhere (see each type for the rule).
//!
//! Provisional bars (when a strategy is configured with
//! `on_provisional = true`) are evaluated against the last *final* state
//! without committing it; a crossing seen on a provisional update is
//! signalled once, and the final bar of the same window does not signal the
//! same crossing again.

mod bollinger;
mod ma_cross;
mod rsi;

pub use bollinger::{BollingerMode, BollingerStrategy};
pub use ma_cross::{MaCrossover, MaKind};
pub use rsi::RsiReversion;

/// Remembers the last signal per bar window so one crossing is signalled
/// once, whether first seen on a provisional or on the final update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Once {
    start_ns: i64,
    dir: i8,
}

impl Default for Once {
    fn default() -> Self {
        Self {
            start_ns: i64::MIN,
            dir: 0,
        }
    }
}

impl Once {
    /// `true` the first time `(start_ns, dir)` is seen.
    #[inline]
    pub(crate) fn first(&mut self, start_ns: i64, dir: i8) -> bool {
        if self.start_ns == start_ns && self.dir == dir {
            return false;
        }
        self.start_ns = start_ns;
        self.dir = dir;
        true
    }
}

#[inline]
pub(crate) fn clamp01(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}
