//! Each risk rule rejects exactly at its limit: one unit below passes, at
//! and over rejects. The kill switch trips and stays tripped.

use tickwire::signal::events::{RiskRule, Session};
use tickwire::signal::money::MONEY_ONE;
use tickwire::signal::risk::{DAY_NS, OrderCheck, Rejection, RiskEngine, RiskSetup};
use tickwire::tick::Side;

const T0: i64 = 1_780_000_000_000_000_000; // a day boundary region, 2026

fn base() -> OrderCheck {
    OrderCheck {
        instrument: 0,
        side: Side::Buy,
        qty: 1,
        notional: MONEY_ONE,
        resulting_notional: MONEY_ONE,
        position: 0,
        pending: 0,
        open_orders: 0,
        equity: 100_000 * MONEY_ONE,
        last_data_ns: Some(T0),
        now_ns: T0,
        session: Session::Regular,
    }
}

fn engine(f: impl FnOnce(&mut RiskSetup)) -> RiskEngine {
    let mut s = RiskSetup::permissive(2, 16);
    f(&mut s);
    RiskEngine::new(s, 2, 100_000 * MONEY_ONE)
}

fn rule(r: Result<(), Rejection>) -> Option<RiskRule> {
    r.err().map(|e| e.rule)
}

#[test]
fn position_limit_rejects_at_the_limit() {
    let e = engine(|s| s.max_position[0] = Some(10));
    let ok = e.check(&OrderCheck { qty: 9, ..base() });
    assert_eq!(ok, Ok(()));
    let at = e.check(&OrderCheck { qty: 10, ..base() }).unwrap_err();
    assert_eq!(
        (at.rule, at.value, at.limit),
        (RiskRule::PositionLimit, 10, 10)
    );
    assert_eq!(
        rule(e.check(&OrderCheck { qty: 11, ..base() })),
        Some(RiskRule::PositionLimit)
    );
    // Position and open orders count: 5 held + 4 pending + 1 = 10.
    assert_eq!(
        rule(e.check(&OrderCheck {
            qty: 1,
            position: 5,
            pending: 4,
            ..base()
        })),
        Some(RiskRule::PositionLimit)
    );
    // Shorts by absolute value.
    assert_eq!(
        rule(e.check(&OrderCheck {
            side: Side::Sell,
            qty: 10,
            ..base()
        })),
        Some(RiskRule::PositionLimit)
    );
    // Reducing an over-limit position is allowed.
    assert_eq!(
        e.check(&OrderCheck {
            side: Side::Sell,
            qty: 1,
            position: 12,
            ..base()
        }),
        Ok(())
    );
    // Other instruments are unlimited.
    assert_eq!(
        e.check(&OrderCheck {
            instrument: 1,
            qty: 1_000,
            ..base()
        }),
        Ok(())
    );
}

#[test]
fn concentration_rejects_at_the_limit() {
    // 50 % of equity = 500 000 ppm.
    let e = engine(|s| s.max_concentration_ppm = Some(500_000));
    let eq = 1_000 * MONEY_ONE;
    let with = |n: i128| OrderCheck {
        equity: eq,
        resulting_notional: n,
        ..base()
    };
    // 499.999 of 1000 = 499 999 ppm.
    assert_eq!(e.check(&with(499_999 * MONEY_ONE / 1000)), Ok(()));
    let at = e.check(&with(500 * MONEY_ONE)).unwrap_err();
    assert_eq!(
        (at.rule, at.value, at.limit),
        (RiskRule::Concentration, 500_000, 500_000)
    );
    assert_eq!(
        rule(e.check(&with(700 * MONEY_ONE))),
        Some(RiskRule::Concentration)
    );
    // Non-positive equity: any new exposure is too concentrated.
    assert_eq!(
        rule(e.check(&OrderCheck {
            equity: 0,
            ..with(1)
        })),
        Some(RiskRule::Concentration)
    );
}

