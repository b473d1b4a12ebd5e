//! The decision events the signal stage emits: fixed-size, `Copy` payloads
//! of [`crate::event::EventBody`]'s `Signal`, `SignalRejected`, `Order`,
//! `Fill`, `Portfolio` and `MarketStatus` variants.
//!
//! Reasons, rules and statuses are small enums (snake_case codes in JSON),
//! names (strategies, calendars) are indices resolved by the serializer, so
//! every payload is plain data. Times are event time (the stage clock), so a
//! replay gives the same events byte for byte.

use crate::instruments::InstrumentId;
use crate::signal::money::Amount;
use crate::tick::Side;

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[repr(u8)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            #[default]
            $($(#[$vm])* $v),+
        }
        impl $name {
            /// The snake_case code used in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
        }
    };
}

code_enum!(
    /// Which built-in strategy produced a signal.
    StrategyKind {
        /// Fast/slow moving-average crossover.
        MaCrossover = "ma_crossover",
        /// RSI mean reversion.
        RsiReversion = "rsi_reversion",
        /// Bollinger band breakout or reversion.
        Bollinger = "bollinger",
    }
);

code_enum!(
    /// Why a strategy signalled.
    SignalReason {
        /// Fast MA crossed above slow MA.
        MaCrossUp = "ma_cross_up",
        /// Fast MA crossed below slow MA.
        MaCrossDown = "ma_cross_down",
        /// RSI crossed below the oversold level.
        RsiOversold = "rsi_oversold",
        /// RSI crossed above the overbought level.
        RsiOverbought = "rsi_overbought",
        /// Close crossed above the upper band.
        BbAboveUpper = "bb_above_upper",
        /// Close crossed below the lower band.
        BbBelowLower = "bb_below_lower",
    }
);

code_enum!(
    /// The check that turned a signal away.
    RiskRule {
        /// Strength below the signal threshold (value/limit: ppm).
        Threshold = "threshold",
        /// Kill switch tripped by the daily loss limit (value: daily P&L,
        /// limit: the loss limit, money).
        KillSwitch = "kill_switch",
        /// The instrument's market is closed (value: session code).
        MarketClosed = "market_closed",
        /// No trade or quote seen yet for the instrument.
        NoMarketData = "no_market_data",
        /// Last tick older than the limit (value/limit: ns).
        StaleData = "stale_data",
        /// Per-instrument order rate limit (value/limit: orders per window).
        RateLimit = "rate_limit",
        /// Maximum open orders (value/limit: count).
        MaxOpenOrders = "max_open_orders",
        /// Per-order notional limit (value/limit: money).
        OrderNotional = "order_notional",
        /// Per-instrument position limit (value/limit: size units).
        PositionLimit = "position_limit",
        /// Portfolio concentration (value/limit: ppm of equity).
        Concentration = "concentration",
        /// Position sizing gave zero quantity (value: price used).
        ZeroQuantity = "zero_quantity",
    }
);

code_enum!(
    /// Market or limit.
    OrderType {
        /// Fills against the quote (taker).
        Market = "market",
        /// Fills at the limit price or better.
        Limit = "limit",
    }
);

code_enum!(
    /// Order lifecycle status carried by an order event.
    OrderStatus {
        /// Accepted by risk and sent to the paper broker.
        New = "new",
        /// Fully filled.
        Filled = "filled",
        /// Time in force ran out with quantity left (`filled` tells how
        /// much was done).
        Expired = "expired",
        /// Cancelled by the kill switch with quantity left.
        Cancelled = "cancelled",
    }
);

code_enum!(
    /// Maker or taker.
    Liquidity {
        /// Removed liquidity (market orders, marketable limits).
        Taker = "taker",
        /// A resting limit order was crossed.
        Maker = "maker",
    }
);

code_enum!(
    /// Why a portfolio snapshot was emitted.
    SnapshotTrigger {
        /// After a fill (`symbol`, `position`, `avg_price` describe it).
        Fill = "fill",
        /// Periodic (event time), account level.
        Interval = "interval",
        /// The daily loss limit tripped the kill switch.
        KillSwitch = "kill_switch",
    }
);

code_enum!(
    /// Trading session of a market.
    Session {
        /// No trading.
        Closed = "closed",
        /// Before the regular session (extended hours).
        PreMarket = "pre_market",
        /// Regular session.
        Regular = "regular",
        /// After the regular session (extended hours).
        AfterHours = "after_hours",
        /// Always open (24/7 markets).
        Continuous = "continuous",
    }
);

impl Session {
    /// Regular or continuous trading.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Regular | Self::Continuous)
    }
    /// Pre-market or after hours.
    pub fn is_extended(self) -> bool {
        matches!(self, Self::PreMarket | Self::AfterHours)
    }
}

