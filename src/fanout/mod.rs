//! Fan-out stage: the end of the pipeline, where events become text.
//!
//! [`FanoutStage::step`] keeps what subscribers and REST need to know about
//! the market ([`MarketState`]: latest trade/quote/anomaly per instrument,
//! recent final bars, gap counts), hands the event to the attached
//! [`EventSink`]s and, when a [`server::Server`] is attached, routes it to
//! WebSocket subscribers. The pipeline's fan-out thread calls
//! [`FanoutStage::poll_io`] between ring batches so the server's sockets are
//! served on the same thread, without locks.

pub mod http;
pub mod metrics;
pub mod protocol;
pub mod rest;
pub mod server;
pub mod ws;

use std::collections::VecDeque;
use std::io::Write;

use crate::config::MAX_WINDOWS;
use crate::event::{Bar, Event, EventBody};
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
    /// Last anomaly tick (sequence gap or feed status).
    pub anomaly: Option<Tick>,
}

/// What the fan-out thread's rings looked like on its last loop turn; the
/// server's I/O pass adapts to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingState {
    /// Nothing to do; the thread just parked: do a full pass now.
    Idle,
    /// Events are flowing and the thread keeps up: a pass when due.
    Busy,
    /// The thread is behind (a full batch was taken): a pass when due, but
    /// no socket writes until the rings are caught up. Sustained, this
    /// turns into slow-consumer closes rather than a slower pipeline.
    Backlog,
}

/// Default number of final bars kept per instrument and window.
pub const DEFAULT_BAR_HISTORY: usize = 1_000;

/// What the fan-out knows about the market, for snapshots and REST.
#[derive(Debug, Clone)]
pub struct MarketState {
    /// `[instrument][window]`: latest indicator snapshot (final or provisional).
    indicators: Vec<Vec<Option<Event>>>,
    /// Latest movers event per list (gainers, losers, most active).
    movers: Vec<Event>,
    /// Latest sector update per sector id.
    sectors: Vec<Option<Event>>,
    /// Latest index value per index id.
    indices: Vec<Option<Event>>,
    /// Latest portfolio snapshot.
    portfolio: Option<Event>,
    /// Recent decisions (signals, rejections, orders, fills), oldest first,
    /// at most `bar_history`.
    decisions: VecDeque<Event>,
    latest: Vec<Latest>,
    /// `[instrument][window]`, oldest first, at most `bar_history` each.
    bars: Vec<Vec<VecDeque<Bar>>>,
    bar_history: usize,
    gaps: Vec<u64>,
    last_data_ns: i64,
}

impl MarketState {
    /// Empty state for `n_instruments`, keeping `bar_history` bars per
    /// instrument and window.
    pub fn new(n_instruments: usize, bar_history: usize) -> Self {
        Self {
            indicators: vec![Vec::new(); n_instruments],
            movers: Vec::new(),
            sectors: Vec::new(),
            indices: Vec::new(),
            portfolio: None,
            decisions: VecDeque::new(),
            latest: vec![Latest::default(); n_instruments],
            bars: vec![Vec::new(); n_instruments],
            bar_history: bar_history.max(1),
            gaps: vec![0; n_instruments],
            last_data_ns: 0,
        }
    }

