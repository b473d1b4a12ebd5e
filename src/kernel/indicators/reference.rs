//! Test-only naive batch re-implementations of the five TA-Lib functions,
//! plus shared test helpers (deterministic RNG, proptest strategies and
//! tolerance checks).
//!
//! The batch functions are written directly from TA-Lib's definitions and
//! deliberately share no code with the incremental indicators: every window
//! is summed from scratch, and the standard deviation is a two-pass
//! computation over the window. They return one entry per input, `None` where
//! TA-Lib produces no output.

use super::{BollingerOutput, MacdOutput};
use proptest::collection::vec;
use proptest::prelude::*;

/// Plain left-to-right sum starting from +0.0 (as TA-Lib's loops do).
fn plain_sum(xs: &[f64]) -> f64 {
    xs.iter().fold(0.0, |acc, &x| acc + x)
}

/// One EMA step as TA-Lib 0.8 computes it (period 1 is the identity).
fn ema_next(x: f64, prev: f64, period: usize) -> f64 {
    if period == 1 {
        x
    } else {
        let k = 2.0 / (period as f64 + 1.0);
        (x - prev).mul_add(k, prev)
    }
}

/// `TA_SMA`: each window summed from scratch.
pub(crate) fn sma(xs: &[f64], period: usize) -> Vec<Option<f64>> {
    (0..xs.len())
        .map(|i| (i + 1 >= period).then(|| plain_sum(&xs[i + 1 - period..=i]) / period as f64))
        .collect()
}

/// `TA_EMA`: seeded with the SMA of the first `period` values.
pub(crate) fn ema(xs: &[f64], period: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; xs.len()];
    if xs.len() < period {
        return out;
    }
    let mut prev = plain_sum(&xs[..period]) / period as f64;
    out[period - 1] = Some(prev);
    for i in period..xs.len() {
        prev = ema_next(xs[i], prev, period);
        out[i] = Some(prev);
    }
    out
}

/// `TA_RSI` (Wilder), first output at index `period`.
pub(crate) fn rsi(xs: &[f64], period: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; xs.len()];
    if xs.len() <= period {
        return out;
    }
    let n = period as f64;
    let inv = 1.0 / n;
    let mut gain = 0.0;
    let mut loss = 0.0;
    for i in 1..=period {
        let d = xs[i] - xs[i - 1];
        if d < 0.0 {
            loss -= d;
        } else {
            gain += d;
        }
    }
    gain *= inv;
    loss *= inv;
    let rsi_of = |gain: f64, loss: f64| {
        let total = gain + loss;
        if total != 0.0 {
            100.0 * (gain / total)
        } else {
            0.0
        }
    };
    out[period] = Some(rsi_of(gain, loss));
    for i in period + 1..xs.len() {
        let d = xs[i] - xs[i - 1];
        let (up, down) = if d < 0.0 { (0.0, -d) } else { (d, 0.0) };
        gain = (gain * (n - 1.0) + up) * inv;
        loss = (loss * (n - 1.0) + down) * inv;
        out[i] = Some(rsi_of(gain, loss));
    }
    out
}

/// `TA_MACD`: the fast EMA is seeded over the `fast` values ending where the
/// slow seed ends; the signal EMA is seeded with the mean of the first
/// `signal` MACD values.
pub(crate) fn macd(xs: &[f64], fast: usize, slow: usize, signal: usize) -> Vec<Option<MacdOutput>> {
    let (fast, slow) = if slow < fast {
        (slow, fast)
    } else {
        (fast, slow)
    };
    let mut out = vec![None; xs.len()];
    if xs.len() < slow {
        return out;
    }
    // Both EMA series, defined from index slow - 1.
    let mut fast_ema = vec![0.0; xs.len()];
    let mut slow_ema = vec![0.0; xs.len()];
    fast_ema[slow - 1] = plain_sum(&xs[slow - fast..slow]) / fast as f64;
    slow_ema[slow - 1] = plain_sum(&xs[..slow]) / slow as f64;
    for i in slow..xs.len() {
        fast_ema[i] = ema_next(xs[i], fast_ema[i - 1], fast);
        slow_ema[i] = ema_next(xs[i], slow_ema[i - 1], slow);
    }
    let line: Vec<f64> = (slow - 1..xs.len())
        .map(|i| fast_ema[i] - slow_ema[i])
        .collect();
    // Signal line over the MACD line.
    let signal_line = ema(&line, signal);
    for (j, s) in signal_line.iter().enumerate() {
        if let Some(s) = *s {
            let m = line[j];
            out[slow - 1 + j] = Some(MacdOutput {
                macd: m,
                signal: s,
                hist: m - s,
            });
        }
    }
    out
}

