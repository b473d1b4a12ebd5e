//! Parsing helpers shared by the venue adapters and capture readers.
//!
//! - [`TapeParser`]: simd-json tape parsing with reused buffers. The frame is
//!   copied into a padded scratch buffer (simd-json rewrites its input while
//!   unescaping), the tape is refilled in place and handed to a closure. No
//!   allocation after the buffers reached the largest frame seen.
//! - Field getters that turn a missing or mistyped field into
//!   [`DecodeError::MissingField`], and decimal fields into scaled integers.
//! - [`number_scaled`]: an exact JSON-number → scaled-integer conversion for
//!   venues that send prices as JSON numbers (Polygon).
//! - [`SeqTracker`] and [`gap_tick`]: sequence-gap detection.
//! - [`hash_id`]: a stable 64-bit hash for non-numeric trade ids.

use std::io::Write as _;

use simd_json::prelude::*;
use simd_json::tape::{Tape, Value};
use simd_json::{Buffers, INPUT_PADDING, fill_tape_padded};

use super::DecodeError;
use crate::decimal::{DecimalError, POW10, parse_scaled, parse_scaled_bytes};
use crate::instruments::{Instrument, InstrumentId};
use crate::tick::{Side, Tick, TickKind};

/// Nanoseconds per millisecond.
pub const MS: i64 = 1_000_000;

/// Reusable simd-json tape parser.
pub struct TapeParser {
    scratch: Vec<u8>,
    buffers: Buffers,
    tape: Tape<'static>,
}

impl std::fmt::Debug for TapeParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapeParser")
            .field("scratch_capacity", &self.scratch.capacity())
            .finish_non_exhaustive()
    }
}

impl Default for TapeParser {
    fn default() -> Self {
        Self::new(64 * 1024)
    }
}

impl TapeParser {
    /// A parser whose buffers start with room for `capacity`-byte frames.
    pub fn new(capacity: usize) -> Self {
        Self {
            scratch: Vec::with_capacity(capacity + INPUT_PADDING),
            buffers: Buffers::new(capacity),
            tape: Tape(Vec::with_capacity(4096)),
        }
    }

    /// Parses `frame` and calls `f` with the root value.
    ///
    /// # Errors
    /// [`DecodeError::Json`] when `frame` is not valid JSON (`f` is not called).
    pub fn parse<R>(
        &mut self,
        frame: &[u8],
        f: impl for<'t, 'i> FnOnce(Value<'t, 'i>) -> R,
    ) -> Result<R, DecodeError> {
        let len = frame.len();
        self.scratch.clear();
        self.scratch.extend_from_slice(frame);
        self.scratch.resize(len + INPUT_PADDING, 0);
        // `Tape(Vec::new())` does not allocate; the real buffer is moved out
        // and back so the tape can borrow `scratch` for this call only.
        let mut tape: Tape<'_> = std::mem::replace(&mut self.tape, Tape(Vec::new())).reset();
        let res = match fill_tape_padded(&mut self.scratch, len, &mut self.buffers, &mut tape) {
            Ok(()) => Ok(f(tape.as_value())),
            Err(_) => Err(DecodeError::Json),
        };
        self.tape = tape.reset();
        res
    }
}

/// A string field.
///
/// # Errors
/// Missing or not a string.
#[inline]
pub fn get_str<'i>(v: &Value<'_, 'i>, k: &'static str) -> Result<&'i str, DecodeError> {
    v.get(k)
        .and_then(|x| x.into_string())
        .ok_or(DecodeError::MissingField(k))
}

/// An integer field.
///
/// # Errors
/// Missing or not an integer.
#[inline]
pub fn get_i64(v: &Value<'_, '_>, k: &'static str) -> Result<i64, DecodeError> {
    v.get(k)
        .and_then(|x| x.as_i64())
        .ok_or(DecodeError::MissingField(k))
}

