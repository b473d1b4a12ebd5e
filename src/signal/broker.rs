//! The paper broker: open orders filled against the live quote.
//!
//! Fill rules (deterministic, event time only):
//! - A buy takes the ask, a sell the bid, of the latest quote. Before the
//!   instrument's first quote, the last trade print stands in for both
//!   sides (price and size of that print).
//! - The displayed size is liquidity: orders consume it, and what one quote
//!   (or print) offered is not offered again until the next one arrives. An
//!   order larger than what is left fills partially; the rest stays open and
//!   fills against later quotes until it is done or its time in force ends
//!   (an `expired` order event).
//! - Market orders and limit orders marketable on arrival are takers: the
//!   price gets the configured slippage (see [`super::money::slipped_price`]),
//!   capped at the limit for limit orders, and pay the taker fee. A limit
//!   order not marketable on arrival rests; it fills at its limit price as a
//!   maker (no slippage, maker fee) once the opposite side reaches it.
//! - Fees: `ceil(notional × bps / 10 000)` in money units (see
//!   [`super::money`]).
//!
//! Storage is fixed at construction (`max_open_orders` slots); nothing
//! allocates afterwards as long as the caller's event buffer has capacity.

use crate::event::{Event, EventBody};
use crate::instruments::InstrumentId;
use crate::signal::events::{FillEvent, Liquidity, OrderEvent, OrderStatus, OrderType};
use crate::signal::money::{Amount, fee, slipped_price};
use crate::signal::portfolio::Portfolio;
use crate::tick::Side;

/// Broker parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerSetup {
    /// Slippage applied to taker fills, 10^-8 units (1 bps = 10 000).
    pub slippage_e8: i64,
    /// Taker fee rate, 10^-8 units.
    pub taker_fee_e8: i64,
    /// Maker fee rate, 10^-8 units.
    pub maker_fee_e8: i64,
    /// Capacity of the open-order table.
    pub max_open_orders: usize,
    /// Time in force, ns of event time; orders still open after it expire.
    pub ttl_ns: i64,
}

/// An order the broker holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenOrder {
    /// Order id.
    pub id: u64,
    /// Signal id.
    pub signal_id: u64,
    /// Instrument index.
    pub instrument: u32,
    /// Side.
    pub side: Side,
    /// Market or limit.
    pub order_type: OrderType,
    /// Quantity, size units.
    pub qty: i64,
    /// Filled so far.
    pub filled: i64,
    /// Limit price (0 for market).
    pub limit_price: i64,
    /// Expiry, event time ns.
    pub expires_ns: i64,
    /// Strategy index.
    pub strategy: u8,
    /// Not marketable on arrival: fills as maker at its limit.
    pub resting: bool,
}

impl OpenOrder {
    /// Quantity still open.
    pub fn leaves(&self) -> i64 {
        self.qty - self.filled
    }

    fn event(&self, ts_ns: i64, status: OrderStatus) -> OrderEvent {
        OrderEvent {
            id: self.id,
            signal_id: self.signal_id,
            ts_ns,
            qty: self.qty,
            filled: self.filled,
            limit_price: self.limit_price,
            instrument: InstrumentId(self.instrument),
            strategy: self.strategy,
            side: self.side,
            order_type: self.order_type,
            status,
        }
    }
}

/// Liquidity the broker sees for one instrument.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Book {
    /// Best bid, price units (0 = none).
    pub bid: i64,
    /// Bid size.
    pub bid_size: i64,
    /// Best ask.
    pub ask: i64,
    /// Ask size.
    pub ask_size: i64,
    /// Whether any quote was seen.
    pub has_quote: bool,
    /// Bid size already taken by paper fills since this quote.
    pub bid_used: i64,
    /// Ask size already taken since this quote.
    pub ask_used: i64,
    /// Last trade price.
    pub last: i64,
    /// Last trade size.
    pub last_size: i64,
    /// Last-trade size already taken.
    pub last_used: i64,
}

/// A new order to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrder {
    /// Signal id.
    pub signal_id: u64,
    /// Instrument index.
    pub instrument: u32,
    /// Side.
    pub side: Side,
    /// Type.
    pub order_type: OrderType,
    /// Quantity (> 0).
    pub qty: i64,
    /// Limit price (limit orders).
    pub limit_price: i64,
    /// Strategy index.
    pub strategy: u8,
}

/// The paper broker.
#[derive(Debug, Clone)]
pub struct PaperBroker {
    setup: BrokerSetup,
    books: Vec<Book>,
    orders: Vec<OpenOrder>,
    open_by_inst: Vec<u32>,
    next_order_id: u64,
    next_fill_id: u64,
    next_expiry_ns: i64,
}

