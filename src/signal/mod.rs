//! Signal/risk stage: kernel events in, decisions and a paper portfolio out.
//!
//! ```text
//! kernel event ──▶ marks, stage clock, market calendars ──▶ market_status
//!      │                   │
//!      │                   └──▶ paper broker matches open orders ──▶ fill, order
//!      │                        portfolio marked to market ──▶ portfolio (kill switch, interval)
//!      └──▶ strategy_input ──▶ strategies ──▶ signal
//!                                   └──▶ threshold, risk ──▶ signal_rejected | order ──▶ fill
//! ```
//!
//! Determinism: decisions use event time only. The stage clock is the
//! largest venue event time seen; ticks without a venue time
//! ([`crate::tick::flags::NO_EVENT_TIME`], whose time is the local receive
//! time) do not move it, and their data time is the stage clock. Every id is
//! a counter. So the same input and config give the same decisions, byte for
//! byte, in a replay.
//!
//! Allocation: everything is sized in [`SignalStage::new`] (per-instrument
//! marks, strategy state, indicator instances, order table, trade-log and
//! equity-curve rings); `step` allocates nothing as long as the caller's
//! output buffer keeps its capacity (see `tests/signal_no_alloc.rs`).
//!
//! See `docs/SIGNALS.md` for the rules, config keys and event shapes.

pub mod broker;
pub mod calendar;
pub mod events;
pub mod local;
pub mod money;
pub mod portfolio;
pub mod risk;
pub mod strategies;
pub mod strategy;

use crate::config::{
    ConfigError, EngineConfig, OrderTypeConfig, SizingMode, StrategyConfig, StrategyKindConfig,
};
use crate::decimal::parse_scaled;
use crate::event::{Event, EventBody};
use crate::instruments::{InstrumentId, InstrumentRegistry};
use crate::tick::{Side, Tick, TickKind, flags};

use broker::{BrokerSetup, NewOrder, PaperBroker};
use calendar::{Calendars, SessionAt};
use events::{
    MarketStatusEvent, OrderType, PortfolioEvent, RejectionEvent, RiskRule, Session, SignalEvent,
    SnapshotTrigger,
};
use local::LocalIndicators;
use money::{Amount, MONEY_ONE, Round, bps_to_rate_e8, mul_div, parse_money, pow10};
use portfolio::Portfolio;
use risk::{OrderCheck, RiskEngine, RiskSetup};
use strategies::{BollingerMode, BollingerStrategy, MaCrossover, MaKind, RsiReversion};
use strategy::{IndicatorKey, SignalDraft, Strategy, StrategyInput};

pub use strategy::strategy_input;

/// Most strategies one stage runs.
pub const MAX_STRATEGIES: usize = 32;

/// Most market-status events emitted for one calendar in one step; when the
/// clock jumps over more boundaries, only the session finally in force is
/// reported.
pub const MAX_STATUS_PER_STEP: usize = 8;

/// Latest marks for one instrument, in price units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// Last trade price (0 = none yet).
    pub last: i64,
    /// Best bid (0 = none yet).
    pub bid: i64,
    /// Best ask (0 = none yet).
    pub ask: i64,
    /// Event time of the latest update, ns.
    pub ts_ns: i64,
}

/// Counters the stage keeps (plain integers: single-threaded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignalStats {
    /// Signals emitted by strategies.
    pub signals: u64,
    /// Signals rejected (threshold or risk), all rules.
    pub rejected: u64,
    /// Rejections per [`RiskRule`] (index = the rule's discriminant).
    pub rejected_by_rule: [u64; 11],
    /// Orders placed.
    pub orders: u64,
    /// Fills.
    pub fills: u64,
    /// Market-status events.
    pub market_status: u64,
    /// Kill-switch trips.
    pub kill_switch_trips: u64,
    /// Events whose instrument id is not in the registry.
    pub bad_instrument: u64,
}

/// How many units an order is for.
#[derive(Debug, Clone, PartialEq)]
pub enum Sizing {
    /// A fixed quantity per instrument, size units.
    FixedQuantity(Vec<i64>),
    /// A fixed notional, money.
    FixedNotional(i128),
    /// A fraction of equity, ppm.
    EquityPpm(i64),
}

#[derive(Debug)]
struct Slot {
    strategy: Box<dyn Strategy>,
    window: u8,
    enabled: Vec<bool>,
    on_provisional: bool,
    threshold: f64,
    order_type: OrderType,
    limit_offset_e8: i64,
}

#[derive(Debug, Clone, Copy)]
struct CalState {
    cal: u8,
    at: Option<SessionAt>,
}

