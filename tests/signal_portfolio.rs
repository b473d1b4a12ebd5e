//! Paper broker and portfolio on a hand-checked sequence: slippage, taker
//! and maker fees, partial fills against the quoted size, a flip from long
//! to short, a resting limit order; every amount checked to the unit, and
//! equity = cash + marked positions after every step.

use tickwire::event::{Event, EventBody};
use tickwire::signal::broker::{BrokerSetup, NewOrder, PaperBroker};
use tickwire::signal::events::{FillEvent, Liquidity, OrderStatus, OrderType};
use tickwire::signal::money::{bps_to_rate_e8, money_string, parse_money};
use tickwire::signal::portfolio::Portfolio;
use tickwire::tick::Side;

// Instrument: price 2 decimals, size 3 decimals.
const PP: u8 = 2;
const SP: u8 = 3;

struct World {
    b: PaperBroker,
    pf: Portfolio,
    out: Vec<Event>,
    t: i64,
}

fn money(s: &str) -> i128 {
    parse_money(s).unwrap()
}

impl World {
    fn new() -> Self {
        Self {
            b: PaperBroker::new(
                BrokerSetup {
                    slippage_e8: bps_to_rate_e8(5.0),
                    taker_fee_e8: bps_to_rate_e8(10.0),
                    maker_fee_e8: bps_to_rate_e8(2.0),
                    max_open_orders: 4,
                    ttl_ns: 1_000,
                },
                1,
            ),
            pf: Portfolio::new(money("10000"), &[(PP, SP)], 16, 16, 1),
            out: Vec::new(),
            t: 0,
        }
    }

    /// A quote (prices in cents, sizes in thousandths); marks at the mid.
    fn quote(&mut self, bid: i64, bid_sz: i64, ask: i64, ask_sz: i64) -> Vec<FillEvent> {
        self.t += 1;
        self.b.on_quote(0, bid, bid_sz, ask, ask_sz);
        self.out.clear();
        self.b
            .match_instrument(0, self.t, 0, &mut self.pf, &mut self.out);
        self.pf.mark(0, (bid + ask) / 2, self.t);
        self.check_identity();
        self.fills()
    }

    fn order(&mut self, side: Side, ty: OrderType, qty: i64, limit: i64) -> Vec<FillEvent> {
        self.out.clear();
        self.b.place(
            NewOrder {
                signal_id: 1,
                instrument: 0,
                side,
                order_type: ty,
                qty,
                limit_price: limit,
                strategy: 0,
            },
            self.t,
            0,
            &mut self.pf,
            &mut self.out,
        );
        self.check_identity();
        self.fills()
    }

    fn fills(&self) -> Vec<FillEvent> {
        self.out
            .iter()
            .filter_map(|e| match e.body {
                EventBody::Fill(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    /// equity == cash + Σ qty·mark, recomputed independently; and
    /// equity == initial + realized (net) + unrealized.
    fn check_identity(&self) {
        let p = self.pf.position(0).unwrap();
        let marked = self.pf.notional(0, p.qty, p.mark);
        assert_eq!(self.pf.equity(), self.pf.cash() + marked);
        assert_eq!(
            self.pf.equity(),
            self.pf.initial_cash() + self.pf.realized() + self.pf.unrealized()
        );
    }

    fn s(&self) -> [String; 5] {
        [
            money_string(self.pf.cash()),
            money_string(self.pf.equity()),
            money_string(self.pf.realized()),
            money_string(self.pf.unrealized()),
            money_string(self.pf.fees()),
        ]
    }
}

#[test]
fn hand_checked_sequence_to_the_cent() {
    let mut w = World::new();
    // 1. Quote 99.00 x 5 / 100.00 x 2. Market buy 3: only 2 displayed →
    //    partial fill of 2 at 100.00 + 5 bps = 100.05, taker fee 10 bps of
    //    200.10 = 0.2001.
    assert!(w.quote(9_900, 5_000, 10_000, 2_000).is_empty());
    let f = w.order(Side::Buy, OrderType::Market, 3_000, 0);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (
            f[0].qty,
            f[0].price,
            f[0].ref_price,
            f[0].leaves,
            f[0].position
        ),
        (2_000, 10_005, 10_000, 1_000, 2_000)
    );
    assert_eq!(f[0].liquidity, Liquidity::Taker);
    assert_eq!(money_string(f[0].fee.get()), "0.2001");
    assert_eq!(w.b.open_count(), 1);
    // The displayed size is used up: a repeat match does nothing.
    w.out.clear();
    w.b.match_instrument(0, w.t, 0, &mut w.pf, &mut w.out);
    assert!(w.fills().is_empty());
    assert_eq!(money_string(w.pf.cash()), "9799.6999");

    // 2. New quote 99.00 / 101.00 x 5: the remaining 1 fills at 101.00 + 5
    //    bps = 101.0505 → 101.06 (rounded up for a buy); fee 0.10106. Mark at
    //    mid 100.00: 3 × 100.00 = 300.00 against cost 301.16.
    let f = w.quote(9_900, 5_000, 10_100, 5_000);
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].qty, f[0].price, f[0].leaves), (1_000, 10_106, 0));
    assert_eq!(money_string(f[0].fee.get()), "0.10106");
    assert!(w.out.iter().any(|e| matches!(
        e.body,
        EventBody::Order(o) if o.status == OrderStatus::Filled && o.filled == 3_000
    )));
    assert_eq!(w.b.open_count(), 0);
    assert_eq!(
        w.s(),
        ["9698.53884", "9998.53884", "-0.30116", "-1.16", "0.30116"].map(String::from)
    );
    let avg = w.pf.avg_price(0).unwrap();
    assert!((avg - 301.16 / 3.0).abs() < 1e-9, "{avg}");