/// An unsigned integer field.
///
/// # Errors
/// Missing or not a non-negative integer.
#[inline]
pub fn get_u64(v: &Value<'_, '_>, k: &'static str) -> Result<u64, DecodeError> {
    v.get(k)
        .and_then(|x| x.as_u64())
        .ok_or(DecodeError::MissingField(k))
}

/// A decimal string at the instrument's price precision.
///
/// # Errors
/// Not a decimal that fits the precision.
#[inline]
pub fn price(inst: &Instrument, s: &str, k: &'static str) -> Result<i64, DecodeError> {
    parse_scaled(s, inst.price_precision).map_err(|e| DecodeError::Decimal(k, e))
}

/// A decimal string at the instrument's size precision.
///
/// # Errors
/// Not a decimal that fits the precision.
#[inline]
pub fn size(inst: &Instrument, s: &str, k: &'static str) -> Result<i64, DecodeError> {
    parse_scaled(s, inst.size_precision).map_err(|e| DecodeError::Decimal(k, e))
}

/// Longest shortest-round-trip rendering [`number_scaled`] accepts. Any
/// finite `f64` that needs more characters is either beyond `i64` at every
/// scale or has significant digits beyond scale 18.
const NUM_BUF: usize = 40;

/// Converts a JSON number (or a decimal string) to a scaled integer exactly.
///
/// simd-json hands out floats as `f64`, which has lost the number's text.
/// The conversion formats the `f64` with Rust's shortest round-trip
/// representation (`{}` of `f64`: the fewest digits that parse back to the
/// same `f64`, never exponent notation) into a stack buffer and parses that
/// text with [`parse_scaled_bytes`]. For any number written with at most 15
/// significant digits (every price a venue encodes from a `float64` with a
/// shortest-representation encoder, as Go's and Python's JSON encoders do),
/// that text has the same decimal value as the original, so the result is
/// exact. Integers take an integer path without any float. No allocation.
///
/// # Errors
/// [`DecodeError::MissingField`] when the value is neither a number nor a
/// string; [`DecodeError::Decimal`] when it does not fit `scale` (including
/// non-finite or absurdly long values).
pub fn number_scaled(v: Value<'_, '_>, scale: u8, k: &'static str) -> Result<i64, DecodeError> {
    let derr = |e| DecodeError::Decimal(k, e);
    if let Some(i) = v.as_i64() {
        return i
            .checked_mul(POW10[usize::from(scale.min(18))])
            .ok_or(derr(DecimalError::Overflow));
    }
    if let Some(u) = v.as_u64() {
        return i64::try_from(u)
            .ok()
            .and_then(|i| i.checked_mul(POW10[usize::from(scale.min(18))]))
            .ok_or(derr(DecimalError::Overflow));
    }
    if let Some(f) = v.as_f64() {
        return f64_scaled(f, scale).map_err(derr);
    }
    if let Some(s) = v.into_string() {
        return parse_scaled(s, scale).map_err(derr);
    }
    Err(DecodeError::MissingField(k))
}

/// The `f64` half of [`number_scaled`]: shortest round-trip text, then an
/// exact decimal parse.
///
/// # Errors
/// Non-finite, too long to render in the stack buffer, or not fitting `scale`.
pub fn f64_scaled(f: f64, scale: u8) -> Result<i64, DecimalError> {
    if !f.is_finite() {
        return Err(DecimalError::Overflow);
    }
    let mut buf = [0u8; NUM_BUF];
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    write!(cur, "{f}").map_err(|_| DecimalError::Overflow)?;
    let n = cur.position() as usize;
    parse_scaled_bytes(&buf[..n], scale)
}

/// FNV-1a 64-bit hash of a non-numeric id (e.g. a Bybit linear trade UUID).
/// Stable across runs and platforms; the tick carries
/// [`crate::tick::flags::ID_HASHED`].
#[inline]
pub fn hash_id(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// An id string as `u64` when it is all digits, else its [`hash_id`] and
/// `true` (hashed).
#[inline]
pub fn id_or_hash(s: &str) -> (u64, bool) {
    if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(v) = s.parse::<u64>() {
            return (v, false);
        }
    }
    (hash_id(s), true)
}

