//! Kernel stage: ticks in, market events out — forwarded ticks, bars,
//! indicator snapshots, anomalies and market-overview updates.
//!
//! Per-instrument state (a bar builder and an indicator set per window, the
//! session statistics, the anomaly rules' state) is allocated in
//! [`IndicatorKernel::new`]. [`IndicatorKernel::step`] is O(windows) per
//! tick and allocation-free once the caller's output buffer has its
//! capacity (`tests/kernel_no_alloc.rs` proves it).
//!
//! # Bars and when they are final
//!
//! Bars cover UTC-aligned event-time windows `[k·w, (k+1)·w)`. A bar is
//! emitted final when its window has ended:
//! * a later trade of the same instrument arrives (immediately), or
//! * the event-time watermark — the largest trade event time seen across
//!   all instruments minus `bar_grace` — passes the window end (checked on
//!   every trade, so replays are deterministic), or
//! * [`IndicatorKernel::on_timer`] is called with a time past end + grace
//!   (live feeds: the pipeline's idle kernel thread, on the wall clock), or
//! * [`IndicatorKernel::flush_until`] (end of a replay).
//!
//! Empty windows emit no bar. A trade in a window that is already final, or
//! whose end the watermark has passed, is late: counted in
//! [`KernelStats::late_trades`] and not applied to that window's bar.
//!
//! Every final bar updates that window's indicators; an `indicators`
//! snapshot follows the bar once at least one TA indicator has a value.
//! Provisional bars and indicators (the forming bar taken as the last
//! close) are emitted at most every `provisional_interval` of event time
//! per instrument and window, and can be queried at any time.

pub mod anomaly;
pub mod bars;
pub mod indicator_set;
pub mod indicators;
pub mod overview;

use crate::decimal::POW10;
use crate::event::{AnomalyRule, Bar, Event, EventBody, IndicatorSnapshot, Movers};
use crate::instruments::InstrumentRegistry;
use crate::tick::{Tick, TickKind, feed_status};
use anomaly::{AnomalyCounts, InstAnomalies, Units};
use bars::{BarBuilder, TradeOutcome};
use overview::{Overview, Session};

pub use anomaly::{AnomalyRules, RuleSetup};
pub use indicator_set::{IndicatorSet, IndicatorSpec};
pub use overview::{IndexSpec, OverviewSetup, sector_table};

/// Kernel configuration (built and validated by
/// [`crate::config::EngineConfig::kernel_setup`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KernelSetup {
    /// Bar windows in ns, in configured order (at most 8).
    pub windows_ns: Vec<i64>,
    /// Grace after a window's end before a watermark/timer finalizes it, ns.
    pub bar_grace_ns: i64,
    /// Event time between provisional emissions per instrument and window,
    /// ns; 0 = never emit.
    pub provisional_interval_ns: i64,
    /// Whether the pipeline should drive [`IndicatorKernel::on_timer`] with
    /// the wall clock when idle (live feeds; never for replays).
    pub wall_timer: bool,
    /// Wall time between timer calls, ns.
    pub timer_interval_ns: i64,
    /// Indicators per window.
    pub indicators: IndicatorSpec,
    /// Anomaly rules.
    pub rules: AnomalyRules,
    /// Movers, sectors, indices.
    pub overview: OverviewSetup,
}

impl Default for KernelSetup {
    /// 1m/5m/15m windows, 2 s grace, provisional every 1 s, the default
    /// indicator set, rules and overview; no wall timer.
    fn default() -> Self {
        Self::with_windows(vec![60_000_000_000, 300_000_000_000, 900_000_000_000])
    }
}

impl KernelSetup {
    /// Defaults with the given windows.
    pub fn with_windows(windows_ns: Vec<i64>) -> Self {
        Self {
            windows_ns,
            bar_grace_ns: 2_000_000_000,
            provisional_interval_ns: 1_000_000_000,
            wall_timer: false,
            timer_interval_ns: 100_000_000,
            indicators: IndicatorSpec::default(),
            rules: AnomalyRules::default(),
            overview: OverviewSetup::default(),
        }
    }
}

