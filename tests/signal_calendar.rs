//! Market calendars: New York open/close instants in UTC around both 2026
//! daylight-saving changes, a holiday, an early close and weekends; and
//! market-status events from the signal stage as event time crosses them.

use tickwire::config::{CalendarConfig, EngineConfig};
use tickwire::event::{Event, EventBody};
use tickwire::instruments::{InstrumentId, InstrumentRegistry};
use tickwire::signal::SignalStage;
use tickwire::signal::calendar::SessionTable;
use tickwire::signal::events::Session;
use tickwire::tick::Tick;

/// UTC instant in ns.
fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
        .and_utc()
        .timestamp_nanos_opt()
        .unwrap()
}

fn nyse() -> SessionTable {
    let c = CalendarConfig::defaults()
        .into_iter()
        .find(|c| c.name == "us_equities")
        .unwrap();
    SessionTable::build(&c).unwrap()
}

/// (open, close) of the regular session that contains `probe`.
fn regular(t: &SessionTable, probe: i64) -> (i64, i64) {
    let a = t.at(probe);
    assert_eq!(a.session, Session::Regular, "regular session at {probe}");
    (a.since_ns, a.next_ns)
}

#[test]
fn spring_forward_moves_the_utc_open_by_an_hour() {
    let t = nyse();
    // Fri 2026-03-06, EST (UTC−5): 09:30 = 14:30Z, 16:00 = 21:00Z.
    assert_eq!(
        regular(&t, utc(2026, 3, 6, 16, 0)),
        (utc(2026, 3, 6, 14, 30), utc(2026, 3, 6, 21, 0))
    );
    // DST starts Sun 2026-03-08. Mon 2026-03-09, EDT (UTC−4).
    assert_eq!(
        regular(&t, utc(2026, 3, 9, 16, 0)),
        (utc(2026, 3, 9, 13, 30), utc(2026, 3, 9, 20, 0))
    );
    // One ns before the open: pre-market (04:00 EDT = 08:00Z).
    let a = t.at(utc(2026, 3, 9, 13, 30) - 1);
    assert_eq!(a.session, Session::PreMarket);
    assert_eq!(a.since_ns, utc(2026, 3, 9, 8, 0));
    assert_eq!(a.next_ns, utc(2026, 3, 9, 13, 30));
    // At the open instant exactly: regular.
    assert_eq!(t.at(utc(2026, 3, 9, 13, 30)).session, Session::Regular);
}

#[test]
fn fall_back_moves_the_utc_open_back() {
    let t = nyse();
    // Fri 2026-10-30, EDT.
    assert_eq!(
        regular(&t, utc(2026, 10, 30, 15, 0)),
        (utc(2026, 10, 30, 13, 30), utc(2026, 10, 30, 20, 0))
    );
    // DST ends Sun 2026-11-01. Mon 2026-11-02, EST.
    assert_eq!(
        regular(&t, utc(2026, 11, 2, 16, 0)),
        (utc(2026, 11, 2, 14, 30), utc(2026, 11, 2, 21, 0))
    );
    // After hours end 20:00 EST = 01:00Z next day.
    let a = t.at(utc(2026, 11, 2, 21, 0));
    assert_eq!(a.session, Session::AfterHours);
    assert_eq!(a.next_ns, utc(2026, 11, 3, 1, 0));
}

#[test]
fn weekend_is_closed_from_friday_evening_to_monday_pre_market() {
    let t = nyse();
    // Fri 2026-03-06 after hours end 20:00 EST = 01:00Z Sat.
    let a = t.at(utc(2026, 3, 7, 15, 0));
    assert_eq!(a.session, Session::Closed);
    assert_eq!(a.since_ns, utc(2026, 3, 7, 1, 0));
    // Next: Mon 04:00 EDT (DST began Sunday) = 08:00Z.
    assert_eq!(a.next_ns, utc(2026, 3, 9, 8, 0));
    assert_eq!(t.at(utc(2026, 3, 8, 18, 0)).session, Session::Closed);
}

