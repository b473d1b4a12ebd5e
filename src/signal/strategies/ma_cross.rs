//! Moving-average crossover.
//!
//! Signals `buy` (`ma_cross_up`) on the bar where `fast − slow` turns from
//! negative to positive, `sell` (`ma_cross_down`) where it turns from
//! positive to negative. Bars where the difference is exactly zero do not
//! change the side (a touch is not a cross), and the first bar with both
//! averages defined only sets the side. Strength: the swing of the
//! difference across the crossing, `(|diff_before| + |diff_now|) / slow`,
//! relative to `full_strength_pct` percent (capped at 1).

use super::{Once, clamp01};
use crate::signal::events::{SignalReason, StrategyKind};
use crate::signal::strategy::{IndicatorKey, SignFlip, SignalDraft, Strategy, StrategyInput};
use crate::tick::Side;

/// Which average.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaKind {
    /// Simple.
    Sma,
    /// Exponential.
    Ema,
}

#[derive(Debug, Clone, Copy, Default)]
struct State {
    flip: SignFlip,
    prev_diff: f64,
    once: Once,
}

/// Fast/slow moving-average crossover.
#[derive(Debug, Clone)]
pub struct MaCrossover {
    fast: u16,
    slow: u16,
    ma: MaKind,
    full_strength: f64,
    state: Vec<State>,
}

impl MaCrossover {
    /// A crossover of `fast` over `slow` periods for `instruments`
    /// instruments; a swing of `full_strength_pct` percent of the slow
    /// average gives strength 1.
    pub fn new(
        fast: u16,
        slow: u16,
        ma: MaKind,
        full_strength_pct: f64,
        instruments: usize,
    ) -> Self {
        Self {
            fast,
            slow,
            ma,
            full_strength: (full_strength_pct / 100.0).max(f64::MIN_POSITIVE),
            state: vec![State::default(); instruments],
        }
    }

    fn keys(&self) -> (IndicatorKey, IndicatorKey) {
        match self.ma {
            MaKind::Sma => (IndicatorKey::Sma(self.fast), IndicatorKey::Sma(self.slow)),
            MaKind::Ema => (IndicatorKey::Ema(self.fast), IndicatorKey::Ema(self.slow)),
        }
    }
}

impl Strategy for MaCrossover {
    fn kind(&self) -> StrategyKind {
        StrategyKind::MaCrossover
    }

    fn needs(&self) -> Vec<IndicatorKey> {
        let (f, s) = self.keys();
        vec![f, s]
    }

    fn on_bar(&mut self, input: &StrategyInput) -> Option<SignalDraft> {
        let (kf, ks) = self.keys();
        let (fast, slow) = (input.ind.get(kf)?, input.ind.get(ks)?);
        let st = self.state.get_mut(input.instrument.0 as usize)?;
        let diff = fast - slow;
        let prev = st.prev_diff;
        let dir = if input.is_final {
            let d = st.flip.update(diff);
            if diff != 0.0 {
                st.prev_diff = diff;
            }
            d
        } else {
            st.flip.peek(diff)
        };
        if dir == 0 || !st.once.first(input.start_ns, dir) {
            return None;
        }
        let swing = (prev.abs() + diff.abs()) / slow.abs().max(f64::MIN_POSITIVE);
        Some(SignalDraft {
            side: if dir > 0 { Side::Buy } else { Side::Sell },
            strength: clamp01(swing / self.full_strength),
            reason: if dir > 0 {
                SignalReason::MaCrossUp
            } else {
                SignalReason::MaCrossDown
            },
            values: [fast, slow, 0.0],
        })
    }
}
