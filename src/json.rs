//! The one JSON serializer for every output (see `docs/EVENTS.md`).
//!
//! Subscribers, REST, `replay --dump`, journal export and tail all call
//! [`write_event`] / [`write_tick`], so the schema lives in one place:
//! `type`, `symbol` as `VENUE:SYMBOL`, integer ns times, exact decimal
//! strings for prices and sizes, JSON numbers for derived floats, and absent
//! (never `null`/NaN) for values not yet defined.
//!
//! Writes append to a caller-owned `Vec<u8>`; with enough capacity reserved
//! nothing allocates.

use std::io::Write as _;

use crate::config::window_name;
use crate::decimal::format_scaled;
use crate::event::{Bar, Event, EventBody};
use crate::instruments::{Instrument, InstrumentRegistry};
use crate::tick::{Tick, TickKind, flags};

/// Serialization context: the registry (names, precisions) and window names.
#[derive(Debug, Clone)]
pub struct JsonContext {
    registry: InstrumentRegistry,
    window_names: Vec<String>,
}

impl JsonContext {
    /// A context over `registry` with the kernel's window lengths (ns).
    pub fn new(registry: InstrumentRegistry, windows_ns: &[i64]) -> Self {
        Self {
            registry,
            window_names: windows_ns.iter().map(|w| window_name(*w)).collect(),
        }
    }

    /// The registry.
    pub fn registry(&self) -> &InstrumentRegistry {
        &self.registry
    }

    fn window(&self, idx: u8, ns: i64) -> String {
        self.window_names
            .get(usize::from(idx))
            .cloned()
            .unwrap_or_else(|| window_name(ns))
    }
}

