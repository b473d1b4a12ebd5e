//! The configured indicator set of one instrument and window, and the slot
//! layout that names its values.
//!
//! [`IndicatorSpec`] says which indicators run (periods from config) and
//! fixes the slot order of [`IndicatorSnapshot::values`]:
//! SMAs, EMAs, RSIs (configured order), then `macd`, `macd_signal`,
//! `macd_hist`, then `bb_upper`, `bb_middle`, `bb_lower`, then
//! `avg_volume_N`, then `session_vwap`. The JSON keys are the slot names.
//!
//! [`IndicatorSet`] holds the state: fed one final bar close at a time
//! (`update`), or asked what the values would be if the forming bar closed
//! now (`peek`, which changes nothing).

use super::indicators::{BollingerBands, Ema, Macd, Rsi, Sma};
use crate::event::{IndicatorSnapshot, MAX_INDICATOR_SLOTS};

/// Which indicators run on every window's bar closes.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorSpec {
    /// SMA periods (`sma_N`).
    pub sma: Vec<usize>,
    /// EMA periods (`ema_N`).
    pub ema: Vec<usize>,
    /// RSI periods (`rsi_N`).
    pub rsi: Vec<usize>,
    /// MACD `(fast, slow, signal)` (`macd`, `macd_signal`, `macd_hist`).
    pub macd: Option<(usize, usize, usize)>,
    /// Bollinger `(period, stddev)` (`bb_upper`, `bb_middle`, `bb_lower`).
    pub bollinger: Option<(usize, f64)>,
    /// Rolling average bar volume over N bars (`avg_volume_N`).
    pub avg_volume: Option<usize>,
    /// Session VWAP (`session_vwap`).
    pub session_vwap: bool,
}

impl Default for IndicatorSpec {
    /// The default set: SMA 20/50/200, EMA 12/26, RSI 14,
    /// MACD 12/26/9, Bollinger 20/2, average volume 20, session VWAP.
    fn default() -> Self {
        Self {
            sma: vec![20, 50, 200],
            ema: vec![12, 26],
            rsi: vec![14],
            macd: Some((12, 26, 9)),
            bollinger: Some((20, 2.0)),
            avg_volume: Some(20),
            session_vwap: true,
        }
    }
}

impl IndicatorSpec {
    /// Slots used by the TA indicators (SMA … Bollinger); the volume
    /// average and session VWAP follow them.
    pub fn ta_slots(&self) -> usize {
        self.sma.len()
            + self.ema.len()
            + self.rsi.len()
            + if self.macd.is_some() { 3 } else { 0 }
            + if self.bollinger.is_some() { 3 } else { 0 }
    }

    /// All slots used.
    pub fn slot_count(&self) -> usize {
        self.ta_slots() + usize::from(self.avg_volume.is_some()) + usize::from(self.session_vwap)
    }

    /// Slot of the session VWAP, if configured.
    pub fn session_vwap_slot(&self) -> Option<usize> {
        self.session_vwap.then(|| self.slot_count() - 1)
    }

    /// Slot names in order (the JSON keys).
    pub fn slot_names(&self) -> Vec<String> {
        let mut v = Vec::with_capacity(self.slot_count());
        v.extend(self.sma.iter().map(|p| format!("sma_{p}")));
        v.extend(self.ema.iter().map(|p| format!("ema_{p}")));
        v.extend(self.rsi.iter().map(|p| format!("rsi_{p}")));
        if self.macd.is_some() {
            v.extend(["macd", "macd_signal", "macd_hist"].map(String::from));
        }
        if self.bollinger.is_some() {
            v.extend(["bb_upper", "bb_middle", "bb_lower"].map(String::from));
        }
        if let Some(n) = self.avg_volume {
            v.push(format!("avg_volume_{n}"));
        }
        if self.session_vwap {
            v.push("session_vwap".into());
        }
        v
    }

