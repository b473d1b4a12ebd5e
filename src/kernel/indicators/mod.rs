//! Incremental (streaming) technical indicators whose values equal TA-Lib's
//! batch functions.
//!
//! Every indicator is fed one closed bar at a time with `update`, costs O(1)
//! per bar and never allocates after `new`. Each one reproduces the TA-Lib
//! batch function of the same name (default compatibility, unstable period 0),
//! matched operation for operation against TA-Lib 0.8.1 (the C library in the
//! `TA-Lib` 0.8.2 Python wheel) so that the values agree to float rounding:
//!
//! | indicator | TA-Lib function | first output at input index |
//! | --- | --- | --- |
//! | [`Sma`] | `TA_SMA` | `period - 1` |
//! | [`Ema`] | `TA_EMA` | `period - 1` |
//! | [`Rsi`] | `TA_RSI` | `period` |
//! | [`Macd`] | `TA_MACD` | `slow - 1 + signal - 1` (33 for 12/26/9) |
//! | [`BollingerBands`] | `TA_BBANDS` with `TA_MAType_SMA` | `period - 1` |
//!
//! # Common API
//!
//! * `new(..)` validates the parameters and allocates everything the
//!   indicator will ever need (ring buffers are `Box<[f64]>` sized there).
//! * `update(x)` consumes one close and returns the new value once the
//!   lookback is complete, `None` before.
//! * `peek(x)` returns what `update(x)` would return, without changing any
//!   state (the provisional value of a still-forming bar).
//! * `value()`, `is_initialized()`, `count()`, `lookback()` and `reset()`.
//!
//! # Rejected inputs
//!
//! An input that is NaN, infinite, or larger in magnitude than
//! [`MAX_INPUT_MAGNITUDE`] is ignored: `update` returns `None`, nothing is
//! counted and no state changes, and `peek` returns `None` for it. The
//! magnitude bound keeps every intermediate (sums of squares included)
//! finite, so no output is ever NaN or infinite.
//!
//! # Periods
//!
//! Periods must be in `1..=`[`MAX_PERIOD`] (TA-Lib's upper bound); `new`
//! panics otherwise. TA-Lib itself only accepts period 1 for SMA and EMA;
//! this module also accepts it elsewhere, with the behaviour documented on
//! each type.
//!
//! # Agreement with TA-Lib (operation order)
//!
//! * SMA: TA-Lib keeps an uncompensated running sum; [`Sma`] uses a
//!   Neumaier-compensated running sum instead, so it agrees with TA-Lib to
//!   float rounding on finite series and does not drift on endless ones.
//! * EMA and MACD: seed with the plain left-to-right sum divided by the
//!   period, then step with `fma(x - prev, k, prev)`, which is what TA-Lib
//!   0.8 computes (it fuses `((x - prev) * k) + prev`), giving bit-identical
//!   values. A period-1 EMA is the identity, as in TA-Lib.
//! * RSI: Wilder smoothing `(avg * (n - 1) + move) * (1 / n)`, output
//!   `100 * (gain / (gain + loss))`, or 0 when `gain + loss` is exactly 0,
//!   bit-identical to TA-Lib 0.8.1.
//! * BBANDS: the middle band is the SMA; the standard deviation follows
//!   TA-Lib 0.8's cancellation-free variance (running sums of deviations from
//!   a shift, re-anchored on the window mean by a fresh two-pass every
//!   `32 * period` bars or when cancellation is detected). Older TA-Lib
//!   versions (0.4/0.6) computed `mean(x^2) - mean(x)^2` instead, which loses
//!   about eight digits of the variance at prices near 60 000; the bands of
//!   both agree to far better than 1e-9 relative on real prices.

mod bollinger;
mod ema;
mod macd;
mod rsi;
mod sma;

#[cfg(test)]
pub(crate) mod reference;

pub use self::bollinger::{BollingerBands, BollingerOutput};
pub use self::ema::Ema;
pub use self::macd::{Macd, MacdOutput};
pub use self::rsi::Rsi;
pub use self::sma::Sma;

/// Largest accepted period (TA-Lib's limit for every function here).
pub const MAX_PERIOD: usize = 100_000;

/// Largest accepted input magnitude; larger inputs are ignored like NaN.
///
/// With `|x| <= 1e150` the squares and window sums used internally stay far
/// below `f64::MAX`, so no intermediate can overflow to infinity.
pub const MAX_INPUT_MAGNITUDE: f64 = 1e150;

/// True if `x` is an input the indicators accept (finite, not too large).
#[inline]
fn is_valid_input(x: f64) -> bool {
    // NaN fails the comparison, infinities exceed the bound.
    x.abs() <= MAX_INPUT_MAGNITUDE
}

/// Panics unless `period` is in `1..=MAX_PERIOD`.
#[inline]
#[track_caller]
fn check_period(what: &str, period: usize) {
    assert!(
        (1..=MAX_PERIOD).contains(&period),
        "{what} must be in 1..={MAX_PERIOD}, got {period}"
    );
}

/// One EMA step exactly as TA-Lib 0.8 computes it: `fma(x - prev, k, prev)`.
///
/// A period-1 EMA (`k == 1`) is the identity, as in TA-Lib.
#[inline]
fn ema_step(x: f64, prev: f64, k: f64) -> f64 {
    if k == 1.0 {
        x
    } else {
        (x - prev).mul_add(k, prev)
    }
}

/// TA-Lib's smoothing factor for an EMA of `period`: `2 / (period + 1)`.
#[inline]
fn ema_k(period: usize) -> f64 {
    2.0 / (period as f64 + 1.0)
}

/// A Neumaier-compensated running sum (Kahan–Babuška).
///
/// `sum + comp` tracks the exact sum of everything added to within a few ulps
/// of the result, however many values pass through, which is what keeps a
/// sliding-window sum from drifting away from a fresh sum of its window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Neumaier {
    sum: f64,
    comp: f64,
}

impl Neumaier {
    /// Adds `x`, carrying the rounding error of the addition in `comp`.
    #[inline]
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }

    /// The compensated total.
    #[inline]
    fn total(&self) -> f64 {
        self.sum + self.comp
    }
}
