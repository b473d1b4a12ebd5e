//! The one JSON serializer for every output (see `docs/EVENTS.md`).
//!
//! Subscribers, REST, `replay --dump`, journal export and tail all call
//! [`write_event`] / [`write_tick`], so the schema lives in one place:
//! `type`, `symbol` as `VENUE:SYMBOL`, integer ns times, exact decimal
//! strings for prices and sizes, JSON numbers for derived floats, and absent
//! (never `null`/NaN) for values not yet defined.
//!
//! Writes append to a caller-owned `Vec<u8>`; with enough capacity reserved
//! nothing allocates.

use std::io::Write as _;

use crate::config::{ConfigError, EngineConfig, window_name};
use crate::decimal::format_scaled;
use crate::event::{
    Anomaly, AnomalyRule, Bar, Event, EventBody, IndexUpdate, IndicatorSnapshot, Movers,
    MoversList, NO_WINDOW, SectorUpdate,
};
use crate::instruments::{Instrument, InstrumentId, InstrumentRegistry};
use crate::kernel::{KernelSetup, sector_table};
use crate::signal::events::{
    FillEvent, MarketStatusEvent, OrderEvent, OrderType, PortfolioEvent, RejectionEvent, RiskRule,
    Session, SignalEvent, VALUE_NAMES,
};
use crate::signal::money::write_money;
use crate::telemetry::Percentiles;
use crate::tick::{Tick, TickKind, flags};

/// Serialization context: the registry (names, precisions), window names,
/// indicator slot names, sector and index names, and the names of
/// strategies and calendars that decision events refer to by index.
#[derive(Debug, Clone)]
pub struct JsonContext {
    registry: InstrumentRegistry,
    window_names: Vec<String>,
    windows_ns: Vec<i64>,
    indicator_names: Vec<String>,
    sector_names: Vec<String>,
    index_names: Vec<String>,
    strategy_names: Vec<String>,
    calendar_names: Vec<String>,
}

impl JsonContext {
    /// A context over `registry` with the kernel's window lengths (ns) and
    /// the default indicator set (see [`JsonContext::for_kernel`]).
    pub fn new(registry: InstrumentRegistry, windows_ns: &[i64]) -> Self {
        Self::for_kernel(registry, &KernelSetup::with_windows(windows_ns.to_vec()))
    }

    /// A context naming everything the kernel built from `setup` emits:
    /// windows, indicator keys (`sma_20`...), sectors and indices.
    pub fn for_kernel(registry: InstrumentRegistry, setup: &KernelSetup) -> Self {
        let (sector_names, _) = sector_table(&registry);
        Self {
            window_names: setup.windows_ns.iter().map(|w| window_name(*w)).collect(),
            windows_ns: setup.windows_ns.clone(),
            indicator_names: setup.indicators.slot_names(),
            sector_names,
            index_names: setup
                .overview
                .indices
                .iter()
                .map(|i| i.name.clone())
                .collect(),
            registry,
            strategy_names: Vec::new(),
            calendar_names: Vec::new(),
        }
    }

    /// Adds the strategy and calendar names decision events refer to.
    pub fn with_decision_names(mut self, strategies: Vec<String>, calendars: Vec<String>) -> Self {
        self.strategy_names = strategies;
        self.calendar_names = calendars;
        self
    }

    /// The context for an engine config: registry, windows, indicator keys,
    /// sector and index names, strategy and calendar names.
    ///
    /// # Errors
    /// An invalid instrument, window or `kernel.*` key.
    pub fn for_config(cfg: &EngineConfig) -> Result<Self, ConfigError> {
        Ok(
            Self::for_kernel(cfg.registry()?, &cfg.kernel_setup()?).with_decision_names(
                cfg.signal
                    .strategies
                    .iter()
                    .map(|s| s.name.clone())
                    .collect(),
                cfg.calendars.iter().map(|c| c.name.clone()).collect(),
            ),
        )
    }

    fn strategy(&self, idx: u8) -> &str {
        self.strategy_names
            .get(usize::from(idx))
            .map_or("?", String::as_str)
    }

    fn calendar(&self, idx: u8) -> &str {
        self.calendar_names
            .get(usize::from(idx))
            .map_or("?", String::as_str)
    }

    /// The registry.
    pub fn registry(&self) -> &InstrumentRegistry {
        &self.registry
    }

    fn window(&self, idx: u8, ns: i64) -> String {
        self.window_names
            .get(usize::from(idx))
            .cloned()
            .unwrap_or_else(|| window_name(ns))
    }

    fn window_ns(&self, idx: u8) -> Option<i64> {
        self.windows_ns.get(usize::from(idx)).copied()
    }
}