#[test]
fn order_notional_rejects_at_the_limit() {
    let e = engine(|s| s.max_order_notional = Some(1_000 * MONEY_ONE));
    let with = |n: i128| OrderCheck {
        notional: n,
        ..base()
    };
    assert_eq!(e.check(&with(1_000 * MONEY_ONE - 1)), Ok(()));
    let at = e.check(&with(1_000 * MONEY_ONE)).unwrap_err();
    assert_eq!(
        (at.rule, at.value, at.limit),
        (
            RiskRule::OrderNotional,
            1_000 * MONEY_ONE,
            1_000 * MONEY_ONE
        )
    );
    assert_eq!(
        rule(e.check(&with(2_000 * MONEY_ONE))),
        Some(RiskRule::OrderNotional)
    );
}

#[test]
fn max_open_orders_rejects_at_the_limit() {
    let e = engine(|_| {});
    assert_eq!(
        e.check(&OrderCheck {
            open_orders: 15,
            ..base()
        }),
        Ok(())
    );
    let at = e
        .check(&OrderCheck {
            open_orders: 16,
            ..base()
        })
        .unwrap_err();
    assert_eq!(
        (at.rule, at.value, at.limit),
        (RiskRule::MaxOpenOrders, 16, 16)
    );
    assert_eq!(
        rule(e.check(&OrderCheck {
            open_orders: 17,
            ..base()
        })),
        Some(RiskRule::MaxOpenOrders)
    );
}

#[test]
fn stale_data_rejects_at_the_limit() {
    let e = engine(|s| s.stale_after_ns = Some(5_000_000_000));
    let at_age = |age: i64| OrderCheck {
        last_data_ns: Some(T0 - age),
        ..base()
    };
    assert_eq!(e.check(&at_age(4_999_999_999)), Ok(()));
    let at = e.check(&at_age(5_000_000_000)).unwrap_err();
    assert_eq!(
        (at.rule, at.value, at.limit),
        (RiskRule::StaleData, 5_000_000_000, 5_000_000_000)
    );
    assert_eq!(
        rule(e.check(&at_age(9_000_000_000))),
        Some(RiskRule::StaleData)
    );
    assert_eq!(
        rule(e.check(&OrderCheck {
            last_data_ns: None,
            ..base()
        })),
        Some(RiskRule::NoMarketData)
    );
}

#[test]
fn market_hours_reject_closed_and_extended_unless_allowed() {
    let strict = engine(|s| {
        s.allow_when_closed = false;
        s.allow_extended_hours = false;
    });
    let at = |sess| OrderCheck {
        session: sess,
        ..base()
    };
    assert_eq!(
        rule(strict.check(&at(Session::Closed))),
        Some(RiskRule::MarketClosed)
    );
    assert_eq!(
        rule(strict.check(&at(Session::PreMarket))),
        Some(RiskRule::MarketClosed)
    );
    assert_eq!(
        rule(strict.check(&at(Session::AfterHours))),
        Some(RiskRule::MarketClosed)
    );
    assert_eq!(strict.check(&at(Session::Regular)), Ok(()));
    assert_eq!(strict.check(&at(Session::Continuous)), Ok(()));
    let ext = engine(|s| {
        s.allow_when_closed = false;
        s.allow_extended_hours = true;
    });
    assert_eq!(ext.check(&at(Session::PreMarket)), Ok(()));
    assert_eq!(
        rule(ext.check(&at(Session::Closed))),
        Some(RiskRule::MarketClosed)
    );
    let open = engine(|s| s.allow_when_closed = true);
    assert_eq!(open.check(&at(Session::Closed)), Ok(()));
}

