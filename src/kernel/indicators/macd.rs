//! Moving average convergence/divergence, equal to TA-Lib's `TA_MACD`.

use super::{check_period, ema_k, ema_step, is_valid_input};

/// One MACD output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacdOutput {
    /// MACD line: fast EMA minus slow EMA.
    pub macd: f64,
    /// Signal line: EMA of the MACD line.
    pub signal: f64,
    /// Histogram: `macd - signal`.
    pub hist: f64,
}

/// MACD with EMA periods `fast`, `slow` and `signal` (TA-Lib `TA_MACD`).
///
/// Reproduces TA-Lib's `TA_MACD` (not `TA_MACDFIX`): every EMA uses
/// `k = 2 / (period + 1)` and TA-Lib's seeding:
///
/// * the slow EMA is seeded with the average of the first `slow` inputs;
/// * the fast EMA is seeded with the average of the `fast` inputs that end on
///   the same bar as the slow seed (inputs `slow - fast ..= slow - 1`), not
///   with the first `fast` inputs;
/// * the MACD line starts at input `slow - 1`; the signal EMA is seeded with
///   the average of the first `signal` MACD values, so the first output comes
///   from input `slow - 1 + signal - 1` (33 for 12/26/9).
///
/// EMA steps are `fma(x - prev, k, prev)` as in TA-Lib 0.8. If `slow < fast`
/// the two are swapped, as TA-Lib does. A period of 1 (TA-Lib accepts it for
/// the signal only) is an identity EMA.
///
/// The state is a handful of scalars, so the type is `Copy`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Macd {
    fast_period: usize,
    slow_period: usize,
    signal_period: usize,
    fast_k: f64,
    slow_k: f64,
    signal_k: f64,
    count: usize,
    /// Seed sums (plain, as TA-Lib).
    fast_seed: f64,
    slow_seed: f64,
    signal_seed: f64,
    fast: f64,
    slow: f64,
    signal: f64,
    value: Option<MacdOutput>,
}

impl Macd {
    /// Creates a MACD; `Macd::new(12, 26, 9)` is the classic one.
    ///
    /// # Panics
    ///
    /// Panics if any period is 0 or greater than [`super::MAX_PERIOD`].
    #[track_caller]
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        check_period("MACD fast period", fast);
        check_period("MACD slow period", slow);
        check_period("MACD signal period", signal);
        let (fast, slow) = if slow < fast {
            (slow, fast)
        } else {
            (fast, slow)
        };
        Self {
            fast_period: fast,
            slow_period: slow,
            signal_period: signal,
            fast_k: ema_k(fast),
            slow_k: ema_k(slow),
            signal_k: ema_k(signal),
            count: 0,
            fast_seed: 0.0,
            slow_seed: 0.0,
            signal_seed: 0.0,
            fast: 0.0,
            slow: 0.0,
            signal: 0.0,
            value: None,
        }
    }

    /// The fast EMA period (after TA-Lib's swap, the smaller one).
    pub fn fast_period(&self) -> usize {
        self.fast_period
    }

    /// The slow EMA period (after TA-Lib's swap, the larger one).
    pub fn slow_period(&self) -> usize {
        self.slow_period
    }

    /// The signal EMA period.
    pub fn signal_period(&self) -> usize {
        self.signal_period
    }

    /// Feeds one close; returns the MACD once `lookback() + 1` closes were
    /// seen.
    ///
    /// A NaN, infinite or out-of-range input (see
    /// [`super::MAX_INPUT_MAGNITUDE`]) is ignored and returns `None`.
    #[inline]
    pub fn update(&mut self, x: f64) -> Option<MacdOutput> {
        if !is_valid_input(x) {
            return None;
        }
        self.count = self.count.saturating_add(1);
        if self.count <= self.slow_period {
            // Seeding both price EMAs; the fast window is the tail of the
            // slow one.
            self.slow_seed += x;
            if self.count > self.slow_period - self.fast_period {
                self.fast_seed += x;
            }
            if self.count < self.slow_period {
                return None;
            }
            self.slow = self.slow_seed / self.slow_period as f64;
            self.fast = self.fast_seed / self.fast_period as f64;
        } else {
            self.fast = ema_step(x, self.fast, self.fast_k);
            self.slow = ema_step(x, self.slow, self.slow_k);
        }
        let macd = self.fast - self.slow;
        // Index of this value in the MACD line (0 at input `slow - 1`).
        let line_index = self.count - self.slow_period;
        if self.value.is_none() {
            self.signal_seed += macd;
            if line_index + 1 < self.signal_period {
                return None;
            }
            self.signal = self.signal_seed / self.signal_period as f64;
        } else {
            self.signal = ema_step(macd, self.signal, self.signal_k);
        }
        let out = MacdOutput {
            macd,
            signal: self.signal,
            hist: macd - self.signal,
        };
        self.value = Some(out);
        Some(out)
    }

    /// The value `update(x)` would return, without changing any state.
    #[inline]
    pub fn peek(&self, x: f64) -> Option<MacdOutput> {
        let mut scratch = *self;
        scratch.update(x)
    }

    /// The latest value, `None` until the lookback is complete.
    pub fn value(&self) -> Option<MacdOutput> {
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

    /// Inputs consumed before the first value (TA-Lib lookback:
    /// `slow - 1 + signal - 1`, 33 for 12/26/9).
    pub fn lookback(&self) -> usize {
        self.slow_period - 1 + self.signal_period - 1
    }

    /// Returns to the freshly constructed state.
    pub fn reset(&mut self) {
        *self = Self::new(self.fast_period, self.slow_period, self.signal_period);
    }
}