fn key(out: &mut Vec<u8>, k: &str) {
    out.push(b',');
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn str_field(out: &mut Vec<u8>, k: &str, v: &str) {
    key(out, k);
    out.push(b'"');
    escape_into(out, v);
    out.push(b'"');
}

fn int_field(out: &mut Vec<u8>, k: &str, v: i64) {
    key(out, k);
    let _ = write!(out, "{v}");
}

fn dec_field(out: &mut Vec<u8>, k: &str, v: i64, scale: u8) {
    key(out, k);
    out.push(b'"');
    out.extend_from_slice(format_scaled(v, scale).as_str().as_bytes());
    out.push(b'"');
}

/// Writes a finite float as a JSON number; skips the key if not finite.
///
/// The shortest text that reads back as the same `f64`, always with a
/// fraction or exponent (`61000.0`, `0.0625`, `1e-7`), so every consumer
/// sees a float.
pub fn float_field(out: &mut Vec<u8>, k: &str, v: f64) {
    if v.is_finite() {
        key(out, k);
        let _ = write!(out, "{v:?}");
    }
}

fn bool_field(out: &mut Vec<u8>, k: &str, v: bool) {
    key(out, k);
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// Appends `s` JSON-escaped (without quotes).
pub fn escape_into(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
}

fn head(out: &mut Vec<u8>, ty: &str, inst: Option<&Instrument>) {
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(ty.as_bytes());
    out.push(b'"');
    if let Some(i) = inst {
        str_field(out, "symbol", &i.key);
    }
}

/// Serializes one tick as its EVENTS.md object (`trade`, `quote`,
/// `book_level`, `bar`). Unknown instruments serialize with
/// `"symbol":"?:<id>"` rather than failing.
pub fn write_tick(out: &mut Vec<u8>, ctx: &JsonContext, t: &Tick) {
    let inst = ctx.registry.get(t.instrument);
    let (pp, sp) = inst.map_or((0, 0), |i| (i.price_precision, i.size_precision));
    let kind = t.kind().unwrap_or(TickKind::Trade);
    let ty = match kind {
        TickKind::Trade => "trade",
        TickKind::Quote => "quote",
        TickKind::BookLevel => "book_level",
        TickKind::Bar => "bar",
        TickKind::Gap | TickKind::FeedStatus => "anomaly",
    };
    head(out, ty, inst);
    if inst.is_none() {
        str_field(out, "symbol", &format!("?:{}", t.instrument.0));
    }
    int_field(out, "ts_event", t.ts_event_ns);
    int_field(out, "ts_recv", t.ts_recv_ns);
    match kind {
        TickKind::Trade => {
            dec_field(out, "price", t.price, pp);
            dec_field(out, "size", t.size, sp);
            str_field(out, "side", t.side().as_str());
            if t.has_flag(flags::ID_HASHED) {
                str_field(out, "trade_id_hash", &format!("{:016x}", t.id));
            } else {
                str_field(out, "trade_id", &t.id.to_string());
            }
        }
        TickKind::Quote => {
            dec_field(out, "bid", t.price, pp);
            dec_field(out, "bid_size", t.size, sp);
            dec_field(out, "ask", t.price2, pp);
            dec_field(out, "ask_size", t.size2, sp);
            int_field(out, "seq", t.id as i64);
        }
        TickKind::BookLevel => {
            str_field(
                out,
                "side",
                if t.side() == crate::tick::Side::Buy {
                    "bid"
                } else {
                    "ask"
                },
            );
            dec_field(out, "price", t.price, pp);
            dec_field(out, "size", t.size, sp);
            int_field(out, "seq", t.id as i64);
            bool_field(out, "snapshot", t.has_flag(flags::SNAPSHOT));
        }
        TickKind::Bar => {
            dec_field(out, "open", t.id as i64, pp);
            dec_field(out, "high", t.price2, pp);
            dec_field(out, "low", t.size2, pp);
            dec_field(out, "close", t.price, pp);
            dec_field(out, "volume", t.size, sp);
        }
        TickKind::Gap => {
            str_field(out, "rule", "sequence_gap");
            str_field(out, "severity", "warning");
            int_field(out, "expected", t.id as i64);
            int_field(out, "received", t.price);
            int_field(out, "missing", t.size);
        }
        TickKind::FeedStatus => {
            let rule = match t.id {
                crate::tick::feed_status::CONNECTED => "feed_connected",
                crate::tick::feed_status::DISCONNECTED => "feed_disconnected",
                crate::tick::feed_status::STALE => "stale_feed",
                crate::tick::feed_status::CIRCUIT_OPEN => "circuit_open",
                crate::tick::feed_status::CROSSED => "crossed_book",
                _ => "feed_status",
            };
            str_field(out, "rule", rule);
            let sev = if t.id == crate::tick::feed_status::CONNECTED {
                "info"
            } else {
                "warning"
            };
            str_field(out, "severity", sev);
            int_field(out, "detail", t.size);
        }
    }
    if t.has_flag(flags::SUSPECT) {
        bool_field(out, "suspect", true);
    }
    out.push(b'}');
}

/// Serializes a bar (`"type":"bar"`).
pub fn write_bar(out: &mut Vec<u8>, ctx: &JsonContext, b: &Bar) {
    let inst = ctx.registry.get(b.instrument);
    let (pp, sp) = inst.map_or((0, 0), |i| (i.price_precision, i.size_precision));
    head(out, "bar", inst);
    str_field(out, "window", &ctx.window(b.window_idx, b.window_ns));
    int_field(out, "start", b.start_ns);
    int_field(out, "end", b.end_ns());
    bool_field(out, "final", b.is_final);
    dec_field(out, "open", b.open, pp);
    dec_field(out, "high", b.high, pp);
    dec_field(out, "low", b.low, pp);
    dec_field(out, "close", b.close, pp);
    dec_field(out, "volume", b.volume, sp);
    dec_field(out, "buy_volume", b.buy_volume, sp);
    dec_field(out, "sell_volume", b.sell_volume, sp);
    float_field(out, "vwap", b.vwap);
    int_field(out, "trades", i64::from(b.trades));
    out.push(b'}');
}

fn money_field(out: &mut Vec<u8>, k: &str, v: i128) {
    key(out, k);
    out.push(b'"');
    write_money(out, v);
    out.push(b'"');
}

fn inst_head(out: &mut Vec<u8>, ctx: &JsonContext, ty: &str, id: InstrumentId) -> (u8, u8) {
    let inst = ctx.registry.get(id);
    head(out, ty, inst);
    if inst.is_none() {
        str_field(out, "symbol", &format!("?:{}", id.0));
    }
    inst.map_or((0, 0), |i| (i.price_precision, i.size_precision))
}

fn signal_fields(out: &mut Vec<u8>, ctx: &JsonContext, s: &SignalEvent) {
    int_field(out, "signal_id", s.id as i64);
    str_field(out, "strategy", ctx.strategy(s.strategy));
    str_field(out, "kind", s.kind.as_str());
    str_field(out, "side", s.side.as_str());
    float_field(out, "strength", s.strength);
    str_field(out, "reason", s.reason.as_str());
}

/// Serializes a strategy signal (`"type":"signal"`).
pub fn write_signal(out: &mut Vec<u8>, ctx: &JsonContext, s: &SignalEvent) {
    let (pp, _) = inst_head(out, ctx, "signal", s.instrument);
    int_field(out, "ts_event", s.ts_ns);
    signal_fields(out, ctx, s);
    str_field(out, "window", &ctx.window(s.window_idx, 0));
    bool_field(out, "final", s.is_final);
    dec_field(out, "price", s.price, pp);
    for (name, v) in VALUE_NAMES[s.kind as usize].iter().zip(s.values) {
        if !name.is_empty() {
            float_field(out, name, v);
        }
    }
    out.push(b'}');
}

/// Serializes a rejected signal (`"type":"signal_rejected"`): the signal's
/// identity, the `rule`, and the measured `value` and `limit` in the rule's
/// unit (see `docs/SIGNALS.md`).
pub fn write_rejection(out: &mut Vec<u8>, ctx: &JsonContext, r: &RejectionEvent) {
    let s = &r.signal;
    let (pp, sp) = inst_head(out, ctx, "signal_rejected", s.instrument);
    int_field(out, "ts_event", s.ts_ns);
    signal_fields(out, ctx, s);
    str_field(out, "rule", r.rule.as_str());
    let (v, l) = (r.value.get(), r.limit.get());
    let clamp = |x: i128| x.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    match r.rule {
        RiskRule::Threshold | RiskRule::Concentration => {
            float_field(out, "value", v as f64 / 1e6);
            float_field(out, "limit", l as f64 / 1e6);
        }
        RiskRule::KillSwitch | RiskRule::OrderNotional => {
            money_field(out, "value", v);
            money_field(out, "limit", l);
        }
        RiskRule::MarketClosed => {
            let sess = [
                Session::Closed,
                Session::PreMarket,
                Session::Regular,
                Session::AfterHours,
                Session::Continuous,
            ]
            .into_iter()
            .find(|x| *x as u8 as i128 == v)
            .unwrap_or(Session::Closed);
            str_field(out, "session", sess.as_str());
        }
        RiskRule::NoMarketData => int_field(out, "limit", clamp(l)),
        RiskRule::StaleData | RiskRule::RateLimit | RiskRule::MaxOpenOrders => {
            int_field(out, "value", clamp(v));
            int_field(out, "limit", clamp(l));
        }
        RiskRule::PositionLimit => {
            dec_field(out, "value", clamp(v), sp);
            dec_field(out, "limit", clamp(l), sp);
        }
        RiskRule::ZeroQuantity => dec_field(out, "price", clamp(v), pp),
    }
    out.push(b'}');
}

/// Serializes an order event (`"type":"order"`).
pub fn write_order(out: &mut Vec<u8>, ctx: &JsonContext, o: &OrderEvent) {
    let (pp, sp) = inst_head(out, ctx, "order", o.instrument);
    int_field(out, "ts_event", o.ts_ns);
    int_field(out, "order_id", o.id as i64);
    int_field(out, "signal_id", o.signal_id as i64);
    str_field(out, "strategy", ctx.strategy(o.strategy));
    str_field(out, "side", o.side.as_str());
    str_field(out, "order_type", o.order_type.as_str());
    str_field(out, "status", o.status.as_str());
    dec_field(out, "qty", o.qty, sp);
    dec_field(out, "filled", o.filled, sp);
    if o.order_type == OrderType::Limit {
        dec_field(out, "limit_price", o.limit_price, pp);
    }
    out.push(b'}');
}

/// Serializes a paper fill (`"type":"fill"`).
pub fn write_fill(out: &mut Vec<u8>, ctx: &JsonContext, f: &FillEvent) {
    let (pp, sp) = inst_head(out, ctx, "fill", f.instrument);
    int_field(out, "ts_event", f.ts_ns);
    int_field(out, "fill_id", f.id as i64);
    int_field(out, "order_id", f.order_id as i64);
    str_field(out, "strategy", ctx.strategy(f.strategy));
    str_field(out, "side", f.side.as_str());
    dec_field(out, "price", f.price, pp);
    dec_field(out, "qty", f.qty, sp);
    dec_field(out, "leaves", f.leaves, sp);
    str_field(out, "liquidity", f.liquidity.as_str());
    dec_field(out, "ref_price", f.ref_price, pp);
    money_field(out, "fee", f.fee.get());
    money_field(out, "realized_pnl", f.realized.get());
    dec_field(out, "position", f.position, sp);
    out.push(b'}');
}

/// Serializes a portfolio snapshot (`"type":"portfolio"`).
pub fn write_portfolio(out: &mut Vec<u8>, ctx: &JsonContext, p: &PortfolioEvent) {
    let sp = if p.has_position {
        inst_head(out, ctx, "portfolio", p.instrument).1
    } else {
        head(out, "portfolio", None);
        0
    };
    int_field(out, "ts_event", p.ts_ns);
    str_field(out, "trigger", p.trigger.as_str());
    money_field(out, "cash", p.cash.get());
    money_field(out, "equity", p.equity.get());
    money_field(out, "realized_pnl", p.realized.get());
    money_field(out, "unrealized_pnl", p.unrealized.get());
    money_field(out, "fees", p.fees.get());
    money_field(out, "max_drawdown", p.max_drawdown.get());
    int_field(out, "open_orders", i64::from(p.open_orders));
    bool_field(out, "kill_switch", p.kill_switch);
    if p.has_position {
        dec_field(out, "position", p.position, sp);
        if p.position != 0 {
            float_field(out, "avg_price", p.avg_price);
        }
    }
    out.push(b'}');
}

/// Serializes a market status change (`"type":"market_status"`).
pub fn write_market_status(out: &mut Vec<u8>, ctx: &JsonContext, m: &MarketStatusEvent) {
    head(out, "market_status", None);
    str_field(out, "market", ctx.calendar(m.calendar));
    int_field(out, "ts_event", m.ts_ns);
    str_field(out, "status", m.session.as_str());
    bool_field(out, "open", m.session.is_open());
    str_field(out, "previous", m.previous.as_str());
    if m.since_ns != i64::MIN {
        int_field(out, "since", m.since_ns);
    }
    if m.next_change_ns != i64::MAX {
        int_field(out, "next_change", m.next_change_ns);
    }
    out.push(b'}');
}

/// Serializes an indicator snapshot (`"type":"indicators"`): one key per
/// defined value, named from the configured periods (`sma_20`, `rsi_14`,
/// `macd`, `bb_upper`, `avg_volume_20`, `session_vwap`, ...); values not yet
/// defined are absent.
pub fn write_indicators(out: &mut Vec<u8>, ctx: &JsonContext, s: &IndicatorSnapshot) {
    let inst = ctx.registry.get(s.instrument);
    head(out, "indicators", inst);
    if inst.is_none() {
        str_field(out, "symbol", &format!("?:{}", s.instrument.0));
    }
    let wns = ctx.window_ns(s.window_idx).unwrap_or(0);
    str_field(out, "window", &ctx.window(s.window_idx, wns));
    int_field(out, "start", s.start_ns);
    if wns > 0 {
        int_field(out, "end", s.start_ns + wns);
    }
    bool_field(out, "final", s.is_final);
    for (name, v) in ctx.indicator_names.iter().zip(s.values.iter()) {
        float_field(out, name, *v);
    }
    out.push(b'}');
}

/// Serializes an anomaly (`"type":"anomaly"`) with `rule`, `severity`,
/// `ts_event`, and the values that triggered it (see
/// [`crate::event::Anomaly`]).
pub fn write_anomaly(out: &mut Vec<u8>, ctx: &JsonContext, a: &Anomaly) {
    let inst = ctx.registry.get(a.instrument);
    let (pp, sp) = inst.map_or((0, 0), |i| (i.price_precision, i.size_precision));
    head(out, "anomaly", inst);
    if inst.is_none() {
        str_field(out, "symbol", &format!("?:{}", a.instrument.0));
    }
    str_field(out, "rule", a.rule.as_str());
    str_field(out, "severity", a.severity.as_str());
    int_field(out, "ts_event", a.ts_event_ns);
    if a.window_idx != NO_WINDOW {
        let wns = ctx.window_ns(a.window_idx).unwrap_or(0);
        str_field(out, "window", &ctx.window(a.window_idx, wns));
        if a.start_ns != 0 {
            int_field(out, "start", a.start_ns);
        }
    }
    match a.rule {
        AnomalyRule::PriceSpike => {
            dec_field(out, "price", a.a, pp);
            float_field(out, "average", a.reference);
            float_field(out, "deviation_pct", a.value * 100.0);
            float_field(out, "threshold_pct", a.threshold * 100.0);
        }
        AnomalyRule::VolumeSpike => {
            dec_field(out, "volume", a.a, sp);
            float_field(out, "average_volume", a.reference);
            float_field(out, "ratio", a.value);
            float_field(out, "threshold", a.threshold);
        }
        AnomalyRule::RsiOverbought | AnomalyRule::RsiOversold => {
            float_field(out, "rsi", a.value);
            float_field(out, "previous_rsi", a.reference);
            float_field(out, "threshold", a.threshold);
            dec_field(out, "close", a.a, pp);
        }
        AnomalyRule::Latency => {
            int_field(out, "latency_ns", a.a);
            int_field(out, "threshold_ns", a.b);
        }
        AnomalyRule::SequenceGap => {
            int_field(out, "expected", a.a);
            int_field(out, "received", a.b);
            int_field(out, "missing", a.c);
        }
        AnomalyRule::StaleFeed => int_field(out, "detail", a.c),
        AnomalyRule::CrossedBook => {
            if a.a > 0 || a.b > 0 {
                dec_field(out, "bid", a.a, pp);
                dec_field(out, "ask", a.b, pp);
            } else {
                int_field(out, "detail", a.c);
            }
        }
    }
    out.push(b'}');
}

/// Serializes a movers list (`"type":"movers"`): `list`, `ts_event` and
/// `entries`, best first, each `{"symbol", "change_pct"}` (gainers, losers)
/// or `{"symbol", "notional"}` (most active, quote currency).
pub fn write_movers(out: &mut Vec<u8>, ctx: &JsonContext, m: &Movers) {
    head(out, "movers", None);
    str_field(out, "list", m.list.as_str());
    int_field(out, "ts_event", m.ts_event_ns);
    key(out, "entries");
    out.push(b'[');
    let vkey = match m.list {
        MoversList::MostActive => "notional",
        _ => "change_pct",
    };
    for (n, (id, v)) in m.entries().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'{');
        out.extend_from_slice(b"\"symbol\":\"");
        match ctx.registry.get(id) {
            Some(i) => escape_into(out, &i.key),
            None => {
                let _ = write!(out, "?:{}", id.0);
            }
        }
        out.push(b'"');
        float_field(out, vkey, v);
        out.push(b'}');
    }
    out.push(b']');
    out.push(b'}');
}

