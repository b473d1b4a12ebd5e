//! Simple moving average, equal to TA-Lib's `TA_SMA`.

use super::{Neumaier, check_period, is_valid_input};

/// Simple moving average of the last `period` closes (TA-Lib `TA_SMA`).
///
/// The first value is produced by the `period`-th accepted input (lookback
/// `period - 1`). Period 1 is the identity.
///
/// # Drift protection
///
/// The window sum is a running sum updated in O(1) (add the new close,
/// subtract the one leaving the window), compensated with Neumaier's
/// algorithm: the rounding error of every addition and subtraction is carried
/// in a second accumulator, so after any number of updates the sum still
/// equals a fresh sum of the window to within a few ulps. TA-Lib's batch
/// function keeps an uncompensated running sum; the two agree to float
/// rounding on any series TA-Lib is normally run on.
///
/// # Example
///
/// ```text
/// let mut sma = Sma::new(3);
/// assert_eq!(sma.update(1.0), None);
/// assert_eq!(sma.update(2.0), None);
/// assert_eq!(sma.update(3.0), Some(2.0));
/// assert_eq!(sma.update(4.0), Some(3.0));
/// ```
#[derive(Debug, Clone)]
pub struct Sma {
    period: usize,
    /// Last `period` accepted closes; `head` is the next slot to write, which
    /// once the ring is full holds the oldest close of the window.
    ring: Box<[f64]>,
    head: usize,
    count: usize,
    sum: Neumaier,
    value: Option<f64>,
}

impl Sma {
    /// Creates an SMA over `period` closes, allocating its ring buffer.
    ///
    /// # Panics
    ///
    /// Panics if `period` is 0 or greater than [`super::MAX_PERIOD`].
    #[track_caller]
    pub fn new(period: usize) -> Self {
        check_period("SMA period", period);
        Self {
            period,
            ring: vec![0.0; period].into_boxed_slice(),
            head: 0,
            count: 0,
            sum: Neumaier::default(),
            value: None,
        }
    }

    /// The averaging period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Window sum after taking `x` in (and dropping the oldest close if the
    /// window is full), without changing state.
    #[inline]
    fn next_sum(&self, x: f64) -> Neumaier {
        let mut sum = self.sum;
        if self.count >= self.period {
            sum.add(-self.ring[self.head]);
        }
        sum.add(x);
        sum
    }

    /// Feeds one close; returns the average once `period` closes were seen.
    ///
    /// A NaN, infinite or out-of-range input (see
    /// [`super::MAX_INPUT_MAGNITUDE`]) is ignored and returns `None`.
    #[inline]
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if !is_valid_input(x) {
            return None;
        }
        self.sum = self.next_sum(x);
        self.ring[self.head] = x;
        self.head += 1;
        if self.head == self.period {
            self.head = 0;
        }
        self.count = self.count.saturating_add(1);
        if self.count >= self.period {
            let v = self.sum.total() / self.period as f64;
            self.value = Some(v);
            Some(v)
        } else {
            None
        }
    }

    /// The value `update(x)` would return, without changing any state.
    #[inline]
    pub fn peek(&self, x: f64) -> Option<f64> {
        if !is_valid_input(x) || self.count.saturating_add(1) < self.period {
            return None;
        }
        Some(self.next_sum(x).total() / self.period as f64)
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

    /// Returns to the freshly constructed state without allocating.
    pub fn reset(&mut self) {
        self.ring.fill(0.0);
        self.head = 0;
        self.count = 0;
        self.sum = Neumaier::default();
        self.value = None;
    }
}

#[cfg(test)]
mod tests {
    use super::super::reference::{self, XorShift, assert_series_close, price_series, scale_of};
    use super::*;
    use proptest::prelude::*;

    fn run(sma: &mut Sma, xs: &[f64]) -> Vec<Option<f64>> {
        xs.iter()
            .map(|&x| {
                let peeked = sma.peek(x);
                let got = sma.update(x);
                assert_eq!(peeked, got, "peek must equal update");
                got
            })
            .collect()
    }

    #[test]
    fn hand_checked_example() {
        let mut sma = Sma::new(3);
        let out = run(&mut sma, &[1.0, 2.0, 3.0, 4.0, 10.0, -2.0]);
        // (1+2+3)/3, (2+3+4)/3, (3+4+10)/3, (4+10-2)/3
        assert_eq!(
            out,
            vec![
                None,
                None,
                Some(2.0),
                Some(3.0),
                Some(17.0 / 3.0),
                Some(4.0)
            ]
        );
        assert_eq!(sma.value(), Some(4.0));
        assert_eq!(sma.count(), 6);
        assert_eq!(sma.lookback(), 2);
    }

    #[test]
    fn period_one_is_identity() {
        let mut sma = Sma::new(1);
        assert_eq!(sma.lookback(), 0);
        for &x in &[61837.63, 0.1, -3.5, 1e-300, 7.0, 61837.63] {
            assert_eq!(sma.update(x), Some(x));
        }
    }