/// Counters the kernel keeps itself (plain integers: single-threaded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Ticks seen.
    pub ticks: u64,
    /// Trades not applied to a window's bar because that window was
    /// already final (counted once per window).
    pub late_trades: u64,
    /// Trades with a price ≤ 0 or a negative size (not applied).
    pub bad_trades: u64,
    /// Ticks whose instrument id is not in the registry.
    pub bad_instrument: u64,
    /// Final bars emitted.
    pub bars: u64,
    /// Final bars closed by the watermark, a timer or a flush (a subset of
    /// `bars`).
    pub bars_by_watermark: u64,
    /// Final indicator snapshots emitted.
    pub indicator_snapshots: u64,
    /// Provisional bars emitted.
    pub provisional_bars: u64,
    /// Anomaly events emitted.
    pub anomalies: u64,
    /// Anomaly firings suppressed by a cooldown.
    pub anomalies_suppressed: u64,
}

/// One instrument × window.
#[derive(Debug, Clone)]
struct Series {
    bars: BarBuilder,
    ind: IndicatorSet,
    next_prov_ns: i64,
}

/// Per-instrument kernel state.
#[derive(Debug, Clone)]
struct InstState {
    series: Box<[Series]>,
    /// Earliest `next_prov_ns` of the series (one compare per trade).
    next_prov_ns: i64,
    anomalies: InstAnomalies,
    units: Units,
}

/// Immutable settings used on the hot path.
#[derive(Debug, Clone)]
struct Ctx {
    grace_ns: i64,
    prov_ns: i64,
    vwap_slot: Option<usize>,
    ta_slots: usize,
    rules: AnomalyRules,
}

/// The indicator kernel.
#[derive(Debug)]
pub struct IndicatorKernel {
    windows_ns: Vec<i64>,
    ctx: Ctx,
    insts: Vec<InstState>,
    sessions: Vec<Session>,
    /// Exchange calendar per instrument (`None`: 24/7, UTC-midnight sessions).
    session_tables: Vec<Option<std::sync::Arc<crate::signal::calendar::SessionTable>>>,
    overview: Overview,
    /// Largest trade event time seen, ns (`i64::MIN` before any).
    max_event_ns: i64,
    /// Earliest end of any open bar (may be stale-low).
    next_deadline_ns: i64,
    last_recv_ns: i64,
    wall_timer: bool,
    timer_interval_ns: i64,
    stats: KernelStats,
    anomaly_counts: AnomalyCounts,
}

#[inline]
fn scale(precision: u8) -> f64 {
    POW10[usize::from(precision.min(18))] as f64
}

impl IndicatorKernel {
    /// Allocates state for every instrument in `registry` and every window.
    ///
    /// # Panics
    /// If a window is not positive, more than 255 windows are given, or the
    /// indicator spec is invalid (config validation rules these out).
    pub fn new(registry: &InstrumentRegistry, setup: &KernelSetup) -> Self {
        assert!(
            setup.windows_ns.iter().all(|w| *w > 0),
            "bar windows must be positive"
        );
        assert!(setup.windows_ns.len() < 255, "too many windows");
        if let Err(e) = setup.indicators.check() {
            panic!("invalid indicator spec: {e}");
        }
        let mut rules = setup.rules;
        if rules.window >= setup.windows_ns.len() {
            rules.window = 0;
        }
        let insts: Vec<InstState> = registry
            .iter()
            .map(|i| InstState {
                series: setup
                    .windows_ns
                    .iter()
                    .enumerate()
                    .map(|(w, ns)| Series {
                        bars: BarBuilder::new(i.id, w as u8, *ns, i.price_precision),
                        ind: IndicatorSet::new(&setup.indicators),
                        next_prov_ns: i64::MIN,
                    })
                    .collect(),
                next_prov_ns: i64::MIN,
                anomalies: InstAnomalies::new(i.id, &rules),
                units: Units {
                    price_scale: scale(i.price_precision),
                    size_scale: scale(i.size_precision),
                },
            })
            .collect();
        let scales: Vec<(f64, f64)> = insts
            .iter()
            .map(|s| (s.units.price_scale, s.units.size_scale))
            .collect();
        Self {
            windows_ns: setup.windows_ns.clone(),
            ctx: Ctx {
                grace_ns: setup.bar_grace_ns.max(0),
                prov_ns: setup.provisional_interval_ns.max(0),
                vwap_slot: setup.indicators.session_vwap_slot(),
                ta_slots: setup.indicators.ta_slots(),
                rules,
            },
            sessions: vec![Session::default(); insts.len()],
            session_tables: vec![None; insts.len()],
            overview: Overview::new(registry, &setup.overview, &scales),
            insts,
            max_event_ns: i64::MIN,
            next_deadline_ns: i64::MAX,
            last_recv_ns: 0,
            wall_timer: setup.wall_timer,
            timer_interval_ns: setup.timer_interval_ns.max(1),
            stats: KernelStats::default(),
            anomaly_counts: AnomalyCounts::default(),
        }
    }