/// Serializes a sector update (`"type":"sector"`).
pub fn write_sector(out: &mut Vec<u8>, ctx: &JsonContext, s: &SectorUpdate) {
    head(out, "sector", None);
    match ctx.sector_names.get(usize::from(s.sector)) {
        Some(n) => str_field(out, "sector", n),
        None => int_field(out, "sector", i64::from(s.sector)),
    }
    int_field(out, "ts_event", s.ts_event_ns);
    float_field(out, "change_pct", s.change_pct);
    int_field(out, "members", i64::from(s.members));
    out.push(b'}');
}

/// Serializes a composite index value (`"type":"index"`).
pub fn write_index(out: &mut Vec<u8>, ctx: &JsonContext, x: &IndexUpdate) {
    head(out, "index", None);
    match ctx.index_names.get(usize::from(x.index)) {
        Some(n) => str_field(out, "index", n),
        None => int_field(out, "index", i64::from(x.index)),
    }
    int_field(out, "ts_event", x.ts_event_ns);
    float_field(out, "value", x.value);
    out.push(b'}');
}

/// Serializes any event.
pub fn write_event(out: &mut Vec<u8>, ctx: &JsonContext, ev: &Event) {
    match &ev.body {
        EventBody::Tick(t) => write_tick(out, ctx, t),
        EventBody::Bar(b) => write_bar(out, ctx, b),
        EventBody::Indicators(s) => write_indicators(out, ctx, s),
        EventBody::Anomaly(a) => write_anomaly(out, ctx, a),
        EventBody::Movers(m) => write_movers(out, ctx, m),
        EventBody::Sector(s) => write_sector(out, ctx, s),
        EventBody::Index(x) => write_index(out, ctx, x),
        EventBody::Signal(s) => write_signal(out, ctx, s),
        EventBody::SignalRejected(r) => write_rejection(out, ctx, r),
        EventBody::Order(o) => write_order(out, ctx, o),
        EventBody::Fill(f) => write_fill(out, ctx, f),
        EventBody::Portfolio(p) => write_portfolio(out, ctx, p),
        EventBody::MarketStatus(m) => write_market_status(out, ctx, m),
    }
}

