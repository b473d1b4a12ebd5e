//! The signal stage end to end on a hand-built event sequence: a crossing
//! bar becomes signal → order → fill → portfolio snapshot; a price drop
//! trips the kill switch; the next signal is rejected by it; the threshold
//! rejects weak signals.

use tickwire::config::{EngineConfig, SizingMode, StrategyConfig, StrategyKindConfig};
use tickwire::event::{Bar, Event, EventBody};
use tickwire::instruments::{InstrumentId, InstrumentRegistry};
use tickwire::signal::SignalStage;
use tickwire::signal::events::{OrderStatus, RiskRule, SnapshotTrigger};
use tickwire::signal::money::money_string;
use tickwire::tick::{Side, Tick};

const T0: i64 = 1_723_161_240_000_000_000;
const M: i64 = 60_000_000_000;

fn config(threshold: f64) -> EngineConfig {
    let mut c = EngineConfig::default();
    c.instruments.truncate(1);
    c.instruments[0].symbol = "SIM:X".into();
    c.instruments[0].price_precision = 2;
    c.instruments[0].size_precision = 0;
    // SMA(1) − SMA(2) = (close − previous close) / 2: its sign is the
    // direction of the last move, so a turn is a crossing.
    let mut s = StrategyConfig {
        name: "turns".into(),
        kind: StrategyKindConfig::MaCrossover,
        window: None,
        instruments: vec![],
        on_provisional: false,
        threshold: None,
        order_type: Default::default(),
        limit_offset_bps: 0.0,
        fast: Some(1),
        slow: Some(2),
        ma: Some("sma".into()),
        full_strength_pct: Some(1.0),
        period: None,
        oversold: None,
        overbought: None,
        k: None,
        mode: None,
    };
    s.threshold = Some(threshold);
    c.signal.strategies = vec![s];
    c.signal.snapshot_interval_secs = 0;
    c.broker.sizing = SizingMode::FixedQuantity;
    c.broker.quantity = "10".into();
    c.broker.slippage_bps = 0.0;
    c.broker.taker_fee_bps = 0.0;
    c.risk.max_position.clear();
    c.risk.max_concentration_pct = 0.0;
    c.risk.max_order_notional = "0".into();
    c.risk.max_daily_loss = "50".into();
    c.risk.stale_after_ms = 0;
    c.risk.max_orders_per_window = 0;
    c.validate().unwrap();
    c
}

fn quote(ts: i64, bid: i64, ask: i64) -> Event {
    Event {
        recv_ns: ts,
        body: EventBody::Tick(Tick::quote(
            InstrumentId(0),
            ts,
            ts,
            bid,
            1_000,
            ask,
            1_000,
            1,
        )),
    }
}

fn bar(i: i64, close: i64) -> Event {
    Event {
        recv_ns: T0 + (i + 1) * M,
        body: EventBody::Bar(Bar {
            instrument: InstrumentId(0),
            window_idx: 0,
            is_final: true,
            trades: 1,
            window_ns: M,
            start_ns: T0 + i * M,
            open: close,
            high: close,
            low: close,
            close,
            volume: 1,
            buy_volume: 1,
            sell_volume: 0,
            vwap: close as f64 / 100.0,
        }),
    }
}

fn stage(threshold: f64) -> SignalStage {
    let c = config(threshold);
    let mut r = InstrumentRegistry::new();
    r.add("SIM:X", 2, 0, None).unwrap();
    SignalStage::new(&c, &r).unwrap()
}

fn kinds(out: &[Event]) -> Vec<&'static str> {
    out.iter()
        .map(|e| match e.body {
            EventBody::Signal(_) => "signal",
            EventBody::SignalRejected(_) => "signal_rejected",
            EventBody::Order(_) => "order",
            EventBody::Fill(_) => "fill",
            EventBody::Portfolio(_) => "portfolio",
            EventBody::MarketStatus(_) => "market_status",
            _ => "other",
        })
        .collect()
}

