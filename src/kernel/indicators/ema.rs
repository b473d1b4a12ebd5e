//! Exponential moving average, equal to TA-Lib's `TA_EMA`.

use super::{check_period, ema_k, ema_step, is_valid_input};

/// Exponential moving average with `k = 2 / (period + 1)` (TA-Lib `TA_EMA`).
///
/// TA-Lib's default seeding: the first value, produced by the `period`-th
/// accepted input (lookback `period - 1`), is the simple average of the first
/// `period` inputs; every later value is `prev + k * (x - prev)`, computed as
/// TA-Lib 0.8 does, `fma(x - prev, k, prev)`. Period 1 is the identity.
///
/// The state is a handful of scalars, so the type is `Copy`.
///
/// # Example
///
/// ```text
/// let mut ema = Ema::new(3); // k = 0.5
/// assert_eq!(ema.update(2.0), None);
/// assert_eq!(ema.update(4.0), None);
/// assert_eq!(ema.update(6.0), Some(4.0)); // SMA seed
/// assert_eq!(ema.update(8.0), Some(6.0)); // 4 + 0.5 * (8 - 4)
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ema {
    period: usize,
    k: f64,
    count: usize,
    /// Sum of the first inputs while seeding (plain, as TA-Lib).
    seed_sum: f64,
    value: Option<f64>,
}

impl Ema {
    /// Creates an EMA over `period` closes.
    ///
    /// # Panics
    ///
    /// Panics if `period` is 0 or greater than [`super::MAX_PERIOD`].
    #[track_caller]
    pub fn new(period: usize) -> Self {
        check_period("EMA period", period);
        Self {
            period,
            k: ema_k(period),
            count: 0,
            seed_sum: 0.0,
            value: None,
        }
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// The smoothing factor `k = 2 / (period + 1)`.
    pub fn k(&self) -> f64 {
        self.k
    }

    /// Feeds one close; returns the EMA once `period` closes were seen.
    ///
    /// A NaN, infinite or out-of-range input (see
    /// [`super::MAX_INPUT_MAGNITUDE`]) is ignored and returns `None`.
    #[inline]
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if !is_valid_input(x) {
            return None;
        }
        self.count = self.count.saturating_add(1);
        let next = match self.value {
            Some(prev) => ema_step(x, prev, self.k),
            None => {
                self.seed_sum += x;
                if self.count < self.period {
                    return None;
                }
                self.seed_sum / self.period as f64
            }
        };
        self.value = Some(next);
        Some(next)
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

    /// Inputs consumed before the first value (TA-Lib lookback: `period - 1`).
    pub fn lookback(&self) -> usize {
        self.period - 1
    }

    /// Returns to the freshly constructed state.
    pub fn reset(&mut self) {
        *self = Self::new(self.period);
    }
}

#[cfg(test)]
mod tests {
    use super::super::reference::{self, XorShift, assert_series_close, price_series, scale_of};
    use super::*;
    use proptest::prelude::*;

    fn run(ema: &mut Ema, xs: &[f64]) -> Vec<Option<f64>> {
        xs.iter()
            .map(|&x| {
                let before = *ema;
                let peeked = ema.peek(x);
                assert_eq!(before, *ema, "peek must not change state");
                let got = ema.update(x);
                assert_eq!(peeked, got, "peek must equal update");
                got
            })
            .collect()
    }

