//! Exact decimal strings ⇄ scaled integers, without floating point.
//!
//! Venues send prices and sizes as decimal strings (`"61837.63000000"`,
//! `"9682"`, `"0.00001305"`). tickwire stores them as `i64` counts of
//! `10^-scale` units, where `scale` is the instrument's configured precision
//! (0..=[`MAX_SCALE`]). Parsing never goes through `f64`.
//!
//! # Range
//! A value `v` parsed at scale `s` is representable when
//! `|v| * 10^s <= i64::MAX` (9 223 372 036 854 775 807). At scale 8 that is
//! ±92 233 720 368.54775807; at scale 2, ±92 233 720 368 547 758.07.
//! A value outside the range is [`DecimalError::Overflow`]; a value with
//! non-zero digits beyond the scale is [`DecimalError::TooPrecise`]. Neither
//! is ever rounded or truncated into a wrong number: the caller counts the
//! error and drops the field.
//!
//! # Examples
//! ```
//! use tickwire::decimal::{parse_scaled, format_scaled};
//! assert_eq!(parse_scaled("61837.63000000", 2), Ok(6_183_763));
//! assert_eq!(parse_scaled("9682", 2), Ok(968_200));
//! assert_eq!(format_scaled(6_183_763, 2).as_str(), "61837.63");
//! ```

use std::fmt;

/// Largest supported scale (digits after the decimal point).
pub const MAX_SCALE: u8 = 18;

/// Why a decimal string could not be turned into a scaled integer.
///
/// Hot-path error: `Copy`, no allocation. Each variant names the fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// The input was empty (or only a sign). Fix: the venue sent no value.
    Empty,
    /// A byte other than digits, one `.` and a leading sign was found, at
    /// this byte offset. Fix: the field is not a decimal number.
    InvalidChar(usize),
    /// Non-zero digits beyond the instrument's scale. Fix: raise the
    /// instrument's `price_precision`/`size_precision` in the config.
    TooPrecise,
    /// `|value| * 10^scale` does not fit in `i64`. Fix: lower the precision
    /// or check the feed; see the module docs for the range.
    Overflow,
    /// The requested scale exceeds [`MAX_SCALE`].
    BadScale,
}

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty decimal"),
            Self::InvalidChar(i) => write!(f, "invalid character at byte {i}"),
            Self::TooPrecise => write!(
                f,
                "more significant fraction digits than the configured precision"
            ),
            Self::Overflow => write!(f, "value out of range for the configured precision"),
            Self::BadScale => write!(f, "scale above {MAX_SCALE}"),
        }
    }
}

impl std::error::Error for DecimalError {}

/// Powers of ten up to 10^18 (fits in i64).
pub const POW10: [i64; 19] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
];

/// Parses a decimal string into an integer count of `10^-scale` units.
///
/// Accepts an optional leading `-` or `+`, digits, and at most one `.`
/// (`"5."` and `".5"` are accepted, as JSON producers never emit them but
/// CSV tools do). Leading zeros are fine; fraction digits beyond `scale`
/// must all be zero. No allocation, no floats.
///
/// # Errors
/// See [`DecimalError`]: empty, invalid character, too precise, overflow.
#[inline]
pub fn parse_scaled(s: &str, scale: u8) -> Result<i64, DecimalError> {
    parse_scaled_bytes(s.as_bytes(), scale)
}