    // 3. Quote 102.00 x 10 / 102.50 x 1. Market sell 5: flip from long 3 to
    //    short 2 at 102.00 − 5 bps = 101.949 → 101.94 (rounded down for a
    //    sell). Realized on the 3 closed: 3 × 101.94 − 301.16 = 4.66. Fee
    //    0.5097. Mark at mid 102.25: −2 × 102.25 = −204.50 vs cost −203.88.
    assert!(w.quote(10_200, 10_000, 10_250, 1_000).is_empty());
    let f = w.order(Side::Sell, OrderType::Market, 5_000, 0);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].qty, f[0].price, f[0].position),
        (5_000, 10_194, -2_000)
    );
    assert_eq!(money_string(f[0].realized.get()), "4.66");
    assert_eq!(money_string(f[0].fee.get()), "0.5097");
    assert_eq!(
        w.s(),
        ["10207.72914", "10003.22914", "3.84914", "-0.62", "0.81086"].map(String::from)
    );

    // 4. Limit buy 2 @ 101.00: not marketable (ask 102.50), rests. A quote
    //    with ask 100.90 x 1 crosses it: maker fill of 1 at 101.00, fee 2 bps
    //    = 0.0202; closes half the short: realized −101.00 − (−101.94) = 0.94.
    assert!(
        w.order(Side::Buy, OrderType::Limit, 2_000, 10_100)
            .is_empty()
    );
    assert_eq!(w.b.open_count(), 1);
    let f = w.quote(10_080, 1_000, 10_090, 1_000);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].qty, f[0].price, f[0].ref_price, f[0].position),
        (1_000, 10_100, 10_090, -1_000)
    );
    assert_eq!(f[0].liquidity, Liquidity::Maker);
    assert_eq!(money_string(f[0].fee.get()), "0.0202");
    assert_eq!(money_string(f[0].realized.get()), "0.94");
    // A quote above the limit: nothing.
    assert!(w.quote(10_100, 1_000, 10_110, 1_000).is_empty());
    // 5. The rest fills on the next crossing quote; flat.
    let f = w.quote(10_070, 1_000, 10_080, 5_000);
    assert_eq!((f[0].qty, f[0].price, f[0].position), (1_000, 10_100, 0));
    assert_eq!(
        w.s(),
        ["10005.68874", "10005.68874", "5.68874", "0.00", "0.85126"].map(String::from)
    );
    assert_eq!(w.pf.avg_price(0), None);
    assert_eq!(w.b.open_count(), 0);

    // Trade log: 5 fills, oldest first.
    let log: Vec<(Side, i64, i64)> =
        w.pf.trades()
            .iter()
            .map(|t| (t.side, t.qty, t.price))
            .collect();
    assert_eq!(
        log,
        vec![
            (Side::Buy, 2_000, 10_005),
            (Side::Buy, 1_000, 10_106),
            (Side::Sell, 5_000, 10_194),
            (Side::Buy, 1_000, 10_100),
            (Side::Buy, 1_000, 10_100),
        ]
    );
    // Drawdown: from the initial 10000.00 to 9997.03884, right after the
    // second fill (matched before the new quote's mark, at the old mid
    // 99.50): 3 × 99.50 + 9698.53884.
    assert_eq!(money_string(w.pf.max_drawdown()), "2.96116");
}

