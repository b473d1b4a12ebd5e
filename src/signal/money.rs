//! Exact money arithmetic: `i128` counts of 10^-18 of the account currency.
//!
//! Prices and sizes are scaled `i64`s at each instrument's precision
//! ([`crate::decimal`]); a notional `price × size` is an exact integer at
//! scale `price_precision + size_precision`. The portfolio converts it to
//! one common scale, [`MONEY_SCALE`] = 18 digits, so cash, fees and P&L of
//! every instrument add up exactly. `i128` at that scale holds ±1.7·10^20
//! currency units.
//!
//! # Rounding rules (all deterministic, documented in `docs/SIGNALS.md`)
//! - Notional → money: exact when `price_precision + size_precision ≤ 18`
//!   (every realistic instrument); otherwise rounded down (toward −∞).
//! - Fees: `ceil(notional × rate)`: rounded up, against the account, to
//!   10^-18. Rates are configured in basis points and held as integer
//!   counts of 10^-8 (so `7.5` bps is `75_000`).
//! - Slippage: applied to the fill price in the instrument's price units,
//!   rounded against the trader (buys up, sells down) to the price tick.
//! - Average-cost reduction: the cost removed when part of a position is
//!   closed is `cost × closed / open` rounded toward zero; closing the whole
//!   remaining position removes exactly the remaining cost, so no rounding
//!   residue survives a round trip.

use std::io::Write as _;

use crate::decimal::POW10;

/// Digits after the point of every money amount.
pub const MONEY_SCALE: u8 = 18;

/// One currency unit at [`MONEY_SCALE`].
pub const MONEY_ONE: i128 = 1_000_000_000_000_000_000;

/// Denominator of rates held as counts of 10^-8 (1 bps = 10_000).
pub const RATE_ONE: i128 = 100_000_000;

/// How a division rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Toward −∞.
    Floor,
    /// Toward +∞.
    Ceil,
    /// Toward zero.
    TowardZero,
}

/// `a × b / d` rounded as asked, without overflowing for any `a` with
/// `|a| ≤ i128::MAX` when `|b| ≤ |d|` or `|b|·|d| < 2^127`. `d` must not be
/// 0 (0 is returned). Saturates instead of wrapping.
pub fn mul_div(a: i128, b: i128, d: i128, round: Round) -> i128 {
    if d == 0 {
        return 0;
    }
    let neg = (a < 0) ^ (b < 0) ^ (d < 0);
    let (ua, ub, ud) = (a.unsigned_abs(), b.unsigned_abs(), d.unsigned_abs());
    // a·b/d = (a/d)·b + (a%d)·b/d
    let q = ua / ud;
    let r = ua % ud;
    let hi = q.saturating_mul(ub);
    let rb = r.saturating_mul(ub);
    let lo = rb / ud;
    let rem = rb % ud;
    let mag = hi.saturating_add(lo);
    let up = rem != 0
        && match round {
            Round::Floor => neg,
            Round::Ceil => !neg,
            Round::TowardZero => false,
        };
    let mag = if up { mag.saturating_add(1) } else { mag };
    let mag = mag.min(i128::MAX as u128) as i128;
    if neg { -mag } else { mag }
}

/// Converts `price × size` (both scaled `i64`) to money, given the
/// instrument's combined precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotionalScale {
    mul: i128,
    div: i128,
    /// Largest `|qty × price|` that `× mul` cannot overflow.
    max_raw: u128,
}

impl NotionalScale {
    /// For an instrument with these precisions.
    pub fn new(price_precision: u8, size_precision: u8) -> Self {
        let p = u32::from(price_precision) + u32::from(size_precision);
        let m = u32::from(MONEY_SCALE);
        if p <= m {
            let mul = 10i128.pow(m - p);
            Self {
                mul,
                div: 1,
                max_raw: (i128::MAX / mul) as u128,
            }
        } else {
            Self {
                mul: 1,
                div: 10i128.pow((p - m).min(36)),
                max_raw: i128::MAX as u128,
            }
        }
    }