    /// Applies one event. Bar storage grows as bars arrive (a VecDeque per
    /// instrument and window, bounded by `bar_history`).
    #[inline]
    pub fn apply(&mut self, ev: &Event) {
        // Engine-wide events first (they carry no instrument).
        match &ev.body {
            EventBody::Movers(m) => {
                match self
                    .movers
                    .iter_mut()
                    .find(|e| matches!(&e.body, EventBody::Movers(x) if x.list == m.list))
                {
                    Some(slot) => *slot = *ev,
                    None => self.movers.push(*ev),
                }
                return;
            }
            EventBody::Sector(u) => {
                let k = usize::from(u.sector);
                if self.sectors.len() <= k {
                    self.sectors.resize(k + 1, None);
                }
                self.sectors[k] = Some(*ev);
                return;
            }
            EventBody::Index(u) => {
                let k = usize::from(u.index);
                if self.indices.len() <= k {
                    self.indices.resize(k + 1, None);
                }
                self.indices[k] = Some(*ev);
                return;
            }
            EventBody::Portfolio(_) => {
                self.portfolio = Some(*ev);
                return;
            }
            EventBody::Signal(_)
            | EventBody::SignalRejected(_)
            | EventBody::Order(_)
            | EventBody::Fill(_) => {
                if self.decisions.len() >= self.bar_history {
                    self.decisions.pop_front();
                }
                self.decisions.push_back(*ev);
                return;
            }
            _ => {}
        }
        let i = ev.instrument().0 as usize;
        if i >= self.latest.len() {
            return;
        }
        if let EventBody::Indicators(x) = &ev.body {
            let w = usize::from(x.window_idx);
            if w < MAX_WINDOWS {
                let per = &mut self.indicators[i];
                if per.len() <= w {
                    per.resize(w + 1, None);
                }
                per[w] = Some(*ev);
            }
            return;
        }
        self.last_data_ns = self.last_data_ns.max(ev.recv_ns);
        match &ev.body {
            EventBody::Tick(t) => {
                let l = &mut self.latest[i];
                match t.kind() {
                    Some(TickKind::Trade) => l.trade = Some(*t),
                    Some(TickKind::Quote) => l.quote = Some(*t),
                    Some(TickKind::Gap) => {
                        l.anomaly = Some(*t);
                        self.gaps[i] += 1;
                    }
                    Some(TickKind::FeedStatus) => l.anomaly = Some(*t),
                    _ => {}
                }
            }
            EventBody::Bar(b) if b.is_final => {
                let w = usize::from(b.window_idx);
                if w >= MAX_WINDOWS {
                    return;
                }
                let per = &mut self.bars[i];
                if per.len() <= w {
                    per.resize_with(w + 1, VecDeque::new);
                }
                let q = &mut per[w];
                if q.len() >= self.bar_history {
                    q.pop_front();
                }
                q.push_back(*b);
            }
            EventBody::Bar(_) => {}
            _ => {}
        }
    }

    /// Latest values of an instrument.
    pub fn latest(&self, inst: usize) -> Option<Latest> {
        self.latest.get(inst).copied()
    }

    /// Latest indicator snapshot of an instrument and window.
    pub fn indicators(&self, inst: usize, window: usize) -> Option<&Event> {
        self.indicators.get(inst)?.get(window)?.as_ref()
    }

    /// Latest movers events (one per list).
    pub fn movers(&self) -> &[Event] {
        &self.movers
    }

    /// Latest sector updates.
    pub fn sectors(&self) -> impl Iterator<Item = &Event> {
        self.sectors.iter().flatten()
    }

    /// Latest index values.
    pub fn indices(&self) -> impl Iterator<Item = &Event> {
        self.indices.iter().flatten()
    }

    /// Latest portfolio snapshot.
    pub fn portfolio(&self) -> Option<&Event> {
        self.portfolio.as_ref()
    }

    /// Recent decisions, oldest first.
    pub fn decisions(&self) -> impl DoubleEndedIterator<Item = &Event> {
        self.decisions.iter()
    }

    /// Recent final bars of an instrument and window, oldest first.
    pub fn bars(&self, inst: usize, window: usize) -> impl DoubleEndedIterator<Item = &Bar> {
        self.bars
            .get(inst)
            .and_then(|w| w.get(window))
            .into_iter()
            .flatten()
    }

    /// The last final bar of an instrument and window.
    pub fn last_bar(&self, inst: usize, window: usize) -> Option<&Bar> {
        self.bars.get(inst)?.get(window)?.back()
    }

    /// Sequence gaps reported for an instrument.
    pub fn gaps(&self, inst: usize) -> u64 {
        self.gaps.get(inst).copied().unwrap_or(0)
    }

    /// Receive time of the newest event seen (ns since the Unix epoch on
    /// the engine clock); 0 before the first.
    pub fn last_data_ns(&self) -> i64 {
        self.last_data_ns
    }

    /// Number of instruments.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// Whether there are no instruments.
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

/// The fan-out stage.
pub struct FanoutStage {
    market: MarketState,
    sinks: Vec<Box<dyn EventSink>>,
    server: Option<Box<server::Server>>,
    events: u64,
}

impl std::fmt::Debug for FanoutStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutStage")
            .field("sinks", &self.sinks.len())
            .field("server", &self.server)
            .field("events", &self.events)
            .finish()
    }
}