#[test]
fn crossing_becomes_an_order_and_a_loss_trips_the_kill_switch() {
    let mut s = stage(0.0);
    let mut out = Vec::new();
    s.step(&quote(T0 + 1, 9_999, 10_001), &mut out);
    assert_eq!(kinds(&out), ["market_status"]);
    out.clear();
    // Falling closes: no crossing yet.
    for (i, c) in [10_000, 9_900, 9_800].into_iter().enumerate() {
        s.step(&bar(i as i64, c), &mut out);
    }
    assert!(out.is_empty(), "{out:?}");
    // The turn up: buy 10 at the ask 100.01.
    s.step(&quote(T0 + 4 * M, 9_999, 10_001), &mut out);
    s.step(&bar(3, 9_900), &mut out);
    assert_eq!(
        kinds(&out),
        ["signal", "order", "fill", "order", "portfolio"]
    );
    let EventBody::Fill(f) = out[2].body else {
        panic!()
    };
    assert_eq!(
        (f.side, f.qty, f.price, f.position),
        (Side::Buy, 10, 10_001, 10)
    );
    let EventBody::Order(o) = out[3].body else {
        panic!()
    };
    assert_eq!(o.status, OrderStatus::Filled);
    assert_eq!(s.stats().orders, 1);
    out.clear();
    // The bid/ask falls 6.00: mark 94.01, loss 60 ≥ 50: kill switch trips.
    s.step(&quote(T0 + 4 * M + 1, 9_400, 9_402), &mut out);
    assert_eq!(kinds(&out), ["portfolio"]);
    let EventBody::Portfolio(p) = out[0].body else {
        panic!()
    };
    assert_eq!(p.trigger, SnapshotTrigger::KillSwitch);
    assert!(p.kill_switch);
    assert_eq!(money_string(p.equity.get()), "99940.00");
    assert_eq!(money_string(p.unrealized.get()), "-60.00");
    out.clear();
    // Recovery does not re-arm it; the next crossing is rejected.
    s.step(&quote(T0 + 4 * M + 2, 10_100, 10_102), &mut out);
    assert!(out.is_empty());
    s.step(&bar(4, 9_800), &mut out);
    assert_eq!(kinds(&out), ["signal", "signal_rejected"]);
    let EventBody::SignalRejected(r) = out[1].body else {
        panic!()
    };
    assert_eq!(r.rule, RiskRule::KillSwitch);
    assert_eq!(r.signal.side, Side::Sell);
    assert!(s.risk().kill_switch());
    out.clear();
    // Operator reset: the next crossing trades again (sell 10 + 10 held
    // = 20, flipping short, with reverse_on_opposite).
    s.reset_kill_switch();
    s.step(&bar(5, 9_900), &mut out);
    s.step(&bar(6, 9_800), &mut out);
    let fills: Vec<_> = out
        .iter()
        .filter_map(|e| match e.body {
            EventBody::Fill(f) => Some((f.side, f.qty, f.position)),
            _ => None,
        })
        .collect();
    assert_eq!(fills, vec![(Side::Buy, 10, 20), (Side::Sell, 30, -10)]);
}

#[test]
fn threshold_rejects_weak_signals() {
    let mut s = stage(0.9);
    let mut out = Vec::new();
    s.step(&quote(T0 + 1, 9_999, 10_001), &mut out);
    out.clear();
    for (i, c) in [10_000, 9_999, 10_000].into_iter().enumerate() {
        s.step(&bar(i as i64, c), &mut out);
    }
    // Swing (0.005 + 0.005) / 99.995 ≈ 0.01 % of 1 %: strength ≈ 0.01.
    assert_eq!(kinds(&out), ["signal", "signal_rejected"]);
    let EventBody::SignalRejected(r) = out[1].body else {
        panic!()
    };
    assert_eq!(r.rule, RiskRule::Threshold);
    assert_eq!(r.limit.get(), 900_000);
    assert!(r.value.get() < 900_000);
    assert_eq!(s.stats().orders, 0);
}

#[test]
fn limit_orders_and_equity_sizing() {
    let mut c = config(0.0);
    c.signal.strategies[0].order_type = tickwire::config::OrderTypeConfig::Limit;
    c.signal.strategies[0].limit_offset_bps = 100.0;
    c.broker.sizing = SizingMode::EquityPct;
    c.broker.equity_pct = 1.0;
    c.validate().unwrap();
    let mut r = InstrumentRegistry::new();
    r.add("SIM:X", 2, 0, None).unwrap();
    let mut s = SignalStage::new(&c, &r).unwrap();
    let mut out = Vec::new();
    s.step(&quote(T0 + 1, 9_999, 10_001), &mut out);
    for (i, c) in [10_000, 9_900, 9_800, 9_900].into_iter().enumerate() {
        s.step(&bar(i as i64, c), &mut out);
    }
    let orders: Vec<_> = out
        .iter()
        .filter_map(|e| match e.body {
            EventBody::Order(o) => Some(o),
            _ => None,
        })
        .collect();
    // 1 % of 100 000 = 1 000 at the ask 100.01 → 9 units (rounded down);
    // limit = close 99.00 − 100 bps = 98.01: rests below the ask.
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].qty, 9);
    assert_eq!(orders[0].limit_price, 9_801);
    assert_eq!(orders[0].status, OrderStatus::New);
    assert_eq!(s.broker().open_count(), 1);
    out.clear();
    // The ask comes down to the limit: maker fill at 98.01.
    s.step(&quote(T0 + 2, 9_790, 9_801), &mut out);
    let fills: Vec<_> = out
        .iter()
        .filter_map(|e| match e.body {
            EventBody::Fill(f) => Some((f.qty, f.price, f.liquidity)),
            _ => None,
        })
        .collect();
    assert_eq!(
        fills,
        vec![(9, 9_801, tickwire::signal::events::Liquidity::Maker)]
    );
    assert_eq!(s.broker().open_count(), 0);
}
