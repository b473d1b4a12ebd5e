//! Events that flow after the kernel: fixed-size, `Copy`, no pointers.
//!
//! The kernel turns ticks into [`Event`]s (the tick itself, finished and
//! provisional bars, indicator snapshots, anomalies, market-overview
//! updates); the signal stage and the fan-out consume them. The JSON form of
//! every variant is made in one place, [`crate::json`].

use crate::instruments::InstrumentId;
use crate::signal::events::{
    FillEvent, MarketStatusEvent, OrderEvent, PortfolioEvent, RejectionEvent, SignalEvent,
};
use crate::tick::Tick;

/// One event on a post-kernel ring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    /// Receive time of the tick that caused this event (engine clock, ns
    /// since the Unix epoch). End-to-end latency is measured from it.
    pub recv_ns: i64,
    /// What happened.
    pub body: EventBody,
}

/// The payload of an [`Event`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EventBody {
    /// A normalized tick, forwarded as-is (trades, quotes, book levels).
    Tick(Tick),
    /// A bar update: provisional while its window is open, final after.
    Bar(Bar),
    /// Indicator values on a bar close (final) or on the forming bar
    /// (provisional).
    Indicators(IndicatorSnapshot),
    /// An anomaly rule fired.
    Anomaly(Anomaly),
    /// A top-movers list changed composition or order.
    Movers(Movers),
    /// A sector's average change from session open.
    Sector(SectorUpdate),
    /// A composite index value.
    Index(IndexUpdate),
    /// A strategy's signal (signal stage).
    Signal(SignalEvent),
    /// A signal turned away by the threshold or a risk rule.
    SignalRejected(RejectionEvent),
    /// A paper order: new, filled or expired.
    Order(OrderEvent),
    /// A paper fill.
    Fill(FillEvent),
    /// A portfolio snapshot.
    Portfolio(PortfolioEvent),
    /// A market's session changed (open/close).
    MarketStatus(MarketStatusEvent),
}

/// [`Event::instrument`] of events about no instrument.
pub const NO_INSTRUMENT: InstrumentId = InstrumentId(u32::MAX);

impl Event {
    /// The instrument the event concerns; [`NO_INSTRUMENT`]
    /// (`InstrumentId(u32::MAX)`) for events about no instrument (movers,
    /// sectors, indices, market status, account snapshots).
    pub fn instrument(&self) -> InstrumentId {
        match &self.body {
            EventBody::Tick(t) => t.instrument,
            EventBody::Bar(b) => b.instrument,
            EventBody::Indicators(s) => s.instrument,
            EventBody::Anomaly(a) => a.instrument,
            EventBody::Signal(s) => s.instrument,
            EventBody::SignalRejected(r) => r.signal.instrument,
            EventBody::Order(o) => o.instrument,
            EventBody::Fill(f) => f.instrument,
            EventBody::Portfolio(p) if p.has_position => p.instrument,
            EventBody::Movers(_)
            | EventBody::Sector(_)
            | EventBody::Index(_)
            | EventBody::Portfolio(_)
            | EventBody::MarketStatus(_) => NO_INSTRUMENT,
        }
    }
}

/// An OHLCV bar over one event-time window aligned to UTC boundaries.
///
/// Prices are in the instrument's price units, volumes in its size units.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bar {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Index of the window in the kernel's configured list.
    pub window_idx: u8,
    /// `true` once the window has ended; `false` for provisional updates.
    pub is_final: bool,
    /// Trades in the bar.
    pub trades: u32,
    /// Window length, ns.
    pub window_ns: i64,
    /// Window start, ns since the Unix epoch (inclusive).
    pub start_ns: i64,
    /// First trade price.
    pub open: i64,
    /// Highest trade price.
    pub high: i64,
    /// Lowest trade price.
    pub low: i64,
    /// Last trade price.
    pub close: i64,
    /// Sum of trade sizes.
    pub volume: i64,
    /// Sum of buyer-initiated trade sizes.
    pub buy_volume: i64,
    /// Sum of seller-initiated trade sizes.
    pub sell_volume: i64,
    /// Volume-weighted average price, in price units (not scaled).
    pub vwap: f64,
}

impl Bar {
    /// Window end (exclusive), ns since the Unix epoch.
    pub fn end_ns(&self) -> i64 {
        self.start_ns + self.window_ns
    }
}

/// Most indicator values one snapshot carries (the default set uses 14).
pub const MAX_INDICATOR_SLOTS: usize = 16;

