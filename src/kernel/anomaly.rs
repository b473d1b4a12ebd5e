//! Anomaly rules: thresholds, severities and per-(instrument, rule)
//! cooldowns, evaluated incrementally inside the kernel.
//!
//! | rule | evaluated | fires when |
//! |---|---|---|
//! | `price_spike` | every trade | \|price − avg\| / avg > threshold, avg = SMA(period) of the rule window's final closes |
//! | `volume_spike` | every trade | forming bar volume > multiple × SMA(period) of the previous final bars' volumes |
//! | `rsi_overbought` / `rsi_oversold` | final bar close | RSI(period) moves above `overbought` / below `oversold` from outside that zone (the first RSI value counts as coming from the neutral zone) |
//! | `latency` | every tick (threaded pipeline only) | kernel time − receive time > threshold |
//! | `sequence_gap` | gap tick from an adapter | always |
//! | `stale_feed` | feed-status tick `STALE` | always |
//! | `crossed_book` | feed-status tick `CROSSED`, or a quote with bid ≥ ask > 0 | always |
//!
//! Cooldowns are measured in event time (the triggering tick's
//! `ts_event_ns`), so replays are deterministic: after a rule fires for an
//! instrument, the same rule stays silent for that instrument until
//! `cooldown` has passed; suppressed firings are counted.

use super::indicators::{Rsi, Sma};
use crate::event::{Anomaly, AnomalyRule, Bar, Event, EventBody, NO_WINDOW, Severity};
use crate::instruments::InstrumentId;
use crate::tick::Tick;

/// Common settings of one rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleSetup {
    /// Evaluated at all.
    pub enabled: bool,
    /// Severity of its events.
    pub severity: Severity,
    /// Per-(instrument, rule) cooldown, ns of event time.
    pub cooldown_ns: i64,
}

impl Default for RuleSetup {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Warning,
            cooldown_ns: 300_000_000_000,
        }
    }
}

/// All rule settings (validated by [`crate::config`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalyRules {
    /// Index of the window whose bars the bar-based rules use.
    pub window: usize,
    /// Price spike rule.
    pub price_spike: RuleSetup,
    /// Threshold as a fraction (0.05 = 5 %).
    pub price_spike_fraction: f64,
    /// Bars in the average close.
    pub price_spike_period: usize,
    /// Volume spike rule.
    pub volume_spike: RuleSetup,
    /// Multiple of the average volume.
    pub volume_multiple: f64,
    /// Bars in the average volume.
    pub volume_period: usize,
    /// RSI extreme rules (both directions).
    pub rsi: RuleSetup,
    /// Overbought level.
    pub rsi_overbought: f64,
    /// Oversold level.
    pub rsi_oversold: f64,
    /// RSI period.
    pub rsi_period: usize,
    /// Latency rule.
    pub latency: RuleSetup,
    /// Latency threshold, ns.
    pub latency_threshold_ns: i64,
    /// Sequence gaps.
    pub sequence_gap: RuleSetup,
    /// Stale feed.
    pub stale_feed: RuleSetup,
    /// Crossed book.
    pub crossed_book: RuleSetup,
}

impl Default for AnomalyRules {
    fn default() -> Self {
        Self {
            window: 0,
            price_spike: RuleSetup::default(),
            price_spike_fraction: 0.05,
            price_spike_period: 20,
            volume_spike: RuleSetup::default(),
            volume_multiple: 3.0,
            volume_period: 20,
            rsi: RuleSetup {
                severity: Severity::Info,
                ..RuleSetup::default()
            },
            rsi_overbought: 70.0,
            rsi_oversold: 30.0,
            rsi_period: 14,
            latency: RuleSetup::default(),
            latency_threshold_ns: 100_000_000,
            sequence_gap: RuleSetup::default(),
            stale_feed: RuleSetup::default(),
            crossed_book: RuleSetup {
                severity: Severity::Critical,
                ..RuleSetup::default()
            },
        }
    }
}

impl AnomalyRules {
    /// The settings of `rule`.
    pub fn setup(&self, rule: AnomalyRule) -> &RuleSetup {
        match rule {
            AnomalyRule::PriceSpike => &self.price_spike,
            AnomalyRule::VolumeSpike => &self.volume_spike,
            AnomalyRule::RsiOverbought | AnomalyRule::RsiOversold => &self.rsi,
            AnomalyRule::Latency => &self.latency,
            AnomalyRule::SequenceGap => &self.sequence_gap,
            AnomalyRule::StaleFeed => &self.stale_feed,
            AnomalyRule::CrossedBook => &self.crossed_book,
        }
    }
}

/// Anomaly counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnomalyCounts {
    /// Anomaly events emitted.
    pub fired: u64,
    /// Firings suppressed by a cooldown.
    pub suppressed: u64,
}