    #[test]
    fn hand_checked_example() {
        // k = 2 / (3 + 1) = 0.5, every intermediate exact.
        let mut ema = Ema::new(3);
        assert_eq!(ema.k(), 0.5);
        let out = run(&mut ema, &[2.0, 4.0, 6.0, 8.0, 3.0, 3.0]);
        // seed (2+4+6)/3 = 4; 4+.5*(8-4) = 6; 6+.5*(3-6) = 4.5; 4.5+.5*(3-4.5) = 3.75
        assert_eq!(
            out,
            vec![None, None, Some(4.0), Some(6.0), Some(4.5), Some(3.75)]
        );

        // k = 0.4: seed 2.5, then 2.5 + 0.4 * 7.5 = 5.5, 5.5 + 0.4 * -0.5 = 5.3.
        let mut ema = Ema::new(4);
        let out = run(&mut ema, &[1.0, 2.0, 3.0, 4.0, 10.0, 5.0]);
        assert_eq!(out[3], Some(2.5));
        assert!((out[4].unwrap() - 5.5).abs() < 1e-15);
        assert!((out[5].unwrap() - 5.3).abs() < 1e-15);
    }

    #[test]
    fn first_value_is_the_sma_of_the_first_period() {
        let xs = XorShift::new(3).random_walk(30, 61837.63, 0.003);
        let mut ema = Ema::new(12);
        let out = run(&mut ema, &xs);
        let sma: f64 = xs[..12].iter().fold(0.0, |a, &x| a + x) / 12.0;
        assert_eq!(out[11], Some(sma));
        assert!(out[..11].iter().all(Option::is_none));
        assert_eq!(ema.lookback(), 11);
    }

    #[test]
    fn period_one_is_identity() {
        let mut ema = Ema::new(1);
        assert_eq!(ema.lookback(), 0);
        for &x in &[61837.63, 0.1, -3.5, 2.748720905406188, 7.0] {
            assert_eq!(ema.update(x), Some(x));
        }
    }

    #[test]
    fn constant_series_stays_constant() {
        let mut ema = Ema::new(26);
        for v in run(&mut ema, &[100.25; 200]).into_iter().skip(25) {
            assert_eq!(v, Some(100.25));
        }
    }

    #[test]
    fn non_finite_inputs_are_ignored() {
        let clean = XorShift::new(5).random_walk(50, 100.0, 0.01);
        let mut ema = Ema::new(5);
        let mut got = Vec::new();
        for &x in &clean {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1e151] {
                let before = ema;
                assert_eq!(ema.peek(bad), None);
                assert_eq!(ema.update(bad), None);
                assert_eq!(before, ema);
            }
            got.push(ema.update(x));
        }
        assert_eq!(ema.count(), clean.len());
        assert_eq!(got, run(&mut Ema::new(5), &clean));
    }

    #[test]
    fn reset_then_replay_is_identical() {
        let xs = XorShift::new(9).random_walk(300, 61837.63, 0.002);
        let mut ema = Ema::new(12);
        let first = run(&mut ema, &xs);
        ema.reset();
        assert_eq!(ema, Ema::new(12));
        assert_eq!(first, run(&mut ema, &xs));
    }

    #[test]
    #[should_panic(expected = "EMA period")]
    fn zero_period_panics() {
        let _ = Ema::new(0);
    }

    #[test]
    fn matches_talib_golden_values() {
        use super::super::reference::GOLDEN_CLOSES;
        // TA-Lib EMA(5) on GOLDEN_CLOSES: bit-identical.
        const EMA5_TALIB: [(usize, f64); 4] = [
            (4, 61841.064),
            (5, 61842.876),
            (20, 61912.63194738024),
            (39, 61838.853465570304),
        ];
        let out = run(&mut Ema::new(5), &GOLDEN_CLOSES);
        assert!(out[..4].iter().all(Option::is_none));
        for (i, want) in EMA5_TALIB {
            assert_eq!(out[i], Some(want), "index {i}");
        }
    }

    proptest! {
        #[test]
        fn matches_reference(xs in price_series(), period in 1usize..60) {
            let mut ema = Ema::new(period);
            let got = run(&mut ema, &xs);
            let want = reference::ema(&xs, period);
            assert_series_close(&got, &want, scale_of(&xs), |v| [*v]);
            // Same operations in the same order: bit-identical.
            prop_assert_eq!(got, want);
        }
    }
}
