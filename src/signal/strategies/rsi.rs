//! RSI mean reversion.
//!
//! Signals `buy` (`rsi_oversold`) on the bar where RSI crosses from at or
//! above `oversold` to below it, `sell` (`rsi_overbought`) where it crosses
//! from at or below `overbought` to above it. The first RSI value only sets
//! the state. Strength: `0.5 + 0.5 × depth`, where depth is how far into the
//! zone RSI went relative to the zone's width (`oversold − rsi` over
//! `oversold`; `rsi − overbought` over `100 − overbought`).

use super::{Once, clamp01};
use crate::signal::events::{SignalReason, StrategyKind};
use crate::signal::strategy::{IndicatorKey, SignalDraft, Strategy, StrategyInput};
use crate::tick::Side;

#[derive(Debug, Clone, Copy)]
struct State {
    prev: f64,
    once: Once,
}

impl Default for State {
    fn default() -> Self {
        Self {
            prev: f64::NAN,
            once: Once::default(),
        }
    }
}

/// RSI mean reversion.
#[derive(Debug, Clone)]
pub struct RsiReversion {
    period: u16,
    oversold: f64,
    overbought: f64,
    state: Vec<State>,
}

impl RsiReversion {
    /// RSI(`period`) with the two levels (0 < oversold < overbought < 100).
    pub fn new(period: u16, oversold: f64, overbought: f64, instruments: usize) -> Self {
        Self {
            period,
            oversold,
            overbought,
            state: vec![State::default(); instruments],
        }
    }
}

impl Strategy for RsiReversion {
    fn kind(&self) -> StrategyKind {
        StrategyKind::RsiReversion
    }

    fn needs(&self) -> Vec<IndicatorKey> {
        vec![IndicatorKey::Rsi(self.period)]
    }

    fn on_bar(&mut self, input: &StrategyInput) -> Option<SignalDraft> {
        let rsi = input.ind.rsi(self.period)?;
        let st = self.state.get_mut(input.instrument.0 as usize)?;
        let prev = st.prev;
        if input.is_final {
            st.prev = rsi;
        }
        if prev.is_nan() {
            return None;
        }
        let (dir, level, depth) = if prev >= self.oversold && rsi < self.oversold {
            (1i8, self.oversold, (self.oversold - rsi) / self.oversold)
        } else if prev <= self.overbought && rsi > self.overbought {
            (
                -1i8,
                self.overbought,
                (rsi - self.overbought) / (100.0 - self.overbought),
            )
        } else {
            return None;
        };
        if !st.once.first(input.start_ns, dir) {
            return None;
        }
        Some(SignalDraft {
            side: if dir > 0 { Side::Buy } else { Side::Sell },
            strength: clamp01(0.5 + 0.5 * depth),
            reason: if dir > 0 {
                SignalReason::RsiOversold
            } else {
                SignalReason::RsiOverbought
            },
            values: [rsi, level, 0.0],
        })
    }
}
