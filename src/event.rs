//! Events that flow after the kernel: fixed-size, `Copy`, no pointers.
//!
//! The kernel turns ticks into [`Event`]s (the tick itself, finished and
//! provisional bars, ...); the signal stage and the fan-out consume them.
//! Later stages add variants here; the JSON form of every variant is made in
//! one place, [`crate::json`].

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

impl Event {
    /// The instrument the event concerns; `InstrumentId(u32::MAX)` for
    /// events about no instrument (market status, account snapshots).
    pub fn instrument(&self) -> InstrumentId {
        match &self.body {
            EventBody::Tick(t) => t.instrument,
            EventBody::Bar(b) => b.instrument,
            EventBody::Signal(s) => s.instrument,
            EventBody::SignalRejected(r) => r.signal.instrument,
            EventBody::Order(o) => o.instrument,
            EventBody::Fill(f) => f.instrument,
            EventBody::Portfolio(p) if p.has_position => p.instrument,
            EventBody::Portfolio(_) | EventBody::MarketStatus(_) => InstrumentId(u32::MAX),
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

// Raised from 128 for the portfolio snapshot (six exact i128 money fields):
// events stay Copy and fixed-size; one ring slot is at most 192 bytes.
const _: () = assert!(std::mem::size_of::<Event>() <= 192);