/// The signal/risk stage.
#[derive(Debug)]
pub struct SignalStage {
    marks: Vec<Marks>,
    has_data: Vec<bool>,
    inv_scale: Vec<f64>,
    events: u64,
    slots: Vec<Slot>,
    tick_slots: bool,
    local: LocalIndicators,
    broker: PaperBroker,
    portfolio: Portfolio,
    risk: RiskEngine,
    calendars: Calendars,
    cal_state: Vec<CalState>,
    session_of: Vec<Option<usize>>,
    sizing: Sizing,
    reverse_on_opposite: bool,
    now_ns: i64,
    next_signal_id: u64,
    snapshot_every_ns: i64,
    next_snapshot_ns: i64,
    stats: SignalStats,
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

fn opt_money(key: &str, s: &str) -> Result<Option<i128>, ConfigError> {
    let v = parse_money(s).map_err(|m| invalid(key, m))?;
    if v < 0 {
        return Err(invalid(key, "must be ≥ 0 (0 disables the rule)"));
    }
    Ok((v > 0).then_some(v))
}

fn build_strategy(
    i: usize,
    c: &StrategyConfig,
    n: usize,
) -> Result<Box<dyn Strategy>, ConfigError> {
    let key = |k: &str| format!("signal.strategies[{i}].{k}");
    let period = |k: &str, v: Option<u16>, d: u16| -> Result<u16, ConfigError> {
        let v = v.unwrap_or(d);
        if v == 0 {
            return Err(invalid(key(k), "must be ≥ 1"));
        }
        Ok(v)
    };
    // Keys that do not apply to the kind are errors (a typo'd strategy
    // must not run with defaults).
    let stray: &[(&str, bool)] = match c.kind {
        StrategyKindConfig::MaCrossover => &[
            ("period", c.period.is_some()),
            ("oversold", c.oversold.is_some()),
            ("overbought", c.overbought.is_some()),
            ("k", c.k.is_some()),
            ("mode", c.mode.is_some()),
        ],
        StrategyKindConfig::RsiReversion => &[
            ("fast", c.fast.is_some()),
            ("slow", c.slow.is_some()),
            ("ma", c.ma.is_some()),
            ("full_strength_pct", c.full_strength_pct.is_some()),
            ("k", c.k.is_some()),
            ("mode", c.mode.is_some()),
        ],
        StrategyKindConfig::Bollinger => &[
            ("fast", c.fast.is_some()),
            ("slow", c.slow.is_some()),
            ("ma", c.ma.is_some()),
            ("full_strength_pct", c.full_strength_pct.is_some()),
            ("oversold", c.oversold.is_some()),
            ("overbought", c.overbought.is_some()),
        ],
    };
    if let Some((k, _)) = stray.iter().find(|(_, set)| *set) {
        return Err(invalid(
            key(k),
            format!("does not apply to kind '{}'", c.kind.as_str()),
        ));
    }
    Ok(match c.kind {
        StrategyKindConfig::MaCrossover => {
            let fast = period("fast", c.fast, 12)?;
            let slow = period("slow", c.slow, 26)?;
            if fast >= slow {
                return Err(invalid(key("fast"), "must be smaller than slow"));
            }
            let fs = c.full_strength_pct.unwrap_or(0.1);
            if !(fs > 0.0 && fs.is_finite()) {
                return Err(invalid(key("full_strength_pct"), "must be > 0"));
            }
            let ma = match c.ma.as_deref().unwrap_or("ema") {
                "sma" => MaKind::Sma,
                "ema" => MaKind::Ema,
                other => {
                    return Err(invalid(
                        key("ma"),
                        format!("'{other}' must be \"sma\" or \"ema\""),
                    ));
                }
            };
            Box::new(MaCrossover::new(fast, slow, ma, fs, n))
        }
        StrategyKindConfig::RsiReversion => {
            let p = period("period", c.period, 14)?;
            let lo = c.oversold.unwrap_or(30.0);
            let hi = c.overbought.unwrap_or(70.0);
            if !(0.0 < lo && lo < hi && hi < 100.0) {
                return Err(invalid(
                    key("oversold"),
                    "need 0 < oversold < overbought < 100",
                ));
            }
            Box::new(RsiReversion::new(p, lo, hi, n))
        }
        StrategyKindConfig::Bollinger => {
            let p = period("period", c.period, 20)?;
            let k = c.k.unwrap_or(2.0);
            if !(k > 0.0 && k <= 10.0) {
                return Err(invalid(key("k"), "must be in (0, 10]"));
            }
            let mode = match c.mode.as_deref().unwrap_or("breakout") {
                "breakout" => BollingerMode::Breakout,
                "reversion" => BollingerMode::Reversion,
                other => {
                    return Err(invalid(
                        key("mode"),
                        format!("'{other}' must be \"breakout\" or \"reversion\""),
                    ));
                }
            };
            Box::new(BollingerStrategy::new(p, k, mode, n))
        }
    })
}

impl SignalStage {
    /// Builds the stage from the `[signal]`, `[[signal.strategies]]`,
    /// `[risk]`, `[broker]` and `[[calendars]]` sections for `registry`.
    /// All state is allocated here.
    ///
    /// # Errors
    /// The first invalid key, named `section.key`.
    pub fn new(cfg: &EngineConfig, registry: &InstrumentRegistry) -> Result<Self, ConfigError> {
        Self::build(cfg, registry, true)
    }

