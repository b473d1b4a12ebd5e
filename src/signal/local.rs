//! Indicators the stage computes itself, from bar closes, for values its
//! strategies need and the input does not carry (the kernel publishes a
//! fixed set; a strategy may ask for other periods).
//!
//! Uses the kernel's TA-Lib-exact incremental indicators, so a locally
//! computed SMA(20) equals the kernel's. Each (instrument, window) is
//! advanced once per final bar (a repeated final update of the same window
//! start does not advance it again); provisional bars use `peek`. Values
//! already present in the input are kept (the kernel's take precedence).

use crate::kernel::indicators::{BollingerBands, Ema, Macd, Rsi, Sma};
use crate::signal::strategy::{IndicatorKey, StrategyInput};

#[derive(Debug, Clone)]
enum Calc {
    Sma(u16, Sma),
    Ema(u16, Ema),
    Rsi(u16, Rsi),
    Macd((u16, u16, u16), Macd),
    Bb((u16, u16), BollingerBands),
}

impl Calc {
    fn from_key(k: IndicatorKey) -> Option<Self> {
        let p = |n: u16| usize::from(n.max(1));
        Some(match k {
            IndicatorKey::None => return None,
            IndicatorKey::Sma(n) => Self::Sma(n, Sma::new(p(n))),
            IndicatorKey::Ema(n) => Self::Ema(n, Ema::new(p(n))),
            IndicatorKey::Rsi(n) => Self::Rsi(n, Rsi::new(p(n))),
            IndicatorKey::Macd(f, s, g)
            | IndicatorKey::MacdSignal(f, s, g)
            | IndicatorKey::MacdHist(f, s, g) => Self::Macd((f, s, g), Macd::new(p(f), p(s), p(g))),
            IndicatorKey::BbUpper(n, k)
            | IndicatorKey::BbMiddle(n, k)
            | IndicatorKey::BbLower(n, k) => {
                let kk = f64::from(k) / 1000.0;
                Self::Bb((n, k), BollingerBands::new(p(n), kk, kk))
            }
        })
    }

    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Sma(a, _), Self::Sma(b, _))
            | (Self::Ema(a, _), Self::Ema(b, _))
            | (Self::Rsi(a, _), Self::Rsi(b, _)) => a == b,
            (Self::Macd(a, _), Self::Macd(b, _)) => a == b,
            (Self::Bb(a, _), Self::Bb(b, _)) => a == b,
            _ => false,
        }
    }

    /// Advances (`commit`) or peeks, and writes the outputs not present.
    #[inline]
    fn apply(&mut self, x: f64, commit: bool, replay: bool, input: &mut StrategyInput) {
        let ind = &mut input.ind;
        let mut put = |k: IndicatorKey, v: Option<f64>| {
            if let Some(v) = v
                && !ind.has(k)
            {
                ind.set(k, v);
            }
        };
        match self {
            Self::Sma(n, c) => {
                let v = if replay {
                    c.value()
                } else if commit {
                    c.update(x)
                } else {
                    c.peek(x)
                };
                put(IndicatorKey::Sma(*n), v);
            }
            Self::Ema(n, c) => {
                let v = if replay {
                    c.value()
                } else if commit {
                    c.update(x)
                } else {
                    c.peek(x)
                };
                put(IndicatorKey::Ema(*n), v);
            }
            Self::Rsi(n, c) => {
                let v = if replay {
                    c.value()
                } else if commit {
                    c.update(x)
                } else {
                    c.peek(x)
                };
                put(IndicatorKey::Rsi(*n), v);
            }
            Self::Macd((f, s, g), c) => {
                let v = if replay {
                    c.value()
                } else if commit {
                    c.update(x)
                } else {
                    c.peek(x)
                };
                if let Some(m) = v {
                    put(IndicatorKey::Macd(*f, *s, *g), Some(m.macd));
                    put(IndicatorKey::MacdSignal(*f, *s, *g), Some(m.signal));
                    put(IndicatorKey::MacdHist(*f, *s, *g), Some(m.hist));
                }
            }
            Self::Bb((n, k), c) => {
                let v = if replay {
                    c.value()
                } else if commit {
                    c.update(x)
                } else {
                    c.peek(x)
                };
                if let Some(b) = v {
                    put(IndicatorKey::BbUpper(*n, *k), Some(b.upper));
                    put(IndicatorKey::BbMiddle(*n, *k), Some(b.middle));
                    put(IndicatorKey::BbLower(*n, *k), Some(b.lower));
                }
            }
        }
    }
}

/// Locally computed indicators per (instrument, window).
#[derive(Debug, Clone)]
pub struct LocalIndicators {
    windows: usize,
    calcs: Vec<Vec<Calc>>,
    last_final_start: Vec<i64>,
}

impl LocalIndicators {
    /// `needs[w]` lists the keys strategies on window `w` read; every
    /// instrument gets its own instances. Empty `needs` computes nothing.
    pub fn new(instruments: usize, needs: &[Vec<IndicatorKey>]) -> Self {
        let windows = needs.len().max(1);
        let per_window: Vec<Vec<Calc>> = (0..windows)
            .map(|w| {
                let mut v: Vec<Calc> = Vec::new();
                for k in needs.get(w).map(Vec::as_slice).unwrap_or(&[]) {
                    if let Some(c) = Calc::from_key(*k)
                        && !v.iter().any(|x| x.same(&c))
                    {
                        v.push(c);
                    }
                }
                v
            })
            .collect();
        let mut calcs = Vec::with_capacity(instruments * windows);
        for _ in 0..instruments {
            calcs.extend(per_window.iter().cloned());
        }
        Self {
            windows,
            calcs,
            last_final_start: vec![i64::MIN; instruments * windows],
        }
    }

    /// Fills missing values of `input` from the local instances.
    #[inline]
    pub fn fill(&mut self, input: &mut StrategyInput) {
        let w = usize::from(input.window_idx);
        if w >= self.windows || !input.price.is_finite() {
            return;
        }
        let idx = input.instrument.0 as usize * self.windows + w;
        let Some(cs) = self.calcs.get_mut(idx) else {
            return;
        };
        if cs.is_empty() {
            return;
        }
        let last = &mut self.last_final_start[idx];
        let (commit, replay) = if input.is_final {
            if input.start_ns > *last {
                *last = input.start_ns;
                (true, false)
            } else {
                (false, true)
            }
        } else {
            (false, false)
        };
        let x = input.price;
        for c in cs.iter_mut() {
            c.apply(x, commit, replay, input);
        }
    }
}
