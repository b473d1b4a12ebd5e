//! Pre-trade risk checks. Every signal passes them before it becomes an
//! order; the first rule that fails rejects it with the measured value and
//! the limit.
//!
//! A limit is a value that may not be reached: a rule rejects when its
//! measured value is **at or over** the limit (one unit below passes).
//! Checks, in order:
//!
//! | rule | measured value | limit |
//! |---|---|---|
//! | `kill_switch` | tripped? (value: today's loss) | `max_daily_loss` |
//! | `market_closed` | the instrument's session | closed (and extended hours unless allowed) |
//! | `no_market_data` / `stale_data` | event time since the last trade/quote | `stale_after_ms` |
//! | `rate_limit` | orders on the instrument in the last `rate_window_secs` | `max_orders_per_window` |
//! | `max_open_orders` | orders open at the broker | `max_open_orders` |
//! | `order_notional` | `qty × price` | `max_order_notional` |
//! | `position_limit` | \|position + open orders + order\| | per-instrument `max_position` |
//! | `concentration` | that position's notional / equity (ppm) | `max_concentration_pct` |
//!
//! Orders that reduce the absolute exposure are exempt from the position
//! and concentration limits. The daily loss limit is watched on every
//! mark-to-market: when today's loss (equity now vs. equity at the first
//! event of the UTC day) reaches it, the kill switch trips (the stage
//! cancels every open order) and stays tripped until [`RiskEngine::reset_kill_switch`] (or the next UTC day when
//! `kill_switch_auto_reset` is set).

use crate::signal::events::{RiskRule, Session};
use crate::signal::money::{Round, mul_div};
use crate::signal::portfolio::Ring;
use crate::tick::Side;

/// One UTC day, ns.
pub const DAY_NS: i64 = 86_400_000_000_000;

/// Configured limits (`None` / 0 = rule disabled).
#[derive(Debug, Clone, PartialEq)]
pub struct RiskSetup {
    /// Per-instrument position limit, size units.
    pub max_position: Vec<Option<i64>>,
    /// Concentration limit, ppm of equity.
    pub max_concentration_ppm: Option<i64>,
    /// Per-order notional limit, money.
    pub max_order_notional: Option<i128>,
    /// Maximum open orders (also the broker's capacity).
    pub max_open_orders: usize,
    /// Daily loss that trips the kill switch, money (positive).
    pub max_daily_loss: Option<i128>,
    /// Re-arm the kill switch at the next UTC day.
    pub kill_switch_auto_reset: bool,
    /// Maximum age of the instrument's last tick, ns.
    pub stale_after_ns: Option<i64>,
    /// Allow orders while the market is closed.
    pub allow_when_closed: bool,
    /// Allow orders in pre-market / after-hours sessions.
    pub allow_extended_hours: bool,
    /// Orders per instrument per window; 0 disables.
    pub max_orders_per_window: usize,
    /// Rate-limit window, ns.
    pub rate_window_ns: i64,
}

impl RiskSetup {
    /// No limits except `max_open_orders`, for `instruments` instruments.
    pub fn permissive(instruments: usize, max_open_orders: usize) -> Self {
        Self {
            max_position: vec![None; instruments],
            max_concentration_ppm: None,
            max_order_notional: None,
            max_open_orders,
            max_daily_loss: None,
            kill_switch_auto_reset: false,
            stale_after_ns: None,
            allow_when_closed: true,
            allow_extended_hours: true,
            max_orders_per_window: 0,
            rate_window_ns: 1,
        }
    }
}

/// What a check needs to know about the proposed order and the account.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderCheck {
    /// Instrument index.
    pub instrument: usize,
    /// Side.
    pub side: Side,
    /// Quantity, size units (> 0).
    pub qty: i64,
    /// Order notional, money.
    pub notional: i128,
    /// Money value of the resulting position (position + open orders +
    /// this order) at the order's price; used by the concentration rule.
    pub resulting_notional: i128,
    /// Signed position now.
    pub position: i64,
    /// Signed quantity of the instrument's open orders.
    pub pending: i64,
    /// Orders open at the broker.
    pub open_orders: usize,
    /// Equity, money.
    pub equity: i128,
    /// Event time of the instrument's last trade/quote, if any.
    pub last_data_ns: Option<i64>,
    /// Stage clock, ns.
    pub now_ns: i64,
    /// The instrument's session now.
    pub session: Session,
}

/// A failed check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// The rule.
    pub rule: RiskRule,
    /// Measured value (unit per rule, see [`RiskRule`]).
    pub value: i128,
    /// The limit.
    pub limit: i128,
}

/// Risk state and checks.
#[derive(Debug, Clone)]
pub struct RiskEngine {
    setup: RiskSetup,
    kill: bool,
    day: i64,
    next_day_ns: i64,
    day_start_equity: i128,
    last_equity: i128,
    order_times: Vec<Ring<i64>>,
}

impl RiskEngine {
    /// An engine with `setup`; `instruments` sizes the per-instrument
    /// state; `equity` is the starting equity (today's loss baseline).
    pub fn new(setup: RiskSetup, instruments: usize, equity: i128) -> Self {
        let cap = setup.max_orders_per_window.max(1);
        Self {
            order_times: (0..instruments).map(|_| Ring::new(cap)).collect(),
            setup,
            kill: false,
            day: i64::MIN,
            next_day_ns: i64::MIN,
            day_start_equity: equity,
            last_equity: equity,
        }
    }

