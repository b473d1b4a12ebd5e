//! The strategy interface and its input.
//!
//! Strategies never see kernel events directly: [`strategy_input`] maps an
//! event to a [`StrategyInput`] (instrument, window, bar close, indicator
//! values looked up by name and period), and that one function is the only
//! place that knows the kernel's event shapes. Trades and quotes reach
//! strategies through [`Strategy::on_tick`] with the instrument's marks.

use crate::event::{Event, EventBody};
use crate::instruments::InstrumentId;
use crate::signal::Marks;
use crate::signal::events::{SignalReason, StrategyKind};
use crate::tick::{Side, Tick};

/// Names one indicator output (periods as configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IndicatorKey {
    /// Unused slot.
    #[default]
    None,
    /// Simple moving average of `n` closes.
    Sma(u16),
    /// Exponential moving average of `n` closes.
    Ema(u16),
    /// Relative strength index over `n`.
    Rsi(u16),
    /// MACD line (fast, slow, signal).
    Macd(u16, u16, u16),
    /// MACD signal line.
    MacdSignal(u16, u16, u16),
    /// MACD histogram.
    MacdHist(u16, u16, u16),
    /// Upper Bollinger band (period, k in thousandths).
    BbUpper(u16, u16),
    /// Middle Bollinger band.
    BbMiddle(u16, u16),
    /// Lower Bollinger band.
    BbLower(u16, u16),
}

/// Bollinger `k` (e.g. 2.0) → the thousandths used in [`IndicatorKey`].
pub fn bb_k_milli(k: f64) -> u16 {
    (k * 1000.0).round().clamp(0.0, f64::from(u16::MAX)) as u16
}

/// Most indicator values one input carries.
pub const MAX_INDICATOR_VALUES: usize = 24;

/// Indicator values by key; fixed capacity, no allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndicatorValues {
    keys: [IndicatorKey; MAX_INDICATOR_VALUES],
    vals: [f64; MAX_INDICATOR_VALUES],
    len: u8,
}

impl Default for IndicatorValues {
    fn default() -> Self {
        Self {
            keys: [IndicatorKey::None; MAX_INDICATOR_VALUES],
            vals: [f64::NAN; MAX_INDICATOR_VALUES],
            len: 0,
        }
    }
}

impl IndicatorValues {
    /// The value of `key`, if present and finite.
    #[inline]
    pub fn get(&self, key: IndicatorKey) -> Option<f64> {
        let n = usize::from(self.len);
        self.keys[..n]
            .iter()
            .position(|k| *k == key)
            .map(|i| self.vals[i])
            .filter(|v| v.is_finite())
    }

    /// Sets `key` (replacing a present value). Non-finite values and a full
    /// table are ignored.
    #[inline]
    pub fn set(&mut self, key: IndicatorKey, v: f64) {
        if !v.is_finite() || key == IndicatorKey::None {
            return;
        }
        let n = usize::from(self.len);
        if let Some(i) = self.keys[..n].iter().position(|k| *k == key) {
            self.vals[i] = v;
        } else if n < MAX_INDICATOR_VALUES {
            self.keys[n] = key;
            self.vals[n] = v;
            self.len += 1;
        }
    }

    /// Whether `key` is present.
    pub fn has(&self, key: IndicatorKey) -> bool {
        self.get(key).is_some()
    }

    /// SMA(n).
    pub fn sma(&self, n: u16) -> Option<f64> {
        self.get(IndicatorKey::Sma(n))
    }

    /// EMA(n).
    pub fn ema(&self, n: u16) -> Option<f64> {
        self.get(IndicatorKey::Ema(n))
    }

    /// RSI(n).
    pub fn rsi(&self, n: u16) -> Option<f64> {
        self.get(IndicatorKey::Rsi(n))
    }

    /// MACD (line, signal, histogram).
    pub fn macd(&self, fast: u16, slow: u16, signal: u16) -> Option<(f64, f64, f64)> {
        Some((
            self.get(IndicatorKey::Macd(fast, slow, signal))?,
            self.get(IndicatorKey::MacdSignal(fast, slow, signal))?,
            self.get(IndicatorKey::MacdHist(fast, slow, signal))?,
        ))
    }