    /// Checks the stage's config sections as [`SignalStage::new`] would,
    /// without expanding calendars (cheap enough for config validation).
    ///
    /// # Errors
    /// The first invalid key, named `section.key`.
    pub fn check_config(
        cfg: &EngineConfig,
        registry: &InstrumentRegistry,
    ) -> Result<(), ConfigError> {
        Self::build(cfg, registry, false).map(|_| ())
    }

    fn build(
        cfg: &EngineConfig,
        registry: &InstrumentRegistry,
        expand_calendars: bool,
    ) -> Result<Self, ConfigError> {
        let n = registry.len();
        let sc = &cfg.signal;
        let windows = cfg.window_ns()?;
        if !(0.0..=1.0).contains(&sc.threshold) {
            return Err(invalid("signal.threshold", "must be between 0 and 1"));
        }
        if sc.strategies.len() > MAX_STRATEGIES {
            return Err(invalid(
                "signal.strategies",
                format!("at most {MAX_STRATEGIES} strategies"),
            ));
        }
        let mut slots = Vec::new();
        let mut needs: Vec<Vec<IndicatorKey>> = vec![Vec::new(); windows.len()];
        for (i, c) in sc.strategies.iter().enumerate() {
            let key = |k: &str| format!("signal.strategies[{i}].{k}");
            if c.name.trim().is_empty() {
                return Err(invalid(key("name"), "give the strategy a name"));
            }
            if sc.strategies[..i].iter().any(|o| o.name == c.name) {
                return Err(invalid(key("name"), format!("'{}' is used twice", c.name)));
            }
            let window = match &c.window {
                None => 0u8,
                Some(w) => {
                    let ns =
                        crate::config::parse_window(w).map_err(|m| invalid(key("window"), m))?;
                    windows.iter().position(|x| *x == ns).ok_or_else(|| {
                        invalid(
                            key("window"),
                            format!(
                                "'{w}' is not one of kernel.windows {:?}",
                                cfg.kernel.windows
                            ),
                        )
                    })? as u8
                }
            };
            let mut enabled = vec![c.instruments.is_empty(); n];
            for s in &c.instruments {
                if !s.contains(':') {
                    return Err(invalid(
                        key("instruments"),
                        format!("'{s}' must be VENUE:SYMBOL"),
                    ));
                }
                // Instruments not configured (e.g. narrowed by --symbols)
                // are ignored.
                if let Some(id) = registry.lookup_key(s) {
                    enabled[id.0 as usize] = true;
                }
            }
            let threshold = c.threshold.unwrap_or(sc.threshold);
            if !(0.0..=1.0).contains(&threshold) {
                return Err(invalid(key("threshold"), "must be between 0 and 1"));
            }
            if !(c.limit_offset_bps >= 0.0 && c.limit_offset_bps < 10_000.0) {
                return Err(invalid(key("limit_offset_bps"), "must be in [0, 10000)"));
            }
            let strategy = build_strategy(i, c, n)?;
            needs[usize::from(window)].extend(strategy.needs());
            slots.push(Slot {
                strategy,
                window,
                enabled,
                on_provisional: c.on_provisional,
                threshold,
                order_type: match c.order_type {
                    OrderTypeConfig::Market => OrderType::Market,
                    OrderTypeConfig::Limit => OrderType::Limit,
                },
                limit_offset_e8: bps_to_rate_e8(c.limit_offset_bps),
            });
        }
        if !sc.local_indicators {
            needs.iter_mut().for_each(Vec::clear);
        }
        if sc.equity_curve_capacity == 0 || sc.trade_log_capacity == 0 {
            return Err(invalid(
                "signal.trade_log_capacity",
                "trade_log_capacity and equity_curve_capacity must be ≥ 1",
            ));
        }

        let b = &cfg.broker;
        let cash = parse_money(&b.initial_cash).map_err(|m| invalid("broker.initial_cash", m))?;
        if cash <= 0 {
            return Err(invalid("broker.initial_cash", "must be > 0"));
        }
        for (k, v) in [
            ("broker.slippage_bps", b.slippage_bps),
            ("broker.taker_fee_bps", b.taker_fee_bps),
            ("broker.maker_fee_bps", b.maker_fee_bps),
        ] {
            if !(0.0..1_000.0).contains(&v) {
                return Err(invalid(k, "must be in [0, 1000) basis points"));
            }
        }
        if b.order_ttl_secs == 0 {
            return Err(invalid("broker.order_ttl_secs", "must be ≥ 1"));
        }
        let sizing = match b.sizing {
            SizingMode::FixedQuantity => {
                let mut q = Vec::with_capacity(n);
                for inst in registry.iter() {
                    let v = parse_scaled(&b.quantity, inst.size_precision).map_err(|e| {
                        invalid(
                            "broker.quantity",
                            format!("'{}' for {}: {e}", b.quantity, inst.key),
                        )
                    })?;
                    if v <= 0 {
                        return Err(invalid("broker.quantity", "must be > 0"));
                    }
                    q.push(v);
                }
                Sizing::FixedQuantity(q)
            }
            SizingMode::FixedNotional => {
                let v = parse_money(&b.notional).map_err(|m| invalid("broker.notional", m))?;
                if v <= 0 {
                    return Err(invalid("broker.notional", "must be > 0"));
                }
                Sizing::FixedNotional(v)
            }
            SizingMode::EquityPct => {
                if !(b.equity_pct > 0.0 && b.equity_pct <= 100.0) {
                    return Err(invalid("broker.equity_pct", "must be in (0, 100]"));
                }
                Sizing::EquityPpm((b.equity_pct * 10_000.0).round() as i64)
            }
        };

        let r = &cfg.risk;
        let mut max_position = vec![None; n];
        for (sym, q) in &r.max_position {
            if !sym.contains(':') {
                return Err(invalid(
                    format!("risk.max_position.\"{sym}\""),
                    "keys must be VENUE:SYMBOL",
                ));
            }
            if let Some(id) = registry.lookup_key(sym) {
                let inst = registry
                    .get(id)
                    .ok_or_else(|| invalid("risk.max_position", "?"))?;
                let v = parse_scaled(q, inst.size_precision).map_err(|e| {
                    invalid(
                        format!("risk.max_position.\"{sym}\""),
                        format!("'{q}': {e}"),
                    )
                })?;
                if v <= 0 {
                    return Err(invalid(
                        format!("risk.max_position.\"{sym}\""),
                        "must be > 0",
                    ));
                }
                max_position[id.0 as usize] = Some(v);
            }
        }
        if !(0.0..=100_000.0).contains(&r.max_concentration_pct) {
            return Err(invalid(
                "risk.max_concentration_pct",
                "must be ≥ 0 (0 disables the rule)",
            ));
        }
        if r.max_open_orders == 0 || r.max_open_orders > 100_000 {
            return Err(invalid(
                "risk.max_open_orders",
                "must be between 1 and 100000",
            ));
        }
        if r.max_orders_per_window > 100_000 {
            return Err(invalid("risk.max_orders_per_window", "must be ≤ 100000"));
        }
        if r.max_orders_per_window > 0 && r.rate_window_secs == 0 {
            return Err(invalid("risk.rate_window_secs", "must be ≥ 1"));
        }
        let risk_setup = RiskSetup {
            max_position,
            max_concentration_ppm: (r.max_concentration_pct > 0.0)
                .then(|| (r.max_concentration_pct * 10_000.0).round() as i64),
            max_order_notional: opt_money("risk.max_order_notional", &r.max_order_notional)?,
            max_open_orders: r.max_open_orders,
            max_daily_loss: opt_money("risk.max_daily_loss", &r.max_daily_loss)?,
            kill_switch_auto_reset: r.kill_switch_auto_reset,
            stale_after_ns: (r.stale_after_ms > 0).then(|| r.stale_after_ms as i64 * 1_000_000),
            allow_when_closed: r.allow_when_closed,
            allow_extended_hours: r.allow_extended_hours,
            max_orders_per_window: r.max_orders_per_window,
            rate_window_ns: (r.rate_window_secs.max(1) as i64).saturating_mul(1_000_000_000),
        };
        let broker_setup = BrokerSetup {
            slippage_e8: bps_to_rate_e8(b.slippage_bps),
            taker_fee_e8: bps_to_rate_e8(b.taker_fee_bps),
            maker_fee_e8: bps_to_rate_e8(b.maker_fee_bps),
            max_open_orders: r.max_open_orders,
            ttl_ns: (b.order_ttl_secs as i64).saturating_mul(1_000_000_000),
        };
        if cfg.calendars.len() > usize::from(u8::MAX) {
            return Err(invalid("calendars", "at most 255 calendars"));
        }
        let calendars = Calendars::new(&cfg.calendars, registry, expand_calendars)
            .map_err(|m| invalid("calendars", m))?;
        // Track only calendars some instrument uses, in config order.
        let mut used: Vec<u8> = (0..n).filter_map(|i| calendars.of_instrument(i)).collect();
        used.sort_unstable();
        used.dedup();
        let cal_state: Vec<CalState> = used
            .iter()
            .map(|c| CalState { cal: *c, at: None })
            .collect();
        let session_of: Vec<Option<usize>> = (0..n)
            .map(|i| {
                let c = calendars.of_instrument(i)?;
                used.iter().position(|u| *u == c)
            })
            .collect();
        let precisions: Vec<(u8, u8)> = registry
            .iter()
            .map(|i| (i.price_precision, i.size_precision))
            .collect();
        let sample_ns = (sc.equity_sample_secs.max(1) as i64).saturating_mul(1_000_000_000);
        let (log_cap, curve_cap) = if expand_calendars {
            (sc.trade_log_capacity, sc.equity_curve_capacity)
        } else {
            (1, 1)
        };
        Ok(Self {
            marks: vec![Marks::default(); n],
            has_data: vec![false; n],
            inv_scale: registry
                .iter()
                .map(|i| 1.0 / pow10(i.price_precision) as f64)
                .collect(),
            events: 0,
            tick_slots: slots.iter().any(|s| s.strategy.wants_ticks()),
            slots,
            local: LocalIndicators::new(n, &needs),
            broker: PaperBroker::new(broker_setup, n),
            portfolio: Portfolio::new(cash, &precisions, log_cap, curve_cap, sample_ns),
            risk: RiskEngine::new(risk_setup, n, cash),
            calendars,
            cal_state,
            session_of,
            sizing,
            reverse_on_opposite: sc.reverse_on_opposite,
            now_ns: i64::MIN,
            next_signal_id: 1,
            snapshot_every_ns: (sc.snapshot_interval_secs as i64).saturating_mul(1_000_000_000),
            next_snapshot_ns: i64::MIN,
            stats: SignalStats::default(),
        })
    }