#[test]
fn holiday_is_closed_all_day() {
    let t = nyse();
    // Good Friday 2026-04-03 (EDT): closed from Thursday's after hours end
    // (20:00 EDT = 00:00Z Fri) until Monday 04:00 EDT.
    let a = t.at(utc(2026, 4, 3, 15, 0));
    assert_eq!(a.session, Session::Closed);
    assert_eq!(a.since_ns, utc(2026, 4, 3, 0, 0));
    assert_eq!(a.next_ns, utc(2026, 4, 6, 8, 0));
    // Thanksgiving 2026-11-26 (Thu, EST) too.
    assert_eq!(t.at(utc(2026, 11, 26, 16, 0)).session, Session::Closed);
    // Independence Day observed Fri 2026-07-03.
    assert_eq!(t.at(utc(2026, 7, 3, 15, 0)).session, Session::Closed);
    // The day before is a normal day.
    assert_eq!(t.at(utc(2026, 7, 2, 15, 0)).session, Session::Regular);
}

#[test]
fn early_close_day_after_thanksgiving() {
    let t = nyse();
    // Fri 2026-11-27, EST: regular 09:30–13:00 = 14:30Z–18:00Z, late
    // trading to 17:00 EST = 22:00Z.
    assert_eq!(
        regular(&t, utc(2026, 11, 27, 15, 0)),
        (utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18, 0))
    );
    let a = t.at(utc(2026, 11, 27, 18, 0));
    assert_eq!(a.session, Session::AfterHours);
    assert_eq!(a.next_ns, utc(2026, 11, 27, 22, 0));
    // Christmas Eve 2026 (Thu) is an early close too; Christmas is closed.
    assert_eq!(
        regular(&t, utc(2026, 12, 24, 15, 0)).1,
        utc(2026, 12, 24, 18, 0)
    );
    assert_eq!(t.at(utc(2026, 12, 25, 15, 0)).session, Session::Closed);
}

#[test]
fn session_start_for_vwap_resets() {
    let t = nyse();
    assert_eq!(
        t.session_start(utc(2026, 3, 9, 15, 0)),
        Some(utc(2026, 3, 9, 13, 30))
    );
    assert_eq!(t.session_start(utc(2026, 3, 7, 15, 0)), None);
    assert_eq!(SessionTable::continuous().session_start(5), Some(i64::MIN));
}

fn trade_at(ts: i64) -> Event {
    Event {
        recv_ns: ts,
        body: EventBody::Tick(Tick::trade(
            InstrumentId(0),
            ts,
            ts,
            1_000,
            1,
            tickwire::tick::Side::Buy,
            1,
        )),
    }
}

#[test]
fn stage_emits_market_status_when_event_time_crosses_a_boundary() {
    let mut r = InstrumentRegistry::new();
    r.add("POLYGON:AAPL", 2, 0, None).unwrap();
    let cfg = EngineConfig::default();
    let mut s = SignalStage::new(&cfg, &r).unwrap();
    let statuses = |out: &Vec<Event>| -> Vec<(Session, Session, i64)> {
        out.iter()
            .filter_map(|e| match e.body {
                EventBody::MarketStatus(m) => Some((m.previous, m.session, m.since_ns)),
                _ => None,
            })
            .collect()
    };
    let mut out = Vec::new();
    // First event, pre-market: the initial status.
    s.step(&trade_at(utc(2026, 3, 9, 13, 29)), &mut out);
    assert_eq!(
        statuses(&out),
        vec![(Session::Closed, Session::PreMarket, utc(2026, 3, 9, 8, 0))]
    );
    out.clear();
    s.step(&trade_at(utc(2026, 3, 9, 13, 30) - 1), &mut out);
    assert!(statuses(&out).is_empty());
    // The open instant.
    s.step(&trade_at(utc(2026, 3, 9, 13, 30)), &mut out);
    assert_eq!(
        statuses(&out),
        vec![(
            Session::PreMarket,
            Session::Regular,
            utc(2026, 3, 9, 13, 30)
        )]
    );
    out.clear();
    // Jump over the close and after hours: both changes, in order.
    s.step(&trade_at(utc(2026, 3, 10, 2, 0)), &mut out);
    assert_eq!(
        statuses(&out),
        vec![
            (
                Session::Regular,
                Session::AfterHours,
                utc(2026, 3, 9, 20, 0)
            ),
            (Session::AfterHours, Session::Closed, utc(2026, 3, 10, 0, 0)),
        ]
    );
    // An older event time does not move the clock back.
    out.clear();
    s.step(&trade_at(utc(2026, 3, 9, 15, 0)), &mut out);
    assert!(statuses(&out).is_empty());
    assert_eq!(s.now_ns(), utc(2026, 3, 10, 2, 0));
}