/// Per-instrument rule state.
#[derive(Debug, Clone)]
pub(crate) struct InstAnomalies {
    instrument: InstrumentId,
    last_fire: [i64; AnomalyRule::COUNT],
    spike_avg: Sma,
    /// Price band (price units) outside which a trade may be a spike.
    spike_lo: f64,
    spike_hi: f64,
    vol_avg: Sma,
    /// Volume (size units) above which the forming bar is a spike.
    vol_limit: f64,
    rsi: Rsi,
    /// −1 oversold, 0 neutral, 1 overbought.
    rsi_zone: i8,
    rsi_prev: f64,
}

/// What the rules need to know about the instrument's units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Units {
    pub price_scale: f64,
    pub size_scale: f64,
}

impl InstAnomalies {
    pub(crate) fn new(instrument: InstrumentId, rules: &AnomalyRules) -> Self {
        Self {
            instrument,
            last_fire: [i64::MIN; AnomalyRule::COUNT],
            spike_avg: Sma::new(rules.price_spike_period.max(1)),
            spike_lo: f64::NEG_INFINITY,
            spike_hi: f64::INFINITY,
            vol_avg: Sma::new(rules.volume_period.max(1)),
            vol_limit: f64::INFINITY,
            rsi: Rsi::new(rules.rsi_period.max(1)),
            rsi_zone: 0,
            rsi_prev: f64::NAN,
        }
    }

    /// Applies the cooldown: true if `rule` may fire at `ts`, recording it.
    #[inline]
    fn admit(
        &mut self,
        rule: AnomalyRule,
        rules: &AnomalyRules,
        ts: i64,
        counts: &mut AnomalyCounts,
    ) -> bool {
        let last = &mut self.last_fire[rule as usize];
        let cd = rules.setup(rule).cooldown_ns;
        if *last != i64::MIN && ts.saturating_sub(*last) < cd {
            counts.suppressed += 1;
            return false;
        }
        *last = ts;
        counts.fired += 1;
        true
    }

    fn blank(&self, rule: AnomalyRule, rules: &AnomalyRules, ts: i64) -> Anomaly {
        Anomaly {
            instrument: self.instrument,
            rule,
            severity: rules.setup(rule).severity,
            window_idx: NO_WINDOW,
            ts_event_ns: ts,
            start_ns: 0,
            value: f64::NAN,
            reference: f64::NAN,
            threshold: f64::NAN,
            a: 0,
            b: 0,
            c: 0,
        }
    }

    #[inline]
    fn emit(out: &mut Vec<Event>, recv_ns: i64, a: Anomaly) {
        out.push(Event {
            recv_ns,
            body: EventBody::Anomaly(a),
        });
    }

