//! Fan-out stage: the end of the pipeline, where events become text.
//!
//! [`FanoutStage::step`] records end-to-end latency (tick receive → here),
//! keeps the latest value per instrument (what a new subscriber's snapshot
//! is built from) and hands the event to the attached [`EventSink`]s. The
//! WebSocket/HTTP server plugs in as a sink-driving event loop on this thread.

use std::io::Write;

use crate::event::{Event, EventBody};
use crate::instruments::InstrumentRegistry;
use crate::json::{JsonContext, write_event};
use crate::tick::{Tick, TickKind};

/// Something that consumes events at the end of the pipeline.
pub trait EventSink: Send {
    /// Called once per event, in pipeline order.
    fn on_event(&mut self, ev: &Event);
    /// Called when the pipeline drains (shutdown).
    fn finish(&mut self) {}
}

/// Latest values per instrument.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latest {
    /// Last trade tick.
    pub trade: Option<Tick>,
    /// Last quote tick.
    pub quote: Option<Tick>,
}

/// The fan-out stage.
pub struct FanoutStage {
    latest: Vec<Latest>,
    sinks: Vec<Box<dyn EventSink>>,
    events: u64,
}

impl std::fmt::Debug for FanoutStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutStage")
            .field("sinks", &self.sinks.len())
            .field("events", &self.events)
            .finish()
    }
}

impl FanoutStage {
    /// A stage with state for every instrument and the given sinks.
    pub fn new(registry: &InstrumentRegistry, sinks: Vec<Box<dyn EventSink>>) -> Self {
        Self {
            latest: vec![Latest::default(); registry.len()],
            sinks,
            events: 0,
        }
    }

    /// Processes one event.
    #[inline]
    pub fn step(&mut self, ev: &Event) {
        self.events += 1;
        if let EventBody::Tick(t) = &ev.body
            && let Some(l) = self.latest.get_mut(t.instrument.0 as usize)
        {
            match t.kind() {
                Some(TickKind::Trade) => l.trade = Some(*t),
                Some(TickKind::Quote) => l.quote = Some(*t),
                _ => {}
            }
        }
        for s in &mut self.sinks {
            s.on_event(ev);
        }
    }

    /// Latest values of an instrument.
    pub fn latest(&self, inst: usize) -> Option<Latest> {
        self.latest.get(inst).copied()
    }

    /// Events processed.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Drains sinks at shutdown.
    pub fn finish(&mut self) {
        for s in &mut self.sinks {
            s.finish();
        }
    }
}

/// Which events a [`JsonLinesSink`] writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DumpFilter {
    /// Trades.
    pub trades: bool,
    /// Quotes.
    pub quotes: bool,
    /// Book levels.
    pub book: bool,
    /// Final bars (and venue klines).
    pub bars: bool,
    /// Final indicator snapshots.
    pub indicators: bool,
    /// Kernel anomalies (rules with cooldowns, including feed-side ones).
    pub anomalies: bool,
    /// Movers lists.
    pub movers: bool,
    /// Sector performance.
    pub sectors: bool,
    /// Composite indices.
    pub indices: bool,
    /// Raw feed-status and gap ticks from the adapters.
    pub feed_status: bool,
    /// Also write provisional bars / indicators (with `bars` /
    /// `indicators`).
    pub provisional: bool,
    /// Strategy signals and rejected signals.
    pub signals: bool,
    /// Paper orders.
    pub orders: bool,
    /// Paper fills.
    pub fills: bool,
    /// Portfolio snapshots.
    pub portfolio: bool,
    /// Market open/close (session) changes.
    pub market_status: bool,
}

/// Items [`DumpFilter::parse`] accepts.
pub const DUMP_ITEMS: &str = "trades, quotes, book, bars, indicators, anomalies, movers, sectors, indices, feed_status, signals, orders, fills, portfolio, market_status, provisional, all";