/// [`parse_scaled`] over raw bytes (CSV fields, JSON tapes).
///
/// # Errors
/// As [`parse_scaled`].
#[inline]
pub fn parse_scaled_bytes(b: &[u8], scale: u8) -> Result<i64, DecimalError> {
    if scale > MAX_SCALE {
        return Err(DecimalError::BadScale);
    }
    let (neg, start) = match b.first() {
        None => return Err(DecimalError::Empty),
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        Some(_) => (false, 0),
    };
    // Fast path: unchecked accumulation while at most 18 significant digits
    // have been seen (< 10^18 fits a u64 with room to spare); longer inputs
    // take the checked path below.
    let mut acc: u64 = 0;
    let mut sig: u32 = 0;
    let mut frac_digits: u8 = 0;
    let mut seen_dot = false;
    let mut seen_digit = false;
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        let d = c.wrapping_sub(b'0');
        if d < 10 {
            seen_digit = true;
            if seen_dot {
                if frac_digits >= scale {
                    if d != 0 {
                        return Err(DecimalError::TooPrecise);
                    }
                    i += 1;
                    continue;
                }
                frac_digits += 1;
            }
            acc = acc * 10 + u64::from(d);
            sig += u32::from(acc != 0);
            if sig > 18 {
                return parse_checked(b, start, neg, scale);
            }
        } else if c == b'.' && !seen_dot {
            seen_dot = true;
        } else {
            return Err(DecimalError::InvalidChar(i));
        }
        i += 1;
    }
    if !seen_digit {
        return Err(DecimalError::Empty);
    }
    finish(acc, scale - frac_digits, neg)
}

#[inline]
fn finish(acc: u64, pad_digits: u8, neg: bool) -> Result<i64, DecimalError> {
    let mag = acc
        .checked_mul(POW10[usize::from(pad_digits)] as u64)
        .filter(|v| *v <= i64::MAX as u64)
        .ok_or(DecimalError::Overflow)?;
    // mag <= i64::MAX, so the cast and negation are exact.
    let v = mag as i64;
    Ok(if neg { -v } else { v })
}

/// The fully checked parse for inputs with more than 18 significant digits.
#[inline(never)]
fn parse_checked(b: &[u8], start: usize, neg: bool, scale: u8) -> Result<i64, DecimalError> {
    let limit: u64 = i64::MAX as u64;
    let mut acc: u64 = 0;
    let mut frac_digits: u8 = 0;
    let mut seen_dot = false;
    for (i, &c) in b.iter().enumerate().skip(start) {
        match c {
            b'0'..=b'9' => {
                let d = u64::from(c - b'0');
                if seen_dot {
                    if frac_digits >= scale {
                        if d != 0 {
                            return Err(DecimalError::TooPrecise);
                        }
                        continue;
                    }
                    frac_digits += 1;
                }
                acc = acc
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(d))
                    .filter(|v| *v <= limit)
                    .ok_or(DecimalError::Overflow)?;
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return Err(DecimalError::InvalidChar(i)),
        }
    }
    finish(acc, scale - frac_digits, neg)
}

/// A decimal rendered into a fixed stack buffer (no allocation).
#[derive(Clone, Copy)]
pub struct DecimalStr {
    buf: [u8; 48],
    len: u8,
}