    /// Processes one kernel event, appending decision events to `out`.
    #[inline]
    pub fn step(&mut self, ev: &Event, out: &mut Vec<Event>) {
        self.events += 1;
        if let EventBody::Tick(t) = &ev.body {
            self.on_tick(t, ev.recv_ns, out);
        }
        if !self.slots.is_empty()
            && let Some(input) = strategy_input(ev)
        {
            self.on_input(input, ev.recv_ns, out);
        }
    }

    /// Moves the stage clock to `ts` (if later): market status, order
    /// expiry, periodic snapshots.
    #[inline]
    fn advance(&mut self, ts: i64, recv_ns: i64, out: &mut Vec<Event>) {
        if ts <= self.now_ns {
            return;
        }
        self.now_ns = ts;
        for k in 0..self.cal_state.len() {
            let st = self.cal_state[k];
            match st.at {
                Some(a) if ts < a.next_ns => {}
                _ => self.calendar_moved(k, ts, recv_ns, out),
            }
        }
        self.broker.expire(ts, recv_ns, out);
        if self.snapshot_every_ns > 0 && ts >= self.next_snapshot_ns {
            self.next_snapshot_ns = ts
                .div_euclid(self.snapshot_every_ns)
                .saturating_add(1)
                .saturating_mul(self.snapshot_every_ns);
            self.push_snapshot(SnapshotTrigger::Interval, None, recv_ns, out);
        }
    }

