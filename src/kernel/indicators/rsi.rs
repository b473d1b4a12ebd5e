//! Wilder's relative strength index, equal to TA-Lib's `TA_RSI`.

use super::{check_period, is_valid_input};

/// Wilder's RSI over `period` price changes (TA-Lib `TA_RSI`).
///
/// Follows TA-Lib's classic (non-Metastock) algorithm with its exact
/// operation order:
///
/// 1. The first `period` changes are summed into gains and losses, each sum
///    multiplied by `1 / period`; the first value is produced by the
///    `period + 1`-th accepted input (lookback `period`).
/// 2. Every later change updates `avg = (avg * (period - 1) + move) * (1 / period)`
///    for both averages.
/// 3. The output is `100 * (gain / (gain + loss))`, or exactly 0 when
///    `gain + loss == 0` (a flat window), as TA-Lib 0.8.1 does. (Older
///    releases compared `gain + loss` with a small epsilon, 1e-8 in 0.4;
///    that only differs when every change in the window is far below any
///    price tick.)
///
/// Period 1, which TA-Lib rejects, follows the same formula: 100 after a
/// rise, 0 after a fall or an unchanged close.
///
/// The state is a handful of scalars, so the type is `Copy`.
///
/// # Example
///
/// ```text
/// let mut rsi = Rsi::new(3);
/// for x in [10.0, 11.0, 10.5] { assert_eq!(rsi.update(x), None); }
/// // gains (1 + 1.5) / 3, losses 0.5 / 3 -> 100 * 2.5 / 3
/// assert!((rsi.update(12.0).unwrap() - 250.0 / 3.0).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rsi {
    period: usize,
    /// `period - 1`, as a float.
    period_minus_one: f64,
    /// `1 / period`.
    inv_period: f64,
    count: usize,
    prev_close: f64,
    avg_gain: f64,
    avg_loss: f64,
    value: Option<f64>,
}

impl Rsi {
    /// Creates an RSI over `period` changes.
    ///
    /// # Panics
    ///
    /// Panics if `period` is 0 or greater than [`super::MAX_PERIOD`].
    #[track_caller]
    pub fn new(period: usize) -> Self {
        check_period("RSI period", period);
        Self {
            period,
            period_minus_one: (period - 1) as f64,
            inv_period: 1.0 / period as f64,
            count: 0,
            prev_close: 0.0,
            avg_gain: 0.0,
            avg_loss: 0.0,
            value: None,
        }
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// TA-Lib's output formula, with its zero guard.
    #[inline]
    fn output(gain: f64, loss: f64) -> f64 {
        let total = gain + loss;
        if total != 0.0 {
            100.0 * (gain / total)
        } else {
            0.0
        }
    }

    /// Feeds one close; returns the RSI once `period + 1` closes were seen.
    ///
    /// A NaN, infinite or out-of-range input (see
    /// [`super::MAX_INPUT_MAGNITUDE`]) is ignored and returns `None`.
    #[inline]
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if !is_valid_input(x) {
            return None;
        }
        self.count = self.count.saturating_add(1);
        if self.count == 1 {
            self.prev_close = x;
            return None;
        }
        let change = x - self.prev_close;
        self.prev_close = x;
        if self.value.is_none() {
            // Seeding: plain sums of the first `period` changes.
            if change < 0.0 {
                self.avg_loss -= change;
            } else {
                self.avg_gain += change;
            }
            if self.count <= self.period {
                return None;
            }
            self.avg_gain *= self.inv_period;
            self.avg_loss *= self.inv_period;
        } else {
            self.avg_loss *= self.period_minus_one;
            self.avg_gain *= self.period_minus_one;
            if change < 0.0 {
                self.avg_loss -= change;
            } else {
                self.avg_gain += change;
            }
            self.avg_loss *= self.inv_period;
            self.avg_gain *= self.inv_period;
        }
        let v = Self::output(self.avg_gain, self.avg_loss);
        self.value = Some(v);
        Some(v)
    }

    /// The value `update(x)` would return, without changing any state.
    #[inline]
    pub fn peek(&self, x: f64) -> Option<f64> {
        let mut scratch = *self;
        scratch.update(x)
    }

    /// The latest value, `None` until the lookback is complete.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// True once a value has been produced.
    pub fn is_initialized(&self) -> bool {
        self.value.is_some()
    }

    /// Number of accepted inputs since construction or the last reset.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Inputs consumed before the first value (TA-Lib lookback: `period`).
    pub fn lookback(&self) -> usize {
        self.period
    }

    /// Returns to the freshly constructed state.
    pub fn reset(&mut self) {
        *self = Self::new(self.period);
    }
}

#[cfg(test)]
mod tests {
    use super::super::reference::{self, XorShift, assert_series_close, price_series};
    use super::*;
    use proptest::prelude::*;

    fn run(rsi: &mut Rsi, xs: &[f64]) -> Vec<Option<f64>> {
        xs.iter()
            .map(|&x| {
                let before = *rsi;
                let peeked = rsi.peek(x);
                assert_eq!(before, *rsi, "peek must not change state");
                let got = rsi.update(x);
                assert_eq!(peeked, got, "peek must equal update");
                got
            })
            .collect()
    }