/// Serializes an `error` object: `{"type":"error","code":..,"message":..}`.
pub fn write_error(out: &mut Vec<u8>, code: &str, message: &str) {
    head(out, "error", None);
    str_field(out, "code", code);
    str_field(out, "message", message);
    out.push(b'}');
}

/// Writes a JSON object into `out`: `f` adds its fields through [`Obj`].
/// Used for REST bodies and control messages, so every JSON byte the
/// engine emits still comes from this module.
///
/// ```
/// let mut out = Vec::new();
/// tickwire::json::object(&mut out, |o| {
///     o.str("type", "pong");
///     o.arr("xs", |a| {
///         a.int(1);
///         a.int(2);
///     });
/// });
/// assert_eq!(out, br#"{"type":"pong","xs":[1,2]}"#);
/// ```
pub fn object(out: &mut Vec<u8>, f: impl FnOnce(&mut Obj<'_>)) {
    out.push(b'{');
    let mut o = Obj { out, first: true };
    f(&mut o);
    out.push(b'}');
}

/// Writes a JSON array into `out`; see [`object`].
pub fn array(out: &mut Vec<u8>, f: impl FnOnce(&mut Arr<'_>)) {
    out.push(b'[');
    let mut a = Arr { out, first: true };
    f(&mut a);
    out.push(b']');
}

/// Field writer of a JSON object being built by [`object`].
#[derive(Debug)]
pub struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Obj<'_> {
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        escape_into(self.out, k);
        self.out.extend_from_slice(b"\":");
    }
    /// A string field (escaped).
    pub fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.out.push(b'"');
        escape_into(self.out, v);
        self.out.push(b'"');
    }
    /// An integer field.
    pub fn int(&mut self, k: &str, v: i64) {
        self.key(k);
        let _ = write!(self.out, "{v}");
    }
    /// An unsigned integer field.
    pub fn uint(&mut self, k: &str, v: u64) {
        self.key(k);
        let _ = write!(self.out, "{v}");
    }
    /// A float field; absent when not finite (EVENTS.md: never NaN/null).
    pub fn float(&mut self, k: &str, v: f64) {
        if v.is_finite() {
            self.key(k);
            let _ = write!(self.out, "{v}");
        }
    }
    /// A boolean field.
    pub fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
    }
    /// An exact decimal field (`"61837.63"`) from a scaled integer.
    pub fn decimal(&mut self, k: &str, v: i64, scale: u8) {
        self.key(k);
        self.out.push(b'"');
        self.out
            .extend_from_slice(format_scaled(v, scale).as_str().as_bytes());
        self.out.push(b'"');
    }
    /// A field whose value is JSON already serialized by this module.
    pub fn raw(&mut self, k: &str, json: &[u8]) {
        self.key(k);
        self.out.extend_from_slice(json);
    }
    /// An event as a nested object ([`write_event`]).
    pub fn event(&mut self, k: &str, ctx: &JsonContext, ev: &Event) {
        self.key(k);
        write_event(self.out, ctx, ev);
    }
    /// A nested object.
    pub fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj<'_>)) {
        self.key(k);
        object(self.out, f);
    }
    /// A nested array.
    pub fn arr(&mut self, k: &str, f: impl FnOnce(&mut Arr<'_>)) {
        self.key(k);
        array(self.out, f);
    }
    /// A latency summary object (ns): `count`, `p50`, `p90`, `p99`,
    /// `p999`, `p9999`, `max`, `mean`.
    pub fn percentiles(&mut self, k: &str, p: &Percentiles) {
        self.obj(k, |o| {
            o.uint("count", p.count);
            o.uint("p50", p.p50);
            o.uint("p90", p.p90);
            o.uint("p99", p.p99);
            o.uint("p999", p.p999);
            o.uint("p9999", p.p9999);
            o.uint("max", p.max);
            o.float("mean", p.mean);
        });
    }
}