#[cfg(test)]
mod tests {
    use super::super::reference::{self, XorShift, assert_series_close, price_series, scale_of};
    use super::*;
    use proptest::prelude::*;

    fn run(m: &mut Macd, xs: &[f64]) -> Vec<Option<MacdOutput>> {
        xs.iter()
            .map(|&x| {
                let before = *m;
                let peeked = m.peek(x);
                assert_eq!(before, *m, "peek must not change state");
                let got = m.update(x);
                assert_eq!(peeked, got, "peek must equal update");
                got
            })
            .collect()
    }

    fn parts(o: &MacdOutput) -> [f64; 3] {
        [o.macd, o.signal, o.hist]
    }

    #[test]
    fn hand_checked_example() {
        // fast 2 (k 2/3), slow 3 (k 1/2), signal 2 (k 2/3).
        let mut m = Macd::new(2, 3, 2);
        assert_eq!(m.lookback(), 3);
        let out = run(&mut m, &[1.0, 2.0, 3.0, 4.0, 6.0]);
        assert_eq!(&out[..3], &[None, None, None]);
        // slow seed (1+2+3)/3 = 2, fast seed over the LAST two seed bars
        // (2+3)/2 = 2.5 -> macd 0.5. Next bar: fast 2.5 + 2/3*1.5 = 3.5,
        // slow 2 + 1/2*2 = 3 -> macd 0.5; signal seed (0.5+0.5)/2 = 0.5.
        let o = out[3].unwrap();
        assert_eq!((o.macd, o.signal, o.hist), (0.5, 0.5, 0.0));
        // fast 3.5 + 2/3*2.5 = 31/6, slow 3 + 1/2*3 = 4.5 -> macd 2/3;
        // signal 0.5 + 2/3*(2/3-0.5) = 11/18; hist 1/18.
        let o = out[4].unwrap();
        assert!((o.macd - 2.0 / 3.0).abs() < 1e-12);
        assert!((o.signal - 11.0 / 18.0).abs() < 1e-12);
        assert!((o.hist - 1.0 / 18.0).abs() < 1e-12);
    }

    #[test]
    fn classic_first_output_at_33() {
        let mut m = Macd::new(12, 26, 9);
        assert_eq!(m.lookback(), 33);
        let xs = XorShift::new(12).random_walk(60, 61837.63, 0.002);
        let out = run(&mut m, &xs);
        assert!(out[..33].iter().all(Option::is_none));
        assert!(out[33..].iter().all(Option::is_some));
        assert_eq!(m.count(), 60);
    }