    #[cold]
    fn calendar_moved(&mut self, k: usize, ts: i64, recv_ns: i64, out: &mut Vec<Event>) {
        let st = self.cal_state[k];
        let table = &self.calendars.tables()[usize::from(st.cal)];
        let emit = |a: SessionAt, prev: Session, out: &mut Vec<Event>| {
            out.push(Event {
                recv_ns,
                body: EventBody::MarketStatus(MarketStatusEvent {
                    since_ns: a.since_ns,
                    ts_ns: ts,
                    next_change_ns: a.next_ns,
                    calendar: st.cal,
                    session: a.session,
                    previous: prev,
                }),
            });
        };
        let now = table.at(ts);
        let mut emitted = 0u64;
        match st.at {
            None => {
                emit(now, Session::Closed, out);
                emitted += 1;
            }
            Some(old) => {
                let crossed = now.index.saturating_sub(old.index);
                if crossed > MAX_STATUS_PER_STEP {
                    emit(now, old.session, out);
                    emitted += 1;
                } else {
                    let mut prev = old.session;
                    for j in old.index + 1..=now.index {
                        let a = table.at_index(j);
                        emit(a, prev, out);
                        emitted += 1;
                        prev = a.session;
                    }
                }
            }
        }
        self.stats.market_status += emitted;
        self.cal_state[k].at = Some(now);
    }