/// Element writer of a JSON array being built by [`array()`].
#[derive(Debug)]
pub struct Arr<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Arr<'_> {
    fn sep(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }
    /// A string element.
    pub fn str(&mut self, v: &str) {
        self.sep();
        self.out.push(b'"');
        escape_into(self.out, v);
        self.out.push(b'"');
    }
    /// An integer element.
    pub fn int(&mut self, v: i64) {
        self.sep();
        let _ = write!(self.out, "{v}");
    }
    /// An element that is JSON already serialized by this module.
    pub fn raw(&mut self, json: &[u8]) {
        self.sep();
        self.out.extend_from_slice(json);
    }
    /// An event element ([`write_event`]).
    pub fn event(&mut self, ctx: &JsonContext, ev: &Event) {
        self.sep();
        write_event(self.out, ctx, ev);
    }
    /// A bar element ([`write_bar`]).
    pub fn bar(&mut self, ctx: &JsonContext, b: &Bar) {
        self.sep();
        write_bar(self.out, ctx, b);
    }
    /// An object element.
    pub fn obj(&mut self, f: impl FnOnce(&mut Obj<'_>)) {
        self.sep();
        object(self.out, f);
    }
}

/// `{"type":"pong"}`.
pub fn write_pong(out: &mut Vec<u8>) {
    object(out, |o| o.str("type", "pong"));
}