    /// Checks periods and the slot budget.
    ///
    /// # Errors
    /// A message naming the problem (the caller adds the config key).
    pub fn check(&self) -> Result<(), String> {
        use super::indicators::MAX_PERIOD;
        let ok = |p: usize| (1..=MAX_PERIOD).contains(&p);
        for (name, list) in [("sma", &self.sma), ("ema", &self.ema), ("rsi", &self.rsi)] {
            for (i, p) in list.iter().enumerate() {
                if !ok(*p) {
                    return Err(format!("{name} period {p} must be in 1..={MAX_PERIOD}"));
                }
                if list[..i].contains(p) {
                    return Err(format!("{name} period {p} is listed twice"));
                }
            }
        }
        if let Some((f, s, g)) = self.macd
            && !(ok(f) && ok(s) && ok(g))
        {
            return Err(format!("macd periods must be in 1..={MAX_PERIOD}"));
        }
        if let Some((p, k)) = self.bollinger {
            if !ok(p) {
                return Err(format!("bollinger period must be in 1..={MAX_PERIOD}"));
            }
            if !(k.is_finite() && k.abs() <= 3e37) {
                return Err("bollinger stddev must be a finite number".into());
            }
        }
        if let Some(n) = self.avg_volume
            && !ok(n)
        {
            return Err(format!("avg_volume must be in 0..={MAX_PERIOD} (0 = off)"));
        }
        if self.slot_count() > MAX_INDICATOR_SLOTS {
            return Err(format!(
                "{} indicator values configured; at most {MAX_INDICATOR_SLOTS} fit an event (MACD and Bollinger count 3 each)",
                self.slot_count()
            ));
        }
        Ok(())
    }
}

/// Writes `x` (if defined) into slot `*i` and advances `*i`.
#[inline(always)]
fn put(v: &mut [f64; MAX_INDICATOR_SLOTS], i: &mut usize, x: Option<f64>) {
    if let Some(x) = x {
        v[*i] = x;
    }
    *i += 1;
}

/// Indicator state of one instrument and window. All buffers are allocated
/// in [`IndicatorSet::new`]; `update`/`peek` never allocate.
#[derive(Debug, Clone)]
pub struct IndicatorSet {
    sma: Box<[Sma]>,
    ema: Box<[Ema]>,
    rsi: Box<[Rsi]>,
    macd: Option<Macd>,
    bb: Option<BollingerBands>,
    avg_volume: Option<Sma>,
}

impl IndicatorSet {
    /// State for `spec` (validated with [`IndicatorSpec::check`]).
    ///
    /// # Panics
    /// On an invalid spec (config validation rules this out).
    pub fn new(spec: &IndicatorSpec) -> Self {
        Self {
            sma: spec.sma.iter().map(|p| Sma::new(*p)).collect(),
            ema: spec.ema.iter().map(|p| Ema::new(*p)).collect(),
            rsi: spec.rsi.iter().map(|p| Rsi::new(*p)).collect(),
            macd: spec.macd.map(|(f, s, g)| Macd::new(f, s, g)),
            bb: spec.bollinger.map(|(p, k)| BollingerBands::new(p, k, k)),
            avg_volume: spec.avg_volume.map(Sma::new),
        }
    }

    /// Feeds a final bar's close and volume; writes every defined value into
    /// `snap` (absent ones stay NaN). Returns whether any TA indicator
    /// (SMA … Bollinger) has a value.
    #[inline]
    pub fn update(&mut self, close: f64, volume: f64, snap: &mut IndicatorSnapshot) -> bool {
        let v = &mut snap.values;
        let mut i = 0;
        let mut any = false;
        for s in self.sma.iter_mut() {
            let x = s.update(close);
            any |= x.is_some();
            put(v, &mut i, x);
        }
        for s in self.ema.iter_mut() {
            let x = s.update(close);
            any |= x.is_some();
            put(v, &mut i, x);
        }
        for s in self.rsi.iter_mut() {
            let x = s.update(close);
            any |= x.is_some();
            put(v, &mut i, x);
        }
        if let Some(m) = &mut self.macd {
            let o = m.update(close);
            any |= o.is_some();
            put(v, &mut i, o.map(|o| o.macd));
            put(v, &mut i, o.map(|o| o.signal));
            put(v, &mut i, o.map(|o| o.hist));
        }
        if let Some(b) = &mut self.bb {
            let o = b.update(close);
            any |= o.is_some();
            put(v, &mut i, o.map(|o| o.upper));
            put(v, &mut i, o.map(|o| o.middle));
            put(v, &mut i, o.map(|o| o.lower));
        }
        if let Some(a) = &mut self.avg_volume {
            let x = a.update(volume);
            put(v, &mut i, x);
        }
        any
    }