    #[test]
    fn no_output_before_lookback() {
        let mut sma = Sma::new(20);
        for i in 0..19 {
            assert_eq!(sma.update(100.0 + i as f64), None);
            assert!(!sma.is_initialized());
            assert_eq!(sma.value(), None);
        }
        assert_eq!(sma.update(119.0), Some(109.5));
        assert!(sma.is_initialized());
    }

    #[test]
    fn constant_series_is_within_an_ulp() {
        let mut sma = Sma::new(20);
        let outs = run(&mut sma, &[61837.63; 100]);
        for v in outs.into_iter().skip(19) {
            // fl(20 * x) / 20 need not be x itself (TA-Lib shows the same
            // one-ulp offset); it must be within an ulp.
            let v = v.unwrap();
            assert!((v - 61837.63).abs() <= 61837.63 * f64::EPSILON, "{v}");
        }
    }

    #[test]
    fn non_finite_inputs_are_ignored() {
        let clean = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut dirty = Sma::new(3);
        let mut got = Vec::new();
        for &x in &clean {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e200] {
                let before = dirty.value();
                assert_eq!(dirty.peek(bad), None);
                assert_eq!(dirty.update(bad), None);
                assert_eq!(dirty.value(), before);
            }
            got.push(dirty.update(x));
        }
        assert_eq!(dirty.count(), clean.len());
        assert_eq!(got, run(&mut Sma::new(3), &clean));
    }

    #[test]
    fn reset_then_replay_is_identical() {
        let xs = XorShift::new(7).random_walk(500, 61837.63, 0.002);
        let mut sma = Sma::new(20);
        let first = run(&mut sma, &xs);
        sma.reset();
        assert_eq!(sma.count(), 0);
        assert_eq!(sma.value(), None);
        assert!(!sma.is_initialized());
        let second = run(&mut sma, &xs);
        assert_eq!(first, second);
    }

    #[test]
    fn peek_leaves_state_unchanged() {
        let xs = XorShift::new(11).random_walk(100, 100.0, 0.01);
        let mut sma = Sma::new(10);
        for &x in &xs {
            let before = format!("{sma:?}");
            let _ = sma.peek(x * 1.5);
            assert_eq!(before, format!("{sma:?}"));
            sma.update(x);
        }
    }

    #[test]
    #[should_panic(expected = "SMA period")]
    fn zero_period_panics() {
        let _ = Sma::new(0);
    }

    #[test]
    #[should_panic(expected = "SMA period")]
    fn oversized_period_panics() {
        let _ = Sma::new(super::super::MAX_PERIOD + 1);
    }

    #[test]
    fn long_run_does_not_drift() {
        let mut rng = XorShift::new(0x5eed);
        let n = 20;
        let mut sma = Sma::new(n);
        let mut sma200 = Sma::new(200);
        let mut window = std::collections::VecDeque::with_capacity(200);
        let mut p = 60_000.0;
        for _ in 0..1_000_000 {
            p += rng.normal() * 30.0;
            sma.update(p);
            sma200.update(p);
            if window.len() == 200 {
                window.pop_front();
            }
            window.push_back(p);
        }
        let last: Vec<f64> = window.iter().copied().collect();
        for (ind, n) in [(&sma, n), (&sma200, 200)] {
            let fresh: f64 = last[last.len() - n..].iter().sum::<f64>() / n as f64;
            let got = ind.value().unwrap();
            let rel = (got - fresh).abs() / fresh.abs();
            assert!(
                rel <= 1e-9,
                "SMA({n}) drifted: {got} vs {fresh} (rel {rel:e})"
            );
            // In practice the compensated sum is essentially exact.
            assert!(
                rel <= 1e-14,
                "SMA({n}) drifted: {got} vs {fresh} (rel {rel:e})"
            );
        }
    }

    #[test]
    fn matches_talib_golden_values() {
        use super::super::reference::{GOLDEN_CLOSES, assert_near_talib};
        // TA-Lib SMA(5) on GOLDEN_CLOSES.
        const SMA5_TALIB: [(usize, f64); 4] = [
            (4, 61841.064),
            (5, 61839.598),
            (20, 61909.274),
            (39, 61834.216),
        ];
        let out = run(&mut Sma::new(5), &GOLDEN_CLOSES);
        assert!(out[..4].iter().all(Option::is_none));
        for (i, want) in SMA5_TALIB {
            assert_near_talib(out[i].unwrap(), want);
        }
    }

    proptest! {
        #[test]
        fn matches_reference(xs in price_series(), period in 1usize..60) {
            let mut sma = Sma::new(period);
            let got = run(&mut sma, &xs);
            let want = reference::sma(&xs, period);
            assert_series_close(&got, &want, scale_of(&xs), |v| [*v]);
            prop_assert_eq!(sma.count(), xs.len());
        }
    }
}