impl FanoutStage {
    /// A stage with state for every instrument and the given sinks.
    pub fn new(registry: &InstrumentRegistry, sinks: Vec<Box<dyn EventSink>>) -> Self {
        Self {
            market: MarketState::new(registry.len(), DEFAULT_BAR_HISTORY),
            sinks,
            server: None,
            events: 0,
        }
    }

    /// Keeps `n` final bars per instrument and window (default
    /// [`DEFAULT_BAR_HISTORY`]). Call before the first event.
    pub fn with_bar_history(mut self, n: usize) -> Self {
        self.market = MarketState::new(self.market.len(), n);
        self
    }

    /// Attaches the subscriber server; from now on the fan-out thread
    /// drives its sockets through [`Self::poll_io`].
    pub fn attach_server(&mut self, server: server::Server) {
        self.server = Some(Box::new(server));
    }

    /// Whether a server is attached (the pipeline then calls `poll_io`).
    pub fn has_io(&self) -> bool {
        self.server.is_some()
    }

    /// The attached server's bound address.
    pub fn server_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().map(|s| s.local_addr())
    }

    /// Processes one event.
    #[inline]
    pub fn step(&mut self, ev: &Event) {
        self.events += 1;
        self.market.apply(ev);
        for s in &mut self.sinks {
            s.on_event(ev);
        }
        if let Some(srv) = &mut self.server {
            srv.on_event(ev);
        }
    }

    /// Serves the attached server's sockets: accepts, requests, subscriber
    /// writes, timers. Never blocks; cheap to call on every loop turn (when
    /// busy a pass runs at most every [`server::BUSY_IO_INTERVAL`],
    /// otherwise it costs one clock read). `rings` says what the fan-out
    /// thread's last turn found; see [`RingState`]. Returns whether
    /// anything was done.
    #[inline]
    pub fn poll_io(&mut self, rings: RingState) -> bool {
        match &mut self.server {
            Some(srv) => srv.poll(rings, &self.market),
            None => false,
        }
    }

    /// Latest values of an instrument.
    pub fn latest(&self, inst: usize) -> Option<Latest> {
        self.market.latest(inst)
    }

    /// Market state (latest values, recent bars).
    pub fn market(&self) -> &MarketState {
        &self.market
    }

    /// Events processed.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Drains sinks and closes subscribers (close frame 1001) at shutdown.
    pub fn finish(&mut self) {
        for s in &mut self.sinks {
            s.finish();
        }
        if let Some(srv) = &mut self.server {
            srv.shutdown(&self.market);
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
        assert_eq!(f.market().last_data_ns(), 6);
    }

    #[test]
    fn market_state_keeps_bounded_bar_history_and_gaps() {
        let mut m = MarketState::new(2, 3);
        for k in 0..5 {
            m.apply(&Event {
                recv_ns: k,
                body: EventBody::Bar(Bar {
                    instrument: InstrumentId(1),
                    window_idx: 2,
                    is_final: true,
                    start_ns: k,
                    ..Bar::default()
                }),
            });
        }
        // Provisional bars are not stored.
        m.apply(&Event {
            recv_ns: 9,
            body: EventBody::Bar(Bar {
                instrument: InstrumentId(1),
                window_idx: 2,
                is_final: false,
                start_ns: 99,
                ..Bar::default()
            }),
        });
        let starts: Vec<i64> = m.bars(1, 2).map(|b| b.start_ns).collect();
        assert_eq!(starts, [2, 3, 4]);
        assert_eq!(m.last_bar(1, 2).unwrap().start_ns, 4);
        assert!(m.last_bar(1, 0).is_none() && m.last_bar(0, 2).is_none());
        assert_eq!(m.bars(5, 0).count(), 0);
        let g = Tick {
            instrument: InstrumentId(0),
            kind: TickKind::Gap as u8,
            ..Tick::default()
        };
        m.apply(&Event {
            recv_ns: 10,
            body: EventBody::Tick(g),
        });
        assert_eq!(m.gaps(0), 1);
        assert_eq!(m.latest(0).unwrap().anomaly, Some(g));
        assert_eq!(m.last_data_ns(), 10);
    }
}