    /// Processes one tick, appending the events it causes to `out`: the tick
    /// itself, then bars it finalized (each followed by its indicator
    /// snapshot), anomalies, provisional updates, and overview updates.
    /// Sessions of instruments whose venue follows an exchange calendar
    /// (US equities) start at that calendar's regular open; others keep
    /// UTC-midnight sessions (24/7 venues). Call once after `new`.
    pub fn set_calendars(&mut self, cals: &crate::signal::calendar::Calendars) {
        let tables: Vec<std::sync::Arc<crate::signal::calendar::SessionTable>> = cals
            .tables()
            .iter()
            .cloned()
            .map(std::sync::Arc::new)
            .collect();
        for (i, slot) in self.session_tables.iter_mut().enumerate() {
            *slot = cals
                .of_instrument(i)
                .and_then(|c| tables.get(usize::from(c)))
                .filter(|t| !t.bounds().is_empty())
                .cloned();
        }
    }

    /// The latency rule is not evaluated (no clock); see [`Self::step_at`].
    #[inline]
    pub fn step(&mut self, t: &Tick, out: &mut Vec<Event>) {
        self.step_inner(t, None, out);
    }

    /// [`Self::step`] with the engine clock's `now_ns` (the threaded
    /// pipeline passes the time it took the tick off the ring), which also
    /// evaluates the receive → kernel latency rule.
    #[inline]
    pub fn step_at(&mut self, t: &Tick, now_ns: i64, out: &mut Vec<Event>) {
        self.step_inner(t, Some(now_ns), out);
    }

    #[inline(always)]
    fn step_inner(&mut self, t: &Tick, now_ns: Option<i64>, out: &mut Vec<Event>) {
        self.stats.ticks += 1;
        let recv_ns = t.ts_recv_ns;
        self.last_recv_ns = recv_ns;
        out.push(Event {
            recv_ns,
            body: EventBody::Tick(*t),
        });
        let idx = t.instrument.0 as usize;
        let Some(st) = self.insts.get_mut(idx) else {
            self.stats.bad_instrument += 1;
            return;
        };
        if let Some(now) = now_ns {
            st.anomalies
                .on_latency(&self.ctx.rules, t, now, &mut self.anomaly_counts, out);
        }
        match t.kind() {
            Some(TickKind::Trade) => self.on_trade(idx, t, out),
            Some(TickKind::Quote) if t.price >= t.price2 && t.price2 > 0 => {
                st.anomalies.on_feed(
                    &self.ctx.rules,
                    AnomalyRule::CrossedBook,
                    t,
                    (t.price, t.price2, 0),
                    f64::NAN,
                    &mut self.anomaly_counts,
                    out,
                );
            }
            Some(TickKind::Gap) => st.anomalies.on_feed(
                &self.ctx.rules,
                AnomalyRule::SequenceGap,
                t,
                (t.id as i64, t.price, t.size),
                t.size as f64,
                &mut self.anomaly_counts,
                out,
            ),
            Some(TickKind::FeedStatus) => {
                let rule = match t.id {
                    feed_status::STALE => Some(AnomalyRule::StaleFeed),
                    feed_status::CROSSED => Some(AnomalyRule::CrossedBook),
                    _ => None,
                };
                if let Some(rule) = rule {
                    st.anomalies.on_feed(
                        &self.ctx.rules,
                        rule,
                        t,
                        (t.size, 0, 0),
                        f64::NAN,
                        &mut self.anomaly_counts,
                        out,
                    );
                }
            }
            _ => {}
        }
    }

