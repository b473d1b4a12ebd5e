//! The paper portfolio: cash, positions, average cost, realized and
//! unrealized P&L marked to market, equity curve, drawdown, trade log.
//!
//! All money is exact `i128` at [`MONEY_SCALE`] (see [`super::money`]).
//! Accounting identity, true after every call:
//!
//! ```text
//! equity = cash + Σ qty·mark
//!        = initial_cash + realized (net of fees) + unrealized
//! ```
//!
//! A position's `cost` is the signed money paid for its open quantity
//! (positive long, negative short). A fill in the position's direction adds
//! its notional to the cost; a fill against it first closes (removing the
//! proportional cost, see the rounding rule in [`super::money`]) and books
//! `exit value − removed cost` as realized P&L, then opens the rest on the
//! other side (a flip). State is allocated in [`Portfolio::new`]: the trade
//! log and equity curve are fixed rings, so no call allocates.

use crate::signal::money::{MONEY_SCALE, NotionalScale, Round, mul_div, pow10};
use crate::tick::Side;

/// A fixed-capacity ring keeping the newest `capacity` items.
#[derive(Debug, Clone)]
pub struct Ring<T: Copy + Default> {
    buf: Box<[T]>,
    next: usize,
    len: usize,
}

impl<T: Copy + Default> Ring<T> {
    /// A ring of `capacity` (at least 1) slots.
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: vec![T::default(); capacity.max(1)].into_boxed_slice(),
            next: 0,
            len: 0,
        }
    }

    /// Appends, overwriting the oldest item when full.
    #[inline]
    pub fn push(&mut self, v: T) {
        self.buf[self.next] = v;
        self.next = (self.next + 1) % self.buf.len();
        self.len = (self.len + 1).min(self.buf.len());
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Oldest to newest.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        let cap = self.buf.len();
        let start = (self.next + cap - self.len) % cap;
        (0..self.len).map(move |i| &self.buf[(start + i) % cap])
    }

    /// The newest item.
    pub fn last(&self) -> Option<&T> {
        (self.len > 0).then(|| &self.buf[(self.next + self.buf.len() - 1) % self.buf.len()])
    }
}

/// One instrument's position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// Signed quantity, size units.
    pub qty: i64,
    /// Signed cost of the open quantity (money).
    pub cost: i128,
    /// Realized P&L of this instrument, gross of fees (money).
    pub realized: i128,
    /// Fees paid on this instrument (money).
    pub fees: i128,
    /// Mark price, price units (0 = none yet).
    pub mark: i64,
    /// `qty × mark` (money).
    pub value: i128,
}

/// One executed trade, as kept in the trade log ring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TradeRecord {
    /// Event time, ns.
    pub ts_ns: i64,
    /// Instrument index.
    pub instrument: u32,
    /// Side.
    pub side: Side,
    /// Quantity, size units.
    pub qty: i64,
    /// Price, price units.
    pub price: i64,
    /// Fee (money).
    pub fee: i128,
    /// Realized P&L of the trade, gross of fees (money).
    pub realized: i128,
}

/// One equity-curve sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EquityPoint {
    /// Event time, ns.
    pub ts_ns: i64,
    /// Equity (money).
    pub equity: i128,
}

/// What a fill did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FillEffect {
    /// Realized P&L of the fill, gross of fees.
    pub realized: i128,
    /// Signed position after.
    pub position: i64,
}

/// The paper portfolio.
#[derive(Debug, Clone)]
pub struct Portfolio {
    initial_cash: i128,
    cash: i128,
    fees: i128,
    realized_gross: i128,
    cost_total: i128,
    marked_total: i128,
    positions: Vec<Position>,
    scales: Vec<NotionalScale>,
    price_scale: Vec<f64>,
    unit_money: Vec<f64>,
    peak: i128,
    max_dd: i128,
    trades: Ring<TradeRecord>,
    curve: Ring<EquityPoint>,
    sample_every_ns: i64,
    next_sample_ns: i64,
}