    /// The limits.
    pub fn setup(&self) -> &RiskSetup {
        &self.setup
    }

    /// Whether the kill switch is tripped.
    pub fn kill_switch(&self) -> bool {
        self.kill
    }

    /// Re-arms the kill switch (operator action). Today's loss baseline
    /// restarts from the current equity.
    pub fn reset_kill_switch(&mut self) {
        self.kill = false;
        self.day_start_equity = self.last_equity;
    }

    /// Today's P&L (equity now − equity at the start of the UTC day).
    pub fn daily_pnl(&self) -> i128 {
        self.last_equity - self.day_start_equity
    }

    /// Watches equity at event time `now_ns`. Returns `true` when this call
    /// tripped the kill switch.
    #[inline]
    pub fn on_equity(&mut self, now_ns: i64, equity: i128) -> bool {
        if now_ns >= self.next_day_ns {
            self.new_day(now_ns);
        }
        self.last_equity = equity;
        if self.kill {
            return false;
        }
        if let Some(limit) = self.setup.max_daily_loss
            && self.day_start_equity - equity >= limit
        {
            self.kill = true;
            return true;
        }
        false
    }

    #[cold]
    fn new_day(&mut self, now_ns: i64) {
        let day = now_ns.div_euclid(DAY_NS);
        self.next_day_ns = day.saturating_add(1).saturating_mul(DAY_NS);
        if day > self.day {
            if self.day != i64::MIN && self.setup.kill_switch_auto_reset {
                self.kill = false;
            }
            self.day = day;
            // Baseline: the equity before this event's change.
            self.day_start_equity = self.last_equity;
        }
    }

    /// Records an accepted order for the rate limit.
    pub fn record_order(&mut self, inst: usize, now_ns: i64) {
        if self.setup.max_orders_per_window > 0
            && let Some(r) = self.order_times.get_mut(inst)
        {
            r.push(now_ns);
        }
    }

    /// Orders on `inst` within the rate window ending at `now_ns`.
    pub fn orders_in_window(&self, inst: usize, now_ns: i64) -> usize {
        let from = now_ns.saturating_sub(self.setup.rate_window_ns);
        self.order_times
            .get(inst)
            .map_or(0, |r| r.iter().filter(|t| **t > from).count())
    }

    /// Runs every rule in order; the first failure rejects.
    ///
    /// # Errors
    /// The rule, measured value and limit that rejected the order.
    pub fn check(&self, c: &OrderCheck) -> Result<(), Rejection> {
        let s = &self.setup;
        let rej = |rule, value: i128, limit: i128| Err(Rejection { rule, value, limit });
        if self.kill {
            return rej(
                RiskRule::KillSwitch,
                self.day_start_equity - self.last_equity,
                s.max_daily_loss.unwrap_or(0),
            );
        }
        let closed = match c.session {
            Session::Closed => !s.allow_when_closed,
            Session::PreMarket | Session::AfterHours => !s.allow_extended_hours,
            Session::Regular | Session::Continuous => false,
        };
        if closed {
            return rej(RiskRule::MarketClosed, c.session as u8 as i128, 0);
        }
        if let Some(max_age) = s.stale_after_ns {
            match c.last_data_ns {
                None => return rej(RiskRule::NoMarketData, 0, i128::from(max_age)),
                Some(t) => {
                    let age = c.now_ns.saturating_sub(t);
                    if age >= max_age {
                        return rej(RiskRule::StaleData, i128::from(age), i128::from(max_age));
                    }
                }
            }
        }
        if s.max_orders_per_window > 0 {
            let n = self.orders_in_window(c.instrument, c.now_ns);
            if n >= s.max_orders_per_window {
                return rej(
                    RiskRule::RateLimit,
                    n as i128,
                    s.max_orders_per_window as i128,
                );
            }
        }
        if c.open_orders >= s.max_open_orders {
            return rej(
                RiskRule::MaxOpenOrders,
                c.open_orders as i128,
                s.max_open_orders as i128,
            );
        }
        if let Some(max) = s.max_order_notional
            && c.notional >= max
        {
            return rej(RiskRule::OrderNotional, c.notional, max);
        }
        let d = if c.side == Side::Buy { c.qty } else { -c.qty };
        let before = c.position.saturating_add(c.pending);
        let after = before.saturating_add(d);
        let reducing = after.unsigned_abs() < before.unsigned_abs();
        if !reducing {
            if let Some(Some(max)) = s.max_position.get(c.instrument)
                && after.unsigned_abs() >= max.unsigned_abs()
            {
                return rej(
                    RiskRule::PositionLimit,
                    i128::from(after.unsigned_abs()),
                    i128::from(*max),
                );
            }
            if let Some(max_ppm) = s.max_concentration_ppm {
                let ppm = if c.equity <= 0 {
                    i128::MAX
                } else {
                    mul_div(
                        c.resulting_notional.abs(),
                        1_000_000,
                        c.equity,
                        Round::Floor,
                    )
                };
                if ppm >= i128::from(max_ppm) {
                    return rej(RiskRule::Concentration, ppm, i128::from(max_ppm));
                }
            }
        }
        Ok(())
    }
}