/// A [`TickKind::Gap`] tick: `expected` is the id that should have come next,
/// `received` the id that came; `size` = ids missing (0 when `received` went
/// backwards).
#[inline]
pub fn gap_tick(
    instrument: InstrumentId,
    ts_event_ns: i64,
    ts_recv_ns: i64,
    expected: u64,
    received: u64,
) -> Tick {
    Tick {
        ts_event_ns,
        ts_recv_ns,
        price: received as i64,
        size: received.saturating_sub(expected).min(i64::MAX as u64) as i64,
        id: expected,
        instrument,
        kind: TickKind::Gap as u8,
        side: Side::None as u8,
        ..Tick::default()
    }
}

/// Continuity state of one id sequence (per instrument and stream).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqTracker {
    last: u64,
    valid: bool,
}

impl SeqTracker {
    /// Checks a message covering ids `first..=last` against the previous
    /// message: contiguous when `first == previous last + 1`. The first
    /// message after a [`reset`](Self::reset) is never a gap. Returns the
    /// expected id on a break; always moves on to `last`.
    #[inline]
    pub fn next_range(&mut self, first: u64, last: u64) -> Option<u64> {
        let gap = if self.valid {
            let expected = self.last.wrapping_add(1);
            (first != expected).then_some(expected)
        } else {
            None
        };
        self.last = last;
        self.valid = true;
        gap
    }

    /// Checks a message that names its predecessor (`prev`, Binance USD-M
    /// `pu`): contiguous when `prev` equals the previous message's `last`.
    /// Returns the expected predecessor on a break; moves on to `last`.
    #[inline]
    pub fn next_linked(&mut self, prev: u64, last: u64) -> Option<u64> {
        let gap = (self.valid && prev != self.last).then_some(self.last);
        self.last = last;
        self.valid = true;
        gap
    }

    /// Whether `id` is exactly the next id (without changing state).
    #[inline]
    pub fn is_next(&self, id: u64) -> bool {
        self.valid && id == self.last.wrapping_add(1)
    }

    /// Forgets the sequence (new connection, book snapshot).
    #[inline]
    pub fn reset(&mut self) {
        self.valid = false;
    }

    /// Restarts the sequence at `last` (a snapshot that defines the base).
    #[inline]
    pub fn set(&mut self, last: u64) {
        self.last = last;
        self.valid = true;
    }
}