    /// A final bar of the rule window closed: update the averages and RSI,
    /// and check the RSI crossing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_bar_close(
        &mut self,
        rules: &AnomalyRules,
        bar: &Bar,
        close: f64,
        volume: f64,
        units: Units,
        recv_ns: i64,
        counts: &mut AnomalyCounts,
        out: &mut Vec<Event>,
    ) {
        if rules.price_spike.enabled
            && let Some(avg) = self.spike_avg.update(close)
        {
            let f = rules.price_spike_fraction;
            self.spike_lo = avg * (1.0 - f) * units.price_scale;
            self.spike_hi = avg * (1.0 + f) * units.price_scale;
        }
        if rules.volume_spike.enabled
            && let Some(avg) = self.vol_avg.update(volume)
        {
            // An all-zero average would make every trade a spike.
            self.vol_limit = if avg > 0.0 {
                avg * rules.volume_multiple * units.size_scale
            } else {
                f64::INFINITY
            };
        }
        if rules.rsi.enabled
            && let Some(r) = self.rsi.update(close)
        {
            let zone = if r > rules.rsi_overbought {
                1
            } else if r < rules.rsi_oversold {
                -1
            } else {
                0
            };
            let prev = self.rsi_prev;
            self.rsi_prev = r;
            if zone != 0 && zone != self.rsi_zone {
                let (rule, level) = if zone > 0 {
                    (AnomalyRule::RsiOverbought, rules.rsi_overbought)
                } else {
                    (AnomalyRule::RsiOversold, rules.rsi_oversold)
                };
                let ts = bar.end_ns();
                if self.admit(rule, rules, ts, counts) {
                    let mut a = self.blank(rule, rules, ts);
                    a.window_idx = bar.window_idx;
                    a.start_ns = bar.start_ns;
                    a.value = r;
                    a.reference = prev;
                    a.threshold = level;
                    a.a = bar.close;
                    Self::emit(out, recv_ns, a);
                }
            }
            self.rsi_zone = zone;
        }
    }

    /// A trade was applied; `forming` is the rule window's open bar after it.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_trade(
        &mut self,
        rules: &AnomalyRules,
        t: &Tick,
        forming: Option<(u8, i64, i64)>,
        units: Units,
        counts: &mut AnomalyCounts,
        out: &mut Vec<Event>,
    ) {
        let p = t.price as f64;
        if (p > self.spike_hi || p < self.spike_lo) && rules.price_spike.enabled {
            self.price_spike(rules, t, units, counts, out);
        }
        if let Some((w, start, vol)) = forming
            && vol as f64 > self.vol_limit
            && rules.volume_spike.enabled
        {
            self.volume_spike(rules, t, w, start, vol, units, counts, out);
        }
    }

    #[cold]
    #[inline(never)]
    fn price_spike(
        &mut self,
        rules: &AnomalyRules,
        t: &Tick,
        units: Units,
        counts: &mut AnomalyCounts,
        out: &mut Vec<Event>,
    ) {
        let Some(avg) = self.spike_avg.value() else {
            return;
        };
        let price = t.price as f64 / units.price_scale;
        let dev = (price - avg) / avg;
        if dev.abs() <= rules.price_spike_fraction {
            return;
        }
        let rule = AnomalyRule::PriceSpike;
        if self.admit(rule, rules, t.ts_event_ns, counts) {
            let mut a = self.blank(rule, rules, t.ts_event_ns);
            a.window_idx = rules.window as u8;
            a.value = dev;
            a.reference = avg;
            a.threshold = rules.price_spike_fraction;
            a.a = t.price;
            Self::emit(out, t.ts_recv_ns, a);
        }
    }

    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn volume_spike(
        &mut self,
        rules: &AnomalyRules,
        t: &Tick,
        window: u8,
        start: i64,
        vol: i64,
        units: Units,
        counts: &mut AnomalyCounts,
        out: &mut Vec<Event>,
    ) {
        let rule = AnomalyRule::VolumeSpike;
        let Some(avg) = self.vol_avg.value() else {
            return;
        };
        if self.admit(rule, rules, t.ts_event_ns, counts) {
            let mut a = self.blank(rule, rules, t.ts_event_ns);
            let v = vol as f64 / units.size_scale;
            a.window_idx = window;
            a.start_ns = start;
            a.value = v / avg;
            a.reference = avg;
            a.threshold = rules.volume_multiple;
            a.a = vol;
            Self::emit(out, t.ts_recv_ns, a);
        }
    }

    /// Receive → kernel latency check (`now_ns` on the engine clock).
    #[inline]
    pub(crate) fn on_latency(
        &mut self,
        rules: &AnomalyRules,
        t: &Tick,
        now_ns: i64,
        counts: &mut AnomalyCounts,
        out: &mut Vec<Event>,
    ) {
        let lat = now_ns.saturating_sub(t.ts_recv_ns);
        if lat > rules.latency_threshold_ns && rules.latency.enabled {
            self.latency(rules, t, lat, counts, out);
        }
    }

    #[cold]
    #[inline(never)]
    fn latency(
        &mut self,
        rules: &AnomalyRules,
        t: &Tick,
        lat: i64,
        counts: &mut AnomalyCounts,
        out: &mut Vec<Event>,
    ) {
        let rule = AnomalyRule::Latency;
        let ts = event_time(t);
        if self.admit(rule, rules, ts, counts) {
            let mut a = self.blank(rule, rules, ts);
            a.value = lat as f64 / 1e6;
            a.threshold = rules.latency_threshold_ns as f64 / 1e6;
            a.a = lat;
            a.b = rules.latency_threshold_ns;
            Self::emit(out, t.ts_recv_ns, a);
        }
    }

    /// A feed-side report (gap, stale, crossed) or a crossed quote.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_feed(
        &mut self,
        rules: &AnomalyRules,
        rule: AnomalyRule,
        t: &Tick,
        (a, b, c): (i64, i64, i64),
        value: f64,
        counts: &mut AnomalyCounts,
        out: &mut Vec<Event>,
    ) {
        if !rules.setup(rule).enabled {
            return;
        }
        let ts = event_time(t);
        if self.admit(rule, rules, ts, counts) {
            let mut ev = self.blank(rule, rules, ts);
            ev.a = a;
            ev.b = b;
            ev.c = c;
            ev.value = value;
            Self::emit(out, t.ts_recv_ns, ev);
        }
    }
}

/// The tick's event time, or its receive time when the venue sent none.
#[inline]
fn event_time(t: &Tick) -> i64 {
    if t.ts_event_ns != 0 {
        t.ts_event_ns
    } else {
        t.ts_recv_ns
    }
}