impl Portfolio {
    /// A portfolio over instruments with these `(price, size)` precisions.
    pub fn new(
        initial_cash: i128,
        precisions: &[(u8, u8)],
        trade_log_capacity: usize,
        curve_capacity: usize,
        sample_every_ns: i64,
    ) -> Self {
        Self {
            initial_cash,
            cash: initial_cash,
            fees: 0,
            realized_gross: 0,
            cost_total: 0,
            marked_total: 0,
            positions: vec![Position::default(); precisions.len()],
            scales: precisions
                .iter()
                .map(|(p, s)| NotionalScale::new(*p, *s))
                .collect(),
            price_scale: precisions.iter().map(|(p, _)| pow10(*p) as f64).collect(),
            unit_money: precisions
                .iter()
                .map(|(p, s)| 10f64.powi(i32::from(MONEY_SCALE) - i32::from(*p) - i32::from(*s)))
                .collect(),
            peak: initial_cash,
            max_dd: 0,
            trades: Ring::new(trade_log_capacity),
            curve: Ring::new(curve_capacity),
            sample_every_ns: sample_every_ns.max(1),
            next_sample_ns: i64::MIN,
        }
    }

    /// Money value of `qty × price` for an instrument (0 if unknown).
    #[inline]
    pub fn notional(&self, inst: usize, qty: i64, price: i64) -> i128 {
        self.scales.get(inst).map_or(0, |s| s.value(qty, price))
    }

    /// Whole size units `money` buys at `price` (0 if unknown).
    pub fn qty_for(&self, inst: usize, money: i128, price: i64) -> i64 {
        self.scales.get(inst).map_or(0, |s| s.qty_for(money, price))
    }

    /// Applies a fill: `side` `qty` (> 0) at `price` with `fee`, at `ts_ns`.
    /// Unknown instruments and non-positive quantities are ignored.
    pub fn apply_fill(
        &mut self,
        inst: usize,
        side: Side,
        qty: i64,
        price: i64,
        fee: i128,
        ts_ns: i64,
    ) -> FillEffect {
        let Some(scale) = self.scales.get(inst).copied() else {
            return FillEffect::default();
        };
        if qty <= 0 || side == Side::None {
            return FillEffect {
                realized: 0,
                position: self.positions[inst].qty,
            };
        }
        let d: i64 = if side == Side::Buy { qty } else { -qty };
        let p = &mut self.positions[inst];
        let old_cost = p.cost;
        let mut realized = 0i128;
        let signed_notional = scale.value(d, price);
        if p.qty == 0 || (p.qty > 0) == (d > 0) {
            p.cost = p.cost.saturating_add(signed_notional);
            p.qty = p.qty.saturating_add(d);
        } else {
            let open = p.qty.unsigned_abs();
            let close = qty.unsigned_abs().min(open);
            let removed = if close == open {
                p.cost
            } else {
                mul_div(
                    p.cost,
                    i128::from(close),
                    i128::from(open),
                    Round::TowardZero,
                )
            };
            // Exit value of the closed part, signed like the position.
            let close_i = close as i64;
            let exit = if p.qty > 0 {
                scale.value(close_i, price)
            } else {
                -scale.value(close_i, price)
            };
            realized = exit - removed;
            p.cost -= removed;
            let rest = qty - close_i;
            if p.qty > 0 {
                p.qty -= close_i;
            } else {
                p.qty += close_i;
            }
            if rest > 0 {
                // Flip: open the remainder on the fill's side.
                let r = if d > 0 { rest } else { -rest };
                p.cost = p.cost.saturating_add(scale.value(r, price));
                p.qty = p.qty.saturating_add(r);
            }
        }
        p.realized += realized;
        p.fees += fee;
        if p.mark == 0 {
            p.mark = price;
        }
        let new_value = scale.value(p.qty, p.mark);
        let old_value = p.value;
        p.value = new_value;
        let pos_after = p.qty;
        self.cost_total += p.cost - old_cost;
        self.marked_total += new_value - old_value;
        self.cash -= signed_notional + fee;
        self.fees += fee;
        self.realized_gross += realized;
        self.trades.push(TradeRecord {
            ts_ns,
            instrument: inst as u32,
            side,
            qty,
            price,
            fee,
            realized,
        });
        self.after_change(ts_ns);
        FillEffect {
            realized,
            position: pos_after,
        }
    }

    /// Marks an instrument at `price` (> 0) at event time `ts_ns`.
    #[inline]
    pub fn mark(&mut self, inst: usize, price: i64, ts_ns: i64) {
        if price <= 0 {
            return;
        }
        let Some(p) = self.positions.get_mut(inst) else {
            return;
        };
        p.mark = price;
        if p.qty == 0 {
            // Flat: equity does not move; only the curve may need a sample.
            let eq = self.equity();
            self.sample(ts_ns, eq);
            return;
        }
        let v = self.scales[inst].value(p.qty, price);
        self.marked_total += v - p.value;
        p.value = v;
        self.after_change(ts_ns);
    }