#[test]
fn rate_limit_rejects_at_the_limit_and_window_slides() {
    let mut e = engine(|s| {
        s.max_orders_per_window = 3;
        s.rate_window_ns = 60_000_000_000;
    });
    e.record_order(0, T0);
    e.record_order(0, T0 + 1);
    assert_eq!(
        e.check(&OrderCheck {
            now_ns: T0 + 2,
            ..base()
        }),
        Ok(())
    );
    e.record_order(0, T0 + 2);
    let at = e
        .check(&OrderCheck {
            now_ns: T0 + 3,
            ..base()
        })
        .unwrap_err();
    assert_eq!((at.rule, at.value, at.limit), (RiskRule::RateLimit, 3, 3));
    // Per instrument: instrument 1 is free.
    assert_eq!(
        e.check(&OrderCheck {
            instrument: 1,
            now_ns: T0 + 3,
            ..base()
        }),
        Ok(())
    );
    // Exactly one window after the first order, it no longer counts.
    assert_eq!(
        e.check(&OrderCheck {
            now_ns: T0 + 60_000_000_000,
            ..base()
        }),
        Ok(())
    );
    assert_eq!(e.orders_in_window(0, T0 + 60_000_000_000), 2);
}

#[test]
fn kill_switch_trips_at_the_daily_loss_and_stays_tripped() {
    let start = 100_000 * MONEY_ONE;
    let limit = 5_000 * MONEY_ONE;
    let mut e = engine(|s| s.max_daily_loss = Some(limit));
    let day0 = T0.div_euclid(DAY_NS) * DAY_NS;
    // One unit short of the loss limit: not tripped.
    assert!(!e.on_equity(day0 + 1, start - limit + 1));
    assert!(!e.kill_switch());
    assert_eq!(e.check(&base()), Ok(()));
    // At the limit: trips (reported once).
    assert!(e.on_equity(day0 + 2, start - limit));
    assert!(e.kill_switch());
    assert!(!e.on_equity(day0 + 3, start - limit - 1));
    let r = e.check(&base()).unwrap_err();
    assert_eq!(r.rule, RiskRule::KillSwitch);
    assert_eq!(r.value, limit + 1);
    assert_eq!(r.limit, limit);
    // Equity recovers: still tripped. Next UTC day: still tripped (no auto
    // reset configured).
    assert!(!e.on_equity(day0 + 4, start + limit));
    assert!(e.kill_switch());
    assert!(!e.on_equity(day0 + DAY_NS + 1, start + limit));
    assert_eq!(rule(e.check(&base())), Some(RiskRule::KillSwitch));
    // Operator reset re-arms, with today's baseline at the current equity.
    e.reset_kill_switch();
    assert_eq!(e.check(&base()), Ok(()));
    assert_eq!(e.daily_pnl(), 0);
    assert!(!e.on_equity(day0 + DAY_NS + 2, start + limit - limit + 1));
    assert!(e.on_equity(day0 + DAY_NS + 3, start));
}

#[test]
fn kill_switch_auto_reset_rearms_next_day_with_new_baseline() {
    let start = 100_000 * MONEY_ONE;
    let limit = 5_000 * MONEY_ONE;
    let mut e = engine(|s| {
        s.max_daily_loss = Some(limit);
        s.kill_switch_auto_reset = true;
    });
    let day0 = T0.div_euclid(DAY_NS) * DAY_NS;
    assert!(e.on_equity(day0 + 1, start - limit));
    assert!(e.on_equity(day0 + 2, start - 2 * limit) || e.kill_switch());
    // New day: re-armed; the baseline is the equity at the day change.
    assert!(!e.on_equity(day0 + DAY_NS, start - 2 * limit));
    assert!(!e.kill_switch());
    assert_eq!(e.check(&base()), Ok(()));
    assert!(!e.on_equity(day0 + DAY_NS + 1, start - 3 * limit + 1));
    assert!(e.on_equity(day0 + DAY_NS + 2, start - 3 * limit));
}

#[test]
fn rules_are_checked_in_order() {
    // Everything breached: the kill switch wins, then market hours, ...
    let mut e = engine(|s| {
        s.max_daily_loss = Some(MONEY_ONE);
        s.allow_when_closed = false;
        s.stale_after_ns = Some(1);
        s.max_order_notional = Some(1);
    });
    let c = OrderCheck {
        session: Session::Closed,
        last_data_ns: Some(0),
        notional: 10,
        ..base()
    };
    assert_eq!(rule(e.check(&c)), Some(RiskRule::MarketClosed));
    e.on_equity(T0, 0);
    assert_eq!(rule(e.check(&c)), Some(RiskRule::KillSwitch));
}