/// A subscription acknowledgement: `{"type":"subscribed"|"unsubscribed",
/// "channels":[..],"symbols":[..]}`, listing what the request named.
pub fn write_subscription_ack<'a>(
    out: &mut Vec<u8>,
    subscribed: bool,
    channels: impl IntoIterator<Item = &'a str>,
    symbols: impl IntoIterator<Item = &'a str>,
) {
    object(out, |o| {
        o.str(
            "type",
            if subscribed {
                "subscribed"
            } else {
                "unsubscribed"
            },
        );
        o.arr("channels", |a| channels.into_iter().for_each(|c| a.str(c)));
        o.arr("symbols", |a| symbols.into_iter().for_each(|c| a.str(c)));
    });
}

/// Engine statistics for the `stats` channel and `/api/v1/status`.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    /// When the figures were taken, ns since the Unix epoch.
    pub ts: i64,
    /// Seconds since the engine started.
    pub uptime_secs: f64,
    /// Market messages (ticks) per second over the last period.
    pub msgs_per_sec: f64,
    /// Events reaching the fan-out per second over the last period.
    pub events_per_sec: f64,
    /// Messages sent to subscribers per second over the last period.
    pub sent_per_sec: f64,
    /// Ticks decoded since start.
    pub ticks: u64,
    /// Decode errors since start (all kinds).
    pub decode_errors: u64,
    /// Ring-full events since start, all rings.
    pub ring_full: u64,
    /// Drops since start, all rings.
    pub drops: u64,
    /// Connected WebSocket subscribers.
    pub subscribers: u64,
    /// Per-stage latency over the last period (ns), in pipeline order.
    pub stages: Vec<(&'static str, Percentiles)>,
}