/// Indicator values of one instrument and window, in the slot order of the
/// kernel's [`crate::kernel::IndicatorSpec`] (which also names them:
/// `sma_20`, `ema_12`, `rsi_14`, `macd`, ..., `avg_volume_20`,
/// `session_vwap`).
///
/// A slot is NaN when its value is not defined yet (lookback incomplete) or
/// the slot is unused; indicator outputs themselves are never NaN, so NaN
/// means "absent" without ambiguity. Values are in price units as decimals
/// (e.g. `61837.63`), volumes in size units (`1.25` BTC). Equality treats
/// two absent (NaN) slots as equal.
#[derive(Debug, Clone, Copy)]
pub struct IndicatorSnapshot {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Index of the window in the kernel's configured list.
    pub window_idx: u8,
    /// `true` for values on a final bar close; `false` for the provisional
    /// values of the forming bar (its last trade taken as the close).
    pub is_final: bool,
    /// Start of the bar the values belong to, ns since the Unix epoch.
    pub start_ns: i64,
    /// Values by slot; NaN = absent.
    pub values: [f64; MAX_INDICATOR_SLOTS],
}

/// Float equality where NaN (absent) equals NaN.
#[inline]
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

impl PartialEq for IndicatorSnapshot {
    fn eq(&self, o: &Self) -> bool {
        self.instrument == o.instrument
            && self.window_idx == o.window_idx
            && self.is_final == o.is_final
            && self.start_ns == o.start_ns
            && self
                .values
                .iter()
                .zip(o.values.iter())
                .all(|(a, b)| same(*a, *b))
    }
}

impl IndicatorSnapshot {
    /// A snapshot with every slot absent.
    pub fn empty(instrument: InstrumentId, window_idx: u8, is_final: bool, start_ns: i64) -> Self {
        Self {
            instrument,
            window_idx,
            is_final,
            start_ns,
            values: [f64::NAN; MAX_INDICATOR_SLOTS],
        }
    }

    /// The value in `slot`, `None` when absent or out of range.
    pub fn get(&self, slot: usize) -> Option<f64> {
        self.values.get(slot).copied().filter(|v| !v.is_nan())
    }
}

/// Which anomaly rule fired.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnomalyRule {
    /// A trade price deviates from the N-bar average close by more than the
    /// threshold.
    PriceSpike = 0,
    /// The forming bar's volume exceeds a multiple of the N-bar average.
    VolumeSpike = 1,
    /// RSI crossed above the overbought level.
    RsiOverbought = 2,
    /// RSI crossed below the oversold level.
    RsiOversold = 3,
    /// Receive → kernel latency above the threshold.
    Latency = 4,
    /// The adapter saw a sequence gap.
    SequenceGap = 5,
    /// The feed went stale (no data within the watchdog interval).
    StaleFeed = 6,
    /// A crossed or locked book / BBO.
    CrossedBook = 7,
}

impl AnomalyRule {
    /// Number of rules.
    pub const COUNT: usize = 8;

    /// Every rule, in discriminant order.
    pub const ALL: [AnomalyRule; Self::COUNT] = [
        Self::PriceSpike,
        Self::VolumeSpike,
        Self::RsiOverbought,
        Self::RsiOversold,
        Self::Latency,
        Self::SequenceGap,
        Self::StaleFeed,
        Self::CrossedBook,
    ];

    /// Name used in JSON (`price_spike`, `volume_spike`, `rsi_overbought`,
    /// `rsi_oversold`, `latency`, `sequence_gap`, `stale_feed`,
    /// `crossed_book`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PriceSpike => "price_spike",
            Self::VolumeSpike => "volume_spike",
            Self::RsiOverbought => "rsi_overbought",
            Self::RsiOversold => "rsi_oversold",
            Self::Latency => "latency",
            Self::SequenceGap => "sequence_gap",
            Self::StaleFeed => "stale_feed",
            Self::CrossedBook => "crossed_book",
        }
    }
}

/// How serious an anomaly is (configured per rule).
#[repr(u8)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Info = 0,
    /// Worth a look.
    #[default]
    Warning = 1,
    /// Act now.
    Critical = 2,
}

