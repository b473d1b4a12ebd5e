//! Market overview kept incrementally: session statistics per instrument,
//! top movers, sector performance and composite indices.
//!
//! * Session: starts at UTC midnight for 24/7 venues, and at the regular open
//!   of the instrument's exchange calendar (`[[calendars]]`) for equities
//!   (extended-hours trades count towards the current session). The session open is the first trade price at or
//!   after the session start; session volume and VWAP accumulate from there.
//!   A trade older than the current session (late across midnight) is not
//!   applied to the session.
//! * Change: `100 · (last / open − 1)` in percent.
//! * Movers: gainers (change > 0, largest first), losers (change < 0, most
//!   negative first), most active (session notional volume
//!   `Σ price · size` in quote currency, largest first); ties go to the
//!   lower instrument id. A `movers` event is emitted when a list's
//!   composition or order changes.
//! * Sector: the plain average of the change of the sector's instruments
//!   that traded this session (sectors from the registry); emitted when it
//!   changes.
//! * Index: `100 · Σ wᵢ · lastᵢ / baseᵢ`, base from config or the first
//!   trade price the kernel saw for the constituent; defined once every
//!   constituent has traded; emitted when it changes.
//!
//! Per trade the cost is O(1) (session update, a dirty flag); movers, sectors
//! and indices are re-evaluated at most once per `interval` of event time,
//! in O(instruments · top_n) without allocating.

use crate::event::{Event, EventBody, IndexUpdate, MAX_MOVERS, Movers, MoversList, SectorUpdate};
use crate::instruments::{InstrumentId, InstrumentRegistry};
use crate::signal::calendar::SessionTable;

const DAY_NS: i64 = 86_400_000_000_000;

/// Session statistics of one instrument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Session {
    /// Session start, ns (UTC midnight); `i64::MIN` before the first trade.
    pub start_ns: i64,
    /// First trade price of the session (price units); 0 = none yet.
    pub open: i64,
    /// Last trade price (price units).
    pub last: i64,
    /// Session volume (size units).
    pub volume: i64,
    /// Σ price·size of the session (price units × size units).
    pub pv: i128,
    /// Trades in the session.
    pub trades: u64,
    /// First trade price ever seen by the kernel (index base default).
    pub first_px: i64,
    /// Calendar instruments: the next session boundary, after which the
    /// session in force is looked up again (`i64::MIN` = not yet).
    pub cal_next_ns: i64,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            start_ns: i64::MIN,
            open: 0,
            last: 0,
            volume: 0,
            pv: 0,
            trades: 0,
            first_px: 0,
            cal_next_ns: i64::MIN,
        }
    }
}

impl Session {
    /// Applies a trade at `ts` (event time).
    #[inline]
    pub fn on_trade(&mut self, ts: i64, price: i64, size: i64) {
        if ts >= self.start_ns.saturating_add(DAY_NS) || self.start_ns == i64::MIN {
            self.new_session(ts, price);
        } else if ts < self.start_ns {
            return;
        }
        self.last = price;
        self.volume = self.volume.saturating_add(size);
        self.pv += i128::from(price) * i128::from(size);
        self.trades += 1;
    }

    /// Applies a trade of an instrument whose market follows `table` (an
    /// exchange calendar): the session starts at the regular open in force
    /// (`SessionTable::session_start`), so session VWAP, volume and the
    /// movers' % change reset at the market open, not at UTC midnight.
    /// Trades outside the regular session (extended hours) count towards
    /// the current session.
    #[inline]
    pub fn on_trade_in(&mut self, ts: i64, price: i64, size: i64, table: &SessionTable) {
        if ts >= self.cal_next_ns {
            self.calendar_boundary(ts, price, table);
        } else if ts < self.start_ns {
            return;
        }
        self.last = price;
        self.volume = self.volume.saturating_add(size);
        self.pv += i128::from(price) * i128::from(size);
        self.trades += 1;
    }

    #[cold]
    #[inline(never)]
    fn calendar_boundary(&mut self, ts: i64, price: i64, table: &SessionTable) {
        let at = table.at(ts);
        self.cal_next_ns = at.next_ns;
        if at.session.is_open() && at.since_ns != self.start_ns {
            self.new_session_at(at.since_ns, price);
        } else if self.start_ns == i64::MIN {
            // First trade outside regular hours: a session from here on.
            self.new_session_at(ts, price);
        }
    }