    /// Money value of `qty × price` (signed), rounded down when the
    /// precisions exceed 18 digits; saturating.
    #[inline]
    pub fn value(&self, qty: i64, price: i64) -> i128 {
        let raw = i128::from(qty) * i128::from(price);
        if self.div == 1 {
            // A plain 128-bit multiply when it cannot overflow (always, for
            // realistic values): checked i128 multiplication is a slow
            // library call.
            if raw.unsigned_abs() <= self.max_raw {
                raw * self.mul
            } else if raw < 0 {
                i128::MIN
            } else {
                i128::MAX
            }
        } else {
            raw.div_euclid(self.div)
        }
    }

    /// Money → size units at `price` (how many whole size units `money`
    /// buys), rounded toward zero. 0 when `price ≤ 0`.
    pub fn qty_for(&self, money: i128, price: i64) -> i64 {
        if price <= 0 {
            return 0;
        }
        // qty = money / (price × mul / div) = money × div / (price × mul)
        let denom = i128::from(price).saturating_mul(self.mul);
        let q = mul_div(money, self.div, denom, Round::TowardZero);
        q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

/// Fee on a notional at a rate in 10^-8 units, rounded up (against the
/// account). Never negative for non-negative inputs.
#[inline]
pub fn fee(notional: i128, rate_e8: i64) -> i128 {
    mul_div(notional.abs(), i128::from(rate_e8), RATE_ONE, Round::Ceil)
}

/// Converts basis points (may be fractional, e.g. 7.5) to a rate in
/// counts of 10^-8, rounded to the nearest count.
pub fn bps_to_rate_e8(bps: f64) -> i64 {
    (bps * 10_000.0).round() as i64
}

/// Applies slippage to a fill price: buys pay more (rounded up to the
/// tick), sells receive less (rounded down).
#[inline]
pub fn slipped_price(price: i64, rate_e8: i64, buy: bool) -> i64 {
    let p = i128::from(price);
    let r = i128::from(rate_e8);
    let v = if buy {
        mul_div(p, RATE_ONE + r, RATE_ONE, Round::Ceil)
    } else {
        mul_div(p, RATE_ONE - r, RATE_ONE, Round::Floor)
    };
    v.clamp(0, i128::from(i64::MAX)) as i64
}

/// Parses a decimal string (`"100000"`, `"-12.5"`) into money units.
///
/// # Errors
/// A message naming the problem (not a decimal, more than 18 fraction
/// digits, out of range).
pub fn parse_money(s: &str) -> Result<i128, String> {
    let t = s.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(format!("'{s}' is not a decimal number"));
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not a decimal number"));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > usize::from(MONEY_SCALE) {
        return Err(format!(
            "'{s}' has more than {MONEY_SCALE} digits after the point"
        ));
    }
    let mut v: i128 = 0;
    for b in int.bytes() {
        v = v
            .checked_mul(10)
            .and_then(|x| x.checked_add(i128::from(b - b'0')))
            .ok_or_else(|| format!("'{s}' is too large"))?;
    }
    v = v
        .checked_mul(MONEY_ONE)
        .ok_or_else(|| format!("'{s}' is too large"))?;
    let mut f: i128 = 0;
    for b in frac.bytes() {
        f = f * 10 + i128::from(b - b'0');
    }
    f *= 10i128.pow(u32::from(MONEY_SCALE) - frac.len() as u32);
    let v = v + f;
    Ok(if neg { -v } else { v })
}

/// Appends `v` as an exact decimal string: trailing zeros trimmed, but at
/// least 2 digits after the point (`"100000.00"`, `"0.6183763"`).
pub fn write_money(out: &mut Vec<u8>, v: i128) {
    let neg = v < 0;
    let m = v.unsigned_abs();
    let int = m / MONEY_ONE as u128;
    let mut frac = m % MONEY_ONE as u128;
    let mut digits = usize::from(MONEY_SCALE);
    while digits > 2 && frac % 10 == 0 {
        frac /= 10;
        digits -= 1;
    }
    if neg {
        out.push(b'-');
    }
    let _ = write!(out, "{int}.{frac:0digits$}");
}

/// [`write_money`] into a `String` (tests, tools).
pub fn money_string(v: i128) -> String {
    let mut b = Vec::new();
    write_money(&mut b, v);
    String::from_utf8(b).unwrap_or_default()
}

/// Money as an `f64` in currency units (for ratios only).
#[inline]
pub fn money_f64(v: i128) -> f64 {
    v as f64 / MONEY_ONE as f64
}

/// A money amount carried inside an [`crate::event::Event`]: the `i128`
/// split in two 64-bit halves so events keep 8-byte alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Amount {
    lo: u64,
    hi: i64,
}