impl Severity {
    /// `info`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// Window index meaning "not about a window".
pub const NO_WINDOW: u8 = u8::MAX;

/// An anomaly: the rule, its severity and the values that triggered it.
///
/// Field meaning per rule (prices in price units, sizes in size units):
///
/// | rule | `value` | `reference` | `threshold` | `a` | `b` | `c` |
/// |---|---|---|---|---|---|---|
/// | `price_spike` | (price − avg) / avg | average close | fraction (0.05) | trade price | – | – |
/// | `volume_spike` | volume / avg | average volume (decimal) | multiple (3.0) | bar volume | – | – |
/// | `rsi_overbought`, `rsi_oversold` | RSI | previous RSI (NaN if none) | level | bar close | – | – |
/// | `latency` | latency in ms | – | threshold ms | latency ns | threshold ns | – |
/// | `sequence_gap` | ids missing | – | – | expected id | received id | – |
/// | `stale_feed` | – | – | – | detail | – | – |
/// | `crossed_book` | – | – | – | bid | ask | – |
///
/// Unused floats are NaN, unused integers 0; equality treats NaN as equal
/// to NaN.
#[derive(Debug, Clone, Copy)]
pub struct Anomaly {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Rule that fired.
    pub rule: AnomalyRule,
    /// Configured severity of the rule.
    pub severity: Severity,
    /// Window of bar-based rules, [`NO_WINDOW`] otherwise.
    pub window_idx: u8,
    /// Event time of the tick (or bar close) that triggered it, ns.
    pub ts_event_ns: i64,
    /// Start of the bar involved (bar-based rules), else 0.
    pub start_ns: i64,
    /// Main triggering value (see the table).
    pub value: f64,
    /// What it was compared with.
    pub reference: f64,
    /// The configured threshold.
    pub threshold: f64,
    /// Integer detail (see the table).
    pub a: i64,
    /// Integer detail (see the table).
    pub b: i64,
    /// Integer detail (see the table).
    pub c: i64,
}

impl PartialEq for Anomaly {
    fn eq(&self, o: &Self) -> bool {
        self.instrument == o.instrument
            && self.rule == o.rule
            && self.severity == o.severity
            && self.window_idx == o.window_idx
            && self.ts_event_ns == o.ts_event_ns
            && self.start_ns == o.start_ns
            && same(self.value, o.value)
            && same(self.reference, o.reference)
            && same(self.threshold, o.threshold)
            && (self.a, self.b, self.c) == (o.a, o.b, o.c)
    }
}

/// Most entries in a movers list.
pub const MAX_MOVERS: usize = 8;

/// Which movers list.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MoversList {
    /// Largest positive % change from session open, descending.
    Gainers = 0,
    /// Largest negative % change from session open, ascending.
    Losers = 1,
    /// Largest session notional (quote-currency) volume, descending.
    MostActive = 2,
}

impl MoversList {
    /// `gainers`, `losers` or `most_active`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gainers => "gainers",
            Self::Losers => "losers",
            Self::MostActive => "most_active",
        }
    }
}

/// A movers list whose composition or order changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Movers {
    /// Which list.
    pub list: MoversList,
    /// Entries used (`<= MAX_MOVERS`).
    pub len: u8,
    /// Event time of the evaluation, ns.
    pub ts_event_ns: i64,
    /// Instruments, best first.
    pub instruments: [InstrumentId; MAX_MOVERS],
    /// % change from session open (gainers, losers) or session notional
    /// volume in quote currency (most active).
    pub values: [f64; MAX_MOVERS],
}

impl Movers {
    /// The used entries as `(instrument, value)`.
    pub fn entries(&self) -> impl Iterator<Item = (InstrumentId, f64)> + '_ {
        let n = usize::from(self.len).min(MAX_MOVERS);
        self.instruments[..n]
            .iter()
            .copied()
            .zip(self.values[..n].iter().copied())
    }
}

/// A sector's performance: average % change from session open of its
/// instruments that have traded this session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SectorUpdate {
    /// Sector index (order of first appearance in the registry).
    pub sector: u16,
    /// Instruments contributing.
    pub members: u16,
    /// Event time of the evaluation, ns.
    pub ts_event_ns: i64,
    /// Average % change.
    pub change_pct: f64,
}

/// A composite index value: `100 · Σ wᵢ · priceᵢ / baseᵢ`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexUpdate {
    /// Index position in the configured list.
    pub index: u16,
    /// Event time of the evaluation, ns.
    pub ts_event_ns: i64,
    /// Index value.
    pub value: f64,
}

// Raised from 128 for the portfolio snapshot (six exact i128 money fields)
// and the indicator snapshot (16 header bytes + 16 f64 slots = 144 bytes):
// events stay Copy and fixed-size (no boxing); one ring slot is at most 192
// bytes.
const _: () = assert!(std::mem::size_of::<Event>() <= 192);
const _: () = assert!(std::mem::size_of::<IndicatorSnapshot>() == 144);