    /// What [`update`](Self::update) would write for a bar closing now at
    /// `close` with `volume`, without changing any state (TA-Lib-style
    /// streaming peek).
    #[inline]
    pub fn peek(&self, close: f64, volume: f64, snap: &mut IndicatorSnapshot) -> bool {
        let v = &mut snap.values;
        let mut i = 0;
        let mut any = false;
        for s in self.sma.iter() {
            let x = s.peek(close);
            any |= x.is_some();
            put(v, &mut i, x);
        }
        for s in self.ema.iter() {
            let x = s.peek(close);
            any |= x.is_some();
            put(v, &mut i, x);
        }
        for s in self.rsi.iter() {
            let x = s.peek(close);
            any |= x.is_some();
            put(v, &mut i, x);
        }
        if let Some(m) = &self.macd {
            let o = m.peek(close);
            any |= o.is_some();
            put(v, &mut i, o.map(|o| o.macd));
            put(v, &mut i, o.map(|o| o.signal));
            put(v, &mut i, o.map(|o| o.hist));
        }
        if let Some(b) = &self.bb {
            let o = b.peek(close);
            any |= o.is_some();
            put(v, &mut i, o.map(|o| o.upper));
            put(v, &mut i, o.map(|o| o.middle));
            put(v, &mut i, o.map(|o| o.lower));
        }
        if let Some(a) = &self.avg_volume {
            let x = a.peek(volume);
            put(v, &mut i, x);
        }
        any
    }

    /// Current average volume (final bars), if its lookback is complete.
    pub fn avg_volume(&self) -> Option<f64> {
        self.avg_volume.as_ref().and_then(Sma::value)
    }