    #[inline]
    fn after_change(&mut self, ts_ns: i64) {
        let eq = self.equity();
        if eq > self.peak {
            self.peak = eq;
        }
        let dd = self.peak - eq;
        if dd > self.max_dd {
            self.max_dd = dd;
        }
        self.sample(ts_ns, eq);
    }

    #[inline]
    fn sample(&mut self, ts_ns: i64, eq: i128) {
        if ts_ns >= self.next_sample_ns {
            self.curve.push(EquityPoint { ts_ns, equity: eq });
            self.next_sample_ns = ts_ns
                .div_euclid(self.sample_every_ns)
                .saturating_add(1)
                .saturating_mul(self.sample_every_ns);
        }
    }

    /// Cash.
    pub fn cash(&self) -> i128 {
        self.cash
    }

    /// Starting cash.
    pub fn initial_cash(&self) -> i128 {
        self.initial_cash
    }

    /// Cash + Σ qty·mark.
    #[inline]
    pub fn equity(&self) -> i128 {
        self.cash + self.marked_total
    }

    /// Σ qty·mark.
    pub fn marked_value(&self) -> i128 {
        self.marked_total
    }

    /// Realized P&L net of fees.
    pub fn realized(&self) -> i128 {
        self.realized_gross - self.fees
    }

    /// Realized P&L gross of fees.
    pub fn realized_gross(&self) -> i128 {
        self.realized_gross
    }

    /// Unrealized P&L: Σ (qty·mark − cost).
    pub fn unrealized(&self) -> i128 {
        self.marked_total - self.cost_total
    }

    /// Fees paid.
    pub fn fees(&self) -> i128 {
        self.fees
    }

    /// Largest peak-to-trough equity fall (money).
    pub fn max_drawdown(&self) -> i128 {
        self.max_dd
    }

    /// A position.
    pub fn position(&self, inst: usize) -> Option<&Position> {
        self.positions.get(inst)
    }

    /// Average entry price of a position in price units (decimal, e.g.
    /// `61837.63`); `None` when flat.
    pub fn avg_price(&self, inst: usize) -> Option<f64> {
        let p = self.positions.get(inst)?;
        if p.qty == 0 {
            return None;
        }
        // cost / qty is money per size unit; one price unit × one size unit
        // is `unit_money` money units.
        let per_unit = p.cost as f64 / p.qty as f64;
        Some(per_unit / self.unit_money[inst] / self.price_scale[inst])
    }

    /// The newest trades (fixed ring).
    pub fn trades(&self) -> &Ring<TradeRecord> {
        &self.trades
    }

    /// The sampled equity curve (fixed ring).
    pub fn equity_curve(&self) -> &Ring<EquityPoint> {
        &self.curve
    }

    /// Digits of money amounts (always [`MONEY_SCALE`]).
    pub fn money_scale(&self) -> u8 {
        MONEY_SCALE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::money::{MONEY_ONE, money_string};

    #[test]
    fn ring_keeps_newest() {
        let mut r = Ring::<u32>::new(3);
        assert!(r.is_empty());
        for i in 1..=5 {
            r.push(i);
        }
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(r.last(), Some(&5));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn long_round_trip() {
        // price 2 dp, size 0 dp: qty in whole units.
        let mut p = Portfolio::new(1_000 * MONEY_ONE, &[(2, 0)], 8, 8, 1);
        p.apply_fill(0, Side::Buy, 10, 10_000, 0, 1); // 10 @ 100.00
        assert_eq!(money_string(p.cash()), "0.00");
        p.mark(0, 11_000, 2);
        assert_eq!(money_string(p.unrealized()), "100.00");
        assert_eq!(money_string(p.equity()), "1100.00");
        let e = p.apply_fill(0, Side::Sell, 10, 11_000, 0, 3);
        assert_eq!(money_string(e.realized), "100.00");
        assert_eq!(e.position, 0);
        assert_eq!(p.unrealized(), 0);
        assert_eq!(money_string(p.cash()), "1100.00");
        assert_eq!(p.avg_price(0), None);
    }
}