    #[inline(always)]
    fn on_trade(&mut self, idx: usize, t: &Tick, out: &mut Vec<Event>) {
        if t.price <= 0 || t.size < 0 {
            self.stats.bad_trades += 1;
            return;
        }
        let ts = t.ts_event_ns;
        if ts > self.max_event_ns {
            self.max_event_ns = ts;
        }
        let watermark = self.max_event_ns.saturating_sub(self.ctx.grace_ns);
        let recv_ns = t.ts_recv_ns;
        let st = &mut self.insts[idx];
        let session = &mut self.sessions[idx];
        let ctx = &self.ctx;
        for w in 0..st.series.len() {
            match st.series[w].bars.on_trade(t, watermark) {
                TradeOutcome::Applied => continue,
                TradeOutcome::Opened => {}
                TradeOutcome::Rolled(fin) => {
                    finalize(
                        st,
                        w,
                        &fin,
                        session,
                        ctx,
                        &mut self.stats,
                        &mut self.anomaly_counts,
                        recv_ns,
                        out,
                    );
                }
                TradeOutcome::Late => {
                    self.stats.late_trades += 1;
                    continue;
                }
            }
            // A bar began: its end may be the earliest deadline.
            if let Some(end) = st.series[w].bars.open_end()
                && end < self.next_deadline_ns
            {
                self.next_deadline_ns = end;
            }
        }
        match self.session_tables.get(idx).and_then(|t| t.as_deref()) {
            Some(tab) => session.on_trade_in(ts, t.price, t.size, tab),
            None => session.on_trade(ts, t.price, t.size),
        }
        // Per-trade anomaly checks on the rule window's forming bar.
        let rw = ctx.rules.window;
        let forming = st.series.get(rw).and_then(|s| {
            s.bars
                .open_start()
                .map(|start| (rw as u8, start, s.bars.open_volume()))
        });
        st.anomalies.on_trade(
            &ctx.rules,
            t,
            forming,
            st.units,
            &mut self.anomaly_counts,
            out,
        );
        // Provisional updates, rate-limited per window in event time.
        if ctx.prov_ns > 0 && ts >= st.next_prov_ns {
            let mut next = i64::MAX;
            for w in 0..st.series.len() {
                if ts >= st.series[w].next_prov_ns && st.series[w].bars.open_end().is_some() {
                    st.series[w].next_prov_ns = ts.saturating_add(ctx.prov_ns);
                    emit_provisional(st, w, session, ctx, &mut self.stats, recv_ns, out);
                }
                next = next.min(st.series[w].next_prov_ns);
            }
            st.next_prov_ns = next;
        }
        if watermark >= self.next_deadline_ns {
            self.close_ended(watermark, recv_ns, out);
        }
        self.overview.on_trade(ts, &self.sessions, recv_ns, out);
    }

    /// Finalizes every open bar whose window ended at or before `watermark`
    /// and recomputes the next deadline.
    #[inline(never)]
    fn close_ended(&mut self, watermark: i64, recv_ns: i64, out: &mut Vec<Event>) {
        let mut next = i64::MAX;
        for (st, session) in self.insts.iter_mut().zip(self.sessions.iter()) {
            for w in 0..st.series.len() {
                if let Some(fin) = st.series[w].bars.close_if_ended(watermark) {
                    self.stats.bars_by_watermark += 1;
                    finalize(
                        st,
                        w,
                        &fin,
                        session,
                        &self.ctx,
                        &mut self.stats,
                        &mut self.anomaly_counts,
                        recv_ns,
                        out,
                    );
                } else if let Some(end) = st.series[w].bars.open_end() {
                    next = next.min(end);
                }
            }
        }
        self.next_deadline_ns = next;
    }

    /// Timer: finalizes every bar whose window ended at or before
    /// `now_event_ns − bar_grace`. Live pipelines call it when idle with the
    /// engine clock as the event-time estimate, so quiet symbols still get
    /// their bars; replays never call it (their closes come from the
    /// deterministic event-time watermark). Returns the number of bars
    /// closed.
    pub fn on_timer(&mut self, now_event_ns: i64, out: &mut Vec<Event>) -> u64 {
        let before = self.stats.bars;
        let wm = now_event_ns.saturating_sub(self.ctx.grace_ns);
        if wm >= self.next_deadline_ns {
            self.close_ended(wm, self.last_recv_ns, out);
        }
        self.stats.bars - before
    }

    /// Finalizes every open bar whose window ended at or before
    /// `watermark_ns` (event time, no grace), e.g. `i64::MAX` at the end of
    /// a replay. Events carry `recv_ns`.
    pub fn flush_until(&mut self, watermark_ns: i64, recv_ns: i64, out: &mut Vec<Event>) {
        self.close_ended(watermark_ns, recv_ns, out);
    }

    /// Whether the pipeline should call [`Self::on_timer`] with the wall
    /// clock (live sources only).
    pub fn wall_timer(&self) -> bool {
        self.wall_timer
    }

    /// Wall time between timer calls, ns.
    pub fn timer_interval_ns(&self) -> i64 {
        self.timer_interval_ns
    }

    /// The forming (provisional) bar of an instrument and window, if any.
    pub fn provisional_bar(&self, inst: usize, window: usize) -> Option<Bar> {
        self.insts.get(inst)?.series.get(window)?.bars.provisional()
    }