fn key(out: &mut Vec<u8>, k: &str) {
    out.push(b',');
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn str_field(out: &mut Vec<u8>, k: &str, v: &str) {
    key(out, k);
    out.push(b'"');
    escape_into(out, v);
    out.push(b'"');
}

fn int_field(out: &mut Vec<u8>, k: &str, v: i64) {
    key(out, k);
    let _ = write!(out, "{v}");
}

fn dec_field(out: &mut Vec<u8>, k: &str, v: i64, scale: u8) {
    key(out, k);
    out.push(b'"');
    out.extend_from_slice(format_scaled(v, scale).as_str().as_bytes());
    out.push(b'"');
}

/// Writes a finite float as a JSON number; skips the key if not finite.
pub fn float_field(out: &mut Vec<u8>, k: &str, v: f64) {
    if v.is_finite() {
        key(out, k);
        let _ = write!(out, "{v}");
    }
}

fn bool_field(out: &mut Vec<u8>, k: &str, v: bool) {
    key(out, k);
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// Appends `s` JSON-escaped (without quotes).
pub fn escape_into(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
}

fn head(out: &mut Vec<u8>, ty: &str, inst: Option<&Instrument>) {
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(ty.as_bytes());
    out.push(b'"');
    if let Some(i) = inst {
        str_field(out, "symbol", &i.key);
    }
}

/// Serializes one tick as its EVENTS.md object (`trade`, `quote`,
/// `book_level`, `bar`). Unknown instruments serialize with
/// `"symbol":"?:<id>"` rather than failing.
pub fn write_tick(out: &mut Vec<u8>, ctx: &JsonContext, t: &Tick) {
    let inst = ctx.registry.get(t.instrument);
    let (pp, sp) = inst.map_or((0, 0), |i| (i.price_precision, i.size_precision));
    let kind = t.kind().unwrap_or(TickKind::Trade);
    let ty = match kind {
        TickKind::Trade => "trade",
        TickKind::Quote => "quote",
        TickKind::BookLevel => "book_level",
        TickKind::Bar => "bar",
        TickKind::Gap | TickKind::FeedStatus => "anomaly",
    };
    head(out, ty, inst);
    if inst.is_none() {
        str_field(out, "symbol", &format!("?:{}", t.instrument.0));
    }
    int_field(out, "ts_event", t.ts_event_ns);
    int_field(out, "ts_recv", t.ts_recv_ns);
    match kind {
        TickKind::Trade => {
            dec_field(out, "price", t.price, pp);
            dec_field(out, "size", t.size, sp);
            str_field(out, "side", t.side().as_str());
            if t.has_flag(flags::ID_HASHED) {
                str_field(out, "trade_id_hash", &format!("{:016x}", t.id));
            } else {
                str_field(out, "trade_id", &t.id.to_string());
            }
        }
        TickKind::Quote => {
            dec_field(out, "bid", t.price, pp);
            dec_field(out, "bid_size", t.size, sp);
            dec_field(out, "ask", t.price2, pp);
            dec_field(out, "ask_size", t.size2, sp);
            int_field(out, "seq", t.id as i64);
        }
        TickKind::BookLevel => {
            str_field(
                out,
                "side",
                if t.side() == crate::tick::Side::Buy {
                    "bid"
                } else {
                    "ask"
                },
            );
            dec_field(out, "price", t.price, pp);
            dec_field(out, "size", t.size, sp);
            int_field(out, "seq", t.id as i64);
            bool_field(out, "snapshot", t.has_flag(flags::SNAPSHOT));
        }
        TickKind::Bar => {
            dec_field(out, "open", t.id as i64, pp);
            dec_field(out, "high", t.price2, pp);
            dec_field(out, "low", t.size2, pp);
            dec_field(out, "close", t.price, pp);
            dec_field(out, "volume", t.size, sp);
        }
        TickKind::Gap => {
            str_field(out, "rule", "sequence_gap");
            str_field(out, "severity", "warning");
            int_field(out, "expected", t.id as i64);
            int_field(out, "received", t.price);
            int_field(out, "missing", t.size);
        }
        TickKind::FeedStatus => {
            let rule = match t.id {
                crate::tick::feed_status::CONNECTED => "feed_connected",
                crate::tick::feed_status::DISCONNECTED => "feed_disconnected",
                crate::tick::feed_status::STALE => "stale_feed",
                crate::tick::feed_status::CIRCUIT_OPEN => "circuit_open",
                crate::tick::feed_status::CROSSED => "crossed_book",
                _ => "feed_status",
            };
            str_field(out, "rule", rule);
            let sev = if t.id == crate::tick::feed_status::CONNECTED {
                "info"
            } else {
                "warning"
            };
            str_field(out, "severity", sev);
            int_field(out, "detail", t.size);
        }
    }
    if t.has_flag(flags::SUSPECT) {
        bool_field(out, "suspect", true);
    }
    out.push(b'}');
}

/// Serializes a bar (`"type":"bar"`).
pub fn write_bar(out: &mut Vec<u8>, ctx: &JsonContext, b: &Bar) {
    let inst = ctx.registry.get(b.instrument);
    let (pp, sp) = inst.map_or((0, 0), |i| (i.price_precision, i.size_precision));
    head(out, "bar", inst);
    str_field(out, "window", &ctx.window(b.window_idx, b.window_ns));
    int_field(out, "start", b.start_ns);
    int_field(out, "end", b.end_ns());
    bool_field(out, "final", b.is_final);
    dec_field(out, "open", b.open, pp);
    dec_field(out, "high", b.high, pp);
    dec_field(out, "low", b.low, pp);
    dec_field(out, "close", b.close, pp);
    dec_field(out, "volume", b.volume, sp);
    dec_field(out, "buy_volume", b.buy_volume, sp);
    dec_field(out, "sell_volume", b.sell_volume, sp);
    float_field(out, "vwap", b.vwap);
    int_field(out, "trades", i64::from(b.trades));
    out.push(b'}');
}

/// Serializes any event.
pub fn write_event(out: &mut Vec<u8>, ctx: &JsonContext, ev: &Event) {
    match &ev.body {
        EventBody::Tick(t) => write_tick(out, ctx, t),
        EventBody::Bar(b) => write_bar(out, ctx, b),
    }
}

/// Serializes an `error` object: `{"type":"error","code":..,"message":..}`.
pub fn write_error(out: &mut Vec<u8>, code: &str, message: &str) {
    head(out, "error", None);
    str_field(out, "code", code);
    str_field(out, "message", message);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruments::InstrumentId;
    use crate::tick::Side;

    fn ctx() -> JsonContext {
        let mut r = InstrumentRegistry::new();
        r.add("BINANCE:BTCUSDT", 2, 5, None).unwrap();
        JsonContext::new(r, &[60_000_000_000])
    }

    fn parse(b: &[u8]) -> serde_json::Value {
        serde_json::from_slice(b).expect("valid JSON")
    }

    #[test]
    fn trade_matches_events_md() {
        let t = Tick::trade(
            InstrumentId(0),
            1_723_161_255_342_000_000,
            1_723_161_254_087_896_568,
            6_183_763,
            2_000,
            Side::Sell,
            3_735_683_259,
        );
        let mut out = Vec::new();
        write_tick(&mut out, &ctx(), &t);
        let v = parse(&out);
        assert_eq!(
            v,
            serde_json::json!({"type":"trade","symbol":"BINANCE:BTCUSDT","ts_event":1723161255342000000i64,
                "ts_recv":1723161254087896568i64,"price":"61837.63","size":"0.02000","side":"sell","trade_id":"3735683259"})
        );
    }

    #[test]
    fn bar_has_window_and_exact_decimals() {
        let b = Bar {
            instrument: InstrumentId(0),
            window_idx: 0,
            is_final: true,
            trades: 412,
            window_ns: 60_000_000_000,
            start_ns: 1_723_161_240_000_000_000,
            open: 6_183_763,
            high: 6_185_000,
            low: 6_183_001,
            close: 6_184_210,
            volume: 1_234_567,
            buy_volume: 1_000_000,
            sell_volume: 234_567,
            vwap: 61840.1234,
        };
        let mut out = Vec::new();
        write_bar(&mut out, &ctx(), &b);
        let v = parse(&out);
        assert_eq!(v["window"], "1m");
        assert_eq!(v["end"], 1_723_161_300_000_000_000i64);
        assert_eq!(v["high"], "61850.00");
        assert_eq!(v["volume"], "12.34567");
        assert_eq!(v["vwap"], 61840.1234);
        assert_eq!(v["final"], true);
    }

    #[test]
    fn non_finite_floats_are_absent() {
        let mut out = b"{\"a\":1".to_vec();
        float_field(&mut out, "x", f64::NAN);
        float_field(&mut out, "y", f64::INFINITY);
        out.push(b'}');
        assert_eq!(parse(&out), serde_json::json!({"a":1}));
    }

    #[test]
    fn error_escapes() {
        let mut out = Vec::new();
        write_error(&mut out, "bad", "a \"quoted\"\nline\u{1}");
        let v = parse(&out);
        assert_eq!(v["message"], "a \"quoted\"\nline\u{1}");
    }
}