impl DumpFilter {
    /// Parses a comma list of [`DUMP_ITEMS`]; `all` selects every item but
    /// `provisional`.
    ///
    /// # Errors
    /// Names the unknown item and lists the known ones.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut f = Self::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "trades" => f.trades = true,
                "quotes" => f.quotes = true,
                "book" => f.book = true,
                "bars" => f.bars = true,
                "indicators" => f.indicators = true,
                "anomalies" => f.anomalies = true,
                "movers" => f.movers = true,
                "sectors" => f.sectors = true,
                "indices" => f.indices = true,
                "feed_status" => f.feed_status = true,
                "provisional" => f.provisional = true,
                "signals" => f.signals = true,
                "orders" => f.orders = true,
                "fills" => f.fills = true,
                "portfolio" => f.portfolio = true,
                "market_status" => f.market_status = true,
                "all" => {
                    f = Self {
                        trades: true,
                        quotes: true,
                        book: true,
                        bars: true,
                        indicators: true,
                        anomalies: true,
                        movers: true,
                        sectors: true,
                        indices: true,
                        feed_status: true,
                        signals: true,
                        orders: true,
                        fills: true,
                        portfolio: true,
                        market_status: true,
                        provisional: f.provisional,
                    }
                }
                other => {
                    return Err(format!("unknown dump item '{other}'; known: {DUMP_ITEMS}"));
                }
            }
        }
        Ok(f)
    }

    /// Whether `ev` is selected.
    pub fn wants(&self, ev: &Event) -> bool {
        match &ev.body {
            EventBody::Tick(t) => match t.kind() {
                Some(TickKind::Trade) => self.trades,
                Some(TickKind::Quote) => self.quotes,
                Some(TickKind::BookLevel) => self.book,
                Some(TickKind::Bar) => self.bars,
                Some(TickKind::Gap | TickKind::FeedStatus) => self.feed_status,
                None => false,
            },
            EventBody::Bar(b) => self.bars && (b.is_final || self.provisional),
            EventBody::Indicators(s) => self.indicators && (s.is_final || self.provisional),
            EventBody::Anomaly(_) => self.anomalies,
            EventBody::Movers(_) => self.movers,
            EventBody::Sector(_) => self.sectors,
            EventBody::Index(_) => self.indices,
            EventBody::Signal(_) | EventBody::SignalRejected(_) => self.signals,
            EventBody::Order(_) => self.orders,
            EventBody::Fill(_) => self.fills,
            EventBody::Portfolio(_) => self.portfolio,
            EventBody::MarketStatus(_) => self.market_status,
        }
    }
}

/// Writes selected events as JSON lines (EVENTS.md schema).
pub struct JsonLinesSink<W: Write + Send> {
    ctx: JsonContext,
    filter: DumpFilter,
    out: W,
    buf: Vec<u8>,
    /// Write errors (e.g. closed pipe); writing stops after the first.
    pub errors: u64,
}

impl<W: Write + Send> std::fmt::Debug for JsonLinesSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesSink")
            .field("filter", &self.filter)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl<W: Write + Send> JsonLinesSink<W> {
    /// A sink writing to `out`.
    pub fn new(ctx: JsonContext, filter: DumpFilter, out: W) -> Self {
        Self {
            ctx,
            filter,
            out,
            buf: Vec::with_capacity(1024),
            errors: 0,
        }
    }
}

impl<W: Write + Send> EventSink for JsonLinesSink<W> {
    fn on_event(&mut self, ev: &Event) {
        if self.errors > 0 || !self.filter.wants(ev) {
            return;
        }
        self.buf.clear();
        write_event(&mut self.buf, &self.ctx, ev);
        self.buf.push(b'\n');
        if self.out.write_all(&self.buf).is_err() {
            self.errors += 1;
        }
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}

/// A sink that keeps every event (tests, golden comparisons).
#[derive(Debug, Default, Clone)]
pub struct CollectSink {
    /// Shared storage.
    pub events: std::sync::Arc<std::sync::Mutex<Vec<Event>>>,
}

impl EventSink for CollectSink {
    fn on_event(&mut self, ev: &Event) {
        if let Ok(mut v) = self.events.lock() {
            v.push(*ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruments::InstrumentId;
    use crate::tick::Side;

    #[test]
    fn dump_filter_parses() {
        let f = DumpFilter::parse("trades, bars").unwrap();
        assert!(f.trades && f.bars && !f.quotes && !f.book && !f.indicators);
        let all = DumpFilter::parse("all").unwrap();
        assert!(all.book && all.indicators && all.movers && !all.provisional);
        assert!(DumpFilter::parse("provisional,all").unwrap().provisional);
        let d = DumpFilter::parse("signals,orders,fills,portfolio,market_status").unwrap();
        assert!(d.signals && d.orders && d.fills && d.portfolio && d.market_status);
        assert!(!d.trades && !d.bars);
        let e = DumpFilter::parse("trades,nope").unwrap_err();
        assert!(e.contains("nope") && e.contains("known"));
    }

    #[test]
    fn keeps_latest_and_writes_jsonl() {
        let mut r = InstrumentRegistry::new();
        r.add("SIM:A", 2, 2, None).unwrap();
        let ctx = JsonContext::new(r.clone(), &[60_000_000_000]);
        let buf: Vec<u8> = Vec::new();
        let sink = JsonLinesSink::new(ctx, DumpFilter::parse("trades").unwrap(), buf);
        let collect = CollectSink::default();
        let store = collect.events.clone();
        let mut f = FanoutStage::new(&r, vec![Box::new(sink), Box::new(collect)]);
        let t = Tick::trade(InstrumentId(0), 5, 6, 12345, 100, Side::Buy, 77);
        let q = Tick::quote(InstrumentId(0), 5, 6, 12344, 1, 12346, 1, 1);
        f.step(&Event {
            recv_ns: 6,
            body: EventBody::Tick(t),
        });
        f.step(&Event {
            recv_ns: 6,
            body: EventBody::Tick(q),
        });
        assert_eq!(f.latest(0).unwrap().trade, Some(t));
        assert_eq!(f.latest(0).unwrap().quote, Some(q));
        assert_eq!(store.lock().unwrap().len(), 2);
        assert_eq!(f.events(), 2);
    }
}