    #[test]
    fn fast_seed_ends_with_slow_seed() {
        // A spike in the first bar is part of the slow seed only.
        let mut xs = vec![100.0; 40];
        xs[0] = 1000.0;
        let mut m = Macd::new(3, 5, 1);
        let out = run(&mut m, &xs);
        let o = out[4].unwrap();
        // fast seed = mean(x2..x4) = 100, slow seed = (1000 + 4*100)/5 = 280.
        assert_eq!(o.macd, 100.0 - 280.0);
        // Signal period 1 is the identity.
        assert_eq!(o.signal, o.macd);
        assert_eq!(o.hist, 0.0);
    }

    #[test]
    fn periods_are_swapped_like_talib() {
        let xs = XorShift::new(4).random_walk(200, 100.0, 0.01);
        let a = run(&mut Macd::new(26, 12, 9), &xs);
        let b = run(&mut Macd::new(12, 26, 9), &xs);
        assert_eq!(a, b);
        let m = Macd::new(26, 12, 9);
        assert_eq!(
            (m.fast_period(), m.slow_period(), m.signal_period()),
            (12, 26, 9)
        );
    }

    #[test]
    fn constant_series_gives_zero() {
        let mut m = Macd::new(12, 26, 9);
        for o in run(&mut m, &[250.5; 100]).into_iter().flatten() {
            assert_eq!((o.macd, o.signal, o.hist), (0.0, 0.0, 0.0));
        }
    }

    #[test]
    fn non_finite_inputs_are_ignored() {
        let clean = XorShift::new(8).random_walk(80, 100.0, 0.01);
        let mut m = Macd::new(12, 26, 9);
        let mut got = Vec::new();
        for &x in &clean {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let before = m;
                assert_eq!(m.peek(bad), None);
                assert_eq!(m.update(bad), None);
                assert_eq!(before, m);
            }
            got.push(m.update(x));
        }
        assert_eq!(m.count(), clean.len());
        assert_eq!(got, run(&mut Macd::new(12, 26, 9), &clean));
    }

    #[test]
    fn reset_then_replay_is_identical() {
        let xs = XorShift::new(44).random_walk(300, 61837.63, 0.002);
        let mut m = Macd::new(12, 26, 9);
        let first = run(&mut m, &xs);
        m.reset();
        assert_eq!(m, Macd::new(12, 26, 9));
        assert_eq!(first, run(&mut m, &xs));
    }

    #[test]
    #[should_panic(expected = "MACD signal period")]
    fn zero_period_panics() {
        let _ = Macd::new(12, 26, 0);
    }

    #[test]
    fn matches_talib_golden_values() {
        use super::super::reference::GOLDEN_CLOSES;
        // TA-Lib MACD(3, 6, 4) on GOLDEN_CLOSES: bit-identical.
        const MACD_3_6_4_TALIB: [(usize, [f64; 3]); 4] = [
            (
                8,
                [15.041802721083513, 3.2028316326504864, 11.838971088433027],
            ),
            (
                9,
                [22.85807337220467, 11.064928328472162, 11.79314504373251],
            ),
            (
                20,
                [-7.44055347309768, -4.717614141575904, -2.7229393315217756],
            ),
            (
                39,
                [10.301082212259644, 3.5494094628619806, 6.751672749397663],
            ),
        ];
        let out = run(&mut Macd::new(3, 6, 4), &GOLDEN_CLOSES);
        assert!(out[..8].iter().all(Option::is_none));
        for (i, want) in MACD_3_6_4_TALIB {
            assert_eq!(parts(&out[i].unwrap()), want, "index {i}");
        }
    }

    proptest! {
        #[test]
        fn matches_reference(
            xs in price_series(),
            fast in 1usize..30,
            slow in 1usize..40,
            signal in 1usize..15,
        ) {
            let mut m = Macd::new(fast, slow, signal);
            let got = run(&mut m, &xs);
            let want = reference::macd(&xs, fast, slow, signal);
            assert_series_close(&got, &want, scale_of(&xs), parts);
            // Same operations in the same order: bit-identical.
            prop_assert_eq!(got, want);
        }
    }
}