impl PaperBroker {
    /// A broker for `instruments` instruments.
    pub fn new(setup: BrokerSetup, instruments: usize) -> Self {
        Self {
            setup,
            books: vec![Book::default(); instruments],
            orders: Vec::with_capacity(setup.max_open_orders.max(1)),
            open_by_inst: vec![0; instruments],
            next_order_id: 1,
            next_fill_id: 1,
            next_expiry_ns: i64::MAX,
        }
    }

    /// Parameters.
    pub fn setup(&self) -> &BrokerSetup {
        &self.setup
    }

    /// A new quote: fresh displayed liquidity.
    #[inline]
    pub fn on_quote(&mut self, inst: usize, bid: i64, bid_size: i64, ask: i64, ask_size: i64) {
        if let Some(b) = self.books.get_mut(inst) {
            b.bid = bid;
            b.bid_size = bid_size;
            b.ask = ask;
            b.ask_size = ask_size;
            b.has_quote = true;
            b.bid_used = 0;
            b.ask_used = 0;
        }
    }

    /// A new trade print.
    #[inline]
    pub fn on_trade(&mut self, inst: usize, price: i64, size: i64) {
        if let Some(b) = self.books.get_mut(inst) {
            b.last = price;
            b.last_size = size;
            b.last_used = 0;
        }
    }

    /// The liquidity state of an instrument.
    pub fn book(&self, inst: usize) -> Option<&Book> {
        self.books.get(inst)
    }

    /// Open orders, in id order.
    pub fn open_orders(&self) -> &[OpenOrder] {
        &self.orders
    }

    /// Number of open orders.
    #[inline]
    pub fn open_count(&self) -> usize {
        self.orders.len()
    }

    /// Whether an instrument has open orders.
    #[inline]
    pub fn has_open(&self, inst: usize) -> bool {
        self.open_by_inst.get(inst).is_some_and(|n| *n > 0)
    }

    /// Signed quantity still open on an instrument (buys positive).
    pub fn pending_signed(&self, inst: usize) -> i64 {
        if !self.has_open(inst) {
            return 0;
        }
        self.orders
            .iter()
            .filter(|o| o.instrument as usize == inst)
            .map(|o| {
                if o.side == Side::Buy {
                    o.leaves()
                } else {
                    -o.leaves()
                }
            })
            .sum()
    }

    /// Whether there is room for another order.
    pub fn has_room(&self) -> bool {
        self.orders.len() < self.setup.max_open_orders.max(1)
    }

    /// Places an order at event time `ts_ns`: emits its `new` order event,
    /// then matches it at once. Returns the order id, or `None` when the
    /// table is full (the caller's risk check prevents that).
    pub fn place(
        &mut self,
        o: NewOrder,
        ts_ns: i64,
        recv_ns: i64,
        pf: &mut Portfolio,
        out: &mut Vec<Event>,
    ) -> Option<u64> {
        if !self.has_room() || o.qty <= 0 || o.instrument as usize >= self.books.len() {
            return None;
        }
        let id = self.next_order_id;
        self.next_order_id += 1;
        let expires_ns = ts_ns.saturating_add(self.setup.ttl_ns);
        let order = OpenOrder {
            id,
            signal_id: o.signal_id,
            instrument: o.instrument,
            side: o.side,
            order_type: o.order_type,
            qty: o.qty,
            filled: 0,
            limit_price: if o.order_type == OrderType::Limit {
                o.limit_price
            } else {
                0
            },
            expires_ns,
            strategy: o.strategy,
            resting: false,
        };
        out.push(Event {
            recv_ns,
            body: EventBody::Order(order.event(ts_ns, OrderStatus::New)),
        });
        self.orders.push(order);
        self.open_by_inst[o.instrument as usize] += 1;
        self.next_expiry_ns = self.next_expiry_ns.min(expires_ns);
        let inst = o.instrument as usize;
        self.match_instrument(inst, ts_ns, recv_ns, pf, out);
        // Whatever of a limit order did not fill on arrival rests.
        if let Some(ord) = self.orders.iter_mut().find(|x| x.id == id)
            && ord.order_type == OrderType::Limit
        {
            ord.resting = true;
        }
        Some(id)
    }