    #[inline]
    fn on_tick(&mut self, t: &Tick, recv_ns: i64, out: &mut Vec<Event>) {
        let inst = t.instrument.0 as usize;
        if inst >= self.marks.len() {
            self.stats.bad_instrument += 1;
            return;
        }
        let venue_time = !t.has_flag(flags::NO_EVENT_TIME) && t.ts_event_ns > 0;
        if venue_time {
            self.advance(t.ts_event_ns, recv_ns, out);
        }
        let data_ts = if venue_time {
            t.ts_event_ns
        } else {
            self.now_ns
        };
        let mark = match t.kind() {
            Some(TickKind::Trade) if t.price > 0 => {
                let m = &mut self.marks[inst];
                m.last = t.price;
                m.ts_ns = data_ts;
                self.broker.on_trade(inst, t.price, t.size);
                t.price
            }
            Some(TickKind::Quote) if t.price > 0 && t.price2 > 0 => {
                let m = &mut self.marks[inst];
                m.bid = t.price;
                m.ask = t.price2;
                m.ts_ns = data_ts;
                self.broker
                    .on_quote(inst, t.price, t.size, t.price2, t.size2);
                // Mid, rounded down; i128 so extreme prices cannot overflow.
                ((i128::from(t.price) + i128::from(t.price2)) >> 1) as i64
            }
            _ => return,
        };
        self.has_data[inst] = true;
        let fills_before = self.stats.fills;
        if self.broker.has_open(inst) {
            let n0 = out.len();
            self.broker
                .match_instrument(inst, self.now_ns, recv_ns, &mut self.portfolio, out);
            self.count_fills(n0, out);
        }
        self.portfolio.mark(inst, mark, self.now_ns);
        if self.stats.fills != fills_before {
            self.push_snapshot(SnapshotTrigger::Fill, Some(inst), recv_ns, out);
        }
        self.watch_equity(recv_ns, out);
        if self.tick_slots {
            let marks = self.marks[inst];
            for si in 0..self.slots.len() {
                if !self.slots[si].enabled[inst] || !self.slots[si].strategy.wants_ticks() {
                    continue;
                }
                if let Some(d) = self.slots[si].strategy.on_tick(t, &marks) {
                    let w = self.slots[si].window;
                    self.decide(si, inst, w, true, mark, d, recv_ns, out);
                }
            }
        }
    }

    #[inline]
    fn watch_equity(&mut self, recv_ns: i64, out: &mut Vec<Event>) {
        if self.risk.on_equity(self.now_ns, self.portfolio.equity()) {
            self.stats.kill_switch_trips += 1;
            self.push_snapshot(SnapshotTrigger::KillSwitch, None, recv_ns, out);
        }
    }

    fn count_fills(&mut self, from: usize, out: &[Event]) {
        let n = out[from..]
            .iter()
            .filter(|e| matches!(e.body, EventBody::Fill(_)))
            .count();
        self.stats.fills += n as u64;
    }

    fn on_input(&mut self, mut input: StrategyInput, recv_ns: i64, out: &mut Vec<Event>) {
        let inst = input.instrument.0 as usize;
        let Some(inv) = self.inv_scale.get(inst) else {
            self.stats.bad_instrument += 1;
            return;
        };
        if !input.price.is_finite() {
            input.price = input.close as f64 * inv;
        }
        self.local.fill(&mut input);
        let mut drafts: [Option<SignalDraft>; MAX_STRATEGIES] = [None; MAX_STRATEGIES];
        for (si, s) in self.slots.iter_mut().enumerate() {
            if s.window != input.window_idx
                || !s.enabled[inst]
                || (!input.is_final && !s.on_provisional)
            {
                continue;
            }
            drafts[si] = s.strategy.on_bar(&input);
        }
        for (si, d) in drafts.iter().enumerate().take(self.slots.len()) {
            if let Some(d) = d {
                self.decide(
                    si,
                    inst,
                    input.window_idx,
                    input.is_final,
                    input.close,
                    *d,
                    recv_ns,
                    out,
                );
            }
        }
    }