    /// Back to the freshly constructed state, without allocating.
    pub fn reset(&mut self) {
        self.sma.iter_mut().for_each(Sma::reset);
        self.ema.iter_mut().for_each(Ema::reset);
        self.rsi.iter_mut().for_each(Rsi::reset);
        if let Some(m) = &mut self.macd {
            m.reset();
        }
        if let Some(b) = &mut self.bb {
            b.reset();
        }
        if let Some(a) = &mut self.avg_volume {
            a.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::indicators::reference::price_series;
    use super::*;
    use crate::instruments::InstrumentId;
    use proptest::prelude::*;

    fn snap() -> IndicatorSnapshot {
        IndicatorSnapshot::empty(InstrumentId(0), 0, true, 0)
    }

    #[test]
    fn default_names_and_slots() {
        let s = IndicatorSpec::default();
        assert_eq!(
            s.slot_names(),
            [
                "sma_20",
                "sma_50",
                "sma_200",
                "ema_12",
                "ema_26",
                "rsi_14",
                "macd",
                "macd_signal",
                "macd_hist",
                "bb_upper",
                "bb_middle",
                "bb_lower",
                "avg_volume_20",
                "session_vwap"
            ]
        );
        assert_eq!(s.ta_slots(), 12);
        assert_eq!(s.slot_count(), 14);
        assert_eq!(s.session_vwap_slot(), Some(13));
        assert!(s.check().is_ok());
    }

    #[test]
    fn check_rejects_bad_specs() {
        let s = IndicatorSpec {
            sma: vec![20, 20],
            ..IndicatorSpec::default()
        };
        assert!(s.check().unwrap_err().contains("twice"));
        let mut s = IndicatorSpec::default();
        s.ema.push(0);
        assert!(s.check().unwrap_err().contains("ema period 0"));
        let s = IndicatorSpec {
            sma: vec![1, 2, 3, 4, 5, 6],
            ..IndicatorSpec::default()
        };
        assert!(s.check().unwrap_err().contains("at most 16"));
        let s = IndicatorSpec {
            bollinger: Some((20, f64::NAN)),
            ..IndicatorSpec::default()
        };
        assert!(s.check().is_err());
    }

    #[test]
    fn update_matches_individual_indicators_and_peek_matches_update() {
        let spec = IndicatorSpec::default();
        let mut set = IndicatorSet::new(&spec);
        let mut sma20 = Sma::new(20);
        let mut rsi = Rsi::new(14);
        let mut macd = Macd::new(12, 26, 9);
        let mut bb = BollingerBands::new(20, 2.0, 2.0);
        let mut vol = Sma::new(20);
        for i in 0..300 {
            let x = 100.0 + ((i * 37) % 17) as f64 * 0.25 - (i as f64) * 0.01;
            let v = 1.0 + (i % 5) as f64;
            let mut p = snap();
            let peek_any = set.peek(x, v, &mut p);
            let mut s = snap();
            let any = set.update(x, v, &mut s);
            assert_eq!(peek_any, any);
            for k in 0..MAX_INDICATOR_SLOTS {
                assert!(
                    p.values[k].to_bits() == s.values[k].to_bits(),
                    "slot {k} at {i}"
                );
            }
            assert_eq!(s.get(0), sma20.update(x));
            assert_eq!(s.get(5), rsi.update(x));
            let m = macd.update(x);
            assert_eq!(s.get(6), m.map(|m| m.macd));
            assert_eq!(s.get(8), m.map(|m| m.hist));
            let b = bb.update(x);
            assert_eq!(s.get(9), b.map(|b| b.upper));
            assert_eq!(s.get(12), vol.update(v));
            assert_eq!(s.get(13), None, "session VWAP is filled by the kernel");
            assert_eq!(any, i >= 11, "EMA 12 is the first value, at input 11");
        }
        set.reset();
        let mut s = snap();
        assert!(!set.update(1.0, 1.0, &mut s));
        assert!(s.values.iter().all(|v| v.is_nan()));
    }

    proptest! {
        /// For any series, any periods (1 included) and any reset point:
        /// values are never NaN/infinite, `peek` equals the `update` that
        /// follows, and after `reset` the set behaves exactly like a fresh
        /// one fed the rest of the series.
        #[test]
        fn peek_update_reset_properties(
            xs in price_series(),
            p1 in 1usize..30,
            p2 in 1usize..30,
            cut in 0usize..400,
        ) {
            let spec = IndicatorSpec {
                sma: vec![p1],
                ema: vec![p2],
                rsi: vec![p1],
                macd: Some((p1, p2, 1 + p1 % 9)),
                bollinger: Some((p2, 2.0)),
                avg_volume: Some(p1),
                session_vwap: false,
            };
            let mut a = IndicatorSet::new(&spec);
            let mut fresh = IndicatorSet::new(&spec);
            let cut = cut.min(xs.len());
            for (i, x) in xs.iter().enumerate() {
                if i == cut {
                    a.reset();
                }
                let vol = (i % 7) as f64;
                let mut p = snap();
                let pa = a.peek(*x, vol, &mut p);
                let mut s = snap();
                let ua = a.update(*x, vol, &mut s);
                prop_assert_eq!(pa, ua);
                for k in 0..MAX_INDICATOR_SLOTS {
                    prop_assert_eq!(p.values[k].to_bits(), s.values[k].to_bits());
                    prop_assert!(s.values[k].is_nan() || s.values[k].is_finite());
                }
                if i >= cut {
                    let mut f = snap();
                    fresh.update(*x, vol, &mut f);
                    for k in 0..MAX_INDICATOR_SLOTS {
                        prop_assert_eq!(f.values[k].to_bits(), s.values[k].to_bits(), "slot {} at {}", k, i);
                    }
                }
            }
        }
    }
}
