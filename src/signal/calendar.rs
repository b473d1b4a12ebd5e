//! Market-hours calendars: sessions per venue, precomputed at start-up.
//!
//! A calendar is either `continuous` (24/7, crypto) or `exchange`: sessions
//! in a time zone from the IANA database (`chrono-tz`), Monday to Friday,
//! with an optional pre-market, the regular session, optional after-hours,
//! a holiday list and early-close days. Local session times are turned into
//! UTC instants day by day with the zone's rules, so daylight-saving changes
//! are handled by the database, not by fixed offsets. A local time that does
//! not exist (spring-forward gap) moves forward by the gap; an ambiguous one
//! (fall-back overlap) takes the earlier instant.
//!
//! [`SessionTable::build`] expands the configured years into one sorted
//! table of `(utc_ns, session)` boundaries; the signal stage then only
//! compares the event time with the next boundary. Outside the table's years
//! an exchange calendar is `closed`. Holidays and early closes come from the
//! config (the shipped file lists NYSE 2026 and 2027: update yearly).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;

use crate::config::{CalendarConfig, CalendarKind};
use crate::signal::events::Session;

/// Parses `HH:MM` (24-hour).
///
/// # Errors
/// A message with the expected form.
pub fn parse_hhmm(s: &str) -> Result<NaiveTime, String> {
    let bad = || format!("time '{s}' must be HH:MM (24-hour), e.g. 09:30");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(bad)
}

/// Parses `YYYY-MM-DD`.
///
/// # Errors
/// A message with the expected form.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let bad = || format!("date '{s}' must be YYYY-MM-DD, e.g. 2026-11-26");
    let mut it = s.trim().split('-');
    let (Some(y), Some(m), Some(d), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let y: i32 = y.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    let d: u32 = d.parse().map_err(|_| bad())?;
    NaiveDate::from_ymd_opt(y, m, d).ok_or_else(bad)
}

/// Local date and time in `tz` → UTC ns since the Unix epoch.
pub fn local_to_utc_ns(tz: Tz, date: NaiveDate, time: NaiveTime) -> Option<i64> {
    let local = NaiveDateTime::new(date, time);
    let dt = match tz.from_local_datetime(&local).earliest() {
        Some(dt) => dt,
        // In a spring-forward gap: the same wall time one hour later exists.
        None => tz
            .from_local_datetime(&(local + chrono::Duration::hours(1)))
            .earliest()?,
    };
    dt.timestamp_nanos_opt()
}

struct Spec {
    tz: Tz,
    open: NaiveTime,
    close: NaiveTime,
    pre: Option<NaiveTime>,
    post: Option<NaiveTime>,
    early: Option<NaiveTime>,
    early_post: Option<NaiveTime>,
    holidays: Vec<NaiveDate>,
    earlies: Vec<NaiveDate>,
    start: NaiveDate,
    end: NaiveDate,
}