/// Serializes `{"type":"stats",...}` (see `docs/PROTOCOL.md`).
pub fn write_stats(out: &mut Vec<u8>, s: &EngineStats) {
    object(out, |o| {
        o.str("type", "stats");
        o.int("ts", s.ts);
        o.float("uptime_s", s.uptime_secs);
        o.float("msgs_per_sec", s.msgs_per_sec);
        o.float("events_per_sec", s.events_per_sec);
        o.float("sent_per_sec", s.sent_per_sec);
        o.uint("ticks", s.ticks);
        o.uint("decode_errors", s.decode_errors);
        o.uint("ring_full", s.ring_full);
        o.uint("drops", s.drops);
        o.uint("subscribers", s.subscribers);
        o.obj("latency_ns", |o| {
            for (name, p) in &s.stages {
                o.percentiles(name, p);
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruments::InstrumentId;
    use crate::tick::Side;

    fn ctx() -> JsonContext {
        let mut r = InstrumentRegistry::new();
        r.add("BINANCE:BTCUSDT", 2, 5, None).unwrap();
        JsonContext::new(r, &[60_000_000_000])
    }

    fn parse(b: &[u8]) -> serde_json::Value {
        serde_json::from_slice(b).expect("valid JSON")
    }

    #[test]
    fn trade_matches_events_md() {
        let t = Tick::trade(
            InstrumentId(0),
            1_723_161_255_342_000_000,
            1_723_161_254_087_896_568,
            6_183_763,
            2_000,
            Side::Sell,
            3_735_683_259,
        );
        let mut out = Vec::new();
        write_tick(&mut out, &ctx(), &t);
        let v = parse(&out);
        assert_eq!(
            v,
            serde_json::json!({"type":"trade","symbol":"BINANCE:BTCUSDT","ts_event":1723161255342000000i64,
                "ts_recv":1723161254087896568i64,"price":"61837.63","size":"0.02000","side":"sell","trade_id":"3735683259"})
        );
    }

    #[test]
    fn bar_has_window_and_exact_decimals() {
        let b = Bar {
            instrument: InstrumentId(0),
            window_idx: 0,
            is_final: true,
            trades: 412,
            window_ns: 60_000_000_000,
            start_ns: 1_723_161_240_000_000_000,
            open: 6_183_763,
            high: 6_185_000,
            low: 6_183_001,
            close: 6_184_210,
            volume: 1_234_567,
            buy_volume: 1_000_000,
            sell_volume: 234_567,
            vwap: 61840.1234,
        };
        let mut out = Vec::new();
        write_bar(&mut out, &ctx(), &b);
        let v = parse(&out);
        assert_eq!(v["window"], "1m");
        assert_eq!(v["end"], 1_723_161_300_000_000_000i64);
        assert_eq!(v["high"], "61850.00");
        assert_eq!(v["volume"], "12.34567");
        assert_eq!(v["vwap"], 61840.1234);
        assert_eq!(v["final"], true);
    }

    #[test]
    fn indicators_name_keys_from_periods_and_omit_absent_values() {
        let mut setup = KernelSetup::with_windows(vec![60_000_000_000]);
        setup.indicators.sma = vec![10, 20];
        let c = JsonContext::for_kernel(ctx().registry().clone(), &setup);
        let mut s = IndicatorSnapshot::empty(
            crate::instruments::InstrumentId(0),
            0,
            true,
            1_723_161_240_000_000_000,
        );
        s.values[0] = 61801.25; // sma_10
        s.values[5] = 4.5; // macd (sma_10, sma_20, ema_12, ema_26, rsi_14, macd)
        let mut out = Vec::new();
        write_indicators(&mut out, &c, &s);
        assert_eq!(
            parse(&out),
            serde_json::json!({"type":"indicators","symbol":"BINANCE:BTCUSDT","window":"1m",
                "start":1723161240000000000i64,"end":1723161300000000000i64,"final":true,
                "sma_10":61801.25,"macd":4.5})
        );
    }

    #[test]
    fn anomaly_movers_sector_index() {
        use crate::event::{Anomaly, IndexUpdate, MAX_MOVERS, Movers, SectorUpdate, Severity};
        let id = crate::instruments::InstrumentId(0);
        let a = Anomaly {
            instrument: id,
            rule: AnomalyRule::PriceSpike,
            severity: Severity::Warning,
            window_idx: 0,
            ts_event_ns: 7,
            start_ns: 0,
            value: 0.0625,
            reference: 61_000.0,
            threshold: 0.05,
            a: 6_481_250,
            b: 0,
            c: 0,
        };
        let mut out = Vec::new();
        write_event(
            &mut out,
            &ctx(),
            &Event {
                recv_ns: 0,
                body: EventBody::Anomaly(a),
            },
        );
        assert_eq!(
            parse(&out),
            serde_json::json!({"type":"anomaly","symbol":"BINANCE:BTCUSDT","rule":"price_spike",
                "severity":"warning","ts_event":7,"window":"1m","price":"64812.50","average":61000.0,
                "deviation_pct":6.25,"threshold_pct":5.0})
        );
        let gap = Anomaly {
            rule: AnomalyRule::SequenceGap,
            window_idx: NO_WINDOW,
            value: 3.0,
            a: 100,
            b: 103,
            c: 3,
            ..a
        };
        out.clear();
        write_anomaly(&mut out, &ctx(), &gap);
        let v = parse(&out);
        assert_eq!(
            (&v["rule"], &v["expected"], &v["received"], &v["missing"]),
            (
                &serde_json::json!("sequence_gap"),
                &serde_json::json!(100),
                &serde_json::json!(103),
                &serde_json::json!(3)
            )
        );
        assert!(v.get("window").is_none());

        let mut m = Movers {
            list: MoversList::MostActive,
            len: 1,
            ts_event_ns: 9,
            instruments: [id; MAX_MOVERS],
            values: [0.0; MAX_MOVERS],
        };
        m.values[0] = 1236.75;
        out.clear();
        write_movers(&mut out, &ctx(), &m);
        assert_eq!(
            parse(&out),
            serde_json::json!({"type":"movers","list":"most_active","ts_event":9,
                "entries":[{"symbol":"BINANCE:BTCUSDT","notional":1236.75}]})
        );
        let mut r = InstrumentRegistry::new();
        r.add("SIM:A", 2, 2, Some("crypto".into())).unwrap();
        let mut setup = KernelSetup::with_windows(vec![1_000_000_000]);
        setup.overview.indices = vec![crate::kernel::IndexSpec {
            name: "MAJ".into(),
            constituents: vec![(id, 1.0, 0)],
        }];
        let c = JsonContext::for_kernel(r, &setup);
        out.clear();
        write_sector(
            &mut out,
            &c,
            &SectorUpdate {
                sector: 0,
                members: 1,
                ts_event_ns: 5,
                change_pct: -1.5,
            },
        );
        assert_eq!(
            parse(&out),
            serde_json::json!({"type":"sector","sector":"crypto","ts_event":5,"change_pct":-1.5,"members":1})
        );
        out.clear();
        write_index(
            &mut out,
            &c,
            &IndexUpdate {
                index: 0,
                ts_event_ns: 5,
                value: 101.25,
            },
        );
        assert_eq!(
            parse(&out),
            serde_json::json!({"type":"index","index":"MAJ","ts_event":5,"value":101.25})
        );
    }

    #[test]
    fn non_finite_floats_are_absent() {
        let mut out = b"{\"a\":1".to_vec();
        float_field(&mut out, "x", f64::NAN);
        float_field(&mut out, "y", f64::INFINITY);
        out.push(b'}');
        assert_eq!(parse(&out), serde_json::json!({"a":1}));
    }

    #[test]
    fn decision_events_match_signals_md() {
        use crate::signal::events::*;
        use crate::signal::money::{Amount, MONEY_ONE};
        let c = ctx().with_decision_names(vec!["ema_cross".into()], vec!["crypto".into()]);
        let sig = SignalEvent {
            id: 7,
            ts_ns: 1_723_161_300_000_000_000,
            price: 6_184_210,
            strength: 0.75,
            values: [61840.5, 61830.25, 0.0],
            instrument: InstrumentId(0),
            strategy: 0,
            kind: StrategyKind::MaCrossover,
            side: Side::Buy,
            reason: SignalReason::MaCrossUp,
            window_idx: 0,
            is_final: true,
        };
        let mut out = Vec::new();
        write_signal(&mut out, &c, &sig);
        assert_eq!(
            parse(&out),
            serde_json::json!({"type":"signal","symbol":"BINANCE:BTCUSDT","ts_event":1723161300000000000i64,
                "signal_id":7,"strategy":"ema_cross","kind":"ma_crossover","side":"buy","strength":0.75,
                "reason":"ma_cross_up","window":"1m","final":true,"price":"61842.10","fast":61840.5,"slow":61830.25})
        );
        out.clear();
        let rej = RejectionEvent {
            signal: sig,
            rule: RiskRule::PositionLimit,
            value: Amount::new(150_000),
            limit: Amount::new(100_000),
        };
        write_rejection(&mut out, &c, &rej);
        let v = parse(&out);
        assert_eq!(v["type"], "signal_rejected");
        assert_eq!(v["rule"], "position_limit");
        assert_eq!(v["value"], "1.50000");
        assert_eq!(v["limit"], "1.00000");
        out.clear();
        let fill = FillEvent {
            id: 3,
            order_id: 2,
            ts_ns: 5,
            price: 6_184_382,
            ref_price: 6_183_763,
            qty: 1_617,
            leaves: 0,
            position: -1_617,
            fee: Amount::new(MONEY_ONE / 100),
            realized: Amount::new(-MONEY_ONE * 3 / 2),
            instrument: InstrumentId(0),
            strategy: 0,
            side: Side::Sell,
            liquidity: Liquidity::Taker,
        };
        write_fill(&mut out, &c, &fill);
        let v = parse(&out);
        assert_eq!(v["price"], "61843.82");
        assert_eq!(v["qty"], "0.01617");
        assert_eq!(v["position"], "-0.01617");
        assert_eq!(v["fee"], "0.01");
        assert_eq!(v["realized_pnl"], "-1.50");
        assert_eq!(v["liquidity"], "taker");
        out.clear();
        let p = PortfolioEvent {
            ts_ns: 9,
            cash: Amount::new(100_000 * MONEY_ONE),
            equity: Amount::new(100_000 * MONEY_ONE + 1),
            trigger: SnapshotTrigger::Interval,
            ..PortfolioEvent::default()
        };
        write_portfolio(&mut out, &c, &p);
        let v = parse(&out);
        assert_eq!(v["cash"], "100000.00");
        assert_eq!(v["equity"], "100000.000000000000000001");
        assert!(v.get("symbol").is_none() && v.get("position").is_none());
        assert_eq!(v["trigger"], "interval");
        out.clear();
        let m = MarketStatusEvent {
            since_ns: i64::MIN,
            ts_ns: 11,
            next_change_ns: i64::MAX,
            calendar: 0,
            session: Session::Continuous,
            previous: Session::Closed,
        };
        write_market_status(&mut out, &c, &m);
        assert_eq!(
            parse(&out),
            serde_json::json!({"type":"market_status","market":"crypto","ts_event":11,
                "status":"continuous","open":true,"previous":"closed"})
        );
    }

    #[test]
    fn builder_writes_valid_nested_json() {
        let mut out = Vec::new();
        object(&mut out, |o| {
            o.str("type", "x\"y");
            o.int("n", -3);
            o.uint("u", 7);
            o.float("nan", f64::NAN);
            o.float("f", 1.5);
            o.bool("b", true);
            o.decimal("price", 6_183_763, 2);
            o.obj("empty", |_| {});
            o.arr("list", |a| {
                a.str("a");
                a.obj(|o| o.int("k", 1));
                a.raw(b"null");
            });
            o.percentiles("lat", &Percentiles::default());
        });
        let v = parse(&out);
        assert_eq!(v["type"], "x\"y");
        assert_eq!(v["n"], -3);
        assert!(v.get("nan").is_none());
        assert_eq!(v["price"], "61837.63");
        assert_eq!(v["list"][1]["k"], 1);
        assert_eq!(v["lat"]["p99"], 0);
        assert_eq!(v["empty"], serde_json::json!({}));
    }

    #[test]
    fn control_messages() {
        let mut out = Vec::new();
        write_pong(&mut out);
        assert_eq!(parse(&out), serde_json::json!({"type":"pong"}));
        out.clear();
        write_subscription_ack(&mut out, true, ["trades", "bars.1m"], ["SIM:A"]);
        assert_eq!(
            parse(&out),
            serde_json::json!({"type":"subscribed","channels":["trades","bars.1m"],"symbols":["SIM:A"]})
        );
        out.clear();
        let s = EngineStats {
            stages: vec![("kernel", Percentiles::default())],
            msgs_per_sec: 10.0,
            ..EngineStats::default()
        };
        write_stats(&mut out, &s);
        let v = parse(&out);
        assert_eq!(v["type"], "stats");
        assert_eq!(v["msgs_per_sec"], 10.0);
        assert!(v["latency_ns"]["kernel"].is_object());
    }

    #[test]
    fn error_escapes() {
        let mut out = Vec::new();
        write_error(&mut out, "bad", "a \"quoted\"\nline\u{1}");
        let v = parse(&out);
        assert_eq!(v["message"], "a \"quoted\"\nline\u{1}");
    }
}