impl DecimalStr {
    /// The rendered text.
    pub fn as_str(&self) -> &str {
        // The buffer only ever holds ASCII digits, '-' and '.'.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for DecimalStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DecimalStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Renders `value * 10^-scale` with exactly `scale` fraction digits
/// (`6183763, 2` → `"61837.63"`; `968200, 2` → `"9682.00"`; scale 0 → no point).
///
/// Scales above [`MAX_SCALE`] are clamped to it.
pub fn format_scaled(value: i64, scale: u8) -> DecimalStr {
    let scale = usize::from(scale.min(MAX_SCALE));
    let mut digits = [0u8; 24];
    let mut n = value.unsigned_abs();
    let mut nd = 0;
    loop {
        digits[nd] = b'0' + (n % 10) as u8;
        n /= 10;
        nd += 1;
        if n == 0 {
            break;
        }
    }
    // Ensure at least scale+1 digits so there is a leading "0.".
    while nd < scale + 1 {
        digits[nd] = b'0';
        nd += 1;
    }
    let mut out = DecimalStr {
        buf: [0; 48],
        len: 0,
    };
    let mut o = 0;
    if value < 0 {
        out.buf[o] = b'-';
        o += 1;
    }
    for k in (0..nd).rev() {
        out.buf[o] = digits[k];
        o += 1;
        if k == scale && scale > 0 {
            out.buf[o] = b'.';
            o += 1;
        }
    }
    out.len = o as u8;
    out
}

/// Renders like [`format_scaled`] but drops trailing fraction zeros (and the
/// point when nothing remains): `968200, 2` → `"9682"`. Used to compare with
/// venue strings whose trailing zeros vary.
pub fn format_scaled_trimmed(value: i64, scale: u8) -> DecimalStr {
    let mut s = format_scaled(value, scale);
    if scale > 0 {
        let mut len = usize::from(s.len);
        while len > 0 && s.buf[len - 1] == b'0' {
            len -= 1;
        }
        if len > 0 && s.buf[len - 1] == b'.' {
            len -= 1;
        }
        s.len = len as u8;
    }
    s
}

/// Normalises a venue decimal string for comparison: strips a `+` sign,
/// leading zeros of the integer part, trailing fraction zeros and a bare point.
/// `"0061837.6300"` → `"61837.63"`, `"-0.0"` → `"0"`. Allocates: tools/tests only.
pub fn normalize_decimal_str(s: &str) -> String {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = match body.find('.') {
        Some(p) => (&body[..p], &body[p + 1..]),
        None => (body, ""),
    };
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let mut out = String::new();
    if neg && !(int == "0" && frac.is_empty()) {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// Converts a scaled integer to `f64` (for indicator math only).
#[inline]
pub fn to_f64(value: i64, scale: u8) -> f64 {
    value as f64 / POW10[usize::from(scale.min(MAX_SCALE))] as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_real_venue_strings() {
        // Binance spot trade / depth (8 fraction digits), Tardis (no point),
        // Bybit linear sizes, Kraken volume.
        assert_eq!(parse_scaled("61837.63000000", 2), Ok(6_183_763));
        assert_eq!(parse_scaled("61837.63000000", 8), Ok(6_183_763_000_000));
        assert_eq!(parse_scaled("9682", 2), Ok(968_200));
        assert_eq!(parse_scaled("0.00001305", 8), Ok(1305));
        assert_eq!(parse_scaled("985", 0), Ok(985));
        assert_eq!(parse_scaled("35.72892241", 8), Ok(3_572_892_241));
        assert_eq!(parse_scaled("0.00000000", 8), Ok(0));
    }

    #[test]
    fn edge_cases() {
        assert_eq!(parse_scaled("", 2), Err(DecimalError::Empty));
        assert_eq!(parse_scaled("-", 2), Err(DecimalError::Empty));
        assert_eq!(parse_scaled(".", 2), Err(DecimalError::Empty));
        assert_eq!(parse_scaled("007.50", 2), Ok(750));
        assert_eq!(parse_scaled("-1.5", 2), Ok(-150));
        assert_eq!(parse_scaled("+1.5", 2), Ok(150));
        assert_eq!(parse_scaled("5.", 2), Ok(500));
        assert_eq!(parse_scaled(".5", 2), Ok(50));
        assert_eq!(parse_scaled("1.234", 2), Err(DecimalError::TooPrecise));
        assert_eq!(parse_scaled("1.2300000", 2), Ok(123));
        assert_eq!(parse_scaled("1e5", 2), Err(DecimalError::InvalidChar(1)));
        assert_eq!(parse_scaled("1.2.3", 2), Err(DecimalError::InvalidChar(3)));
        assert_eq!(parse_scaled(" 1", 2), Err(DecimalError::InvalidChar(0)));
        assert_eq!(parse_scaled("1", 19), Err(DecimalError::BadScale));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrong_number() {
        assert_eq!(parse_scaled("9223372036854775807", 0), Ok(i64::MAX));
        assert_eq!(parse_scaled("-9223372036854775807", 0), Ok(-i64::MAX));
        assert_eq!(
            parse_scaled("9223372036854775808", 0),
            Err(DecimalError::Overflow)
        );
        assert_eq!(parse_scaled("92233720368.54775807", 8), Ok(i64::MAX));
        assert_eq!(
            parse_scaled("92233720368.54775808", 8),
            Err(DecimalError::Overflow)
        );
        // Fits as digits, overflows after scaling.
        assert_eq!(parse_scaled("92233720369", 8), Err(DecimalError::Overflow));
        assert_eq!(
            parse_scaled("99999999999999999999999999", 0),
            Err(DecimalError::Overflow)
        );
        // Many leading zeros are not an overflow.
        assert_eq!(parse_scaled("000000000000000000000000001", 0), Ok(1));
    }

    #[test]
    fn formats_at_scale() {
        assert_eq!(format_scaled(6_183_763, 2).as_str(), "61837.63");
        assert_eq!(format_scaled(968_200, 2).as_str(), "9682.00");
        assert_eq!(format_scaled(1305, 8).as_str(), "0.00001305");
        assert_eq!(format_scaled(-150, 2).as_str(), "-1.50");
        assert_eq!(format_scaled(-5, 2).as_str(), "-0.05");
        assert_eq!(format_scaled(0, 3).as_str(), "0.000");
        assert_eq!(format_scaled(985, 0).as_str(), "985");
        assert_eq!(format_scaled(i64::MIN, 0).as_str(), "-9223372036854775808");
        assert_eq!(format_scaled(i64::MAX, 18).as_str(), "9.223372036854775807");
        assert_eq!(format_scaled_trimmed(968_200, 2).as_str(), "9682");
        assert_eq!(format_scaled_trimmed(6_183_760, 3).as_str(), "6183.76");
        assert_eq!(format_scaled_trimmed(0, 3).as_str(), "0");
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize_decimal_str("61837.63000000"), "61837.63");
        assert_eq!(normalize_decimal_str("0061837.6300"), "61837.63");
        assert_eq!(normalize_decimal_str("9682"), "9682");
        assert_eq!(normalize_decimal_str("0.00000000"), "0");
        assert_eq!(normalize_decimal_str("-0.0"), "0");
        assert_eq!(normalize_decimal_str("-1.50"), "-1.5");
    }

    proptest! {
        #[test]
        fn round_trips(v in any::<i64>().prop_filter("not MIN", |v| *v != i64::MIN), scale in 0u8..=18) {
            let s = format_scaled(v, scale);
            prop_assert_eq!(parse_scaled(s.as_str(), scale), Ok(v));
            let t = format_scaled_trimmed(v, scale);
            prop_assert_eq!(parse_scaled(t.as_str(), scale), Ok(v));
        }

        #[test]
        fn never_panics(s in "[-+0-9.eE ]{0,30}", scale in 0u8..=20) {
            let _ = parse_scaled(&s, scale);
        }

        #[test]
        fn matches_i128_oracle(int in 0u64..10_000_000_000, frac in 0u32..100_000_000, scale in 0u8..=10) {
            let s = format!("{int}.{frac:08}");
            let exact: i128 = i128::from(int) * 100_000_000 + i128::from(frac); // at scale 8
            let got = parse_scaled(&s, scale);
            if scale >= 8 {
                let want = exact * 10i128.pow(u32::from(scale - 8));
                if want <= i128::from(i64::MAX) {
                    prop_assert_eq!(got, Ok(want as i64));
                } else {
                    prop_assert_eq!(got, Err(DecimalError::Overflow));
                }
            } else {
                let div = 10i128.pow(u32::from(8 - scale));
                if exact % div != 0 {
                    prop_assert_eq!(got, Err(DecimalError::TooPrecise));
                } else {
                    let want = exact / div;
                    prop_assert_eq!(got, Ok(want as i64));
                }
            }
        }
    }
}