fn parse_spec(c: &CalendarConfig) -> Result<Spec, String> {
    let tz: Tz = c.timezone.parse().map_err(|_| {
        format!(
            "timezone '{}' is not an IANA time zone name (e.g. America/New_York)",
            c.timezone
        )
    })?;
    let open = parse_hhmm(&c.regular_open)?;
    let close = parse_hhmm(&c.regular_close)?;
    let opt = |v: &Option<String>| v.as_deref().map(parse_hhmm).transpose();
    let pre = opt(&c.pre_market_open)?;
    let post = opt(&c.after_hours_close)?;
    let early = opt(&c.early_close)?;
    let early_post = opt(&c.early_after_hours_close)?;
    if open >= close {
        return Err("regular_open must be before regular_close".into());
    }
    if pre.is_some_and(|p| p > open) {
        return Err("pre_market_open must not be after regular_open".into());
    }
    if post.is_some_and(|p| p < close) {
        return Err("after_hours_close must not be before regular_close".into());
    }
    if early.is_some_and(|e| e <= open || e > close) {
        return Err("early_close must be after regular_open and at most regular_close".into());
    }
    if early_post.is_some_and(|p| early.is_none_or(|e| p < e)) {
        return Err("early_after_hours_close needs early_close and must not be before it".into());
    }
    let dates = |v: &[String]| -> Result<Vec<NaiveDate>, String> {
        let mut d = v
            .iter()
            .map(|x| parse_date(x))
            .collect::<Result<Vec<_>, _>>()?;
        d.sort_unstable();
        Ok(d)
    };
    let holidays = dates(&c.holidays)?;
    let earlies = dates(&c.early_closes)?;
    if !earlies.is_empty() && early.is_none() {
        return Err("early_closes are listed but early_close (the time) is not set".into());
    }
    if c.first_year > c.last_year || c.last_year - c.first_year > 200 {
        return Err("first_year..last_year must be a range of at most 200 years".into());
    }
    let start = NaiveDate::from_ymd_opt(c.first_year, 1, 1)
        .ok_or_else(|| format!("first_year {} out of range", c.first_year))?;
    let end = NaiveDate::from_ymd_opt(c.last_year, 12, 31)
        .ok_or_else(|| format!("last_year {} out of range", c.last_year))?;
    Ok(Spec {
        tz,
        open,
        close,
        pre,
        post,
        early,
        early_post,
        holidays,
        earlies,
        start,
        end,
    })
}

/// Checks an exchange calendar's keys without expanding it.
///
/// # Errors
/// A message naming the bad key.
pub fn check_config(c: &CalendarConfig) -> Result<(), String> {
    parse_spec(c).map(|_| ())
}

/// A calendar expanded into sorted session boundaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTable {
    /// Session before the first boundary.
    base: Session,
    /// `(utc_ns, session from then on)`, strictly increasing times.
    bounds: Vec<(i64, Session)>,
}

/// The session at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionAt {
    /// Session in force.
    pub session: Session,
    /// When it began (`i64::MIN` when before the table).
    pub since_ns: i64,
    /// Next boundary (`i64::MAX` when none).
    pub next_ns: i64,
    /// Boundaries at or before the instant (cursor for [`SessionTable::at_index`]).
    pub index: usize,
}

impl SessionTable {
    /// Always open.
    pub fn continuous() -> Self {
        Self {
            base: Session::Continuous,
            bounds: Vec::new(),
        }
    }

    /// Expands a calendar config.
    ///
    /// # Errors
    /// A message naming the bad key (time zone, time, date, order of times).
    pub fn build(c: &CalendarConfig) -> Result<Self, String> {
        if c.kind == CalendarKind::Continuous {
            return Ok(Self::continuous());
        }
        let sp = parse_spec(c)?;
        let mut bounds: Vec<(i64, Session)> = Vec::new();
        let mut push = |t: Option<i64>, s: Session| {
            if let Some(t) = t {
                match bounds.last_mut() {
                    Some(l) if l.0 >= t => l.1 = s,
                    Some(l) if l.1 == s => {}
                    _ => bounds.push((t, s)),
                }
            }
        };
        let mut d = sp.start;
        while d <= sp.end {
            let weekend = matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
            if !weekend && sp.holidays.binary_search(&d).is_err() {
                let is_early = sp.earlies.binary_search(&d).is_ok();
                let (cl, po) = match (is_early, sp.early) {
                    (true, Some(e)) => (e, sp.early_post),
                    _ => (sp.close, sp.post),
                };
                let at = |t: NaiveTime| local_to_utc_ns(sp.tz, d, t);
                if let Some(p) = sp.pre.filter(|p| *p < sp.open) {
                    push(at(p), Session::PreMarket);
                }
                push(at(sp.open), Session::Regular);
                match po.filter(|p| *p > cl) {
                    Some(p) => {
                        push(at(cl), Session::AfterHours);
                        push(at(p), Session::Closed);
                    }
                    None => push(at(cl), Session::Closed),
                }
            }
            let Some(n) = d.succ_opt() else { break };
            d = n;
        }
        Ok(Self {
            base: Session::Closed,
            bounds,
        })
    }