    #[cold]
    #[inline(never)]
    fn new_session(&mut self, ts: i64, price: i64) {
        self.new_session_at(ts.div_euclid(DAY_NS) * DAY_NS, price);
    }

    fn new_session_at(&mut self, start_ns: i64, price: i64) {
        if self.first_px == 0 {
            self.first_px = price;
        }
        self.start_ns = start_ns;
        self.open = price;
        self.volume = 0;
        self.pv = 0;
        self.trades = 0;
    }

    /// Session VWAP in price units as a decimal (`price_scale` = 10^precision),
    /// NaN without volume.
    #[inline]
    pub fn vwap(&self, price_scale: f64) -> f64 {
        if self.volume > 0 {
            (self.pv as f64 / self.volume as f64) / price_scale
        } else {
            f64::NAN
        }
    }

    /// % change from the session open, `None` before the first trade.
    #[inline]
    pub fn change_pct(&self) -> Option<f64> {
        (self.open > 0).then(|| (self.last as f64 / self.open as f64 - 1.0) * 100.0)
    }
}

/// Sector names in order of first appearance in the registry, and each
/// instrument's sector index. The JSON serializer uses the same function.
pub fn sector_table(registry: &InstrumentRegistry) -> (Vec<String>, Vec<Option<u16>>) {
    let mut names: Vec<String> = Vec::new();
    let mut of = Vec::with_capacity(registry.len());
    for i in registry.iter() {
        of.push(i.sector.as_ref().map(|s| {
            let idx = names.iter().position(|n| n == s).unwrap_or_else(|| {
                names.push(s.clone());
                names.len() - 1
            });
            idx as u16
        }));
    }
    (names, of)
}

/// A composite index definition (validated).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    /// Name (JSON `index`).
    pub name: String,
    /// `(instrument, weight, base price in price units or 0 = first seen)`.
    pub constituents: Vec<(InstrumentId, f64, i64)>,
}

/// Overview settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OverviewSetup {
    /// Entries per movers list, 0..=8 (0 = no movers events).
    pub top_n: usize,
    /// Least event time between evaluations, ns.
    pub interval_ns: i64,
    /// Composite indices.
    pub indices: Vec<IndexSpec>,
}