/// Meaning of [`SignalEvent::values`] by strategy kind:
/// MA crossover `[fast, slow, _]`, RSI `[rsi, level crossed, _]`,
/// Bollinger `[upper, middle, lower]`. Unused slots are 0 and not
/// serialized. (No NaN in events, so events compare equal to themselves.)
pub const VALUE_NAMES: [[&str; 3]; 3] = [
    ["fast", "slow", ""],
    ["rsi", "level", ""],
    ["upper", "middle", "lower"],
];

/// A strategy's signal (`"type":"signal"`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SignalEvent {
    /// Stage-wide signal sequence number, from 1.
    pub id: u64,
    /// Event time of the decision (stage clock), ns.
    pub ts_ns: i64,
    /// The price the strategy saw (bar close), price units.
    pub price: i64,
    /// Strength/confidence in [0, 1].
    pub strength: f64,
    /// Triggering values, see [`VALUE_NAMES`].
    pub values: [f64; 3],
    /// Instrument.
    pub instrument: InstrumentId,
    /// Index of the strategy in `[[signal.strategies]]`.
    pub strategy: u8,
    /// Strategy kind.
    pub kind: StrategyKind,
    /// Buy or sell.
    pub side: Side,
    /// Reason code.
    pub reason: SignalReason,
    /// Bar window index the strategy runs on.
    pub window_idx: u8,
    /// Whether the bar was final.
    pub is_final: bool,
}

/// A signal turned away by the threshold or a risk rule
/// (`"type":"signal_rejected"`). Units of `value`/`limit` depend on the
/// rule (see [`RiskRule`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RejectionEvent {
    /// The signal.
    pub signal: SignalEvent,
    /// The rule.
    pub rule: RiskRule,
    /// The measured value that broke the rule.
    pub value: Amount,
    /// The configured limit.
    pub limit: Amount,
}

/// An order event (`"type":"order"`): new, filled or expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderEvent {
    /// Order id, from 1.
    pub id: u64,
    /// The signal it came from.
    pub signal_id: u64,
    /// Event time, ns.
    pub ts_ns: i64,
    /// Quantity, size units (positive).
    pub qty: i64,
    /// Filled so far, size units.
    pub filled: i64,
    /// Limit price (price units); 0 for market orders.
    pub limit_price: i64,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Strategy index.
    pub strategy: u8,
    /// Buy or sell.
    pub side: Side,
    /// Market or limit.
    pub order_type: OrderType,
    /// Status.
    pub status: OrderStatus,
}

/// A paper fill (`"type":"fill"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FillEvent {
    /// Fill id, from 1.
    pub id: u64,
    /// Order filled.
    pub order_id: u64,
    /// Event time, ns.
    pub ts_ns: i64,
    /// Fill price after slippage, price units.
    pub price: i64,
    /// The quote/trade price before slippage, price units.
    pub ref_price: i64,
    /// Filled quantity, size units.
    pub qty: i64,
    /// Quantity the order still has open, size units.
    pub leaves: i64,
    /// Signed position after the fill, size units.
    pub position: i64,
    /// Fee charged.
    pub fee: Amount,
    /// Realized P&L of this fill (gross of fees).
    pub realized: Amount,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Strategy index.
    pub strategy: u8,
    /// Buy or sell.
    pub side: Side,
    /// Maker or taker.
    pub liquidity: Liquidity,
}

/// A portfolio snapshot (`"type":"portfolio"`). Account fields always;
/// the position fields when `has_position` (fill snapshots).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PortfolioEvent {
    /// Event time, ns.
    pub ts_ns: i64,
    /// Cash.
    pub cash: Amount,
    /// Cash + marked positions.
    pub equity: Amount,
    /// Realized P&L net of all fees.
    pub realized: Amount,
    /// Unrealized P&L of open positions at their marks.
    pub unrealized: Amount,
    /// Fees paid.
    pub fees: Amount,
    /// Largest peak-to-trough equity fall so far.
    pub max_drawdown: Amount,
    /// Signed position of `instrument`, size units.
    pub position: i64,
    /// Average entry price of `instrument`'s position, in price units
    /// (decimal, not scaled); 0 when flat (absent in JSON).
    pub avg_price: f64,
    /// Instrument of the position fields.
    pub instrument: InstrumentId,
    /// Orders open at the broker.
    pub open_orders: u16,
    /// Whether the position fields are meaningful.
    pub has_position: bool,
    /// Kill switch state.
    pub kill_switch: bool,
    /// Why this snapshot.
    pub trigger: SnapshotTrigger,
}

/// A market opened, closed or changed session (`"type":"market_status"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MarketStatusEvent {
    /// When the session began (the calendar's boundary instant), ns; for
    /// the first status of a run, the boundary at or before the first
    /// event (`i64::MIN` when none: always-open markets).
    pub since_ns: i64,
    /// Stage clock when the change was seen, ns.
    pub ts_ns: i64,
    /// Next boundary, ns; `i64::MAX` when none is known.
    pub next_change_ns: i64,
    /// Index of the calendar in `[[calendars]]`.
    pub calendar: u8,
    /// The session now in force.
    pub session: Session,
    /// The session before (`Closed` for the first status of a run).
    pub previous: Session,
}