    /// The session at `ts_ns` (binary search).
    pub fn at(&self, ts_ns: i64) -> SessionAt {
        let index = self.bounds.partition_point(|b| b.0 <= ts_ns);
        self.at_index(index)
    }

    /// The session after the first `index` boundaries.
    pub fn at_index(&self, index: usize) -> SessionAt {
        let (session, since_ns) = match index.checked_sub(1).and_then(|i| self.bounds.get(i)) {
            Some(b) => (b.1, b.0),
            None => (self.base, i64::MIN),
        };
        SessionAt {
            session,
            since_ns,
            next_ns: self.bounds.get(index).map_or(i64::MAX, |b| b.0),
            index,
        }
    }

    /// The boundaries, sorted.
    pub fn bounds(&self) -> &[(i64, Session)] {
        &self.bounds
    }

    /// Start of the regular (or continuous) session in force at `ts_ns`, if
    /// the market is in one: what session VWAP and movers reset on.
    pub fn session_start(&self, ts_ns: i64) -> Option<i64> {
        let a = self.at(ts_ns);
        a.session.is_open().then_some(a.since_ns)
    }
}

/// Every configured calendar, plus which one applies to each instrument.
#[derive(Debug, Clone)]
pub struct Calendars {
    names: Vec<String>,
    tables: Vec<SessionTable>,
    by_instrument: Vec<Option<u8>>,
}

impl Calendars {
    /// Builds every calendar and maps instruments (by venue) to them.
    /// Instruments of a venue no calendar lists trade 24/7. With `expand`
    /// false, calendars are only checked (tables stay empty: validation).
    ///
    /// # Errors
    /// `calendars[i] (name): message`.
    pub fn new(
        cfgs: &[CalendarConfig],
        registry: &crate::instruments::InstrumentRegistry,
        expand: bool,
    ) -> Result<Self, String> {
        let mut tables = Vec::new();
        for (i, c) in cfgs.iter().enumerate() {
            let err = |m: String| format!("calendars[{i}] ({}): {m}", c.name);
            let t = if expand {
                SessionTable::build(c).map_err(err)?
            } else {
                if c.kind == CalendarKind::Exchange {
                    check_config(c).map_err(err)?;
                }
                SessionTable::continuous()
            };
            tables.push(t);
        }
        let by_instrument = registry
            .iter()
            .map(|inst| {
                cfgs.iter()
                    .position(|c| c.venues.iter().any(|v| v.eq_ignore_ascii_case(&inst.venue)))
                    .map(|p| p as u8)
            })
            .collect();
        Ok(Self {
            names: cfgs.iter().map(|c| c.name.clone()).collect(),
            tables,
            by_instrument,
        })
    }

    /// Calendar names, in config order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Session tables, in config order.
    pub fn tables(&self) -> &[SessionTable] {
        &self.tables
    }

    /// The calendar of an instrument.
    pub fn of_instrument(&self, inst: usize) -> Option<u8> {
        self.by_instrument.get(inst).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times_and_dates() {
        assert_eq!(
            parse_hhmm("09:30"),
            Ok(NaiveTime::from_hms_opt(9, 30, 0).unwrap())
        );
        assert!(parse_hhmm("9:30").is_err());
        assert!(parse_hhmm("25:00").is_err());
        assert_eq!(
            parse_date("2026-11-26"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap())
        );
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("26-11-26").is_err());
    }

    #[test]
    fn continuous_is_always_open() {
        let t = SessionTable::continuous();
        let a = t.at(1_723_161_240_000_000_000);
        assert_eq!(a.session, Session::Continuous);
        assert_eq!(a.next_ns, i64::MAX);
    }
}