    /// Matches the open orders of `inst` against its current liquidity,
    /// in order-id order, emitting fills (and `filled` order events).
    pub fn match_instrument(
        &mut self,
        inst: usize,
        ts_ns: i64,
        recv_ns: i64,
        pf: &mut Portfolio,
        out: &mut Vec<Event>,
    ) {
        if !self.has_open(inst) {
            return;
        }
        let mut i = 0;
        while i < self.orders.len() {
            if self.orders[i].instrument as usize != inst {
                i += 1;
                continue;
            }
            let Some((qty, price, ref_price, liq)) =
                Self::try_fill(&self.setup, &mut self.books[inst], &self.orders[i])
            else {
                i += 1;
                continue;
            };
            let o = &mut self.orders[i];
            o.filled += qty;
            let rate = match liq {
                Liquidity::Taker => self.setup.taker_fee_e8,
                Liquidity::Maker => self.setup.maker_fee_e8,
            };
            let f = fee(pf.notional(inst, qty, price), rate);
            let eff = pf.apply_fill(inst, o.side, qty, price, f, ts_ns);
            let fill = FillEvent {
                id: self.next_fill_id,
                order_id: o.id,
                ts_ns,
                price,
                ref_price,
                qty,
                leaves: o.leaves(),
                position: eff.position,
                fee: Amount::new(f),
                realized: Amount::new(eff.realized),
                instrument: InstrumentId(o.instrument),
                strategy: o.strategy,
                side: o.side,
                liquidity: liq,
            };
            self.next_fill_id += 1;
            out.push(Event {
                recv_ns,
                body: EventBody::Fill(fill),
            });
            if o.leaves() == 0 {
                out.push(Event {
                    recv_ns,
                    body: EventBody::Order(o.event(ts_ns, OrderStatus::Filled)),
                });
                self.orders.remove(i);
                self.open_by_inst[inst] -= 1;
            } else {
                i += 1;
            }
        }
    }

    /// One fill of `o` against `b`, consuming liquidity:
    /// `(qty, price, reference price, liquidity)`.
    fn try_fill(
        s: &BrokerSetup,
        b: &mut Book,
        o: &OpenOrder,
    ) -> Option<(i64, i64, i64, Liquidity)> {
        let buy = o.side == Side::Buy;
        let leaves = o.leaves();
        if leaves <= 0 {
            return None;
        }
        let (px, avail, used) = if b.has_quote {
            if buy {
                (
                    b.ask,
                    b.ask_size.saturating_sub(b.ask_used),
                    &mut b.ask_used,
                )
            } else {
                (
                    b.bid,
                    b.bid_size.saturating_sub(b.bid_used),
                    &mut b.bid_used,
                )
            }
        } else {
            (
                b.last,
                b.last_size.saturating_sub(b.last_used),
                &mut b.last_used,
            )
        };
        if px <= 0 || avail <= 0 {
            return None;
        }
        let (price, liq) = match o.order_type {
            OrderType::Market => (slipped_price(px, s.slippage_e8, buy), Liquidity::Taker),
            OrderType::Limit => {
                let l = o.limit_price;
                let marketable = if buy { px <= l } else { px >= l };
                if !marketable {
                    return None;
                }
                if o.resting {
                    (l, Liquidity::Maker)
                } else {
                    let sp = slipped_price(px, s.slippage_e8, buy);
                    (if buy { sp.min(l) } else { sp.max(l) }, Liquidity::Taker)
                }
            }
        };
        let q = leaves.min(avail);
        *used += q;
        Some((q, price, px, liq))
    }

    /// Cancels every open order (kill switch), emitting `cancelled` order
    /// events in id order.
    pub fn cancel_all(&mut self, now_ns: i64, recv_ns: i64, out: &mut Vec<Event>) {
        for o in &self.orders {
            out.push(Event {
                recv_ns,
                body: EventBody::Order(o.event(now_ns, OrderStatus::Cancelled)),
            });
        }
        self.orders.clear();
        self.open_by_inst.iter_mut().for_each(|n| *n = 0);
        self.next_expiry_ns = i64::MAX;
    }

    /// Expires orders whose time in force ended at or before `now_ns`.
    pub fn expire(&mut self, now_ns: i64, recv_ns: i64, out: &mut Vec<Event>) {
        if now_ns < self.next_expiry_ns {
            return;
        }
        let mut next = i64::MAX;
        let mut i = 0;
        while i < self.orders.len() {
            let o = self.orders[i];
            if o.expires_ns <= now_ns {
                out.push(Event {
                    recv_ns,
                    body: EventBody::Order(o.event(now_ns, OrderStatus::Expired)),
                });
                self.orders.remove(i);
                self.open_by_inst[o.instrument as usize] -= 1;
            } else {
                next = next.min(o.expires_ns);
                i += 1;
            }
        }
        self.next_expiry_ns = next;
    }
}