/// `TA_BBANDS` with an SMA middle band and a two-pass population standard
/// deviation per window. The variance is floored to 0 when it is below
/// `1e-12` of the mean squared deviation about the computed mean (the one
/// dead zone TA-Lib 0.8 keeps: such a window is flat to the rounding of its
/// own mean).
pub(crate) fn bbands(
    xs: &[f64],
    period: usize,
    dev_up: f64,
    dev_dn: f64,
) -> Vec<Option<BollingerOutput>> {
    (0..xs.len())
        .map(|i| {
            if i + 1 < period {
                return None;
            }
            let w = &xs[i + 1 - period..=i];
            let n = period as f64;
            let mean = plain_sum(w) / n;
            let dev_sum = w.iter().fold(0.0, |acc, &x| acc + (x - mean));
            let sq_sum = w.iter().fold(0.0, |acc, &x| acc + (x - mean) * (x - mean));
            let d = dev_sum / n;
            let mut var = sq_sum / n - d * d;
            if var < 1e-12 * (sq_sum / n) {
                var = 0.0;
            }
            let sd = if var > 0.0 { var.sqrt() } else { 0.0 };
            Some(BollingerOutput {
                upper: mean + sd * dev_up,
                middle: mean,
                lower: mean - sd * dev_dn,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Test helpers.
// ---------------------------------------------------------------------------

/// 40 closes on a 0.01 tick around 61837.63 (index 17 repeats index 16).
/// The `*_TALIB` constants in the indicator tests are the outputs of the real
/// TA-Lib 0.8.1 (Python wheel `TA-Lib` 0.8.2) for this series.
pub(crate) const GOLDEN_CLOSES: [f64; 40] = [
    61853.83, 61865.56, 61849.49, 61820.03, 61816.41, 61846.5, 61879.84, 61902.55, 61911.21,
    61951.21, 61982.03, 61976.52, 61949.97, 61940.86, 61930.36, 61947.55, 61900.07, 61900.07,
    61937.07, 61914.06, 61895.1, 61892.99, 61857.54, 61854.3, 61853.91, 61853.8, 61829.08,
    61819.94, 61836.28, 61818.42, 61832.1, 61848.49, 61812.81, 61796.68, 61813.06, 61825.4,
    61829.88, 61821.17, 61823.88, 61870.75,
];

/// Asserts `got` equals the TA-Lib value `want` to 1e-14 relative (SMA-based
/// values: TA-Lib's running sum is uncompensated, ours is compensated).
pub(crate) fn assert_near_talib(got: f64, want: f64) {
    let rel = (got - want).abs() / want.abs().max(f64::MIN_POSITIVE);
    assert!(rel <= 1e-14, "got {got:?}, TA-Lib {want:?} (rel {rel:e})");
}

/// Deterministic xorshift64* generator for reproducible test series.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Multiplicative random walk starting at `start` with relative step
    /// standard deviation `vol`.
    pub(crate) fn random_walk(&mut self, len: usize, start: f64, vol: f64) -> Vec<f64> {
        let mut p = start;
        (0..len)
            .map(|_| {
                p *= 1.0 + vol * self.normal();
                p
            })
            .collect()
    }
}

/// Series shapes for property tests: realistic random walks, tick-grid prices
/// with flat stretches, tiny, huge and mixed-sign magnitudes, and constants.
pub(crate) fn price_series() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        (1.0f64..100_000.0, vec(-0.01f64..0.01, 0..400)).prop_map(|(start, steps)| {
            let mut p = start;
            steps
                .into_iter()
                .map(|s| {
                    p *= 1.0 + s;
                    p
                })
                .collect()
        }),
        (100i64..10_000_000, vec(-2i64..=2, 0..400)).prop_map(|(start, steps)| {
            // Prices on a 0.01 grid such as 61837.63, with repeated values.
            let mut cents = start;
            steps
                .into_iter()
                .map(|d| {
                    cents += d;
                    cents as f64 / 100.0
                })
                .collect()
        }),
        vec(1e-9f64..1e-3, 0..400),
        vec(1e6f64..1e12, 0..400),
        vec(-1e6f64..1e6, 0..400),
        (1.0f64..100_000.0, 0usize..400).prop_map(|(v, n)| vec![v; n]),
    ]
}

/// Largest input magnitude, the natural absolute scale of price-like outputs.
pub(crate) fn scale_of(xs: &[f64]) -> f64 {
    xs.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// `a` and `b` agree to 1e-9 relative, or to 1e-12 of `scale` in absolute
/// terms for values near zero.
pub(crate) fn close(a: f64, b: f64, scale: f64) -> bool {
    let diff = (a - b).abs();
    diff <= 1e-9 * a.abs().max(b.abs()) || diff <= 1e-12 * scale
}

/// Asserts both series produce output at exactly the same indices and that
/// every component of every output is finite and `close`.
pub(crate) fn assert_series_close<T: std::fmt::Debug, const K: usize>(
    got: &[Option<T>],
    want: &[Option<T>],
    scale: f64,
    parts: impl Fn(&T) -> [f64; K],
) {
    assert_eq!(got.len(), want.len(), "series lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        match (g, w) {
            (None, None) => {}
            (Some(g), Some(w)) => {
                for (a, b) in parts(g).into_iter().zip(parts(w)) {
                    assert!(a.is_finite(), "non-finite output at {i}: {g:?}");
                    assert!(
                        close(a, b, scale),
                        "mismatch at index {i}: got {g:?}, want {w:?} (scale {scale})"
                    );
                }
            }
            _ => panic!("output presence differs at index {i}: got {g:?}, want {w:?}"),
        }
    }
}