    fn reject(
        &mut self,
        sig: SignalEvent,
        rule: RiskRule,
        value: i128,
        limit: i128,
        recv_ns: i64,
        out: &mut Vec<Event>,
    ) {
        self.stats.rejected += 1;
        self.stats.rejected_by_rule[rule as usize] += 1;
        out.push(Event {
            recv_ns,
            body: EventBody::SignalRejected(RejectionEvent {
                signal: sig,
                rule,
                value: Amount::new(value),
                limit: Amount::new(limit),
            }),
        });
    }

    /// The price an order on `side` would trade at now: ask/bid of the
    /// quote, else the last trade, else `fallback`.
    fn reference_price(&self, inst: usize, side: Side, fallback: i64) -> i64 {
        let m = &self.marks[inst];
        let q = if side == Side::Buy { m.ask } else { m.bid };
        if q > 0 {
            q
        } else if m.last > 0 {
            m.last
        } else {
            fallback
        }
    }

    fn session(&self, inst: usize) -> Session {
        match self.session_of[inst] {
            None => Session::Continuous,
            Some(k) => {
                let st = self.cal_state[k];
                match st.at {
                    Some(a) => a.session,
                    None => {
                        self.calendars.tables()[usize::from(st.cal)]
                            .at(self.now_ns)
                            .session
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn decide(
        &mut self,
        si: usize,
        inst: usize,
        window: u8,
        is_final: bool,
        price: i64,
        d: SignalDraft,
        recv_ns: i64,
        out: &mut Vec<Event>,
    ) {
        let slot = &self.slots[si];
        let strength = if d.strength.is_nan() {
            0.0
        } else {
            d.strength.clamp(0.0, 1.0)
        };
        let sig = SignalEvent {
            id: self.next_signal_id,
            ts_ns: self.now_ns,
            price,
            strength,
            values: d.values,
            instrument: InstrumentId(inst as u32),
            strategy: si as u8,
            kind: slot.strategy.kind(),
            side: d.side,
            reason: d.reason,
            window_idx: window,
            is_final,
        };
        let threshold = slot.threshold;
        let order_type = slot.order_type;
        let offset = slot.limit_offset_e8;
        self.next_signal_id += 1;
        self.stats.signals += 1;
        out.push(Event {
            recv_ns,
            body: EventBody::Signal(sig),
        });
        if strength < threshold {
            let ppm = |x: f64| (x * 1e6).round() as i128;
            self.reject(
                sig,
                RiskRule::Threshold,
                ppm(strength),
                ppm(threshold),
                recv_ns,
                out,
            );
            return;
        }
        if d.side == Side::None {
            return;
        }
        let ref_px = self.reference_price(inst, d.side, price);
        let mut qty = match &self.sizing {
            Sizing::FixedQuantity(q) => q[inst],
            Sizing::FixedNotional(m) => self.portfolio.qty_for(inst, *m, ref_px),
            Sizing::EquityPpm(ppm) => {
                let m = mul_div(
                    self.portfolio.equity().max(0),
                    i128::from(*ppm),
                    1_000_000,
                    Round::Floor,
                );
                self.portfolio.qty_for(inst, m, ref_px)
            }
        };
        let position = self.portfolio.position(inst).map_or(0, |p| p.qty);
        let pending = self.broker.pending_signed(inst);
        if self.reverse_on_opposite {
            let open = position + pending;
            if (d.side == Side::Buy && open < 0) || (d.side == Side::Sell && open > 0) {
                qty = qty.saturating_add(open.saturating_abs());
            }
        }
        if qty <= 0 || ref_px <= 0 {
            self.reject(
                sig,
                RiskRule::ZeroQuantity,
                i128::from(ref_px),
                0,
                recv_ns,
                out,
            );
            return;
        }
        let signed = if d.side == Side::Buy { qty } else { -qty };
        let resulting = position.saturating_add(pending).saturating_add(signed);
        let check = OrderCheck {
            instrument: inst,
            side: d.side,
            qty,
            notional: self.portfolio.notional(inst, qty, ref_px),
            resulting_notional: self.portfolio.notional(inst, resulting, ref_px),
            position,
            pending,
            open_orders: self.broker.open_count(),
            equity: self.portfolio.equity(),
            last_data_ns: self.has_data[inst].then_some(self.marks[inst].ts_ns),
            now_ns: self.now_ns,
            session: self.session(inst),
        };
        if let Err(r) = self.risk.check(&check) {
            self.reject(sig, r.rule, r.value, r.limit, recv_ns, out);
            return;
        }
        let limit_price = if order_type == OrderType::Limit {
            let p = i128::from(price);
            let one = money::RATE_ONE;
            let o = i128::from(offset);
            let l = if d.side == Side::Buy {
                mul_div(p, one - o, one, Round::Floor)
            } else {
                mul_div(p, one + o, one, Round::Ceil)
            };
            l.clamp(1, i128::from(i64::MAX)) as i64
        } else {
            0
        };
        let n0 = out.len();
        let placed = self.broker.place(
            NewOrder {
                signal_id: sig.id,
                instrument: inst as u32,
                side: d.side,
                order_type,
                qty,
                limit_price,
                strategy: si as u8,
            },
            self.now_ns,
            recv_ns,
            &mut self.portfolio,
            out,
        );
        if placed.is_some() {
            self.stats.orders += 1;
            self.risk.record_order(inst, self.now_ns);
            let f0 = self.stats.fills;
            self.count_fills(n0, out);
            if self.stats.fills != f0 {
                self.push_snapshot(SnapshotTrigger::Fill, Some(inst), recv_ns, out);
                self.watch_equity(recv_ns, out);
            }
        }
    }

    fn push_snapshot(
        &mut self,
        trigger: SnapshotTrigger,
        inst: Option<usize>,
        recv_ns: i64,
        out: &mut Vec<Event>,
    ) {
        let pf = &self.portfolio;
        let (instrument, position, avg_price) = match inst {
            Some(i) => (
                InstrumentId(i as u32),
                pf.position(i).map_or(0, |p| p.qty),
                pf.avg_price(i).unwrap_or(0.0),
            ),
            None => (InstrumentId(0), 0, 0.0),
        };
        out.push(Event {
            recv_ns,
            body: EventBody::Portfolio(PortfolioEvent {
                ts_ns: self.now_ns,
                cash: Amount::new(pf.cash()),
                equity: Amount::new(pf.equity()),
                realized: Amount::new(pf.realized()),
                unrealized: Amount::new(pf.unrealized()),
                fees: Amount::new(pf.fees()),
                max_drawdown: Amount::new(pf.max_drawdown()),
                position,
                avg_price,
                instrument,
                open_orders: self.broker.open_count().min(usize::from(u16::MAX)) as u16,
                has_position: inst.is_some(),
                kill_switch: self.risk.kill_switch(),
                trigger,
            }),
        });
    }

    /// Re-arms the kill switch (operator action).
    pub fn reset_kill_switch(&mut self) {
        self.risk.reset_kill_switch();
    }

    /// Marks of an instrument.
    pub fn marks(&self, inst: usize) -> Option<Marks> {
        self.marks.get(inst).copied()
    }

    /// Events processed.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Counters.
    pub fn stats(&self) -> SignalStats {
        self.stats
    }

    /// The stage clock (largest venue event time seen; `i64::MIN` before).
    pub fn now_ns(&self) -> i64 {
        self.now_ns
    }

    /// The paper portfolio.
    pub fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }

    /// The paper broker (open orders).
    pub fn broker(&self) -> &PaperBroker {
        &self.broker
    }

    /// Risk state.
    pub fn risk(&self) -> &RiskEngine {
        &self.risk
    }

    /// The calendars.
    pub fn calendars(&self) -> &Calendars {
        &self.calendars
    }

    /// Number of strategies.
    pub fn strategy_count(&self) -> usize {
        self.slots.len()
    }

    /// Starting cash in currency units (for reports).
    pub fn initial_cash_units(&self) -> f64 {
        self.portfolio.initial_cash() as f64 / MONEY_ONE as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::Side;

    #[test]
    fn keeps_marks() {
        let mut r = InstrumentRegistry::new();
        r.add("SIM:A", 2, 2, None).unwrap();
        let mut s = SignalStage::new(&EngineConfig::default(), &r).unwrap();
        let mut out = Vec::new();
        let t = Tick::trade(InstrumentId(0), 5, 6, 100, 1, Side::Buy, 1);
        s.step(
            &Event {
                recv_ns: 6,
                body: EventBody::Tick(t),
            },
            &mut out,
        );
        let q = Tick::quote(InstrumentId(0), 7, 8, 99, 1, 101, 1, 2);
        s.step(
            &Event {
                recv_ns: 8,
                body: EventBody::Tick(q),
            },
            &mut out,
        );
        assert_eq!(
            s.marks(0),
            Some(Marks {
                last: 100,
                bid: 99,
                ask: 101,
                ts_ns: 7
            })
        );
        assert_eq!(s.events(), 2);
        assert_eq!(s.now_ns(), 7);
        // First event: the SIM calendar's status and an interval snapshot;
        // no decisions.
        assert!(
            out.iter()
                .all(|e| matches!(e.body, EventBody::MarketStatus(_) | EventBody::Portfolio(_)))
        );
        assert!(out.iter().any(
            |e| matches!(e.body, EventBody::MarketStatus(m) if m.session == Session::Continuous)
        ));
    }
}