    /// Provisional indicator values of an instrument and window: the
    /// forming bar's last trade taken as the close (TA-Lib streaming peek).
    /// `None` without a forming bar.
    pub fn provisional_indicators(&self, inst: usize, window: usize) -> Option<IndicatorSnapshot> {
        let st = self.insts.get(inst)?;
        let s = st.series.get(window)?;
        let bar = s.bars.provisional()?;
        Some(peek_snapshot(st, s, &bar, &self.sessions[inst], &self.ctx))
    }

    /// Session statistics of an instrument (open, last, volume, VWAP).
    pub fn session(&self, inst: usize) -> Option<Session> {
        self.sessions.get(inst).copied()
    }

    /// The last emitted movers lists (gainers, losers, most active).
    pub fn movers(&self) -> &[Movers; 3] {
        self.overview.movers()
    }

    /// The current event-time watermark (largest trade time − grace).
    pub fn watermark_ns(&self) -> i64 {
        self.max_event_ns.saturating_sub(self.ctx.grace_ns)
    }

    /// Receive time of the last tick stepped (0 before any).
    pub fn last_recv_ns(&self) -> i64 {
        self.last_recv_ns
    }

    /// Configured windows, ns.
    pub fn windows_ns(&self) -> &[i64] {
        &self.windows_ns
    }

    /// Price precision scale (10^precision) per instrument id.
    pub fn price_scale(&self, inst: usize) -> Option<f64> {
        self.insts.get(inst).map(|s| s.units.price_scale)
    }

    /// Counters.
    pub fn stats(&self) -> KernelStats {
        KernelStats {
            anomalies: self.anomaly_counts.fired,
            anomalies_suppressed: self.anomaly_counts.suppressed,
            ..self.stats
        }
    }
}

/// A bar became final: emit it, update the window's indicators and emit
/// their snapshot, and feed the bar-based anomaly rules.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn finalize(
    st: &mut InstState,
    w: usize,
    fin: &Bar,
    session: &Session,
    ctx: &Ctx,
    stats: &mut KernelStats,
    counts: &mut AnomalyCounts,
    recv_ns: i64,
    out: &mut Vec<Event>,
) {
    stats.bars += 1;
    out.push(Event {
        recv_ns,
        body: EventBody::Bar(*fin),
    });
    let close = fin.close as f64 / st.units.price_scale;
    let volume = fin.volume as f64 / st.units.size_scale;
    let mut snap = IndicatorSnapshot::empty(fin.instrument, fin.window_idx, true, fin.start_ns);
    let any = st.series[w].ind.update(close, volume, &mut snap);
    if let Some(slot) = ctx.vwap_slot {
        snap.values[slot] = session.vwap(st.units.price_scale);
    }
    if any {
        stats.indicator_snapshots += 1;
        out.push(Event {
            recv_ns,
            body: EventBody::Indicators(snap),
        });
    }
    if w == ctx.rules.window {
        st.anomalies.on_bar_close(
            &ctx.rules, fin, close, volume, st.units, recv_ns, counts, out,
        );
    }
}

fn peek_snapshot(
    st: &InstState,
    s: &Series,
    bar: &Bar,
    session: &Session,
    ctx: &Ctx,
) -> IndicatorSnapshot {
    let close = bar.close as f64 / st.units.price_scale;
    let volume = bar.volume as f64 / st.units.size_scale;
    let mut snap = IndicatorSnapshot::empty(bar.instrument, bar.window_idx, false, bar.start_ns);
    s.ind.peek(close, volume, &mut snap);
    if let Some(slot) = ctx.vwap_slot {
        snap.values[slot] = session.vwap(st.units.price_scale);
    }
    snap
}

#[cold]
#[inline(never)]
fn emit_provisional(
    st: &InstState,
    w: usize,
    session: &Session,
    ctx: &Ctx,
    stats: &mut KernelStats,
    recv_ns: i64,
    out: &mut Vec<Event>,
) {
    let s = &st.series[w];
    let Some(bar) = s.bars.provisional() else {
        return;
    };
    stats.provisional_bars += 1;
    out.push(Event {
        recv_ns,
        body: EventBody::Bar(bar),
    });
    let snap = peek_snapshot(st, s, &bar, session, ctx);
    if has_ta_value(&snap, ctx) {
        out.push(Event {
            recv_ns,
            body: EventBody::Indicators(snap),
        });
    }
}

/// Whether a snapshot has any TA indicator value (not only the volume
/// average or session VWAP).
#[inline]
fn has_ta_value(snap: &IndicatorSnapshot, ctx: &Ctx) -> bool {
    snap.values[..ctx.ta_slots].iter().any(|v| !v.is_nan())
}

#[cfg(test)]
mod tests;