impl Amount {
    /// Wraps a money value.
    #[inline]
    pub const fn new(v: i128) -> Self {
        Self {
            lo: v as u64,
            hi: (v >> 64) as i64,
        }
    }

    /// The money value.
    #[inline]
    pub const fn get(self) -> i128 {
        ((self.hi as i128) << 64) | self.lo as i128
    }
}

impl From<i128> for Amount {
    fn from(v: i128) -> Self {
        Self::new(v)
    }
}

/// `10^n` as `i64` for `n ≤ 18`.
#[inline]
pub fn pow10(n: u8) -> i64 {
    POW10[usize::from(n.min(18))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_div_rounds_and_does_not_overflow() {
        assert_eq!(mul_div(7, 1, 2, Round::Floor), 3);
        assert_eq!(mul_div(7, 1, 2, Round::Ceil), 4);
        assert_eq!(mul_div(-7, 1, 2, Round::Floor), -4);
        assert_eq!(mul_div(-7, 1, 2, Round::Ceil), -3);
        assert_eq!(mul_div(-7, 1, 2, Round::TowardZero), -3);
        let big = i128::MAX / 3;
        assert_eq!(
            mul_div(big, 1 << 60, 1 << 61, Round::Floor),
            big / 2,
            "no overflow in the intermediate"
        );
        assert_eq!(mul_div(5, 5, 0, Round::Floor), 0);
    }

    #[test]
    fn amounts_round_trip() {
        for v in [0i128, 1, -1, i128::MAX, i128::MIN, 123 * MONEY_ONE + 7] {
            assert_eq!(Amount::new(v).get(), v);
        }
    }

    #[test]
    fn money_parses_and_prints() {
        assert_eq!(parse_money("100000"), Ok(100_000 * MONEY_ONE));
        assert_eq!(parse_money("-0.5"), Ok(-MONEY_ONE / 2));
        assert_eq!(parse_money("1.000000000000000001"), Ok(MONEY_ONE + 1));
        assert!(parse_money("1.0000000000000000001").is_err());
        assert!(parse_money("abc").is_err());
        assert!(parse_money("").is_err());
        assert_eq!(money_string(100_000 * MONEY_ONE), "100000.00");
        assert_eq!(money_string(-MONEY_ONE / 2), "-0.50");
        assert_eq!(money_string(MONEY_ONE + 1), "1.000000000000000001");
        assert_eq!(
            money_string(6_183_763 * MONEY_ONE / 10_000_000),
            "0.6183763"
        );
    }

    #[test]
    fn notional_fee_slippage() {
        // BTC: price 2 dp, size 5 dp; 0.01 BTC at 61837.63 = 618.3763
        let s = NotionalScale::new(2, 5);
        let n = s.value(1_000, 6_183_763);
        assert_eq!(money_string(n), "618.3763");
        // 10 bps fee = 0.61837630
        assert_eq!(money_string(fee(n, bps_to_rate_e8(10.0))), "0.6183763");
        // 7.5 bps
        assert_eq!(bps_to_rate_e8(7.5), 75_000);
        // qty for 1000 currency units at 61837.63 = 0.01617 (floor)
        assert_eq!(s.qty_for(1000 * MONEY_ONE, 6_183_763), 1_617);
        // 1 bps slippage on 61837.63: 6.1837 → buy 61843.82 (ceil), sell 61831.44 (floor)
        assert_eq!(slipped_price(6_183_763, 10_000, true), 6_184_382);
        assert_eq!(slipped_price(6_183_763, 10_000, false), 6_183_144);
        assert_eq!(slipped_price(100, 0, true), 100);
        // High precision instruments round down.
        let hp = NotionalScale::new(10, 10);
        assert_eq!(hp.value(3, 7), 0);
        assert_eq!(hp.value(-3, 7), -1);
    }
}