impl Default for OverviewSetup {
    fn default() -> Self {
        Self {
            top_n: 5,
            interval_ns: 1_000_000_000,
            indices: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct IndexState {
    constituents: Box<[(usize, f64, i64)]>,
    last: f64,
}

/// Market-wide overview state.
#[derive(Debug, Clone)]
pub(crate) struct Overview {
    top_n: usize,
    interval_ns: i64,
    next_eval_ns: i64,
    dirty: bool,
    last: [Movers; 3],
    sector_of: Box<[Option<u16>]>,
    sector_sum: Box<[f64]>,
    sector_n: Box<[u16]>,
    last_sector: Box<[(f64, u16)]>,
    /// 1 / (price scale · size scale) per instrument: pv → quote notional.
    notional_scale: Box<[f64]>,
    indices: Box<[IndexState]>,
}

fn empty_movers(list: MoversList) -> Movers {
    Movers {
        list,
        len: 0,
        ts_event_ns: 0,
        instruments: [InstrumentId(0); MAX_MOVERS],
        values: [0.0; MAX_MOVERS],
    }
}

/// Inserts `(v, id)` into a list kept sorted by `better`, capped at `cap`.
#[inline]
fn insert_top(
    list: &mut Movers,
    cap: usize,
    id: InstrumentId,
    v: f64,
    better: impl Fn(f64, f64) -> bool,
) {
    let n = usize::from(list.len);
    // Position: after every entry that is better or equal (ties: lower id,
    // which was inserted first since ids are scanned in order).
    let mut pos = n;
    while pos > 0 && better(v, list.values[pos - 1]) {
        pos -= 1;
    }
    if pos >= cap {
        return;
    }
    let end = (n + 1).min(cap);
    let mut j = end - 1;
    while j > pos {
        list.values[j] = list.values[j - 1];
        list.instruments[j] = list.instruments[j - 1];
        j -= 1;
    }
    list.values[pos] = v;
    list.instruments[pos] = id;
    list.len = end as u8;
}

fn same_order(a: &Movers, b: &Movers) -> bool {
    a.len == b.len && a.instruments[..usize::from(a.len)] == b.instruments[..usize::from(b.len)]
}

impl Overview {
    pub(crate) fn new(
        registry: &InstrumentRegistry,
        setup: &OverviewSetup,
        scales: &[(f64, f64)],
    ) -> Self {
        let (names, of) = sector_table(registry);
        Self {
            top_n: setup.top_n.min(MAX_MOVERS),
            interval_ns: setup.interval_ns.max(0),
            next_eval_ns: i64::MIN,
            dirty: false,
            last: [
                empty_movers(MoversList::Gainers),
                empty_movers(MoversList::Losers),
                empty_movers(MoversList::MostActive),
            ],
            sector_of: of.into_boxed_slice(),
            sector_sum: vec![0.0; names.len()].into_boxed_slice(),
            sector_n: vec![0; names.len()].into_boxed_slice(),
            last_sector: vec![(f64::NAN, 0); names.len()].into_boxed_slice(),
            notional_scale: scales.iter().map(|(p, s)| 1.0 / (p * s)).collect(),
            indices: setup
                .indices
                .iter()
                .map(|ix| IndexState {
                    constituents: ix
                        .constituents
                        .iter()
                        .map(|(id, w, base)| (id.0 as usize, *w, *base))
                        .collect(),
                    last: f64::NAN,
                })
                .collect(),
        }
    }

    /// A trade changed the sessions; evaluates if the rate limit allows.
    #[inline]
    pub(crate) fn on_trade(
        &mut self,
        ts: i64,
        sessions: &[Session],
        recv_ns: i64,
        out: &mut Vec<Event>,
    ) {
        self.dirty = true;
        if ts >= self.next_eval_ns {
            self.evaluate(ts, sessions, recv_ns, out);
        }
    }

    #[inline(never)]
    fn evaluate(&mut self, ts: i64, sessions: &[Session], recv_ns: i64, out: &mut Vec<Event>) {
        self.next_eval_ns = ts.saturating_add(self.interval_ns);
        if !std::mem::take(&mut self.dirty) {
            return;
        }
        if self.top_n > 0 {
            let mut lists = [
                empty_movers(MoversList::Gainers),
                empty_movers(MoversList::Losers),
                empty_movers(MoversList::MostActive),
            ];
            let cap = self.top_n;
            for (i, s) in sessions.iter().enumerate() {
                let Some(ch) = s.change_pct() else { continue };
                let id = InstrumentId(i as u32);
                if ch > 0.0 {
                    insert_top(&mut lists[0], cap, id, ch, |a, b| a > b);
                } else if ch < 0.0 {
                    insert_top(&mut lists[1], cap, id, ch, |a, b| a < b);
                }
                let notional = s.pv as f64 * self.notional_scale.get(i).copied().unwrap_or(0.0);
                if notional > 0.0 {
                    insert_top(&mut lists[2], cap, id, notional, |a, b| a > b);
                }
            }
            for (k, mut l) in lists.into_iter().enumerate() {
                if !same_order(&l, &self.last[k]) {
                    l.ts_event_ns = ts;
                    self.last[k] = l;
                    out.push(Event {
                        recv_ns,
                        body: EventBody::Movers(l),
                    });
                }
            }
        }
        if !self.sector_sum.is_empty() {
            self.sector_sum.fill(0.0);
            self.sector_n.fill(0);
            for (s, sec) in sessions.iter().zip(self.sector_of.iter()) {
                if let (Some(ch), Some(sec)) = (s.change_pct(), sec) {
                    let k = usize::from(*sec);
                    self.sector_sum[k] += ch;
                    self.sector_n[k] += 1;
                }
            }
            for k in 0..self.sector_sum.len() {
                let n = self.sector_n[k];
                if n == 0 {
                    continue;
                }
                let avg = self.sector_sum[k] / f64::from(n);
                if self.last_sector[k] != (avg, n) {
                    self.last_sector[k] = (avg, n);
                    out.push(Event {
                        recv_ns,
                        body: EventBody::Sector(SectorUpdate {
                            sector: k as u16,
                            members: n,
                            ts_event_ns: ts,
                            change_pct: avg,
                        }),
                    });
                }
            }
        }
        for (k, ix) in self.indices.iter_mut().enumerate() {
            let mut v = 0.0;
            let mut ok = true;
            for &(i, w, base) in ix.constituents.iter() {
                let Some(s) = sessions.get(i) else {
                    ok = false;
                    break;
                };
                let base = if base > 0 { base } else { s.first_px };
                if s.last <= 0 || base <= 0 {
                    ok = false;
                    break;
                }
                v += w * (s.last as f64 / base as f64);
            }
            if !ok {
                continue;
            }
            let v = v * 100.0;
            if v != ix.last {
                ix.last = v;
                out.push(Event {
                    recv_ns,
                    body: EventBody::Index(IndexUpdate {
                        index: k as u16,
                        ts_event_ns: ts,
                        value: v,
                    }),
                });
            }
        }
    }

    /// The last emitted movers lists (gainers, losers, most active).
    pub(crate) fn movers(&self) -> &[Movers; 3] {
        &self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equity_sessions_reset_at_the_new_york_open() {
        let cfg = crate::config::CalendarConfig::defaults()
            .into_iter()
            .find(|c| c.name == "us_equities")
            .expect("shipped equity calendar");
        let table = SessionTable::build(&cfg).unwrap();
        // Tue 2026-03-10 (after the US DST change): open 09:30 EDT = 13:30 UTC.
        let t = |h: i64, m: i64| 1_773_100_800_000_000_000 + (h * 3600 + m * 60) * 1_000_000_000;
        let mut s = Session::default();
        s.on_trade_in(t(12, 0), 100, 5, &table); // pre-market: first session
        s.on_trade_in(t(13, 29), 101, 5, &table);
        assert_eq!(s.volume, 10);
        s.on_trade_in(t(13, 31), 110, 1, &table); // regular session began 13:30 UTC
        assert_eq!((s.start_ns, s.open, s.volume), (t(13, 30), 110, 1));
        s.on_trade_in(t(20, 30), 111, 2, &table); // after hours: same session
        assert_eq!((s.start_ns, s.volume), (t(13, 30), 3));
        // Next day (Wed) regular open resets again; UTC midnight did not.
        s.on_trade_in(t(24 + 13, 30), 120, 4, &table);
        assert_eq!((s.start_ns, s.open, s.volume), (t(24 + 13, 30), 120, 4));
        // Winter (EST): Mon 2026-01-05 opens at 14:30 UTC.
        let w = |h: i64, m: i64| 1_767_571_200_000_000_000 + (h * 3600 + m * 60) * 1_000_000_000;
        let mut s = Session::default();
        s.on_trade_in(w(14, 31), 50, 1, &table);
        assert_eq!(s.start_ns, w(14, 30));
    }

    #[test]
    fn session_resets_at_utc_midnight() {
        let mut s = Session::default();
        let day = 19_000 * DAY_NS;
        s.on_trade(day + 5, 100, 2);
        s.on_trade(day + 6, 110, 2);
        assert_eq!((s.open, s.last, s.volume, s.trades), (100, 110, 4, 2));
        assert!((s.change_pct().unwrap() - 10.0).abs() < 1e-12);
        assert!((s.vwap(1.0) - 105.0).abs() < 1e-12);
        // Next day: new open.
        s.on_trade(day + DAY_NS, 120, 1);
        assert_eq!(
            (s.open, s.last, s.volume, s.start_ns),
            (120, 120, 1, day + DAY_NS)
        );
        // A late trade from the previous day is not applied.
        s.on_trade(day + 10, 1, 1);
        assert_eq!((s.last, s.volume), (120, 1));
        assert_eq!(s.first_px, 100);
    }

    #[test]
    fn insert_top_orders_and_caps() {
        let mut l = empty_movers(MoversList::Gainers);
        for (id, v) in [(0, 1.0), (1, 5.0), (2, 3.0), (3, 5.0), (4, 0.5)] {
            insert_top(&mut l, 3, InstrumentId(id), v, |a, b| a > b);
        }
        let got: Vec<(u32, f64)> = l.entries().map(|(i, v)| (i.0, v)).collect();
        assert_eq!(got, [(1, 5.0), (3, 5.0), (2, 3.0)]);
    }
}
