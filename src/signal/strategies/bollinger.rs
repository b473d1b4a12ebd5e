//! Bollinger band breakout or reversion.
//!
//! The close is *above* (close > upper), *below* (close < lower) or
//! *inside* the bands. A signal fires on the bar where the close enters the
//! above or below zone from another zone (the first defined bar only sets
//! the zone). Breakout: above → `buy`, below → `sell`. Reversion: above →
//! `sell`, below → `buy`. Strength: `0.5 + (distance beyond the band) /
//! (upper − lower)`, capped at 1.

use super::{Once, clamp01};
use crate::signal::events::{SignalReason, StrategyKind};
use crate::signal::strategy::{IndicatorKey, SignalDraft, Strategy, StrategyInput, bb_k_milli};
use crate::tick::Side;

/// Trade with the break or against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BollingerMode {
    /// Buy above the upper band, sell below the lower.
    Breakout,
    /// Sell above the upper band, buy below the lower.
    Reversion,
}

#[derive(Debug, Clone, Copy)]
struct State {
    zone: i8,
    once: Once,
}

impl Default for State {
    fn default() -> Self {
        Self {
            zone: i8::MIN,
            once: Once::default(),
        }
    }
}

/// Bollinger band strategy.
#[derive(Debug, Clone)]
pub struct BollingerStrategy {
    period: u16,
    k: f64,
    mode: BollingerMode,
    state: Vec<State>,
}

impl BollingerStrategy {
    /// Bands of `period` closes at `k` standard deviations.
    pub fn new(period: u16, k: f64, mode: BollingerMode, instruments: usize) -> Self {
        Self {
            period,
            k,
            mode,
            state: vec![State::default(); instruments],
        }
    }
}

impl Strategy for BollingerStrategy {
    fn kind(&self) -> StrategyKind {
        StrategyKind::Bollinger
    }

    fn needs(&self) -> Vec<IndicatorKey> {
        let k = bb_k_milli(self.k);
        vec![
            IndicatorKey::BbUpper(self.period, k),
            IndicatorKey::BbMiddle(self.period, k),
            IndicatorKey::BbLower(self.period, k),
        ]
    }

    fn on_bar(&mut self, input: &StrategyInput) -> Option<SignalDraft> {
        let (upper, middle, lower) = input.ind.bb(self.period, self.k)?;
        let close = input.price;
        if !close.is_finite() {
            return None;
        }
        let st = self.state.get_mut(input.instrument.0 as usize)?;
        let zone: i8 = if close > upper {
            1
        } else if close < lower {
            -1
        } else {
            0
        };
        let prev = st.zone;
        if input.is_final {
            st.zone = zone;
        }
        if prev == i8::MIN || zone == 0 || zone == prev {
            return None;
        }
        if !st.once.first(input.start_ns, zone) {
            return None;
        }
        let width = (upper - lower).max(f64::MIN_POSITIVE);
        let beyond = if zone > 0 {
            close - upper
        } else {
            lower - close
        };
        let buy = match self.mode {
            BollingerMode::Breakout => zone > 0,
            BollingerMode::Reversion => zone < 0,
        };
        Some(SignalDraft {
            side: if buy { Side::Buy } else { Side::Sell },
            strength: clamp01(0.5 + beyond / width),
            reason: if zone > 0 {
                SignalReason::BbAboveUpper
            } else {
                SignalReason::BbBelowLower
            },
            values: [upper, middle, lower],
        })
    }
}