    #[test]
    fn hand_checked_example() {
        let mut rsi = Rsi::new(3);
        let out = run(&mut rsi, &[10.0, 11.0, 10.5, 12.0, 11.0, 11.0]);
        assert_eq!(&out[..3], &[None, None, None]);
        // changes +1, -0.5, +1.5: gain 2.5/3, loss 0.5/3 -> 100 * 2.5 / 3
        assert!((out[3].unwrap() - 250.0 / 3.0).abs() < 1e-12);
        // change -1: gain (2.5/3 * 2) / 3 = 5/9, loss (0.5/3 * 2 + 1) / 3 = 4/9
        assert!((out[4].unwrap() - 500.0 / 9.0).abs() < 1e-12);
        // change 0: gain 10/27, loss 8/27 -> 100 * 10 / 18
        assert!((out[5].unwrap() - 1000.0 / 18.0).abs() < 1e-12);
    }

    #[test]
    fn first_output_at_index_period() {
        let xs = XorShift::new(1).random_walk(40, 61837.63, 0.003);
        let mut rsi = Rsi::new(14);
        assert_eq!(rsi.lookback(), 14);
        let out = run(&mut rsi, &xs);
        assert!(out[..14].iter().all(Option::is_none));
        assert!(out[14..].iter().all(Option::is_some));
    }

    #[test]
    fn constant_series_gives_zero() {
        // No gain and no loss: TA-Lib returns 0, not 50.
        let mut rsi = Rsi::new(14);
        for v in run(&mut rsi, &[61837.63; 50]).into_iter().skip(14) {
            assert_eq!(v, Some(0.0));
        }
    }

    #[test]
    fn monotonic_series_saturate() {
        let up: Vec<f64> = (0..40).map(|i| 100.0 + i as f64 * 0.5).collect();
        let mut rsi = Rsi::new(14);
        for v in run(&mut rsi, &up).into_iter().skip(14) {
            assert_eq!(v, Some(100.0));
        }
        let down: Vec<f64> = up.iter().rev().copied().collect();
        let mut rsi = Rsi::new(14);
        for v in run(&mut rsi, &down).into_iter().skip(14) {
            assert_eq!(v, Some(0.0));
        }
    }

    #[test]
    fn period_one() {
        let mut rsi = Rsi::new(1);
        assert_eq!(rsi.lookback(), 1);
        let out = run(&mut rsi, &[5.0, 6.0, 4.0, 4.0, 4.5]);
        assert_eq!(
            out,
            vec![None, Some(100.0), Some(0.0), Some(0.0), Some(100.0)]
        );
    }

    #[test]
    fn non_finite_inputs_are_ignored() {
        let clean = XorShift::new(21).random_walk(60, 100.0, 0.01);
        let mut rsi = Rsi::new(14);
        let mut got = Vec::new();
        for &x in &clean {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let before = rsi;
                assert_eq!(rsi.peek(bad), None);
                assert_eq!(rsi.update(bad), None);
                assert_eq!(before, rsi);
            }
            got.push(rsi.update(x));
        }
        assert_eq!(rsi.count(), clean.len());
        assert_eq!(got, run(&mut Rsi::new(14), &clean));
    }

    #[test]
    fn reset_then_replay_is_identical() {
        let xs = XorShift::new(33).random_walk(300, 61837.63, 0.002);
        let mut rsi = Rsi::new(14);
        let first = run(&mut rsi, &xs);
        rsi.reset();
        assert_eq!(rsi, Rsi::new(14));
        assert_eq!(first, run(&mut rsi, &xs));
    }

    #[test]
    fn output_is_bounded_on_long_runs() {
        let xs = XorShift::new(77).random_walk(100_000, 60_000.0, 0.001);
        let mut rsi = Rsi::new(14);
        for v in xs.iter().filter_map(|&x| rsi.update(x)) {
            assert!((0.0..=100.0).contains(&v), "{v}");
        }
    }

    #[test]
    #[should_panic(expected = "RSI period")]
    fn zero_period_panics() {
        let _ = Rsi::new(0);
    }

    #[test]
    fn matches_talib_golden_values() {
        use super::super::reference::GOLDEN_CLOSES;
        // TA-Lib RSI(5) on GOLDEN_CLOSES: bit-identical.
        const RSI5_TALIB: [(usize, f64); 4] = [
            (5, 45.97119929646981),
            (6, 62.946209808133915),
            (20, 37.38452975949617),
            (39, 74.71723009731289),
        ];
        let out = run(&mut Rsi::new(5), &GOLDEN_CLOSES);
        assert!(out[..5].iter().all(Option::is_none));
        for (i, want) in RSI5_TALIB {
            assert_eq!(out[i], Some(want), "index {i}");
        }
    }

    proptest! {
        #[test]
        fn matches_reference(xs in price_series(), period in 1usize..60) {
            let mut rsi = Rsi::new(period);
            let got = run(&mut rsi, &xs);
            let want = reference::rsi(&xs, period);
            assert_series_close(&got, &want, 100.0, |v| [*v]);
            // Same operations in the same order: bit-identical.
            prop_assert_eq!(got, want);
        }
    }
}