/// Resolves a venue symbol to its instrument, counting it in
/// `unknown_symbols` when the registry does not know it (every adapter's
/// lookup). No allocation.
#[inline]
pub fn lookup_counted<'a>(
    reg: &'a crate::instruments::InstrumentRegistry,
    venue: Option<crate::instruments::VenueId>,
    sym: &str,
    counters: &crate::telemetry::FeedCounters,
) -> Option<&'a crate::instruments::Instrument> {
    let id = venue.and_then(|v| reg.lookup(v, sym.as_bytes()));
    if id.is_none() {
        counters.unknown_symbols.inc();
    }
    id.and_then(|id| reg.get(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parser_reuses_buffers_and_reports_bad_json() {
        let mut p = TapeParser::new(16);
        let r = p.parse(br#"{"a":"x\u0041","b":[1,2]}"#, |v| {
            (
                get_str(&v, "a").map(str::to_owned),
                v.get("b").and_then(|b| b.as_array()).map(|a| a.len()),
            )
        });
        assert_eq!(r, Ok((Ok("xA".to_owned()), Some(2))));
        assert_eq!(p.parse(b"{", |_| ()), Err(DecodeError::Json));
        assert_eq!(p.parse(b"", |_| ()), Err(DecodeError::Json));
        let big = format!("{{\"k\":\"{}\"}}", "z".repeat(100_000));
        let r = p.parse(big.as_bytes(), |v| get_str(&v, "k").map(str::len));
        assert_eq!(r, Ok(Ok(100_000)));
    }

    #[test]
    fn numbers_convert_exactly() {
        let mut p = TapeParser::default();
        let conv = |p: &mut TapeParser, s: &str, scale: u8| {
            p.parse(s.as_bytes(), |v| number_scaled(v, scale, "p"))
                .unwrap()
        };
        assert_eq!(conv(&mut p, "161.87", 2), Ok(16_187));
        assert_eq!(conv(&mut p, "155.85", 4), Ok(1_558_500));
        assert_eq!(conv(&mut p, "0.1", 8), Ok(10_000_000));
        assert_eq!(conv(&mut p, "192.305", 3), Ok(192_305));
        assert_eq!(conv(&mut p, "300", 2), Ok(30_000));
        assert_eq!(conv(&mut p, "-2.5", 1), Ok(-25));
        assert_eq!(conv(&mut p, "1e2", 0), Ok(100));
        assert_eq!(conv(&mut p, "\"12.5\"", 1), Ok(125));
        assert_eq!(
            conv(&mut p, "192.305", 2),
            Err(DecodeError::Decimal("p", DecimalError::TooPrecise))
        );
        assert_eq!(
            conv(&mut p, "1e300", 2),
            Err(DecodeError::Decimal("p", DecimalError::Overflow))
        );
        assert_eq!(
            conv(&mut p, "5e-324", 8),
            Err(DecodeError::Decimal("p", DecimalError::Overflow))
        );
        assert_eq!(conv(&mut p, "null", 2), Err(DecodeError::MissingField("p")));
        assert_eq!(
            conv(&mut p, "18446744073709551615", 0),
            Err(DecodeError::Decimal("p", DecimalError::Overflow))
        );
    }

    #[test]
    fn ids_and_hashes() {
        assert_eq!(
            id_or_hash("2280000001739247417"),
            (2_280_000_001_739_247_417, false)
        );
        let (h, hashed) = id_or_hash("a9188a0a-82bc-50de-be60-03eedbe3cdd7");
        assert!(hashed);
        assert_eq!(h, hash_id("a9188a0a-82bc-50de-be60-03eedbe3cdd7"));
        assert_ne!(h, hash_id("a9188a0a-82bc-50de-be60-03eedbe3cdd8"));
        assert!(id_or_hash("").1);
        assert!(id_or_hash("99999999999999999999").1, "beyond u64");
        // FNV-1a reference value for "a".
        assert_eq!(hash_id("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn seq_tracker() {
        let mut s = SeqTracker::default();
        assert_eq!(s.next_range(10, 12), None, "first is never a gap");
        assert_eq!(s.next_range(13, 13), None);
        assert_eq!(s.next_range(15, 20), Some(14));
        assert_eq!(s.next_range(21, 21), None, "resynced after the gap");
        assert!(s.is_next(22));
        s.reset();
        assert!(!s.is_next(22));
        assert_eq!(s.next_range(100, 100), None);
        let mut l = SeqTracker::default();
        assert_eq!(l.next_linked(5, 9), None);
        assert_eq!(l.next_linked(9, 15), None);
        assert_eq!(l.next_linked(16, 20), Some(15));
        let g = gap_tick(InstrumentId(3), 1, 2, 14, 15);
        assert_eq!((g.id, g.price, g.size), (14, 15, 1));
        assert_eq!(g.kind(), Some(TickKind::Gap));
        let back = gap_tick(InstrumentId(3), 1, 2, 14, 10);
        assert_eq!(back.size, 0);
    }

    proptest! {
        /// Any decimal with ≤ 15 significant digits survives the trip
        /// text → f64 → shortest text → scaled integer exactly.
        #[test]
        fn f64_path_is_exact(int in 0u64..10_000_000, frac in 0u64..100_000_000, fd in 0u32..=8) {
            let frac = frac % 10u64.pow(fd);
            let text = if fd == 0 { format!("{int}") } else { format!("{int}.{frac:0w$}", w = fd as usize) };
            let f: f64 = text.parse().unwrap();
            prop_assert_eq!(f64_scaled(f, 8), parse_scaled(&text, 8));
        }
    }
}