#[test]
fn last_trade_stands_in_before_the_first_quote() {
    let mut w = World::new();
    // No quote: a print of 0.500 @ 50.00 is the liquidity.
    w.b.on_trade(0, 5_000, 500);
    let f = w.order(Side::Sell, OrderType::Market, 800, 0);
    assert_eq!(f.len(), 1);
    // 50.00 − 5 bps = 49.975 → 49.97; partial 0.500 of 0.800.
    assert_eq!((f[0].qty, f[0].price, f[0].leaves), (500, 4_997, 300));
    // The same print is not offered twice; the next print is.
    w.out.clear();
    w.b.match_instrument(0, 2, 0, &mut w.pf, &mut w.out);
    assert!(w.fills().is_empty());
    w.b.on_trade(0, 5_010, 1_000);
    w.out.clear();
    w.b.match_instrument(0, 3, 0, &mut w.pf, &mut w.out);
    let f = w.fills();
    assert_eq!((f[0].qty, f[0].price, f[0].position), (300, 5_007, -800));
}

#[test]
fn unfilled_orders_expire_after_their_time_in_force() {
    let mut w = World::new();
    w.quote(9_900, 1_000, 10_000, 1_000);
    assert!(
        w.order(Side::Buy, OrderType::Limit, 1_000, 9_000)
            .is_empty()
    );
    let id = w.b.open_orders()[0].id;
    w.out.clear();
    w.b.expire(w.t + 999, 0, &mut w.out);
    assert!(w.out.is_empty());
    w.b.expire(w.t + 1_000, 0, &mut w.out);
    assert_eq!(w.b.open_count(), 0);
    match w.out[..] {
        [
            Event {
                body: EventBody::Order(o),
                ..
            },
        ] => {
            assert_eq!(o.id, id);
            assert_eq!(o.status, OrderStatus::Expired);
            assert_eq!(o.filled, 0);
        }
        _ => panic!("expected one expired order event: {:?}", w.out),
    }
}

#[test]
fn marketable_limit_is_taker_capped_at_the_limit() {
    let mut w = World::new();
    w.quote(9_990, 5_000, 10_000, 5_000);
    // Limit 100.02: ask 100.00 + 5 bps = 100.05 would exceed it → 100.02.
    let f = w.order(Side::Buy, OrderType::Limit, 1_000, 10_002);
    assert_eq!((f[0].price, f[0].liquidity), (10_002, Liquidity::Taker));
    // Fee at the taker rate: 100.02 × 10 bps = 0.10002.
    assert_eq!(money_string(f[0].fee.get()), "0.10002");
}

#[test]
fn cancel_all_cancels_every_open_order() {
    let mut w = World::new();
    w.quote(9_900, 1_000, 10_000, 1_000);
    assert!(
        w.order(Side::Buy, OrderType::Limit, 1_000, 9_000)
            .is_empty()
    );
    assert!(
        w.order(Side::Sell, OrderType::Limit, 1_000, 11_000)
            .is_empty()
    );
    assert_eq!(w.b.open_count(), 2);
    w.out.clear();
    w.b.cancel_all(w.t, 0, &mut w.out);
    assert_eq!(w.b.open_count(), 0);
    assert!(!w.b.has_open(0));
    let st: Vec<_> = w
        .out
        .iter()
        .filter_map(|e| match e.body {
            EventBody::Order(o) => Some((o.side, o.status)),
            _ => None,
        })
        .collect();
    assert_eq!(
        st,
        vec![
            (Side::Buy, OrderStatus::Cancelled),
            (Side::Sell, OrderStatus::Cancelled)
        ]
    );
    // Nothing fills afterwards.
    assert!(w.quote(8_000, 1_000, 8_500, 1_000).is_empty());
}