    /// Bollinger bands (upper, middle, lower) for period and `k`.
    pub fn bb(&self, period: u16, k: f64) -> Option<(f64, f64, f64)> {
        let km = bb_k_milli(k);
        Some((
            self.get(IndicatorKey::BbUpper(period, km))?,
            self.get(IndicatorKey::BbMiddle(period, km))?,
            self.get(IndicatorKey::BbLower(period, km))?,
        ))
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What a strategy evaluates: one bar (final or provisional) of one
/// instrument and window, with the indicator values known for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StrategyInput {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Bar window index (kernel's configured list).
    pub window_idx: u8,
    /// Final bar (window ended) or provisional update.
    pub is_final: bool,
    /// Window start, ns.
    pub start_ns: i64,
    /// Window end, ns.
    pub end_ns: i64,
    /// Bar close, price units.
    pub close: i64,
    /// Close as a decimal price (e.g. 61837.63), the unit indicators use.
    /// [`strategy_input`] cannot know the precision and leaves NaN; the
    /// stage fills it in.
    pub price: f64,
    /// Indicator values.
    pub ind: IndicatorValues,
}

/// Maps a kernel event to a strategy input; the ONLY place that reads the
/// kernel's event shapes. Bars map with their close and no indicator values
/// (the stage computes the ones its strategies need from final closes, see
/// `signal.local_indicators`); other events map to `None`.
///
/// When the kernel publishes indicator snapshots, map them here: fill
/// `ind` with `set(IndicatorKey::Sma(20), v)` etc. Map exactly one event per
/// bar update, so strategies evaluate each bar once.
pub fn strategy_input(ev: &Event) -> Option<StrategyInput> {
    match &ev.body {
        EventBody::Bar(b) => Some(StrategyInput {
            instrument: b.instrument,
            window_idx: b.window_idx,
            is_final: b.is_final,
            start_ns: b.start_ns,
            end_ns: b.end_ns(),
            close: b.close,
            price: f64::NAN,
            ind: IndicatorValues::default(),
        }),
        _ => None,
    }
}

/// What a strategy says: the stage turns it into a signal event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalDraft {
    /// Buy or sell.
    pub side: Side,
    /// Strength/confidence in [0, 1] (clamped by the stage).
    pub strength: f64,
    /// Reason code.
    pub reason: SignalReason,
    /// Triggering values (meaning per kind, see
    /// [`crate::signal::events::VALUE_NAMES`]); unused slots 0.
    pub values: [f64; 3],
}

/// A trading strategy. One instance serves every instrument: per-instrument
/// state lives inside, allocated in its constructor (slot = instrument
/// index), so evaluation never allocates.
pub trait Strategy: Send + std::fmt::Debug {
    /// Which built-in kind (for the `kind` field of signals).
    fn kind(&self) -> StrategyKind;

    /// The indicator values this strategy reads, so the stage can supply
    /// those the kernel does not publish.
    fn needs(&self) -> Vec<IndicatorKey>;

    /// Evaluates a bar (final, or provisional when the strategy asked for
    /// provisional bars). Called only for the strategy's window and enabled
    /// instruments.
    fn on_bar(&mut self, input: &StrategyInput) -> Option<SignalDraft>;

    /// Whether [`Strategy::on_tick`] should be called (checked once, at
    /// start-up). Default: no.
    fn wants_ticks(&self) -> bool {
        false
    }

    /// Sees a trade or quote with the instrument's updated marks (only when
    /// [`Strategy::wants_ticks`]). Default: nothing.
    fn on_tick(&mut self, _tick: &Tick, _marks: &Marks) -> Option<SignalDraft> {
        None
    }
}

/// Tracks the sign of a series, ignoring zeros, and reports flips.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignFlip {
    /// Last non-zero sign committed (0 = none yet).
    pub last: i8,
}

impl SignFlip {
    /// The flip `x` would make from the committed sign, without committing:
    /// `+1` (from negative to positive), `-1`, or 0.
    #[inline]
    pub fn peek(&self, x: f64) -> i8 {
        let s = if x > 0.0 {
            1
        } else if x < 0.0 {
            -1
        } else {
            0
        };
        if s != 0 && self.last != 0 && s != self.last {
            s
        } else {
            0
        }
    }

    /// Commits `x` and returns the flip it made.
    #[inline]
    pub fn update(&mut self, x: f64) -> i8 {
        let f = self.peek(x);
        if x > 0.0 {
            self.last = 1;
        } else if x < 0.0 {
            self.last = -1;
        }
        f
    }
}
